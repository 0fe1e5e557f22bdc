/*
 * TCP output: deciding what may be sent (window, congestion window, Nagle,
 * sender-side silly-window avoidance, SACK-based loss recovery), building
 * segments with their options, and control segments (SYN, ACK, RST,
 * keepalive and window probes).
 */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_ipv6.h"
#include "wire_tcp.h"

/* The IPv6 addresses of net6 connection s: its struct sock6, or, for the
 * SYN cookie's socket (on the C stack, outside the table: it answers the
 * packet being delivered), that packet's. */
static void tcp_addrs6(const struct net_ctx *c, const struct sock *s, const uint8_t **l, const uint8_t **r)
{
	struct usnet_stack *st = c->st;
	uintptr_t a = (uintptr_t)s, b = (uintptr_t)st_socks(st);
	if (a >= b && a < b + (uintptr_t)st->nsocks * sizeof(struct sock)) {
		const struct sock6 *x = &st_sock6(st)[(a - b) / sizeof(struct sock)];
		*l = x->laddr;
		*r = x->raddr;
	} else {
		*l = c->rx_dst6;
		*r = c->rx_src6;
	}
}

uint32_t tcp_ts_now(const struct net_ctx *c, const struct sock *s)
{
	/* A ~1 ms clock (2^20 ns ticks: no division on the fast path). */
	return (uint32_t)(c->now >> 20) + s->ts_offset;
}

uint32_t tcp_isn(struct usnet_stack *st, const struct sock *s, uint64_t now)
{
	/* RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secret),
	 * M a ~4 microsecond clock. */
	uint32_t t[3] = { s->lip, s->rip, (uint32_t)s->lport << 16 | s->rport };
	if (s->net6) {
		/* over the full IPv6 addresses */
		const struct sock6 *a = &st_sock6(st)[sk_index(st, (struct sock *)s)];
		uint8_t k[36];
		memcpy(k, a->laddr, 16);
		memcpy(k + 16, a->raddr, 16);
		memcpy(k + 32, &t[2], 4);
		return (uint32_t)siphash24(st->cfg.secret, k, sizeof k) + (uint32_t)(now >> 12);
	}
	return (uint32_t)siphash24(st->cfg.secret, t, sizeof t) + (uint32_t)(now >> 12);
}

uint32_t tcp_rcv_window(const struct sock *s)
{
	uint32_t w = s->rcvq.bytes < s->rcvbuf ? s->rcvbuf - s->rcvq.bytes : 0;
	return s->window_clamp && w > s->window_clamp ? s->window_clamp : w;   /* TCP_WINDOW_CLAMP */
}

/* The window to advertise, applying receiver-side SWS avoidance (RFC 9293
 * 3.8.6.2.2) and never moving the right edge left. Updates rcv_adv. */
static uint32_t tcp_select_window(struct sock *s)
{
	uint32_t space = tcp_rcv_window(s);
	uint32_t cur = seq_gt(s->rcv_adv, s->rcv_nxt) ? s->rcv_adv - s->rcv_nxt : 0;
	if (space > cur) {
		uint32_t step = min_u32(s->rcvbuf / 2, s->rcv_mss ? s->rcv_mss : TCP_MSS_DEFAULT);
		if (space - cur < step && space < s->rcvbuf)
			space = cur;
	} else {
		space = cur;
	}
	uint32_t w = space >> s->rcv_wscale;
	if (w > 65535)
		w = 65535;
	uint32_t edge = s->rcv_nxt + (w << s->rcv_wscale);
	if (seq_gt(edge, s->rcv_adv))
		s->rcv_adv = edge;
	return w;
}

static int tcp_send_data(struct net_ctx *c, struct sock *s, uint32_t seq, uint32_t len);
static uint32_t emss(const struct sock *s);

#define TCP_PTO_MIN_US 2000u   /* timers are exact: only a floor against RTT noise */

/* Tail-loss probe (RFC 8985 section 7): with SACK, more than one segment
 * in flight and no recovery under way, probe after ~2 RTT rather than wait
 * for the (much longer) retransmission timeout, so that a lost tail is
 * repaired by fast recovery.  Returns the probe timeout (us) or 0. */
