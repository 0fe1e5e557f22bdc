/*
 * tap: a Linux TAP device (IFF_TAP | IFF_NO_PI), created or attached to by
 * name.  One frame per read/write system call (that is what a TAP offers);
 * bursts loop until the device has no more (EAGAIN).  Buffers come from a
 * pool in the netif's shared region.
 *
 * Options: csum   use IFF_VNET_HDR with TUN_F_CSUM, so checksums are
 *                 offloaded both ways (caps TX_CSUM|RX_CSUM);
 *          bufs=N frames in the pool (default 512, half of them for rx).
 * The device is brought up (IFF_UP); its kernel side is configured by the
 * user (addresses, routes).  MAC: random locally administered unless
 * cfg.has_mac.
 *
 * Processes: the buffer pool and its free stack live in one memfd region
 * (struct tap_shared, offsets only); the netif object is each process's own.
 * A forked child inherits object, mapping and fd; another process attaches
 * with the region's memfd and a dup of the TAP fd (usnet/netif_share.h).
 * A device the owner's open created is deleted by the owner's close, even
 * while attached processes still hold the TAP fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "netif_internal.h"

#define TAP_DEFAULT_BUFS 512
#define TAP_SHARED_MAGIC 0x50415455u /* "UTAP" */
#define TAP_SHARE_MAGIC  0x48535054u /* "TPSH": the share blob */
#define TAP_SHARE_VERSION 1

/* What every process using the netif updates: in the region, no pointers. */
struct tap_shared {
	uint32_t magic;
	uint32_t nbufs, frame_size;
	uint32_t nfree;      /* free_stack[0..nfree-1]: free buffer indices */
	uint64_t bufs_off;   /* nbufs x frame_size bytes, from the region's start */
	uint64_t free_off;   /* nbufs x uint32_t */
};

/* The share blob (usnet_netif_share.blob); fds[0] the region, fds[1] the
 * TAP device. */
struct tap_share_blob {
	uint32_t magic, version;
	struct usnet_netif_info info;
	uint32_t vnet;
	uint64_t shared_off;
};

/* This process's view: read-only after open or attach. */
struct tap_netif {
	struct usnet_netif base;
	int fd;
	bool vnet;          /* frames carry a struct virtio_net_hdr in front */
	pid_t owner;        /* the process that opened the device (0: attached) */
	int created_ifindex; /* the device our open created (the owner deletes it), 0: none */
	struct netif_shm_region shm;
	struct tap_shared *sh;
	uint32_t nbufs;
	uint8_t *mem;       /* nbufs x frame_size, in shm */
	uint32_t *free_stack; /* in shm */
};

static uint8_t *tap_buf(struct tap_netif *t, uint32_t b)
{
	return t->mem + (size_t)b * t->base.info.frame_size;
}

static int tap_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max)
{
	struct tap_netif *t = (struct tap_netif *)nif;
	if (q != 0)
		return -EINVAL;
	unsigned n = 0;
	while (n < max && t->sh->nfree > 0) {
		uint32_t b = t->free_stack[t->sh->nfree - 1];
		uint8_t *buf = tap_buf(t, b);
		struct virtio_net_hdr vh;
		struct iovec iov[2];
		int niov = 0;
		if (t->vnet)
			iov[niov++] = (struct iovec){ &vh, sizeof vh };
		iov[niov++] = (struct iovec){ buf, t->base.info.frame_size };
		ssize_t r = readv(t->fd, iov, niov);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || n > 0)
				break;
			return -errno;
		}
		size_t hl = t->vnet ? sizeof vh : 0;
		if ((size_t)r <= hl)
			continue;
		t->sh->nfree--;
		struct usnet_pkt *p = &pkts[n++];
		p->data = buf;
		p->len = (uint32_t)((size_t)r - hl);
		p->flags = 0;
		p->csum_start = p->csum_offset = 0;
		p->queue = 0;
		p->id = b;
		if (t->vnet) {
			if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
				p->flags = USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL;
				p->csum_start = vh.csum_start;
				p->csum_offset = vh.csum_offset;
			} else if (vh.flags & VIRTIO_NET_HDR_F_DATA_VALID) {
				p->flags = USNET_PKT_RX_CSUM_OK;
			}
		}
	}
	return (int)n;
}

static void tap_put(struct tap_netif *t, const struct usnet_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pkts[i].id < t->nbufs && t->sh->nfree < t->nbufs)
			t->free_stack[t->sh->nfree++] = (uint32_t)pkts[i].id;
}

static void tap_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	(void)q;
	tap_put((struct tap_netif *)nif, pkts, n);
}

