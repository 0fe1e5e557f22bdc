/*
 * bench-stack — the stack core's own speed and memory, with no kernel in the
 * way: two stack instances joined by an in-process memwire, both driven by
 * one thread through the application runtime (usnet_app_poll with timeout 0,
 * so nothing ever sleeps).  Prints a table against the project's goals:
 *
 *   bulk throughput, one connection, large writes     >= 10 Gbit/s
 *   1-byte ping-pong round trips/s over 32 connections >= 1,000,000
 *   memory per idle established connection (100,000)  <= 1 KiB
 *
 * The first two are also measured for Linux TCP over loopback in the same run
 * (kernel_ref.c), for comparison.  Memory is what the server's instance needs
 * in all (usnet_stack_mem_size: socket table, hash tables and the shared
 * buffer pool) divided by the connections it holds.
 *
 * Usage: bench-stack [--seconds S] [--conns N] [--only bulk|jumbo|pingpong|memory]
 *                    [--family 4|6]
 * (--only runs one measurement, e.g. under `perf record -g`; --family
 * measures bulk and ping-pong over that family alone, its rows repeated
 * for the other).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "usnet/netif_memwire.h"
#include "usnet/netif_open.h"
#include "usnet_app.h"
#include "kernel_ref.h"

#define CLIENT_IP 0x0a3dfa01u  /* 10.61.250.1 */
#define SERVER_IP 0x0a3dfa02u  /* 10.61.250.2 */
/* IPv6 runs: fd00:61:fa::1 and ::2 (the last byte is 1 or 2 as above) */
static const uint8_t IP6_PREFIX[15] = { 0xfd, 0x00, 0x00, 0x61, 0x00, 0xfa };
#define BASE_PORT 5000

struct side {
	struct usnet_app *app;
	struct usnet_stack *st;
	struct usnet_io *io;
};

/* Two stacks on the two ends of one memwire. */
struct pair {
	struct usnet_netif *ends[2];
	struct side cli, srv;
	struct usnet_app_config cfg;   /* what both were opened with */
	int v6;                        /* connections over IPv6 */
};

/* The server's address on `port`, of the pair's family. */
static struct usnet_addr server_addr(const struct pair *p, uint16_t port)
{
	struct usnet_addr a = { .ip = SERVER_IP, .port = port };
	if (p->v6) {
		a.ip = 0;
		a.family = USNET_AF_INET6;
		memcpy(a.ip6, IP6_PREFIX, sizeof IP6_PREFIX);
		a.ip6[15] = 2;
	}
	return a;
}

static int sock_type(const struct pair *p)
{
	return USNET_SOCK_STREAM | (p->v6 ? USNET_SOCK_V6 : 0);
}

static void die(const char *what, long err)
{
	fprintf(stderr, "bench-stack: %s: %s\n", what, err ? strerror((int)(err < 0 ? -err : err)) : "failed");
	exit(1);
}

static void side_open(struct pair *p, struct side *s, int end, uint32_t ip)
{
	char err[256];
	struct usnet_app_config cfg = p->cfg;

	cfg.shared_netif = p->ends[end];
	cfg.ip = ip;
	if (p->v6) {
		/* Both ends have IPv4 and IPv6; the connections pick one. */
		cfg.ip6.n = 1;
		memcpy(cfg.ip6.addr[0], IP6_PREFIX, sizeof IP6_PREFIX);
		cfg.ip6.addr[0][15] = (uint8_t)(ip & 0xff);
		cfg.ip6.prefix_len[0] = 64;
		cfg.ip6_no_dad = 1;   /* a wire of our own: nobody else to ask */
	}
	s->app = usnet_app_open(&cfg, err, sizeof err);
	if (!s->app) {
		fprintf(stderr, "bench-stack: %s\n", err);
		exit(1);
	}
	s->st = usnet_app_stack(s->app);
	s->io = usnet_app_io(s->app);
}

