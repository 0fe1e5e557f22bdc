/*
 * usnet-kv — a memcached-compatible server on the native usnet API (one
 * stack instance per thread), or on kernel sockets with --kernel.
 *
 *   usnet-kv --kernel [-l ADDR] [-p PORT] [-t THREADS] [-m MB] [-I SIZE]
 *   usnet-kv --backend B --iface IF --ip A/N [-p PORT] [-t THREADS] ...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_proto.h"
#include "kv_store.h"
#include "netloop.h"

/* Stop reading a connection while this much reply is waiting to be sent. */
#define OUT_BACKLOG_MAX (4u << 20)

struct kv_conn {
	int id;
	struct kv_session sess;
	char *in;              /* received bytes not yet used */
	size_t inlen, incap;
	struct kv_out out;
};

struct kv_thread {
	pthread_t tid;
	int index;
	struct netloop *loop;
	int listener;
	struct kv_store *store;
	size_t in_max;         /* largest request buffered before giving up */
};

static volatile sig_atomic_t stop_requested;
static struct netloop_options net;
static uint16_t opt_port = 11211;
static uint32_t opt_bind_ip;
static int opt_threads = 1;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void conn_close(struct kv_thread *t, struct kv_conn *c)
{
	netloop_close(t->loop, c->id);
	kv_store_lock(t->store);
	t->store->stats.curr_connections--;
	kv_store_unlock(t->store);
	free(c->in);
	kv_out_free(&c->out);
	free(c);
}

/* Send what is queued.  0 when everything left, 1 when some is waiting,
 * -1 when the connection failed. */
static int conn_flush(struct kv_thread *t, struct kv_conn *c)
{
	while (c->out.off < c->out.len) {
		long n = netloop_send(t->loop, c->id, c->out.buf + c->out.off, c->out.len - c->out.off);
		if (n == -EAGAIN) {
			netloop_want_write(t->loop, c->id, 1);
			return 1;
		}
		if (n < 0)
			return -1;
		c->out.off += (size_t)n;
	}
	c->out.off = c->out.len = c->out.keep = 0;
	netloop_want_write(t->loop, c->id, 0);
	return 0;
}

/* Run the buffered bytes through the protocol engine. */
static void conn_process_buffered(struct kv_conn *c)
{
	if (c->inlen == 0)
		return;
	size_t used = kv_session_input(&c->sess, c->in, c->inlen, &c->out);
	if (used) {
		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
	}
}

static int conn_reserve(struct kv_conn *c, size_t more)
{
	if (c->inlen + more <= c->incap)
		return 0;
	size_t cap = c->incap ? c->incap : 16384;
	while (cap < c->inlen + more)
		cap *= 2;
	char *b = realloc(c->in, cap);
	if (!b)
		return -1;
	c->in = b;
	c->incap = cap;
	return 0;
}

/* Zero-copy: parse straight out of the stack's receive buffer while nothing
 * is buffered here.  Returns 1 when it did some work, 0 when there was none,
 * -1 on EOF or error. */
static int conn_read_zero_copy(struct kv_thread *t, struct kv_conn *c)
{
	struct iovec iov[1];
	int n = netloop_peek(t->loop, c->id, iov, 1);
	if (n <= 0)
		return n == 0 ? 0 : -2;  /* -2: not supported here */
	size_t used = kv_session_input(&c->sess, iov[0].iov_base, iov[0].iov_len, &c->out);
	size_t rest = iov[0].iov_len - used;
	if (rest && !c->sess.closing) {
		/* An incomplete request: keep its bytes here. */
		if (conn_reserve(c, rest) < 0)
			return -1;
		memcpy(c->in, (char *)iov[0].iov_base + used, rest);
		c->inlen = rest;
		used = iov[0].iov_len;
	}
	netloop_consume(t->loop, c->id, used);
	return 1;
}

static void conn_handle(struct kv_thread *t, struct kv_conn *c, uint32_t ev)
{
	if (ev & NETLOOP_EV_ERR) {
		conn_close(t, c);
		return;
	}
	int zero_copy = 1;
	for (;;) {
		if (c->out.failed)
			c->sess.closing = 1;  /* a reply is missing: the stream is broken */
		int f = conn_flush(t, c);
		if (f < 0) {
			conn_close(t, c);
			return;
		}
		if (c->sess.closing) {
			if (f == 0)
				conn_close(t, c);
			return;
		}
		if (c->out.len - c->out.off > OUT_BACKLOG_MAX)
			return;  /* wait for NETLOOP_EV_OUT */
		if (c->inlen == 0 && zero_copy) {
			int z = conn_read_zero_copy(t, c);
			if (z == 1)
				continue;
			if (z == -1) {
				conn_close(t, c);
				return;
			}
			zero_copy = 0;  /* nothing to peek, or kernel sockets */
		}
		if (conn_reserve(c, 16384) < 0) {
			conn_close(t, c);
			return;
		}
		long n = netloop_recv(t->loop, c->id, c->in + c->inlen, c->incap - c->inlen);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			conn_close(t, c);
			return;
		}
		c->inlen += (size_t)n;
		conn_process_buffered(c);
		if (c->inlen > t->in_max)
			c->sess.closing = 1;
	}
}

