/*
 * ICMPv6 (RFC 4443): echo replies (in fragments when larger than the path
 * MTU), Neighbor Discovery handed to nd6.c, MLD to mld6.c, Packet Too Big
 * handed to the path MTU table (ip6_pmtu.c), and the error messages IPv6
 * input asks for, under the rules of 2.4: never about an error or a
 * Redirect, never to a source that names no single node, about a
 * multicast packet only where allowed, rate limited.
 */
#include "internal.h"
#include "wire_ipv6.h"
#include "wire_mld6.h"

/* A token bucket: ICMP6_ERR_BURST errors at once, one more every
 * ICMP6_ERR_EVERY_NS. */
static int icmp6_err_allowed(struct usnet_stack *st, uint64_t now)
{
	if (now < st->icmp6_err_at) {
		st->icmp6_err_at = now;   /* a clock that went back: start from here */
	} else {
		uint64_t add = (now - st->icmp6_err_at) / ICMP6_ERR_EVERY_NS;
		if (add) {
			uint64_t t = st->icmp6_err_tokens + add;
			st->icmp6_err_tokens = t > ICMP6_ERR_BURST ? ICMP6_ERR_BURST : (uint32_t)t;
			st->icmp6_err_at = t >= ICMP6_ERR_BURST ? now : st->icmp6_err_at + add * ICMP6_ERR_EVERY_NS;
		}
	}
	if (st->icmp6_err_tokens == 0) {
		st->stats.icmp6_err_ratelimit++;
		return 0;
	}
	st->icmp6_err_tokens--;
	return 1;
}

void icmp6_send_error(struct net_ctx *c, const uint8_t *ip, uint32_t total, uint8_t type, uint8_t code,
		      uint32_t param, int l2_mcast, int mcast_ok)
{
	struct usnet_stack *st = c->st;
	const uint8_t *src = ip + IP6_SRC, *dst = ip + IP6_DST;
	if (ip6_is_unspecified(src) || ip6_is_multicast(src))
		return;
	if ((ip6_is_multicast(dst) || l2_mcast) && !mcast_ok)
		return;
	uint8_t proto;
	uint32_t off;
	if (ip6_find_upper(ip, total, &proto, &off) && proto == IP6_NH_ICMP6 && off < total &&
	    (icmp6_is_error(ip[off]) || ip[off] == ND_REDIRECT))
		return;
	uint8_t from[16];
	if (ip6_addr_usable(st, dst))
		memcpy(from, dst, 16);
	else if (ip6_select_src(st, src, from) < 0)
		return;
	if (!icmp6_err_allowed(st, c->now))
		return;
	/* As much of the packet as fits in the minimum MTU (2.4(c)). */
	uint32_t quote = min_u32(total, IP6_MIN_MTU - IP6_HLEN - ICMP6_HLEN);
	if (c->frame_size < ETH_HLEN + IP6_HLEN + ICMP6_HLEN)
		return;
	quote = min_u32(quote, c->frame_size - ETH_HLEN - IP6_HLEN - ICMP6_HLEN);
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return;
	uint8_t *r = p->data + ETH_HLEN + IP6_HLEN;
	r[ICMP6_TYPE] = type;
	r[ICMP6_CODE] = code;
	wr16(r + ICMP6_CSUM, 0);
	wr32(r + 4, param);
	memcpy(r + ICMP6_HLEN, ip, quote);
	uint32_t len = ICMP6_HLEN + quote;
	wr16(r + ICMP6_CSUM, icmp6_checksum(r, len, from, src));
	if (ipv6_output(c, p, from, src, IP6_NH_ICMP6, len, ip6_default_hops(c->st)) == 0) {
		st->stats.icmp6_tx++;
		st->stats.icmp6_err_tx++;
	}
}

