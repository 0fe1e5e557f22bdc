/*
 * usnet switch — routing one hooked system call to the function that
 * implements it for user sockets.  The hook handler (handler.c) has already
 * decided the call may concern a user socket; this runs with the full
 * register state saved and may use any code.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "vsock.h"
#include "vsock_calls.h"

long vsock_pid;

/* A CLONE_VM child (vfork, posix_spawn) shares our memory but has its own
 * fd table: it must not touch the tables of its parent. */
static bool in_vm_child(void)
{
	return vsock_sys(SYS_getpid, 0, 0, 0, 0, 0, 0) != vsock_pid;
}

static long rw(struct vsock_slot *s, bool send, void *buf, size_t len)
{
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	return send ? vsock_sendmsg(s, &m, 0) : vsock_recvmsg(s, &m, 0);
}

static long rwv(struct vsock_slot *s, bool send, const struct iovec *iov, long n)
{
	if (n < 0 || n > 1024)
		return -EINVAL;
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	return send ? vsock_sendmsg(s, &m, 0) : vsock_recvmsg(s, &m, 0);
}

static long sendto_(struct vsock_slot *s, void *buf, size_t len, int flags, void *to, socklen_t tolen)
{
	/* Linux copies the address in before anything else (move_addr_to_kernel). */
	if (to && (int)tolen > (int)sizeof(struct sockaddr_storage))
		return -EINVAL;
	if (to && (int)tolen < 0)
		return -EINVAL;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_name = to, .msg_namelen = to ? tolen : 0, .msg_iov = &iov, .msg_iovlen = 1 };
	return vsock_sendmsg(s, &m, flags);
}

static long recvfrom_(struct vsock_slot *s, void *buf, size_t len, int flags, void *from, socklen_t *fromlen)
{
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_name = from, .msg_namelen = (from && fromlen) ? *fromlen : 0,
			    .msg_iov = &iov, .msg_iovlen = 1 };
	long r = vsock_recvmsg(s, &m, flags);
	if (r >= 0 && from && fromlen)
		*fromlen = m.msg_namelen;
	return r;
}

static long sock_call(int fd, struct vsock_slot *s, long nr, long *a);

long vsock_dispatch(struct usnet_syscall *sc)
{
	long *a = sc->args;
	long nr = sc->nr;

	/* After a fork this process needs a progress thread of its own; not
	 * before the provider is up (its init may still run in another
	 * thread, and the thread would use its half-made state). */
	if (vsock_provider_up())
		vsock_progress_start();
	switch (nr) {
	case SYS_socket:
		return vsock_socket((int)a[0], (int)a[1], (int)a[2]);
	case SYS_poll:
	case SYS_ppoll:
	case SYS_select:
	case SYS_pselect6: {
		long r = vsock_user_args_check(nr, a);
		return r ? r : vsock_poll_call(sc);
	}
	case SYS_epoll_create:
	case SYS_epoll_create1:
		return vsock_epoll_call(sc);
	case SYS_epoll_ctl:
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2: {
		long r = vsock_user_args_check(nr, a);
		return r ? r : vsock_epoll_call(sc);
	}
	case SYS_close_range:
		if (in_vm_child())   /* its own fd table; usnet's fds in it stay */
			return vsock_own_close_range((unsigned)a[0], (unsigned)a[1], (unsigned)a[2]);
		return vsock_close_range((unsigned)a[0], (unsigned)a[1], (unsigned)a[2]);
	case SYS_getdents64:
		return vsock_own_getdents((int)a[0], (void *)a[1], a[2]);
	case SYS_setrlimit:
	case SYS_prlimit64: {
		long r = vsock_sys(nr, a[0], a[1], a[2], a[3], 0, 0);
		bool nofile = nr == SYS_setrlimit ? a[0] == RLIMIT_NOFILE
			      : a[1] == RLIMIT_NOFILE && a[2] && (a[0] == 0 || a[0] == vsock_pid);
		if (r == 0 && nofile && !in_vm_child())
			vsock_own_limit_changed();
		return r;
	}
	case SYS_exit_group:
		/* The process's user sockets close now, as its fds do on Linux (a
		 * socket another process still holds stays open), while this
		 * process can still send their FINs, rather than when the progress
		 * thread of a survivor reads that their files are gone. */
		if (!in_vm_child())
			vsock_close_all();
		return USNET_HOOK_PASS;
#ifdef SYS_pidfd_getfd
	case SYS_pidfd_getfd: {
		/* Another process's user socket, copied: it joins the table. */
		long fd = vsock_sys(nr, a[0], a[1], a[2], 0, 0, 0);
		if (fd >= 0)
			vsock_fd_adopt((int)fd);
		return fd;
	}
#endif
	case SYS_splice:
		return vsock_splice(a);
	case SYS_dup2:
	case SYS_dup3:
		if (vsock_own_fd((int)a[0]) && !(nr == SYS_dup3 && a[0] == a[1]))   /* that one is EINVAL */
			return -EBADF;   /* as for an fd that is not open */
		if (in_vm_child())
			return USNET_HOOK_PASS;
		return vsock_dup3((int)a[0], (int)a[1], (int)a[2], nr == SYS_dup2);
	case SYS_close:
		if (vsock_own_fd((int)a[0]))
			return -EBADF;
		if (in_vm_child())
			return USNET_HOOK_PASS;
		return vsock_close((int)a[0]);
	default:
		break;
	}

	int fd = (int)a[0];
	struct vsock_slot *s;
	do {
		if (vsock_fd_entry(fd) < 0) {
			/* A tracked epoll fd: only the epoll calls (above) and
			 * close care; everything else is the kernel's. */
			return USNET_HOOK_PASS;
		}
		s = vsock_fd_slot(fd);
		if (!s) {
			if (nr == SYS_sendfile && vsock_fd_slot((int)a[1]))
				return -EINVAL;     /* a socket cannot be sendfile's source */
			if (nr == SYS_recvmsg || nr == SYS_recvmmsg)
				return vsock_kernel_recvmsg(nr, a);
			return USNET_HOOK_PASS;
		}
		/* Closed by another thread just now: look fd up again. */
	} while (!vsock_slot_enter(fd, s));
	/* bad pointers get EFAULT here, not a crash in the provider */
	long r = vsock_user_args_check(nr, a);
	if (r == 0)
		r = sock_call(fd, s, nr, a);
	if (r == USNET_PROVIDER_HANDOVER)   /* a datagram to an address that is not the provider's */
		r = vsock_handover(fd, s);
	vsock_slot_leave(s);   /* closes it when its last fd went meanwhile */
	return r;
}

