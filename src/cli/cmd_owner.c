/*
 * usnet owner — the owner of one interface's stack (src/vsock/attach_proto.h
 * describes the protocol).  It opens the netif with the privileges it was
 * started with, creates what every attached process shares (the switch's
 * and the provider's shared memory, the bell, the close-watch inotify
 * instance), and hands them out on its UNIX socket.  It holds no socket and
 * runs no stack: the attached processes do.  When the last connection to it
 * is gone (every process that could use the stack has exited), it waits
 * OWNER_GRACE_MS for a new one, then closes the netif (detaching the XDP
 * program), removes its socket and exits.
 *
 * `usnet run` starts it on demand (usage below); the configuration comes
 * from the same USNET_* variables as the program's.  It can also be started
 * by hand or by a service manager to keep a stack up between programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "cli.h"
#include "attach_proto.h"
#include "usnet/netif_open.h"
#include "host_ports.h"
#include "ip6_list.h"
#include "usnet/netif_share.h"

_Static_assert(IP6_LIST_MAX <= USNET_NETIF_IPV6_MAX, "the netif steers fewer IPv6 addresses than --ip6 takes");

#define OWNER_GRACE_MS 1000
#define OWNER_MAX_CONNS 1024
#define OWNER_MAX_WAITING 256
/* Sparse: pages cost memory only once a process touches them. */
#define SWITCH_STATE_BYTES (64ull << 20)
#define PROVIDER_STATE_BYTES (4ull << 30)

