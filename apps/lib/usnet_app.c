/*
 * usnet — the native application runtime (see usnet_app.h): one stack
 * instance on one netif queue, driven from the calling thread.
 *
 * The loop is: take received frames in batches and hand them to the stack,
 * run the stack's timers when they are due, make queued frames leave, and
 * when there was nothing to do spin a little (busy_poll_us) before sleeping
 * in ppoll() on the netif's wait fd, bounded by the next timer.
 *
 * Transmissions are kicked once per pass, not once per API call: the stack
 * sees the netif through a tx defer wrapper (a flush there only notes one is
 * owed), and the loop flushes the real netif after each pass, so replies
 * to a whole batch of requests leave in one system call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "usnet/netif_wrap.h"
#include "usnet_app.h"

/* Frames taken from the netif per rx_burst() call. */
#define APP_RX_BATCH 64
/* Batches handled per poll before timers and the caller get a turn. */
#define APP_RX_BATCHES_PER_POLL 8
/* Timers are re-read at least this often while busy: a send or a received
 * segment may have armed a timer earlier than the deadline we remember. */
#define APP_TIMER_REFRESH_NS 1000000ull
/* Frames a pass may queue before they leave without waiting for its end: a
 * bound for long passes only (ping-pong and memcached passes queue 1 to 30
 * replies, and a bound that cuts them into smaller kicks measured slower). */
#define APP_TX_DEFER_MAX 64
/* Sleep bound when the netif has no wait fd (the caller then polls). */
#define APP_NO_WAIT_FD_SLEEP_NS 1000000ull

struct usnet_app {
	struct usnet_netif *netif;
	int own_netif;              /* opened here, closed by usnet_app_close() */
	void *arena;
	size_t arena_bytes;         /* what the stack asked for */
	size_t arena_mapped;        /* what was mapped (page multiple) */
	struct usnet_stack *stack;
	struct usnet_io io;
	struct usnet_tx_defer tx_defer; /* io.netif once the loop drives it */
	uint64_t next_deadline;     /* from the last usnet_stack_poll() */
	uint64_t timers_run_at;     /* when usnet_stack_poll() last ran */
	uint64_t busy_poll_ns;
	struct pollfd *pfds;        /* caller fds + the wait fd, for ppoll() */
	unsigned pfds_cap;
};

void usnet_app_config_init(struct usnet_app_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->netif.queues = 1;
	cfg->busy_poll_us = 50;
}

uint64_t usnet_app_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int usnet_app_parse_ip(const char *s, uint32_t *ip)
{
	struct in_addr a;
	/* inet_pton() takes exactly four decimal octets (no shorthand forms,
	 * no trailing junk), which is what a person means by an address. */
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

/* "ADDR/N": ADDR into addr (addrlen bytes with its NUL) and N, at most
 * max, into *n; 0 or -EINVAL. */
static int split_cidr(const char *s, char *addr, size_t addrlen, long max, long *n)
{
	const char *slash;
	char *end;

	if (!s || !(slash = strrchr(s, '/')))
		return -EINVAL;
	if ((size_t)(slash - s) >= addrlen)
		return -EINVAL;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	errno = 0;
	*n = strtol(slash + 1, &end, 10);
	if (errno || *end || *n < 0 || *n > max)
		return -EINVAL;
	return 0;
}

int usnet_app_parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix_len)
{
	char addr[INET_ADDRSTRLEN];
	long n;

	if (split_cidr(s, addr, sizeof addr, 32, &n) || usnet_app_parse_ip(addr, ip))
		return -EINVAL;
	*prefix_len = (uint8_t)n;
	return 0;
}

int usnet_app_parse_ip6(const char *s, uint8_t ip6[16])
{
	char addr[INET6_ADDRSTRLEN];
	size_t len;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof addr)
		return -EINVAL;
	memcpy(addr, s, len);
	addr[len] = '\0';
	/* inet_pton() takes no zone ("%eth0") and no trailing junk: an
	 * instance has one interface, so a link-local address needs none. */
	return inet_pton(AF_INET6, addr, ip6) == 1 ? 0 : -EINVAL;
}

