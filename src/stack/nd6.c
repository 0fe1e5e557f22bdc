/*
 * Neighbor Discovery for IPv6 (RFC 4861) and Duplicate Address Detection
 * (RFC 4862): the neighbour cache with its states (INCOMPLETE, REACHABLE,
 * STALE, DELAY, PROBE) and their timers, run from usnet_stack_poll();
 * solicitations (multicast to the solicited-node group while resolving,
 * unicast while probing), advertisements for our addresses, a short queue
 * per unresolved neighbour for the frames waiting on it; and the checks of
 * tentative addresses before they are used.
 *
 * Not done: router discovery (RAs are validated and counted, nothing is
 * learned from them: no default router list, no SLAAC, no prefix list),
 * Redirects (validated, ignored), randomised ReachableTime, reachability
 * hints from upper layers (no TCP over IPv6 yet), ICMPv6 address
 * unreachable for frames dropped when resolution fails.
 */
#include "internal.h"
#include "wire_eth.h"
#include "wire_ipv6.h"

#define ND6_PROBE_SPAN 8u

static uint32_t nd6_slot(const uint8_t ip[16]) { return (rd32(ip + 12) * 2654435761u) >> 26; } /* 0..63 */

static struct nd6_entry *nd6_find(struct usnet_stack *st, const uint8_t ip[16])
{
	struct nd6_entry *t = st_nd6(st);
	uint32_t h = nd6_slot(ip);
	for (uint32_t k = 0; k < ND6_PROBE_SPAN; k++) {
		struct nd6_entry *e = &t[(h + k) & (ND6_TABLE - 1)];
		if (e->state != ND6_FREE && ip6_eq(e->ip, ip))
			return e;
	}
	return NULL;
}

static void nd6_entry_free(struct usnet_stack *st, struct nd6_entry *e)
{
	st->stats.nd_queue_drop += e->qlen;
	e->qlen = 0;
	chunk_free_list(st, &e->queue);
	e->state = ND6_FREE;
}

/* A slot for ip: a free one in its probe span, else the one changed
 * longest ago (evicting it). */
static struct nd6_entry *nd6_new(struct usnet_stack *st, const uint8_t ip[16], uint64_t now)
{
	struct nd6_entry *t = st_nd6(st);
	uint32_t h = nd6_slot(ip);
	struct nd6_entry *victim = NULL;
	for (uint32_t k = 0; k < ND6_PROBE_SPAN; k++) {
		struct nd6_entry *e = &t[(h + k) & (ND6_TABLE - 1)];
		if (e->state == ND6_FREE) {
			victim = e;
			break;
		}
		if (!victim || e->updated < victim->updated)
			victim = e;
	}
	if (victim->state != ND6_FREE)
		nd6_entry_free(st, victim);
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->ip, ip, 16);
	victim->queue = NIL;
	victim->updated = now;
	return victim;
}

static void nd6_schedule(struct usnet_stack *st, uint64_t at)
{
	if (at < st->misc_at)
		st->misc_at = at;
}

static void nd6_set_state(struct net_ctx *c, struct nd6_entry *e, uint8_t state, uint64_t expires)
{
	e->state = state;
	e->expires = expires;
	e->updated = c->now;
	if (state != ND6_STALE)
		nd6_schedule(c->st, expires);
}

/* Of the instances serving the queues of one interface, queue 0's answers
 * solicitations and probes for our addresses (as arp.c does). */
static int nd6_answers(const struct usnet_stack *st)
{
	return st->cfg.rss_queues <= 1 || st->cfg.rss_queue == 0;
}

/* Write the IPv6 header of an ND message of len bytes (at p->data+54) and
 * send it: to eth_dst when known, to dst's group when multicast, else
 * through the neighbour cache. */
static void nd6_xmit(struct net_ctx *c, struct usnet_pkt *p, const uint8_t src[16], const uint8_t dst[16],
		     uint32_t len, const uint8_t *eth_dst)
{
	struct usnet_stack *st = c->st;
	uint8_t *m = p->data + ETH_HLEN + IP6_HLEN;
	wr16(m + ICMP6_CSUM, 0);
	wr16(m + ICMP6_CSUM, icmp6_checksum(m, len, src, dst));
	ipv6_write(p->data + ETH_HLEN, src, dst, IP6_NH_ICMP6, (uint16_t)len, ND_HOP_LIMIT);
	p->len = ETH_HLEN + IP6_HLEN + len;
	st->stats.ip6_tx++;
	st->stats.icmp6_tx++;
	st->stats.nd_tx++;
	uint8_t mac[6];
	if (!eth_dst && ip6_is_multicast(dst)) {
		ip6_mcast_mac(dst, mac);
		eth_dst = mac;
	}
	if (eth_dst) {
		eth_write(p->data, eth_dst, st->cfg.mac, ETHERTYPE_IPV6);
		tx_put(c, p);
		return;
	}
	nd6_output(c, p, dst);
}

