/*
 * usnet switch — moving data: sendmsg/recvmsg and everything built on them
 * (read, write, readv, writev, send, sendto, recv, recvfrom, *mmsg,
 * sendfile).  The provider never blocks; here the switch adds blocking with
 * timeouts, MSG_WAITALL, and SIGPIPE.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "vsock.h"
#include "vsock_calls.h"
#include "builtin.h"

#define MAX_IOV 1024

static void raise_sigpipe(void)
{
	long pid = vsock_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	long tid = vsock_sys(SYS_gettid, 0, 0, 0, 0, 0, 0);
	vsock_sys(SYS_tgkill, pid, tid, SIGPIPE, 0, 0, 0);
}

bool vsock_tx_batching;
__thread int vsock_tx_held __attribute__((tls_model("initial-exec")));
_Atomic int vsock_tx_held_any;

void vsock_tx_flush(void)
{
	vsock_tx_held = 0;
	atomic_store_explicit(&vsock_tx_held_any, 0, memory_order_relaxed);
	if (vsock_tx_batching)
		usnet_stack_prov_flush(1);
}

void vsock_tx_flush_try(void)
{
	if (vsock_tx_batching && usnet_stack_prov_flush(0) == 0)
		atomic_store_explicit(&vsock_tx_held_any, 0, memory_order_relaxed);
}

void vsock_tx_note_held(void)
{
	if (vsock_tx_batching) {
		vsock_tx_held = 1;
		if (!atomic_load_explicit(&vsock_tx_held_any, memory_order_relaxed))
			atomic_store_explicit(&vsock_tx_held_any, 1, memory_order_relaxed);
	}
}

static size_t iov_total(const struct iovec *iov, size_t n)
{
	size_t t = 0;
	for (size_t i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Copy src (n entries) to dst without the first `done`
 * bytes.  Returns the new count. */
static size_t iov_skip(struct iovec *dst, const struct iovec *src, size_t n, size_t done)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (done >= src[i].iov_len) {
			done -= src[i].iov_len;
			continue;
		}
		dst[k].iov_base = (char *)src[i].iov_base + done;
		dst[k].iov_len = src[i].iov_len - done;
		done = 0;
		k++;
	}
	return k;
}

/* What a send that took nothing answers for the provider's error r:
 * Linux's TCP answers a send on a socket that is not connected (never
 * connected, listening) with EPIPE, never ENOTCONN (sk_stream_wait_connect),
 * and EPIPE raises SIGPIPE unless MSG_NOSIGNAL. */
static long send_failed(long r, bool stream, bool nosignal)
{
	if (r == -ENOTCONN && stream)
		r = -EPIPE;
	if (r == -EPIPE && !nosignal)
		raise_sigpipe();
	return r;
}

long vsock_sendmsg(struct vsock_slot *s, const struct msghdr *msg, int flags)
{
	if (msg->msg_iovlen > MAX_IOV)
		return -EMSGSIZE;
	bool nonblock = vsock_slot_nonblocking(s) || (flags & MSG_DONTWAIT);
	int pflags = flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL);
	int64_t deadline = vsock_deadline(s->sndtimeo_ns);
	size_t total = iov_total(msg->msg_iov, msg->msg_iovlen);
	bool stream = s->type == SOCK_STREAM;
	size_t done = 0;
	struct msghdr m = *msg;
	struct iovec *rest = NULL;
	if (stream) {
		/* A stream socket's send ignores any address (tcp_sendmsg). */
		m.msg_name = NULL;
		m.msg_namelen = 0;
	} else if (m.msg_name) {
		if (m.msg_namelen > sizeof(struct sockaddr_storage))
			m.msg_namelen = sizeof(struct sockaddr_storage);   /* as copy_msghdr_from_user */
		/* What Linux's UDP checks first (udp_sendmsg, udpv6_sendmsg). */
		sa_family_t fam = m.msg_namelen >= sizeof fam ? ((const struct sockaddr *)m.msg_name)->sa_family : 0;
		if (s->domain == AF_INET && m.msg_namelen < sizeof(struct sockaddr_in))
			return -EINVAL;
		if (s->domain == AF_INET6 && (m.msg_namelen < offsetof(struct sockaddr, sa_data) ||
					      (fam == AF_INET6 && m.msg_namelen < 24 /* SIN6_LEN_RFC2133 */)))
			return -EINVAL;
	}
	for (;;) {
		long r = vsock_prov->sendmsg(vsock_prov_ctx, s->ps, &m, pflags);
		vsock_tx_note_held();
		if (r == USNET_PROVIDER_HANDOVER)
			return done ? (long)done : r;   /* the caller hands the socket over */
		if (r > 0) {
			done += (size_t)r;
			if (!stream || nonblock || done >= total)
				return (long)done;
			if (!rest) {
				rest = vsock_scratch(VSOCK_SCRATCH_IO, MAX_IOV * sizeof *rest);
				if (!rest)
					return (long)done;
			}
			m.msg_iov = rest;
			m.msg_iovlen = iov_skip(rest, msg->msg_iov, msg->msg_iovlen, done);
			continue;
		}
		if (r == 0 && total == 0)
			return 0;
		if (r == -EAGAIN && !nonblock) {
			int w = vsock_wait_slot(s, USNET_PROVIDER_EV_OUT, deadline);
			if (w == 0)
				continue;
			r = w;
		}
		if (done > 0)
			return (long)done;
		return send_failed(r, stream, flags & MSG_NOSIGNAL);
	}
}

