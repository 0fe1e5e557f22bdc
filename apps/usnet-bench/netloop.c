/*
 * netloop — kernel sockets (epoll) or the native usnet API behind one small
 * interface; see netloop.h.  The usnet side is compiled in when
 * NETLOOP_WITH_USNET is defined (the runtime libraries are built).
 */
#include "netloop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef NETLOOP_WITH_USNET
#include "usnet_app.h"
#endif

const char netloop_usage[] =
	"  --kernel              use kernel sockets (epoll) instead of usnet\n"
	"  --backend B           usnet netif backend (tap, memwire, afpacket, afxdp, ...)\n"
	"  --iface IF            interface (memwire: WIRE:SIDE)\n"
	"  --ip A.B.C.D/N        our address on that interface\n"
	"  --gw A.B.C.D          default gateway\n"
	"  --ip6 ADDR/N          an IPv6 address (repeatable, up to 4); the stack also\n"
	"                        takes fe80:: from its MAC and checks for duplicates\n"
	"  --gw6 ADDR            default IPv6 router\n"
	"  --netif-opts S        backend options, e.g. mode=skb (afxdp), rx=v3 (afpacket)\n"
	"  --queues N            netif queues (default: one per thread)\n"
	"  --busy-poll US        spin this long before sleeping\n";

uint64_t netloop_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void netloop_options_init(struct netloop_options *o)
{
	memset(o, 0, sizeof *o);
}

int netloop_parse_option(struct netloop_options *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	const char **slot = NULL;
	int *num = NULL;

	if (strcmp(a, "--kernel") == 0) {
		o->kernel = 1;
		return 1;
	}
	if (strcmp(a, "--backend") == 0) slot = &o->backend;
	else if (strcmp(a, "--iface") == 0) slot = &o->iface;
	else if (strcmp(a, "--ip") == 0) slot = &o->ip_cidr;
	else if (strcmp(a, "--gw") == 0) slot = &o->gateway;
	else if (strcmp(a, "--gw6") == 0) slot = &o->gateway6;
	else if (strcmp(a, "--ip6") == 0) {
		if (o->n_ip6 >= NETLOOP_IP6_MAX) {
			fprintf(stderr, "--ip6: at most %d IPv6 addresses\n", NETLOOP_IP6_MAX);
			return -1;
		}
		slot = &o->ip6_cidr[o->n_ip6++];
	}
	else if (strcmp(a, "--netif-opts") == 0) slot = &o->netif_opts;
	else if (strcmp(a, "--queues") == 0) num = &o->queues;
	else if (strcmp(a, "--busy-poll") == 0) num = &o->busy_poll_us;
	else return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s needs an argument\n", a);
		return -1;
	}
	(*i)++;
	if (slot) {
		*slot = argv[*i];
	} else {
		char *end;
		long v = strtol(argv[*i], &end, 10);
		if (*end || v < 0 || v > 1000000) {
			fprintf(stderr, "%s: bad number '%s'\n", a, argv[*i]);
			return -1;
		}
		*num = (int)v;
	}
	return 1;
}

int netloop_has_usnet(void)
{
#ifdef NETLOOP_WITH_USNET
	return 1;
#else
	return 0;
#endif
}

/* ---- per-id bookkeeping shared by both modes ------------------------------ */

struct netloop_slot {
	void *user;
	uint32_t want;      /* kernel: the epoll mask registered */
	uint8_t queued;     /* usnet: already on the ready list */
};

struct netloop {
	int kernel;
	int has_ip6;         /* usnet mode with --ip6: netloop_listen_any takes :: */
	netloop_handler handler;
	void *ctx;
	struct netloop_slot *slots;
	size_t nslots;
	/* kernel */
	int epfd;
	int reserve_fd;      /* /dev/null, given up to refuse a connection at EMFILE */
	int said_emfile;
	/* usnet */
#ifdef NETLOOP_WITH_USNET
	struct usnet_app *app;
	struct usnet_stack *st;
	struct usnet_io *io;
	int *ready;          /* sockets whose readiness changed */
	size_t nready, capready;
	int *spare;          /* the other list, swapped in while dispatching */
	size_t capspare;
	/* While handlers run, the time read once after the poll: the stack
	 * wants the time with every call, and a handler makes several calls
	 * within microseconds of each other. */
	uint64_t dispatch_now;
	int dispatching;
#endif
};

