/*
 * ponger: answer every message by echoing the bytes back, on every
 * connection, until stopped.  One loop (one stack instance) per thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define PONG_BUF 65536

struct pong_conn {
	int id;
	char *pending;        /* bytes not echoed yet (send was short) */
	size_t plen, poff;
};

struct pong_thread {
	pthread_t tid;
	int index;
	struct netloop *loop;
	int listener;
	char buf[PONG_BUF];
};

static void pong_close(struct netloop *l, struct pong_conn *c)
{
	netloop_close(l, c->id);
	free(c->pending);
	free(c);
}

/* Echo what is pending; 1 while some is still waiting. */
static int pong_flush(struct netloop *l, struct pong_conn *c)
{
	while (c->poff < c->plen) {
		long n = netloop_send(l, c->id, c->pending + c->poff, c->plen - c->poff);
		if (n == -EAGAIN) {
			netloop_want_write(l, c->id, 1);
			return 1;
		}
		if (n < 0)
			return -1;
		c->poff += (size_t)n;
	}
	c->plen = c->poff = 0;
	netloop_want_write(l, c->id, 0);
	return 0;
}

/* Keep what the stack did not take, to send once there is room. */
static int pong_keep(struct pong_conn *c, const char *p, size_t n)
{
	char *b = realloc(c->pending, n);
	if (!b)
		return -1;
	memcpy(b, p, n);
	c->pending = b;
	c->plen = n;
	c->poff = 0;
	return 0;
}

/* usnet: echo straight out of the receive buffer (no copy in between).
 * 1 when it echoed something, 0 when nothing was there, -1 on error,
 * -2 where only the copying path works (kernel sockets). */
static int pong_echo_zero_copy(struct netloop *l, struct pong_conn *c)
{
	struct iovec iov[8];
	int n = netloop_peek(l, c->id, iov, 8);
	if (n <= 0)
		return n == 0 ? 0 : -2;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	long s = netloop_sendv(l, c->id, iov, n);
	if (s == -EAGAIN)
		s = 0;
	if (s < 0)
		return -1;
	if ((size_t)s < total) {
		/* Copy the rest out (the first iovecs are already sent). */
		size_t skip = (size_t)s, k = 0;
		char *rest = malloc(total - (size_t)s);
		if (!rest)
			return -1;
		for (int i = 0; i < n; i++) {
			size_t len = iov[i].iov_len;
			if (skip >= len) {
				skip -= len;
				continue;
			}
			memcpy(rest + k, (char *)iov[i].iov_base + skip, len - skip);
			k += len - skip;
			skip = 0;
		}
		free(c->pending);
		c->pending = rest;
		c->plen = k;
		c->poff = 0;
	}
	netloop_consume(l, c->id, total);
	return 1;
}

static void pong_conn_ready(struct pong_thread *t, struct pong_conn *c, uint32_t ev)
{
	struct netloop *l = t->loop;
	int zero_copy = 1;
	if (ev & NETLOOP_EV_ERR) {
		pong_close(l, c);
		return;
	}
	for (;;) {
		int f = pong_flush(l, c);
		if (f < 0) {
			pong_close(l, c);
			return;
		}
		if (f > 0)
			return;  /* wait for room before reading more */
		if (zero_copy) {
			int z = pong_echo_zero_copy(l, c);
			if (z == 1)
				continue;
			if (z == -1) {
				pong_close(l, c);
				return;
			}
			zero_copy = 0;  /* nothing there (or EOF), or kernel sockets */
		}
		long n = netloop_recv(l, c->id, t->buf, sizeof t->buf);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			pong_close(l, c);
			return;
		}
		long s = netloop_send(l, c->id, t->buf, (size_t)n);
		if (s == -EAGAIN)
			s = 0;
		if (s < 0) {
			pong_close(l, c);
			return;
		}
		if (s < n && pong_keep(c, t->buf + s, (size_t)(n - s)) < 0) {
			pong_close(l, c);
			return;
		}
		/* a short read took all there was: epoll reports the rest */
		if (s == n && (size_t)n < sizeof t->buf && netloop_reports_levels(l))
			return;
	}
}

/* A new connection's state (netloop_accept_all). */
static void *pong_adopt(struct netloop *l, int id)
{
	(void)l;
	struct pong_conn *c = calloc(1, sizeof *c);
	if (c)
		c->id = id;
	return c;
}

static void pong_ready(struct netloop *l, int id, uint32_t ev, void *user)
{
	struct pong_thread *t = netloop_ctx(l);
	if (id == t->listener) {
		netloop_accept_all(l, id, pong_adopt);
		return;
	}
	if (user)
		pong_conn_ready(t, user, ev);
}

static void *pong_main(void *arg)
{
	struct pong_thread *t = arg;
	int rc = netloop_run(t->loop, &bench_stop);
	if (rc < 0)
		fprintf(stderr, "usnet-bench ponger: thread %d: %s\n", t->index, strerror(-rc));
	return NULL;
}

int bench_ponger(const struct bench_config *cfg)
{
	char err[256];
	struct netloop_options net;
	struct pong_thread *th = bench_prepare(cfg, "ponger", &net, sizeof *th);
	if (!th)
		return 1;
	for (int i = 0; i < cfg->threads; i++) {
		th[i].index = i;
		th[i].loop = netloop_open(&net, i, pong_ready, &th[i], err, sizeof err);
		if (!th[i].loop) {
			fprintf(stderr, "usnet-bench ponger: thread %d: %s\n", i, err);
			return 1;
		}
		th[i].listener = netloop_listen_any(th[i].loop, cfg->port);
		if (th[i].listener < 0) {
			fprintf(stderr, "usnet-bench ponger: listen on port %u: %s\n", cfg->port,
				strerror(-th[i].listener));
			return 1;
		}
	}
	printf("ponger: listening on port %u with %d thread(s), %s\n", cfg->port, cfg->threads,
	       net.kernel ? "kernel sockets" : "usnet");
	fflush(stdout);
	for (int i = 1; i < cfg->threads; i++)
		pthread_create(&th[i].tid, NULL, pong_main, &th[i]);
	pong_main(&th[0]);
	for (int i = 1; i < cfg->threads; i++)
		pthread_join(th[i].tid, NULL);
	for (int i = 0; i < cfg->threads; i++)
		netloop_close_loop(th[i].loop);
	netloop_finish(&net);
	free(th);
	return 0;
}