static void pair_open(struct pair *p, const char *wire_options, uint32_t max_sockets,
		      uint32_t buffer_bytes, uint32_t sockbuf, int v6)
{
	char err[256];
	int r;

	memset(p, 0, sizeof *p);
	p->v6 = v6;
	r = usnet_memwire_pair(p->ends, wire_options, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "bench-stack: memwire: %s\n", err);
		exit(1);
	}
	usnet_app_config_init(&p->cfg);
	p->cfg.prefix_len = 24;
	p->cfg.max_sockets = max_sockets;
	p->cfg.buffer_bytes = buffer_bytes;
	p->cfg.sndbuf = sockbuf;
	p->cfg.rcvbuf = sockbuf;
	p->cfg.busy_poll_us = 0;
	side_open(p, &p->cli, 0, CLIENT_IP);
	side_open(p, &p->srv, 1, SERVER_IP);
}

static void pair_close(struct pair *p)
{
	usnet_app_close(p->cli.app);
	usnet_app_close(p->srv.app);
	usnet_netif_close(p->ends[0]);
	usnet_netif_close(p->ends[1]);
}

static void pair_poll(struct pair *p)
{
	usnet_app_poll(p->cli.app, 0);
	usnet_app_poll(p->srv.app, 0);
}

/* CPU time this thread has used: with other work on the machine, the rate
 * per CPU-second says what the stack does on a core of its own. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double seconds_since(uint64_t t0)
{
	return (double)(usnet_app_now() - t0) / 1e9;
}

static void listen_on(struct pair *p, usnet_sock_t *ls, int nports)
{
	for (int i = 0; i < nports; i++) {
		struct usnet_addr a = server_addr(p, (uint16_t)(BASE_PORT + i));
		ls[i] = usnet_socket(p->srv.st, sock_type(p));
		if (ls[i] < 0)
			die("socket", ls[i]);
		long r = usnet_bind(p->srv.st, ls[i], &a);
		if (r < 0)
			die("bind", r);
		if ((r = usnet_listen(p->srv.st, ls[i], 4096)) < 0)
			die("listen", r);
	}
}

/* Establish n connections client -> server, spread over nports listeners,
 * in rounds of `batch` handshakes (the wire's ring holds ~1000 frames). */
static int connect_many(struct pair *p, usnet_sock_t *ls, int nports, usnet_sock_t *cli,
			usnet_sock_t *srv, int n, int batch)
{
	int made = 0, accepted = 0;
	uint64_t t0 = usnet_app_now();

	while (accepted < n) {
		/* The first connection alone: it resolves the server's MAC, and
		 * SYNs beyond the ARP (ND) queue would wait for a retransmission. */
		int target = made == 0 ? 1 : (made + batch < n ? made + batch : n);
		for (; made < target; made++) {
			struct usnet_addr a = server_addr(p, (uint16_t)(BASE_PORT + made % nports));
			cli[made] = usnet_socket(p->cli.st, sock_type(p));
			if (cli[made] < 0)
				die("socket (client)", cli[made]);
			long r = usnet_connect(p->cli.st, p->cli.io, cli[made], &a, usnet_app_now());
			if (r < 0 && r != -USNET_EINPROGRESS) {
				fprintf(stderr, "bench-stack: connect #%d: %s\n", made, strerror((int)-r));
				return accepted;
			}
		}
		uint64_t round = usnet_app_now();
		while (accepted < made) {
			pair_poll(p);
			for (int i = 0; i < nports; i++) {
				struct usnet_addr peer;
				int s;
				while (accepted < made &&
				       (s = usnet_accept(p->srv.st, p->srv.io, ls[i], &peer, usnet_app_now())) >= 0)
					srv[accepted++] = s;
			}
			if (seconds_since(round) > 10) {
				fprintf(stderr, "bench-stack: handshakes stalled at %d of %d\n", accepted, made);
				return accepted;
			}
		}
	}
	/* Let the last ACKs settle. */
	for (int i = 0; i < 100; i++)
		pair_poll(p);
	(void)t0;
	return accepted;
}

/* ---- bulk --------------------------------------------------------------- */

