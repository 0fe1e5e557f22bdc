/*
 * afxdp: AF_XDP sockets, one per queue, each with its own UMEM, plus an XDP
 * program (src/netif/xdp/usnet_steer.bpf.c, built with clang and embedded in
 * the library) that steers only usnet's frames (IPv4 to its address, ARP
 * for it) to the sockets and passes the rest to the kernel.
 *
 * UMEM of a queue: `frames` chunks; the first half feeds the fill ring (rx),
 * the second half is the tx pool.  Frames are lent in place both ways:
 * rx_burst lends rx descriptors' chunks, rx_release puts them back on the
 * fill ring (through a stash, in batches); tx_alloc lends chunks from the tx
 * pool, tx_burst puts them on the tx ring, and completed ones come back to
 * the pool.  The fill ring has `frames` entries, twice the rx chunks (see
 * afx_queue_socket for why).  Rings use the need_wakeup protocol: flush
 * makes a system call only when the kernel asks for one.  Wait fd: the
 * socket.
 *
 * Who holds what (usnet/netif_share.h).  The netif object is process-local
 * (malloc): its ops, fd numbers and this process's mapping addresses of the
 * UMEM and of each ring's producer, consumer, flags and descriptors.  What
 * the processes using one netif update together lives in a memfd region
 * (struct afx_qstate per queue: the cached kernel indices, the tx pool, the
 * fill stash, counters), holding offsets and indices only; the UMEM is a
 * second memfd, so another process can map the same bytes (the kernel knows
 * the UMEM by the owner's address; everyone else only needs the bytes).  A
 * forked child keeps using its copy of the object (same fds, same
 * mappings); a process that did not fork receives the fds from the owner
 * (netif_afxdp_share/attach) and maps the rings of each queue's socket
 * itself.
 *
 * The rings are driven through the AF_XDP socket API directly, not libxdp's
 * xsk API: libxdp's ring structs hold pointers into the ring mappings next
 * to the cached indices, and its socket and UMEM objects live in the
 * opener's private memory, so neither can be used by a process that maps
 * the rings at other addresses.  libbpf is kept for what it does well:
 * loading the XDP program and filling its XSKMAP.
 *
 * Each ring's own index (the producer of fill and tx, the consumer of rx
 * and completion) is read from the ring itself, where only we write it; the
 * shared state caches only the kernel's index.  A process killed between
 * writing descriptors and publishing its index therefore leaves the ring
 * consistent (those frames are lost from the pool, nothing more).
 *
 * Options: mode=native|skb, ip=A.B.C.D (or cfg.ipv4), copy|zerocopy,
 * frames=N (per queue, power of two, default 4096), frame=2048|4096.
 *
 * Host-address mode (cfg.steer_ports): the stack shares the kernel's
 * address; the program steers only TCP/UDP to the ports set in its port
 * bitmap (a BPF_F_MMAPABLE array map, mapped by every process using the
 * netif and shared as one more fd), which usnet_netif_steer_port() sets and
 * clears; ARP and the rest stay the kernel's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "netif_internal.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

/* The compiled XDP program, embedded by afxdp_prog.S. */
extern const unsigned char usnet_xdp_obj[] __attribute__((visibility("hidden")));
extern const unsigned char usnet_xdp_obj_end[] __attribute__((visibility("hidden")));

#define AFX_MAX_QUEUES 64
#define AFX_OWNER_KEY 1 /* usnet_addr[1]: PID of the process that attached the program */
#define AFX_MODE_KEY 2  /* usnet_addr[2]: 1 in host-address mode */
#define AFX_GROUP_SLOTS 64   /* usnet_groups: GROUP_SLOTS of the program (IPv4) */
#define AFX_GROUP6_SLOTS 32  /* and GROUP6_SLOTS after them (IPv6) */
#define AFX_GROUP_ENTRY 16   /* bytes an entry of usnet_groups takes in the mapping */
#define AFX_GROUPS_BYTES ((AFX_GROUP_SLOTS + AFX_GROUP6_SLOTS) * AFX_GROUP_ENTRY)
#define AFX_RX_HEADROOM 256
/* Received frames go back to the fill ring this many at a time (and all of
 * them whenever the rx ring is found empty): the kernel, which fills frames
 * on the sending CPU, then reads the ring's producer and descriptors once
 * per batch instead of taking their cache lines from us for every frame. */
#define AFX_FILL_BATCH 32
#define AFX_RSS_HASH_TOEPLITZ 1u /* ethtool's hash function bit 0 (kernel ETH_RSS_HASH_TOP) */
#define AFX_RSS_INDIR_MAX 512

/* ---- rings -------------------------------------------------------------- */

/* One kernel ring as mapped in this process (process-local). */
struct afx_ring {
	uint32_t *producer, *consumer, *flags;
	void *desc;      /* struct xdp_desc[size] (rx, tx) or uint64_t[size] (fill, completion) */
	uint32_t mask, size;
	void *map;       /* the whole mapping, for munmap */
	size_t map_len;
};

/*
 * What the processes using a queue update together (in the region, one per
 * queue).  The cached kernel indices save reading the kernel's cache line
 * on every call, as libxdp's ring structs do; they are only ever set to a
 * value read from the kernel, so a stale one is merely conservative.
 */
struct afx_qstate {
	uint32_t fill_cons;   /* fill ring: the kernel's consumer + ring size */
	uint32_t comp_prod;   /* completion ring: the kernel's producer */
	uint32_t rx_prod;     /* rx ring: the kernel's producer */
	uint32_t tx_cons;     /* tx ring: the kernel's consumer + ring size */
	uint32_t tx_nfree;    /* tx pool: tx_pool[0..tx_nfree-1] are free */
	uint32_t tx_pending;  /* frames put on the tx ring since the last flush */
	/* Released rx frames not yet on the fill ring, oldest first: a ring of
	 * the queue's rx chunk count (so it can never overflow), fill_nstash
	 * of them from fill_stash_head on, at stash_off in the region. */
	uint32_t fill_stash_head, fill_nstash;
	uint64_t rx_frames, tx_frames; /* counters, all processes together */
} __attribute__((aligned(64)));

/* The region's header: enough for an attacher to check what it mapped. */
#define AFX_REGION_MAGIC 0x75786470u /* "uxdp" */
#define AFX_SHARE_VERSION 4u   /* 3: the multicast groups' map fd; 4: its 16-byte entries, IPv6's */
struct afx_region_head {
	uint32_t magic, version;
	uint32_t nq, frames, frame_size;
};

struct afx_queue {
	struct afx_ring fill, comp, rx, tx;
	struct afx_qstate *st; /* in the region */
	uint64_t *tx_pool;     /* in the region: ring_size entries */
	uint64_t *fill_stash;  /* in the region: ring_size entries */
	uint8_t *area;         /* this queue's UMEM in this process's mapping */
	size_t area_len;
	int fd;                /* the AF_XDP socket */
};

struct afx_netif {
	struct usnet_netif base;
	pid_t owner;   /* the process that opened it, 0 when attached (see close) */
	int ifindex;
	uint32_t xdp_flags;
	uint16_t bind_flags;
	struct bpf_object *obj; /* the owner's */
	int prog_fd;
	int link_fd;   /* the bpf_link that attaches the program, or -1 */
	bool attached; /* attached through netlink (kernels without XDP links) */
	struct afx_netif *next_open; /* afx_open_list */
	struct netif_arp_share *arp; /* ARP reaches one queue only: share it */
	struct netif_shm_region region;
	size_t head_off, q_off, pool_off, stash_off, arp_off; /* in the region */
	int umem_fd;
	uint8_t *umem;   /* every queue's UMEM, nq * frames * frame_size bytes */
	size_t umem_len;
	uint32_t frame_size, frames, fill_size, ring_size;
	uint16_t nq;
	/* The device's RSS (Toeplitz) set-up, for usnet_netif_flow_queue(). */
	bool rss_known, rss_tcp_ports, rss_udp_ports;
	uint8_t rss_key[64];
	uint32_t rss_key_len, rss_indir_len;
	uint32_t rss_indir[AFX_RSS_INDIR_MAX];
	/* Host-address mode: the program's port bitmap, mapped here. */
	int ports_fd;
	uint64_t *ports;
	/* The program's multicast groups (AFX_GROUP_ENTRY bytes each: IPv4's
	 * in network byte order in the first 4, then IPv6's; all 0: free),
	 * mapped here; set by usnet_netif_steer_group() and _group6(). */
	int groups_fd;
	uint8_t (*groups)[AFX_GROUP_ENTRY];
	struct afx_queue q[AFX_MAX_QUEUES];
};

/* Producer rings (fill, tx): free slots, at least nb when the kernel's
 * consumer says so (read only when the cached value says too few). */
static inline uint32_t afx_prod_free(const struct afx_ring *r, uint32_t *cons_cache, uint32_t nb)
{
	uint32_t prod = *r->producer;
	uint32_t free = *cons_cache - prod;
	if (free >= nb)
		return free;
	*cons_cache = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) + r->size;
	return *cons_cache - prod;
}

/* Make n more entries after the producer visible to the kernel. */
static inline void afx_prod_submit(struct afx_ring *r, uint32_t n)
{
	__atomic_store_n(r->producer, *r->producer + n, __ATOMIC_RELEASE);
}

