/*
 * IPv6 input (RFC 8200: the fixed header, the extension-header chain and
 * what its verdicts cost) and output (source selection, next hop, the
 * neighbour cache).  ICMPv6, TCP and UDP are delivered (ip6_deliver).
 * Fragments go to ip6_reass.c, and what it makes whole comes back through
 * ip6_input_reassembled to the same walk and the same delivery.  Packets
 * to the stack's own addresses and ::1 loop back (loop.c) without
 * reaching the wire.
 */
#include "internal.h"
#include "wire_eth.h"
#include "wire_ipv6.h"

int ip6_addr_find(const struct usnet_stack *st, const uint8_t a[16])
{
	for (uint32_t i = 0; i < IP6_ADDRS; i++)
		if (st->ip6[i].state != USNET_IP6_ADDR_NONE && ip6_eq(st->ip6[i].addr, a))
			return (int)i;
	return -1;
}

int ip6_addr_usable(const struct usnet_stack *st, const uint8_t a[16])
{
	int i = ip6_addr_find(st, a);
	return i >= 0 && st->ip6[i].state == USNET_IP6_ADDR_PREFERRED;
}

int ip6_select_src(const struct usnet_stack *st, const uint8_t dst[16], uint8_t out[16])
{
	const struct ip6_addr_slot *ll = &st->ip6[0];
	int ll_ok = ll->state == USNET_IP6_ADDR_PREFERRED;
	/* Link-local destinations and groups of link or smaller scope
	 * (RFC 4291 2.7: scope 1 or 2). */
	if (ip6_is_link_local(dst) || (ip6_is_multicast(dst) && (dst[1] & 0x0f) <= 2)) {
		if (!ll_ok)
			return -1;
		memcpy(out, ll->addr, 16);
		return 0;
	}
	int any = -1;
	for (uint32_t i = 1; i < IP6_ADDRS; i++) {
		const struct ip6_addr_slot *a = &st->ip6[i];
		if (a->state != USNET_IP6_ADDR_PREFERRED)
			continue;
		if (ip6_prefix_eq(a->addr, dst, a->prefix_len)) {
			memcpy(out, a->addr, 16);
			return 0;
		}
		if (any < 0)
			any = (int)i;
	}
	if (any >= 0) {
		memcpy(out, st->ip6[any].addr, 16);
		return 0;
	}
	if (!ll_ok)
		return -1;
	memcpy(out, ll->addr, 16);
	return 0;
}

/* The next hop for dst: itself when on-link (link-local, inside the
 * prefix of one of our addresses, or on a prefix an RA named), else the
 * configured default router, else one an RA named. */
int route6_lookup(const struct usnet_stack *st, const uint8_t dst[16], uint8_t nh[16])
{
	int onlink = ip6_is_link_local(dst);
	for (uint32_t i = 1; i < IP6_ADDRS && !onlink; i++) {
		const struct ip6_addr_slot *a = &st->ip6[i];
		if (a->state == USNET_IP6_ADDR_PREFERRED && a->prefix_len && ip6_prefix_eq(a->addr, dst, a->prefix_len))
			onlink = 1;
	}
	if (onlink || nd6_onlink(st, dst)) {
		memcpy(nh, dst, 16);
		return 0;
	}
	if (!ip6_is_unspecified(st->cfg.ip6_gateway)) {
		memcpy(nh, st->cfg.ip6_gateway, 16);
		return 0;
	}
	return nd6_router(st, nh) < 0 ? -USNET_ENETUNREACH : 0;
}

