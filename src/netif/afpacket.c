/*
 * afpacket: an AF_PACKET socket per queue with mapped rings.
 *
 *  - rx, two ring formats (option rx=):
 *    v2 (default): one slot per frame, each handed over as soon as the
 *       kernel wrote it: adds no latency.
 *    v3: TPACKET_V3 blocks.  The kernel hands over a block when it is full
 *       or when the block timeout (tov, in ms, at least 1) expires, so a
 *       lone frame waits up to tov: measured here, a ping's median round
 *       trip grows by exactly 1 ms (max ~5 ms).  Good for bulk capture, not
 *       for request/response, hence not the default.
 *    Frames are lent in place; a slot/block goes back to the kernel when
 *    its frames were released.
 *  - tx: a mapped ring of the same version; tx_burst copies the caller's
 *    frames into free ring slots (so frames may be freed or sent in any
 *    order), flush kicks the kernel with one send().  PACKET_QDISC_BYPASS.
 *  - several queues: one socket each, joined by PACKET_FANOUT with our own
 *    classic BPF program (afp_fanout_prog), so a flow's frames always arrive
 *    on the same queue and usnet_netif_flow_queue() can say which.
 *  - wait fd: the queue's socket.
 *
 * The kernel keeps receiving on the interface too (AF_PACKET taps, it does
 * not steal): give usnet an IP address the kernel does not own.
 *
 * Processes: the rings are mapped from each socket (MAP_SHARED); what the
 * users of a queue update besides (the rx walk, lent slots and blocks, the
 * tx head, the tx buffer pool) lives in one memfd region with offsets only
 * (struct afp_shared, struct afp_queue_shared), and the netif object is
 * each process's own.  A forked child inherits all of it; another process
 * attaches with the region and each queue's socket, and maps the rings
 * itself (usnet/netif_share.h).  The owner's close also makes the sockets
 * deaf (a drop-all filter, promiscuous mode dropped), so that attached
 * processes still holding them no longer take frames from the interface.
 *
 * Options: rx=v2|v3, tov=MS (v3 block timeout, 1..100, default 1),
 * blocks=N (v3 rx blocks per queue, default 16 of 256 KiB), rxframes=N (v2
 * rx slots, default 1024), txframes=N (default 512).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netif_internal.h"

#define AFP_BLOCK_SIZE   (256u << 10)
#define AFP_MAX_QUEUES   64
/* Where the kernel expects tx data in a slot: after the aligned header. */
#define AFP_TX_OFF_V2    TPACKET_ALIGN(sizeof(struct tpacket2_hdr))
#define AFP_TX_OFF_V3    TPACKET_ALIGN(sizeof(struct tpacket3_hdr))

#define AFP_SHARED_MAGIC 0x50464155u /* "UAFP" */
#define AFP_SHARE_MAGIC  0x48534641u /* "AFSH": the share blob */
#define AFP_SHARE_VERSION 1

struct afp_block_state {
	uint32_t lent;   /* frames of this block not yet released */
	bool walked;     /* the walk left it: it goes back once lent == 0 */
};

/* One queue's state, updated by whichever process holds the queue: in the
 * region, offsets only. */
struct afp_queue_shared {
	/* geometry, set at open (an attached process checks and copies it) */
	uint32_t version;
	uint32_t rx_blocks, rx_block_size, rx_slots, rx_slot_size;
	uint32_t tx_frames, tx_frame_size, tx_off, tx_nbufs;
	uint64_t map_len;
	uint64_t blk_off, slot_lent_off, tx_mem_off, tx_free_off; /* from the region's start */
	/* rx walk */
	uint32_t rx_cur;                  /* block (v3) or slot (v2) being walked */
	uint32_t rx_left;                 /* v3: frames left in the block (0: not started) */
	uint64_t rx_next;                 /* v3: next frame, from the rx ring's start */
	/* tx ring */
	uint32_t tx_head;                 /* next slot to fill */
	uint32_t tx_pending;              /* filled slots not yet kicked */
	/* tx buffers lent by tx_alloc: tx_free[0..tx_nfree-1] */
	uint32_t tx_nfree;
};

struct afp_shared {
	uint32_t magic;
	uint32_t nq;
	uint64_t arp_off;                 /* NETIF_SHM_NONE with one queue */
	uint64_t q_off[AFP_MAX_QUEUES];
};

/* The share blob; fds[0] the region, fds[1 + i] queue i's socket, then
 * in host-address mode the port bitmap. */
struct afp_share_blob {
	uint32_t magic, version;
	struct usnet_netif_info info;
	uint64_t shared_off;
	uint32_t steer_ports;
};

/* This process's view of a queue: read-only once opened or attached. */
struct afp_queue {
	int fd;
	int version;                      /* TPACKET_V2 or TPACKET_V3 */
	uint8_t *map;
	size_t map_len;
	uint8_t *rx_ring;
	uint32_t rx_blocks, rx_block_size;
	uint32_t rx_slots, rx_slot_size;  /* v2 */
	uint8_t *tx_ring;
	uint32_t tx_frames, tx_frame_size, tx_off;
	uint32_t tx_nbufs;
	struct afp_queue_shared *sh;      /* in the region, as are: */
	struct afp_block_state *blk;
	uint8_t *slot_lent;
	uint8_t *tx_mem;
	uint32_t *tx_free;
};

struct afp_netif {
	struct usnet_netif base;
	struct afp_queue q[AFP_MAX_QUEUES];
	uint16_t nq;
	pid_t owner;                 /* the process that opened the sockets (0: attached) */
	bool promisc;                /* the owner asked for promiscuous mode on q[0] */
	struct netif_shm_region shm;
	struct afp_shared *sh;
	struct netif_arp_share *arp; /* fanout hands ARP to one queue: share it */
	struct netif_host_steer hs;  /* host-address mode (cfg.steer_ports) */
};