static int tap_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct tap_netif *t = (struct tap_netif *)nif;
	if (q != 0)
		return -EINVAL;
	/* Keep a quarter of the pool for receiving, so a sender that holds
	 * buffers cannot starve rx. */
	uint32_t reserve = t->nbufs / 4;
	unsigned k = 0;
	while (k < n && t->sh->nfree > reserve) {
		uint32_t b = t->free_stack[--t->sh->nfree];
		pkts[k] = (struct usnet_pkt){ .data = tap_buf(t, b), .id = b };
		k++;
	}
	return (int)k;
}

static int tap_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct tap_netif *t = (struct tap_netif *)nif;
	if (q != 0)
		return -EINVAL;
	unsigned i;
	for (i = 0; i < n; i++) {
		struct usnet_pkt *p = &pkts[i];
		if (p->id >= t->nbufs || p->data < tap_buf(t, (uint32_t)p->id) ||
		    p->data + p->len > tap_buf(t, (uint32_t)p->id) + t->base.info.frame_size) {
			if (i == 0)
				return -EINVAL;
			break;
		}
		struct virtio_net_hdr vh = { 0 };
		struct iovec iov[2];
		int niov = 0;
		if (t->vnet) {
			if (p->flags & USNET_PKT_TX_CSUM_PARTIAL) {
				vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
				vh.csum_start = p->csum_start;
				vh.csum_offset = p->csum_offset;
			}
			vh.gso_type = VIRTIO_NET_HDR_GSO_NONE;
			iov[niov++] = (struct iovec){ &vh, sizeof vh };
		} else if (p->flags & USNET_PKT_TX_CSUM_PARTIAL) {
			netif_csum_fill(p->data, p->len, p->csum_start, p->csum_offset);
		}
		iov[niov++] = (struct iovec){ p->data, p->len };
		ssize_t r = writev(t->fd, iov, niov);
		if (r < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			if (errno == EAGAIN)
				break;
			if (i == 0)
				return -errno;
			break;
		}
	}
	/* The kernel copied the frames: their buffers are free again. */
	tap_put(t, pkts, i);
	return (int)i;
}

static void tap_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	(void)q;
	tap_put((struct tap_netif *)nif, pkts, n);
}

static int tap_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	return q == 0 ? ((struct tap_netif *)nif)->fd : -1;
}

/* Delete a network device (RTM_DELLINK): a TAP goes away with its last fd
 * only, and attached processes may still hold one. */
static void tap_delete_link(int ifindex)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return;
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_DELLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1 },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};
	if (send(s, &req, sizeof req, 0) == (ssize_t)sizeof req) {
		char ack[512];
		(void)!recv(s, ack, sizeof ack, 0); /* wait until it is done */
	}
	close(s);
}

static void tap_close(struct usnet_netif *nif)
{
	struct tap_netif *t = (struct tap_netif *)nif;
	if (t->fd >= 0)
		close(t->fd);
	/* Only the opener lets the device go: a forked child or an attached
	 * process releases its own view. */
	if (t->owner == getpid() && t->created_ifindex) {
		char name[IF_NAMESIZE];
		if (if_indextoname((unsigned)t->created_ifindex, name) && !strcmp(name, t->base.info.ifname))
			tap_delete_link(t->created_ifindex);
	}
	netif_shm_region_release(&t->shm);
	free(t);
}

static const struct usnet_netif_ops tap_ops = {
	.rx_burst = tap_rx_burst,
	.rx_release = tap_rx_release,
	.tx_alloc = tap_tx_alloc,
	.tx_burst = tap_tx_burst,
	.tx_free = tap_tx_free,
	.flush = NULL,
	.wait_fd = tap_wait_fd,
	.after_fork = NULL, /* object, mapping and fd are inherited as they are */
	.close = tap_close,
};

/* Point a process's object at its mapping of the region. */
static void tap_bind(struct tap_netif *t, struct tap_shared *sh)
{
	t->sh = sh;
	t->nbufs = sh->nbufs;
	t->mem = t->shm.base + sh->bufs_off;
	t->free_stack = (uint32_t *)(t->shm.base + sh->free_off);
}

static const char *const tap_known_opts[] = { "csum", "bufs", NULL };

