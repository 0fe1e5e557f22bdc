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
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
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
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} usnet_addr SEC(".maps");

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
	void *l3 = eth + 1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (want && ip->daddr != want)
			return XDP_PASS;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		if (l3 + ARP_TPA_OFFSET + 4 > end)
			return XDP_PASS;
		__u32 tpa;
		__builtin_memcpy(&tpa, l3 + ARP_TPA_OFFSET, 4);
		if (want && tpa != want)
			return XDP_PASS;
	} else {
		return XDP_PASS;
	}
	return bpf_redirect_map(&usnet_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";