static struct tpacket_block_desc *afp_block(struct afp_queue *q, uint32_t b)
{
	return (struct tpacket_block_desc *)(q->rx_ring + (size_t)b * q->rx_block_size);
}

static void afp_block_return(struct afp_queue *q, uint32_t b)
{
	struct tpacket_block_desc *bd = afp_block(q, b);
	q->blk[b].walked = false;
	atomic_thread_fence(memory_order_release);
	bd->hdr.bh1.block_status = TP_STATUS_KERNEL;
}

/* Where an IPv4 TCP/UDP checksum lives, for frames the kernel left partial. */
static bool afp_l4_csum_pos(const uint8_t *f, uint32_t len, uint16_t *start, uint16_t *off)
{
	if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || (f[14] >> 4) != 4)
		return false;
	uint16_t ihl = (uint16_t)((f[14] & 15) * 4);
	if (f[23] == 6)
		*off = 16;
	else if (f[23] == 17)
		*off = 6;
	else
		return false;
	*start = (uint16_t)(14 + ihl);
	return *start + *off + 2u <= len;
}

static void afp_rx_flags(struct usnet_pkt *p, uint32_t status)
{
	p->flags = 0;
	p->csum_start = p->csum_offset = 0;
	if (status & TP_STATUS_CSUMNOTREADY) {
		if (afp_l4_csum_pos(p->data, p->len, &p->csum_start, &p->csum_offset))
			p->flags = USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL;
	} else if (status & TP_STATUS_CSUM_VALID) {
		p->flags = USNET_PKT_RX_CSUM_OK;
	}
}

static int afp_rx_burst_v2(struct afp_queue *q, uint16_t qi, struct usnet_pkt *pkts, unsigned max)
{
	unsigned n = 0;
	while (n < max) {
		uint32_t slot = q->sh->rx_cur;
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)(q->rx_ring + (size_t)slot * q->rx_slot_size);
		uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
		if (q->slot_lent[slot] || !(st & TP_STATUS_USER))
			break;
		q->sh->rx_cur = (slot + 1) % q->rx_slots;
		const struct sockaddr_ll *sll = (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof *h));
		if (sll->sll_pkttype == PACKET_OUTGOING || h->tp_snaplen < h->tp_len) {
			__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			continue;
		}
		struct usnet_pkt *p = &pkts[n++];
		p->data = (uint8_t *)h + h->tp_mac;
		p->len = h->tp_snaplen;
		p->queue = qi;
		p->id = slot;
		afp_rx_flags(p, st);
		q->slot_lent[slot] = 1;
	}
	return (int)n;
}

static int afp_rx_burst_ring(struct afp_netif *a, uint16_t qi, struct usnet_pkt *pkts, unsigned max);

static int afp_rx_burst(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned max)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (qi >= a->nq)
		return -EINVAL;
	if (!a->arp)
		return afp_rx_burst_ring(a, qi, pkts, max);
	unsigned k = netif_arp_share_take(a->arp, qi, pkts, max);
	int n = afp_rx_burst_ring(a, qi, pkts + k, max - k);
	if (n > 0)
		netif_arp_share_publish(a->arp, qi, pkts + k, (unsigned)n);
	return (int)k + (n > 0 ? n : 0);
}

static int afp_rx_burst_ring(struct afp_netif *a, uint16_t qi, struct usnet_pkt *pkts, unsigned max)
{
	struct afp_queue *q = &a->q[qi];
	if (q->version == TPACKET_V2)
		return afp_rx_burst_v2(q, qi, pkts, max);
	unsigned n = 0;
	while (n < max) {
		if (q->sh->rx_left == 0) {
			struct tpacket_block_desc *bd = afp_block(q, q->sh->rx_cur);
			if (q->blk[q->sh->rx_cur].walked || q->blk[q->sh->rx_cur].lent ||
			    !(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				break;
			q->sh->rx_left = bd->hdr.bh1.num_pkts;
			q->sh->rx_next = (uint64_t)((uint8_t *)bd - q->rx_ring) + bd->hdr.bh1.offset_to_first_pkt;
			if (q->sh->rx_left == 0) {
				afp_block_return(q, q->sh->rx_cur);
				q->sh->rx_cur = (q->sh->rx_cur + 1) % q->rx_blocks;
				continue;
			}
		}
		struct tpacket3_hdr *h = (struct tpacket3_hdr *)(q->rx_ring + q->sh->rx_next);
		uint8_t *data = (uint8_t *)h + h->tp_mac;
		const struct sockaddr_ll *sll = (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof *h));
		bool skip = sll->sll_pkttype == PACKET_OUTGOING || h->tp_snaplen < h->tp_len;
		if (!skip) {
			struct usnet_pkt *p = &pkts[n++];
			p->data = data;
			p->len = h->tp_snaplen;
			p->queue = qi;
			p->id = q->sh->rx_cur;
			afp_rx_flags(p, h->tp_status);
			q->blk[q->sh->rx_cur].lent++;
		}
		q->sh->rx_next += h->tp_next_offset;
		if (--q->sh->rx_left == 0) {
			/* Walked to its end: give it back now or when its last
			 * lent frame comes back. */
			if (q->blk[q->sh->rx_cur].lent == 0)
				afp_block_return(q, q->sh->rx_cur);
			else
				q->blk[q->sh->rx_cur].walked = true;
			q->sh->rx_cur = (q->sh->rx_cur + 1) % q->rx_blocks;
		}
	}
	return (int)n;
}

static void afp_rx_release(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (qi >= a->nq)
		return;
	struct afp_queue *q = &a->q[qi];
	if (a->arp)
		for (unsigned i = 0; i < n; i++)
			if (pkts[i].id & NETIF_ARP_SHARE_ID)
				netif_arp_share_release(a->arp, qi, &pkts[i]);
	if (q->version == TPACKET_V2) {
		for (unsigned i = 0; i < n; i++) {
			uint64_t slot = pkts[i].id;
			if (slot >= q->rx_slots || !q->slot_lent[slot])
				continue;
			q->slot_lent[slot] = 0;
			struct tpacket2_hdr *h = (struct tpacket2_hdr *)(q->rx_ring + slot * q->rx_slot_size);
			__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		}
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t b = pkts[i].id;
		if (b >= q->rx_blocks || q->blk[b].lent == 0)
			continue;
		if (--q->blk[b].lent == 0 && q->blk[b].walked)
			afp_block_return(q, (uint32_t)b);
	}
}

static int afp_tx_alloc(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (qi >= a->nq)
		return -EINVAL;
	struct afp_queue *q = &a->q[qi];
	unsigned k = 0;
	for (; k < n && q->sh->tx_nfree; k++) {
		uint32_t b = q->tx_free[--q->sh->tx_nfree];
		pkts[k] = (struct usnet_pkt){ .data = q->tx_mem + (size_t)b * a->base.info.frame_size,
					      .queue = qi, .id = b };
	}
	return (int)k;
}

static void afp_tx_put(struct afp_queue *q, const struct usnet_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pkts[i].id < q->tx_nbufs && q->sh->tx_nfree < q->tx_nbufs)
			q->tx_free[q->sh->tx_nfree++] = (uint32_t)pkts[i].id;
}

