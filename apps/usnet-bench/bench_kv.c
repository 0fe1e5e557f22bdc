/*
 * kv: the memcached workload of the published results — text protocol,
 * 8-byte keys and values, zipfian keys over N items, a fraction of sets
 * (10%) and the rest gets — with one request outstanding per connection.
 * Thread 0 first stores every item (pipelined "noreply" sets, then a
 * "version" to know the server has caught up).  With --redis the same
 * workload in the Redis protocol: GET and SET as RESP arrays (the preload:
 * pipelined SETs whose +OK replies are skipped, then a PING).
 */
#include <errno.h>
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
	struct bench_client cl;      /* first: see struct bench_client */
	const struct bench_zipf *zipf;
	struct kv_conn *conns;
	uint64_t rng;
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
	bench_client_send(&t->cl, c->id, c->req, c->reqlen, &c->reqsent);
}

static void next_request(struct kv_thread *t, struct kv_conn *c)
{
	const struct bench_config *cfg = t->cl.cfg;
	uint32_t k = (uint32_t)bench_zipf_next(t->zipf, bench_rand01(&t->rng));
	char key[16];
	key_text(key, k);
	c->is_set = bench_rand01(&t->rng) < cfg->set_ratio;
	if (cfg->redis && c->is_set)
		c->reqlen = (size_t)sprintf(c->req, "*3\r\n$3\r\nSET\r\n$8\r\n%s\r\n$8\r\nv%07u\r\n", key,
					    k % 10000000u);
	else if (cfg->redis)
		c->reqlen = (size_t)sprintf(c->req, "*2\r\n$3\r\nGET\r\n$8\r\n%s\r\n", key);
	else if (c->is_set)
		c->reqlen = (size_t)sprintf(c->req, "set %s 0 0 8\r\nv%07u\r\n", key, k % 10000000u);
	else
		c->reqlen = (size_t)sprintf(c->req, "get %s\r\n", key);
	c->reqsent = 0;
	c->rlen = 0;
	c->t0 = netloop_now_ns();
	conn_send(t, c);
}

/* RESP: a simple string (+OK), an error (-ERR ...), a null ($-1) or a bulk
 * string ($8, CRLF, 8 bytes, CRLF). */
static int resp_reply_complete(const struct kv_conn *c)
{
	const char *nl = memchr(c->reply, '\n', c->rlen);
	if (!nl)
		return 0;
	if (c->reply[0] != '$')
		return 1;
	long len = strtol(c->reply + 1, NULL, 10);
	if (len < 0)
		return 1;
	return c->rlen >= (size_t)(nl + 1 - c->reply) + (size_t)len + 2;
}

static int reply_complete(const struct kv_conn *c, int redis)
{
	if (redis)
		return resp_reply_complete(c);
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
	bench_client_drop(&t->cl, &c->id, c->connected);
}

/* ---- preload ---------------------------------------------------------- */