static double bench_bulk(const char *wire_options, double seconds, int v6, double *cpu_share)
{
	struct pair p;
	usnet_sock_t ls, c, s;
	size_t chunk = 1u << 20;
	uint8_t *tx = malloc(chunk), *rx = malloc(chunk);
	uint64_t received = 0;

	if (!tx || !rx)
		die("malloc", ENOMEM);
	memset(tx, 0x5a, chunk);
	pair_open(&p, wire_options, 8, 64u << 20, 4u << 20, v6);
	listen_on(&p, &ls, 1);
	if (connect_many(&p, &ls, 1, &c, &s, 1, 1) != 1)
		die("bulk: connection not established", 0);

	uint64_t t0 = 0, c0 = 0, start = usnet_app_now();
	double warmup = seconds / 5;
	for (;;) {
		usnet_send(p.cli.st, p.cli.io, c, tx, chunk, 0, usnet_app_now());
		pair_poll(&p);
		long n;
		while ((n = usnet_recv(p.srv.st, p.srv.io, s, rx, chunk, 0, usnet_app_now())) > 0)
			if (t0)
				received += (uint64_t)n;
		if (n < 0 && n != -USNET_EAGAIN)
			die("bulk: recv", n);
		if (!t0 && seconds_since(start) >= warmup) {
			t0 = usnet_app_now();
			c0 = thread_cpu_ns();
		}
		if (t0 && seconds_since(t0) >= seconds)
			break;
	}
	double wall = seconds_since(t0);
	double gbps = (double)received * 8 / wall / 1e9;
	*cpu_share = (double)(thread_cpu_ns() - c0) / 1e9 / wall;
	pair_close(&p);
	free(tx);
	free(rx);
	return gbps;
}

/* ---- ping-pong ---------------------------------------------------------- */

static double bench_pingpong(int conns, double seconds, int v6, double *cpu_share)
{
	struct pair p;
	usnet_sock_t ls, *c = calloc((size_t)conns, sizeof *c), *s = calloc((size_t)conns, sizeof *s);
	uint64_t trips = 0;
	uint8_t byte = 1;

	if (!c || !s)
		die("calloc", ENOMEM);
	pair_open(&p, "nowake", (uint32_t)conns + 8, 16u << 20, 0, v6);
	listen_on(&p, &ls, 1);
	if (connect_many(&p, &ls, 1, c, s, conns, conns) != conns)
		die("ping-pong: connections not established", 0);
	for (int i = 0; i < conns; i++) {
		usnet_setsockopt(p.cli.st, c[i], USNET_TCP_NODELAY, 1);
		usnet_setsockopt(p.srv.st, s[i], USNET_TCP_NODELAY, 1);
		if (usnet_send(p.cli.st, p.cli.io, c[i], &byte, 1, 0, usnet_app_now()) != 1)
			die("ping-pong: first send", 0);
	}
	uint64_t t0 = 0, c0 = 0, start = usnet_app_now();
	double warmup = seconds / 5;
	for (unsigned iter = 1;; iter++) {
		pair_poll(&p);
		/* The stacks only need a coarse clock here (timers are far off);
		 * reading it per socket would cost more than the stack itself. */
		uint64_t now = usnet_app_now();
		for (int i = 0; i < conns; i++) {
			uint8_t b;
			if (usnet_recv(p.srv.st, p.srv.io, s[i], &b, 1, 0, now) == 1)
				usnet_send(p.srv.st, p.srv.io, s[i], &b, 1, 0, now);
			if (usnet_recv(p.cli.st, p.cli.io, c[i], &b, 1, 0, now) == 1) {
				if (t0)
					trips++;
				usnet_send(p.cli.st, p.cli.io, c[i], &b, 1, 0, now);
			}
		}
		if (iter % 64)
			continue;
		if (!t0 && seconds_since(start) >= warmup) {
			t0 = usnet_app_now();
			c0 = thread_cpu_ns();
		}
		if (t0 && seconds_since(t0) >= seconds)
			break;
	}
	double wall = seconds_since(t0);
	double rate = (double)trips / wall;
	*cpu_share = (double)(thread_cpu_ns() - c0) / 1e9 / wall;
	pair_close(&p);
	free(c);
	free(s);
	return rate;
}

/* ---- memory per idle connection ----------------------------------------- */

struct memory_result {
	int conns;
	size_t arena_bytes;       /* what the server's instance needs in all */
	size_t marginal_bytes;    /* arena growth per socket slot */
	size_t resident_bytes;    /* arena pages actually touched */
	uint64_t buffers_in_use;  /* buffer pool bytes in use */
	uint32_t buffer_pool;     /* buffer pool configured */
	double setup_s;
};

