/*
 * usnet demo — the system in one command.  Two private network namespaces
 * joined by a veth pair: in one, a stock server from Debian (nginx with its
 * master and workers, or python3 -m http.server where nginx is missing) runs
 * unmodified under `usnet run`, its sockets on usnet's user-space stack over
 * an AF_PACKET (or AF_XDP) socket on its veth end; in the other, the
 * kernel's own TCP/IP stack drives it with curl.  It then prints what
 * happened: the server, the backend, the requests, the bytes and their
 * sha256 on both sides, and the stack's counters as `usnet stat` shows them.
 *
 * The wiring is done with the ip(8) and ethtool(8) commands, as a person
 * would type it; everything it creates is removed on every exit path.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "cli.h"

#define DEMO_PORT 8080
#define DEMO_NET "10.65.0"       /* kernel side .1, usnet side .2 */

struct demo {
	char self[PATH_MAX];     /* this binary, for `usnet run` */
	char ns_srv[64], ns_cli[64], veth_srv[16], veth_cli[16];
	char work[64];
	const char *backend, *server;
	int requests, mib;
	pid_t server_pid;
	bool ns_made;
};

static struct demo D;

static int vsh(const char *fmt, va_list ap)
{
	char cmd[4096];
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	int st = system(cmd);
	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run a shell command; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsh(fmt, ap);
	va_end(ap);
	return r;
}

/* Run a shell command and keep the first line of its output in out. */
static int sh_line(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh_line(char *out, size_t n, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	out[0] = 0;
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fgets(out, (int)n, p))
		out[strcspn(out, "\n")] = 0;
	while (fgetc(p) != EOF)
		;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void stop_server(void)
{
	if (D.ns_made) {
		/* Every process of the server's namespace: the launcher, nginx's
		 * master and its workers. */
		sh("ps=$(ip netns pids %s 2>/dev/null); for p in $ps; do kill $p 2>/dev/null; done; sleep 0.3; "
		   "for p in $ps; do kill -9 $p 2>/dev/null; rm -f /dev/shm/usnet-$p.stat; done", D.ns_srv);
	}
	if (D.server_pid > 0) {
		kill(D.server_pid, SIGKILL);
		waitpid(D.server_pid, NULL, 0);
		D.server_pid = 0;
	}
}

static void cleanup(void)
{
	stop_server();
	if (D.ns_made) {
		sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", D.ns_srv, D.ns_cli);
		D.ns_made = false;
	}
	if (D.work[0]) {
		sh("rm -rf %s", D.work);
		D.work[0] = 0;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	cleanup();
	_exit(1);
}

static bool have(const char *prog)
{
	return sh("command -v %s >/dev/null 2>&1", prog) == 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: usnet demo [--backend afpacket|afxdp] [--server nginx|python] [--requests N] [--mib M]\n\n"
		"In two private network namespaces joined by a veth pair, runs a stock server\n"
		"(nginx, or python3 -m http.server) under `usnet run` and drives it with curl on\n"
		"the kernel's stack: N downloads of an M MiB file (default 10 x 4 MiB), each\n"
		"checked with sha256; then prints the stack's counters.  Needs root.\n");
}

/* One counter from a statistics file's text ("name value" lines). */
static unsigned long long stat_value(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
	return 0;
}

/* The statistics of the server's stack: every process of the namespace
 * shares one stack, so the freshest file (most frames) tells it all. */
static void read_stack_stats(char *best, size_t n)
{
	best[0] = 0;
	char pids[1024];
	FILE *p;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "ip netns pids %s 2>/dev/null | tr '\\n' ' '", D.ns_srv);
	if (!(p = popen(cmd, "r")))
		return;
	if (!fgets(pids, sizeof pids, p))
		pids[0] = 0;
	pclose(p);
	unsigned long long most = 0;
	for (char *tok = strtok(pids, " "); tok; tok = strtok(NULL, " ")) {
		char path[64], text[8192];
		snprintf(path, sizeof path, "/dev/shm/usnet-%s.stat", tok);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(text, 1, sizeof text - 1, f);
		fclose(f);
		text[len] = 0;
		unsigned long long rx = stat_value(text, "rx_frames");
		if (rx >= most) {
			most = rx;
			snprintf(best, n, "%s", text);
		}
	}
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "usnet demo: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	return 1;
}

static int parse_args(int argc, char **argv)
{
	D.backend = "afpacket";
	D.server = have("nginx") ? "nginx" : "python";
	D.requests = 10;
	D.mib = 4;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "usnet demo: unknown option or missing value: %s (try usnet demo --help)\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--backend") && (!strcmp(v, "afpacket") || !strcmp(v, "afxdp"))) {
			D.backend = v;
		} else if (!strcmp(a, "--server") && (!strcmp(v, "nginx") || !strcmp(v, "python"))) {
			D.server = v;
		} else if (!strcmp(a, "--requests") && atoi(v) > 0 && atoi(v) <= 10000) {
			D.requests = atoi(v);
		} else if (!strcmp(a, "--mib") && atoi(v) > 0 && atoi(v) <= 1024) {
			D.mib = atoi(v);
		} else {
			fprintf(stderr, "usnet demo: bad option %s %s (try usnet demo --help)\n", a, v);
			return 2;
		}
	}
	return -1;
}

