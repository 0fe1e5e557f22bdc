/*
 * Host-address mode (host_addr.h).  Why each piece:
 *  - Steering by port: the address no longer tells whose a frame is.  The
 *    ephemeral range is steered once by the owner; a port the stack binds is
 *    steered here, by whichever process binds it (the bitmap is shared), and
 *    stays steered while the stack lives.
 *  - Kernel-held ports: a probe socket bound with the program's intent
 *    (SO_REUSEADDR for TCP, so only a listener or a socket bound without it
 *    conflicts, as between two Linux programs) answers EADDRINUSE as Linux
 *    would.  A kernel program that binds a port after the stack did is not
 *    stopped (see docs/deploy.md).
 *  - Neighbours: the kernel answers ARP for the shared address, so ARP
 *    replies reach the kernel, not the stack.  The kernel's table
 *    (RTM_GETNEIGH) gives the stack each MAC it waits for; one the kernel
 *    lacks is resolved by the kernel on request (RTM_NEWNEIGH with
 *    NTF_USE).
 *  - IPv6: the kernel's global IPv6 addresses (USNET_IP6, read by usnet
 *    run; stack_ip6.c marks them shared in the stack) are shared as the
 *    IPv4 one: the kernel answers ND for them, so IPv6 neighbours come
 *    from its table the same way; the probe for a program's IPv6 bind
 *    takes the program's address and IPV6_V6ONLY, so a dual-stack `::`
 *    conflicts with the kernel's IPv4 sockets too, as on Linux; a
 *    connection to a shared IPv6 address on a port that is not the
 *    stack's is the kernel's.
 * Every system call goes through host->syscall.
 */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

#include "host_addr.h"

#define SYS(h, nr, a, b, c, d, e, f) (h)->syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define NEIGH_WAIT_MAX 16       /* neighbours looked up per sync */
#define RESOLVE_WAIT_MS 300     /* how long a connect waits for the kernel's ARP */
#define NEIGH_SYNC_NS 5000000ull /* between two looks at the kernel's table */

int host_addr_configure(struct prov *p, struct usnet_netif_config *nc, char *err, size_t errlen)
{
	const struct usnet_provider_host *h = p->host;
	const char *on = h->config(h->host, "host_addr");
	if (!on || strcmp(on, "1"))
		return 0;
	const char *ports = h->config(h->host, "host_ports");
	unsigned lo = 0, hi = 0;
	char tail;
	if (!ports || sscanf(ports, "%u-%u%c", &lo, &hi, &tail) != 2 || lo < 1024 || hi > 65535 || lo > hi) {
		snprintf(err, errlen, "USNET_HOST_PORTS '%s' is not a port range LO-HI (1024..65535)", ports ? ports : "");
		return -EINVAL;
	}
	p->host_mode = true;
	p->host_ports_lo = (uint16_t)lo;
	p->host_ports_hi = (uint16_t)hi;
	nc->steer_ports = 1;
	return 0;
}

void host_addr_stack_config(const struct prov *p, struct usnet_stack_config *sc)
{
	if (!p->host_mode)
		return;
	sc->ephemeral_lo = p->host_ports_lo;
	sc->ephemeral_hi = p->host_ports_hi;
}

int host_addr_bind_check(struct prov *p, const struct usnet_addr *a, int type, bool v6only)
{
	if (!p->host_mode || a->port == 0)
		return 0;
	const struct usnet_provider_host *h = p->host;
	bool six = a->family == USNET_AF_INET6;
	long fd = SYS(h, SYS_socket, six ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0, 0, 0, 0);
	if (fd < 0)
		return 0;   /* cannot tell: the stack decides alone */
	int one = 1, only = v6only;
	if (type == SOCK_STREAM)
		SYS(h, SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one, 0);
	long r;
	if (six) {
		/* The program's own address (:: or a shared one) and V6ONLY:
		 * a dual-stack :: conflicts with the kernel's IPv4 sockets on
		 * the port too, as between two Linux programs. */
		SYS(h, SYS_setsockopt, fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only, 0);
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(a->port) };
		memcpy(&s6.sin6_addr, a->ip6, 16);
		r = SYS(h, SYS_bind, fd, &s6, sizeof s6, 0, 0, 0);
	} else {
		struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(p->ip) };
		r = SYS(h, SYS_bind, fd, &s4, sizeof s4, 0, 0, 0);
	}
	SYS(h, SYS_close, fd, 0, 0, 0, 0, 0);
	return r == -EADDRINUSE ? -EADDRINUSE : 0;
}