static const char *env_config(const char *key)
{
	char name[64];
	snprintf(name, sizeof name, "USNET_%s", key);
	for (char *p = name; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

struct owner {
	char path[108];
	char lock_path[128];
	bool locked;                 /* lock_path is ours: removed when we go */
	char config[ATTACH_CONFIG_MAX];
	struct usnet_netif *nif;
	struct usnet_netif_share share;
	int fds[ATTACH_NFDS];        /* what every attacher gets */
	bool initialised;            /* an attacher made the shared state */
	int initialiser;             /* reply socket of the one making it, or -1 */
	int waiting[OWNER_MAX_WAITING];   /* reply sockets of ATTACHes held meanwhile */
	int nwaiting;
	int listen_fd;
	/* Host-address mode: the kernel's reserved ports before we added the
	 * stack's range, put back when we go. */
	bool ports_reserved;
	char saved_ports[HOST_PORTS_SAVED_MAX];
	int conns[OWNER_MAX_CONNS];
	int nconns;
	int log_fd;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void owner_log(struct owner *o, const char *fmt, const char *a)
{
	if (o->log_fd < 0)
		return;
	char line[512];
	int n = snprintf(line, sizeof line, "usnet owner[%d] %s: ", (int)getpid(), o->share.backend);
	n += snprintf(line + n, sizeof line - (size_t)n, fmt, a);
	if (n >= (int)sizeof line - 1)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(o->log_fd, line, (size_t)n) < 0)
		return;
}

static int memfd_sized(const char *name, unsigned long long size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The shared memory every attacher maps, made afresh (the first attacher
 * initialises it). */
static int make_state(struct owner *o, char *err, size_t errlen)
{
	for (int i = ATTACH_FD_SWITCH; i <= ATTACH_FD_PROVIDER; i++)
		if (o->fds[i] >= 0)
			close(o->fds[i]);
	o->fds[ATTACH_FD_SWITCH] = memfd_sized("usnet-switch", SWITCH_STATE_BYTES);
	o->fds[ATTACH_FD_PROVIDER] = memfd_sized("usnet-stack", PROVIDER_STATE_BYTES);
	if (o->fds[ATTACH_FD_SWITCH] < 0 || o->fds[ATTACH_FD_PROVIDER] < 0) {
		int e = o->fds[ATTACH_FD_SWITCH] < 0 ? -o->fds[ATTACH_FD_SWITCH] : -o->fds[ATTACH_FD_PROVIDER];
		snprintf(err, errlen, "cannot create the stack's shared memory: %s", strerror(e));
		return -e;
	}
	o->initialised = false;
	return 0;
}

/* The stack's ephemeral range in host-address mode. */
static const char *owner_host_ports(void)
{
	return env_config("host_ports") ? env_config("host_ports") : HOST_PORTS_DEFAULT;
}

/* Host-address mode (USNET_HOST_ADDR=1): the backend steers by port, and
 * the stack's ephemeral range is reserved from the kernel for as long as
 * this owner (the stack) lives. */
static int host_mode_setup(struct owner *o, struct usnet_netif_config *nc, char *err, size_t errlen)
{
	const char *on = env_config("host_addr");
	if (!on || strcmp(on, "1"))
		return 0;
	const char *range = owner_host_ports();
	uint16_t lo, hi;
	if (host_ports_parse(range, &lo, &hi)) {
		snprintf(err, errlen, "USNET_HOST_PORTS '%s' is not a port range LO-HI (1024..65535)", range);
		return -EINVAL;
	}
	nc->steer_ports = 1;
	int r = host_ports_reserve(range, o->saved_ports, sizeof o->saved_ports, err, errlen);
	if (r < 0)
		return r;
	o->ports_reserved = true;
	return 0;
}

/* Frames to the stack's ephemeral ports are the stack's from the start. */
static int steer_host_ports(struct owner *o, char *err, size_t errlen)
{
	uint16_t lo, hi;
	host_ports_parse(owner_host_ports(), &lo, &hi);   /* checked by host_mode_setup */
	for (uint32_t port = lo; port <= hi; port++) {
		int r = usnet_netif_steer_port(o->nif, 6, (uint16_t)port, 1);
		if (r == 0)
			r = usnet_netif_steer_port(o->nif, 17, (uint16_t)port, 1);
		if (r < 0) {
			snprintf(err, errlen, "host-address mode needs a backend that steers by port (afxdp, afpacket): %s",
				 strerror(-r));
			return r == -EOPNOTSUPP ? -EINVAL : r;
		}
	}
	return 0;
}

static int owner_setup(struct owner *o, char *err, size_t errlen)
{
	const char *iface = env_config("iface");
	if (!iface) {
		snprintf(err, errlen, "no interface: USNET_IFACE (--iface)");
		return -EINVAL;
	}
	attach_config_make(env_config, o->config, sizeof o->config);
	if (attach_owner_path(iface, o->path, sizeof o->path) < 0) {
		snprintf(err, errlen, "interface name '%s' too long", iface);
		return -ENAMETOOLONG;
	}
	/* Without a place for the owner's socket (a user who may not write
	 * ATTACH_DIR) the stack cannot be shared: EOPNOTSUPP, as for a
	 * backend that cannot be. */
	if (mkdir(ATTACH_DIR, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", ATTACH_DIR, strerror(errno));
		return -EOPNOTSUPP;
	}
	/* One owner per interface: two `usnet run`s starting at once race
	 * for this lock, and the loser attaches to the winner. */
	snprintf(o->lock_path, sizeof o->lock_path, "%.*s.lock", (int)(strlen(o->path) - 5), o->path);
	int lfd = open(o->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", o->lock_path, strerror(errno));
		return -EOPNOTSUPP;
	}
	if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "%s already has an owner (%s)", iface, o->lock_path);
		close(lfd);
		return -EADDRINUSE;
	}
	o->locked = true;
	struct usnet_netif_config nc = {
		.backend = env_config("backend") ? env_config("backend") : "tap",
		.iface = iface,
		.options = env_config("netif_options"),
		/* Every receive queue (or USNET_QUEUES of them): the attached
		 * processes read them all, and a queue nobody reads loses the
		 * flows the NIC steers to it. */
		.queues = USNET_NETIF_QUEUES_ALL,
	};
	const char *queues = env_config("queues");
	if (queues && strcmp(queues, "all"))
		nc.queues = (uint16_t)atoi(queues);   /* checked by usnet run */
	const char *mac = env_config("mac");
	unsigned v[6];
	if (mac && sscanf(mac, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
		for (int i = 0; i < 6; i++)
			nc.mac[i] = (uint8_t)v[i];
		nc.has_mac = 1;
	}
	const char *ip = env_config("ip");
	if (ip) {
		char a[64];
		snprintf(a, sizeof a, "%.*s", (int)strcspn(ip, "/"), ip);
		struct in_addr in;
		if (inet_pton(AF_INET, a, &in) == 1)
			nc.ipv4 = ntohl(in.s_addr);
	}
	/* The stack's IPv6 addresses (checked by usnet run), and its
	 * link-local one, are steered to it. */
	const char *ip6 = env_config("ip6");
	if (ip6) {
		char why[160];
		int n = ip6_list_parse(ip6, nc.ipv6, NULL, why, sizeof why);
		if (n < 0) {
			snprintf(err, errlen, "USNET_IP6 %s", why);
			return -EINVAL;
		}
		nc.ipv6_count = (uint8_t)n;
		nc.ipv6_link_local = 1;
	}
	int r = host_mode_setup(o, &nc, err, errlen);
	if (r < 0)
		return r;
	/* In host-address mode USNET_IP6 lists the kernel's own addresses;
	 * the link-local one stays the kernel's alone. */
	if (nc.steer_ports)
		nc.ipv6_link_local = 0;
	r = usnet_netif_open(&nc, &o->nif, err, errlen);
	if (r < 0)
		return r;
	if (nc.steer_ports && (r = steer_host_ports(o, err, errlen)) < 0)
		return r;
	r = usnet_netif_share(o->nif, &o->share, err, errlen);
	if (r < 0)
		return r;
	for (int i = 0; i < ATTACH_NFDS; i++)
		o->fds[i] = -1;
	if ((r = make_state(o, err, errlen)) < 0)
		return r;
	o->fds[ATTACH_FD_BELL] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	o->fds[ATTACH_FD_CLOSE_WATCH] = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (o->fds[ATTACH_FD_BELL] < 0 || o->fds[ATTACH_FD_CLOSE_WATCH] < 0) {
		snprintf(err, errlen, "cannot create the stack's eventfd or inotify instance: %s", strerror(errno));
		return -errno;
	}
	o->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", o->path);
	if (o->listen_fd < 0)
		return -errno;
	unlink(o->path);   /* left by an owner that was killed (we hold the lock) */
	mode_t old = umask(0177);
	r = bind(o->listen_fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r != 0 || listen(o->listen_fd, 64) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", o->path, strerror(errno));
		return -EOPNOTSUPP;
	}
	return 0;
}

static void reply_error(int sock, int status, const char *msg)
{
	struct attach_reply rp = { .magic = ATTACH_MAGIC, .version = ATTACH_VERSION, .status = status,
				   .owner_pid = (int32_t)getpid() };
	snprintf(rp.message, sizeof rp.message, "%s", msg);
	attach_send_reply(sock, &rp, NULL, 0);
}

/* Hand the shared fds and the netif to one attacher. */
static int reply_attach(struct owner *o, int sock, bool init)
{
	struct attach_reply rp = { .magic = ATTACH_MAGIC, .version = ATTACH_VERSION, .init = init,
				   .owner_pid = (int32_t)getpid() };
	int r = attach_send_reply(sock, &rp, o->fds, ATTACH_NFDS);
	if (r == 0)
		r = usnet_netif_share_send(sock, &o->share);
	return r;
}

/* Serve an ATTACH: at once, or once the shared state is made. */
static void serve_attach(struct owner *o, int sock)
{
	if (o->initialised) {
		reply_attach(o, sock, false);
		close(sock);
		return;
	}
	if (o->initialiser < 0) {
		if (reply_attach(o, sock, true) == 0)
			o->initialiser = sock;
		else
			close(sock);
		return;
	}
	if (o->nwaiting < OWNER_MAX_WAITING) {
		o->waiting[o->nwaiting++] = sock;
		return;
	}
	reply_error(sock, -EAGAIN, "too many processes attaching at once");
	close(sock);
}

static void handle_request(struct owner *o, int conn_index)
{
	struct attach_request rq;
	int sock = -1;
	int r = attach_recv_request(o->conns[conn_index], &rq, &sock);
	if (r < 0) {
		if (r != -EPROTO) {   /* the connection is closed: every holder is gone */
			close(o->conns[conn_index]);
			o->conns[conn_index] = o->conns[--o->nconns];
		}
		return;
	}
	char diff[ATTACH_MSG_MAX - 64];
	if (attach_config_diff(rq.config, o->config, diff, sizeof diff)) {
		char msg[ATTACH_MSG_MAX];
		snprintf(msg, sizeof msg, "the stack on this interface has another configuration: %s", diff);
		reply_error(sock, -EINVAL, msg);
		close(sock);
		return;
	}
	if (rq.op == ATTACH_OP_CHECK) {
		struct attach_reply rp = { .magic = ATTACH_MAGIC, .version = ATTACH_VERSION,
					   .owner_pid = (int32_t)getpid() };
		attach_send_reply(sock, &rp, NULL, 0);
		close(sock);
		return;
	}
	if (rq.op == ATTACH_OP_ATTACH) {
		serve_attach(o, sock);
		return;
	}
	reply_error(sock, -EPROTO, "unknown request");
	close(sock);
}

/* The initialiser said READY, or went away without it. */
static void handle_initialiser(struct owner *o)
{
	char c = 0;
	ssize_t n = recv(o->initialiser, &c, 1, MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return;
	close(o->initialiser);
	o->initialiser = -1;
	if (n == 1 && c == ATTACH_READY) {
		o->initialised = true;
	} else {
		char err[256];
		owner_log(o, "%s", "a process died while it made the stack's shared memory; made afresh");
		if (make_state(o, err, sizeof err) < 0) {
			owner_log(o, "%s", err);
			stop_signal = SIGTERM;
			return;
		}
	}
	int nw = o->nwaiting;
	int w[OWNER_MAX_WAITING];
	memcpy(w, o->waiting, sizeof(int) * (size_t)nw);
	o->nwaiting = 0;
	for (int i = 0; i < nw; i++)
		serve_attach(o, w[i]);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void owner_loop(struct owner *o)
{
	int64_t idle_since = now_ms();
	while (!stop_signal) {
		struct pollfd pf[OWNER_MAX_CONNS + 2];
		int n = 0;
		pf[n++] = (struct pollfd){ .fd = o->listen_fd, .events = POLLIN };
		int init_at = -1;
		if (o->initialiser >= 0) {
			init_at = n;
			pf[n++] = (struct pollfd){ .fd = o->initialiser, .events = POLLIN };
		}
		int conns_at = n;
		for (int i = 0; i < o->nconns; i++)
			pf[n++] = (struct pollfd){ .fd = o->conns[i], .events = POLLIN };
		int timeout = -1;
		if (o->nconns == 0 && o->initialiser < 0) {
			int64_t left = idle_since + OWNER_GRACE_MS - now_ms();
			if (left <= 0)
				return;   /* nobody can use the stack any more */
			timeout = (int)left;
		}
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0)
			continue;   /* EINTR: a signal, looked at above */
		if (pf[0].revents & POLLIN) {
			int c = accept4(o->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && o->nconns < OWNER_MAX_CONNS)
				o->conns[o->nconns++] = c;
			else if (c >= 0)
				close(c);
		}
		if (init_at >= 0 && pf[init_at].revents)
			handle_initialiser(o);
		/* From the last: handle_request may move the last one into i. */
		for (int i = n - conns_at - 1; i >= 0; i--)
			if (i < o->nconns && pf[conns_at + i].revents)
				handle_request(o, i);
		/* The grace period counts from when the last one left. */
		if (o->nconns > 0 || o->initialiser >= 0)
			idle_since = now_ms();
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: usnet owner [--ready-fd N]\n\n"
		"Opens the interface of USNET_IFACE with USNET_BACKEND (as `usnet run` would) and keeps\n"
		"the stack's shared state for every process that attaches to it, until the last one is\n"
		"gone.  `usnet run` starts it when the interface has no owner yet.  --ready-fd N: write\n"
		"one line there once it serves (\"ok\", \"unshared REASON\" or \"error REASON\"), then\n"
		"detach from the terminal.\n");
}

int cli_owner_main(int argc, char **argv)
{
	int ready_fd = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ready-fd") && i + 1 < argc) {
			ready_fd = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	/* Nothing the caller had open is ours to hold: a pipe of the shell
	 * that ran `usnet run` kept open here would never see its end. */
	if (ready_fd > 3) {
		close_range(3, (unsigned)ready_fd - 1, 0);
		close_range((unsigned)ready_fd + 1, ~0u, 0);
	} else if (ready_fd < 0) {
		close_range(3, ~0u, 0);
	} else {
		close_range(4, ~0u, 0);
	}
	static struct owner o;
	o.initialiser = -1;
	o.log_fd = 2;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	char err[256] = "";
	int r = owner_setup(&o, err, sizeof err);
	if (r < 0) {
		/* The device is let go before the caller hears: it opens it next. */
		if (o.nif)
			usnet_netif_close(o.nif);
		if (o.ports_reserved)
			host_ports_restore(owner_host_ports(), o.saved_ports);
		if (o.locked) {
			/* Holding the lock, any socket there is a killed owner's. */
			unlink(o.path);
			unlink(o.lock_path);
		}
		if (ready_fd >= 0) {
			dprintf(ready_fd, "%s %s\n", r == -EOPNOTSUPP ? "unshared" : "error", err);
			close(ready_fd);
		} else {
			fprintf(stderr, "usnet owner: %s\n", err);
		}
		return r == -EOPNOTSUPP ? 3 : 1;
	}
	if (ready_fd >= 0) {
		/* Detached: the terminal and the caller's pipes are not ours. */
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
		o.log_fd = -1;
		dprintf(ready_fd, "ok\n");
		close(ready_fd);
	}
	owner_loop(&o);
	unlink(o.path);
	usnet_netif_close(o.nif);
	if (o.ports_reserved)
		host_ports_restore(owner_host_ports(), o.saved_ports);
	unlink(o.lock_path);   /* still held: a new owner makes a new one */
	return 0;
}
