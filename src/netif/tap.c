/*
 * tap: a Linux TAP device (IFF_TAP | IFF_NO_PI), created or attached to by
 * name.  One frame per read/write system call (that is what a TAP offers);
 * bursts loop until the device has no more (EAGAIN).  Buffers come from a
 * private pool.
 *
 * Options: csum   use IFF_VNET_HDR with TUN_F_CSUM, so checksums are
 *                 offloaded both ways (caps TX_CSUM|RX_CSUM);
 *          bufs=N frames in the pool (default 512, half of them for rx).
 * The device is brought up (IFF_UP); its kernel side is configured by the
 * user (addresses, routes).  MAC: random locally administered unless
 * cfg.has_mac.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
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

struct tap_netif {
	struct usnet_netif base;
	int fd;
	bool vnet;          /* frames carry a struct virtio_net_hdr in front */
	uint32_t nbufs;
	uint8_t *mem;       /* nbufs x frame_size */
	uint32_t *free_stack;
	uint32_t nfree;
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
	while (n < max && t->nfree > 0) {
		uint32_t b = t->free_stack[t->nfree - 1];
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
		t->nfree--;
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
		if (pkts[i].id < t->nbufs && t->nfree < t->nbufs)
			t->free_stack[t->nfree++] = (uint32_t)pkts[i].id;
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
	while (k < n && t->nfree > reserve) {
		uint32_t b = t->free_stack[--t->nfree];
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

static void tap_close(struct usnet_netif *nif)
{
	struct tap_netif *t = (struct tap_netif *)nif;
	if (t->fd >= 0)
		close(t->fd);
	netif_shm_free(t->mem);
	netif_shm_free(t->free_stack);
	netif_shm_free(t);
}

static const struct usnet_netif_ops tap_ops = {
	.rx_burst = tap_rx_burst,
	.rx_release = tap_rx_release,
	.tx_alloc = tap_tx_alloc,
	.tx_burst = tap_tx_burst,
	.tx_free = tap_tx_free,
	.flush = NULL,
	.wait_fd = tap_wait_fd,
	.after_fork = NULL,
	.close = tap_close,
};

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
	/* Shared with forked children (USNET_NETIF_CAP_SHARED). */
	struct tap_netif *t = netif_shm_calloc(sizeof *t);
	uint32_t frame = mtu + 14 + 4 < 2048 ? 2048 : ((mtu + 14 + 4 + 63) & ~63u);
	if (t) {
		t->mem = netif_shm_calloc((size_t)nbufs * frame);
		t->free_stack = netif_shm_calloc(sizeof(uint32_t) * nbufs);
	}
	if (!t || !t->mem || !t->free_stack) {
		if (t) {
			netif_shm_free(t->mem);
			netif_shm_free(t->free_stack);
			netif_shm_free(t);
		}
		close(fd);
		return netif_err(err, errlen, ENOMEM, "tap: out of memory for %llu buffers", (unsigned long long)nbufs);
	}
	t->base.ops = &tap_ops;
	t->fd = fd;
	t->vnet = vnet;
	t->nbufs = (uint32_t)nbufs;
	for (uint32_t b = 0; b < t->nbufs; b++)
		t->free_stack[b] = t->nbufs - 1 - b;
	t->nfree = t->nbufs;
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
