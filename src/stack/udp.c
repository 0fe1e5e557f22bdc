/*
 * UDP sockets (RFC 768; over IPv6 RFC 8200 8.1): datagrams are kept as
 * records in the shared pool (first chunk: seq = IPv4 source address, aux
 * = source port << 16 | length, and before its data a struct udp_rec_meta:
 * where it was sent and when it came, for IP_PKTINFO and SO_TIMESTAMP, and
 * an IPv6 datagram's addresses).
 * Datagrams larger than the (path) MTU leave in fragments, over IPv4 and
 * over IPv6 (as Linux without IPV6_DONTFRAG).
 */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_ipv6.h"
#include "wire_udp.h"
#include "wire_icmp.h"
#include "wire_igmp.h"

#define UDP_MAX_PAYLOAD (65535u - IP_HLEN - UDP_HLEN)
#define UDP6_MAX_PAYLOAD (65535u - UDP_HLEN)   /* the payload length field holds UDP and data */

static void udp_queue(struct net_ctx *c, struct sock *s, uint32_t src, uint16_t sport, uint32_t dst,
		      const uint8_t *data, uint32_t plen);
static void udp_queue_meta(struct net_ctx *c, struct sock *s, uint32_t src, uint16_t sport,
			   const struct udp_rec_meta *meta, const uint8_t *data, uint32_t plen);

/* A datagram to a group the instance joined (ipv4_input let it in): to
 * every UDP socket on the port bound to the wildcard or to the group,
 * connected to nobody or to the sender, that joined the group -- or, with
 * IP_MULTICAST_ALL on (Linux's default), that joined any group or none
 * (Linux's __udp4_lib_mcast_deliver and ip_mc_sf_allow). */
