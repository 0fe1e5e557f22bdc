/*
 * usnet-bench — network benchmarks on the native usnet API, or on kernel
 * sockets with --kernel for the baseline:
 *
 *   usnet-bench ponger [NET] -p PORT [-t THREADS]
 *   usnet-bench pinger HOST [NET] -p PORT -c CONNS -t THREADS -m BYTES -d SECONDS
 *   usnet-bench kv HOST [NET] -p PORT -c CONNS -t THREADS -d SECONDS
 *                   [-n ITEMS] [-s SET_RATIO] [-z THETA] [--no-preload]
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

volatile sig_atomic_t bench_stop;

void *bench_prepare(const struct bench_config *cfg, const char *mode, struct netloop_options *net,
		    size_t thread_size)
{
	char err[256];
	*net = cfg->net;
	if (netloop_prepare(net, cfg->threads, err, sizeof err) < 0) {
		fprintf(stderr, "usnet-bench %s: %s\n", mode, err);
		return NULL;
	}
	return calloc((size_t)cfg->threads, thread_size);
}

static void on_signal(int sig)
{
	(void)sig;
	bench_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: usnet-bench ponger [NET] -p PORT [-t THREADS]\n"
		"       usnet-bench pinger HOST [NET] -p PORT [-c CONNS] [-t THREADS] [-m BYTES] [-d SECONDS]\n"
		"       usnet-bench kv HOST [NET] -p PORT [-c CONNS] [-t THREADS] [-d SECONDS]\n"
		"                  [-n ITEMS] [-s SET_RATIO] [-z THETA] [--no-preload]\n"
		"  -c CONNS     connections per thread (pinger 32, kv 32)\n"
		"  -t THREADS   threads, one stack instance (queue) each (1)\n"
		"  -m BYTES     pinger message size (1)\n"
		"  -d SECONDS   measured time (5)\n"
		"  -n ITEMS     kv: items (1000000), 8-byte keys and values\n"
		"  -s RATIO     kv: fraction of sets (0.1)\n"
		"  -z THETA     kv: zipfian skew (0.99)\n"
		"  --redis      kv: speak Redis (RESP GET/SET) instead of memcached's text protocol\n"
		"HOST is an IPv4 or IPv6 address (IPv6 over usnet needs --ip6); the ponger\n"
		"listens on :: (IPv6 and IPv4) when it has --ip6, else on 0.0.0.0.\n"
		"NET is --kernel, or the usnet network:\n%s", netloop_usage);
}

static int num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_config cfg;
	memset(&cfg, 0, sizeof cfg);
	netloop_options_init(&cfg.net);
	cfg.threads = 1;
	cfg.conns = 32;
	cfg.msg_bytes = 1;
	cfg.seconds = 5;
	cfg.keys = 1000000;
	cfg.set_ratio = 0.1;
	cfg.theta = 0.99;
	cfg.preload = 1;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *mode = argv[1];
	int is_ponger = strcmp(mode, "ponger") == 0;
	if (!is_ponger && strcmp(mode, "pinger") != 0 && strcmp(mode, "kv") != 0) {
		fprintf(stderr, "usnet-bench: unknown mode '%s'\n", mode);
		usage(stderr);
		return 2;
	}
	int i = 2;
	if (!is_ponger) {
		if (argc < 3 || netloop_parse_host(argv[2], &cfg.host) < 0) {
			fprintf(stderr, "usnet-bench %s: needs the server's IPv4 or IPv6 address first\n", mode);
			return 2;
		}
		i = 3;
	}
	for (; i < argc; i++) {
		int r = netloop_parse_option(&cfg.net, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		const char *a = argv[i];
		if (strcmp(a, "--no-preload") == 0) {
			cfg.preload = 0;
			continue;
		}
		if (strcmp(a, "--redis") == 0) {
			cfg.redis = 1;
			continue;
		}
		if (i + 1 >= argc || a[0] != '-' || strlen(a) != 2) {
			fprintf(stderr, "usnet-bench: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
		const char *v = argv[++i];
		double d;
		int bad = 0;
		switch (a[1]) {
		case 'p': bad = num(v, 1, 65535, &d); cfg.port = (uint16_t)d; break;
		case 't': bad = num(v, 1, 64, &d); cfg.threads = (int)d; break;
		case 'c': bad = num(v, 1, 10000, &d); cfg.conns = (int)d; break;
		case 'm': bad = num(v, 1, 1 << 20, &d); cfg.msg_bytes = (size_t)d; break;
		case 'd': bad = num(v, 0.1, 3600, &d); cfg.seconds = d; break;
		case 'n': bad = num(v, 1, 10000000, &d); cfg.keys = (uint32_t)d; break;
		case 's': bad = num(v, 0, 1, &d); cfg.set_ratio = d; break;
		case 'z': bad = num(v, 0.01, 0.9999, &d); cfg.theta = d; break;
		default:
			fprintf(stderr, "usnet-bench: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "usnet-bench: bad value '%s' for %s\n", v, a);
			return 2;
		}
	}
	if (cfg.port == 0) {
		fprintf(stderr, "usnet-bench %s: -p PORT is required\n", mode);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (is_ponger)
		return bench_ponger(&cfg);
	if (strcmp(mode, "pinger") == 0)
		return bench_pinger(&cfg);
	return bench_kv(&cfg);
}
