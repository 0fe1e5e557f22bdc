/*
 * usnet-bench — shared declarations of the three modes (ponger, pinger, kv)
 * and their helpers: latency recording and the zipfian key generator.
 */
#ifndef BENCH_H
#define BENCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "netloop.h"

/* Everything a mode needs from the command line. */
struct bench_config {
	struct netloop_options net;
	struct netloop_host host; /* server address (pinger, kv), IPv4 or IPv6 */
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
	int redis;              /* kv: the Redis protocol (RESP) instead of memcached's */
};

int bench_ponger(const struct bench_config *cfg);
int bench_pinger(const struct bench_config *cfg);
int bench_kv(const struct bench_config *cfg);

/* What every mode does first: *net from cfg, prepared for cfg->threads
 * threads (netloop_prepare), and the zeroed array of cfg->threads thread
 * structs of `thread_size` bytes.  NULL (having said why, as mode `mode`)
 * when either fails. */
void *bench_prepare(const struct bench_config *cfg, const char *mode, struct netloop_options *net,
		    size_t thread_size);

/* Set by SIGINT/SIGTERM: every loop stops. */
extern volatile sig_atomic_t bench_stop;

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

/* ---- client threads (pinger, kv) ----------------------------------------
 * What every client mode keeps per thread and does the same way.  A mode's
 * thread struct begins with a struct bench_client; each of its connection
 * structs begins with the connection's netloop id (`int id`). */
struct bench_client {
	pthread_t tid;
	int index;
	const struct bench_config *cfg;
	struct netloop *loop;
	int nconns, up, failed;      /* connections: wanted, up, given up on */
	uint64_t start_ns, end_ns;   /* measured window */
	struct bench_samples samples;
	uint64_t errors;
};

/* Set up thread `index` of mode `mode` ("pinger", "kv"): its netloop on
 * `net`, with `ready` called with context `ctx` (the mode's thread struct).
 * Prints why and returns -1 when the loop cannot be opened. */
int bench_client_open(struct bench_client *cl, const char *mode, const struct bench_config *cfg,
		      int index, const struct netloop_options *net, netloop_handler ready, void *ctx);
/* Run `thread_main` on every one of the `n` thread structs of `thread_size` bytes at
 * `threads`: thread 0 on the calling thread, the others on their own. */
void bench_client_run(void *threads, size_t thread_size, int n, void *(*thread_main)(void *));
/* Connect the `cl->nconns` connections at `conns` (`conn_size` bytes each),
 * wait until they are up (5 s at most), warm up, measure for cfg->seconds
 * (cl->start_ns..end_ns: before it, replies are not measured), and close. */
void bench_client_measure(struct bench_client *cl, const char *mode, void *conns, size_t conn_size);
/* Merge the samples of the `n` threads and print the report of `what` ("round
 * trips", "requests"); 1 when no connection at all could be made, else 0. */
int bench_client_report(const char *mode, const char *what, void *threads, size_t thread_size,
			int n);
/* Send what is left of `buf` (`*sent` of its `len` bytes have gone) on
 * connection `id`: asks for NETLOOP_EV_OUT while the connection is full and
 * stops asking once all is sent; an error counts in cl->errors. */
void bench_client_send(struct bench_client *cl, int id, const char *buf, size_t len, size_t *sent);
/* A connection that failed or was closed by the server: an error (and one
 * given up on, when it never came up); closes it and sets *id to -1. */
void bench_client_drop(struct bench_client *cl, int *id, int connected);
/* The reply to the request sent at t0 is complete: its latency is a sample
 * when it falls in the measured window.  1 once the window is over (send no
 * more), else 0. */
int bench_client_reply(struct bench_client *cl, uint64_t t0);
/* Close the thread's loop and free its samples. */
void bench_client_close(struct bench_client *cl);

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
