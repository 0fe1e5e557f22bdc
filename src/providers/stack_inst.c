/*
 * usnet provider "usnet": its instances, one per receive queue.
 *
 * Instance q owns queue q: its lock serialises its stack and its queue's rx
 * and tx rings, so threads on different queues never wait for each other.
 * A TCP connection lives on one instance, the one inst_flow_owner() names
 * for its flow: the queue the netif steers the flow to where the netif can
 * tell (afpacket's fanout hash, a NIC's Toeplitz RSS), else a hash of the
 * provider's own.  Listeners have a copy in every instance (stack.c), and
 * connect() picks local ports whose flow belongs to the caller's instance,
 * so where the netif tells, a frame arrives on its own instance's queue.
 * Where it cannot (a veth's queue follows the sending socket's hash, which
 * the sender may change when it retransmits), a frame read from another
 * queue is copied into its owner's inbox: a ring in shared memory that the
 * owner's lock holder runs.  UDP sockets with the groups they joined (so
 * IGMP and MLD queries go there too), and what belongs to no flow (IP
 * fragments), live on instance 0; ARP frames stay on the queue they
 * arrive on (a multi-queue netif brings each to every queue, and instance 0
 * answers requests), and an echo request is answered where it arrives.
 * IPv6 flows always go by the provider's hash (the netif's steering speaks
 * IPv4), and Neighbor Discovery frames, which no netif copies to every
 * queue, are copied to every instance's inbox here.
 *
 * Hand-over without lost wake-ups: a writer publishes the frame, then tries
 * the owner's lock and runs the inbox itself when it gets it; a lock holder
 * releases the lock, then looks at the inbox again.  One of the two always
 * sees the frame.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stack_prov.h"

#define RX_BATCH 32
#define ETH_HLEN 14

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* An inbox writer's lock: a writer that died with it left at most a slot
 * written and not published (the tail moves last), a frame lost. */
static void robust_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) == EOWNERDEAD)
		pthread_mutex_consistent(m);
}

/*
 * The instance's lock came from a process that died holding it (SIGKILL
 * inside a stack call): its stack may be half updated.  Repair it before
 * anything else runs on it, and only then mark the lock consistent: should
 * this process die inside the repair too, the next holder is told again
 * and repairs again.
 */
static void inst_recover(struct inst *in)
{
	int fixed = usnet_stack_repair(in->st, now_ns());
	atomic_fetch_add(&in->sh->repairs, 1);
	pthread_mutex_consistent(&in->sh->lock);
	char line[128];
	snprintf(line, sizeof line, "instance %u: a process died holding its lock; stack repaired (%d fixed)", in->q,
		 fixed);
	in->p->host->log(in->p->host->host, USNET_PLOG_INFO, line);
}

void inst_lock(struct inst *in)
{
	if (pthread_mutex_lock(&in->sh->lock) == EOWNERDEAD)
		inst_recover(in);
}

bool inst_trylock(struct inst *in)
{
	int r = pthread_mutex_trylock(&in->sh->lock);
	if (r == EOWNERDEAD)
		inst_recover(in);
	return r == 0 || r == EOWNERDEAD;
}

static void flush_queue(struct inst *in)
{
	/* Through the defer wrapper: the frames it held leave too. */
	usnet_tx_defer_flush(&in->held_nif, in->q);
	in->held = false;
}

static bool inbox_pending(struct inst *in)
{
	return atomic_load(&in->sh->inbox_head) != atomic_load(&in->sh->inbox_tail);
}

/* After a release: frames handed over while the lock was held. */
static void inbox_after_unlock(struct inst *in)
{
	while (in->p->ninst > 1 && inbox_pending(in) && inst_trylock(in)) {
		inst_drain_inbox(in, now_ns());
		flush_queue(in);
		pthread_mutex_unlock(&in->sh->lock);
	}
}

