/*
 * usnet — the socket provider contract (the switch in src/vsock/ calls it).
 *
 * A provider is a socket implementation: the kernel (pass-through), usnet's
 * own stack, or a third party's stack built as a shared object.  It is to
 * usnet what a FUSE file system is to the VFS: the switch keeps the program's
 * file descriptors, blocking, timeouts, signals, dup/fork/close bookkeeping and
 * epoll/poll/select over mixed fd sets; the provider only implements sockets
 * that never block.
 *
 * Loading: a provider .so exports one symbol, USNET_PROVIDER_SYMBOL, a function
 * returning its `const struct usnet_provider *`.  `usnet run --provider
 * PATH.so` (or USNET_PROVIDER=PATH.so) makes the switch dlopen() it.  The
 * switch checks abi_version (must equal USNET_PROVIDER_ABI_VERSION) and size
 * (must be at least the size of the version-1 table); ops added later go at
 * the end so old providers keep working.
 *
 * Rules every op follows
 *  - Ops never block: where Linux would sleep they return -EAGAIN (sends,
 *    receives, accept) or -EINPROGRESS (connect).  The switch sleeps and
 *    retries; it learns when to retry from host->notify() or wait fds.
 *  - Results are values or negative errno (Linux numbering), exactly what the
 *    corresponding Linux system call would return.
 *  - The switch handles, and never passes to a provider: O_NONBLOCK and
 *    MSG_DONTWAIT (the provider is always non-blocking), MSG_WAITALL (the
 *    switch loops), MSG_NOSIGNAL and SIGPIPE (a provider returns -EPIPE; the
 *    switch raises the signal), SO_RCVTIMEO/SO_SNDTIMEO, FIONBIO, and fd
 *    flags (FD_CLOEXEC, dup).
 *  - A provider may be called from any thread of the program and from forked
 *    children (fork_* ops below); it serialises its own state.
 *  - Real system calls a provider makes on its own behalf should go through
 *    host->syscall (never dispatched back into the switch); ordinary libc
 *    calls on the provider's own kernel fds are fine too: the switch passes
 *    calls on fds it does not own straight to the kernel.
 *
 * Policy: socket() may answer USNET_PROVIDER_DECLINE (the switch gives the
 * program a kernel socket instead), and bind()/connect() (and sendmsg() on
 * an unbound datagram socket, and setsockopt(), e.g. SO_BINDTODEVICE to an
 * interface that is not the provider's) may answer
 * USNET_PROVIDER_HANDOVER (the address is not this provider's, e.g. loopback:
 * the switch closes the provider socket, creates a kernel socket with the same
 * domain/type/protocol, replays the options set so far, and performs the
 * bind/connect/setsockopt there).
 */
#ifndef USNET_PROVIDER_H
#define USNET_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USNET_PROVIDER_ABI_VERSION 1

/* The symbol a provider .so exports: `const struct usnet_provider *usnet_provider_v1(void)`. */
#define USNET_PROVIDER_SYMBOL "usnet_provider_v1"

/* Positive answers (every other non-negative result is the op's value). */
#define USNET_PROVIDER_DECLINE  0x7fff0001  /* socket(): not mine, give it to the kernel */
#define USNET_PROVIDER_HANDOVER 0x7fff0002  /* bind()/connect()/setsockopt(): hand over to a kernel socket */

/* Readiness bits: the same values as EPOLLIN/EPOLLPRI/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP. */
#define USNET_PROVIDER_EV_IN    0x001u
#define USNET_PROVIDER_EV_PRI   0x002u
#define USNET_PROVIDER_EV_OUT   0x004u
#define USNET_PROVIDER_EV_ERR   0x008u
#define USNET_PROVIDER_EV_HUP   0x010u
#define USNET_PROVIDER_EV_RDHUP 0x2000u

/* A provider's socket handle: opaque to the switch. */
typedef uint64_t usnet_psock_t;

/* Log levels for host->log. */
enum usnet_provider_log { USNET_PLOG_ERROR = 0, USNET_PLOG_INFO = 1, USNET_PLOG_DEBUG = 2 };