int usnet_app_parse_cidr6(const char *s, uint8_t ip6[16], uint8_t *prefix_len)
{
	char addr[INET6_ADDRSTRLEN + 2];
	long n;

	if (split_cidr(s, addr, sizeof addr, 128, &n) || usnet_app_parse_ip6(addr, ip6))
		return -EINVAL;
	*prefix_len = (uint8_t)n;
	return 0;
}

const char usnet_app_ip6_usage[] =
"  --ip6 ADDR/PREFIX  an IPv6 address of this stack and its on-link prefix\n"
"                     (repeatable, up to 4); the stack also takes fe80::\n"
"                     from its MAC and checks every address for duplicates\n"
"                     (DAD) before it starts\n"
"  --gw6 ADDR         default IPv6 router (link-local or global)\n";

int usnet_app_ip6_option(struct usnet_app_ip6 *v6, const char *name, const char *value,
			 char *err, size_t errlen)
{
	uint8_t a[16], plen;

	if (name[0] == '-' && name[1] == '-')
		name += 2;
	if (strcmp(name, "ip6") == 0) {
		if (usnet_app_parse_cidr6(value, a, &plen)) {
			snprintf(err, errlen, "--ip6 wants ADDR/PREFIX like 2001:db8::2/64, not '%s'",
				 value ? value : "");
			return -EINVAL;
		}
		/* What no interface can hold as its own unicast address. */
		static const uint8_t zero[16];
		static const uint8_t loopback[16] = { [15] = 1 };
		if (memcmp(a, zero, 16) == 0 || memcmp(a, loopback, 16) == 0 || a[0] == 0xff) {
			snprintf(err, errlen, "--ip6 %s: not a unicast address for this stack", value);
			return -EINVAL;
		}
		if (v6->n >= USNET_IP6_ADDRS) {
			snprintf(err, errlen, "--ip6 %s: at most %d IPv6 addresses", value, USNET_IP6_ADDRS);
			return -EINVAL;
		}
		memcpy(v6->addr[v6->n], a, 16);
		v6->prefix_len[v6->n] = plen;
		v6->n++;
		return 0;
	}
	if (strcmp(name, "gw6") == 0) {
		if (usnet_app_parse_ip6(value, a) || a[0] == 0xff) {
			snprintf(err, errlen, "--gw6 wants a unicast IPv6 address like fe80::1, not '%s'",
				 value ? value : "");
			return -EINVAL;
		}
		memcpy(v6->gateway, a, 16);
		return 0;
	}
	return 1;
}

static void app_free(struct usnet_app *app)
{
	if (app->arena)
		munmap(app->arena, app->arena_mapped);
	if (app->own_netif && app->netif)
		usnet_netif_close(app->netif);
	free(app->pfds);
	free(app);
}

/* usnet_io.flow_queue: the queue the backend puts such frames on (asked of
 * the real netif: io->netif may be the runtime's transmit wrapper). */
static int app_flow_queue(struct usnet_io *io, uint8_t proto, uint32_t src_ip, uint16_t src_port,
			  uint32_t dst_ip, uint16_t dst_port)
{
	struct usnet_app *app = (struct usnet_app *)((char *)io - offsetof(struct usnet_app, io));
	return usnet_netif_flow_queue(app->netif, proto, src_ip, src_port, dst_ip, dst_port);
}

static int app_wait_dad(struct usnet_app *app, char *err, size_t errlen);

struct usnet_app *usnet_app_open(const struct usnet_app_config *cfg, char *err, size_t errlen)
{
	struct usnet_stack_config sc;
	struct usnet_app *app;
	int rc;

