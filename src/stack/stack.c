/*
 * The instance: configuration, the arena layout, and the two entry points
 * that drive it (input and poll).
 */
#include "internal.h"

void usnet_stack_config_init(struct usnet_stack_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->prefix_len = 24;
	cfg->mtu = 1500;
	cfg->max_sockets = 1024;
	cfg->buffer_bytes = 16u << 20;
	cfg->sndbuf = 64u << 10;
	cfg->rcvbuf = 64u << 10;
	cfg->ephemeral_lo = 32768;
	cfg->ephemeral_hi = 60999;
	cfg->cc = USNET_CC_CUBIC;
	cfg->rss_queues = 1;
	cfg->tcp_timestamps = 1;
	cfg->tcp_sack = 1;
	cfg->tcp_window_scaling = 1;
	cfg->tcp_syncookies = 1;
	cfg->tcp_rmem_max = 6u << 20;
	cfg->tcp_fin_timeout_s = 60;
	cfg->tcp_keepalive_time_s = 7200;
	cfg->tcp_keepalive_intvl_s = 75;
	cfg->tcp_keepalive_probes = 9;
	cfg->somaxconn = 4096;
	cfg->tcp_ecn = 2;
	cfg->tcp_max_syn_backlog = 4096;
	cfg->ip6_dad_transmits = 1;
	cfg->ip6_router_solicits = 3;
}

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;
	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

/* Offsets of each region of the arena from its start.  They are what
 * struct usnet_stack keeps (its *_off fields), never the addresses: the
 * arena is used wherever a process maps it. */
struct layout {
	size_t socks, conn_hash, port_hash, heap, chunks, chunk_data, arp, reasm_buf, loop_buf, marks, nd6, sock6, total;
	uint32_t nchunks, conn_buckets, port_buckets;
};

static int config_valid(const struct usnet_stack_config *cfg)
{
	if (cfg->max_sockets < 1 || cfg->max_sockets > (1u << 24))
		return 0;
	if (cfg->mtu < 576 || cfg->mtu > 9216)
		return 0;
	if (cfg->buffer_bytes < 16 * CHUNK_SIZE || cfg->buffer_bytes > (1u << 31))
		return 0;
	if (cfg->prefix_len > 32 || cfg->cc > USNET_CC_NEWRENO)
		return 0;
	if (cfg->ephemeral_lo == 0 || cfg->ephemeral_lo > cfg->ephemeral_hi)
		return 0;
	if (cfg->rss_queues > 1 && cfg->rss_queue >= cfg->rss_queues)
		return 0;
	if (cfg->tcp_timestamps > 1 || cfg->tcp_sack > 1 || cfg->tcp_window_scaling > 1 || cfg->tcp_syncookies > 2)
		return 0;
	if (cfg->ip6_link_local > 1)
		return 0;
	for (unsigned i = 0; i < USNET_IP6_ADDRS; i++)
		if (cfg->ip6_prefix_len[i] > 128 || cfg->ip6[i][0] == 0xff)   /* no multicast address is ours */
			return 0;
	return 1;
}

static void layout_of(const struct usnet_stack_config *cfg, struct layout *l)
{
	l->nchunks = cfg->buffer_bytes / CHUNK_SIZE;
	l->conn_buckets = pow2_at_least(cfg->max_sockets);
	l->port_buckets = pow2_at_least(cfg->max_sockets / 4 + 16);
	size_t off = align64(sizeof(struct usnet_stack));
	l->socks = off;      off = align64(off + (size_t)cfg->max_sockets * sizeof(struct sock));
	l->conn_hash = off;  off = align64(off + (size_t)l->conn_buckets * sizeof(int32_t));
	l->port_hash = off;  off = align64(off + (size_t)l->port_buckets * sizeof(int32_t));
	l->heap = off;       off = align64(off + (size_t)cfg->max_sockets * sizeof(int32_t));
	l->chunks = off;     off = align64(off + (size_t)l->nchunks * sizeof(struct chunk));
	l->arp = off;        off = align64(off + ARP_TABLE * sizeof(struct arp_entry));
	l->reasm_buf = off;  off = align64(off + REASM_MAX + 64);
	l->loop_buf = off;   off = align64(off + cfg->mtu + ETH_HLEN + 64);
	l->marks = off;      off = align64(off + own_marks_size(l->nchunks, cfg->max_sockets));
	l->nd6 = off;        off = align64(off + ND6_TABLE * sizeof(struct nd6_entry));
	l->sock6 = off;      off = align64(off + (size_t)cfg->max_sockets * sizeof(struct sock6));
	l->chunk_data = off; off = align64(off + (size_t)l->nchunks * CHUNK_SIZE);
	l->total = off;
}

