/*
 * usnet switch — the program's pointers in a socket call, checked before a
 * provider is given them.  Linux answers a bad pointer with EFAULT; a
 * provider would read or write through it and the program would die of
 * SIGSEGV instead (and so would the switch, which reads the poll, select
 * and epoll arrays itself).  What the call takes is probed one byte per page
 * (usnet_hook_user_check): data to send, socket addresses (at most 128
 * bytes: a longer one is the call's EINVAL), iovec and msghdr arrays.  What
 * the call fills in is probed at its first byte only (a write probe), since
 * Linux writes only as much as there is: a buffer larger than its mapping
 * must not fail a call that Linux would let through.  Option values are
 * probed at their first byte for the same reason.  A zero-length buffer is
 * never checked, as in Linux.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "usnet/hook.h"
#include "vsock.h"

#define RD 0
#define WR 1

#define ADDR_MAX 128   /* sizeof(struct sockaddr_storage) */

static int chk(const void *p, size_t n, int write)
{
	/* written: the first byte only (see above) */
	return usnet_hook_user_check(p, write && n ? 1 : n, write);
}

static int chk_addr_in(const void *addr, socklen_t len)
{
	return addr ? chk(addr, len > ADDR_MAX ? ADDR_MAX : len, RD) : 0;
}

/* An address and a length that the call reads (*len) and writes back, with
 * the address filled in up to *len bytes. */
static int chk_addr_out(void *addr, const socklen_t *len)
{
	if (!addr || !len)
		return 0;   /* the call itself says what a missing one means */
	int r = chk(len, sizeof *len, RD);
	if (r == 0)
		r = chk(len, sizeof *len, WR);
	if (r == 0 && (int)*len > 0)
		r = chk(addr, *len, WR);
	return r;
}

static int chk_iov(const struct iovec *iov, long n, int write)
{
	if (n <= 0 || n > 1024)
		return 0;   /* EINVAL from the call itself */
	int r = chk(iov, (size_t)n * sizeof *iov, RD);
	for (long i = 0; r == 0 && i < n; i++)
		r = chk(iov[i].iov_base, iov[i].iov_len, write);
	return r;
}

static int chk_msg(const struct msghdr *m, int recv)
{
	int r = chk(m, sizeof *m, RD);   /* read here, and written back by recvmsg */
	if (r == 0 && recv)
		r = chk(m, sizeof *m, WR);
	if (r == 0 && m->msg_name && m->msg_namelen)
		r = recv ? chk(m->msg_name, m->msg_namelen, WR) : chk_addr_in(m->msg_name, m->msg_namelen);
	if (r == 0)
		r = chk_iov(m->msg_iov, (long)m->msg_iovlen, recv);
	if (r == 0 && m->msg_control && m->msg_controllen)
		r = chk(m->msg_control, m->msg_controllen, recv);
	return r;
}

static int chk_mmsg(const struct mmsghdr *v, unsigned n, int recv)
{
	if (n > 1024)
		n = 1024;   /* UIO_MAXIOV: Linux takes at most that many */
	int r = chk(v, (size_t)n * sizeof *v, RD);
	if (r == 0 && recv)
		r = chk(v, (size_t)n * sizeof *v, WR);
	for (unsigned i = 0; r == 0 && i < n; i++)
		r = chk_msg(&v[i].msg_hdr, recv);
	return r;
}

/* An array the call reads and writes back (pollfd, fd_set). */
static int chk_inout(void *p, size_t n)
{
	if (!p || !n)
		return 0;
	int r = chk(p, n, RD);
	return r ? r : chk(p, n, WR);
}

static int chk_sigmask(const void *mask, size_t size)
{
	return mask && size == 8 ? chk(mask, 8, RD) : 0;   /* another size: the call's EINVAL */
}

static int chk_fdsets(long nfds, long *sets)
{
	if (nfds <= 0 || nfds > 1 << 20)
		return 0;
	size_t bytes = (size_t)(nfds + 63) / 64 * 8;
	int r = 0;
	for (int i = 0; r == 0 && i < 3; i++)
		r = chk_inout((void *)sets[i], bytes);
	return r;
}

