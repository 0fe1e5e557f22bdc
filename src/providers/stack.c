/*
 * usnet provider "usnet": sockets on usnet's own TCP/IP stack, on a netif
 * opened with usnet_netif_open() from the `usnet run` options.
 *
 * The stack's instances, one per receive queue (stack_inst.c), live in one
 * MAP_SHARED mapping together with their process-shared (robust) locks, so
 * a forked child keeps using the same stack at the same address (nginx's
 * master and workers, a daemonising fork), and processes attached to the
 * interface's owner map the same memory anywhere (it holds offsets, not
 * pointers).  Each call takes its socket's instance's lock, runs the stack,
 * flushes that instance's queue, unlocks (a send with transmit batching on
 * leaves the flush to the switch).
 *
 * Policy: AF_INET/AF_INET6 TCP and UDP are the stack's; a socket bound to
 * loopback or to an address the stack does not own, or connected to
 * loopback or to a destination it has no route for, is handed over to the
 * kernel; with a gateway, so is a destination the kernel routes through
 * another interface (kernel_route.c).  The stack's own address is the
 * stack's (it loops back to itself: every process attached to the stack can
 * reach the others' listeners), but in host-address mode, where the kernel
 * shares it, a port that is not the stack's is the kernel's (host_addr.c).
 * AF_INET6 sockets: with IPv6 on the stack (USNET_IP6) they are the
 * stack's IPv6 sockets, dual-stack per IPV6_V6ONLY (default
 * net.ipv6.bindv6only), with the same policy as IPv4: :: and the stack's
 * addresses bind on the stack, ::1 and others are the kernel's; connects
 * and datagrams go to the stack for its own addresses, its link-local
 * scope, its prefixes and, with --gw6 or a default router learned from
 * Router Advertisements, every other unicast address, to ::1 when a stack
 * socket takes it (stack_ip6.c).  Without IPv6 on the
 * stack they are dual-stack for IPv4 peers (IPv4-mapped addresses), and
 * IPV6_V6ONLY sockets and native IPv6 addresses go to the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/sockios.h>
#include <time.h>

#include "usnet/netif_share.h"
#include "usnet/netif_wrap.h"

#include "builtin.h"
#include "host_addr.h"
#include "kernel_route.h"
#include "stack_ip6.h"
#include "stack_prov.h"

/*
 * The switch's transmit batching calls (builtin.h) carry no ctx: they act
 * on the provider this process image initialised (the switch runs one).
 */
static struct prov *batching_prov;

/* The io a sendmsg, a recvmsg or an uncork runs the stack on. */
struct usnet_io *stack_prov_io_for_data(struct inst *in)
{
	return in->p->tx_batch ? &in->held_io : &in->io;
}

void usnet_stack_prov_tx_batch(int on)
{
	if (batching_prov)
		batching_prov->tx_batch = on != 0;
}

int usnet_stack_prov_flush(int wait)
{
	struct prov *p = batching_prov;
	if (!p || !p->sh)
		return 0;
	int r = 0;
	for (uint16_t i = 0; i < p->ninst; i++) {
		struct inst *in = &p->in[i];
		if (!in->held)
			continue;
		if (wait) {
			inst_lock(in);
		} else if (!inst_trylock(in)) {
			r = -EBUSY;
			continue;
		}
		inst_unlock(in);
	}
	return r;
}

/* The end of a sendmsg, a recvmsg or an uncork: the flush waits when
 * batching. */
void stack_prov_unlock_io(struct inst *in)
{
	if (in->p->tx_batch) {
		in->held = true;
		inst_unlock_quiet(in);
	} else {
		inst_unlock(in);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_event(struct usnet_io *io, usnet_sock_t s, uint32_t events, uint64_t user)
{
	(void)s;
	struct inst *in = io->ctx;
	in->p->host->notify(in->p->host->host, user, events);
}

/* ---- handles ------------------------------------------------------------- */

static usnet_psock_t handle_of(const struct prov *p, uint16_t q, usnet_sock_t s)
{
	return (usnet_psock_t)q * p->sh->max_sockets + (uint32_t)s;
}

struct inst *stack_prov_sock(struct prov *p, usnet_psock_t ps, usnet_sock_t *s)
{
	int32_t moved = p->meta[ps].moved_to;
	if (moved > 0)
		ps = (usnet_psock_t)(moved - 1);
	*s = (usnet_sock_t)(ps % p->sh->max_sockets);
	return &p->in[ps / p->sh->max_sockets];
}

/* The copy of group ps on instance j, or -1. */
static usnet_sock_t member(const struct prov *p, usnet_psock_t ps, uint16_t j)
{
	return p->members[ps * p->ninst + j] - 1;
}

/* Options a listener's copies take over from it (and accepted connections
 * from them). */
static const enum usnet_sockopt copied_opts[] = {
	USNET_SO_REUSEADDR, USNET_SO_REUSEPORT, USNET_SO_KEEPALIVE, USNET_SO_LINGER, USNET_SO_RCVBUF,
	USNET_SO_SNDBUF, USNET_TCP_NODELAY, USNET_TCP_KEEPIDLE, USNET_TCP_KEEPINTVL, USNET_TCP_KEEPCNT,
	USNET_TCP_CONGESTION, USNET_TCP_MAXSEG,
};
#define N_COPIED_OPTS (sizeof copied_opts / sizeof copied_opts[0])

struct sock_template {
	struct usnet_addr local;
	bool v6;                 /* an IPv6 socket, */
	int v6only;              /* ... and its IPV6_V6ONLY */
	uint64_t user;
	int opt[N_COPIED_OPTS];
	bool has[N_COPIED_OPTS];
};

/* What a copy of socket s needs (in's lock held). */
static void template_of(struct inst *in, usnet_sock_t s, struct sock_template *t)
{
	memset(t, 0, sizeof *t);
	usnet_getsockname(in->st, s, &t->local);
	t->v6 = usnet_sock_family(in->st, s) == USNET_AF_INET6;
	if (t->v6)
		usnet_getsockopt(in->st, s, USNET_IPV6_V6ONLY, &t->v6only);
	t->user = usnet_sock_get_user(in->st, s);
	for (size_t i = 0; i < N_COPIED_OPTS; i++)
		t->has[i] = usnet_getsockopt(in->st, s, copied_opts[i], &t->opt[i]) == 0;
}

/* A new TCP socket on instance `in` like the template, bound to its address
 * (in's lock held); the socket, or a negative errno. */
static int copy_on(struct inst *in, const struct sock_template *t)
{
	int c = usnet_socket(in->st, USNET_SOCK_STREAM | (t->v6 ? USNET_SOCK_V6 : 0));
	if (c < 0)
		return c == -USNET_ENOMEM || c == -USNET_ENFILE ? -ENFILE : c;
	usnet_sock_set_user(in->st, c, t->user);
	if (t->v6)
		usnet_setsockopt(in->st, c, USNET_IPV6_V6ONLY, t->v6only);
	for (size_t i = 0; i < N_COPIED_OPTS; i++)
		if (t->has[i])
			usnet_setsockopt(in->st, c, copied_opts[i], t->opt[i]);
	int r = usnet_bind(in->st, c, &t->local);
	if (r < 0) {
		usnet_close(in->st, &in->io, c, now_ns());
		return r;
	}
	return c;
}

int stack_prov_setopt(struct prov *p, usnet_psock_t ps, enum usnet_sockopt o, int v)
{
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	/* An option sends nothing (usnet_setsockopt has no io): the unlocks
	 * are quiet, and frames held for the switch's flush stay held (nginx
	 * sets TCP_CORK twice a reply, between the replies of one batch). */
	inst_lock(in);
	int r = usnet_setsockopt(in->st, s, o, v);
	inst_unlock_quiet(in);
	if (r < 0 || !p->meta[ps].group)
		return r;
	for (uint16_t j = 0; j < p->ninst; j++) {
		usnet_sock_t c = member(p, ps, j);
		if (c < 0)
			continue;
		inst_lock(&p->in[j]);
		usnet_setsockopt(p->in[j].st, c, o, v);
		inst_unlock_quiet(&p->in[j]);
	}
	return r;
}

static void logf_(struct prov *p, int level, const char *fmt, const char *a)
{
	char line[256];
	snprintf(line, sizeof line, fmt, a);
	p->host->log(p->host->host, level, line);
}

static int parse_cidr(const char *s, uint32_t *ip, uint32_t *prefix)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	*prefix = slash ? (uint32_t)atoi(slash + 1) : 32;
	return *prefix > 32 ? -1 : 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* Set by the switch when this process attached to its interface's owner. */
static struct {
	int state_fd;   /* -1: not attached */
	int init;
	const struct usnet_netif_share *share;
} attached = { -1, 0, NULL };

void usnet_stack_prov_attach(int state_fd, int init, const struct usnet_netif_share *share)
{
	attached.state_fd = state_fd;
	attached.init = init;
	attached.share = share;
}

/* The netif: the owner's, attached (with this process's wrappers), or
 * opened by this process itself. */
static int netif_get(struct prov *p, const struct usnet_netif_config *nc, char *err, size_t errlen)
{
	if (attached.state_fd < 0)
		return usnet_netif_open(nc, &p->nif, err, errlen);
	int r = usnet_netif_attach(attached.share, &p->nif, err, errlen);
	if (r == 0 && nc->impair && nc->impair[0]) {
		struct usnet_netif *w;
		if ((r = usnet_impair_wrap(p->nif, nc->impair, &w, err, errlen)) == 0)
			p->nif = w;
	}
	if (r == 0 && nc->pcap && nc->pcap[0]) {
		struct usnet_netif *w;
		if ((r = usnet_pcap_wrap(p->nif, nc->pcap, &w, err, errlen)) == 0)
			p->nif = w;
	}
	return r;
}

/* The shared mapping of `total` bytes: anonymous (this process and its
 * forked children), or the attached state, made by this process (*made)
 * or joined where its maker mapped it. */
static void *state_map(size_t total, bool *made, char *err, size_t errlen)
{
	*made = true;
	if (attached.state_fd < 0) {
		void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED) {
			snprintf(err, errlen, "cannot map %zu MiB for the stack", total >> 20);
			return NULL;
		}
		return m;
	}
	struct stat st;
	if (fstat(attached.state_fd, &st) != 0 || (uint64_t)st.st_size < total) {
		snprintf(err, errlen, "the stack's shared memory is smaller than its %zu MiB", total >> 20);
		return NULL;
	}
	if (attached.init) {
		void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, attached.state_fd, 0);
		if (m == MAP_FAILED) {
			snprintf(err, errlen, "cannot map the stack's shared memory: %s", strerror(errno));
			return NULL;
		}
		return m;
	}
	*made = false;
	struct shared_head *h = mmap(NULL, 4096, PROT_READ, MAP_SHARED, attached.state_fd, 0);
	if (h == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the stack's shared memory: %s", strerror(errno));
		return NULL;
	}
	uint32_t magic = atomic_load(&h->magic);
	uint64_t size = h->total;
	munmap(h, 4096);
	if (magic != SHARED_HEAD_MAGIC || size != total) {
		snprintf(err, errlen, "the stack's shared memory is not what this configuration makes");
		return NULL;
	}
	/* Anywhere: the stack arena holds offsets, not pointers. */
	void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, attached.state_fd, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the stack's shared memory: %s", strerror(errno));
		return NULL;
	}
	return m;
}

