/*
 * afxdp: AF_XDP sockets (libxdp's xsk API), one per queue, each with its own
 * UMEM, plus an XDP program (src/netif/xdp/usnet_steer.bpf.c, built with
 * clang and embedded in the library) that steers only usnet's frames (IPv4
 * to its address, ARP for it) to the sockets and passes the rest to the
 * kernel.
 *
 * UMEM of a queue: `frames` chunks; the first half feeds the fill ring (rx),
 * the second half is the tx pool.  Frames are lent in place both ways:
 * rx_burst lends rx descriptors' chunks, rx_release puts them back on the
 * fill ring; tx_alloc lends chunks from the tx pool, tx_burst puts them on
 * the tx ring, and completed ones come back to the pool.  Rings use the
 * need_wakeup protocol: flush makes a system call only when the kernel asks
 * for one.  Wait fd: the socket.
 *
 * Options: mode=native|skb, ip=A.B.C.D (or cfg.ipv4), copy|zerocopy,
 * frames=N (per queue, power of two, default 4096), frame=2048|4096.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "netif_internal.h"

/* The compiled XDP program, embedded by afxdp_prog.S. */
extern const unsigned char usnet_xdp_obj[] __attribute__((visibility("hidden")));
extern const unsigned char usnet_xdp_obj_end[] __attribute__((visibility("hidden")));

#define AFX_MAX_QUEUES 64
#define AFX_OWNER_KEY 1 /* usnet_addr[1]: PID of the process that attached the program */
#define AFX_RX_HEADROOM 256
/* Received frames go back to the fill ring this many at a time (and all of
 * them whenever the rx ring is found empty): the kernel, which fills frames
 * on the sending CPU, then reads the ring's producer and descriptors once
 * per batch instead of taking their cache lines from us for every frame. */
#define AFX_FILL_BATCH 32
#define AFX_RSS_HASH_TOEPLITZ 1u /* ethtool's hash function bit 0 (kernel ETH_RSS_HASH_TOP) */ /* XDP_PACKET_HEADROOM: where the kernel puts rx data */

struct afx_queue {
	struct xsk_socket *xsk;
	struct xsk_umem *umem;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	uint8_t *area;
	size_t area_len;
	uint64_t *tx_pool;
	uint32_t tx_nfree, tx_cap;
	uint64_t fill_stash[AFX_FILL_BATCH]; /* released rx frames not yet on the fill ring */
	uint32_t fill_nstash;
	bool tx_pending;
	int fd;
};

struct afx_netif {
	struct usnet_netif base;
	int ifindex;
	uint32_t xdp_flags;
	struct bpf_object *obj;
	int prog_fd;
	int link_fd;   /* the bpf_link that attaches the program, or -1 */
	bool attached; /* attached through netlink (kernels without XDP links) */
	pid_t owner;   /* the process that opened it (see "fork" below) */
	struct afx_netif *next_open; /* afx_open_list */
	struct netif_arp_share *arp; /* ARP reaches one queue only: share it */
	struct netif_shm_region arp_shm; /* where arp's state lives */
	uint32_t frame_size, frames;
	uint16_t nq;
	/* The device's RSS (Toeplitz) set-up, for usnet_netif_flow_queue(). */
	bool rss_known, rss_tcp_ports, rss_udp_ports;
	uint8_t rss_key[64];
	uint32_t rss_key_len, rss_indir_len;
	uint32_t rss_indir[512];
	struct afx_queue q[AFX_MAX_QUEUES];
};

static int afx_quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level; (void)fmt; (void)ap;
	return 0; /* failures are reported through the error line instead */
}

static int afx_quiet_libxdp(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	(void)level; (void)fmt; (void)ap;
	return 0;
}

/* ---- fork --------------------------------------------------------------- */

