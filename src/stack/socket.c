/*
 * The socket API (include/usnet/stack.h): argument checking, dispatch to
 * TCP or UDP, options, readiness and statistics.  Every entry point that
 * may transmit builds a net_ctx and flushes it before returning.
 */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_ipv6.h"

#define CHECK(st, s, k) do { int _r = sock_check((st), (s), &(k)); if (_r < 0) return _r; } while (0)

int usnet_socket(struct usnet_stack *st, int type)
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return -USNET_EINVAL;
	int v6 = (type & USNET_SOCK_V6) != 0;
	type &= ~USNET_SOCK_V6;
	if (type != USNET_SOCK_STREAM && type != USNET_SOCK_DGRAM)
		return -USNET_EPROTONOSUPPORT;
	int32_t i = sock_alloc_reclaim(st, type);
	if (i == NIL)
		return -USNET_ENFILE;
	sk(st, i)->af = v6 ? USNET_AF_INET6 : USNET_AF_INET;
	return i;
}

/* Socket i's local (local 1) or remote address as the API gives it: IPv6
 * for a net6 socket, and for an IPv6 one with no address yet (::). */
static void sock_name(struct usnet_stack *st, int32_t i, int local, struct usnet_addr *out)
{
	const struct sock *s = sk(st, i);
	memset(out, 0, sizeof *out);
	out->port = local ? s->lport : s->rport;
	if (s->net6 || (s->af == USNET_AF_INET6 && !(s->flags & (SF_BOUND | SF_HASHED | SF_CONNECTED)))) {
		out->family = USNET_AF_INET6;
		if (s->net6)
			memcpy(out->ip6, local ? st_sock6(st)[i].laddr : st_sock6(st)[i].raddr, 16);
		return;
	}
	out->ip = local ? s->lip : s->rip;
}

/* Whether socket s may use an address of a's family, as Linux answers:
 * an IPv4 socket no IPv6 address; an IPv6 one an IPv4 address (mapped,
 * to the provider) unless IPV6_V6ONLY: bind then says EINVAL, connect
 * and send ENETUNREACH.  0 or -errno. */
static int addr_family_ok(const struct sock *s, const struct usnet_addr *a, int binding)
{
	if (a->family != USNET_AF_INET && a->family != USNET_AF_INET6)
		return -USNET_EAFNOSUPPORT;
	if (a->family == USNET_AF_INET6)
		return s->af == USNET_AF_INET6 ? 0 : -USNET_EAFNOSUPPORT;
	if (s->af == USNET_AF_INET6 && s->v6only)
		return binding ? -USNET_EINVAL : -USNET_ENETUNREACH;
	return 0;
}

int usnet_bind(struct usnet_stack *st, usnet_sock_t sd, const struct usnet_addr *addr)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (!addr)
		return -USNET_EFAULT;
	int fr = addr_family_ok(s, addr, 1);
	if (fr < 0)
		return fr;
	if (addr->family == USNET_AF_INET6) {
		if ((s->flags & SF_BOUND) || (s->type == USNET_SOCK_STREAM && s->state != USNET_TCP_CLOSED) ||
		    (s->flags & SF_HASHED))
			return -USNET_EINVAL;
		/* ::, ::1, an address of ours in use (Linux: a tentative one
		 * is not available either), or a group for a UDP socket (it
		 * then takes that group's datagrams alone) */
		int group = s->type == USNET_SOCK_DGRAM && ip6_is_multicast(addr->ip6);
		if (!ip6_is_unspecified(addr->ip6) && !ip6_is_loopback(addr->ip6) && !group &&
		    !ip6_addr_usable(st, addr->ip6))
			return -USNET_EADDRNOTAVAIL;
		return sock_bind6(st, sd, addr->ip6, addr->port);
	}
	if ((s->flags & SF_BOUND) || (s->type == USNET_SOCK_STREAM && s->state != USNET_TCP_CLOSED) ||
	    (s->flags & SF_HASHED))
		return -USNET_EINVAL;
	/* a UDP socket may take one group's datagrams alone (bound to it) */
	int group = s->type == USNET_SOCK_DGRAM && (addr->ip >> 28) == 0xe;
	if (addr->ip != 0 && addr->ip != st->cfg.ip && addr->ip != 0xffffffffu && !group)
		return -USNET_EADDRNOTAVAIL;
	uint16_t port = addr->port;
	if (port == 0) {
		int r = choose_ephemeral(st, NULL, s->type, addr->ip, 0, 0, &port);
		if (r < 0)
			return r;
	} else if (port_in_use(st, s->type, addr->ip, port, s->flags & (SF_REUSEADDR | SF_REUSEPORT))) {
		return -USNET_EADDRINUSE;
	}
	s->lip = addr->ip == 0xffffffffu ? 0 : addr->ip;
	s->lport = port;
	port_insert(st, sd);
	return 0;
}

