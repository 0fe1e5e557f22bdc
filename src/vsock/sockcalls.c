/*
 * usnet switch — socket life: socket, bind, listen, accept, connect,
 * shutdown, options, names, and the hand-over of a socket to the kernel
 * when the provider says an address is not its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "vsock.h"
#include "vsock_calls.h"

int64_t vsock_deadline(int64_t timeout_ns)
{
	return timeout_ns > 0 ? (int64_t)vsock_now_ns() + timeout_ns : INT64_MAX;
}

bool vsock_slot_nonblocking(struct vsock_slot *s)
{
	return (atomic_load(&s->status) & O_NONBLOCK) != 0;
}

long vsock_socket(int domain, int type, int protocol)
{
	int r = vsock_provider_ready();
	if (r < 0)
		return r;
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct vsock_slot *s = vsock_slot_alloc();
	if (!s)
		return -ENFILE;
	s->domain = domain;
	s->type = base;
	s->protocol = protocol;
	atomic_store(&s->status, (type & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
	r = vsock_prov->socket(vsock_prov_ctx, domain, base, protocol, vsock_slot_index(s), &s->ps);
	if (r != 0) {
		vsock_slot_discard(s);
		return r == USNET_PROVIDER_DECLINE ? USNET_HOOK_PASS : (r > 0 ? -EINVAL : r);
	}
	int fd = vsock_slot_open_file(s, type & SOCK_CLOEXEC);
	if (fd < 0) {
		vsock_prov->close(vsock_prov_ctx, s->ps);
		vsock_slot_discard(s);
		return fd;
	}
	vsock_log(2, "socket(%d, %d, %d) = %d on %s", domain, base, protocol, fd, vsock_prov->name);
	return fd;
}

/* Replace the user socket at fd by a kernel socket with the same options;
 * the caller then passes the bind/connect to the kernel. */
long vsock_handover(int fd, struct vsock_slot *s)
{
	long kfd = vsock_sys(SYS_socket, s->domain, s->type | SOCK_CLOEXEC, s->protocol, 0, 0, 0);
	if (kfd < 0)
		return kfd;
	for (int i = 0; i < s->nreplay; i++) {
		const struct vsock_replay_opt *o = &s->replay[i];
		vsock_sys(SYS_setsockopt, kfd, o->level, o->name, &o->val, sizeof o->val, 0);
	}
	if (s->rcvtimeo_ns) {
		struct timeval tv = { s->rcvtimeo_ns / 1000000000LL, (s->rcvtimeo_ns % 1000000000LL) / 1000 };
		vsock_sys(SYS_setsockopt, kfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv, 0);
	}
	if (s->sndtimeo_ns) {
		struct timeval tv = { s->sndtimeo_ns / 1000000000LL, (s->sndtimeo_ns % 1000000000LL) / 1000 };
		vsock_sys(SYS_setsockopt, kfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv, 0);
	}
	if (vsock_slot_nonblocking(s))
		vsock_sys(SYS_fcntl, kfd, F_SETFL, O_NONBLOCK | O_RDWR, 0, 0, 0);
	long fdflags = vsock_sys(SYS_fcntl, fd, F_GETFD, 0, 0, 0, 0);
	long r = vsock_sys(SYS_dup3, kfd, fd, (fdflags > 0 && (fdflags & FD_CLOEXEC)) ? O_CLOEXEC : 0, 0, 0, 0);
	vsock_sys(SYS_close, kfd, 0, 0, 0, 0, 0);
	if (r < 0)
		return r;
	/* nginx registers a socket in its epoll before connecting it: the
	 * registration follows the socket to the kernel. */
	vsock_epoll_handover_fd(fd);
	vsock_fd_unmap(fd);
	vsock_slots_collect();   /* the provider socket closes with its file */
	vsock_log(2, "fd %d handed over to a kernel socket", fd);
	return USNET_HOOK_PASS;
}

