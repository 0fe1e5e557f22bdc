/*
 * TCP segment arrival (RFC 9293 section 3.10.7): listeners, SYN_SENT, and
 * the synchronized states — PAWS (RFC 7323), acceptability, RFC 5961
 * RST/SYN/ACK hardening, ACK processing with RTT sampling (RFC 6298), fast
 * retransmit and recovery (RFC 5681, 6582, 6675), data and FIN.
 */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_ipv6.h"
#include "wire_tcp.h"

struct seg {
	uint32_t seq, ack, win;
	uint8_t  flags;       /* FIN..URG */
	uint8_t  ecn;         /* TH_ECE and TH_CWR of the segment, and its IP ECN codepoint */
	const uint8_t *data;
	uint32_t dlen;
	struct tcp_opts o;
};

void tcp_set_state(struct net_ctx *c, struct sock *s, uint8_t state)
{
	(void)c;
	s->state = state;
}

uint8_t tcp_wscale_for(uint32_t rcvbuf)
{
	uint8_t ws = 0;
	while (ws < 14 && (rcvbuf >> ws) > 65535)
		ws++;
	return ws;
}

uint8_t tcp_rcv_wscale(const struct usnet_stack *st, const struct sock *s)
{
	uint32_t space = s->rcvbuf;
	if (!(s->buf_lock & BUF_LOCK_RCV) && st->cfg.tcp_rmem_max > space)
		space = st->cfg.tcp_rmem_max;
	return tcp_wscale_for(space);
}

static void rto_from_rtt(struct sock *s)
{
	uint32_t var4 = s->rttvar_us * 4;
	uint32_t rto = s->srtt_us + (var4 > 1000 ? var4 : 1000);   /* G = 1 ms */
	if (rto < TCP_RTO_MIN_US) rto = TCP_RTO_MIN_US;
	if (rto > TCP_RTO_MAX_US) rto = TCP_RTO_MAX_US;
	s->rto_us = rto;
}

static void rtt_sample(struct sock *s, uint32_t r)
{
	if (r == 0) r = 1;
	if (s->srtt_us == 0) {
		s->srtt_us = r;
		s->rttvar_us = r / 2;
	} else {
		uint32_t d = s->srtt_us > r ? s->srtt_us - r : r - s->srtt_us;
		s->rttvar_us = s->rttvar_us - s->rttvar_us / 4 + d / 4;
		s->srtt_us = s->srtt_us - s->srtt_us / 8 + r / 8;
	}
	rto_from_rtt(s);
}

/* The RTT of the timed segment, acknowledged at c->now.  None when c->now
 * is before the segment left: callers on several threads can pass times
 * that step back a little between calls, and the wrapped difference would
 * be an RTT of days (an RTO stuck at its maximum, a lost segment resent
 * only after two minutes). */
static void rtt_sample_timed(const struct net_ctx *c, struct sock *s)
{
	if (c->now >= s->rtt_start)
		rtt_sample(s, (uint32_t)((c->now - s->rtt_start) / NS_PER_US));
}

/* Apply the peer's SYN options (ours were all offered on an active open;
 * on a passive one we answer only what was offered). */
static void apply_syn_options(struct net_ctx *c, struct sock *s, const struct seg *g)
{
	struct usnet_stack *st = c->st;
	uint32_t mss = g->o.has_mss ? g->o.mss : TCP_MSS_DEFAULT;
	uint32_t my = link_mtu(st, s->net6) - (s->net6 ? 60 : 40);   /* IPv6's header is 40 bytes */
	if (mss > my) mss = my;
	if (s->user_mss && mss > s->user_mss) mss = s->user_mss;
	if (mss < TCP_MSS_MIN) mss = TCP_MSS_MIN;
	s->mss = (uint16_t)mss;
	s->rcv_mss = (uint16_t)my;
	if (g->o.has_ws && st->cfg.tcp_window_scaling) {
		s->flags |= SF_WS_OK;
		s->snd_wscale = g->o.ws;
		s->rcv_wscale = tcp_rcv_wscale(st, s);
	} else {
		s->flags &= ~SF_WS_OK;
		s->snd_wscale = s->rcv_wscale = 0;
	}
	if (g->o.sack_perm && st->cfg.tcp_sack) s->flags |= SF_SACK_OK; else s->flags &= ~SF_SACK_OK;
	if (g->o.has_ts && st->cfg.tcp_timestamps) {
		s->flags |= SF_TS_OK;
		s->ts_recent = g->o.tsval;
		s->ts_recent_age = (uint32_t)(c->now >> 20);
	} else {
		s->flags &= ~SF_TS_OK;
	}
}

void tcp_established_init(struct sock *s)
{
	s->state = USNET_TCP_ESTABLISHED;
	s->recover = s->snd_una;
	s->high_rxt = s->snd_una;
	s->high_sacked = s->snd_una;
}

static void accept_queue_unlink(struct usnet_stack *st, struct sock *l, int32_t child)
{
	struct sock *socks = st_socks(st);
	int32_t *pp = &l->acc_head, prev = NIL;
	while (*pp != NIL) {
		if (*pp == child) {
			*pp = socks[child].acc_next;
			if (l->acc_tail == child)
				l->acc_tail = prev;
			l->acc_count--;
			return;
		}
		prev = *pp;
		pp = &socks[*pp].acc_next;
	}
}

void tcp_drop(struct net_ctx *c, struct sock *s, int err)
{
	struct usnet_stack *st = c->st;
	int32_t i = sk_index(st, s);
	if (s->parent != NIL) {
		/* A child nobody accepted yet simply disappears. */
		struct sock *l = sk(st, s->parent);
		if (s->state == USNET_TCP_SYN_RECEIVED) {
			if (l->syn_count) l->syn_count--;
		} else {
			accept_queue_unlink(st, l, i);
		}
		sock_free(st, i);
		return;
	}
	if (err)
		s->err = (uint16_t)err;
	s->flags |= SF_RESET;
	s->state = USNET_TCP_CLOSED;
	timer_clear_all(st, i);
	if (s->flags & SF_HASHED)
		conn_remove(st, i);
	byteq_clear(st, &s->sndq);
	chunk_free_list(st, &s->ooo);
	s->ooo_bytes = 0;
	s->ooo_n = 0;
	if (s->flags & SF_ORPHAN) {
		sock_free(st, i);
		return;
	}
	sock_notify(c, s);
}