static int afp_kick(struct afp_queue *q)
{
	if (!q->sh->tx_pending)
		return 0;
	q->sh->tx_pending = 0;
	if (send(q->fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS)
		return -errno;
	return 0;
}

static int afp_tx_burst(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (qi >= a->nq)
		return -EINVAL;
	struct afp_queue *q = &a->q[qi];
	uint32_t room = q->tx_frame_size - q->tx_off;
	unsigned i;
	for (i = 0; i < n; i++) {
		struct usnet_pkt *p = &pkts[i];
		if (p->len == 0 || p->len > room) {
			if (i == 0)
				return -EMSGSIZE;
			break;
		}
		uint8_t *slot = q->tx_ring + (size_t)q->sh->tx_head * q->tx_frame_size;
		struct tpacket2_hdr *h2 = (struct tpacket2_hdr *)slot;
		struct tpacket3_hdr *h3 = (struct tpacket3_hdr *)slot;
		uint32_t *status = q->version == TPACKET_V2 ? &h2->tp_status : &h3->tp_status;
		if (__atomic_load_n(status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) {
			/* Ring full: let the kernel drain what is there. */
			afp_kick(q);
			break;
		}
		memcpy(slot + q->tx_off, p->data, p->len);
		if (p->flags & USNET_PKT_TX_CSUM_PARTIAL)
			netif_csum_fill(slot + q->tx_off, p->len, p->csum_start, p->csum_offset);
		if (q->version == TPACKET_V2) {
			h2->tp_len = p->len;
			h2->tp_snaplen = p->len;
		} else {
			h3->tp_len = p->len;
			h3->tp_snaplen = p->len;
			h3->tp_next_offset = 0;
		}
		__atomic_store_n(status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
		q->sh->tx_head = (q->sh->tx_head + 1) % q->tx_frames;
		q->sh->tx_pending = 1;
	}
	afp_tx_put(q, pkts, i);
	/* Kick at once when the batch filled a good part of the ring. */
	if (i >= 64)
		afp_kick(q);
	return (int)i;
}

static void afp_tx_free(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (qi < a->nq)
		afp_tx_put(&a->q[qi], pkts, n);
}

static int afp_flush(struct usnet_netif *nif, uint16_t qi)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	return qi < a->nq ? afp_kick(&a->q[qi]) : -EINVAL;
}

static int afp_wait_fd(struct usnet_netif *nif, uint16_t qi)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	return qi < a->nq ? a->q[qi].fd : -1;
}

/* The owner lets the interface go: sockets that attached processes may
 * still hold take no more frames (a fanout member cannot be unbound). */
static void afp_deafen(struct afp_netif *a)
{
	static const struct sock_filter drop_all[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog fp = { .len = 1, .filter = (struct sock_filter *)drop_all };
	if (a->promisc) {
		struct packet_mreq mr = { .mr_ifindex = if_nametoindex(a->base.info.ifname),
					  .mr_type = PACKET_MR_PROMISC };
		(void)setsockopt(a->q[0].fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof mr);
	}
	for (uint16_t i = 0; i < AFP_MAX_QUEUES; i++)
		if (a->q[i].fd >= 0)
			(void)setsockopt(a->q[i].fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp);
}

static void afp_close(struct usnet_netif *nif)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (a->owner == getpid())
		afp_deafen(a);
	for (uint16_t i = 0; i < AFP_MAX_QUEUES; i++) {
		struct afp_queue *q = &a->q[i];
		if (q->map && q->map != MAP_FAILED)
			munmap(q->map, q->map_len);
		if (q->fd >= 0)
			close(q->fd);
	}
	netif_arp_share_free(a->arp);
#ifdef USNET_NETIF_HAVE_AFXDP
	netif_host_steer_close(&a->hs, a->owner == getpid());
#endif
	netif_shm_region_release(&a->shm);
	free(a);
}

/* A netif with nothing yet: every fd -1. */
static struct afp_netif *afp_alloc(void)
{
	struct afp_netif *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	for (uint16_t i = 0; i < AFP_MAX_QUEUES; i++)
		a->q[i].fd = -1;
	a->shm.fd = -1;
	a->hs.ports_fd = -1;
	return a;
}

/* Copy a queue's geometry from its shared state and point at this
 * process's mappings (the region's and the rings'). */
static void afp_queue_bind(struct afp_netif *a, struct afp_queue *q, struct afp_queue_shared *qs)
{
	q->sh = qs;
	q->version = (int)qs->version;
	q->rx_blocks = qs->rx_blocks;
	q->rx_block_size = qs->rx_block_size;
	q->rx_slots = qs->rx_slots;
	q->rx_slot_size = qs->rx_slot_size;
	q->tx_frames = qs->tx_frames;
	q->tx_frame_size = qs->tx_frame_size;
	q->tx_off = qs->tx_off;
	q->tx_nbufs = qs->tx_nbufs;
	q->map_len = qs->map_len;
	q->blk = (struct afp_block_state *)(a->shm.base + qs->blk_off);
	q->slot_lent = a->shm.base + qs->slot_lent_off;
	q->tx_mem = a->shm.base + qs->tx_mem_off;
	q->tx_free = (uint32_t *)(a->shm.base + qs->tx_free_off);
}

/* Map a queue's rings from its socket. */
static int afp_queue_map(struct afp_queue *q, char *err, size_t errlen)
{
	q->map = mmap(NULL, q->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, q->fd, 0);
	if (q->map == MAP_FAILED) {
		q->map = NULL;
		return netif_err(err, errlen, errno, "afpacket: cannot map the rings: %s", strerror(errno));
	}
	q->rx_ring = q->map;
	q->tx_ring = q->map + (size_t)q->rx_block_size * q->rx_blocks;
	return 0;
}

static const struct usnet_netif_ops afp_ops = {
	.rx_burst = afp_rx_burst,
	.rx_release = afp_rx_release,
	.tx_alloc = afp_tx_alloc,
	.tx_burst = afp_tx_burst,
	.tx_free = afp_tx_free,
	.flush = afp_flush,
	.wait_fd = afp_wait_fd,
	.after_fork = NULL, /* object, mappings and sockets are inherited as they are */
	.close = afp_close,
};

static const char *const afp_known_opts[] = { "rx", "tov", "blocks", "rxframes", "txframes", NULL };

/* Fanout: queue = h % n with h from the IPv4 addresses and TCP/UDP ports,
 * symmetric in source and destination (see netif_afpacket_flow_queue()).
 * Offsets are relative to the network header (SKF_NET_OFF), valid whether
 * the frame is seen on its way in or out. */
#define NET(k) ((uint32_t)(SKF_NET_OFF + (k)))
static const struct sock_filter afp_fanout_prog[] = {
	/*  0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL)),
	/*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 31),          /* not IPv4: queue 0 */
	/*  2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(12)),                   /* source address */
	/*  3 */ BPF_STMT(BPF_ST, 0),
	/*  4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NET(16)),                   /* destination */
	/*  5 */ BPF_STMT(BPF_LDX | BPF_MEM, 0),
	/*  6 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	/*  7 */ BPF_STMT(BPF_ST, 0),
	/*  8 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, NET(9)),                    /* protocol */
	/*  9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 1, 0),
	/* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 11),       /* no ports: fold */
	/* 11 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, NET(0)),                   /* X = header length */
	/* 12 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, NET(0)),                    /* ports word */
	/* 13 */ BPF_STMT(BPF_ST, 1),
	/* 14 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
	/* 15 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
	/* 16 */ BPF_STMT(BPF_LD | BPF_MEM, 1),
	/* 17 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xffff),
	/* 18 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                        /* sport ^ dport */
	/* 19 */ BPF_STMT(BPF_LDX | BPF_MEM, 0),
	/* 20 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	/* 21 */ BPF_STMT(BPF_ST, 0),
	/* 22 */ BPF_STMT(BPF_LD | BPF_MEM, 0),                                 /* h ^= h >> 16 */
	/* 23 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
	/* 24 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
	/* 25 */ BPF_STMT(BPF_LD | BPF_MEM, 0),
	/* 26 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	/* 27 */ BPF_STMT(BPF_ST, 0),                                           /* h ^= h >> 8 */
	/* 28 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
	/* 29 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
	/* 30 */ BPF_STMT(BPF_LD | BPF_MEM, 0),
	/* 31 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	/* 32 */ BPF_STMT(BPF_RET | BPF_A, 0),                                  /* kernel takes it % n */
	/* 33 */ BPF_STMT(BPF_RET | BPF_K, 0),
};
#undef NET

int netif_afpacket_flow_queue(struct usnet_netif *nif, uint8_t proto, uint32_t src_ip,
			      uint16_t src_port, uint32_t dst_ip, uint16_t dst_port)
{
	if (nif->ops != &afp_ops)
		return -1;   /* a wrapper that only copied our info */
	struct afp_netif *a = (struct afp_netif *)nif;
	if (a->nq <= 1)
		return 0;
	uint32_t h = src_ip ^ dst_ip;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
		h ^= (uint32_t)(src_port ^ dst_port);
	h ^= h >> 16;
	h ^= h >> 8;
	return (int)(h % a->nq);
}

static int afp_open_queue(struct afp_netif *a, struct afp_queue *q, int ifindex, const char *ifname,
			  uint32_t tov, uint32_t blocks, uint32_t rxframes, uint32_t txframes, int fanout_id,
			  char *err, size_t errlen)
{
	/* Protocol 0 until bound: receive nothing while the rings are built. */
	q->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (q->fd < 0) {
		int e = errno;
		if (e == EPERM || e == EACCES)
			return netif_err(err, errlen, e, "afpacket: need root or CAP_NET_RAW to open a packet socket");
		return netif_err(err, errlen, e, "afpacket: socket: %s", strerror(e));
	}
	int v = q->version;
	if (setsockopt(q->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0)
		return netif_err(err, errlen, errno, "afpacket: this kernel lacks TPACKET_V%d: %s",
				 v + 1, strerror(errno));
	struct tpacket_req3 rx = { 0 };
	if (v == TPACKET_V3) {
		rx.tp_block_size = AFP_BLOCK_SIZE;
		rx.tp_block_nr = blocks;
		rx.tp_frame_size = 2048;
		rx.tp_frame_nr = (AFP_BLOCK_SIZE / 2048) * blocks;
		rx.tp_retire_blk_tov = tov;
	} else {
		/* Slots as large as the tx ones (they fit the MTU). */
		uint32_t per_block = AFP_BLOCK_SIZE / q->tx_frame_size;
		rx.tp_block_size = AFP_BLOCK_SIZE;
		rx.tp_block_nr = (rxframes + per_block - 1) / per_block;
		rx.tp_frame_size = q->tx_frame_size;
		rx.tp_frame_nr = rx.tp_block_nr * per_block;
	}
	if (setsockopt(q->fd, SOL_PACKET, PACKET_RX_RING, &rx, v == TPACKET_V3 ? sizeof rx : sizeof(struct tpacket_req)) < 0)
		return netif_err(err, errlen, errno, "afpacket: PACKET_RX_RING: %s", strerror(errno));
	struct tpacket_req3 tx = { 0 };
	uint32_t per_block = AFP_BLOCK_SIZE / q->tx_frame_size;
	tx.tp_block_size = AFP_BLOCK_SIZE;
	tx.tp_block_nr = (txframes + per_block - 1) / per_block;
	tx.tp_frame_size = q->tx_frame_size;
	tx.tp_frame_nr = tx.tp_block_nr * per_block;
	if (setsockopt(q->fd, SOL_PACKET, PACKET_TX_RING, &tx, v == TPACKET_V3 ? sizeof tx : sizeof(struct tpacket_req)) < 0)
		return netif_err(err, errlen, errno, "afpacket: PACKET_TX_RING: %s", strerror(errno));
	/* The queue's state and buffers, in the region. */
	size_t qs_off = netif_shm_region_alloc(&a->shm, sizeof(struct afp_queue_shared));
	size_t blk_off = netif_shm_region_alloc(&a->shm, rx.tp_block_nr * sizeof(struct afp_block_state));
	size_t lent_off = netif_shm_region_alloc(&a->shm, rx.tp_frame_nr);
	size_t mem_off = netif_shm_region_alloc(&a->shm, (size_t)tx.tp_frame_nr * a->base.info.frame_size);
	size_t free_off = netif_shm_region_alloc(&a->shm, sizeof(uint32_t) * tx.tp_frame_nr);
	if (qs_off == NETIF_SHM_NONE || blk_off == NETIF_SHM_NONE || lent_off == NETIF_SHM_NONE ||
	    mem_off == NETIF_SHM_NONE || free_off == NETIF_SHM_NONE)
		return netif_err(err, errlen, ENOMEM, "afpacket: out of memory");
	struct afp_queue_shared *qs = netif_shm_at(&a->shm, qs_off);
	*qs = (struct afp_queue_shared){
		.version = (uint32_t)v, .rx_blocks = rx.tp_block_nr, .rx_block_size = AFP_BLOCK_SIZE,
		.rx_slots = rx.tp_frame_nr, .rx_slot_size = rx.tp_frame_size,
		.tx_frames = tx.tp_frame_nr, .tx_frame_size = q->tx_frame_size,
		.tx_off = v == TPACKET_V3 ? AFP_TX_OFF_V3 : AFP_TX_OFF_V2, .tx_nbufs = tx.tp_frame_nr,
		.map_len = (size_t)rx.tp_block_size * rx.tp_block_nr + (size_t)tx.tp_block_size * tx.tp_block_nr,
		.blk_off = blk_off, .slot_lent_off = lent_off, .tx_mem_off = mem_off, .tx_free_off = free_off,
	};
	a->sh->q_off[q - a->q] = qs_off;
	afp_queue_bind(a, q, qs);
	int r = afp_queue_map(q, err, errlen);
	if (r)
		return r;
	for (uint32_t b = 0; b < q->tx_nbufs; b++)
		q->tx_free[b] = q->tx_nbufs - 1 - b;
	qs->tx_nfree = q->tx_nbufs;
	int one = 1;
	(void)setsockopt(q->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
	/* A frame the kernel refuses (e.g. larger than the MTU) is then dropped
	 * and its slot given back, instead of stopping the tx ring for good. */
	(void)setsockopt(q->fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one);
#ifdef PACKET_IGNORE_OUTGOING
	(void)setsockopt(q->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
#endif
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	if (bind(q->fd, (struct sockaddr *)&sll, sizeof sll) < 0)
		return netif_err(err, errlen, errno, "afpacket: bind to %s: %s", ifname, strerror(errno));
	if (fanout_id >= 0) {
		uint32_t type = PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_DEFRAG;
		int arg = (int)((uint32_t)fanout_id | type << 16);
		if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0)
			return netif_err(err, errlen, errno, "afpacket: PACKET_FANOUT on %s: %s", ifname, strerror(errno));
		/* The program belongs to the group: set it once, on the first. */
		if (q == &a->q[0]) {
			struct sock_fprog fp = { .len = sizeof afp_fanout_prog / sizeof afp_fanout_prog[0],
						 .filter = (struct sock_filter *)afp_fanout_prog };
			if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT_DATA, &fp, sizeof fp) < 0)
				return netif_err(err, errlen, errno, "afpacket: fanout program on %s: %s",
						 ifname, strerror(errno));
		}
	}
	return 0;
}

/* Host-address mode: each socket keeps only the stack's flows, to the
 * shared IPv4 address and to the shared IPv6 ones (cfg.ipv6, the
 * kernel's), and the kernel's IP layer does not see them (host_steer.c). */
static int afp_host_mode(struct afp_netif *a, const struct usnet_netif_config *cfg, int ifindex,
			 char *err, size_t errlen)
{
#ifdef USNET_NETIF_HAVE_AFXDP
	if (!cfg->ipv4)
		return netif_err(err, errlen, EINVAL, "afpacket: steering by port needs the shared address (cfg.ipv4)");
	uint8_t ip6[USNET_NETIF_IPV6_MAX + 1][16];
	unsigned nip6 = netif_ipv6_addrs(cfg, a->base.info.mac, ip6);
	a->owner = getpid();   /* the tc program is ours to detach, even on failure */
	int r = netif_host_steer_open(&a->hs, cfg->iface, ifindex, htonl(cfg->ipv4), ip6, nip6, err, errlen);
	for (uint16_t i = 0; !r && i < a->nq; i++)
		r = netif_host_steer_filter(&a->hs, a->q[i].fd, err, errlen);
	return r;
#else
	(void)a;
	(void)cfg;
	(void)ifindex;
	return netif_err(err, errlen, EOPNOTSUPP, "afpacket: host-address mode needs libbpf (this build has none)");
#endif
}

int netif_afpacket_steer_port(struct usnet_netif *nif, uint8_t proto, uint16_t port, int on)
{
	if (nif->ops != &afp_ops)
		return -EOPNOTSUPP;
	return netif_ports_set(((struct afp_netif *)nif)->hs.ports, proto, port, on);
}

/* A group's MAC joins the device's filter through the first queue's packet
 * socket (PACKET_MR_MULTICAST: the kernel counts each add, and the provider
 * adds and drops a group once each); every packet socket of the interface
 * then sees the group's frames.  Not in host-address mode, whose socket
 * filter keeps only the stack's ports. */
static int afp_steer_mac(struct usnet_netif *nif, const uint8_t mac[6], int on)
{
	if (nif->ops != &afp_ops)
		return -EOPNOTSUPP;
	struct afp_netif *a = (struct afp_netif *)nif;
	if (a->hs.ports)
		return -EOPNOTSUPP;
	struct packet_mreq mr = { .mr_ifindex = (int)if_nametoindex(a->base.info.ifname), .mr_type = PACKET_MR_MULTICAST,
				  .mr_alen = 6 };
	memcpy(mr.mr_address, mac, 6);
	if (!mr.mr_ifindex)
		return -errno;
	if (setsockopt(a->q[0].fd, SOL_PACKET, on ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mr, sizeof mr))
		return -errno;
	return 0;
}

/* An IPv4 group's MAC: 01:00:5e and the group's low 23 bits (RFC 1112 6.4). */
int netif_afpacket_steer_group(struct usnet_netif *nif, uint32_t group, int on)
{
	const uint8_t mac[6] = { 0x01, 0x00, 0x5e, (uint8_t)((group >> 16) & 0x7f), (uint8_t)(group >> 8),
				 (uint8_t)group };
	return afp_steer_mac(nif, mac, on);
}

/* An IPv6 group's MAC: 33:33 and the group's low 32 bits (RFC 2464 7). */
int netif_afpacket_steer_group6(struct usnet_netif *nif, const uint8_t group[16], int on)
{
	const uint8_t mac[6] = { 0x33, 0x33, group[12], group[13], group[14], group[15] };
	return afp_steer_mac(nif, mac, on);
}

/* usnet's IPv6 addresses (cfg.ipv6): their solicited-node groups' MACs
 * (33:33:ff + the address's low 24 bits), where Neighbor Solicitations for
 * them go, and all nodes' (33:33:00:00:00:01, where DAD answers go) join
 * the device's filter through the first queue's packet socket, as a NIC
 * with a multicast filter needs; they leave with the socket. */
static int afp_ipv6_groups(struct afp_netif *a, const struct usnet_netif_config *cfg, int ifindex, char *err,
			   size_t errlen)
{
	uint8_t ip6[USNET_NETIF_IPV6_MAX + 1][16];
	unsigned n = netif_ipv6_addrs(cfg, a->base.info.mac, ip6);
	for (unsigned i = 0; n && i <= n; i++) {
		struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6,
					  .mr_address = { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 } };
		if (i < n) {
			mr.mr_address[2] = 0xff;
			memcpy(&mr.mr_address[3], &ip6[i][13], 3);
		}
		if (setsockopt(a->q[0].fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr))
			return netif_err(err, errlen, errno,
					 "afpacket: cannot add %02x:%02x:%02x:%02x:%02x:%02x to %s's multicast filter: %s",
					 mr.mr_address[0], mr.mr_address[1], mr.mr_address[2], mr.mr_address[3],
					 mr.mr_address[4], mr.mr_address[5], cfg->iface, strerror(errno));
	}
	return 0;
}