/* What the switch offers a provider (given to init; valid until fini). */
struct usnet_provider_host {
	uint32_t abi_version;   /* USNET_PROVIDER_ABI_VERSION */
	uint32_t size;          /* sizeof(struct usnet_provider_host) of the switch */
	void *host;             /* first argument of the functions below */
	/* The readiness of the socket created with `cookie` may have changed;
	 * `events` is its current USNET_PROVIDER_EV_* mask.  Cheap, never
	 * blocks, callable with the provider's locks held and from any thread
	 * or process sharing the provider's state. */
	void (*notify)(void *host, uint64_t cookie, uint32_t events);
	/* Write one line to the usnet log (no newline needed). */
	void (*log)(void *host, int level, const char *msg);
	/* Configuration value for key ("backend", "iface", "ip", "gw", "ip6",
	 * "gw6", "mac", "pcap", "queues", ...: the `usnet run` options; "ip6"
	 * holds ADDR/PREFIX items joined by commas), or NULL when unset. */
	const char *(*config)(void *host, const char *key);
	/* Issue a real system call, never dispatched back to the switch. */
	long (*syscall)(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
};

struct usnet_provider {
	uint32_t abi_version;   /* USNET_PROVIDER_ABI_VERSION */
	uint32_t size;          /* sizeof(struct usnet_provider) the provider was built with */
	const char *name;       /* short name for logs and `usnet stat` */

	/* Set up (open devices, allocate state).  Called once per process
	 * image, lazily on the first socket that may be the provider's.  0, or
	 * -errno with a one-line reason in err. */
	int  (*init)(const struct usnet_provider_host *host, void **ctx, char *err, size_t errlen);
	/* Tear down at exit (may be NULL). */
	void (*fini)(void *ctx);

	/* Create a socket.  `cookie` is the value to pass to host->notify for
	 * it.  0 and *out set, USNET_PROVIDER_DECLINE, or -errno.  *out (here
	 * and in accept) is the switch's record of the socket, in memory the
	 * processes share: a provider whose state is shared too writes it as
	 * soon as the socket exists, so that a process killed before the
	 * call returns leaves a socket the switch can close. */
	int  (*socket)(void *ctx, int domain, int type, int protocol, uint64_t cookie, usnet_psock_t *out);
	/* 0, USNET_PROVIDER_HANDOVER, or -errno. */
	int  (*bind)(void *ctx, usnet_psock_t s, const struct sockaddr *addr, socklen_t len);
	int  (*listen)(void *ctx, usnet_psock_t s, int backlog);
	/* A waiting connection: 0 with *out (notify with `cookie`), the peer in
	 * addr/len as accept4(2) fills them (addr may be NULL), or -EAGAIN. */
	int  (*accept)(void *ctx, usnet_psock_t s, struct sockaddr *addr, socklen_t *len,
		       uint64_t cookie, usnet_psock_t *out);
	/* 0 (connected, e.g. UDP), -EINPROGRESS (completion is EV_OUT, or EV_ERR
	 * with SO_ERROR set), USNET_PROVIDER_HANDOVER, or -errno (-EALREADY,
	 * -EISCONN as Linux). */
	int  (*connect)(void *ctx, usnet_psock_t s, const struct sockaddr *addr, socklen_t len);
	/* Bytes taken, -EAGAIN, -EPIPE, ... (flags without MSG_DONTWAIT/NOSIGNAL).
	 * A datagram socket not yet bound may answer USNET_PROVIDER_HANDOVER
	 * when the destination is not the provider's (sendto to loopback). */
	long (*sendmsg)(void *ctx, usnet_psock_t s, const struct msghdr *msg, int flags);
	/* Bytes (0 at end of stream), -EAGAIN, ...; fills msg_name/msg_namelen and
	 * msg_flags (MSG_TRUNC) as recvmsg(2) does. */
	long (*recvmsg)(void *ctx, usnet_psock_t s, struct msghdr *msg, int flags);
	int  (*shutdown)(void *ctx, usnet_psock_t s, int how);
	/* The last reference is gone: release (closing in the background). */
	int  (*close)(void *ctx, usnet_psock_t s);
	int  (*getsockopt)(void *ctx, usnet_psock_t s, int level, int name, void *val, socklen_t *len);
	/* 0, -errno, or USNET_PROVIDER_HANDOVER (the switch then makes the
	 * same call on the kernel socket). */
	int  (*setsockopt)(void *ctx, usnet_psock_t s, int level, int name, const void *val, socklen_t len);
	int  (*getsockname)(void *ctx, usnet_psock_t s, struct sockaddr *addr, socklen_t *len);
	int  (*getpeername)(void *ctx, usnet_psock_t s, struct sockaddr *addr, socklen_t *len);
	/* ioctl on a socket (FIONREAD/SIOCINQ, SIOCOUTQ, SIOCATMARK, ...): 0 or
	 * -errno (-ENOTTY when unknown).  May be NULL.  SIOCGIFHWADDR and
	 * SIOCGIFMTU come with the kernel's answer for arg's ifr_name already
	 * in arg: a provider whose interface that is puts in its own MAC or
	 * MTU (0); -ENOTTY leaves the kernel's. */
	int  (*ioctl)(void *ctx, usnet_psock_t s, unsigned long request, void *arg);
	/* Current readiness, USNET_PROVIDER_EV_* mask. */
	uint32_t (*poll)(void *ctx, usnet_psock_t s);

