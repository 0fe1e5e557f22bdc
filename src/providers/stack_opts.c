/*
 * usnet provider "usnet" — socket options (SOL_SOCKET, IPPROTO_TCP with
 * TCP_INFO and TCP_CONGESTION, IPPROTO_IP, IPPROTO_IPV6 with IPV6_V6ONLY)
 * and ioctl (FIONREAD, SIOCOUTQ, SIOCATMARK), mapped onto the stack's API.
 * Options that tune the kernel and change nothing here are accepted.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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
		{ IPPROTO_TCP, TCP_CORK, USNET_TCP_CORK },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (map[i].level == level && map[i].name == name) {
			*o = map[i].o;
			return 0;
		}
	return -1;
}

/* Options a program may set that change nothing here; accepted so that
 * programs tuning the kernel keep working. */
static bool harmless_opt(int level, int name)
{
	if (level == SOL_SOCKET)
		return name == SO_BROADCAST || name == SO_PRIORITY || name == SO_RCVLOWAT || name == SO_SNDLOWAT ||
		       name == SO_OOBINLINE || name == SO_DONTROUTE || name == SO_MARK || name == SO_TIMESTAMP ||
		       name == SO_INCOMING_CPU || name == SO_ZEROCOPY || name == SO_BUSY_POLL || name == SO_PASSCRED;
	if (level == IPPROTO_TCP)
		return name == TCP_DEFER_ACCEPT || name == TCP_FASTOPEN || name == TCP_USER_TIMEOUT ||
		       name == TCP_NOTSENT_LOWAT || name == TCP_LINGER2 || name == TCP_SYNCNT ||
		       name == TCP_WINDOW_CLAMP || name == TCP_FASTOPEN_CONNECT;
	if (level == IPPROTO_IP)
		return name == IP_TOS || name == IP_TTL || name == IP_RECVERR || name == IP_MTU_DISCOVER ||
		       name == IP_FREEBIND || name == IP_BIND_ADDRESS_NO_PORT || name == IP_PKTINFO ||
		       name == IP_RECVTOS || name == IP_TRANSPARENT;
	if (level == IPPROTO_IPV6)
		return name == IPV6_RECVERR || name == IPV6_TCLASS || name == IPV6_MTU_DISCOVER ||
		       name == IPV6_RECVPKTINFO || name == IPV6_UNICAST_HOPS;
	return false;
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

int stack_prov_getsockopt(void *ctx, usnet_psock_t s, int level, int name, void *val, socklen_t *len)
{
	struct prov *p = ctx;
	struct sock_meta *m = &p->meta[s];
	if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
		if (!m->domain6)
			return -ENOPROTOOPT;
		int v = m->v6only;
		return put(val, len, &v, sizeof v);
	}
	if (level == IPPROTO_TCP && name == TCP_INFO) {
		if (m->type != SOCK_STREAM)
			return -EOPNOTSUPP;
		struct usnet_tcp_info ti;
		stack_prov_lock(p);
		int r = usnet_tcp_info(p->st, (usnet_sock_t)s, &ti);
		stack_prov_unlock(p);
		if (r < 0)
			return r;
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
		return put(val, len, &t, sizeof t);
	}
	if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
		int v = 0;
		stack_prov_lock(p);
		int r = usnet_getsockopt(p->st, (usnet_sock_t)s, USNET_TCP_CONGESTION, &v);
		stack_prov_unlock(p);
		if (r < 0)
			return r;
		const char *n = v == USNET_CC_NEWRENO ? "reno" : "cubic";
		char buf[16] = "";
		strcpy(buf, n);
		return put(val, len, buf, sizeof buf);
	}
	if (level == SOL_SOCKET && name == SO_LINGER) {
		int v = -1;
		stack_prov_lock(p);
		int r = usnet_getsockopt(p->st, (usnet_sock_t)s, USNET_SO_LINGER, &v);
		stack_prov_unlock(p);
		if (r < 0)
			return r;
		struct linger l = { v >= 0, v >= 0 ? v : 0 };
		return put(val, len, &l, sizeof l);
	}
	enum usnet_sockopt o;
	if (opt_of(level, name, &o) == 0) {
		int v = 0;
		stack_prov_lock(p);
		int r = usnet_getsockopt(p->st, (usnet_sock_t)s, o, &v);
		stack_prov_unlock(p);
		if (r < 0)
			return r;
		if (o == USNET_SO_TYPE)
			v = m->type;
		return put(val, len, &v, sizeof v);
	}
	if (harmless_opt(level, name)) {
		int v = 0;
		return put(val, len, &v, sizeof v);
	}
	return -ENOPROTOOPT;
}

