/*
 * Every queue sees every ARP frame (netif_internal.h, "ARP for every queue").
 *
 * With several queues each stack instance keeps its own neighbour table, but
 * the device (RSS, AF_PACKET fanout, the XDP program) hands an ARP frame to
 * one queue only.  The queue that receives one copies it into a small
 * single-producer single-consumer ring towards each other queue; a queue's
 * rx_burst lends what waits for it before its own frames.  ARP is rare, so
 * rings are tiny and a full one drops (ARP retries).  The rings and the
 * lent copies live in the backend's shm region, as offsets from one header
 * (struct arp_share_shared), so forked children and attached processes that
 * map the region anywhere share them; each process opens its own handle.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netif_internal.h"

#define ARP_RING_SLOTS 8  /* per (from, to) pair: a power of two */
#define ARP_LEND_SLOTS 16 /* frames a queue may hold lent at once */
#define ARP_FRAME_MAX 60  /* Ethernet + ARP for IPv4, padded to the minimum */
#define ETH_P_ARP_BE_HI 0x08
#define ETH_P_ARP_BE_LO 0x06

struct arp_slot {
	uint32_t len;
	uint8_t data[ARP_FRAME_MAX];
};

/* From one queue to another; head written by the producer, tail by the
 * consumer. */
struct arp_ring {
	uint32_t head, tail;
	struct arp_slot slot[ARP_RING_SLOTS];
};

/* Frames a consumer queue has lent to its user. */
struct arp_lend {
	uint32_t pending; /* frames published towards this queue, not yet taken */
	uint8_t lent[ARP_LEND_SLOTS];
	struct arp_slot buf[ARP_LEND_SLOTS];
};

/* In the region: where the lend and ring arrays are, from the header. */
struct arp_share_shared {
	uint32_t magic;
	uint16_t nq;
	uint64_t lend_off;  /* struct arp_lend [nq] */
	uint64_t rings_off; /* struct arp_ring [nq * nq], [from * nq + to] */
	uint64_t size;      /* bytes from the header to the end of the rings */
};

#define ARP_SHARE_MAGIC 0x50524155u /* "UARP" */

/* A process's handle: its pointers into its own mapping of the region. */
struct netif_arp_share {
	uint16_t nq;
	struct arp_lend *lend;  /* [nq] */
	struct arp_ring *rings; /* [from * nq + to] */
};

static size_t arp_align(size_t x)
{
	return (x + 63) & ~(size_t)63;
}

size_t netif_arp_share_size(uint16_t nq)
{
	return 64 + arp_align(sizeof(struct arp_share_shared)) + arp_align(sizeof(struct arp_lend) * nq) +
	       sizeof(struct arp_ring) * nq * nq;
}

size_t netif_arp_share_create(struct netif_shm_region *r, uint16_t nq)
{
	if (nq < 2)
		return NETIF_SHM_NONE;
	size_t lend_off = arp_align(sizeof(struct arp_share_shared));
	size_t rings_off = lend_off + arp_align(sizeof(struct arp_lend) * nq);
	size_t size = rings_off + sizeof(struct arp_ring) * nq * nq;
	size_t off = netif_shm_region_alloc(r, size);
	if (off == NETIF_SHM_NONE)
		return NETIF_SHM_NONE;
	struct arp_share_shared *h = netif_shm_at(r, off);
	*h = (struct arp_share_shared){ .magic = ARP_SHARE_MAGIC, .nq = nq, .lend_off = lend_off,
					.rings_off = rings_off, .size = size };
	return off;
}

struct netif_arp_share *netif_arp_share_open(struct netif_shm_region *r, size_t off)
{
	if (off == NETIF_SHM_NONE || r->size < sizeof(struct arp_share_shared) ||
	    off > r->size - sizeof(struct arp_share_shared))
		return NULL;
	const struct arp_share_shared *h = netif_shm_at(r, off);
	/* What an attached process maps was written by another: check it
	 * describes arrays inside the region. */
	if (h->magic != ARP_SHARE_MAGIC || h->nq < 2 || h->size > r->size - off ||
	    h->lend_off > h->size || sizeof(struct arp_lend) * h->nq > h->size - h->lend_off ||
	    h->rings_off > h->size || sizeof(struct arp_ring) * h->nq * h->nq > h->size - h->rings_off)
		return NULL;
	struct netif_arp_share *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	s->nq = h->nq;
	s->lend = (struct arp_lend *)((uint8_t *)netif_shm_at(r, off) + h->lend_off);
	s->rings = (struct arp_ring *)((uint8_t *)netif_shm_at(r, off) + h->rings_off);
	return s;
}

void netif_arp_share_free(struct netif_arp_share *s)
{
	free(s);
}

static bool is_arp(const struct usnet_pkt *p)
{
	const uint8_t *d = p->data;
	return p->len >= 42 && p->len <= ARP_FRAME_MAX && d[12] == ETH_P_ARP_BE_HI && d[13] == ETH_P_ARP_BE_LO;
}

void netif_arp_share_publish(struct netif_arp_share *s, uint16_t from, const struct usnet_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!is_arp(&pkts[i]))
			continue;
		for (uint16_t to = 0; to < s->nq; to++) {
			if (to == from)
				continue;
			struct arp_ring *r = &s->rings[(size_t)from * s->nq + to];
			uint32_t head = r->head, tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
			if (head - tail >= ARP_RING_SLOTS)
				continue; /* full: ARP retries */
			struct arp_slot *sl = &r->slot[head % ARP_RING_SLOTS];
			sl->len = pkts[i].len;
			memcpy(sl->data, pkts[i].data, pkts[i].len);
			__atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
			__atomic_fetch_add(&s->lend[to].pending, 1, __ATOMIC_RELEASE);
		}
	}
}

unsigned netif_arp_share_take(struct netif_arp_share *s, uint16_t to, struct usnet_pkt *pkts, unsigned max)
{
	struct arp_lend *l = &s->lend[to];
	if (__builtin_expect(__atomic_load_n(&l->pending, __ATOMIC_ACQUIRE) == 0, 1))
		return 0;
	unsigned n = 0, b = 0;
	for (uint16_t from = 0; from < s->nq && n < max; from++) {
		struct arp_ring *r = &s->rings[(size_t)from * s->nq + to];
		uint32_t tail = r->tail, head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		while (tail != head && n < max) {
			while (b < ARP_LEND_SLOTS && l->lent[b])
				b++;
			if (b == ARP_LEND_SLOTS)
				break; /* the user still holds them all: later */
			const struct arp_slot *sl = &r->slot[tail % ARP_RING_SLOTS];
			l->buf[b] = *sl;
			l->lent[b] = 1;
			pkts[n] = (struct usnet_pkt){ .data = l->buf[b].data, .len = sl->len, .queue = to,
						      .id = NETIF_ARP_SHARE_ID | b };
			n++;
			tail++;
		}
		if (tail != r->tail) {
			__atomic_fetch_sub(&l->pending, tail - r->tail, __ATOMIC_RELAXED);
			__atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
		}
	}
	return n;
}

void netif_arp_share_release(struct netif_arp_share *s, uint16_t to, const struct usnet_pkt *p)
{
	uint64_t b = p->id & ~NETIF_ARP_SHARE_ID;
	if (b < ARP_LEND_SLOTS)
		s->lend[to].lent[b] = 0;
}
