/*
 * usnet-bench — shared declarations of the three modes (ponger, pinger, kv)
 * and their helpers: latency recording and the zipfian key generator.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include "netloop.h"

/* Everything a mode needs from the command line. */
struct bench_config {
	struct netloop_options net;
	uint32_t host;          /* server address (pinger, kv), host order */
	uint16_t port;
	int threads;
	int conns;              /* connections per thread */
	size_t msg_bytes;       /* pinger: message size */
	double seconds;         /* pinger, kv: how long to measure */
	/* kv workload */
	uint32_t keys;          /* items */
	double set_ratio;       /* fraction of requests that are sets */
	double theta;           /* zipfian skew */
	int preload;            /* store every item first */
};

int bench_ponger(const struct bench_config *cfg);
int bench_pinger(const struct bench_config *cfg);
int bench_kv(const struct bench_config *cfg);

/* Set by SIGINT/SIGTERM: every loop stops. */
extern volatile int bench_stop;

/* ---- latency samples (one set per thread, merged at the end) ------------- */
struct bench_samples {
	uint64_t *ns;
	size_t n, cap;
};
void bench_samples_add(struct bench_samples *s, uint64_t ns);
/* Merge `parts` sample sets, sort, and print the summary line(s) for `what`
 * ("round trips", "requests") measured over `seconds`. */
void bench_report(const char *what, struct bench_samples *parts, int nparts, double seconds,
		  uint64_t errors);

/* ---- zipfian keys (Gray et al., as YCSB): rank 0 is the most popular ----- */
struct bench_zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow_theta;
};
/* Precompute for n items (takes O(n) once). */
void bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta);
/* Next rank in [0, n) for a uniform u in [0, 1). */
uint64_t bench_zipf_next(const struct bench_zipf *z, double u);

/* A small per-thread random generator (xorshift64*). */
static inline uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 2685821657736338717ull;
}
static inline double bench_rand01(uint64_t *state)
{
	return (double)(bench_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

#endif /* BENCH_H */