void tcp_enter_time_wait(struct net_ctx *c, struct sock *s)
{
	struct usnet_stack *st = c->st;
	int32_t i = sk_index(st, s);
	s->state = USNET_TCP_TIME_WAIT;
	timer_clear(st, i, TMR_RTO);
	timer_clear(st, i, TMR_DELACK);
	s->flags &= ~SF_PERSIST;
	/* TIME_WAIT keeps only what it needs to answer a retransmitted FIN. */
	byteq_clear(st, &s->sndq);
	chunk_free_list(st, &s->ooo);
	s->ooo_bytes = 0;
	s->ooo_n = 0;
	s->sb_n = 0;
	timer_set(st, i, TMR_KEEP, c->now + TCP_TIME_WAIT_NS);
}

/* ---- LISTEN ------------------------------------------------------------ */

/* A connection for listener l from the SYN g (src:sport -> dst:dport), in
 * SYN_RECEIVED with its options applied and in the connection table; NIL
 * when no socket is free.  Its ISN is the caller's to set. */
static int32_t syn_child(struct net_ctx *c, struct sock *l, uint32_t src, uint32_t dst, const uint8_t *th,
			 const struct seg *g)
{
	struct usnet_stack *st = c->st;
	int32_t li = sk_index(st, l);
	int32_t ci = sock_alloc_reclaim(st, USNET_SOCK_STREAM);
	if (ci == NIL)
		return NIL;
	l = sk(st, li);
	struct sock *s = sk(st, ci);
	s->lip = dst; s->lport = rd16(th + TCP_DPORT);
	s->rip = src; s->rport = rd16(th + TCP_SPORT);
	if (c->rx_src6) {
		sock_set_addr6(st, ci, c->rx_dst6, c->rx_src6);
		s->ip6_hops = l->ip6_hops;
		s->ip6_tclass = l->ip6_tclass;
	}
	s->af = l->af;   /* an IPv6 listener's connections are IPv6 sockets, IPv4 or not */
	s->v6only = l->v6only;
	s->parent = li;
	s->flags |= l->flags & (SF_NODELAY | SF_KEEPALIVE);
	s->pingpong = l->pingpong;   /* TCP_QUICKACK's 0 */
	s->sndbuf = l->sndbuf; s->rcvbuf = l->rcvbuf; s->buf_lock = l->buf_lock;
	s->cc = l->cc; s->user_mss = l->user_mss;
	s->keepidle_s = l->keepidle_s; s->keepintvl_s = l->keepintvl_s; s->keepcnt = l->keepcnt;
	s->linger = l->linger;
	/* What else a connection takes from its listener, as on Linux. */
	s->ip_ttl = l->ip_ttl; s->ip_tos = l->ip_tos;
	s->user_timeout_ms = l->user_timeout_ms; s->linger2_s = l->linger2_s;
	s->window_clamp = l->window_clamp; s->rcvlowat = l->rcvlowat; s->notsent_lowat = l->notsent_lowat;
	s->state = USNET_TCP_SYN_RECEIVED;
	s->irs = g->seq;
	s->rcv_nxt = g->seq + 1;
	s->rcv_adv = s->rcv_nxt;
	apply_syn_options(c, s, g);
	/* An ECN-setup SYN (RFC 3168 6.1.1) is granted unless tcp_ecn is 0;
	 * one that is itself ECN-capable is not, as Linux. */
	s->ecn = st->cfg.tcp_ecn && (g->ecn & (TH_ECE | TH_CWR)) == (TH_ECE | TH_CWR) &&
		 !(g->ecn & IP_ECN_MASK) ? SE_OK : 0;
	s->ts_offset = (uint32_t)siphash24(st->cfg.secret, &s->lip, 8) ^ s->rport;
	s->snd_wnd = g->win;            /* never scaled in a SYN */
	s->max_sndwnd = s->snd_wnd;
	s->snd_wl1 = g->seq;
	s->rto_us = TCP_RTO_INIT_US;
	s->last_rx = c->now;
	tcp_cc(s)->init(s, c->now);
	conn_insert(st, ci);
	l->syn_count++;
	return ci;
}

static void tcp_listen_input(struct net_ctx *c, struct sock *l, uint32_t src, uint32_t dst,
			     const uint8_t *th, const struct seg *g)
{
	struct usnet_stack *st = c->st;
	if (g->flags & TH_RST)
		return;
	if (g->flags & TH_ACK) {
		tcp_send_rst_for(c, src, dst, th, g->dlen, g->flags);
		return;
	}
	if (!(g->flags & TH_SYN) || (g->flags & TH_FIN))
		return;
	/* As Linux: a full accept queue drops the SYN (the peer retries); a
	 * full SYN queue answers with a cookie, keeping nothing. */
	if (l->acc_count >= l->backlog) {
		st->stats.tcp_listen_drop++;
		return;
	}
	uint8_t cookies = st->cfg.tcp_syncookies;
	/* Without cookies, Linux keeps the last quarter of
	 * tcp_max_syn_backlog for peers it has talked to before; the stack
	 * keeps no such history, so that quarter takes no SYN at all. */
	uint32_t max_syn = st->cfg.tcp_max_syn_backlog;
	if (!cookies && max_syn && (max_syn < l->syn_count || max_syn - l->syn_count < (max_syn >> 2))) {
		st->stats.tcp_listen_drop++;
		return;
	}
	int32_t ci = NIL;
	if (cookies != 2 && l->syn_count < l->backlog)
		ci = syn_child(c, l, src, dst, th, g);
	if (ci == NIL) {
		if (cookies)
			tcp_syncookie_send(c, l, src, dst, rd16(th + TCP_SPORT), rd16(th + TCP_DPORT), g->seq, &g->o,
					   (g->ecn & (TH_ECE | TH_CWR)) == (TH_ECE | TH_CWR) && !(g->ecn & IP_ECN_MASK));
		else
			st->stats.tcp_listen_drop++;
		return;
	}
	struct sock *s = sk(st, ci);
	s->iss = tcp_isn(st, s, c->now);
	s->snd_una = s->snd_nxt = s->snd_max = s->iss;
	tcp_send_syn(c, s);
	s->snd_nxt = s->snd_max = s->iss + 1;
	s->flags |= SF_RTT_TIMING;
	s->rtt_seq = s->iss;
	s->rtt_start = c->now;
	tcp_arm_rto(c, s);
}

