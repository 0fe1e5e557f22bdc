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
}

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;
	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

/* Offsets of each region of the arena. */
struct layout {
	size_t socks, conn_hash, port_hash, heap, chunks, chunk_data, arp, reasm_buf, total;
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
	uint8_t *base = mem;
	struct usnet_stack *st = mem;
	memset(st, 0, sizeof(*st));
	st->cfg = *cfg;
	if (st->cfg.sndbuf < 4096) st->cfg.sndbuf = 4096;
	if (st->cfg.rcvbuf < 4096) st->cfg.rcvbuf = 4096;
	if (st->cfg.rss_queues == 0) st->cfg.rss_queues = 1;
	st->netmask = cfg->prefix_len ? ~0u << (32 - cfg->prefix_len) : 0;

	st->socks = (struct sock *)(base + l.socks);
	st->nsocks = cfg->max_sockets;
	st->sock_free = NIL;
	for (int32_t i = (int32_t)st->nsocks - 1; i >= 0; i--) {
		st->socks[i].type = 0;
		st->socks[i].pnext = st->sock_free;
		st->sock_free = i;
	}
	st->conn_hash = (int32_t *)(base + l.conn_hash);
	st->conn_mask = l.conn_buckets - 1;
	memset(st->conn_hash, 0xff, (size_t)l.conn_buckets * sizeof(int32_t));
	st->port_hash = (int32_t *)(base + l.port_hash);
	st->port_mask = l.port_buckets - 1;
	memset(st->port_hash, 0xff, (size_t)l.port_buckets * sizeof(int32_t));
	st->heap = (int32_t *)(base + l.heap);

	st->chunks = (struct chunk *)(base + l.chunks);
	st->chunk_data = base + l.chunk_data;
	st->nchunks = st->chunks_free = l.nchunks;
	st->chunk_free = NIL;
	for (int32_t i = (int32_t)l.nchunks - 1; i >= 0; i--) {
		st->chunks[i].next = st->chunk_free;
		st->chunk_free = i;
	}
	st->arp = (struct arp_entry *)(base + l.arp);
	memset(st->arp, 0, ARP_TABLE * sizeof(struct arp_entry));
	for (uint32_t i = 0; i < ARP_TABLE; i++)
		st->arp[i].queue = NIL;
	for (uint32_t i = 0; i < REASM_SLOTS; i++)
		st->reasm[i].frags = NIL;
	st->reasm_buf = base + l.reasm_buf;
	st->misc_at = UINT64_MAX;
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
		uint64_t r = ip_reass_timers(&c);
		st->misc_at = min_u64(a, r);
	}
	/* Bounded: a socket whose timer fires is rescheduled in the future or
	 * its timer cleared, so each pass makes progress. */
	for (uint32_t guard = 0; guard < 4 * st->nsocks + 16; guard++) {
		int32_t i = timer_pop_due(st, now);
		if (i == NIL)
			break;
		tcp_timers(&c, sk(st, i));
		if (st->socks[i].type)
			timer_refresh(st, i);
	}
	ctx_flush(&c);
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

void usnet_stack_stats(struct usnet_stack *st, struct usnet_stack_stats *out)
{
	if (!st || !out || st->magic != USNET_STACK_MAGIC)
		return;
	*out = st->stats;
	out->buffers_in_use = (uint64_t)(st->nchunks - st->chunks_free) * CHUNK_SIZE;
	out->buffers_total = (uint64_t)st->nchunks * CHUNK_SIZE;
	out->sockets_in_use = st->socks_used;
	out->sockets_total = st->nsocks;
	out->arp_waiting = 0;
	for (uint32_t i = 0; i < ARP_TABLE; i++)
		if (st->arp[i].state != ARP_FREE)
			out->arp_waiting += st->arp[i].qlen;
}

int usnet_sock_next(struct usnet_stack *st, int from)
{
	if (!st || st->magic != USNET_STACK_MAGIC || from < 0)
		return -1;
	for (uint32_t i = (uint32_t)from; i < st->nsocks; i++)
		if (st->socks[i].type != 0)
			return (int)i;
	return -1;
}

int usnet_sock_type(struct usnet_stack *st, usnet_sock_t s)
{
	if (!st || st->magic != USNET_STACK_MAGIC || s < 0 || (uint32_t)s >= st->nsocks ||
	    st->socks[s].type == 0)
		return -USNET_EBADF;
	return st->socks[s].type;
}