	/* Optional (NULL when absent) --------------------------------------- */
	/* A kernel fd whose readiness is the socket's (e.g. the kernel
	 * provider's real socket): the switch then waits on it directly.
	 * -1 when there is none. */
	int  (*kernel_fd)(void *ctx, usnet_psock_t s);
	/* Kernel fds that become readable when progress() has work (a NIC's
	 * wait fd).  Returns how many were written to fds (at most max). */
	int  (*wait_fds)(void *ctx, int *fds, int max);
	/* Do pending work (receive frames, run timers) at `now_ns` (monotonic
	 * nanoseconds); returns the next deadline, UINT64_MAX when none.  The
	 * switch calls it from a progress thread and from blocked calls. */
	uint64_t (*progress)(void *ctx, uint64_t now_ns);
	/* Around fork(): prepare in the parent before, then parent or child after. */
	void (*fork_prepare)(void *ctx);
	void (*fork_parent)(void *ctx);
	void (*fork_child)(void *ctx);
	/* Counters for `usnet stat`: write up to len bytes of "name value\n"
	 * lines; returns bytes written. */
	size_t (*stats)(void *ctx, char *buf, size_t len);

	/* Optional, added after version 1 (read only when `size` covers them,
	 * see USNET_PROVIDER_HAS) ---------------------------------------------- */
	/* sendfile(2) to the socket: up to count bytes of the file in_fd from
	 * offset (never its file position: the switch keeps that), read
	 * straight into the socket's send buffer with a pread through
	 * host->syscall, with no copy through another buffer.  Bytes taken (0
	 * at the file's end), -EAGAIN, -EPIPE, ... as sendmsg, or the read's
	 * error (-ESPIPE, -EISDIR, ...) when nothing was taken;
	 * USNET_PROVIDER_DECLINE when the provider does not do it for this
	 * socket (a datagram socket, say): the switch then reads the file
	 * itself and calls sendmsg, as it does when the op is NULL. */
	long (*sendfile)(void *ctx, usnet_psock_t s, int in_fd, int64_t offset, size_t count);
};

/* What a provider .so exports under USNET_PROVIDER_SYMBOL. */
typedef const struct usnet_provider *(*usnet_provider_entry)(void);

/* The size of the version-1 table: the smallest `size` the switch accepts. */
#define USNET_PROVIDER_V1_SIZE (offsetof(struct usnet_provider, stats) + sizeof(void *))

/* Whether provider p has op: within the table it was built with, and set. */
#define USNET_PROVIDER_HAS(p, op) \
	((p)->size >= offsetof(struct usnet_provider, op) + sizeof(void *) && (p)->op != NULL)

#ifdef __cplusplus
}
#endif
#endif /* USNET_PROVIDER_H */
