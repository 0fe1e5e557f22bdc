/*
 * The provider's IPv6 addresses (stack_ip6.h).  Why each piece:
 *  - The link-local address (fe80::/64 from the MAC) comes with any IPv6:
 *    Neighbor Discovery with routers speaks from it (RFC 4861 4.2), and
 *    `--ip6` names only the further ones.
 *  - DAD before the program runs: an address another node holds must not
 *    be used, and the program cannot tell; the stack's verdict becomes one
 *    line and a refusal to start.  Every instance checks on its own (an
 *    answer to a probe reaches the queue the device picks), so a duplicate
 *    found by any refuses.
 *  - Without --gw6 the stack learns its routers (and further on-link
 *    prefixes) from Router Advertisements after it starts, so whether an
 *    off-prefix destination is the stack's is asked of the instances at
 *    each connect and unconnected datagram, not fixed at start.
 *  - Host-address mode: the list is the kernel's own global addresses (usnet
 *    run reads them), marked shared in the stack: no DAD (the kernel's),
 *    no Neighbor Discovery answers (the kernel's), no link-local address
 *    of the stack's (the kernel's alone).
 * Every system call goes through host->syscall.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "stack_ip6.h"

_Static_assert(USNET_IP6_ADDRS <= USNET_NETIF_IPV6_MAX, "the netif steers fewer IPv6 addresses than the stack has");

#define DAD_POLL_NS 5000000ull   /* between two looks at the addresses' states */

/* One ADDR/PREFIX (len bytes at s) into addr and *prefix: 0 or -1. */
static int parse_one(const char *s, size_t len, uint8_t addr[16], uint8_t *prefix)
{
	char buf[64];
	const char *slash = memchr(s, '/', len);
	if (!slash || len >= sizeof buf)
		return -1;
	size_t n = (size_t)(slash - s);
	memcpy(buf, s, n);
	buf[n] = 0;
	if (inet_pton(AF_INET6, buf, addr) != 1)
		return -1;
	size_t pl = len - n - 1;
	memcpy(buf, slash + 1, pl);
	buf[pl] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (!pl || *end || v < 1 || v > 128)
		return -1;
	*prefix = (uint8_t)v;
	return 0;
}

int stack_ip6_configure(struct prov *p, struct usnet_netif_config *nc, char *err, size_t errlen)
{
	const struct usnet_provider_host *h = p->host;
	const char *list = h->config(h->host, "ip6"), *gw = h->config(h->host, "gw6");
	p->ip6_count = 0;
	p->ip6_has_gw = false;
	if (!list) {
		if (gw) {
			snprintf(err, errlen, "USNET_GW6 '%s' without an IPv6 address of the stack (USNET_IP6, --ip6)", gw);
			return -EINVAL;
		}
		return 0;
	}
	for (const char *s = list; *s;) {
		size_t len = strcspn(s, ",");
		if (p->ip6_count == USNET_IP6_ADDRS) {
			snprintf(err, errlen, "USNET_IP6 '%s' has more than %d addresses", list, USNET_IP6_ADDRS);
			return -EINVAL;
		}
		uint8_t *a = p->ip6[p->ip6_count];
		if (parse_one(s, len, a, &p->ip6_prefix[p->ip6_count]) || a[0] == 0xff ||
		    IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)a) || IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a) ||
		    IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			snprintf(err, errlen, "USNET_IP6 '%.*s' is not a unicast IPv6 ADDR/PREFIX", (int)len, s);
			return -EINVAL;
		}
		p->ip6_count++;
		s += len;
		if (*s == ',')
			s++;
	}
	if (gw) {
		if (inet_pton(AF_INET6, gw, p->ip6_gw) != 1 || p->ip6_gw[0] == 0xff ||
		    IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)p->ip6_gw)) {
			snprintf(err, errlen, "USNET_GW6 '%s' is not a unicast IPv6 address", gw);
			return -EINVAL;
		}
		p->ip6_has_gw = true;
	}
	for (unsigned i = 0; i < p->ip6_count; i++)
		memcpy(nc->ipv6[i], p->ip6[i], 16);
	nc->ipv6_count = p->ip6_count;
	/* In host-address mode the list is the kernel's own addresses and the
	 * link-local one stays the kernel's alone. */
	nc->ipv6_link_local = !p->host_mode;
	return 0;
}

void stack_ip6_stack_config(const struct prov *p, struct usnet_stack_config *sc)
{
	if (!p->ip6_count)
		return;
	sc->ip6_link_local = !p->host_mode;
	for (unsigned i = 0; i < p->ip6_count; i++) {
		memcpy(sc->ip6[i], p->ip6[i], 16);
		sc->ip6_prefix_len[i] = p->ip6_prefix[i];
		sc->ip6_shared[i] = p->host_mode;   /* the kernel's: no DAD, the kernel answers ND */
	}
	if (p->ip6_has_gw)
		memcpy(sc->ip6_gateway, p->ip6_gw, 16);
}