int usnet_listen(struct usnet_stack *st, usnet_sock_t sd, int backlog)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_STREAM)
		return -USNET_EOPNOTSUPP;
	/* Linux caps the backlog at net.core.somaxconn (a negative one is
	 * taken as the cap too) */
	uint32_t cap = st->cfg.somaxconn < 1 ? 1 : st->cfg.somaxconn > 65535 ? 65535 : st->cfg.somaxconn;
	uint32_t want = backlog < 0 || (uint32_t)backlog > cap ? cap : (uint32_t)backlog;
	if (want < 1)
		want = 1;
	if (s->state == USNET_TCP_LISTEN) {
		s->backlog = (uint16_t)want;
		return 0;
	}
	if (s->state != USNET_TCP_CLOSED || (s->flags & (SF_HASHED | SF_RESET)))
		return -USNET_EINVAL;
	if (!(s->flags & SF_BOUND)) {
		struct usnet_addr a = { 0 };
		a.family = s->af;
		int r = usnet_bind(st, sd, &a);
		if (r < 0)
			return r;
	} else {
		/* Another listener on the same port needs SO_REUSEPORT on both. */
		int32_t other = s->net6 ? port_lookup6(st, USNET_SOCK_STREAM, st_sock6(st)[sd].laddr, s->lport) :
					  port_lookup(st, USNET_SOCK_STREAM, s->lip, s->lport);
		int same = other != NIL && other != sd && sk(st, other)->net6 == s->net6 &&
			   (s->net6 ? ip6_eq(st_sock6(st)[other].laddr, st_sock6(st)[sd].laddr) :
				      sk(st, other)->lip == s->lip);
		if (same && !((s->flags & SF_REUSEPORT) && (sk(st, other)->flags & SF_REUSEPORT)))
			return -USNET_EADDRINUSE;
	}
	s->state = USNET_TCP_LISTEN;
	s->backlog = (uint16_t)want;
	return 0;
}

int usnet_accept(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd,
		 struct usnet_addr *peer, uint64_t now)
{
	struct sock *l;
	CHECK(st, sd, l);
	if (l->type != USNET_SOCK_STREAM || l->state != USNET_TCP_LISTEN)
		return -USNET_EINVAL;
	int32_t ci = l->acc_head;
	if (ci == NIL)
		return -USNET_EAGAIN;
	struct sock *c = sk(st, ci);
	l->acc_head = c->acc_next;
	if (l->acc_head == NIL)
		l->acc_tail = NIL;
	l->acc_count--;
	c->acc_next = NIL;
	c->parent = NIL;
	if (peer)
		sock_name(st, ci, 0, peer);
	struct net_ctx x;
	ctx_init(&x, st, io, now);
	sock_notify(&x, l);
	/* The new socket starts with no user value and no report: the caller
	 * reads usnet_sock_events() once; changes from here on are reported. */
	c->user = 0;
	c->ev_last = sock_events(st, c);
	c->flags &= ~SF_EV_EDGE;
	ctx_flush(&x);
	return ci;
}

int usnet_local_taker(struct usnet_stack *st, int type, const struct usnet_addr *addr)
{
	if (!st || !addr || (type != USNET_SOCK_STREAM && type != USNET_SOCK_DGRAM))
		return 0;
	if (addr->family == USNET_AF_INET6)
		return port_lookup6(st, type, addr->ip6, addr->port) != NIL;
	return port_lookup(st, type, addr->ip, addr->port) != NIL;
}

static int tcp_connect_start(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, struct sock *s,
			     uint64_t now);

/* connect() to an IPv6 address (s is an IPv6 socket). */
static int connect6(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, struct sock *s,
		    const struct usnet_addr *addr, uint64_t now)
{
	uint8_t dst[16], src[16], nh[16];
	memcpy(dst, addr->ip6, 16);
	if (ip6_is_unspecified(dst))
		dst[15] = 1;   /* Linux: :: means ::1 */
	if ((s->flags & SF_BOUND) && !s->net6)
		return -USNET_EAFNOSUPPORT;   /* bound to an IPv4 address */
	if (addr->port == 0)
		return -USNET_EINVAL;
	int local = ip6_is_loopback(dst) || ip6_addr_find(st, dst) >= 0;
	if (s->type == USNET_SOCK_STREAM) {
		switch (s->state) {
		case USNET_TCP_CLOSED: break;
		case USNET_TCP_SYN_SENT: case USNET_TCP_SYN_RECEIVED: return -USNET_EALREADY;
		case USNET_TCP_LISTEN: return -USNET_EINVAL;
		default: return -USNET_EISCONN;
		}
		if (s->flags & (SF_RESET | SF_HASHED))
			return s->err ? -(int)s->err : -USNET_EISCONN;
		if (ip6_is_multicast(dst))
			return -USNET_ENETUNREACH;
	}
	if (!local && !ip6_is_multicast(dst) && route6_lookup(st, dst, nh) < 0)
		return -USNET_ENETUNREACH;
	const uint8_t *bound = st_sock6(st)[sd].laddr;
	if ((s->flags & SF_BOUND) && !ip6_is_unspecified(bound))
		memcpy(src, bound, 16);
	else if (local)
		memcpy(src, dst, 16);
	else if (ip6_select_src(st, dst, src) < 0)
		return -USNET_EADDRNOTAVAIL;
	if (s->type == USNET_SOCK_DGRAM) {
		if (!(s->flags & SF_BOUND)) {
			static const uint8_t any[16];
			int r = sock_bind6(st, sd, any, 0);
			if (r < 0)
				return r;
		}
		sock_set_addr6(st, sd, NULL, dst);
		s->rport = addr->port;
		s->flags |= SF_CONNECTED;
		return 0;
	}
	if (!(s->flags & SF_BOUND)) {
		uint16_t port;
		int r = choose_ephemeral6(st, io, USNET_SOCK_STREAM, src, 0, dst, addr->port, &port);
		if (r < 0)
			return r;
		s->lport = port;
	} else if (conn_lookup6(st, src, s->lport, dst, addr->port) != NIL) {
		return -USNET_EADDRINUSE;
	}
	sock_set_addr6(st, sd, src, dst);
	s->rport = addr->port;
	return tcp_connect_start(st, io, sd, s, now);
}