size_t usnet_stack_mem_size(const struct usnet_stack_config *cfg)
{
	if (!cfg || !config_valid(cfg))
		return 0;
	struct layout l;
	layout_of(cfg, &l);
	return l.total;
}

struct usnet_stack *usnet_stack_create(void *mem, size_t size, const struct usnet_stack_config *cfg)
{
	if (!mem || !cfg || ((uintptr_t)mem & 63) || !config_valid(cfg))
		return NULL;
	struct layout l;
	layout_of(cfg, &l);
	if (size < l.total)
		return NULL;
	/*
	 * The arena: struct usnet_stack, then each table at the offset
	 * layout_of() gave it.  Invariant: nothing in the arena holds a
	 * pointer, to the arena or elsewhere.  The instance finds its tables
	 * by offset (st->*_off, through st_socks() and the like), the tables
	 * refer to sockets, chunks and records by index, and congestion control
	 * is an enum into a const table; process-local things (netif, callback)
	 * come with each call in struct usnet_io.  So any process may map the
	 * arena at any address and use it: a forked child, an exec'd image,
	 * an unrelated program.
	 */
	struct usnet_stack *st = mem;
	memset(st, 0, sizeof(*st));
	st->cfg = *cfg;
	if (st->cfg.sndbuf < 4096) st->cfg.sndbuf = 4096;
	if (st->cfg.rcvbuf < 4096) st->cfg.rcvbuf = 4096;
	if (st->cfg.rss_queues == 0) st->cfg.rss_queues = 1;
	st->netmask = cfg->prefix_len ? ~0u << (32 - cfg->prefix_len) : 0;
	st->socks_off = l.socks;
	st->conn_hash_off = l.conn_hash;
	st->port_hash_off = l.port_hash;
	st->heap_off = l.heap;
	st->chunks_off = l.chunks;
	st->chunk_data_off = l.chunk_data;
	st->arp_off = l.arp;
	st->reasm_buf_off = l.reasm_buf;
	st->loop_buf_off = l.loop_buf;
	st->marks_off = l.marks;
	st->nd6_off = l.nd6;
	st->sock6_off = l.sock6;
	st->loop_head = st->loop_tail = NIL;

	struct sock *socks = st_socks(st);
	st->nsocks = cfg->max_sockets;
	st->sock_free = NIL;
	for (int32_t i = (int32_t)st->nsocks - 1; i >= 0; i--) {
		socks[i].type = 0;
		socks[i].pnext = st->sock_free;
		st->sock_free = i;
	}
	st->conn_mask = l.conn_buckets - 1;
	memset(st_conn_hash(st), 0xff, (size_t)l.conn_buckets * sizeof(int32_t));
	st->port_mask = l.port_buckets - 1;
	memset(st_port_hash(st), 0xff, (size_t)l.port_buckets * sizeof(int32_t));

	struct chunk *chunks = st_chunks(st);
	st->nchunks = st->chunks_free = l.nchunks;
	st->chunk_free = NIL;
	for (int32_t i = (int32_t)l.nchunks - 1; i >= 0; i--) {
		chunks[i].next = st->chunk_free;
		st->chunk_free = i;
	}
	struct arp_entry *arp = st_arp(st);
	memset(arp, 0, ARP_TABLE * sizeof(struct arp_entry));
	for (uint32_t i = 0; i < ARP_TABLE; i++)
		arp[i].queue = NIL;
	for (uint32_t i = 0; i < REASM_SLOTS; i++)
		st->reasm[i].frags = NIL;
	for (uint32_t i = 0; i < REASM6_SLOTS; i++)
		st->reasm6[i].frags = NIL;
	struct nd6_entry *nd6 = st_nd6(st);
	memset(nd6, 0, ND6_TABLE * sizeof(struct nd6_entry));
	for (uint32_t i = 0; i < ND6_TABLE; i++)
		nd6[i].queue = NIL;
	st->journal.sock = NIL;
	for (uint32_t i = 0; i < MC_MEMBERS; i++)
		st->mc_members[i].sock = NIL;
	for (uint32_t i = 0; i < MC6_MEMBERS; i++)
		st->mc6_members[i].sock = NIL;
	st->igmp_general_at = UINT64_MAX;
	st->misc_at = UINT64_MAX;
	ip6_addrs_init(st);
	mld6_init(st);
	st->ip_id = (uint16_t)siphash24(cfg->secret, "ipid", 4);
	st->stats.sockets_total = st->nsocks;
	st->stats.buffers_total = (uint64_t)l.nchunks * CHUNK_SIZE;
	if (cfg->gateway)
		usnet_route_add(st, 0, 0, cfg->gateway);
	st->magic = USNET_STACK_MAGIC;
	return st;
}

