/*
 * usnet provider "usnet": sockets on usnet's own TCP/IP stack, on a netif
 * opened with usnet_netif_open() from the `usnet run` options.
 *
 * The stack instance lives in one MAP_SHARED mapping together with a
 * process-shared (robust) lock, so a forked child keeps using the same stack
 * at the same address: nginx's master and workers, a daemonising fork.
 * Each call takes the lock, runs the stack, flushes the netif, unlocks
 * (a send with transmit batching on leaves the flush to the switch).
 *
 * Queues: the netif is opened with every receive queue of the interface
 * (a NIC steers each flow to one of them, and a queue nobody reads loses
 * its flows), and progress() reads them all into the one instance, under
 * its one lock; replies leave by queue 0.
 *
 * Policy: AF_INET/AF_INET6 TCP and UDP are the stack's; a socket bound to
 * loopback or to an address the stack does not own, or connected to
 * loopback or to a destination it has no route for, is handed over to the
 * kernel; with a gateway, so is a destination the kernel routes through
 * another interface (kernel_route.c).  The stack's own address is the
 * stack's (it loops back to itself: every process attached to the stack can
 * reach the others' listeners), but in host-address mode, where the kernel
 * shares it, a port that is not the stack's is the kernel's (host_addr.c).
 * AF_INET6 sockets are dual-stack for
 * IPv4 peers (IPv4-mapped addresses); IPV6_V6ONLY sockets and native IPv6
 * addresses go to the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <linux/sockios.h>
#include <time.h>

#include "usnet/netif_share.h"
#include "usnet/netif_wrap.h"

#include "builtin.h"
#include "host_addr.h"
#include "kernel_route.h"
#include "stack_prov.h"

#define RX_BATCH 32

/*
 * The switch's transmit batching calls (builtin.h) carry no ctx: they act
 * on the provider this process image initialised (the switch runs one).
 */
static struct prov *batching_prov;

/* The io a sendmsg or recvmsg runs the stack on. */
static struct usnet_io *io_for_data(struct prov *p)
{
	return p->tx_batch ? &p->held_io : &p->io;
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
	if (wait) {
		stack_prov_lock(p);
	} else {
		int r = pthread_mutex_trylock(&p->sh->lock);
		if (r == EOWNERDEAD)
			pthread_mutex_consistent(&p->sh->lock);
		else if (r != 0)
			return -EBUSY;
	}
	stack_prov_unlock(p);
	return 0;
}

/* The end of a sendmsg or recvmsg: the flush waits when batching. */
static void unlock_io(struct prov *p)
{
	if (p->tx_batch)
		stack_prov_unlock_quiet(p);
	else
		stack_prov_unlock(p);
}


static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void stack_prov_lock(struct prov *p)
{
	int r = pthread_mutex_lock(&p->sh->lock);
	if (r == EOWNERDEAD)   /* a process died inside the stack: carry on */
		pthread_mutex_consistent(&p->sh->lock);
}

void stack_prov_unlock(struct prov *p)
{
	if (p->held_nif.lower)
		usnet_tx_defer_flush(&p->held_nif, p->io.queue);   /* the held frames too */
	else
		usnet_netif_flush(p->nif, p->io.queue);
	pthread_mutex_unlock(&p->sh->lock);
}