/* Value number `index` (from 0) of a sysctl (tcp_rmem holds three), or
 * `otherwise` when it cannot be read. */
static long sysctl_nth(const char *name, int index, long otherwise)
{
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/%s", name);
	FILE *f = fopen(path, "re");
	if (!f)
		return otherwise;
	long v = otherwise;
	for (int i = 0; i <= index; i++)
		if (fscanf(f, "%ld", &v) != 1) {
			v = otherwise;
			break;
		}
	fclose(f);
	return v;
}

static int sysctl_int(const char *name, int otherwise)
{
	long v = sysctl_nth(name, 0, otherwise);
	return v < -2147483647L || v > 2147483647L ? otherwise : (int)v;
}

/* A sysctl that must lie in [lo, hi], else the stack's default d. */
static uint32_t sysctl_in(const char *name, int index, uint32_t lo, uint32_t hi, uint32_t d)
{
	long v = sysctl_nth(name, index, -1);
	return v < (long)lo || v > (long)hi ? d : (uint32_t)v;
}

/* The kernel's index of the stack's interface, for the routing policy;
 * 0 where the kernel's routes do not concern it (memwire is no kernel
 * interface; dpdk's port:N names none). */
static int kernel_ifindex_of(const struct usnet_provider_host *host, const char *backend, const char *iface)
{
	if (!strcmp(backend, "memwire"))
		return 0;
	int r = kernel_route_ifindex(host, iface);
	return r > 0 ? r : 0;
}

/* Without --gw, the gateway of the kernel's default route through the
 * stack's interface, when it is on the stack's subnet (the stack reaches
 * it by ARP); else none. */
static uint32_t kernel_gateway_for(const struct prov *p)
{
	uint32_t gw = 0, mask = p->prefix ? ~0u << (32 - p->prefix) : 0;
	if (!p->kernel_ifindex || kernel_route_default_gateway(p->host, p->kernel_ifindex, &gw) < 0)
		return 0;
	return (gw & mask) == (p->ip & mask) && gw != p->ip ? gw : 0;
}

static uint64_t p_progress(void *ctx, uint64_t now);

