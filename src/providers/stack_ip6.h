/*
 * The "usnet" provider's IPv6 addresses (`usnet run --ip6 A/N --gw6 G`):
 * read from the configuration into the stack's and the netif's, and
 * checked by Duplicate Address Detection before the program uses the stack.
 * Everything here is a no-op without USNET_IP6.  Sockets over IPv6 are not
 * here yet: the stack answers ping and Neighbor Discovery by itself.
 */
#ifndef USNET_PROVIDERS_STACK_IP6_H
#define USNET_PROVIDERS_STACK_IP6_H

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

#endif