static long sock_call(int fd, struct vsock_slot *s, long nr, long *a)
{
	switch (nr) {
	case SYS_read:
		return rw(s, false, (void *)a[1], (size_t)a[2]);
	case SYS_write:
		return rw(s, true, (void *)a[1], (size_t)a[2]);
	case SYS_readv:
		return rwv(s, false, (const struct iovec *)a[1], a[2]);
	case SYS_writev:
		return rwv(s, true, (const struct iovec *)a[1], a[2]);
	case SYS_pread64:
	case SYS_pwrite64:
	case SYS_preadv:
	case SYS_pwritev:
	case SYS_preadv2:
	case SYS_pwritev2:
		return -ESPIPE;
	case SYS_sendto:
		return sendto_(s, (void *)a[1], (size_t)a[2], (int)a[3], (void *)a[4], (socklen_t)a[5]);
	case SYS_recvfrom:
		return recvfrom_(s, (void *)a[1], (size_t)a[2], (int)a[3], (void *)a[4], (socklen_t *)a[5]);
	case SYS_sendmsg:
		return vsock_sendmsg(s, (const struct msghdr *)a[1], (int)a[2]);
	case SYS_recvmsg:
		return vsock_recvmsg(s, (struct msghdr *)a[1], (int)a[2]);
	case SYS_sendmmsg:
		return vsock_sendmmsg(s, (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3]);
	case SYS_recvmmsg:
		return vsock_recvmmsg(s, (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3]);
	case SYS_sendfile:
		return vsock_sendfile(s, (int)a[1], (off_t *)a[2], (size_t)a[3]);
	case SYS_bind:
		return vsock_bind(fd, s, (const struct sockaddr *)a[1], (socklen_t)a[2]);
	case SYS_listen:
		return vsock_listen(s, (int)a[1]);
	case SYS_accept:
		return vsock_accept(s, (struct sockaddr *)a[1], (socklen_t *)a[2], 0);
	case SYS_accept4:
		return vsock_accept(s, (struct sockaddr *)a[1], (socklen_t *)a[2], (int)a[3]);
	case SYS_connect:
		return vsock_connect(fd, s, (const struct sockaddr *)a[1], (socklen_t)a[2]);
	case SYS_shutdown:
		return vsock_shutdown(s, (int)a[1]);
	case SYS_getsockopt:
		return vsock_getsockopt(s, (int)a[1], (int)a[2], (void *)a[3], (socklen_t *)a[4]);
	case SYS_setsockopt:
		return vsock_setsockopt(fd, s, (int)a[1], (int)a[2], (const void *)a[3], (socklen_t)a[4]);
	case SYS_getsockname:
		return vsock_getname(s, false, (struct sockaddr *)a[1], (socklen_t *)a[2]);
	case SYS_getpeername:
		return vsock_getname(s, true, (struct sockaddr *)a[1], (socklen_t *)a[2]);
	case SYS_dup:
		return vsock_dup(fd, 0, false);
	case SYS_fcntl:
		return vsock_fcntl(fd, s, (int)a[1], a[2]);
	case SYS_ioctl:
		return vsock_ioctl(s, (unsigned long)a[1], (void *)a[2]);
	default:
		return USNET_HOOK_PASS;
	}
}