void usnet_stack_input(struct usnet_stack *st, struct usnet_io *io,
		       struct usnet_pkt *pkts, unsigned n, uint64_t now)
{
	if (!st || st->magic != USNET_STACK_MAGIC || !pkts)
		return;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	c.batching = n > 1;
	for (unsigned i = 0; i < n; i++) {
		/* The next frame was just written by another CPU (a copy into
		 * the ring): start fetching its headers while this one is
		 * handled. */
		if (i + 1 < n && pkts[i + 1].data) {
			__builtin_prefetch(pkts[i + 1].data);
			__builtin_prefetch(pkts[i + 1].data + 64);
		}
		st->stats.rx_frames++;
		eth_input(&c, &pkts[i]);
	}
	/* The ACKs the batch deferred (none if a reply carried them already). */
	for (unsigned i = 0; i < c.nack; i++) {
		struct sock *s = sk(st, c.ack_later[i]);
		if (s->type == USNET_SOCK_STREAM && (s->flags & SF_ACK_BATCH)) {
			s->flags &= ~SF_ACK_BATCH;
			tcp_send_ack(&c, s);
		}
	}
	ctx_flush(&c);
}

uint64_t usnet_stack_poll(struct usnet_stack *st, struct usnet_io *io, uint64_t now)
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return UINT64_MAX;
	struct net_ctx c;
	ctx_init(&c, st, io, now);
	if (st->misc_at <= now) {
		uint64_t a = arp_timers(&c);
		uint64_t r = min_u64(ip_reass_timers(&c), ip6_reass_timers(&c));
		uint64_t n = nd6_timers(&c);
		uint64_t g = min_u64(igmp_timers(&c), mld6_timers(&c));   /* MLD after ND: DAD joins groups */
		st->misc_at = min_u64(min_u64(a, r), min_u64(n, g));
	}
	/* Bounded: a socket whose timer fires is rescheduled in the future or
	 * its timer cleared, so each pass makes progress. */
	for (uint32_t guard = 0; guard < 4 * st->nsocks + 16; guard++) {
		int32_t i = timer_pop_due(st, now);
		if (i == NIL)
			break;
		tcp_timers(&c, sk(st, i));
		if (sk(st, i)->type)
			timer_refresh(st, i);
	}
	ctx_flush(&c);
	if (loop_pending(st))
		return now;   /* frames to itself beyond one call's share */
	return min_u64(timer_next(st), st->misc_at);
}

int usnet_route_add(struct usnet_stack *st, uint32_t dst, uint8_t prefix_len, uint32_t gateway)
{
	if (!st || prefix_len > 32)
		return -USNET_EINVAL;
	uint32_t mask = prefix_len ? ~0u << (32 - prefix_len) : 0;
	struct route *free_slot = NULL;
	for (uint32_t i = 0; i < ROUTE_MAX; i++) {
		struct route *r = &st->routes[i];
		if (r->used && r->dst == (dst & mask) && r->prefix == prefix_len) {
			r->gw = gateway;   /* replace */
			return 0;
		}
		if (!r->used && !free_slot)
			free_slot = r;
	}
	if (!free_slot)
		return -USNET_ENOSPC;
	free_slot->dst = dst & mask;
	free_slot->mask = mask;
	free_slot->prefix = prefix_len;
	free_slot->gw = gateway;
	free_slot->used = 1;
	return 0;
}

