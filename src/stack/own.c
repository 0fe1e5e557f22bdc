/*
 * Who holds each chunk of the buffer pool: the walks usnet_stack_check()
 * and usnet_stack_repair() make over every byte queue and record list.
 *
 * A chunk belongs to exactly one holder (a socket's send or receive queue,
 * its out-of-order records, an ARP entry's waiting frames, a reassembly
 * slot, the loop queue) or to the free list.  The walks do not trust what
 * they read: a process killed inside a stack call may have left a chain
 * half linked.  Each walk bounds itself by the pool's size, refuses an
 * index out of range and a chunk another holder (or itself) already
 * claimed, and claims nothing when it fails, so the caller can drop the
 * broken holder and the chunks go back to the pool.
 */
#include "internal.h"

size_t own_marks_size(uint32_t nchunks, uint32_t nsocks)
{
	uint64_t bits = (uint64_t)nchunks + 2ull * nsocks;
	return (size_t)((bits + 63) / 64 * 8);
}

void own_clear(struct usnet_stack *st)
{
	memset(st_marks(st), 0, own_marks_size(st->nchunks, st->nsocks));
}

int own_test(struct usnet_stack *st, uint32_t bit)
{
	return (int)(st_marks(st)[bit / 64] >> (bit % 64) & 1u);
}

void own_set(struct usnet_stack *st, uint32_t bit)
{
	st_marks(st)[bit / 64] |= 1ull << (bit % 64);
}

static void own_unset(struct usnet_stack *st, uint32_t bit)
{
	st_marks(st)[bit / 64] &= ~(1ull << (bit % 64));
}

void own_clear_range(struct usnet_stack *st, uint32_t from, uint32_t n)
{
	for (uint32_t b = from; b < from + n; b++)
		own_unset(st, b);
}

/* Release the first n chunks of a chain this walk claimed (they are
 * distinct and linked as walked: the walk stopped before the bad one). */
static void unclaim_chain(struct usnet_stack *st, int32_t c, uint32_t n)
{
	const struct chunk *chunks = st_chunks(st);
	for (uint32_t k = 0; k < n; k++) {
		own_unset(st, (uint32_t)c);
		c = chunks[c].next;
	}
}

/* Claim one chain from head by next.  0 and its chunk count, bytes and
 * last chunk; -1 with nothing claimed. */
static int claim_chain(struct usnet_stack *st, int32_t head, uint32_t *nchunks, uint32_t *bytes, int32_t *last)
{
	const struct chunk *chunks = st_chunks(st);
	uint32_t n = 0, sum = 0;
	int32_t c = head, prev = NIL;
	while (c != NIL) {
		if (c < 0 || (uint32_t)c >= st->nchunks || own_test(st, (uint32_t)c) ||
		    (uint32_t)chunks[c].off + chunks[c].len > CHUNK_SIZE) {
			unclaim_chain(st, head, n);
			return -1;
		}
		own_set(st, (uint32_t)c);
		n++;
		sum += chunks[c].len;
		prev = c;
		c = chunks[c].next;
	}
	*nchunks = n;
	*bytes = sum;
	*last = prev;
	return 0;
}

void own_release_chain(struct usnet_stack *st, int32_t head)
{
	const struct chunk *chunks = st_chunks(st);
	for (int32_t c = head; c != NIL; c = chunks[c].next)
		own_unset(st, (uint32_t)c);
}

int own_byteq(struct usnet_stack *st, const struct byteq *q, struct own_list *out)
{
	memset(out, 0, sizeof *out);
	out->last = NIL;
	if (claim_chain(st, q->head, &out->chunks, &out->bytes, &out->last) < 0)
		return -1;
	out->charge = out->bytes;
	return 0;
}

/* The length a record's kind says it holds. */
static uint32_t record_len(const struct chunk *r, enum rec_kind kind)
{
	return kind == REC_DGRAM ? (r->aux & 0xffff) : r->aux;
}

static void unclaim_records(struct usnet_stack *st, int32_t rec, uint32_t n)
{
	const struct chunk *chunks = st_chunks(st);
	for (uint32_t k = 0; k < n; k++) {
		int32_t next = chunks[rec].link;
		uint32_t len = 0;
		for (int32_t c = rec; c != NIL; c = chunks[c].next)
			len++;
		unclaim_chain(st, rec, len);
		rec = next;
	}
}

int own_records(struct usnet_stack *st, int32_t head, enum rec_kind kind, struct own_list *out)
{
	const struct chunk *chunks = st_chunks(st);
	memset(out, 0, sizeof *out);
	out->last = NIL;
	uint32_t prev_end = 0;
	for (int32_t rec = head; rec != NIL; rec = chunks[rec].link) {
		uint32_t n, bytes;
		int32_t last;
		if (claim_chain(st, rec, &n, &bytes, &last) < 0)
			goto broken;
		const struct chunk *r = &chunks[rec];
		int ok = record_len(r, kind) == bytes;
		if (kind == REC_SEGMENT)
			ok = ok && bytes > 0 && (out->records == 0 || seq_le(prev_end, r->seq));
		else if (kind == REC_FRAGMENT)
			ok = ok && bytes > 0 && (out->records == 0 || prev_end <= r->seq);
		if (!ok) {
			unclaim_chain(st, rec, n);
			goto broken;
		}
		prev_end = r->seq + r->aux;
		out->records++;
		out->chunks += n;
		out->bytes += bytes;
		out->charge += kind == REC_DGRAM ? bytes + UDP_DGRAM_OVERHEAD : bytes;
		out->last = rec;
	}
	return 0;
broken:
	unclaim_records(st, head, out->records);
	memset(out, 0, sizeof *out);
	out->last = NIL;
	return -1;
}
