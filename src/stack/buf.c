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
	struct chunk *c = &st_chunks(st)[i];
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
	st_chunks(st)[i].next = st->chunk_free;
	st->chunk_free = i;
	st->chunks_free++;
}

void chunk_free_chain(struct usnet_stack *st, int32_t i)
{
	struct chunk *chunks = st_chunks(st);
	while (i != NIL) {
		int32_t n = chunks[i].next;
		chunk_free(st, i);
		i = n;
	}
}

void chunk_free_records(struct usnet_stack *st, int32_t rec)
{
	struct chunk *chunks = st_chunks(st);
	while (rec != NIL) {
		int32_t n = chunks[rec].link;
		chunk_free_chain(st, rec);
		rec = n;
	}
}

int32_t chain_from_bytes(struct usnet_stack *st, const uint8_t *p, uint32_t len)
{
	uint32_t need = len ? (len + CHUNK_SIZE - 1) / CHUNK_SIZE : 1;
	if (need > st->chunks_free)
		return NIL;
	struct chunk *chunks = st_chunks(st);
	int32_t head = NIL, prev = NIL;
	do {
		int32_t c = chunk_alloc(st);
		uint32_t n = min_u32(len, CHUNK_SIZE);
		memcpy(chunk_ptr(st, c), p, n);
		chunks[c].len = (uint16_t)n;
		if (prev == NIL) head = c; else chunks[prev].next = c;
		prev = c;
		p += n;
		len -= n;
	} while (len);
	return head;
}

int32_t chain_from_bytes_hdr(struct usnet_stack *st, const void *hdr, uint32_t hlen, const uint8_t *p,
			     uint32_t len)
{
	if (hlen >= CHUNK_SIZE)
		return NIL;
	uint32_t first = min_u32(len, CHUNK_SIZE - hlen);
	uint32_t rest = len - first;
	uint32_t need = 1 + (rest + CHUNK_SIZE - 1) / CHUNK_SIZE;
	if (need > st->chunks_free)
		return NIL;
	struct chunk *chunks = st_chunks(st);
	int32_t head = chunk_alloc(st);
	memcpy(chunk_ptr(st, head), hdr, hlen);
	memcpy(chunk_ptr(st, head) + hlen, p, first);
	chunks[head].off = (uint16_t)hlen;
	chunks[head].len = (uint16_t)first;
	if (rest) {
		int32_t tail = chain_from_bytes(st, p + first, rest);
		chunks = st_chunks(st);
		chunks[head].next = tail;
	}
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
	/* The tables are located afresh after each call (chunk_alloc,
	 * memcpy) rather than held across it: usually one pass, where a
	 * base kept in a register costs more than it saves. */
	uint32_t done = 0;
	while (done < len) {
		int32_t t = q->tail;
		uint32_t room = 0;
		if (t != NIL)
			room = CHUNK_SIZE - st_chunks(st)[t].off - st_chunks(st)[t].len;
		if (room == 0) {
			int32_t c = chunk_alloc(st);
			if (c == NIL)
				break;
			if (t == NIL) q->head = c; else st_chunks(st)[t].next = c;
			q->tail = t = c;
			room = CHUNK_SIZE;
		}
		struct chunk *ch = &st_chunks(st)[t];
		uint32_t n = min_u32(room, len - done);
		memcpy(chunk_ptr(st, t) + ch->off + ch->len, p + done, n);
		ch->len = (uint16_t)(ch->len + n);
		done += n;
	}
	q->bytes += done;
	return done;
}