static struct netloop_slot *slot_of(struct netloop *l, int id)
{
	if (id < 0)
		return NULL;
	if ((size_t)id >= l->nslots) {
		size_t n = l->nslots ? l->nslots : 256;
		while (n <= (size_t)id)
			n *= 2;
		struct netloop_slot *s = realloc(l->slots, n * sizeof *s);
		if (!s)
			return NULL;
		memset(s + l->nslots, 0, (n - l->nslots) * sizeof *s);
		l->slots = s;
		l->nslots = n;
	}
	return &l->slots[id];
}

void netloop_set_user(struct netloop *l, int id, void *user)
{
	struct netloop_slot *s = slot_of(l, id);
	if (s)
		s->user = user;
}

void *netloop_get_user(struct netloop *l, int id)
{
	return (id >= 0 && (size_t)id < l->nslots) ? l->slots[id].user : NULL;
}

/* ---- usnet mode ------------------------------------------------------------ */
#ifdef NETLOOP_WITH_USNET

/* The time to give the stack: the dispatch's, or the clock outside one. */
static uint64_t usnet_side_now(const struct netloop *l)
{
	return l->dispatching ? l->dispatch_now : usnet_app_now();
}

static void usnet_side_on_event(struct usnet_io *io, usnet_sock_t s, uint32_t events, uint64_t user)
{
	struct netloop *l = io->ctx;
	(void)events;
	(void)user;
	struct netloop_slot *sl = slot_of(l, s);
	if (!sl || sl->queued)
		return;
	if (l->nready == l->capready) {
		size_t n = l->capready ? l->capready * 2 : 256;
		int *r = realloc(l->ready, n * sizeof *r);
		if (!r)
			return;
		l->ready = r;
		l->capready = n;
	}
	sl->queued = 1;
	l->ready[l->nready++] = s;
}

_Static_assert(NETLOOP_IP6_MAX == USNET_IP6_ADDRS, "--ip6 takes as many addresses as the stack has");

/* h:port as the stack's address. */
static struct usnet_addr usnet_addr_of(const struct netloop_host *h, uint16_t port)
{
	struct usnet_addr a = { .ip = h->ip, .port = port };
	if (h->v6) {
		a.family = USNET_AF_INET6;
		a.ip = 0;
		memcpy(a.ip6, h->ip6, 16);
	}
	return a;
}

/* --ip6 and --gw6 through the runtime's one parser of them. */
static int usnet_side_ip6(const struct netloop_options *o, struct usnet_app_ip6 *v6, char *err, size_t errlen)
{
	memset(v6, 0, sizeof *v6);
	for (int i = 0; i < o->n_ip6; i++)
		if (usnet_app_ip6_option(v6, "--ip6", o->ip6_cidr[i], err, errlen) < 0)
			return -1;
	if (o->gateway6 && usnet_app_ip6_option(v6, "--gw6", o->gateway6, err, errlen) < 0)
		return -1;
	return 0;
}

static int usnet_side_open(struct netloop *l, const struct netloop_options *o, int index,
			   char *err, size_t errlen)
{
	struct usnet_app_config cfg;
	usnet_app_config_init(&cfg);
	cfg.netif.backend = o->backend;
	cfg.netif.iface = o->iface;
	cfg.netif.options = o->netif_opts;
	cfg.netif.queues = (uint16_t)(o->queues ? o->queues : 1);
	cfg.queue = (uint16_t)index;
	cfg.shared_netif = o->shared_netif;
	if (usnet_app_parse_cidr(o->ip_cidr, &cfg.ip, &cfg.prefix_len) < 0) {
		snprintf(err, errlen, "--ip '%s' is not A.B.C.D/N", o->ip_cidr);
		return -1;
	}
	if (o->gateway && usnet_app_parse_ip(o->gateway, &cfg.gateway) < 0) {
		snprintf(err, errlen, "--gw '%s' is not A.B.C.D", o->gateway);
		return -1;
	}
	if (usnet_side_ip6(o, &cfg.ip6, err, errlen) < 0)
		return -1;
	cfg.max_sockets = 4096;
	cfg.busy_poll_us = o->busy_poll_us;
	cfg.on_event = usnet_side_on_event;
	cfg.ctx = l;
	l->app = usnet_app_open(&cfg, err, errlen);
	if (!l->app)
		return -1;
	l->has_ip6 = cfg.ip6.n > 0;
	l->st = usnet_app_stack(l->app);
	l->io = usnet_app_io(l->app);
	return 0;
}

