/*
 * impair wrapper: seeded loss, reordering, duplication, corruption and delay
 * on any netif, for each direction (spec grammar in include/usnet/netif_wrap.h).
 *
 * Each direction draws from its own random stream (splitmix64 seeded from
 * the spec's seed), the same number of draws per frame whatever the
 * outcome, so the same seed and the same frames give the same decisions.
 *
 * Frames that are held (reordered, delayed, duplicates, or transmit frames
 * the wrapped netif could not take yet) are copied into the wrapper's own
 * buffers and the wrapped netif's buffer is given back at once, so holding
 * never starves the wrapped netif.  Received frames we hand out carry either
 * the wrapped netif's id or ours (top bit set).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "impair_spec.h"
#include "netif_internal.h"
#include "usnet/netif_wrap.h"

#define IMP_HOLD_MAX     4096u             /* held frames per direction */
#define IMP_HOLD_BYTES   (64u << 20)       /* cap on one direction's hold memory */
#define IMP_REORDER_GAP  2u                /* later frames that overtake a reordered one */
#define IMP_REORDER_MAX_NS 1000000ull      /* ... or this long, whichever first */
#define IMP_OWN_ID       (1ull << 63)
#define IMP_BATCH        64u

enum { DIR_RX = 0, DIR_TX = 1 };

struct imp_held {
	uint64_t due_ns;   /* leaves at or after this time... */
	uint32_t gap;      /* ...or once this many later frames passed (0: time only) */
	uint32_t buf;      /* own buffer index */
	uint32_t len;
	uint32_t flags;
	uint16_t csum_start, csum_offset;
	uint16_t queue;
	bool reordered;    /* gap counts */
};

struct imp_dir {
	struct impair_dir_spec spec;
	uint64_t rng;
	bool active;          /* any impairment configured */
	uint32_t cap;         /* own buffers (= max held) */
	uint8_t *mem;         /* cap x frame_size, allocated on first hold */
	uint32_t *free_stack;
	uint32_t nfree;
	struct imp_held *held;  /* in arrival order */
	uint32_t nheld;
	struct usnet_impair_stats st;
};

