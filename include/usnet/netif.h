/*
 * usnet — the packet I/O contract (netif).
 *
 * A netif moves Ethernet frames between a stack instance and a wire: a
 * shared-memory wire (memwire), a TAP device, an AF_PACKET or AF_XDP socket,
 * DPDK, or a wrapper (impair, pcap) stacked on any of those.  Frames move in
 * batches; buffers belong to the backend and are lent to the caller.
 *
 * This header is freestanding (only <stddef.h>/<stdint.h>): the portable stack
 * core includes it to transmit.  Backends themselves are ordinary Linux code.
 *
 * Ownership rules
 *  - rx_burst() lends up to `max` received frames.  The caller reads them and
 *    gives every one back with rx_release() (in any order, in batches).
 *  - tx_alloc() lends empty frame buffers of info.frame_size bytes.  The caller
 *    fills data/len (and the checksum fields) and passes them to tx_burst(),
 *    which takes ownership of the first `ret` frames; frames it did not take
 *    stay the caller's, to retry later or give back with tx_free().
 *  - tx_burst() may only queue; flush() makes queued frames leave (for
 *    backends with a wakeup protocol).  Callers flush once per batch.
 *  - All calls for one queue come from one thread at a time (the caller holds
 *    the stack instance's lock); different queues may be used concurrently.
 *
 * Errors are negative errno values (Linux numbering).
 */
#ifndef USNET_NETIF_H
#define USNET_NETIF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Per-frame flags (struct usnet_pkt.flags). */
/* rx: the device verified the L4 checksum; the stack may skip it. */
#define USNET_PKT_RX_CSUM_OK      (1u << 0)
/* rx: the sender left the L4 checksum to be filled by hardware that does not
 * exist (a veth peer's CHECKSUM_PARTIAL); the payload came over a local wire
 * and the checksum field is not meaningful. */
#define USNET_PKT_RX_CSUM_PARTIAL (1u << 1)
/* tx: the device must fill the L4 checksum: sum from csum_start to the end of
 * the frame, stored at csum_start + csum_offset (pseudo-header sum already in
 * place, as Linux's CHECKSUM_PARTIAL). Only when USNET_NETIF_CAP_TX_CSUM. */
#define USNET_PKT_TX_CSUM_PARTIAL (1u << 2)

/* One frame buffer lent by a backend. */
struct usnet_pkt {
	uint8_t *data;        /* first byte of the Ethernet header */
	uint32_t len;         /* bytes of frame at data */
	uint32_t flags;       /* USNET_PKT_* */
	uint16_t csum_start;  /* offset of the L4 header from data (TX_CSUM_PARTIAL) */
	uint16_t csum_offset; /* offset of the checksum field within the L4 header */
	uint32_t queue;       /* queue it arrived on / leaves by */
	uint64_t id;          /* backend's own buffer identity: opaque to callers */
};

/* Capability flags (struct usnet_netif_info.caps). */
#define USNET_NETIF_CAP_TX_CSUM   (1u << 0) /* honours USNET_PKT_TX_CSUM_PARTIAL */
#define USNET_NETIF_CAP_RX_CSUM   (1u << 1) /* may set USNET_PKT_RX_CSUM_OK */
#define USNET_NETIF_CAP_MULTIQ    (1u << 2) /* more than one queue, RSS-steered */
#define USNET_NETIF_CAP_SHARED    (1u << 3) /* usable from forked children (state in shared memory) */

#define USNET_NETIF_NAME_MAX 32

/* What a backend tells its user once it is open. */
struct usnet_netif_info {
	char     backend[USNET_NETIF_NAME_MAX]; /* "memwire", "tap", "afxdp", ... */
	char     ifname[USNET_NETIF_NAME_MAX];  /* interface, or wire name */
	uint8_t  mac[6];        /* the address frames leave with */
	uint16_t nqueues;       /* queues 0..nqueues-1 */
	uint32_t mtu;           /* largest IP packet, bytes (1500 typically) */
	uint32_t frame_size;    /* capacity of one buffer (>= mtu + 14) */
	uint32_t caps;          /* USNET_NETIF_CAP_* */
};

struct usnet_netif;

/* The operations every backend implements.  All are required except where
 * noted. */
struct usnet_netif_ops {
	/* Receive up to max frames from queue q into pkts.  Returns how many
	 * (0 when none is waiting; never blocks) or a negative errno. */
	int  (*rx_burst)(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max);
	/* Give received frames back to the backend. */
	void (*rx_release)(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n);
	/* Lend up to n empty frame buffers for queue q; returns how many (0 when
	 * the backend has none free right now). */
	int  (*tx_alloc)(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n);
	/* Transmit n filled frames.  Returns how many the backend took (the first
	 * ones), or a negative errno (none taken). */
	int  (*tx_burst)(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n);
	/* Give lent tx buffers back unsent. */
	void (*tx_free)(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n);
	/* Make queued frames leave now (optional: NULL when tx_burst sends). */
	int  (*flush)(struct usnet_netif *nif, uint16_t q);
	/* A file descriptor that becomes readable (poll/epoll) when queue q has
	 * frames to receive, so an idle caller can sleep; -1 when there is none
	 * (the caller then polls on a timer). */
	int  (*wait_fd)(struct usnet_netif *nif, uint16_t q);
	/* Re-arm after fork in the child (optional). */
	int  (*after_fork)(struct usnet_netif *nif);
	/* Close the backend and free everything it holds. */
	void (*close)(struct usnet_netif *nif);
};

/* Every backend's object starts with this. */
struct usnet_netif {
	const struct usnet_netif_ops *ops;
	struct usnet_netif_info info;
};

/* Convenience wrappers: what callers (the stack core included) use. */
static inline int usnet_netif_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned max)
{ return nif->ops->rx_burst(nif, q, p, max); }
static inline void usnet_netif_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{ nif->ops->rx_release(nif, q, p, n); }
static inline int usnet_netif_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{ return nif->ops->tx_alloc(nif, q, p, n); }
static inline int usnet_netif_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{ return nif->ops->tx_burst(nif, q, p, n); }
static inline void usnet_netif_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *p, unsigned n)
{ nif->ops->tx_free(nif, q, p, n); }
static inline int usnet_netif_flush(struct usnet_netif *nif, uint16_t q)
{ return nif->ops->flush ? nif->ops->flush(nif, q) : 0; }
static inline int usnet_netif_wait_fd(struct usnet_netif *nif, uint16_t q)
{ return nif->ops->wait_fd ? nif->ops->wait_fd(nif, q) : -1; }

#ifdef __cplusplus
}
#endif
#endif /* USNET_NETIF_H */
