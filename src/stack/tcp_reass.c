/*
 * The receiver's out-of-order queue: segments that arrived beyond rcv_nxt
 * are kept as records (first chunk: seq, aux = length) sorted by sequence,
 * with overlaps trimmed on insertion.  When the hole before them fills,
 * their chunks move onto the receive queue without copying.
 */
#include "internal.h"

/* Drop n bytes from the front of a record (its chunks' off/len). */
static int32_t rec_trim_front(struct usnet_stack *st, int32_t rec, uint32_t n)
{
	struct chunk *chunks = st_chunks(st);
	uint32_t seq = chunks[rec].seq + n, len = chunks[rec].aux - n;
	int32_t link = chunks[rec].link;
	while (n) {
		struct chunk *ch = &chunks[rec];
		if (n < ch->len) {
			chunk_trim_front(ch, n);
			break;
		}
		n -= ch->len;
		int32_t next = ch->next;
		chunk_free(st, rec);
		rec = next;
	}
	chunks[rec].seq = seq;
	chunks[rec].aux = len;
	chunks[rec].link = link;
	return rec;
}

int tcp_reass_insert(struct usnet_stack *st, struct sock *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct chunk *chunks = st_chunks(st);
	uint32_t end = seq + len;
	int32_t *pp = &s->ooo;
	/* Skip records wholly before the new segment. */
	while (*pp != NIL && seq_le(chunks[*pp].seq + chunks[*pp].aux, seq))
		pp = &chunks[*pp].link;
	/* Trim the new segment against the record that starts before it. */
	if (*pp != NIL) {
		struct chunk *r = &chunks[*pp];
		if (seq_le(r->seq, seq)) {
			uint32_t rend = r->seq + r->aux;
			if (seq_ge(rend, end)) {
				s->last_ooo_seq = r->seq;
				return 0;   /* already held */
			}
			uint32_t d = rend - seq;
			p += d;
			seq = rend;
			len -= d;
			pp = &r->link;
		}
	}
	/* Records the new segment covers entirely go; a partial one is trimmed. */
	while (*pp != NIL) {
		struct chunk *r = &chunks[*pp];
		if (seq_ge(r->seq, end))
			break;
		uint32_t rend = r->seq + r->aux;
		if (seq_le(rend, end)) {
			int32_t dead = *pp;
			*pp = r->link;
			s->ooo_bytes -= chunks[dead].aux;
			s->ooo_n--;
			chunk_free_chain(st, dead);
			continue;
		}
		/* Overlaps our tail: shorten the new segment instead. */
		len = r->seq - seq;
		end = r->seq;
		break;
	}
	if (!len)
		return 0;
	/* Bounded: small segments each hold a whole chunk, so their number is
	 * capped as well as their bytes (which the window caps). */
	if (s->ooo_n >= TCP_OOO_MAX_RECORDS(s))
		return -1;
	int32_t rec = chain_from_bytes(st, p, len);
	if (rec == NIL)
		return -1;
	chunks[rec].seq = seq;
	chunks[rec].aux = len;
	chunks[rec].link = *pp;
	*pp = rec;
	s->ooo_bytes += len;
	s->ooo_n++;
	s->last_ooo_seq = seq;
	return 0;
}

uint32_t tcp_reass_pull(struct usnet_stack *st, struct sock *s)
{
	struct chunk *chunks = st_chunks(st);
	uint32_t moved = 0;
	while (s->ooo != NIL) {
		int32_t rec = s->ooo;
		struct chunk *r = &chunks[rec];
		if (seq_gt(r->seq, s->rcv_nxt))
			break;
		s->ooo = r->link;
		uint32_t len = r->aux;
		s->ooo_bytes -= len;
		s->ooo_n--;
		uint32_t rend = r->seq + len;
		if (seq_le(rend, s->rcv_nxt)) {
			chunk_free_chain(st, rec);
			continue;
		}
		if (seq_lt(r->seq, s->rcv_nxt)) {
			uint32_t d = s->rcv_nxt - r->seq;
			rec = rec_trim_front(st, rec, d);
			len -= d;
		}
		chunks[rec].link = NIL;
		byteq_append_chain(st, &s->rcvq, rec, len);
		s->rcv_nxt += len;
		moved += len;
	}
	return moved;
}

unsigned tcp_reass_sack_blocks(struct usnet_stack *st, const struct sock *s, uint32_t (*out)[2], unsigned max)
{
	struct chunk *chunks = st_chunks(st);
	/* Merge adjacent records into blocks; the block holding the most
	 * recent arrival goes first (RFC 2018 section 4). */
	uint32_t blocks[16][2];
	unsigned n = 0;
	for (int32_t r = s->ooo; r != NIL && n < 16; r = chunks[r].link) {
		uint32_t a = chunks[r].seq, b = a + chunks[r].aux;
		if (n && blocks[n - 1][1] == a)
			blocks[n - 1][1] = b;
		else {
			blocks[n][0] = a;
			blocks[n][1] = b;
			n++;
		}
	}
	unsigned first = 0;
	for (unsigned i = 0; i < n; i++)
		if (seq_ge(s->last_ooo_seq, blocks[i][0]) && seq_lt(s->last_ooo_seq, blocks[i][1]))
			first = i;
	unsigned k = 0;
	if (n && max) {
		out[k][0] = blocks[first][0];
		out[k][1] = blocks[first][1];
		k++;
	}
	for (unsigned i = 0; i < n && k < max; i++) {
		if (i == first)
			continue;
		out[k][0] = blocks[i][0];
		out[k][1] = blocks[i][1];
		k++;
	}
	return k;
}
