/*
 * The "usnet" provider's IPv6 addresses (`usnet run --ip6 A/N --gw6 G`):
 * read from the configuration into the stack's and the netif's, and
 * checked by Duplicate Address Detection before the program uses the stack.
 * Everything here is a no-op without USNET_IP6.  With it, the program's
 * AF_INET6 sockets are the stack's IPv6 sockets, and the policy below says
 * which IPv6 addresses they take on the stack and which are the kernel's
 * (stack.c asks; loopback, ::1, is stack.c's, as 127.0.0.1 is).
 */
#ifndef USNET_PROVIDERS_STACK_IP6_H
#define USNET_PROVIDERS_STACK_IP6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack_prov.h"

/* Read ip6 (a comma-separated list of ADDR/PREFIX, at most USNET_IP6_ADDRS)
 * and gw6 (an address) into p, and the addresses into the netif's
 * configuration (with the link-local one).  0, or -EINVAL with a line in
 * err. */
int stack_ip6_configure(struct prov *p, struct usnet_netif_config *nc, char *err, size_t errlen);

/* The addresses and the gateway into the stack's configuration (the
 * link-local address from the MAC whenever there is any IPv6). */
void stack_ip6_stack_config(const struct prov *p, struct usnet_stack_config *sc);

/* Duplicate Address Detection (RFC 4862) at start: drive the instances with
 * drive(p, now) until none holds a tentative address.  0; -EADDRINUSE with
 * the address and the interface named in err when an instance found one
 * taken; -ETIMEDOUT when detection did not end in its time. */
int stack_ip6_dad_wait(struct prov *p, uint64_t (*drive)(void *p, uint64_t now), char *err, size_t errlen);

/* Whether a is one of the stack's IPv6 addresses (the configured ones or
 * its link-local one). */
bool stack_ip6_owns(const struct prov *p, const uint8_t a[16]);

/* Where a bind of a stack IPv6 socket to the IPv6 address a (not ::, not
 * ::1, not v4-mapped) goes: 1 the stack (an address of its own: a
 * link-local one on the stack's interface, named by scope, the program's
 * sin6_scope_id, or by SO_BINDTODEVICE, bound_dev; a group, ff00::/8, as
 * a UDP socket binds to take its datagrams, on that interface), 0 the
 * kernel (any other address, or a link-local one or group on another
 * interface), or -EINVAL for a link-local address or a group of link or
 * interface scope that names no interface, as Linux answers. */
int stack_ip6_bind_where(const struct prov *p, const uint8_t a[16], uint32_t scope, bool bound_dev);

/* Where a connect or a datagram of a stack IPv6 socket to the IPv6
 * address a (not ::, not ::1, not v4-mapped) goes: 1 the stack (its own
 * addresses, a link-local address on its interface, its prefixes, with
 * --gw6 every other unicast address, and without it what the stack has a
 * route to from Router Advertisements: an on-link prefix, or any address
 * once it knows a default router, and groups, ff00::/8, unless a scope
 * names another interface), 0 the kernel (a link-local address or group
 * on another interface, and off-prefix destinations the stack has no
 * route to), or -EINVAL for a link-local address that names no
 * interface, as Linux answers.  Locks the instances to ask them. */
int stack_ip6_dest_where(struct prov *p, const uint8_t a[16], uint32_t scope, bool bound_dev);

#endif
