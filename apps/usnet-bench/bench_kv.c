/*
 * kv: the memcached workload of the published results — text protocol,
 * 8-byte keys and values, zipfian keys over N items, a fraction of sets
 * (10%) and the rest gets — with one request outstanding per connection.
 * Thread 0 first stores every item (pipelined "noreply" sets, then a
 * "version" to know the server has caught up).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define REPLY_MAX 512

struct kv_conn {
	int id;
	int connected;
	int is_set;
	uint64_t t0;
	char req[64];
	size_t reqlen, reqsent;
	char reply[REPLY_MAX];
	size_t rlen;
};

struct kv_thread {
	pthread_t tid;
	int index;
	const struct bench_config *cfg;
	const struct bench_zipf *zipf;
	struct netloop *loop;
	struct kv_conn *conns;
	int nconns, up, failed;
	uint64_t rng;
	uint64_t start_ns, end_ns;
	struct bench_samples samples;
	uint64_t errors;
	/* preload (thread 0) */
	struct kv_conn *pre;
	uint32_t pre_next;         /* next item to store */
	int pre_done;
	char prebuf[65536];
	size_t prelen, preoff;
};

static atomic_int preload_finished;

static int key_text(char *p, uint32_t k)
{
	/* "k" + 7 digits: 8 bytes for up to 10 million items. */
	return sprintf(p, "k%07u", k % 10000000u);
}

static void conn_send(struct kv_thread *t, struct kv_conn *c)
{
	while (c->reqsent < c->reqlen) {
		long n = netloop_send(t->loop, c->id, c->req + c->reqsent, c->reqlen - c->reqsent);
		if (n == -EAGAIN) {
			netloop_want_write(t->loop, c->id, 1);
			return;
		}
		if (n < 0) {
			t->errors++;
			return;
		}
		c->reqsent += (size_t)n;
	}
	netloop_want_write(t->loop, c->id, 0);
}

static void next_request(struct kv_thread *t, struct kv_conn *c)
{
	const struct bench_config *cfg = t->cfg;
	uint32_t k = (uint32_t)bench_zipf_next(t->zipf, bench_rand01(&t->rng));
	char key[16];
	key_text(key, k);
	c->is_set = bench_rand01(&t->rng) < cfg->set_ratio;
	if (c->is_set)
		c->reqlen = (size_t)sprintf(c->req, "set %s 0 0 8\r\nv%07u\r\n", key, k % 10000000u);
	else
		c->reqlen = (size_t)sprintf(c->req, "get %s\r\n", key);
	c->reqsent = 0;
	c->rlen = 0;
	c->t0 = netloop_now_ns();
	conn_send(t, c);
}

static int reply_complete(const struct kv_conn *c)
{
	if (c->rlen < 2 || c->reply[c->rlen - 2] != '\r' || c->reply[c->rlen - 1] != '\n')
		return 0;
	if (c->is_set)
		return 1;  /* STORED, or an error line */
	if (c->rlen >= 5 && memcmp(c->reply + c->rlen - 5, "END\r\n", 5) == 0)
		return 1;
	/* An error instead of a value block. */
	return memchr(c->reply, '\n', c->rlen) == c->reply + c->rlen - 1 &&
	       (memcmp(c->reply, "SERVER_ERROR", 12) == 0 || memcmp(c->reply, "CLIENT_ERROR", 12) == 0 ||
		memcmp(c->reply, "ERROR", 5) == 0);
}

static void conn_dead(struct kv_thread *t, struct kv_conn *c)
{
	t->errors++;
	netloop_close(t->loop, c->id);
	c->id = -1;
	if (!c->connected)
		t->failed++;
}

/* ---- preload ---------------------------------------------------------- */