long byteq_fill(struct usnet_stack *st, struct byteq *q, uint32_t len, usnet_fill_fn fill, void *arg,
		int *drained)
{
	struct usnet_iovec iov[BYTEQ_FILL_IOV];
	int32_t at[BYTEQ_FILL_IOV];   /* the chunk behind each iov entry */
	int32_t old_tail = q->tail;
	uint32_t offered = 0;
	int n = 0;
	if (old_tail != NIL) {
		struct chunk *ch = &st_chunks(st)[old_tail];
		uint32_t room = CHUNK_SIZE - ch->off - ch->len;
		if (room) {
			uint32_t k = min_u32(room, len);
			iov[n] = (struct usnet_iovec){ chunk_ptr(st, old_tail) + ch->off + ch->len, k };
			at[n++] = old_tail;
			offered += k;
		}
	}
	/* New chunks are linked, empty, before fill() writes them: a process
	 * killed inside fill() leaves a whole queue (empty chunks at its end
	 * hold no bytes), never a chunk owned by nobody. */
	while (offered < len && n < BYTEQ_FILL_IOV) {
		int32_t c = chunk_alloc(st);
		if (c == NIL)
			break;
		if (q->tail == NIL) q->head = c; else st_chunks(st)[q->tail].next = c;
		q->tail = c;
		uint32_t k = min_u32(CHUNK_SIZE, len - offered);
		iov[n] = (struct usnet_iovec){ chunk_ptr(st, c), k };
		at[n++] = c;
		offered += k;
	}
	*drained = 0;
	if (n == 0)
		return 0;
	long r = fill(arg, iov, n);
	uint32_t got = r > 0 ? (uint32_t)min_u64((uint64_t)r, offered) : 0;
	/* The chunks filled take their bytes; the last one holding any
	 * becomes the tail again and the empty ones after it go back. */
	struct chunk *chunks = st_chunks(st);
	int32_t last = old_tail;
	uint32_t left = got;
	for (int i = 0; i < n && left; i++) {
		uint32_t k = min_u32((uint32_t)iov[i].len, left);
		chunks[at[i]].len = (uint16_t)(chunks[at[i]].len + k);
		left -= k;
		last = at[i];
	}
	q->bytes += got;
	*drained = got < offered;
	int32_t spare = last == NIL ? q->head : chunks[last].next;
	if (last == NIL) q->head = NIL; else chunks[last].next = NIL;
	q->tail = last;
	order_barrier();   /* unlinked before freed */
	chunk_free_chain(st, spare);
	return r < 0 && got == 0 ? r : (long)got;
}

void byteq_append_chain(struct usnet_stack *st, struct byteq *q, int32_t head, uint32_t bytes)
{
	if (head == NIL)
		return;
	struct chunk *chunks = st_chunks(st);
	if (q->tail == NIL) q->head = head; else chunks[q->tail].next = head;
	int32_t t = head;
	while (chunks[t].next != NIL)
		t = chunks[t].next;
	q->tail = t;
	q->bytes += bytes;
}

void byteq_copy_out(struct usnet_stack *st, struct byteq *q, uint32_t off, uint8_t *dst, uint32_t len)
{
	const struct chunk *chunks = st_chunks(st);
	int32_t c = q->head;
	uint32_t pos = 0;
	if (q->cur != NIL && q->cur_pos <= off) {
		c = q->cur;
		pos = q->cur_pos;
	}
	while (c != NIL && off - pos >= chunks[c].len) {
		pos += chunks[c].len;
		c = chunks[c].next;
	}
	if (c != NIL) {
		q->cur = c;
		q->cur_pos = pos;
	}
	off -= pos;
	while (len && c != NIL) {
		/* Located again after each memcpy, as in byteq_append(). */
		const struct chunk *ch = &st_chunks(st)[c];
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
		struct chunk *ch = &st_chunks(st)[q->head];
		if (n < ch->len) {
			chunk_trim_front(ch, n);
			n = 0;
			break;
		}
		n -= ch->len;
		int32_t done = q->head;
		q->head = ch->next;
		order_barrier();   /* unlinked before freed (internal.h) */
		chunk_free(st, done);
	}
	if (q->head == NIL) {
		q->tail = NIL;
	} else if (q->bytes == 0) {
		/* Keep no empty chunk around: an idle socket holds no buffer. */
		int32_t rest = q->head;
		q->head = q->tail = NIL;
		order_barrier();
		chunk_free_chain(st, rest);
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
	int32_t head = q->head;
	byteq_init(q);
	order_barrier();   /* unlinked before freed (internal.h) */
	chunk_free_chain(st, head);
}

void chunk_free_list(struct usnet_stack *st, int32_t *head)
{
	int32_t rec = *head;
	*head = NIL;
	order_barrier();   /* unlinked before freed (internal.h) */
	chunk_free_records(st, rec);
}
