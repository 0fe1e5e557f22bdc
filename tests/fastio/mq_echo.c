/*
 * fastio-mq-echo — one usnet stack instance per receive queue of one shared
 * netif, each in its own thread (shared-nothing).  Used by tests/fastio/run.sh
 * to show that with N queues every connection is served, end to end, by the
 * instance of the queue its frames arrive on, and by no other: connections
 * the kernel opens to usnet (server mode) as well as connections usnet opens
 * to the kernel (client mode), whose local ports each instance must choose
 * so that the replies come back on its own queue.
 *
 * Every instance keeps its own ARP table; the backend gives every queue a
 * copy of each ARP frame (which has no ports to hash).
 *
 * Usage: fastio-mq-echo BACKEND IFACE QUEUES IP/PREFIX [PEER:]PORT NCONN SECONDS [OPTIONS]
 *
 * Server mode (PORT): each instance listens on PORT and echoes every byte it
 * receives until the peer closes, then closes.
 * Client mode (PEER:PORT): the instances open NCONN connections in all to an
 * echo server at PEER:PORT (spread evenly over the queues), send 256 KiB on
 * each, shut down the sending side and check that exactly those bytes come
 * back before the server's FIN.
 *
 * When NCONN connections have been completed (all instances together) or
 * SECONDS have passed, every thread stops and the program prints one line
 * per queue:
 *     queue Q accepted|connected N foreign F tcp_no_port P tcp_rst_tx R bytes B
 * where "foreign" counts connections that usnet_netif_flow_queue() places on
 * another queue.  A segment of a flow reaching an instance that does not own
 * it finds no connection there, which the stack counts as tcp_no_port and
 * answers with a RST (tcp_rst_tx); both must stay 0.
 * Exits 0 only when the instances completed NCONN connections in all, every
 * queue had at least one, and foreign, tcp_no_port and tcp_rst_tx are 0
 * everywhere; otherwise prints "FAIL: why" and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usnet_app.h"

#define MAX_QUEUES 16
#define MAX_CONNS 256
#define ECHO_BUF 65536
#define CLIENT_BYTES (256u * 1024u)

/* One echoed connection: bytes received but not yet sent back wait in buf. */
struct echo_conn {
	usnet_sock_t s;
	int open;
	size_t pending, off;
	/* client mode: bytes sent and checked so far, the pattern's seed */
	size_t sent, checked;
	unsigned seed;
	int shut;
	unsigned char buf[ECHO_BUF];
};

struct queue_worker {
	pthread_t thread;
	uint16_t queue;
	struct usnet_app *app;
	struct echo_conn *conns;   /* MAX_CONNS */
	unsigned nconns, foreign;   /* connections accepted or opened */
	uint64_t bytes;
	struct usnet_stack_stats stats;
	char err[256];
};

static struct usnet_netif *shared_netif;   /* the backend */
static uint32_t local_ip;
static uint32_t peer_ip;                   /* client mode: the echo server; 0: server mode */
static unsigned nqueues;
static uint8_t local_prefix;
static uint16_t echo_port;
static unsigned conns_wanted;
static uint64_t deadline_ns;
static atomic_uint conns_done;
static atomic_int stop_all;

/* Move bytes both ways on one connection; returns 1 when it is finished. */
static int echo_step(struct usnet_app *app, struct echo_conn *c, uint64_t *bytes)
{
	struct usnet_stack *st = usnet_app_stack(app);
	struct usnet_io *io = usnet_app_io(app);
	for (;;) {
		uint64_t now = usnet_app_now();
		if (c->pending > c->off) {
			long n = usnet_send(st, io, c->s, c->buf + c->off, c->pending - c->off, 0, now);
			if (n == -USNET_EAGAIN)
				return 0;
			if (n < 0)
				return -1;
			c->off += (size_t)n;
			continue;
		}
		c->pending = c->off = 0;
		long n = usnet_recv(st, io, c->s, c->buf, sizeof c->buf, 0, now);
		if (n == -USNET_EAGAIN)
			return 0;
		if (n < 0)
			return -1;
		if (n == 0)
			return 1;
		c->pending = (size_t)n;
		*bytes += (uint64_t)n;
	}
}