int netif_afpacket_port_steered(struct usnet_netif *nif, uint8_t proto, uint16_t port)
{
	if (nif->ops != &afp_ops)
		return -EOPNOTSUPP;
	return netif_ports_get(((struct afp_netif *)nif)->hs.ports, proto, port);
}

int netif_afpacket_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
			char *err, size_t errlen)
{
	int r = netif_opt_check(cfg->options, afp_known_opts, "afpacket", err, errlen);
	if (r)
		return r;
	uint64_t tov = 1, blocks = 16, rxframes = 1024, txframes = 512;
	char rxv[8];
	if (!netif_opt_get(cfg->options, "rx", rxv, sizeof rxv))
		strcpy(rxv, "v2");
	if (strcmp(rxv, "v2") && strcmp(rxv, "v3"))
		return netif_err(err, errlen, EINVAL, "afpacket: rx=%s: want rx=v2 or rx=v3", rxv);
	int version = rxv[1] == '3' ? TPACKET_V3 : TPACKET_V2;
	if ((r = netif_opt_uint(cfg->options, "tov", 1, 100, &tov, err, errlen)) ||
	    (r = netif_opt_uint(cfg->options, "rxframes", 16, 65536, &rxframes, err, errlen)) ||
	    (r = netif_opt_uint(cfg->options, "blocks", 2, 4096, &blocks, err, errlen)) ||
	    (r = netif_opt_uint(cfg->options, "txframes", 16, 65536, &txframes, err, errlen)))
		return r;
	uint16_t nq = cfg->queues ? cfg->queues : 1;
	if (nq > AFP_MAX_QUEUES)
		return netif_err(err, errlen, EINVAL, "afpacket: at most %d queues", AFP_MAX_QUEUES);
	int ifindex;
	uint32_t mtu;
	uint8_t mac[6];
	if ((r = netif_iface_lookup("afpacket", cfg->iface, &ifindex, &mtu, mac, err, errlen)))
		return r;
	uint32_t tx_off = version == TPACKET_V3 ? AFP_TX_OFF_V3 : AFP_TX_OFF_V2;
	/* rx slots also hold the kernel's header and sockaddr_ll. */
	uint32_t rx_hdr = (uint32_t)(TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) + TPACKET_ALIGN(sizeof(struct sockaddr_ll)) + 16);
	uint32_t tx_frame = 2048;
	while (tx_frame - rx_hdr < mtu + 14 + 4)
		tx_frame *= 2;
	if (tx_frame > AFP_BLOCK_SIZE)
		return netif_err(err, errlen, EMSGSIZE,
				 "afpacket: MTU %u of %s is larger than a frame can hold (at most %u): lower it with `ip link set %s mtu 9000`",
				 mtu, cfg->iface, (unsigned)(AFP_BLOCK_SIZE - rx_hdr - 18), cfg->iface);

	struct afp_netif *a = afp_alloc();
	if (!a)
		return netif_err(err, errlen, ENOMEM, "afpacket: out of memory");
	a->base.ops = &afp_ops;
	a->nq = nq;
	/* Our bookkeeping, shared with forked children and attached processes
	 * (USNET_NETIF_CAP_SHARED); the rings are MAP_SHARED with the sockets.
	 * Sized for the most each queue may need (the region is sparse). */
	uint32_t per_block = AFP_BLOCK_SIZE / tx_frame;
	size_t per_queue = 6 * 64 + sizeof(struct afp_queue_shared) +
			   (blocks + rxframes / per_block + 1) * sizeof(struct afp_block_state) +
			   (AFP_BLOCK_SIZE / 2048) * blocks + rxframes + per_block +
			   (txframes + per_block) * ((size_t)(tx_frame - tx_off) + sizeof(uint32_t));
	size_t size = 4096 + sizeof(struct afp_shared) + netif_arp_share_size(nq) + nq * per_queue;
	if ((r = netif_shm_region_create(&a->shm, "usnet-afpacket", size, err, errlen))) {
		afp_close(&a->base);
		return r;
	}
	size_t sh_off = netif_shm_region_alloc(&a->shm, sizeof(struct afp_shared));
	if (sh_off == NETIF_SHM_NONE) {
		afp_close(&a->base);
		return netif_err(err, errlen, ENOMEM, "afpacket: out of memory");
	}
	a->sh = netif_shm_at(&a->shm, sh_off);
	*a->sh = (struct afp_shared){ .magic = AFP_SHARED_MAGIC, .nq = nq, .arp_off = NETIF_SHM_NONE };
	if (nq > 1) {
		a->sh->arp_off = netif_arp_share_create(&a->shm, nq);
		a->arp = netif_arp_share_open(&a->shm, a->sh->arp_off);
		if (!a->arp) {
			afp_close(&a->base);
			return netif_err(err, errlen, ENOMEM, "afpacket: out of memory");
		}
	}
	struct usnet_netif_info *in = &a->base.info;
	netif_set_name(in->backend, "afpacket");
	netif_set_name(in->ifname, cfg->iface);
	in->nqueues = nq;
	in->mtu = mtu;
	in->frame_size = tx_frame - tx_off;
	in->caps = USNET_NETIF_CAP_RX_CSUM | USNET_NETIF_CAP_SHARED | (nq > 1 ? USNET_NETIF_CAP_MULTIQ : 0);
	memcpy(in->mac, cfg->has_mac ? cfg->mac : mac, 6);
	int fanout_id = nq > 1 ? (int)((getpid() ^ (ifindex << 8)) & 0xffff) : -1;
	for (uint16_t i = 0; i < nq; i++) {
		a->q[i].tx_frame_size = tx_frame;
		a->q[i].version = version;
		r = afp_open_queue(a, &a->q[i], ifindex, cfg->iface, (uint32_t)tov, (uint32_t)blocks,
				   (uint32_t)rxframes, (uint32_t)txframes, fanout_id, err, errlen);
		if (r) {
			afp_close(&a->base);
			return r;
		}
	}
	if (cfg->steer_ports && (r = afp_host_mode(a, cfg, ifindex, err, errlen))) {
		afp_close(&a->base);
		return r;
	}
	/* In host-address mode the addresses are the kernel's: it joined their
	 * groups and answers their ND, which the socket filter keeps from the
	 * stack anyway. */
	if ((cfg->ipv6_link_local || cfg->ipv6_count) && !cfg->steer_ports &&
	    (r = afp_ipv6_groups(a, cfg, ifindex, err, errlen))) {
		afp_close(&a->base);
		return r;
	}
	if (cfg->has_mac && memcmp(cfg->mac, mac, 6)) {
		/* Frames for a MAC that is not the interface's need promiscuous
		 * mode to get past the device's filter. */
		struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC };
		a->promisc = setsockopt(a->q[0].fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) == 0;
	}
	a->owner = getpid();
	*out = &a->base;
	return 0;
}