/* A Neighbor Solicitation for target: to its solicited-node group, or by
 * unicast to unicast_mac (probing a cached entry); from :: without a
 * source link-layer option for DAD (RFC 4862 5.4.2). */
static void nd6_send_ns(struct net_ctx *c, const uint8_t target[16], const uint8_t *unicast_mac, int dad)
{
	struct usnet_stack *st = c->st;
	uint8_t src[16] = { 0 }, dst[16];
	if (!dad && ip6_select_src(st, target, src) < 0)
		return;
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return;
	if (unicast_mac)
		memcpy(dst, target, 16);
	else
		ip6_solicited_node(target, dst);
	uint8_t *m = p->data + ETH_HLEN + IP6_HLEN;
	memset(m, 0, ND_NS_LEN);
	m[ICMP6_TYPE] = ND_NS;
	memcpy(m + ND_TARGET, target, 16);
	uint32_t len = ND_NS_LEN;
	if (!dad) {
		m[len] = ND_OPT_SLLA;
		m[len + 1] = 1;
		memcpy(m + len + 2, st->cfg.mac, 6);
		len += 8;
	}
	nd6_xmit(c, p, src, dst, len, unicast_mac);
}

/* A Neighbor Advertisement for our address target, with our link-layer
 * address (7.2.4). */
static void nd6_send_na(struct net_ctx *c, const uint8_t dst[16], const uint8_t target[16], uint8_t flags,
			const uint8_t *eth_dst)
{
	struct usnet_stack *st = c->st;
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return;
	uint8_t *m = p->data + ETH_HLEN + IP6_HLEN;
	memset(m, 0, ND_NA_LEN);
	m[ICMP6_TYPE] = ND_NA;
	m[ND_FLAGS] = flags;
	memcpy(m + ND_TARGET, target, 16);
	m[ND_NA_LEN] = ND_OPT_TLLA;
	m[ND_NA_LEN + 1] = 1;
	memcpy(m + ND_NA_LEN + 2, st->cfg.mac, 6);
	nd6_xmit(c, p, target, dst, ND_NA_LEN + 8, eth_dst);
}


void nd6_output(struct net_ctx *c, struct usnet_pkt *p, const uint8_t nh[16])
{
	struct usnet_stack *st = c->st;
	struct nd6_entry *e = nd6_find(st, nh);
	if (likely(e && e->state != ND6_INCOMPLETE)) {
		/* Sending to a STALE neighbour starts the wait for a
		 * confirmation (7.3.3). */
		if (e->state == ND6_STALE)
			nd6_set_state(c, e, ND6_DELAY, c->now + ND6_DELAY_NS);
		eth_write(p->data, e->mac, st->cfg.mac, ETHERTYPE_IPV6);
		tx_put(c, p);
		return;
	}
	/* Unresolved: keep a copy of the frame and ask. */
	int new_entry = 0;
	if (!e) {
		e = nd6_new(st, nh, c->now);
		e->tries = 1;
		nd6_set_state(c, e, ND6_INCOMPLETE, c->now + ND6_RETRANS_NS);
		new_entry = 1;
	}
	static const uint8_t unknown[6] = { 0 };
	eth_write(p->data, unknown, st->cfg.mac, ETHERTYPE_IPV6);
	st->stats.nd_queue_drop += neigh_queue_put(st, &e->queue, &e->qlen, ND6_QUEUE_MAX, p);
	tx_unget(c, p);
	if (new_entry)
		nd6_send_ns(c, nh, NULL, 0);
}

/* What an NS with a source link-layer address teaches (7.2.3): a new entry
 * is STALE; a changed address is taken and the entry made STALE. */
static void nd6_learn_from_ns(struct net_ctx *c, const uint8_t ip[16], const uint8_t mac[6])
{
	struct usnet_stack *st = c->st;
	if (mac[0] & 1)
		return;   /* a multicast link-layer address is no neighbour's */
	struct nd6_entry *e = nd6_find(st, ip);
	if (!e) {
		e = nd6_new(st, ip, c->now);
		memcpy(e->mac, mac, 6);
		nd6_set_state(c, e, ND6_STALE, 0);
		return;
	}
	if (e->state != ND6_INCOMPLETE && memcmp(e->mac, mac, 6) == 0)
		return;
	memcpy(e->mac, mac, 6);
	e->tries = 0;
	nd6_set_state(c, e, ND6_STALE, 0);
	if (e->queue != NIL)
		neigh_queue_flush(c, &e->queue, &e->qlen, e->mac);
}

