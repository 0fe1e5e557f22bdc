/*
 * Closing TCP sockets: orderly close in the background (the socket becomes
 * an orphan that finishes the FIN exchange and TIME_WAIT by itself),
 * abortive close (linger 0, or unread data, as Linux), and listeners
 * (their unaccepted children are reset).
 */
#include "internal.h"

void tcp_free_orphan(struct net_ctx *c, struct sock *s)
{
	sock_free(c->st, sk_index(c->st, s));
}

static void close_listener(struct net_ctx *c, struct sock *l)
{
	struct usnet_stack *st = c->st;
	int32_t li = sk_index(st, l);
	/* Children hold the listener's index: find them all (closing a
	 * listener is rare, the scan is fine). */
	for (uint32_t k = 0; k < st->nsocks; k++) {
		struct sock *ch = sk(st, (int32_t)k);
		if (ch->type != USNET_SOCK_STREAM || ch->parent != li)
			continue;
		tcp_send_rst(c, ch);
		ch->parent = NIL;
		sock_free(st, (int32_t)k);
	}
	sock_free(st, li);
}

int tcp_close(struct net_ctx *c, struct sock *s)
{
	struct usnet_stack *st = c->st;
	int32_t i = sk_index(st, s);
	switch (s->state) {
	case USNET_TCP_LISTEN:
		close_listener(c, s);
		return 0;
	case USNET_TCP_CLOSED:
	case USNET_TCP_SYN_SENT:
		sock_free(st, i);
		return 0;
	case USNET_TCP_TIME_WAIT:
		s->flags |= SF_ORPHAN;
		byteq_clear(st, &s->rcvq);
		return 0;
	default:
		break;
	}
	int abort = s->linger == 0 || s->rcvq.bytes > 0 || s->ooo != NIL;
	if (abort) {
		/* RFC 9293 3.10.4 / RFC 2525 2.17: unread data means the peer
		 * must learn that it was not delivered. */
		tcp_send_rst(c, s);
		sock_free(st, i);
		return 0;
	}
	s->flags |= SF_ORPHAN | SF_SHUT_RD;
	byteq_clear(st, &s->rcvq);
	switch (s->state) {
	case USNET_TCP_SYN_RECEIVED:
	case USNET_TCP_ESTABLISHED:
		s->flags |= SF_SHUT_WR;
		s->state = USNET_TCP_FIN_WAIT_1;
		tcp_output(c, s);
		break;
	case USNET_TCP_CLOSE_WAIT:
		s->flags |= SF_SHUT_WR;
		s->state = USNET_TCP_LAST_ACK;
		tcp_output(c, s);
		break;
	case USNET_TCP_FIN_WAIT_2:
		timer_set(st, i, TMR_KEEP, c->now + tcp_fin_wait2_ns(st, s));
		break;
	default:
		break;   /* FIN_WAIT_1, CLOSING, LAST_ACK: already on the way */
	}
	return 0;
}
