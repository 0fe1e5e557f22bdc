/*
 * TCP timers: retransmission timeout (RFC 6298, exponential backoff) or
 * zero-window persist, delayed ACK, and the "long" timer shared by
 * keepalive, FIN_WAIT_2 of orphans and TIME_WAIT (2 MSL).
 */
#include "internal.h"

void tcp_delack_schedule(struct net_ctx *c, struct sock *s)
{
	if (s->timer_at[TMR_DELACK] == UINT64_MAX)
		timer_set(c->st, sk_index(c->st, s), TMR_DELACK, c->now + TCP_DELACK_NS);
}

void tcp_keepalive_reset(struct net_ctx *c, struct sock *s)
{
	s->keep_probes = 0;
	if ((s->flags & SF_KEEPALIVE) &&
	    (s->state == USNET_TCP_ESTABLISHED || s->state == USNET_TCP_CLOSE_WAIT))
		timer_set(c->st, sk_index(c->st, s), TMR_KEEP, s->last_rx + (uint64_t)s->keepidle_s * NS_PER_S);
	else if (s->state == USNET_TCP_ESTABLISHED || s->state == USNET_TCP_CLOSE_WAIT)
		timer_clear(c->st, sk_index(c->st, s), TMR_KEEP);
}

static void tcp_rto_expired(struct net_ctx *c, struct sock *s)
{
	struct usnet_stack *st = c->st;
	if (s->flags & SF_PERSIST) {
		/* Zero-window probe; keep probing with backoff while the peer
		 * keeps its window shut. */
		s->flags &= ~SF_PERSIST;
		if (s->backoff < TCP_MAX_BACKOFF)
			s->backoff++;
		tcp_send_window_probe(c, s);
		if (s->snd_wnd == 0 && s->snd_nxt == s->snd_una && s->sndq.bytes) {
			uint64_t t = (uint64_t)max_u32(s->rto_us, TCP_PERSIST_MIN_US) << (s->backoff < 8 ? s->backoff : 8);
			if (t > 60ull * 1000000) t = 60ull * 1000000;
			s->flags |= SF_PERSIST;
			timer_set(st, sk_index(st, s), TMR_RTO, c->now + t * NS_PER_US);
		} else {
			tcp_output(c, s);
		}
		return;
	}
	if ((s->flags & SF_TLP_ARMED) && s->snd_una != s->snd_max) {
		tcp_send_tlp(c, s);
		return;
	}
	s->flags &= ~SF_TLP_ARMED;
	if (s->state == USNET_TCP_SYN_SENT || s->state == USNET_TCP_SYN_RECEIVED) {
		unsigned limit = s->state == USNET_TCP_SYN_SENT ? (s->syncnt ? s->syncnt : TCP_SYN_RETRIES) : TCP_SYNACK_RETRIES;
		/* As Linux: a listener whose SYN queue is half full gives up
		 * sooner on SYN-ACKs nobody answers (a flood's spoofed sources),
		 * making room for peers that do; so does the stack for a while
		 * after it had to send SYN cookies, so that what a flood left
		 * goes in seconds, not in a minute. */
		int resend = 1;
		if (s->state == USNET_TCP_SYN_RECEIVED && s->parent != NIL) {
			const struct sock *l = sk(st, s->parent);
			int flooded = st->syncookie_last && c->now - st->syncookie_last < TCP_SYNFLOOD_RECENT_NS;
			if ((flooded || l->syn_count >= l->backlog / 2u) && limit > TCP_SYNACK_RETRIES_BUSY)
				limit = TCP_SYNACK_RETRIES_BUSY;
			/* TCP_DEFER_ACCEPT with the handshake's ACK in (Linux's
			 * syn_ack_recalc): no SYN-ACK again until the deferral's
			 * last timeout, whose answer completes the connection; it
			 * goes only after the longer of the two limits */
			if (s->defer_acked && l->defer_retrans) {
				if (limit < l->defer_retrans)
					limit = l->defer_retrans;
				resend = s->syn_retries + 1 >= l->defer_retrans;
			}
		}
		if (s->syn_retries >= limit) {
			tcp_drop(c, s, USNET_ETIMEDOUT);
			return;
		}
		s->syn_retries++;
		s->backoff++;
		s->rto_us = min_u32(s->rto_us * 2, TCP_RTO_MAX_US);
		s->flags &= ~SF_RTT_TIMING;
		if (resend) {
			s->total_retrans_lo++;
			st->stats.tcp_retrans++;
			tcp_send_syn(c, s);
		}
		tcp_arm_rto(c, s);
		return;
	}
	if (s->snd_una == s->snd_max) {
		/* Nothing outstanding: a retry after the netif ran out of
		 * buffers, the cork's ceiling, or a race with an ACK.  Send
		 * what is queued, a corked partial segment too. */
		tcp_output_uncorked(c, s);
		return;
	}
	if (s->backoff >= TCP_MAX_BACKOFF ||
	    (s->user_timeout_ms && s->unacked_since &&
	     c->now - s->unacked_since >= (uint64_t)s->user_timeout_ms * NS_PER_MS)) {
		tcp_drop(c, s, USNET_ETIMEDOUT);   /* TCP_USER_TIMEOUT: the peer vanished */
		return;
	}
	/* RFC 6298 5.5-5.7 and RFC 5681 (3.1): collapse the window and go back. */
	st->stats.tcp_rto++;
	tcp_cc(s)->on_rto(s, c->now);
	s->flags &= ~(SF_IN_RECOVERY | SF_RTT_TIMING);
	s->recover = s->snd_max;
	s->dupacks = 0;
	s->high_rxt = s->snd_una;
	s->snd_nxt = s->snd_una;
	s->backoff++;
	s->rto_us = min_u32(s->rto_us * 2, TCP_RTO_MAX_US);
	timer_clear(st, sk_index(st, s), TMR_RTO);
	tcp_output(c, s);
	if (s->timer_at[TMR_RTO] == UINT64_MAX && s->type)
		tcp_arm_rto(c, s);
}

