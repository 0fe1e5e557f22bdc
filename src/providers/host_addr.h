/*
 * Host-address mode of the "usnet" provider (`usnet run --ip host`): the
 * stack shares the kernel's own address on its interface (and its global
 * IPv6 addresses).  The kernel keeps
 * ARP, ICMP and every port that is not the stack's; the backend steers to
 * the stack only the ports it binds and its ephemeral range (reserved from
 * the kernel by the interface's owner); the stack's neighbours come from the
 * kernel's table.  Everything here is a no-op outside host-address mode.
 */
#ifndef USNET_PROVIDERS_HOST_ADDR_H
#define USNET_PROVIDERS_HOST_ADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "stack_prov.h"

/* Read the mode from the configuration (host_addr, host_ports) into p, and
 * what it changes into the netif's configuration.  0, or -EINVAL with a
 * line in err. */
int host_addr_configure(struct prov *p, struct usnet_netif_config *nc, char *err, size_t errlen);

/* What the mode changes in the stack's configuration: its ephemeral ports
 * are the reserved range. */
void host_addr_stack_config(const struct prov *p, struct usnet_stack_config *sc);

/* Before the stack binds a->port (host byte order; a: the program's
 * address, IPv4 or IPv6) with a socket of type `type` (SOCK_STREAM /
 * SOCK_DGRAM; v6only: an IPv6 socket's IPV6_V6ONLY): -EADDRINUSE when a
 * kernel socket holds it, as Linux would answer (an IPv6 bind to :: that is
 * not V6ONLY conflicts with the kernel's IPv4 sockets too); else 0. */
int host_addr_bind_check(struct prov *p, const struct usnet_addr *a, int type, bool v6only);

/* Whether a connection or datagram to ip:port (host byte order) is for a
 * kernel socket on the shared address: ip is the shared address and the
 * port is not the stack's.  The switch then hands the socket to the
 * kernel, which reaches its own services there. */
bool host_addr_kernel_port(struct prov *p, int type, uint32_t ip, uint16_t port);

/* The same for IPv6: ip6 is one of the shared IPv6 addresses and the port
 * is not the stack's. */
bool host_addr_kernel_port6(struct prov *p, int type, const uint8_t ip6[16], uint16_t port);

/* After the stack bound `port`: frames for it go to the stack from now on. */
void host_addr_bound(struct prov *p, int type, uint16_t port);

/* Before a connect to `dst` (outside the lock): make sure the stack knows
 * the next hop's MAC, asking the kernel to resolve it if it must (waits a
 * little for the answer). */
void host_addr_resolve(struct prov *p, uint32_t dst);

/* Under the lock, after the stack ran: the neighbours the stack waits for,
 * IPv4 and IPv6, from the kernel's table (asking the kernel to resolve
 * those it lacks). */
void host_addr_neigh_sync(struct prov *p, struct inst *in, uint64_t now);

#endif
