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
#include "usnet/netif_open.h"
#include "usnet/stack.h"

struct usnet_app;

struct usnet_app_config {
	struct usnet_netif_config netif;  /* backend, iface, queues, impair, pcap */
	uint16_t queue;                   /* which netif queue this app drives */
	struct usnet_netif *shared_netif; /* use this already-open netif instead of opening one */
	uint32_t ip;                      /* host byte order */
	uint8_t  prefix_len;
	uint32_t gateway;                 /* 0: none */
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

/* Open the netif (unless shared_netif), allocate and create the stack.
 * NULL with a one-line reason in err on failure. */
struct usnet_app *usnet_app_open(const struct usnet_app_config *cfg, char *err, size_t errlen);
void usnet_app_close(struct usnet_app *app);

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
