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

static uint64_t sock_deadline(const struct sock *s)
{
	uint64_t d = s->timer_at[0];
	for (int i = 1; i < TMR_COUNT; i++)
		if (s->timer_at[i] < d)
			d = s->timer_at[i];
	return d;
}

static void heap_swap(struct usnet_stack *st, uint32_t a, uint32_t b)
{
	int32_t x = st->heap[a], y = st->heap[b];
	st->heap[a] = y; st->socks[y].heap_pos = (int32_t)a;
	st->heap[b] = x; st->socks[x].heap_pos = (int32_t)b;
}

static uint64_t key(struct usnet_stack *st, uint32_t pos)
{
	return st->socks[st->heap[pos]].heap_at;
}

static void sift_up(struct usnet_stack *st, uint32_t pos)
{
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (key(st, parent) <= key(st, pos))
			break;
		heap_swap(st, parent, pos);
		pos = parent;
	}
}

static void sift_down(struct usnet_stack *st, uint32_t pos)
{
	for (;;) {
		uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
		if (l < st->heap_n && key(st, l) < key(st, m)) m = l;
		if (r < st->heap_n && key(st, r) < key(st, m)) m = r;
		if (m == pos)
			break;
		heap_swap(st, m, pos);
		pos = m;
	}
}

static void heap_remove(struct usnet_stack *st, int32_t s)
{
	uint32_t pos = (uint32_t)st->socks[s].heap_pos;
	st->socks[s].heap_pos = NIL;
	st->heap_n--;
	if (pos == st->heap_n)
		return;
	int32_t last = st->heap[st->heap_n];
	st->heap[pos] = last;
	st->socks[last].heap_pos = (int32_t)pos;
	sift_up(st, pos);
	sift_down(st, (uint32_t)st->socks[last].heap_pos);
}

/* Exact re-keying: used when a key is known to be stale. */
void timer_refresh(struct usnet_stack *st, int32_t s)
{
	struct sock *k = &st->socks[s];
	uint64_t d = sock_deadline(k);
	if (k->heap_pos == NIL) {
		if (d == UINT64_MAX)
			return;
		k->heap_at = d;
		st->heap[st->heap_n] = s;
		k->heap_pos = (int32_t)st->heap_n++;
		sift_up(st, (uint32_t)k->heap_pos);
		return;
	}
	if (d == UINT64_MAX) {
		heap_remove(st, s);
		return;
	}
	k->heap_at = d;
	sift_up(st, (uint32_t)k->heap_pos);
	sift_down(st, (uint32_t)k->heap_pos);
}

void timer_set(struct usnet_stack *st, int32_t s, int which, uint64_t at)
{
	struct sock *k = &st->socks[s];
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
	for (int i = 0; i < TMR_COUNT; i++)
		st->socks[s].timer_at[i] = UINT64_MAX;
	if (st->socks[s].heap_pos != NIL)
		heap_remove(st, s);
}

uint64_t timer_next(struct usnet_stack *st)
{
	return st->heap_n ? key(st, 0) : UINT64_MAX;
}

int32_t timer_pop_due(struct usnet_stack *st, uint64_t now)
{
	while (st->heap_n && key(st, 0) <= now) {
		int32_t s = st->heap[0];
		uint64_t d = sock_deadline(&st->socks[s]);
		if (d <= now)
			return s;
		timer_refresh(st, s);   /* stale key: move it to the real deadline */
	}
	return NIL;
}