/* Consumer rings (rx, completion): entries waiting, at most nb. */
static inline uint32_t afx_cons_avail(const struct afx_ring *r, uint32_t *prod_cache, uint32_t nb)
{
	uint32_t cons = *r->consumer;
	uint32_t n = *prod_cache - cons;
	if (n == 0) {
		*prod_cache = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
		n = *prod_cache - cons;
	}
	return n < nb ? n : nb;
}

/* Give n consumed entries back to the kernel. */
static inline void afx_cons_release(struct afx_ring *r, uint32_t n)
{
	__atomic_store_n(r->consumer, *r->consumer + n, __ATOMIC_RELEASE);
}

static inline bool afx_needs_wakeup(const struct afx_ring *r)
{
	return __atomic_load_n(r->flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP;
}

static inline uint64_t *afx_addr_at(const struct afx_ring *r, uint32_t i)
{
	return &((uint64_t *)r->desc)[i & r->mask];
}

static inline struct xdp_desc *afx_desc_at(const struct afx_ring *r, uint32_t i)
{
	return &((struct xdp_desc *)r->desc)[i & r->mask];
}

static int afx_quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level; (void)fmt; (void)ap;
	return 0; /* failures are reported through the error line instead */
}

/* ---- the owner's program ------------------------------------------------ */

/*
 * Only the process that opened the netif (x->owner) tears down: it detaches
 * the program and closes the sockets' last references it knows of.  A
 * forked child or an attached process holds its own mappings and fd copies
 * and lets go of only those.
 */
static void afx_at_exit(void);
static void afx_register_atexit(void)
{
	atexit(afx_at_exit);
}
static pthread_mutex_t afx_open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct afx_netif *afx_open_list;

/* A program attached through netlink (kernels without XDP links) outlives
 * the process: detach it at exit() when the user did not close. */
static void afx_at_exit(void)
{
	for (struct afx_netif *x = afx_open_list; x; x = x->next_open)
		if (x->attached && x->owner == getpid()) {
			LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = x->prog_fd);
			if (bpf_xdp_detach(x->ifindex, x->xdp_flags, &opts) == 0)
				x->attached = false;
		}
}

static void afx_track(struct afx_netif *x)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, afx_register_atexit);
	pthread_mutex_lock(&afx_open_lock);
	x->next_open = afx_open_list;
	afx_open_list = x;
	pthread_mutex_unlock(&afx_open_lock);
}

static void afx_untrack(struct afx_netif *x)
{
	pthread_mutex_lock(&afx_open_lock);
	for (struct afx_netif **p = &afx_open_list; *p; p = &(*p)->next_open)
		if (*p == x) {
			*p = x->next_open;
			break;
		}
	pthread_mutex_unlock(&afx_open_lock);
}

/* ---- data path ---------------------------------------------------------- */

static int afx_rx_burst_ring(struct afx_netif *x, uint16_t qi, struct usnet_pkt *pkts, unsigned max);

static int afx_rx_burst(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned max)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (__builtin_expect(qi >= x->nq, 0))
		return -EINVAL;
	if (!x->arp)
		return afx_rx_burst_ring(x, qi, pkts, max);
	unsigned k = netif_arp_share_take(x->arp, qi, pkts, max);
	int n = afx_rx_burst_ring(x, qi, pkts + k, max - k);
	if (n > 0)
		netif_arp_share_publish(x->arp, qi, pkts + k, (unsigned)n);
	return (int)k + (n > 0 ? n : 0);
}

/*
 * The stashed rx frames onto the fill ring, oldest first, as many as it has
 * room for; the rest stay stashed (owned by the backend) for the next flush.
 * The fill ring can look shorter than the stash holds: the kernel may let us
 * see received frames before the fill-ring entries they came from (see
 * afx_queue_socket), so a frame is never dropped for want of room, only kept.
 */
static void afx_fill_flush(struct afx_netif *x, struct afx_queue *q)
{
	struct afx_qstate *st = q->st;
	uint32_t n = st->fill_nstash;
	if (n == 0)
		return;
	uint32_t room = afx_prod_free(&q->fill, &st->fill_cons, n);
	if (room < n)
		n = room;
	if (n == 0)
		return;
	uint32_t prod = *q->fill.producer, mask = x->ring_size - 1, head = st->fill_stash_head;
	for (uint32_t i = 0; i < n; i++)
		*afx_addr_at(&q->fill, prod + i) = q->fill_stash[(head + i) & mask];
	afx_prod_submit(&q->fill, n);
	st->fill_stash_head = (head + n) & mask;
	st->fill_nstash -= n;
}

static int afx_rx_burst_ring(struct afx_netif *x, uint16_t qi, struct usnet_pkt *pkts, unsigned max)
{
	struct afx_queue *q = &x->q[qi];
	unsigned n = afx_cons_avail(&q->rx, &q->st->rx_prod, max);
	if (n == 0) {
		afx_fill_flush(x, q);
		/* The kernel may be waiting for fill-ring entries we gave it. */
		if (afx_needs_wakeup(&q->fill))
			recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		return 0;
	}
	uint32_t cons = *q->rx.consumer;
	for (unsigned i = 0; i < n; i++) {
		const struct xdp_desc *d = afx_desc_at(&q->rx, cons + i);
		/* Aligned chunks: the kernel puts no offset in the high bits,
		 * but a copy of libxdp's add_offset_to_addr costs nothing. */
		uint64_t addr = (d->addr & XSK_UNALIGNED_BUF_ADDR_MASK) + (d->addr >> XSK_UNALIGNED_BUF_OFFSET_SHIFT);
		struct usnet_pkt *p = &pkts[i];
		p->data = q->area + addr;
		p->len = d->len;
		p->flags = 0;
		p->csum_start = p->csum_offset = 0;
		p->queue = qi;
		p->id = addr;
	}
	afx_cons_release(&q->rx, n);
	q->st->rx_frames += n;
	return (int)n;
}

static void afx_rx_release(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (qi >= x->nq || n == 0)
		return;
	struct afx_queue *q = &x->q[qi];
	if (x->arp) {
		/* Shared ARP copies first; then only ring frames remain. */
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++) {
			if (pkts[i].id & NETIF_ARP_SHARE_ID)
				netif_arp_share_release(x->arp, qi, &pkts[i]);
			else
				k++;
		}
		if (k != n) { /* mixed (rare): the ring frames one by one */
			for (unsigned i = 0; i < n; i++)
				if (!(pkts[i].id & NETIF_ARP_SHARE_ID))
					afx_rx_release(nif, qi, &pkts[i], 1);
			return;
		}
	}
	struct afx_qstate *st = q->st;
	uint64_t rx_bytes = (uint64_t)x->ring_size * x->frame_size;
	uint32_t mask = x->ring_size - 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t chunk = pkts[i].id - pkts[i].id % x->frame_size;
		/* The stash has room for every rx frame, so it is full only when
		 * all of them are back: a frame released twice, or one that is
		 * not an rx frame of this queue, would go on the fill ring a
		 * second time (and hand the kernel one chunk twice). */
		if (chunk >= rx_bytes || st->fill_nstash == x->ring_size)
			continue;
		q->fill_stash[(st->fill_stash_head + st->fill_nstash++) & mask] = chunk;
		if (st->fill_nstash >= AFX_FILL_BATCH)
			afx_fill_flush(x, q);
	}
}

static void afx_reclaim(struct afx_netif *x, struct afx_queue *q)
{
	struct afx_qstate *st = q->st;
	unsigned n = afx_cons_avail(&q->comp, &st->comp_prod, x->ring_size);
	if (n == 0)
		return;
	uint32_t cons = *q->comp.consumer;
	for (unsigned i = 0; i < n && st->tx_nfree < x->ring_size; i++)
		q->tx_pool[st->tx_nfree++] = *afx_addr_at(&q->comp, cons + i);
	afx_cons_release(&q->comp, n);
}

static int afx_tx_alloc(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (__builtin_expect(qi >= x->nq, 0))
		return -EINVAL;
	struct afx_queue *q = &x->q[qi];
	struct afx_qstate *st = q->st;
	if (st->tx_nfree < n)
		afx_reclaim(x, q);
	unsigned k = 0;
	for (; k < n && st->tx_nfree; k++) {
		uint64_t addr = q->tx_pool[--st->tx_nfree];
		pkts[k] = (struct usnet_pkt){ .data = q->area + addr, .queue = qi, .id = addr };
	}
	return (int)k;
}

static int afx_flush(struct usnet_netif *nif, uint16_t qi);