static void udp_multicast_input(struct net_ctx *c, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
				const uint8_t *data, uint32_t plen)
{
	struct usnet_stack *st = c->st;
	struct sock *socks = st_socks(st);
	int delivered = 0;
	for (int32_t i = st_port_hash(st)[port_hashfn(st, dport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != USNET_SOCK_DGRAM || s->lport != dport)
			continue;
		if (s->net6 ? !sock_dual_any(st, i) : s->lip != 0 && s->lip != dst)
			continue;
		if ((s->flags & SF_CONNECTED) && (s->rip != src || s->rport != sport))
			continue;
		if ((s->mc_opts & MCO_NOALL) && !mc_sock_member(st, i, dst))
			continue;
		udp_queue(c, s, src, sport, dst, data, plen);
		delivered = 1;
	}
	if (delivered)
		st->stats.udp_mcast_rx++;
	else
		st->stats.udp_no_port++;   /* never an ICMP error about a multicast (RFC 1122 3.2.2) */
}

/* The same over IPv6 (ipv6_input let it in): to every IPv6 UDP socket on
 * the port bound to :: or to the group, connected to nobody or to the
 * sender (Linux's __udp6_lib_mcast_deliver with IPV6_MULTICAST_ALL on). */
static void udp_multicast_input6(struct net_ctx *c, const struct udp_rec_meta *meta, uint16_t sport,
				 uint16_t dport, const uint8_t *data, uint32_t plen)
{
	struct usnet_stack *st = c->st;
	struct sock *socks = st_socks(st);
	struct sock6 *a6 = st_sock6(st);
	int delivered = 0;
	for (int32_t i = st_port_hash(st)[port_hashfn(st, dport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != USNET_SOCK_DGRAM || s->lport != dport || !s->net6)
			continue;
		if (!ip6_is_unspecified(a6[i].laddr) && !ip6_eq(a6[i].laddr, meta->dst6))
			continue;
		if ((s->flags & SF_CONNECTED) && (!ip6_eq(a6[i].raddr, meta->src6) || s->rport != sport))
			continue;
		udp_queue_meta(c, s, 0, sport, meta, data, plen);
		delivered = 1;
	}
	if (delivered)
		st->stats.udp_mcast_rx++;
	else
		st->stats.udp_no_port++;   /* never an ICMP error about a multicast (RFC 4443 2.4) */
}

/* A datagram's length as its header gives it (counted and 0 when the
 * header is cut short or says more than len, or less than itself). */
static uint32_t udp_len_ok(struct usnet_stack *st, const uint8_t *p, uint32_t len)
{
	st->stats.udp_rx++;
	uint32_t ulen = len < UDP_HLEN ? 0 : rd16(p + UDP_LEN);
	if (ulen < UDP_HLEN || ulen > len) {
		st->stats.udp_drop_len++;
		return 0;
	}
	return ulen;
}

void udp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *ip_hdr,
	       const uint8_t *p, uint32_t len, uint32_t rx_flags, uint32_t ip_len)
{
	struct usnet_stack *st = c->st;
	uint32_t ulen = udp_len_ok(st, p, len);
	if (!ulen)
		return;
	if (rd16(p + UDP_CSUM) != 0 && !(rx_flags & (USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL))) {
		uint64_t sum = csum_add(csum_pseudo(src, dst, IPPROTO_UDP_, ulen), p, ulen);
		if (csum_fold(sum) != 0xffff) {
			st->stats.udp_drop_csum++;
			return;
		}
	}
	uint16_t sport = rd16(p + UDP_SPORT), dport = rd16(p + UDP_DPORT);
	if (ip4_is_multicast(dst)) {
		udp_multicast_input(c, src, sport, dst, dport, p + UDP_HLEN, ulen - UDP_HLEN);
		return;
	}
	int32_t i = udp_port_lookup(st, dst == st->cfg.ip ? dst : 0, dport, src, sport);
	struct sock *s = i == NIL ? NULL : sk(st, i);
	if (!s) {
		st->stats.udp_no_port++;
		if (dst == st->cfg.ip)
			icmp_send_unreach(c, ip_hdr, ip_len, ICMP_UNREACH_PORT);
		return;
	}
	udp_queue(c, s, src, sport, dst, p + UDP_HLEN, ulen - UDP_HLEN);
}

void udp_input6(struct net_ctx *c, const uint8_t *ip, uint32_t total, const uint8_t *src, const uint8_t *dst,
		const uint8_t *p, uint32_t len, uint32_t rx_flags, int mcast)
{
	struct usnet_stack *st = c->st;
	uint32_t ulen = udp_len_ok(st, p, len);
	if (!ulen)
		return;
	/* RFC 8200 8.1: the checksum is not optional over IPv6 */
	if (rd16(p + UDP_CSUM) == 0) {
		st->stats.udp_drop_csum++;
		return;
	}
	if (!(rx_flags & (USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL)) &&
	    csum_fold(csum_add(csum_pseudo6(src, dst, IPPROTO_UDP_, ulen), p, ulen)) != 0xffff) {
		st->stats.udp_drop_csum++;
		return;
	}
	uint16_t sport = rd16(p + UDP_SPORT), dport = rd16(p + UDP_DPORT);
	struct udp_rec_meta meta;
	memset(&meta, 0, sizeof meta);
	meta.v6 = 1;
	meta.at_ns = c->now;
	memcpy(meta.src6, src, 16);
	memcpy(meta.dst6, dst, 16);
	if (ip6_is_multicast(dst)) {
		udp_multicast_input6(c, &meta, sport, dport, p + UDP_HLEN, ulen - UDP_HLEN);
		return;
	}
	/* (a unicast destination in a multicast frame is no one's) */
	int32_t i = mcast ? NIL : udp_port_lookup6(st, dst, dport, src, sport);
	if (i == NIL) {
		st->stats.udp_no_port++;
		if (!mcast)   /* RFC 4443 3.1 code 4; never about a multicast */
			icmp6_send_error(c, ip, total, ICMP6_DST_UNREACH, ICMP6_UNREACH_PORT, 0, 0, 0);
		return;
	}
	udp_queue_meta(c, sk(st, i), 0, sport, &meta, p + UDP_HLEN, ulen - UDP_HLEN);
}

/* Queue a datagram of plen bytes on s (or count why not). */
static void udp_queue(struct net_ctx *c, struct sock *s, uint32_t src, uint16_t sport, uint32_t dst,
		      const uint8_t *data, uint32_t plen)
{
	struct udp_rec_meta meta;
	memset(&meta, 0, sizeof meta);
	meta.dst = dst;
	meta.at_ns = c->now;
	udp_queue_meta(c, s, src, sport, &meta, data, plen);
}

static void udp_queue_meta(struct net_ctx *c, struct sock *s, uint32_t src, uint16_t sport,
			   const struct udp_rec_meta *meta, const uint8_t *data, uint32_t plen)
{
	struct usnet_stack *st = c->st;
	/* Each datagram is charged its bytes plus an overhead, so a flood of
	 * empty datagrams cannot hold unbounded pool chunks. */
	uint32_t charge = plen + UDP_DGRAM_OVERHEAD;
	if (s->rcvq.bytes + charge > s->rcvbuf || (s->flags & SF_SHUT_RD)) {
		st->stats.udp_drop_nobuf++;
		return;
	}
	int32_t rec = chain_from_bytes_hdr(st, meta, sizeof *meta, data, plen);
	if (rec == NIL) {
		st->stats.udp_drop_nobuf++;
		return;
	}
	struct chunk *chunks = st_chunks(st);
	chunks[rec].seq = src;
	chunks[rec].aux = (uint32_t)sport << 16 | plen;
	if (s->rcvq.tail == NIL) s->rcvq.head = rec; else chunks[s->rcvq.tail].link = rec;
	s->rcvq.tail = rec;
	s->rcvq.bytes += charge;
	s->flags |= SF_EV_EDGE;
	sock_notify(c, s);
}

static uint64_t csum_iov(uint64_t sum, const struct usnet_iovec *iov, int iovcnt)
{
	uint32_t pos = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].len)
			continue;
		uint16_t part = csum_fold(csum_add(0, iov[i].base, iov[i].len));
		if (pos & 1)   /* a piece starting at an odd offset sums byte-swapped */
			part = (uint16_t)(part << 8 | part >> 8);
		sum += part;
		pos += (uint32_t)iov[i].len;
	}
	return sum;
}