int netif_tap_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		   char *err, size_t errlen)
{
	int r = netif_opt_check(cfg->options, tap_known_opts, "tap", err, errlen);
	if (r)
		return r;
	uint64_t nbufs = TAP_DEFAULT_BUFS;
	if ((r = netif_opt_uint(cfg->options, "bufs", 16, 65536, &nbufs, err, errlen)))
		return r;
	bool vnet = netif_opt_get(cfg->options, "csum", NULL, 0);
	if (cfg->queues > 1)
		return netif_err(err, errlen, EINVAL, "tap: one queue only (asked for %u)", cfg->queues);
	if (strlen(cfg->iface) >= IFNAMSIZ)
		return netif_err(err, errlen, ENAMETOOLONG, "tap: interface name '%s' is longer than %d characters",
				 cfg->iface, IFNAMSIZ - 1);

	/* Created by TUNSETIFF below when it does not exist yet ("tap%d"
	 * patterns included): then ours to delete. */
	bool creating = if_nametoindex(cfg->iface) == 0;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENXIO || e == ENODEV)
			return netif_err(err, errlen, e, "tap: /dev/net/tun is missing (load the tun module or create the node: mknod /dev/net/tun c 10 200)");
		if (e == EACCES || e == EPERM)
			return netif_err(err, errlen, e, "tap: cannot open /dev/net/tun: need root or CAP_NET_ADMIN");
		return netif_err(err, errlen, e, "tap: cannot open /dev/net/tun: %s", strerror(e));
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", cfg->iface);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		if (e == EPERM || e == EACCES)
			return netif_err(err, errlen, e, "tap: cannot create or attach %s: need root or CAP_NET_ADMIN", cfg->iface);
		if (e == EBUSY)
			return netif_err(err, errlen, e, "tap: %s is busy (in use by another process, or not a TAP device)", cfg->iface);
		if (e == EINVAL)
			return netif_err(err, errlen, e, "tap: %s exists and is not a TAP device with these flags", cfg->iface);
		return netif_err(err, errlen, e, "tap: TUNSETIFF %s: %s", cfg->iface, strerror(e));
	}
	if (vnet) {
		int hs = sizeof(struct virtio_net_hdr);
		if (ioctl(fd, TUNSETVNETHDRSZ, &hs) < 0 || ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM) < 0) {
			int e = errno;
			close(fd);
			return netif_err(err, errlen, e, "tap: cannot enable checksum offload on %s: %s", cfg->iface, strerror(e));
		}
	}
	/* MTU and link state through an ordinary socket. */
	uint32_t mtu = 1500;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct ifreq q;
		memset(&q, 0, sizeof q);
		snprintf(q.ifr_name, IFNAMSIZ, "%s", ifr.ifr_name);
		if (ioctl(s, SIOCGIFMTU, &q) == 0 && q.ifr_mtu > 0)
			mtu = (uint32_t)q.ifr_mtu;
		memset(&q, 0, sizeof q);
		snprintf(q.ifr_name, IFNAMSIZ, "%s", ifr.ifr_name);
		if (ioctl(s, SIOCGIFFLAGS, &q) == 0 && !(q.ifr_flags & IFF_UP)) {
			q.ifr_flags |= IFF_UP;
			(void)ioctl(s, SIOCSIFFLAGS, &q);
		}
		close(s);
	}
	uint32_t frame = mtu + 14 + 4 < 2048 ? 2048 : ((mtu + 14 + 4 + 63) & ~63u);
	struct tap_netif *t = calloc(1, sizeof *t);
	if (!t) {
		close(fd);
		return netif_err(err, errlen, ENOMEM, "tap: out of memory");
	}
	t->fd = fd;
	t->shm.fd = -1;
	t->owner = getpid();
	t->created_ifindex = creating ? (int)if_nametoindex(ifr.ifr_name) : 0;
	/* The pool, shared with forked children and attached processes
	 * (USNET_NETIF_CAP_SHARED). */
	size_t size = 4096 + (size_t)nbufs * frame + sizeof(uint32_t) * nbufs + 2 * 64;
	if ((r = netif_shm_region_create(&t->shm, "usnet-tap", size, err, errlen))) {
		tap_close(&t->base);
		return r;
	}
	size_t sh_off = netif_shm_region_alloc(&t->shm, sizeof(struct tap_shared));
	size_t bufs_off = netif_shm_region_alloc(&t->shm, (size_t)nbufs * frame);
	size_t free_off = netif_shm_region_alloc(&t->shm, sizeof(uint32_t) * nbufs);
	if (sh_off == NETIF_SHM_NONE || bufs_off == NETIF_SHM_NONE || free_off == NETIF_SHM_NONE) {
		tap_close(&t->base);
		return netif_err(err, errlen, ENOMEM, "tap: out of memory for %llu buffers", (unsigned long long)nbufs);
	}
	struct tap_shared *sh = netif_shm_at(&t->shm, sh_off);
	*sh = (struct tap_shared){ .magic = TAP_SHARED_MAGIC, .nbufs = (uint32_t)nbufs, .frame_size = frame,
				   .bufs_off = bufs_off, .free_off = free_off };
	tap_bind(t, sh);
	t->base.ops = &tap_ops;
	t->vnet = vnet;
	for (uint32_t b = 0; b < t->nbufs; b++)
		t->free_stack[b] = t->nbufs - 1 - b;
	sh->nfree = t->nbufs;
	struct usnet_netif_info *in = &t->base.info;
	netif_set_name(in->backend, "tap");
	netif_set_name(in->ifname, ifr.ifr_name);
	in->nqueues = 1;
	in->mtu = mtu;
	in->frame_size = frame;
	in->caps = USNET_NETIF_CAP_SHARED | (vnet ? (USNET_NETIF_CAP_TX_CSUM | USNET_NETIF_CAP_RX_CSUM) : 0);
	if (cfg->has_mac)
		memcpy(in->mac, cfg->mac, 6);
	else
		netif_random_mac(in->mac);
	*out = &t->base;
	return 0;
}