static int afx_tx_burst(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (__builtin_expect(qi >= x->nq, 0))
		return -EINVAL;
	struct afx_queue *q = &x->q[qi];
	struct afx_qstate *st = q->st;
	unsigned k = afx_prod_free(&q->tx, &st->tx_cons, n);
	if (k < n && st->tx_pending) {
		/* Ring full: have the kernel drain it (a caller that only
		 * retries would otherwise wait for ever). */
		afx_flush(nif, qi);
		k = afx_prod_free(&q->tx, &st->tx_cons, n);
	}
	if (k > n)
		k = n;
	unsigned i;
	for (i = 0; i < k; i++) {
		struct usnet_pkt *p = &pkts[i];
		uint64_t chunk = p->id - p->id % x->frame_size;
		if (p->id >= q->area_len || p->data < q->area + chunk ||
		    p->data + p->len > q->area + chunk + x->frame_size || p->len == 0)
			break;
		if (p->flags & USNET_PKT_TX_CSUM_PARTIAL)
			netif_csum_fill(p->data, p->len, p->csum_start, p->csum_offset);
	}
	if (i == 0)
		return k == 0 ? 0 : -EINVAL;
	uint32_t prod = *q->tx.producer;
	for (unsigned j = 0; j < i; j++) {
		struct xdp_desc *d = afx_desc_at(&q->tx, prod + j);
		d->addr = (uint64_t)(pkts[j].data - q->area);
		d->len = pkts[j].len;
		d->options = 0;
	}
	afx_prod_submit(&q->tx, i);
	st->tx_pending = 1;
	st->tx_frames += i;
	return (int)i;
}

static void afx_tx_free(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (qi >= x->nq)
		return;
	struct afx_queue *q = &x->q[qi];
	struct afx_qstate *st = q->st;
	for (unsigned i = 0; i < n && st->tx_nfree < x->ring_size; i++)
		q->tx_pool[st->tx_nfree++] = pkts[i].id - pkts[i].id % x->frame_size;
}

static int afx_flush(struct usnet_netif *nif, uint16_t qi)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (__builtin_expect(qi >= x->nq, 0))
		return -EINVAL;
	struct afx_queue *q = &x->q[qi];
	int ret = 0;
	if (q->st->tx_pending) {
		q->st->tx_pending = 0;
		/* In copy mode one send() moves at most 32 frames and says
		 * EAGAIN while more wait: repeat until the ring is empty (or
		 * the kernel stops making progress). */
		for (int tries = 0; tries < 256 && afx_needs_wakeup(&q->tx); tries++) {
			if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) == 0)
				break;
			if (errno == EAGAIN || errno == EBUSY) {
				afx_reclaim(x, q); /* a full completion ring also stops it */
				if (__atomic_load_n(q->tx.consumer, __ATOMIC_ACQUIRE) == *q->tx.producer)
					break;
				continue;
			}
			if (errno != ENOBUFS && errno != ENETDOWN)
				ret = -errno;
			break;
		}
	}
	afx_reclaim(x, q);
	return ret;
}

static int afx_wait_fd(struct usnet_netif *nif, uint16_t qi)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	return qi < x->nq ? x->q[qi].fd : -1;
}


static void afx_ring_unmap(struct afx_ring *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	memset(r, 0, sizeof *r);
}

/* This process's mappings and fds of the netif, and the object. */
static void afx_release_local(struct afx_netif *x)
{
	for (unsigned i = 0; i < AFX_MAX_QUEUES; i++) {
		struct afx_queue *q = &x->q[i];
		afx_ring_unmap(&q->fill);
		afx_ring_unmap(&q->comp);
		afx_ring_unmap(&q->rx);
		afx_ring_unmap(&q->tx);
		if (q->fd >= 0)
			close(q->fd);
	}
	if (x->umem)
		munmap(x->umem, x->umem_len);
	if (x->umem_fd >= 0)
		close(x->umem_fd);
	if (x->ports)
		munmap(x->ports, NETIF_PORTS_BYTES);
	if (x->ports_fd >= 0)
		close(x->ports_fd);
	if (x->groups)
		munmap(x->groups, AFX_GROUPS_BYTES);
	if (x->groups_fd >= 0)
		close(x->groups_fd);
	netif_shm_region_release(&x->region);
	free(x);
}

static void afx_close(struct usnet_netif *nif)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (x->owner != getpid()) {
		/* A forked child's copy or an attached process: the owner keeps
		 * the program attached and the sockets bound; this process lets
		 * go of its mappings and its copies of the fds (a forked child's
		 * copy of the program's link among them). */
		afx_untrack(x); /* a forked child's copy of the list */
		if (x->link_fd >= 0)
			close(x->link_fd);
		if (x->obj)
			bpf_object__close(x->obj);
		netif_arp_share_free(x->arp);   /* this process's handle */
		afx_release_local(x);
		return;
	}
	afx_untrack(x);
	if (x->link_fd >= 0) {
		/* Detach now, even while a forked child still holds a copy of
		 * the link fd (the kernel would otherwise wait for the last). */
		bpf_link_detach(x->link_fd);
		close(x->link_fd);
	}
	if (x->attached) {
		/* Only if it is still ours. */
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = x->prog_fd);
		bpf_xdp_detach(x->ifindex, x->xdp_flags, &opts);
	}
	if (x->obj)
		bpf_object__close(x->obj);
	netif_arp_share_free(x->arp);
	afx_release_local(x);
}

static const struct usnet_netif_ops afx_ops = {
	.rx_burst = afx_rx_burst,
	.rx_release = afx_rx_release,
	.tx_alloc = afx_tx_alloc,
	.tx_burst = afx_tx_burst,
	.tx_free = afx_tx_free,
	.flush = afx_flush,
	.wait_fd = afx_wait_fd,
	.after_fork = NULL,
	.close = afx_close,
};

int netif_afxdp_queue_counters(struct usnet_netif *nif, uint16_t qi, uint64_t *rx_frames, uint64_t *tx_frames)
{
	if (nif->ops != &afx_ops)
		return -EINVAL;
	struct afx_netif *x = (struct afx_netif *)nif;
	if (qi >= x->nq)
		return -EINVAL;
	*rx_frames = __atomic_load_n(&x->q[qi].st->rx_frames, __ATOMIC_RELAXED);
	*tx_frames = __atomic_load_n(&x->q[qi].st->tx_frames, __ATOMIC_RELAXED);
	return 0;
}

/* ---- set-up ------------------------------------------------------------- */

static int afx_ethtool(const char *ifname, void *cmd)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	ifr.ifr_data = cmd;
	int r = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
	close(s);
	return r;
}

/* The veth peer's ifindex from the driver's "peer_ifindex" statistic, or 0. */
static int afx_veth_peer(const char *ifname)
{
	struct ethtool_drvinfo di = { .cmd = ETHTOOL_GDRVINFO };
	if (afx_ethtool(ifname, &di) || strcmp(di.driver, "veth") || di.n_stats == 0 || di.n_stats > 4096)
		return 0;
	uint32_t n = di.n_stats;
	struct ethtool_gstrings *gs = calloc(1, sizeof *gs + (size_t)n * ETH_GSTRING_LEN);
	struct ethtool_stats *st = calloc(1, sizeof *st + (size_t)n * sizeof(uint64_t));
	int peer = 0;
	if (gs && st) {
		gs->cmd = ETHTOOL_GSTRINGS;
		gs->string_set = ETH_SS_STATS;
		gs->len = n;
		st->cmd = ETHTOOL_GSTATS;
		st->n_stats = n;
		if (!afx_ethtool(ifname, gs) && !afx_ethtool(ifname, st))
			for (uint32_t i = 0; i < n; i++)
				if (!strncmp((char *)gs->data + i * ETH_GSTRING_LEN, "peer_ifindex", ETH_GSTRING_LEN))
					peer = (int)st->data[i];
	}
	free(gs);
	free(st);
	return peer;
}

/* A veth peer that checksums lazily sends frames whose TCP/UDP checksum is
 * not filled in; XDP loses the note that says so.  Catch it when the peer
 * is in this namespace (it points back at us). */
static int afx_check_veth_peer(const char *ifname, int ifindex, char *err, size_t errlen)
{
	int peer = afx_veth_peer(ifname);
	char pname[IF_NAMESIZE];
	/* Namespaces number devices separately: an index may be our own. */
	if (peer <= 0 || peer == ifindex || !if_indextoname((unsigned)peer, pname) ||
	    afx_veth_peer(pname) != ifindex)
		return 0;
	struct ethtool_value v = { .cmd = ETHTOOL_GTXCSUM };
	if (afx_ethtool(pname, &v) == 0 && v.data)
		return netif_err(err, errlen, EPROTO,
				 "afxdp: %s's veth peer %s offloads tx checksums, which AF_XDP cannot see: run `ethtool -K %s tx off`",
				 ifname, pname, pname);
	return 0;
}

/* Read the device's RSS key, indirection table and hashed fields; leaves
 * rss_known false where the device does not tell (veth, for one). */