int usnet_connect(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd,
		  const struct usnet_addr *addr, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (!addr)
		return -USNET_EFAULT;
	int fr = addr_family_ok(s, addr, 0);
	if (fr < 0)
		return fr;
	if (addr->family == USNET_AF_INET6)
		return connect6(st, io, sd, s, addr, now);
	if (s->net6 && !sock_dual_any(st, sd))
		return -USNET_ENETUNREACH;   /* bound to an IPv6 address */
	if (s->type == USNET_SOCK_DGRAM) {
		if (addr->ip == 0 && addr->port == 0) {   /* dissolve the association */
			s->flags &= ~SF_CONNECTED;
			s->rip = 0;
			s->rport = 0;
			return 0;
		}
		if (addr->port == 0)
			return -USNET_EINVAL;
		uint32_t nh;
		if (addr->ip != 0xffffffffu && (addr->ip >> 28) != 0xe && route_lookup(st, addr->ip, &nh) < 0)
			return -USNET_ENETUNREACH;
		if (!(s->flags & SF_BOUND)) {
			struct usnet_addr a = { 0 };
			int r = usnet_bind(st, sd, &a);
			if (r < 0)
				return r;
		}
		s->net6 = 0;   /* a dual-stack socket's association is IPv4 now */
		s->lip = 0;
		s->rip = addr->ip;
		s->rport = addr->port;
		s->flags |= SF_CONNECTED;
		return 0;
	}
	switch (s->state) {
	case USNET_TCP_CLOSED:
		break;
	case USNET_TCP_SYN_SENT: case USNET_TCP_SYN_RECEIVED:
		return -USNET_EALREADY;
	case USNET_TCP_LISTEN:
		return -USNET_EINVAL;
	default:
		return -USNET_EISCONN;
	}
	if (s->flags & (SF_RESET | SF_HASHED))
		return s->err ? -(int)s->err : -USNET_EISCONN;
	if (addr->ip == 0 || addr->port == 0 || addr->ip == 0xffffffffu || (addr->ip >> 28) == 0xe)
		return addr->port == 0 ? -USNET_EINVAL : -USNET_ENETUNREACH;
	uint32_t nh;
	int loopback = ip4_is_loopback(addr->ip);
	if (!loopback && route_lookup(st, addr->ip, &nh) < 0)
		return -USNET_ENETUNREACH;
	s->net6 = 0;   /* an IPv6 socket on :: connects over IPv4 */
	s->lip = loopback ? IP4_LOOPBACK : st->cfg.ip;
	s->rip = addr->ip;
	s->rport = addr->port;
	if (!(s->flags & SF_BOUND)) {
		uint16_t port;
		int r = choose_ephemeral(st, io, USNET_SOCK_STREAM, s->lip, s->rip, s->rport, &port);
		if (r < 0)
			return r;
		s->lport = port;
	} else if (conn_lookup(st, s->lip, s->lport, s->rip, s->rport) != NIL) {
		return -USNET_EADDRINUSE;
	}
	return tcp_connect_start(st, io, sd, s, now);
}

/* The handshake of a connection whose addresses and ports are set. */
static int tcp_connect_start(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, struct sock *s,
			     uint64_t now)
{
	conn_insert(st, sd);
	s->flags |= SF_ACTIVE;
	s->state = USNET_TCP_SYN_SENT;
	s->ecn = st->cfg.tcp_ecn == 1 ? SE_OK : 0;   /* asked for (RFC 3168 6.1.1) */
	s->rcv_wscale = tcp_rcv_wscale(st, s);
	s->mss = (uint16_t)(link_mtu(st, s->net6) - (s->net6 ? 60 : 40));
	s->rcv_mss = s->mss;
	s->iss = tcp_isn(st, s, now);
	s->ts_offset = (uint32_t)siphash24(st->cfg.secret, &s->lip, 8) ^ s->lport;
	s->snd_una = s->snd_nxt = s->iss;
	s->rto_us = TCP_RTO_INIT_US;
	s->last_rx = now;
	tcp_cc(s)->init(s, now);
	struct net_ctx x;
	ctx_init(&x, st, io, now);
	tcp_send_syn(&x, s);
	s->snd_nxt = s->snd_max = s->iss + 1;
	s->flags |= SF_RTT_TIMING;
	s->rtt_seq = s->iss;
	s->rtt_start = now;
	tcp_arm_rto(&x, s);
	sock_notify(&x, s);
	ctx_flush(&x);
	return -USNET_EINPROGRESS;
}

static uint64_t iov_total(const struct usnet_iovec *iov, int iovcnt)
{
	uint64_t t = 0;
	for (int i = 0; i < iovcnt; i++)
		t += iov[i].len;
	return t;
}

/* The room a send may fill in s's buffer now (more than 0), or what the
 * send answers: 0 for an empty one (want 0), or an error. */
static long tcp_send_room(struct sock *s, uint64_t want)
{
	if (s->err && (s->flags & SF_RESET)) {
		int e = s->err;
		s->err = 0;
		return -e;
	}
	switch (s->state) {
	case USNET_TCP_ESTABLISHED: case USNET_TCP_CLOSE_WAIT:
		break;
	case USNET_TCP_SYN_SENT: case USNET_TCP_SYN_RECEIVED:
		return -USNET_EAGAIN;
	case USNET_TCP_LISTEN:
		return -USNET_ENOTCONN;
	case USNET_TCP_CLOSED:
		return (s->flags & (SF_RESET | SF_ACTIVE)) ? -USNET_EPIPE : -USNET_ENOTCONN;
	default:
		return -USNET_EPIPE;
	}
	if (s->flags & SF_SHUT_WR)
		return -USNET_EPIPE;
	uint32_t room = s->sndq.bytes < s->sndbuf ? s->sndbuf - s->sndq.bytes : 0;
	if (want == 0)
		return 0;
	if (room == 0) {
		s->flags |= SF_WAS_FULL;
		return -USNET_EAGAIN;
	}
	return room;
}

/* A send that found room but took nothing: the shared pool is exhausted
 * for now. */