/* What Linux's IPv4 layer checks of an address before the protocol sees it
 * (inet_bind, tcp_v4_connect, ip4_datagram_connect), the same whatever the
 * provider: 0, or -errno.  A bind to AF_UNSPEC with INADDR_ANY is taken as
 * AF_INET (*fixed, then used instead). */
static int inet_addr_check(const struct vsock_slot *s, const struct sockaddr *addr, socklen_t len, bool bind,
			   struct sockaddr_in *fixed)
{
	if (s->domain != AF_INET || !addr)
		return 0;
	if ((int)len < (int)sizeof(sa_family_t))
		return -EINVAL;
	if (!bind && addr->sa_family == AF_UNSPEC)
		return 0;   /* a disconnect: the provider's */
	if (len < sizeof(struct sockaddr_in))
		return -EINVAL;
	if (addr->sa_family == AF_INET)
		return 0;
	memcpy(fixed, addr, sizeof *fixed);
	if (bind && addr->sa_family == AF_UNSPEC && fixed->sin_addr.s_addr == htonl(INADDR_ANY)) {
		fixed->sin_family = AF_INET;
		return 1;
	}
	return -EAFNOSUPPORT;
}

long vsock_bind(int fd, struct vsock_slot *s, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_in fixed;
	int c = inet_addr_check(s, addr, len, true, &fixed);
	if (c < 0)
		return c;
	if (c > 0)
		addr = (const struct sockaddr *)&fixed;
	int r = vsock_prov->bind(vsock_prov_ctx, s->ps, addr, len);
	if (r == USNET_PROVIDER_HANDOVER)
		return vsock_handover(fd, s);
	return r;
}

long vsock_listen(struct vsock_slot *s, int backlog)
{
	return vsock_prov->listen(vsock_prov_ctx, s->ps, backlog);
}