void inst_unlock(struct inst *in)
{
	flush_queue(in);
	pthread_mutex_unlock(&in->sh->lock);
	inbox_after_unlock(in);
}

void inst_unlock_quiet(struct inst *in)
{
	pthread_mutex_unlock(&in->sh->lock);
	inbox_after_unlock(in);
}

/* The provider's own flow hash, for netifs that cannot say where a flow
 * arrives: symmetric in the two ends, so both directions agree. */
static uint32_t flow_hash(uint32_t a_ip, uint16_t a_port, uint32_t b_ip, uint16_t b_port)
{
	uint32_t h = (a_ip ^ b_ip) ^ (uint32_t)(a_port ^ b_port);
	h ^= h >> 16;
	h *= 0x45d9f3bu;
	h ^= h >> 16;
	return h;
}

int inst_flow_owner(struct usnet_io *io, uint8_t proto, uint32_t src_ip, uint16_t src_port,
		    uint32_t dst_ip, uint16_t dst_port)
{
	struct inst *in = io->ctx;
	struct prov *p = in->p;
	if (p->ninst <= 1 || proto != 6)
		return 0;
	int q = usnet_netif_flow_queue(p->nif, proto, src_ip, src_port, dst_ip, dst_port);
	if (q >= 0 && q < p->ninst)
		return q;
	return (int)(flow_hash(src_ip, src_port, dst_ip, dst_port) % p->ninst);
}

/* A 16-byte address as 32 bits: the XOR of its words (as the stack's
 * ip6_fold). */
static uint32_t fold6(const uint8_t *a)
{
	uint32_t x = 0;
	for (int k = 0; k < 16; k += 4)
		x ^= (uint32_t)a[k] << 24 | (uint32_t)a[k + 1] << 16 | (uint32_t)a[k + 2] << 8 | a[k + 3];
	return x;
}

int inst_flow_owner6(struct usnet_io *io, uint8_t proto, const uint8_t src_ip[16], uint16_t src_port,
		     const uint8_t dst_ip[16], uint16_t dst_port)
{
	struct inst *in = io->ctx;
	(void)dst_ip;   /* ours: a bound-to-:: socket's is not known before connect() picks it */
	if (in->p->ninst <= 1 || proto != 6)
		return 0;
	return (int)(flow_hash(fold6(src_ip), src_port, 0, dst_port) % in->p->ninst);
}

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }
static uint16_t be16(const uint8_t *b) { return (uint16_t)(b[0] << 8 | b[1]); }

#define OWNER_ALL (-1)   /* frame_owner: a copy for every instance */

/* frame_owner for IPv6 (ip[0..l), l >= 40): a TCP segment (after any
 * Hop-by-Hop, Routing or Destination Options headers) to its flow's owner,
 * and so an ICMPv6 error about one of ours; UDP and fragments to instance
 * 0 (where its sockets and reassembly live); Neighbor Discovery to every
 * instance (each resolves its own neighbours and learns routers; queue 0's
 * answers solicitations, as for ARP, which the netif brings to every queue
 * itself); MLD queries to instance 0, which has every group (the
 * solicited-node ones, as every instance does, and those UDP sockets
 * joined, which are its alone); the rest (echo) where it arrived. */