int vsock_user_args_check(long nr, const long *a)
{
	switch (nr) {
	case SYS_poll:
	case SYS_ppoll: {
		int r = (unsigned long)a[1] <= 1 << 20 ? chk_inout((void *)a[0], (size_t)a[1] * sizeof(struct pollfd)) : 0;
		if (r == 0 && nr == SYS_ppoll && a[2])
			r = chk((const void *)a[2], 16, RD);
		if (r == 0 && nr == SYS_ppoll)
			r = chk_sigmask((const void *)a[3], (size_t)a[4]);
		return r;
	}
	case SYS_select:
	case SYS_pselect6: {
		long sets[3] = { a[1], a[2], a[3] };
		int r = chk_fdsets(a[0], sets);
		if (r == 0 && a[4])   /* select writes back the time left */
			r = nr == SYS_select ? chk_inout((void *)a[4], 16) : chk((const void *)a[4], 16, RD);
		if (r == 0 && nr == SYS_pselect6 && a[5]) {
			r = chk((const void *)a[5], 16, RD);
			if (r == 0)
				r = chk_sigmask(((const void *const *)a[5])[0], ((const size_t *)a[5])[1]);
		}
		return r;
	}
	case SYS_epoll_ctl:
		return a[1] != EPOLL_CTL_DEL && a[3] ? chk((const void *)a[3], sizeof(struct epoll_event), RD) : 0;
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2: {
		int r = a[2] > 0 && a[2] <= 1 << 20 ? chk((void *)a[1], (size_t)a[2] * sizeof(struct epoll_event), WR) : 0;
		if (r == 0 && nr == SYS_epoll_pwait2 && a[3])
			r = chk((const void *)a[3], 16, RD);
		if (r == 0 && nr != SYS_epoll_wait)
			r = chk_sigmask((const void *)a[4], (size_t)a[5]);
		return r;
	}
	case SYS_read:
	case SYS_recvfrom: {
		int r = chk((void *)a[1], (size_t)a[2], WR);
		if (r == 0 && nr == SYS_recvfrom)
			r = chk_addr_out((void *)a[4], (const socklen_t *)a[5]);
		return r;
	}
	case SYS_write:
	case SYS_sendto: {
		int r = chk((const void *)a[1], (size_t)a[2], RD);
		if (r == 0 && nr == SYS_sendto)
			r = chk_addr_in((const void *)a[4], (socklen_t)a[5]);
		return r;
	}
	case SYS_readv:
	case SYS_writev:
		return chk_iov((const struct iovec *)a[1], a[2], nr == SYS_readv);
	case SYS_sendmsg:
	case SYS_recvmsg:
		return chk_msg((const struct msghdr *)a[1], nr == SYS_recvmsg);
	case SYS_sendmmsg:
	case SYS_recvmmsg:
		return chk_mmsg((const struct mmsghdr *)a[1], (unsigned)a[2], nr == SYS_recvmmsg);
	case SYS_sendfile:
		return a[2] ? chk((void *)a[2], sizeof(off_t), WR) : 0;
	case SYS_bind:
	case SYS_connect:
		return chk_addr_in((const void *)a[1], (socklen_t)a[2]);
	case SYS_accept:
	case SYS_accept4:
	case SYS_getsockname:
	case SYS_getpeername:
		return chk_addr_out((void *)a[1], (const socklen_t *)a[2]);
	case SYS_getsockopt:
		return chk_addr_out((void *)a[3], (const socklen_t *)a[4]);
	case SYS_setsockopt:
		/* Linux reads only as much as the option needs */
		return a[3] && (socklen_t)a[4] ? chk((const void *)a[3], 1, RD) : 0;
	case SYS_ioctl:
		/* the socket ioctls a provider answers fill in an int; FIONBIO
		 * takes one (interface ioctls and fstat go to the kernel) */
		switch ((unsigned long)a[1]) {
		case FIONREAD:
		case SIOCOUTQ:
		case SIOCATMARK:
			return chk((void *)a[2], sizeof(int), WR);
		case FIONBIO:
			return chk((const void *)a[2], sizeof(int), RD);
		default:
			return 0;
		}
	default:
		return 0;
	}
}