static long tcp_send_nobuf(struct usnet_stack *st, struct sock *s)
{
	st->stats.tcp_drop_nobuf++;
	s->flags |= SF_WAS_FULL;
	return -USNET_EAGAIN;
}

/* After done (> 0) bytes joined s's send queue: MSG_MORE corks, and what
 * may leave now leaves. */
static void tcp_sent(struct net_ctx *c, struct sock *s, unsigned flags)
{
	if (flags & USNET_MSG_MORE)
		s->flags |= SF_CORK;
	else
		s->flags &= ~SF_CORK;
	tcp_output(c, s);
	sock_notify(c, s);
}

static long tcp_sendv(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
		      unsigned flags)
{
	struct usnet_stack *st = c->st;
	long room = tcp_send_room(s, iov_total(iov, iovcnt));
	if (room <= 0)
		return room;
	uint32_t done = 0;
	for (int i = 0; i < iovcnt && done < room; i++) {
		uint32_t n = (uint32_t)min_u64(iov[i].len, (uint64_t)room - done);
		uint32_t got = byteq_append(st, &s->sndq, iov[i].base, n);
		done += got;
		if (got < n)
			break;
	}
	if (done == 0)
		return tcp_send_nobuf(st, s);
	tcp_sent(c, s, flags);
	return done;
}

long usnet_sendv(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd,
		 const struct usnet_iovec *iov, int iovcnt, unsigned flags,
		 const struct usnet_addr *to, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -USNET_EFAULT;
	if (to && s->type == USNET_SOCK_DGRAM) {
		int fr = addr_family_ok(s, to, 0);
		if (fr < 0)
			return fr;
	}
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	long r;
	if (s->type == USNET_SOCK_DGRAM)
		r = udp_sendv(&c, s, iov, iovcnt, to);
	else
		r = tcp_sendv(&c, s, iov, iovcnt, flags);
	ctx_flush(&c);
	return r;
}

long usnet_send_fill(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, size_t len,
		     usnet_fill_fn fill, void *arg, unsigned flags, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_STREAM)
		return -USNET_EOPNOTSUPP;
	long room = tcp_send_room(s, len);
	if (room <= 0)
		return room;
	uint64_t want = min_u64(len, (uint64_t)room);
	uint64_t done = 0;
	long err = 0;
	int drained = 0;
	while (done < want && !drained) {
		/* a call fills at most BYTEQ_FILL_IOV chunks; 0: the pool ran dry */
		long r = byteq_fill(st, &s->sndq, (uint32_t)min_u64(want - done, UINT32_MAX), fill, arg, &drained);
		if (r <= 0) {
			err = r;
			break;
		}
		done += (uint64_t)r;
	}
	if (done == 0) {
		if (err < 0)
			return err;
		return drained ? 0 /* the source is at its end */ : tcp_send_nobuf(st, s);
	}
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	tcp_sent(&c, s, flags);
	ctx_flush(&c);
	return (long)done;
}

long usnet_send(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		const void *buf, size_t len, unsigned flags, uint64_t now)
{
	struct usnet_iovec v = { (void *)(uintptr_t)buf, len };
	return usnet_sendv(st, io, s, &v, 1, flags, NULL, now);
}

/* Receive-buffer autotuning (Linux's dynamic right-sizing): once a round
 * trip, if the program read more than in the round before, the buffer
 * grows to twice that (plus room for 16 segments), and by the growth once
 * more, up to cfg.rcvbuf_max, so that the window never holds a sender
 * back that the program keeps up with. */
static void tcp_rcv_space_adjust(struct net_ctx *c, struct sock *s)
{
	struct usnet_stack *st = c->st;
	if (!st->cfg.rcvbuf_max || (s->buf_lock & BUF_LOCK_RCV) || s->state < USNET_TCP_ESTABLISHED)
		return;
	uint32_t copied_seq = s->rcv_nxt - s->rcvq.bytes;
	if (!s->rcv_space_at) {
		s->rcv_space = min_u32(s->rcvbuf, TCP_INIT_CWND_SEGS * (uint32_t)s->rcv_mss);
		s->rcv_space_seq = copied_seq;
		s->rcv_space_at = c->now ? c->now : 1;
		return;
	}
	uint64_t rtt_ns = (uint64_t)(s->srtt_us ? s->srtt_us : TCP_RCV_RTT_DEFAULT_US) * NS_PER_US;
	if (c->now - s->rcv_space_at < rtt_ns)
		return;
	uint32_t copied = copied_seq - s->rcv_space_seq;
	if (copied > s->rcv_space && s->rcvbuf < st->cfg.rcvbuf_max) {
		uint64_t win = 2ull * copied + 16ull * s->rcv_mss;
		if (s->rcv_space)
			win += win * (copied - s->rcv_space) / s->rcv_space;
		if (win > st->cfg.rcvbuf_max)
			win = st->cfg.rcvbuf_max;
		if (win > s->rcvbuf)
			s->rcvbuf = (uint32_t)win;
	}
	s->rcv_space = copied;
	s->rcv_space_seq = copied_seq;
	s->rcv_space_at = c->now;
}

/* After the application took data: open the window when it grew enough. */
static void tcp_window_update(struct net_ctx *c, struct sock *s)
{
	if (s->state < USNET_TCP_ESTABLISHED || s->state == USNET_TCP_TIME_WAIT ||
	    (s->flags & SF_FIN_RCVD))
		return;
	uint32_t space = tcp_rcv_window(s);
	uint32_t cur = seq_gt(s->rcv_adv, s->rcv_nxt) ? s->rcv_adv - s->rcv_nxt : 0;
	uint32_t step = min_u32(2u * s->rcv_mss, s->rcvbuf / 2);
	if (space > cur && space - cur >= step)
		tcp_send_ack(c, s);
}

