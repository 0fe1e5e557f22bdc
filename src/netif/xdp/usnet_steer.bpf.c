// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * XDP program of the afxdp backend: steer usnet's own traffic to its AF_XDP
 * sockets and let the kernel have everything else (ssh, DNS, its own
 * addresses keep working on the same interface).
 *
 * "usnet's traffic" is: IPv4 packets whose destination is usnet's address,
 * and ARP packets whose target is that address.  The address lives in
 * usnet_addr[0] (network byte order), written by the backend; while it is 0
 * all IPv4 and ARP frames are steered.  usnet_addr[1] is the PID of the
 * process that attached the program (never read here): a later open
 * recognises a program left attached by a usnet process that is gone.  A frame goes to the socket of the
 * queue it arrived on (usnet_xsks[rx_queue_index]); with no socket there it
 * is passed to the kernel.
 *
 * Host-address mode (usnet_addr[2] = 1): the stack shares the kernel's own
 * address, so the address alone does not tell whose a frame is.  Then only
 * TCP and UDP to the address whose destination port is set in usnet_ports
 * (a bitmap, TCP's 65536 bits then UDP's, which the backend maps and sets
 * as the stack binds ports) go to the stack; ARP, ICMP, fragments and every
 * other port stay the kernel's.
 *
 * IPv4 multicast: a frame to a group in usnet_groups (its first 64
 * entries: the group in network byte order in the first 4 bytes, 0 for a
 * free slot; the backend maps the array and sets it as the stack joins
 * and leaves groups) goes to the stack, and so does IGMP to 224.0.0.1
 * (general queries) while usnet_groups holds any group; every other
 * multicast frame stays the kernel's, whatever the address mode.
 *
 * IPv6 multicast: a frame to a group the stack's sockets joined (the 32
 * entries of usnet_groups after those, 16 bytes each, all zero when
 * free) goes to the stack, whatever its next header (datagrams, MLD
 * queries about the group), whatever the address mode.  General MLD
 * queries come to the stack through all-nodes (below), not in
 * host-address mode, where they stay the kernel's: it answers them for
 * its own groups (its solicited-node ones), which its ND needs.
 *
 * IPv6: a frame to one of usnet's unicast addresses (the keys of
 * usnet_addr6, written by the backend at open: the link-local one and the
 * configured ones) goes to the stack, and so does Neighbor Discovery about
 * them sent to a multicast group: a Neighbor Solicitation whose target is
 * one of them (to its solicited-node group, 33:33:ff:xx:xx:xx, or a DAD
 * probe) and a Neighbor Advertisement for one (to all nodes: the answer to
 * the stack's DAD probe).  So does an MLD query (ICMPv6 130 after a
 * Hop-by-Hop header) to a group among the keys: the backend adds all-nodes
 * and the addresses' solicited-node groups, whose listener the stack is
 * (its reports keep a switch that snoops MLD forwarding its NS); general
 * queries then no longer reach the kernel, which usnet run keeps from
 * having the stack's link-local address on the interface anyway.  Every
 * other IPv6 frame stays the kernel's: its own addresses, their ND, RS/RA,
 * MLD reports and queries about other groups, echo requests to all nodes
 * (an XDP program cannot hand a frame to both).  With no key, all of IPv6
 * is the kernel's.  In host-address mode the keys are the kernel's own
 * IPv6 addresses, shared as its IPv4 one is, and no group: only TCP and
 * UDP to one of them (the transport header right after the IPv6 header)
 * whose destination port is set in usnet_ports go to the stack; ND, MLD,
 * echo requests, fragments, packets with extension headers and every
 * other port stay the kernel's.
 *
 * afpacket in host-address mode uses the same maps with two more programs:
 * usnet_sock_keep, a socket filter on its packet sockets, which keeps only
 * the stack's flows (the stack sees no ARP, no ND and none of the kernel's
 * flows), and usnet_tc_hide, on the interface's tc ingress (after packet
 * sockets took their copies), which drops the stack's flows before the
 * kernel's IP layer sees them (it would answer them with resets).  The
 * stack's flows are those the XDP program steers in that mode: TCP and UDP
 * to the shared IPv4 address (usnet_addr[0]) or to a shared IPv6 one (a
 * key of usnet_addr6, the transport header right after the IPv6 header)
 * whose destination port is set in usnet_ports.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} usnet_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} usnet_addr SEC(".maps");

#define PORT_WORDS 1024 /* 65536 bits per protocol */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} usnet_ports SEC(".maps");

struct addr6 {
	__u8 b[16];
};

/* IPv4 groups (the first 4 bytes of an entry), then IPv6 groups: entries
 * of 16 bytes (an array's entries are 8-byte aligned: a 4-byte value
 * would sit at every 8 bytes of the mapping). */