long vsock_recvmsg(struct vsock_slot *s, struct msghdr *msg, int flags)
{
	if (msg->msg_iovlen > MAX_IOV)
		return -EMSGSIZE;
	bool nonblock = vsock_slot_nonblocking(s) || (flags & MSG_DONTWAIT);
	int pflags = flags & ~(MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL);
	bool waitall = (flags & MSG_WAITALL) && s->type == SOCK_STREAM && !(flags & MSG_PEEK);
	int64_t deadline = vsock_deadline(s->rcvtimeo_ns);
	size_t total = iov_total(msg->msg_iov, msg->msg_iovlen);
	size_t done = 0;
	struct msghdr m = *msg;
	struct iovec *rest = NULL;
	bool stream = s->type == SOCK_STREAM;
	if (stream) {
		/* A stream socket's receive returns no address: length 0, the
		 * buffer untouched (tcp_recvmsg). */
		m.msg_name = NULL;
		m.msg_namelen = 0;
	}
	for (;;) {
		long r = vsock_prov->recvmsg(vsock_prov_ctx, s->ps, &m, pflags);
		vsock_tx_note_held();
		if (r >= 0) {
			done += (size_t)r;
			if (m.msg_iov == msg->msg_iov) {
				msg->msg_namelen = m.msg_namelen;
				msg->msg_controllen = m.msg_controllen;
			}
			msg->msg_flags = m.msg_flags;
			if (!waitall || r == 0 || done >= total)
				return (long)done;
			if (!rest) {
				rest = vsock_scratch(VSOCK_SCRATCH_IO, MAX_IOV * sizeof *rest);
				if (!rest)
					return (long)done;
			}
			m.msg_iov = rest;
			m.msg_iovlen = iov_skip(rest, msg->msg_iov, msg->msg_iovlen, done);
			m.msg_name = NULL;
			m.msg_namelen = 0;
			continue;
		}
		if (r == -EAGAIN && !nonblock) {
			int w = vsock_wait_slot(s, USNET_PROVIDER_EV_IN | USNET_PROVIDER_EV_RDHUP, deadline);
			if (w == 0)
				continue;
			r = w;
		}
		return done > 0 ? (long)done : r;
	}
}

long vsock_sendmmsg(struct vsock_slot *s, struct mmsghdr *v, unsigned n, int flags)
{
	if (n > 1024)
		n = 1024;
	unsigned i;
	for (i = 0; i < n; i++) {
		long r = vsock_sendmsg(s, &v[i].msg_hdr, i ? flags | MSG_DONTWAIT : flags);
		if (r < 0)
			return i ? (long)i : r;
		v[i].msg_len = (unsigned)r;
	}
	return (long)i;
}

