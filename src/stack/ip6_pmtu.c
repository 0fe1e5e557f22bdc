/*
 * IPv6 path MTU (RFC 8201) and fragmenting output (RFC 8200 4.5).
 *
 * Packet Too Big messages (icmp6.c) lower the path MTU of a destination in
 * a small table in the instance, for 10 minutes (Linux's
 * ip6_rt_mtu_expires), after which the link's MTU holds again; never
 * below 1280 (a lower value is taken as 1280, as Linux does), never raised
 * by a message.  What the upper layers send goes out whole when it fits
 * that MTU and the netif's frames, else in fragments of a multiple of 8
 * bytes, each with a Fragment header whose Identification is a keyed hash
 * of the addresses and a counter (unpredictable from outside, RFC 7739).
 */
#include "internal.h"
#include "wire_ipv6.h"

#define IP6_FRAG_HLEN 8

uint32_t ip6_path_mtu(struct usnet_stack *st, const uint8_t dst[16], uint64_t now)
{
	uint32_t link = link_mtu(st, 1);
	for (uint32_t i = 0; i < PMTU6_TABLE; i++) {
		const struct pmtu6 *e = &st->pmtu6[i];
		if (e->mtu && e->expires > now && ip6_eq(e->dst, dst))
			return min_u32(e->mtu, link);
	}
	return link;
}

int ip6_pmtu_update(struct usnet_stack *st, const uint8_t dst[16], uint32_t mtu, uint64_t now)
{
	if (mtu < IP6_MIN_MTU)
		mtu = IP6_MIN_MTU;
	if (mtu >= ip6_path_mtu(st, dst, now))
		return 0;
	/* dst's own entry, else a free or expired one, else the one that
	 * would expire first. */
	struct pmtu6 *e = NULL;
	for (uint32_t i = 0; i < PMTU6_TABLE && !e; i++)
		if (st->pmtu6[i].mtu && ip6_eq(st->pmtu6[i].dst, dst))
			e = &st->pmtu6[i];
	for (uint32_t i = 0; i < PMTU6_TABLE && !e; i++)
		if (!st->pmtu6[i].mtu || st->pmtu6[i].expires <= now)
			e = &st->pmtu6[i];
	if (!e) {
		e = &st->pmtu6[0];
		for (uint32_t i = 1; i < PMTU6_TABLE; i++)
			if (st->pmtu6[i].expires < e->expires)
				e = &st->pmtu6[i];
	}
	/* Free while rewritten: a process dying here leaves a free entry or
	 * a whole one. */
	e->mtu = 0;
	order_barrier();
	memcpy(e->dst, dst, 16);
	e->expires = now + PMTU6_EXPIRES_NS;
	order_barrier();
	e->mtu = mtu;
	/* What is sent from now on (ipv6_output_l4) uses the new MTU; the
	 * caller lowers the MSS of TCP connections to dst (tcp_mtu_reduced6). */
	return 1;
}

/* The Identification of the next datagram fragmented from src to dst. */
static uint32_t ip6_frag_ident(struct usnet_stack *st, const uint8_t src[16], const uint8_t dst[16])
{
	uint8_t key[36];
	uint32_t n = ++st->ip6_frag_seq;
	memcpy(key, src, 16);
	memcpy(key + 16, dst, 16);
	memcpy(key + 32, &n, 4);
	return (uint32_t)siphash24(st->cfg.secret, key, sizeof key);
}

int ipv6_output_l4(struct net_ctx *c, const uint8_t src[16], const uint8_t dst[16], uint8_t next,
		   const uint8_t *hdr, uint32_t hlen, const struct usnet_iovec *iov, int iovcnt, uint32_t len,
		   uint8_t hop_limit)
{
	struct usnet_stack *st = c->st;
	if (c->frame_size < ETH_HLEN + IP6_HLEN + IP6_FRAG_HLEN + 8 || len > REASM_MAX)
		return -USNET_EMSGSIZE;
	uint32_t mtu = min_u32(ip6_path_mtu(st, dst, c->now), c->frame_size - ETH_HLEN);
	if (IP6_HLEN + len <= mtu) {
		struct usnet_pkt *p = tx_get(c);
		if (!p)
			return -USNET_ENOBUFS;
		ipv4_gather(p->data + ETH_HLEN + IP6_HLEN, hdr, hlen, iov, iovcnt, 0, len);
		return ipv6_output(c, p, src, dst, next, len, hop_limit);
	}
	uint32_t fmax = (mtu - IP6_HLEN - IP6_FRAG_HLEN) & ~7u;
	uint32_t id = ip6_frag_ident(st, src, dst);
	for (uint32_t off = 0; off < len; off += fmax) {
		uint32_t n = min_u32(fmax, len - off);
		struct usnet_pkt *p = tx_get(c);
		if (!p)
			return -USNET_ENOBUFS;
		uint8_t *fh = p->data + ETH_HLEN + IP6_HLEN;
		fh[0] = next;
		fh[1] = 0;
		wr16(fh + 2, (uint16_t)(off | (off + n < len ? 1u : 0u)));   /* offset in 8-byte units, M */
		wr32(fh + 4, id);
		ipv4_gather(fh + IP6_FRAG_HLEN, hdr, hlen, iov, iovcnt, off, n);
		int r = ipv6_output(c, p, src, dst, IP6_NH_FRAGMENT, IP6_FRAG_HLEN + n, hop_limit);
		if (r < 0)
			return r;
		st->stats.ip6_frag_tx++;
	}
	return 0;
}
