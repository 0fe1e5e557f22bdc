/*
 * usnet-httpd — a static-content HTTP/1.1 server on the native usnet API
 * (one stack instance per thread), or on kernel sockets with --kernel.
 *
 *   usnet-httpd --kernel -p PORT [-t THREADS] --root DIR
 *   usnet-httpd --backend B --iface IF --ip A/N -p PORT [-t THREADS] --root DIR
 *
 * Every file under --root is read and its responses written at start-up
 * (http_cache.c); each thread then serves its connections from that one
 * read-only cache (http_conn.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "http_cache.h"
#include "http_conn.h"
#include "http_request.h"
#include "netloop.h"

/* How often idle connections are looked for. */
#define SWEEP_INTERVAL_NS 1000000000ull

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct httpd_thread {
	pthread_t tid;
	struct http_server server;
	int failed;
};

static void *thread_main(void *arg)
{
	struct httpd_thread *t = arg;
	struct http_server *s = &t->server;
	uint64_t last_sweep = netloop_now_ns();
	while (!stop_requested) {
		int rc = netloop_poll(s->loop, 200);
		if (rc < 0) {
			fprintf(stderr, "usnet-httpd: thread %d: poll: %s\n", s->index, strerror(-rc));
			t->failed = 1;
			stop_requested = 1;
			break;
		}
		uint64_t now = netloop_now_ns();
		if (now - last_sweep >= SWEEP_INTERVAL_NS) {
			http_server_sweep(s, now);
			last_sweep = now;
		}
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: usnet-httpd [--kernel | --backend B --iface IF --ip A.B.C.D/N] -p PORT --root DIR [options]\n"
		"Serves the files under DIR over HTTP/1.1 (GET and HEAD; keep-alive, pipelining,\n"
		"single byte ranges, If-Modified-Since and If-None-Match), every response\n"
		"written in advance from the files as they were at start-up.\n"
		"  -p PORT               TCP port\n"
		"  -t THREADS            worker threads, one stack instance (netif queue) each (1)\n"
		"  --root DIR            the document root; DIR/index.html answers \"/\"\n"
		"  --max-mb MB           refuse to start when the files hold more than this (4096)\n"
		"  --idle-timeout S      close a connection with nothing happening for S seconds (60)\n"
		"%s"
		"Limits: a request-target of %d bytes (longer: 414), header fields of %d bytes\n"
		"or %d lines (more: 431).\n"
		"usnet mode: %s\n", netloop_usage, HTTP_TARGET_MAX, HTTP_HEADER_SECTION_MAX, HTTP_HEADER_FIELDS_MAX,
		netloop_has_usnet() ? "available" : "not built (kernel mode only)");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct netloop_options net;
	long port = 0, threads = 1, max_mb = 4096, idle_s = (long)(HTTP_IDLE_TIMEOUT_NS / 1000000000ull);
	const char *root = NULL;

	netloop_options_init(&net);
	for (int i = 1; i < argc; i++) {
		int r = netloop_parse_option(&net, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int known = strcmp(a, "-p") == 0 || strcmp(a, "-t") == 0 || strcmp(a, "--root") == 0 ||
			    strcmp(a, "--max-mb") == 0 || strcmp(a, "--idle-timeout") == 0;
		if (!known) {
			fprintf(stderr, "usnet-httpd: unknown option '%s' (--help lists them)\n", a);
			return 2;
		}
		if (!v) {
			fprintf(stderr, "usnet-httpd: %s needs an argument\n", a);
			return 2;
		}
		i++;
		int bad = 0;
		if (strcmp(a, "-p") == 0)
			bad = parse_long(v, 1, 65535, &port);
		else if (strcmp(a, "-t") == 0)
			bad = parse_long(v, 1, 64, &threads);
		else if (strcmp(a, "--max-mb") == 0)
			bad = parse_long(v, 1, 1L << 30, &max_mb);
		else if (strcmp(a, "--idle-timeout") == 0)
			bad = parse_long(v, 1, 86400, &idle_s);
		else
			root = v;
		if (bad) {
			fprintf(stderr, "usnet-httpd: bad value '%s' for %s\n", v, a);
			return 2;
		}
	}
	if (!port || !root) {
		fprintf(stderr, "usnet-httpd: %s is required (--help for usage)\n", !port ? "-p PORT" : "--root DIR");
		return 2;
	}

	char err[512];
	static struct http_cache cache;
	http_cache_init(&cache, (uint64_t)max_mb << 20);
	if (http_cache_load_dir(&cache, root, err, sizeof err) < 0 ||
	    http_cache_finish(&cache, err, sizeof err) < 0) {
		fprintf(stderr, "usnet-httpd: %s\n", err);
		http_cache_destroy(&cache);
		return 1;
	}
	if (netloop_prepare(&net, (int)threads, err, sizeof err) < 0) {
		fprintf(stderr, "usnet-httpd: %s\n", err);
		http_cache_destroy(&cache);
		return 1;
	}

	/* Each connection is a descriptor on kernel sockets: take all the
	 * kernel allows (a listener that cannot accept for EMFILE stays ready
	 * and its thread spins until a connection closes). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 0, opened = 0, started = 1;
	struct httpd_thread *ts = calloc((size_t)threads, sizeof *ts);
	if (!ts) {
		fprintf(stderr, "usnet-httpd: out of memory\n");
		rc = 1;
		goto out;
	}
	for (int i = 0; i < threads; i++, opened++) {
		struct http_server *s = &ts[i].server;
		s->index = i;
		s->cache = &cache;
		s->idle_timeout_ns = (uint64_t)idle_s * 1000000000ull;
		if (http_server_init(s) < 0) {
			fprintf(stderr, "usnet-httpd: out of memory\n");
			rc = 1;
			goto out;
		}
		s->loop = netloop_open(&net, i, http_server_on_ready, s, err, sizeof err);
		if (!s->loop) {
			fprintf(stderr, "usnet-httpd: thread %d: %s\n", i, err);
			http_server_destroy(s);
			rc = 1;
			goto out;
		}
		/* every address: IPv6 too when the stack has --ip6 */
		s->listener = netloop_listen_any(s->loop, (uint16_t)port);
		if (s->listener < 0) {
			fprintf(stderr, "usnet-httpd: listen on port %ld: %s\n", port, strerror(-s->listener));
			opened++;
			rc = 1;
			goto out;
		}
	}
	if (net.kernel)
		fprintf(stderr, "usnet-httpd: %zu files (%" PRIu64 " bytes) from %s on port %ld, %ld thread(s), kernel sockets\n",
			cache.nfiles, cache.body_bytes, root, port, threads);
	else
		fprintf(stderr, "usnet-httpd: %zu files (%" PRIu64 " bytes) from %s on %s:%ld, %ld thread(s), usnet over %s on %s\n",
			cache.nfiles, cache.body_bytes, root, net.ip_cidr, port, threads, net.backend, net.iface);
	for (; started < threads; started++)
		if (pthread_create(&ts[started].tid, NULL, thread_main, &ts[started]) != 0) {
			fprintf(stderr, "usnet-httpd: cannot start thread %d\n", started);
			stop_requested = 1;
			rc = 1;
			break;
		}
	if (rc == 0)
		thread_main(&ts[0]);
	stop_requested = 1;
	for (int i = 1; i < started; i++)
		pthread_join(ts[i].tid, NULL);
	for (int i = 0; i < threads; i++)
		if (ts[i].failed)
			rc = 1;
out:
	for (int i = 0; ts && i < opened; i++) {
		http_server_destroy(&ts[i].server);
		netloop_close_loop(ts[i].server.loop);
	}
	free(ts);
	netloop_finish(&net);
	http_cache_destroy(&cache);
	return rc;
}
