/*
 * usnet provider "usnet" — socket options (SOL_SOCKET, IPPROTO_TCP with
 * TCP_INFO and TCP_CONGESTION, IPPROTO_IP, IPPROTO_IPV6: IPV6_V6ONLY, and on
 * the stack's IPv6 sockets IPV6_UNICAST_HOPS, IPV6_TCLASS, IPV6_RECVPKTINFO
 * and the multicast ones: IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP,
 * MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP, IPV6_MULTICAST_IF, _HOPS, _LOOP)
 * and ioctl (FIONREAD, SIOCOUTQ, SIOCATMARK), mapped onto the stack's API.
 * Options that tune the kernel and change nothing here are accepted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <time.h>
#include <linux/sockios.h>

#include "stack_prov.h"

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int opt_of(int level, int name, enum usnet_sockopt *o)
{
	static const struct { int level, name; enum usnet_sockopt o; } map[] = {
		{ SOL_SOCKET, SO_REUSEADDR, USNET_SO_REUSEADDR }, { SOL_SOCKET, SO_REUSEPORT, USNET_SO_REUSEPORT },
		{ SOL_SOCKET, SO_KEEPALIVE, USNET_SO_KEEPALIVE }, { SOL_SOCKET, SO_RCVBUF, USNET_SO_RCVBUF },
		{ SOL_SOCKET, SO_SNDBUF, USNET_SO_SNDBUF }, { SOL_SOCKET, SO_ERROR, USNET_SO_ERROR },
		{ SOL_SOCKET, SO_TYPE, USNET_SO_TYPE }, { SOL_SOCKET, SO_ACCEPTCONN, USNET_SO_ACCEPTCONN },
		{ IPPROTO_TCP, TCP_NODELAY, USNET_TCP_NODELAY }, { IPPROTO_TCP, TCP_KEEPIDLE, USNET_TCP_KEEPIDLE },
		{ IPPROTO_TCP, TCP_KEEPINTVL, USNET_TCP_KEEPINTVL }, { IPPROTO_TCP, TCP_KEEPCNT, USNET_TCP_KEEPCNT },
		{ IPPROTO_TCP, TCP_MAXSEG, USNET_TCP_MAXSEG }, { IPPROTO_TCP, TCP_QUICKACK, USNET_TCP_QUICKACK },
		{ SOL_SOCKET, SO_RCVLOWAT, USNET_SO_RCVLOWAT }, { IPPROTO_IP, IP_TTL, USNET_IP_TTL },
		{ IPPROTO_IP, IP_TOS, USNET_IP_TOS }, { IPPROTO_TCP, TCP_USER_TIMEOUT, USNET_TCP_USER_TIMEOUT },
		{ IPPROTO_TCP, TCP_SYNCNT, USNET_TCP_SYNCNT }, { IPPROTO_TCP, TCP_LINGER2, USNET_TCP_LINGER2 },
		{ IPPROTO_TCP, TCP_WINDOW_CLAMP, USNET_TCP_WINDOW_CLAMP },
		{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, USNET_TCP_NOTSENT_LOWAT },
		{ IPPROTO_TCP, TCP_CORK, USNET_TCP_CORK },
		{ IPPROTO_TCP, TCP_DEFER_ACCEPT, USNET_TCP_DEFER_ACCEPT },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (map[i].level == level && map[i].name == name) {
			*o = map[i].o;
			return 0;
		}
	return -1;
}

/* Options whose Linux effect stays inside the kernel (queueing priority,
 * firewall marks, busy polling, where a port is picked, path MTU probing
 * policy) or that on Linux too change nothing for the IPv4 traffic of a
 * dual-stack socket (IPV6_TCLASS, IPV6_UNICAST_HOPS, where the stack has
 * no IPv6: its IPv6 sockets take them, ipv6_opt()): accepted, kept per
 * socket and returned by getsockopt, with no effect (docs/provider.md).
 * Every other option the stack does not implement gets ENOPROTOOPT. */
static const struct { int level, name; } local_opts[STACK_PROV_LOCAL_OPTS] = {
	{ SOL_SOCKET, SO_PRIORITY }, { SOL_SOCKET, SO_MARK }, { SOL_SOCKET, SO_BUSY_POLL },
	{ SOL_SOCKET, SO_INCOMING_CPU }, { SOL_SOCKET, SO_PASSCRED }, { SOL_SOCKET, SO_BROADCAST },
	{ IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT }, { IPPROTO_IP, IP_MTU_DISCOVER }, { IPPROTO_IP, IP_RECVERR },
	{ IPPROTO_IPV6, IPV6_TCLASS }, { IPPROTO_IPV6, IPV6_UNICAST_HOPS }, { IPPROTO_IPV6, IPV6_MTU_DISCOVER },
	{ IPPROTO_IPV6, IPV6_RECVERR },
};

