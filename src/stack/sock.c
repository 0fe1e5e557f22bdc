/*
 * The socket table: allocation, the two lookup tables (connections by
 * 4-tuple, bound sockets by local port), ephemeral port choice, and
 * readiness reporting.
 */
#include "internal.h"
#include "wire_ipv6.h"

static uint32_t mix32(uint64_t x, uint64_t seed)
{
	x ^= seed;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint32_t)x;
}

static uint32_t conn_bucket(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
	uint64_t a = ((uint64_t)rip << 32) | ((uint32_t)rport << 16) | lport;
	return mix32(a ^ ((uint64_t)lip << 7), st->cfg.secret[1]) & st->conn_mask;
}

static uint32_t port_bucket(struct usnet_stack *st, uint16_t lport)
{
	return mix32(lport, st->cfg.secret[0]) & st->port_mask;
}

/* The buckets, for check.c and repair.c (the lookups above keep theirs
 * inlined: they run for every segment). */
uint32_t conn_hashfn(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
	return conn_bucket(st, lip, lport, rip, rport);
}

uint32_t port_hashfn(struct usnet_stack *st, uint16_t lport)
{
	return port_bucket(st, lport);
}

int32_t sock_alloc(struct usnet_stack *st, int type)
{
	int32_t i = st->sock_free;
	if (i == NIL)
		return NIL;
	struct sock *s = sk(st, i);
	st->sock_free = s->pnext;
	memset(s, 0, sizeof(*s));
	s->hnext = s->pnext = s->heap_pos = NIL;
	s->parent = s->acc_next = s->acc_head = s->acc_tail = NIL;
	s->ooo = NIL;
	byteq_init(&s->sndq);
	byteq_init(&s->rcvq);
	for (int t = 0; t < TMR_COUNT; t++)
		s->timer_at[t] = UINT64_MAX;
	s->linger = -1;
	int udp = type == USNET_SOCK_DGRAM;
	s->sndbuf = udp && st->cfg.udp_sndbuf ? st->cfg.udp_sndbuf : st->cfg.sndbuf;
	s->rcvbuf = udp && st->cfg.udp_rcvbuf ? st->cfg.udp_rcvbuf : st->cfg.rcvbuf;
	s->cc = st->cfg.cc;
	s->keepidle_s = st->cfg.tcp_keepalive_time_s;
	s->keepintvl_s = st->cfg.tcp_keepalive_intvl_s;
	s->keepcnt = st->cfg.tcp_keepalive_probes;
	s->mc_ttl = 1;
	s->mc6_hops = 1;
	s->ip6_hops = -1;
	/* In use only once whole: a process killed before this store leaves a
	 * free socket, not one whose zeroed links name socket and chunk 0. */
	order_barrier();
	s->type = (uint8_t)type;
	st->socks_used++;
	return i;
}

int32_t sock_alloc_reclaim(struct usnet_stack *st, int type)
{
	int32_t i = sock_alloc(st, type);
	if (i != NIL)
		return i;
	/* A full table: TIME_WAIT orphans are the cheapest to give up (Linux
	 * too stops keeping TIME_WAIT past tcp_max_tw_buckets).  The scan
	 * starts where the last one stopped, so it seldom runs far. */
	for (uint32_t n = 0; n < st->nsocks; n++) {
		uint32_t k = (st->reclaim_next + n) % st->nsocks;
		struct sock *s = sk(st, (int32_t)k);
		if (s->type == USNET_SOCK_STREAM && s->state == USNET_TCP_TIME_WAIT && (s->flags & SF_ORPHAN)) {
			st->reclaim_next = k + 1;
			sock_free(st, (int32_t)k);
			return sock_alloc(st, type);
		}
	}
	return NIL;
}