static void icmp6_echo_reply(struct net_ctx *c, const struct ipv6_view *v, const uint8_t *p, uint32_t len)
{
	struct usnet_stack *st = c->st;
	uint8_t from[16], to[16];
	memcpy(to, v->src, 16);
	/* To a group (all-nodes): from our address for the asker (4.2). */
	if (ip6_is_multicast(v->dst)) {
		if (ip6_select_src(st, to, from) < 0)
			return;
	} else {
		memcpy(from, v->dst, 16);
	}
	/* The reply is the request with another type: its checksum from the
	 * new header and the same data, then one packet or fragments of it
	 * (a reassembled request may be larger than the path MTU). */
	if (len < ICMP6_HLEN)
		return;
	uint8_t h[ICMP6_HLEN];
	memcpy(h, p, ICMP6_HLEN);
	h[ICMP6_TYPE] = ICMP6_ECHO_REPLY;
	h[ICMP6_CODE] = 0;
	wr16(h + ICMP6_CSUM, 0);
	uint64_t sum = csum_add(csum_pseudo6(from, to, IP6_NH_ICMP6, len), h, ICMP6_HLEN);
	sum = csum_add(sum, p + ICMP6_HLEN, len - ICMP6_HLEN);
	wr16(h + ICMP6_CSUM, (uint16_t)~csum_fold(sum));
	struct usnet_iovec iov = { (void *)(uintptr_t)(p + ICMP6_HLEN), len - ICMP6_HLEN };
	int r = ipv6_output_l4(c, from, to, IP6_NH_ICMP6, h, ICMP6_HLEN, &iov, 1, len, ip6_default_hops(c->st));
	if (r == 0)
		st->stats.icmp6_tx++;
	else if (r == -USNET_EMSGSIZE)
		st->stats.icmp6_drop_len++;
}

/* Packet Too Big (RFC 4443 3.2, RFC 8201 4) about a packet we sent: it
 * quotes as much of it as fits, at least its fixed header, whose source
 * must be one of our addresses. */
static void icmp6_packet_too_big(struct net_ctx *c, const uint8_t *p, uint32_t len)
{
	struct usnet_stack *st = c->st;
	if (len < ICMP6_HLEN + IP6_HLEN || (p[ICMP6_HLEN] >> 4) != 6 ||
	    ip6_addr_find(st, p + ICMP6_HLEN + IP6_SRC) < 0) {
		st->stats.ip6_pmtu_ignored++;
		return;
	}
	if (ip6_pmtu_update(st, p + ICMP6_HLEN + IP6_DST, rd32(p + 4), c->now)) {
		st->stats.ip6_pmtu_update++;
		tcp_mtu_reduced6(c, p + ICMP6_HLEN + IP6_DST, ip6_path_mtu(st, p + ICMP6_HLEN + IP6_DST, c->now));
	}
	else
		st->stats.ip6_pmtu_ignored++;
}

void icmp6_input(struct net_ctx *c, const uint8_t *ip, const struct ipv6_view *v, const uint8_t *p,
		 uint32_t len, int l2_mcast)
{
	struct usnet_stack *st = c->st;
	(void)l2_mcast;
	st->stats.icmp6_rx++;
	switch (icmp6_parse(p, len, v->src, v->dst)) {
	case ICMP6V_OK: break;
	case ICMP6V_SHORT: st->stats.icmp6_drop_len++; return;
	case ICMP6V_CSUM: st->stats.icmp6_drop_csum++; return;
	}
	switch (p[ICMP6_TYPE]) {
	case ICMP6_ECHO_REQUEST:
		if (len < ICMP6_HLEN) {
			st->stats.icmp6_drop_len++;
			return;
		}
		if (ip6_is_unspecified(v->src))
			return;   /* no one to answer */
		icmp6_echo_reply(c, v, p, len);
		return;
	case ND_RS: case ND_RA: case ND_NS: case ND_NA: case ND_REDIRECT:
		nd6_input(c, ip, v, p, len);
		return;
	case ICMP6_PKT_TOO_BIG:
		icmp6_packet_too_big(c, p, len);
		return;
	case MLD_QUERY: case MLD_V1_REPORT: case MLD_V1_DONE: case MLD_V2_REPORT:
		mld6_input(c, ip, v, p, len);
		return;
	default:
		/* Echo replies, and the other errors about what we sent:
		 * nothing this stack sends over IPv6 waits for one yet.
		 * Unknown informational types are ignored (2.4(b)). */
		return;
	}
}