static void preload_pump(struct kv_thread *t)
{
	struct kv_conn *c = t->pre;
	uint32_t n = t->cl.cfg->keys;
	for (;;) {
		if (t->preoff == t->prelen) {
			if (t->pre_next > n)
				return;
			t->preoff = t->prelen = 0;
			while (t->pre_next < n && t->prelen + 64 < sizeof t->prebuf) {
				char key[16];
				key_text(key, t->pre_next);
				if (t->cl.cfg->redis)
					t->prelen += (size_t)sprintf(t->prebuf + t->prelen,
								     "*3\r\n$3\r\nSET\r\n$8\r\n%s\r\n$8\r\nv%07u\r\n",
								     key, t->pre_next % 10000000u);
				else
					t->prelen += (size_t)sprintf(t->prebuf + t->prelen,
								     "set %s 0 0 8 noreply\r\nv%07u\r\n",
								     key, t->pre_next % 10000000u);
				t->pre_next++;
			}
			if (t->pre_next == n && t->prelen + 64 < sizeof t->prebuf) {
				t->prelen += (size_t)sprintf(t->prebuf + t->prelen,
							     t->cl.cfg->redis ? "*1\r\n$4\r\nPING\r\n" : "version\r\n");
				t->pre_next = n + 1;
			}
		}
		long s = netloop_send(t->cl.loop, c->id, t->prebuf + t->preoff, t->prelen - t->preoff);
		if (s == -EAGAIN) {
			netloop_want_write(t->cl.loop, c->id, 1);
			return;
		}
		if (s < 0) {
			t->cl.errors++;
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
		long n = netloop_recv(t->cl.loop, c->id, c->reply + c->rlen, REPLY_MAX - 1 - c->rlen);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			t->pre_done = -1;
			return;
		}
		c->rlen += (size_t)n;
		c->reply[c->rlen] = '\0';
		if (t->cl.cfg->redis) {
			/* +OK for every SET, then +PONG: keep only a tail that
			 * may hold the start of +PONG; anything else is an error */
			if (strstr(c->reply, "+PONG\r\n")) {
				t->pre_done = 1;
				return;
			}
			if (c->reply[0] == '-' || strchr(c->reply, '-')) {
				fprintf(stderr, "usnet-bench kv: preload: server said %.60s\n", c->reply);
				t->pre_done = -1;
				return;
			}
			size_t keep = c->rlen < 6 ? c->rlen : 6;
			memmove(c->reply, c->reply + c->rlen - keep, keep);
			c->rlen = keep;
			c->reply[keep] = '\0';
			continue;
		}
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
	pre.id = netloop_connect_host(t->cl.loop, &t->cl.cfg->host, t->cl.cfg->port);
	if (pre.id < 0) {
		fprintf(stderr, "usnet-bench kv: connect: %s\n", strerror(-pre.id));
		return -1;
	}
	netloop_set_user(t->cl.loop, pre.id, &pre);
	uint64_t deadline = netloop_now_ns() + 120000000000ull;
	while (!t->pre_done && !bench_stop && netloop_now_ns() < deadline)
		netloop_poll(t->cl.loop, 10);
	netloop_close(t->cl.loop, pre.id);
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
		t->cl.up++;
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
		if (reply_complete(c, t->cl.cfg->redis)) {
			int over = bench_client_reply(&t->cl, c->t0);
			if (t->cl.cfg->redis ? c->reply[0] == '-' :
			    (c->reply[0] != 'S' && c->reply[0] != 'V' && c->reply[0] != 'E'))
				t->cl.errors++;
			if (over)
				return;
			next_request(t, c);
			return;  /* the next reply follows this request (see pinger) */
		} else if (c->rlen == REPLY_MAX) {
			conn_dead(t, c);  /* not a reply this workload can produce */
			return;
		}
	}
}

static void *kv_main(void *arg)
{
	struct kv_thread *t = arg;
	const struct bench_config *cfg = t->cl.cfg;
	if (t->cl.index == 0) {
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
			netloop_poll(t->cl.loop, 10);
		if (atomic_load(&preload_finished) < 0)
			return NULL;
	}
	bench_client_measure(&t->cl, "kv", t->conns, sizeof *t->conns);
	return NULL;
}

int bench_kv(const struct bench_config *cfg)
{
	struct netloop_options net;
	struct kv_thread *th = bench_prepare(cfg, "kv", &net, sizeof *th);
	if (!th)
		return 1;
	static struct bench_zipf zipf;
	bench_zipf_init(&zipf, cfg->keys, cfg->theta);
	for (int i = 0; i < cfg->threads; i++) {
		struct kv_thread *t = &th[i];
		t->zipf = &zipf;
		t->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		t->conns = calloc((size_t)cfg->conns, sizeof *t->conns);
		if (!t->conns)
			return 1;
		if (bench_client_open(&t->cl, "kv", cfg, i, &net, kv_ready, t) < 0)
			return 1;
	}
	bench_client_run(th, sizeof *th, cfg->threads, kv_main);
	int rc = 0;
	if (atomic_load(&preload_finished) < 0) {
		rc = 1;
	} else {
		printf("kv: %d thread(s) x %d connection(s), %u items, %.0f%% sets, zipf %.2f, %s, %s\n",
		       cfg->threads, cfg->conns, cfg->keys, cfg->set_ratio * 100, cfg->theta,
		       cfg->redis ? "redis protocol" : "memcached text protocol",
		       net.kernel ? "kernel sockets" : "usnet");
		rc = bench_client_report("kv", "requests", th, sizeof *th, cfg->threads);
	}
	for (int i = 0; i < cfg->threads; i++) {
		bench_client_close(&th[i].cl);
		free(th[i].conns);
	}
	netloop_finish(&net);
	free(th);
	return rc;
}