static void on_event(struct usnet_io *io, usnet_sock_t s, uint32_t events, uint64_t user)
{
	(void)s;
	struct prov *p = io->ctx;
	p->host->notify(p->host->host, user, events);
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
	r = netif_get(p, &nc, err, errlen);
	if (r < 0)
		return r;
	p->kernel_ifindex = kernel_ifindex_of(host, nc.backend, nc.iface);
	if (!gw)
		p->gw = kernel_gateway_for(p);
	p->nqueues = p->nif->info.nqueues ? p->nif->info.nqueues : 1;
	if (p->nqueues > STACK_PROV_MAX_QUEUES) {
		snprintf(err, errlen, "%s has %u queues; the stack serves at most %d (--queues)",
			 p->nif->info.ifname, p->nqueues, STACK_PROV_MAX_QUEUES);
		return -EINVAL;
	}

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
	sc.buffer_bytes = ((v = host->config(host->host, "buffer_mb")) ? (uint32_t)atoi(v) : 128) << 20;
	host_addr_stack_config(p, &sc);
	sc.sndbuf = 256 * 1024;
	sc.rcvbuf = 256 * 1024;
	if (getrandom(sc.secret, sizeof sc.secret, 0) != (ssize_t)sizeof sc.secret) {
		snprintf(err, errlen, "getrandom failed");
		return -EIO;
	}
	size_t arena = usnet_stack_mem_size(&sc);
	if (!arena) {
		snprintf(err, errlen, "invalid stack configuration (address %s)", ip);
		return -EINVAL;
	}
	size_t head = (sizeof(struct shared_head) + sc.max_sockets * sizeof(struct sock_meta) + 4095) & ~(size_t)4095;
	size_t total = head + ((arena + 4095) & ~(size_t)4095);
	bool made;
	void *m = state_map(total, &made, err, errlen);
	if (!m)
		return -ENOMEM;
	p->sh = m;
	p->meta = (struct sock_meta *)(p->sh + 1);
	if (made) {
		p->sh->max_sockets = sc.max_sockets;
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init(&p->sh->lock, &ma);
		pthread_mutexattr_destroy(&ma);
		p->st = usnet_stack_create((char *)m + head, total - head, &sc);
		if (!p->st) {
			snprintf(err, errlen, "the stack rejected its configuration (address %s)", ip);
			return -EINVAL;
		}
		if (p->gw)
			usnet_route_add(p->st, 0, 0, p->gw);
		p->sh->total = total;
		p->sh->head = head;
		atomic_store(&p->sh->magic, SHARED_HEAD_MAGIC);
	} else {
		p->st = (struct usnet_stack *)((char *)m + head);
	}
	p->io.netif = p->nif;
	p->io.queue = 0;
	p->io.on_event = on_event;
	p->io.ctx = p;
	usnet_tx_defer_init(&p->held_nif, p->nif, 0);   /* 0: no flush by count */
	p->held_io = p->io;
	p->held_io.netif = &p->held_nif.base;
	batching_prov = p;
	*ctx = p;
	char line[96];
	snprintf(line, sizeof line, "stack on %s, %u receive queue%s", p->nif->info.ifname, p->nqueues,
		 p->nqueues == 1 ? "" : "s");
	logf_(p, USNET_PLOG_INFO, "%s", line);
	return 0;
}

/* ---- addresses ----------------------------------------------------------- */

static bool is_loopback(uint32_t ip) { return (ip >> 24) == 127; }

enum addr_kind { A_OK, A_HANDOVER, A_BAD };

/* Turn a program's address into the stack's; AF_INET6 only for v4-mapped
 * and the unspecified address. */
static enum addr_kind addr_in(const struct sock_meta *m, const struct sockaddr *sa, socklen_t len,
			      struct usnet_addr *out, int *err)
{
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
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) && m->domain6) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof in6);
		out->port = ntohs(in6.sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr) && !m->v6only) {
			uint32_t v4;
			memcpy(&v4, &in6.sin6_addr.s6_addr[12], 4);
			out->ip = ntohl(v4);
			return A_OK;
		}
		if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr) && !m->v6only) {
			out->ip = 0;
			return A_OK;
		}
		return A_HANDOVER;   /* native IPv6: the kernel's */
	}
	if (sa->sa_family == AF_UNSPEC) {
		*err = -EAFNOSUPPORT;
		return A_BAD;
	}
	*err = m->domain6 ? -EINVAL : -EAFNOSUPPORT;
	return A_BAD;
}