static int p_init(const struct usnet_provider_host *host, void **ctx, char *err, size_t errlen)
{
	struct prov *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory for the provider");
		return -ENOMEM;
	}
	p->host = host;
	const char *ip = host->config(host->host, "ip");
	const char *gw = host->config(host->host, "gw");
	const char *mac = host->config(host->host, "mac");
	struct usnet_netif_config nc = {
		.backend = host->config(host->host, "backend"),
		.iface = host->config(host->host, "iface"),
		.pcap = host->config(host->host, "pcap"),
		.impair = host->config(host->host, "impair"),
		.options = host->config(host->host, "netif_options"),
		.queues = USNET_NETIF_QUEUES_ALL,
	};
	const char *queues = host->config(host->host, "queues");
	if (queues && strcmp(queues, "all")) {
		char *end;
		unsigned long n = strtoul(queues, &end, 10);
		if (*end || n < 1 || n > STACK_PROV_MAX_QUEUES) {
			snprintf(err, errlen, "USNET_QUEUES '%s' is not all or 1..%d", queues, STACK_PROV_MAX_QUEUES);
			return -EINVAL;
		}
		nc.queues = (uint16_t)n;
	}
	if (!nc.backend)
		nc.backend = "tap";
	if (!ip || parse_cidr(ip, &p->ip, &p->prefix)) {
		snprintf(err, errlen, "the stack needs an address: USNET_IP=ADDR/PREFIX (--ip)");
		return -EINVAL;
	}
	/* afxdp steers only the frames for this address to the stack; the
	 * kernel keeps everything else on the interface (its own address's
	 * ARP and traffic among them). */
	nc.ipv4 = p->ip;
	if (gw && parse_cidr(gw, &p->gw, &(uint32_t){ 0 })) {
		snprintf(err, errlen, "USNET_GW '%s' is not an IPv4 address", gw);
		return -EINVAL;
	}
	if (!nc.iface) {
		snprintf(err, errlen, "no interface: USNET_IFACE (--iface)");
		return -EINVAL;
	}
	if (mac) {
		if (parse_mac(mac, nc.mac)) {
			snprintf(err, errlen, "USNET_MAC '%s' is not a MAC address", mac);
			return -EINVAL;
		}
		nc.has_mac = 1;
	}
	int r = host_addr_configure(p, &nc, err, errlen);
	if (r < 0)
		return r;
	snprintf(p->iface, sizeof p->iface, "%s", nc.iface);
	if ((r = stack_ip6_configure(p, &nc, err, errlen)) < 0)
		return r;
	r = netif_get(p, &nc, err, errlen);
	if (r < 0)
		return r;
	p->kernel_ifindex = kernel_ifindex_of(host, nc.backend, nc.iface);
	if (!gw)
		p->gw = kernel_gateway_for(p);
	uint32_t nq = p->nif->info.nqueues ? p->nif->info.nqueues : 1;
	if (nq > STACK_PROV_MAX_QUEUES) {
		snprintf(err, errlen, "%s has %u queues; the stack serves at most %d (--queues)",
			 p->nif->info.ifname, nq, STACK_PROV_MAX_QUEUES);
		return -EINVAL;
	}
	p->ninst = (uint16_t)nq;

	struct usnet_stack_config sc;
	usnet_stack_config_init(&sc);
	memcpy(sc.mac, p->nif->info.mac, sizeof sc.mac);
	sc.ip = p->ip;
	sc.prefix_len = (uint8_t)p->prefix;
	sc.gateway = p->gw;
	if (p->nif->info.mtu)
		sc.mtu = p->nif->info.mtu;
	sc.netif_caps = p->nif->info.caps;
	const char *v;
	sc.max_sockets = (v = host->config(host->host, "sockets")) ? (uint32_t)atoi(v) : 4096;
	/* The buffer pool is split among the instances, each keeping enough
	 * for a few bulk connections. */
	uint64_t pool = (uint64_t)((v = host->config(host->host, "buffer_mb")) ? (uint32_t)atoi(v) : 128) << 20;
	pool /= p->ninst;
	if (pool < (32u << 20))
		pool = 32u << 20;
	sc.buffer_bytes = pool > (1u << 30) ? 1u << 30 : (uint32_t)pool;
	host_addr_stack_config(p, &sc);
	stack_ip6_stack_config(p, &sc);
	/* TCP buffers as the host's net.ipv4.tcp_rmem / tcp_wmem: start at
	 * the middle value, autotuned up to the last (Linux's defaults 128 KiB
	 * of 6 MiB, 16 KiB of 4 MiB).  Linux counts a buffer twice what its
	 * window or payload holds (tcp_adv_win_scale 1, and skb overhead):
	 * the stack counts the bytes, half.  Caps, not allocations: buffers
	 * come from the pool as data arrives.  UDP keeps fixed buffers. */
	sc.rcvbuf = sysctl_in("net/ipv4/tcp_rmem", 1, 4096, 1u << 30, 131072) / 2;
	sc.rcvbuf_max = sysctl_in("net/ipv4/tcp_rmem", 2, 4096, 1u << 30, 6u << 20) / 2;
	sc.sndbuf = sysctl_in("net/ipv4/tcp_wmem", 1, 4096, 1u << 30, 16384) / 2;
	sc.sndbuf_max = sysctl_in("net/ipv4/tcp_wmem", 2, 4096, 1u << 30, 4u << 20) / 2;
	if (sc.rcvbuf_max < sc.rcvbuf) sc.rcvbuf_max = sc.rcvbuf;
	if (sc.sndbuf_max < sc.sndbuf) sc.sndbuf_max = sc.sndbuf;
	p->rmem_max = sysctl_in("net/core/rmem_max", 0, 1, 1u << 30, 212992);
	p->wmem_max = sysctl_in("net/core/wmem_max", 0, 1, 1u << 30, 212992);
	sc.udp_rcvbuf = 256 * 1024;
	sc.udp_sndbuf = 1024 * 1024;
	sc.rss_queues = p->ninst;
	/* The host's TCP choices apply to the stack too (an operator's
	 * tuning of net.ipv4, read in this network namespace). */
	sc.tcp_timestamps = (uint8_t)(sysctl_int("net/ipv4/tcp_timestamps", 1) != 0);
	sc.tcp_sack = (uint8_t)(sysctl_int("net/ipv4/tcp_sack", 1) != 0);
	sc.tcp_window_scaling = (uint8_t)(sysctl_int("net/ipv4/tcp_window_scaling", 1) != 0);
	int cookies = sysctl_int("net/ipv4/tcp_syncookies", 1);
	sc.tcp_syncookies = (uint8_t)(cookies < 0 ? 0 : cookies > 2 ? 2 : cookies);
	uint32_t rmem = sysctl_in("net/ipv4/tcp_rmem", 2, 1, 1u << 30, sc.tcp_rmem_max);
	uint32_t rmem_max = sysctl_in("net/core/rmem_max", 0, 1, 1u << 30, 0);
	sc.tcp_rmem_max = rmem > rmem_max ? rmem : rmem_max;
	sc.tcp_fin_timeout_s = sysctl_in("net/ipv4/tcp_fin_timeout", 0, 1, 86400, sc.tcp_fin_timeout_s);
	sc.tcp_keepalive_time_s = sysctl_in("net/ipv4/tcp_keepalive_time", 0, 1, 32767, sc.tcp_keepalive_time_s);
	sc.tcp_keepalive_intvl_s = sysctl_in("net/ipv4/tcp_keepalive_intvl", 0, 1, 32767, sc.tcp_keepalive_intvl_s);
	sc.tcp_keepalive_probes = (uint8_t)sysctl_in("net/ipv4/tcp_keepalive_probes", 0, 1, 127,
						      sc.tcp_keepalive_probes);
	sc.somaxconn = sysctl_in("net/core/somaxconn", 0, 1, 65535, sc.somaxconn);
	sc.tcp_ecn = (uint8_t)sysctl_in("net/ipv4/tcp_ecn", 0, 0, 2, sc.tcp_ecn);
	sc.tcp_max_syn_backlog = sysctl_in("net/ipv4/tcp_max_syn_backlog", 0, 1, 1u << 30, sc.tcp_max_syn_backlog);
	/* The default congestion control: reno as the host's; cubic for
	 * cubic and for any the stack does not have (bbr, ...) */
	FILE *ccf = fopen("/proc/sys/net/ipv4/tcp_congestion_control", "re");
	if (ccf) {
		char name[32] = "";
		if (fscanf(ccf, "%31s", name) == 1 && !strcmp(name, "reno"))
			sc.cc = USNET_CC_NEWRENO;
		fclose(ccf);
	}
	if (getrandom(sc.secret, sizeof sc.secret, 0) != (ssize_t)sizeof sc.secret) {
		snprintf(err, errlen, "getrandom failed");
		return -EIO;
	}
	size_t arena = usnet_stack_mem_size(&sc);
	if (!arena || !sc.max_sockets) {
		snprintf(err, errlen, "invalid stack configuration (address %s)", ip);
		return -EINVAL;
	}
	arena = (arena + 4095) & ~(size_t)4095;
	/* The mapping: head, per-handle tables, inboxes, then the arenas. */
	uint32_t slot_bytes = (((sc.mtu + 14 + 4 + 8) + 63) & ~63u);
	size_t nh = (size_t)p->ninst * sc.max_sockets;
	size_t meta_off = (sizeof(struct shared_head) + 63) & ~(size_t)63;
	size_t members_off = (meta_off + nh * sizeof(struct sock_meta) + 63) & ~(size_t)63;
	size_t inbox_off = (members_off + nh * p->ninst * sizeof(int32_t) + 4095) & ~(size_t)4095;
	size_t inbox_bytes = ((size_t)STACK_PROV_INBOX_SLOTS * slot_bytes + 4095) & ~(size_t)4095;
	size_t head = inbox_off + (p->ninst > 1 ? p->ninst * inbox_bytes : 0);
	size_t total = head + p->ninst * arena;
	bool made;
	void *m = state_map(total, &made, err, errlen);
	if (!m)
		return -ENOMEM;
	p->sh = m;
	p->meta = (struct sock_meta *)((char *)m + meta_off);
	p->members = (int32_t *)((char *)m + members_off);
	if (made) {
		p->sh->max_sockets = sc.max_sockets;
		p->sh->ninst = p->ninst;
		p->sh->slot_bytes = slot_bytes;
		p->sh->meta_off = meta_off;
		p->sh->members_off = members_off;
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		for (uint16_t i = 0; i < p->ninst; i++) {
			struct inst_shared *is = &p->sh->inst[i];
			pthread_mutex_init(&is->lock, &ma);
			pthread_mutex_init(&is->inbox_lock, &ma);
			is->inbox_off = inbox_off + i * inbox_bytes;
			is->arena_off = head + i * arena;
			sc.rss_queue = i;
			struct usnet_stack *st = usnet_stack_create((char *)m + is->arena_off, arena, &sc);
			if (!st) {
				pthread_mutexattr_destroy(&ma);
				snprintf(err, errlen, "the stack rejected its configuration (address %s)", ip);
				return -EINVAL;
			}
			if (p->gw)
				usnet_route_add(st, 0, 0, p->gw);
		}
		pthread_mutexattr_destroy(&ma);
		p->sh->total = total;
		p->sh->head = head;
		atomic_store(&p->sh->magic, SHARED_HEAD_MAGIC);
	} else if (p->sh->ninst != p->ninst || p->sh->max_sockets != sc.max_sockets) {
		snprintf(err, errlen, "the stack's shared memory has %u instances of %u sockets, this configuration %u of %u",
			 p->sh->ninst, p->sh->max_sockets, p->ninst, sc.max_sockets);
		return -EINVAL;
	}
	for (uint16_t i = 0; i < p->ninst; i++) {
		struct inst *in = &p->in[i];
		in->p = p;
		in->q = i;
		in->sh = &p->sh->inst[i];
		in->st = (struct usnet_stack *)((char *)m + in->sh->arena_off);
		in->io.netif = p->nif;
		in->io.queue = i;
		in->io.on_event = on_event;
		in->io.ctx = in;
		in->io.flow_queue = p->ninst > 1 ? inst_flow_owner : NULL;
		in->io.flow_queue6 = p->ninst > 1 ? inst_flow_owner6 : NULL;
		usnet_tx_defer_init(&in->held_nif, p->nif, 0);   /* 0: no flush by count */
		in->held_io = in->io;
		in->held_io.netif = &in->held_nif.base;
	}
	/* The addresses are checked before the program may use them (the
	 * maker of the shared state checks; an attacher finds them done). */
	if ((r = stack_ip6_dad_wait(p, p_progress, err, errlen)) < 0)
		return r;
	if (p->ip6_count)   /* the same in every instance: from the MAC */
		usnet_ip6_addr(p->in[0].st, 0, p->ip6_ll, NULL);
	p->bindv6only = sysctl_int("net/ipv6/bindv6only", 0) != 0;
	batching_prov = p;
	*ctx = p;
	char line[96];
	snprintf(line, sizeof line, "stack on %s, %u receive queue%s, an instance each", p->nif->info.ifname,
		 p->ninst, p->ninst == 1 ? "" : "s");
	logf_(p, USNET_PLOG_INFO, "%s", line);
	return 0;
}

