/*
 * A netif wrapper that gives every queue a copy of each ARP frame received on
 * any queue.  With several stack instances on one multi-queue netif, each
 * instance keeps its own ARP table, but a NIC's RSS (or afpacket's fanout)
 * delivers ARP, which has no ports to hash, to a single queue: the other
 * instances would never learn a neighbour's address and could not answer.
 */
#ifndef FASTIO_ARP_SHARE_H
#define FASTIO_ARP_SHARE_H

#include "usnet/netif.h"

/* Wrap inner (which stays owned by the caller and must outlive the wrapper).
 * Returns NULL when out of memory. */
struct usnet_netif *arp_share_wrap(struct usnet_netif *inner);

/* Free the wrapper (not the netif it wraps). */
void arp_share_free(struct usnet_netif *nif);

#endif
