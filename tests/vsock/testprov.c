/*
 * A third-party provider, built outside the usnet tree's libraries as
 * build/tests/vsock/libtestprov.so: TCP-like stream sockets over memory
 * inside one process (AF_INET, SOCK_STREAM, any address).  It proves the
 * provider ABI is enough to plug a foreign stack in, and it drives the
 * switch's own readiness machinery (notifications, no kernel fds) in tests
 * that need no privileges.  It follows Linux's tcp_poll() for what poll
 * reports.  UDP and other families are declined (they go to the kernel).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "usnet/provider.h"

#define NSOCK 256
#define BUFCAP 65536
#define QMAX 64

enum tstate { T_NEW, T_BOUND, T_LISTEN, T_CONNECTED };

struct tsock {
	int used;
	enum tstate state;
	uint64_t cookie;
	struct sockaddr_in local, remote;
	int peer;                 /* index, -1 none */
	int peer_gone;            /* the peer closed */
	int rd_shut, wr_shut;     /* our own shutdown() */
	int peer_wr_shut;         /* the peer's FIN */
	int queue[QMAX], qn;      /* listener: connections to accept */
	size_t head, len;         /* receive ring */
	unsigned char buf[BUFCAP];
	int reuseaddr, nodelay, keepalive;
	int inq;                  /* TCP_INQ: recvmsg reports what is left */
};

static struct tsock socks[NSOCK];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const struct usnet_provider_host *host;
static uint16_t next_port = 41000;

static uint32_t events_of(struct tsock *t)
{
	uint32_t ev = 0;
	if (t->state == T_LISTEN)
		return t->qn ? USNET_PROVIDER_EV_IN : 0;
	if (t->state != T_CONNECTED)
		return USNET_PROVIDER_EV_OUT | USNET_PROVIDER_EV_HUP;
	int rcv_shut = t->peer_wr_shut || t->peer_gone || t->rd_shut;
	if (t->len || rcv_shut)
		ev |= USNET_PROVIDER_EV_IN;
	if (rcv_shut)
		ev |= USNET_PROVIDER_EV_RDHUP;
	struct tsock *p = t->peer >= 0 ? &socks[t->peer] : NULL;
	if (t->wr_shut || !p || p->len < BUFCAP)
		ev |= USNET_PROVIDER_EV_OUT;
	if (rcv_shut && (t->wr_shut || t->peer_gone))
		ev |= USNET_PROVIDER_EV_HUP;
	return ev;
}

static void notify(struct tsock *t)
{
	host->notify(host->host, t->cookie, events_of(t));
}

static int tp_init(const struct usnet_provider_host *h, void **ctx, char *err, size_t errlen)
{
	if (h->abi_version != USNET_PROVIDER_ABI_VERSION) {
		snprintf(err, errlen, "host ABI %u, provider ABI %d", h->abi_version, USNET_PROVIDER_ABI_VERSION);
		return -EPROTO;
	}
	host = h;
	*ctx = NULL;
	return 0;
}

static int tp_socket(void *ctx, int domain, int type, int protocol, uint64_t cookie, usnet_psock_t *out)
{
	(void)ctx;
	if (domain != AF_INET || type != SOCK_STREAM || (protocol && protocol != IPPROTO_TCP))
		return USNET_PROVIDER_DECLINE;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NSOCK; i++) {
		if (socks[i].used)
			continue;
		memset(&socks[i], 0, offsetof(struct tsock, buf));
		socks[i].used = 1;
		socks[i].peer = -1;
		socks[i].cookie = cookie;
		socks[i].local.sin_family = AF_INET;
		*out = (usnet_psock_t)i;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	pthread_mutex_unlock(&lock);
	return -ENFILE;
}

static struct tsock *listener_on(uint16_t port)
{
	for (int i = 0; i < NSOCK; i++)
		if (socks[i].used && socks[i].state == T_LISTEN && socks[i].local.sin_port == port)
			return &socks[i];
	return NULL;
}