int netloop_prepare(struct netloop_options *o, int threads, char *err, size_t errlen)
{
	if (o->kernel)
		return 0;
	if (!o->backend || !o->iface || !o->ip_cidr) {
		snprintf(err, errlen, "usnet mode needs --backend, --iface and --ip (or use --kernel)");
		return -1;
	}
	uint32_t ip;
	uint8_t plen;
	if (usnet_app_parse_cidr(o->ip_cidr, &ip, &plen) < 0) {
		snprintf(err, errlen, "--ip '%s' is not A.B.C.D/N", o->ip_cidr);
		return -1;
	}
	struct usnet_app_ip6 v6;
	if (usnet_side_ip6(o, &v6, err, errlen) < 0)
		return -1;
	if (threads > 1) {
		/* One netif with a queue per thread; each thread's stack drives its own. */
		struct usnet_netif_config nc;
		memset(&nc, 0, sizeof nc);
		nc.backend = o->backend;
		nc.iface = o->iface;
		nc.options = o->netif_opts;
		nc.ipv4 = ip;  /* lets afxdp steer our address to us */
		nc.queues = (uint16_t)(o->queues ? o->queues : threads);
		o->queues = nc.queues;
		struct usnet_netif *nif = NULL;
		int rc = usnet_netif_open(&nc, &nif, err, errlen);
		if (rc < 0)
			return -1;
		if (nif->info.nqueues < threads) {
			snprintf(err, errlen, "%s on %s has %u queue(s), fewer than %d threads",
				 o->backend, o->iface, nif->info.nqueues, threads);
			usnet_netif_close(nif);
			return -1;
		}
		o->shared_netif = nif;
	}
	return 0;
}

void netloop_finish(struct netloop_options *o)
{
	if (o->shared_netif)
		usnet_netif_close(o->shared_netif);
	o->shared_netif = NULL;
}

#else /* !NETLOOP_WITH_USNET */

int netloop_prepare(struct netloop_options *o, int threads, char *err, size_t errlen)
{
	(void)threads;
	if (!o->kernel) {
		snprintf(err, errlen, "this build has no usnet runtime; use --kernel");
		return -1;
	}
	return 0;
}

void netloop_finish(struct netloop_options *o)
{
	(void)o;
}

#endif

/* ---- kernel mode ----------------------------------------------------------- */