void sock_free(struct usnet_stack *st, int32_t i)
{
	struct sock *s = sk(st, i);
	if (s->type == 0)
		return;
	timer_clear_all(st, i);
	if (s->mc_n)
		mc_sock_drop(st, i);
	if (s->mc6_n)
		mc6_sock_drop(st, i);
	if (s->flags & SF_HASHED)
		conn_remove(st, i);
	if (s->flags & SF_BOUND)
		port_remove(st, i);
	byteq_clear(st, &s->sndq);
	if (s->type == USNET_SOCK_DGRAM) {
		int32_t dgrams = s->rcvq.head;
		byteq_init(&s->rcvq);
		order_barrier();   /* unlinked before freed (internal.h) */
		chunk_free_records(st, dgrams);
	} else {
		byteq_clear(st, &s->rcvq);
	}
	chunk_free_list(st, &s->ooo);
	s->type = 0;
	s->flags = 0;
	s->pnext = st->sock_free;
	st->sock_free = i;
	st->socks_used--;
}

int sock_check(struct usnet_stack *st, usnet_sock_t s, struct sock **out)
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return -USNET_EINVAL;
	if (s < 0 || (uint32_t)s >= st->nsocks)
		return -USNET_EBADF;
	struct sock *k = sk(st, s);
	if (k->type == 0 || (k->flags & SF_ORPHAN) || k->parent != NIL)
		return -USNET_EBADF;
	*out = k;
	return 0;
}

/* ---- port table -------------------------------------------------------- */

void port_insert(struct usnet_stack *st, int32_t i)
{
	struct sock *s = sk(st, i);
	int32_t *head = &st_port_hash(st)[port_bucket(st, s->lport)];
	s->pnext = *head;
	*head = i;
	s->flags |= SF_BOUND;
}

void port_remove(struct usnet_stack *st, int32_t i)
{
	struct sock *socks = st_socks(st), *s = &socks[i];
	int32_t *pp = &st_port_hash(st)[port_bucket(st, s->lport)];
	while (*pp != NIL) {
		if (*pp == i) {
			*pp = s->pnext;
			break;
		}
		pp = &socks[*pp].pnext;
	}
	s->pnext = NIL;
	s->flags &= ~SF_BOUND;
}

/* The listener (TCP) or bound socket (UDP) for a local address: an exact
 * address match wins over a wildcard. */