bool host_addr_kernel_port(struct prov *p, int type, uint32_t ip, uint16_t port)
{
	if (!p->host_mode || ip != p->ip)
		return false;
	return usnet_netif_port_steered(p->nif, type == SOCK_DGRAM ? 17 : 6, port) == 0;
}

bool host_addr_kernel_port6(struct prov *p, int type, const uint8_t ip6[16], uint16_t port)
{
	if (!p->host_mode)
		return false;
	for (unsigned i = 0; i < p->ip6_count; i++)
		if (!memcmp(ip6, p->ip6[i], 16))
			return usnet_netif_port_steered(p->nif, type == SOCK_DGRAM ? 17 : 6, port) == 0;
	return false;
}

void host_addr_bound(struct prov *p, int type, uint16_t port)
{
	if (p->host_mode && port)
		usnet_netif_steer_port(p->nif, type == SOCK_DGRAM ? 17 : 6, port, 1);
}

/* One netlink request, its answer into buf (up to len bytes): the answer's
 * length, or -errno (an NLMSG_ERROR's error included). */
static long nl_ask(const struct usnet_provider_host *h, void *req, size_t reqlen, void *buf, size_t len)
{
	long fd = SYS(h, SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE, 0, 0, 0);
	if (fd < 0)
		return fd;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	long r = SYS(h, SYS_sendto, fd, req, reqlen, 0, &kernel, sizeof kernel);
	if (r >= 0)
		r = SYS(h, SYS_recvfrom, fd, buf, len, 0, 0, 0);
	SYS(h, SYS_close, fd, 0, 0, 0, 0, 0);
	if (r < 0)
		return r;
	struct nlmsghdr *nh = buf;
	if (!NLMSG_OK(nh, (unsigned long)r))
		return -EPROTO;
	if (nh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(nh);
		return nh->nlmsg_len >= NLMSG_LENGTH(sizeof *e) ? e->error : -EPROTO;
	}
	return r;
}

struct neigh_req {
	struct nlmsghdr nh;
	struct ndmsg nd;
	struct rtattr dst_attr;
	uint8_t dst[16];
};

/* A neighbour request about addr (4 bytes, network byte order, for
 * AF_INET; 16 for AF_INET6). */
static void neigh_req_init(struct neigh_req *q, uint16_t type, uint16_t flags, int ifindex, int family,
			   const void *addr)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	memset(q, 0, sizeof *q);
	q->nh.nlmsg_len = (uint32_t)(NLMSG_LENGTH(sizeof q->nd) + RTA_LENGTH(alen));
	q->nh.nlmsg_type = type;
	q->nh.nlmsg_flags = flags;
	q->nd.ndm_family = (uint8_t)family;
	q->nd.ndm_ifindex = ifindex;
	q->dst_attr.rta_len = (unsigned short)RTA_LENGTH(alen);
	q->dst_attr.rta_type = NDA_DST;
	memcpy(q->dst, addr, alen);
}

/* The kernel's MAC for addr (as neigh_req_init) on the stack's interface,
 * when its entry is usable: 1; 0 when it has none (or not yet); -errno. */
