/*
 * usnet — the runtime for native applications (usnet-nc, usnet-bench,
 * usnet-kv): one stack instance on one netif queue, driven by an event loop
 * in the calling thread.  Shared-nothing: a multi-threaded application opens
 * one usnet_app per thread/queue.
 *
 * Typical use:
 *     struct usnet_app_config cfg; usnet_app_config_init(&cfg);
 *     cfg.netif.backend = "tap"; cfg.netif.iface = "tap0"; ... parse --ip ...
 *     struct usnet_app *app = usnet_app_open(&cfg, err, sizeof err);
 *     s = usnet_socket(usnet_app_stack(app), USNET_SOCK_STREAM); ...
 *     while (running) usnet_app_poll(app, timeout_ms);  // events arrive via cfg.on_event
 */
#ifndef USNET_APP_H
#define USNET_APP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "usnet/netif_open.h"
#include "usnet/stack.h"

struct usnet_app;

/* The IPv6 side of an app's network (--ip6, --gw6).  Any address given
 * also gives the stack its link-local address (fe80:: from the MAC), and
 * usnet_app_open() then waits for Duplicate Address Detection. */
struct usnet_app_ip6 {
	unsigned n;                              /* addresses given */
	uint8_t  addr[USNET_IP6_ADDRS][16];      /* network byte order */
	uint8_t  prefix_len[USNET_IP6_ADDRS];
	uint8_t  gateway[16];                    /* default router; all zero: none */
};

struct usnet_app_config {
	struct usnet_netif_config netif;  /* backend, iface, queues, impair, pcap */
	uint16_t queue;                   /* which netif queue this app drives */
	struct usnet_netif *shared_netif; /* use this already-open netif instead of opening one */
	uint32_t ip;                      /* host byte order */
	uint8_t  prefix_len;
	uint32_t gateway;                 /* 0: none */
	struct usnet_app_ip6 ip6;         /* IPv6 addresses and router (none: IPv4 only) */
	int      ip6_no_dad;              /* 1: IPv6 addresses in use at once, no DAD (a
	                                   * private wire such as an in-process memwire) */
	uint32_t max_sockets;             /* 0: stack default */
	uint32_t buffer_bytes;            /* 0: stack default */
	uint32_t sndbuf, rcvbuf;          /* 0: stack default */
	int      busy_poll_us;            /* spin this long before sleeping in usnet_app_poll */
	/* Readiness callback (see struct usnet_io.on_event); may be NULL. */
	void (*on_event)(struct usnet_io *io, usnet_sock_t s, uint32_t events, uint64_t user);
	void *ctx;                        /* passed as io->ctx */
};

/* Fill cfg with defaults: everything zero (stack defaults), one netif queue,
 * busy_poll_us 50. */
void usnet_app_config_init(struct usnet_app_config *cfg);

/* Parse "A.B.C.D/N" into ip and prefix_len; 0 or -EINVAL. */
int usnet_app_parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix_len);
/* Parse "A.B.C.D"; 0 or -EINVAL. */
int usnet_app_parse_ip(const char *s, uint32_t *ip);

/* Parse an IPv6 address, bare ("2001:db8::2") or in brackets
 * ("[2001:db8::2]"), into ip6 (network order); 0 or -EINVAL. */
int usnet_app_parse_ip6(const char *s, uint8_t ip6[16]);
/* Parse "ADDR/N" (N 0..128; ADDR bare or in brackets); 0 or -EINVAL. */
int usnet_app_parse_cidr6(const char *s, uint8_t ip6[16], uint8_t *prefix_len);

/* The one parser of the IPv6 network options every native app takes:
 * `name` "--ip6" (ADDR/PREFIX, repeatable up to USNET_IP6_ADDRS times) or
 * "--gw6" (ADDR, link-local or global), `value` its argument, added to v6.
 * 0; 1 when `name` is neither (nothing done); -EINVAL with a one-line
 * reason (naming the option and the value) in err. */
int usnet_app_ip6_option(struct usnet_app_ip6 *v6, const char *name, const char *value,
			 char *err, size_t errlen);

/* Usage lines for --ip6 and --gw6, in the style of the apps' help texts. */
extern const char usnet_app_ip6_usage[];

/* Open the netif (unless shared_netif), allocate and create the stack.
 * With IPv6 addresses, wait (polling the netif, at most
 * USNET_APP_DAD_WAIT_MS) until Duplicate Address Detection has decided on
 * each: an address another node holds fails the open ("IPv6 address X is
 * already in use on IF").  NULL with a one-line reason in err on failure. */
struct usnet_app *usnet_app_open(const struct usnet_app_config *cfg, char *err, size_t errlen);
void usnet_app_close(struct usnet_app *app);

/* Bound on the wait for DAD in usnet_app_open(): the stack probes after a
 * random delay under 1 s and decides 1 s after its one probe. */
#define USNET_APP_DAD_WAIT_MS 3000

/* Print the stack's counters (struct usnet_stack_stats), one "NAME VALUE"
 * line each, prefixed with `prefix`, to f: what `usnet stat` shows for a
 * stack under `usnet run`. */
void usnet_app_print_stats(struct usnet_app *app, FILE *f, const char *prefix);

struct usnet_stack *usnet_app_stack(struct usnet_app *app);
struct usnet_io *usnet_app_io(struct usnet_app *app);
/* Monotonic clock in nanoseconds, as the stack wants it. */
uint64_t usnet_app_now(void);

/* Receive and process frames, run due timers, flush transmissions; when there
 * was nothing to do, sleep on the netif's wait fd up to timeout_ms (0: never
 * sleep, -1: until something happens).  Returns frames processed or -errno. */
int usnet_app_poll(struct usnet_app *app, int timeout_ms);

/* Make the frames the stack queued leave now.  From the first
 * usnet_app_poll() on, sends and other stack calls only queue their frames
 * (so that one system call carries a whole pass's replies), and every poll
 * flushes them; call this to push them out without polling, e.g. before
 * blocking on something else.  usnet_app_close() flushes too.  0 or -errno. */
int usnet_app_flush(struct usnet_app *app);

/* Keep polling until `done(arg)` is true or timeout_ms passes (-1: forever).
 * 0 when done, -ETIMEDOUT otherwise. */
int usnet_app_run_until(struct usnet_app *app, int (*done)(void *arg), void *arg, int timeout_ms);

/* ---- additions for applications that also wait on kernel fds ------------ */

struct pollfd;

/* The netif this app drives (its own or the shared one). */
struct usnet_netif *usnet_app_netif(struct usnet_app *app);

/* Bytes of arena memory the stack instance occupies (usnet_stack_mem_size()
 * of its configuration). */
size_t usnet_app_arena_bytes(struct usnet_app *app);

/* Like usnet_app_poll(), but every call also polls the caller's kernel fds
 * (stdin, a listening socket, ...): at once (timeout 0) when the stack had
 * work, else sleeping on them together with the netif's wait fd up to
 * timeout_ms (bounded by the next stack timer).  Each fds[i].revents is set
 * as poll(2) sets it (0 when the fd was not ready); fds with fd < 0 are
 * ignored as poll(2) does.  Returns frames processed or -errno. */
int usnet_app_poll_fds(struct usnet_app *app, struct pollfd *fds, unsigned nfds, int timeout_ms);

#endif /* USNET_APP_H */
