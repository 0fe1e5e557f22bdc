/*
 * ARP (RFC 826): a small open-addressed cache, requests with retries,
 * replies, expiry with re-confirmation, and a short queue per unresolved
 * neighbour for frames waiting on the answer.
 */
#include "internal.h"
#include "wire_eth.h"
#include "wire_arp.h"

#define ARP_PROBE_SPAN 8u

static uint32_t arp_slot(uint32_t ip) { return (ip * 2654435761u) >> 24; } /* 0..255 */

static struct arp_entry *arp_find(struct usnet_stack *st, uint32_t ip)
{
	struct arp_entry *arp = st_arp(st);
	uint32_t h = arp_slot(ip);
	for (uint32_t k = 0; k < ARP_PROBE_SPAN; k++) {
		struct arp_entry *e = &arp[(h + k) & (ARP_TABLE - 1)];
		if (e->state != ARP_FREE && e->ip == ip)
			return e;
	}
	return NULL;
}

static void arp_entry_free(struct usnet_stack *st, struct arp_entry *e)
{
	st->stats.arp_drop += e->qlen;
	e->qlen = 0;
	chunk_free_list(st, &e->queue);
	e->state = ARP_FREE;
}

/* A slot for ip: a free one in its probe span, else the one that expires
 * first (evicting it). */
static struct arp_entry *arp_new(struct usnet_stack *st, uint32_t ip)
{
	struct arp_entry *arp = st_arp(st);
	uint32_t h = arp_slot(ip);
	struct arp_entry *victim = NULL;
	for (uint32_t k = 0; k < ARP_PROBE_SPAN; k++) {
		struct arp_entry *e = &arp[(h + k) & (ARP_TABLE - 1)];
		if (e->state == ARP_FREE) {
			victim = e;
			break;
		}
		if (!victim || e->expires < victim->expires)
			victim = e;
	}
	if (victim->state != ARP_FREE)
		arp_entry_free(st, victim);
	memset(victim, 0, sizeof(*victim));
	victim->ip = ip;
	victim->queue = NIL;
	return victim;
}

static void arp_send(struct net_ctx *c, uint16_t op, const uint8_t tha[6], uint32_t tpa, const uint8_t dst[6])
{
	struct usnet_stack *st = c->st;
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return;
	uint8_t *f = p->data;
	eth_write(f, dst, st->cfg.mac, ETHERTYPE_ARP);
	uint8_t *a = f + ETH_HLEN;
	wr16(a + ARP_HTYPE, 1);
	wr16(a + ARP_PTYPE, 0x0800);
	a[ARP_HLEN] = 6;
	a[ARP_PLEN] = 4;
	wr16(a + ARP_OP, op);
	memcpy(a + ARP_SHA, st->cfg.mac, 6);
	wr32(a + ARP_SPA, st->cfg.ip);
	memcpy(a + ARP_THA, tha, 6);
	wr32(a + ARP_TPA, tpa);
	/* Pad to the 60-byte Ethernet minimum. */
	memset(f + ETH_HLEN + ARP_LEN, 0, 60 - ETH_HLEN - ARP_LEN);
	p->len = 60;
	tx_put(c, p);
	st->stats.arp_tx++;
}

static void arp_request(struct net_ctx *c, struct arp_entry *e, int unicast)
{
	static const uint8_t zero[6] = { 0 };
	arp_send(c, ARP_OP_REQUEST, unicast ? e->mac : zero, e->ip, unicast ? e->mac : eth_broadcast);
}

static void arp_schedule(struct usnet_stack *st, uint64_t at)
{
	if (at < st->misc_at)
		st->misc_at = at;
}


/* Of the instances serving the queues of one interface, each learns from
 * every ARP frame (the netif brings each to every queue, or a NIC steers
 * non-IP frames to queue 0), but one answer is enough: queue 0's. */
static int arp_answers(const struct usnet_stack *st)
{
	return st->cfg.rss_queues <= 1 || st->cfg.rss_queue == 0;
}

struct arp_entry *arp_learn(struct net_ctx *c, uint32_t ip, const uint8_t mac[6], int create)
{
	struct usnet_stack *st = c->st;
	struct arp_entry *e = arp_find(st, ip);
	if (!e && create)
		e = arp_new(st, ip);
	if (e) {
		memcpy(e->mac, mac, 6);
		e->state = ARP_REACHABLE;
		e->tries = 0;
		e->expires = c->now + ARP_REACHABLE_NS;
		if (e->queue != NIL)
			neigh_queue_flush(c, &e->queue, &e->qlen, e->mac);
	}
	return e;
}