static int setup_wire(void)
{
	long pid = (long)getpid();
	snprintf(D.ns_srv, sizeof D.ns_srv, "usnet-demo-%ld-srv", pid);
	snprintf(D.ns_cli, sizeof D.ns_cli, "usnet-demo-%ld-cli", pid);
	snprintf(D.veth_srv, sizeof D.veth_srv, "usd%lds", pid);
	snprintf(D.veth_cli, sizeof D.veth_cli, "usd%ldc", pid);
	if (sh("ip netns add %s", D.ns_srv))
		return -1;
	D.ns_made = true;
	/* The veth's kernel end computes no L4 checksums unless told (tx off),
	 * and the user-space stack on the other end checks them. */
	return sh("ip netns add %s && "
		  "ip link add %s netns %s type veth peer name %s netns %s && "
		  "ip -n %s link set lo up && ip -n %s link set lo up && "
		  "ip -n %s link set %s up && ip -n %s addr add " DEMO_NET ".1/24 dev %s && "
		  "ip -n %s link set %s up && "
		  "ip netns exec %s ethtool -K %s tx off >/dev/null",
		  D.ns_cli, D.veth_srv, D.ns_srv, D.veth_cli, D.ns_cli,
		  D.ns_srv, D.ns_cli,
		  D.ns_cli, D.veth_cli, D.ns_cli, D.veth_cli,
		  D.ns_srv, D.veth_srv,
		  D.ns_cli, D.veth_cli) ? -1 : 0;
}

static int start_server(void)
{
	char cmd[1024];
	const char *ip = DEMO_NET ".2";
	if (!strcmp(D.server, "nginx")) {
		FILE *f;
		char conf[128];
		snprintf(conf, sizeof conf, "%s/nginx.conf", D.work);
		if (!(f = fopen(conf, "w")))
			return -1;
		fprintf(f,
			"daemon off; worker_processes 2; pid %s/nginx.pid; error_log %s/error.log;\n"
			"events { worker_connections 256; }\n"
			"http { access_log off; client_body_temp_path %s; proxy_temp_path %s;\n"
			"  fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
			"  server { listen %s:%d; root %s/www; } }\n",
			D.work, D.work, D.work, D.work, D.work, D.work, D.work, ip, DEMO_PORT, D.work);
		fclose(f);
		snprintf(cmd, sizeof cmd, "nginx -c %s", conf);
	} else {
		snprintf(cmd, sizeof cmd, "python3 -m http.server %d --bind %s --directory %s/www",
			 DEMO_PORT, ip, D.work);
	}
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char line[8192];
		snprintf(line, sizeof line,
			 "exec ip netns exec %s timeout 600 %s run --backend %s --iface %s --ip %s/24 -- %s "
			 ">%s/server.log 2>&1",
			 D.ns_srv, D.self, D.backend, D.veth_srv, ip, cmd, D.work);
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
		_exit(127);
	}
	D.server_pid = pid;
	/* Listening once a request gets an answer (the kernel client retries). */
	for (int i = 0; i < 150; i++) {
		if (sh("ip netns exec %s curl -s -o /dev/null -m 1 http://%s:%d/ 2>/dev/null",
		       D.ns_cli, ip, DEMO_PORT) == 0)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			D.server_pid = 0;
			return -1;
		}
		usleep(100000);
	}
	return -1;
}