int32_t port_lookup(struct usnet_stack *st, int type, uint32_t lip, uint16_t lport)
{
	int32_t wild = NIL, dual = NIL;
	struct sock *socks = st_socks(st);
	for (int32_t i = st_port_hash(st)[port_bucket(st, lport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != type || s->lport != lport)
			continue;
		if (type == USNET_SOCK_STREAM && s->state != USNET_TCP_LISTEN)
			continue;
		if (s->net6) {
			/* an IPv6 socket on :: takes IPv4 unless V6ONLY, after
			 * any IPv4 socket (Linux scores AF_INET higher) */
			if (dual == NIL && sock_dual_any(st, i))
				dual = i;
			continue;
		}
		if (s->lip == lip)
			return i;
		if (s->lip == 0 && wild == NIL)
			wild = i;
	}
	return wild != NIL ? wild : dual;
}

int sock_dual_any(struct usnet_stack *st, int32_t i)
{
	const struct sock *s = sk(st, i);
	return s->net6 && !s->v6only && ip6_is_unspecified(st_sock6(st)[i].laddr);
}

int32_t port_lookup6(struct usnet_stack *st, int type, const uint8_t lip[16], uint16_t lport)
{
	int32_t wild = NIL;
	struct sock *socks = st_socks(st);
	struct sock6 *a6 = st_sock6(st);
	for (int32_t i = st_port_hash(st)[port_bucket(st, lport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != type || s->lport != lport || !s->net6)
			continue;
		if (type == USNET_SOCK_STREAM && s->state != USNET_TCP_LISTEN)
			continue;
		if (ip6_eq(a6[i].laddr, lip))
			return i;
		if (ip6_is_unspecified(a6[i].laddr) && wild == NIL)
			wild = i;
	}
	return wild;
}

/* The UDP socket a datagram from (rip, rport) to (lip, lport) belongs to.
 * Several sockets may share a port (SO_REUSEADDR/SO_REUSEPORT); as on Linux
 * the most specific wins: one connected to exactly this sender, then one
 * bound to lip, then one bound to the wildcard address.  A socket connected
 * to another sender never gets it. */
int32_t udp_port_lookup(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
	int32_t best = NIL;
	int best_score = 0;
	struct sock *socks = st_socks(st);
	for (int32_t i = st_port_hash(st)[port_bucket(st, lport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != USNET_SOCK_DGRAM || s->lport != lport)
			continue;
		if (s->net6) {
			/* a dual-stack socket on :: (unconnected, or connected
			 * over IPv6: then not to this sender) scores below an
			 * IPv4 wildcard */
			if (!(s->flags & SF_CONNECTED) && best_score < 1 && sock_dual_any(st, i)) {
				best = i;
				best_score = 1;
			}
			continue;
		}
		if (s->lip != lip && s->lip != 0)
			continue;
		int score = s->lip != 0 ? 4 : 2;
		if (s->flags & SF_CONNECTED) {
			if (s->rip != rip || s->rport != rport)
				continue;
			score += 8;
		}
		if (score > best_score) {
			best = i;
			best_score = score;
		}
	}
	return best;
}

int32_t udp_port_lookup6(struct usnet_stack *st, const uint8_t lip[16], uint16_t lport, const uint8_t rip[16],
			 uint16_t rport)
{
	int32_t best = NIL;
	int best_score = 0;
	struct sock *socks = st_socks(st);
	struct sock6 *a6 = st_sock6(st);
	for (int32_t i = st_port_hash(st)[port_bucket(st, lport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != USNET_SOCK_DGRAM || s->lport != lport || !s->net6)
			continue;
		int any = ip6_is_unspecified(a6[i].laddr);
		if (!any && !ip6_eq(a6[i].laddr, lip))
			continue;
		int score = any ? 1 : 2;
		if (s->flags & SF_CONNECTED) {
			if (!ip6_eq(a6[i].raddr, rip) || s->rport != rport)
				continue;
			score += 4;
		}
		if (score > best_score) {
			best = i;
			best_score = score;
		}
	}
	return best;
}

/* Whether bound socket s lets a binder with want_flags share its address. */
static int port_reuse_ok(const struct sock *s, int type, uint32_t want_flags)
{
	if ((want_flags & SF_REUSEPORT) && (s->flags & SF_REUSEPORT))
		return 1;
	/* UDP sockets share a port when all of them ask for SO_REUSEADDR
	 * (Linux; iperf3's server relies on it). */
	if (type == USNET_SOCK_DGRAM && (want_flags & SF_REUSEADDR) && (s->flags & SF_REUSEADDR))
		return 1;
	/* SO_REUSEADDR lets a new socket bind over connections that are
	 * not listening (TIME_WAIT and the like), as on Linux. */
	if (type == USNET_SOCK_STREAM && (want_flags & SF_REUSEADDR) && (s->flags & SF_REUSEADDR) &&
	    s->state != USNET_TCP_LISTEN)
		return 1;
	if (type == USNET_SOCK_STREAM && (want_flags & SF_REUSEADDR) && s->state == USNET_TCP_TIME_WAIT)
		return 1;
	return 0;
}

/* Whether binding (lip, lport) conflicts with a bound socket; want_flags are
 * the binder's SF_REUSEADDR/SF_REUSEPORT. */
int port_in_use(struct usnet_stack *st, int type, uint32_t lip, uint16_t lport, uint32_t want_flags)
{
	struct sock *socks = st_socks(st);
	for (int32_t i = st_port_hash(st)[port_bucket(st, lport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != type || s->lport != lport)
			continue;
		if (s->net6 ? !sock_dual_any(st, i) : s->lip != lip && s->lip != 0 && lip != 0)
			continue;
		if (port_reuse_ok(s, type, want_flags))
			continue;
		return 1;
	}
	return 0;
}

int port_in_use6(struct usnet_stack *st, int type, const uint8_t lip[16], int dual, uint16_t lport,
		 uint32_t want_flags)
{
	struct sock *socks = st_socks(st);
	struct sock6 *a6 = st_sock6(st);
	int any = ip6_is_unspecified(lip);
	for (int32_t i = st_port_hash(st)[port_bucket(st, lport)]; i != NIL; i = socks[i].pnext) {
		struct sock *s = &socks[i];
		if (s->type != type || s->lport != lport)
			continue;
		/* Linux: :: with V6ONLY 0 covers every IPv4 address too */
		if (!s->net6 ? !(any && dual) :
		    !any && !ip6_is_unspecified(a6[i].laddr) && !ip6_eq(a6[i].laddr, lip))
			continue;
		if (port_reuse_ok(s, type, want_flags))
			continue;
		return 1;
	}
	return 0;
}

/* ---- connection table -------------------------------------------------- */

void conn_insert(struct usnet_stack *st, int32_t i)
{
	struct sock *s = sk(st, i);
	int32_t *head = &st_conn_hash(st)[conn_bucket(st, s->lip, s->lport, s->rip, s->rport)];
	s->hnext = *head;
	*head = i;
	s->flags |= SF_HASHED;
}

void conn_remove(struct usnet_stack *st, int32_t i)
{
	struct sock *socks = st_socks(st), *s = &socks[i];
	int32_t *pp = &st_conn_hash(st)[conn_bucket(st, s->lip, s->lport, s->rip, s->rport)];
	while (*pp != NIL) {
		if (*pp == i) {
			*pp = s->hnext;
			break;
		}
		pp = &socks[*pp].hnext;
	}
	s->hnext = NIL;
	s->flags &= ~SF_HASHED;
}

int32_t conn_lookup(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
	struct sock *socks = st_socks(st);
	for (int32_t i = st_conn_hash(st)[conn_bucket(st, lip, lport, rip, rport)]; i != NIL; i = socks[i].hnext) {
		struct sock *s = &socks[i];
		if (s->rport == rport && s->lport == lport && s->rip == rip && s->lip == lip && !s->net6)
			return i;
	}
	return NIL;
}

int32_t conn_lookup6(struct usnet_stack *st, const uint8_t lip[16], uint16_t lport, const uint8_t rip[16],
		     uint16_t rport)
{
	struct sock *socks = st_socks(st);
	struct sock6 *a6 = st_sock6(st);
	uint32_t l = ip6_fold(lip), r = ip6_fold(rip);
	for (int32_t i = st_conn_hash(st)[conn_bucket(st, l, lport, r, rport)]; i != NIL; i = socks[i].hnext) {
		struct sock *s = &socks[i];
		if (s->rport == rport && s->lport == lport && s->net6 && s->rip == r && s->lip == l &&
		    ip6_eq(a6[i].raddr, rip) && ip6_eq(a6[i].laddr, lip))
			return i;
	}
	return NIL;
}

int32_t conn_lookup_sock(struct usnet_stack *st, int32_t i)
{
	struct sock *s = sk(st, i);
	if (s->net6)
		return conn_lookup6(st, st_sock6(st)[i].laddr, s->lport, st_sock6(st)[i].raddr, s->rport);
	return conn_lookup(st, s->lip, s->lport, s->rip, s->rport);
}

/* RSS: does the peer's reply to (lip, lport) arrive on our queue?  Asked of
 * the netif when the configuration says how; otherwise the usual Toeplitz
 * hash with a 128-entry indirection table filled round-robin. */
static int rss_queue_ok(struct usnet_stack *st, struct usnet_io *io, int type, uint32_t lip,
			uint16_t lport, uint32_t rip, uint16_t rport)
{
	if (st->cfg.rss_queues <= 1)
		return 1;
	if (!lip)
		lip = st->cfg.ip;   /* an unbound socket sends from our address */
	if (io && io->flow_queue) {
		uint8_t proto = type == USNET_SOCK_STREAM ? 6 : 17;
		int q = io->flow_queue(io, proto, rip, rport, lip, lport);
		return q < 0 || q == st->cfg.rss_queue;
	}
	uint8_t in[12];
	/* Replies arrive with src = peer, dst = us. */
	in[0] = (uint8_t)(rip >> 24); in[1] = (uint8_t)(rip >> 16); in[2] = (uint8_t)(rip >> 8); in[3] = (uint8_t)rip;
	in[4] = (uint8_t)(lip >> 24); in[5] = (uint8_t)(lip >> 16); in[6] = (uint8_t)(lip >> 8); in[7] = (uint8_t)lip;
	in[8] = (uint8_t)(rport >> 8); in[9] = (uint8_t)rport;
	in[10] = (uint8_t)(lport >> 8); in[11] = (uint8_t)lport;
	uint32_t h = toeplitz_hash(st->cfg.rss_key, in, 12);
	return (h & 127u) % st->cfg.rss_queues == st->cfg.rss_queue;
}

/* RFC 6056 algorithm 3: a keyed hash of the destination picks where the
 * search starts, a per-instance cursor moves it along. */
int choose_ephemeral(struct usnet_stack *st, struct usnet_io *io, int type, uint32_t lip, uint32_t rip,
		     uint16_t rport, uint16_t *out)
{
	uint32_t lo = st->cfg.ephemeral_lo, hi = st->cfg.ephemeral_hi;
	uint32_t n = hi - lo + 1;
	uint32_t key[3] = { rip, rport, (uint32_t)type };
	uint32_t off = (uint32_t)siphash24(st->cfg.secret, key, sizeof key);
	for (uint32_t k = 0; k < n; k++) {
		uint16_t port = (uint16_t)(lo + (off + st->port_cursor + k) % n);
		if (rip != 0 && !rss_queue_ok(st, io, type, lip, port, rip, rport))
			continue;
		if (rip == 0) {
			if (port_in_use(st, type, lip, port, 0))
				continue;
		} else if (type == USNET_SOCK_STREAM) {
			if (conn_lookup(st, lip, port, rip, rport) != NIL || port_in_use(st, type, lip, port, 0))
				continue;
		} else if (port_in_use(st, type, lip, port, 0)) {
			continue;
		}
		st->port_cursor = (uint16_t)(st->port_cursor + k + 1);
		*out = port;
		return 0;
	}
	return -USNET_EADDRNOTAVAIL;
}

/* rss_queue_ok for an IPv6 flow: asked of usnet_io.flow_queue6, or the
 * Toeplitz hash over the addresses and ports. */
static int rss_queue_ok6(struct usnet_stack *st, struct usnet_io *io, const uint8_t lip[16], uint16_t lport,
			 const uint8_t rip[16], uint16_t rport)
{
	if (st->cfg.rss_queues <= 1)
		return 1;
	if (io && io->flow_queue6) {
		int q = io->flow_queue6(io, 6, rip, rport, lip, lport);
		return q < 0 || q == st->cfg.rss_queue;
	}
	uint8_t in[36];
	memcpy(in, rip, 16);   /* replies: src = peer, dst = us */
	memcpy(in + 16, lip, 16);
	in[32] = (uint8_t)(rport >> 8); in[33] = (uint8_t)rport;
	in[34] = (uint8_t)(lport >> 8); in[35] = (uint8_t)lport;
	uint32_t h = toeplitz_hash(st->cfg.rss_key, in, sizeof in);
	return (h & 127u) % st->cfg.rss_queues == st->cfg.rss_queue;
}

/* The same for an IPv6 socket (lip :: : the wildcard; dual: V6ONLY 0,
 * so IPv4 users of the port conflict too; rip NULL: for bind).  A TCP
 * connection's port is one whose replies arrive on this instance's queue
 * (rss_queue_ok6; lip is then the source address connect() chose). */
int choose_ephemeral6(struct usnet_stack *st, struct usnet_io *io, int type, const uint8_t lip[16], int dual,
		      const uint8_t *rip, uint16_t rport, uint16_t *out)
{
	uint32_t lo = st->cfg.ephemeral_lo, hi = st->cfg.ephemeral_hi;
	uint32_t n = hi - lo + 1;
	uint8_t key[20];
	memset(key, 0, sizeof key);
	if (rip)
		memcpy(key, rip, 16);
	key[16] = (uint8_t)(rport >> 8);
	key[17] = (uint8_t)rport;
	key[18] = (uint8_t)type;
	key[19] = 6;
	uint32_t off = (uint32_t)siphash24(st->cfg.secret, key, sizeof key);
	for (uint32_t k = 0; k < n; k++) {
		uint16_t port = (uint16_t)(lo + (off + st->port_cursor + k) % n);
		if (rip && type == USNET_SOCK_STREAM && !rss_queue_ok6(st, io, lip, port, rip, rport))
			continue;
		if (port_in_use6(st, type, lip, dual, port, 0))
			continue;
		if (rip && type == USNET_SOCK_STREAM && conn_lookup6(st, lip, port, rip, rport) != NIL)
			continue;
		st->port_cursor = (uint16_t)(st->port_cursor + k + 1);
		*out = port;
		return 0;
	}
	return -USNET_EADDRNOTAVAIL;
}

void sock_set_addr6(struct usnet_stack *st, int32_t i, const uint8_t *lip, const uint8_t *rip)
{
	struct sock *s = sk(st, i);
	struct sock6 *a = &st_sock6(st)[i];
	if (lip)
		memcpy(a->laddr, lip, 16);
	if (rip)
		memcpy(a->raddr, rip, 16);
	s->lip = ip6_fold(a->laddr);
	s->rip = ip6_fold(a->raddr);
	s->net6 = 1;
}

int sock_bind6(struct usnet_stack *st, int32_t i, const uint8_t lip[16], uint16_t lport)
{
	struct sock *s = sk(st, i);
	int dual = !s->v6only && ip6_is_unspecified(lip);
	if (lport == 0) {
		int r = choose_ephemeral6(st, NULL, s->type, lip, dual, NULL, 0, &lport);
		if (r < 0)
			return r;
	} else if (port_in_use6(st, s->type, lip, dual, lport, s->flags & (SF_REUSEADDR | SF_REUSEPORT))) {
		return -USNET_EADDRINUSE;
	}
	static const uint8_t none[16];
	sock_set_addr6(st, i, lip, none);
	s->lport = lport;
	port_insert(st, i);
	return 0;
}

/* ---- readiness --------------------------------------------------------- */

uint32_t sock_events(struct usnet_stack *st, struct sock *s)
{
	uint32_t ev = 0;
	if (s->err)
		ev |= USNET_EV_ERR;
	if (s->type == USNET_SOCK_DGRAM) {
		if (s->rcvq.head != NIL)
			ev |= USNET_EV_IN;
		ev |= USNET_EV_OUT;
		return ev;
	}
	switch (s->state) {
	case USNET_TCP_LISTEN:
		if (s->acc_head != NIL)
			ev |= USNET_EV_IN;
		return ev;
	case USNET_TCP_SYN_SENT:
	case USNET_TCP_SYN_RECEIVED:
		return ev;
	case USNET_TCP_CLOSED:
		if (!(s->flags & (SF_RESET | SF_ACTIVE | SF_FIN_RCVD)) && !s->err)
			return ev | USNET_EV_OUT | USNET_EV_HUP;   /* never connected */
		return ev | USNET_EV_IN | USNET_EV_OUT | USNET_EV_HUP | USNET_EV_RDHUP;
	default:
		break;
	}
	(void)st;
	/* SO_RCVLOWAT: readable from that many bytes (or at the end). */
	if (s->rcvq.bytes >= (s->rcvlowat ? s->rcvlowat : 1) || (s->flags & (SF_FIN_RCVD | SF_SHUT_RD)))
		ev |= USNET_EV_IN;
	if (s->flags & SF_FIN_RCVD)
		ev |= USNET_EV_RDHUP;
	if (s->flags & SF_SHUT_WR) {
		ev |= USNET_EV_OUT;
		if (s->flags & SF_FIN_RCVD)
			ev |= USNET_EV_HUP;
	} else {
		uint32_t q = s->sndq.bytes;
		/* TCP_NOTSENT_LOWAT: only while few bytes wait to be sent. */
		uint32_t unsent = q - min_u32(q, s->snd_max - s->snd_una);
		if (q < s->sndbuf && s->sndbuf - q >= (q >> 1) && (!s->notsent_lowat || unsent < s->notsent_lowat))
			ev |= USNET_EV_OUT;
	}
	if (s->state == USNET_TCP_TIME_WAIT)
		ev |= USNET_EV_HUP;
	return ev;
}

void sock_notify(struct net_ctx *c, struct sock *s)
{
	if (s->type == 0 || (s->flags & SF_ORPHAN) || s->parent != NIL)
		return;
	uint32_t ev = sock_events(c->st, s);
	if (ev == s->ev_last && !(s->flags & SF_EV_EDGE))
		return;
	s->ev_last = ev;
	s->flags &= ~SF_EV_EDGE;
	if (c->io && c->io->on_event)
		c->io->on_event(c->io, sk_index(c->st, s), ev, s->user);
}