	if (errlen)
		err[0] = '\0';
	app = calloc(1, sizeof *app);
	if (!app) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (cfg->shared_netif) {
		app->netif = cfg->shared_netif;
	} else {
		if (!cfg->netif.backend || !cfg->netif.iface) {
			snprintf(err, errlen, "no backend/interface given");
			free(app);
			return NULL;
		}
		struct usnet_netif_config ncfg = cfg->netif;
		if (!ncfg.ipv4)
			ncfg.ipv4 = cfg->ip;   /* lets afxdp steer our address to us */
		if (cfg->ip6.n && !ncfg.ipv6_count) {
			/* ... and our IPv6 addresses, with ND about them */
			for (unsigned i = 0; i < cfg->ip6.n && i < USNET_NETIF_IPV6_MAX; i++)
				memcpy(ncfg.ipv6[i], cfg->ip6.addr[i], 16);
			ncfg.ipv6_count = (uint8_t)(cfg->ip6.n < USNET_NETIF_IPV6_MAX ? cfg->ip6.n : USNET_NETIF_IPV6_MAX);
			ncfg.ipv6_link_local = 1;
		}
		rc = usnet_netif_open(&ncfg, &app->netif, err, errlen);
		if (rc < 0) {
			if (errlen && !err[0])
				snprintf(err, errlen, "cannot open %s backend on %s: %s",
					 cfg->netif.backend, cfg->netif.iface, strerror(-rc));
			free(app);
			return NULL;
		}
		app->own_netif = 1;
	}
	if (cfg->queue >= app->netif->info.nqueues && app->netif->info.nqueues) {
		snprintf(err, errlen, "queue %u out of range: %s has %u queue(s)",
			 cfg->queue, app->netif->info.ifname, app->netif->info.nqueues);
		app_free(app);
		return NULL;
	}
	if (cfg->ip == 0) {
		snprintf(err, errlen, "no IPv4 address given");
		app_free(app);
		return NULL;
	}

	usnet_stack_config_init(&sc);
	memcpy(sc.mac, app->netif->info.mac, sizeof sc.mac);
	sc.ip = cfg->ip;
	sc.prefix_len = cfg->prefix_len;
	sc.gateway = cfg->gateway;
	if (app->netif->info.mtu)
		sc.mtu = app->netif->info.mtu;
	sc.netif_caps = app->netif->info.caps;
	if (cfg->max_sockets)
		sc.max_sockets = cfg->max_sockets;
	if (cfg->buffer_bytes)
		sc.buffer_bytes = cfg->buffer_bytes;
	if (cfg->sndbuf)
		sc.sndbuf = cfg->sndbuf;
	if (cfg->rcvbuf)
		sc.rcvbuf = cfg->rcvbuf;
	if (getrandom(sc.secret, sizeof sc.secret, 0) != (ssize_t)sizeof sc.secret) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		app_free(app);
		return NULL;
	}
	if (cfg->ip6.n) {
		sc.ip6_link_local = 1;
		for (unsigned i = 0; i < cfg->ip6.n && i < USNET_IP6_ADDRS; i++) {
			memcpy(sc.ip6[i], cfg->ip6.addr[i], 16);
			sc.ip6_prefix_len[i] = cfg->ip6.prefix_len[i];
		}
		memcpy(sc.ip6_gateway, cfg->ip6.gateway, 16);
		if (cfg->ip6_no_dad)
			sc.ip6_dad_transmits = 0;
	}
	if (app->netif->info.nqueues > 1) {
		/* outgoing connections get local ports whose replies the
		 * backend steers to this instance's queue */
		sc.rss_queues = app->netif->info.nqueues;
		sc.rss_queue = cfg->queue;
	}

	app->arena_bytes = usnet_stack_mem_size(&sc);
	if (app->arena_bytes == 0) {
		snprintf(err, errlen, "invalid stack configuration");
		app_free(app);
		return NULL;
	}
	/* Anonymous mappings are page aligned, which covers the 64 bytes the
	 * stack asks for; pages are only touched as the stack uses them. */
	app->arena_mapped = (app->arena_bytes + 4095) & ~(size_t)4095;
	app->arena = mmap(NULL, app->arena_mapped, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (app->arena == MAP_FAILED) {
		app->arena = NULL;
		snprintf(err, errlen, "cannot map %zu bytes for the stack: %s",
			 app->arena_mapped, strerror(errno));
		app_free(app);
		return NULL;
	}
	app->stack = usnet_stack_create(app->arena, app->arena_mapped, &sc);
	if (!app->stack) {
		snprintf(err, errlen, "stack rejected its configuration (ip/prefix/sizes)");
		app_free(app);
		return NULL;
	}
	app->io.netif = app->netif;
	app->io.queue = cfg->queue;
	app->io.on_event = cfg->on_event;
	app->io.ctx = cfg->ctx;
	app->io.flow_queue = app->netif->info.nqueues > 1 ? app_flow_queue : NULL;
	app->busy_poll_ns = cfg->busy_poll_us > 0 ? (uint64_t)cfg->busy_poll_us * 1000ull : 0;
	app->next_deadline = 0;   /* run timers on the first poll */
	if (cfg->ip6.n && !cfg->ip6_no_dad && app_wait_dad(app, err, errlen) < 0) {
		app_free(app);
		return NULL;
	}
	return app;
}