#define GROUP_SLOTS 64
#define GROUP6_SLOTS 32
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GROUP_SLOTS + GROUP6_SLOTS);
	__type(key, __u32);
	__type(value, struct addr6);
} usnet_groups SEC(".maps");
#define ADDR6_SLOTS 32   /* the link-local address and USNET_NETIF_IPV6_MAX more, their
			    solicited-node groups and all-nodes, with room */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ADDR6_SLOTS);
	__type(key, struct addr6);
	__type(value, __u8);
} usnet_addr6 SEC(".maps");

/* Whether the 16 bytes at a (inside the packet) are one of usnet's IPv6
 * addresses. */
static __always_inline int addr6_ours(const void *a)
{
	struct addr6 k;
	__builtin_memcpy(&k, a, sizeof k);
	return bpf_map_lookup_elem(&usnet_addr6, &k) != NULL;
}

#define ND_NS 135
#define ND_NA 136
#define ND_TARGET_OFFSET 8   /* type code checksum reserved/flags, then the target */
#define MLD_QUERY 130

/* Whether a multicast IPv6 packet is an MLD query (ICMPv6 after a
 * Hop-by-Hop header, as RFC 3810 sends every MLD message). */
static __always_inline int mld_query(struct ipv6hdr *ip6, void *end)
{
	__u8 *hbh = (__u8 *)(ip6 + 1);
	if ((void *)(hbh + 2) > end || hbh[0] != IPPROTO_ICMPV6)
		return 0;
	__u8 *icmp = hbh + ((__u32)hbh[1] + 1) * 8;
	if ((void *)(icmp + 1) > end)
		return 0;
	return icmp[0] == MLD_QUERY;
}

/* Whether the 16 bytes at a (a multicast destination inside the packet)
 * are a group the stack's sockets joined. */
static __always_inline int group6_steered(const void *a)
{
	__u32 d[4];
	__builtin_memcpy(d, a, sizeof d);
	for (__u32 i = 0; i < GROUP6_SLOTS; i++) {
		__u32 k = GROUP_SLOTS + i;
		__u32 *g = bpf_map_lookup_elem(&usnet_groups, &k);
		if (g && g[0] == d[0] && g[1] == d[1] && g[2] == d[2] && g[3] == d[3])
			return 1;
	}
	return 0;
}

/* Whether an IPv6 packet is the stack's: to one of its unicast addresses,
 * NS/NA about one of them to a multicast group, or an MLD query to one of
 * its groups. */
static __always_inline int ip6_steered(struct ipv6hdr *ip6, void *end)
{
	if (ip6->daddr.in6_u.u6_addr8[0] != 0xff)
		return addr6_ours(&ip6->daddr);
	if (ip6->nexthdr == IPPROTO_HOPOPTS)
		return mld_query(ip6, end) && addr6_ours(&ip6->daddr);
	if (ip6->nexthdr != IPPROTO_ICMPV6)
		return 0;   /* the rest of multicast: the kernel's */
	__u8 *icmp = (__u8 *)(ip6 + 1);
	if ((void *)(icmp + ND_TARGET_OFFSET + 16) > end)
		return 0;
	if (icmp[0] != ND_NS && icmp[0] != ND_NA)
		return 0;
	return addr6_ours(icmp + ND_TARGET_OFFSET);
}

/* The port bitmap's verdict for a TCP or UDP destination port. */
static __always_inline int port_steered(__u8 proto, __u16 port)
{
	__u32 word = (proto == IPPROTO_UDP ? PORT_WORDS : 0) + (port >> 6);
	__u64 *bits = bpf_map_lookup_elem(&usnet_ports, &word);
	return bits && (*bits >> (port & 63)) & 1;
}

/* Host-address mode: whether an IPv6 packet is one of the stack's flows:
 * TCP or UDP to a shared address for one of the stack's ports. */
static __always_inline int host_flow6(struct ipv6hdr *ip6, void *end)
{
	if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP)
		return 0;   /* ND, ICMPv6, fragments, extension headers: the kernel's */
	__u8 *l4 = (__u8 *)(ip6 + 1);
	if ((void *)(l4 + 4) > end)
		return 0;
	if (ip6->daddr.in6_u.u6_addr8[0] == 0xff || !addr6_ours(&ip6->daddr))
		return 0;
	return port_steered(ip6->nexthdr, (__u16)(l4[2] << 8 | l4[3]));
}

/* Whether a multicast packet is the stack's: to one of its groups, or
 * IGMP to all hosts while it has one. */
static __always_inline int group_steered(struct iphdr *ip)
{
	int any = 0;
	for (__u32 i = 0; i < GROUP_SLOTS; i++) {
		__u32 k = i;
		__u32 *g = bpf_map_lookup_elem(&usnet_groups, &k);   /* its first 4 bytes */
		if (!g || !*g)
			continue;
		if (*g == ip->daddr)
			return 1;
		any = 1;
	}
	return any && ip->protocol == IPPROTO_IGMP && ip->daddr == bpf_htonl(0xe0000001);
}

/* Host-address mode: whether an IPv4 packet to the shared address is one of
 * the stack's flows (its destination port is the stack's). */