struct impair_netif {
	struct usnet_netif base;
	struct usnet_netif *lower;
	struct imp_dir dir[2];
	uint32_t frame_size;
	int timer_fd;
	int *epoll_fd;        /* per queue: lower's wait fd + timer_fd */
	uint64_t timer_armed; /* due time the timer is set for (0: none) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* What happens to one frame. */
struct imp_verdict {
	bool lose, corrupt, dup, reorder;
	uint64_t corrupt_bit; /* raw draw: bit index modulo the frame's bits */
};

static struct imp_verdict imp_decide(struct imp_dir *d)
{
	struct imp_verdict v;
	/* Always five draws, so one frame's outcome never shifts the next's. */
	v.lose = rng_unit(&d->rng) < d->spec.loss;
	v.corrupt = rng_unit(&d->rng) < d->spec.corrupt;
	v.dup = rng_unit(&d->rng) < d->spec.dup;
	v.reorder = rng_unit(&d->rng) < d->spec.reorder;
	v.corrupt_bit = rng_next(&d->rng);
	return v;
}

/* Damage a frame so a receiver can tell: offloaded checksums are computed
 * first (else the damage would be invisible behind "checksum OK"). */
static void imp_corrupt(struct usnet_pkt *p, uint64_t draw)
{
	if (p->flags & (USNET_PKT_TX_CSUM_PARTIAL | USNET_PKT_RX_CSUM_PARTIAL))
		netif_csum_fill(p->data, p->len, p->csum_start, p->csum_offset);
	p->flags &= ~(uint32_t)(USNET_PKT_TX_CSUM_PARTIAL | USNET_PKT_RX_CSUM_PARTIAL | USNET_PKT_RX_CSUM_OK);
	if (p->len == 0)
		return;
	uint64_t bit = draw % ((uint64_t)p->len * 8);
	p->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

static int imp_dir_alloc(struct imp_dir *d, uint32_t frame_size)
{
	if (d->mem)
		return 0;
	d->mem = malloc((size_t)d->cap * frame_size);
	d->free_stack = malloc(sizeof(uint32_t) * d->cap);
	d->held = malloc(sizeof(struct imp_held) * d->cap);
	if (!d->mem || !d->free_stack || !d->held) {
		free(d->mem);
		free(d->free_stack);
		free(d->held);
		d->mem = NULL;
		d->free_stack = NULL;
		d->held = NULL;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < d->cap; i++)
		d->free_stack[i] = d->cap - 1 - i;
	d->nfree = d->cap;
	return 0;
}

static uint8_t *imp_buf(struct impair_netif *im, struct imp_dir *d, uint32_t b)
{
	return d->mem + (size_t)b * im->frame_size;
}

/* Copy a frame into the hold queue.  false when the queue is full (the
 * frame is then lost: counted as overflow). */
static bool imp_hold(struct impair_netif *im, struct imp_dir *d, const struct usnet_pkt *p,
		     uint16_t q, uint64_t due, uint32_t gap)
{
	if (imp_dir_alloc(d, im->frame_size) || d->nfree == 0 || p->len > im->frame_size) {
		d->st.overflow++;
		return false;
	}
	uint32_t b = d->free_stack[--d->nfree];
	memcpy(imp_buf(im, d, b), p->data, p->len);
	d->held[d->nheld++] = (struct imp_held){ due, gap, b, p->len, p->flags, p->csum_start,
						 p->csum_offset, q, gap != 0 };
	return true;
}

/* A frame passed: reordered frames waiting for it count down. */
static void imp_passed(struct imp_dir *d, uint16_t q)
{
	for (uint32_t i = 0; i < d->nheld; i++)
		if (d->held[i].gap && d->held[i].queue == q)
			d->held[i].gap--;
}

static bool imp_due(const struct imp_held *h, uint64_t now)
{
	return now >= h->due_ns || (h->reordered && h->gap == 0);
}

static void imp_unhold(struct imp_dir *d, uint32_t i)
{
	memmove(&d->held[i], &d->held[i + 1], (d->nheld - i - 1) * sizeof d->held[0]);
	d->nheld--;
}

/* Point the timer at the earliest held frame, so a sleeping caller wakes. */
static void imp_arm_timer(struct impair_netif *im)
{
	uint64_t first = 0;
	for (int di = 0; di < 2; di++) {
		struct imp_dir *d = &im->dir[di];
		for (uint32_t i = 0; i < d->nheld; i++) {
			uint64_t due = d->held[i].due_ns ? d->held[i].due_ns : 1;
			if (!first || due < first)
				first = due;
		}
	}
	if (first == im->timer_armed)
		return;
	struct itimerspec its = { 0 };
	if (first) {
		its.it_value.tv_sec = (time_t)(first / 1000000000ull);
		its.it_value.tv_nsec = (long)(first % 1000000000ull);
	}
	timerfd_settime(im->timer_fd, first ? TFD_TIMER_ABSTIME : 0, &its, NULL);
	if (!first) {
		/* Disarming keeps an expiry that happened meanwhile: drain it,
		 * or the wait fd would stay readable with nothing to do. */
		uint64_t ticks;
		(void)!read(im->timer_fd, &ticks, sizeof ticks);
	}
	im->timer_armed = first;
}

/* ---- transmit ---------------------------------------------------------- */

/* Send held transmit frames that are due, in order, as far as the wrapped
 * netif takes them. */
static void imp_tx_release_due(struct impair_netif *im, uint16_t q, uint64_t now)
{
	struct imp_dir *d = &im->dir[DIR_TX];
	uint32_t idx[IMP_BATCH];
	unsigned m = 0;
	for (uint32_t i = 0; i < d->nheld && m < IMP_BATCH; i++)
		if (d->held[i].queue == q && imp_due(&d->held[i], now))
			idx[m++] = i;
	if (m == 0)
		return;
	struct usnet_pkt pk[IMP_BATCH];
	int got = usnet_netif_tx_alloc(im->lower, q, pk, m);
	if (got <= 0)
		return;
	for (int k = 0; k < got; k++) {
		struct imp_held *h = &d->held[idx[k]];
		memcpy(pk[k].data, imp_buf(im, d, h->buf), h->len);
		pk[k].len = h->len;
		pk[k].flags = h->flags & USNET_PKT_TX_CSUM_PARTIAL;
		pk[k].csum_start = h->csum_start;
		pk[k].csum_offset = h->csum_offset;
		pk[k].queue = q;
	}
	int sent = usnet_netif_tx_burst(im->lower, q, pk, (unsigned)got);
	if (sent < 0)
		sent = 0;
	if (sent < got)
		usnet_netif_tx_free(im->lower, q, pk + sent, (unsigned)(got - sent));
	/* Remove the sent ones (indices ascend: go backwards). */
	for (int k = sent - 1; k >= 0; k--) {
		d->free_stack[d->nfree++] = d->held[idx[k]].buf;
		imp_unhold(d, idx[k]);
	}
	/* Released from a timer or a receive call, nobody else flushes. */
	if (sent > 0)
		usnet_netif_flush(im->lower, q);
}

/* Decide one frame's fate in direction d and apply it: corrupt it in place,
 * hold a duplicate, or hold it for later (reorder, delay).  Returns 1 when
 * the frame goes on now, 0 when the caller must give its buffer back (lost,
 * or a copy held for later). */
static int imp_apply(struct impair_netif *im, struct imp_dir *d, struct usnet_pkt *p,
		     uint16_t q, uint64_t now)
{
	struct imp_verdict v = imp_decide(d);
	d->st.frames++;
	if (v.lose) {
		d->st.lost++;
		return 0;
	}
	if (v.corrupt) {
		d->st.corrupted++;
		imp_corrupt(p, v.corrupt_bit);
	}
	if (v.dup && imp_hold(im, d, p, q, 0, 0))
		d->st.duplicated++;
	if (v.reorder || d->spec.delay_ns) {
		uint64_t due = now + (v.reorder ? IMP_REORDER_MAX_NS : 0) + d->spec.delay_ns;
		if (v.reorder)
			d->st.reordered++;
		else
			d->st.delayed++;
		imp_hold(im, d, p, q, due, v.reorder ? IMP_REORDER_GAP : 0);
		return 0;
	}
	return 1;
}

static int imp_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct impair_netif *im = (struct impair_netif *)nif;
	struct imp_dir *d = &im->dir[DIR_TX];
	if (!d->active && d->nheld == 0)
		return usnet_netif_tx_burst(im->lower, q, pkts, n);
	uint64_t now = now_ns();
	imp_tx_release_due(im, q, now);
	if (n > IMP_BATCH)
		n = IMP_BATCH;
	struct usnet_pkt pass[IMP_BATCH];
	unsigned npass = 0;
	for (unsigned i = 0; i < n; i++) {
		struct usnet_pkt *p = &pkts[i];
		if (!imp_apply(im, d, p, q, now)) {
			usnet_netif_tx_free(im->lower, q, p, 1);
			continue;
		}
		pass[npass++] = *p;
		imp_passed(d, q);
	}
	if (npass) {
		int sent = usnet_netif_tx_burst(im->lower, q, pass, npass);
		if (sent < 0)
			sent = 0;
		/* We told the caller we took them: hold what the wrapped netif
		 * refused, to send later. */
		for (unsigned i = (unsigned)sent; i < npass; i++) {
			imp_hold(im, d, &pass[i], q, 0, 0);
			usnet_netif_tx_free(im->lower, q, &pass[i], 1);
		}
	}
	imp_tx_release_due(im, q, now);
	imp_arm_timer(im);
	return (int)n;
}

static int imp_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	return usnet_netif_tx_alloc(((struct impair_netif *)nif)->lower, q, pkts, n);
}

