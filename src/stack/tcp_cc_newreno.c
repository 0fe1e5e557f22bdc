/* NewReno congestion control (RFC 5681 / RFC 6582): the window part; the
 * recovery procedure itself is in tcp_input.c. */
#include "internal.h"

static void nr_init(struct sock *s, uint64_t now)
{
	(void)now;
	s->cwnd = TCP_INIT_CWND_SEGS * s->mss;
	s->ssthresh = 0x7fffffff;
	s->cwnd_acc = 0;
}

static void nr_on_ack(struct sock *s, uint32_t acked, uint64_t now)
{
	(void)now;
	if (s->cwnd < s->ssthresh) {
		acked = tcp_slow_start(s, acked);
		if (!acked)
			return;
	}
	/* Congestion avoidance: one MSS per cwnd of data acknowledged. */
	s->cwnd_acc += acked;
	if (s->cwnd_acc >= s->cwnd) {
		s->cwnd_acc -= s->cwnd;
		s->cwnd += s->mss;
	}
}

static void nr_on_loss(struct sock *s, uint64_t now)
{
	(void)now;
	s->ssthresh = max_u32(tcp_flight(s) / 2, 2 * s->mss);
	s->cwnd_acc = 0;
}

static void nr_on_rto(struct sock *s, uint64_t now)
{
	nr_on_loss(s, now);
	s->cwnd = s->mss;
}

const struct tcp_cc_ops tcp_cc_newreno_ops = {
	.name = "newreno",
	.init = nr_init,
	.on_ack = nr_on_ack,
	.on_loss = nr_on_loss,
	.on_rto = nr_on_rto,
};
