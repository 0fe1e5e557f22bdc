/*
 * Neighbor Discovery for IPv6 (RFC 4861) and Duplicate Address Detection
 * (RFC 4862): the neighbour cache with its states (INCOMPLETE, REACHABLE,
 * STALE, DELAY, PROBE) and their timers, run from usnet_stack_poll();
 * solicitations (multicast to the solicited-node group while resolving,
 * unicast while probing), advertisements for our addresses, a short queue
 * per unresolved neighbour for the frames waiting on it; and the checks of
 * tentative addresses before they are used.
 *
 * Router discovery as a host (RFC 4861 6.3): Router Solicitations once the
 * link-local address is in use, and what Router Advertisements teach: the
 * default router list (each until its Router Lifetime ends), the on-link
 * prefixes (Prefix Information with L, until their valid lifetime ends),
 * the link's MTU (only ever lowered below cfg.mtu) and the default hop
 * limit; the advertising router's neighbour entry (its link-layer address,
 * IsRouter).  route6_lookup (ipv6.c) asks nd6_onlink and nd6_router;
 * a configured ip6_gateway wins over the routers learned.
 *
 * Not done: SLAAC (prefixes with A make no address), Router Preference
 * and Route Information (RFC 4191), the RA's Reachable Time and Retrans
 * Timer (fixed ones are used), Redirects (validated, ignored), randomised
 * ReachableTime, reachability hints from upper layers, ICMPv6 address
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

/* nd6_find for readers that change nothing. */
static const struct nd6_entry *nd6_peek(const struct usnet_stack *st, const uint8_t ip[16])
{
	const struct nd6_entry *t = (const struct nd6_entry *)((const char *)st + st->nd6_off);
	uint32_t h = nd6_slot(ip);
	for (uint32_t k = 0; k < ND6_PROBE_SPAN; k++) {
		const struct nd6_entry *e = &t[(h + k) & (ND6_TABLE - 1)];
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

/* A Router Solicitation from our link-local address to all routers, with
 * our link-layer address (6.3.7, 4.1). */
static void nd6_send_rs(struct net_ctx *c)
{
	static const uint8_t all_routers[16] = { 0xff, 0x02, [15] = 2 };
	struct usnet_stack *st = c->st;
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return;
	uint8_t *m = p->data + ETH_HLEN + IP6_HLEN;
	memset(m, 0, ND_RS_LEN);
	m[ICMP6_TYPE] = ND_RS;
	m[ND_RS_LEN] = ND_OPT_SLLA;
	m[ND_RS_LEN + 1] = 1;
	memcpy(m + ND_RS_LEN + 2, st->cfg.mac, 6);
	st->stats.nd_rs_tx++;
	nd6_xmit(c, p, st->ip6[0].addr, all_routers, ND_RS_LEN + 8, NULL);
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

/* What an NS or an RA with a source link-layer address teaches (7.2.3,
 * 6.3.4): a new entry is STALE; a changed address is taken and the entry
 * made STALE. */
static void nd6_learn_lladdr(struct net_ctx *c, const uint8_t ip[16], const uint8_t mac[6])
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
		nd6_learn_lladdr(c, v->src, nv->lladdr);
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

/* The router ip said its Router Lifetime is lifetime_s: listed until then,
 * or (0) no longer a default router (6.3.4). */
static void nd6_router_update(struct net_ctx *c, const uint8_t ip[16], uint16_t lifetime_s)
{
	struct usnet_stack *st = c->st;
	struct nd6_router *r = NULL, *free_slot = NULL;
	for (uint32_t i = 0; i < ND6_ROUTERS; i++) {
		struct nd6_router *x = &st->nd6_routers[i];
		if (x->expires && ip6_eq(x->ip, ip))
			r = x;
		else if (!x->expires && !free_slot)
			free_slot = x;
	}
	if (!lifetime_s) {
		if (r)
			r->expires = 0;
		return;
	}
	if (!r) {
		if (!free_slot)
			return;   /* the list is full: this router is not taken (6.3.4 allows) */
		r = free_slot;
		memcpy(r->ip, ip, 16);
		order_barrier();   /* whole before it counts (expires set) */
	}
	r->expires = c->now + (uint64_t)lifetime_s * NS_PER_S;
	nd6_schedule(st, r->expires);
}

/* A Prefix Information option with the on-link flag (6.3.4): the prefix
 * is on-link for its valid lifetime; 0 ends that at once. */
static void nd6_prefix_update(struct net_ctx *c, const struct nd_prefix *pi)
{
	struct usnet_stack *st = c->st;
	/* The link-local prefix is on-link anyway: ignored (6.3.4); so are
	 * lengths no prefix has. */
	if (pi->len == 0 || pi->len > 128 || ip6_is_link_local(pi->prefix))
		return;
	struct nd6_prefix *x = NULL, *free_slot = NULL;
	for (uint32_t i = 0; i < ND6_PREFIXES; i++) {
		struct nd6_prefix *q = &st->nd6_prefixes[i];
		if (q->len == pi->len && ip6_prefix_eq(q->prefix, pi->prefix, pi->len))
			x = q;
		else if (!q->len && !free_slot)
			free_slot = q;
	}
	if (!pi->valid_s) {
		if (x)
			x->len = 0;
		return;
	}
	uint64_t until = pi->valid_s == ND_LIFETIME_INFINITE ? UINT64_MAX : c->now + (uint64_t)pi->valid_s * NS_PER_S;
	if (!x) {
		if (!free_slot)
			return;   /* no room: the prefix stays off-link (its packets go to a router) */
		x = free_slot;
		memset(x->prefix, 0, 16);
		for (uint32_t b = 0; b < pi->len; b += 8) {
			uint32_t n = pi->len - b;
			x->prefix[b / 8] = (uint8_t)(pi->prefix[b / 8] & (n >= 8 ? 0xff : 0xff00 >> n));
		}
		x->expires = until;
		order_barrier();   /* whole before it counts (len set) */
		x->len = pi->len;
	} else {
		x->expires = until;
	}
	nd6_schedule(st, until);
}

/* A Router Advertisement, valid (nd_parse: from a link-local address, hop
 * limit 255): what it says of the link and of its sender (6.3.4). */
static void nd6_ra_input(struct net_ctx *c, const struct ipv6_view *v, const struct nd_view *nv)
{
	struct usnet_stack *st = c->st;
	/* Without a link-local address of its own (host-address mode) the
	 * instance is not the interface's host: the kernel's router
	 * discovery is. */
	if (!st->cfg.ip6_link_local)
		return;
	st->stats.nd_ra_rx++;
	if (nv->cur_hop_limit)
		st->ip6_ra_hop_limit = nv->cur_hop_limit;
	nd6_router_update(c, v->src, nv->router_lifetime_s);
	/* A router answered: no more solicitations (6.3.7).  The first is
	 * sent all the same when the RA came before it (as Linux does after
	 * DAD): it is what asks every router on the link at once. */
	if (nv->router_lifetime_s) {
		st->ra_router_seen = 1;
		if (st->rs_sent)
			st->rs_at = UINT64_MAX;
	}
	/* The link's MTU: taken from 1280 up to ours, never above it; when
	 * lower, the connections made before take it too. */
	if (nv->mtu >= IP6_MIN_MTU) {
		uint32_t was = link_mtu(st, 1);
		st->ip6_ra_mtu = nv->mtu < st->cfg.mtu ? nv->mtu : 0;
		if (link_mtu(st, 1) < was)
			tcp_mtu_reduced6(c, NULL, link_mtu(st, 1));
	}
	for (uint32_t i = 0; i < nv->nprefix; i++)
		if (nv->prefix[i].flags & ND_PREFIX_ONLINK)
			nd6_prefix_update(c, &nv->prefix[i]);
	if (nv->lladdr && !(nv->lladdr[0] & 1))
		nd6_learn_lladdr(c, v->src, nv->lladdr);
	struct nd6_entry *e = nd6_find(st, v->src);
	if (e)
		e->router = 1;
}

int nd6_onlink(const struct usnet_stack *st, const uint8_t dst[16])
{
	for (uint32_t i = 0; i < ND6_PREFIXES; i++) {
		const struct nd6_prefix *q = &st->nd6_prefixes[i];
		if (q->len && ip6_prefix_eq(q->prefix, dst, q->len))
			return 1;
	}
	return 0;
}

int nd6_router(const struct usnet_stack *st, uint8_t out[16])
{
	/* One whose reachability is not in doubt first (6.3.6: its
	 * neighbour entry resolved), else the first listed. */
	int any = -1;
	for (uint32_t i = 0; i < ND6_ROUTERS; i++) {
		const struct nd6_router *r = &st->nd6_routers[i];
		if (!r->expires)
			continue;
		const struct nd6_entry *e = nd6_peek(st, r->ip);
		if (e && e->state != ND6_INCOMPLETE) {
			memcpy(out, r->ip, 16);
			return 0;
		}
		if (any < 0)
			any = (int)i;
	}
	if (any < 0)
		return -1;
	memcpy(out, st->nd6_routers[any].ip, 16);
	return 0;
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
	case ND_RA:
		nd6_ra_input(c, v, &nv);
		return;
	default:
		/* Router Solicitations are for routers (a host discards
		 * them, 6.2.6); Redirects are validated and not acted upon
		 * (see the top of the file). */
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

/* Router Solicitations (6.3.7): once the link-local address is in use
 * (after DAD: these run after its timers), after a random delay under
 * MAX_RTR_SOLICITATION_DELAY, up to cfg.ip6_router_solicits of them
 * RTR_SOLICITATION_INTERVAL apart, until an advertisement names a router
 * (one that came before the first leaves only that one).
 * Only the instance that answers for the interface (nd6_answers) asks. */
static uint64_t nd6_rs_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	const struct ip6_addr_slot *ll = &st->ip6[0];
	if (st->rs_at == UINT64_MAX || ll->state == USNET_IP6_ADDR_TENTATIVE)
		return UINT64_MAX;   /* done, or DAD's timers come back when it ends */
	if (ll->state != USNET_IP6_ADDR_PREFERRED || !nd6_answers(st) ||
	    st->rs_sent >= st->cfg.ip6_router_solicits) {
		st->rs_at = UINT64_MAX;
		return UINT64_MAX;
	}
	if (st->rs_at == 0) {
		uint8_t key[18];
		memcpy(key, ll->addr, 16);
		key[16] = 'r';
		key[17] = 's';
		st->rs_at = c->now + siphash24(st->cfg.secret, key, sizeof key) % ND6_RS_DELAY_NS;
	} else if (st->rs_at <= c->now) {
		nd6_send_rs(c);
		st->rs_sent++;
		st->rs_at = st->rs_sent < st->cfg.ip6_router_solicits && !st->ra_router_seen ?
			    c->now + ND6_RS_INTERVAL_NS : UINT64_MAX;
	}
	return st->rs_at;
}

/* Routers and prefixes past their lifetimes are forgotten (6.3.5). */
static uint64_t nd6_ra_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < ND6_ROUTERS; i++) {
		struct nd6_router *r = &st->nd6_routers[i];
		if (r->expires && r->expires <= c->now)
			r->expires = 0;
		else if (r->expires && r->expires < next)
			next = r->expires;
	}
	for (uint32_t i = 0; i < ND6_PREFIXES; i++) {
		struct nd6_prefix *q = &st->nd6_prefixes[i];
		if (q->len && q->expires <= c->now)
			q->len = 0;
		else if (q->len && q->expires < next)
			next = q->expires;
	}
	return next;
}

uint64_t nd6_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	struct nd6_entry *t = st_nd6(st);
	uint64_t next = nd6_dad_timers(c);
	next = min_u64(next, nd6_rs_timers(c));
	next = min_u64(next, nd6_ra_timers(c));
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
	for (uint32_t i = 0; i < MLD6_GROUPS; i++)   /* the groups sockets joined */
		if (st->mld6_groups[i].refs && memcmp(mac + 2, st->mld6_groups[i].addr + 12, 4) == 0)
			return 1;
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
	if (tentative || (cfg->ip6_link_local && cfg->ip6_router_solicits))
		st->misc_at = 0;   /* the first poll starts DAD, or router discovery */
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

int usnet_ip6_route(struct usnet_stack *st, const uint8_t dst[16], uint8_t nh[16])
{
	if (!st || st->magic != USNET_STACK_MAGIC || !dst || !nh || ip6_is_multicast(dst))
		return -USNET_EINVAL;
	return route6_lookup(st, dst, nh);
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