static void imp_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	usnet_netif_tx_free(((struct impair_netif *)nif)->lower, q, pkts, n);
}

static int imp_flush(struct usnet_netif *nif, uint16_t q)
{
	struct impair_netif *im = (struct impair_netif *)nif;
	if (im->dir[DIR_TX].nheld) {
		imp_tx_release_due(im, q, now_ns());
		imp_arm_timer(im);
	}
	return usnet_netif_flush(im->lower, q);
}

/* ---- receive ----------------------------------------------------------- */

static void imp_out_held(struct impair_netif *im, struct imp_dir *d, uint32_t i, struct usnet_pkt *p)
{
	struct imp_held *h = &d->held[i];
	p->data = imp_buf(im, d, h->buf);
	p->len = h->len;
	p->flags = h->flags;
	p->csum_start = h->csum_start;
	p->csum_offset = h->csum_offset;
	p->queue = h->queue;
	p->id = IMP_OWN_ID | h->buf;
	imp_unhold(d, i);
}

static int imp_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max)
{
	struct impair_netif *im = (struct impair_netif *)nif;
	struct imp_dir *d = &im->dir[DIR_RX];
	if (!d->active && d->nheld == 0 && im->dir[DIR_TX].nheld == 0)
		return usnet_netif_rx_burst(im->lower, q, pkts, max);
	uint64_t now = now_ns();
	if (im->timer_armed) {
		/* Expired (one-shot): it is no longer armed; re-armed below
		 * from what is still held. */
		uint64_t ticks;
		if (read(im->timer_fd, &ticks, sizeof ticks) == (ssize_t)sizeof ticks)
			im->timer_armed = 0;
	}
	if (im->dir[DIR_TX].nheld)
		imp_tx_release_due(im, q, now);

	unsigned out = 0;
	for (uint32_t i = 0; i < d->nheld && out < max;) {
		if (d->held[i].queue == q && imp_due(&d->held[i], now))
			imp_out_held(im, d, i, &pkts[out++]);
		else
			i++;
	}
	if (out < max) {
		struct usnet_pkt in[IMP_BATCH];
		unsigned want = max - out < IMP_BATCH ? max - out : IMP_BATCH;
		int n = usnet_netif_rx_burst(im->lower, q, in, want);
		if (n < 0 && out == 0) {
			imp_arm_timer(im);
			return n;
		}
		for (int i = 0; i < n; i++) {
			struct usnet_pkt *p = &in[i];
			if (!imp_apply(im, d, p, q, now)) {
				usnet_netif_rx_release(im->lower, q, p, 1);
				continue;
			}
			pkts[out++] = *p; /* out <= i + earlier held ones: stays within max */
			imp_passed(d, q);
		}
		/* Duplicates (due at once) follow right away when room is left. */
		for (uint32_t i = 0; i < d->nheld && out < max;) {
			if (d->held[i].queue == q && d->held[i].due_ns == 0 && d->held[i].gap == 0)
				imp_out_held(im, d, i, &pkts[out++]);
			else
				i++;
		}
	}
	imp_arm_timer(im);
	return (int)out;
}

