/*
 * pinger: C connections per thread, each with exactly one M-byte message
 * outstanding; every completed round trip is timed.  Reports round trips per
 * second and latency percentiles over the measured window (after a short
 * warm-up, once every connection is up).
 */
#include <errno.h>
#include <pthread.h>
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
	pthread_t tid;
	int index;
	const struct bench_config *cfg;
	struct netloop *loop;
	struct ping_conn *conns;
	int nconns, up;
	char *msg;
	char buf[65536];
	uint64_t start_ns, end_ns;   /* measured window */
	struct bench_samples samples;
	uint64_t errors;
	int failed;
};

static void ping_send(struct ping_thread *t, struct ping_conn *c)
{
	while (c->sent < t->cfg->msg_bytes) {
		long n = netloop_send(t->loop, c->id, t->msg + c->sent, t->cfg->msg_bytes - c->sent);
		if (n == -EAGAIN) {
			netloop_want_write(t->loop, c->id, 1);
			return;
		}
		if (n < 0) {
			t->errors++;
			return;
		}
		c->sent += (size_t)n;
	}
	netloop_want_write(t->loop, c->id, 0);
}

static void ping_start(struct ping_thread *t, struct ping_conn *c)
{
	c->sent = c->rcvd = 0;
	c->t0 = netloop_now_ns();
	ping_send(t, c);
}

static void ping_dead(struct ping_thread *t, struct ping_conn *c)
{
	t->errors++;
	netloop_close(t->loop, c->id);
	c->id = -1;
	if (!c->connected)
		t->failed++;
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
		t->up++;
		ping_start(t, c);
	} else if ((ev & NETLOOP_EV_OUT) && c->sent < t->cfg->msg_bytes) {
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
		if (c->rcvd >= t->cfg->msg_bytes) {
			uint64_t now = netloop_now_ns();
			if (now >= t->start_ns && now < t->end_ns)
				bench_samples_add(&t->samples, now - c->t0);
			if (now >= t->end_ns)
				return;  /* measured enough: stop sending */
			ping_start(t, c);
		}
	}
}

static void *ping_main(void *arg)
{
	struct ping_thread *t = arg;
	const struct bench_config *cfg = t->cfg;
	/* No window yet: replies before it keep the connections busy but
	 * are not measured. */
	t->start_ns = t->end_ns = UINT64_MAX;
	for (int i = 0; i < t->nconns; i++) {
		struct ping_conn *c = &t->conns[i];
		c->id = netloop_connect(t->loop, cfg->host, cfg->port);
		if (c->id < 0) {
			fprintf(stderr, "usnet-bench pinger: connect: %s\n", strerror(-c->id));
			t->failed++;
			continue;
		}
		netloop_set_user(t->loop, c->id, c);
	}
	uint64_t deadline = netloop_now_ns() + 5000000000ull;
	while (t->up + t->failed < t->nconns && !bench_stop && netloop_now_ns() < deadline)
		netloop_poll(t->loop, 10);
	uint64_t warm = (uint64_t)(cfg->seconds * 1e9 / 10);
	if (warm > 500000000ull)
		warm = 500000000ull;
	t->start_ns = netloop_now_ns() + warm;
	t->end_ns = t->start_ns + (uint64_t)(cfg->seconds * 1e9);
	while (!bench_stop && netloop_now_ns() < t->end_ns)
		netloop_poll(t->loop, 10);
	for (int i = 0; i < t->nconns; i++)
		if (t->conns[i].id >= 0)
			netloop_close(t->loop, t->conns[i].id);
	/* Let the closes leave (usnet: FINs go out from the poll loop). */
	for (int i = 0; i < 5; i++)
		netloop_poll(t->loop, 1);
	return NULL;
}

int bench_pinger(const struct bench_config *cfg)
{
	char err[256];
	struct netloop_options net = cfg->net;
	if (netloop_prepare(&net, cfg->threads, err, sizeof err) < 0) {
		fprintf(stderr, "usnet-bench pinger: %s\n", err);
		return 1;
	}
	struct ping_thread *th = calloc((size_t)cfg->threads, sizeof *th);
	if (!th)
		return 1;
	for (int i = 0; i < cfg->threads; i++) {
		struct ping_thread *t = &th[i];
		t->index = i;
		t->cfg = cfg;
		t->nconns = cfg->conns;
		t->conns = calloc((size_t)cfg->conns, sizeof *t->conns);
		t->msg = malloc(cfg->msg_bytes);
		if (!t->conns || !t->msg)
			return 1;
		memset(t->msg, 'p', cfg->msg_bytes);
		t->loop = netloop_open(&net, i, ping_ready, t, err, sizeof err);
		if (!t->loop) {
			fprintf(stderr, "usnet-bench pinger: thread %d: %s\n", i, err);
			return 1;
		}
	}
	for (int i = 1; i < cfg->threads; i++)
		pthread_create(&th[i].tid, NULL, ping_main, &th[i]);
	ping_main(&th[0]);
	for (int i = 1; i < cfg->threads; i++)
		pthread_join(th[i].tid, NULL);
	struct bench_samples *parts = calloc((size_t)cfg->threads, sizeof *parts);
	uint64_t errors = 0;
	int failed = 0;
	for (int i = 0; i < cfg->threads; i++) {
		parts[i] = th[i].samples;
		errors += th[i].errors;
		failed += th[i].failed;
	}
	printf("pinger: %d thread(s) x %d connection(s), %zu-byte messages, %s\n", cfg->threads,
	       cfg->conns, cfg->msg_bytes, net.kernel ? "kernel sockets" : "usnet");
	bench_report("round trips", parts, cfg->threads, cfg->seconds, errors);
	int rc = failed == cfg->threads * cfg->conns ? 1 : 0;
	if (rc)
		fprintf(stderr, "usnet-bench pinger: no connection could be made\n");
	for (int i = 0; i < cfg->threads; i++) {
		netloop_close_loop(th[i].loop);
		free(th[i].conns);
		free(th[i].msg);
		free(th[i].samples.ns);
	}
	netloop_finish(&net);
	free(parts);
	free(th);
	return rc;
}