int ipv6_output(struct net_ctx *c, struct usnet_pkt *p, const uint8_t src[16], const uint8_t dst[16],
		uint8_t next, uint32_t plen, uint8_t hop_limit)
{
	struct usnet_stack *st = c->st;
	uint8_t nh[16];
	int to_self = ip6_is_loopback(dst) || ip6_addr_find(st, dst) >= 0;
	if (!to_self && !ip6_is_multicast(dst) && route6_lookup(st, dst, nh) < 0) {
		tx_unget(c, p);
		return -USNET_ENETUNREACH;
	}
	uint8_t *ip = p->data + ETH_HLEN;
	ipv6_write(ip, src, dst, next, (uint16_t)plen, hop_limit);
	/* the traffic class: the sending socket's (c->ip_tos) */
	ip[0] = (uint8_t)(0x60 | c->ip_tos >> 4);
	ip[1] = (uint8_t)((c->ip_tos & 0x0f) << 4 | (ip[1] & 0x0f));
	p->len = ETH_HLEN + IP6_HLEN + plen;
	if (p->len < 60) {
		memset(p->data + p->len, 0, 60 - p->len);
		p->len = 60;
	}
	st->stats.ip6_tx++;
	if (to_self) {
		loop_put(c, p);   /* to itself: never on the wire */
		return 0;
	}
	if (ip6_is_multicast(dst)) {
		/* A copy for the stack's own members (IPV6_MULTICAST_LOOP, a
		 * UDP socket's); hop limit 0 goes no further (Linux's
		 * ip6_finish_output2); no ND: the group's 33:33 MAC. */
		if (c->mc_loop && (ip6_is_all_nodes(dst) || mc6_host_member(st, dst)))
			loop_copy(c, p);
		if (hop_limit == 0) {
			tx_unget(c, p);
			return 0;
		}
		uint8_t mac[6];
		ip6_mcast_mac(dst, mac);
		eth_write(p->data, mac, st->cfg.mac, ETHERTYPE_IPV6);
		tx_put(c, p);
		return 0;
	}
	nd6_output(c, p, nh);
	return 0;
}

/* Is dst ours: one of our addresses in use (ours = 1), or a group we are
 * in: all-nodes, the solicited-node group of any of our addresses,
 * tentative ones included, or one a socket joined (ours = 2). */
static int ip6_dst_ours(const struct usnet_stack *st, const uint8_t dst[16], int looping)
{
	if (looping && ip6_is_loopback(dst))
		return 1;
	if (!ip6_is_multicast(dst))
		return ip6_addr_usable(st, dst) ? 1 : 0;
	if (ip6_is_all_nodes(dst) || mc6_host_member(st, dst))
		return 2;
	if (ip6_is_solicited_node(dst))
		for (uint32_t i = 0; i < IP6_ADDRS; i++)
			if (st->ip6[i].state != USNET_IP6_ADDR_NONE && st->ip6[i].state != USNET_IP6_ADDR_DUPLICATE &&
			    memcmp(st->ip6[i].addr + 13, dst + 13, 3) == 0)
				return 2;
	return 0;
}

static void ip6_input_chain(struct net_ctx *c, const uint8_t *ip, uint32_t total, const struct ipv6_view *v,
			    int mcast, int reassembled, uint32_t rx_flags);

void ipv6_input(struct net_ctx *c, struct usnet_pkt *p, const uint8_t *ip, uint32_t len, int l2_mcast)
{
	struct usnet_stack *st = c->st;
	struct ipv6_view v;
	st->stats.ip6_rx++;
	switch (ipv6_parse(ip, len, &v)) {
	case IP6V_OK: break;
	case IP6V_VERSION: st->stats.ip6_drop_header++; return;
	case IP6V_SHORT:
	case IP6V_LEN: st->stats.ip6_drop_len++; return;
	}
	int ours = ip6_dst_ours(st, v.dst, c->looping);
	if (!ours) {
		/* A tentative address's packets are dropped too (RFC 4862
		 * 5.4): DAD's own messages go to its solicited-node group. */
		st->stats.ip6_drop_not_ours++;
		return;
	}
	/* Sources no packet may have on the wire: multicast, loopback, and
	 * our own addresses in use (RFC 4291 2.5.3, 2.7).  A tentative or
	 * duplicate one is another node's to send from: the node holding it
	 * answers our DAD probe from it (Linux does). */
	if (ip6_is_multicast(v.src) ||
	    (!c->looping && (ip6_is_loopback(v.src) || ip6_addr_usable(st, v.src)))) {
		st->stats.ip6_drop_header++;
		return;
	}
	ip6_input_chain(c, ip, IP6_HLEN + v.plen, &v, ours == 2 || l2_mcast, 0, p->flags);
}

void ip6_input_reassembled(struct net_ctx *c, const uint8_t *ip, uint32_t total, int mcast)
{
	struct ipv6_view v;
	if (ipv6_parse(ip, total, &v) != IP6V_OK)
		return;   /* ip6_reass.c wrote it: cannot happen */
	ip6_input_chain(c, ip, total, &v, mcast, 1, 0);   /* checksums summed here */
}