static int frame_owner6(struct inst *in, const uint8_t *ip, uint32_t l)
{
	uint8_t nh = ip[6];
	uint32_t off = 40;
	for (int k = 0; k < 4 && (nh == 0 || nh == 43 || nh == 60); k++) {
		if (l < off + 8)
			return in->q;
		nh = ip[off];
		off += ((uint32_t)ip[off + 1] + 1) * 8;
	}
	if (l < off + 8)
		return in->q;
	const uint8_t *l4 = ip + off;
	switch (nh) {
	case 6:
		return inst_flow_owner6(&in->io, 6, ip + 8, be16(l4), ip + 24, be16(l4 + 2));
	case 17:
	case 44:
		return 0;
	case 58: {
		uint8_t t = l4[0];
		if (t >= 133 && t <= 137)
			return OWNER_ALL;
		if (t == 130)
			return 0;
		if (t < 1 || t > 4)
			return in->q;
		/* An error: the invoking packet, ours -> peer, follows. */
		const uint8_t *inner = l4 + 8;
		if (l < off + 8 + 40 + 4 || inner[0] >> 4 != 6)
			return in->q;
		if (inner[6] == 17)
			return 0;
		if (inner[6] != 6)
			return in->q;
		return inst_flow_owner6(&in->io, 6, inner + 24, be16(inner + 42), inner + 8, be16(inner + 40));
	}
	default:
		return in->q;
	}
}

/* The instance a received frame belongs to (OWNER_ALL: every one).  Only
 * the fields that decide are read, with bounds checks; the stack validates
 * the rest (a malformed frame goes to the queue's own instance and is
 * dropped there). */
static int frame_owner(struct inst *in, const uint8_t *f, uint32_t len)
{
	if (len < ETH_HLEN + 8)
		return in->q;
	uint16_t type = be16(f + 12);
	const uint8_t *ip = f + ETH_HLEN;
	uint32_t l = len - ETH_HLEN;
	if (type == 0x0806)   /* ARP: the netif brings it to every queue already */
		return in->q;
	if (type == 0x86dd && l >= 40 && ip[0] >> 4 == 6)
		return frame_owner6(in, ip, l);
	if (type != 0x0800 || l < 20 || ip[0] >> 4 != 4)
		return in->q;
	uint32_t ihl = (ip[0] & 15u) * 4;
	if (ihl < 20 || l < ihl + 8)
		return in->q;
	if (be16(ip + 6) & 0x3fff)
		return 0;     /* a fragment: reassembled on instance 0 */
	const uint8_t *l4 = ip + ihl;
	switch (ip[9]) {
	case 6:
		return inst_flow_owner(&in->io, 6, be32(ip + 12), be16(l4), be32(ip + 16), be16(l4 + 2));
	case 17:
	case 2:   /* IGMP: the groups are instance 0's, with the UDP sockets that joined them */
		return 0;
	case 1: {
		/* An error about one of our segments goes to its connection. */
		uint8_t t = l4[0];
		if (t != 3 && t != 4 && t != 5 && t != 11 && t != 12)
			return in->q;
		const uint8_t *inner = l4 + 8;
		if (l < ihl + 8 + 20 + 4 || inner[0] >> 4 != 4 || inner[9] != 6)
			return in->q;
		uint32_t iihl = (inner[0] & 15u) * 4;
		if (iihl < 20 || l < ihl + 8 + iihl + 4)
			return in->q;
		const uint8_t *th = inner + iihl;   /* ours -> peer */
		return inst_flow_owner(&in->io, 6, be32(inner + 16), be16(th + 2), be32(inner + 12), be16(th));
	}
	default:
		return in->q;
	}
}

static uint8_t *inbox_slot(struct prov *p, struct inst *to, uint32_t i)
{
	return (uint8_t *)p->sh + to->sh->inbox_off + (uint64_t)(i % STACK_PROV_INBOX_SLOTS) * p->sh->slot_bytes;
}

/* Copy a frame into the inbox of `to`; false when it is full (the frame is
 * lost, as on a full device queue: TCP retransmits it). */
static bool inbox_put(struct inst *to, const struct usnet_pkt *pkt)
{
	struct prov *p = to->p;
	if (pkt->len > p->sh->slot_bytes - 8) {
		to->sh->inbox_drop++;
		return false;
	}
	robust_lock(&to->sh->inbox_lock);
	uint32_t tail = atomic_load_explicit(&to->sh->inbox_tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&to->sh->inbox_head, memory_order_acquire);
	bool room = tail - head < STACK_PROV_INBOX_SLOTS;
	if (room) {
		uint8_t *slot = inbox_slot(p, to, tail);
		memcpy(slot, &pkt->len, 4);
		memcpy(slot + 4, &pkt->flags, 4);
		memcpy(slot + 8, pkt->data, pkt->len);
		atomic_store_explicit(&to->sh->inbox_tail, tail + 1, memory_order_release);
	} else {
		to->sh->inbox_drop++;
	}
	pthread_mutex_unlock(&to->sh->inbox_lock);
	return room;
}