static uint64_t clock_ns(const struct usnet_provider_host *h)
{
	struct timespec ts;
	h->syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0, 0, 0, 0);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int stack_ip6_dad_wait(struct prov *p, uint64_t (*drive)(void *p, uint64_t now), char *err, size_t errlen)
{
	if (!p->ip6_count)
		return 0;
	const struct usnet_provider_host *h = p->host;
	/* Under a second's delay, then a second for the one probe the stack
	 * sends (RFC 4862 5.4.2, RetransTimer): it ends within two; four
	 * leave room for a loaded machine. */
	uint64_t limit = clock_ns(h) + 4000000000ull;
	for (;;) {
		drive(p, clock_ns(h));
		bool tentative = false;
		for (uint16_t i = 0; i < p->ninst; i++) {
			struct inst *in = &p->in[i];
			inst_lock(in);
			for (unsigned k = 0; k <= USNET_IP6_ADDRS; k++) {
				uint8_t a[16];
				int s = usnet_ip6_addr(in->st, k, a, NULL);
				if (s == USNET_IP6_ADDR_TENTATIVE)
					tentative = true;
				if (s != USNET_IP6_ADDR_DUPLICATE)
					continue;
				inst_unlock_quiet(in);
				char txt[INET6_ADDRSTRLEN];
				inet_ntop(AF_INET6, a, txt, sizeof txt);
				snprintf(err, errlen, "IPv6 address %s is already in use on the link of %s (Duplicate Address "
					 "Detection: another node holds it or claims it): the stack does not start; give it an "
					 "address of its own", txt, p->iface);
				return -EADDRINUSE;
			}
			inst_unlock_quiet(in);
		}
		if (!tentative)
			return 0;
		if (clock_ns(h) > limit) {
			snprintf(err, errlen, "Duplicate Address Detection of the IPv6 addresses on %s did not end in time",
				 p->iface);
			return -ETIMEDOUT;
		}
		struct timespec ts = { 0, (long)DAD_POLL_NS };
		h->syscall(SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0);
	}
}

bool stack_ip6_owns(const struct prov *p, const uint8_t a[16])
{
	if (!p->ip6_count)
		return false;
	if (!memcmp(a, p->ip6_ll, 16))
		return true;
	for (unsigned i = 0; i < p->ip6_count; i++)
		if (!memcmp(a, p->ip6[i], 16))
			return true;
	return false;
}

static bool is_link_local(const uint8_t a[16]) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }

/* Whether a link-local address's interface is the stack's: 1, 0 (another
 * one), -EINVAL (none named: Linux needs sin6_scope_id or
 * SO_BINDTODEVICE for a link-local address).  Without a kernel interface
 * (memwire) any index names the stack's, the only one there is. */
static int link_local_ours(const struct prov *p, uint32_t scope, bool bound_dev)
{
	if (scope)
		return !p->kernel_ifindex || scope == (uint32_t)p->kernel_ifindex;
	return bound_dev ? 1 : -EINVAL;
}

int stack_ip6_bind_where(const struct prov *p, const uint8_t a[16], uint32_t scope, bool bound_dev)
{
	if (a[0] == 0xff) {   /* a group: its datagrams on the stack's interface */
		if (!p->ip6_count)
			return 0;
		return scope || (a[1] & 0x0f) <= 2 ? link_local_ours(p, scope, bound_dev) : 1;
	}
	if (is_link_local(a)) {
		int r = link_local_ours(p, scope, bound_dev);
		return r <= 0 ? r : stack_ip6_owns(p, a);
	}
	return stack_ip6_owns(p, a);
}

/* Whether a is on the prefix of one of the configured addresses. */
static bool on_prefix(const struct prov *p, const uint8_t a[16])
{
	for (unsigned i = 0; i < p->ip6_count; i++) {
		unsigned bits = p->ip6_prefix[i], k = 0;
		for (; bits >= 8; k++, bits -= 8)
			if (a[k] != p->ip6[i][k])
				break;
		if (bits >= 8)
			continue;
		uint8_t mask = (uint8_t)(0xff00 >> bits);
		if (!bits || ((a[k] ^ p->ip6[i][k]) & mask) == 0)
			return true;
	}
	return false;
}

/* Whether an instance of the stack has a route to a that is not the
 * configuration's: a prefix or a default router Router Advertisements
 * taught it. */
static bool learned_route(struct prov *p, const uint8_t a[16])
{
	for (uint16_t i = 0; i < p->ninst; i++) {
		struct inst *in = &p->in[i];
		uint8_t nh[16];
		inst_lock(in);
		int r = usnet_ip6_route(in->st, a, nh);
		inst_unlock_quiet(in);
		if (r == 0)
			return true;
	}
	return false;
}

int stack_ip6_dest_where(struct prov *p, const uint8_t a[16], uint32_t scope, bool bound_dev)
{
	if (a[0] == 0xff)   /* a group: by the stack's interface, unless a scope names another */
		return !p->ip6_count ? 0 : scope ? link_local_ours(p, scope, bound_dev) : 1;
	if (is_link_local(a))
		return link_local_ours(p, scope, bound_dev);
	if (stack_ip6_owns(p, a) || on_prefix(p, a) || p->ip6_has_gw)
		return 1;
	return p->ip6_count && !p->host_mode && learned_route(p, a);
}