/* Index of a kernel-local option, or -1. */
static int local_opt(int level, int name);

bool stack_prov_broadcast_ok(struct prov *p, usnet_psock_t ps)
{
	int k = local_opt(SOL_SOCKET, SO_BROADCAST);
	return p->meta[ps].local_opt[k] != 0;
}

static int local_opt(int level, int name)
{
	for (int i = 0; i < STACK_PROV_LOCAL_OPTS; i++)
		if (local_opts[i].level == level && local_opts[i].name == name)
			return i;
	return -1;
}

static int put(void *val, socklen_t *len, const void *v, socklen_t vlen)
{
	if (!val || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	socklen_t l = *len < vlen ? *len : vlen;
	memcpy(val, v, l);
	*len = l;
	return 0;
}

static int get_int(const void *val, socklen_t len, int *out)
{
	if (!val)
		return -EFAULT;
	if (len < sizeof(int))
		return -EINVAL;
	memcpy(out, val, sizeof *out);
	return 0;
}

/* IP_MULTICAST_TTL, _LOOP and _ALL as Linux's do_ip_setsockopt reads
 * them: an int, or a single byte when fewer bytes are given (none: EINVAL). */
static int get_int_or_byte(const void *val, socklen_t len, int *out)
{
	if (!val)
		return -EFAULT;
	if (len >= sizeof(int)) {
		memcpy(out, val, sizeof *out);
		return 0;
	}
	if (len < 1)
		return -EINVAL;
	*out = *(const unsigned char *)val;
	return 0;
}

/* ... and as do_ip_getsockopt gives them back: one byte when asked for
 * fewer than an int's (and the value fits), else an int cut to len. */
static int put_int_or_byte(void *val, socklen_t *len, int v)
{
	if (!val || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	if (*len < sizeof(int) && *len > 0 && v >= 0 && v <= 255) {
		unsigned char b = (unsigned char)v;
		memcpy(val, &b, 1);
		*len = 1;
		return 0;
	}
	return put(val, len, &v, sizeof v);
}

void stack_prov_mc_unsteer(struct prov *p, struct inst *in, const uint32_t *groups, int n)
{
	for (int i = 0; i < n; i++)
		if (!usnet_mc_joined(in->st, groups[i]))
			usnet_netif_steer_group(p->nif, groups[i], 0);
}

/* Whether an interface a program names (an address, an index; 0 for
 * either: any) is the stack's. */
static bool mc_iface_ours(const struct prov *p, uint32_t addr_host, int ifindex)
{
	if (ifindex)
		return p->kernel_ifindex && ifindex == p->kernel_ifindex;
	return addr_host == 0 || addr_host == p->ip;
}

/* A socket option that names another interface than the stack's: a socket
 * not bound yet moves to the kernel (which makes the call there), one that
 * is cannot, and gets err with `why` in the log. */
static int other_interface(struct prov *p, usnet_psock_t ps, const char *why, int err)
{
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	struct usnet_addr a = { 0 };
	inst_lock(in);
	usnet_getsockname(in->st, s, &a);
	inst_unlock_quiet(in);
	if (a.port == 0)
		return USNET_PROVIDER_HANDOVER;
	p->host->log(p->host->host, USNET_PLOG_INFO, why);
	return err;
}

/* The same for a multicast option `what`. */
static int mc_elsewhere(struct prov *p, usnet_psock_t ps, const char *what, int err)
{
	char line[128];
	snprintf(line, sizeof line, "%s names an interface that is not the stack's (%s), on a socket the stack holds",
		 what, p->iface);
	return other_interface(p, ps, line, err);
}

/* The netif refused to let a joined group through (err): said in one line,
 * and the join fails with ENOBUFS when the netif had no room left for the
 * group, else ENODEV. */
static int mc_steer_refused(struct prov *p, const char *what, const char *group, int err)
{
	char line[160];
	snprintf(line, sizeof line, "%s %s: the %s netif cannot let the group through: %s", what, group,
		 p->nif->info.backend, strerror(-err));
	p->host->log(p->host->host, USNET_PLOG_INFO, line);
	return err == -ENOSPC ? -ENOBUFS : -ENODEV;
}

/* IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP (struct ip_mreq, or ip_mreqn by
 * length) and MCAST_JOIN_GROUP / MCAST_LEAVE_GROUP (struct group_req), in
 * Linux's order of checks; the group's first join on the stack opens the
 * netif's filter to it, its last leave closes it. */
static int mc_membership(struct prov *p, usnet_psock_t ps, bool join, uint32_t group_be, uint32_t addr_be,
			 int ifindex)
{
	if (p->meta[ps].type == SOCK_STREAM)
		return -EPROTO;
	uint32_t group = ntohl(group_be);
	if (join && (group >> 28) != 0xe)
		return -EINVAL;
	if (!mc_iface_ours(p, ntohl(addr_be), ifindex))
		return mc_elsewhere(p, ps, join ? "IP_ADD_MEMBERSHIP" : "IP_DROP_MEMBERSHIP", -ENODEV);
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	int was = usnet_mc_joined(in->st, group);
	int r = join ? usnet_mc_join(in->st, &in->io, s, group, monotonic_ns())
		     : usnet_mc_leave(in->st, &in->io, s, group, monotonic_ns());
	int is = usnet_mc_joined(in->st, group);
	if (r == 0 && was != is) {
		int e = usnet_netif_steer_group(p->nif, group, is);
		if (e < 0 && is) {
			usnet_mc_leave(in->st, &in->io, s, group, monotonic_ns());
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &group_be, a, sizeof a);
			r = mc_steer_refused(p, "IP_ADD_MEMBERSHIP", a, e);
		}
	}
	inst_unlock(in);
	return r;
}

void stack_prov_mc6_unsteer(struct prov *p, struct inst *in, const uint8_t (*groups)[16], int n)
{
	for (int i = 0; i < n; i++)
		if (!usnet_mc6_joined(in->st, groups[i]))
			usnet_netif_steer_group6(p->nif, groups[i], 0);
}

/* IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP (struct ipv6_mreq) and, at
 * IPPROTO_IPV6, MCAST_JOIN_GROUP / MCAST_LEAVE_GROUP (struct group_req
 * with a sockaddr_in6), in Linux's order of checks (ipv6_sock_mc_join,
 * _drop); the group's first join on the stack opens the netif's filter to
 * it, its last leave closes it. */
static int mc6_membership(struct prov *p, usnet_psock_t ps, bool join, const uint8_t group[16], int ifindex)
{
	const char *what = join ? "IPV6_JOIN_GROUP" : "IPV6_LEAVE_GROUP";
	if (p->meta[ps].type == SOCK_STREAM)
		return -EPROTO;
	if (group[0] != 0xff)
		return -EINVAL;
	if (!mc_iface_ours(p, 0, ifindex))
		return mc_elsewhere(p, ps, what, -ENODEV);
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	inst_lock(in);
	int was = usnet_mc6_joined(in->st, group);
	int r = join ? usnet_mc6_join(in->st, &in->io, s, group, monotonic_ns())
		     : usnet_mc6_leave(in->st, &in->io, s, group, monotonic_ns());
	int is = usnet_mc6_joined(in->st, group);
	if (r == 0 && was != is) {
		int e = usnet_netif_steer_group6(p->nif, group, is);
		if (e < 0 && is) {
			usnet_mc6_leave(in->st, &in->io, s, group, monotonic_ns());
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, group, a, sizeof a);
			r = mc_steer_refused(p, what, a, e);
		}
	}
	inst_unlock(in);
	return r;
}