unsigned usnet_neigh_waiting(const struct usnet_stack *st, uint32_t *ips, unsigned max)
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return 0;
	const struct arp_entry *arp = (const struct arp_entry *)((const char *)st + st->arp_off);
	unsigned n = 0;
	for (uint32_t i = 0; i < ARP_TABLE && n < max; i++)
		if (arp[i].state == ARP_INCOMPLETE || arp[i].state == ARP_PROBE)
			ips[n++] = arp[i].ip;
	return n;
}

void usnet_neigh_set(struct usnet_stack *st, struct usnet_io *io, uint32_t ip, const uint8_t mac[6], uint64_t now)
{
	if (!st || st->magic != USNET_STACK_MAGIC || !mac || (mac[0] & 1))
		return;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	arp_learn(&c, ip, mac, 1);
	ctx_flush(&c);
}

void arp_input(struct net_ctx *c, const uint8_t *a, uint32_t len)
{
	struct usnet_stack *st = c->st;
	st->stats.arp_rx++;
	if (len < ARP_LEN || !arp_valid(a)) {
		st->stats.arp_drop++;
		return;
	}
	uint32_t spa = rd32(a + ARP_SPA), tpa = rd32(a + ARP_TPA);
	const uint8_t *sha = a + ARP_SHA;
	if (spa == 0 || (sha[0] & 1)) {   /* probes and multicast senders teach nothing */
		if (tpa == st->cfg.ip && rd16(a + ARP_OP) == ARP_OP_REQUEST && !(sha[0] & 1) && arp_answers(st))
			arp_send(c, ARP_OP_REPLY, sha, spa, sha);
		return;
	}
	/* RFC 826 merge: update an existing entry from any packet, create one
	 * only when the packet is for us. */
	struct arp_entry *e = arp_learn(c, spa, sha, tpa == st->cfg.ip);
	if (tpa != st->cfg.ip) {
		if (!e) st->stats.arp_drop++;
		return;
	}
	if (rd16(a + ARP_OP) == ARP_OP_REQUEST && arp_answers(st))
		arp_send(c, ARP_OP_REPLY, sha, spa, sha);
}

void arp_output(struct net_ctx *c, struct usnet_pkt *p, uint32_t nh)
{
	struct usnet_stack *st = c->st;
	struct arp_entry *e = arp_find(st, nh);
	if (likely(e && e->state >= ARP_REACHABLE)) {
		if (unlikely(e->state == ARP_REACHABLE && e->expires <= c->now)) {
			/* Stale: keep using it while re-confirming by unicast. */
			e->state = ARP_PROBE;
			e->tries = 1;
			e->expires = c->now + ARP_RETRY_NS;
			arp_schedule(st, e->expires);
			memcpy(p->data + ETH_DST, e->mac, 6);
			memcpy(p->data + ETH_SRC, st->cfg.mac, 6);
			wr16(p->data + 12, ETHERTYPE_IPV4);
			tx_put(c, p);
			arp_request(c, e, 1);
			return;
		}
		memcpy(p->data + ETH_DST, e->mac, 6);
		memcpy(p->data + ETH_SRC, st->cfg.mac, 6);
		wr16(p->data + 12, ETHERTYPE_IPV4);
		tx_put(c, p);
		return;
	}
	if (nh == 0xffffffffu || (st->netmask != 0xffffffffu && nh == (st->cfg.ip | ~st->netmask))) {
		eth_write(p->data, eth_broadcast, st->cfg.mac, ETHERTYPE_IPV4);
		tx_put(c, p);
		return;
	}
	/* Unresolved: keep a copy of the frame and ask. */
	int new_entry = 0;
	if (!e) {
		e = arp_new(st, nh);
		e->state = ARP_INCOMPLETE;
		e->tries = 1;
		e->expires = c->now + ARP_RETRY_NS;
		arp_schedule(st, e->expires);
		new_entry = 1;
	}
	eth_write(p->data, eth_broadcast, st->cfg.mac, ETHERTYPE_IPV4);
	st->stats.arp_drop += neigh_queue_put(st, &e->queue, &e->qlen, ARP_QUEUE_MAX, p);
	tx_unget(c, p);
	if (new_entry)
		arp_request(c, e, 0);
}

/* Retries, expiry of failed resolutions and of re-confirmations. */
uint64_t arp_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	struct arp_entry *arp = st_arp(st);
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < ARP_TABLE; i++) {
		struct arp_entry *e = &arp[i];
		if (e->state != ARP_INCOMPLETE && e->state != ARP_PROBE)
			continue;
		if (e->expires <= c->now) {
			if (e->tries > ARP_RETRIES) {
				arp_entry_free(st, e);
				continue;
			}
			e->tries++;
			e->expires = c->now + ARP_RETRY_NS;
			arp_request(c, e, e->state == ARP_PROBE && e->tries <= 2);
		}
		if (e->expires < next)
			next = e->expires;
	}
	return next;
}