/* From the first poll on, the stack's flushes wait for the loop's (the
 * loop is then known to be running, and flushes after every pass). */
static void app_defer_tx(struct usnet_app *app)
{
	if (app->io.netif != app->netif)
		return;
	usnet_tx_defer_init(&app->tx_defer, app->netif, APP_TX_DEFER_MAX);
	app->io.netif = &app->tx_defer.base;
}

int usnet_app_flush(struct usnet_app *app)
{
	if (app->io.netif == &app->tx_defer.base)
		return usnet_tx_defer_flush(&app->tx_defer, app->io.queue);
	return usnet_netif_flush(app->netif, app->io.queue);
}

void usnet_app_close(struct usnet_app *app)
{
	if (!app)
		return;
	/* Frames queued since the last pass (a final FIN, say) still leave. */
	usnet_app_flush(app);
	app_free(app);
}

struct usnet_stack *usnet_app_stack(struct usnet_app *app) { return app->stack; }
struct usnet_io *usnet_app_io(struct usnet_app *app) { return &app->io; }
struct usnet_netif *usnet_app_netif(struct usnet_app *app) { return app->netif; }
size_t usnet_app_arena_bytes(struct usnet_app *app) { return app->arena_bytes; }

/* Hand waiting frames to the stack.  Returns frames processed or -errno. */
static int app_receive(struct usnet_app *app, uint64_t now)
{
	struct usnet_pkt pkts[APP_RX_BATCH];
	int total = 0;

	for (int b = 0; b < APP_RX_BATCHES_PER_POLL; b++) {
		int n = usnet_netif_rx_burst(app->netif, app->io.queue, pkts, APP_RX_BATCH);
		if (n < 0)
			return total ? total : n;
		if (n == 0)
			break;
		usnet_stack_input(app->stack, &app->io, pkts, (unsigned)n, now);
		usnet_netif_rx_release(app->netif, app->io.queue, pkts, (unsigned)n);
		total += n;
		if (n < APP_RX_BATCH)
			break;
	}
	return total;
}

static void app_run_timers(struct usnet_app *app, uint64_t now)
{
	app->next_deadline = usnet_stack_poll(app->stack, &app->io, now);
	app->timers_run_at = now;
}

/* Timers due, or our idea of the next deadline possibly stale. */
static void app_maybe_run_timers(struct usnet_app *app, uint64_t now)
{
	if (now >= app->next_deadline || now - app->timers_run_at >= APP_TIMER_REFRESH_NS)
		app_run_timers(app, now);
}

/* Drive the stack until no IPv6 address is tentative (RFC 4862: the
 * stack probes each address, then uses it if nobody answered).  Before the
 * event loop runs: frames leave at once (no tx defer yet).  0, or -1 with
 * the duplicate (or the address still undecided) named in err. */
