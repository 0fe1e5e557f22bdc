/* IPv4 input (validation, dispatch, reassembly hand-off) and output. */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_igmp.h"
#include "wire_eth.h"

void ipv4_input(struct net_ctx *c, struct usnet_pkt *p, const uint8_t *ip, uint32_t len)
{
	struct usnet_stack *st = c->st;
	struct ipv4_view v;
	st->stats.ip_rx++;
	switch (ipv4_parse(ip, len, &v)) {
	case IP4_OK: break;
	case IP4_BAD_HEADER: st->stats.ip_drop_header++; return;
	case IP4_BAD_LEN: st->stats.ip_drop_len++; return;
	case IP4_BAD_CSUM: st->stats.ip_drop_csum++; return;
	}
	/* Loopback addresses: only on frames the stack sent itself (loop.c). */
	int loopback = c->looping && ip4_is_loopback(v.dst);
	int mcast = ip4_is_multicast(v.dst) && mc_host_member(st, v.dst);
	if (v.dst != st->cfg.ip && v.dst != 0xffffffffu && !loopback && !mcast &&
	    !(st->netmask != 0xffffffffu && v.dst == (st->cfg.ip | ~st->netmask))) {
		st->stats.ip_drop_not_ours++;
		return;
	}
	/* Martian sources: loopback, multicast, broadcast, our own address --
	 * the first and the last only from ourselves. */
	if ((ip4_is_loopback(v.src) && !c->looping) || (v.src >> 28) == 0xe || v.src == 0xffffffffu ||
	    (v.src == st->cfg.ip && !c->looping)) {
		st->stats.ip_drop_header++;
		return;
	}
	if (ip[IP4_TTL] == 0 && !c->looping) {   /* a TTL 0 multicast loops to its own host */
		st->stats.ip_drop_header++;
		return;
	}
	if (v.frag & (IP4_MF | IP4_OFFMASK)) {
		ip_reass_input(c, ip, v.hlen, v.tot - v.hlen, p->flags);
		return;
	}
	ipv4_deliver(c, v.src, v.dst, v.proto, ip, ip + v.hlen, v.tot - v.hlen, p->flags);
}

void ipv4_deliver(struct net_ctx *c, uint32_t src, uint32_t dst, uint8_t proto,
		  const uint8_t *ip_hdr, const uint8_t *l4, uint32_t l4len, uint32_t rx_flags)
{
	uint32_t hlen = (uint32_t)(ip_hdr[0] & 0xf) * 4;
	switch (proto) {
	case IPPROTO_TCP_:
		if (dst != c->st->cfg.ip && !ip4_is_loopback(dst)) {   /* no TCP to broadcast */
			c->st->stats.ip_drop_not_ours++;
			return;
		}
		c->rx_tos = ip_hdr[1];
		tcp_input(c, src, dst, l4, l4len, rx_flags);
		break;
	case IPPROTO_UDP_:
		udp_input(c, src, dst, ip_hdr, l4, l4len, rx_flags, hlen + l4len);
		break;
	case IPPROTO_ICMP_:
		icmp_input(c, src, dst, ip_hdr, l4, l4len, rx_flags);
		break;
	case IPPROTO_IGMP_:
		igmp_input(c, src, dst, l4, l4len);
		break;
	default:
		c->st->stats.ip_drop_not_ours++;
		break;
	}
}

/* The L4 checksum of the segment after an IP header of iph bytes, from
 * the pseudo-header sum ph: left to the device (CHECKSUM_PARTIAL, the
 * pseudo-header sum in the field) or summed here.  A UDP sum of 0 is sent
 * as 0xffff (0 means none over IPv4 and is not allowed over IPv6, RFC
 * 8200 8.1). */
static void l4_csum_set(struct net_ctx *c, struct usnet_pkt *p, uint8_t proto, uint32_t iph, uint64_t ph,
			uint32_t l4len)
{
	uint8_t *l4 = p->data + ETH_HLEN + iph;
	uint16_t off = proto == IPPROTO_TCP_ ? 16 : 6;
	if (c->st->cfg.netif_caps & USNET_NETIF_CAP_TX_CSUM) {
		wr16(l4 + off, csum_fold(ph));
		p->flags |= USNET_PKT_TX_CSUM_PARTIAL;
		p->csum_start = (uint16_t)(ETH_HLEN + iph);
		p->csum_offset = off;
		return;
	}
	wr16(l4 + off, 0);
	uint16_t sum = (uint16_t)~csum_fold(csum_add(ph, l4, l4len));
	if (proto == IPPROTO_UDP_ && sum == 0)
		sum = 0xffff;
	wr16(l4 + off, sum);
}