long vsock_accept(struct vsock_slot *s, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	int64_t deadline = vsock_deadline(s->rcvtimeo_ns);
	for (;;) {
		struct vsock_slot *ns = vsock_slot_alloc();
		if (!ns)
			return -ENFILE;
		int r = vsock_prov->accept(vsock_prov_ctx, s->ps, addr, len, vsock_slot_index(ns), &ns->ps);
		if (r == 0) {
			ns->domain = s->domain;
			ns->type = s->type;
			ns->protocol = s->protocol;
			atomic_store(&ns->status, (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
			int fd = vsock_slot_open_file(ns, flags & SOCK_CLOEXEC);
			if (fd < 0) {
				vsock_prov->close(vsock_prov_ctx, ns->ps);
				vsock_slot_discard(ns);
			}
			return fd;
		}
		vsock_slot_discard(ns);
		if (r != -EAGAIN || vsock_slot_nonblocking(s))
			return r;
		r = vsock_wait_slot(s, USNET_PROVIDER_EV_IN, deadline);
		if (r < 0)
			return r;
	}
}

long vsock_connect(int fd, struct vsock_slot *s, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_in fixed;
	int c = inet_addr_check(s, addr, len, false, &fixed);
	if (c < 0)
		return c;
	int r = vsock_prov->connect(vsock_prov_ctx, s->ps, addr, len);
	if (r == USNET_PROVIDER_HANDOVER)
		return vsock_handover(fd, s);
	if (r != -EINPROGRESS || vsock_slot_nonblocking(s))
		return r;
	r = vsock_wait_slot(s, USNET_PROVIDER_EV_OUT, vsock_deadline(s->sndtimeo_ns));
	if (r == -EAGAIN)
		return -EINPROGRESS;
	if (r < 0)
		return r;
	int err = 0;
	socklen_t el = sizeof err;
	r = vsock_prov->getsockopt(vsock_prov_ctx, s->ps, SOL_SOCKET, SO_ERROR, &err, &el);
	return r < 0 ? r : -err;
}

long vsock_shutdown(struct vsock_slot *s, int how)
{
	if (how < SHUT_RD || how > SHUT_RDWR)
		return -EINVAL;
	return vsock_prov->shutdown(vsock_prov_ctx, s->ps, how);
}

static bool is_timeo(int level, int name, bool *rcv)
{
	if (level != SOL_SOCKET)
		return false;
	if (name == SO_RCVTIMEO || name == SO_RCVTIMEO_NEW) {
		*rcv = true;
		return true;
	}
	if (name == SO_SNDTIMEO || name == SO_SNDTIMEO_NEW) {
		*rcv = false;
		return true;
	}
	return false;
}

long vsock_setsockopt(int fd, struct vsock_slot *s, int level, int name, const void *val, socklen_t len)
{
	bool rcv;
	if (is_timeo(level, name, &rcv)) {
		/* struct timeval and __kernel_sock_timeval agree on x86-64 and arm64. */
		if (!val || len < sizeof(struct timeval))
			return -EINVAL;
		struct timeval tv;
		memcpy(&tv, val, sizeof tv);
		if (tv.tv_usec < 0 || tv.tv_usec >= 1000000)
			return -EDOM;
		int64_t ns = tv.tv_sec < 0 ? 0 : (int64_t)tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
		if (rcv)
			s->rcvtimeo_ns = ns;
		else
			s->sndtimeo_ns = ns;
		return 0;
	}
	int r = vsock_prov->setsockopt(vsock_prov_ctx, s->ps, level, name, val, len);
	if (level == IPPROTO_TCP)
		vsock_tx_note_held();   /* TCP_CORK 0 and TCP_NODELAY 1 send what was held back */
	if (r == USNET_PROVIDER_HANDOVER)   /* SO_BINDTODEVICE to the kernel's interface */
		return vsock_handover(fd, s);   /* the call then goes to the kernel socket */
	if (r == 0 && val && len == sizeof(int)) {
		int v;
		memcpy(&v, val, sizeof v);
		int i;
		for (i = 0; i < s->nreplay; i++)
			if (s->replay[i].level == level && s->replay[i].name == name)
				break;
		if (i < VSOCK_MAX_REPLAY) {
			s->replay[i] = (struct vsock_replay_opt){ level, name, v };
			if (i == s->nreplay)
				s->nreplay++;
		}
	}
	return r;
}

static long put_int(void *val, socklen_t *len, int v)
{
	socklen_t l;
	memcpy(&l, len, sizeof l);
	if ((int)l < 0)
		return -EINVAL;
	if (l > sizeof v)
		l = sizeof v;
	memcpy(val, &v, l);
	memcpy(len, &l, sizeof l);
	return 0;
}

long vsock_getsockopt(struct vsock_slot *s, int level, int name, void *val, socklen_t *len)
{
	if (!len || !val)
		return -EFAULT;
	bool rcv;
	if (is_timeo(level, name, &rcv)) {
		int64_t ns = rcv ? s->rcvtimeo_ns : s->sndtimeo_ns;
		struct timeval tv = { ns / 1000000000LL, (ns % 1000000000LL) / 1000 };
		socklen_t l;
		memcpy(&l, len, sizeof l);
		if ((int)l < 0)
			return -EINVAL;
		if (l > sizeof tv)
			l = sizeof tv;
		memcpy(val, &tv, l);
		memcpy(len, &l, sizeof l);
		return 0;
	}
	if (level == SOL_SOCKET && name == SO_DOMAIN)
		return put_int(val, len, s->domain);
	if (level == SOL_SOCKET && name == SO_TYPE)
		return put_int(val, len, s->type);
	if (level == SOL_SOCKET && name == SO_PROTOCOL)
		return put_int(val, len, s->protocol ? s->protocol
				: (s->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP));
	return vsock_prov->getsockopt(vsock_prov_ctx, s->ps, level, name, val, len);
}

long vsock_getname(struct vsock_slot *s, bool peer, struct sockaddr *addr, socklen_t *len)
{
	if (!addr || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	return peer ? vsock_prov->getpeername(vsock_prov_ctx, s->ps, addr, len)
		    : vsock_prov->getsockname(vsock_prov_ctx, s->ps, addr, len);
}