static void tcp_long_timer(struct net_ctx *c, struct sock *s)
{
	switch (s->state) {
	case USNET_TCP_TIME_WAIT:
	case USNET_TCP_FIN_WAIT_2:
		if (s->flags & SF_ORPHAN) {
			tcp_free_orphan(c, s);
		} else if (s->state == USNET_TCP_TIME_WAIT) {
			tcp_set_state(c, s, USNET_TCP_CLOSED);
			if (s->flags & SF_HASHED)
				conn_remove(c->st, sk_index(c->st, s));
		}
		return;
	case USNET_TCP_ESTABLISHED:
	case USNET_TCP_CLOSE_WAIT:
		if (!(s->flags & SF_KEEPALIVE))
			return;
		if (c->now < s->last_rx + (uint64_t)s->keepidle_s * NS_PER_S) {
			/* Traffic since the timer was set (an answer to a probe
			 * included): wait the rest of the idle time. */
			s->keep_probes = 0;
			timer_set(c->st, sk_index(c->st, s), TMR_KEEP, s->last_rx + (uint64_t)s->keepidle_s * NS_PER_S);
			return;
		}
		if (s->keep_probes >= s->keepcnt) {
			tcp_drop(c, s, USNET_ETIMEDOUT);
			return;
		}
		s->keep_probes++;
		tcp_send_keepalive(c, s);
		timer_set(c->st, sk_index(c->st, s), TMR_KEEP, c->now + (uint64_t)s->keepintvl_s * NS_PER_S);
		return;
	default:
		return;
	}
}

void tcp_timers(struct net_ctx *c, struct sock *s)
{
	struct usnet_stack *st = c->st;
	int32_t i = sk_index(st, s);
	if (s->type != USNET_SOCK_STREAM) {
		timer_clear_all(st, i);
		return;
	}
	if (s->timer_at[TMR_DELACK] <= c->now) {
		timer_clear(st, i, TMR_DELACK);
		s->pingpong = 0;   /* no answer took the ACK along: not interactive */
		if (s->state >= USNET_TCP_ESTABLISHED)
			tcp_send_ack(c, s);
	}
	if (s->timer_at[TMR_RTO] <= c->now) {
		timer_clear(st, i, TMR_RTO);
		tcp_rto_expired(c, s);
		if (s->type != USNET_SOCK_STREAM)
			return;
	}
	if (s->timer_at[TMR_KEEP] <= c->now) {
		timer_clear(st, i, TMR_KEEP);
		tcp_long_timer(c, s);
		if (s->type != USNET_SOCK_STREAM)
			return;
	}
	sock_notify(c, s);
}
