/*
 * usnet provider "kernel": sockets are real kernel sockets, kept at fd
 * numbers the program does not see.  It exercises the whole switch (fd
 * table, dup, blocking, readiness over mixed sets) without a stack or
 * privileges, and it is the smallest example of the provider contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <poll.h>

#include "usnet/provider.h"
#include "builtin.h"

/* Where the hidden sockets live: far from the numbers programs use. */
#define HIDDEN_FD_MIN 600

static const struct usnet_provider_host *host;

#define SYS(nr, a, b, c, d, e, f) host->syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static int k_init(const struct usnet_provider_host *h, void **ctx, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	host = h;
	*ctx = NULL;
	return 0;
}

static int k_socket(void *ctx, int domain, int type, int protocol, uint64_t cookie, usnet_psock_t *out)
{
	(void)ctx;
	(void)cookie;
	long fd = SYS(SYS_socket, domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol, 0, 0, 0);
	if (fd < 0)
		return (int)fd;
	long hi = SYS(SYS_fcntl, fd, F_DUPFD_CLOEXEC, HIDDEN_FD_MIN, 0, 0, 0);
	if (hi >= 0) {
		SYS(SYS_close, fd, 0, 0, 0, 0, 0);
		fd = hi;
	}
	*out = (usnet_psock_t)fd;
	return 0;
}

static int k_bind(void *ctx, usnet_psock_t s, const struct sockaddr *a, socklen_t len)
{
	(void)ctx;
	return (int)SYS(SYS_bind, s, a, len, 0, 0, 0);
}

static int k_listen(void *ctx, usnet_psock_t s, int backlog)
{
	(void)ctx;
	return (int)SYS(SYS_listen, s, backlog, 0, 0, 0, 0);
}

static int k_accept(void *ctx, usnet_psock_t s, struct sockaddr *a, socklen_t *len, uint64_t cookie,
		    usnet_psock_t *out)
{
	(void)ctx;
	(void)cookie;
	long fd = SYS(SYS_accept4, s, a, len, SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0);
	if (fd < 0)
		return (int)fd;
	long hi = SYS(SYS_fcntl, fd, F_DUPFD_CLOEXEC, HIDDEN_FD_MIN, 0, 0, 0);
	if (hi >= 0) {
		SYS(SYS_close, fd, 0, 0, 0, 0, 0);
		fd = hi;
	}
	*out = (usnet_psock_t)fd;
	return 0;
}

static int k_connect(void *ctx, usnet_psock_t s, const struct sockaddr *a, socklen_t len)
{
	(void)ctx;
	return (int)SYS(SYS_connect, s, a, len, 0, 0, 0);
}

static long k_sendmsg(void *ctx, usnet_psock_t s, const struct msghdr *m, int flags)
{
	(void)ctx;
	return SYS(SYS_sendmsg, s, m, flags | MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0, 0);
}

static long k_recvmsg(void *ctx, usnet_psock_t s, struct msghdr *m, int flags)
{
	(void)ctx;
	return SYS(SYS_recvmsg, s, m, flags | MSG_DONTWAIT, 0, 0, 0);
}

static int k_shutdown(void *ctx, usnet_psock_t s, int how)
{
	(void)ctx;
	return (int)SYS(SYS_shutdown, s, how, 0, 0, 0, 0);
}

static int k_close(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	return (int)SYS(SYS_close, s, 0, 0, 0, 0, 0);
}

static int k_getsockopt(void *ctx, usnet_psock_t s, int level, int name, void *val, socklen_t *len)
{
	(void)ctx;
	return (int)SYS(SYS_getsockopt, s, level, name, val, len, 0);
}

static int k_setsockopt(void *ctx, usnet_psock_t s, int level, int name, const void *val, socklen_t len)
{
	(void)ctx;
	return (int)SYS(SYS_setsockopt, s, level, name, val, len, 0);
}

static int k_getsockname(void *ctx, usnet_psock_t s, struct sockaddr *a, socklen_t *len)
{
	(void)ctx;
	return (int)SYS(SYS_getsockname, s, a, len, 0, 0, 0);
}

static int k_getpeername(void *ctx, usnet_psock_t s, struct sockaddr *a, socklen_t *len)
{
	(void)ctx;
	return (int)SYS(SYS_getpeername, s, a, len, 0, 0, 0);
}

static int k_ioctl(void *ctx, usnet_psock_t s, unsigned long req, void *arg)
{
	(void)ctx;
	return (int)SYS(SYS_ioctl, s, req, arg, 0, 0, 0);
}

static uint32_t k_poll(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	struct pollfd p = { .fd = (int)s, .events = POLLIN | POLLOUT | POLLPRI | POLLRDHUP };
	struct timespec zero = { 0, 0 };
	if (SYS(SYS_ppoll, &p, 1, &zero, 0, 0, 0) < 0)
		return USNET_PROVIDER_EV_ERR;
	return (uint32_t)(unsigned short)p.revents;
}

static int k_kernel_fd(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	return (int)s;
}

static const struct usnet_provider kernel_provider = {
	.abi_version = USNET_PROVIDER_ABI_VERSION,
	.size = sizeof(struct usnet_provider),
	.name = "kernel",
	.init = k_init,
	.socket = k_socket,
	.bind = k_bind,
	.listen = k_listen,
	.accept = k_accept,
	.connect = k_connect,
	.sendmsg = k_sendmsg,
	.recvmsg = k_recvmsg,
	.shutdown = k_shutdown,
	.close = k_close,
	.getsockopt = k_getsockopt,
	.setsockopt = k_setsockopt,
	.getsockname = k_getsockname,
	.getpeername = k_getpeername,
	.ioctl = k_ioctl,
	.poll = k_poll,
	.kernel_fd = k_kernel_fd,
};

const struct usnet_provider *usnet_provider_kernel(void)
{
	return &kernel_provider;
}