static uint64_t tlp_timeout(const struct sock *s)
{
	if ((s->flags & (SF_SACK_OK | SF_IN_RECOVERY | SF_TLP_SENT | SF_PERSIST)) != SF_SACK_OK ||
	    !s->srtt_us || s->state < USNET_TCP_ESTABLISHED || s->state == USNET_TCP_FIN_WAIT_2 ||
	    s->state == USNET_TCP_TIME_WAIT || s->backoff || s->snd_max - s->snd_una <= s->mss)
		return 0;
	uint64_t pto = 2ull * s->srtt_us;
	if (pto < TCP_PTO_MIN_US)
		pto = TCP_PTO_MIN_US;
	return pto < s->rto_us ? pto : 0;
}

void tcp_arm_rto(struct net_ctx *c, struct sock *s)
{
	uint64_t t = s->rto_us, pto = tlp_timeout(s);
	s->flags &= ~SF_TLP_ARMED;
	if (pto) {
		t = pto;
		s->flags |= SF_TLP_ARMED;
	}
	uint64_t at = c->now + t * NS_PER_US;
	if (s->user_timeout_ms && s->unacked_since) {
		/* TCP_USER_TIMEOUT: no later than when it runs out (as Linux). */
		uint64_t end = s->unacked_since + (uint64_t)s->user_timeout_ms * NS_PER_MS;
		if (end < at)
			at = end > c->now ? end : c->now;
	}
	timer_set(c->st, sk_index(c->st, s), TMR_RTO, at);
}

/* After sending: a probe becomes due when the flight grows past one
 * segment (the timer was a plain RTO until then). */
static void tcp_maybe_arm_tlp(struct net_ctx *c, struct sock *s)
{
	if (s->flags & SF_TLP_ARMED)
		return;
	uint64_t pto = tlp_timeout(s);
	if (!pto)
		return;
	uint64_t at = c->now + pto * NS_PER_US;
	if (at < s->timer_at[TMR_RTO]) {
		s->flags |= SF_TLP_ARMED;
		timer_set(c->st, sk_index(c->st, s), TMR_RTO, at);
	}
}

/* The probe timer fired: send one new segment if the windows allow, else
 * the last segment again; then wait for the real RTO. */
void tcp_send_tlp(struct net_ctx *c, struct sock *s)
{
	s->flags &= ~SF_TLP_ARMED;
	s->flags |= SF_TLP_SENT;
	uint32_t end = s->snd_una + s->sndq.bytes;
	uint32_t mss = emss(s);
	int sent = 0;
	if (seq_lt(s->snd_nxt, end) && seq_lt(s->snd_nxt, s->snd_una + s->snd_wnd)) {
		uint32_t len = min_u32(end - s->snd_nxt, mss);
		uint32_t edge = s->snd_una + s->snd_wnd;
		if (seq_lt(edge, s->snd_nxt + len))
			len = edge - s->snd_nxt;
		int n = len ? tcp_send_data(c, s, s->snd_nxt, len) : 0;
		if (n > 0) {
			s->snd_nxt += (uint32_t)n;
			sent = 1;
		}
	}
	if (!sent && s->snd_max != s->snd_una) {
		uint32_t last = s->snd_max - s->snd_una > mss ? s->snd_max - mss : s->snd_una;
		if ((s->flags & SF_FIN_SENT) && s->snd_max == end + 1 && seq_gt(last, s->snd_una))
			last--;   /* keep the FIN in the probe */
		tcp_retransmit_at(c, s, last, mss);
	}
	c->st->stats.tcp_tlp++;
	timer_set(c->st, sk_index(c->st, s), TMR_RTO, c->now + (uint64_t)s->rto_us * NS_PER_US);
}

static uint32_t emss(const struct sock *s)
{
	uint32_t m = s->mss - ((s->flags & SF_TS_OK) ? 12u : 0u);
	return m < 64 ? 64 : m;
}

/*
 * Build and send one segment: seq, flags, and len payload bytes taken from
 * the send queue at seq.  Returns the payload bytes sent, or -1 when no
 * frame buffer was available.
 */
