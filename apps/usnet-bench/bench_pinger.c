/*
 * pinger: C connections per thread, each with exactly one M-byte message
 * outstanding; every completed round trip is timed.  Reports round trips per
 * second and latency percentiles over the measured window (after a short
 * warm-up, once every connection is up).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct ping_conn {
	int id;
	int connected;
	size_t sent, rcvd;
	uint64_t t0;
};

struct ping_thread {
	struct bench_client cl;      /* first: see struct bench_client */
	struct ping_conn *conns;
	char *msg;
	char buf[65536];
};

static void ping_send(struct ping_thread *t, struct ping_conn *c)
{
	bench_client_send(&t->cl, c->id, t->msg, t->cl.cfg->msg_bytes, &c->sent);
}

static void ping_start(struct ping_thread *t, struct ping_conn *c)
{
	c->sent = c->rcvd = 0;
	c->t0 = netloop_now_ns();
	ping_send(t, c);
}

static void ping_dead(struct ping_thread *t, struct ping_conn *c)
{
	bench_client_drop(&t->cl, &c->id, c->connected);
}

static void ping_ready(struct netloop *l, int id, uint32_t ev, void *user)
{
	struct ping_thread *t = netloop_ctx(l);
	struct ping_conn *c = user;
	(void)id;
	if (!c || c->id < 0)
		return;
	if (ev & (NETLOOP_EV_ERR | NETLOOP_EV_HUP)) {
		ping_dead(t, c);
		return;
	}
	if (!c->connected) {
		if (!(ev & NETLOOP_EV_OUT))
			return;
		c->connected = 1;
		t->cl.up++;
		ping_start(t, c);
	} else if ((ev & NETLOOP_EV_OUT) && c->sent < t->cl.cfg->msg_bytes) {
		ping_send(t, c);
	}
	for (;;) {
		long n = netloop_recv(l, c->id, t->buf, sizeof t->buf);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			ping_dead(t, c);
			return;
		}
		c->rcvd += (size_t)n;
		if (c->rcvd >= t->cl.cfg->msg_bytes) {
			if (bench_client_reply(&t->cl, c->t0))
				return;  /* measured enough: stop sending */
			ping_start(t, c);
			/* The next reply can only follow this message: a
			 * change the loop reports, so no recv that would
			 * only find EAGAIN (one system call less per round
			 * trip on kernel sockets). */
			return;
		}
	}
}

static void *ping_main(void *arg)
{
	struct ping_thread *t = arg;
	bench_client_measure(&t->cl, "pinger", t->conns, sizeof *t->conns);
	return NULL;
}

int bench_pinger(const struct bench_config *cfg)
{
	struct netloop_options net;
	struct ping_thread *th = bench_prepare(cfg, "pinger", &net, sizeof *th);
	if (!th)
		return 1;
	for (int i = 0; i < cfg->threads; i++) {
		struct ping_thread *t = &th[i];
		t->conns = calloc((size_t)cfg->conns, sizeof *t->conns);
		t->msg = malloc(cfg->msg_bytes);
		if (!t->conns || !t->msg)
			return 1;
		memset(t->msg, 'p', cfg->msg_bytes);
		if (bench_client_open(&t->cl, "pinger", cfg, i, &net, ping_ready, t) < 0)
			return 1;
	}
	bench_client_run(th, sizeof *th, cfg->threads, ping_main);
	printf("pinger: %d thread(s) x %d connection(s), %zu-byte messages, %s\n", cfg->threads,
	       cfg->conns, cfg->msg_bytes, net.kernel ? "kernel sockets" : "usnet");
	int rc = bench_client_report("pinger", "round trips", th, sizeof *th, cfg->threads);
	for (int i = 0; i < cfg->threads; i++) {
		bench_client_close(&th[i].cl);
		free(th[i].conns);
		free(th[i].msg);
	}
	netloop_finish(&net);
	free(th);
	return rc;
}