void inst_drain_inbox(struct inst *in, uint64_t now)
{
	struct prov *p = in->p;
	for (;;) {
		uint32_t head = atomic_load_explicit(&in->sh->inbox_head, memory_order_relaxed);
		uint32_t tail = atomic_load_explicit(&in->sh->inbox_tail, memory_order_acquire);
		uint32_t n = tail - head;
		if (n == 0 || n > STACK_PROV_INBOX_SLOTS)
			return;   /* (a torn value from a dead writer is not trusted) */
		if (n > RX_BATCH)
			n = RX_BATCH;
		struct usnet_pkt pkts[RX_BATCH];
		for (uint32_t i = 0; i < n; i++) {
			uint8_t *slot = inbox_slot(p, in, head + i);
			memset(&pkts[i], 0, sizeof pkts[i]);
			memcpy(&pkts[i].len, slot, 4);
			memcpy(&pkts[i].flags, slot + 4, 4);
			if (pkts[i].len > p->sh->slot_bytes - 8)
				pkts[i].len = 0;
			pkts[i].data = slot + 8;
			pkts[i].queue = in->q;
		}
		usnet_stack_input(in->st, &in->io, pkts, n, now);
		in->sh->handed_in += n;
		atomic_store_explicit(&in->sh->inbox_head, head + n, memory_order_release);
	}
}

/* Frames were handed to `to`: run them now unless its lock is busy (then
 * its holder runs them when it lets go). */
static void kick(struct inst *to, uint64_t now)
{
	if (!inst_trylock(to))
		return;
	inst_drain_inbox(to, now);
	flush_queue(to);
	pthread_mutex_unlock(&to->sh->lock);
}

bool inst_drain_queue(struct inst *in, int bursts, uint64_t now)
{
	struct prov *p = in->p;
	struct usnet_pkt pkts[RX_BATCH], mine[RX_BATCH];
	for (int b = 0; b < bursts; b++) {
		int n = usnet_netif_rx_burst(p->nif, in->q, pkts, RX_BATCH);
		if (n <= 0)
			return true;
		in->sh->rx_frames += (uint64_t)n;
		if (p->ninst <= 1) {
			usnet_stack_input(in->st, &in->io, pkts, (unsigned)n, now);
		} else {
			uint64_t handed = 0;   /* instances given frames */
			unsigned k = 0;
			for (int i = 0; i < n; i++) {
				int o = frame_owner(in, pkts[i].data, pkts[i].len);
				if (o == OWNER_ALL) {
					for (uint16_t j = 0; j < p->ninst; j++)
						if (j != in->q && inbox_put(&p->in[j], &pkts[i]))
							handed |= 1ull << j;
					in->sh->handed_out += p->ninst - 1u;
					mine[k++] = pkts[i];
				} else if (o == in->q) {
					mine[k++] = pkts[i];
				} else {
					if (inbox_put(&p->in[o], &pkts[i]))
						handed |= 1ull << o;
					in->sh->handed_out++;
				}
			}
			if (k)
				usnet_stack_input(in->st, &in->io, mine, k, now);
			for (uint16_t j = 0; handed && j < p->ninst; j++)
				if (handed & (1ull << j))
					kick(&p->in[j], now);
		}
		usnet_netif_rx_release(p->nif, in->q, pkts, (unsigned)n);
		if (n < RX_BATCH)
			return true;
	}
	return false;
}
