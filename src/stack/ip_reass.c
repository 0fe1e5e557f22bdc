/*
 * IPv4 fragment reassembly: a few slots keyed by (src, dst, id, proto), the
 * fragments of each kept as records sorted by offset.  Memory is bounded
 * (a budget of the shared pool), every datagram has a deadline, and a
 * fragment that overlaps one already held drops the whole datagram (a
 * classic evasion and resource attack) — exact duplicates are ignored.
 * The fragment lists, their budget and assembly are shared with IPv6
 * reassembly (ip6_reass.c): frag_insert, frag_list_end, frag_copy.
 */
#include "internal.h"
#include "wire_ipv4.h"

static void reasm_free(struct usnet_stack *st, struct reasm *r)
{
	chunk_free_list(st, &r->frags);
	st->reasm_bytes -= r->truesize;
	r->truesize = 0;
	r->used = 0;
	r->have = 0;
	r->total = 0;
}

uint32_t reasm_budget(const struct usnet_stack *st)
{
	uint32_t b = st->nchunks * CHUNK_SIZE / 4;
	return b > 4u * REASM_MAX ? 4u * REASM_MAX : b;
}

enum frag_verdict frag_insert(struct usnet_stack *st, int32_t *head, uint32_t off, const uint8_t *p,
			      uint32_t len, uint32_t *truesize)
{
	struct chunk *chunks = st_chunks(st);
	uint32_t end = off + len;
	/* Find the insertion point and check overlaps with neighbours. */
	int32_t *pp = head;
	while (*pp != NIL) {
		struct chunk *f = &chunks[*pp];
		uint32_t fo = f->seq, fe = f->seq + f->aux;
		if (fo == off && fe == end)
			return FRAG_DUP;
		if (off < fe && fo < end)
			return FRAG_OVERLAP;
		if (fo > off)
			break;
		pp = &f->link;
	}
	/* The budget counts whole chunks: tiny fragments cost what they hold. */
	uint32_t ts = (len + CHUNK_SIZE - 1) / CHUNK_SIZE * CHUNK_SIZE;
	if (st->reasm_bytes + ts > reasm_budget(st))
		return FRAG_NOMEM;
	int32_t rec = chain_from_bytes(st, p, len);
	if (rec == NIL)
		return FRAG_NOMEM;
	chunks[rec].seq = off;
	chunks[rec].aux = len;
	chunks[rec].link = *pp;
	*pp = rec;
	st->reasm_bytes += ts;
	*truesize = ts;
	return FRAG_ADDED;
}

uint32_t frag_list_end(struct usnet_stack *st, int32_t head)
{
	struct chunk *chunks = st_chunks(st);
	uint32_t end = 0;
	for (int32_t f = head; f != NIL; f = chunks[f].link)
		end = chunks[f].seq + chunks[f].aux;
	return end;
}

int frag_copy(struct usnet_stack *st, int32_t head, uint8_t *buf, uint32_t total)
{
	struct chunk *chunks = st_chunks(st);
	uint32_t pos = 0;
	for (int32_t f = head; f != NIL; f = chunks[f].link) {
		if (chunks[f].seq != pos || pos + chunks[f].aux > total)
			return -1;
		for (int32_t k = f; k != NIL; k = chunks[k].next) {
			memcpy(buf + pos, chunk_ptr(st, k), chunks[k].len);
			pos += chunks[k].len;
		}
	}
	return pos == total ? 0 : -1;
}

void ip_reass_input(struct net_ctx *c, const uint8_t *ip, uint32_t hlen, uint32_t plen, uint32_t rx_flags)
{
	struct usnet_stack *st = c->st;
	st->stats.ip_frag_rx++;
	uint16_t frag = rd16(ip + IP4_FRAG);
	uint32_t off = (uint32_t)(frag & IP4_OFFMASK) * 8;
	int more = (frag & IP4_MF) != 0;
	uint32_t src = rd32(ip + IP4_SRC), dst = rd32(ip + IP4_DST);
	uint16_t id = rd16(ip + IP4_ID);
	uint8_t proto = ip[IP4_PROTO];
	/* Non-last fragments carry a multiple of 8 bytes; nothing may end past
	 * the largest datagram. */
	if ((more && (plen & 7)) || plen == 0 || off + plen > REASM_MAX - IP_HLEN) {
		st->stats.ip_frag_drop++;
		return;
	}
	struct reasm *r = NULL, *free_slot = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < REASM_SLOTS; i++) {
		struct reasm *x = &st->reasm[i];
		if (!x->used) {
			if (!free_slot) free_slot = x;
			continue;
		}
		if (x->src == src && x->dst == dst && x->id == id && x->proto == proto) {
			r = x;
			break;
		}
		if (!oldest || x->expires < oldest->expires)
			oldest = x;
	}
	if (!r) {
		if (!free_slot) {
			/* All busy: the oldest incomplete datagram gives way. */
			st->stats.ip_frag_drop++;
			reasm_free(st, oldest);
			free_slot = oldest;
		}
		r = free_slot;
		r->used = 1;
		r->src = src; r->dst = dst; r->id = id; r->proto = proto;
		r->total = 0; r->have = 0; r->truesize = 0; r->frags = NIL;
		r->rx_flags = rx_flags;
		r->expires = c->now + REASM_TIMEOUT_NS;
		if (r->expires < st->misc_at)
			st->misc_at = r->expires;
	}
	r->rx_flags &= rx_flags;
	uint32_t end = off + plen;
	if (!more) {
		if ((r->total && r->total != end) || end < r->have) {
			st->stats.ip_frag_drop++;
			reasm_free(st, r);
			return;
		}
		r->total = end;
	} else if (r->total && end > r->total) {
		st->stats.ip_frag_drop++;
		reasm_free(st, r);
		return;
	}
	uint32_t truesize;
	switch (frag_insert(st, &r->frags, off, ip + hlen, plen, &truesize)) {
	case FRAG_ADDED:
		break;
	case FRAG_DUP:
		return;
	case FRAG_OVERLAP:
	case FRAG_NOMEM:
		st->stats.ip_frag_drop++;
		reasm_free(st, r);
		return;
	}
	r->have += plen;
	r->truesize += truesize;
	if (!r->total || r->have != r->total)
		return;
	/* Complete (no overlaps, sizes add up): assemble after a 20-byte header
	 * rebuilt from the slot's key (options of the first fragment are not
	 * needed above IP). */
	uint8_t *buf = st_reasm_buf(st);
	ipv4_write(buf, src, dst, proto, (uint16_t)(IP_HLEN + r->total), id, 0, 1, 0);
	if (frag_copy(st, r->frags, buf + IP_HLEN, r->total) < 0) {   /* cannot happen when have == total */
		st->stats.ip_frag_drop++;
		reasm_free(st, r);
		return;
	}
	uint32_t total = r->total, flags = r->rx_flags;
	reasm_free(st, r);
	st->stats.ip_frag_reassembled++;
	ipv4_deliver(c, src, dst, proto, buf, buf + IP_HLEN, total, flags);
}

uint64_t ip_reass_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < REASM_SLOTS; i++) {
		struct reasm *r = &st->reasm[i];
		if (!r->used)
			continue;
		if (r->expires <= c->now) {
			st->stats.ip_frag_timeout++;
			reasm_free(st, r);
			continue;
		}
		if (r->expires < next)
			next = r->expires;
	}
	return next;
}
