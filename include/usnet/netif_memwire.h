/*
 * usnet — memwire: a shared-memory Ethernet wire between two endpoints.
 *
 * Two netifs joined back to back: what one transmits, the other receives.
 * Frames live in one shared mapping (lock-free single-producer/single-consumer
 * rings of descriptors, buffers in the mapping), so a frame costs no system
 * call and no copy: the receiver reads the sender's buffer in place.
 *
 * In one process: usnet_memwire_pair() below.  Across two processes:
 * usnet_netif_open() with backend "memwire" and iface "NAME:0" / "NAME:1";
 * the wire is the file /dev/shm/usnet-memwire-NAME (created by whichever side
 * comes first, removed when both have closed) with the wake-up FIFOs
 * /dev/shm/usnet-memwire-NAME.wake0 / .wake1.  No root needed.
 *
 * Options ("key=value,..."; for usnet_netif_open() in cfg.options):
 *   frame=BYTES  buffer size, 256..65536 (default 2048; 9018 or 65536 for
 *                jumbo/bulk frames); info.mtu = frame - 14.
 *   ring=N       descriptors per direction, a power of two 8..65536 (default
 *                1024, or 256 with frames above 2048 bytes); each direction
 *                has 2*N buffers, so a sender can hold frames while the ring
 *                is full (tx_burst then takes fewer).
 *   nowake       never signal the peer's wait fd (for a single thread that
 *                drives both ends and never sleeps): the fast path then has
 *                no shared flag to check at all.
 *   The second process to open a wire adopts its creator's frame and ring
 *   sizes (asking for different ones explicitly is an error).
 *   Each side attaches once per wire: after one side closed, the other must
 *   close too before the name can be used again.  A wire whose processes
 *   all died is recreated by the next open.
 *
 * Wake-ups: rx_burst() that finds nothing arms the peer to signal this side's
 * wait fd (an eventfd in one process, a FIFO across processes) when it next
 * transmits; while frames keep flowing nobody signals, so a busy loop makes no
 * system calls.  A caller that got 0 from rx_burst() can therefore sleep on
 * wait_fd() safely.  The fd may be readable spuriously (it is drained by the
 * next rx_burst()).
 *
 * Checksums: caps are USNET_NETIF_CAP_TX_CSUM | USNET_NETIF_CAP_RX_CSUM.
 * Frames never leave memory, so a frame sent with USNET_PKT_TX_CSUM_PARTIAL
 * arrives with USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL and the same
 * csum_start/csum_offset (its checksum field still holds the pseudo-header
 * sum); frames sent with a computed checksum arrive without flags, for the
 * receiver to verify.
 *
 * Fork and other processes: an end's state lives in shared memory
 * (USNET_NETIF_CAP_SHARED), so a forked child may use an end its parent
 * opened, one process at a time (the caller's lock), with the same fds; and
 * any end, of a pair too, can be handed to a process that did not fork with
 * usnet_netif_share() (usnet/netif_share.h).  Each process may close its
 * netif; only the opener's close leaves the wire.
 *
 * MACs: 02:00:00:00:00:01 (side 0) and ...:02 (side 1) for a pair; across
 * processes 02:xx:xx:xx:00:0S with xx from the wire's name.  cfg.has_mac
 * overrides.  One queue.
 */
#ifndef USNET_NETIF_MEMWIRE_H
#define USNET_NETIF_MEMWIRE_H

#include <stddef.h>
#include "usnet/netif.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Create a wire in this process and its two ends: ends[0] and ends[1].
 * options as above (NULL: defaults).  Returns 0, or a negative errno with a
 * one-line reason in err.  Close each end with usnet_netif_close() (or its
 * ops->close); the wire goes away with the last end. */
int usnet_memwire_pair(struct usnet_netif *ends[2], const char *options,
		       char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* USNET_NETIF_MEMWIRE_H */
