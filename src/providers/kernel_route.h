/*
 * What the kernel's routing table says about a destination (netlink), for
 * the "usnet" provider's policy: a destination the kernel routes through
 * another interface is the kernel's, --gw or not.  Every system call goes
 * through host->syscall (never back into the switch).
 */
#ifndef USNET_PROVIDERS_KERNEL_ROUTE_H
#define USNET_PROVIDERS_KERNEL_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "usnet/provider.h"

/* The kernel's index of interface `ifname`, or -errno. */
int kernel_route_ifindex(const struct usnet_provider_host *host, const char *ifname);

/* The route the kernel would pick for IPv4 destination `dst` (host byte
 * order): the interface it leaves by and the prefix length of the matched
 * table entry (0: a default route).  -ENETUNREACH (or another -errno) when
 * the kernel has none. */
struct kernel_route {
	int oif;
	uint8_t prefix;
};
int kernel_route_get(const struct usnet_provider_host *host, uint32_t dst, struct kernel_route *out);

/* True when the kernel has a route more specific than a default route for
 * `dst` that leaves by an interface other than `ifindex` (a management
 * network, a database on a second NIC, the kernel's own address on another
 * interface): such a destination is the kernel's.  False when the kernel has
 * no route, only a default one, or one through `ifindex`. */
bool kernel_route_elsewhere(const struct usnet_provider_host *host, int ifindex, uint32_t dst);

/* The gateway of the kernel's default route (main table) through
 * `ifindex`, the one with the lowest metric, into *gw (host byte order):
 * 0, or -ENOENT when there is none, or -errno. */
int kernel_route_default_gateway(const struct usnet_provider_host *host, int ifindex, uint32_t *gw);

#endif