static void preload_pump(struct kv_thread *t)
{
	struct kv_conn *c = t->pre;
	uint32_t n = t->cfg->keys;
	for (;;) {
		if (t->preoff == t->prelen) {
			if (t->pre_next > n)
				return;
			t->preoff = t->prelen = 0;
			while (t->pre_next < n && t->prelen + 64 < sizeof t->prebuf) {
				char key[16];
				key_text(key, t->pre_next);
				t->prelen += (size_t)sprintf(t->prebuf + t->prelen, "set %s 0 0 8 noreply\r\nv%07u\r\n",
							     key, t->pre_next % 10000000u);
				t->pre_next++;
			}
			if (t->pre_next == n && t->prelen + 64 < sizeof t->prebuf) {
				t->prelen += (size_t)sprintf(t->prebuf + t->prelen, "version\r\n");
				t->pre_next = n + 1;
			}
		}
		long s = netloop_send(t->loop, c->id, t->prebuf + t->preoff, t->prelen - t->preoff);
		if (s == -EAGAIN) {
			netloop_want_write(t->loop, c->id, 1);
			return;
		}
		if (s < 0) {
			t->errors++;
			t->pre_done = -1;
			return;
		}
		t->preoff += (size_t)s;
	}
}

static void preload_ready(struct kv_thread *t, struct kv_conn *c, uint32_t ev)
{
	if (ev & (NETLOOP_EV_ERR | NETLOOP_EV_HUP)) {
		t->pre_done = -1;
		return;
	}
	if (!c->connected && (ev & NETLOOP_EV_OUT))
		c->connected = 1;
	if (!c->connected)
		return;
	preload_pump(t);
	for (;;) {
		long n = netloop_recv(t->loop, c->id, c->reply + c->rlen, REPLY_MAX - 1 - c->rlen);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			t->pre_done = -1;
			return;
		}
		c->rlen += (size_t)n;
		c->reply[c->rlen] = '\0';
		if (strstr(c->reply, "VERSION ")) {
			t->pre_done = 1;
			return;
		}
		if (c->rlen > REPLY_MAX / 2) {  /* an error reply to a set */
			fprintf(stderr, "usnet-bench kv: preload: server said %.60s\n", c->reply);
			t->pre_done = -1;
			return;
		}
	}
}

static int preload(struct kv_thread *t)
{
	static struct kv_conn pre;
	t->pre = &pre;
	pre.id = netloop_connect(t->loop, t->cfg->host, t->cfg->port);
	if (pre.id < 0) {
		fprintf(stderr, "usnet-bench kv: connect: %s\n", strerror(-pre.id));
		return -1;
	}
	netloop_set_user(t->loop, pre.id, &pre);
	uint64_t deadline = netloop_now_ns() + 120000000000ull;
	while (!t->pre_done && !bench_stop && netloop_now_ns() < deadline)
		netloop_poll(t->loop, 10);
	netloop_close(t->loop, pre.id);
	t->pre = NULL;
	return t->pre_done == 1 ? 0 : -1;
}

/* ---- workload ---------------------------------------------------------- */

static void kv_ready(struct netloop *l, int id, uint32_t ev, void *user)
{
	struct kv_thread *t = netloop_ctx(l);
	struct kv_conn *c = user;
	(void)id;
	if (!c || c->id < 0)
		return;
	if (c == t->pre) {
		preload_ready(t, c, ev);
		return;
	}
	if (ev & (NETLOOP_EV_ERR | NETLOOP_EV_HUP)) {
		conn_dead(t, c);
		return;
	}
	if (!c->connected) {
		if (!(ev & NETLOOP_EV_OUT))
			return;
		c->connected = 1;
		t->up++;
		next_request(t, c);
	} else if ((ev & NETLOOP_EV_OUT) && c->reqsent < c->reqlen) {
		conn_send(t, c);
	}
	for (;;) {
		long n = netloop_recv(l, c->id, c->reply + c->rlen, REPLY_MAX - c->rlen);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			conn_dead(t, c);
			return;
		}
		c->rlen += (size_t)n;
		if (reply_complete(c)) {
			uint64_t now = netloop_now_ns();
			if (now >= t->start_ns && now < t->end_ns)
				bench_samples_add(&t->samples, now - c->t0);
			if (c->reply[0] != 'S' && c->reply[0] != 'V' && c->reply[0] != 'E')
				t->errors++;
			if (now >= t->end_ns)
				return;
			next_request(t, c);
		} else if (c->rlen == REPLY_MAX) {
			conn_dead(t, c);  /* not a reply this workload can produce */
			return;
		}
	}
}

