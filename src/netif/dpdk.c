/*
 * dpdk: a DPDK ethdev port (Debian's DPDK 22.11) as a netif.
 *
 * Built as a plugin, build/libusnet-netif-dpdk.so, that usnet_netif_open()
 * loads only when backend "dpdk" is asked for, so nothing else carries
 * DPDK's libraries and constructors.
 *
 * iface: the Linux interface for a virtual device (default net_af_packet:
 * `--vdev=net_af_packet0,iface=IF`), or "port:N" for an ethdev port the EAL
 * arguments already created.  The EAL starts once per process without
 * hugepages, PCI scanning or shared config (--no-huge --no-pci --no-shconf,
 * runtime directory /var/run/dpdk/usnet-PID);
 * cfg.options:
 *   vdev=net_af_packet|net_af_xdp   which virtual device wraps the interface
 *   eal=ARG;ARG;...                 extra EAL arguments (';'-separated)
 *   mbufs=N                         mbufs in the pool (default 8191)
 * Frames are mbufs lent in place.  There is no wait fd (DPDK polls): the
 * caller polls on a timer.  Multi-segment frames are dropped.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "netif_internal.h"

#define DPDK_MAX_QUEUES 16
#define DPDK_RING       1024
#define DPDK_MAX_EAL_ARGS 32

struct dpdk_netif {
	struct usnet_netif base;
	uint16_t port;
	uint16_t nq;
	bool own_vdev;              /* we created the vdev: remove it on close */
	char vdev_name[64];
	struct rte_mempool *pool;
};

static bool eal_ready;
static unsigned netif_count;   /* pools need distinct names */

static int dpdk_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max)
{
	struct dpdk_netif *d = (struct dpdk_netif *)nif;
	if (q >= d->nq)
		return -EINVAL;
	struct rte_mbuf *m[64];
	unsigned n = 0;
	while (n < max) {
		uint16_t want = (uint16_t)(max - n < 64 ? max - n : 64);
		uint16_t got = rte_eth_rx_burst(d->port, q, m, want);
		for (uint16_t i = 0; i < got; i++) {
			if (m[i]->nb_segs != 1) {
				rte_pktmbuf_free(m[i]);
				continue;
			}
			struct usnet_pkt *p = &pkts[n++];
			p->data = rte_pktmbuf_mtod(m[i], uint8_t *);
			p->len = m[i]->pkt_len;
			p->flags = 0;
			if ((m[i]->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
				p->flags = USNET_PKT_RX_CSUM_OK;
			p->csum_start = p->csum_offset = 0;
			p->queue = q;
			p->id = (uint64_t)(uintptr_t)m[i];
		}
		if (got < want)
			break;
	}
	return (int)n;
}

static void dpdk_free(struct usnet_pkt *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pkts[i].id)
			rte_pktmbuf_free((struct rte_mbuf *)(uintptr_t)pkts[i].id);
}

static void dpdk_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	(void)nif; (void)q;
	dpdk_free(pkts, n);
}

static int dpdk_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct dpdk_netif *d = (struct dpdk_netif *)nif;
	if (q >= d->nq)
		return -EINVAL;
	unsigned k = 0;
	for (; k < n; k++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
		if (!m)
			break;
		pkts[k] = (struct usnet_pkt){ .data = rte_pktmbuf_mtod(m, uint8_t *), .queue = q,
					      .id = (uint64_t)(uintptr_t)m };
	}
	return (int)k;
}

static int dpdk_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct dpdk_netif *d = (struct dpdk_netif *)nif;
	if (q >= d->nq)
		return -EINVAL;
	struct rte_mbuf *m[64];
	unsigned k = n < 64 ? n : 64, i;
	for (i = 0; i < k; i++) {
		struct rte_mbuf *mb = (struct rte_mbuf *)(uintptr_t)pkts[i].id;
		if (!mb)
			break;
		uint8_t *base = (uint8_t *)mb->buf_addr;
		if (pkts[i].data < base || pkts[i].data + pkts[i].len > base + mb->buf_len || !pkts[i].len)
			break;
		if (pkts[i].flags & USNET_PKT_TX_CSUM_PARTIAL)
			netif_csum_fill(pkts[i].data, pkts[i].len, pkts[i].csum_start, pkts[i].csum_offset);
		mb->data_off = (uint16_t)(pkts[i].data - base);
		mb->data_len = (uint16_t)pkts[i].len;
		mb->pkt_len = pkts[i].len;
		mb->nb_segs = 1;
		mb->next = NULL;
		m[i] = mb;
	}
	if (i == 0)
		return k ? -EINVAL : 0;
	return rte_eth_tx_burst(d->port, q, m, (uint16_t)i);
}