/* A datagram to (dst, dport) over IPv6: from the socket's address, or
 * the one ip6_select_src picks (::1 to ::1). */
static long udp_sendv6(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
		       const uint8_t dst[16], uint16_t dport)
{
	struct usnet_stack *st = c->st;
	int32_t si = sk_index(st, s);
	if (s->af != USNET_AF_INET6)
		return -USNET_EAFNOSUPPORT;
	if (dport == 0 || ip6_is_unspecified(dst))
		return -USNET_EINVAL;
	if (s->flags & SF_SHUT_WR)
		return -USNET_EPIPE;
	if ((s->flags & SF_BOUND) && !s->net6)
		return -USNET_ENETUNREACH;   /* bound to an IPv4 address */
	uint64_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].len;
	if (total > UDP6_MAX_PAYLOAD)
		return -USNET_EMSGSIZE;
	uint8_t src[16], nh[16];
	const uint8_t *bound = st_sock6(st)[si].laddr;
	if (s->net6 && !ip6_is_unspecified(bound) && !ip6_is_multicast(bound))   /* a group is no source */
		memcpy(src, bound, 16);
	else if (ip6_is_loopback(dst))
		memcpy(src, dst, 16);
	else if (ip6_addr_find(st, dst) >= 0)
		memcpy(src, dst, 16);
	else if (ip6_select_src(st, dst, src) < 0)
		return -USNET_EADDRNOTAVAIL;
	if (!ip6_is_multicast(dst) && !ip6_is_loopback(dst) && ip6_addr_find(st, dst) < 0 &&
	    route6_lookup(st, dst, nh) < 0)
		return -USNET_ENETUNREACH;
	if (!(s->flags & SF_BOUND)) {
		static const uint8_t any[16];
		int r = sock_bind6(st, si, any, 0);
		if (r < 0)
			return r;
	}
	uint32_t ulen = UDP_HLEN + (uint32_t)total;
	uint8_t hdr[UDP_HLEN];
	wr16(hdr + UDP_SPORT, s->lport);
	wr16(hdr + UDP_DPORT, dport);
	wr16(hdr + UDP_LEN, (uint16_t)ulen);
	wr16(hdr + UDP_CSUM, 0);
	c->ip_tos = s->ip6_tclass;
	/* a group's hop limit and loop are the socket's IPv6 multicast options */
	uint8_t hops = ip6_is_multicast(dst) ? s->mc6_hops : s->ip6_hops < 0 ? ip6_default_hops(st) : (uint8_t)s->ip6_hops;
	c->mc_loop = !(s->mc_opts & MCO_NOLOOP6);
	uint32_t room = c->frame_size > ETH_HLEN + IP6_HLEN ? c->frame_size - ETH_HLEN - IP6_HLEN : 0;
	uint32_t pmtu = ip6_path_mtu(st, dst, c->now) - IP6_HLEN;
	int r;
	if (ulen <= room && ulen <= pmtu) {
		struct usnet_pkt *p = tx_get(c);
		if (!p) {
			c->ip_tos = 0;
			return -USNET_ENOBUFS;
		}
		ipv4_gather(p->data + ETH_HLEN + IP6_HLEN, hdr, UDP_HLEN, iov, iovcnt, 0, ulen);
		l4_csum_finish6(c, p, IPPROTO_UDP_, src, dst, ulen);
		r = ipv6_output(c, p, src, dst, IPPROTO_UDP_, ulen, hops);
	} else {
		/* Larger than the path MTU: in fragments, as Linux sends
		 * without IPV6_DONTFRAG; the checksum is complete first. */
		uint16_t sum = (uint16_t)~csum_fold(csum_iov(csum_add(csum_pseudo6(src, dst, IPPROTO_UDP_, ulen),
								      hdr, UDP_HLEN), iov, iovcnt));
		wr16(hdr + UDP_CSUM, sum ? sum : 0xffff);
		r = ipv6_output_l4(c, src, dst, IPPROTO_UDP_, hdr, UDP_HLEN, iov, iovcnt, ulen, hops);
	}
	c->ip_tos = 0;
	if (r < 0)
		return r;
	st->stats.udp_tx++;
	return (long)total;
}