static void nd6_duplicate(struct usnet_stack *st, struct ip6_addr_slot *a)
{
	a->state = USNET_IP6_ADDR_DUPLICATE;
	st->stats.nd_dad_duplicate++;
	mld6_leave(st, a->addr);
}

static void nd6_ns_input(struct net_ctx *c, const struct ipv6_view *v, const struct nd_view *nv)
{
	struct usnet_stack *st = c->st;
	int slot = ip6_addr_find(st, nv->target);
	if (slot < 0)
		return;   /* for a neighbour whose group we share */
	struct ip6_addr_slot *a = &st->ip6[slot];
	if (a->shared)
		return;   /* the kernel's address: the kernel answers and defends it */
	int dad = ip6_is_unspecified(v->src);
	if (a->state == USNET_IP6_ADDR_TENTATIVE) {
		/* Another node checks the same address: neither may have
		 * it (RFC 4862 5.4.3).  (The netif never gives us our own
		 * probes back.)  Solicitations from a node that uses it are
		 * not answered while tentative. */
		if (dad)
			nd6_duplicate(st, a);
		return;
	}
	if (a->state != USNET_IP6_ADDR_PREFERRED)
		return;
	if (!dad && nv->lladdr)
		nd6_learn_from_ns(c, v->src, nv->lladdr);
	if (!nd6_answers(st))
		return;
	if (dad) {
		/* To all nodes, unsolicited (7.2.4). */
		static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
		nd6_send_na(c, all_nodes, nv->target, ND_NA_OVERRIDE, NULL);
		return;
	}
	nd6_send_na(c, v->src, nv->target, ND_NA_SOLICITED | ND_NA_OVERRIDE, nv->lladdr);
}

/* An advertisement updates an entry we have (7.2.5); it creates none. */
static void nd6_na_input(struct net_ctx *c, const struct nd_view *nv)
{
	struct usnet_stack *st = c->st;
	int slot = ip6_addr_find(st, nv->target);
	if (slot >= 0) {
		/* Someone advertises one of our addresses: while it is
		 * tentative, that is DAD's answer (RFC 4862 5.4.4); after,
		 * a conflict DAD did not see, which it leaves alone. */
		if (st->ip6[slot].state == USNET_IP6_ADDR_TENTATIVE)
			nd6_duplicate(st, &st->ip6[slot]);
		return;
	}
	struct nd6_entry *e = nd6_find(st, nv->target);
	if (!e)
		return;
	if (nv->lladdr && (nv->lladdr[0] & 1))
		return;   /* a multicast link-layer address is no neighbour's */
	int solicited = !!(nv->flags & ND_NA_SOLICITED);
	if (e->state == ND6_INCOMPLETE) {
		if (!nv->lladdr)
			return;
		memcpy(e->mac, nv->lladdr, 6);
		e->router = !!(nv->flags & ND_NA_ROUTER);
		e->tries = 0;
		if (solicited)
			nd6_set_state(c, e, ND6_REACHABLE, c->now + ND6_REACHABLE_NS);
		else
			nd6_set_state(c, e, ND6_STALE, 0);
		neigh_queue_flush(c, &e->queue, &e->qlen, e->mac);
		return;
	}
	int differs = nv->lladdr && memcmp(nv->lladdr, e->mac, 6) != 0;
	if (!(nv->flags & ND_NA_OVERRIDE) && differs) {
		/* Another address without Override: believed only as far as
		 * to doubt the one we have. */
		if (e->state == ND6_REACHABLE)
			nd6_set_state(c, e, ND6_STALE, 0);
		return;
	}
	if (differs)
		memcpy(e->mac, nv->lladdr, 6);
	e->router = !!(nv->flags & ND_NA_ROUTER);
	if (solicited) {
		e->tries = 0;
		nd6_set_state(c, e, ND6_REACHABLE, c->now + ND6_REACHABLE_NS);
	} else if (differs) {
		nd6_set_state(c, e, ND6_STALE, 0);
	}
}

