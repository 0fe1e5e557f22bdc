/*
 * ARP sharing between the queues of one netif (see arp_share.h).  Copies wait
 * in a small per-queue table and are handed out by that queue's rx_burst
 * ahead of the frames of the wrapped netif; their pkt.id has COPY_ID set so
 * that rx_release can tell them apart.  A queue that sleeps on its wait fd
 * sees a copy on its next poll, which is enough for ARP (its requester
 * retries).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arp_share.h"

#define COPY_ID (1ull << 63)
#define COPY_SLOTS 32
#define COPY_BYTES 128        /* an ARP frame is 42 bytes (60 padded) */
#define MAX_QUEUES 64

enum slot_state { SLOT_FREE, SLOT_READY, SLOT_LENT };

struct copy_slot {
	enum slot_state state;
	uint32_t len;
	uint8_t data[COPY_BYTES];
};

struct queue_copies {
	pthread_mutex_t lock;
	struct copy_slot slot[COPY_SLOTS];
};

struct arp_share {
	struct usnet_netif base;
	struct usnet_netif *inner;
	struct queue_copies q[MAX_QUEUES];
};

static int is_arp(const struct usnet_pkt *p)
{
	return p->len >= 14 && p->data[12] == 0x08 && p->data[13] == 0x06;
}

/* Queue a copy of an ARP frame for every queue but `from`. */
static void share_frame(struct arp_share *a, uint16_t from, const struct usnet_pkt *p)
{
	uint32_t len = p->len < COPY_BYTES ? p->len : COPY_BYTES;
	for (uint16_t q = 0; q < a->base.info.nqueues; q++) {
		if (q == from)
			continue;
		struct queue_copies *c = &a->q[q];
		pthread_mutex_lock(&c->lock);
		for (unsigned i = 0; i < COPY_SLOTS; i++) {
			if (c->slot[i].state == SLOT_FREE) {
				memcpy(c->slot[i].data, p->data, len);
				c->slot[i].len = len;
				c->slot[i].state = SLOT_READY;
				break;
			}
		}
		pthread_mutex_unlock(&c->lock);
	}
}

static int as_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max)
{
	struct arp_share *a = (struct arp_share *)nif;
	unsigned n = 0;
	if (q < MAX_QUEUES) {
		struct queue_copies *c = &a->q[q];
		pthread_mutex_lock(&c->lock);
		for (unsigned i = 0; i < COPY_SLOTS && n < max; i++) {
			if (c->slot[i].state != SLOT_READY)
				continue;
			c->slot[i].state = SLOT_LENT;
			memset(&pkts[n], 0, sizeof pkts[n]);
			pkts[n].data = c->slot[i].data;
			pkts[n].len = c->slot[i].len;
			pkts[n].queue = q;
			pkts[n].id = COPY_ID | i;
			n++;
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (n == max)
		return (int)n;
	int got = usnet_netif_rx_burst(a->inner, q, pkts + n, max - n);
	if (got < 0)
		return n ? (int)n : got;
	for (int i = 0; i < got; i++)
		if (is_arp(&pkts[n + (unsigned)i]))
			share_frame(a, q, &pkts[n + (unsigned)i]);
	return (int)n + got;
}

static void as_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct arp_share *a = (struct arp_share *)nif;
	unsigned start = 0;
	/* Hand runs of the inner netif's frames back together. */
	for (unsigned i = 0; i <= n; i++) {
		if (i < n && !(pkts[i].id & COPY_ID))
			continue;
		if (i > start)
			usnet_netif_rx_release(a->inner, q, pkts + start, i - start);
		start = i + 1;
		if (i < n && q < MAX_QUEUES) {
			struct queue_copies *c = &a->q[q];
			pthread_mutex_lock(&c->lock);
			c->slot[pkts[i].id & (COPY_SLOTS - 1)].state = SLOT_FREE;
			pthread_mutex_unlock(&c->lock);
		}
	}
}

static int as_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	return usnet_netif_tx_alloc(((struct arp_share *)nif)->inner, q, pkts, n);
}

static int as_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	return usnet_netif_tx_burst(((struct arp_share *)nif)->inner, q, pkts, n);
}

static void as_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	usnet_netif_tx_free(((struct arp_share *)nif)->inner, q, pkts, n);
}

static int as_flush(struct usnet_netif *nif, uint16_t q)
{
	return usnet_netif_flush(((struct arp_share *)nif)->inner, q);
}

static int as_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	return usnet_netif_wait_fd(((struct arp_share *)nif)->inner, q);
}

static void as_close(struct usnet_netif *nif)
{
	arp_share_free(nif);
}

static const struct usnet_netif_ops arp_share_ops = {
	.rx_burst = as_rx_burst,
	.rx_release = as_rx_release,
	.tx_alloc = as_tx_alloc,
	.tx_burst = as_tx_burst,
	.tx_free = as_tx_free,
	.flush = as_flush,
	.wait_fd = as_wait_fd,
	.after_fork = NULL,
	.close = as_close,
};

struct usnet_netif *arp_share_wrap(struct usnet_netif *inner)
{
	struct arp_share *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->base.ops = &arp_share_ops;
	a->base.info = inner->info;
	if (a->base.info.nqueues > MAX_QUEUES)
		a->base.info.nqueues = MAX_QUEUES;
	a->inner = inner;
	for (unsigned q = 0; q < MAX_QUEUES; q++)
		pthread_mutex_init(&a->q[q].lock, NULL);
	return &a->base;
}

void arp_share_free(struct usnet_netif *nif)
{
	struct arp_share *a = (struct arp_share *)nif;
	for (unsigned q = 0; q < MAX_QUEUES; q++)
		pthread_mutex_destroy(&a->q[q].lock);
	free(a);
}