static void dpdk_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	(void)nif; (void)q;
	dpdk_free(pkts, n);
}

static int dpdk_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	(void)nif; (void)q;
	return -1;
}

static void dpdk_close(struct usnet_netif *nif)
{
	struct dpdk_netif *d = (struct dpdk_netif *)nif;
	rte_eth_dev_stop(d->port);
	rte_eth_dev_close(d->port);
	if (d->own_vdev)
		rte_eal_hotplug_remove("vdev", d->vdev_name);
	if (d->pool)
		rte_mempool_free(d->pool);
	free(d);
}

static const struct usnet_netif_ops dpdk_ops = {
	.rx_burst = dpdk_rx_burst,
	.rx_release = dpdk_rx_release,
	.tx_alloc = dpdk_tx_alloc,
	.tx_burst = dpdk_tx_burst,
	.tx_free = dpdk_tx_free,
	.flush = NULL,
	.wait_fd = dpdk_wait_fd,
	.after_fork = NULL,
	.close = dpdk_close,
};

static char runtime_dir[256];

/* The EAL leaves its per-process runtime directory behind: remove it. */
static void dpdk_remove_runtime_dir(void)
{
	DIR *d = opendir(runtime_dir);
	if (!d)
		return;
	struct dirent *e;
	char path[512];
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof path, "%s/%s", runtime_dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(runtime_dir);
}

static int dpdk_eal_start(const char *extra, char *err, size_t errlen)
{
	if (eal_ready)
		return 0;
	static char prefix[64], extra_copy[512];
	char *argv[DPDK_MAX_EAL_ARGS + 1];
	int argc = 0;
	argv[argc++] = (char *)"usnet";
	argv[argc++] = (char *)"--no-huge";
	argv[argc++] = (char *)"--no-pci";
	argv[argc++] = (char *)"--no-shconf";
	argv[argc++] = (char *)"--no-telemetry";
	argv[argc++] = (char *)"-m";
	argv[argc++] = (char *)"256";
	argv[argc++] = (char *)"--log-level=*:error";
	/* Its own runtime directory (/var/run/dpdk/usnet-PID), so that
	 * processes do not meet there. */
	snprintf(prefix, sizeof prefix, "--file-prefix=usnet-%d", (int)getpid());
	argv[argc++] = prefix;
	if (extra && extra[0]) {
		snprintf(extra_copy, sizeof extra_copy, "%s", extra);
		for (char *save, *a = strtok_r(extra_copy, ";", &save); a && argc < DPDK_MAX_EAL_ARGS;
		     a = strtok_r(NULL, ";", &save))
			argv[argc++] = a;
	}
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0)
		return netif_err(err, errlen, rte_errno ? rte_errno : EINVAL,
				 "dpdk: the EAL did not start: %s (EAL options: eal=...)", rte_strerror(rte_errno));
	eal_ready = true;
	snprintf(runtime_dir, sizeof runtime_dir, "%s", rte_eal_get_runtime_dir());
	if (strstr(runtime_dir, "/usnet-"))
		atexit(dpdk_remove_runtime_dir);
	return 0;
}

static const char *const dpdk_known_opts[] = { "vdev", "eal", "mbufs", NULL };