long vsock_recvmmsg(struct vsock_slot *s, struct mmsghdr *v, unsigned n, int flags)
{
	if (n > 1024)
		n = 1024;
	unsigned i;
	for (i = 0; i < n; i++) {
		int f = flags & ~MSG_WAITFORONE;
		if (i && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		long r = vsock_recvmsg(s, &v[i].msg_hdr, f);
		if (r < 0)
			return i ? (long)i : r;
		v[i].msg_len = (unsigned)r;
	}
	return (long)i;
}

/* sendfile by the provider's op, which reads the file straight into the
 * socket's send buffer: the switch adds the blocking, SIGPIPE, and the
 * file position when offset is NULL.  USNET_PROVIDER_DECLINE when the
 * provider leaves this socket, or the file (no position: a pipe), to
 * vsock_sendfile's own copy. */
static long sendfile_by_provider(struct vsock_slot *s, int in_fd, off_t *offset, size_t count)
{
	off_t pos;
	if (offset) {
		memcpy(&pos, offset, sizeof pos);
		if (pos < 0)
			return -EINVAL;
	} else {
		long at = vsock_sys(SYS_lseek, in_fd, 0, SEEK_CUR, 0, 0, 0);
		if (at < 0)
			return USNET_PROVIDER_DECLINE;
		pos = at;
	}
	bool nonblock = vsock_slot_nonblocking(s);
	int64_t deadline = vsock_deadline(s->sndtimeo_ns);
	size_t done = 0;
	for (;;) {
		long r = vsock_prov->sendfile(vsock_prov_ctx, s->ps, in_fd, (int64_t)pos, count - done);
		vsock_tx_note_held();
		if (r == USNET_PROVIDER_DECLINE && done == 0)
			return r;
		if (r > 0) {
			done += (size_t)r;
			pos += r;
			if (nonblock || done >= count)
				break;
			continue;
		}
		if (r == -EAGAIN && !nonblock) {
			int w = vsock_wait_slot(s, USNET_PROVIDER_EV_OUT, deadline);
			if (w == 0)
				continue;
			r = w;
		}
		if (r >= 0 || done > 0)
			break;   /* the file's end, or what was sent before an error */
		return send_failed(r, true, false);
	}
	if (offset)
		memcpy(offset, &pos, sizeof pos);
	else
		vsock_sys(SYS_lseek, in_fd, pos, SEEK_SET, 0, 0, 0);
	return (long)done;
}

long vsock_sendfile(struct vsock_slot *s, int in_fd, off_t *offset, size_t count)
{
	if (s->type == SOCK_STREAM && USNET_PROVIDER_HAS(vsock_prov, sendfile)) {
		long r = sendfile_by_provider(s, in_fd, offset, count);
		if (r != USNET_PROVIDER_DECLINE)
			return r;
	}
	/* The first MAX_IOV iovecs of the scratch area belong to sendmsg's
	 * partial-send bookkeeping; the file data goes after them. */
	char *scratch = vsock_scratch(VSOCK_SCRATCH_IO, MAX_IOV * sizeof(struct iovec) + 65536);
	if (!scratch)
		return -ENOMEM;
	char *buf = scratch + MAX_IOV * sizeof(struct iovec);
	off_t pos = 0;
	if (offset)
		memcpy(&pos, offset, sizeof pos);
	size_t done = 0;
	while (done < count) {
		size_t want = count - done < 65536 ? count - done : 65536;
		long n = offset ? vsock_sys(SYS_pread64, in_fd, buf, want, pos, 0, 0)
				: vsock_sys(SYS_read, in_fd, buf, want, 0, 0, 0);
		if (n <= 0) {
			if (n < 0 && done == 0)
				return n;
			break;
		}
		struct iovec iov = { buf, (size_t)n };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		long w = vsock_sendmsg(s, &m, 0);
		if (w < 0) {
			if (!offset)
				vsock_sys(SYS_lseek, in_fd, -n, SEEK_CUR, 0, 0, 0);
			if (done == 0)
				return w;
			break;
		}
		if (w < n && !offset)
			vsock_sys(SYS_lseek, in_fd, w - n, SEEK_CUR, 0, 0, 0);
		done += (size_t)w;
		pos += w;
		if (w < n)
			break;
	}
	if (offset)
		memcpy(offset, &pos, sizeof pos);
	return (long)done;
}

/* One side of splice(2): a user socket, and which fd it was. */
struct splice_end {
	int fd;
	struct vsock_slot *s;
};

static bool is_pipe(int fd)
{
	struct stat st;
	return vsock_sys(SYS_fstat, fd, &st, 0, 0, 0, 0) == 0 && S_ISFIFO(st.st_mode);
}

/* Socket to pipe: never more than the pipe has room for, so what leaves the
 * socket all goes in. */
static long splice_to_pipe(struct vsock_slot *s, int pipe_fd, size_t len, unsigned flags, char *buf)
{
	for (;;) {
		long size = vsock_sys(SYS_fcntl, pipe_fd, F_GETPIPE_SZ, 0, 0, 0, 0);
		int queued = 0;
		vsock_sys(SYS_ioctl, pipe_fd, FIONREAD, &queued, 0, 0, 0);
		long room = size > queued ? size - queued : 0;
		if (room > 0) {
			size_t n = len < (size_t)room ? len : (size_t)room;
			if (n > 65536)
				n = 65536;
			struct iovec iov = { buf, n };
			struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
			/* the socket blocks as its O_NONBLOCK says (tcp_splice_read);
			 * SPLICE_F_NONBLOCK is about the pipe */
			long r = vsock_recvmsg(s, &m, 0);
			for (long done = 0; r > 0 && done < r;) {
				long w = vsock_sys(SYS_write, pipe_fd, buf + done, (size_t)(r - done), 0, 0, 0);
				if (w < 0 && w != -EINTR)
					return done ? done : w;
				if (w > 0)
					done += w;
			}
			return r;
		}
		if (flags & SPLICE_F_NONBLOCK)
			return -EAGAIN;
		struct pollfd p = { pipe_fd, POLLOUT, 0 };
		long r = vsock_sys(SYS_ppoll, &p, 1, 0, 0, 0, 0);
		if (r < 0 && r != -EINTR)
			return r;
		if (p.revents & (POLLERR | POLLHUP))
			return -EPIPE;
	}
}

/* Pipe to socket: only what the socket takes leaves the pipe (it is sent
 * whole, waiting for room if need be), so nothing is lost. */
static long splice_from_pipe(struct vsock_slot *s, int pipe_fd, size_t len, unsigned flags, char *buf)
{
	int avail = 0;
	for (;;) {
		vsock_sys(SYS_ioctl, pipe_fd, FIONREAD, &avail, 0, 0, 0);
		if (avail > 0)
			break;
		struct pollfd p = { pipe_fd, POLLIN, 0 };
		struct timespec zero = { 0, 0 };
		long r = vsock_sys(SYS_ppoll, &p, 1, (flags & SPLICE_F_NONBLOCK) ? (long)&zero : 0, 0, 0, 0);
		if (r < 0 && r != -EINTR)
			return r;
		if (p.revents & POLLIN)
			continue;
		if (p.revents & POLLHUP)
			return 0;   /* empty, and no writer left */
		if (flags & SPLICE_F_NONBLOCK)
			return -EAGAIN;
	}
	if (vsock_slot_nonblocking(s) && !(vsock_prov->poll(vsock_prov_ctx, s->ps) & USNET_PROVIDER_EV_OUT))
		return -EAGAIN;
	size_t n = len < (size_t)avail ? len : (size_t)avail;
	if (n > 65536)
		n = 65536;
	long r = vsock_sys(SYS_read, pipe_fd, buf, n, 0, 0, 0);
	if (r <= 0)
		return r;
	long done = 0;
	while (done < r) {
		struct iovec iov = { buf + done, (size_t)(r - done) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		long w = vsock_sendmsg(s, &m, MSG_NOSIGNAL);
		if (w == -EAGAIN) {
			/* taken from the pipe already: wait for room rather than lose it */
			w = vsock_wait_slot(s, USNET_PROVIDER_EV_OUT, -1);
			if (w < 0 && w != -EINTR)
				return done ? done : w;
			continue;
		}
		if (w < 0)
			return done ? done : w;
		done += w;
	}
	return done;
}

long vsock_splice(long *a)
{
	int fd_in = (int)a[0], fd_out = (int)a[2];
	void *off_in = (void *)a[1], *off_out = (void *)a[3];
	size_t len = (size_t)a[4];
	unsigned flags = (unsigned)a[5];
	struct splice_end sock = { -1, NULL };
	int other;
	bool to_pipe;
	struct vsock_slot *si = vsock_fd_slot(fd_in), *so = vsock_fd_slot(fd_out);
	if (si && so)
		return -EINVAL;   /* no pipe on either side */
	if (si) {
		sock = (struct splice_end){ fd_in, si };
		other = fd_out;
		to_pipe = true;
	} else if (so) {
		sock = (struct splice_end){ fd_out, so };
		other = fd_in;
		to_pipe = false;
	} else {
		return USNET_HOOK_PASS;
	}
	/* do_splice()'s checks, in its order: each end open the right way;
	 * one a pipe; an offset given for the pipe: ESPIPE, for the socket:
	 * EINVAL (it cannot pread/pwrite) */
	long fl = vsock_sys(SYS_fcntl, other, F_GETFL, 0, 0, 0, 0);
	if (fl < 0)
		return fl;
	if ((fl & O_ACCMODE) == (to_pipe ? O_RDONLY : O_WRONLY))
		return -EBADF;
	if (!is_pipe(other))
		return -EINVAL;
	if (to_pipe ? off_out : off_in)
		return -ESPIPE;
	if (to_pipe ? off_in : off_out)
		return -EINVAL;
	if (!len)
		return 0;
	if (!vsock_slot_enter(sock.fd, sock.s))
		return -EBADF;
	char *scratch = vsock_scratch(VSOCK_SCRATCH_IO, MAX_IOV * sizeof(struct iovec) + 65536);
	long r = -ENOMEM;
	if (scratch) {
		char *buf = scratch + MAX_IOV * sizeof(struct iovec);
		r = to_pipe ? splice_to_pipe(sock.s, other, len, flags, buf)
			    : splice_from_pipe(sock.s, other, len, flags, buf);
	}
	vsock_slot_leave(sock.s);
	return r;
}