/*
 * The netif is usable from forked children (USNET_NETIF_CAP_SHARED): this
 * struct, with libxdp's ring structs (each ring's cached producer/consumer
 * index), the tx pool and the UMEM, lives in MAP_SHARED memory, the ring
 * mappings of an xsk fd are shared anyway, and a child inherits the fds.  As
 * with the other shared backends, its users serialise the calls on a queue
 * (usnet run's provider holds its process-shared lock around them).
 * libxdp's own objects (struct xsk_socket, xsk_umem, the bpf_object) stay in
 * the opener's private memory: only the owner tears them down and detaches
 * the program; a child's close lets go of nothing the owner still uses.
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

/* The stashed rx frames onto the fill ring. */
static void afx_fill_flush(struct afx_queue *q)
{
	uint32_t idx, n = q->fill_nstash;
	/* The fill ring has room for every rx chunk, so this cannot fail
	 * unless the caller released what it was not lent. */
	if (n == 0 || xsk_ring_prod__reserve(&q->fill, n, &idx) != n)
		return;
	for (uint32_t i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&q->fill, idx + i) = q->fill_stash[i];
	xsk_ring_prod__submit(&q->fill, n);
	q->fill_nstash = 0;
}

static int afx_rx_burst_ring(struct afx_netif *x, uint16_t qi, struct usnet_pkt *pkts, unsigned max)
{
	struct afx_queue *q = &x->q[qi];
	uint32_t idx;
	unsigned n = xsk_ring_cons__peek(&q->rx, max, &idx);
	if (n == 0) {
		afx_fill_flush(q);
		/* The kernel may be waiting for fill-ring entries we gave it. */
		if (xsk_ring_prod__needs_wakeup(&q->fill))
			recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + i);
		uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
		struct usnet_pkt *p = &pkts[i];
		p->data = q->area + addr;
		p->len = d->len;
		p->flags = 0;
		p->csum_start = p->csum_offset = 0;
		p->queue = qi;
		p->id = addr;
	}
	xsk_ring_cons__release(&q->rx, n);
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
	for (unsigned i = 0; i < n; i++) {
		q->fill_stash[q->fill_nstash++] = pkts[i].id - pkts[i].id % x->frame_size;
		if (q->fill_nstash == AFX_FILL_BATCH)
			afx_fill_flush(q);
	}
}

static void afx_reclaim(struct afx_queue *q)
{
	uint32_t idx;
	unsigned n = xsk_ring_cons__peek(&q->comp, q->tx_cap, &idx);
	for (unsigned i = 0; i < n && q->tx_nfree < q->tx_cap; i++)
		q->tx_pool[q->tx_nfree++] = *xsk_ring_cons__comp_addr(&q->comp, idx + i);
	if (n)
		xsk_ring_cons__release(&q->comp, n);
}

static int afx_tx_alloc(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (__builtin_expect(qi >= x->nq, 0))
		return -EINVAL;
	struct afx_queue *q = &x->q[qi];
	if (q->tx_nfree < n)
		afx_reclaim(q);
	unsigned k = 0;
	for (; k < n && q->tx_nfree; k++) {
		uint64_t addr = q->tx_pool[--q->tx_nfree];
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
	unsigned k = xsk_prod_nb_free(&q->tx, n);
	if (k < n && q->tx_pending) {
		/* Ring full: have the kernel drain it (a caller that only
		 * retries would otherwise wait for ever). */
		afx_flush(nif, qi);
		k = xsk_prod_nb_free(&q->tx, n);
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
	uint32_t idx;
	if (xsk_ring_prod__reserve(&q->tx, i, &idx) != i)
		return 0;
	for (unsigned j = 0; j < i; j++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + j);
		d->addr = (uint64_t)(pkts[j].data - q->area);
		d->len = pkts[j].len;
		d->options = 0;
	}
	xsk_ring_prod__submit(&q->tx, i);
	q->tx_pending = true;
	return (int)i;
}

static void afx_tx_free(struct usnet_netif *nif, uint16_t qi, struct usnet_pkt *pkts, unsigned n)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (qi >= x->nq)
		return;
	struct afx_queue *q = &x->q[qi];
	for (unsigned i = 0; i < n && q->tx_nfree < q->tx_cap; i++)
		q->tx_pool[q->tx_nfree++] = pkts[i].id - pkts[i].id % x->frame_size;
}

