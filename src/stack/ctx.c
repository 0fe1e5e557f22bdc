/*
 * Transmission batching for one API call: frame buffers are borrowed from
 * the netif a few at a time, filled, collected, and handed over in one
 * tx_burst + flush when the call ends (or when the batch is full).
 */
#include "internal.h"

void ctx_init(struct net_ctx *c, struct usnet_stack *st, struct usnet_io *io, uint64_t now)
{
	c->st = st;
	c->io = io;
	c->now = now;
	c->ntx = 0;
	c->nspare = 0;
	c->frame_size = 0;
	c->tx_frames_at_start = st->stats.tx_frames;
	c->batching = 0;
	c->looping = 0;
	c->ip_ttl = c->ip_tos = 0;
	c->rx_tos = 0;
	c->rx_src6 = c->rx_dst6 = NULL;
	c->nack = 0;
	if (io && io->netif) {
		c->frame_size = io->netif->info.frame_size;
		if (c->frame_size == 0 || c->frame_size > st->cfg.mtu + ETH_HLEN)
			c->frame_size = st->cfg.mtu + ETH_HLEN;
	}
}

static void tx_send_batch(struct net_ctx *c)
{
	if (c->ntx == 0)
		return;
	int n = usnet_netif_tx_burst(c->io->netif, c->io->queue, c->tx, c->ntx);
	if (n < 0)
		n = 0;
	if ((unsigned)n < c->ntx) {
		c->st->stats.tx_no_buffer += c->ntx - (unsigned)n;
		c->st->stats.tx_frames -= c->ntx - (unsigned)n;
		usnet_netif_tx_free(c->io->netif, c->io->queue, c->tx + n, c->ntx - (unsigned)n);
	}
	c->ntx = 0;
}

struct usnet_pkt *tx_get(struct net_ctx *c)
{
	if (!c->io || !c->io->netif || c->frame_size < ETH_HLEN + 60) {
		c->st->stats.tx_no_buffer++;
		return NULL;
	}
	if (c->ntx == TX_BATCH)
		tx_send_batch(c);
	if (c->nspare == 0) {
		/* One buffer for the first frame of a call (most calls send a
		 * single ACK or reply), then a few at a time. */
		unsigned want = TX_BATCH - c->ntx;
		unsigned cap = (c->ntx == 0 && c->st->stats.tx_frames == c->tx_frames_at_start) ? 1 : 8;
		if (want > cap) want = cap;
		int n = usnet_netif_tx_alloc(c->io->netif, c->io->queue, c->spare, want);
		if (n <= 0) {
			/* Free what is queued (sending it may release buffers) and retry once. */
			tx_send_batch(c);
			n = usnet_netif_tx_alloc(c->io->netif, c->io->queue, c->spare, 1);
			if (n <= 0) {
				c->st->stats.tx_no_buffer++;
				return NULL;
			}
		}
		c->nspare = (unsigned)n;
	}
	/* Hand out the last spare; the slot in tx[] is where it will sit. */
	struct usnet_pkt *p = &c->tx[c->ntx];
	*p = c->spare[--c->nspare];
	p->flags = 0;
	p->len = 0;
	p->csum_start = 0;
	p->csum_offset = 0;
	p->queue = c->io->queue;
	return p;
}

void tx_put(struct net_ctx *c, struct usnet_pkt *p)
{
	/* p is always &c->tx[c->ntx] (tx_get's slot). */
	(void)p;
	c->ntx++;
	c->st->stats.tx_frames++;
}

void tx_unget(struct net_ctx *c, struct usnet_pkt *p)
{
	c->spare[c->nspare++] = *p;
}

void ctx_flush(struct net_ctx *c)
{
	if (!c->io || !c->io->netif)
		return;
	if (loop_pending(c->st) && !c->looping)
		loop_deliver(c);
	int sent = c->ntx > 0;
	tx_send_batch(c);
	if (c->nspare) {
		usnet_netif_tx_free(c->io->netif, c->io->queue, c->spare, c->nspare);
		c->nspare = 0;
	}
	if (sent)
		usnet_netif_flush(c->io->netif, c->io->queue);
}