static int kernel_watch(struct netloop *l, int fd, uint32_t mask, int op)
{
	struct epoll_event ev = { .events = mask, .data.fd = fd };
	struct netloop_slot *s = slot_of(l, fd);
	if (!s)
		return -ENOMEM;
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
		return -errno;
	s->want = mask;
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Take a new connection's socket into the loop: no Nagle, watched for `mask`,
 * no user pointer yet.  Closes it when it cannot be watched. */
static int kernel_adopt(struct netloop *l, int fd, uint32_t mask)
{
	set_nodelay(fd);
	int rc = kernel_watch(l, fd, mask, EPOLL_CTL_ADD);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	l->slots[fd].user = NULL;
	return fd;
}

void *netloop_ctx(struct netloop *l)
{
	return l->ctx;
}

struct netloop *netloop_open(const struct netloop_options *o, int index, netloop_handler h,
			     void *ctx, char *err, size_t errlen)
{
	struct netloop *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->kernel = o->kernel;
	l->handler = h;
	l->ctx = ctx;
	l->epfd = -1;
	l->reserve_fd = -1;
	if (l->kernel) {
		(void)index;
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (l->epfd < 0) {
			snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
			free(l);
			return NULL;
		}
		l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return l;
	}
#ifdef NETLOOP_WITH_USNET
	if (usnet_side_open(l, o, index, err, errlen) < 0) {
		free(l);
		return NULL;
	}
	return l;
#else
	snprintf(err, errlen, "this build has no usnet runtime; use --kernel");
	free(l);
	return NULL;
#endif
}

void netloop_close_loop(struct netloop *l)
{
	if (!l)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
#ifdef NETLOOP_WITH_USNET
	if (l->app)
		usnet_app_close(l->app);
	free(l->ready);
	free(l->spare);
#endif
	free(l->slots);
	free(l);
}

/* A listener on h:port (h->v6: an IPv6 socket, dual-stack on ::). */
static int listen_host(struct netloop *l, const struct netloop_host *h, uint16_t port)
{
	if (l->kernel) {
		int fd = socket(h->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
					  .sin_addr.s_addr = htonl(h->ip) };
		struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
		memcpy(&sa6.sin6_addr, h->ip6, 16);
		int rc = h->v6 ? bind(fd, (struct sockaddr *)&sa6, sizeof sa6)
			       : bind(fd, (struct sockaddr *)&sa, sizeof sa);
		if (rc < 0 || listen(fd, 1024) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		rc = kernel_watch(l, fd, EPOLLIN, EPOLL_CTL_ADD);
		if (rc < 0) {
			close(fd);
			return rc;
		}
		return fd;
	}
#ifdef NETLOOP_WITH_USNET
	int s = usnet_socket(l->st, USNET_SOCK_STREAM | (h->v6 ? USNET_SOCK_V6 : 0));
	if (s < 0)
		return s;
	usnet_setsockopt(l->st, s, USNET_SO_REUSEADDR, 1);
	struct usnet_addr a = usnet_addr_of(h, port);
	int rc = usnet_bind(l->st, s, &a);
	if (rc == 0)
		rc = usnet_listen(l->st, s, 1024);
	if (rc < 0) {
		usnet_close(l->st, l->io, s, usnet_side_now(l));
		return rc;
	}
	slot_of(l, s);
	return s;
#else
	return -ENOSYS;
#endif
}

int netloop_listen(struct netloop *l, uint32_t ip, uint16_t port)
{
	struct netloop_host h = { .ip = ip };
	return listen_host(l, &h, port);
}

int netloop_listen_any(struct netloop *l, uint16_t port)
{
	struct netloop_host h = { .v6 = l->has_ip6 };   /* :: or 0.0.0.0 */
	return listen_host(l, &h, port);
}

int netloop_parse_host(const char *s, struct netloop_host *h)
{
	struct in_addr a4;
	memset(h, 0, sizeof *h);
	if (inet_pton(AF_INET, s, &a4) == 1) {
		h->ip = ntohl(a4.s_addr);
		return 0;
	}
	char buf[INET6_ADDRSTRLEN];
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET6, buf, h->ip6) != 1)
		return -1;
	h->v6 = 1;
	return 0;
}

#ifdef NETLOOP_WITH_USNET
/* Take a new connection's socket into the loop: no Nagle, no user pointer yet. */
static void usnet_adopt(struct netloop *l, int s)
{
	usnet_setsockopt(l->st, s, USNET_TCP_NODELAY, 1);
	struct netloop_slot *sl = slot_of(l, s);
	if (sl)
		sl->user = NULL;
}
#endif

int netloop_accept(struct netloop *l, int listener)
{
	if (l->kernel) {
		int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && l->reserve_fd >= 0) {
			/* Out of descriptors: the listener stays ready and a loop
			 * would spin on it.  Refuse the connection instead (the
			 * reserve descriptor makes room to accept and close it);
			 * the next ones wait in the backlog or are refused too. */
			int e = errno;
			close(l->reserve_fd);
			fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				close(fd);
			l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (!l->said_emfile) {
				l->said_emfile = 1;
				fprintf(stderr, "netloop: out of file descriptors (%s): refusing new connections "
					"until some close\n", strerror(e));
			}
			return fd >= 0 ? -EAGAIN : -e;
		}
		if (fd < 0)
			return -errno;
		return kernel_adopt(l, fd, EPOLLIN | EPOLLRDHUP);
	}