/* An ACK for listener l that matches no connection: the connection its
 * SYN cookie describes, or NIL. */
static int32_t syncookie_child(struct net_ctx *c, struct sock *l, uint32_t src, uint32_t dst,
			       const uint8_t *th, const struct seg *g)
{
	struct usnet_stack *st = c->st;
	struct seg syn = *g;
	int ecn;
	if (!tcp_syncookie_check(c, src, dst, rd16(th + TCP_SPORT), rd16(th + TCP_DPORT), g->seq, g->ack, &g->o,
				 &syn.o, &ecn))
		return NIL;
	if (l->acc_count >= l->backlog) {
		st->stats.tcp_listen_drop++;
		return NIL;
	}
	syn.seq = g->seq - 1;
	syn.flags = TH_SYN;
	syn.ecn = ecn ? TH_ECE | TH_CWR : 0;   /* the SYN asked for ECN and was granted it */
	int32_t ci = syn_child(c, l, src, dst, th, &syn);
	if (ci == NIL) {
		st->stats.tcp_drop_nobuf++;
		return NIL;
	}
	/* Its SYN-ACK went out (the cookie is its ISN): this ACK completes it. */
	struct sock *s = sk(st, ci);
	s->iss = g->ack - 1;
	s->snd_una = s->iss;
	s->snd_nxt = s->snd_max = s->iss + 1;
	/* The window the cookie SYN-ACK offered (a SYN's is never scaled). */
	uint32_t win = tcp_rcv_window(s);
	s->rcv_adv = s->rcv_nxt + (win < 65535 ? win : 65535);
	return ci;
}

/* ---- SYN_SENT ---------------------------------------------------------- */

static void tcp_syn_sent_input(struct net_ctx *c, struct sock *s, uint32_t src, uint32_t dst,
			       const uint8_t *th, const struct seg *g)
{
	if (g->flags & TH_ACK) {
		if (seq_le(g->ack, s->iss) || seq_gt(g->ack, s->snd_max)) {
			if (!(g->flags & TH_RST))
				tcp_send_rst_for(c, src, dst, th, g->dlen, g->flags);
			return;
		}
	}
	if (g->flags & TH_RST) {
		if (g->flags & TH_ACK)
			tcp_drop(c, s, USNET_ECONNREFUSED);
		return;
	}
	if (!(g->flags & TH_SYN))
		return;
	s->irs = g->seq;
	s->rcv_nxt = g->seq + 1;
	s->rcv_adv = s->rcv_nxt;
	apply_syn_options(c, s, g);
	/* ECN as asked: granted by a SYN-ACK with ECE alone (RFC 3168
	 * 6.1.1); in a simultaneous open, by a SYN that asks for it too. */
	if ((s->ecn & SE_OK) && ((g->flags & TH_ACK) ? (g->ecn & (TH_ECE | TH_CWR)) != TH_ECE
						      : (g->ecn & (TH_ECE | TH_CWR)) != (TH_ECE | TH_CWR)))
		s->ecn = 0;
	s->snd_wnd = g->win;
	s->max_sndwnd = s->snd_wnd;
	s->snd_wl1 = g->seq;
	s->snd_wl2 = g->ack;
	if (g->flags & TH_ACK) {
		s->snd_una = g->ack;
		if (s->flags & SF_RTT_TIMING) {
			s->flags &= ~SF_RTT_TIMING;
			if (s->syn_retries == 0)
				rtt_sample_timed(c, s);
		}
		s->backoff = 0;
		timer_clear(c->st, sk_index(c->st, s), TMR_RTO);
		tcp_established_init(s);
		tcp_cc(s)->init(s, c->now);
		tcp_sndbuf_expand(c->st, s);
		s->flags |= SF_ACK_NOW | SF_EV_EDGE;
		tcp_keepalive_reset(c, s);
		tcp_output(c, s);
		return;
	}
	/* Simultaneous open: our SYN crossed theirs. */
	s->state = USNET_TCP_SYN_RECEIVED;
	tcp_send_syn(c, s);
}

/* ---- the synchronized states ------------------------------------------ */

static void challenge_ack(struct net_ctx *c, struct sock *s)
{
	struct usnet_stack *st = c->st;
	uint64_t sec = c->now >> 30;
	if (sec != st->challenge_window) {
		st->challenge_window = sec;
		st->challenge_count = 0;
	}
	if (st->challenge_count++ >= TCP_CHALLENGE_PER_S)
		return;
	st->stats.tcp_challenge_ack++;
	tcp_send_ack(c, s);
}

static void fin_acked(struct net_ctx *c, struct sock *s)
{
	switch (s->state) {
	case USNET_TCP_FIN_WAIT_1:
		s->state = USNET_TCP_FIN_WAIT_2;
		timer_clear(c->st, sk_index(c->st, s), TMR_RTO);
		if (s->flags & SF_ORPHAN)
			timer_set(c->st, sk_index(c->st, s), TMR_KEEP, c->now + tcp_fin_wait2_ns(c->st, s));
		break;
	case USNET_TCP_CLOSING:
		tcp_enter_time_wait(c, s);
		break;
	case USNET_TCP_LAST_ACK:
		if (s->flags & SF_ORPHAN) {
			tcp_free_orphan(c, s);
		} else {
			s->state = USNET_TCP_CLOSED;
			timer_clear_all(c->st, sk_index(c->st, s));
			if (s->flags & SF_HASHED)
				conn_remove(c->st, sk_index(c->st, s));
		}
		break;
	default:
		break;
	}
}