/* The multicast options at IPPROTO_IPV6 of the stack's IPv6 sockets, as
 * Linux's do_ipv6_setsockopt reads them (an int: at least its bytes);
 * 1 for another option. */
static int mc6_set_options(struct prov *p, usnet_psock_t ps, int name, const void *val, socklen_t len)
{
	struct sock_meta *m = &p->meta[ps];
	int v, r;
	switch (name) {
	case IPV6_ADD_MEMBERSHIP:
	case IPV6_DROP_MEMBERSHIP: {
		struct ipv6_mreq mr;
		if (!val)
			return -EFAULT;
		if (len < sizeof mr)
			return -EINVAL;
		memcpy(&mr, val, sizeof mr);
		return mc6_membership(p, ps, name == IPV6_ADD_MEMBERSHIP, mr.ipv6mr_multiaddr.s6_addr,
				      (int)mr.ipv6mr_interface);
	}
	case MCAST_JOIN_GROUP:
	case MCAST_LEAVE_GROUP: {
		struct group_req gr;
		if (!val)
			return -EFAULT;
		if (len < sizeof gr)
			return -EINVAL;
		memcpy(&gr, val, sizeof gr);
		if (gr.gr_group.ss_family != AF_INET6)
			return -EADDRNOTAVAIL;   /* as Linux's ipv6_mcast_join_leave */
		struct sockaddr_in6 sin6;
		memcpy(&sin6, &gr.gr_group, sizeof sin6);
		return mc6_membership(p, ps, name == MCAST_JOIN_GROUP, sin6.sin6_addr.s6_addr, (int)gr.gr_interface);
	}
	case IPV6_MULTICAST_HOPS:
		if (m->type == SOCK_STREAM)
			return -ENOPROTOOPT;
		if ((r = get_int(val, len, &v)))
			return r;
		return stack_prov_setopt(p, ps, USNET_IPV6_MULTICAST_HOPS, v);   /* -1..255, else EINVAL */
	case IPV6_MULTICAST_LOOP:
		if ((r = get_int(val, len, &v)))
			return r;
		return stack_prov_setopt(p, ps, USNET_IPV6_MULTICAST_LOOP, v);   /* 0 or 1, else EINVAL */
	case IPV6_MULTICAST_IF:
		if (m->type == SOCK_STREAM)
			return -ENOPROTOOPT;
		if ((r = get_int(val, len, &v)))
			return r;
		if (v && !mc_iface_ours(p, 0, v))
			return mc_elsewhere(p, ps, "IPV6_MULTICAST_IF", -ENODEV);
		m->mc6_if = v;
		return 0;
	}
	return 1;   /* not one of these */
}