/* ---- addresses ----------------------------------------------------------- */

static bool is_loopback(uint32_t ip) { return (ip >> 24) == 127; }

enum addr_kind { A_OK, A_HANDOVER, A_BAD };

/* Turn a program's address into the stack's.  On an AF_INET6 socket a
 * v4-mapped address is IPv4 (for a V6ONLY stack IPv6 socket too: the
 * stack then answers as Linux does); on a stack IPv6 socket (m->stack6)
 * every other IPv6 address is IPv6, with the scope id in *scope; without
 * IPv6 on the stack only :: is taken (as IPv4's wildcard, dual-stack) and
 * a native IPv6 address or a V6ONLY socket is the kernel's. */
static enum addr_kind addr_in(const struct sock_meta *m, const struct sockaddr *sa, socklen_t len,
			      struct usnet_addr *out, uint32_t *scope, int *err)
{
	memset(out, 0, sizeof *out);
	*scope = 0;
	if (!sa) {
		*err = -EFAULT;
		return A_BAD;
	}
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		if (m->domain6 && m->v6only) {
			*err = -EAFNOSUPPORT;
			return A_BAD;
		}
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof in);
		out->ip = ntohl(in.sin_addr.s_addr);
		out->port = ntohs(in.sin_port);
		return A_OK;
	}
	/* Linux takes the RFC 2133 size, without sin6_scope_id, too */
	if (sa->sa_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id) && m->domain6) {
		struct sockaddr_in6 in6;
		memset(&in6, 0, sizeof in6);
		memcpy(&in6, sa, len < sizeof in6 ? len : sizeof in6);
		out->port = ntohs(in6.sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr) && (!m->v6only || m->stack6)) {
			uint32_t v4;
			memcpy(&v4, &in6.sin6_addr.s6_addr[12], 4);
			out->ip = ntohl(v4);
			return A_OK;
		}
		if (m->stack6) {
			out->family = USNET_AF_INET6;
			memcpy(out->ip6, &in6.sin6_addr, 16);
			*scope = in6.sin6_scope_id;
			return A_OK;
		}
		if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr) && !m->v6only) {
			out->ip = 0;
			return A_OK;
		}
		return A_HANDOVER;   /* native IPv6 without IPv6 on the stack: the kernel's */
	}
	if (sa->sa_family == AF_UNSPEC) {
		*err = -EAFNOSUPPORT;
		return A_BAD;
	}
	*err = m->domain6 ? -EINVAL : -EAFNOSUPPORT;
	return A_BAD;
}

static bool is_link_local6(const uint8_t a[16]) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }

static void addr_out(const struct prov *p, const struct sock_meta *m, const struct usnet_addr *a,
		     struct sockaddr *sa, socklen_t *len)
{
	if (!sa || !len)
		return;
	union { struct sockaddr_in in; struct sockaddr_in6 in6; } u;
	memset(&u, 0, sizeof u);
	socklen_t full;
	if (m->domain6) {
		u.in6.sin6_family = AF_INET6;
		u.in6.sin6_port = htons(a->port);
		if (a->family == USNET_AF_INET6) {
			memcpy(&u.in6.sin6_addr, a->ip6, 16);
			/* as Linux: a link-local address carries its interface */
			if (is_link_local6(a->ip6))
				u.in6.sin6_scope_id = (uint32_t)p->kernel_ifindex;
		} else if (a->ip || m->stack6) {
			/* a stack IPv6 socket's IPv4 names are its IPv4 side,
			 * 0.0.0.0 included (bound to ::ffff:0.0.0.0); without
			 * IPv6 on the stack, IPv4's 0.0.0.0 is the :: it was
			 * bound to */
			u.in6.sin6_addr.s6_addr[10] = 0xff;
			u.in6.sin6_addr.s6_addr[11] = 0xff;
			uint32_t v4 = htonl(a->ip);
			memcpy(&u.in6.sin6_addr.s6_addr[12], &v4, 4);
		}
		full = sizeof u.in6;
	} else {
		u.in.sin_family = AF_INET;
		u.in.sin_port = htons(a->port);
		u.in.sin_addr.s_addr = htonl(a->ip);
		full = sizeof u.in;
	}
	socklen_t l = *len < full ? *len : full;
	memcpy(sa, &u, l);
	*len = full;
}

/* A destination is the stack's when it is on the stack's subnet, or when a
 * gateway was given and the kernel has no more specific route for it
 * through another interface (a management network, a second NIC): --gw
 * stands for a default route, and the kernel's own routes win over it. */
static bool reachable(const struct prov *p, uint32_t ip)
{
	uint32_t mask = p->prefix ? ~0u << (32 - p->prefix) : 0;
	if ((ip & mask) == (p->ip & mask))
		return true;
	if (!p->gw)
		return false;
	return !p->kernel_ifindex || !kernel_route_elsewhere(p->host, p->kernel_ifindex, ip);
}

/* A connect or a datagram to a loopback address stays on the stack when
 * one of its sockets takes it (a TCP listener, a UDP socket, bound to the
 * wildcard); otherwise it is the kernel's (a socket of the kernel's
 * loopback, or nothing: ECONNREFUSED there).  A program's bind to 127.0.0.1
 * is the kernel's (p_bind), so that every program on the host reaches it,
 * as on Linux. */
static bool loopback_taker(struct prov *p, usnet_psock_t ps, const struct usnet_addr *a)
{
	/* The socket's own instance knows: a listener has a copy in every
	 * instance, UDP sockets all live on instance 0. */
	int type = p->meta[ps].type == SOCK_DGRAM ? USNET_SOCK_DGRAM : USNET_SOCK_STREAM;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	bool on_stack = usnet_local_taker(in->st, type, a);
	inst_unlock_quiet(in);
	return on_stack;
}

/* Whether a connect or a datagram of socket ps to a goes to the stack: 1,
 * 0 the kernel's, or a negative errno.  IPv4 by subnet and gateway (and
 * the ports the kernel keeps in host-address mode); IPv6 by
 * stack_ip6_dest_where(); loopback (127.0.0.0/8, ::1, and ::, which Linux
 * takes for ::1) when a socket of the stack takes it. */
static int dest_on_stack(struct prov *p, usnet_psock_t ps, const struct usnet_addr *a, uint32_t scope)
{
	if (a->family == USNET_AF_INET6) {
		static const uint8_t any[16];
		uint8_t lo[16] = { [15] = 1 };
		if (!memcmp(a->ip6, lo, 16) || !memcmp(a->ip6, any, 16)) {
			struct usnet_addr l = *a;
			memcpy(l.ip6, lo, 16);
			return loopback_taker(p, ps, &l);
		}
		int w = stack_ip6_dest_where(p, a->ip6, scope, p->meta[ps].bound_dev);
		if (w == 1 && host_addr_kernel_port6(p, p->meta[ps].type, a->ip6, a->port))
			return 0;   /* the kernel's own service on a shared address */
		return w;
	}
	bool group = (a->ip >> 28) == 0xe;
	if (!(is_loopback(a->ip) ? loopback_taker(p, ps, a) : group || reachable(p, a->ip)))
		return 0;
	return !host_addr_kernel_port(p, p->meta[ps].type, a->ip, a->port);
}