static void imp_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct impair_netif *im = (struct impair_netif *)nif;
	struct imp_dir *d = &im->dir[DIR_RX];
	struct usnet_pkt lower[IMP_BATCH];
	unsigned nl = 0;
	for (unsigned i = 0; i < n; i++) {
		if (pkts[i].id & IMP_OWN_ID) {
			uint64_t b = pkts[i].id & ~IMP_OWN_ID;
			if (b < d->cap && d->nfree < d->cap)
				d->free_stack[d->nfree++] = (uint32_t)b;
			continue;
		}
		lower[nl++] = pkts[i];
		if (nl == IMP_BATCH) {
			usnet_netif_rx_release(im->lower, q, lower, nl);
			nl = 0;
		}
	}
	if (nl)
		usnet_netif_rx_release(im->lower, q, lower, nl);
}

/* Our epoll fd when the wrapped netif has a wait fd for q.  When it has
 * none (dpdk), neither have we: an fd that only covered our timer would let
 * a caller sleep through received frames, so the caller must poll, which
 * also drives our held frames out. */
static int imp_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	struct impair_netif *im = (struct impair_netif *)nif;
	if (q >= im->base.info.nqueues || usnet_netif_wait_fd(im->lower, q) < 0)
		return -1;
	return im->epoll_fd[q];
}

static int imp_after_fork(struct usnet_netif *nif)
{
	struct usnet_netif *lower = ((struct impair_netif *)nif)->lower;
	return lower->ops->after_fork ? lower->ops->after_fork(lower) : 0;
}

static void imp_close(struct usnet_netif *nif)
{
	struct impair_netif *im = (struct impair_netif *)nif;
	im->lower->ops->close(im->lower);
	for (unsigned q = 0; q < im->base.info.nqueues; q++)
		if (im->epoll_fd[q] >= 0)
			close(im->epoll_fd[q]);
	free(im->epoll_fd);
	if (im->timer_fd >= 0)
		close(im->timer_fd);
	for (int di = 0; di < 2; di++) {
		free(im->dir[di].mem);
		free(im->dir[di].free_stack);
		free(im->dir[di].held);
	}
	free(im);
}