static int mc_set_options(struct prov *p, usnet_psock_t ps, int name, const void *val, socklen_t len)
{
	struct sock_meta *m = &p->meta[ps];
	int v, r;
	switch (name) {
	case IP_ADD_MEMBERSHIP:
	case IP_DROP_MEMBERSHIP: {
		struct ip_mreqn mr;
		memset(&mr, 0, sizeof mr);
		if (!val)
			return -EFAULT;
		if (len < sizeof(struct ip_mreq))
			return -EINVAL;
		memcpy(&mr, val, len >= sizeof mr ? sizeof mr : sizeof(struct ip_mreq));
		return mc_membership(p, ps, name == IP_ADD_MEMBERSHIP, mr.imr_multiaddr.s_addr, mr.imr_address.s_addr,
				     mr.imr_ifindex);
	}
	case MCAST_JOIN_GROUP:
	case MCAST_LEAVE_GROUP: {
		struct group_req gr;
		if (!val)
			return -EFAULT;
		if (len < sizeof gr)
			return -EINVAL;
		memcpy(&gr, val, sizeof gr);
		if (gr.gr_group.ss_family != AF_INET)
			return -EINVAL;
		struct sockaddr_in sin;
		memcpy(&sin, &gr.gr_group, sizeof sin);
		return mc_membership(p, ps, name == MCAST_JOIN_GROUP, sin.sin_addr.s_addr, 0, (int)gr.gr_interface);
	}
	case IP_MULTICAST_TTL:
		if (m->type == SOCK_STREAM)
			return -EINVAL;
		if ((r = get_int_or_byte(val, len, &v)))
			return r;
		return stack_prov_setopt(p, ps, USNET_IP_MULTICAST_TTL, v);
	case IP_MULTICAST_LOOP:
		if ((r = get_int_or_byte(val, len, &v)))
			return r;
		return stack_prov_setopt(p, ps, USNET_IP_MULTICAST_LOOP, v != 0);
	case IP_MULTICAST_ALL:
		if ((r = get_int_or_byte(val, len, &v)))
			return r;
		return stack_prov_setopt(p, ps, USNET_IP_MULTICAST_ALL, v);
	case IP_MULTICAST_IF: {
		/* an in_addr, an ip_mreq (its interface), or an ip_mreqn */
		if (m->type == SOCK_STREAM)
			return -EINVAL;
		if (!val)
			return -EFAULT;
		if (len < sizeof(struct in_addr))
			return -EINVAL;
		struct ip_mreqn mr;
		memset(&mr, 0, sizeof mr);
		if (len >= sizeof mr)
			memcpy(&mr, val, sizeof mr);
		else if (len >= sizeof(struct ip_mreq))
			memcpy(&mr, val, sizeof(struct ip_mreq));
		else
			memcpy(&mr.imr_address, val, sizeof mr.imr_address);
		uint32_t a = ntohl(mr.imr_address.s_addr);
		if (!mc_iface_ours(p, a, mr.imr_ifindex))
			return mc_elsewhere(p, ps, "IP_MULTICAST_IF", -EADDRNOTAVAIL);
		if (a != 0 && a != p->ip)
			return -EADDRNOTAVAIL;   /* the stack's interface with another source address */
		return stack_prov_setopt(p, ps, USNET_IP_MULTICAST_IF, (int)a);
	}
	}
	return 1;   /* not one of these */
}

