/*
 * usnet — wrappers that stack on any netif: impair (a bad network on
 * purpose) and pcap (a capture file).  usnet_netif_open() stacks them when
 * cfg.impair / cfg.pcap are set; these calls do the same for a netif opened
 * otherwise (e.g. an end of usnet_memwire_pair()).
 *
 * A wrapper owns the netif it wraps: closing the wrapper closes it.  The
 * wrapper's info is the wrapped netif's info.
 */
#ifndef USNET_NETIF_WRAP_H
#define USNET_NETIF_WRAP_H

#include <stddef.h>
#include <stdint.h>
#include "usnet/netif.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * impair: seeded, deterministic impairments, for each direction.
 *
 * SPEC grammar:   SPEC  := ITEM ("," ITEM)*
 *                 ITEM  := [DIR ":"] KEY "=" VALUE
 *                 DIR   := "rx" | "tx"        (absent: both directions)
 * KEYs:
 *   loss=P      drop a frame with probability P
 *   reorder=P   hold a frame back until 2 later frames have passed it (or
 *               1 ms passed), with probability P
 *   dup=P       deliver a frame twice, with probability P
 *   corrupt=P   flip one random bit of a frame, with probability P
 *   delay=T     hold every frame for T (e.g. 500us, 1ms, 0.2s; a bare number
 *               is milliseconds); queue of 4096 frames per direction, frames
 *               beyond it are dropped
 *   seed=N      the random seed (default 1): the same seed and the same
 *               frames give the same decisions
 * P is a probability 0..1 (or a percentage like "2%").  Example:
 *   loss=0.02,reorder=0.01,dup=0.01,corrupt=0.001,delay=1ms,seed=7
 *   rx:loss=0.05,tx:delay=2ms
 * "rx" impairs what the wrapped netif receives, "tx" what it transmits.
 *
 * Checksums stay honest: a frame chosen for corruption that carries an
 * offloaded checksum (TX_CSUM_PARTIAL, RX_CSUM_PARTIAL) has its checksum
 * computed first and the offload flags cleared, so the receiver can detect
 * the damage; a corrupted received frame loses RX_CSUM_OK.
 *
 * Held frames (reorder, delay) are released by later calls on the netif; its
 * wait fd (an epoll fd over the wrapped netif's wait fd and a timer) becomes
 * readable when a held frame falls due, so a sleeping caller wakes for it.
 *
 * Returns 0 and *out, or -EINVAL with a one-line reason in err for a bad
 * spec (the wrapped netif is then not closed), or another negative errno.
 */
int usnet_impair_wrap(struct usnet_netif *lower, const char *spec, struct usnet_netif **out,
		      char *err, size_t errlen);

/* Counters of what impair did, per direction (0 rx, 1 tx). */
struct usnet_impair_stats {
	uint64_t frames;     /* frames seen */
	uint64_t lost;       /* dropped on purpose */
	uint64_t reordered;  /* held back */
	uint64_t duplicated;
	uint64_t corrupted;
	uint64_t delayed;
	uint64_t overflow;   /* dropped because the hold queue was full */
};
/* Fill stats[0] (rx) and stats[1] (tx); -EINVAL if nif is not an impair
 * wrapper. */
int usnet_impair_stats(struct usnet_netif *nif, struct usnet_impair_stats stats[2]);

/*
 * pcap: write every frame received and transmitted to a classic pcap file
 * (linktype Ethernet, microsecond timestamps), readable by tshark/tcpdump.
 * Each burst is written with one write system call straight to the file, so
 * a killed process leaves a readable capture.  Frames sent with an offloaded
 * checksum are written with the checksum filled in, as they would look on a
 * wire.  The file is created or truncated.
 */
int usnet_pcap_wrap(struct usnet_netif *lower, const char *path, struct usnet_netif **out,
		    char *err, size_t errlen);

/*
 * tx defer: one transmit kick for many stack calls.  The stack flushes its
 * netif at the end of every call that queued a frame, so a program answering
 * 30 requests in a row would make 30 transmit system calls (one sendto() per
 * frame on AF_XDP).  Given to the stack instead of the real netif, this
 * wrapper forwards everything to `lower` (frames go into its rings at once)
 * except the flush, which only notes that one is owed; the caller makes the
 * real flush with usnet_tx_defer_flush() (once per pass of its loop, before
 * sleeping).  When lower runs short of transmit buffers or ring room it is
 * flushed at once (sending is what gives them back), and once `max_queued`
 * frames wait they leave (0: never by count), so nothing waits for ever.
 * The wrapper does not own lower: closing it does nothing.
 */
struct usnet_tx_defer {
	struct usnet_netif base;    /* what the stack sees (lower's info) */
	struct usnet_netif *lower;  /* the real netif */
	unsigned queued;            /* frames given to lower since its last flush */
	unsigned max_queued;
};
void usnet_tx_defer_init(struct usnet_tx_defer *d, struct usnet_netif *lower, unsigned max_queued);
/* Flush lower's queue q now. */
int usnet_tx_defer_flush(struct usnet_tx_defer *d, uint16_t q);

#ifdef __cplusplus
}
#endif
#endif /* USNET_NETIF_WRAP_H */
