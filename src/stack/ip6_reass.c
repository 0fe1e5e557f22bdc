/*
 * IPv6 fragment reassembly (RFC 8200 4.5).  A few slots keyed by (src,
 * dst, Identification), each holding its fragments as records sorted by
 * offset, with the list machinery and the memory budget of IPv4's
 * (ip_reass.c: one budget for both).  As RFC 8200 and the RFCs after it
 * ask:
 *
 * - a fragment that overlaps one held drops the whole datagram, and the
 *   rest of it as it comes, silently (RFC 5722); exact duplicates are
 *   ignored;
 * - a first fragment without the whole header chain, up to the fixed part
 *   of the upper-layer header, is dropped with Parameter Problem code 3
 *   (RFC 7112 5, as Linux);
 * - a fragment with M set whose length is not a multiple of 8: Parameter
 *   Problem code 0 at the Payload Length; one that would end past 65535
 *   bytes: code 0 at its Fragment Offset;
 * - a datagram not whole 60 s after its first fragment came is given up,
 *   with Time Exceeded code 1 to its source when its offset-0 fragment was
 *   among those held.
 *
 * The datagram made whole is the first fragment's fixed header followed by
 * the fragmentable part: the extension headers before the Fragment header
 * were acted on as each fragment came, and are not kept.  It goes back to
 * ipv6.c (ip6_input_reassembled) for the walk of its own headers and the
 * same upper-layer delivery as any packet.
 */
#include "internal.h"
#include "wire_ipv6.h"

#define IP6_FRAG_HLEN 8

static void reasm6_free(struct usnet_stack *st, struct reasm6 *r)
{
	chunk_free_list(st, &r->frags);
	st->reasm_bytes -= r->truesize;
	r->truesize = 0;
	r->have = 0;
	r->total = 0;
	r->first = 0;
	r->dead = 0;
	r->used = 0;
}

/* Does the first fragment's data p[0..len), starting with header `next`,
 * hold the whole header chain: every extension header, then the fixed
 * part of the upper-layer header (RFC 7112 5; as Linux: TCP 20 bytes, UDP
 * 8, ICMPv6 8)?  A header this does not know ends the chain here; the
 * walk of the reassembled packet judges it. */
static int chain_complete(const uint8_t *p, uint32_t len, uint8_t next)
{
	uint32_t at = 0;
	for (;;) {   /* at grows by >= 8 each step */
		switch (next) {
		case IP6_NH_HOPOPTS:
		case IP6_NH_DSTOPTS:
		case IP6_NH_ROUTING:
			if (at + 2 > len)
				return 0;
			next = p[at];
			at += ((uint32_t)p[at + 1] + 1) * 8;
			break;
		case IP6_NH_AH:   /* its length counts 4-byte units, less 2 */
			if (at + 2 > len)
				return 0;
			next = p[at];
			at += ((uint32_t)p[at + 1] + 2) * 4;
			break;
		case IP6_NH_FRAGMENT:
			if (at + IP6_FRAG_HLEN > len)
				return 0;
			next = p[at];
			at += IP6_FRAG_HLEN;
			break;
		case IP6_NH_TCP:
			return at + 20 <= len;
		case IP6_NH_UDP:
		case IP6_NH_ICMP6:
			return at + 8 <= len;
		default:
			return at <= len;
		}
	}
}

/* The datagram of r is given up: its fragments freed, and the slot kept
 * (dead) until it expires, so that the fragments still to come are
 * dropped too (RFC 8200 4.5: "including any not yet received"). */
static void reasm6_kill(struct usnet_stack *st, struct reasm6 *r)
{
	chunk_free_list(st, &r->frags);
	st->reasm_bytes -= r->truesize;
	r->truesize = 0;
	r->have = 0;
	r->dead = 1;
}