static __always_inline int host_flow(struct iphdr *ip, void *end)
{
	if (ip->frag_off & bpf_htons(0x3fff))   /* MF or an offset: no ports to go by */
		return 0;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	__u32 ihl = ip->ihl * 4u;
	if (ihl < sizeof(*ip))
		return 0;
	__u8 *l4 = (__u8 *)ip + ihl;
	if ((void *)(l4 + 4) > end)
		return 0;
	return port_steered(ip->protocol, (__u16)(l4[2] << 8 | l4[3]));   /* both carry it at offset 2 */
}

/* host_flow for an skb (tc, socket filters): the IPv4 header at off. */
static __always_inline int skb_host_flow4(struct __sk_buff *skb, __u32 off)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, off, &ip, sizeof ip))
		return 0;
	__u32 key = 0;
	__u32 *addr = bpf_map_lookup_elem(&usnet_addr, &key);
	if (!addr || ip.daddr != *addr)
		return 0;
	if (ip.frag_off & bpf_htons(0x3fff))
		return 0;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return 0;
	__u32 ihl = ip.ihl * 4u;
	if (ihl < sizeof ip || ihl > 60)
		return 0;
	__u8 ports[4];
	if (bpf_skb_load_bytes(skb, off + ihl, ports, sizeof ports))
		return 0;
	return port_steered(ip.protocol, (__u16)(ports[2] << 8 | ports[3]));
}

/* host_flow6 for an skb: the IPv6 header at off, TCP or UDP right after
 * it, to a key of usnet_addr6 for one of the stack's ports. */
static __always_inline int skb_host_flow6(struct __sk_buff *skb, __u32 off)
{
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, off, &ip6, sizeof ip6))
		return 0;
	if (ip6.nexthdr != IPPROTO_TCP && ip6.nexthdr != IPPROTO_UDP)
		return 0;   /* ND, ICMPv6, fragments, extension headers: the kernel's */
	if (ip6.daddr.in6_u.u6_addr8[0] == 0xff || !addr6_ours(&ip6.daddr))
		return 0;
	__u8 ports[4];
	if (bpf_skb_load_bytes(skb, off + sizeof ip6, ports, sizeof ports))
		return 0;
	return port_steered(ip6.nexthdr, (__u16)(ports[2] << 8 | ports[3]));
}

/* The question of host_flow and host_flow6 for an skb (tc, socket
 * filters): in host-address mode, TCP/UDP to the shared IPv4 address or to
 * one of the shared IPv6 ones for one of the stack's ports. */
static __always_inline int skb_host_flow(struct __sk_buff *skb)
{
	__u32 mode_key = 2;
	__u32 *mode = bpf_map_lookup_elem(&usnet_addr, &mode_key);
	if (!mode || *mode != 1)
		return 0;
	struct ethhdr eth;
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof eth))
		return 0;
	if (eth.h_proto == bpf_htons(ETH_P_IP))
		return skb_host_flow4(skb, sizeof eth);
	if (eth.h_proto == bpf_htons(ETH_P_IPV6))
		return skb_host_flow6(skb, sizeof eth);
	return 0;
}

SEC("tc")
int usnet_tc_hide(struct __sk_buff *skb)
{
	return skb_host_flow(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("socket")
int usnet_sock_keep(struct __sk_buff *skb)
{
	return skb_host_flow(skb) ? (int)skb->len : 0;
}

#define ARP_TPA_OFFSET 24 /* htype ptype hlen plen op sha spa tha, then tpa */

SEC("xdp")
int usnet_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	__u32 key = 0;
	__u32 *addr = bpf_map_lookup_elem(&usnet_addr, &key);
	if (!addr)
		return XDP_PASS;
	__u32 want = *addr;
	__u32 mode_key = 2;
	__u32 *mode = bpf_map_lookup_elem(&usnet_addr, &mode_key);
	int host = mode && *mode == 1;
	void *l3 = eth + 1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if ((ip->daddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000)) {
			if (!group_steered(ip))
				return XDP_PASS;
			return bpf_redirect_map(&usnet_xsks, ctx->rx_queue_index, XDP_PASS);
		}
		if (want && ip->daddr != want)
			return XDP_PASS;
		if (host && !host_flow(ip, end))
			return XDP_PASS;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		if (host)
			return XDP_PASS;   /* the kernel answers for the shared address */
		if (l3 + ARP_TPA_OFFSET + 4 > end)
			return XDP_PASS;
		__u32 tpa;
		__builtin_memcpy(&tpa, l3 + ARP_TPA_OFFSET, 4);
		if (want && tpa != want)
			return XDP_PASS;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		if (ip6->daddr.in6_u.u6_addr8[0] == 0xff && group6_steered(&ip6->daddr))
			return bpf_redirect_map(&usnet_xsks, ctx->rx_queue_index, XDP_PASS);
		if (host ? !host_flow6(ip6, end) : !ip6_steered(ip6, end))
			return XDP_PASS;
	} else {
		return XDP_PASS;
	}
	return bpf_redirect_map(&usnet_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";
