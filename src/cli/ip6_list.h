/*
 * The stack's IPv6 addresses as `usnet run --ip6` gives them (USNET_IP6:
 * ADDR/PREFIX items separated by commas, one per --ip6) and its IPv6
 * gateway (--gw6, USNET_GW6): read by usnet run to check them and by the
 * interface's owner to steer them.
 */
#ifndef USNET_CLI_IP6_LIST_H
#define USNET_CLI_IP6_LIST_H

#include <stddef.h>
#include <stdint.h>

/* The most --ip6 takes: the stack's USNET_IP6_ADDRS (its link-local
 * address comes on top). */
#define IP6_LIST_MAX 4

/* Parse list into addr[] and prefix[] (either may be NULL), at most
 * IP6_LIST_MAX unicast addresses, each with a prefix length of 1 to 128:
 * the count, or -1 with the offending item and why in why. */
int ip6_list_parse(const char *list, uint8_t addr[][16], uint8_t *prefix, char *why, size_t whylen);

/* Whether s is a unicast IPv6 address (not ::, not multicast): 0, or -1. */
int ip6_unicast_parse(const char *s, uint8_t addr[16]);

#endif