void ip6_reass_input(struct net_ctx *c, const uint8_t *ip, uint32_t total, const struct ipv6_view *v,
		     const struct ip6_ext_view *x, int l2_mcast)
{
	struct usnet_stack *st = c->st;
	st->stats.ip6_frag_rx++;
	uint32_t off = x->frag_off, len = total - x->off, end = off + len;
	int more = x->frag_more;
	if (more && (len & 7)) {
		st->stats.ip6_drop_frag++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_HEADER, IP6_PLEN, l2_mcast, 0);
		return;
	}
	if (end > REASM_MAX) {
		st->stats.ip6_drop_frag++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_HEADER, x->frag_hdr_off + 2, l2_mcast, 0);
		return;
	}
	if (len == 0) {   /* holds nothing (a last one would end where others do) */
		st->stats.ip6_drop_frag++;
		return;
	}
	if (off == 0 && !chain_complete(ip + x->off, len, x->proto)) {
		st->stats.ip6_frag_drop_chain++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_INCOMPLETE_CHAIN, 0, l2_mcast, 0);
		return;
	}
	struct reasm6 *r = NULL, *free_slot = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < REASM6_SLOTS; i++) {
		struct reasm6 *q = &st->reasm6[i];
		if (!q->used) {
			if (!free_slot)
				free_slot = q;
			continue;
		}
		if (q->id == x->frag_id && ip6_eq(q->src, v->src) && ip6_eq(q->dst, v->dst)) {
			r = q;
			break;
		}
		if (!oldest || q->expires < oldest->expires)
			oldest = q;
	}
	if (r && r->dead) {
		st->stats.ip6_drop_frag++;
		return;
	}
	if (!r) {
		if (!free_slot) {
			/* All busy: the oldest datagram gives way. */
			st->stats.ip6_drop_frag++;
			reasm6_free(st, oldest);
			free_slot = oldest;
		}
		r = free_slot;
		memcpy(r->src, v->src, 16);
		memcpy(r->dst, v->dst, 16);
		r->id = x->frag_id;
		r->total = 0; r->have = 0; r->truesize = 0; r->frags = NIL;
		r->first = 0; r->dead = 0;
		r->expires = c->now + REASM6_TIMEOUT_NS;
		if (r->expires < st->misc_at)
			st->misc_at = r->expires;
		r->used = 1;
	}
	if (!more) {
		/* The last fragment: the length, which nothing held may pass
		 * and no other last fragment may contradict. */
		if ((r->total && r->total != end) || frag_list_end(st, r->frags) > end) {
			st->stats.ip6_drop_frag++;
			reasm6_free(st, r);
			return;
		}
		r->total = end;
	} else if (r->total && end > r->total) {
		st->stats.ip6_drop_frag++;
		reasm6_free(st, r);
		return;
	}
	uint32_t truesize = 0;
	switch (frag_insert(st, &r->frags, off, ip + x->off, len, &truesize)) {
	case FRAG_ADDED:
		break;
	case FRAG_DUP:
		return;
	case FRAG_OVERLAP:
		st->stats.ip6_frag_drop_overlap++;
		reasm6_kill(st, r);
		return;
	case FRAG_NOMEM:
		st->stats.ip6_drop_frag++;
		reasm6_free(st, r);
		return;
	}
	r->have += len;
	r->truesize += truesize;
	if (off == 0) {
		/* What the datagram made whole will carry (RFC 8200 4.5: the
		 * first fragment's headers and its Fragment header's next
		 * header). */
		r->next = x->proto;
		r->hop_limit = v->hop_limit;
		r->vtf = rd32(ip + IP6_VTF);
		r->l2_mcast = (uint8_t)(l2_mcast != 0);
		r->first = 1;
	}
	if (!r->total || r->have != r->total)
		return;
	/* Whole: no overlaps, and the lengths add up. */
	uint8_t *buf = st_reasm_buf(st);
	uint32_t plen = r->total;
	if (!r->first || frag_copy(st, r->frags, buf + IP6_HLEN, plen) < 0) {   /* cannot happen when have == total */
		st->stats.ip6_drop_frag++;
		reasm6_free(st, r);
		return;
	}
	ipv6_write(buf, r->src, r->dst, r->next, (uint16_t)plen, r->hop_limit);
	wr32(buf + IP6_VTF, r->vtf);
	int mcast = r->l2_mcast;
	reasm6_free(st, r);
	st->stats.ip6_frag_reassembled++;
	ip6_input_reassembled(c, buf, IP6_HLEN + plen, mcast);
}

/* Time Exceeded code 1 (RFC 4443 3.3) about the datagram of r, whose
 * offset-0 fragment is held: it quotes that fragment as the fixed header,
 * a Fragment header and the fragment's data (the extension headers before
 * the Fragment header were not kept). */
static void reasm6_time_exceeded(struct net_ctx *c, struct reasm6 *r)
{
	struct usnet_stack *st = c->st;
	struct chunk *chunks = st_chunks(st);
	int32_t f = r->frags;
	if (f == NIL || chunks[f].seq != 0)
		return;
	uint8_t *buf = st_reasm_buf(st);
	uint8_t *fh = buf + IP6_HLEN;
	/* What the error can quote (RFC 4443 2.4(c)) is all that is needed. */
	uint32_t room = IP6_MIN_MTU - IP6_HLEN - ICMP6_HLEN - IP6_HLEN - IP6_FRAG_HLEN;
	uint32_t n = 0;
	for (int32_t k = f; k != NIL && n < room; k = chunks[k].next) {
		uint32_t m = min_u32(chunks[k].len, room - n);
		memcpy(fh + IP6_FRAG_HLEN + n, chunk_ptr(st, k), m);
		n += m;
	}
	/* The lengths as the fragment had them: the error quotes its start. */
	ipv6_write(buf, r->src, r->dst, IP6_NH_FRAGMENT, (uint16_t)(IP6_FRAG_HLEN + chunks[f].aux), r->hop_limit);
	wr32(buf + IP6_VTF, r->vtf);
	fh[0] = r->next;
	fh[1] = 0;
	wr16(fh + 2, 1);   /* offset 0, M */
	wr32(fh + 4, r->id);
	icmp6_send_error(c, buf, IP6_HLEN + IP6_FRAG_HLEN + n, ICMP6_TIME_EXCEEDED, ICMP6_TIME_REASSEMBLY, 0,
			 r->l2_mcast, 0);
}

uint64_t ip6_reass_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < REASM6_SLOTS; i++) {
		struct reasm6 *r = &st->reasm6[i];
		if (!r->used)
			continue;
		if (r->expires <= c->now) {
			if (!r->dead) {
				st->stats.ip6_frag_timeout++;
				if (r->first)
					reasm6_time_exceeded(c, r);
			}
			reasm6_free(st, r);
			continue;
		}
		if (r->expires < next)
			next = r->expires;
	}
	return next;
}