static int tcp_emit(struct net_ctx *c, struct sock *s, uint32_t seq, uint32_t len, uint8_t flags)
{
	struct usnet_stack *st = c->st;
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return -1;
	uint32_t iph = s->net6 ? IP6_HLEN : IP_HLEN;
	uint8_t *th = p->data + ETH_HLEN + iph;
	uint8_t *o = th + TCP_HLEN;
	uint32_t optlen = 0;
	/* IP_TOS's DS bits (IPV6_TCLASS's): the ECN field is TCP's */
	uint8_t tos = s->net6 ? (uint8_t)(s->ip6_tclass & ~IP_ECN_MASK) : s->ip_tos;
	if (s->ecn & SE_OK) {
		/* RFC 3168 6.1: an ECN-setup SYN (ECE and CWR; sent once, as
		 * Linux's tcp_ecn_fallback: a retransmitted SYN goes without),
		 * its SYN-ACK (ECE); then new data is ECT(0), with CWR after a
		 * reduction, and ECE is on all we send while a CE asks for it. */
		if (flags & TH_SYN) {
			if (flags & TH_ACK)
				flags |= TH_ECE;
			else if (s->syn_retries == 0)
				flags |= TH_ECE | TH_CWR;
		} else if (!(flags & TH_RST)) {
			if (len && !seq_lt(seq, s->snd_max)) {
				tos |= IP_ECN_ECT0;
				if (s->ecn & SE_QUEUE_CWR) {
					flags |= TH_CWR;
					s->ecn &= (uint8_t)~SE_QUEUE_CWR;
				}
			}
			if (s->ecn & SE_DEMAND_CWR)
				flags |= TH_ECE;
		}
	}
	if (flags & TH_SYN) {
		/* Linux's layout: MSS; SACK permitted and timestamps together
		 * (NOPs in place of one not offered); NOP and window scale.  An
		 * option not offered takes no room.  A SYN offers what the
		 * configuration allows, a SYN-ACK what the peer offered too. */
		uint32_t my_mss = link_mtu(st, s->net6) - iph - TCP_HLEN;
		if (s->user_mss && s->user_mss < my_mss)
			my_mss = s->user_mss;
		o[0] = TCPOPT_MSS; o[1] = 4; wr16(o + 2, (uint16_t)my_mss);
		optlen = 4;
		int active = s->state == USNET_TCP_SYN_SENT;
		int sack = active ? st->cfg.tcp_sack : (s->flags & SF_SACK_OK) != 0;
		int ts = active ? st->cfg.tcp_timestamps : (s->flags & SF_TS_OK) != 0;
		int ws = active ? st->cfg.tcp_window_scaling : (s->flags & SF_WS_OK) != 0;
		if (sack) {
			o[optlen] = ts ? TCPOPT_SACK_PERM : TCPOPT_NOP;
			o[optlen + 1] = ts ? 2 : TCPOPT_NOP;
			optlen += 2;
			if (!ts) {
				o[optlen] = TCPOPT_SACK_PERM; o[optlen + 1] = 2;
				optlen += 2;
			}
		} else if (ts) {
			o[optlen] = TCPOPT_NOP; o[optlen + 1] = TCPOPT_NOP;
			optlen += 2;
		}
		if (ts) {
			o[optlen] = TCPOPT_TS; o[optlen + 1] = 10;
			wr32(o + optlen + 2, tcp_ts_now(c, s));
			wr32(o + optlen + 6, (flags & TH_ACK) ? s->ts_recent : 0);
			optlen += 10;
		}
		if (ws) {
			o[optlen] = TCPOPT_NOP; o[optlen + 1] = TCPOPT_WS; o[optlen + 2] = 3; o[optlen + 3] = s->rcv_wscale;
			optlen += 4;
		}
	} else {
		if (s->flags & SF_TS_OK) {
			o[0] = TCPOPT_NOP; o[1] = TCPOPT_NOP; o[2] = TCPOPT_TS; o[3] = 10;
			wr32(o + 4, tcp_ts_now(c, s));
			wr32(o + 8, s->ts_recent);
			optlen = 12;
		}
		if ((s->flags & SF_SACK_OK) && s->ooo != NIL && (flags & TH_ACK)) {
			uint32_t room = TCP_OPT_SPACE - optlen;
			uint32_t max_seg = min_u32(s->mss, c->frame_size - (ETH_HLEN + iph + TCP_HLEN));
			uint32_t seg_room = max_seg > optlen + len ? max_seg - optlen - len : 0;
			if (seg_room < room) room = seg_room;
			/* Two NOPs, kind and length, then 8 bytes a block. */
			unsigned max = room >= 4 ? (room - 4) / 8 : 0;
			if (max > 4) max = 4;
			uint32_t blk[4][2];
			unsigned n = max ? tcp_reass_sack_blocks(st, s, blk, max) : 0;
			if (n) {
				o[optlen] = TCPOPT_NOP; o[optlen + 1] = TCPOPT_NOP;
				o[optlen + 2] = TCPOPT_SACK; o[optlen + 3] = (uint8_t)(2 + 8 * n);
				for (unsigned k = 0; k < n; k++) {
					wr32(o + optlen + 4 + 8 * k, blk[k][0]);
					wr32(o + optlen + 8 + 8 * k, blk[k][1]);
				}
				optlen += 4 + 8 * n;
			}
		}
	}
	if (len)
		byteq_copy_out(st, &s->sndq, seq - s->snd_una, o + optlen, len);
	uint32_t hlen = TCP_HLEN + optlen;
	wr16(th + TCP_SPORT, s->lport);
	wr16(th + TCP_DPORT, s->rport);
	wr32(th + TCP_SEQ, seq);
	wr32(th + TCP_ACK, (flags & TH_ACK) ? s->rcv_nxt : 0);
	th[TCP_OFF] = (uint8_t)((hlen / 4) << 4);
	th[TCP_FLAGS] = flags;
	uint32_t win;
	if (flags & TH_SYN) {
		win = min_u32(tcp_rcv_window(s), 65535);
		if (seq_gt(s->rcv_nxt + win, s->rcv_adv))
			s->rcv_adv = s->rcv_nxt + win;
	} else {
		win = tcp_select_window(s);
	}
	wr16(th + TCP_WIN, (uint16_t)win);
	wr16(th + TCP_URP, 0);
	int r;
	if (s->net6) {
		const uint8_t *la, *ra;
		tcp_addrs6(c, s, &la, &ra);
		l4_csum_finish6(c, p, IPPROTO_TCP_, la, ra, hlen + len);
		c->ip_tos = tos;
		r = ipv6_output(c, p, la, ra, IP6_NH_TCP, hlen + len,
				s->ip6_hops < 0 ? ip6_default_hops(st) : (uint8_t)s->ip6_hops);
		c->ip_tos = 0;
	} else {
		l4_csum_finish(c, p, IPPROTO_TCP_, s->lip, s->rip, hlen + len);
		c->ip_ttl = s->ip_ttl;
		c->ip_tos = tos;
		r = ipv4_output(c, p, s->lip, s->rip, IPPROTO_TCP_, hlen + len, IP4_DF, 0);
		c->ip_ttl = c->ip_tos = 0;
	}
	if (r < 0)
		return -1;
	if ((len || (flags & (TH_SYN | TH_FIN))) && !s->unacked_since)
		s->unacked_since = c->now ? c->now : 1;   /* TCP_USER_TIMEOUT counts from here */
	st->stats.tcp_tx++;
	s->segs_out++;
	if (flags & TH_ACK) {
		/* An ACK that was owed spends a quick ACK. */
		int owed = (s->flags & (SF_ACK_NOW | SF_DELACK_ONE | SF_ACK_BATCH)) ||
			   s->timer_at[TMR_DELACK] != UINT64_MAX;
		if (owed && s->quick)
			s->quick--;
		s->flags &= ~(SF_ACK_NOW | SF_DELACK_ONE | SF_ACK_BATCH);
		if (s->timer_at[TMR_DELACK] != UINT64_MAX)
			timer_clear(st, sk_index(st, s), TMR_DELACK);
	}
	if (flags & TH_RST)
		st->stats.tcp_rst_tx++;
	return (int)len;
}