static long tcp_recvv(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
		      unsigned flags)
{
	struct usnet_stack *st = c->st;
	if (s->state == USNET_TCP_LISTEN)
		return -USNET_ENOTCONN;
	if (s->rcvq.bytes == 0) {
		if (s->err && (s->flags & SF_RESET)) {
			int e = s->err;
			s->err = 0;
			return -e;
		}
		if (s->flags & (SF_FIN_RCVD | SF_SHUT_RD | SF_RESET))
			return 0;
		if (s->state == USNET_TCP_CLOSED && !(s->flags & SF_ACTIVE))
			return -USNET_ENOTCONN;
		return -USNET_EAGAIN;
	}
	uint32_t done = 0;
	for (int i = 0; i < iovcnt && done < s->rcvq.bytes; i++) {
		uint32_t n = (uint32_t)min_u64(iov[i].len, s->rcvq.bytes - done);
		byteq_copy_out(st, &s->rcvq, done, iov[i].base, n);
		done += n;
	}
	if (!(flags & USNET_MSG_PEEK)) {
		byteq_consume(st, &s->rcvq, done);
		tcp_rcv_space_adjust(c, s);
		tcp_window_update(c, s);
		sock_notify(c, s);
	}
	return done;
}

long usnet_recvv(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd,
		 const struct usnet_iovec *iov, int iovcnt, unsigned flags,
		 struct usnet_addr *from, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -USNET_EFAULT;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	long r;
	if (s->type == USNET_SOCK_DGRAM) {
		r = udp_recvv(&c, s, iov, iovcnt, flags, from);
	} else {
		r = tcp_recvv(&c, s, iov, iovcnt, flags);
		if (r >= 0 && from) {
			from->ip = s->rip;
			from->port = s->rport;
		}
	}
	ctx_flush(&c);
	return r;
}

long usnet_recv(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		void *buf, size_t len, unsigned flags, uint64_t now)
{
	struct usnet_iovec v = { buf, len };
	return usnet_recvv(st, io, s, &v, 1, flags, NULL, now);
}

int usnet_recv_peek(struct usnet_stack *st, usnet_sock_t sd, struct usnet_iovec *iov, int max)
{
	struct chunk *chunks = st_chunks(st);
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_STREAM)
		return -USNET_EOPNOTSUPP;
	if (max < 0 || (max > 0 && !iov))
		return -USNET_EFAULT;
	int n = 0;
	for (int32_t k = s->rcvq.head; k != NIL && n < max; k = chunks[k].next) {
		if (!chunks[k].len)
			continue;
		iov[n].base = chunk_ptr(st, k) + chunks[k].off;
		iov[n].len = chunks[k].len;
		n++;
	}
	return n;
}

int usnet_recv_consume(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd,
		       size_t n, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_STREAM)
		return -USNET_EOPNOTSUPP;
	if (n > s->rcvq.bytes)
		return -USNET_EINVAL;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	byteq_consume(st, &s->rcvq, (uint32_t)n);
	tcp_window_update(&c, s);
	sock_notify(&c, s);
	ctx_flush(&c);
	return 0;
}

int usnet_shutdown(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, int how, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (how < 0 || how > 2)
		return -USNET_EINVAL;
	if (s->type == USNET_SOCK_STREAM) {
		if (s->state == USNET_TCP_LISTEN || s->state == USNET_TCP_SYN_SENT ||
		    (s->state == USNET_TCP_CLOSED && !(s->flags & SF_RESET)))
			return -USNET_ENOTCONN;
	} else if (!(s->flags & SF_CONNECTED)) {
		return -USNET_ENOTCONN;
	}
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	if (how == 0 || how == 2)
		s->flags |= SF_SHUT_RD;
	if ((how == 1 || how == 2) && !(s->flags & SF_SHUT_WR)) {
		s->flags |= SF_SHUT_WR;
		if (s->type == USNET_SOCK_STREAM) {
			if (s->state == USNET_TCP_ESTABLISHED || s->state == USNET_TCP_SYN_RECEIVED)
				s->state = USNET_TCP_FIN_WAIT_1;
			else if (s->state == USNET_TCP_CLOSE_WAIT)
				s->state = USNET_TCP_LAST_ACK;
			tcp_output(&c, s);
		}
	}
	s->flags |= SF_EV_EDGE;
	sock_notify(&c, s);
	ctx_flush(&c);
	return 0;
}

int usnet_close(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type == USNET_SOCK_DGRAM) {
		int groups = s->mc_n != 0, groups6 = s->mc6_n != 0;
		udp_close(st, s);
		if (groups || groups6) {   /* the groups it was the last member of: leave now */
			struct net_ctx c;
			ctx_init(&c, st, io, now);
			uint64_t next = min_u64(groups ? igmp_timers(&c) : UINT64_MAX,
						groups6 ? mld6_timers(&c) : UINT64_MAX);
			if (next < st->misc_at)
				st->misc_at = next;
			ctx_flush(&c);
		}
		return 0;
	}
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	int r = tcp_close(&c, s);
	ctx_flush(&c);
	return r;
}

int usnet_getsockname(struct usnet_stack *st, usnet_sock_t sd, struct usnet_addr *addr)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (!addr)
		return -USNET_EFAULT;
	sock_name(st, sd, 1, addr);
	return 0;
}

int usnet_getpeername(struct usnet_stack *st, usnet_sock_t sd, struct usnet_addr *addr)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (!addr)
		return -USNET_EFAULT;
	if (s->type == USNET_SOCK_DGRAM ? !(s->flags & SF_CONNECTED) :
	    (s->state == USNET_TCP_CLOSED || s->state == USNET_TCP_LISTEN || s->state == USNET_TCP_SYN_SENT))
		return -USNET_ENOTCONN;
	sock_name(st, sd, 0, addr);
	return 0;
}