static int tp_bind(void *ctx, usnet_psock_t s, const struct sockaddr *a, socklen_t len)
{
	(void)ctx;
	if (!a || len < sizeof(struct sockaddr_in) || a->sa_family != AF_INET)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	int r = 0;
	struct sockaddr_in in;
	memcpy(&in, a, sizeof in);
	if (t->state != T_NEW)
		r = -EINVAL;
	else if (in.sin_port && listener_on(in.sin_port))
		r = -EADDRINUSE;
	if (r == 0) {
		if (!in.sin_port)
			in.sin_port = htons(next_port++);
		t->local = in;
		t->state = T_BOUND;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static int tp_listen(void *ctx, usnet_psock_t s, int backlog)
{
	(void)ctx;
	(void)backlog;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	int r = 0;
	if (t->state == T_CONNECTED)
		r = -EINVAL;
	else {
		if (t->state == T_NEW) {
			t->local.sin_port = htons(next_port++);
		}
		t->state = T_LISTEN;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static int tp_accept(void *ctx, usnet_psock_t s, struct sockaddr *a, socklen_t *len, uint64_t cookie,
		     usnet_psock_t *out)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	int r;
	if (t->state != T_LISTEN) {
		r = -EINVAL;
	} else if (!t->qn) {
		r = -EAGAIN;
	} else {
		int c = t->queue[0];
		memmove(t->queue, t->queue + 1, (size_t)(--t->qn) * sizeof(int));
		socks[c].cookie = cookie;
		if (a && len) {
			socklen_t l = *len < sizeof(struct sockaddr_in) ? *len : sizeof(struct sockaddr_in);
			memcpy(a, &socks[c].remote, l);
			*len = sizeof(struct sockaddr_in);
		}
		*out = (usnet_psock_t)c;
		r = 0;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static int tp_connect(void *ctx, usnet_psock_t s, const struct sockaddr *a, socklen_t len)
{
	(void)ctx;
	if (!a || len < sizeof(struct sockaddr_in) || a->sa_family != AF_INET)
		return -EINVAL;
	struct sockaddr_in to;
	memcpy(&to, a, sizeof to);
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	struct tsock *l = listener_on(to.sin_port);
	int r = 0;
	int si = -1;
	if (t->state == T_CONNECTED)
		r = -EISCONN;
	else if (t->state == T_LISTEN)
		r = -EINVAL;
	else if (!l)
		r = -ECONNREFUSED;
	else if (l->qn == QMAX)
		r = -EAGAIN;
	for (int i = 0; r == 0 && i < NSOCK; i++)
		if (!socks[i].used) {
			si = i;
			break;
		}
	if (r == 0 && si < 0)
		r = -ENFILE;
	if (r == 0) {
		struct tsock *sv = &socks[si];
		memset(sv, 0, offsetof(struct tsock, buf));
		sv->used = 1;
		if (t->state == T_NEW) {
			t->local.sin_family = AF_INET;
			t->local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			t->local.sin_port = htons(next_port++);
		}
		t->state = T_CONNECTED;
		t->remote = to;
		t->peer = si;
		sv->state = T_CONNECTED;
		sv->local = to;
		sv->remote = t->local;
		sv->peer = (int)s;
		l->queue[l->qn++] = si;
		notify(l);
		notify(t);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static long tp_sendmsg(void *ctx, usnet_psock_t s, const struct msghdr *m, int flags)
{
	(void)ctx;
	(void)flags;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	long r = 0;
	if (t->state != T_CONNECTED) {
		r = -ENOTCONN;
		goto out;
	}
	if (t->wr_shut || t->peer_gone) {
		r = -EPIPE;
		goto out;
	}
	struct tsock *p = &socks[t->peer];
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		const unsigned char *src = m->msg_iov[i].iov_base;
		size_t n = m->msg_iov[i].iov_len;
		while (n && p->len < BUFCAP) {
			size_t tail = (p->head + p->len) % BUFCAP;
			size_t chunk = BUFCAP - tail;
			if (chunk > BUFCAP - p->len)
				chunk = BUFCAP - p->len;
			if (chunk > n)
				chunk = n;
			memcpy(p->buf + tail, src, chunk);
			p->len += chunk;
			src += chunk;
			n -= chunk;
			r += (long)chunk;
		}
	}
	if (r == 0 && p->len == BUFCAP)
		r = -EAGAIN;
	if (r > 0)
		notify(p);
out:
	pthread_mutex_unlock(&lock);
	return r;
}

static long tp_recvmsg(void *ctx, usnet_psock_t s, struct msghdr *m, int flags)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	long r = 0;
	m->msg_flags = 0;
	m->msg_namelen = 0;
	if (t->state != T_CONNECTED) {
		r = -ENOTCONN;
		goto out;
	}
	if (!t->len) {
		r = (t->peer_wr_shut || t->peer_gone || t->rd_shut) ? 0 : -EAGAIN;
		goto out;
	}
	size_t pos = t->head, left = t->len;
	for (size_t i = 0; i < m->msg_iovlen && left; i++) {
		unsigned char *dst = m->msg_iov[i].iov_base;
		size_t n = m->msg_iov[i].iov_len;
		while (n && left) {
			size_t chunk = BUFCAP - pos;
			if (chunk > left)
				chunk = left;
			if (chunk > n)
				chunk = n;
			memcpy(dst, t->buf + pos, chunk);
			pos = (pos + chunk) % BUFCAP;
			left -= chunk;
			dst += chunk;
			n -= chunk;
			r += (long)chunk;
		}
	}
	if (!(flags & MSG_PEEK)) {
		t->head = pos;
		t->len = left;
		if (!t->peer_gone && t->peer >= 0)
			notify(&socks[t->peer]);
	}
out:
	if (r >= 0 && t->inq) {
		/* TCP_INQ as Linux: what is left, 1 after the peer's FIN */
		int inq = (int)t->len;
		if (inq == 0 && (t->peer_wr_shut || t->peer_gone))
			inq = 1;
		size_t room = m->msg_control ? m->msg_controllen : 0;
		m->msg_controllen = 0;
		if (room >= CMSG_LEN(sizeof inq)) {
			struct cmsghdr *cm = m->msg_control;
			cm->cmsg_level = SOL_TCP;
			cm->cmsg_type = TCP_CM_INQ;
			cm->cmsg_len = CMSG_LEN(sizeof inq);
			memcpy(CMSG_DATA(cm), &inq, sizeof inq);
			m->msg_controllen = room < CMSG_SPACE(sizeof inq) ? room : CMSG_SPACE(sizeof inq);
		} else {
			m->msg_flags |= MSG_CTRUNC;
		}
	} else if (r >= 0) {
		m->msg_controllen = 0;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static int tp_shutdown(void *ctx, usnet_psock_t s, int how)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	int r = 0;
	if (t->state != T_CONNECTED) {
		r = -ENOTCONN;
	} else {
		if (how == SHUT_RD || how == SHUT_RDWR)
			t->rd_shut = 1;
		if ((how == SHUT_WR || how == SHUT_RDWR) && !t->wr_shut) {
			t->wr_shut = 1;
			if (!t->peer_gone) {
				socks[t->peer].peer_wr_shut = 1;
				notify(&socks[t->peer]);
			}
		}
		notify(t);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static void close_locked(int i)
{
	struct tsock *t = &socks[i];
	if (t->state == T_LISTEN)
		for (int k = 0; k < t->qn; k++)
			close_locked(t->queue[k]);
	if (t->state == T_CONNECTED && !t->peer_gone) {
		struct tsock *p = &socks[t->peer];
		p->peer_gone = 1;
		p->peer = -1;
		notify(p);
	}
	t->used = 0;
}

static int tp_close(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	close_locked((int)s);
	pthread_mutex_unlock(&lock);
	return 0;
}

static int *opt_ref(struct tsock *t, int level, int name)
{
	if (level == SOL_SOCKET && name == SO_REUSEADDR) return &t->reuseaddr;
	if (level == SOL_SOCKET && name == SO_KEEPALIVE) return &t->keepalive;
	if (level == IPPROTO_TCP && name == TCP_NODELAY) return &t->nodelay;
	if (level == IPPROTO_TCP && name == TCP_INQ) return &t->inq;
	return NULL;
}

static int tp_getsockopt(void *ctx, usnet_psock_t s, int level, int name, void *val, socklen_t *len)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	struct tsock *t = &socks[s];
	int v, r = 0;
	int *ref = opt_ref(t, level, name);
	if (ref)
		v = *ref;
	else if (level == SOL_SOCKET && name == SO_ERROR)
		v = 0;
	else if (level == SOL_SOCKET && name == SO_ACCEPTCONN)
		v = t->state == T_LISTEN;
	else if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF))
		v = BUFCAP;
	else
		r = -ENOPROTOOPT;
	pthread_mutex_unlock(&lock);
	if (r)
		return r;
	socklen_t l = *len < sizeof v ? *len : sizeof v;
	memcpy(val, &v, l);
	*len = l;
	return 0;
}

static int tp_setsockopt(void *ctx, usnet_psock_t s, int level, int name, const void *val, socklen_t len)
{
	(void)ctx;
	if (!val || len < sizeof(int))
		return -EINVAL;
	int v;
	memcpy(&v, val, sizeof v);
	if (level == IPPROTO_TCP && name == TCP_INQ && (v < 0 || v > 1))
		return -EINVAL;
	pthread_mutex_lock(&lock);
	int *ref = opt_ref(&socks[s], level, name);
	if (ref)
		*ref = v;
	pthread_mutex_unlock(&lock);
	return ref ? 0 : -ENOPROTOOPT;
}

static int name_of(const struct sockaddr_in *in, struct sockaddr *a, socklen_t *len)
{
	socklen_t l = *len < sizeof *in ? *len : sizeof *in;
	memcpy(a, in, l);
	*len = sizeof *in;
	return 0;
}

static int tp_getsockname(void *ctx, usnet_psock_t s, struct sockaddr *a, socklen_t *len)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	int r = name_of(&socks[s].local, a, len);
	pthread_mutex_unlock(&lock);
	return r;
}

static int tp_getpeername(void *ctx, usnet_psock_t s, struct sockaddr *a, socklen_t *len)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	int r = socks[s].state == T_CONNECTED ? name_of(&socks[s].remote, a, len) : -ENOTCONN;
	pthread_mutex_unlock(&lock);
	return r;
}

static int tp_ioctl(void *ctx, usnet_psock_t s, unsigned long req, void *arg)
{
	(void)ctx;
	if (req != FIONREAD)
		return -ENOTTY;
	pthread_mutex_lock(&lock);
	int n = (int)socks[s].len;
	pthread_mutex_unlock(&lock);
	memcpy(arg, &n, sizeof n);
	return 0;
}

static uint32_t tp_poll(void *ctx, usnet_psock_t s)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	uint32_t ev = events_of(&socks[s]);
	pthread_mutex_unlock(&lock);
	return ev;
}

static const struct usnet_provider testprov = {
	.abi_version = USNET_PROVIDER_ABI_VERSION,
	.size = sizeof(struct usnet_provider),
	.name = "testprov",
	.init = tp_init,
	.socket = tp_socket,
	.bind = tp_bind,
	.listen = tp_listen,
	.accept = tp_accept,
	.connect = tp_connect,
	.sendmsg = tp_sendmsg,
	.recvmsg = tp_recvmsg,
	.shutdown = tp_shutdown,
	.close = tp_close,
	.getsockopt = tp_getsockopt,
	.setsockopt = tp_setsockopt,
	.getsockname = tp_getsockname,
	.getpeername = tp_getpeername,
	.ioctl = tp_ioctl,
	.poll = tp_poll,
};

__attribute__((visibility("default"))) const struct usnet_provider *usnet_provider_v1(void)
{
	return &testprov;
}