void tcp_send_ack(struct net_ctx *c, struct sock *s)
{
	tcp_emit(c, s, s->snd_nxt, 0, TH_ACK);
}

void tcp_send_syn(struct net_ctx *c, struct sock *s)
{
	uint8_t flags = s->state == USNET_TCP_SYN_SENT ? TH_SYN : (TH_SYN | TH_ACK);
	tcp_emit(c, s, s->iss, 0, flags);
}

void tcp_send_rst(struct net_ctx *c, struct sock *s)
{
	tcp_emit(c, s, s->snd_nxt, 0, TH_RST | TH_ACK);
}

void tcp_send_rst_at(struct net_ctx *c, struct sock *s, uint32_t seq)
{
	tcp_emit(c, s, seq, 0, TH_RST);
}

void tcp_send_keepalive(struct net_ctx *c, struct sock *s)
{
	/* An old sequence number with no data: the peer answers with an ACK. */
	tcp_emit(c, s, s->snd_una - 1, 0, TH_ACK);
}

void tcp_send_window_probe(struct net_ctx *c, struct sock *s)
{
	tcp_emit(c, s, s->snd_una - 1, 0, TH_ACK);
}

/* A RST answering a segment that has no connection (RFC 9293 3.10.7.1). */
void tcp_send_rst_for(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *th,
		      uint32_t seglen, uint8_t flags)
{
	struct usnet_stack *st = c->st;
	struct usnet_pkt *p = tx_get(c);
	if (!p)
		return;
	/* over IPv6 when the segment came over IPv6 (c->rx_src6) */
	uint8_t *r = p->data + ETH_HLEN + (c->rx_src6 ? IP6_HLEN : IP_HLEN);
	wr16(r + TCP_SPORT, rd16(th + TCP_DPORT));
	wr16(r + TCP_DPORT, rd16(th + TCP_SPORT));
	if (flags & TH_ACK) {
		wr32(r + TCP_SEQ, rd32(th + TCP_ACK));
		wr32(r + TCP_ACK, 0);
		r[TCP_FLAGS] = TH_RST;
	} else {
		uint32_t len = seglen + ((flags & TH_SYN) ? 1 : 0) + ((flags & TH_FIN) ? 1 : 0);
		wr32(r + TCP_SEQ, 0);
		wr32(r + TCP_ACK, rd32(th + TCP_SEQ) + len);
		r[TCP_FLAGS] = TH_RST | TH_ACK;
	}
	r[TCP_OFF] = 5 << 4;
	wr16(r + TCP_WIN, 0);
	wr16(r + TCP_URP, 0);
	int sent;
	if (c->rx_src6) {
		l4_csum_finish6(c, p, IPPROTO_TCP_, c->rx_dst6, c->rx_src6, TCP_HLEN);
		sent = ipv6_output(c, p, c->rx_dst6, c->rx_src6, IP6_NH_TCP, TCP_HLEN, ip6_default_hops(c->st));
	} else {
		l4_csum_finish(c, p, IPPROTO_TCP_, dst, src, TCP_HLEN);
		sent = ipv4_output(c, p, dst, src, IPPROTO_TCP_, TCP_HLEN, IP4_DF, 0);
	}
	if (sent == 0) {
		st->stats.tcp_tx++;
		st->stats.tcp_rst_tx++;
	}
}