/* ---- sharing with processes that did not fork (usnet/netif_share.h) ---- */

int netif_afpacket_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
{
	struct afp_netif *a = (struct afp_netif *)nif;
	if (nif->ops != &afp_ops)
		return netif_err(err, errlen, EINVAL, "afpacket: not an afpacket netif");
	if (2u + a->nq > USNET_NETIF_SHARE_FDS)
		return netif_err(err, errlen, E2BIG, "afpacket: %u queues are more than a share holds", a->nq);
	struct afp_share_blob b = { .magic = AFP_SHARE_MAGIC, .version = AFP_SHARE_VERSION, .info = nif->info,
				    .shared_off = (uint64_t)((uint8_t *)a->sh - a->shm.base),
				    .steer_ports = a->hs.ports != NULL };
	_Static_assert(sizeof b <= USNET_NETIF_SHARE_BLOB, "afpacket share blob too large");
	out->nfds = 1u + a->nq;
	out->fds[0] = a->shm.fd;
	for (uint16_t i = 0; i < a->nq; i++)
		out->fds[1 + i] = a->q[i].fd;
	if (b.steer_ports)
		out->fds[out->nfds++] = a->hs.ports_fd;
	out->blob_len = sizeof b;
	memcpy(out->blob, &b, sizeof b);
	return 0;
}