/* Client mode: the byte at offset k of connection seed's stream. */
static unsigned char pattern(unsigned seed, size_t k)
{
	return (unsigned char)(((uint32_t)k * 2654435761u >> 13) ^ seed);
}

/* Send the pattern, shut down, check what comes back; 1 when the server's
 * FIN arrived after every byte, 0 to be called again, -1 on error (why). */
static int client_step(struct usnet_app *app, struct echo_conn *c, uint64_t *bytes, char *why, size_t whylen)
{
	struct usnet_stack *st = usnet_app_stack(app);
	struct usnet_io *io = usnet_app_io(app);
	uint64_t now = usnet_app_now();
	while (c->sent < CLIENT_BYTES) {
		unsigned char out[16384];
		size_t n = CLIENT_BYTES - c->sent < sizeof out ? CLIENT_BYTES - c->sent : sizeof out;
		for (size_t k = 0; k < n; k++)
			out[k] = pattern(c->seed, c->sent + k);
		long r = usnet_send(st, io, c->s, out, n, 0, now);
		if (r == -USNET_EAGAIN)
			break;
		if (r < 0) {
			snprintf(why, whylen, "send: %s", strerror((int)-r));
			return -1;
		}
		c->sent += (size_t)r;
	}
	if (c->sent == CLIENT_BYTES && !c->shut) {
		int r = usnet_shutdown(st, io, c->s, 1, now);
		if (r < 0) {
			snprintf(why, whylen, "shutdown: %s", strerror(-r));
			return -1;
		}
		c->shut = 1;
	}
	for (;;) {
		long n = usnet_recv(st, io, c->s, c->buf, sizeof c->buf, 0, now);
		if (n == -USNET_EAGAIN)
			return 0;
		if (n < 0) {
			snprintf(why, whylen, "recv after %zu bytes: %s", c->checked, strerror((int)-n));
			return -1;
		}
		if (n == 0) {
			if (c->checked != CLIENT_BYTES) {
				snprintf(why, whylen, "end of stream after %zu of %u bytes", c->checked, CLIENT_BYTES);
				return -1;
			}
			return 1;
		}
		for (long k = 0; k < n; k++)
			if (c->checked + (size_t)k >= CLIENT_BYTES || c->buf[k] != pattern(c->seed, c->checked + (size_t)k)) {
				snprintf(why, whylen, "byte %zu echoed wrong", c->checked + (size_t)k);
				return -1;
			}
		c->checked += (size_t)n;
		*bytes += (uint64_t)n;
	}
}

/* Client mode: this queue's share of the connections, opened at once. */
static int client_open(struct queue_worker *w)
{
	struct usnet_stack *st = usnet_app_stack(w->app);
	struct usnet_io *io = usnet_app_io(w->app);
	unsigned want = conns_wanted / nqueues + (w->queue < conns_wanted % nqueues);
	if (want > MAX_CONNS)
		want = MAX_CONNS;
	struct usnet_addr peer = { .ip = peer_ip, .port = echo_port };
	for (unsigned i = 0; i < want; i++) {
		struct echo_conn *c = &w->conns[i];
		int s = usnet_socket(st, USNET_SOCK_STREAM);
		int rc = s < 0 ? s : usnet_connect(st, io, s, &peer, usnet_app_now());
		if (rc < 0 && rc != -USNET_EINPROGRESS) {
			snprintf(w->err, sizeof w->err, "queue %u: connect #%u: %s", w->queue, i, strerror(-rc));
			return -1;
		}
		struct usnet_addr me;
		usnet_getsockname(st, s, &me);
		/* The flow's frames from the peer: src = peer, dst = us. */
		if (usnet_netif_flow_queue(shared_netif, 6, peer_ip, echo_port, local_ip, me.port) != (int)w->queue)
			w->foreign++;
		w->nconns++;
		c->s = s;
		c->open = 1;
		c->sent = c->checked = 0;
		c->shut = 0;
		c->seed = w->queue * 1000u + i;
	}
	return 0;
}