/* ---- socket ops ------------------------------------------------------------ */

/* Where a new TCP socket lives: the instance of the caller's CPU, so that a
 * thread mostly works on its own instance.  UDP sockets live on instance 0
 * (stack_inst.c). */
static uint16_t home_of(struct prov *p, int type)
{
	if (p->ninst <= 1 || type != USNET_SOCK_STREAM)
		return 0;
	int cpu = sched_getcpu();
	return (uint16_t)((cpu < 0 ? 0 : (unsigned)cpu) % p->ninst);
}

static int p_socket(void *ctx, int domain, int type, int protocol, uint64_t cookie, usnet_psock_t *out)
{
	struct prov *p = ctx;
	int t;
	if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
		t = USNET_SOCK_STREAM;
	else if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
		t = USNET_SOCK_DGRAM;
	else
		return USNET_PROVIDER_DECLINE;
	/* With IPv6 on the stack an AF_INET6 socket is the stack's IPv6
	 * socket; without, an IPv4 one that takes v4-mapped addresses.
	 * IPV6_V6ONLY starts as net.ipv6.bindv6only says, as on Linux. */
	bool v6 = domain == AF_INET6, stack6 = v6 && p->ip6_count;
	bool v6only = v6 && p->bindv6only;
	struct inst *in = &p->in[home_of(p, t)];
	inst_lock(in);
	int s = usnet_socket(in->st, t | (stack6 ? USNET_SOCK_V6 : 0));
	if (s >= 0) {
		usnet_sock_set_user(in->st, s, cookie);
		if (stack6 && v6only)
			usnet_setsockopt(in->st, s, USNET_IPV6_V6ONLY, 1);
		p->meta[handle_of(p, in->q, s)] = (struct sock_meta){ .domain6 = v6, .stack6 = stack6,
								     .v6only = v6only,
								     .type = (uint8_t)type,
								     .protocol = (uint8_t)protocol };
		/* Under the lock, as accept_on: the switch's slot holds the
		 * handle before anything else can happen to this process. */
		*out = handle_of(p, in->q, s);
	}
	inst_unlock(in);
	if (s < 0)
		return s == -USNET_ENOMEM || s == -USNET_ENFILE ? -ENFILE : s;
	return 0;
}

static int p_bind(void *ctx, usnet_psock_t ps, const struct sockaddr *sa, socklen_t len)
{
	struct prov *p = ctx;
	struct usnet_addr a;
	uint32_t scope;
	int err = 0;
	enum addr_kind k = addr_in(&p->meta[ps], sa, len, &a, &scope, &err);
	if (k == A_BAD)
		return err;
	if (k == A_HANDOVER)
		return USNET_PROVIDER_HANDOVER;
	if (a.family == USNET_AF_INET6) {
		/* ::, or an address of the stack's; ::1 and the others are
		 * the kernel's, as 127.0.0.1 and other IPv4 addresses */
		static const uint8_t any[16];
		int w = memcmp(a.ip6, any, 16) ? stack_ip6_bind_where(p, a.ip6, scope, p->meta[ps].bound_dev) : 1;
		if (w < 0)
			return w;
		if (!w)
			return USNET_PROVIDER_HANDOVER;
	} else {
		/* a UDP socket bound to a group takes that group's
		 * datagrams, on the stack's interface (it joins it there) */
		bool group = p->meta[ps].type == SOCK_DGRAM && (a.ip >> 28) == 0xe;
		if (a.ip != 0 && a.ip != p->ip && !group)
			return USNET_PROVIDER_HANDOVER;   /* loopback, another address */
	}
	int r = host_addr_bind_check(p, &a, p->meta[ps].type, p->meta[ps].v6only);
	if (r < 0)
		return r;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	r = usnet_bind(in->st, s, &a);
	inst_unlock(in);
	if (r == 0)
		host_addr_bound(p, p->meta[ps].type, a.port);
	return r;
}

/* Close the copies of group ps (none of their locks held). */
static void close_members(struct prov *p, usnet_psock_t ps)
{
	for (uint16_t j = 0; j < p->ninst; j++) {
		usnet_sock_t c = member(p, ps, j);
		if (c < 0)
			continue;
		struct inst *in = &p->in[j];
		inst_lock(in);
		usnet_close(in->st, &in->io, c, now_ns());
		inst_unlock(in);
		p->members[ps * p->ninst + j] = 0;
	}
	p->meta[ps].group = 0;
}

/* A listener answers on every instance: a copy of it, with its address and
 * options, listens on each of the others. */
static int p_listen(void *ctx, usnet_psock_t ps, int backlog)
{
	struct prov *p = ctx;
	if (backlog < 0 || backlog > 4096)
		backlog = 4096;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	struct sock_template t;
	inst_lock(in);
	int r = usnet_listen(in->st, s, backlog);
	if (r == 0 && p->ninst > 1)
		template_of(in, s, &t);
	inst_unlock(in);
	if (r < 0 || p->ninst <= 1 || p->meta[ps].type != SOCK_STREAM)
		return r;
	for (uint16_t j = 0; j < p->ninst; j++) {
		if (j == in->q)
			continue;
		struct inst *o = &p->in[j];
		usnet_sock_t c = member(p, ps, j);
		inst_lock(o);
		if (c < 0 && (c = copy_on(o, &t)) >= 0)
			p->members[ps * p->ninst + j] = c + 1;
		r = c < 0 ? c : usnet_listen(o->st, c, backlog);
		inst_unlock(o);
		if (r < 0) {
			close_members(p, ps);
			return r;
		}
	}
	p->meta[ps].group = 1;
	return 0;
}

static int accept_on(struct prov *p, struct inst *in, usnet_sock_t s, usnet_psock_t ps, uint64_t cookie,
		     struct usnet_addr *peer, usnet_psock_t *out)
{
	inst_lock(in);
	int n = usnet_accept(in->st, &in->io, s, peer, now_ns());
	if (n >= 0) {
		usnet_sock_set_user(in->st, n, cookie);
		in->sh->tcp_accepted++;
		struct sock_meta m = p->meta[ps];
		m.group = 0;
		m.moved_to = 0;
		p->meta[handle_of(p, in->q, n)] = m;
		*out = handle_of(p, in->q, n);
	}
	inst_unlock(in);
	return n;
}

static int p_accept(void *ctx, usnet_psock_t ps, struct sockaddr *sa, socklen_t *len, uint64_t cookie,
		    usnet_psock_t *out)
{
	struct prov *p = ctx;
	struct usnet_addr peer = { 0 };
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	int n = -USNET_EAGAIN;
	if (!p->meta[ps].group) {
		n = accept_on(p, in, s, ps, cookie, &peer, out);
	} else {
		/* The caller's own instance first, then the others. */
		uint16_t start = home_of(p, USNET_SOCK_STREAM);
		for (uint16_t k = 0; k < p->ninst && n == -USNET_EAGAIN; k++) {
			uint16_t j = (uint16_t)((start + k) % p->ninst);
			usnet_sock_t c = j == in->q ? s : member(p, ps, j);
			if (c >= 0)
				n = accept_on(p, &p->in[j], c, ps, cookie, &peer, out);
		}
	}
	if (n < 0)
		return n;
	addr_out(p, &p->meta[ps], &peer, sa, len);
	/* A notification for the new socket: readiness may predate the cookie. */
	p->host->notify(p->host->host, cookie, 0);
	return 0;
}

/* A TCP socket bound to a port before connect() lives where it was made;
 * its connection's frames belong to the instance inst_flow_owner() names.
 * When that is another, a copy bound to the same address there takes its
 * place (the old one stays, unused, holding the handle). */