static int kernel_neigh(struct prov *p, int family, const void *addr, uint8_t mac[6])
{
	struct neigh_req q;
	neigh_req_init(&q, RTM_GETNEIGH, NLM_F_REQUEST, p->kernel_ifindex, family, addr);
	union {
		struct nlmsghdr nh;
		char bytes[1024];
	} buf;
	long r = nl_ask(p->host, &q, q.nh.nlmsg_len, &buf, sizeof buf);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return (int)r;
	if (buf.nh.nlmsg_type != RTM_NEWNEIGH || buf.nh.nlmsg_len < NLMSG_LENGTH(sizeof(struct ndmsg)))
		return -EPROTO;
	const struct ndmsg *nd = NLMSG_DATA(&buf.nh);
	if (!(nd->ndm_state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT)))
		return 0;
	int len = (int)(buf.nh.nlmsg_len - NLMSG_LENGTH(sizeof *nd));
	for (const struct rtattr *a = (const struct rtattr *)((const char *)nd + NLMSG_ALIGN(sizeof *nd));
	     RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
			memcpy(mac, RTA_DATA(a), 6);
			return 1;
		}
	}
	return 0;
}

/* Ask the kernel to resolve addr (it answers later, in its table). */
static void kernel_neigh_resolve(struct prov *p, int family, const void *addr)
{
	struct neigh_req q;
	neigh_req_init(&q, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, p->kernel_ifindex, family, addr);
	q.nd.ndm_flags = NTF_USE;
	char buf[512];
	nl_ask(p->host, &q, q.nh.nlmsg_len, buf, sizeof buf);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void host_addr_resolve(struct prov *p, uint32_t dst)
{
	if (!p->host_mode || !p->kernel_ifindex)
		return;
	uint32_t mask = p->prefix ? ~0u << (32 - p->prefix) : 0;
	uint32_t hop = (dst & mask) == (p->ip & mask) ? dst : p->gw;
	if (!hop)
		return;
	uint8_t mac[6];
	uint32_t hop_be = htonl(hop);
	int got = kernel_neigh(p, AF_INET, &hop_be, mac);
	if (got == 0) {
		kernel_neigh_resolve(p, AF_INET, &hop_be);
		for (int ms = 0; ms < RESOLVE_WAIT_MS && (got = kernel_neigh(p, AF_INET, &hop_be, mac)) == 0; ms += 2) {
			struct timespec t = { 0, 2000000 };
			SYS(p->host, SYS_nanosleep, &t, 0, 0, 0, 0, 0);
		}
	}
	/* Every instance keeps its own neighbour table. */
	for (uint16_t i = 0; got == 1 && i < p->ninst; i++) {
		inst_lock(&p->in[i]);
		usnet_neigh_set(p->in[i].st, &p->in[i].io, hop, mac, mono_ns());
		inst_unlock(&p->in[i]);
	}
}

void host_addr_neigh_sync(struct prov *p, struct inst *in, uint64_t now)
{
	if (!p->host_mode || !p->kernel_ifindex || now < p->host_neigh_at[in->q])
		return;
	/* At most every few milliseconds: a neighbour that never answers
	 * must not cost every call a netlink round trip. */
	p->host_neigh_at[in->q] = now + NEIGH_SYNC_NS;
	uint32_t ips[NEIGH_WAIT_MAX];
	unsigned n = usnet_neigh_waiting(in->st, ips, NEIGH_WAIT_MAX);
	for (unsigned i = 0; i < n; i++) {
		uint8_t mac[6];
		uint32_t ip_be = htonl(ips[i]);
		int got = kernel_neigh(p, AF_INET, &ip_be, mac);
		if (got == 1)
			usnet_neigh_set(in->st, &in->io, ips[i], mac, now);
		else if (got == 0)
			kernel_neigh_resolve(p, AF_INET, &ip_be);
	}
	/* IPv6 the same way: the kernel answers ND for the shared addresses,
	 * so advertisements reach it, not the stack. */
	uint8_t ip6s[NEIGH_WAIT_MAX][16];
	n = p->ip6_count ? usnet_neigh6_waiting(in->st, ip6s, NEIGH_WAIT_MAX) : 0;
	for (unsigned i = 0; i < n; i++) {
		uint8_t mac[6];
		int got = kernel_neigh(p, AF_INET6, ip6s[i], mac);
		if (got == 1)
			usnet_neigh6_set(in->st, &in->io, ip6s[i], mac, now);
		else if (got == 0)
			kernel_neigh_resolve(p, AF_INET6, ip6s[i]);
	}
}