#ifdef NETLOOP_WITH_USNET
	struct usnet_addr peer;
	int s = usnet_accept(l->st, l->io, listener, &peer, usnet_side_now(l));
	if (s < 0)
		return s;
	usnet_adopt(l, s);
	/* Data may have arrived with the handshake: look at it once. */
	usnet_side_on_event(l->io, s, 0, 0);
	return s;
#else
	return -ENOSYS;
#endif
}

void netloop_accept_all(struct netloop *l, int listener, void *(*adopt)(struct netloop *l, int id))
{
	for (;;) {
		int id = netloop_accept(l, listener);
		if (id < 0)
			return;
		void *user = adopt(l, id);
		if (!user) {
			netloop_close(l, id);
			continue;
		}
		netloop_set_user(l, id, user);
		l->handler(l, id, NETLOOP_EV_IN, user);
	}
}

int netloop_connect(struct netloop *l, uint32_t ip, uint16_t port)
{
	struct netloop_host h = { .ip = ip };
	return netloop_connect_host(l, &h, port);
}

int netloop_connect_host(struct netloop *l, const struct netloop_host *h, uint16_t port)
{
	if (l->kernel) {
		int fd = socket(h->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
					  .sin_addr.s_addr = htonl(h->ip) };
		struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
		memcpy(&sa6.sin6_addr, h->ip6, 16);
		int rc = h->v6 ? connect(fd, (struct sockaddr *)&sa6, sizeof sa6)
			       : connect(fd, (struct sockaddr *)&sa, sizeof sa);
		if (rc < 0 && errno != EINPROGRESS) {
			int e = -errno;
			close(fd);
			return e;
		}
		return kernel_adopt(l, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	}
#ifdef NETLOOP_WITH_USNET
	int s = usnet_socket(l->st, USNET_SOCK_STREAM | (h->v6 ? USNET_SOCK_V6 : 0));
	if (s < 0)
		return s;
	usnet_adopt(l, s);
	struct usnet_addr a = usnet_addr_of(h, port);
	int rc = usnet_connect(l->st, l->io, s, &a, usnet_side_now(l));
	if (rc < 0 && rc != -USNET_EINPROGRESS) {
		usnet_close(l->st, l->io, s, usnet_side_now(l));
		return rc;
	}
	return s;
#else
	return -ENOSYS;
#endif
}

long netloop_recv(struct netloop *l, int id, void *buf, size_t len)
{
	if (l->kernel) {
		ssize_t n = recv(id, buf, len, 0);
		return n < 0 ? -errno : n;
	}
#ifdef NETLOOP_WITH_USNET
	return usnet_recv(l->st, l->io, id, buf, len, 0, usnet_side_now(l));
#else
	return -ENOSYS;
#endif
}

int netloop_peek(struct netloop *l, int id, struct iovec *iov, int max)
{
	if (l->kernel)
		return -EOPNOTSUPP;
#ifdef NETLOOP_WITH_USNET
	struct usnet_iovec uv[8];
	if (max > 8)
		max = 8;
	int n = usnet_recv_peek(l->st, id, uv, max);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = uv[i].base;
		iov[i].iov_len = uv[i].len;
	}
	return n;
#else
	(void)id; (void)iov; (void)max;
	return -EOPNOTSUPP;
#endif
}

int netloop_consume(struct netloop *l, int id, size_t n)
{
	if (l->kernel)
		return -EOPNOTSUPP;
#ifdef NETLOOP_WITH_USNET
	return usnet_recv_consume(l->st, l->io, id, n, usnet_side_now(l));
#else
	(void)id; (void)n;
	return -EOPNOTSUPP;
#endif
}