static int afx_flush(struct usnet_netif *nif, uint16_t qi)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (__builtin_expect(qi >= x->nq, 0))
		return -EINVAL;
	struct afx_queue *q = &x->q[qi];
	int ret = 0;
	if (q->tx_pending) {
		q->tx_pending = false;
		/* In copy mode one send() moves at most 32 frames and says
		 * EAGAIN while more wait: repeat until the ring is empty (or
		 * the kernel stops making progress). */
		for (int tries = 0; tries < 256 && xsk_ring_prod__needs_wakeup(&q->tx); tries++) {
			if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) == 0)
				break;
			if (errno == EAGAIN || errno == EBUSY) {
				afx_reclaim(q); /* a full completion ring also stops it */
				if (*q->tx.consumer == *q->tx.producer)
					break;
				continue;
			}
			if (errno != ENOBUFS && errno != ENETDOWN)
				ret = -errno;
			break;
		}
	}
	afx_reclaim(q);
	return ret;
}

static int afx_wait_fd(struct usnet_netif *nif, uint16_t qi)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	return qi < x->nq ? x->q[qi].fd : -1;
}

static void afx_close(struct usnet_netif *nif)
{
	struct afx_netif *x = (struct afx_netif *)nif;
	if (x->owner != getpid()) {
		/* A forked child's copy: the owner keeps using the sockets, the
		 * program and the memory; this process only lets go of its
		 * reference to the program's link (the mappings go at exit). */
		if (x->link_fd >= 0)
			close(x->link_fd);
		return;
	}
	afx_untrack(x);
	if (x->link_fd >= 0)
		close(x->link_fd); /* the kernel detaches when the last link fd goes */
	if (x->attached) {
		/* Only if it is still ours. */
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = x->prog_fd);
		bpf_xdp_detach(x->ifindex, x->xdp_flags, &opts);
	}
	for (unsigned i = 0; i < AFX_MAX_QUEUES; i++) {
		struct afx_queue *q = &x->q[i];
		if (q->xsk)
			xsk_socket__delete(q->xsk);
		if (q->umem)
			xsk_umem__delete(q->umem);
		if (q->area)
			munmap(q->area, q->area_len);
		netif_shm_free(q->tx_pool);
	}
	if (x->obj)
		bpf_object__close(x->obj);
	netif_arp_share_free(x->arp);
	netif_shm_region_release(&x->arp_shm);
	netif_shm_free(x);
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