/* Longest prefix match; the on-link prefix is an implicit route. */
int route_lookup(struct usnet_stack *st, uint32_t dst, uint32_t *nexthop)
{
	int best = -1;
	uint32_t gw = 0;
	if ((dst & st->netmask) == (st->cfg.ip & st->netmask)) {
		best = st->cfg.prefix_len;
		gw = 0;
	}
	for (uint32_t i = 0; i < ROUTE_MAX; i++) {
		struct route *r = &st->routes[i];
		if (r->used && (dst & r->mask) == r->dst && (int)r->prefix > best) {
			best = r->prefix;
			gw = r->gw;
		}
	}
	if (best < 0)
		return -USNET_ENETUNREACH;
	*nexthop = gw ? gw : dst;
	return 0;
}

/* USNET_STACK_STATS (include/usnet/stack.h) names every counter, once:
 * a counter added to the struct and not to the list fails here. */
#define STAT_BYTES64(f) + sizeof(uint64_t)
#define STAT_BYTES32(f) + sizeof(uint32_t)
_Static_assert(0 USNET_STACK_STATS(STAT_BYTES64, STAT_BYTES32) == sizeof(struct usnet_stack_stats),
	       "USNET_STACK_STATS must list every counter of struct usnet_stack_stats");
#undef STAT_BYTES64
#undef STAT_BYTES32

void usnet_stack_stats(struct usnet_stack *st, struct usnet_stack_stats *out)
{
	if (!st || !out || st->magic != USNET_STACK_MAGIC)
		return;
	*out = st->stats;
	out->buffers_in_use = (uint64_t)(st->nchunks - st->chunks_free) * CHUNK_SIZE;
	out->buffers_total = (uint64_t)st->nchunks * CHUNK_SIZE;
	out->sockets_in_use = st->socks_used;
	out->sockets_total = st->nsocks;
	out->tcp_time_wait = out->tcp_orphans = 0;
	struct sock *socks = st_socks(st);
	for (uint32_t i = 0; i < st->nsocks; i++) {
		if (socks[i].type != USNET_SOCK_STREAM)
			continue;
		if (socks[i].state == USNET_TCP_TIME_WAIT)
			out->tcp_time_wait++;
		else if (socks[i].flags & SF_ORPHAN)
			out->tcp_orphans++;
	}
	out->arp_waiting = 0;
	const struct arp_entry *arp = st_arp(st);
	for (uint32_t i = 0; i < ARP_TABLE; i++)
		if (arp[i].state != ARP_FREE)
			out->arp_waiting += arp[i].qlen;
	out->nd_waiting = 0;
	const struct nd6_entry *nd6 = st_nd6(st);
	for (uint32_t i = 0; i < ND6_TABLE; i++)
		if (nd6[i].state != ND6_FREE)
			out->nd_waiting += nd6[i].qlen;
	out->nd_routers = out->nd_prefixes = 0;
	for (uint32_t i = 0; i < ND6_ROUTERS; i++)
		out->nd_routers += st->nd6_routers[i].expires != 0;
	for (uint32_t i = 0; i < ND6_PREFIXES; i++)
		out->nd_prefixes += st->nd6_prefixes[i].len != 0;
}

int usnet_sock_next(struct usnet_stack *st, int from)
{
	if (!st || st->magic != USNET_STACK_MAGIC || from < 0)
		return -1;
	const struct sock *socks = st_socks(st);
	for (uint32_t i = (uint32_t)from; i < st->nsocks; i++)
		if (socks[i].type != 0)
			return (int)i;
	return -1;
}

int usnet_sock_type(struct usnet_stack *st, usnet_sock_t s)
{
	if (!st || st->magic != USNET_STACK_MAGIC || s < 0 || (uint32_t)s >= st->nsocks ||
	    sk(st, s)->type == 0)
		return -USNET_EBADF;
	return sk(st, s)->type;
}

int usnet_sock_family(struct usnet_stack *st, usnet_sock_t s)
{
	if (!st || st->magic != USNET_STACK_MAGIC || s < 0 || (uint32_t)s >= st->nsocks ||
	    sk(st, s)->type == 0)
		return -USNET_EBADF;
	return sk(st, s)->af;
}