long netloop_send(struct netloop *l, int id, const void *buf, size_t len)
{
	if (l->kernel) {
		ssize_t n = send(id, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		return n < 0 ? -errno : n;
	}
#ifdef NETLOOP_WITH_USNET
	return usnet_send(l->st, l->io, id, buf, len, 0, usnet_side_now(l));
#else
	return -ENOSYS;
#endif
}

long netloop_sendv(struct netloop *l, int id, const struct iovec *iov, int iovcnt)
{
	if (l->kernel) {
		struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t n = sendmsg(id, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		return n < 0 ? -errno : n;
	}
#ifdef NETLOOP_WITH_USNET
	struct usnet_iovec uv[16];
	if (iovcnt > 16)
		iovcnt = 16;
	for (int i = 0; i < iovcnt; i++) {
		uv[i].base = iov[i].iov_base;
		uv[i].len = iov[i].iov_len;
	}
	return usnet_sendv(l->st, l->io, id, uv, iovcnt, 0, NULL, usnet_side_now(l));
#else
	return -ENOSYS;
#endif
}

int netloop_shutdown_write(struct netloop *l, int id)
{
	if (l->kernel)
		return shutdown(id, SHUT_WR) < 0 ? -errno : 0;
#ifdef NETLOOP_WITH_USNET
	return usnet_shutdown(l->st, l->io, id, 1, usnet_side_now(l));
#else
	return -ENOSYS;
#endif
}

void netloop_want_write(struct netloop *l, int id, int on)
{
	if (!l->kernel)
		return; /* the stack reports writability changes anyway */
	struct netloop_slot *s = slot_of(l, id);
	if (!s)
		return;
	uint32_t mask = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
	if (mask != s->want)
		kernel_watch(l, id, mask, EPOLL_CTL_MOD);
}

void netloop_close(struct netloop *l, int id)
{
	struct netloop_slot *s = slot_of(l, id);
	if (s) {
		s->user = NULL;
		s->want = 0;
	}
	if (l->kernel) {
		close(id); /* also leaves the epoll set */
		return;
	}
#ifdef NETLOOP_WITH_USNET
	usnet_close(l->st, l->io, id, usnet_side_now(l));
#endif
}

int netloop_reports_levels(const struct netloop *l)
{
	return l->kernel;
}

int netloop_poll(struct netloop *l, int timeout_ms)
{
	if (l->kernel) {
		struct epoll_event evs[256];
		int n = epoll_wait(l->epfd, evs, 256, timeout_ms);
		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		for (int i = 0; i < n; i++) {
			uint32_t e = evs[i].events, ev = 0;
			if (e & (EPOLLIN | EPOLLRDHUP)) ev |= NETLOOP_EV_IN;
			if (e & EPOLLOUT) ev |= NETLOOP_EV_OUT;
			if (e & EPOLLERR) ev |= NETLOOP_EV_ERR;
			if (e & EPOLLHUP) ev |= NETLOOP_EV_HUP | NETLOOP_EV_IN;
			int fd = evs[i].data.fd;
			l->handler(l, fd, ev, netloop_get_user(l, fd));
		}
		return n;
	}
#ifdef NETLOOP_WITH_USNET
	if (l->nready == 0) {
		int rc = usnet_app_poll(l->app, timeout_ms);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
			return rc;
	} else {
		usnet_app_poll(l->app, 0);
	}
	/* Dispatch a snapshot: handlers may queue more for the next round. */
	int *batch = l->ready;
	size_t n = l->nready, cap = l->capready;
	l->ready = l->spare;
	l->capready = l->capspare;
	l->nready = 0;
	int done = 0;
	l->dispatch_now = usnet_app_now();
	l->dispatching = 1;
	for (size_t i = 0; i < n; i++) {
		int s = batch[i];
		struct netloop_slot *sl = slot_of(l, s);
		if (sl)
			sl->queued = 0;
		uint32_t e = usnet_sock_events(l->st, s), ev = 0;
		if (e & (USNET_EV_IN | USNET_EV_RDHUP)) ev |= NETLOOP_EV_IN;
		if (e & USNET_EV_OUT) ev |= NETLOOP_EV_OUT;
		if (e & USNET_EV_ERR) ev |= NETLOOP_EV_ERR;
		if (e & USNET_EV_HUP) ev |= NETLOOP_EV_HUP | NETLOOP_EV_IN;
		if (ev) {
			l->handler(l, s, ev, netloop_get_user(l, s));
			done++;
		}
	}
	l->dispatching = 0;
	l->spare = batch;
	l->capspare = cap;
	return done;
#else
	(void)timeout_ms;
	return -ENOSYS;
#endif
}

int netloop_run(struct netloop *l, const volatile sig_atomic_t *stop)
{
	while (!*stop) {
		int rc = netloop_poll(l, 200);
		if (rc < 0)
			return rc;
	}
	return 0;
}