static uint8_t linux_tcp_state(int s)
{
	static const uint8_t map[] = {
		[USNET_TCP_CLOSED] = 7, [USNET_TCP_LISTEN] = 10, [USNET_TCP_SYN_SENT] = 2,
		[USNET_TCP_SYN_RECEIVED] = 3, [USNET_TCP_ESTABLISHED] = 1, [USNET_TCP_FIN_WAIT_1] = 4,
		[USNET_TCP_FIN_WAIT_2] = 5, [USNET_TCP_CLOSE_WAIT] = 8, [USNET_TCP_CLOSING] = 11,
		[USNET_TCP_LAST_ACK] = 9, [USNET_TCP_TIME_WAIT] = 6,
	};
	return s >= 0 && s < (int)sizeof map ? map[s] : 7;
}

int stack_prov_getsockopt(void *ctx, usnet_psock_t ps, int level, int name, void *val, socklen_t *len)
{
	struct prov *p = ctx;
	struct sock_meta *m = &p->meta[ps];
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
		if (!m->domain6)
			return -ENOPROTOOPT;
		int v = m->v6only;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_IPV6 && m->stack6 && (name == IPV6_UNICAST_HOPS || name == IPV6_TCLASS)) {
		int v = -1;
		inst_lock(in);
		int r = usnet_getsockopt(in->st, s, name == IPV6_TCLASS ? USNET_IPV6_TCLASS : USNET_IPV6_UNICAST_HOPS, &v);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		/* as Linux: the default hop limit reads as the route's (64),
		 * an unset class as 0 */
		if (v < 0)
			v = name == IPV6_TCLASS ? 0 : 64;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_IPV6 && name == IPV6_RECVPKTINFO && m->stack6) {
		int v = m->pktinfo6;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_IPV6 && m->stack6 && name == IPV6_MULTICAST_IF) {
		if (m->type == SOCK_STREAM)
			return -ENOPROTOOPT;
		int v = m->mc6_if;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_IPV6 && m->stack6 && (name == IPV6_MULTICAST_HOPS || name == IPV6_MULTICAST_LOOP)) {
		if (name == IPV6_MULTICAST_HOPS && m->type == SOCK_STREAM)
			return -ENOPROTOOPT;
		int v = 0;
		inst_lock(in);
		int r = usnet_getsockopt(in->st, s, name == IPV6_MULTICAST_HOPS ? USNET_IPV6_MULTICAST_HOPS
							    : USNET_IPV6_MULTICAST_LOOP, &v);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_TCP && name == TCP_INFO) {
		if (m->type != SOCK_STREAM)
			return -EOPNOTSUPP;
		struct usnet_tcp_info ti;
		inst_lock(in);
		int r = usnet_tcp_info(in->st, s, &ti);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		/* Linux's struct tcp_info goes on after glibc's (which ends at
		 * tcpi_total_retrans): what `ss -ti` and `usnet stat` read. */
		struct {
			struct tcp_info t;
			uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
			uint32_t segs_out, segs_in;
		} lx;
		struct tcp_info t;
		memset(&t, 0, sizeof t);
		uint32_t mss = ti.snd_mss ? ti.snd_mss : 1460;
		t.tcpi_state = linux_tcp_state(ti.state);
		t.tcpi_retransmits = (uint8_t)ti.retransmits;
		t.tcpi_options = (uint8_t)((ti.options & 1 ? TCPI_OPT_TIMESTAMPS : 0) | (ti.options & 2 ? TCPI_OPT_SACK : 0) |
					   (ti.options & 4 ? TCPI_OPT_WSCALE : 0));
		t.tcpi_snd_wscale = ti.snd_wscale & 15;
		t.tcpi_rcv_wscale = ti.rcv_wscale & 15;
		t.tcpi_rto = ti.rto_us;
		t.tcpi_snd_mss = ti.snd_mss;
		t.tcpi_rcv_mss = ti.rcv_mss;
		t.tcpi_unacked = ti.unacked / mss;
		t.tcpi_lost = ti.lost / mss;
		t.tcpi_sacked = ti.sacked / mss;
		t.tcpi_rtt = ti.rtt_us;
		t.tcpi_rttvar = ti.rttvar_us;
		t.tcpi_snd_ssthresh = ti.ssthresh / mss;
		t.tcpi_snd_cwnd = ti.cwnd / mss;
		t.tcpi_advmss = ti.rcv_mss;
		t.tcpi_total_retrans = (uint32_t)ti.total_retrans;
		memset(&lx, 0, sizeof lx);
		lx.t = t;
		lx.pacing_rate = lx.max_pacing_rate = UINT64_MAX;   /* no pacing */
		lx.bytes_acked = ti.bytes_acked;
		lx.bytes_received = ti.bytes_received;
		lx.segs_out = (uint32_t)ti.segs_out;
		lx.segs_in = (uint32_t)ti.segs_in;
		return put(val, len, &lx, sizeof lx);
	}
	if (level == IPPROTO_TCP && name == TCP_INQ) {
		if (m->type != SOCK_STREAM)
			return -ENOPROTOOPT;
		int v = m->inq;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_IP && name == IP_PKTINFO) {
		int v = m->pktinfo;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_IP && (name == IP_MULTICAST_TTL || name == IP_MULTICAST_LOOP || name == IP_MULTICAST_ALL ||
				    name == IP_MULTICAST_IF)) {
		enum usnet_sockopt o = name == IP_MULTICAST_TTL ? USNET_IP_MULTICAST_TTL
				       : name == IP_MULTICAST_LOOP ? USNET_IP_MULTICAST_LOOP
				       : name == IP_MULTICAST_ALL ? USNET_IP_MULTICAST_ALL : USNET_IP_MULTICAST_IF;
		int v = 0;
		inst_lock(in);
		int r = usnet_getsockopt(in->st, s, o, &v);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		if (o != USNET_IP_MULTICAST_IF)
			return put_int_or_byte(val, len, v);
		uint32_t a = htonl((uint32_t)v);   /* an in_addr, cut to len */
		return put(val, len, &a, sizeof a);
	}
	if (level == SOL_SOCKET && name == SO_BINDTODEVICE) {
		/* the name with its NUL, or nothing when unbound (sock_getbindtodevice) */
		size_t n = m->bound_dev ? strlen(p->iface) + 1 : 0;
		if (n && *len < n)
			return -EINVAL;
		if (n)
			memcpy(val, p->iface, n);
		*len = (socklen_t)n;
		return 0;
	}
	if (level == SOL_SOCKET && (name == SO_TIMESTAMP || name == SO_TIMESTAMPNS) && m->type == SOCK_DGRAM) {
		int v = m->tstamp == (name == SO_TIMESTAMP ? 1 : 2);
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_TCP && name == TCP_CC_INFO) {
		/* Linux's cubic and reno have no information to give (only
		 * vegas, dctcp and bbr do): zero bytes */
		if (m->type != SOCK_STREAM)
			return -ENOPROTOOPT;
		*len = 0;
		return 0;
	}
	if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
		int v = 0;
		inst_lock(in);
		int r = usnet_getsockopt(in->st, s, USNET_TCP_CONGESTION, &v);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		const char *n = v == USNET_CC_NEWRENO ? "reno" : "cubic";
		char buf[16] = "";
		strcpy(buf, n);
		return put(val, len, buf, sizeof buf);
	}
	if (level == SOL_SOCKET && name == SO_LINGER) {
		int v = -1;
		inst_lock(in);
		int r = usnet_getsockopt(in->st, s, USNET_SO_LINGER, &v);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		struct linger l = { v >= 0, v >= 0 ? v : 0 };
		return put(val, len, &l, sizeof l);
	}
	enum usnet_sockopt o;
	if (opt_of(level, name, &o) == 0) {
		int v = 0;
		inst_lock(in);
		int r = usnet_getsockopt(in->st, s, o, &v);
		inst_unlock_quiet(in);
		if (r < 0)
			return r;
		if (o == USNET_SO_TYPE)
			v = m->type;
		if (o == USNET_SO_RCVBUF || o == USNET_SO_SNDBUF)
			v *= 2;   /* Linux's count: twice the bytes (see the setsockopt) */
		return put(val, len, &v, sizeof v);
	}
	int k = local_opt(level, name);
	if (k >= 0) {
		int v = m->local_opt[k];
		if (level == IPPROTO_IPV6 && name == IPV6_UNICAST_HOPS && !m->local_set[k])
			v = 64;   /* the default a program reads back */
		return put(val, len, &v, sizeof v);
	}
	if (level == SOL_SOCKET && name == SO_SNDLOWAT) {
		int v = 1;    /* Linux: fixed at 1 */
		return put(val, len, &v, sizeof v);
	}
	return -ENOPROTOOPT;
}

