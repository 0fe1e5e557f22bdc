/*
 * usnet — opening packet I/O backends by name (Linux side of netif.h).
 *
 * usnet_netif_open() turns a configuration (as given on a command line:
 * --backend, --iface, --queues, --impair, --pcap) into a ready struct
 * usnet_netif, with the impair and pcap wrappers stacked on top when asked.
 * Every failure comes back as a negative errno plus one line for a person in
 * `err` that says what to do ("interface veth0 not found", "need root or
 * CAP_NET_ADMIN to create a TAP device", ...).
 */
#ifndef USNET_NETIF_OPEN_H
#define USNET_NETIF_OPEN_H

#include <stddef.h>
#include <stdint.h>
#include "usnet/netif.h"

#ifdef __cplusplus
extern "C" {
#endif

struct usnet_netif_config {
	const char *backend;  /* "memwire", "tap", "afpacket", "afxdp", "dpdk" */
	const char *iface;    /* interface name; for memwire "WIRE:SIDE" (SIDE 0 or 1) */
	uint16_t    queues;   /* 0 or 1: one queue */
	int         has_mac;  /* use mac below rather than the backend's own */
	uint8_t     mac[6];
	const char *impair;   /* impair spec ("loss=0.02,reorder=0.01,seed=7") or NULL */
	const char *pcap;     /* capture file to write, or NULL */
	const char *options;  /* backend-specific "key=value,..." or NULL */
};

/* Open a backend as described by cfg.  On success *out is the netif (wrapped
 * by impair then pcap when asked) and 0 is returned; on failure a negative
 * errno and a one-line explanation in err (always NUL-terminated). */
int usnet_netif_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		     char *err, size_t errlen);

/* Close what usnet_netif_open() returned (wrappers and backend). */
void usnet_netif_close(struct usnet_netif *nif);

/* The names of the backends compiled in, separated by spaces. */
const char *usnet_netif_backends(void);

#ifdef __cplusplus
}
#endif
#endif /* USNET_NETIF_OPEN_H */