static int app_wait_dad(struct usnet_app *app, char *err, size_t errlen)
{
	uint64_t start = usnet_app_now();
	uint64_t end = start + (uint64_t)USNET_APP_DAD_WAIT_MS * 1000000ull;
	int wfd = usnet_netif_wait_fd(app->netif, app->io.queue);

	for (;;) {
		uint64_t now = usnet_app_now();
		if (app_receive(app, now) < 0) {
			snprintf(err, errlen, "netif failed while checking IPv6 addresses for duplicates");
			return -1;
		}
		app_run_timers(app, now);
		usnet_netif_flush(app->netif, app->io.queue);

		int tentative = -1;
		for (unsigned i = 0; i <= USNET_IP6_ADDRS; i++) {
			uint8_t a[16];
			char text[INET6_ADDRSTRLEN];
			int state = usnet_ip6_addr(app->stack, i, a, NULL);
			if (state == USNET_IP6_ADDR_DUPLICATE) {
				inet_ntop(AF_INET6, a, text, sizeof text);
				snprintf(err, errlen, "IPv6 address %s is already in use on %s "
					 "(duplicate address detection)", text, app->netif->info.ifname);
				return -1;
			}
			if (state == USNET_IP6_ADDR_TENTATIVE && tentative < 0)
				tentative = (int)i;
		}
		if (tentative < 0)
			return 0;
		if (now >= end) {
			uint8_t a[16];
			char text[INET6_ADDRSTRLEN];
			usnet_ip6_addr(app->stack, (unsigned)tentative, a, NULL);
			inet_ntop(AF_INET6, a, text, sizeof text);
			snprintf(err, errlen, "IPv6 address %s still tentative after %d ms of duplicate "
				 "address detection", text, USNET_APP_DAD_WAIT_MS);
			return -1;
		}
		/* Sleep until a frame, the stack's next timer or the end. */
		uint64_t wake = app->next_deadline < end ? app->next_deadline : end;
		if (wfd < 0 && wake > now + APP_NO_WAIT_FD_SLEEP_NS)
			wake = now + APP_NO_WAIT_FD_SLEEP_NS;
		uint64_t d = wake > now ? wake - now : 0;
		struct timespec ts = { .tv_sec = (time_t)(d / 1000000000ull),
				       .tv_nsec = (long)(d % 1000000000ull) };
		struct pollfd pfd = { .fd = wfd, .events = POLLIN };
		if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR) {
			snprintf(err, errlen, "ppoll: %s", strerror(errno));
			return -1;
		}
	}
}

/* Poll the caller's fds without sleeping; >0 when one is ready. */
static int app_peek_fds(struct pollfd *fds, unsigned nfds)
{
	if (!nfds)
		return 0;
	int r = poll(fds, nfds, 0);
	return r < 0 ? 0 : r;
}

static int app_reserve_pfds(struct usnet_app *app, unsigned n)
{
	if (n <= app->pfds_cap)
		return 0;
	struct pollfd *p = realloc(app->pfds, n * sizeof *p);
	if (!p)
		return -ENOMEM;
	app->pfds = p;
	app->pfds_cap = n;
	return 0;
}