int stack_prov_setsockopt(void *ctx, usnet_psock_t ps, int level, int name, const void *val, socklen_t len)
{
	struct prov *p = ctx;
	struct sock_meta *m = &p->meta[ps];
	int v = 0, r;
	if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
		if (!m->domain6)
			return -ENOPROTOOPT;
		if ((r = get_int(val, len, &v)))
			return r;
		/* the stack's IPv6 socket takes it (bound or connected:
		 * EINVAL, as Linux); without IPv6 on the stack, a V6ONLY
		 * socket is the kernel's at its bind or connect */
		if (m->stack6 && (r = stack_prov_setopt(p, ps, USNET_IPV6_V6ONLY, v != 0)) < 0)
			return r;
		m->v6only = v != 0;
		return 0;
	}
	if (level == IPPROTO_IPV6 && m->stack6 && (name == IPV6_UNICAST_HOPS || name == IPV6_TCLASS)) {
		if ((r = get_int(val, len, &v)))
			return r;
		if (v < -1 || v > 255)
			return -EINVAL;   /* as Linux */
		return stack_prov_setopt(p, ps, name == IPV6_TCLASS ? USNET_IPV6_TCLASS : USNET_IPV6_UNICAST_HOPS, v);
	}
	if (level == IPPROTO_IPV6 && m->stack6 && (r = mc6_set_options(p, ps, name, val, len)) != 1)
		return r;
	if (level == IPPROTO_IPV6 && name == IPV6_RECVPKTINFO && m->stack6) {
		/* on a stream socket Linux keeps it and nothing comes of it */
		if ((r = get_int(val, len, &v)))
			return r;
		m->pktinfo6 = v != 0;
		return 0;
	}
	if (level == SOL_SOCKET && name == SO_BINDTODEVICE) {
		/* The stack's own interface (or none: "") stays here; another
		 * interface is the kernel's, so a socket not yet bound or
		 * connected is handed over (the switch then sets the option on
		 * the kernel socket); one that is cannot move. */
		char dev[16] = "";
		if (len > 0 && !val)
			return -EFAULT;
		memcpy(dev, val, len < sizeof dev - 1 ? len : sizeof dev - 1);
		if (!dev[0] || !strcmp(dev, p->iface)) {
			m->bound_dev = dev[0] != 0;
			return 0;
		}
		char line[96];
		snprintf(line, sizeof line, "SO_BINDTODEVICE to %.16s on a socket the stack already holds: not moved", dev);
		return other_interface(p, ps, line, -EOPNOTSUPP);
	}
	if (level == IPPROTO_IP && (r = mc_set_options(p, ps, name, val, len)) != 1)
		return r;
	if (level == IPPROTO_IP && name == IP_PKTINFO) {
		/* on a stream socket Linux keeps it and nothing comes of it */
		if ((r = get_int(val, len, &v)))
			return r;
		m->pktinfo = v != 0;
		return 0;
	}
	if (level == SOL_SOCKET && (name == SO_TIMESTAMP || name == SO_TIMESTAMPNS) && m->type == SOCK_DGRAM) {
		/* the last one set decides the format; clearing either clears
		 * both (sock_set_timestamp) */
		if ((r = get_int(val, len, &v)))
			return r;
		m->tstamp = v ? (name == SO_TIMESTAMP ? 1 : 2) : 0;
		return 0;
	}
	if (level == IPPROTO_TCP && name == TCP_INQ) {
		if (m->type != SOCK_STREAM)
			return -ENOPROTOOPT;
		if ((r = get_int(val, len, &v)))
			return r;
		if (v < 0 || v > 1)
			return -EINVAL;
		m->inq = (uint8_t)v;
		return 0;
	}
	if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
		char n[16] = "";
		if (!val)
			return -EFAULT;
		memcpy(n, val, len < sizeof n - 1 ? len : sizeof n - 1);
		if (!strcmp(n, "cubic"))
			v = USNET_CC_CUBIC;
		else if (!strcmp(n, "reno") || !strcmp(n, "newreno"))
			v = USNET_CC_NEWRENO;
		else
			return -ENOENT;
		r = stack_prov_setopt(p, ps, USNET_TCP_CONGESTION, v);
		return r;
	}
	if (level == SOL_SOCKET && name == SO_LINGER) {
		struct linger l;
		if (!val)
			return -EFAULT;
		if (len < sizeof l)
			return -EINVAL;
		memcpy(&l, val, sizeof l);
		r = stack_prov_setopt(p, ps, USNET_SO_LINGER, l.l_onoff ? l.l_linger : -1);
		return r;
	}
	enum usnet_sockopt o;
	if (opt_of(level, name, &o) == 0) {
		if ((r = get_int(val, len, &v)))
			return r;
		if (o == USNET_SO_ERROR || o == USNET_SO_TYPE || o == USNET_SO_ACCEPTCONN)
			return -ENOPROTOOPT;
		if (o == USNET_SO_RCVBUF || o == USNET_SO_SNDBUF) {
			/* As Linux: capped by net.core.rmem_max / wmem_max (a
			 * negative value is a large one), and kept twice over,
			 * for its bookkeeping: the stack's buffer holds the
			 * value's bytes (getsockopt reads twice it back). */
			uint32_t cap = o == USNET_SO_RCVBUF ? p->rmem_max : p->wmem_max;
			v = (int)((uint32_t)v > cap ? cap : (uint32_t)v);
		}
		r = stack_prov_setopt(p, ps, o, v);
		/* Setting TCP_NODELAY or clearing TCP_CORK sends what was held
		 * back, as on Linux: nginx uncorks at the end of each response
		 * and would otherwise wait for the peer's delayed ACK.  Like a
		 * send, what it sends waits for the switch's flush when it
		 * batches. */
		if (r == 0 && ((o == USNET_TCP_NODELAY && v) || (o == USNET_TCP_CORK && !v))) {
			usnet_sock_t s;
			struct inst *in = stack_prov_sock(p, ps, &s);
			inst_lock(in);
			r = usnet_push(in->st, stack_prov_io_for_data(in), s, monotonic_ns());
			stack_prov_unlock_io(in);
		}
		return r;
	}
	int k = local_opt(level, name);
	if (k >= 0) {
		if ((r = get_int(val, len, &v)))
			return r;
		m->local_opt[k] = v;
		m->local_set[k] = 1;
		return 0;
	}
	char line[96];
	snprintf(line, sizeof line, "socket option level %d name %d not supported", level, name);
	p->host->log(p->host->host, USNET_PLOG_DEBUG, line);
	return -ENOPROTOOPT;
}