/*
 * Look at the XDP programs attached to the interface.  A usnet steering
 * program left attached through netlink by a usnet process that is gone (an
 * older build, or a kernel without XDP links) is removed so that this open can
 * go on; a program of anyone else, one whose owner is unknown, or one of a
 * live process stays.  Returns whether a program is still attached; *owner is
 * set to the live usnet process holding it (0: not usnet's, or unknown).
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
			if (owner && kill((pid_t)owner, 0) && errno == ESRCH) {
				LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = pfd);
				if (bpf_xdp_detach(ifindex, modes[m], &o) == 0)
					busy = false;
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
	if (owner)
		return netif_err(err, errlen, EBUSY,
				 "afxdp: %s already has an XDP program attached by usnet process %u: stop that process first",
				 ifname, owner);
	return netif_err(err, errlen, EBUSY,
			 "afxdp: %s already has an XDP program attached: remove it (`ip link set dev %s xdp off`, or `xdp-loader unload %s --all`)",
			 ifname, ifname, ifname);
}

static int afx_attach_prog(struct afx_netif *x, const char *ifname, uint32_t ip_be, bool skb,
			   char *err, size_t errlen)
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

static int afx_open_queue(struct afx_netif *x, struct afx_queue *q, const char *ifname, uint32_t qi,
			  uint16_t bind_flags, char *err, size_t errlen)
{
	q->area_len = (size_t)x->frames * x->frame_size;
	/* shared: a forked child's view of the frames is the kernel's */
	q->area = mmap(NULL, q->area_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (q->area == MAP_FAILED) {
		q->area = NULL;
		return netif_err(err, errlen, ENOMEM, "afxdp: cannot map %zu bytes of UMEM", q->area_len);
	}
	uint32_t half = x->frames / 2;
	struct xsk_umem_config uc = {
		.fill_size = half, .comp_size = half, .frame_size = x->frame_size,
		.frame_headroom = 0, .flags = 0,
	};
	struct xsk_socket_config sc = {
		.rx_size = half, .tx_size = half,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = (uint16_t)(bind_flags | XDP_USE_NEED_WAKEUP),
	};
	int r;
	/* EBUSY: the queue still holds the socket of a process that is
	 * exiting (the kernel lets go of it when the last fd closes); give it
	 * up to a second, with a fresh UMEM each try. */
	for (int tries = 0;; tries++) {
		r = xsk_umem__create(&q->umem, q->area, q->area_len, &q->fill, &q->comp, &uc);
		if (r) {
			q->umem = NULL;
			if (r == -EPERM || r == -EACCES)
				return netif_err(err, errlen, EPERM,
						 "afxdp: need root (CAP_NET_RAW, CAP_IPC_LOCK) to register UMEM");
			return netif_err(err, errlen, -r, "afxdp: cannot register UMEM: %s", strerror(-r));
		}
		r = xsk_socket__create(&q->xsk, ifname, qi, q->umem, &q->rx, &q->tx, &sc);
		if (r != -EBUSY || tries == 50)
			break;
		q->xsk = NULL;
		xsk_umem__delete(q->umem);
		q->umem = NULL;
		usleep(20000);
	}
	if (r) {
		q->xsk = NULL;
		if (r == -EOPNOTSUPP && (bind_flags & XDP_ZEROCOPY))
			return netif_err(err, errlen, EOPNOTSUPP,
					 "afxdp: %s has no zero-copy AF_XDP support: drop the option zerocopy", ifname);
		if (r == -EINVAL || r == -ENOENT)
			return netif_err(err, errlen, -r, "afxdp: cannot bind an AF_XDP socket to %s queue %u: %s",
					 ifname, qi, strerror(-r));
		return netif_err(err, errlen, -r, "afxdp: AF_XDP socket on %s queue %u: %s", ifname, qi, strerror(-r));
	}
	q->fd = xsk_socket__fd(q->xsk);
	/* Give the kernel the rx half. */
	uint32_t idx;
	if (xsk_ring_prod__reserve(&q->fill, half, &idx) != half)
		return netif_err(err, errlen, ENOMEM, "afxdp: cannot fill the fill ring");
	for (uint32_t i = 0; i < half; i++)
		*xsk_ring_prod__fill_addr(&q->fill, idx + i) = (uint64_t)i * x->frame_size;
	xsk_ring_prod__submit(&q->fill, half);
	q->tx_cap = half;
	q->tx_pool = netif_shm_calloc(sizeof(uint64_t) * half);
	if (!q->tx_pool)
		return netif_err(err, errlen, ENOMEM, "afxdp: out of memory");
	for (uint32_t i = 0; i < half; i++)
		q->tx_pool[i] = (uint64_t)(x->frames - 1 - i) * x->frame_size;
	q->tx_nfree = half;
	return 0;
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
	libxdp_set_print(afx_quiet_libxdp);
	/* Before binding sockets: a live owner's sockets would make the bind
	 * fail with a less helpful EBUSY. */
	uint32_t live = 0;
	if (afx_scan_attached(ifindex, &live))
		return afx_err_attached(cfg->iface, live, err, errlen);
	/* Shared with forked children (USNET_NETIF_CAP_SHARED). */
	struct afx_netif *x = netif_shm_calloc(sizeof *x);
	if (!x)
		return netif_err(err, errlen, ENOMEM, "afxdp: out of memory");
	x->base.ops = &afx_ops;
	x->owner = getpid();
	x->ifindex = ifindex;
	x->nq = nq;
	x->frames = (uint32_t)frames;
	x->frame_size = (uint32_t)frame;
	x->prog_fd = -1;
	x->link_fd = -1;
	x->arp_shm.fd = -1;
	if (nq > 1 && netif_shm_region_create(&x->arp_shm, "usnet-afxdp-arp", netif_arp_share_size(nq), NULL, 0) == 0)
		x->arp = netif_arp_share_open(&x->arp_shm, netif_arp_share_create(&x->arp_shm, nq));
	if (nq > 1 && !x->arp) {
		netif_shm_region_release(&x->arp_shm);
		netif_shm_free(x);
		return netif_err(err, errlen, ENOMEM, "afxdp: out of memory");
	}
	for (uint16_t i = 0; i < nq; i++)
		if ((r = afx_open_queue(x, &x->q[i], cfg->iface, i, bind_flags, err, errlen)))
			goto fail;
	if ((r = afx_attach_prog(x, cfg->iface, ip_be, skb, err, errlen)))
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