__attribute__((visibility("default")))
int usnet_netif_dpdk_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
			  char *err, size_t errlen)
{
	int r = netif_opt_check(cfg->options, dpdk_known_opts, "dpdk", err, errlen);
	if (r)
		return r;
	char vdev[32], eal[512];
	if (!netif_opt_get(cfg->options, "vdev", vdev, sizeof vdev))
		strcpy(vdev, "net_af_packet");
	if (strcmp(vdev, "net_af_packet") && strcmp(vdev, "net_af_xdp"))
		return netif_err(err, errlen, EINVAL, "dpdk: vdev=%s: want net_af_packet or net_af_xdp", vdev);
	netif_opt_get(cfg->options, "eal", eal, sizeof eal);
	uint64_t mbufs = 8191;
	if ((r = netif_opt_uint(cfg->options, "mbufs", 511, 1u << 20, &mbufs, err, errlen)))
		return r;
	uint16_t nq = cfg->queues ? cfg->queues : 1;
	if (nq > DPDK_MAX_QUEUES)
		return netif_err(err, errlen, EINVAL, "dpdk: at most %d queues", DPDK_MAX_QUEUES);
	if (geteuid() != 0)
		return netif_err(err, errlen, EPERM, "dpdk: needs root (raw sockets, memory locking)");
	if ((r = dpdk_eal_start(eal, err, errlen)))
		return r;

	struct dpdk_netif *d = calloc(1, sizeof *d);
	if (!d)
		return netif_err(err, errlen, ENOMEM, "dpdk: out of memory");
	d->base.ops = &dpdk_ops;
	d->nq = nq;
	if (!strncmp(cfg->iface, "port:", 5)) {
		d->port = (uint16_t)atoi(cfg->iface + 5);
		if (!rte_eth_dev_is_valid_port(d->port)) {
			free(d);
			return netif_err(err, errlen, ENODEV, "dpdk: no ethdev port %s", cfg->iface + 5);
		}
	} else {
		unsigned idx = netif_count;
		snprintf(d->vdev_name, sizeof d->vdev_name, "%s%u", vdev, idx);
		char args[128];
		if (!strcmp(vdev, "net_af_packet"))
			snprintf(args, sizeof args, "iface=%s,qpairs=%u", cfg->iface, nq);
		else
			snprintf(args, sizeof args, "iface=%s,start_queue=0,queue_count=%u", cfg->iface, nq);
		if (rte_eal_hotplug_add("vdev", d->vdev_name, args) < 0) {
			free(d);
			return netif_err(err, errlen, ENODEV,
					 "dpdk: cannot create %s on %s (does the interface exist? is the %s driver installed?)",
					 vdev, cfg->iface, vdev);
		}
		d->own_vdev = true;
		if (rte_eth_dev_get_port_by_name(d->vdev_name, &d->port)) {
			rte_eal_hotplug_remove("vdev", d->vdev_name);
			free(d);
			return netif_err(err, errlen, ENODEV, "dpdk: %s has no ethdev port", d->vdev_name);
		}
	}
	char pool[32];
	snprintf(pool, sizeof pool, "usnet%u", netif_count++);
	d->pool = rte_pktmbuf_pool_create(pool, (unsigned)mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!d->pool) {
		r = netif_err(err, errlen, ENOMEM, "dpdk: no mbuf pool: %s", rte_strerror(rte_errno));
		goto fail_port;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof conf);
	struct rte_eth_dev_info di;
	if (rte_eth_dev_info_get(d->port, &di) == 0 && nq > di.max_rx_queues) {
		r = netif_err(err, errlen, EINVAL, "dpdk: port %u has %u queues, asked for %u", d->port,
			      di.max_rx_queues, nq);
		goto fail_port;
	}
	if ((r = rte_eth_dev_configure(d->port, nq, nq, &conf)) < 0) {
		r = netif_err(err, errlen, -r, "dpdk: cannot configure port %u: %s", d->port, rte_strerror(-r));
		goto fail_port;
	}
	for (uint16_t q = 0; q < nq; q++) {
		if ((r = rte_eth_rx_queue_setup(d->port, q, DPDK_RING, rte_eth_dev_socket_id(d->port), NULL, d->pool)) < 0 ||
		    (r = rte_eth_tx_queue_setup(d->port, q, DPDK_RING, rte_eth_dev_socket_id(d->port), NULL)) < 0) {
			r = netif_err(err, errlen, -r, "dpdk: queue %u of port %u: %s", q, d->port, rte_strerror(-r));
			goto fail_port;
		}
	}
	if ((r = rte_eth_dev_start(d->port)) < 0) {
		r = netif_err(err, errlen, -r, "dpdk: cannot start port %u: %s", d->port, rte_strerror(-r));
		goto fail_port;
	}
	struct usnet_netif_info *in = &d->base.info;
	netif_set_name(in->backend, "dpdk");
	netif_set_name(in->ifname, cfg->iface);
	in->nqueues = nq;
	uint16_t mtu = 1500;
	rte_eth_dev_get_mtu(d->port, &mtu);
	in->mtu = mtu;
	in->frame_size = RTE_MBUF_DEFAULT_BUF_SIZE - RTE_PKTMBUF_HEADROOM;
	in->caps = nq > 1 ? USNET_NETIF_CAP_MULTIQ : 0;
	struct rte_ether_addr ea;
	if (cfg->has_mac) {
		memcpy(in->mac, cfg->mac, 6);
		rte_eth_promiscuous_enable(d->port);
	} else if (rte_eth_macaddr_get(d->port, &ea) == 0) {
		memcpy(in->mac, ea.addr_bytes, 6);
	}
	*out = &d->base;
	return 0;
fail_port:
	rte_eth_dev_close(d->port);
	if (d->own_vdev)
		rte_eal_hotplug_remove("vdev", d->vdev_name);
	if (d->pool)
		rte_mempool_free(d->pool);
	free(d);
	return r;
}