static int move_for_flow(struct prov *p, usnet_psock_t ps, const struct usnet_addr *to, struct inst **in,
			 usnet_sock_t *s)
{
	struct sock_template t;
	inst_lock(*in);
	template_of(*in, *s, &t);
	inst_unlock_quiet(*in);
	if (t.local.port == 0)
		return 0;   /* connect() picks a port of this instance */
	static const uint8_t any6[16];
	int o;
	if (to->family == USNET_AF_INET6)   /* (its hash does not read our address) */
		o = inst_flow_owner6(&(*in)->io, 6, to->ip6, to->port, t.local.ip6, t.local.port);
	else if (t.local.family == USNET_AF_INET6 && memcmp(t.local.ip6, any6, 16))
		return 0;   /* bound to an IPv6 address: the stack refuses IPv4 peers */
	else   /* an IPv4 address, or a dual-stack socket bound to :: */
		o = inst_flow_owner(&(*in)->io, 6, to->ip, to->port,
				    t.local.family == USNET_AF_INET && t.local.ip ? t.local.ip : p->ip, t.local.port);
	if (o == (*in)->q)
		return 0;
	struct inst *dst = &p->in[o];
	inst_lock(dst);
	int c = copy_on(dst, &t);
	inst_unlock(dst);
	if (c < 0)
		return c;
	p->meta[ps].moved_to = (int32_t)handle_of(p, dst->q, c) + 1;
	*in = dst;
	*s = c;
	return 0;
}

static int p_connect(void *ctx, usnet_psock_t ps, const struct sockaddr *sa, socklen_t len)
{
	struct prov *p = ctx;
	struct usnet_addr a;
	uint32_t scope;
	int err = 0;
	enum addr_kind k = addr_in(&p->meta[ps], sa, len, &a, &scope, &err);
	if (k == A_BAD)
		return err;
	if (k == A_HANDOVER)
		return USNET_PROVIDER_HANDOVER;
	bool group = a.family == USNET_AF_INET ? (a.ip >> 28) == 0xe : a.ip6[0] == 0xff;
	if (group && p->meta[ps].type == SOCK_STREAM)
		return -ENETUNREACH;   /* as Linux's tcp_v4_connect and tcp_v6_connect */
	int w = dest_on_stack(p, ps, &a, scope);
	if (w < 0)
		return w;
	if (!w)
		return USNET_PROVIDER_HANDOVER;
	if (a.family == USNET_AF_INET)
		host_addr_resolve(p, a.ip);
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	if (p->ninst > 1 && p->meta[ps].type == SOCK_STREAM && !p->meta[ps].moved_to) {
		int r = move_for_flow(p, ps, &a, &in, &s);
		if (r < 0)
			return r;
	}
	inst_lock(in);
	int r = usnet_connect(in->st, &in->io, s, &a, now_ns());
	if (r == 0 || r == -USNET_EINPROGRESS)
		in->sh->tcp_connects++;
	inst_unlock(in);
	return r;
}

/* IPv6 control messages of a sendmsg on a stack IPv6 socket: an
 * IPV6_PKTINFO that leaves the choice to the stack (address ::, interface
 * none or the stack's) is what the stack does anyway; any other one
 * (a chosen source, IPV6_HOPLIMIT, IPV6_TCLASS, ...) the stack does not
 * do per message, so it is refused with EINVAL and a log line rather than
 * ignored.  0 or -EINVAL. */
static int ip6_cmsgs_ok(struct prov *p, const struct msghdr *m)
{
	if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level != IPPROTO_IPV6)
			continue;
		if (c->cmsg_type == IPV6_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			if (IN6_IS_ADDR_UNSPECIFIED(&pi.ipi6_addr) &&
			    (!pi.ipi6_ifindex || (int)pi.ipi6_ifindex == p->kernel_ifindex))
				continue;
		}
		char line[112];
		snprintf(line, sizeof line, "sendmsg: IPv6 control message type %d is not done by the stack: EINVAL",
			 c->cmsg_type);
		p->host->log(p->host->host, USNET_PLOG_INFO, line);
		return -EINVAL;
	}
	return 0;
}

static long p_sendmsg(void *ctx, usnet_psock_t ps, const struct msghdr *m, int flags)
{
	struct prov *p = ctx;
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	if (p->meta[ps].stack6) {
		int r = ip6_cmsgs_ok(p, m);
		if (r < 0)
			return r;
	}
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	struct usnet_addr to, *top = NULL;
	if (m->msg_name && m->msg_namelen) {
		int err = 0;
		uint32_t scope;
		enum addr_kind k = addr_in(&p->meta[ps], m->msg_name, m->msg_namelen, &to, &scope, &err);
		if (k == A_BAD)
			return err;
		if (p->meta[ps].type == SOCK_DGRAM) {
			/* a group's datagrams leave by the stack's interface
			 * (IP_MULTICAST_IF naming another handed it over) */
			int w = k == A_HANDOVER ? 0 : dest_on_stack(p, ps, &to, scope);
			if (w < 0)
				return w;
			if (!w) {
				/* Not the stack's: an unbound socket moves to the kernel. */
				struct usnet_addr me = { 0 };
				inst_lock(in);
				usnet_getsockname(in->st, s, &me);
				inst_unlock_quiet(in);
				char l[128], txt[INET6_ADDRSTRLEN];
				uint32_t v4 = htonl(to.ip);
				inet_ntop(to.family == USNET_AF_INET6 ? AF_INET6 : AF_INET,
					  to.family == USNET_AF_INET6 ? (const void *)to.ip6 : (const void *)&v4, txt, sizeof txt);
				snprintf(l, sizeof l, "datagram to %s is not the stack's (socket port %u)", txt, me.port);
				p->host->log(p->host->host, USNET_PLOG_DEBUG, l);
				return me.port == 0 ? USNET_PROVIDER_HANDOVER : -ENETUNREACH;
			}
			/* As Linux: a broadcast needs SO_BROADCAST. */
			uint32_t bcast = p->prefix && p->prefix < 31 ? p->ip | ~(~0u << (32 - p->prefix)) : 0xffffffffu;
			if (to.family == USNET_AF_INET && (to.ip == 0xffffffffu || to.ip == bcast) &&
			    !stack_prov_broadcast_ok(p, ps))
				return -EACCES;
			top = &to;
		}
	}
	unsigned uf = (flags & MSG_MORE) ? USNET_MSG_MORE : 0;
	inst_lock(in);
	long r = usnet_sendv(in->st, stack_prov_io_for_data(in), s, (const struct usnet_iovec *)m->msg_iov,
			     (int)m->msg_iovlen, uf, top, now_ns());
	stack_prov_unlock_io(in);
	return r;
}

/* sendfile's source: the file read at pos (advanced by what was read). */
struct file_src {
	const struct usnet_provider_host *host;
	int fd;
	int64_t pos;
};

static long file_fill(void *arg, const struct usnet_iovec *iov, int n)
{
	struct file_src *f = arg;
	/* preadv's offset as x86-64 and arm64 take it: all in the low word */
	long r = f->host->syscall(SYS_preadv, f->fd, (long)(uintptr_t)iov, n, (long)f->pos, 0, 0);
	if (r > 0)
		f->pos += r;
	return r;
}

/* sendfile on a stream socket: the file is read straight into the send
 * buffer (usnet_send_fill), under the instance's lock. */
static long p_sendfile(void *ctx, usnet_psock_t ps, int in_fd, int64_t offset, size_t count)
{
	struct prov *p = ctx;
	if (p->meta[ps].type != SOCK_STREAM)
		return USNET_PROVIDER_DECLINE;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	struct file_src f = { p->host, in_fd, offset };
	inst_lock(in);
	long r = usnet_send_fill(in->st, stack_prov_io_for_data(in), s, count, file_fill, &f, 0, now_ns());
	stack_prov_unlock_io(in);
	return r;
}

/* Appends a control message to m (used bytes so far in *used, of room),
 * or sets MSG_CTRUNC when it does not fit, as put_cmsg() does. */
static void add_cmsg(struct msghdr *m, size_t room, size_t *used, int level, int type, const void *data,
		     size_t len)
{
	if (*used + CMSG_LEN(len) > room) {
		m->msg_flags |= MSG_CTRUNC;
		return;
	}
	struct cmsghdr *cm = (struct cmsghdr *)((char *)m->msg_control + *used);
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(cm), data, len);
	*used += CMSG_SPACE(len) < room - *used ? CMSG_SPACE(len) : room - *used;
	m->msg_controllen = *used;
}

/* A datagram's control messages, in Linux's order: its arrival time
 * (SO_TIMESTAMP / SO_TIMESTAMPNS), then where it was sent: IPV6_PKTINFO
 * (IPv4 ones v4-mapped, as ip6_datagram_recv_common_ctl; lo's index for
 * loopback's, the interface's otherwise), then, for an IPv4 datagram,
 * IP_PKTINFO (lo's index for what the host sent itself, the interface's
 * otherwise; the local address Linux's fib_compute_spec_dst gives). */