static void *queue_main(void *arg)
{
	struct queue_worker *w = arg;
	struct usnet_app_config cfg;
	usnet_app_config_init(&cfg);
	cfg.shared_netif = shared_netif;
	cfg.queue = w->queue;
	cfg.ip = local_ip;
	cfg.prefix_len = local_prefix;
	cfg.busy_poll_us = 0;   /* several threads share two cores: sleep when idle */
	w->app = usnet_app_open(&cfg, w->err, sizeof w->err);
	if (!w->app) {
		atomic_store(&stop_all, 1);
		return NULL;
	}
	struct usnet_stack *st = usnet_app_stack(w->app);
	struct usnet_io *io = usnet_app_io(w->app);
	usnet_sock_t ls = -1;
	if (peer_ip) {
		if (client_open(w) < 0) {
			atomic_store(&stop_all, 1);
			return NULL;
		}
	} else {
		ls = usnet_socket(st, USNET_SOCK_STREAM);
		struct usnet_addr any = { .ip = 0, .port = echo_port };
		int rc = ls < 0 ? ls : usnet_bind(st, ls, &any);
		if (rc == 0)
			rc = usnet_listen(st, ls, 128);
		if (rc < 0) {
			snprintf(w->err, sizeof w->err, "queue %u: cannot listen on port %u: %s",
				 w->queue, echo_port, strerror(-rc));
			atomic_store(&stop_all, 1);
			return NULL;
		}
	}
	while (!atomic_load(&stop_all)) {
		usnet_app_poll(w->app, 5);
		uint64_t now = usnet_app_now();
		if (now > deadline_ns)
			break;
		struct usnet_addr peer;
		int s;
		while (ls >= 0 && (s = usnet_accept(st, io, ls, &peer, now)) >= 0) {
			unsigned i;
			for (i = 0; i < MAX_CONNS && w->conns[i].open; i++)
				;
			if (i == MAX_CONNS) {
				usnet_close(st, io, s, now);
				continue;
			}
			w->nconns++;
			/* The flow's frames from the peer: src = peer, dst = us. */
			int q = usnet_netif_flow_queue(shared_netif, 6, peer.ip, peer.port, local_ip, echo_port);
			if (q != (int)w->queue)
				w->foreign++;
			w->conns[i].s = s;
			w->conns[i].open = 1;
			w->conns[i].pending = w->conns[i].off = 0;
		}
		for (unsigned i = 0; i < MAX_CONNS; i++) {
			struct echo_conn *c = &w->conns[i];
			if (!c->open)
				continue;
			char why[160] = "";
			int r = peer_ip ? client_step(w->app, c, &w->bytes, why, sizeof why)
					: echo_step(w->app, c, &w->bytes);
			if (r < 0 && why[0] && !w->err[0]) {
				snprintf(w->err, sizeof w->err, "queue %u connection %u: %s", w->queue, i, why);
				atomic_store(&stop_all, 1);
			}
			if (r != 0) {
				usnet_close(st, io, c->s, usnet_app_now());
				c->open = 0;
				if (r > 0 && atomic_fetch_add(&conns_done, 1) + 1 >= conns_wanted)
					atomic_store(&stop_all, 1);
			}
		}
	}
	/* Let the last FINs and ACKs leave before the numbers are read. */
	uint64_t linger = usnet_app_now() + 200000000ull;
	while (usnet_app_now() < linger)
		usnet_app_poll(w->app, 10);
	usnet_stack_stats(st, &w->stats);
	return NULL;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long nq, port, nconn, secs;
	const char *port_arg = argc > 5 ? strrchr(argv[5], ':') : NULL;
	if (port_arg) {
		char host[64];
		size_t hl = (size_t)(port_arg - argv[5]);
		struct in_addr a;
		if (hl >= sizeof host)
			hl = 0;
		memcpy(host, argv[5], hl);
		host[hl] = 0;
		if (hl && inet_pton(AF_INET, host, &a) == 1)
			peer_ip = ntohl(a.s_addr);
		if (!peer_ip) {
			fprintf(stderr, "%s: bad PEER:PORT %s\n", argv[0], argv[5]);
			return 2;
		}
		port_arg++;
	} else if (argc > 5) {
		port_arg = argv[5];
	}
	if (argc < 8 || argc > 9 || parse_uint(argv[3], MAX_QUEUES, &nq) || nq == 0 ||
	    usnet_app_parse_cidr(argv[4], &local_ip, &local_prefix) ||
	    parse_uint(port_arg, 65535, &port) || port == 0 ||
	    parse_uint(argv[6], 100000, &nconn) || nconn == 0 || parse_uint(argv[7], 3600, &secs)) {
		fprintf(stderr, "usage: %s BACKEND IFACE QUEUES(1-%d) IP/PREFIX [PEER:]PORT NCONN SECONDS [OPTIONS]\n",
			argv[0], MAX_QUEUES);
		return 2;
	}
	echo_port = (uint16_t)port;
	nqueues = (unsigned)nq;
	conns_wanted = (unsigned)nconn;

	struct usnet_netif_config ncfg = {
		.backend = argv[1], .iface = argv[2], .queues = (uint16_t)nq,
		.options = argc > 8 ? argv[8] : NULL, .ipv4 = local_ip,
	};
	char err[256] = "";
	int rc = usnet_netif_open(&ncfg, &shared_netif, err, sizeof err);
	if (rc < 0) {
		printf("FAIL: %s\n", err[0] ? err : strerror(-rc));
		return 1;
	}
	deadline_ns = usnet_app_now() + (uint64_t)secs * 1000000000ull;

	struct queue_worker w[MAX_QUEUES];
	memset(w, 0, sizeof w);
	for (unsigned q = 0; q < nq; q++) {
		w[q].queue = (uint16_t)q;
		w[q].conns = calloc(MAX_CONNS, sizeof *w[q].conns);
		if (!w[q].conns || pthread_create(&w[q].thread, NULL, queue_main, &w[q]) != 0) {
			printf("FAIL: cannot start the thread of queue %u\n", q);
			return 1;
		}
	}

	unsigned total = 0, bad = 0, empty = 0;
	for (unsigned q = 0; q < nq; q++)
		pthread_join(w[q].thread, NULL);
	for (unsigned q = 0; q < nq; q++) {
		if (w[q].err[0]) {
			printf("FAIL: %s\n", w[q].err);
			return 1;
		}
		printf("queue %u %s %u foreign %u tcp_no_port %llu tcp_rst_tx %llu bytes %llu\n",
		       q, peer_ip ? "connected" : "accepted", w[q].nconns, w[q].foreign, (unsigned long long)w[q].stats.tcp_no_port,
		       (unsigned long long)w[q].stats.tcp_rst_tx, (unsigned long long)w[q].bytes);
		total += w[q].nconns;
		bad += w[q].foreign + (unsigned)w[q].stats.tcp_no_port + (unsigned)w[q].stats.tcp_rst_tx;
		empty += w[q].nconns == 0;
		usnet_app_close(w[q].app);
		free(w[q].conns);
	}
	unsigned done = atomic_load(&conns_done);
	usnet_netif_close(shared_netif);
	if (total != nconn || done != nconn) {
		printf("FAIL: %u connections %s, %u completed, %lu expected\n", total,
		       peer_ip ? "opened" : "accepted", done, nconn);
		return 1;
	}
	if (bad) {
		printf("FAIL: an instance saw a flow of another queue (foreign/tcp_no_port/tcp_rst_tx above)\n");
		return 1;
	}
	if (empty && nconn >= 16 * nq) {
		printf("FAIL: %u queue(s) got no connection at all\n", empty);
		return 1;
	}
	return 0;
}