static int flag_opt(struct sock *s, uint32_t f, int val)
{
	if (val) s->flags |= f; else s->flags &= ~f;
	return 0;
}

int usnet_setsockopt(struct usnet_stack *st, usnet_sock_t sd, enum usnet_sockopt opt, int val)
{
	struct sock *s;
	CHECK(st, sd, s);
	int tcp = s->type == USNET_SOCK_STREAM;
	switch (opt) {
	case USNET_SO_REUSEADDR: return flag_opt(s, SF_REUSEADDR, val);
	case USNET_SO_REUSEPORT: return flag_opt(s, SF_REUSEPORT, val);
	case USNET_SO_KEEPALIVE:
		flag_opt(s, SF_KEEPALIVE, val);
		if (tcp) {
			struct net_ctx c;
			ctx_init(&c, st, NULL, s->last_rx);
			tcp_keepalive_reset(&c, s);
		}
		return 0;
	case USNET_SO_LINGER:
		s->linger = (int16_t)(val < 0 ? -1 : val > 32767 ? 32767 : val);
		return 0;
	case USNET_SO_RCVBUF:
		if (val < 0) return -USNET_EINVAL;
		s->rcvbuf = (uint32_t)(val < 2048 ? 2048 : val > (64 << 20) ? (64 << 20) : val);
		s->buf_lock |= BUF_LOCK_RCV;   /* the program's size: no autotuning */
		return 0;
	case USNET_SO_SNDBUF:
		if (val < 0) return -USNET_EINVAL;
		s->sndbuf = (uint32_t)(val < 2048 ? 2048 : val > (64 << 20) ? (64 << 20) : val);
		s->buf_lock |= BUF_LOCK_SND;
		return 0;
	case USNET_SO_ERROR: case USNET_SO_TYPE: case USNET_SO_ACCEPTCONN:
		return -USNET_ENOPROTOOPT;
	case USNET_IP_TTL:
		if (val < -1 || val == 0 || val > 255) return -USNET_EINVAL;
		s->ip_ttl = (uint8_t)(val < 0 ? 0 : val);
		return 0;
	case USNET_IP_MULTICAST_TTL:
		if (tcp || val < -1 || val > 255) return -USNET_EINVAL;
		s->mc_ttl = (uint8_t)(val < 0 ? 1 : val);
		return 0;
	case USNET_IP_MULTICAST_LOOP:
		s->mc_opts = (uint8_t)(val ? s->mc_opts & ~MCO_NOLOOP : s->mc_opts | MCO_NOLOOP);
		return 0;
	case USNET_IP_MULTICAST_ALL:
		if (val != 0 && val != 1) return -USNET_EINVAL;
		s->mc_opts = (uint8_t)(val ? s->mc_opts & ~MCO_NOALL : s->mc_opts | MCO_NOALL);
		return 0;
	case USNET_IP_MULTICAST_IF:
		if (tcp) return -USNET_EINVAL;
		if (val != 0 && (uint32_t)val != st->cfg.ip) return -USNET_EADDRNOTAVAIL;
		s->mc_if = (uint32_t)val;
		return 0;
	case USNET_IPV6_MULTICAST_HOPS:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		if (tcp) return -USNET_ENOPROTOOPT;   /* as Linux */
		if (val < -1 || val > 255) return -USNET_EINVAL;
		s->mc6_hops = (uint8_t)(val < 0 ? 1 : val);
		return 0;
	case USNET_IPV6_MULTICAST_LOOP:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		if (val != 0 && val != 1) return -USNET_EINVAL;
		s->mc_opts = (uint8_t)(val ? s->mc_opts & ~MCO_NOLOOP6 : s->mc_opts | MCO_NOLOOP6);
		return 0;
	case USNET_IP_TOS:
		s->ip_tos = (uint8_t)(val & 0xfc);   /* as Linux: the ECN bits are the stack's */
		return 0;
	case USNET_SO_RCVLOWAT:
		if (val < 0) return -USNET_EINVAL;
		s->rcvlowat = (uint32_t)val;
		return 0;
	case USNET_IPV6_V6ONLY:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		/* Linux: only before the socket has a port */
		if (s->flags & (SF_BOUND | SF_HASHED)) return -USNET_EINVAL;
		s->v6only = val != 0;
		return 0;
	case USNET_IPV6_UNICAST_HOPS:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		if (val < -1 || val > 255) return -USNET_EINVAL;
		s->ip6_hops = (int16_t)val;
		return 0;
	case USNET_IPV6_TCLASS:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		if (val < -1 || val > 255) return -USNET_EINVAL;
		s->ip6_tclass = (uint8_t)(val < 0 ? 0 : val);
		return 0;
	default:
		break;
	}
	if (!tcp)
		return -USNET_ENOPROTOOPT;
	switch (opt) {
	case USNET_TCP_USER_TIMEOUT:
		if (val < 0) return -USNET_EINVAL;
		s->user_timeout_ms = (uint32_t)val;
		return 0;
	case USNET_TCP_SYNCNT:
		if (val < 1 || val > 127) return -USNET_EINVAL;
		s->syncnt = (uint8_t)val;
		return 0;
	case USNET_TCP_DEFER_ACCEPT: {
		/* Linux keeps it as the number of SYN-ACK timeouts that cover
		 * the seconds (1 s, doubling, at most 120 s each) */
		uint8_t n = 0;
		if (val > 0) {
			int period = 1, timeout = 1;
			n = 1;
			while (val > period && n < 255) {
				n++;
				timeout = timeout * 2 > 120 ? 120 : timeout * 2;
				period += timeout;
			}
		}
		s->defer_retrans = n;
		return 0;
	}
	case USNET_TCP_LINGER2:
		s->linger2_s = (int16_t)(val < 0 ? -1 : val > 120 ? 120 : val);   /* Linux caps it at tcp_fin_timeout's 120 */
		return 0;
	case USNET_TCP_WINDOW_CLAMP:
		if (val < 0) return -USNET_EINVAL;
		s->window_clamp = val == 0 ? 0 : (uint32_t)(val < 2048 ? 2048 : val);
		return 0;
	case USNET_TCP_NOTSENT_LOWAT:
		if (val < 0) return -USNET_EINVAL;
		s->notsent_lowat = (uint32_t)val;
		return 0;
	case USNET_TCP_NODELAY: return flag_opt(s, SF_NODELAY, val);
	case USNET_TCP_QUICKACK:
		/* As Linux: 0 makes the connection interactive (its ACKs
		 * wait to go with data), 1 ends that, and an ACK owed goes
		 * with the next output. */
		s->pingpong = val ? 0 : 1;
		if (val && s->timer_at[TMR_DELACK] != UINT64_MAX)
			s->flags |= SF_ACK_NOW;
		return 0;
	case USNET_TCP_CORK: return flag_opt(s, SF_CORK_OPT, val);
	case USNET_TCP_KEEPIDLE:
		if (val < 1 || val > 32767) return -USNET_EINVAL;
		s->keepidle_s = (uint32_t)val;
		return 0;
	case USNET_TCP_KEEPINTVL:
		if (val < 1 || val > 32767) return -USNET_EINVAL;
		s->keepintvl_s = (uint32_t)val;
		return 0;
	case USNET_TCP_KEEPCNT:
		if (val < 1 || val > 127) return -USNET_EINVAL;
		s->keepcnt = (uint8_t)val;
		return 0;
	case USNET_TCP_CONGESTION:
		if (val != USNET_CC_CUBIC && val != USNET_CC_NEWRENO) return -USNET_ENOENT;
		if (s->cc != val) {
			s->cc = (uint8_t)val;
			if (s->state >= USNET_TCP_ESTABLISHED) {
				/* Keep the window; start the new algorithm's state. */
				uint32_t cw = s->cwnd, ss = s->ssthresh;
				tcp_cc(s)->init(s, 0);
				s->cwnd = cw;
				s->ssthresh = ss;
			}
		}
		return 0;
	case USNET_TCP_MAXSEG:
		if (val < 0 || (val && (val < (int)TCP_MSS_MIN || val > 65535))) return -USNET_EINVAL;
		s->user_mss = (uint16_t)val;
		return 0;
	default:
		return -USNET_ENOPROTOOPT;
	}
}

