/*
 * pcap wrapper: every frame in both directions goes to a classic pcap file
 * (see include/usnet/netif_wrap.h).  Records of one burst are gathered in an
 * iovec array and written with one writev, unbuffered, so the file is
 * readable whenever the process stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "netif_internal.h"
#include "usnet/netif_wrap.h"

#define PCAP_MAGIC_USEC   0xa1b2c3d4u
#define PCAP_LINKTYPE_ETH 1u
#define PCAP_SNAPLEN      262144u
#define PCAP_BATCH        64 /* records per writev */

struct pcap_file_hdr {
	uint32_t magic;
	uint16_t version_major, version_minor;
	int32_t  thiszone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_rec_hdr {
	uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

struct pcap_netif {
	struct usnet_netif base;
	struct usnet_netif *lower;
	int fd;
	int failed; /* a write failed: stop capturing, keep forwarding */
};

static const struct usnet_netif_ops pcap_ops;

/* Write n frames; offloaded checksums are filled into the record (the
 * frame itself is untouched), split around the field in the iovec. */
static void pcap_write(struct pcap_netif *pc, const struct usnet_pkt *pkts, unsigned n)
{
	if (pc->failed || n == 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	for (unsigned base = 0; base < n; base += PCAP_BATCH) {
		struct pcap_rec_hdr hdr[PCAP_BATCH];
		uint8_t csum[PCAP_BATCH][2];
		struct iovec iov[PCAP_BATCH * 4];
		int niov = 0;
		size_t total = 0;
		unsigned m = n - base < PCAP_BATCH ? n - base : PCAP_BATCH;
		for (unsigned i = 0; i < m; i++) {
			const struct usnet_pkt *p = &pkts[base + i];
			uint32_t len = p->len < PCAP_SNAPLEN ? p->len : PCAP_SNAPLEN;
			hdr[i] = (struct pcap_rec_hdr){ (uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000),
							len, p->len };
			iov[niov++] = (struct iovec){ &hdr[i], sizeof hdr[i] };
			uint32_t field = (uint32_t)p->csum_start + p->csum_offset;
			if ((p->flags & (USNET_PKT_TX_CSUM_PARTIAL | USNET_PKT_RX_CSUM_PARTIAL)) &&
			    field + 2 <= len &&
			    netif_csum_compute(p->data, p->len, p->csum_start, p->csum_offset, csum[i]) == 0) {
				iov[niov++] = (struct iovec){ p->data, field };
				iov[niov++] = (struct iovec){ csum[i], 2 };
				iov[niov++] = (struct iovec){ p->data + field + 2, len - field - 2 };
			} else {
				iov[niov++] = (struct iovec){ p->data, len };
			}
			total += sizeof hdr[i] + len;
		}
		ssize_t w = writev(pc->fd, iov, niov);
		if (w != (ssize_t)total)
			pc->failed = 1; /* disk full or similar: a torn record ends the capture */
	}
}

static int pcap_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max)
{
	struct pcap_netif *pc = (struct pcap_netif *)nif;
	int n = usnet_netif_rx_burst(pc->lower, q, pkts, max);
	if (n > 0)
		pcap_write(pc, pkts, (unsigned)n);
	return n;
}

static void pcap_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	usnet_netif_rx_release(((struct pcap_netif *)nif)->lower, q, pkts, n);
}

static int pcap_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	return usnet_netif_tx_alloc(((struct pcap_netif *)nif)->lower, q, pkts, n);
}

static int pcap_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct pcap_netif *pc = (struct pcap_netif *)nif;
	/* Write before handing over: once taken, the buffers are the lower
	 * netif's (a memwire peer may already be reading them).  Frames the
	 * lower netif refuses now are written again when retried, so only the
	 * taken ones count: write after, from our own view of them. */
	struct usnet_pkt copy[64];
	unsigned m = n < 64 ? n : 64;
	memcpy(copy, pkts, m * sizeof *copy);
	int r = usnet_netif_tx_burst(pc->lower, q, pkts, m);
	if (r > 0)
		pcap_write(pc, copy, (unsigned)r);
	return r;
}

static void pcap_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	usnet_netif_tx_free(((struct pcap_netif *)nif)->lower, q, pkts, n);
}

static int pcap_flush(struct usnet_netif *nif, uint16_t q)
{
	return usnet_netif_flush(((struct pcap_netif *)nif)->lower, q);
}

static int pcap_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	return usnet_netif_wait_fd(((struct pcap_netif *)nif)->lower, q);
}

static int pcap_after_fork(struct usnet_netif *nif)
{
	struct usnet_netif *lower = ((struct pcap_netif *)nif)->lower;
	return lower->ops->after_fork ? lower->ops->after_fork(lower) : 0;
}

static void pcap_close(struct usnet_netif *nif)
{
	struct pcap_netif *pc = (struct pcap_netif *)nif;
	pc->lower->ops->close(pc->lower);
	close(pc->fd);
	free(pc);
}

static const struct usnet_netif_ops pcap_ops = {
	.rx_burst = pcap_rx_burst,
	.rx_release = pcap_rx_release,
	.tx_alloc = pcap_tx_alloc,
	.tx_burst = pcap_tx_burst,
	.tx_free = pcap_tx_free,
	.flush = pcap_flush,
	.wait_fd = pcap_wait_fd,
	.after_fork = pcap_after_fork,
	.close = pcap_close,
};

struct usnet_netif *netif_pcap_lower(struct usnet_netif *nif)
{
	return nif && nif->ops == &pcap_ops ? ((struct pcap_netif *)nif)->lower : NULL;
}

int usnet_pcap_wrap(struct usnet_netif *lower, const char *path, struct usnet_netif **out,
		    char *err, size_t errlen)
{
	if (!lower || !path || !path[0] || !out)
		return netif_err(err, errlen, EINVAL, "pcap: no file name given");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return netif_err(err, errlen, errno, "pcap: cannot create %s: %s", path, strerror(errno));
	struct pcap_file_hdr fh = { PCAP_MAGIC_USEC, 2, 4, 0, 0, PCAP_SNAPLEN, PCAP_LINKTYPE_ETH };
	if (write(fd, &fh, sizeof fh) != (ssize_t)sizeof fh) {
		int e = errno ? errno : EIO;
		close(fd);
		return netif_err(err, errlen, e, "pcap: cannot write %s: %s", path, strerror(e));
	}
	struct pcap_netif *pc = calloc(1, sizeof *pc);
	if (!pc) {
		close(fd);
		return netif_err(err, errlen, ENOMEM, "pcap: out of memory");
	}
	pc->base.ops = &pcap_ops;
	pc->base.info = lower->info;
	pc->lower = lower;
	pc->fd = fd;
	*out = &pc->base;
	return 0;
}