int stack_prov_ioctl(void *ctx, usnet_psock_t ps, unsigned long req, void *arg)
{
	struct prov *p = ctx;
	usnet_sock_t s;
	struct inst *in = stack_prov_sock(p, ps, &s);
	if (!arg)
		return -EFAULT;
	int v = 0;
	switch (req) {
	case FIONREAD: {
		inst_lock(in);
		long n = usnet_sock_readable_bytes(in->st, s);
		inst_unlock_quiet(in);
		if (n < 0)
			return (int)n;
		v = n > 0x7fffffff ? 0x7fffffff : (int)n;
		break;
	}
	case SIOCOUTQ: {
		struct usnet_tcp_info ti;
		inst_lock(in);
		int r = usnet_tcp_info(in->st, s, &ti);
		inst_unlock_quiet(in);
		v = r < 0 ? 0 : (int)ti.unacked;
		break;
	}
	case SIOCATMARK:
		v = 0;
		break;
	case SIOCGIFHWADDR:
	case SIOCGIFMTU: {
		/* arg holds the kernel's answer (provider.h): the stack's own
		 * MAC and MTU on its interface. */
		struct ifreq *ifr = arg;
		const struct usnet_netif_info *in = &p->nif->info;
		if (strncmp(ifr->ifr_name, in->ifname, IFNAMSIZ))
			return -ENOTTY;
		if (req == SIOCGIFHWADDR)
			memcpy(ifr->ifr_hwaddr.sa_data, in->mac, 6);
		else if (in->mtu)
			ifr->ifr_mtu = (int)in->mtu;
		return 0;
	}
	default:
		return -ENOTTY;
	}
	memcpy(arg, &v, sizeof v);
	return 0;
}