/* Process the ACK field; returns 0, or -1 when the socket is gone. */
static int tcp_ack(struct net_ctx *c, struct sock *s, const struct seg *g)
{
	struct usnet_stack *st = c->st;
	int32_t i = sk_index(st, s);
	uint32_t ack = g->ack;
	int window_changed = 0;
	if (seq_lt(s->snd_wl1, g->seq) || (s->snd_wl1 == g->seq && seq_le(s->snd_wl2, ack))) {
		uint32_t nw = g->win << s->snd_wscale;
		window_changed = nw != s->snd_wnd;
		s->snd_wnd = nw;
		s->snd_wl1 = g->seq;
		s->snd_wl2 = ack;
		if (nw > s->max_sndwnd)
			s->max_sndwnd = nw;
		if (nw && (s->flags & SF_PERSIST)) {
			s->flags &= ~SF_PERSIST;
			s->backoff = 0;
			timer_clear(st, i, TMR_RTO);
		}
	}
	/* ECN-Echo (RFC 3168 6.1.2): the network marked what we sent; reduce
	 * once a window, as for a loss but resending nothing, and say so with
	 * CWR on the next new data. */
	if (s->ecn & SE_OK) {
		/* (held until what follows the reduction's window is acked: the
		 * CWR it carried has then reached the peer) */
		if ((s->ecn & SE_CWR) && seq_gt(ack, s->ecn_cwr_end))
			s->ecn &= (uint8_t)~SE_CWR;
		if ((g->ecn & TH_ECE) && !(s->ecn & SE_CWR) && !(s->flags & SF_IN_RECOVERY) &&
		    seq_gt(s->snd_max, s->snd_una)) {
			tcp_cc(s)->on_loss(s, c->now);
			s->cwnd = max_u32(s->ssthresh, 2u * s->mss);
			s->ecn |= SE_CWR | SE_QUEUE_CWR;
			s->ecn_cwr_end = s->snd_max;
			st->stats.tcp_ecn_reduced++;
		}
	}
	uint32_t sacked_before = s->sacked_bytes;
	if ((s->flags & SF_SACK_OK) && g->o.nsack) {
		tcp_sack_update(s, (const uint32_t (*)[2])g->o.sack, g->o.nsack);
		/* Lost retransmission: data sent after the holes were resent has
		 * been SACKed, yet the holes remain; resend them once more rather
		 * than wait for the timeout. */
		if ((s->flags & SF_IN_RECOVERY) && seq_gt(s->high_rxt, s->snd_una) &&
		    (seq_gt(s->high_sacked, s->rxt_round) ||
		     /* ...or the round is over two RTTs old and ACKs keep coming
		      * (a time-based check in the spirit of RFC 8985). */
		     (uint32_t)(c->now >> 20) - s->rxt_tick > (s->srtt_us >> 9) + 2)) {
			s->high_rxt = s->snd_una;
			s->rxt_round = s->snd_max;
			s->rxt_tick = (uint32_t)(c->now >> 20);
		}
	}

	if (seq_gt(ack, s->snd_una)) {
		uint32_t acked = ack - s->snd_una;
		uint32_t dend = s->snd_una + s->sndq.bytes;
		uint32_t data_acked = acked;
		int fin_ack = 0;
		if ((s->flags & SF_FIN_SENT) && seq_gt(ack, dend)) {
			data_acked = s->sndq.bytes;
			fin_ack = 1;
		}
		journal_begin(st, i, s);
		byteq_consume(st, &s->sndq, data_acked);
		if ((s->flags & SF_WAS_FULL) && data_acked && (sock_events(st, s) & USNET_EV_OUT)) {
			/* A send found no room: say so when room comes back, even if
			 * the readiness mask did not change (the shared pool was dry). */
			s->flags &= ~SF_WAS_FULL;
			s->flags |= SF_EV_EDGE;
		}
		/* RTT: a timed segment (Karn), else the echoed timestamp. */
		if ((s->flags & SF_RTT_TIMING) && seq_gt(ack, s->rtt_seq)) {
			s->flags &= ~SF_RTT_TIMING;
			rtt_sample_timed(c, s);
		} else if ((s->flags & SF_TS_OK) && g->o.has_ts && g->o.tsecr && s->backoff == 0) {
			uint32_t ticks = tcp_ts_now(c, s) - g->o.tsecr;
			if (ticks < 0x100000u && s->srtt_us == 0)
				rtt_sample(s, ticks * 1049u);
		}
		if (s->backoff) {
			s->backoff = 0;
			rto_from_rtt(s);
			if (s->srtt_us == 0)
				s->rto_us = TCP_RTO_INIT_US;
		}
		s->snd_una = ack;
		journal_end(st);
		s->unacked_since = ack == s->snd_max ? 0 : c->now;   /* progress: TCP_USER_TIMEOUT starts again */
		s->flags &= ~SF_TLP_SENT;
		if (seq_lt(s->snd_nxt, ack))
			s->snd_nxt = ack;
		if (seq_lt(s->high_rxt, ack))
			s->high_rxt = ack;
		s->bytes_acked += data_acked;
		tcp_sack_clean(s);
		if (s->flags & SF_IN_RECOVERY) {
			if (seq_ge(ack, s->recover)) {
				/* Full ACK: recovery is over (RFC 6582 3.2 step 3). */
				s->flags &= ~SF_IN_RECOVERY;
				uint32_t fl = tcp_flight(s);
				s->cwnd = min_u32(s->ssthresh, max_u32(fl, s->mss) + s->mss);
				s->dupacks = 0;
			} else if (!(s->flags & SF_SACK_OK)) {
				/* Partial ACK: retransmit the next hole, deflate. */
				tcp_retransmit_at(c, s, s->snd_una, s->mss);
				s->cwnd = s->cwnd > acked ? s->cwnd - acked : s->mss;
				if (acked >= s->mss)
					s->cwnd += s->mss;
				tcp_arm_rto(c, s);
			}
		} else {
			s->dupacks = 0;
			/* Grow the window only while it limits the sender (RFC 7661):
			 * an application-limited flow would inflate it without bound. */
			if (2 * (uint64_t)(s->snd_max - (ack - acked)) >= s->cwnd && !(s->ecn & SE_CWR)) {
				tcp_cc(s)->on_ack(s, acked, c->now);
				tcp_sndbuf_expand(st, s);
			}
		}
		if (s->snd_una == s->snd_max)
			timer_clear(st, i, TMR_RTO);
		else if (!(s->flags & SF_PERSIST))
			tcp_arm_rto(c, s);
		if (fin_ack) {
			fin_acked(c, s);
			if (s->type == 0)
				return -1;
		}
		return 0;
	}
	/* A duplicate ACK: the classic kind (no data, no window change), or
	 * with SACK any ACK that reports newly SACKed data (RFC 6675) — the
	 * only kind a peer that is sending too will ever produce. */
	if (ack == s->snd_una && s->snd_max != s->snd_una &&
	    ((g->dlen == 0 && !(g->flags & (TH_SYN | TH_FIN)) && !window_changed) ||
	     s->sacked_bytes > sacked_before)) {
		s->dupacks++;
		if (s->flags & SF_IN_RECOVERY) {
			if (!(s->flags & SF_SACK_OK))
				s->cwnd += s->mss;   /* NewReno inflation */
			return 0;
		}
		/* Early retransmit (RFC 5827): with fewer than four segments
		 * outstanding and nothing new to send, three duplicates can never
		 * come; one fewer than the outstanding count is enough. */
		uint32_t thresh = TCP_DUPTHRESH;
		uint32_t flight = s->snd_max - s->snd_una;
		uint32_t oseg = (flight + s->mss - 1) / s->mss;
		if (oseg < 4 && s->snd_max == s->snd_una + s->sndq.bytes + ((s->flags & SF_FIN_SENT) ? 1u : 0u))
			thresh = oseg > 1 ? oseg - 1 : 1;
		/* Also lost: what was sent before a tail-loss probe that the peer
		 * now SACKs — the probe left ~2 RTT later and arrived, so the
		 * earlier segments are not merely reordered (RFC 8985 7.4). */
		int lost = s->dupacks >= thresh ||
			   ((s->flags & SF_SACK_OK) && s->sacked_bytes > (TCP_DUPTHRESH - 1) * (uint32_t)s->mss) ||
			   ((s->flags & SF_TLP_SENT) && s->sacked_bytes > sacked_before);
		if (lost && !seq_lt(ack, s->recover)) {
			s->flags |= SF_IN_RECOVERY;
			s->flags &= ~SF_RTT_TIMING;
			st->stats.tcp_recovery++;
			s->recover = s->snd_max;
			tcp_cc(s)->on_loss(s, c->now);
			s->high_rxt = s->snd_una;
			s->rxt_round = s->snd_max;
			s->rxt_tick = (uint32_t)(c->now >> 20);
			uint32_t n = tcp_retransmit_at(c, s, s->snd_una, s->mss);
			s->high_rxt = s->snd_una + n;
			if (s->flags & SF_SACK_OK)
				s->cwnd = s->ssthresh;
			else
				s->cwnd = s->ssthresh + TCP_DUPTHRESH * s->mss;
			tcp_arm_rto(c, s);
		}
	}
	return 0;
}