static void dgram_cmsgs(struct prov *p, const struct sock_meta *sm, struct msghdr *m, size_t room,
			const struct usnet_addr *from, const struct usnet_addr *to, uint64_t at_ns)
{
	uint32_t from_ip = from->family == USNET_AF_INET ? from->ip : 0;
	uint32_t dst = to->family == USNET_AF_INET ? to->ip : 0;
	size_t used = 0;
	if (sm->tstamp) {
		struct timespec mono, real;
		clock_gettime(CLOCK_MONOTONIC, &mono);
		clock_gettime(CLOCK_REALTIME, &real);
		uint64_t mono_ns = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
		uint64_t real_ns = (uint64_t)real.tv_sec * 1000000000ull + (uint64_t)real.tv_nsec;
		uint64_t ago = mono_ns > at_ns ? mono_ns - at_ns : 0;
		uint64_t t = real_ns > ago ? real_ns - ago : 0;
		if (sm->tstamp == 1) {
			struct timeval tv = { (time_t)(t / 1000000000ull), (suseconds_t)(t % 1000000000ull / 1000) };
			add_cmsg(m, room, &used, SOL_SOCKET, SO_TIMESTAMP, &tv, sizeof tv);
		} else {
			struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
			add_cmsg(m, room, &used, SOL_SOCKET, SO_TIMESTAMPNS, &ts, sizeof ts);
		}
	}
	if (sm->pktinfo6) {
		static const uint8_t lo6[16] = { [15] = 1 };
		struct in6_pktinfo pi6;
		memset(&pi6, 0, sizeof pi6);
		bool loopback;
		if (to->family == USNET_AF_INET6) {
			memcpy(&pi6.ipi6_addr, to->ip6, 16);
			loopback = from->family == USNET_AF_INET6 && !memcmp(from->ip6, lo6, 16);
		} else {
			pi6.ipi6_addr.s6_addr[10] = pi6.ipi6_addr.s6_addr[11] = 0xff;
			uint32_t v4 = htonl(dst);
			memcpy(&pi6.ipi6_addr.s6_addr[12], &v4, 4);
			loopback = (from_ip >> 24) == 127;
		}
		/* Linux names the interface of the address (its own too,
		 * where IP_PKTINFO says lo), lo for loopback's */
		pi6.ipi6_ifindex = loopback ? 1 : (unsigned)p->kernel_ifindex;
		add_cmsg(m, room, &used, IPPROTO_IPV6, IPV6_PKTINFO, &pi6, sizeof pi6);
	}
	if (sm->pktinfo && to->family == USNET_AF_INET) {
		uint32_t bcast = p->prefix && p->prefix < 31 ? p->ip | ~(~0u << (32 - p->prefix)) : 0xffffffffu;
		bool local = from_ip == p->ip || (from_ip >> 24) == 127;
		struct in_pktinfo pi;
		memset(&pi, 0, sizeof pi);
		pi.ipi_ifindex = local ? 1 : p->kernel_ifindex;
		pi.ipi_spec_dst.s_addr = htonl(dst == 0xffffffffu || dst == bcast ? p->ip : dst);
		pi.ipi_addr.s_addr = htonl(dst);
		add_cmsg(m, room, &used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
	}
}

static long p_recvmsg(void *ctx, usnet_psock_t ps, struct msghdr *m, int flags)
{
	struct prov *p = ctx;
	if (flags & MSG_OOB)
		return -EINVAL;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	bool dgram = p->meta[ps].type == SOCK_DGRAM;
	unsigned uf = ((flags & MSG_PEEK) ? USNET_MSG_PEEK : 0) | (dgram ? USNET_MSG_TRUNC : 0);
	size_t cap = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		cap += m->msg_iov[i].iov_len;
	struct usnet_addr from = { 0 };
	bool want_inq = !dgram && p->meta[ps].inq;
	bool want_meta = dgram && (p->meta[ps].pktinfo || p->meta[ps].pktinfo6 || p->meta[ps].tstamp);
	int inq = 0;
	struct usnet_addr dst = { 0 };
	uint64_t at_ns = 0;
	inst_lock(in);
	if (want_meta && usnet_udp_next_dst(in->st, s, &dst, &at_ns) < 0)
		want_meta = false;
	long r = usnet_recvv(in->st, stack_prov_io_for_data(in), s, (const struct usnet_iovec *)m->msg_iov,
			     (int)m->msg_iovlen, uf, &from, now_ns());
	if (r >= 0 && want_inq) {
		/* TCP_INQ, as tcp_inq_hint(): the bytes left to read; 1 once
		 * the peer's FIN came and nothing is left (read on: EOF) */
		long left = usnet_sock_readable_bytes(in->st, s);
		inq = left > 0 ? (left > INT32_MAX ? INT32_MAX : (int)left) : 0;
		if (inq == 0 && (usnet_sock_events(in->st, s) & USNET_EV_RDHUP))
			inq = 1;
	}
	stack_prov_unlock_io(in);
	if (r < 0)
		return r;   /* msghdr untouched: the switch calls again with it when it waits */
	m->msg_flags = 0;
	size_t ctl_room = m->msg_control ? m->msg_controllen : 0;
	m->msg_controllen = 0;
	if (want_meta)
		dgram_cmsgs(p, &p->meta[ps], m, ctl_room, &from, &dst, at_ns);
	if (want_inq) {
		size_t used = 0;
		add_cmsg(m, ctl_room, &used, SOL_TCP, TCP_CM_INQ, &inq, sizeof inq);
	}
	if (m->msg_name) {
		if (dgram)
			addr_out(p, &p->meta[ps], &from, m->msg_name, &m->msg_namelen);
		else
			m->msg_namelen = 0;
	}
	if (dgram && (size_t)r > cap) {
		m->msg_flags |= MSG_TRUNC;
		if (!(flags & MSG_TRUNC))
			r = (long)cap;
	}
	return r;
}

static int p_shutdown(void *ctx, usnet_psock_t ps, int how)
{
	struct prov *p = ctx;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	int r = usnet_shutdown(in->st, &in->io, s, how, now_ns());
	inst_unlock(in);
	for (uint16_t j = 0; p->meta[ps].group && j < p->ninst; j++) {
		usnet_sock_t c = member(p, ps, j);
		if (c < 0)
			continue;
		inst_lock(&p->in[j]);
		usnet_shutdown(p->in[j].st, &p->in[j].io, c, how, now_ns());
		inst_unlock(&p->in[j]);
	}
	return r;
}

static int p_close(void *ctx, usnet_psock_t ps)
{
	struct prov *p = ctx;
	if (p->meta[ps].group)
		close_members(p, ps);
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	uint32_t groups[32];
	uint8_t groups6[32][16];
	int ng = p->meta[ps].type == SOCK_DGRAM ? usnet_mc_sock_groups(in->st, s, groups, 32) : 0;
	int ng6 = p->meta[ps].type == SOCK_DGRAM && p->meta[ps].stack6 ? usnet_mc6_sock_groups(in->st, s, groups6, 32) : 0;
	int r = usnet_close(in->st, &in->io, s, now_ns());
	if (ng > 0)   /* the groups it was the last member of leave the netif's filter */
		stack_prov_mc_unsteer(p, in, groups, ng < 32 ? ng : 32);
	if (ng6 > 0)
		stack_prov_mc6_unsteer(p, in, (const uint8_t (*)[16])groups6, ng6 < 32 ? ng6 : 32);
	inst_unlock(in);
	if (p->meta[ps].moved_to) {
		/* The socket it was made as, kept for the handle. */
		struct inst *made = &p->in[ps / p->sh->max_sockets];
		inst_lock(made);
		usnet_close(made->st, &made->io, (usnet_sock_t)(ps % p->sh->max_sockets), now_ns());
		inst_unlock(made);
		p->meta[ps].moved_to = 0;
	}
	return r;
}

static int p_getsockname(void *ctx, usnet_psock_t ps, struct sockaddr *sa, socklen_t *len)
{
	struct prov *p = ctx;
	struct usnet_addr a = { 0 }, peer = { 0 };
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	int r = usnet_getsockname(in->st, s, &a);
	/* A connected socket has a source address even when bound to the
	 * wildcard: IPv4's is the stack's only one, IPv6's the one the
	 * stack picks for the peer. */
	static const uint8_t any[16];
	if (r == 0 && usnet_getpeername(in->st, s, &peer) == 0) {
		if (a.family == USNET_AF_INET && a.ip == 0 && peer.family == USNET_AF_INET && peer.ip)
			a.ip = p->ip;
		else if (a.family == USNET_AF_INET6 && !memcmp(a.ip6, any, 16) && peer.family == USNET_AF_INET6)
			usnet_ip6_source(in->st, peer.ip6, a.ip6);
	}
	inst_unlock_quiet(in);
	if (r < 0)
		return r;
	addr_out(p, &p->meta[ps], &a, sa, len);
	return 0;
}

static int p_getpeername(void *ctx, usnet_psock_t ps, struct sockaddr *sa, socklen_t *len)
{
	struct prov *p = ctx;
	struct usnet_addr a = { 0 };
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	int r = usnet_getpeername(in->st, s, &a);
	inst_unlock_quiet(in);
	if (r < 0)
		return r;
	addr_out(p, &p->meta[ps], &a, sa, len);
	return 0;
}

static uint32_t p_poll(void *ctx, usnet_psock_t ps)
{
	struct prov *p = ctx;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	uint32_t ev = usnet_sock_events(in->st, s);
	inst_unlock_quiet(in);   /* nothing to flush */
	/* A group is readable when any copy has a connection waiting. */
	for (uint16_t j = 0; p->meta[ps].group && j < p->ninst; j++) {
		usnet_sock_t c = member(p, ps, j);
		if (c < 0)
			continue;
		inst_lock(&p->in[j]);
		ev |= usnet_sock_events(p->in[j].st, c);
		inst_unlock_quiet(&p->in[j]);
	}
	return ev;
}

/* Every queue's fd: a frame on any queue must wake a sleeping program. */
static int p_wait_fds(void *ctx, int *fds, int max)
{
	struct prov *p = ctx;
	int n = 0;
	for (uint16_t q = 0; q < p->ninst && n < max; q++) {
		int fd = usnet_netif_wait_fd(p->nif, q);
		if (fd >= 0)
			fds[n++] = fd;
	}
	return n;
}

static uint64_t p_progress(void *ctx, uint64_t now)
{
	struct prov *p = ctx;
	uint64_t next = UINT64_MAX;
	for (uint16_t i = 0; i < p->ninst; i++) {
		struct inst *in = &p->in[i];
		/* Someone else is at it: they will see the frames. */
		if (!inst_trylock(in)) {
			if (next > now + 1000000)
				next = now + 1000000;
			continue;
		}
		/* The caller read `now` before the lock, maybe a preemption
		 * ago; the stack's time must not step back behind a call
		 * another thread made meanwhile (an ACK "before" its segment
		 * left is a wrapped RTT). */
		uint64_t t = now_ns();
		/* 8 bursts of its queue before the timers get their turn. */
		inst_drain_queue(in, 8, t);
		inst_drain_inbox(in, t);
		in->sh->rx_calls++;
		uint64_t d = usnet_stack_poll(in->st, &in->io, t);
		host_addr_neigh_sync(p, in, t);
		in->sh->next_deadline = d;
		inst_unlock(in);
		if (d < next)
			next = d;
	}
	return next;
}

static void p_fork_child(void *ctx)
{
	struct prov *p = ctx;
	if (p->nif && p->nif->ops->after_fork)
		p->nif->ops->after_fork(p->nif);
}

/* The stack's counters as `usnet stat` names them (struct usnet_stack_stats). */
#define STAT64(f) { #f, offsetof(struct usnet_stack_stats, f), true },
#define STAT32(f) { #f, offsetof(struct usnet_stack_stats, f), false },
static const struct { const char *name; size_t off; bool wide; } stack_stat_fields[] = {
	USNET_STACK_STATS(STAT64, STAT32)
};
#undef STAT64
#undef STAT32

static uint64_t stat_get(const struct usnet_stack_stats *st, size_t k)
{
	const char *f = (const char *)st + stack_stat_fields[k].off;
	if (stack_stat_fields[k].wide)
		return *(const uint64_t *)(const void *)f;
	return *(const uint32_t *)(const void *)f;
}

/* sum.field k += one.field k */
static void stat_add(struct usnet_stack_stats *sum, const struct usnet_stack_stats *one, size_t k)
{
	char *f = (char *)sum + stack_stat_fields[k].off;
	if (stack_stat_fields[k].wide)
		*(uint64_t *)(void *)f += stat_get(one, k);
	else
		*(uint32_t *)(void *)f += (uint32_t)stat_get(one, k);
}

static size_t p_stats(void *ctx, char *buf, size_t len)
{
	struct prov *p = ctx;
	struct usnet_stack_stats s, one[STACK_PROV_MAX_QUEUES];
	memset(&s, 0, sizeof s);
	uint64_t accepted = 0, connects = 0, repairs = 0;
	for (uint16_t i = 0; i < p->ninst; i++) {
		struct inst *in = &p->in[i];
		inst_lock(in);
		usnet_stack_stats(in->st, &one[i]);
		inst_unlock_quiet(in);
		for (size_t k = 0; k < sizeof stack_stat_fields / sizeof stack_stat_fields[0]; k++)
			stat_add(&s, &one[i], k);
		accepted += in->sh->tcp_accepted;
		connects += in->sh->tcp_connects;
		repairs += atomic_load(&in->sh->repairs);
	}
	int n = snprintf(buf, len,
			 "netif %s %s\nqueues %u\ninstances %u\ntcp_accepted %llu\ntcp_connects %llu\nrepairs %llu\n",
			 p->nif->info.backend, p->nif->info.ifname, p->ninst, p->ninst,
			 (unsigned long long)accepted, (unsigned long long)connects, (unsigned long long)repairs);
	size_t at = n < 0 ? 0 : ((size_t)n < len ? (size_t)n : len - 1);
	/* Every counter and gauge the stack keeps, by its name. */
	for (size_t k = 0; k < sizeof stack_stat_fields / sizeof stack_stat_fields[0] && at + 1 < len; k++) {
		n = snprintf(buf + at, len - at, "%s %llu\n", stack_stat_fields[k].name,
			     (unsigned long long)stat_get(&s, k));
		at = n < 0 ? at : (at + (size_t)n < len ? at + (size_t)n : len - 1);
	}
	for (uint16_t q = 0; q < p->ninst && at + 1 < len; q++) {
		n = snprintf(buf + at, len - at, "rx_frames_queue_%u %llu\n", q,
			     (unsigned long long)p->sh->inst[q].rx_frames);
		at = n < 0 ? at : (at + (size_t)n < len ? at + (size_t)n : len - 1);
	}
	/* Per instance: what it ran (frames from its queue and handed to it),
	 * its sockets and connections. */
	for (uint16_t q = 0; p->ninst > 1 && q < p->ninst && at + 1 < len; q++) {
		const struct inst_shared *is = &p->sh->inst[q];
		n = snprintf(buf + at, len - at,
			     "instance_%u rx_frames %llu tcp_rx %llu tcp_tx %llu sockets %u accepted %llu connects %llu "
			     "handed_out %llu handed_in %llu inbox_drop %llu\n",
			     q, (unsigned long long)one[q].rx_frames, (unsigned long long)one[q].tcp_rx,
			     (unsigned long long)one[q].tcp_tx, one[q].sockets_in_use,
			     (unsigned long long)is->tcp_accepted, (unsigned long long)is->tcp_connects,
			     (unsigned long long)is->handed_out, (unsigned long long)is->handed_in,
			     (unsigned long long)is->inbox_drop);
		at = n < 0 ? at : (at + (size_t)n < len ? at + (size_t)n : len - 1);
	}
	return at;
}

static const struct usnet_provider stack_provider = {
	.abi_version = USNET_PROVIDER_ABI_VERSION,
	.size = sizeof(struct usnet_provider),
	.name = "usnet",
	.init = p_init,
	.socket = p_socket,
	.bind = p_bind,
	.listen = p_listen,
	.accept = p_accept,
	.connect = p_connect,
	.sendmsg = p_sendmsg,
	.recvmsg = p_recvmsg,
	.shutdown = p_shutdown,
	.close = p_close,
	.getsockopt = stack_prov_getsockopt,
	.setsockopt = stack_prov_setsockopt,
	.getsockname = p_getsockname,
	.getpeername = p_getpeername,
	.ioctl = stack_prov_ioctl,
	.poll = p_poll,
	.wait_fds = p_wait_fds,
	.progress = p_progress,
	.fork_child = p_fork_child,
	.stats = p_stats,
	.sendfile = p_sendfile,
};

const struct usnet_provider *usnet_provider_stack(void)
{
	return &stack_provider;
}