/* ---- sharing with processes that did not fork (usnet/netif_share.h) ---- */

int netif_tap_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
{
	struct tap_netif *t = (struct tap_netif *)nif;
	if (nif->ops != &tap_ops)
		return netif_err(err, errlen, EINVAL, "tap: not a tap netif");
	struct tap_share_blob b = { .magic = TAP_SHARE_MAGIC, .version = TAP_SHARE_VERSION, .info = nif->info,
				    .vnet = t->vnet, .shared_off = (uint64_t)((uint8_t *)t->sh - t->shm.base) };
	_Static_assert(sizeof b <= USNET_NETIF_SHARE_BLOB, "tap share blob too large");
	out->nfds = 2;
	out->fds[0] = t->shm.fd;
	out->fds[1] = t->fd;
	out->blob_len = sizeof b;
	memcpy(out->blob, &b, sizeof b);
	return 0;
}

int netif_tap_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
{
	struct tap_share_blob b;
	int r;
	if (sh->nfds != 2 || sh->blob_len != sizeof b) {
		netif_share_close_fds(sh);
		return netif_err(err, errlen, EPROTO, "tap: the share received is not a tap's (%u fds, %u bytes)",
				 sh->nfds, sh->blob_len);
	}
	memcpy(&b, sh->blob, sizeof b);
	struct tap_netif *t = calloc(1, sizeof *t);
	if (!t) {
		close(sh->fds[0]);
		close(sh->fds[1]);
		return netif_err(err, errlen, ENOMEM, "tap: out of memory");
	}
	t->base.ops = &tap_ops;
	t->fd = sh->fds[1];
	t->shm.fd = -1;
	if (b.magic != TAP_SHARE_MAGIC || b.version != TAP_SHARE_VERSION) {
		close(sh->fds[0]);
		r = netif_err(err, errlen, EPROTO, "tap: the share received is of another version");
		goto fail;
	}
	if ((r = netif_shm_region_map(&t->shm, sh->fds[0], err, errlen)))
		goto fail;
	struct tap_shared *tsh = NULL;
	if (t->shm.size >= sizeof *tsh && b.shared_off <= t->shm.size - sizeof *tsh)
		tsh = netif_shm_at(&t->shm, b.shared_off);
	if (!tsh || tsh->magic != TAP_SHARED_MAGIC || tsh->frame_size != b.info.frame_size || tsh->nbufs == 0 ||
	    tsh->bufs_off > t->shm.size || (uint64_t)tsh->nbufs * tsh->frame_size > t->shm.size - tsh->bufs_off ||
	    tsh->free_off > t->shm.size || (uint64_t)tsh->nbufs * sizeof(uint32_t) > t->shm.size - tsh->free_off) {
		r = netif_err(err, errlen, EPROTO, "tap: the shared memory received does not hold %s's buffers",
			      b.info.ifname);
		goto fail;
	}
	/* The fd must be that device, with the header the owner uses. */
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	if (ioctl(t->fd, TUNGETIFF, &ifr) < 0) {
		r = netif_err(err, errlen, errno, "tap: the fd received for %.32s is not a TAP device: %s",
			      b.info.ifname, strerror(errno));
		goto fail;
	}
	if (strncmp(ifr.ifr_name, b.info.ifname, IFNAMSIZ) || !(ifr.ifr_flags & IFF_TAP) ||
	    !(ifr.ifr_flags & IFF_VNET_HDR) != !b.vnet) {
		r = netif_err(err, errlen, EPROTO, "tap: the fd received is %.16s, not %.32s as shared", ifr.ifr_name,
			      b.info.ifname);
		goto fail;
	}
	tap_bind(t, tsh);
	t->vnet = b.vnet != 0;
	t->base.info = b.info;
	*out = &t->base;
	return 0;
fail:
	tap_close(&t->base);
	return r;
}