static void tcp_fin_in_order(struct net_ctx *c, struct sock *s)
{
	s->rcv_nxt++;
	s->flags |= SF_FIN_RCVD | SF_ACK_NOW | SF_EV_EDGE;
	s->flags &= ~SF_FIN_OOO;
	switch (s->state) {
	case USNET_TCP_SYN_RECEIVED:
	case USNET_TCP_ESTABLISHED:
		s->state = USNET_TCP_CLOSE_WAIT;
		break;
	case USNET_TCP_FIN_WAIT_1:
		/* Our FIN not acknowledged yet (else we would be in FIN_WAIT_2). */
		s->state = USNET_TCP_CLOSING;
		break;
	case USNET_TCP_FIN_WAIT_2:
		tcp_send_ack(c, s);
		tcp_enter_time_wait(c, s);
		break;
	default:
		break;
	}
}

/* Quick ACKs to come: as many as half the window's full segments, at
 * least 2, at most 16 (Linux's tcp_incr_quickack). */
static void tcp_more_quick_acks(struct sock *s)
{
	uint32_t mss = s->rcv_mss ? s->rcv_mss : TCP_MSS_DEFAULT;
	uint32_t q = tcp_rcv_window(s) / (2 * mss);
	if (q == 0) q = 2;
	if (q > TCP_MAX_QUICKACKS) q = TCP_MAX_QUICKACKS;
	if (q > s->quick) s->quick = (uint8_t)q;
}

/* In-order data came (Linux's tcp_event_data_recv): the first of a
 * connection, or the first after an idle longer than the RTO, starts a
 * run of quick ACKs, so that a sender in slow start is not held back by
 * delayed ACKs. */
static void tcp_data_came(struct net_ctx *c, struct sock *s)
{
	if (!s->rcv_started) {
		s->rcv_started = 1;
		tcp_more_quick_acks(s);
	} else if (c->now - s->data_rx_at > (uint64_t)s->rto_us * NS_PER_US) {
		tcp_more_quick_acks(s);
	}
	s->data_rx_at = c->now;
}