void nd6_input(struct net_ctx *c, const uint8_t *ip, const struct ipv6_view *v, const uint8_t *p,
	       uint32_t len)
{
	struct usnet_stack *st = c->st;
	struct nd_view nv;
	(void)ip;
	st->stats.nd_rx++;
	switch (nd_parse(p, len, v->hop_limit, v->src, v->dst, &nv)) {
	case NDV_OK: break;
	case NDV_HOP_LIMIT: st->stats.nd_drop_hop_limit++; return;
	case NDV_CODE: st->stats.nd_drop_code++; return;
	case NDV_LEN: st->stats.nd_drop_len++; return;
	case NDV_OPTION: st->stats.nd_drop_option++; return;
	case NDV_TARGET: st->stats.nd_drop_target++; return;
	case NDV_SOURCE: st->stats.nd_drop_source++; return;
	case NDV_SOLICITED_MCAST: st->stats.nd_drop_solicited++; return;
	case NDV_NOT_ND: return;
	}
	switch (nv.type) {
	case ND_NS:
		nd6_ns_input(c, v, &nv);
		return;
	case ND_NA:
		nd6_na_input(c, &nv);
		return;
	default:
		/* Router Solicitations are for routers (a host discards
		 * them, 6.2.6); Router Advertisements and Redirects are
		 * validated and not acted upon (see the top of the file). */
		return;
	}
}

/* The delay before an address's first DAD probe, under
 * MAX_RTR_SOLICITATION_DELAY (RFC 4862 5.4.2), from the instance's secret. */
static uint64_t nd6_dad_delay(const struct usnet_stack *st, const struct ip6_addr_slot *a)
{
	return siphash24(st->cfg.secret, a->addr, 16) % ND6_DAD_DELAY_NS;
}

/* Probes of tentative addresses; the verdict when the last one had its
 * time to be answered. */
static uint64_t nd6_dad_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < IP6_ADDRS; i++) {
		struct ip6_addr_slot *a = &st->ip6[i];
		if (a->state != USNET_IP6_ADDR_TENTATIVE)
			continue;
		if (a->dad_at == 0) {
			a->dad_at = c->now + nd6_dad_delay(st, a);
		} else if (a->dad_at <= c->now) {
			if (a->dad_sent >= st->cfg.ip6_dad_transmits) {
				a->state = USNET_IP6_ADDR_PREFERRED;
				continue;
			}
			if (a->dad_sent == 0)   /* its group joined first (RFC 4862 5.4.2) */
				mld6_join(c, a->addr);
			if (nd6_answers(st))
				nd6_send_ns(c, a->addr, NULL, 1);
			a->dad_sent++;
			a->dad_at = c->now + ND6_RETRANS_NS;
		}
		if (a->dad_at < next)
			next = a->dad_at;
	}
	return next;
}

uint64_t nd6_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	struct nd6_entry *t = st_nd6(st);
	uint64_t next = nd6_dad_timers(c);
	for (uint32_t i = 0; i < ND6_TABLE; i++) {
		struct nd6_entry *e = &t[i];
		if (e->state == ND6_FREE || e->state == ND6_STALE)
			continue;
		if (e->expires <= c->now) {
			switch (e->state) {
			case ND6_INCOMPLETE:
				if (e->tries >= ND6_MAX_MULTICAST_SOLICIT) {
					nd6_entry_free(st, e);
					continue;
				}
				e->tries++;
				e->expires = c->now + ND6_RETRANS_NS;
				nd6_send_ns(c, e->ip, NULL, 0);
				break;
			case ND6_REACHABLE:
				nd6_set_state(c, e, ND6_STALE, 0);
				continue;
			case ND6_DELAY:
				/* No confirmation came: ask the neighbour itself (7.3.3). */
				e->tries = 1;
				nd6_set_state(c, e, ND6_PROBE, c->now + ND6_RETRANS_NS);
				nd6_send_ns(c, e->ip, e->mac, 0);
				break;
			default:   /* ND6_PROBE */
				if (e->tries >= ND6_MAX_UNICAST_SOLICIT) {
					nd6_entry_free(st, e);
					continue;
				}
				e->tries++;
				e->expires = c->now + ND6_RETRANS_NS;
				nd6_send_ns(c, e->ip, e->mac, 0);
				break;
			}
		}
		if (e->expires < next)
			next = e->expires;
	}
	return next;
}

int nd6_mac_wanted(const struct usnet_stack *st, const uint8_t mac[6])
{
	if (mac[0] != 0x33 || mac[1] != 0x33)
		return 0;
	int all_nodes = mac[2] == 0 && mac[3] == 0 && mac[4] == 0 && mac[5] == 1;
	for (uint32_t i = 0; i < IP6_ADDRS; i++) {
		const struct ip6_addr_slot *a = &st->ip6[i];
		if (a->state == USNET_IP6_ADDR_NONE || a->state == USNET_IP6_ADDR_DUPLICATE || a->shared)
			continue;   /* a shared address's group is the kernel's */
		if (all_nodes || (mac[2] == 0xff && memcmp(mac + 3, a->addr + 13, 3) == 0))
			return 1;
	}
	return 0;
}