/* Does [off, off + len) lie inside the region? */
static bool afp_in_region(const struct netif_shm_region *r, uint64_t off, uint64_t len)
{
	return off <= r->size && len <= r->size - off;
}

/* Check that a queue's shared state describes arrays inside the region and
 * a socket of the same ring version. */
static int afp_check_queue(struct afp_netif *a, uint16_t i, char *err, size_t errlen)
{
	uint64_t off = a->sh->q_off[i];
	const struct afp_queue_shared *qs = afp_in_region(&a->shm, off, sizeof *qs) ? netif_shm_at(&a->shm, off) : NULL;
	if (!qs || (qs->version != TPACKET_V2 && qs->version != TPACKET_V3) || !qs->rx_blocks || !qs->rx_slots ||
	    !qs->tx_frames || qs->tx_nbufs != qs->tx_frames || qs->tx_off >= qs->tx_frame_size ||
	    qs->tx_frame_size - qs->tx_off < a->base.info.frame_size ||
	    	    !afp_in_region(&a->shm, qs->blk_off, (uint64_t)qs->rx_blocks * sizeof(struct afp_block_state)) ||
	    !afp_in_region(&a->shm, qs->slot_lent_off, qs->rx_slots) ||
	    !afp_in_region(&a->shm, qs->tx_mem_off, (uint64_t)qs->tx_nbufs * a->base.info.frame_size) ||
	    !afp_in_region(&a->shm, qs->tx_free_off, (uint64_t)qs->tx_nbufs * sizeof(uint32_t)))
		return netif_err(err, errlen, EPROTO, "afpacket: the shared memory received does not describe queue %u of %.32s",
				 i, a->base.info.ifname);
	int fd = a->q[i].fd, dom = 0, ver = -1;
	socklen_t l = sizeof dom;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 || dom != AF_PACKET)
		return netif_err(err, errlen, EPROTO, "afpacket: the fd received for queue %u of %.32s is not a packet socket",
				 i, a->base.info.ifname);
	l = sizeof ver;
	if (getsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, &l) < 0 || ver != (int)qs->version)
		return netif_err(err, errlen, EPROTO, "afpacket: the socket received for queue %u of %.32s has ring version %d, not %u",
				 i, a->base.info.ifname, ver, qs->version);
	return 0;
}

