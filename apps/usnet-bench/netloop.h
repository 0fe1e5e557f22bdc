/*
 * netloop — the small I/O layer under usnet-bench and usnet-kv, so the same
 * application code runs on kernel sockets (--kernel: epoll, nonblocking
 * sockets, SO_REUSEPORT listeners per thread) or on the native usnet API
 * (one usnet_app, i.e. one stack instance, per thread/queue).
 *
 * One struct netloop per thread; nothing in it is shared with other threads.
 * Connections and listeners are small integers ("ids") valid in their loop.
 * Readiness is reported to a handler as NETLOOP_EV_* bits; handlers must read
 * until -EAGAIN, or until no more bytes can come without a new change (the
 * usnet side reports changes, not levels; see netloop_reports_levels).
 */
#ifndef NETLOOP_H
#define NETLOOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NETLOOP_EV_IN  0x1u   /* readable, or a connection to accept, or EOF */
#define NETLOOP_EV_OUT 0x4u   /* writable / connect finished */
#define NETLOOP_EV_ERR 0x8u   /* error or reset: close it */
#define NETLOOP_EV_HUP 0x10u  /* both directions closed */

/* --ip6 addresses at most (the stack's USNET_IP6_ADDRS). */
#define NETLOOP_IP6_MAX 4

/* How to reach the network: parsed from the command line, shared (read only)
 * by every thread. */
struct netloop_options {
	int kernel;              /* 1: kernel sockets */
	const char *backend;     /* usnet: netif backend name */
	const char *iface;       /* usnet: interface */
	const char *ip_cidr;     /* usnet: our address "A.B.C.D/N" */
	const char *gateway;     /* usnet: default gateway or NULL */
	const char *ip6_cidr[NETLOOP_IP6_MAX]; /* usnet: IPv6 addresses "ADDR/N" (--ip6) */
	int n_ip6;
	const char *gateway6;    /* usnet: default IPv6 router (--gw6) or NULL */
	const char *netif_opts;  /* usnet: backend options ("mode=skb,...") or NULL */
	int queues;              /* usnet: netif queues (0: one per thread) */
	int busy_poll_us;        /* usnet: spin before sleeping */
	void *shared_netif;      /* internal: the netif opened by netloop_prepare */
};

/* Defaults: usnet mode with nothing chosen. */
void netloop_options_init(struct netloop_options *o);

/* Consume one option at argv[*i] if it is one of ours (--kernel, --backend B,
 * --iface IF, --ip A/N, --gw G, --ip6 A/N (repeatable), --gw6 G,
 * --netif-opts S, --queues N, --busy-poll US), advancing *i past
 * its argument.  Returns 1 when consumed, 0 when not ours, -1 (message on
 * stderr) when its argument is missing. */
int netloop_parse_option(struct netloop_options *o, int argc, char **argv, int *i);

/* Usage text for the options above. */
extern const char netloop_usage[];

/* Check the options and open what threads share (the netif, in usnet mode
 * with several threads).  0, or -1 with a reason in err. */
int netloop_prepare(struct netloop_options *o, int threads, char *err, size_t errlen);
/* Release what netloop_prepare opened, after every loop is closed. */
void netloop_finish(struct netloop_options *o);

/* Whether usnet mode was compiled in. */
int netloop_has_usnet(void);

struct netloop;

/* Called with a connection's (or listener's) readiness.  `user` is what
 * netloop_set_user() stored. */
typedef void (*netloop_handler)(struct netloop *l, int id, uint32_t events, void *user);

/* Open thread `index`'s loop; `ctx` is the application's, for the handler
 * (netloop_ctx()).  NULL with a reason in err on failure. */
struct netloop *netloop_open(const struct netloop_options *o, int index, netloop_handler h,
			     void *ctx, char *err, size_t errlen);
void *netloop_ctx(struct netloop *l);
void netloop_close_loop(struct netloop *l);

/* A listener on ip:port (host order; ip 0: any local address); returns its
 * id or -errno. */
int netloop_listen(struct netloop *l, uint32_t ip, uint16_t port);
/* A listener on port `port` of every local address: IPv6 and IPv4 (one
 * dual-stack socket on ::) where the loop has IPv6 (usnet mode with --ip6),
 * else IPv4 only, as netloop_listen(l, 0, port).  Its id or -errno. */
int netloop_listen_any(struct netloop *l, uint16_t port);

/* A server's address of either family. */
struct netloop_host {
	int v6;                  /* 1: ip6, else ip */
	uint32_t ip;             /* IPv4, host order */
	uint8_t ip6[16];         /* IPv6, network order */
};
/* Parse an IPv4 or IPv6 address (bare or [in brackets]); 0 or -1. */
int netloop_parse_host(const char *s, struct netloop_host *h);
/* netloop_connect to either family. */
int netloop_connect_host(struct netloop *l, const struct netloop_host *h, uint16_t port);

/* Accept one connection: its id, or -EAGAIN. */
int netloop_accept(struct netloop *l, int listener);
/* Accept every pending connection on `listener`.  For each, `adopt(l, id)`
 * returns the connection's user pointer (NULL: out of memory, and the
 * connection is closed); the loop's handler is then called once with
 * NETLOOP_EV_IN for it, for bytes that came with the handshake. */
void netloop_accept_all(struct netloop *l, int listener, void *(*adopt)(struct netloop *l, int id));
/* Start connecting to ip:port (host order); returns the id at once;
 * NETLOOP_EV_OUT says it finished (NETLOOP_EV_ERR that it failed). */
int netloop_connect(struct netloop *l, uint32_t ip, uint16_t port);

/* Bytes received (0 at EOF), -EAGAIN, or -errno. */
long netloop_recv(struct netloop *l, int id, void *buf, size_t len);
/* Zero-copy look at received bytes: fills up to max iovecs, returns the count
 * (0: none, or EOF), or -EOPNOTSUPP where only netloop_recv works (kernel). */
int netloop_peek(struct netloop *l, int id, struct iovec *iov, int max);
/* Release the first n bytes shown by netloop_peek. */
int netloop_consume(struct netloop *l, int id, size_t n);
/* Bytes taken (maybe fewer than len), -EAGAIN, or -errno. */
long netloop_send(struct netloop *l, int id, const void *buf, size_t len);
long netloop_sendv(struct netloop *l, int id, const struct iovec *iov, int iovcnt);
/* Stop sending: queued bytes still leave, then FIN (shutdown(SHUT_WR));
 * receiving goes on.  0 or -errno. */
int netloop_shutdown_write(struct netloop *l, int id);
/* Ask for (or stop asking for) NETLOOP_EV_OUT while output is blocked. */
void netloop_want_write(struct netloop *l, int id, int on);
void netloop_close(struct netloop *l, int id);

void netloop_set_user(struct netloop *l, int id, void *user);
void *netloop_get_user(struct netloop *l, int id);

/* 1 where readiness is a level (kernel epoll): a handler may stop reading
 * once a recv came back short, as what is left is reported again. */
int netloop_reports_levels(const struct netloop *l);

/* Wait up to timeout_ms (-1: forever, 0: not at all) for readiness and call
 * the handler for each ready id.  Returns how many were dispatched or -errno. */
int netloop_poll(struct netloop *l, int timeout_ms);

/* A server thread's loop: netloop_poll() until *stop is set.  0, or the
 * -errno netloop_poll() failed with. */
int netloop_run(struct netloop *l, const volatile sig_atomic_t *stop);

/* Monotonic time in nanoseconds. */
uint64_t netloop_now_ns(void);

#endif /* NETLOOP_H */
