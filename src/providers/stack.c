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
 * Policy: AF_INET/AF_INET6 TCP and UDP are the stack's; a socket bound to
 * loopback or to an address the stack does not own, or connected to
 * loopback or to a destination it has no route for, is handed over to the
 * kernel.  The stack's own address is the stack's (it loops back to itself:
 * every process attached to the stack can reach the others' listeners).  AF_INET6 sockets are dual-stack for
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
#include "stack_prov.h"

#define RX_BATCH 32

struct prov stack_prov;
#define P stack_prov

/* Sends leave their frames queued for the next flush (builtin.h). */
static bool tx_batch;

/*
 * The stack makes the netif flush at the end of every call that queued a
 * frame.  With batching, sendmsg and recvmsg run the stack on `held_io`,
 * whose netif (a tx defer wrapper, include/usnet/netif_wrap.h) forwards
 * everything to the real one except the flush: the frames stay queued in the
 * backend's ring, and leave at the next real flush (stack_prov_unlock() of
 * any other call, or usnet_stack_prov_flush()).
 */
static struct usnet_tx_defer held_nif;
static struct usnet_io held_io;

/* The io a sendmsg or recvmsg runs the stack on. */
static struct usnet_io *io_for_data(void)
{
	return tx_batch ? &held_io : &P.io;
}

void usnet_stack_prov_tx_batch(int on)
{
	tx_batch = on != 0;
}

int usnet_stack_prov_flush(int wait)
{
	if (!P.sh)
		return 0;
	if (wait) {
		stack_prov_lock();
	} else {
		int r = pthread_mutex_trylock(&P.sh->lock);
		if (r == EOWNERDEAD)
			pthread_mutex_consistent(&P.sh->lock);
		else if (r != 0)
			return -EBUSY;
	}
	stack_prov_unlock();
	return 0;
}

/* The end of a sendmsg or recvmsg: the flush waits when batching. */
static void unlock_io(void)
{
	if (tx_batch)
		stack_prov_unlock_quiet();
	else
		stack_prov_unlock();
}


static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void stack_prov_lock(void)
{
	int r = pthread_mutex_lock(&P.sh->lock);
	if (r == EOWNERDEAD)   /* a process died inside the stack: carry on */
		pthread_mutex_consistent(&P.sh->lock);
}

void stack_prov_unlock(void)
{
	if (held_nif.lower)
		usnet_tx_defer_flush(&held_nif, P.io.queue);   /* the held frames too */
	else
		usnet_netif_flush(P.nif, P.io.queue);
	pthread_mutex_unlock(&P.sh->lock);
}

static void on_event(struct usnet_io *io, usnet_sock_t s, uint32_t events, uint64_t user)
{
	(void)io;
	(void)s;
	P.host->notify(P.host->host, user, events);
}

static void logf_(int level, const char *fmt, const char *a)
{
	char line[256];
	snprintf(line, sizeof line, fmt, a);
	P.host->log(P.host->host, level, line);
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
static int netif_get(const struct usnet_netif_config *nc, char *err, size_t errlen)
{
	if (attached.state_fd < 0)
		return usnet_netif_open(nc, &P.nif, err, errlen);
	int r = usnet_netif_attach(attached.share, &P.nif, err, errlen);
	if (r == 0 && nc->impair && nc->impair[0]) {
		struct usnet_netif *w;
		if ((r = usnet_impair_wrap(P.nif, nc->impair, &w, err, errlen)) == 0)
			P.nif = w;
	}
	if (r == 0 && nc->pcap && nc->pcap[0]) {
		struct usnet_netif *w;
		if ((r = usnet_pcap_wrap(P.nif, nc->pcap, &w, err, errlen)) == 0)
			P.nif = w;
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

static int p_init(const struct usnet_provider_host *host, void **ctx, char *err, size_t errlen)
{
	P.host = host;
	*ctx = &P;
	const char *ip = host->config(host->host, "ip");
	const char *gw = host->config(host->host, "gw");
	const char *mac = host->config(host->host, "mac");
	struct usnet_netif_config nc = {
		.backend = host->config(host->host, "backend"),
		.iface = host->config(host->host, "iface"),
		.pcap = host->config(host->host, "pcap"),
		.impair = host->config(host->host, "impair"),
		.options = host->config(host->host, "netif_options"),
	};
	if (!nc.backend)
		nc.backend = "tap";
	if (!ip || parse_cidr(ip, &P.ip, &P.prefix)) {
		snprintf(err, errlen, "the stack needs an address: USNET_IP=ADDR/PREFIX (--ip)");
		return -EINVAL;
	}
	if (gw && parse_cidr(gw, &P.gw, &(uint32_t){ 0 })) {
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
	int r = netif_get(&nc, err, errlen);
	if (r < 0)
		return r;

	struct usnet_stack_config sc;
	usnet_stack_config_init(&sc);
	memcpy(sc.mac, P.nif->info.mac, sizeof sc.mac);
	sc.ip = P.ip;
	sc.prefix_len = (uint8_t)P.prefix;
	sc.gateway = P.gw;
	if (P.nif->info.mtu)
		sc.mtu = P.nif->info.mtu;
	sc.netif_caps = P.nif->info.caps;
	const char *v;
	sc.max_sockets = (v = host->config(host->host, "sockets")) ? (uint32_t)atoi(v) : 4096;
	sc.buffer_bytes = ((v = host->config(host->host, "buffer_mb")) ? (uint32_t)atoi(v) : 128) << 20;
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
	P.sh = m;
	P.meta = (struct sock_meta *)(P.sh + 1);
	if (made) {
		P.sh->max_sockets = sc.max_sockets;
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init(&P.sh->lock, &ma);
		pthread_mutexattr_destroy(&ma);
		P.st = usnet_stack_create((char *)m + head, total - head, &sc);
		if (!P.st) {
			snprintf(err, errlen, "the stack rejected its configuration (address %s)", ip);
			return -EINVAL;
		}
		if (P.gw)
			usnet_route_add(P.st, 0, 0, P.gw);
		P.sh->total = total;
		P.sh->head = head;
		atomic_store(&P.sh->magic, SHARED_HEAD_MAGIC);
	} else {
		P.st = (struct usnet_stack *)((char *)m + head);
	}
	P.io.netif = P.nif;
	P.io.queue = 0;
	P.io.on_event = on_event;
	P.io.ctx = &P;
	usnet_tx_defer_init(&held_nif, P.nif, 0);   /* 0: no flush by count */
	held_io = P.io;
	held_io.netif = &held_nif.base;
	logf_(USNET_PLOG_INFO, "stack on %s", P.nif->info.ifname);
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

static bool reachable(uint32_t ip)
{
	uint32_t mask = P.prefix ? ~0u << (32 - P.prefix) : 0;
	return P.gw || ((ip & mask) == (P.ip & mask));
}

/* ---- socket ops ------------------------------------------------------------ */

static int p_socket(void *ctx, int domain, int type, int protocol, uint64_t cookie, usnet_psock_t *out)
{
	(void)ctx;
	int t;
	if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
		t = USNET_SOCK_STREAM;
	else if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
		t = USNET_SOCK_DGRAM;
	else
		return USNET_PROVIDER_DECLINE;
	stack_prov_lock();
	int s = usnet_socket(P.st, t);
	if (s >= 0) {
		usnet_sock_set_user(P.st, s, cookie);
		if ((uint32_t)s < P.sh->max_sockets)
			P.meta[s] = (struct sock_meta){ .domain6 = domain == AF_INET6, .type = (uint8_t)type,
							.protocol = (uint8_t)protocol };
	}
	stack_prov_unlock();
	if (s < 0)
		return s == -USNET_ENOMEM || s == -USNET_ENFILE ? -ENFILE : s;
	*out = (usnet_psock_t)s;
	return 0;
}

static int p_bind(void *ctx, usnet_psock_t s, const struct sockaddr *sa, socklen_t len)
{
	(void)ctx;
	struct usnet_addr a;
	int err = 0;
	enum addr_kind k = addr_in(&P.meta[s], sa, len, &a, &err);
	if (k == A_BAD)
		return err;
	if (k == A_HANDOVER || (a.ip != 0 && a.ip != P.ip))
		return USNET_PROVIDER_HANDOVER;   /* loopback, another address */
	stack_prov_lock();
	int r = usnet_bind(P.st, (usnet_sock_t)s, &a);
	stack_prov_unlock();
	return r;
}

static int p_listen(void *ctx, usnet_psock_t s, int backlog)
{
	(void)ctx;
	if (backlog < 0 || backlog > 4096)
		backlog = 4096;
	stack_prov_lock();
	int r = usnet_listen(P.st, (usnet_sock_t)s, backlog);
	stack_prov_unlock();
	return r;
}

static int p_accept(void *ctx, usnet_psock_t s, struct sockaddr *sa, socklen_t *len, uint64_t cookie,
		    usnet_psock_t *out)
{
	(void)ctx;
	struct usnet_addr peer = { 0, 0 };
	stack_prov_lock();
	int n = usnet_accept(P.st, &P.io, (usnet_sock_t)s, &peer, now_ns());
	if (n >= 0) {
		usnet_sock_set_user(P.st, n, cookie);
		P.sh->tcp_accepted++;
		if ((uint32_t)n < P.sh->max_sockets)
			P.meta[n] = P.meta[s];
	}
	stack_prov_unlock();
	if (n < 0)
		return n;
	addr_out(&P.meta[s], &peer, sa, len);
	*out = (usnet_psock_t)n;
	/* A notification for the new socket: readiness may predate the cookie. */
	P.host->notify(P.host->host, cookie, 0);
	return 0;
}

static int p_connect(void *ctx, usnet_psock_t s, const struct sockaddr *sa, socklen_t len)
{
	(void)ctx;
	struct usnet_addr a;
	int err = 0;
	enum addr_kind k = addr_in(&P.meta[s], sa, len, &a, &err);
	if (k == A_BAD)
		return err;
	if (k == A_HANDOVER || is_loopback(a.ip) || !reachable(a.ip))
		return USNET_PROVIDER_HANDOVER;
	stack_prov_lock();
	int r = usnet_connect(P.st, &P.io, (usnet_sock_t)s, &a, now_ns());
	if (r == 0 || r == -USNET_EINPROGRESS)
		P.sh->tcp_connects++;
	stack_prov_unlock();
	return r;
}

static long p_sendmsg(void *ctx, usnet_psock_t s, const struct msghdr *m, int flags)
{
	(void)ctx;
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	struct usnet_addr to, *top = NULL;
	if (m->msg_name && m->msg_namelen) {
		int err = 0;
		enum addr_kind k = addr_in(&P.meta[s], m->msg_name, m->msg_namelen, &to, &err);
		if (k == A_BAD)
			return err;
		if (P.meta[s].type == SOCK_DGRAM) {
			if (k == A_HANDOVER || is_loopback(to.ip) || !reachable(to.ip)) {
				/* Not the stack's: an unbound socket moves to the kernel. */
				struct usnet_addr me = { 0, 0 };
				stack_prov_lock();
				usnet_getsockname(P.st, (usnet_sock_t)s, &me);
				pthread_mutex_unlock(&P.sh->lock);
				char l[96];
				snprintf(l, sizeof l, "datagram to %08x is not the stack's (socket port %u)", to.ip, me.port);
				P.host->log(P.host->host, USNET_PLOG_DEBUG, l);
				return me.port == 0 ? USNET_PROVIDER_HANDOVER : -ENETUNREACH;
			}
			top = &to;
		}
	}
	unsigned uf = (flags & MSG_MORE) ? USNET_MSG_MORE : 0;
	stack_prov_lock();
	long r = usnet_sendv(P.st, io_for_data(), (usnet_sock_t)s, (const struct usnet_iovec *)m->msg_iov,
			     (int)m->msg_iovlen, uf, top, now_ns());
	unlock_io();
	return r;
}

static long p_recvmsg(void *ctx, usnet_psock_t s, struct msghdr *m, int flags)
{
	(void)ctx;
	if (flags & MSG_OOB)
		return -EINVAL;
	bool dgram = P.meta[s].type == SOCK_DGRAM;
	unsigned uf = ((flags & MSG_PEEK) ? USNET_MSG_PEEK : 0) | (dgram ? USNET_MSG_TRUNC : 0);
	size_t cap = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		cap += m->msg_iov[i].iov_len;
	struct usnet_addr from = { 0, 0 };
	stack_prov_lock();
	long r = usnet_recvv(P.st, io_for_data(), (usnet_sock_t)s, (const struct usnet_iovec *)m->msg_iov,
			     (int)m->msg_iovlen, uf, &from, now_ns());
	unlock_io();
	m->msg_flags = 0;
	m->msg_controllen = 0;
	if (r < 0)
		return r;
	if (m->msg_name) {
		if (dgram)
			addr_out(&P.meta[s], &from, m->msg_name, &m->msg_namelen);
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
	(void)ctx;
	stack_prov_lock();
	int r = usnet_shutdown(P.st, &P.io, (usnet_sock_t)s, how, now_ns());
	stack_prov_unlock();
	return r;
}

static int p_close(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	stack_prov_lock();
	int r = usnet_close(P.st, &P.io, (usnet_sock_t)s, now_ns());
	stack_prov_unlock();
	return r;
}

static int p_getsockname(void *ctx, usnet_psock_t s, struct sockaddr *sa, socklen_t *len)
{
	(void)ctx;
	struct usnet_addr a = { 0, 0 }, peer = { 0, 0 };
	stack_prov_lock();
	int r = usnet_getsockname(P.st, (usnet_sock_t)s, &a);
	/* A connected socket has a source address even when bound to the
	 * wildcard: the stack's only one. */
	if (r == 0 && a.ip == 0 && usnet_getpeername(P.st, (usnet_sock_t)s, &peer) == 0 && peer.ip)
		a.ip = P.ip;
	pthread_mutex_unlock(&P.sh->lock);
	if (r < 0)
		return r;
	addr_out(&P.meta[s], &a, sa, len);
	return 0;
}

static int p_getpeername(void *ctx, usnet_psock_t s, struct sockaddr *sa, socklen_t *len)
{
	(void)ctx;
	struct usnet_addr a = { 0, 0 };
	stack_prov_lock();
	int r = usnet_getpeername(P.st, (usnet_sock_t)s, &a);
	stack_prov_unlock();
	if (r < 0)
		return r;
	addr_out(&P.meta[s], &a, sa, len);
	return 0;
}

static uint32_t p_poll(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	stack_prov_lock();
	uint32_t ev = usnet_sock_events(P.st, (usnet_sock_t)s);
	pthread_mutex_unlock(&P.sh->lock);   /* nothing to flush */
	return ev;
}

static int p_wait_fds(void *ctx, int *fds, int max)
{
	(void)ctx;
	int fd = usnet_netif_wait_fd(P.nif, P.io.queue);
	if (fd < 0 || max < 1)
		return 0;
	fds[0] = fd;
	return 1;
}

static uint64_t p_progress(void *ctx, uint64_t now)
{
	(void)ctx;
	struct usnet_pkt pkts[RX_BATCH];
	/* Someone else is at it: they will see the frames. */
	int r = pthread_mutex_trylock(&P.sh->lock);
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&P.sh->lock);
	else if (r != 0)
		return now + 1000000;
	/* The caller read `now` before the lock, maybe a preemption ago; the
	 * stack's time must not step back behind a call another thread made
	 * meanwhile (an ACK "before" its segment left is a wrapped RTT). */
	now = now_ns();
	for (int b = 0; b < 8; b++) {
		int n = usnet_netif_rx_burst(P.nif, P.io.queue, pkts, RX_BATCH);
		if (n <= 0)
			break;
		P.sh->rx_frames += (uint64_t)n;
		usnet_stack_input(P.st, &P.io, pkts, (unsigned)n, now);
		usnet_netif_rx_release(P.nif, P.io.queue, pkts, (unsigned)n);
		if (n < RX_BATCH)
			break;
	}
	P.sh->rx_calls++;
	uint64_t next = usnet_stack_poll(P.st, &P.io, now);
	P.sh->next_deadline = next;
	stack_prov_unlock();
	return next;
}

static void p_fork_child(void *ctx)
{
	(void)ctx;
	if (P.nif && P.nif->ops->after_fork)
		P.nif->ops->after_fork(P.nif);
}

static size_t p_stats(void *ctx, char *buf, size_t len)
{
	(void)ctx;
	struct usnet_stack_stats s;
	stack_prov_lock();
	usnet_stack_stats(P.st, &s);
	pthread_mutex_unlock(&P.sh->lock);
	int n = snprintf(buf, len,
			 "netif %s %s\nrx_frames %llu\ntx_frames %llu\ntcp_accepted %llu\ntcp_connects %llu\n"
			 "tcp_rx %llu\ntcp_tx %llu\ntcp_retrans %llu\ntcp_rto %llu\n"
			 "tcp_rst_tx %llu\nudp_rx %llu\nudp_tx %llu\narp_rx %llu\narp_waiting %llu\narp_drop %llu\n"
			 "sockets_in_use %u\n"
			 "buffers_in_use %llu\ntx_no_buffer %llu\n",
			 P.nif->info.backend, P.nif->info.ifname,
			 (unsigned long long)s.rx_frames, (unsigned long long)s.tx_frames,
			 (unsigned long long)P.sh->tcp_accepted, (unsigned long long)P.sh->tcp_connects,
			 (unsigned long long)s.tcp_rx, (unsigned long long)s.tcp_tx,
			 (unsigned long long)s.tcp_retrans, (unsigned long long)s.tcp_rto,
			 (unsigned long long)s.tcp_rst_tx,
			 (unsigned long long)s.udp_rx, (unsigned long long)s.udp_tx,
			 (unsigned long long)s.arp_rx, (unsigned long long)s.arp_waiting,
			 (unsigned long long)s.arp_drop, s.sockets_in_use,
			 (unsigned long long)s.buffers_in_use, (unsigned long long)s.tx_no_buffer);
	return n < 0 ? 0 : ((size_t)n < len ? (size_t)n : len - 1);
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