long udp_sendv(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
	       const struct usnet_addr *to)
{
	struct usnet_stack *st = c->st;
	uint32_t dip;
	uint16_t dport;
	if (to ? to->family == USNET_AF_INET6 : (s->flags & SF_CONNECTED) && s->net6)
		return udp_sendv6(c, s, iov, iovcnt, to ? to->ip6 : st_sock6(st)[sk_index(st, s)].raddr,
				  to ? to->port : s->rport);
	if (to) {
		dip = to->ip;
		dport = to->port;
	} else if (s->flags & SF_CONNECTED) {
		dip = s->rip;
		dport = s->rport;
	} else {
		return -USNET_EDESTADDRREQ;
	}
	/* an IPv6 socket reaches IPv4 only from :: with V6ONLY 0 */
	if (s->net6 && !sock_dual_any(st, sk_index(st, s)))
		return -USNET_ENETUNREACH;
	if (dport == 0 || dip == 0)
		return -USNET_EINVAL;
	if (s->flags & SF_SHUT_WR)
		return -USNET_EPIPE;
	uint64_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].len;
	if (total > UDP_MAX_PAYLOAD)
		return -USNET_EMSGSIZE;
	uint32_t nh;
	int loopback = ip4_is_loopback(dip);
	int mcast = ip4_is_multicast(dip);
	if (dip != 0xffffffffu && !loopback && !mcast && route_lookup(st, dip, &nh) < 0)
		return -USNET_ENETUNREACH;
	if (!(s->flags & SF_BOUND) && s->af == USNET_AF_INET6) {
		static const uint8_t any[16];
		int r = sock_bind6(st, sk_index(st, s), any, 0);   /* as Linux: on ::, dual */
		if (r < 0)
			return r;
	}
	if (!(s->flags & SF_BOUND)) {
		uint16_t port;
		/* the first destination's replies should reach this queue (RSS) */
		int r = choose_ephemeral(st, c->io, USNET_SOCK_DGRAM, s->lip, dip, dport, &port);
		if (r < 0)
			return r;
		s->lport = port;
		port_insert(st, sk_index(st, s));
	}
	uint32_t ulen = UDP_HLEN + (uint32_t)total;
	uint32_t src = loopback ? IP4_LOOPBACK : mcast && s->mc_if ? s->mc_if : st->cfg.ip;
	/* a group's TTL and loop are the socket's multicast options */
	c->mc_ttl = s->mc_ttl;
	c->mc_loop = !(s->mc_opts & MCO_NOLOOP);
	uint8_t hdr[UDP_HLEN];
	wr16(hdr + UDP_SPORT, s->lport);
	wr16(hdr + UDP_DPORT, dport);
	wr16(hdr + UDP_LEN, (uint16_t)ulen);
	wr16(hdr + UDP_CSUM, 0);
	uint32_t room = c->frame_size > ETH_HLEN + IP_HLEN ? c->frame_size - ETH_HLEN - IP_HLEN : 0;
	if (room > st->cfg.mtu - IP_HLEN)
		room = st->cfg.mtu - IP_HLEN;
	if (ulen <= room) {
		struct usnet_pkt *p = tx_get(c);
		if (!p)
			return -USNET_ENOBUFS;
		uint8_t *u = p->data + ETH_HLEN + IP_HLEN;
		ipv4_gather(u, hdr, UDP_HLEN, iov, iovcnt, 0, ulen);
		l4_csum_finish(c, p, IPPROTO_UDP_, src, dip, ulen);
		c->ip_ttl = s->ip_ttl;
		c->ip_tos = s->ip_tos;
		int r = ipv4_output(c, p, src, dip, IPPROTO_UDP_, ulen, 0, 0);
		c->ip_ttl = c->ip_tos = 0;
		if (r < 0)
			return r;
		st->stats.udp_tx++;
		return (long)total;
	}
	/* Fragmented: the checksum must be complete before the first fragment. */
	uint16_t sum = (uint16_t)~csum_fold(csum_iov(csum_add(csum_pseudo(src, dip, IPPROTO_UDP_, ulen), hdr, UDP_HLEN),
						     iov, iovcnt));
	if (sum == 0)
		sum = 0xffff;
	wr16(hdr + UDP_CSUM, sum);
	c->ip_ttl = s->ip_ttl;
	c->ip_tos = s->ip_tos;
	int r = ipv4_output_fragments(c, src, dip, IPPROTO_UDP_, hdr, UDP_HLEN, iov, iovcnt, ulen);
	c->ip_ttl = c->ip_tos = 0;
	if (r < 0)
		return r;
	st->stats.udp_tx++;
	return (long)total;
}

