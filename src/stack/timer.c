/*
 * Per-socket timers.  Each socket keeps a few deadlines (retransmission or
 * persist, delayed ACK, keepalive / TIME_WAIT / FIN_WAIT_2); the earliest of
 * them orders the socket in a binary min-heap of socket indices, so finding
 * the next deadline is O(1) and rescheduling O(log n).
 *
 * The heap key is lazy: moving a deadline later (the retransmission timer
 * restarted by every ACK) leaves the key where it was, and the socket is
 * re-keyed when the stale key comes due.  Only earlier deadlines, which
 * are rarer, touch the heap.
 */
#include "internal.h"

/* The heap and the socket table, located once per operation (sifting
 * touches both at every level). */
struct heap_view {
	int32_t *heap;
	struct sock *socks;
};

static struct heap_view heap_view(struct usnet_stack *st)
{
	return (struct heap_view){ st_heap(st), st_socks(st) };
}

static void heap_swap(struct heap_view h, uint32_t a, uint32_t b)
{
	int32_t x = h.heap[a], y = h.heap[b];
	h.heap[a] = y; h.socks[y].heap_pos = (int32_t)a;
	h.heap[b] = x; h.socks[x].heap_pos = (int32_t)b;
}

static uint64_t key(struct heap_view h, uint32_t pos)
{
	return h.socks[h.heap[pos]].heap_at;
}

static void sift_up(struct heap_view h, uint32_t pos)
{
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (key(h, parent) <= key(h, pos))
			break;
		heap_swap(h, parent, pos);
		pos = parent;
	}
}

static void sift_down(struct heap_view h, uint32_t n, uint32_t pos)
{
	for (;;) {
		uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
		if (l < n && key(h, l) < key(h, m)) m = l;
		if (r < n && key(h, r) < key(h, m)) m = r;
		if (m == pos)
			break;
		heap_swap(h, m, pos);
		pos = m;
	}
}

static void heap_remove(struct usnet_stack *st, int32_t s)
{
	struct heap_view h = heap_view(st);
	uint32_t pos = (uint32_t)h.socks[s].heap_pos;
	h.socks[s].heap_pos = NIL;
	st->heap_n--;
	if (pos == st->heap_n)
		return;
	int32_t last = h.heap[st->heap_n];
	h.heap[pos] = last;
	h.socks[last].heap_pos = (int32_t)pos;
	sift_up(h, pos);
	sift_down(h, st->heap_n, (uint32_t)h.socks[last].heap_pos);
}

/* Exact re-keying: used when a key is known to be stale. */
void timer_refresh(struct usnet_stack *st, int32_t s)
{
	struct heap_view h = heap_view(st);
	struct sock *k = &h.socks[s];
	uint64_t d = sock_deadline(k);
	if (k->heap_pos == NIL) {
		if (d == UINT64_MAX)
			return;
		k->heap_at = d;
		h.heap[st->heap_n] = s;
		k->heap_pos = (int32_t)st->heap_n++;
		sift_up(h, (uint32_t)k->heap_pos);
		return;
	}
	if (d == UINT64_MAX) {
		heap_remove(st, s);
		return;
	}
	k->heap_at = d;
	sift_up(h, (uint32_t)k->heap_pos);
	sift_down(h, st->heap_n, (uint32_t)k->heap_pos);
}

void timer_set(struct usnet_stack *st, int32_t s, int which, uint64_t at)
{
	struct sock *k = sk(st, s);
	if (k->timer_at[which] == at)
		return;
	k->timer_at[which] = at;
	if (at == UINT64_MAX)
		return;   /* a cleared timer leaves a stale early key: harmless */
	if (k->heap_pos == NIL || at < k->heap_at)
		timer_refresh(st, s);
}

void timer_clear(struct usnet_stack *st, int32_t s, int which)
{
	timer_set(st, s, which, UINT64_MAX);
}

void timer_clear_all(struct usnet_stack *st, int32_t s)
{
	struct sock *k = sk(st, s);
	for (int i = 0; i < TMR_COUNT; i++)
		k->timer_at[i] = UINT64_MAX;
	if (k->heap_pos != NIL)
		heap_remove(st, s);
}

uint64_t timer_next(struct usnet_stack *st)
{
	return st->heap_n ? key(heap_view(st), 0) : UINT64_MAX;
}

int32_t timer_pop_due(struct usnet_stack *st, uint64_t now)
{
	struct heap_view h = heap_view(st);
	while (st->heap_n && key(h, 0) <= now) {
		int32_t s = h.heap[0];
		uint64_t d = sock_deadline(&h.socks[s]);
		if (d <= now)
			return s;
		timer_refresh(st, s);   /* stale key: move it to the real deadline */
	}
	return NIL;
}