static void tcp_data(struct net_ctx *c, struct sock *s, struct seg *g)
{
	struct usnet_stack *st = c->st;
	if (g->seq == s->rcv_nxt) {
		journal_begin(st, sk_index(st, s), s);
		uint32_t n = byteq_append(st, &s->rcvq, g->data, g->dlen);
		if (n < g->dlen) {
			st->stats.tcp_drop_nobuf++;
			g->flags &= (uint8_t)~TH_FIN;   /* the rest comes again */
			s->flags |= SF_ACK_NOW;
		}
		s->rcv_nxt += n;
		s->bytes_received += n;
		int had_ooo = s->ooo != NIL;
		if (had_ooo) {
			uint32_t m = tcp_reass_pull(st, s);
			s->bytes_received += m;
			s->flags |= SF_ACK_NOW;   /* a hole filled: tell the sender now */
			if ((s->flags & SF_FIN_OOO) && s->rcv_nxt == s->fin_seq && s->ooo == NIL)
				g->flags |= TH_FIN, g->seq = s->rcv_nxt, g->dlen = 0;
		}
		journal_end(st);
		if (n) {
			s->flags |= SF_EV_EDGE;
			tcp_data_came(c, s);
		}
		if (s->quick && !s->pingpong)
			s->flags |= SF_ACK_NOW;   /* quick ACK mode */
		else if (n >= s->rcv_mss / 2 || (s->flags & SF_DELACK_ONE)) {
			/* ACK at least every second full-sized segment (RFC 5681 4.2). */
			if (!(s->flags & SF_DELACK_ONE))
				s->flags |= SF_DELACK_ONE;
			else if (s->flags & SF_ACK_BATCH)
				;   /* already owed at the end of the batch */
			else if (c->batching && c->nack < TX_BATCH) {
				s->flags |= SF_ACK_BATCH;
				c->ack_later[c->nack++] = sk_index(st, s);
			} else
				s->flags |= SF_ACK_NOW;
		}
		if (!(s->flags & (SF_ACK_NOW | SF_ACK_BATCH)))
			tcp_delack_schedule(c, s);
		return;
	}
	/* Out of order: keep it (bounded by the window) and send a duplicate
	 * ACK at once, with SACK blocks when permitted. */
	if (tcp_reass_insert(st, s, g->seq, g->data, g->dlen) < 0)
		st->stats.tcp_drop_nobuf++;
	if (g->flags & TH_FIN) {
		s->flags |= SF_FIN_OOO;
		s->fin_seq = g->seq + g->dlen;
	}
	s->flags |= SF_ACK_NOW;
}