int usnet_push(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, uint64_t now)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_STREAM)
		return 0;
	if (s->state < USNET_TCP_ESTABLISHED)
		return 0;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	tcp_output(&c, s);
	ctx_flush(&c);
	return 0;
}

int usnet_getsockopt(struct usnet_stack *st, usnet_sock_t sd, enum usnet_sockopt opt, int *val)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (!val)
		return -USNET_EFAULT;
	int tcp = s->type == USNET_SOCK_STREAM;
	switch (opt) {
	case USNET_SO_REUSEADDR: *val = !!(s->flags & SF_REUSEADDR); return 0;
	case USNET_SO_REUSEPORT: *val = !!(s->flags & SF_REUSEPORT); return 0;
	case USNET_SO_KEEPALIVE: *val = !!(s->flags & SF_KEEPALIVE); return 0;
	case USNET_SO_LINGER: *val = s->linger; return 0;
	case USNET_SO_RCVBUF: *val = (int)s->rcvbuf; return 0;
	case USNET_SO_SNDBUF: *val = (int)s->sndbuf; return 0;
	case USNET_SO_ERROR:
		*val = s->err;
		s->err = 0;
		return 0;
	case USNET_SO_TYPE: *val = s->type; return 0;
	case USNET_SO_ACCEPTCONN: *val = tcp && s->state == USNET_TCP_LISTEN; return 0;
	case USNET_IP_TTL: *val = s->ip_ttl ? s->ip_ttl : IP4_DEFAULT_TTL; return 0;
	case USNET_IP_TOS: *val = s->ip_tos; return 0;
	case USNET_IP_MULTICAST_TTL: *val = s->mc_ttl; return 0;
	case USNET_IP_MULTICAST_LOOP: *val = !(s->mc_opts & MCO_NOLOOP); return 0;
	case USNET_IP_MULTICAST_ALL: *val = !(s->mc_opts & MCO_NOALL); return 0;
	case USNET_IP_MULTICAST_IF: *val = (int)s->mc_if; return 0;
	case USNET_IPV6_MULTICAST_HOPS: case USNET_IPV6_MULTICAST_LOOP:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		*val = opt == USNET_IPV6_MULTICAST_HOPS ? s->mc6_hops : !(s->mc_opts & MCO_NOLOOP6);
		return 0;
	case USNET_SO_RCVLOWAT: *val = s->rcvlowat ? (int)s->rcvlowat : 1; return 0;
	case USNET_IPV6_V6ONLY: case USNET_IPV6_UNICAST_HOPS: case USNET_IPV6_TCLASS:
		if (s->af != USNET_AF_INET6) return -USNET_ENOPROTOOPT;
		*val = opt == USNET_IPV6_V6ONLY ? s->v6only :
		       opt == USNET_IPV6_TCLASS ? s->ip6_tclass :
		       s->ip6_hops < 0 ? ip6_default_hops(st) : s->ip6_hops;
		return 0;
	default:
		break;
	}
	if (!tcp)
		return -USNET_ENOPROTOOPT;
	switch (opt) {
	case USNET_TCP_USER_TIMEOUT: *val = (int)s->user_timeout_ms; return 0;
	case USNET_TCP_SYNCNT: *val = s->syncnt ? s->syncnt : TCP_SYN_RETRIES; return 0;
	case USNET_TCP_DEFER_ACCEPT: {
		int period = 0, timeout = 1;
		for (int n = s->defer_retrans; n > 0; n--) {
			period += timeout;
			timeout = timeout * 2 > 120 ? 120 : timeout * 2;
		}
		*val = period;
		return 0;
	}
	case USNET_TCP_LINGER2: *val = s->linger2_s < 0 ? -1 : s->linger2_s ? s->linger2_s : (int)st->cfg.tcp_fin_timeout_s; return 0;
	case USNET_TCP_WINDOW_CLAMP: *val = (int)s->window_clamp; return 0;
	case USNET_TCP_NOTSENT_LOWAT: *val = (int)s->notsent_lowat; return 0;
	case USNET_TCP_NODELAY: *val = !!(s->flags & SF_NODELAY); return 0;
	case USNET_TCP_QUICKACK: *val = !s->pingpong; return 0;
	case USNET_TCP_CORK: *val = !!(s->flags & SF_CORK_OPT); return 0;
	case USNET_TCP_KEEPIDLE: *val = (int)s->keepidle_s; return 0;
	case USNET_TCP_KEEPINTVL: *val = (int)s->keepintvl_s; return 0;
	case USNET_TCP_KEEPCNT: *val = s->keepcnt; return 0;
	case USNET_TCP_CONGESTION: *val = s->cc; return 0;
	case USNET_TCP_MAXSEG:
		*val = s->state >= USNET_TCP_ESTABLISHED ? (int)s->mss - ((s->flags & SF_TS_OK) ? 12 : 0) :
		       (s->user_mss ? s->user_mss : (int)(st->cfg.mtu - 40));
		return 0;
	default:
		return -USNET_ENOPROTOOPT;
	}
}

