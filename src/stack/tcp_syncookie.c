/*
 * SYN cookies (RFC 4987 section 3.6): when a listener's SYN queue is full
 * (or always, with syncookies 2), the SYN-ACK's sequence number carries
 * everything the connection needs and the listener keeps nothing; the
 * peer's ACK brings it back and tcp_input makes the connection then.
 *
 * The cookie, as Linux lays it out:
 *   ISN = H1(addresses, ports) + peer's ISN + (count << 24)
 *         + ((H2(addresses, ports, count) + mss index) & 0xffffff)
 * with `count` a clock of about a minute (2^36 ns); a cookie is good for
 * SYNCOOKIE_MAX_AGE counts.  The MSS is one of four values.  What does not
 * fit (window scale, SACK, ECN) travels in the low bits of our timestamp,
 * which the peer echoes, as Linux does: a peer without timestamps gets none.
 */
#include "internal.h"
#include "tcp.h"
#include "wire_tcp.h"

#define SYNCOOKIE_COUNT_SHIFT 36   /* ns: 68.7 s */
#define SYNCOOKIE_MAX_AGE     2u
#define SYNCOOKIE_TS_BITS     6u   /* wscale (4 bits, 15 = none), SACK (1 bit), ECN (1 bit) */
#define SYNCOOKIE_NO_WS       0xfu

/* Peer MSS values a cookie can name (the largest not above the peer's). */
static const uint16_t cookie_mss[4] = { 536, 1300, 1440, 1460 };

/* Over the full addresses of an IPv6 segment (c->rx_src6, rx_dst6),
 * else the IPv4 ones. */
static uint32_t cookie_hash(const struct net_ctx *c, uint32_t lip, uint16_t lport, uint32_t rip,
			    uint16_t rport, uint32_t count, uint32_t which)
{
	const struct usnet_stack *st = c->st;
	uint32_t t[5] = { lip, rip, (uint32_t)lport << 16 | rport, count, which };
	if (c->rx_src6) {
		uint8_t k[44];
		memcpy(k, c->rx_dst6, 16);
		memcpy(k + 16, c->rx_src6, 16);
		memcpy(k + 32, &t[2], 12);
		return (uint32_t)siphash24(st->cfg.secret, k, sizeof k);
	}
	return (uint32_t)siphash24(st->cfg.secret, t, sizeof t);
}

static uint32_t cookie_make(const struct net_ctx *c, uint32_t lip, uint16_t lport, uint32_t rip,
			    uint16_t rport, uint32_t sseq, uint32_t count, uint32_t mss_idx)
{
	return cookie_hash(c, lip, lport, rip, rport, 0, 1) + sseq + (count << 24) +
	       ((cookie_hash(c, lip, lport, rip, rport, count, 2) + mss_idx) & 0xffffffu);
}