static void afx_read_rss(struct afx_netif *x, const char *ifname)
{
	struct ethtool_rxfh head = { .cmd = ETHTOOL_GRSSH };
	if (afx_ethtool(ifname, &head) || !head.indir_size || head.indir_size > 512 ||
	    !head.key_size || head.key_size > sizeof x->rss_key)
		return;
	struct ethtool_rxfh *r = calloc(1, sizeof *r + head.indir_size * sizeof(uint32_t) + head.key_size);
	if (!r)
		return;
	r->cmd = ETHTOOL_GRSSH;
	r->indir_size = head.indir_size;
	r->key_size = head.key_size;
	if (afx_ethtool(ifname, r) == 0 && (r->hfunc == 0 || r->hfunc == AFX_RSS_HASH_TOEPLITZ)) {
		memcpy(x->rss_indir, r->rss_config, r->indir_size * sizeof(uint32_t));
		memcpy(x->rss_key, (uint8_t *)r->rss_config + r->indir_size * sizeof(uint32_t), r->key_size);
		x->rss_indir_len = r->indir_size;
		x->rss_key_len = r->key_size;
		x->rss_known = true;
		struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXFH, .flow_type = TCP_V4_FLOW };
		x->rss_tcp_ports = afx_ethtool(ifname, &nfc) == 0 && (nfc.data & (RXH_L4_B_0_1 | RXH_L4_B_2_3));
		nfc = (struct ethtool_rxnfc){ .cmd = ETHTOOL_GRXFH, .flow_type = UDP_V4_FLOW };
		x->rss_udp_ports = afx_ethtool(ifname, &nfc) == 0 && (nfc.data & (RXH_L4_B_0_1 | RXH_L4_B_2_3));
	}
	free(r);
}

int netif_afxdp_flow_queue(struct usnet_netif *nif, uint8_t proto, uint32_t src_ip,
			   uint16_t src_port, uint32_t dst_ip, uint16_t dst_port)
{
	if (nif->ops != &afx_ops)
		return -1;   /* a wrapper that only copied our info */
	struct afx_netif *x = (struct afx_netif *)nif;
	if (x->nq <= 1)
		return 0;
	if (!x->rss_known)
		return -1;
	uint8_t in[12];
	size_t len = 8;
	uint32_t s = htonl(src_ip), d = htonl(dst_ip);
	memcpy(in, &s, 4);
	memcpy(in + 4, &d, 4);
	if ((proto == IPPROTO_TCP && x->rss_tcp_ports) || (proto == IPPROTO_UDP && x->rss_udp_ports)) {
		uint16_t sp = htons(src_port), dp = htons(dst_port);
		memcpy(in + 8, &sp, 2);
		memcpy(in + 10, &dp, 2);
		len = 12;
	}
	uint32_t h = netif_toeplitz(x->rss_key, x->rss_key_len, in, len);
	uint32_t q = x->rss_indir[h % x->rss_indir_len];
	return q < x->nq ? (int)q : -1;
}

/*
 * Attach the program with a bpf_link: the kernel detaches it when the last
 * link fd is closed, so a process that dies (even by SIGKILL) leaves nothing
 * behind.  Kernels without XDP links (before 5.9) get a netlink attachment,
 * which close() removes.  Returns 0 or a negative errno.
 */
static int afx_attach(struct afx_netif *x)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = x->xdp_flags);
	int fd = bpf_link_create(x->prog_fd, x->ifindex, BPF_XDP, &lo);
	if (fd >= 0) {
		x->link_fd = fd;
		return 0;
	}
	if (fd != -EINVAL)
		return fd;
	int r = bpf_xdp_attach(x->ifindex, x->prog_fd, x->xdp_flags | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	if (r == 0)
		x->attached = true;
	return r;
}

/* The owner PID recorded in a usnet program's usnet_addr map, or 0. */
static uint32_t afx_prog_owner(const uint32_t *map_ids, uint32_t n)
{
	uint32_t pid = 0;
	for (uint32_t i = 0; i < n && !pid; i++) {
		int mfd = bpf_map_get_fd_by_id(map_ids[i]);
		if (mfd < 0)
			continue;
		struct bpf_map_info mi;
		uint32_t len = sizeof mi;
		memset(&mi, 0, sizeof mi);
		uint32_t key = AFX_OWNER_KEY;
		if (bpf_obj_get_info_by_fd(mfd, &mi, &len) == 0 && !strcmp(mi.name, "usnet_addr") &&
		    mi.value_size == sizeof pid && mi.max_entries > key && bpf_map_lookup_elem(mfd, &key, &pid))
			pid = 0;
		close(mfd);
	}
	return pid;
}

