/*
 * ICMPv4: echo replies, destination-unreachable generation (port
 * unreachable for UDP to a closed port), and "fragmentation needed"
 * (RFC 1191) lowering a TCP connection's path MTU.
 */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_icmp.h"
#include "wire_tcp.h"

static void icmp_echo_reply(struct net_ctx *c, uint32_t src, const uint8_t *p, uint32_t len)
{
	struct usnet_stack *st = c->st;
	if (ETH_HLEN + IP_HLEN + len > c->frame_size || IP_HLEN + len > st->cfg.mtu) {
		/* A large (reassembled) request: the reply leaves in fragments. */
		uint8_t hdr[ICMP_HLEN];
		memcpy(hdr, p, ICMP_HLEN);
		hdr[ICMP_TYPE] = ICMP_ECHO_REPLY;
		hdr[ICMP_CODE] = 0;
		wr16(hdr + ICMP_CSUM, 0);
		uint16_t sum = (uint16_t)~csum_fold(csum_add(csum_add(0, hdr, ICMP_HLEN), p + ICMP_HLEN, len - ICMP_HLEN));
		wr16(hdr + ICMP_CSUM, sum);
		struct usnet_iovec v = { (void *)(uintptr_t)(p + ICMP_HLEN), len - ICMP_HLEN };
		if (ipv4_output_fragments(c, st->cfg.ip, src, IPPROTO_ICMP_, hdr, ICMP_HLEN, &v, 1, len) == 0)
			st->stats.icmp_tx++;
		return;
	}
	struct usnet_pkt *t = tx_get(c);
	if (!t)
		return;
	uint8_t *r = t->data + ETH_HLEN + IP_HLEN;
	memcpy(r, p, len);
	r[ICMP_TYPE] = ICMP_ECHO_REPLY;
	r[ICMP_CODE] = 0;
	wr16(r + ICMP_CSUM, 0);
	wr16(r + ICMP_CSUM, (uint16_t)~csum_fold(csum_add(0, r, len)));
	if (ipv4_output(c, t, st->cfg.ip, src, IPPROTO_ICMP_, len, 0, 0) == 0)
		st->stats.icmp_tx++;
}

void icmp_send_unreach(struct net_ctx *c, const uint8_t *ip_hdr, uint32_t ip_len, uint8_t code)
{
	struct usnet_stack *st = c->st;
	uint32_t src = rd32(ip_hdr + IP4_SRC);
	uint32_t dst = rd32(ip_hdr + IP4_DST);
	/* RFC 1122 3.2.2: never about broadcasts or non-first fragments. */
	if (dst != st->cfg.ip || (rd16(ip_hdr + IP4_FRAG) & IP4_OFFMASK))
		return;
	uint32_t hlen = (uint32_t)(ip_hdr[0] & 0xf) * 4;
	uint32_t quote = hlen + 8 < ip_len ? hlen + 8 : ip_len;
	struct usnet_pkt *t = tx_get(c);
	if (!t)
		return;
	uint8_t *r = t->data + ETH_HLEN + IP_HLEN;
	r[ICMP_TYPE] = ICMP_UNREACH;
	r[ICMP_CODE] = code;
	wr16(r + ICMP_CSUM, 0);
	wr32(r + 4, 0);
	memcpy(r + ICMP_HLEN, ip_hdr, quote);
	uint32_t len = ICMP_HLEN + quote;
	wr16(r + ICMP_CSUM, (uint16_t)~csum_fold(csum_add(0, r, len)));
	if (ipv4_output(c, t, st->cfg.ip, src, IPPROTO_ICMP_, len, 0, 0) == 0)
		st->stats.icmp_tx++;
}

void icmp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *ip_hdr,
		const uint8_t *p, uint32_t len, uint32_t rx_flags)
{
	struct usnet_stack *st = c->st;
	(void)ip_hdr; (void)rx_flags;
	st->stats.icmp_rx++;
	if (len < ICMP_HLEN || csum_fold(csum_add(0, p, len)) != 0xffff) {
		st->stats.icmp_drop++;
		return;
	}
	switch (p[ICMP_TYPE]) {
	case ICMP_ECHO_REQUEST:
		if (dst != st->cfg.ip) {   /* no replies to broadcast pings */
			st->stats.icmp_drop++;
			return;
		}
		icmp_echo_reply(c, src, p, len);
		return;
	case ICMP_UNREACH: {
		/* The quoted header: IP (>= 20 bytes) then 8 bytes of TCP. */
		const uint8_t *q = p + ICMP_HLEN;
		uint32_t qlen = len - ICMP_HLEN;
		if (qlen < 20 || (q[0] >> 4) != 4) {
			st->stats.icmp_drop++;
			return;
		}
		uint32_t qh = (uint32_t)(q[0] & 0xf) * 4;
		if (qh < 20 || qlen < qh + 8 || rd32(q + IP4_SRC) != st->cfg.ip) {
			st->stats.icmp_drop++;
			return;
		}
		if (p[ICMP_CODE] == ICMP_UNREACH_NEEDFRAG && q[IP4_PROTO] == IPPROTO_TCP_) {
			const uint8_t *th = q + qh;
			tcp_mtu_reduced(c, st->cfg.ip, rd16(th + TCP_SPORT), rd32(q + IP4_DST),
					rd16(th + TCP_DPORT), rd16(p + ICMP_MTU));
		}
		return;
	}
	default:
		return;   /* other types are accepted and ignored */
	}
}