void ip6_addrs_init(struct usnet_stack *st)
{
	const struct usnet_stack_config *cfg = &st->cfg;
	uint8_t state = cfg->ip6_dad_transmits ? USNET_IP6_ADDR_TENTATIVE : USNET_IP6_ADDR_PREFERRED;
	int tentative = 0;
	memset(st->ip6, 0, sizeof(st->ip6));
	if (cfg->ip6_link_local) {
		/* fe80::/64 and the modified EUI-64 of the MAC: its universal/
		 * local bit flipped, ff:fe in the middle (RFC 4291 appendix A). */
		uint8_t *a = st->ip6[0].addr;
		a[0] = 0xfe; a[1] = 0x80;
		a[8] = cfg->mac[0] ^ 0x02; a[9] = cfg->mac[1]; a[10] = cfg->mac[2];
		a[11] = 0xff; a[12] = 0xfe;
		a[13] = cfg->mac[3]; a[14] = cfg->mac[4]; a[15] = cfg->mac[5];
		st->ip6[0].prefix_len = 64;
		st->ip6[0].state = state;
		tentative |= state == USNET_IP6_ADDR_TENTATIVE;
	}
	for (uint32_t i = 0; i < USNET_IP6_ADDRS; i++) {
		if (ip6_is_unspecified(cfg->ip6[i]))
			continue;
		memcpy(st->ip6[1 + i].addr, cfg->ip6[i], 16);
		st->ip6[1 + i].prefix_len = cfg->ip6_prefix_len[i];
		/* A shared address is the kernel's, checked by its DAD. */
		st->ip6[1 + i].shared = cfg->ip6_shared[i] != 0;
		st->ip6[1 + i].state = cfg->ip6_shared[i] ? USNET_IP6_ADDR_PREFERRED : state;
		tentative |= st->ip6[1 + i].state == USNET_IP6_ADDR_TENTATIVE;
	}
	if (tentative)
		st->misc_at = 0;   /* the first poll starts DAD */
}

unsigned usnet_neigh6_waiting(const struct usnet_stack *st, uint8_t (*ips)[16], unsigned max)
{
	if (!st || st->magic != USNET_STACK_MAGIC || !ips)
		return 0;
	const struct nd6_entry *t = (const struct nd6_entry *)((const char *)st + st->nd6_off);
	unsigned n = 0;
	for (uint32_t i = 0; i < ND6_TABLE && n < max; i++)
		if (t[i].state == ND6_INCOMPLETE || t[i].state == ND6_PROBE)
			memcpy(ips[n++], t[i].ip, 16);
	return n;
}

void usnet_neigh6_set(struct usnet_stack *st, struct usnet_io *io, const uint8_t ip[16], const uint8_t mac[6],
		      uint64_t now)
{
	if (!st || st->magic != USNET_STACK_MAGIC || !ip || !mac || (mac[0] & 1) || ip6_is_multicast(ip) ||
	    ip6_is_unspecified(ip))
		return;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	struct nd6_entry *e = nd6_find(st, ip);
	if (!e)
		e = nd6_new(st, ip, now);
	memcpy(e->mac, mac, 6);
	e->tries = 0;
	nd6_set_state(&c, e, ND6_REACHABLE, now + ND6_REACHABLE_NS);
	if (e->queue != NIL)
		neigh_queue_flush(&c, &e->queue, &e->qlen, e->mac);
	ctx_flush(&c);
}

int usnet_ip6_addr(struct usnet_stack *st, unsigned i, uint8_t addr[16], uint8_t *prefix_len)
{
	if (!st || st->magic != USNET_STACK_MAGIC || i >= IP6_ADDRS)
		return -USNET_EINVAL;
	const struct ip6_addr_slot *a = &st->ip6[i];
	if (addr)
		memcpy(addr, a->addr, 16);
	if (prefix_len)
		*prefix_len = a->prefix_len;
	return a->state;
}

int usnet_ip6_source(struct usnet_stack *st, const uint8_t dst[16], uint8_t src[16])
{
	if (!st || st->magic != USNET_STACK_MAGIC || !dst || !src)
		return -USNET_EINVAL;
	/* as connect6: a local destination is its own source */
	if (ip6_is_loopback(dst) || ip6_addr_find(st, dst) >= 0) {
		memcpy(src, dst, 16);
		return 0;
	}
	return ip6_select_src(st, dst, src) < 0 ? -USNET_EADDRNOTAVAIL : 0;
}