void l4_csum_finish(struct net_ctx *c, struct usnet_pkt *p, uint8_t proto,
		    uint32_t src, uint32_t dst, uint32_t l4len)
{
	l4_csum_set(c, p, proto, IP_HLEN, csum_pseudo(src, dst, proto, l4len), l4len);
}

void l4_csum_finish6(struct net_ctx *c, struct usnet_pkt *p, uint8_t proto,
		     const uint8_t src[16], const uint8_t dst[16], uint32_t l4len)
{
	l4_csum_set(c, p, proto, 40 /* IP6_HLEN */, csum_pseudo6(src, dst, proto, l4len), l4len);
}

int ipv4_output(struct net_ctx *c, struct usnet_pkt *p, uint32_t src, uint32_t dst,
		uint8_t proto, uint32_t l4len, uint16_t frag_field, uint16_t id)
{
	struct usnet_stack *st = c->st;
	uint32_t nh;
	int to_self = dst == st->cfg.ip || ip4_is_loopback(dst);
	int mcast = ip4_is_multicast(dst);
	if (dst == 0xffffffffu || to_self || mcast) {
		nh = dst;
	} else if (route_lookup(st, dst, &nh) < 0) {
		tx_unget(c, p);
		return -USNET_ENETUNREACH;
	}
	uint8_t *ip = p->data + ETH_HLEN;
	if (id == 0 && !(frag_field & IP4_DF))
		id = ++st->ip_id;
	uint8_t ttl = mcast ? c->mc_ttl : c->ip_ttl ? c->ip_ttl : IP4_DEFAULT_TTL;
	ipv4_write(ip, src, dst, proto, (uint16_t)(IP_HLEN + l4len), id, frag_field, ttl, c->ip_tos);
	p->len = ETH_HLEN + IP_HLEN + l4len;
	if (p->len < 60) {
		memset(p->data + p->len, 0, 60 - p->len);
		p->len = 60;
	}
	if (to_self) {
		loop_put(c, p);   /* to itself: never on the wire */
		return 0;
	}
	if (mcast) {
		/* A copy for the stack's own members (IP_MULTICAST_LOOP); TTL 0
		 * goes no further (Linux's ip_mc_output); no ARP: the group's
		 * own MAC (RFC 1112 6.4). */
		if (c->mc_loop && mc_host_member(st, dst))
			loop_copy(c, p);
		if (ttl == 0) {
			tx_unget(c, p);
			return 0;
		}
		uint8_t mac[6];
		ip4_multicast_mac(dst, mac);
		eth_write(p->data, mac, st->cfg.mac, ETHERTYPE_IPV4);
		tx_put(c, p);
		return 0;
	}
	arp_output(c, p, nh);
	return 0;
}

/* Copy stream bytes [off, off+n) of (header, iov...) into dst. */
void ipv4_gather(uint8_t *dst, const uint8_t *hdr, uint32_t hlen,
		   const struct usnet_iovec *iov, int iovcnt, uint32_t off, uint32_t n)
{
	while (n && off < hlen) {
		*dst++ = hdr[off++];
		n--;
	}
	off -= hlen;
	for (int i = 0; i < iovcnt && n; i++) {
		uint32_t l = (uint32_t)iov[i].len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint32_t k = min_u32(l - off, n);
		memcpy(dst, (const uint8_t *)iov[i].base + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
}

/* Send an L4 message of l4len bytes (hdr, then iov) as IPv4 fragments that
 * fit the frames; its checksum must already be in hdr. */
int ipv4_output_fragments(struct net_ctx *c, uint32_t src, uint32_t dst, uint8_t proto,
			  const uint8_t *hdr, uint32_t hlen, const struct usnet_iovec *iov, int iovcnt,
			  uint32_t l4len)
{
	struct usnet_stack *st = c->st;
	uint32_t room = c->frame_size > ETH_HLEN + IP_HLEN ? c->frame_size - ETH_HLEN - IP_HLEN : 0;
	if (room > st->cfg.mtu - IP_HLEN)
		room = st->cfg.mtu - IP_HLEN;
	uint32_t fmax = room & ~7u;
	if (fmax < 8)
		return -USNET_EMSGSIZE;
	uint16_t id = ++st->ip_id;
	for (uint32_t off = 0; off < l4len; off += fmax) {
		uint32_t n = min_u32(fmax, l4len - off);
		struct usnet_pkt *p = tx_get(c);
		if (!p)
			return -USNET_ENOBUFS;
		ipv4_gather(p->data + ETH_HLEN + IP_HLEN, hdr, hlen, iov, iovcnt, off, n);
		uint16_t frag = (uint16_t)(off / 8) | (off + n < l4len ? IP4_MF : 0);
		int r = ipv4_output(c, p, src, dst, proto, n, frag, id);
		if (r < 0)
			return r;
	}
	return 0;
}