static const struct usnet_netif_ops imp_ops = {
	.rx_burst = imp_rx_burst,
	.rx_release = imp_rx_release,
	.tx_alloc = imp_tx_alloc,
	.tx_burst = imp_tx_burst,
	.tx_free = imp_tx_free,
	.flush = imp_flush,
	.wait_fd = imp_wait_fd,
	.after_fork = imp_after_fork,
	.close = imp_close,
};

struct usnet_netif *netif_impair_lower(struct usnet_netif *nif)
{
	return nif && nif->ops == &imp_ops ? ((struct impair_netif *)nif)->lower : NULL;
}

int usnet_impair_stats(struct usnet_netif *nif, struct usnet_impair_stats stats[2])
{
	if (!nif || nif->ops != &imp_ops)
		return -EINVAL;
	struct impair_netif *im = (struct impair_netif *)nif;
	stats[0] = im->dir[DIR_RX].st;
	stats[1] = im->dir[DIR_TX].st;
	return 0;
}

int usnet_impair_wrap(struct usnet_netif *lower, const char *spec, struct usnet_netif **out,
		      char *err, size_t errlen)
{
	struct impair_spec sp;
	int r = impair_spec_parse(spec, &sp, err, errlen);
	if (r)
		return r;
	if (!lower || !out)
		return netif_err(err, errlen, EINVAL, "impair: nothing to wrap");
	struct impair_netif *im = calloc(1, sizeof *im);
	if (!im)
		return netif_err(err, errlen, ENOMEM, "impair: out of memory");
	uint16_t nq = lower->info.nqueues ? lower->info.nqueues : 1;
	im->epoll_fd = malloc(sizeof(int) * nq);
	im->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!im->epoll_fd || im->timer_fd < 0) {
		r = netif_err(err, errlen, im->epoll_fd ? errno : ENOMEM, "impair: cannot set up its timer");
		if (im->timer_fd >= 0)
			close(im->timer_fd);
		free(im->epoll_fd);
		free(im);
		return r;
	}
	im->base.ops = &imp_ops;
	im->base.info = lower->info;
	/* Held frames live in this process's memory. */
	im->base.info.caps &= ~(uint32_t)USNET_NETIF_CAP_SHARED;
	im->base.info.nqueues = nq;
	im->lower = lower;
	im->frame_size = lower->info.frame_size;
	for (int di = 0; di < 2; di++) {
		struct imp_dir *d = &im->dir[di];
		d->spec = sp.dir[di];
		d->rng = sp.seed * 2 + (uint64_t)di;
		d->active = d->spec.loss > 0 || d->spec.reorder > 0 || d->spec.dup > 0 ||
			    d->spec.corrupt > 0 || d->spec.delay_ns > 0;
		uint32_t cap = im->frame_size ? IMP_HOLD_BYTES / im->frame_size : IMP_HOLD_MAX;
		d->cap = cap < IMP_HOLD_MAX ? (cap ? cap : 1) : IMP_HOLD_MAX;
	}
	for (unsigned q = 0; q < nq; q++)
		im->epoll_fd[q] = -1;
	for (unsigned q = 0; q < nq; q++) {
		int ep = epoll_create1(EPOLL_CLOEXEC);
		im->epoll_fd[q] = ep;
		if (ep < 0) {
			r = netif_err(err, errlen, errno, "impair: epoll_create1 failed");
			goto fail;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
		epoll_ctl(ep, EPOLL_CTL_ADD, im->timer_fd, &ev);
		int lfd = usnet_netif_wait_fd(lower, (uint16_t)q);
		if (lfd >= 0) {
			ev.data.u32 = 1;
			epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
		}
	}
	*out = &im->base;
	return 0;
fail:
	/* Do not close the wrapped netif: the caller still owns it. */
	for (unsigned q = 0; q < nq; q++)
		if (im->epoll_fd[q] >= 0)
			close(im->epoll_fd[q]);
	free(im->epoll_fd);
	close(im->timer_fd);
	free(im);
	return r;
}
