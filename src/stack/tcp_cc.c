/*
 * Congestion control: the ops table indexed by enum usnet_cc (the arena
 * stores only the index) and what the algorithms share.
 */
#include "internal.h"

static const struct tcp_cc_ops *const cc_table[] = {
	[USNET_CC_CUBIC] = &tcp_cc_cubic_ops,
	[USNET_CC_NEWRENO] = &tcp_cc_newreno_ops,
};

const struct tcp_cc_ops *tcp_cc(const struct sock *s)
{
	return s->cc <= USNET_CC_NEWRENO ? cc_table[s->cc] : &tcp_cc_cubic_ops;
}

uint32_t tcp_flight(const struct sock *s)
{
	return s->snd_max - s->snd_una;
}

/* RFC 5681 slow start with byte counting (RFC 3465).  The limit L is
 * larger than RFC 3465's 2 SMSS because one ACK may cover a whole input
 * batch (see usnet_stack_input): as Linux, count what it acknowledges, up
 * to a bound.  Returns the acked bytes left over once cwnd reaches
 * ssthresh. */
uint32_t tcp_slow_start(struct sock *s, uint32_t acked)
{
	uint32_t mss = s->mss;
	uint32_t inc = min_u32(acked, 32 * mss);
	uint32_t room = s->ssthresh > s->cwnd ? s->ssthresh - s->cwnd : 0;
	if (inc > room) {
		s->cwnd += room;
		return acked - room;
	}
	s->cwnd += inc;
	return 0;
}