/* Whether process pid runs (a zombie does not). */
static bool afx_pid_alive(uint32_t pid)
{
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return false;
	char path[48], buf[256];
	snprintf(path, sizeof path, "/proc/%u/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *paren = strrchr(buf, ')');
	return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

/*
 * Look at the XDP programs attached to the interface.  A usnet steering
 * program left attached through netlink by a usnet process that is gone (an
 * older build, or a kernel without XDP links) is removed so that this open can
 * go on; a program of anyone else, one whose owner is unknown, or one of a
 * live process stays.  Returns whether a program is still attached; *owner is
 * set to the usnet process that attached it (0: not usnet's, or unknown),
 * dead where its link is held by the processes attached to its stack.
 */
static bool afx_scan_attached(int ifindex, uint32_t *owner_out)
{
	static const uint32_t modes[] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
	bool busy = false;
	*owner_out = 0;
	for (unsigned m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		uint32_t id = 0;
		if (bpf_xdp_query_id(ifindex, (int)modes[m], &id) || !id)
			continue;
		busy = true;
		int pfd = bpf_prog_get_fd_by_id(id);
		if (pfd < 0)
			continue;
		uint32_t map_ids[8];
		struct bpf_prog_info info;
		memset(&info, 0, sizeof info);
		info.nr_map_ids = 8;
		info.map_ids = (uint64_t)(uintptr_t)map_ids;
		uint32_t len = sizeof info;
		if (bpf_obj_get_info_by_fd(pfd, &info, &len) == 0 && !strcmp(info.name, "usnet_steer")) {
			uint32_t owner = afx_prog_owner(map_ids, info.nr_map_ids < 8 ? info.nr_map_ids : 8);
			if (owner && !afx_pid_alive(owner)) {
				LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = pfd);
				if (bpf_xdp_detach(ifindex, modes[m], &o) == 0)
					busy = false;
				else
					*owner_out = owner;   /* attached through a link others hold */
			} else if (owner) {
				*owner_out = owner;
			}
		}
		close(pfd);
	}
	return busy;
}

/* The one-line error for an interface that already has an XDP program. */
static int afx_err_attached(const char *ifname, uint32_t owner, char *err, size_t errlen)
{
	if (owner && !afx_pid_alive(owner))
		return netif_err(err, errlen, EBUSY,
				 "afxdp: %s still has the XDP program of usnet process %u, which is gone: processes attached "
				 "to its stack still use %s; stop them first", ifname, owner, ifname);
	if (owner)
		return netif_err(err, errlen, EBUSY,
				 "afxdp: %s already has an XDP program attached by usnet process %u: stop that process first",
				 ifname, owner);
	return netif_err(err, errlen, EBUSY,
			 "afxdp: %s already has an XDP program attached: remove it (`ip link set dev %s xdp off`, or `xdp-loader unload %s --all`)",
			 ifname, ifname, ifname);
}

/* Map the port bitmap of the program (fd is x's from here on). */
static int afx_ports_map(struct afx_netif *x, int fd, char *err, size_t errlen)
{
	x->ports_fd = fd;
	void *m = mmap(NULL, NETIF_PORTS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return netif_err(err, errlen, errno, "afxdp: cannot map the XDP program's port bitmap: %s", strerror(errno));
	x->ports = m;
	return 0;
}

/* Map the program's multicast groups (fd is x's from here on). */
static int afx_groups_map(struct afx_netif *x, int fd, char *err, size_t errlen)
{
	x->groups_fd = fd;
	void *m = mmap(NULL, AFX_GROUPS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return netif_err(err, errlen, errno, "afxdp: cannot map the XDP program's multicast groups: %s",
				 strerror(errno));
	x->groups = m;
	return 0;
}

static int afx_attach_prog(struct afx_netif *x, const char *ifname, uint32_t ip_be, uint8_t (*ip6)[16],
			   unsigned nip6, bool skb, bool host, char *err, size_t errlen)
{
	size_t len = (size_t)(usnet_xdp_obj_end - usnet_xdp_obj);
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "usnet_steer");
	x->obj = bpf_object__open_mem(usnet_xdp_obj, len, &oo);
	if (!x->obj) {
		x->obj = NULL;
		return netif_err(err, errlen, EINVAL, "afxdp: the embedded XDP program does not load: %s", strerror(errno));
	}
	int r = bpf_object__load(x->obj);
	if (r) {
		if (r == -EPERM || r == -EACCES)
			return netif_err(err, errlen, EPERM, "afxdp: loading an XDP program needs root (CAP_BPF and CAP_NET_ADMIN)");
		return netif_err(err, errlen, -r, "afxdp: the kernel refused the XDP program: %s", strerror(-r));
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(x->obj, "usnet_steer");
	int xsks = bpf_object__find_map_fd_by_name(x->obj, "usnet_xsks");
	int addr = bpf_object__find_map_fd_by_name(x->obj, "usnet_addr");
	if (!prog || xsks < 0 || addr < 0)
		return netif_err(err, errlen, EINVAL, "afxdp: the embedded XDP program lacks its maps");
	x->prog_fd = bpf_program__fd(prog);
	uint32_t key = 0;
	if (bpf_map_update_elem(addr, &key, &ip_be, 0))
		return netif_err(err, errlen, errno, "afxdp: cannot set usnet's address in the XDP map: %s", strerror(errno));
	for (uint32_t qi = 0; qi < x->nq; qi++) {
		int fd = x->q[qi].fd;
		if (bpf_map_update_elem(xsks, &qi, &fd, 0))
			return netif_err(err, errlen, errno, "afxdp: cannot add queue %u's socket to the XDP map: %s",
					 qi, strerror(errno));
	}
	uint32_t pid = (uint32_t)getpid(), owner_key = AFX_OWNER_KEY;
	if (bpf_map_update_elem(addr, &owner_key, &pid, 0))
		return netif_err(err, errlen, EINVAL, "afxdp: cannot record the owner in the XDP map");
	int addr6 = bpf_object__find_map_fd_by_name(x->obj, "usnet_addr6");
	if (addr6 < 0)
		return netif_err(err, errlen, EINVAL, "afxdp: the embedded XDP program lacks its IPv6 addresses");
	/* Its addresses, then (unless they are the kernel's: host-address
	 * mode) the groups whose MLD queries the stack answers: all-nodes
	 * and each address's solicited-node group. */
	uint8_t keys[2 * (USNET_NETIF_IPV6_MAX + 1) + 1][16];
	unsigned nkeys = 0;
	for (unsigned i = 0; i < nip6; i++)
		memcpy(keys[nkeys++], ip6[i], 16);
	if (nip6 && !host) {
		static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
		memcpy(keys[nkeys++], all_nodes, 16);
		for (unsigned i = 0; i < nip6; i++, nkeys++) {
			static const uint8_t sol_prefix[13] = { 0xff, 0x02, [11] = 0x01, 0xff };
			memcpy(keys[nkeys], sol_prefix, 13);
			memcpy(keys[nkeys] + 13, ip6[i] + 13, 3);
		}
	}
	for (unsigned i = 0; i < nkeys; i++) {
		uint8_t one = 1;
		if (bpf_map_update_elem(addr6, keys[i], &one, 0)) {
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, keys[i], a, sizeof a);
			return netif_err(err, errlen, errno, "afxdp: cannot set usnet's IPv6 address or group %s in the XDP "
					 "map: %s", a, strerror(errno));
		}
	}
	int groups = bpf_object__find_map_fd_by_name(x->obj, "usnet_groups");
	if (groups < 0)
		return netif_err(err, errlen, EINVAL, "afxdp: the embedded XDP program lacks its multicast groups");
	int gown = fcntl(groups, F_DUPFD_CLOEXEC, 0);   /* the object closes its own at close */
	if (gown < 0 || (r = afx_groups_map(x, gown, err, errlen)))
		return gown < 0 ? netif_err(err, errlen, errno, "afxdp: dup: %s", strerror(errno)) : r;
	if (host) {
		uint32_t mode_key = AFX_MODE_KEY, one = 1;
		int ports = bpf_object__find_map_fd_by_name(x->obj, "usnet_ports");
		if (ports < 0)
			return netif_err(err, errlen, EINVAL, "afxdp: the embedded XDP program lacks its port bitmap");
		int own = fcntl(ports, F_DUPFD_CLOEXEC, 0);   /* the object closes its own at close */
		if (own < 0 || (r = afx_ports_map(x, own, err, errlen)))
			return own < 0 ? netif_err(err, errlen, errno, "afxdp: dup: %s", strerror(errno)) : r;
		if (bpf_map_update_elem(addr, &mode_key, &one, 0))
			return netif_err(err, errlen, errno, "afxdp: cannot set host-address mode in the XDP map: %s",
					 strerror(errno));
	}
	x->xdp_flags = skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	r = afx_attach(x);
	uint32_t live = 0;
	if ((r == -EBUSY || r == -EEXIST) && !afx_scan_attached(x->ifindex, &live))
		r = afx_attach(x);
	if (r == -EBUSY || r == -EEXIST)
		return afx_err_attached(ifname, live, err, errlen);
	if (r == -EOPNOTSUPP)
		return netif_err(err, errlen, EOPNOTSUPP,
				 "afxdp: %s has no native XDP support: use the option mode=skb", ifname);
	if (r == -ERANGE || r == -E2BIG)
		return netif_err(err, errlen, -r,
				 "afxdp: %s's MTU is too large for XDP: lower it (`ip link set dev %s mtu 1500`)", ifname, ifname);
	if (r)
		return netif_err(err, errlen, -r, "afxdp: cannot attach the XDP program to %s (%s mode): %s",
				 ifname, skb ? "skb" : "native", strerror(-r));
	return 0;
}

/* Map one of a socket's rings: `size` entries of `elem` bytes, at pgoff. */
static int afx_ring_map(struct afx_ring *r, int fd, const struct xdp_ring_offset *o, uint32_t size, size_t elem,
			off_t pgoff, const char *what, char *err, size_t errlen)
{
	size_t len = (size_t)o->desc + (size_t)size * elem;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
	if (m == MAP_FAILED)
		return netif_err(err, errlen, errno, "afxdp: cannot map the %s ring of an AF_XDP socket: %s", what,
				 strerror(errno));
	uint8_t *b = m;
	*r = (struct afx_ring){ .producer = (uint32_t *)(b + o->producer), .consumer = (uint32_t *)(b + o->consumer),
				.flags = (uint32_t *)(b + o->flags), .desc = b + o->desc, .mask = size - 1, .size = size,
				.map = m, .map_len = len };
	return 0;
}

/* Map the four rings of a queue's socket (which registered the queue's
 * UMEM, so it also has the fill and completion rings).  The same for the
 * owner and for an attached process. */
static int afx_queue_map(struct afx_netif *x, struct afx_queue *q, char *err, size_t errlen)
{
	struct xdp_mmap_offsets off;
	socklen_t len = sizeof off;
	if (getsockopt(q->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len))
		return netif_err(err, errlen, errno, "afxdp: cannot read the ring offsets of an AF_XDP socket: %s",
				 strerror(errno));
	if (len != sizeof off)
		return netif_err(err, errlen, EOPNOTSUPP,
				 "afxdp: the kernel's AF_XDP rings have no flags word (need_wakeup): Linux 5.4 or later needed");
	int r;
	if ((r = afx_ring_map(&q->fill, q->fd, &off.fr, x->fill_size, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING,
			      "fill", err, errlen)) ||
	    (r = afx_ring_map(&q->comp, q->fd, &off.cr, x->ring_size, sizeof(uint64_t),
			      (off_t)XDP_UMEM_PGOFF_COMPLETION_RING, "completion", err, errlen)) ||
	    (r = afx_ring_map(&q->rx, q->fd, &off.rx, x->ring_size, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING,
			      "rx", err, errlen)) ||
	    (r = afx_ring_map(&q->tx, q->fd, &off.tx, x->ring_size, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING,
			      "tx", err, errlen)))
		return r;
	return 0;
}

/* The region's parts, at the offsets x->q_off, pool_off, stash_off. */
static void afx_queue_bind_state(struct afx_netif *x, uint16_t qi)
{
	struct afx_queue *q = &x->q[qi];
	q->st = (struct afx_qstate *)netif_shm_at(&x->region, x->q_off) + qi;
	q->tx_pool = (uint64_t *)netif_shm_at(&x->region, x->pool_off) + (size_t)qi * x->ring_size;
	q->fill_stash = (uint64_t *)netif_shm_at(&x->region, x->stash_off) + (size_t)qi * x->ring_size;
	q->area_len = (size_t)x->frames * x->frame_size;
	q->area = x->umem + (size_t)qi * q->area_len;
}

/*
 * The owner's socket for queue qi: register the queue's part of the UMEM,
 * size the rings, map them, bind.
 *
 * The fill ring gets room for twice the rx chunks.  With room for exactly
 * the rx chunks it could look full while some of them wait to go back: the
 * kernel publishes a batch of rx descriptors before the fill ring's
 * consumer index that says it took their chunks (xsk_flush(): rx producer,
 * then fill consumer), so for a moment a chunk we received, processed and
 * released still counts as sitting on the fill ring, and a flush of the
 * stash finds the ring short.  Those are chunks the kernel took since it
 * last published the index, each once, so never more than the rx chunks:
 * the second half covers them, and the stash always fits (afx_fill_flush
 * keeps what would not).
 */
static int afx_queue_socket(struct afx_netif *x, struct afx_queue *q, const char *ifname, uint32_t qi,
			    char *err, size_t errlen)
{
	/* EBUSY: the queue still holds the socket of a process that is
	 * exiting (the kernel lets go of it when the last fd closes); give it
	 * up to a second, with a fresh socket each try. */
	for (int tries = 0;; tries++) {
		q->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (q->fd < 0) {
			if (errno == EPERM || errno == EACCES)
				return netif_err(err, errlen, EPERM, "afxdp: an AF_XDP socket needs root (CAP_NET_RAW)");
			return netif_err(err, errlen, errno, "afxdp: cannot create an AF_XDP socket: %s", strerror(errno));
		}
		struct xdp_umem_reg mr = { .addr = (uint64_t)(uintptr_t)q->area, .len = q->area_len,
					   .chunk_size = x->frame_size, .headroom = 0, .flags = 0 };
		if (setsockopt(q->fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof mr)) {
			if (errno == EPERM || errno == EACCES)
				return netif_err(err, errlen, EPERM,
						 "afxdp: need root (CAP_NET_RAW, CAP_IPC_LOCK) to register UMEM");
			return netif_err(err, errlen, errno, "afxdp: cannot register UMEM: %s", strerror(errno));
		}
		if (setsockopt(q->fd, SOL_XDP, XDP_UMEM_FILL_RING, &x->fill_size, sizeof x->fill_size) ||
		    setsockopt(q->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &x->ring_size, sizeof x->ring_size) ||
		    setsockopt(q->fd, SOL_XDP, XDP_RX_RING, &x->ring_size, sizeof x->ring_size) ||
		    setsockopt(q->fd, SOL_XDP, XDP_TX_RING, &x->ring_size, sizeof x->ring_size))
			return netif_err(err, errlen, errno, "afxdp: cannot size the rings of an AF_XDP socket: %s",
					 strerror(errno));
		int r = afx_queue_map(x, q, err, errlen);
		if (r)
			return r;
		struct sockaddr_xdp sa = { .sxdp_family = AF_XDP, .sxdp_ifindex = (uint32_t)x->ifindex,
					   .sxdp_queue_id = qi,
					   .sxdp_flags = (uint16_t)(x->bind_flags | XDP_USE_NEED_WAKEUP) };
		if (bind(q->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			break;
		int e = errno;
		if (e != EBUSY || tries == 50) {
			if (e == EOPNOTSUPP && (x->bind_flags & XDP_ZEROCOPY))
				return netif_err(err, errlen, EOPNOTSUPP,
						 "afxdp: %s has no zero-copy AF_XDP support: drop the option zerocopy", ifname);
			if (e == EINVAL || e == ENOENT)
				return netif_err(err, errlen, e, "afxdp: cannot bind an AF_XDP socket to %s queue %u: %s",
						 ifname, qi, strerror(e));
			if (e == EBUSY)
				return netif_err(err, errlen, e,
						 "afxdp: %s queue %u is taken by another AF_XDP socket (processes still attached to "
						 "a usnet stack whose owner was killed, or another AF_XDP program): stop them first",
						 ifname, qi);
			return netif_err(err, errlen, e, "afxdp: AF_XDP socket on %s queue %u: %s", ifname, qi, strerror(e));
		}
		afx_ring_unmap(&q->fill);
		afx_ring_unmap(&q->comp);
		afx_ring_unmap(&q->rx);
		afx_ring_unmap(&q->tx);
		close(q->fd);
		q->fd = -1;
		usleep(20000);
	}
	/* Give the kernel the rx half; the tx half is the pool. */
	struct afx_qstate *st = q->st;
	st->fill_cons = __atomic_load_n(q->fill.consumer, __ATOMIC_ACQUIRE) + x->fill_size;
	st->tx_cons = __atomic_load_n(q->tx.consumer, __ATOMIC_ACQUIRE) + x->ring_size;
	st->rx_prod = __atomic_load_n(q->rx.producer, __ATOMIC_ACQUIRE);
	st->comp_prod = __atomic_load_n(q->comp.producer, __ATOMIC_ACQUIRE);
	uint32_t half = x->ring_size;
	if (afx_prod_free(&q->fill, &st->fill_cons, half) < half)
		return netif_err(err, errlen, ENOMEM, "afxdp: cannot fill the fill ring");
	uint32_t prod = *q->fill.producer;
	for (uint32_t i = 0; i < half; i++)
		*afx_addr_at(&q->fill, prod + i) = (uint64_t)i * x->frame_size;
	afx_prod_submit(&q->fill, half);
	for (uint32_t i = 0; i < half; i++)
		q->tx_pool[i] = (uint64_t)(x->frames - 1 - i) * x->frame_size;
	st->tx_nfree = half;
	return 0;
}

/*
 * The region: header, per-queue state, tx pools, fill stashes, and room for
 * the ARP copies between queues (arp_share.c: a small ring per pair of
 * queues).  The memfd is sparse: pages cost memory once touched.
 */
static int afx_region_create(struct afx_netif *x, char *err, size_t errlen)
{
	size_t arr = (size_t)x->nq * x->ring_size * sizeof(uint64_t);
	size_t size = 64 + 64 + (size_t)x->nq * sizeof(struct afx_qstate) + 64 + 2 * (arr + 64) + netif_arp_share_size(x->nq) + 64;
	int r = netif_shm_region_create(&x->region, "usnet-afxdp", size, err, errlen);
	if (r)
		return r;
	size_t head = x->head_off = netif_shm_region_alloc(&x->region, sizeof(struct afx_region_head));
	x->q_off = netif_shm_region_alloc(&x->region, (size_t)x->nq * sizeof(struct afx_qstate));
	x->pool_off = netif_shm_region_alloc(&x->region, arr);
	x->stash_off = netif_shm_region_alloc(&x->region, arr);
	if (head == NETIF_SHM_NONE || x->q_off == NETIF_SHM_NONE || x->pool_off == NETIF_SHM_NONE ||
	    x->stash_off == NETIF_SHM_NONE)
		return netif_err(err, errlen, ENOMEM, "afxdp: its shared memory is too small (%zu bytes)", size);
	struct afx_region_head *h = netif_shm_at(&x->region, head);
	*h = (struct afx_region_head){ .magic = AFX_REGION_MAGIC, .version = AFX_SHARE_VERSION, .nq = x->nq,
				       .frames = x->frames, .frame_size = x->frame_size };
	return 0;
}

/* Every queue's UMEM in one memfd, so another process can map it. */
static int afx_umem_create(struct afx_netif *x, char *err, size_t errlen)
{
	x->umem_len = (size_t)x->nq * x->frames * x->frame_size;
	x->umem_fd = memfd_create("usnet-afxdp-umem", MFD_CLOEXEC);
	if (x->umem_fd < 0)
		return netif_err(err, errlen, errno, "afxdp: cannot create the UMEM's memfd: %s", strerror(errno));
	if (ftruncate(x->umem_fd, (off_t)x->umem_len))
		return netif_err(err, errlen, errno, "afxdp: cannot size %zu bytes of UMEM: %s", x->umem_len,
				 strerror(errno));
	void *m = mmap(NULL, x->umem_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->umem_fd, 0);
	if (m == MAP_FAILED)
		return netif_err(err, errlen, ENOMEM, "afxdp: cannot map %zu bytes of UMEM", x->umem_len);
	x->umem = m;
	return 0;
}

/* A zeroed process-local object, every fd -1. */
static struct afx_netif *afx_new(void)
{
	struct afx_netif *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->base.ops = &afx_ops;
	x->prog_fd = -1;
	x->link_fd = -1;
	x->umem_fd = -1;
	x->ports_fd = -1;
	x->groups_fd = -1;
	x->region.fd = -1;
	for (unsigned i = 0; i < AFX_MAX_QUEUES; i++)
		x->q[i].fd = -1;
	return x;
}

static const char *const afx_known_opts[] = { "mode", "ip", "copy", "zerocopy", "frames", "frame", NULL };

int netif_afxdp_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		     char *err, size_t errlen)
{
	int r = netif_opt_check(cfg->options, afx_known_opts, "afxdp", err, errlen);
	if (r)
		return r;
	char mode[16], ipstr[32];
	if (!netif_opt_get(cfg->options, "mode", mode, sizeof mode))
		strcpy(mode, "native");
	if (strcmp(mode, "native") && strcmp(mode, "skb"))
		return netif_err(err, errlen, EINVAL, "afxdp: mode=%s: want mode=native or mode=skb", mode);
	bool skb = !strcmp(mode, "skb");
	uint32_t ip_be = htonl(cfg->ipv4);
	if (netif_opt_get(cfg->options, "ip", ipstr, sizeof ipstr)) {
		struct in_addr a;
		if (inet_pton(AF_INET, ipstr, &a) != 1)
			return netif_err(err, errlen, EINVAL, "afxdp: ip=%s is not an IPv4 address", ipstr);
		ip_be = a.s_addr;
	}
	uint16_t bind_flags = 0;
	if (netif_opt_get(cfg->options, "copy", NULL, 0))
		bind_flags |= XDP_COPY;
	if (netif_opt_get(cfg->options, "zerocopy", NULL, 0))
		bind_flags |= XDP_ZEROCOPY;
	if (bind_flags == (XDP_COPY | XDP_ZEROCOPY))
		return netif_err(err, errlen, EINVAL, "afxdp: copy and zerocopy exclude each other");
	uint64_t frames = 4096, frame = 2048;
	if ((r = netif_opt_uint(cfg->options, "frames", 64, 1u << 20, &frames, err, errlen)) ||
	    (r = netif_opt_uint(cfg->options, "frame", 2048, 4096, &frame, err, errlen)))
		return r;
	if ((frames & (frames - 1)) || (frame != 2048 && frame != 4096))
		return netif_err(err, errlen, EINVAL, "afxdp: frames and frame must be powers of two (frame 2048 or 4096)");
	uint16_t nq = cfg->queues ? cfg->queues : 1;
	if (nq > AFX_MAX_QUEUES)
		return netif_err(err, errlen, EINVAL, "afxdp: at most %d queues", AFX_MAX_QUEUES);
	int ifindex;
	uint32_t mtu;
	uint8_t mac[6];
	if ((r = netif_iface_lookup("afxdp", cfg->iface, &ifindex, &mtu, mac, err, errlen)))
		return r;
	if (mtu + 14 > frame - AFX_RX_HEADROOM)
		return netif_err(err, errlen, EMSGSIZE,
				 "afxdp: MTU %u of %s is larger than a %u-byte AF_XDP frame holds: lower it (`ip link set dev %s mtu %u`)%s",
				 mtu, cfg->iface, (unsigned)frame, cfg->iface, (unsigned)(frame - AFX_RX_HEADROOM - 14),
				 frame < 4096 ? " or use frame=4096" : "");
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	if (afx_ethtool(cfg->iface, &ch) == 0) {
		uint32_t have = ch.combined_count > ch.rx_count ? ch.combined_count : ch.rx_count;
		if (have && nq > have)
			return netif_err(err, errlen, EINVAL, "afxdp: %s has %u queue%s, asked for %u",
					 cfg->iface, have, have == 1 ? "" : "s", nq);
	}
	if ((r = afx_check_veth_peer(cfg->iface, ifindex, err, errlen)))
		return r;

	libbpf_set_print(afx_quiet_libbpf);
	/* Before binding sockets: a live owner's sockets would make the bind
	 * fail with a less helpful EBUSY. */
	uint32_t live = 0;
	if (afx_scan_attached(ifindex, &live))
		return afx_err_attached(cfg->iface, live, err, errlen);
	struct afx_netif *x = afx_new();
	if (!x)
		return netif_err(err, errlen, ENOMEM, "afxdp: out of memory");
	x->owner = getpid();
	x->ifindex = ifindex;
	x->nq = nq;
	x->frames = (uint32_t)frames;
	x->frame_size = (uint32_t)frame;
	x->ring_size = x->frames / 2;
	x->fill_size = x->frames;
	x->bind_flags = bind_flags;
	x->arp_off = NETIF_SHM_NONE;
	if ((r = afx_region_create(x, err, errlen)) || (r = afx_umem_create(x, err, errlen)))
		goto fail;
	if (nq > 1) {
		x->arp_off = netif_arp_share_create(&x->region, nq);
		x->arp = x->arp_off == NETIF_SHM_NONE ? NULL : netif_arp_share_open(&x->region, x->arp_off);
		if (!x->arp) {
			r = netif_err(err, errlen, ENOMEM, "afxdp: out of memory for the ARP copies between queues");
			goto fail;
		}
	}
	for (uint16_t i = 0; i < nq; i++) {
		afx_queue_bind_state(x, i);
		if ((r = afx_queue_socket(x, &x->q[i], cfg->iface, i, err, errlen)))
			goto fail;
	}
	if (cfg->steer_ports && !ip_be) {
		r = netif_err(err, errlen, EINVAL, "afxdp: steering by port needs the shared address (cfg.ipv4)");
		goto fail;
	}
	uint8_t ip6[USNET_NETIF_IPV6_MAX + 1][16];
	unsigned nip6 = netif_ipv6_addrs(cfg, cfg->has_mac ? cfg->mac : mac, ip6);
	if ((r = afx_attach_prog(x, cfg->iface, ip_be, ip6, nip6, skb, cfg->steer_ports, err, errlen)))
		goto fail;
	afx_read_rss(x, cfg->iface);
	afx_track(x);
	struct usnet_netif_info *in = &x->base.info;
	netif_set_name(in->backend, "afxdp");
	netif_set_name(in->ifname, cfg->iface);
	in->nqueues = nq;
	in->mtu = mtu;
	in->frame_size = x->frame_size - AFX_RX_HEADROOM;
	in->caps = USNET_NETIF_CAP_SHARED | (nq > 1 ? USNET_NETIF_CAP_MULTIQ : 0);
	memcpy(in->mac, cfg->has_mac ? cfg->mac : mac, 6);
	*out = &x->base;
	return 0;
fail:
	afx_close(&x->base);
	return r;
}

/* ---- sharing with processes that did not fork (usnet/netif_share.h) ----- */

/*
 * The share: fds[0] the region's memfd, fds[1] the UMEM's memfd, fds[2 + q]
 * queue q's AF_XDP socket (its rings, its wait fd, the socket sendto/recvfrom
 * wake).  The blob says how to read them.  The XDP program, its maps and its
 * link stay with the owner: an attached process needs none of them.
 */
struct afx_share_blob {
	uint32_t magic, version;
	uint32_t nq, frames, frame_size, fill_size, ring_size;
	uint32_t xdp_flags, bind_flags;  /* how the owner opened it (for the record) */
	uint32_t mtu, caps;
	uint8_t mac[6];
	uint8_t rss_known, rss_tcp_ports, rss_udp_ports;
	uint8_t has_link;   /* the program's bpf_link comes last among the fds */
	uint8_t steer_ports;  /* host-address mode: the port bitmap's fd follows the queues' */
	uint8_t pad[2];
	char ifname[USNET_NETIF_NAME_MAX];
	uint64_t region_size, umem_size;
	uint64_t head_off, q_off, pool_off, stash_off, arp_off; /* arp_off: NETIF_SHM_NONE for one queue */
	uint32_t rss_key_len, rss_indir_len;
	uint8_t rss_key[64];
	uint8_t rss_indir[AFX_RSS_INDIR_MAX]; /* queue numbers, < AFX_MAX_QUEUES */
};
_Static_assert(sizeof(struct afx_share_blob) <= USNET_NETIF_SHARE_BLOB, "afxdp's share blob is too large");
_Static_assert(5 + AFX_MAX_QUEUES <= USNET_NETIF_SHARE_FDS, "afxdp shares more fds than a share holds");

int netif_afxdp_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
{
	if (nif->ops != &afx_ops)
		return netif_err(err, errlen, EINVAL, "afxdp: not an afxdp netif");
	struct afx_netif *x = (struct afx_netif *)nif;
	if (x->region.fd < 0 || x->umem_fd < 0)
		return netif_err(err, errlen, EBADF, "afxdp: this netif's shared memory is not open here");
	struct afx_share_blob b;
	memset(&b, 0, sizeof b);
	b.magic = AFX_REGION_MAGIC;
	b.version = AFX_SHARE_VERSION;
	b.nq = x->nq;
	b.frames = x->frames;
	b.frame_size = x->frame_size;
	b.fill_size = x->fill_size;
	b.ring_size = x->ring_size;
	b.xdp_flags = x->xdp_flags;
	b.bind_flags = x->bind_flags;
	b.mtu = nif->info.mtu;
	b.caps = nif->info.caps;
	memcpy(b.mac, nif->info.mac, 6);
	memcpy(b.ifname, nif->info.ifname, sizeof b.ifname);
	b.region_size = x->region.size;
	b.umem_size = x->umem_len;
	b.head_off = x->head_off;
	b.q_off = x->q_off;
	b.pool_off = x->pool_off;
	b.stash_off = x->stash_off;
	b.arp_off = x->arp_off;
	b.rss_known = x->rss_known;
	b.rss_tcp_ports = x->rss_tcp_ports;
	b.rss_udp_ports = x->rss_udp_ports;
	if (x->rss_known) {
		b.rss_key_len = x->rss_key_len;
		b.rss_indir_len = x->rss_indir_len;
		memcpy(b.rss_key, x->rss_key, x->rss_key_len);
		for (uint32_t i = 0; i < x->rss_indir_len; i++)
			b.rss_indir[i] = (uint8_t)(x->rss_indir[i] < AFX_MAX_QUEUES ? x->rss_indir[i] : AFX_MAX_QUEUES);
	}
	out->nfds = 2u + x->nq;
	out->fds[0] = x->region.fd;
	out->fds[1] = x->umem_fd;
	for (uint16_t i = 0; i < x->nq; i++)
		out->fds[2 + i] = x->q[i].fd;
	if (x->ports) {
		b.steer_ports = 1;
		out->fds[out->nfds++] = x->ports_fd;
	}
	out->fds[out->nfds++] = x->groups_fd;
	/* Every attached process holds the program's link too: the program
	 * stays attached while any of them lives, even when the process that
	 * opened the netif is killed (its explicit close still detaches). */
	if (x->link_fd >= 0) {
		b.has_link = 1;
		out->fds[out->nfds++] = x->link_fd;
	}
	out->blob_len = sizeof b;
	memcpy(out->blob, &b, sizeof b);
	return 0;
}

/* Whether [off, off + len) lies inside a region of `size` bytes. */
static bool afx_fits(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

int netif_afxdp_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
{
	struct afx_share_blob b;
	uint32_t nfds = sh->nfds < USNET_NETIF_SHARE_FDS ? sh->nfds : USNET_NETIF_SHARE_FDS;
	const char *why = NULL;
	memset(&b, 0, sizeof b);
	if (sh->blob_len != sizeof b)
		why = "its description has the wrong size (another usnet version?)";
	else
		memcpy(&b, sh->blob, sizeof b);
	if (!why && (b.magic != AFX_REGION_MAGIC || b.version != AFX_SHARE_VERSION))
		why = "its description is of another usnet version";
	else if (!why && (b.nq < 1 || b.nq > AFX_MAX_QUEUES || b.steer_ports > 1 || b.has_link > 1 ||
			  nfds != 3 + b.nq + b.steer_ports + b.has_link))
		why = "the number of queues and of fds received disagree";
	else if (!why && (b.frames < 64 || b.frames > (1u << 20) || (b.frames & (b.frames - 1)) ||
			  (b.frame_size != 2048 && b.frame_size != 4096) || b.ring_size != b.frames / 2 ||
			  b.fill_size != b.frames || b.umem_size != (uint64_t)b.nq * b.frames * b.frame_size))
		why = "its ring and frame sizes are inconsistent";
	else if (!why && (!afx_fits(b.head_off, sizeof(struct afx_region_head), b.region_size) ||
			  !afx_fits(b.q_off, (uint64_t)b.nq * sizeof(struct afx_qstate), b.region_size) ||
			  !afx_fits(b.pool_off, (uint64_t)b.nq * b.ring_size * 8, b.region_size) ||
			  !afx_fits(b.stash_off, (uint64_t)b.nq * b.ring_size * 8, b.region_size) ||
			  b.q_off % 64))
		why = "its shared state lies outside its region";
	else if (!why && b.rss_known && (b.rss_key_len > sizeof b.rss_key || b.rss_key_len < 16 ||
					 !b.rss_indir_len || b.rss_indir_len > AFX_RSS_INDIR_MAX))
		why = "its RSS set-up is inconsistent";
	if (why) {
		for (uint32_t i = 0; i < nfds; i++)
			close(sh->fds[i]);
		return netif_err(err, errlen, EPROTO, "afxdp: cannot attach: %s", why);
	}
	struct afx_netif *x = afx_new();
	if (!x) {
		for (uint32_t i = 0; i < nfds; i++)
			close(sh->fds[i]);
		return netif_err(err, errlen, ENOMEM, "afxdp: out of memory");
	}
	/* From here on every fd is x's: afx_close lets go of them. */
	int r;
	x->umem_fd = sh->fds[1];
	for (uint32_t i = 0; i < b.nq; i++)
		x->q[i].fd = sh->fds[2 + i];
	if (b.steer_ports)
		x->ports_fd = sh->fds[2 + b.nq];
	x->groups_fd = sh->fds[2 + b.nq + b.steer_ports];
	if (b.has_link)
		x->link_fd = sh->fds[3 + b.nq + b.steer_ports];
	x->owner = 0; /* never the owner: close releases only this process's view */
	x->nq = (uint16_t)b.nq;
	x->frames = b.frames;
	x->frame_size = b.frame_size;
	x->fill_size = b.fill_size;
	x->ring_size = b.ring_size;
	x->xdp_flags = b.xdp_flags;
	x->bind_flags = (uint16_t)b.bind_flags;
	x->q_off = b.q_off;
	x->pool_off = b.pool_off;
	x->stash_off = b.stash_off;
	r = netif_shm_region_map(&x->region, sh->fds[0], err, errlen);
	if (r)
		goto fail;
	if (x->ports_fd >= 0 && (r = afx_ports_map(x, x->ports_fd, err, errlen)))
		goto fail;
	if ((r = afx_groups_map(x, x->groups_fd, err, errlen)))
		goto fail;
	const struct afx_region_head *h = netif_shm_at(&x->region, b.head_off);
	if (x->region.size < b.region_size || h->magic != AFX_REGION_MAGIC ||
	    h->version != AFX_SHARE_VERSION || h->nq != b.nq || h->frames != b.frames || h->frame_size != b.frame_size) {
		r = netif_err(err, errlen, EPROTO, "afxdp: cannot attach: the shared memory received is not this netif's");
		goto fail;
	}
	struct stat st;
	if (fstat(x->umem_fd, &st) || (uint64_t)st.st_size < b.umem_size) {
		r = netif_err(err, errlen, EPROTO, "afxdp: cannot attach: the UMEM received is smaller than its %" PRIu64
			      " bytes", (uint64_t)b.umem_size);
		goto fail;
	}
	x->umem_len = b.umem_size;
	void *m = mmap(NULL, x->umem_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->umem_fd, 0);
	if (m == MAP_FAILED) {
		r = netif_err(err, errlen, errno, "afxdp: cannot map the UMEM received (%zu bytes): %s", x->umem_len,
			      strerror(errno));
		goto fail;
	}
	x->umem = m;
	for (uint16_t i = 0; i < x->nq; i++) {
		int dom = 0;
		socklen_t dl = sizeof dom;
		if (getsockopt(x->q[i].fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) || dom != AF_XDP) {
			r = netif_err(err, errlen, EPROTO, "afxdp: cannot attach: the fd received for queue %u is no AF_XDP socket", i);
			goto fail;
		}
		afx_queue_bind_state(x, i);
		if ((r = afx_queue_map(x, &x->q[i], err, errlen)))
			goto fail;
	}
	/* The ARP copies between queues, in the region too. */
	x->arp_off = b.arp_off;
	if (x->nq > 1 && (b.arp_off == NETIF_SHM_NONE || !(x->arp = netif_arp_share_open(&x->region, b.arp_off)))) {
		r = netif_err(err, errlen, EPROTO, "afxdp: cannot attach: no ARP copies between queues in the "
			      "shared memory received");
		goto fail;
	}
	x->rss_known = b.rss_known;
	x->rss_tcp_ports = b.rss_tcp_ports;
	x->rss_udp_ports = b.rss_udp_ports;
	if (b.rss_known) {
		x->rss_key_len = b.rss_key_len;
		x->rss_indir_len = b.rss_indir_len;
		memcpy(x->rss_key, b.rss_key, b.rss_key_len);
		for (uint32_t i = 0; i < b.rss_indir_len; i++)
			x->rss_indir[i] = b.rss_indir[i];
	}
	struct usnet_netif_info *in = &x->base.info;
	netif_set_name(in->backend, "afxdp");
	b.ifname[sizeof b.ifname - 1] = 0;
	netif_set_name(in->ifname, b.ifname);
	in->nqueues = x->nq;
	in->mtu = b.mtu;
	in->frame_size = x->frame_size - AFX_RX_HEADROOM;
	in->caps = USNET_NETIF_CAP_SHARED | (x->nq > 1 ? USNET_NETIF_CAP_MULTIQ : 0);
	memcpy(in->mac, b.mac, 6);
	*out = &x->base;
	return 0;
fail:
	afx_close(&x->base);
	return r;
}

int netif_afxdp_port_steered(struct usnet_netif *nif, uint8_t proto, uint16_t port)
{
	if (nif->ops != &afx_ops)
		return -EOPNOTSUPP;
	return netif_ports_get(((struct afx_netif *)nif)->ports, proto, port);
}

int netif_afxdp_steer_port(struct usnet_netif *nif, uint8_t proto, uint16_t port, int on)
{
	if (nif->ops != &afx_ops)
		return -EOPNOTSUPP;
	return netif_ports_set(((struct afx_netif *)nif)->ports, proto, port, on);
}

int netif_afxdp_steer_group(struct usnet_netif *nif, uint32_t group, int on)
{
	if (nif->ops != &afx_ops)
		return -EOPNOTSUPP;
	struct afx_netif *x = (struct afx_netif *)nif;
	if (!x->groups)
		return -EBADF;
	uint32_t g = htonl(group), *free_slot = NULL;
	for (uint32_t i = 0; i < AFX_GROUP_SLOTS; i++) {
		uint32_t *slot = (uint32_t *)x->groups[i];
		if (*slot == g) {
			if (!on)
				__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
			return 0;
		}
		if (!*slot && !free_slot)
			free_slot = slot;
	}
	if (!on)
		return 0;
	if (!free_slot)
		return -ENOSPC;
	__atomic_store_n(free_slot, g, __ATOMIC_RELEASE);
	return 0;
}

/* An IPv6 group's 16 bytes: the tail first, then the first word (the
 * program never matches a group by a slot half written: a multicast
 * address's first word is never 0), and 0 the other way round. */
int netif_afxdp_steer_group6(struct usnet_netif *nif, const uint8_t group[16], int on)
{
	if (nif->ops != &afx_ops)
		return -EOPNOTSUPP;
	struct afx_netif *x = (struct afx_netif *)nif;
	if (!x->groups)
		return -EBADF;
	static const uint8_t zero[16];
	uint8_t *free_slot = NULL;
	for (uint32_t i = AFX_GROUP_SLOTS; i < AFX_GROUP_SLOTS + AFX_GROUP6_SLOTS; i++) {
		uint8_t *slot = x->groups[i];
		if (!memcmp(slot, group, 16)) {
			if (on)
				return 0;
			__atomic_store_n((uint32_t *)slot, 0, __ATOMIC_RELEASE);
			memset(slot + 4, 0, 12);
			return 0;
		}
		if (!memcmp(slot, zero, 16) && !free_slot)
			free_slot = slot;
	}
	if (!on)
		return 0;
	if (!free_slot)
		return -ENOSPC;
	uint32_t head;
	memcpy(free_slot + 4, group + 4, 12);
	memcpy(&head, group, 4);
	__atomic_store_n((uint32_t *)free_slot, head, __ATOMIC_RELEASE);
	return 0;
}
