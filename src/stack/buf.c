/*
 * The buffer pool: CHUNK_SIZE chunks on a free list, shared by every socket
 * of the instance, so memory follows the data in flight rather than the
 * number of connections.  A byte queue is a chain of chunks, each holding
 * the bytes [off, off+len) of its CHUNK_SIZE area.
 */
#include "internal.h"

int32_t chunk_alloc(struct usnet_stack *st)
{
	int32_t i = st->chunk_free;
	if (i == NIL)
		return NIL;
	struct chunk *c = &st->chunks[i];
	st->chunk_free = c->next;
	st->chunks_free--;
	c->next = NIL;
	c->link = NIL;
	c->off = 0;
	c->len = 0;
	c->seq = 0;
	c->aux = 0;
	return i;
}

void chunk_free(struct usnet_stack *st, int32_t i)
{
	st->chunks[i].next = st->chunk_free;
	st->chunk_free = i;
	st->chunks_free++;
}

void chunk_free_chain(struct usnet_stack *st, int32_t i)
{
	while (i != NIL) {
		int32_t n = st->chunks[i].next;
		chunk_free(st, i);
		i = n;
	}
}

void chunk_free_records(struct usnet_stack *st, int32_t rec)
{
	while (rec != NIL) {
		int32_t n = st->chunks[rec].link;
		chunk_free_chain(st, rec);
		rec = n;
	}
}

int32_t chain_from_bytes(struct usnet_stack *st, const uint8_t *p, uint32_t len)
{
	uint32_t need = len ? (len + CHUNK_SIZE - 1) / CHUNK_SIZE : 1;
	if (need > st->chunks_free)
		return NIL;
	int32_t head = NIL, prev = NIL;
	do {
		int32_t c = chunk_alloc(st);
		uint32_t n = min_u32(len, CHUNK_SIZE);
		memcpy(chunk_ptr(st, c), p, n);
		st->chunks[c].len = (uint16_t)n;
		if (prev == NIL) head = c; else st->chunks[prev].next = c;
		prev = c;
		p += n;
		len -= n;
	} while (len);
	return head;
}

void byteq_init(struct byteq *q)
{
	q->head = q->tail = NIL;
	q->bytes = 0;
	q->cur = NIL;
	q->cur_pos = 0;
}

uint32_t byteq_append(struct usnet_stack *st, struct byteq *q, const uint8_t *p, uint32_t len)
{
	uint32_t done = 0;
	while (done < len) {
		int32_t t = q->tail;
		uint32_t room = 0;
		if (t != NIL)
			room = CHUNK_SIZE - st->chunks[t].off - st->chunks[t].len;
		if (room == 0) {
			int32_t c = chunk_alloc(st);
			if (c == NIL)
				break;
			if (t == NIL) q->head = c; else st->chunks[t].next = c;
			q->tail = t = c;
			room = CHUNK_SIZE;
		}
		struct chunk *ch = &st->chunks[t];
		uint32_t n = min_u32(room, len - done);
		memcpy(chunk_ptr(st, t) + ch->off + ch->len, p + done, n);
		ch->len = (uint16_t)(ch->len + n);
		done += n;
	}
	q->bytes += done;
	return done;
}

void byteq_append_chain(struct usnet_stack *st, struct byteq *q, int32_t head, uint32_t bytes)
{
	if (head == NIL)
		return;
	if (q->tail == NIL) q->head = head; else st->chunks[q->tail].next = head;
	int32_t t = head;
	while (st->chunks[t].next != NIL)
		t = st->chunks[t].next;
	q->tail = t;
	q->bytes += bytes;
}

void byteq_copy_out(struct usnet_stack *st, struct byteq *q, uint32_t off, uint8_t *dst, uint32_t len)
{
	int32_t c = q->head;
	uint32_t pos = 0;
	if (q->cur != NIL && q->cur_pos <= off) {
		c = q->cur;
		pos = q->cur_pos;
	}
	while (c != NIL && off - pos >= st->chunks[c].len) {
		pos += st->chunks[c].len;
		c = st->chunks[c].next;
	}
	if (c != NIL) {
		q->cur = c;
		q->cur_pos = pos;
	}
	off -= pos;
	while (len && c != NIL) {
		const struct chunk *ch = &st->chunks[c];
		uint32_t n = min_u32(ch->len - off, len);
		memcpy(dst, chunk_ptr(st, c) + ch->off + off, n);
		dst += n;
		len -= n;
		off = 0;
		c = ch->next;
	}
}

void byteq_consume(struct usnet_stack *st, struct byteq *q, uint32_t n)
{
	if (n > q->bytes)
		n = q->bytes;
	q->bytes -= n;
	uint32_t consumed = n;
	while (n && q->head != NIL) {
		struct chunk *ch = &st->chunks[q->head];
		if (n < ch->len) {
			ch->off = (uint16_t)(ch->off + n);
			ch->len = (uint16_t)(ch->len - n);
			n = 0;
			break;
		}
		n -= ch->len;
		int32_t next = ch->next;
		chunk_free(st, q->head);
		q->head = next;
	}
	if (q->head == NIL) {
		q->tail = NIL;
	} else if (q->bytes == 0) {
		/* Keep no empty chunk around: an idle socket holds no buffer. */
		chunk_free_chain(st, q->head);
		q->head = q->tail = NIL;
	}
	/* Keep the read cursor when its chunk survived. */
	if (q->cur != NIL) {
		if (q->head == NIL)
			q->cur = NIL;
		else if (q->cur_pos >= consumed)
			q->cur_pos -= consumed;
		else if (q->cur == q->head)
			q->cur_pos = 0;
		else
			q->cur = NIL;
	}
}

void byteq_clear(struct usnet_stack *st, struct byteq *q)
{
	chunk_free_chain(st, q->head);
	byteq_init(q);
}