static size_t resident(void *base, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (len + page - 1) / page, n = 0;
	unsigned char *vec = malloc(pages);
	if (!vec || mincore(base, len, vec) < 0) {
		free(vec);
		return 0;
	}
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n * page;
}

static struct memory_result bench_memory(int conns)
{
	struct memory_result m = { 0 };
	struct pair p;
	enum { NPORTS = 8 };
	usnet_sock_t ls[NPORTS];
	usnet_sock_t *c = calloc((size_t)conns, sizeof *c), *s = calloc((size_t)conns, sizeof *s);
	uint32_t pool = 16u << 20;

	if (!c || !s)
		die("calloc", ENOMEM);
	pair_open(&p, "nowake", (uint32_t)conns + NPORTS, pool, 0, 0);
	listen_on(&p, ls, NPORTS);
	uint64_t t0 = usnet_app_now();
	m.conns = connect_many(&p, ls, NPORTS, c, s, conns, 256);
	m.setup_s = seconds_since(t0);

	struct usnet_stack_config sc;
	usnet_stack_config_init(&sc);
	sc.ip = SERVER_IP;
	sc.prefix_len = 24;
	sc.buffer_bytes = pool;
	sc.max_sockets = (uint32_t)conns + NPORTS;
	size_t big = usnet_stack_mem_size(&sc);
	sc.max_sockets = NPORTS;
	size_t small = usnet_stack_mem_size(&sc);
	m.arena_bytes = usnet_app_arena_bytes(p.srv.app);
	m.marginal_bytes = (big - small) / (size_t)conns;
	m.resident_bytes = resident(p.srv.st, m.arena_bytes);
	struct usnet_stack_stats st;
	usnet_stack_stats(p.srv.st, &st);
	m.buffers_in_use = st.buffers_in_use;
	m.buffer_pool = pool;
	pair_close(&p);
	free(c);
	free(s);
	return m;
}

/* The bulk run at MTU 1500 and the 32-connection ping-pong, by family. */
static double bench_bulk_wire(double seconds, int v6, double *cpu_share)
{
	return bench_bulk("nowake,frame=1514", seconds, v6, cpu_share);
}

static double bench_pingpong_32(double seconds, int v6, double *cpu_share)
{
	return bench_pingpong(32, seconds, v6, cpu_share);
}

static double median3(double a, double b, double c)
{
	return a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
}

/* run over IPv4 and over IPv6 in turn, three rounds: the median rate and
 * CPU share of each family. */
static int family_only;   /* --family: 4 or 6, the one measured (0: both) */

static void median_pair(double (*run)(double, int, double *), double seconds, double *v4, double *share4,
			double *v6, double *share6)
{
	double r[2][3], s[2][3];
	for (int round = 0; round < 3; round++)
		for (int fam = 0; fam < 2; fam++)
			if (!family_only || family_only == (fam ? 6 : 4))
				r[fam][round] = run(seconds, fam, &s[fam][round]);
	if (family_only) {   /* the other's rows repeat the measured one's */
		int m = family_only == 6;
		memcpy(r[!m], r[m], sizeof r[m]);
		memcpy(s[!m], s[m], sizeof s[m]);
	}
	*v4 = median3(r[0][0], r[0][1], r[0][2]);
	*share4 = median3(s[0][0], s[0][1], s[0][2]);
	*v6 = median3(r[1][0], r[1][1], r[1][2]);
	*share6 = median3(s[1][0], s[1][1], s[1][2]);
}