uint32_t usnet_sock_events(struct usnet_stack *st, usnet_sock_t sd)
{
	struct sock *s;
	if (sock_check(st, sd, &s) < 0)
		return USNET_EV_ERR | USNET_EV_HUP;
	return sock_events(st, s);
}

int usnet_udp_next_meta(struct usnet_stack *st, usnet_sock_t sd, uint32_t *dst, uint64_t *at_ns)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_DGRAM)
		return -USNET_EOPNOTSUPP;
	return udp_next_meta(st, s, dst, at_ns);
}

int usnet_udp_next_dst(struct usnet_stack *st, usnet_sock_t sd, struct usnet_addr *dst, uint64_t *at_ns)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type != USNET_SOCK_DGRAM)
		return -USNET_EOPNOTSUPP;
	return udp_next_dst(st, s, dst, at_ns);
}

long usnet_sock_readable_bytes(struct usnet_stack *st, usnet_sock_t sd)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (s->type == USNET_SOCK_DGRAM)
		return s->rcvq.head == NIL ? 0 : (long)(st_chunks(st)[s->rcvq.head].aux & 0xffff);
	return s->rcvq.bytes;
}

int usnet_sock_set_user(struct usnet_stack *st, usnet_sock_t sd, uint64_t user)
{
	struct sock *s;
	CHECK(st, sd, s);
	s->user = user;
	return 0;
}

uint64_t usnet_sock_get_user(struct usnet_stack *st, usnet_sock_t sd)
{
	struct sock *s;
	if (sock_check(st, sd, &s) < 0)
		return 0;
	return s->user;
}

int usnet_tcp_info(struct usnet_stack *st, usnet_sock_t sd, struct usnet_tcp_info *info)
{
	struct sock *s;
	CHECK(st, sd, s);
	if (!info)
		return -USNET_EFAULT;
	if (s->type != USNET_SOCK_STREAM)
		return -USNET_EOPNOTSUPP;
	memset(info, 0, sizeof(*info));
	info->state = s->state;
	info->cc = s->cc;
	info->snd_wscale = s->snd_wscale;
	info->rcv_wscale = s->rcv_wscale;
	info->options = ((s->flags & SF_TS_OK) ? 1u : 0) | ((s->flags & SF_SACK_OK) ? 2u : 0) |
			((s->flags & SF_WS_OK) ? 4u : 0);
	info->rtt_us = s->srtt_us;
	info->rttvar_us = s->rttvar_us;
	info->rto_us = s->rto_us;
	info->snd_mss = s->mss;
	info->rcv_mss = s->rcv_mss;
	info->cwnd = s->cwnd;
	info->ssthresh = s->ssthresh;
	info->snd_wnd = s->snd_wnd;
	info->rcv_wnd = seq_gt(s->rcv_adv, s->rcv_nxt) ? s->rcv_adv - s->rcv_nxt : 0;
	info->unacked = s->snd_max - s->snd_una;
	info->sacked = s->sacked_bytes;
	{
		uint32_t hl, lost = 0, x = s->snd_una;
		while (seq_lt(x, s->high_sacked)) {
			uint32_t h = tcp_sack_next_hole(s, x, s->high_sacked, &hl);
			if (!hl) break;
			lost += hl;
			x = h + hl;
		}
		info->lost = lost;
	}
	info->retransmits = s->backoff;
	info->total_retrans = s->total_retrans_lo;
	info->bytes_sent = s->bytes_sent;
	info->bytes_acked = s->bytes_acked;
	info->bytes_received = s->bytes_received;
	info->segs_out = s->segs_out;
	info->segs_in = s->segs_in;
	return 0;
}
