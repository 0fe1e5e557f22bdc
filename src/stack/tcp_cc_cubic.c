/*
 * CUBIC congestion control (RFC 9438).  Windows are kept in bytes; time in
 * milliseconds from the ~1 ms clock now >> 20.  W_cubic(t) = C (t - K)^3 +
 * W_max with C = 0.4 and beta = 0.7, K = cbrt(W_max (1 - beta) / C), plus the
 * Reno-friendly estimate W_est.  The cube root is computed only at a
 * congestion event; per ACK there is one multiplication chain and one
 * division.
 */
#include "internal.h"

#define CUBIC_BETA_NUM 7   /* beta = 0.7 */
#define CUBIC_BETA_DEN 10

static uint32_t ms_of(uint64_t now) { return (uint32_t)(now >> 20); }

/* Integer cube root of x (bisection on 64 bits, ~22 steps). */
static uint32_t icbrt(uint64_t x)
{
	uint64_t lo = 0, hi = 2642245;   /* cbrt(2^64) */
	while (lo < hi) {
		uint64_t mid = (lo + hi + 1) / 2;
		if (mid * mid * mid <= x) lo = mid; else hi = mid - 1;
	}
	return (uint32_t)lo;
}

static void cubic_init(struct sock *s, uint64_t now)
{
	(void)now;
	s->cwnd = TCP_INIT_CWND_SEGS * s->mss;
	s->ssthresh = 0x7fffffff;
	s->cwnd_acc = 0;
	s->cub_wmax = 0;
	s->cub_k_ms = 0;
	s->cub_epoch_ms = 0;
	s->cub_west = 0;
	s->cub_origin = 0;
}

static void cubic_on_ack(struct sock *s, uint32_t acked, uint64_t now)
{
	if (s->cwnd < s->ssthresh) {
		acked = tcp_slow_start(s, acked);
		if (!acked)
			return;
	}
	uint32_t mss = s->mss;
	uint32_t t_now = ms_of(now);
	if (s->cub_epoch_ms == 0) {
		/* First congestion-avoidance ACK of an epoch. */
		s->cub_epoch_ms = t_now ? t_now : 1;
		if (s->cub_wmax <= s->cwnd) {
			s->cub_k_ms = 0;
			s->cub_origin = s->cwnd;
		} else {
			/* K = cbrt((W_max - cwnd) / (C * mss)) seconds, in ms:
			 * cbrt(diff_segs / 0.4 * 1e9) = cbrt(diff_segs * 2.5e9). */
			uint64_t diff_segs = (uint64_t)(s->cub_wmax - s->cwnd) / mss;
			s->cub_k_ms = icbrt(diff_segs * 2500000000ull);
			s->cub_origin = s->cub_wmax;
		}
		s->cub_west = s->cwnd;
	}
	uint32_t t = t_now - s->cub_epoch_ms;
	/* W_cubic(t) in bytes: C (t - K)^3 mss + origin, t in ms, C = 0.4/s^3. */
	int64_t d = (int64_t)t - (int64_t)s->cub_k_ms;
	if (d > 100000) d = 100000;        /* bound the cube (100 s) */
	if (d < -100000) d = -100000;
	int64_t delta = d * d * d / 2500000000ll * (int64_t)mss;  /* 0.4 * d^3 / 1e9 */
	int64_t target = (int64_t)s->cub_origin + delta;
	if (target < (int64_t)mss) target = mss;
	if (target > (int64_t)s->cwnd + (int64_t)(s->cwnd / 2)) target = s->cwnd + s->cwnd / 2;
	/* Reno-friendly region (RFC 9438 4.3): W_est grows by
	 * alpha = 3 (1 - beta) / (1 + beta) ~ 0.53 MSS per cwnd acked. */
	s->cwnd_acc += acked;
	if (s->cwnd_acc >= s->cwnd) {
		s->cwnd_acc -= s->cwnd;
		s->cub_west += mss * 53 / 100;
	}
	if ((int64_t)s->cub_west > target)
		target = s->cub_west;
	if (target > (int64_t)s->cwnd) {
		/* Move toward the target by (target - cwnd) / cwnd MSS per MSS
		 * acked, i.e. cwnd += (target - cwnd) * acked / cwnd. */
		uint64_t inc = (uint64_t)(target - s->cwnd) * acked / s->cwnd;
		if (inc == 0 && (uint32_t)(target - s->cwnd) >= mss)
			inc = 1;
		s->cwnd += (uint32_t)min_u64(inc, mss);
	}
}

static void cubic_on_loss(struct sock *s, uint64_t now)
{
	(void)now;
	uint32_t cwnd = s->cwnd;
	/* Fast convergence (RFC 9438 4.7). */
	if (cwnd < s->cub_wmax)
		s->cub_wmax = (uint32_t)((uint64_t)cwnd * (CUBIC_BETA_DEN + CUBIC_BETA_NUM) / (2 * CUBIC_BETA_DEN));
	else
		s->cub_wmax = cwnd;
	uint32_t flight = tcp_flight(s);
	uint32_t base = flight < cwnd ? max_u32(flight, 2 * s->mss) : cwnd;
	s->ssthresh = max_u32((uint32_t)((uint64_t)base * CUBIC_BETA_NUM / CUBIC_BETA_DEN), 2 * s->mss);
	s->cub_epoch_ms = 0;
	s->cwnd_acc = 0;
}

static void cubic_on_rto(struct sock *s, uint64_t now)
{
	cubic_on_loss(s, now);
	s->cwnd = s->mss;
}

const struct tcp_cc_ops tcp_cc_cubic_ops = {
	.name = "cubic",
	.init = cubic_init,
	.on_ack = cubic_on_ack,
	.on_loss = cubic_on_loss,
	.on_rto = cubic_on_rto,
};