int main(int argc, char **argv)
{
	double seconds = 2;
	int conns = 100000;
	const char *only = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--conns") && i + 1 < argc) {
			conns = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--family") && i + 1 < argc &&
			   (!strcmp(argv[i + 1], "4") || !strcmp(argv[i + 1], "6"))) {
			family_only = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench-stack [--seconds S] [--conns N] [--only bulk|jumbo|pingpong|memory] "
				"[--family 4|6]\n");
			return 2;
		}
	}
	if (seconds <= 0 || conns <= 0) {
		fprintf(stderr, "bench-stack: --seconds and --conns must be positive\n");
		return 2;
	}

	printf("usnet stack benchmark: two stacks over an in-process memwire, one thread;\n"
	       "kernel: Linux TCP over loopback (MTU 65536), one thread, non-blocking, epoll\n\n");
	printf("%-46s %14s %14s %18s\n", "measure", "usnet", "kernel", "goal (usnet)");
	if (!only || !strcmp(only, "bulk")) {
		/* IPv4 and IPv6 in turn, three rounds, the median of each: one
		 * run after another in one process differ by more than the
		 * families do (which came first was worth up to 30%). */
		double share, g, share6, g6;
		median_pair(bench_bulk_wire, seconds, &g, &share, &g6, &share6);
		double k = only ? -1 : kernel_bulk_gbps(seconds);
		char ks[32] = "-";
		if (k >= 0)
			snprintf(ks, sizeof ks, "%.2f Gb/s", k);
		printf("%-46s %9.2f Gb/s %14s %18s\n", "bulk, 1 connection, 1 MiB writes, MTU 1500",
		       g, ks, ">= 10 Gb/s");
		printf("%-46s %9.2f Gb/s   (on a CPU %.0f%% of the time)\n", "  per CPU-second", g / share,
		       share * 100);
		printf("%-46s %9.2f Gb/s %14s %18s\n", "  same over IPv6", g6, "", "within 10% of IPv4");
		printf("%-46s %9.2f Gb/s   (x%.2f of IPv4 per CPU-second)\n", "  IPv6 per CPU-second",
		       g6 / share6, (g6 / share6) / (g / share));
		fflush(stdout);
	}
	if (!only || !strcmp(only, "jumbo")) {
		double share, g = bench_bulk("nowake,frame=9018", seconds, 0, &share);
		printf("%-46s %9.2f Gb/s %14s %18s\n", "bulk, same, MTU 9004 (jumbo frames)", g, "", "(for reference)");
		printf("%-46s %9.2f Gb/s   (on a CPU %.0f%% of the time)\n", "  per CPU-second", g / share,
		       share * 100);
		fflush(stdout);
	}
	if (!only || !strcmp(only, "pingpong")) {
		double share, rt, share6, rt6;
		median_pair(bench_pingpong_32, seconds, &rt, &share, &rt6, &share6);
		double k = only ? -1 : kernel_pingpong_rate(32, seconds);
		char ks[32] = "-";
		if (k >= 0)
			snprintf(ks, sizeof ks, "%.0f rt/s", k);
		printf("%-46s %9.0f rt/s %14s %18s\n", "1-byte ping-pong, 32 connections", rt, ks,
		       ">= 1000000 rt/s");
		printf("%-46s %9.0f rt/s   (on a CPU %.0f%% of the time)\n", "  per CPU-second", rt / share,
		       share * 100);
		printf("%-46s %9.0f rt/s %14s %18s\n", "  same over IPv6", rt6, "", "within 10% of IPv4");
		printf("%-46s %9.0f rt/s   (x%.2f of IPv4 per CPU-second)\n", "  IPv6 per CPU-second",
		       rt6 / share6, (rt6 / share6) / (rt / share));
		fflush(stdout);
	}
	if (!only || !strcmp(only, "memory")) {
		struct memory_result m = bench_memory(conns);
		if (m.conns > 0) {
			printf("%-46s %12zu B %14s %18s\n", "memory per idle established connection",
			       m.arena_bytes / (size_t)m.conns, "", "<= 1024 B");
			printf("\n  %d connections set up in %.2f s; server instance needs %.1f MiB in all\n"
			       "  (of which %.1f MiB is the shared buffer pool, %llu bytes of it in use);\n"
			       "  each socket slot adds %zu B; arena pages touched: %.1f MiB (%zu B/conn)\n",
			       m.conns, m.setup_s, m.arena_bytes / 1048576.0, m.buffer_pool / 1048576.0,
			       (unsigned long long)m.buffers_in_use, m.marginal_bytes,
			       m.resident_bytes / 1048576.0, m.resident_bytes / (size_t)m.conns);
		} else {
			printf("%-46s %14s %14s %18s\n", "memory per idle established connection", "none made", "", "<= 1024 B");
		}
	}
	return 0;
}