/* The struct udp_rec_meta before record rec's data: 1, or 0 when the
 * record has none (repair may leave one without). */
static int udp_rec_meta_of(struct usnet_stack *st, int32_t rec, struct udp_rec_meta *m)
{
	const struct chunk *ch = &st_chunks(st)[rec];
	if (ch->off < sizeof *m)
		return 0;
	memcpy(m, chunk_ptr(st, rec) + ch->off - sizeof *m, sizeof *m);
	return 1;
}

long udp_recvv(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
	       unsigned flags, struct usnet_addr *from)
{
	struct usnet_stack *st = c->st;
	int32_t rec = s->rcvq.head;
	if (rec == NIL) {
		if (s->flags & SF_SHUT_RD)
			return 0;
		return -USNET_EAGAIN;
	}
	struct chunk *chunks = st_chunks(st);
	uint32_t plen = chunks[rec].aux & 0xffff;
	if (from) {
		struct udp_rec_meta m;
		memset(from, 0, sizeof *from);
		from->port = (uint16_t)(chunks[rec].aux >> 16);
		if (udp_rec_meta_of(st, rec, &m) && m.v6) {
			from->family = USNET_AF_INET6;
			memcpy(from->ip6, m.src6, 16);
		} else {
			from->ip = chunks[rec].seq;
		}
	}
	uint32_t copied = 0;
	int32_t k = rec;
	uint32_t koff = 0;
	for (int i = 0; i < iovcnt && k != NIL; i++) {
		uint8_t *d = iov[i].base;
		uint32_t want = (uint32_t)iov[i].len;
		while (want && k != NIL) {
			struct chunk *ch = &chunks[k];
			uint32_t n = min_u32(ch->len - koff, want);
			memcpy(d, chunk_ptr(st, k) + ch->off + koff, n);
			d += n;
			want -= n;
			copied += n;
			koff += n;
			if (koff == ch->len) {
				k = ch->next;
				koff = 0;
			}
		}
	}
	if (!(flags & USNET_MSG_PEEK)) {
		s->rcvq.head = chunks[rec].link;
		if (s->rcvq.head == NIL)
			s->rcvq.tail = NIL;
		s->rcvq.bytes -= plen + UDP_DGRAM_OVERHEAD;
		chunk_free_chain(st, rec);
		sock_notify(c, s);
	}
	return (flags & USNET_MSG_TRUNC) ? (long)plen : (long)copied;
}

int udp_next_meta(struct usnet_stack *st, const struct sock *s, uint32_t *dst, uint64_t *at_ns)
{
	int32_t rec = s->rcvq.head;
	if (rec == NIL)
		return -USNET_EAGAIN;
	struct udp_rec_meta m;
	if (!udp_rec_meta_of(st, rec, &m))
		memset(&m, 0, sizeof m);
	*dst = m.v6 ? 0 : m.dst;
	*at_ns = m.at_ns;
	return 0;
}

int udp_next_dst(struct usnet_stack *st, const struct sock *s, struct usnet_addr *dst, uint64_t *at_ns)
{
	int32_t rec = s->rcvq.head;
	if (rec == NIL)
		return -USNET_EAGAIN;
	struct udp_rec_meta m;
	if (!udp_rec_meta_of(st, rec, &m))
		memset(&m, 0, sizeof m);
	if (dst) {
		memset(dst, 0, sizeof *dst);
		dst->port = s->lport;
		if (m.v6) {
			dst->family = USNET_AF_INET6;
			memcpy(dst->ip6, m.dst6, 16);
		} else {
			dst->ip = m.dst;
		}
	}
	if (at_ns)
		*at_ns = m.at_ns;
	return 0;
}

void udp_close(struct usnet_stack *st, struct sock *s)
{
	sock_free(st, sk_index(st, s));
}