static void *kv_main(void *arg)
{
	struct kv_thread *t = arg;
	const struct bench_config *cfg = t->cfg;
	if (t->index == 0) {
		if (cfg->preload) {
			uint64_t t0 = netloop_now_ns();
			if (preload(t) < 0) {
				fprintf(stderr, "usnet-bench kv: preloading %u items failed\n", cfg->keys);
				atomic_store(&preload_finished, -1);
				return NULL;
			}
			printf("kv: stored %u items in %.2f s\n", cfg->keys, (double)(netloop_now_ns() - t0) / 1e9);
			fflush(stdout);
		}
		atomic_store(&preload_finished, 1);
	} else {
		while (atomic_load(&preload_finished) == 0 && !bench_stop)
			netloop_poll(t->loop, 10);
		if (atomic_load(&preload_finished) < 0)
			return NULL;
	}
	/* No window yet: replies before it keep the connections busy but
	 * are not measured. */
	t->start_ns = t->end_ns = UINT64_MAX;
	for (int i = 0; i < t->nconns; i++) {
		struct kv_conn *c = &t->conns[i];
		c->id = netloop_connect(t->loop, cfg->host, cfg->port);
		if (c->id < 0) {
			fprintf(stderr, "usnet-bench kv: connect: %s\n", strerror(-c->id));
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
	for (int i = 0; i < 5; i++)
		netloop_poll(t->loop, 1);
	return NULL;
}

int bench_kv(const struct bench_config *cfg)
{
	char err[256];
	struct netloop_options net = cfg->net;
	if (netloop_prepare(&net, cfg->threads, err, sizeof err) < 0) {
		fprintf(stderr, "usnet-bench kv: %s\n", err);
		return 1;
	}
	static struct bench_zipf zipf;
	bench_zipf_init(&zipf, cfg->keys, cfg->theta);
	struct kv_thread *th = calloc((size_t)cfg->threads, sizeof *th);
	if (!th)
		return 1;
	for (int i = 0; i < cfg->threads; i++) {
		struct kv_thread *t = &th[i];
		t->index = i;
		t->cfg = cfg;
		t->zipf = &zipf;
		t->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		t->nconns = cfg->conns;
		t->conns = calloc((size_t)cfg->conns, sizeof *t->conns);
		if (!t->conns)
			return 1;
		t->loop = netloop_open(&net, i, kv_ready, t, err, sizeof err);
		if (!t->loop) {
			fprintf(stderr, "usnet-bench kv: thread %d: %s\n", i, err);
			return 1;
		}
	}
	for (int i = 1; i < cfg->threads; i++)
		pthread_create(&th[i].tid, NULL, kv_main, &th[i]);
	kv_main(&th[0]);
	for (int i = 1; i < cfg->threads; i++)
		pthread_join(th[i].tid, NULL);
	int rc = 0;
	if (atomic_load(&preload_finished) < 0) {
		rc = 1;
	} else {
		struct bench_samples *parts = calloc((size_t)cfg->threads, sizeof *parts);
		uint64_t errors = 0;
		int failed = 0;
		for (int i = 0; i < cfg->threads; i++) {
			parts[i] = th[i].samples;
			errors += th[i].errors;
			failed += th[i].failed;
		}
		printf("kv: %d thread(s) x %d connection(s), %u items, %.0f%% sets, zipf %.2f, %s\n",
		       cfg->threads, cfg->conns, cfg->keys, cfg->set_ratio * 100, cfg->theta,
		       net.kernel ? "kernel sockets" : "usnet");
		bench_report("requests", parts, cfg->threads, cfg->seconds, errors);
		if (failed == cfg->threads * cfg->conns) {
			fprintf(stderr, "usnet-bench kv: no connection could be made\n");
			rc = 1;
		}
		free(parts);
	}
	for (int i = 0; i < cfg->threads; i++) {
		netloop_close_loop(th[i].loop);
		free(th[i].conns);
		free(th[i].samples.ns);
	}
	netloop_finish(&net);
	free(th);
	return rc;
}