static void addr_out(const struct sock_meta *m, const struct usnet_addr *a, struct sockaddr *sa, socklen_t *len)
{
	if (!sa || !len)
		return;
	union { struct sockaddr_in in; struct sockaddr_in6 in6; } u;
	memset(&u, 0, sizeof u);
	socklen_t full;
	if (m->domain6) {
		u.in6.sin6_family = AF_INET6;
		u.in6.sin6_port = htons(a->port);
		if (a->ip) {
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

/* ---- socket ops ------------------------------------------------------------ */

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
	stack_prov_lock(p);
	int s = usnet_socket(p->st, t);
	if (s >= 0) {
		usnet_sock_set_user(p->st, s, cookie);
		if ((uint32_t)s < p->sh->max_sockets)
			p->meta[s] = (struct sock_meta){ .domain6 = domain == AF_INET6, .type = (uint8_t)type,
							.protocol = (uint8_t)protocol };
	}
	stack_prov_unlock(p);
	if (s < 0)
		return s == -USNET_ENOMEM || s == -USNET_ENFILE ? -ENFILE : s;
	*out = (usnet_psock_t)s;
	return 0;
}

static int p_bind(void *ctx, usnet_psock_t s, const struct sockaddr *sa, socklen_t len)
{
	struct prov *p = ctx;
	struct usnet_addr a;
	int err = 0;
	enum addr_kind k = addr_in(&p->meta[s], sa, len, &a, &err);
	if (k == A_BAD)
		return err;
	if (k == A_HANDOVER || (a.ip != 0 && a.ip != p->ip))
		return USNET_PROVIDER_HANDOVER;   /* loopback, another address */
	int r = host_addr_bind_check(p, p->meta[s].type, a.port);
	if (r < 0)
		return r;
	stack_prov_lock(p);
	r = usnet_bind(p->st, (usnet_sock_t)s, &a);
	stack_prov_unlock(p);
	if (r == 0)
		host_addr_bound(p, p->meta[s].type, a.port);
	return r;
}

static int p_listen(void *ctx, usnet_psock_t s, int backlog)
{
	struct prov *p = ctx;
	if (backlog < 0 || backlog > 4096)
		backlog = 4096;
	stack_prov_lock(p);
	int r = usnet_listen(p->st, (usnet_sock_t)s, backlog);
	stack_prov_unlock(p);
	return r;
}

static int p_accept(void *ctx, usnet_psock_t s, struct sockaddr *sa, socklen_t *len, uint64_t cookie,
		    usnet_psock_t *out)
{
	struct prov *p = ctx;
	struct usnet_addr peer = { 0, 0 };
	stack_prov_lock(p);
	int n = usnet_accept(p->st, &p->io, (usnet_sock_t)s, &peer, now_ns());
	if (n >= 0) {
		usnet_sock_set_user(p->st, n, cookie);
		p->sh->tcp_accepted++;
		if ((uint32_t)n < p->sh->max_sockets)
			p->meta[n] = p->meta[s];
	}
	stack_prov_unlock(p);
	if (n < 0)
		return n;
	addr_out(&p->meta[s], &peer, sa, len);
	*out = (usnet_psock_t)n;
	/* A notification for the new socket: readiness may predate the cookie. */
	p->host->notify(p->host->host, cookie, 0);
	return 0;
}

static int p_connect(void *ctx, usnet_psock_t s, const struct sockaddr *sa, socklen_t len)
{
	struct prov *p = ctx;
	struct usnet_addr a;
	int err = 0;
	enum addr_kind k = addr_in(&p->meta[s], sa, len, &a, &err);
	if (k == A_BAD)
		return err;
	if (k == A_HANDOVER || is_loopback(a.ip) || !reachable(p, a.ip) ||
	    host_addr_kernel_port(p, p->meta[s].type, a.ip, a.port))
		return USNET_PROVIDER_HANDOVER;
	host_addr_resolve(p, a.ip);
	stack_prov_lock(p);
	int r = usnet_connect(p->st, &p->io, (usnet_sock_t)s, &a, now_ns());
	if (r == 0 || r == -USNET_EINPROGRESS)
		p->sh->tcp_connects++;
	stack_prov_unlock(p);
	return r;
}

static long p_sendmsg(void *ctx, usnet_psock_t s, const struct msghdr *m, int flags)
{
	struct prov *p = ctx;
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	struct usnet_addr to, *top = NULL;
	if (m->msg_name && m->msg_namelen) {
		int err = 0;
		enum addr_kind k = addr_in(&p->meta[s], m->msg_name, m->msg_namelen, &to, &err);
		if (k == A_BAD)
			return err;
		if (p->meta[s].type == SOCK_DGRAM) {
			if (k == A_HANDOVER || is_loopback(to.ip) || !reachable(p, to.ip) ||
			    host_addr_kernel_port(p, SOCK_DGRAM, to.ip, to.port)) {
				/* Not the stack's: an unbound socket moves to the kernel. */
				struct usnet_addr me = { 0, 0 };
				stack_prov_lock(p);
				usnet_getsockname(p->st, (usnet_sock_t)s, &me);
				pthread_mutex_unlock(&p->sh->lock);
				char l[96];
				snprintf(l, sizeof l, "datagram to %08x is not the stack's (socket port %u)", to.ip, me.port);
				p->host->log(p->host->host, USNET_PLOG_DEBUG, l);
				return me.port == 0 ? USNET_PROVIDER_HANDOVER : -ENETUNREACH;
			}
			top = &to;
		}
	}
	unsigned uf = (flags & MSG_MORE) ? USNET_MSG_MORE : 0;
	stack_prov_lock(p);
	long r = usnet_sendv(p->st, io_for_data(p), (usnet_sock_t)s, (const struct usnet_iovec *)m->msg_iov,
			     (int)m->msg_iovlen, uf, top, now_ns());
	unlock_io(p);
	return r;
}

static long p_recvmsg(void *ctx, usnet_psock_t s, struct msghdr *m, int flags)
{
	struct prov *p = ctx;
	if (flags & MSG_OOB)
		return -EINVAL;
	bool dgram = p->meta[s].type == SOCK_DGRAM;
	unsigned uf = ((flags & MSG_PEEK) ? USNET_MSG_PEEK : 0) | (dgram ? USNET_MSG_TRUNC : 0);
	size_t cap = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		cap += m->msg_iov[i].iov_len;
	struct usnet_addr from = { 0, 0 };
	stack_prov_lock(p);
	long r = usnet_recvv(p->st, io_for_data(p), (usnet_sock_t)s, (const struct usnet_iovec *)m->msg_iov,
			     (int)m->msg_iovlen, uf, &from, now_ns());
	unlock_io(p);
	m->msg_flags = 0;
	m->msg_controllen = 0;
	if (r < 0)
		return r;
	if (m->msg_name) {
		if (dgram)
			addr_out(&p->meta[s], &from, m->msg_name, &m->msg_namelen);
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

static int p_shutdown(void *ctx, usnet_psock_t s, int how)
{
	struct prov *p = ctx;
	stack_prov_lock(p);
	int r = usnet_shutdown(p->st, &p->io, (usnet_sock_t)s, how, now_ns());
	stack_prov_unlock(p);
	return r;
}

static int p_close(void *ctx, usnet_psock_t s)
{
	struct prov *p = ctx;
	stack_prov_lock(p);
	int r = usnet_close(p->st, &p->io, (usnet_sock_t)s, now_ns());
	stack_prov_unlock(p);
	return r;
}

static int p_getsockname(void *ctx, usnet_psock_t s, struct sockaddr *sa, socklen_t *len)
{
	struct prov *p = ctx;
	struct usnet_addr a = { 0, 0 }, peer = { 0, 0 };
	stack_prov_lock(p);
	int r = usnet_getsockname(p->st, (usnet_sock_t)s, &a);
	/* A connected socket has a source address even when bound to the
	 * wildcard: the stack's only one. */
	if (r == 0 && a.ip == 0 && usnet_getpeername(p->st, (usnet_sock_t)s, &peer) == 0 && peer.ip)
		a.ip = p->ip;
	pthread_mutex_unlock(&p->sh->lock);
	if (r < 0)
		return r;
	addr_out(&p->meta[s], &a, sa, len);
	return 0;
}

static int p_getpeername(void *ctx, usnet_psock_t s, struct sockaddr *sa, socklen_t *len)
{
	struct prov *p = ctx;
	struct usnet_addr a = { 0, 0 };
	stack_prov_lock(p);
	int r = usnet_getpeername(p->st, (usnet_sock_t)s, &a);
	stack_prov_unlock(p);
	if (r < 0)
		return r;
	addr_out(&p->meta[s], &a, sa, len);
	return 0;
}

static uint32_t p_poll(void *ctx, usnet_psock_t s)
{
	struct prov *p = ctx;
	stack_prov_lock(p);
	uint32_t ev = usnet_sock_events(p->st, (usnet_sock_t)s);
	pthread_mutex_unlock(&p->sh->lock);   /* nothing to flush */
	return ev;
}

/* Every queue's fd: a frame on any queue must wake a sleeping program. */
static int p_wait_fds(void *ctx, int *fds, int max)
{
	struct prov *p = ctx;
	int n = 0;
	for (uint16_t q = 0; q < p->nqueues && n < max; q++) {
		int fd = usnet_netif_wait_fd(p->nif, q);
		if (fd >= 0)
			fds[n++] = fd;
	}
	return n;
}

/* Up to `bursts` rx bursts of queue q into the stack; returns false when the
 * queue had more than that (the caller comes back to it). */
static bool drain_queue(struct prov *p, uint16_t q, int bursts, uint64_t now)
{
	struct usnet_pkt pkts[RX_BATCH];
	for (int b = 0; b < bursts; b++) {
		int n = usnet_netif_rx_burst(p->nif, q, pkts, RX_BATCH);
		if (n <= 0)
			return true;
		p->sh->rx_frames += (uint64_t)n;
		p->sh->rx_frames_queue[q] += (uint64_t)n;
		usnet_stack_input(p->st, &p->io, pkts, (unsigned)n, now);
		usnet_netif_rx_release(p->nif, q, pkts, (unsigned)n);
		if (n < RX_BATCH)
			return true;
	}
	return false;
}

static uint64_t p_progress(void *ctx, uint64_t now)
{
	struct prov *p = ctx;
	/* Someone else is at it: they will see the frames. */
	int r = pthread_mutex_trylock(&p->sh->lock);
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&p->sh->lock);
	else if (r != 0)
		return now + 1000000;
	/* The caller read `now` before the lock, maybe a preemption ago; the
	 * stack's time must not step back behind a call another thread made
	 * meanwhile (an ACK "before" its segment left is a wrapped RTT). */
	now = now_ns();
	/* Round-robin, a few bursts per queue per round, so that a busy
	 * queue does not starve the others; 8 bursts in all per queue, as
	 * with one queue, before the timers get their turn. */
	bool all_drained = false;
	for (int round = 0; round < 4 && !all_drained; round++) {
		all_drained = true;
		for (uint16_t q = 0; q < p->nqueues; q++)
			if (!drain_queue(p, q, 2, now))
				all_drained = false;
	}
	p->sh->rx_calls++;
	uint64_t next = usnet_stack_poll(p->st, &p->io, now);
	host_addr_neigh_sync(p, now);
	p->sh->next_deadline = next;
	stack_prov_unlock(p);
	return next;
}

static void p_fork_child(void *ctx)
{
	struct prov *p = ctx;
	if (p->nif && p->nif->ops->after_fork)
		p->nif->ops->after_fork(p->nif);
}

static size_t p_stats(void *ctx, char *buf, size_t len)
{
	struct prov *p = ctx;
	struct usnet_stack_stats s;
	stack_prov_lock(p);
	usnet_stack_stats(p->st, &s);
	pthread_mutex_unlock(&p->sh->lock);
	int n = snprintf(buf, len,
			 "netif %s %s\nrx_frames %llu\ntx_frames %llu\ntcp_accepted %llu\ntcp_connects %llu\n"
			 "tcp_rx %llu\ntcp_tx %llu\ntcp_retrans %llu\ntcp_rto %llu\n"
			 "tcp_rst_tx %llu\nudp_rx %llu\nudp_tx %llu\narp_rx %llu\narp_waiting %llu\narp_drop %llu\n"
			 "sockets_in_use %u\ntcp_time_wait %u\ntcp_orphans %u\n"
			 "buffers_in_use %llu\ntx_no_buffer %llu\nqueues %u\n",
			 p->nif->info.backend, p->nif->info.ifname,
			 (unsigned long long)s.rx_frames, (unsigned long long)s.tx_frames,
			 (unsigned long long)p->sh->tcp_accepted, (unsigned long long)p->sh->tcp_connects,
			 (unsigned long long)s.tcp_rx, (unsigned long long)s.tcp_tx,
			 (unsigned long long)s.tcp_retrans, (unsigned long long)s.tcp_rto,
			 (unsigned long long)s.tcp_rst_tx,
			 (unsigned long long)s.udp_rx, (unsigned long long)s.udp_tx,
			 (unsigned long long)s.arp_rx, (unsigned long long)s.arp_waiting,
			 (unsigned long long)s.arp_drop, s.sockets_in_use, s.tcp_time_wait, s.tcp_orphans,
			 (unsigned long long)s.buffers_in_use, (unsigned long long)s.tx_no_buffer, p->nqueues);
	size_t at = n < 0 ? 0 : ((size_t)n < len ? (size_t)n : len - 1);
	for (uint16_t q = 0; q < p->nqueues && at + 1 < len; q++) {
		n = snprintf(buf + at, len - at, "rx_frames_queue_%u %llu\n", q,
			     (unsigned long long)p->sh->rx_frames_queue[q]);
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
};

const struct usnet_provider *usnet_provider_stack(void)
{
	return &stack_provider;
}