static void tcp_process(struct net_ctx *c, struct sock *s, struct seg *g)
{
	struct usnet_stack *st = c->st;
	/* A retransmitted SYN in SYN_RECEIVED: answer with the SYN-ACK again. */
	if (s->state == USNET_TCP_SYN_RECEIVED && (g->flags & TH_SYN) && !(g->flags & TH_ACK) &&
	    g->seq == s->irs) {
		tcp_send_syn(c, s);
		return;
	}
	/* PAWS (RFC 7323 5.3). */
	if ((s->flags & SF_TS_OK) && g->o.has_ts && !(g->flags & TH_RST) &&
	    seq_lt(g->o.tsval, s->ts_recent) &&
	    (uint32_t)((c->now >> 20) - s->ts_recent_age) < 24u * 24 * 3600 * 1000) {
		tcp_send_ack(c, s);
		return;
	}
	/* Acceptability (RFC 9293 3.10.7.4). */
	uint32_t wnd = seq_gt(s->rcv_adv, s->rcv_nxt) ? s->rcv_adv - s->rcv_nxt : 0;
	uint32_t slen = g->dlen + ((g->flags & TH_SYN) ? 1 : 0) + ((g->flags & TH_FIN) ? 1 : 0);
	int ok;
	if (slen == 0)
		ok = wnd == 0 ? g->seq == s->rcv_nxt
			      : seq_ge(g->seq, s->rcv_nxt) && seq_lt(g->seq, s->rcv_nxt + wnd);
	else if (wnd == 0)
		ok = g->seq == s->rcv_nxt;   /* a probe: its ACK is still processed */
	else
		ok = (seq_ge(g->seq, s->rcv_nxt) && seq_lt(g->seq, s->rcv_nxt + wnd)) ||
		     (seq_ge(g->seq + slen - 1, s->rcv_nxt) && seq_lt(g->seq + slen - 1, s->rcv_nxt + wnd));
	if (!ok) {
		if (!(g->flags & TH_RST)) {
			if (s->state == USNET_TCP_TIME_WAIT && (g->flags & TH_FIN))
				timer_set(st, sk_index(st, s), TMR_KEEP, c->now + TCP_TIME_WAIT_NS);
			tcp_send_ack(c, s);
		}
		return;
	}
	/* Trim what is before rcv_nxt and beyond the window. */
	if (seq_lt(g->seq, s->rcv_nxt)) {
		uint32_t d = s->rcv_nxt - g->seq;
		if (g->flags & TH_SYN) {
			g->flags &= (uint8_t)~TH_SYN;
			g->seq++;
			d--;
		}
		if (d >= g->dlen) {
			if (d > g->dlen)
				g->flags &= (uint8_t)~TH_FIN;   /* a FIN we already have */
			g->data += g->dlen;
			g->dlen = 0;
		} else {
			g->data += d;
			g->dlen -= d;
		}
		g->seq = s->rcv_nxt;
		s->flags |= SF_ACK_NOW;
	}
	if (seq_gt(g->seq + g->dlen, s->rcv_nxt + wnd)) {
		uint32_t keep = s->rcv_nxt + wnd - g->seq;
		g->dlen = keep < g->dlen ? keep : g->dlen;
		g->flags &= (uint8_t)~TH_FIN;
		s->flags |= SF_ACK_NOW;
	}
	/* RST (RFC 5961 3.2): exact match resets, in-window gets a challenge. */
	if (g->flags & TH_RST) {
		if (g->seq != s->rcv_nxt) {
			challenge_ack(c, s);
			return;
		}
		switch (s->state) {
		case USNET_TCP_SYN_RECEIVED:
			tcp_drop(c, s, (s->flags & SF_ACTIVE) ? USNET_ECONNREFUSED : 0);
			return;
		case USNET_TCP_CLOSING: case USNET_TCP_LAST_ACK: case USNET_TCP_TIME_WAIT:
			if (s->flags & SF_ORPHAN) {
				tcp_free_orphan(c, s);
				return;
			}
			tcp_drop(c, s, 0);
			return;
		default:
			tcp_drop(c, s, s->state == USNET_TCP_CLOSE_WAIT ? USNET_EPIPE : USNET_ECONNRESET);
			return;
		}
	}
	/* SYN in a synchronized state (RFC 5961 4.2). */
	if (g->flags & TH_SYN) {
		challenge_ack(c, s);
		return;
	}
	if (!(g->flags & TH_ACK))
		return;
	if (s->state == USNET_TCP_SYN_RECEIVED) {
		if (!(seq_gt(g->ack, s->snd_una) && seq_le(g->ack, s->snd_max))) {
			tcp_send_rst_at(c, s, g->ack);
			return;
		}
		/* TCP_DEFER_ACCEPT, as Linux: the handshake's ACK without data
		 * completes nothing while the deferral lasts; the data (or an
		 * ACK to the SYN-ACK sent again at its end) does. */
		if (s->parent != NIL && g->dlen == 0 && !(g->flags & TH_FIN) &&
		    s->syn_retries < sk(st, s->parent)->defer_retrans) {
			s->defer_acked = 1;
			return;
		}
		if (s->flags & SF_RTT_TIMING) {
			s->flags &= ~SF_RTT_TIMING;
			if (s->syn_retries == 0)
				rtt_sample_timed(c, s);
		}
		s->backoff = 0;
		s->snd_una = g->ack;
		s->snd_wnd = g->win << s->snd_wscale;
		s->max_sndwnd = s->snd_wnd;
		s->snd_wl1 = g->seq;
		s->snd_wl2 = g->ack;
		tcp_established_init(s);
		tcp_sndbuf_expand(st, s);
		timer_clear(st, sk_index(st, s), TMR_RTO);
		tcp_keepalive_reset(c, s);
		if (s->parent != NIL) {
			struct sock *l = sk(st, s->parent);
			if (l->syn_count) l->syn_count--;
			s->acc_next = NIL;
			if (l->acc_tail == NIL) l->acc_head = sk_index(st, s);
			else sk(st, l->acc_tail)->acc_next = sk_index(st, s);
			l->acc_tail = sk_index(st, s);
			l->acc_count++;
			l->flags |= SF_EV_EDGE;
			sock_notify(c, l);
		} else {
			s->flags |= SF_EV_EDGE;
		}
	} else {
		/* RFC 5961 5.2: ACKs of data never sent, or far too old. */
		if (seq_gt(g->ack, s->snd_max) ||
		    seq_lt(g->ack, s->snd_una - (s->max_sndwnd > 65535 ? s->max_sndwnd : 65535))) {
			challenge_ack(c, s);
			return;
		}
		if (tcp_ack(c, s, g) < 0)
			return;
	}
	/* Timestamps: remember the peer's clock for our echoes. */
	if ((s->flags & SF_TS_OK) && g->o.has_ts && seq_le(g->seq, s->rcv_nxt)) {
		s->ts_recent = g->o.tsval;
		s->ts_recent_age = (uint32_t)(c->now >> 20);
	}
	if (g->dlen && (s->ecn & SE_OK)) {
		/* The peer reduced: no more ECE (and ACK now: its window may be
		 * small).  A CE mark: ECE on everything until it does. */
		if (g->ecn & TH_CWR) {
			s->ecn &= (uint8_t)~SE_DEMAND_CWR;
			s->flags |= SF_ACK_NOW;
		}
		if ((g->ecn & IP_ECN_MASK) == IP_ECN_CE) {
			st->stats.tcp_ecn_ce++;
			if (!(s->ecn & SE_DEMAND_CWR))
				tcp_more_quick_acks(s);   /* as Linux: tell the sender soon */
			s->ecn |= SE_DEMAND_CWR;
		}
	}
	if (g->dlen) {
		switch (s->state) {
		case USNET_TCP_ESTABLISHED: case USNET_TCP_FIN_WAIT_1: case USNET_TCP_FIN_WAIT_2:
			if (s->flags & (SF_ORPHAN | SF_SHUT_RD)) {
				/* Data for a socket the application closed: reset, as Linux. */
				if (s->flags & SF_ORPHAN) {
					tcp_send_rst(c, s);
					tcp_drop(c, s, USNET_ECONNRESET);
					return;
				}
			}
			tcp_data(c, s, g);
			break;
		default:
			break;
		}
	}
	if ((g->flags & TH_FIN) && g->seq + g->dlen == s->rcv_nxt && !(s->flags & SF_FIN_RCVD)) {
		if (s->state == USNET_TCP_TIME_WAIT || s->state == USNET_TCP_CLOSED)
			return;
		tcp_fin_in_order(c, s);
	} else if ((g->flags & TH_FIN) && s->state == USNET_TCP_TIME_WAIT) {
		timer_set(st, sk_index(st, s), TMR_KEEP, c->now + TCP_TIME_WAIT_NS);
		s->flags |= SF_ACK_NOW;
	}
	if (s->type)
		tcp_output(c, s);
}

/* The listener for a segment to (dst, dport): of its family (an IPv4
 * one reaches a dual-stack IPv6 listener on :: too). */
static int32_t tcp_listener(struct net_ctx *c, uint32_t dst, uint16_t dport)
{
	if (c->rx_dst6)
		return port_lookup6(c->st, USNET_SOCK_STREAM, c->rx_dst6, dport);
	return port_lookup(c->st, USNET_SOCK_STREAM, dst, dport);
}