int netif_afpacket_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
{
	struct afp_share_blob b;
	if (sh->nfds < 2 || sh->nfds > 2u + AFP_MAX_QUEUES || sh->blob_len != sizeof b) {
		netif_share_close_fds(sh);
		return netif_err(err, errlen, EPROTO, "afpacket: the share received is not an afpacket's (%u fds, %u bytes)",
				 sh->nfds, sh->blob_len);
	}
	memcpy(&b, sh->blob, sizeof b);
	struct afp_netif *a = afp_alloc();
	if (!a) {
		for (uint32_t i = 0; i < sh->nfds; i++)
			close(sh->fds[i]);
		return netif_err(err, errlen, ENOMEM, "afpacket: out of memory");
	}
	/* From here a owns the fds (afp_close() closes them). */
	a->base.ops = &afp_ops;
	a->base.info = b.info;
	uint32_t steer = b.steer_ports ? 1 : 0;
	a->nq = (uint16_t)(sh->nfds - 1 - steer);
	for (uint16_t i = 0; i < a->nq; i++)
		a->q[i].fd = sh->fds[1 + i];
	if (steer)
		a->hs.ports_fd = sh->fds[1 + a->nq];
	int r;
	if (b.magic != AFP_SHARE_MAGIC || b.version != AFP_SHARE_VERSION || b.info.nqueues != a->nq) {
		close(sh->fds[0]);
		r = netif_err(err, errlen, EPROTO, "afpacket: the share received is of another version");
		goto fail;
	}
	if ((r = netif_shm_region_map(&a->shm, sh->fds[0], err, errlen)))
		goto fail;
#ifdef USNET_NETIF_HAVE_AFXDP
	if (a->hs.ports_fd >= 0 && (r = netif_ports_map(&a->hs, a->hs.ports_fd, err, errlen)))
		goto fail;
#endif
	a->sh = afp_in_region(&a->shm, b.shared_off, sizeof *a->sh) ? netif_shm_at(&a->shm, b.shared_off) : NULL;
	if (!a->sh || a->sh->magic != AFP_SHARED_MAGIC || a->sh->nq != a->nq) {
		r = netif_err(err, errlen, EPROTO, "afpacket: the shared memory received is not %.32s's", b.info.ifname);
		goto fail;
	}
	for (uint16_t i = 0; i < a->nq; i++) {
		if ((r = afp_check_queue(a, i, err, errlen)))
			goto fail;
		afp_queue_bind(a, &a->q[i], netif_shm_at(&a->shm, a->sh->q_off[i]));
		/* The rings: this process maps them from the socket itself. */
		if ((r = afp_queue_map(&a->q[i], err, errlen)))
			goto fail;
	}
	if (a->nq > 1 && !(a->arp = netif_arp_share_open(&a->shm, a->sh->arp_off))) {
		r = netif_err(err, errlen, EPROTO, "afpacket: the shared memory received lacks %.32s's ARP rings",
			      b.info.ifname);
		goto fail;
	}
	*out = &a->base;
	return 0;
fail:
	afp_close(&a->base);
	return r;
}