/* Sequence number one past the last byte of queued data. */
static inline uint32_t data_end(const struct sock *s) { return s->snd_una + s->sndq.bytes; }

static int fin_allowed(const struct sock *s)
{
	return (s->flags & SF_SHUT_WR) &&
	       (s->state == USNET_TCP_ESTABLISHED || s->state == USNET_TCP_CLOSE_WAIT ||
		s->state == USNET_TCP_FIN_WAIT_1 || s->state == USNET_TCP_CLOSING ||
		s->state == USNET_TCP_LAST_ACK);
}

/* Send one segment of len bytes at seq (a FIN goes with it when it ends the
 * data and the FIN is due); accounts retransmissions and RTT timing. */
static int tcp_send_data(struct net_ctx *c, struct sock *s, uint32_t seq, uint32_t len)
{
	uint8_t flags = TH_ACK;
	int fin = 0;
	/* Never more than the netif's frames hold (they may be smaller than
	 * the configured MTU). */
	uint32_t hdrs = ETH_HLEN + (s->net6 ? IP6_HLEN : IP_HLEN) + TCP_HLEN + ((s->flags & SF_TS_OK) ? 12u : 0u);
	uint32_t room = c->frame_size > hdrs ? c->frame_size - hdrs : 0;
	if (len > room)
		len = room;
	if (fin_allowed(s) && seq + len == data_end(s)) {
		fin = 1;
		flags |= TH_FIN;
	}
	if (len && seq + len == data_end(s))
		flags |= TH_PSH;
	if (!len && !fin)
		return 0;
	int retrans = seq_lt(seq, s->snd_max);
	if (tcp_emit(c, s, seq, len, flags) < 0)
		return -1;
	/* New data within the delayed-ACK time of what came: an interactive
	 * connection, whose ACKs can wait to go with its answers (Linux's
	 * pingpong mode, left when a delayed ACK had to go alone). */
	if (!retrans && len && s->rcv_started && c->now - s->data_rx_at < TCP_DELACK_NS)
		s->pingpong = 1;
	uint32_t end = seq + len + (uint32_t)fin;
	if (fin)
		s->flags |= SF_FIN_SENT;
	if (retrans) {
		s->total_retrans_lo++;
		c->st->stats.tcp_retrans++;
		/* Karn: a retransmitted range is never timed. */
		if ((s->flags & SF_RTT_TIMING) && seq_le(seq, s->rtt_seq))
			s->flags &= ~SF_RTT_TIMING;
	} else if (!(s->flags & SF_RTT_TIMING)) {
		s->flags |= SF_RTT_TIMING;
		s->rtt_seq = seq;
		s->rtt_start = c->now;
	}
	if (seq_gt(end, s->snd_max)) {
		s->bytes_sent += (uint32_t)(end - seq_max(seq, s->snd_max)) - (uint32_t)fin;
		s->snd_max = end;
	}
	if (s->timer_at[TMR_RTO] == UINT64_MAX || (s->flags & SF_PERSIST)) {
		s->flags &= ~SF_PERSIST;
		tcp_arm_rto(c, s);
	} else {
		tcp_maybe_arm_tlp(c, s);
	}
	return (int)(len + (uint32_t)fin);
}

