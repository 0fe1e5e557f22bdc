/*
 * What the client modes (pinger, kv) do the same way: open a thread's loop,
 * run the threads, connect and measure over one window, merge the reports.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bench_client_open(struct bench_client *cl, const char *mode, const struct bench_config *cfg,
		      int index, const struct netloop_options *net, netloop_handler ready, void *ctx)
{
	char err[256];
	cl->index = index;
	cl->cfg = cfg;
	cl->nconns = cfg->conns;
	cl->loop = netloop_open(net, index, ready, ctx, err, sizeof err);
	if (!cl->loop) {
		fprintf(stderr, "usnet-bench %s: thread %d: %s\n", mode, index, err);
		return -1;
	}
	return 0;
}

static struct bench_client *thread_at(void *threads, size_t thread_size, int i)
{
	return (struct bench_client *)((char *)threads + (size_t)i * thread_size);
}

void bench_client_run(void *threads, size_t thread_size, int n, void *(*thread_main)(void *))
{
	for (int i = 1; i < n; i++)
		pthread_create(&thread_at(threads, thread_size, i)->tid, NULL, thread_main,
			       thread_at(threads, thread_size, i));
	thread_main(thread_at(threads, thread_size, 0));
	for (int i = 1; i < n; i++)
		pthread_join(thread_at(threads, thread_size, i)->tid, NULL);
}

void bench_client_measure(struct bench_client *cl, const char *mode, void *conns, size_t conn_size)
{
	const struct bench_config *cfg = cl->cfg;
	/* No window yet: replies before it keep the connections busy but
	 * are not measured. */
	cl->start_ns = cl->end_ns = UINT64_MAX;
	for (int i = 0; i < cl->nconns; i++) {
		void *c = (char *)conns + (size_t)i * conn_size;
		int *id = c;  /* every connection struct begins with its id */
		*id = netloop_connect_host(cl->loop, &cfg->host, cfg->port);
		if (*id < 0) {
			fprintf(stderr, "usnet-bench %s: connect: %s\n", mode, strerror(-*id));
			cl->failed++;
			continue;
		}
		netloop_set_user(cl->loop, *id, c);
	}
	uint64_t deadline = netloop_now_ns() + 5000000000ull;
	while (cl->up + cl->failed < cl->nconns && !bench_stop && netloop_now_ns() < deadline)
		netloop_poll(cl->loop, 10);
	uint64_t warm = (uint64_t)(cfg->seconds * 1e9 / 10);
	if (warm > 500000000ull)
		warm = 500000000ull;
	cl->start_ns = netloop_now_ns() + warm;
	cl->end_ns = cl->start_ns + (uint64_t)(cfg->seconds * 1e9);
	while (!bench_stop && netloop_now_ns() < cl->end_ns)
		netloop_poll(cl->loop, 10);
	for (int i = 0; i < cl->nconns; i++) {
		int id = *(int *)((char *)conns + (size_t)i * conn_size);
		if (id >= 0)
			netloop_close(cl->loop, id);
	}
	/* Let the closes leave (usnet: FINs go out from the poll loop). */
	for (int i = 0; i < 5; i++)
		netloop_poll(cl->loop, 1);
}

int bench_client_report(const char *mode, const char *what, void *threads, size_t thread_size,
			int n)
{
	const struct bench_config *cfg = thread_at(threads, thread_size, 0)->cfg;
	struct bench_samples *parts = calloc((size_t)n, sizeof *parts);
	if (!parts)
		return 1;
	uint64_t errors = 0;
	int failed = 0;
	for (int i = 0; i < n; i++) {
		struct bench_client *cl = thread_at(threads, thread_size, i);
		parts[i] = cl->samples;
		errors += cl->errors;
		failed += cl->failed;
	}
	bench_report(what, parts, n, cfg->seconds, errors);
	free(parts);
	if (failed == n * cfg->conns) {
		fprintf(stderr, "usnet-bench %s: no connection could be made\n", mode);
		return 1;
	}
	return 0;
}

void bench_client_send(struct bench_client *cl, int id, const char *buf, size_t len, size_t *sent)
{
	while (*sent < len) {
		long n = netloop_send(cl->loop, id, buf + *sent, len - *sent);
		if (n == -EAGAIN) {
			netloop_want_write(cl->loop, id, 1);
			return;
		}
		if (n < 0) {
			cl->errors++;
			return;
		}
		*sent += (size_t)n;
	}
	netloop_want_write(cl->loop, id, 0);
}

void bench_client_drop(struct bench_client *cl, int *id, int connected)
{
	cl->errors++;
	netloop_close(cl->loop, *id);
	*id = -1;
	if (!connected)
		cl->failed++;
}

int bench_client_reply(struct bench_client *cl, uint64_t t0)
{
	uint64_t now = netloop_now_ns();
	if (now >= cl->start_ns && now < cl->end_ns)
		bench_samples_add(&cl->samples, now - t0);
	return now >= cl->end_ns;
}

void bench_client_close(struct bench_client *cl)
{
	netloop_close_loop(cl->loop);
	free(cl->samples.ns);
}