/* A new connection's state (netloop_accept_all). */
static void *conn_adopt(struct netloop *l, int id)
{
	struct kv_thread *t = netloop_ctx(l);
	struct kv_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->id = id;
	kv_session_init(&c->sess, t->store);
	kv_store_lock(t->store);
	t->store->stats.curr_connections++;
	t->store->stats.total_connections++;
	kv_store_unlock(t->store);
	return c;
}

static void on_ready(struct netloop *l, int id, uint32_t ev, void *user)
{
	struct kv_thread *t = netloop_ctx(l);
	if (id == t->listener) {
		/* conn_handle() then looks at bytes that came with the handshake. */
		netloop_accept_all(l, id, conn_adopt);
		return;
	}
	if (user)
		conn_handle(t, user, ev);
}

static void *thread_main(void *arg)
{
	struct kv_thread *t = arg;
	int rc = netloop_run(t->loop, &stop_requested);
	if (rc < 0)
		fprintf(stderr, "usnet-kv: thread %d: poll: %s\n", t->index, strerror(-rc));
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: usnet-kv [--kernel | --backend B --iface IF --ip A.B.C.D/N] [options]\n"
		"  -p PORT     TCP port (11211)\n"
		"  -l ADDR     kernel mode: listen on this address only\n"
		"  -t THREADS  worker threads, one stack instance each (1)\n"
		"  -m MB       memory for items, megabytes (64)\n"
		"  -I SIZE     largest item, bytes, k or m suffix (1m)\n"
		"%s"
		"usnet mode: %s\n", netloop_usage, netloop_has_usnet() ? "available" : "not built (kernel mode only)");
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -1;
	if (*end == 'k' || *end == 'K') { v <<= 10; end++; }
	else if (*end == 'm' || *end == 'M') { v <<= 20; end++; }
	if (*end || v == 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	size_t mem_mb = 64, item_max = 1u << 20;
	netloop_options_init(&net);
	for (int i = 1; i < argc; i++) {
		int r = netloop_parse_option(&net, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (a[0] != '-' || strlen(a) != 2 || !v) {
			usage(stderr);
			return 2;
		}
		i++;
		char *end;
		long n = strtol(v, &end, 10);
		switch (a[1]) {
		case 'p':
			if (*end || n <= 0 || n > 65535) goto bad;
			opt_port = (uint16_t)n;
			break;
		case 't':
			if (*end || n <= 0 || n > 64) goto bad;
			opt_threads = (int)n;
			break;
		case 'm':
			if (*end || n <= 0 || n > (1 << 20)) goto bad;
			mem_mb = (size_t)n;
			break;
		case 'I':
			if (parse_size(v, &item_max) < 0 || item_max < 1024 || item_max > (1u << 30)) goto bad;
			break;
		case 'l': {
			struct in_addr ia;
			if (inet_pton(AF_INET, v, &ia) != 1) goto bad;
			opt_bind_ip = ntohl(ia.s_addr);
			break;
		}
		case 'c': case 'U': case 'v': case 'u':
			break;  /* memcached options that have no meaning here */
		default:
			usage(stderr);
			return 2;
		}
		continue;
bad:
		fprintf(stderr, "usnet-kv: bad value '%s' for %s\n", v, a);
		return 2;
	}

	char err[256];
	if (netloop_prepare(&net, opt_threads, err, sizeof err) < 0) {
		fprintf(stderr, "usnet-kv: %s\n", err);
		return 1;
	}
	static struct kv_store store;
	if (kv_store_init(&store, mem_mb << 20, item_max) < 0) {
		fprintf(stderr, "usnet-kv: out of memory\n");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct kv_thread *threads = calloc((size_t)opt_threads, sizeof *threads);
	if (!threads)
		return 1;
	for (int i = 0; i < opt_threads; i++) {
		struct kv_thread *t = &threads[i];
		t->index = i;
		t->store = &store;
		t->in_max = KV_LINE_MAX + item_max + 4096;
		t->loop = netloop_open(&net, i, on_ready, t, err, sizeof err);
		if (!t->loop) {
			fprintf(stderr, "usnet-kv: thread %d: %s\n", i, err);
			return 1;
		}
		/* no -l: every address, IPv6 too when the stack has --ip6 */
		t->listener = opt_bind_ip ? netloop_listen(t->loop, opt_bind_ip, opt_port)
					  : netloop_listen_any(t->loop, opt_port);
		if (t->listener < 0) {
			fprintf(stderr, "usnet-kv: listen on port %u: %s\n", opt_port, strerror(-t->listener));
			return 1;
		}
	}
	for (int i = 1; i < opt_threads; i++)
		if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]) != 0) {
			fprintf(stderr, "usnet-kv: cannot start thread %d\n", i);
			return 1;
		}
	thread_main(&threads[0]);
	stop_requested = 1;
	for (int i = 1; i < opt_threads; i++)
		pthread_join(threads[i].tid, NULL);
	for (int i = 0; i < opt_threads; i++)
		netloop_close_loop(threads[i].loop);
	netloop_finish(&net);
	kv_store_destroy(&store);
	free(threads);
	return 0;
}
