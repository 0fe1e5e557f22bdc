/*
 * fastio-mq-echo — one usnet stack instance per receive queue of one shared
 * netif, each in its own thread (shared-nothing), all serving the same TCP
 * echo port.  Used by tests/fastio/run.sh to show that with N queues every
 * connection is served, end to end, by the instance of the queue its frames
 * arrive on, and by no other.
 *
 * Every instance keeps its own ARP table, and the backend hands ARP frames
 * (which have no ports to hash) to one queue only, so the instances drive
 * the netif through arp_share.h, which gives every queue a copy of them.
 *
 * Usage: fastio-mq-echo BACKEND IFACE QUEUES IP/PREFIX PORT NCONN SECONDS [OPTIONS]
 *
 * Each instance listens on PORT and echoes every byte it receives until the
 * peer closes, then closes.  When NCONN connections have been closed (all
 * instances together) or SECONDS have passed, every thread stops and the
 * program prints one line per queue:
 *     queue Q accepted N foreign F tcp_no_port P tcp_rst_tx R bytes B
 * where "foreign" counts accepted connections that usnet_netif_flow_queue()
 * places on another queue.  A segment of a flow reaching an instance that
 * does not own it finds no connection there, which the stack counts as
 * tcp_no_port and answers with a RST (tcp_rst_tx); both must stay 0.
 * Exits 0 only when the instances accepted and completed NCONN connections
 * in all, every queue got at least one, and foreign, tcp_no_port and
 * tcp_rst_tx are 0 everywhere; otherwise prints "FAIL: why" and exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arp_share.h"
#include "usnet_app.h"

#define MAX_QUEUES 16
#define MAX_CONNS 256
#define ECHO_BUF 65536

/* One echoed connection: bytes received but not yet sent back wait in buf. */
struct echo_conn {
	usnet_sock_t s;
	int open;
	size_t pending, off;
	unsigned char buf[ECHO_BUF];
};

struct queue_worker {
	pthread_t thread;
	uint16_t queue;
	struct usnet_app *app;
	struct echo_conn *conns;   /* MAX_CONNS */
	unsigned accepted, foreign;
	uint64_t bytes;
	struct usnet_stack_stats stats;
	char err[256];
};

static struct usnet_netif *shared_netif;   /* the backend */
static struct usnet_netif *app_netif;      /* what the instances drive: shared_netif + ARP copies */
static uint32_t local_ip;
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

static void *queue_main(void *arg)
{
	struct queue_worker *w = arg;
	struct usnet_app_config cfg;
	usnet_app_config_init(&cfg);
	cfg.shared_netif = app_netif;
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
	usnet_sock_t ls = usnet_socket(st, USNET_SOCK_STREAM);
	struct usnet_addr any = { 0, echo_port };
	int rc = ls < 0 ? ls : usnet_bind(st, ls, &any);
	if (rc == 0)
		rc = usnet_listen(st, ls, 128);
	if (rc < 0) {
		snprintf(w->err, sizeof w->err, "queue %u: cannot listen on port %u: %s",
			 w->queue, echo_port, strerror(-rc));
		atomic_store(&stop_all, 1);
		return NULL;
	}
	while (!atomic_load(&stop_all)) {
		usnet_app_poll(w->app, 5);
		uint64_t now = usnet_app_now();
		if (now > deadline_ns)
			break;
		struct usnet_addr peer;
		int s;
		while ((s = usnet_accept(st, io, ls, &peer, now)) >= 0) {
			unsigned i;
			for (i = 0; i < MAX_CONNS && w->conns[i].open; i++)
				;
			if (i == MAX_CONNS) {
				usnet_close(st, io, s, now);
				continue;
			}
			w->accepted++;
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
			int r = echo_step(w->app, c, &w->bytes);
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
	if (argc < 8 || argc > 9 || parse_uint(argv[3], MAX_QUEUES, &nq) || nq == 0 ||
	    usnet_app_parse_cidr(argv[4], &local_ip, &local_prefix) ||
	    parse_uint(argv[5], 65535, &port) || port == 0 ||
	    parse_uint(argv[6], 100000, &nconn) || nconn == 0 || parse_uint(argv[7], 3600, &secs)) {
		fprintf(stderr, "usage: %s BACKEND IFACE QUEUES(1-%d) IP/PREFIX PORT NCONN SECONDS [OPTIONS]\n",
			argv[0], MAX_QUEUES);
		return 2;
	}
	echo_port = (uint16_t)port;
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
	/* Every instance keeps its own ARP table but the backend delivers ARP
	 * (no ports to hash) to one queue: give each queue a copy. */
	app_netif = arp_share_wrap(shared_netif);
	if (!app_netif) {
		printf("FAIL: out of memory\n");
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
		printf("queue %u accepted %u foreign %u tcp_no_port %llu tcp_rst_tx %llu bytes %llu\n",
		       q, w[q].accepted, w[q].foreign, (unsigned long long)w[q].stats.tcp_no_port,
		       (unsigned long long)w[q].stats.tcp_rst_tx, (unsigned long long)w[q].bytes);
		total += w[q].accepted;
		bad += w[q].foreign + (unsigned)w[q].stats.tcp_no_port + (unsigned)w[q].stats.tcp_rst_tx;
		empty += w[q].accepted == 0;
		usnet_app_close(w[q].app);
		free(w[q].conns);
	}
	unsigned done = atomic_load(&conns_done);
	arp_share_free(app_netif);
	usnet_netif_close(shared_netif);
	if (total != nconn || done != nconn) {
		printf("FAIL: %u connections accepted, %u completed, %lu expected\n", total, done, nconn);
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