void tcp_syncookie_send(struct net_ctx *c, struct sock *l, uint32_t src, uint32_t dst, uint16_t sport,
			uint16_t dport, uint32_t sseq, const struct tcp_opts *o, int ecn_setup)
{
	struct usnet_stack *st = c->st;
	uint32_t peer = o->has_mss ? o->mss : TCP_MSS_DEFAULT;
	uint32_t idx = 0;
	while (idx + 1 < 4 && cookie_mss[idx + 1] <= peer)
		idx++;
	uint32_t count = (uint32_t)(c->now >> SYNCOOKIE_COUNT_SHIFT);
	/* A SYN-ACK from a socket that exists only for this call: nothing of
	 * it is kept (no timer, no hash entry). */
	struct sock s;
	memset(&s, 0, sizeof s);
	for (int t = 0; t < TMR_COUNT; t++)
		s.timer_at[t] = UINT64_MAX;
	s.type = USNET_SOCK_STREAM;
	s.state = USNET_TCP_SYN_RECEIVED;
	s.lip = dst; s.lport = dport;
	s.rip = src; s.rport = sport;
	s.rcvbuf = l->rcvbuf;
	s.buf_lock = l->buf_lock;
	s.user_mss = l->user_mss;
	s.mss = cookie_mss[idx];
	s.iss = cookie_make(c, dst, dport, src, sport, sseq, count, idx);
	s.net6 = c->rx_src6 != NULL;   /* tcp_emit takes its addresses from c then */
	s.ip6_hops = l->ip6_hops;
	s.ip6_tclass = l->ip6_tclass;
	s.snd_una = s.snd_nxt = s.snd_max = s.iss;
	s.rcv_nxt = s.rcv_adv = sseq + 1;
	if (o->has_ts && st->cfg.tcp_timestamps) {
		uint32_t bits = SYNCOOKIE_NO_WS;
		if (o->has_ws && st->cfg.tcp_window_scaling) {
			s.flags |= SF_WS_OK;
			s.rcv_wscale = tcp_rcv_wscale(st, &s);
			bits = o->ws > 14 ? 14 : o->ws;
		}
		if (o->sack_perm && st->cfg.tcp_sack) {
			s.flags |= SF_SACK_OK;
			bits |= 1u << 4;
		}
		if (ecn_setup && st->cfg.tcp_ecn) {
			s.ecn = SE_OK;   /* its SYN-ACK grants ECN */
			bits |= 1u << 5;
		}
		s.flags |= SF_TS_OK;
		s.ts_recent = o->tsval;
		/* Our clock with its low bits replaced, never ahead of it (the
		 * peer's PAWS must not see our timestamps go back later). */
		s.ts_offset = (uint32_t)siphash24(st->cfg.secret, &s.lip, 8) ^ s.rport;
		uint32_t now = tcp_ts_now(c, &s);
		uint32_t ts = (now & ~((1u << SYNCOOKIE_TS_BITS) - 1)) | bits;
		if (ts > now)
			ts -= 1u << SYNCOOKIE_TS_BITS;
		s.ts_offset -= now - ts;
	}
	st->stats.tcp_syncookies_sent++;
	st->syncookie_last = c->now ? c->now : 1;
	tcp_send_syn(c, &s);
}

int tcp_syncookie_check(struct net_ctx *c, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
			uint32_t seq, uint32_t ack, const struct tcp_opts *ack_opts, struct tcp_opts *syn,
			int *ecn)
{
	struct usnet_stack *st = c->st;
	*ecn = 0;
	/* Only shortly after cookies were sent: otherwise a guessed ACK
	 * could make connections the listener never agreed to. */
	if (!st->syncookie_last || c->now - st->syncookie_last > (uint64_t)SYNCOOKIE_MAX_AGE << SYNCOOKIE_COUNT_SHIFT)
		return 0;
	uint32_t sseq = seq - 1, cookie = ack - 1;
	uint32_t v = cookie - cookie_hash(c, dst, dport, src, sport, 0, 1) - sseq;
	uint32_t count = v >> 24;
	uint32_t now = (uint32_t)(c->now >> SYNCOOKIE_COUNT_SHIFT);
	if (((now - count) & 0xffu) >= SYNCOOKIE_MAX_AGE) {
		st->stats.tcp_syncookies_failed++;
		return 0;
	}
	/* The count's high bits were lost to the shift: take them from now. */
	count = (now & ~0xffu) | count;
	if (count > now)
		count -= 0x100u;
	uint32_t idx = (v - cookie_hash(c, dst, dport, src, sport, count, 2)) & 0xffffffu;
	if (idx >= 4) {
		st->stats.tcp_syncookies_failed++;
		return 0;
	}
	memset(syn, 0, sizeof *syn);
	syn->has_mss = 1;
	syn->mss = cookie_mss[idx];
	if (ack_opts->has_ts && st->cfg.tcp_timestamps) {
		uint32_t bits = ack_opts->tsecr & ((1u << SYNCOOKIE_TS_BITS) - 1);
		syn->has_ts = 1;
		syn->tsval = ack_opts->tsval;
		if ((bits & 0xfu) != SYNCOOKIE_NO_WS) {
			syn->has_ws = 1;
			syn->ws = (uint8_t)(bits & 0xfu);
		}
		syn->sack_perm = (bits >> 4) & 1u;
		*ecn = (bits >> 5) & 1u;
	}
	st->stats.tcp_syncookies_ok++;
	return 1;
}