int stack_prov_setsockopt(void *ctx, usnet_psock_t s, int level, int name, const void *val, socklen_t len)
{
	struct prov *p = ctx;
	struct sock_meta *m = &p->meta[s];
	int v = 0, r;
	if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) {
		if (!m->domain6)
			return -ENOPROTOOPT;
		if ((r = get_int(val, len, &v)))
			return r;
		m->v6only = v != 0;
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
		stack_prov_lock(p);
		r = usnet_setsockopt(p->st, (usnet_sock_t)s, USNET_TCP_CONGESTION, v);
		stack_prov_unlock(p);
		return r;
	}
	if (level == SOL_SOCKET && name == SO_LINGER) {
		struct linger l;
		if (!val)
			return -EFAULT;
		if (len < sizeof l)
			return -EINVAL;
		memcpy(&l, val, sizeof l);
		stack_prov_lock(p);
		r = usnet_setsockopt(p->st, (usnet_sock_t)s, USNET_SO_LINGER, l.l_onoff ? l.l_linger : -1);
		stack_prov_unlock(p);
		return r;
	}
	enum usnet_sockopt o;
	if (opt_of(level, name, &o) == 0) {
		if ((r = get_int(val, len, &v)))
			return r;
		if (o == USNET_SO_ERROR || o == USNET_SO_TYPE || o == USNET_SO_ACCEPTCONN)
			return -ENOPROTOOPT;
		stack_prov_lock(p);
		r = usnet_setsockopt(p->st, (usnet_sock_t)s, o, v);
		/* Setting TCP_NODELAY or clearing TCP_CORK sends what was held
		 * back, as on Linux: nginx uncorks at the end of each response
		 * and would otherwise wait for the peer's delayed ACK. */
		if (r == 0 && ((o == USNET_TCP_NODELAY && v) || (o == USNET_TCP_CORK && !v)))
			r = usnet_push(p->st, &p->io, (usnet_sock_t)s, monotonic_ns());
		stack_prov_unlock(p);
		return r;
	}
	if (harmless_opt(level, name))
		return 0;
	char line[96];
	snprintf(line, sizeof line, "socket option level %d name %d not supported", level, name);
	p->host->log(p->host->host, USNET_PLOG_DEBUG, line);
	return -ENOPROTOOPT;
}

int stack_prov_ioctl(void *ctx, usnet_psock_t s, unsigned long req, void *arg)
{
	struct prov *p = ctx;
	if (!arg)
		return -EFAULT;
	int v = 0;
	switch (req) {
	case FIONREAD: {
		stack_prov_lock(p);
		long n = usnet_sock_readable_bytes(p->st, (usnet_sock_t)s);
		stack_prov_unlock(p);
		if (n < 0)
			return (int)n;
		v = n > 0x7fffffff ? 0x7fffffff : (int)n;
		break;
	}
	case SIOCOUTQ: {
		struct usnet_tcp_info ti;
		stack_prov_lock(p);
		int r = usnet_tcp_info(p->st, (usnet_sock_t)s, &ti);
		stack_prov_unlock(p);
		v = r < 0 ? 0 : (int)ti.unacked;
		break;
	}
	case SIOCATMARK:
		v = 0;
		break;
	default:
		return -ENOTTY;
	}
	memcpy(arg, &v, sizeof v);
	return 0;
}