int cli_demo_main(int argc, char **argv)
{
	int r = parse_args(argc, argv);
	if (r >= 0)
		return r;
	if (geteuid() != 0) {
		fprintf(stderr, "usnet demo: needs root: it creates two network namespaces and a veth pair "
			"(run it with sudo)\n");
		return 1;
	}
	const char *needed[] = { "ip", "ethtool", "curl", "sha256sum", "timeout",
				 !strcmp(D.server, "nginx") ? "nginx" : "python3" };
	for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
		if (!have(needed[i])) {
			fprintf(stderr, "usnet demo: '%s' is missing (scripts/install-deps.sh installs it)\n",
				needed[i]);
			return 1;
		}
	ssize_t n = readlink("/proc/self/exe", D.self, sizeof D.self - 1);
	if (n <= 0)
		return fail("cannot find my own binary: %s", strerror(errno));
	D.self[n] = 0;
	{
		char lib[PATH_MAX + 16];
		snprintf(lib, sizeof lib, "%.*s/libusnet.so", (int)(strrchr(D.self, '/') - D.self), D.self);
		if (access(lib, R_OK))
			return fail("%s is missing (build it with make)", lib);
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	snprintf(D.work, sizeof D.work, "/tmp/usnet-demo.XXXXXX");
	if (!mkdtemp(D.work)) {
		D.work[0] = 0;
		return fail("cannot make a work directory: %s", strerror(errno));
	}
	/* nginx's workers drop root and must read the files. */
	if (sh("chmod 755 %s && mkdir -m 755 %s/www && head -c %dM /dev/urandom >%s/www/file && chmod 644 %s/www/file",
	       D.work, D.work, D.mib, D.work, D.work))
		return fail("cannot write the file to serve in %s", D.work);
	char sum_sent[128];
	sh_line(sum_sent, sizeof sum_sent, "sha256sum <%s/www/file | cut -c1-64", D.work);

	if (setup_wire())
		return fail("cannot set up the namespaces and the veth pair");

	char version[128] = "";
	if (!strcmp(D.server, "nginx"))
		sh_line(version, sizeof version, "nginx -v 2>&1 | sed 's/.*version: //'");
	else
		sh_line(version, sizeof version, "python3 -V 2>&1");
	printf("usnet demo: %s, unmodified, under `usnet run --backend %s`\n",
	       !strcmp(D.server, "nginx") ? "nginx (master + 2 worker processes)" : "python3 -m http.server",
	       D.backend);
	printf("  server:  %s on usnet's user-space TCP/IP stack, " DEMO_NET ".2:%d, veth %s in namespace %s\n",
	       version, DEMO_PORT, D.veth_srv, D.ns_srv);
	printf("  client:  curl on the Linux kernel's stack, " DEMO_NET ".1, veth %s in namespace %s\n",
	       D.veth_cli, D.ns_cli);
	fflush(stdout);

	if (start_server()) {
		char log[512] = "";
		sh_line(log, sizeof log, "tail -c 400 %s/server.log 2>/dev/null | tr '\\n' ' '", D.work);
		return fail("the server did not answer on " DEMO_NET ".2:%d: %s", DEMO_PORT, log);
	}

	int ok = 0, done = 0;
	unsigned long long bytes = 0;
	double transfer_s = 0;   /* curl's own time: the transfers, not the checks between them */
	char sum_bad[128] = "";
	double t0 = now_s();
	for (int i = 0; i < D.requests; i++) {
		char line[256];
		if (sh_line(line, sizeof line,
			    "ip netns exec %s curl -sS -m 20 -o %s/got -w '%%{size_download} %%{time_total}' http://" DEMO_NET
			    ".2:%d/file 2>%s/curl.err", D.ns_cli, D.work, DEMO_PORT, D.work) != 0)
			break;   /* the error is shown below */
		done++;
		char *end;
		bytes += strtoull(line, &end, 10);
		transfer_s += strtod(end, NULL);
		char sum[128];
		sh_line(sum, sizeof sum, "sha256sum <%s/got | cut -c1-64", D.work);
		if (!strcmp(sum, sum_sent))
			ok++;
		else
			snprintf(sum_bad, sizeof sum_bad, "%s", sum);
	}
	double secs = now_s() - t0;
	if (secs <= 0)
		secs = 1e-6;

	usleep(1300000);   /* the server's processes publish their counters once a second */
	char stats[8192];
	read_stack_stats(stats, sizeof stats);
	stop_server();

	printf("  requests: %d of %d completed (GET /file, %d MiB each, one connection each), %d intact\n",
	       done, D.requests, D.mib, ok);
	if (transfer_s <= 0)
		transfer_s = secs;
	printf("  bytes:    %llu moved in %.2f s of transfers (%.2f Gbit/s; %.2f s with the checks)\n", bytes,
	       transfer_s, (double)bytes * 8 / transfer_s / 1e9, secs);
	printf("  sha256:   %s served\n", sum_sent);
	printf("            %s received%s\n", sum_bad[0] ? sum_bad : sum_sent,
	       ok == D.requests ? " (every copy)" : " (a bad copy)");
	if (stats[0]) {
		printf("  stack:    %llu connections accepted, %llu segments in, %llu out, "
		       "%llu retransmitted (%llu timeouts), %llu frames in, %llu out\n",
		       stat_value(stats, "tcp_accepted"), stat_value(stats, "tcp_rx"), stat_value(stats, "tcp_tx"),
		       stat_value(stats, "tcp_retrans"), stat_value(stats, "tcp_rto"),
		       stat_value(stats, "rx_frames"), stat_value(stats, "tx_frames"));
	} else {
		printf("  stack:    no counters published (the server's processes had no statistics file)\n");
	}
	if (ok != D.requests || !stats[0]) {
		char err[512] = "";
		sh_line(err, sizeof err, "cat %s/curl.err %s/server.log 2>/dev/null | tail -c 400 | tr '\\n' ' '",
			D.work, D.work);
		return fail("FAILED: %d of %d downloads intact. %s", ok, D.requests, err);
	}
	printf("  OK: every download arrived intact through the user-space stack\n");
	cleanup();
	return 0;
}