void tcp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len,
	       uint32_t rx_flags)
{
	struct usnet_stack *st = c->st;
	st->stats.tcp_rx++;
	if (len < TCP_HLEN) {
		st->stats.tcp_drop_header++;
		return;
	}
	uint32_t doff = (uint32_t)(p[TCP_OFF] >> 4) * 4;
	if (doff < TCP_HLEN || doff > len) {
		st->stats.tcp_drop_header++;
		return;
	}
	if (!(rx_flags & (USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL)) &&
	    csum_fold(csum_add(c->rx_src6 ? csum_pseudo6(c->rx_src6, c->rx_dst6, IPPROTO_TCP_, len) :
					    csum_pseudo(src, dst, IPPROTO_TCP_, len), p, len)) != 0xffff) {
		st->stats.tcp_drop_csum++;
		return;
	}
	struct seg g;
	if (tcp_parse_options(p + TCP_HLEN, doff - TCP_HLEN, &g.o) < 0) {
		st->stats.tcp_drop_options++;
		return;
	}
	uint16_t sport = rd16(p + TCP_SPORT), dport = rd16(p + TCP_DPORT);
	if (sport == 0 || dport == 0) {
		st->stats.tcp_drop_header++;
		return;
	}
	g.seq = rd32(p + TCP_SEQ);
	g.ack = rd32(p + TCP_ACK);
	g.win = rd16(p + TCP_WIN);
	g.flags = p[TCP_FLAGS] & 0x3f;
	g.ecn = (uint8_t)((p[TCP_FLAGS] & (TH_ECE | TH_CWR)) | (c->rx_tos & IP_ECN_MASK));
	g.data = p + doff;
	g.dlen = len - doff;
	if ((g.flags & (TH_SYN | TH_FIN)) == (TH_SYN | TH_FIN) || (g.flags & (TH_SYN | TH_RST)) == (TH_SYN | TH_RST)) {
		st->stats.tcp_drop_header++;
		return;
	}
	int32_t i = c->rx_src6 ? conn_lookup6(st, c->rx_dst6, dport, c->rx_src6, sport) :
				 conn_lookup(st, dst, dport, src, sport);
	if (i == NIL) {
		int32_t l = tcp_listener(c, dst, dport);
		if (l == NIL) {
			st->stats.tcp_no_port++;
			if (!(g.flags & TH_RST))
				tcp_send_rst_for(c, src, dst, p, g.dlen, g.flags);
			return;
		}
		if ((g.flags & (TH_SYN | TH_RST | TH_ACK)) == TH_ACK && st->cfg.tcp_syncookies)
			i = syncookie_child(c, sk(st, l), src, dst, p, &g);
		if (i == NIL) {
			tcp_listen_input(c, sk(st, l), src, dst, p, &g);
			return;
		}
	}
	struct sock *s = sk(st, i);
	if (unlikely(s->state == USNET_TCP_TIME_WAIT) && (g.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN &&
	    (seq_gt(g.seq, s->rcv_nxt) ||
	     ((s->flags & SF_TS_OK) && g.o.has_ts && seq_gt(g.o.tsval, s->ts_recent)))) {
		/* RFC 6191 / RFC 9293 3.6.1: a new incarnation of a connection in
		 * TIME_WAIT may start when its sequence numbers (or timestamps)
		 * cannot be confused with the old one. */
		int32_t l = tcp_listener(c, dst, dport);
		if (l != NIL) {
			if (s->flags & SF_ORPHAN) {
				tcp_free_orphan(c, s);
			} else {
				s->state = USNET_TCP_CLOSED;
				timer_clear_all(st, i);
				conn_remove(st, i);
			}
			tcp_listen_input(c, sk(st, l), src, dst, p, &g);
			return;
		}
	}
	s->segs_in++;
	s->last_rx = c->now;
	if (s->state == USNET_TCP_SYN_SENT)
		tcp_syn_sent_input(c, s, src, dst, p, &g);
	else
		tcp_process(c, s, &g);
	if (s->type == USNET_SOCK_STREAM)
		sock_notify(c, s);
}

/* The path to s's peer takes segments of at most mss bytes now. */
static void tcp_mss_lowered(struct net_ctx *c, struct sock *s, uint32_t mss)
{
	if (mss < TCP_MSS_MIN) mss = TCP_MSS_MIN;
	if (mss >= s->mss)
		return;
	s->mss = (uint16_t)mss;
	if (s->cwnd > 2 * mss && s->cwnd < TCP_INIT_CWND_SEGS * mss) s->cwnd = TCP_INIT_CWND_SEGS * mss;
	/* What was in flight at the old size is lost: send it again now. */
	if (s->snd_una != s->snd_max && s->state >= USNET_TCP_ESTABLISHED) {
		s->snd_nxt = s->snd_una;
		s->flags &= ~SF_RTT_TIMING;
		tcp_output(c, s);
	}
}

/* RFC 1191: a router said our packets are too big. */
void tcp_mtu_reduced(struct net_ctx *c, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport,
		     uint32_t mtu)
{
	struct usnet_stack *st = c->st;
	int32_t i = conn_lookup(st, lip, lport, rip, rport);
	if (i == NIL || mtu < 68)
		return;
	tcp_mss_lowered(c, sk(st, i), mtu - 40);
}

/* RFC 8201: the path MTU to dst is mtu now; every IPv6 connection to it
 * takes it (Linux too applies a Packet Too Big to all the destination's
 * sockets, through its route).  dst NULL: the link's MTU is mtu now (a
 * Router Advertisement said so), every IPv6 connection takes it.
 * O(sockets): PTBs and MTU changes are rare. */
void tcp_mtu_reduced6(struct net_ctx *c, const uint8_t dst[16], uint32_t mtu)
{
	struct usnet_stack *st = c->st;
	const struct sock6 *s6 = st_sock6(st);
	for (uint32_t i = 0; i < st->nsocks; i++) {
		struct sock *s = sk(st, (int32_t)i);
		if (s->type == USNET_SOCK_STREAM && s->net6 && s->state >= USNET_TCP_SYN_SENT &&
		    s->state != USNET_TCP_LISTEN && s->state != USNET_TCP_TIME_WAIT && (!dst || ip6_eq(s6[i].raddr, dst)))
			tcp_mss_lowered(c, s, mtu - IP6_HLEN - TCP_HLEN);
	}
}
