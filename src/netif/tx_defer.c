/*
 * tx defer (include/usnet/netif_wrap.h): the netif wrapper that turns the
 * stack's per-call flushes into one flush the caller makes.  Everything but flush
 * goes straight to the real netif; when the real one runs out of transmit
 * buffers or ring room, it is flushed at once (sending is what gives them
 * back), so deferring never starves a sender.
 */
#include <limits.h>

#include "usnet/netif_wrap.h"

static struct usnet_netif *lower_of(struct usnet_netif *nif)
{
	return ((struct usnet_tx_defer *)nif)->lower;
}

int usnet_tx_defer_flush(struct usnet_tx_defer *d, uint16_t q)
{
	d->queued = 0;
	return usnet_netif_flush(d->lower, q);
}

static int defer_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned max)
{
	return usnet_netif_rx_burst(lower_of(nif), q, p, max);
}

static void defer_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{
	usnet_netif_rx_release(lower_of(nif), q, p, n);
}

static int defer_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{
	struct usnet_netif *lo = lower_of(nif);
	int got = usnet_netif_tx_alloc(lo, q, p, n);
	if (got >= 0 && (unsigned)got < n) {
		/* Buffers come back once the frames holding them have left. */
		usnet_tx_defer_flush((struct usnet_tx_defer *)nif, q);
		int more = usnet_netif_tx_alloc(lo, q, p + got, n - (unsigned)got);
		if (more > 0)
			got += more;
	}
	return got;
}

static int defer_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{
	struct usnet_tx_defer *d = (struct usnet_tx_defer *)nif;
	int took = usnet_netif_tx_burst(d->lower, q, p, n);
	if (took >= 0 && (unsigned)took < n) {
		/* Ring full: let what is queued leave, then try the rest. */
		usnet_tx_defer_flush(d, q);
		int more = usnet_netif_tx_burst(d->lower, q, p + took, n - (unsigned)took);
		if (more > 0)
			took += more;
	}
	if (took > 0) {
		d->queued += (unsigned)took;
		if (d->queued >= d->max_queued)
			usnet_tx_defer_flush(d, q);
	}
	return took;
}

static void defer_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{
	usnet_netif_tx_free(lower_of(nif), q, p, n);
}

static int defer_flush(struct usnet_netif *nif, uint16_t q)
{
	/* Owed: the caller flushes the real netif (usnet_tx_defer_flush). */
	(void)nif;
	(void)q;
	return 0;
}

static int defer_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	return usnet_netif_wait_fd(lower_of(nif), q);
}

static int defer_after_fork(struct usnet_netif *nif)
{
	struct usnet_netif *lo = lower_of(nif);
	return lo->ops->after_fork ? lo->ops->after_fork(lo) : 0;
}

static void defer_close(struct usnet_netif *nif)
{
	/* The caller owns and closes the real netif. */
	(void)nif;
}

static const struct usnet_netif_ops defer_ops = {
	.rx_burst = defer_rx_burst,
	.rx_release = defer_rx_release,
	.tx_alloc = defer_tx_alloc,
	.tx_burst = defer_tx_burst,
	.tx_free = defer_tx_free,
	.flush = defer_flush,
	.wait_fd = defer_wait_fd,
	.after_fork = defer_after_fork,
	.close = defer_close,
};

void usnet_tx_defer_init(struct usnet_tx_defer *d, struct usnet_netif *lower, unsigned max_queued)
{
	d->base.ops = &defer_ops;
	d->base.info = lower->info;
	d->lower = lower;
	d->queued = 0;
	d->max_queued = max_queued ? max_queued : UINT_MAX;
}
