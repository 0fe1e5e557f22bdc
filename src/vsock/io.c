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

static void note_held(void)
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
		note_held();
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
		/* Linux's TCP answers a send on a socket that is not connected
		 * (never connected, listening) with EPIPE, never ENOTCONN
		 * (sk_stream_wait_connect). */
		if (r == -ENOTCONN && stream)
			r = -EPIPE;
		if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
			raise_sigpipe();
		return r;
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
		note_held();
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

long vsock_sendfile(struct vsock_slot *s, int in_fd, off_t *offset, size_t count)
{
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