int usnet_app_poll_fds(struct usnet_app *app, struct pollfd *fds, unsigned nfds, int timeout_ms)
{
	if (__builtin_expect(app->io.netif == app->netif, 0))
		app_defer_tx(app);
	uint64_t now = usnet_app_now();
	int n = app_receive(app, now);

	if (n < 0)
		return n;
	app_maybe_run_timers(app, now);
	usnet_app_flush(app);
	if (n > 0 || timeout_ms == 0) {
		app_peek_fds(fds, nfds);
		return n;
	}

	/* Nothing arrived: spin a little first, since sleeping and waking up
	 * again costs more than a short wait for the next frame. */
	uint64_t start = now;
	uint64_t limit = timeout_ms > 0 ? start + (uint64_t)timeout_ms * 1000000ull : UINT64_MAX;
	uint64_t spin_end = start + app->busy_poll_ns;
	if (spin_end > limit)
		spin_end = limit;
	while (now < spin_end) {
		if (app_peek_fds(fds, nfds) > 0)
			return 0;
		now = usnet_app_now();
		n = app_receive(app, now);
		if (n != 0) {
			if (n > 0) {
				app_maybe_run_timers(app, now);
				usnet_app_flush(app);
			}
			return n;
		}
		if (now >= app->next_deadline) {
			app_run_timers(app, now);
			usnet_app_flush(app);
		}
	}

	/* Sleep on the wait fd and the caller's fds until a frame, an fd or the
	 * next timer; re-read the deadline first, a send may have armed one. */
	app_run_timers(app, now);
	usnet_app_flush(app);
	uint64_t wake = app->next_deadline < limit ? app->next_deadline : limit;
	int wfd = usnet_netif_wait_fd(app->netif, app->io.queue);
	if (wfd < 0 && wake > now + APP_NO_WAIT_FD_SLEEP_NS)
		wake = now + APP_NO_WAIT_FD_SLEEP_NS;
	if (app_reserve_pfds(app, nfds + 1))
		return -ENOMEM;
	if (nfds)
		memcpy(app->pfds, fds, nfds * sizeof *fds);
	app->pfds[nfds].fd = wfd;
	app->pfds[nfds].events = POLLIN;
	app->pfds[nfds].revents = 0;

	struct timespec ts, *tsp = NULL;
	if (wake != UINT64_MAX) {
		uint64_t d = wake > now ? wake - now : 0;
		ts.tv_sec = (time_t)(d / 1000000000ull);
		ts.tv_nsec = (long)(d % 1000000000ull);
		tsp = &ts;
	}
	int r = ppoll(app->pfds, nfds + 1, tsp, NULL);
	if (r < 0 && errno != EINTR)
		return -errno;
	for (unsigned i = 0; i < nfds; i++)
		fds[i].revents = r > 0 ? app->pfds[i].revents : 0;

	now = usnet_app_now();
	n = app_receive(app, now);
	if (n < 0)
		return n;
	app_maybe_run_timers(app, now);
	usnet_app_flush(app);
	return n;
}

int usnet_app_poll(struct usnet_app *app, int timeout_ms)
{
	return usnet_app_poll_fds(app, NULL, 0, timeout_ms);
}

int usnet_app_run_until(struct usnet_app *app, int (*done)(void *arg), void *arg, int timeout_ms)
{
	uint64_t end = timeout_ms >= 0 ? usnet_app_now() + (uint64_t)timeout_ms * 1000000ull : UINT64_MAX;

	for (;;) {
		if (done(arg))
			return 0;
		uint64_t now = usnet_app_now();
		if (now >= end)
			return -ETIMEDOUT;
		int wait = -1;
		if (end != UINT64_MAX) {
			uint64_t left_ms = (end - now + 999999ull) / 1000000ull;
			wait = left_ms > 1000000 ? 1000000 : (int)left_ms;
		}
		int r = usnet_app_poll(app, wait);
		if (r < 0 && r != -EINTR)
			return r;
	}
}

/* The counters of struct usnet_stack_stats by the names `usnet stat` gives
 * them (USNET_STACK_STATS). */
#define APP_STAT64(f) { #f, offsetof(struct usnet_stack_stats, f), 8 },
#define APP_STAT32(f) { #f, offsetof(struct usnet_stack_stats, f), 4 },
static const struct { const char *name; size_t off; unsigned size; } app_stat_fields[] = {
	USNET_STACK_STATS(APP_STAT64, APP_STAT32)
};
#undef APP_STAT64
#undef APP_STAT32

void usnet_app_print_stats(struct usnet_app *app, FILE *f, const char *prefix)
{
	struct usnet_stack_stats st;
	usnet_stack_stats(app->stack, &st);
	for (size_t k = 0; k < sizeof app_stat_fields / sizeof app_stat_fields[0]; k++) {
		const char *p = (const char *)&st + app_stat_fields[k].off;
		uint64_t v;
		if (app_stat_fields[k].size == 8) {
			memcpy(&v, p, 8);
		} else {
			uint32_t v32;
			memcpy(&v32, p, 4);
			v = v32;
		}
		fprintf(f, "%s%s %llu\n", prefix ? prefix : "", app_stat_fields[k].name, (unsigned long long)v);
	}
}
