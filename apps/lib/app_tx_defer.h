/*
 * Deferred transmit kicks for the native runtime (internal to apps/lib).
 *
 * The stack flushes its netif at the end of every API call, so an
 * application answering 30 requests in one pass of its loop would make 30
 * transmit system calls (one sendto() per frame on AF_XDP).  The runtime
 * hands the stack this wrapper instead of the real netif: frames go to the
 * real one's rings at once, but a flush only notes that one is owed, and the
 * runtime's loop makes the real flush once per pass (usnet_app_poll() and
 * usnet_app_flush()), so one system call carries every frame of the pass.
 */
#ifndef APP_TX_DEFER_H
#define APP_TX_DEFER_H

#include "usnet/netif.h"

struct app_tx_defer {
	struct usnet_netif base;    /* what the stack sees (ops below, lower's info) */
	struct usnet_netif *lower;  /* the real netif */
	unsigned queued;            /* frames given to lower since its last flush */
	unsigned max_queued;        /* flush at once when this many wait */
};

/* Wrap `lower`: d->base can then be given to the stack as its netif.  Once
 * `max_queued` frames wait, they leave at once, so that a long pass does not
 * hold the first replies back (the peer can work on them meanwhile). */
void app_tx_defer_init(struct app_tx_defer *d, struct usnet_netif *lower, unsigned max_queued);

/* Flush the real netif's queue `q` now. */
int app_tx_defer_flush(struct app_tx_defer *d, uint16_t q);

#endif /* APP_TX_DEFER_H */