uint32_t tcp_retransmit_at(struct net_ctx *c, struct sock *s, uint32_t seq, uint32_t maxlen)
{
	uint32_t end = data_end(s);
	uint32_t len = seq_lt(seq, end) ? end - seq : 0;
	len = min_u32(len, min_u32(maxlen, emss(s)));
	int n = tcp_send_data(c, s, seq, len);
	return n > 0 ? (uint32_t)n : 0;
}

static void enter_persist(struct net_ctx *c, struct sock *s)
{
	if (s->flags & SF_PERSIST)
		return;
	s->flags |= SF_PERSIST;
	uint64_t t = (uint64_t)max_u32(s->rto_us, TCP_PERSIST_MIN_US) << (s->backoff < 8 ? s->backoff : 8);
	if (t > 60ull * 1000000) t = 60ull * 1000000;
	timer_set(c->st, sk_index(c->st, s), TMR_RTO, c->now + t * NS_PER_US);
}

void tcp_output_uncorked(struct net_ctx *c, struct sock *s)
{
	uint32_t cork = s->flags & (SF_CORK_OPT | SF_CORK);
	s->flags &= ~(SF_CORK_OPT | SF_CORK);
	tcp_output(c, s);
	s->flags |= cork;
}

void tcp_output(struct net_ctx *c, struct sock *s)
{
	switch (s->state) {
	case USNET_TCP_ESTABLISHED: case USNET_TCP_CLOSE_WAIT: case USNET_TCP_FIN_WAIT_1:
	case USNET_TCP_CLOSING: case USNET_TCP_LAST_ACK:
		break;
	case USNET_TCP_FIN_WAIT_2: case USNET_TCP_TIME_WAIT:
		if (s->flags & SF_ACK_NOW)
			tcp_send_ack(c, s);
		return;
	default:
		return;
	}
	uint32_t mss = emss(s);
	int sack_recovery = (s->flags & (SF_IN_RECOVERY | SF_SACK_OK)) == (SF_IN_RECOVERY | SF_SACK_OK);
	for (unsigned guard = 0; guard < 4096; guard++) {
		uint32_t end = data_end(s);
		uint32_t pipe_room = 0;
		if (sack_recovery) {
			uint32_t pipe = tcp_pipe(s);
			if (pipe >= s->cwnd)
				break;
			pipe_room = s->cwnd - pipe;
			/* RFC 6675 NextSeg rule 1: the first lost byte not yet retransmitted. */
			uint32_t from = seq_max(s->high_rxt, s->snd_una), hlen;
			uint32_t hole = tcp_sack_next_hole(s, from, s->high_sacked, &hlen);
			if (hlen && seq_lt(hole, s->high_sacked)) {
				uint32_t n = tcp_retransmit_at(c, s, hole, min_u32(hlen, pipe_room));
				if (!n)
					break;
				s->high_rxt = hole + n;
				continue;
			}
		}
		/* New (or, after a timeout, re-sent) data from snd_nxt. */
		if (seq_lt(s->snd_nxt, s->snd_max) && s->sb_n) {
			uint32_t hl;
			s->snd_nxt = tcp_sack_next_hole(s, s->snd_nxt, s->snd_max, &hl);
		}
		uint32_t avail = seq_lt(s->snd_nxt, end) ? end - s->snd_nxt : 0;
		int fin_due = fin_allowed(s) && s->snd_nxt == end;
		if (!avail && !fin_due)
			break;
		uint32_t flight = s->snd_nxt - s->snd_una;
		uint32_t wnd_edge = s->snd_una + s->snd_wnd;
		uint32_t usable = seq_gt(wnd_edge, s->snd_nxt) ? wnd_edge - s->snd_nxt : 0;
		uint32_t cwnd_room;
		if (sack_recovery)
			cwnd_room = pipe_room;
		else {
			/* Limited transmit (RFC 3042): each of the first two
			 * duplicate ACKs lets one new segment out beyond cwnd. */
			uint32_t cw = s->cwnd;
			if (!(s->flags & SF_IN_RECOVERY) && s->dupacks && s->dupacks < TCP_DUPTHRESH)
				cw += (uint32_t)s->dupacks * s->mss;
			cwnd_room = cw > flight ? cw - flight : 0;
		}
		uint32_t len = min_u32(min_u32(avail, mss), min_u32(usable, cwnd_room));
		if (len < avail && len < mss) {
			if (usable == 0 && flight == 0 && avail) {
				enter_persist(c, s);
				break;
			}
			if (len == 0)
				break;
			/* Window- or cwnd-limited runt: wait for ACKs unless it is at
			 * least half the largest window the peer offered. */
			if (flight > 0 && (usable < cwnd_room ? len < s->max_sndwnd / 2 : 1))
				break;
		} else if (len < mss && len == avail && (s->flags & (SF_CORK_OPT | SF_CORK)) &&
			   !(s->flags & SF_SHUT_WR)) {
			/* TCP_CORK, or a send with MSG_MORE: hold the partial
			 * segment even with nothing in flight, as Linux does, so
			 * that a response written in pieces (headers, then the file)
			 * leaves as full segments; clearing the option, a send
			 * without MSG_MORE, or the cork's 200 ms ceiling sends it
			 * (Linux holds MSG_MORE's data until the next send; the
			 * ceiling only frees what a program never completes). */
			if (flight == 0 && s->snd_una == s->snd_max && s->timer_at[TMR_RTO] == UINT64_MAX)
				timer_set(c->st, sk_index(c->st, s), TMR_RTO, c->now + TCP_CORK_CEILING_NS);
			break;
		} else if (len < mss && len == avail && flight > 0 &&
			   (!(s->flags & SF_NODELAY) || (s->flags & SF_CORK))) {
			/* Nagle (RFC 896): one small segment outstanding at a time. */
			if (!fin_due || avail)
				break;
		}
		/* With nothing outstanding the RTO slot can only hold a retry or
		 * the cork's ceiling, which this send supersedes: it arms the
		 * segment's own timeout. */
		if (s->snd_una == s->snd_max && !(s->flags & SF_PERSIST) && s->timer_at[TMR_RTO] != UINT64_MAX)
			timer_clear(c->st, sk_index(c->st, s), TMR_RTO);
		int n = tcp_send_data(c, s, s->snd_nxt, len);
		if (n <= 0) {
			/* No frame buffer (the netif's ring is full): with nothing in
			 * flight no ACK will come to restart us, so retry shortly. */
			if (n < 0 && s->snd_una == s->snd_max && s->timer_at[TMR_RTO] == UINT64_MAX)
				timer_set(c->st, sk_index(c->st, s), TMR_RTO, c->now + TCP_TX_RETRY_NS);
			break;
		}
		s->snd_nxt += (uint32_t)n;
	}
	if (s->flags & SF_ACK_NOW)
		tcp_send_ack(c, s);
}