/* Walk the extension headers of the packet ip[0..total) and act on their
 * verdict; reassembled: it is a datagram made whole from fragments;
 * rx_flags: the frame's USNET_PKT_RX_* (checksums the netif checked). */
static void ip6_input_chain(struct net_ctx *c, const uint8_t *ip, uint32_t total, const struct ipv6_view *v,
			    int mcast, int reassembled, uint32_t rx_flags)
{
	struct usnet_stack *st = c->st;
	struct ip6_ext_view x;
	switch (ip6_ext_walk(ip, total, v->next, &x)) {
	case IP6X_OK:
		break;
	case IP6X_NONE:
		return;   /* nothing follows: nothing to do */
	case IP6X_TRUNCATED:
		st->stats.ip6_drop_ext++;
		return;
	case IP6X_HBH_NOT_FIRST:
		st->stats.ip6_drop_hbh_order++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_NEXT, x.pointer, mcast, 0);
		return;
	case IP6X_UNKNOWN_NEXT:
		st->stats.ip6_drop_next_header++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_NEXT, x.pointer, mcast, 0);
		return;
	case IP6X_OPT_DISCARD:
		st->stats.ip6_drop_option++;
		return;
	case IP6X_OPT_PARAM:
		st->stats.ip6_drop_option++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_OPTION, x.pointer, mcast, 1);
		return;
	case IP6X_OPT_PARAM_UNICAST:
		st->stats.ip6_drop_option++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_OPTION, x.pointer, mcast, 0);
		return;
	case IP6X_ROUTING:
		st->stats.ip6_drop_routing++;
		icmp6_send_error(c, ip, total, ICMP6_PARAM_PROB, ICMP6_PARAM_HEADER, x.pointer, mcast, 0);
		return;
	case IP6X_FRAGMENT:
		if (reassembled) {   /* a fragment of a fragment: not taken */
			st->stats.ip6_drop_frag++;
			return;
		}
		ip6_reass_input(c, ip, total, v, &x, mcast);
		return;
	}
	/* Neighbor Discovery never comes in fragments, atomic or not (RFC
	 * 6980 5). */
	if ((reassembled || x.frag) && x.proto == IP6_NH_ICMP6 && x.off < total && ip[x.off] >= ND_RS &&
	    ip[x.off] <= ND_REDIRECT) {
		st->stats.ip6_drop_frag++;
		return;
	}
	ip6_deliver(c, ip, total, v, &x, mcast, rx_flags);
}

void ip6_deliver(struct net_ctx *c, const uint8_t *ip, uint32_t total, const struct ipv6_view *v,
		 const struct ip6_ext_view *x, int mcast, uint32_t rx_flags)
{
	struct usnet_stack *st = c->st;
	switch (x->proto) {
	case IP6_NH_ICMP6:
		icmp6_input(c, ip, v, ip + x->off, total - x->off, mcast);
		return;
	case IP6_NH_TCP:
		if (mcast) {   /* TCP has nothing to say to a group */
			st->stats.ip6_drop_not_ours++;
			return;
		}
		/* tcp_input reads the full addresses from c (its src and dst
		 * are their folds), the ECN field from the traffic class */
		c->rx_src6 = v->src;
		c->rx_dst6 = v->dst;
		c->rx_tos = (uint8_t)((ip[0] & 0x0f) << 4 | ip[1] >> 4);
		tcp_input(c, ip6_fold(v->src), ip6_fold(v->dst), ip + x->off, total - x->off, rx_flags);
		c->rx_src6 = c->rx_dst6 = NULL;
		c->rx_tos = 0;
		return;
	case IP6_NH_UDP:
		udp_input6(c, ip, total, v->src, v->dst, ip + x->off, total - x->off, rx_flags, mcast);
		return;
	default:
		/* Upper layers the stack has no sockets for (RFC 4443 3.1:
		 * port unreachable, code 4). */
		st->stats.ip6_no_transport++;
		icmp6_send_error(c, ip, total, ICMP6_DST_UNREACH, ICMP6_UNREACH_PORT, 0, mcast, 0);
		return;
	}
}
