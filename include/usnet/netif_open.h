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

/* usnet_netif_config.queues: every receive queue the interface has, so that
 * no frame the NIC steers to a queue is left unread. */
#define USNET_NETIF_QUEUES_ALL 0xffffu

/* usnet_netif_config.ipv6: at most this many addresses besides the
 * link-local one. */
#define USNET_NETIF_IPV6_MAX 8

struct usnet_netif_config {
	const char *backend;  /* "memwire", "tap", "afpacket", "afxdp", "dpdk"
	                       * (usnet_netif_backends() lists those built in) */
	const char *iface;    /* interface name; for memwire "WIRE:SIDE" (SIDE 0 or 1) */
	uint16_t    queues;   /* 0 or 1: one queue; USNET_NETIF_QUEUES_ALL: one per
	                       * receive queue of the interface (afpacket, afxdp;
	                       * one for the others) */
	int         has_mac;  /* use mac below rather than the backend's own */
	uint8_t     mac[6];
	const char *impair;   /* impair spec ("loss=0.02,reorder=0.01,seed=7") or NULL */
	const char *pcap;     /* capture file to write, or NULL */
	const char *options;  /* backend-specific "key=value,..." or NULL */
	uint32_t    ipv4;     /* usnet's IPv4 address, host byte order, 0 if unknown:
	                       * afxdp steers only frames for it to usnet (same as
	                       * option ip=A.B.C.D); other backends ignore it */
	int         steer_ports; /* host-address mode: ipv4 is the kernel's own
	                       * address too; afxdp and afpacket steer only TCP/UDP to it for
	                       * the ports usnet_netif_steer_port() names, and the
	                       * kernel keeps ARP and everything else */
	/* usnet's IPv6 unicast addresses: the first ipv6_count of ipv6[], and,
	 * with ipv6_link_local, fe80::/64 with the netif's MAC as modified
	 * EUI-64 (RFC 4291 2.5.1, as the stack makes it).  afxdp steers IPv6
	 * to them and the Neighbor Discovery about them (NS whose target is
	 * one of them, NA for them) to usnet, and, unless steer_ports, the
	 * MLD queries to all nodes and to their solicited-node groups,
	 * leaving the kernel every other IPv6 frame; afpacket adds their
	 * solicited-node groups' MACs
	 * (33:33:ff + the low 24 bits) and all-nodes' to the device's filter;
	 * the others need nothing.  With steer_ports they are the kernel's own
	 * (no link-local one then): afxdp and afpacket steer only TCP/UDP to
	 * them for the ports usnet_netif_steer_port() names, as for ipv4, and
	 * the kernel keeps their ND.  None: IPv6 stays the kernel's. */
	uint8_t     ipv6[USNET_NETIF_IPV6_MAX][16];
	uint8_t     ipv6_count;
	uint8_t     ipv6_link_local;
};

/*
 * Backends and their options (cfg.options, "key=value,key,..."):
 *   memwire  iface "WIRE:0" / "WIRE:1" (see usnet/netif_memwire.h)
 *            frame=BYTES ring=N nowake
 *   tap      iface: the TAP device (created if missing, brought up)
 *            csum (IFF_VNET_HDR checksum offload) bufs=N
 *   afpacket iface: an existing interface; queues > 1 uses PACKET_FANOUT
 *            rx=v2|v3 (v2 default: no added latency) tov=MS blocks=N
 *            rxframes=N txframes=N
 *   afxdp    iface: an existing interface; one AF_XDP socket per queue
 *            mode=native|skb (default native) ip=A.B.C.D copy|zerocopy
 *            frames=N (UMEM frames per queue, default 4096) frame=2048|4096
 *            The XDP program steers only IPv4 to ip (and ARP for it),
 *            and IPv6 to cfg.ipv6 (and ND about them), to usnet;
 *            everything else goes to the kernel.  With
 *            cfg.steer_ports only TCP/UDP to ip on the ports
 *            usnet_netif_steer_port() set (ARP stays the kernel's);
 *            afpacket too (a socket filter and a tc ingress program).  A veth peer must
 *            not offload checksums (`ethtool -K PEER tx off`): checked when
 *            the peer is in the same namespace.
 * MAC: the interface's own (afpacket, afxdp, dpdk), random locally
 * administered (tap), derived from the wire (memwire); cfg.has_mac wins.
 *   dpdk     (only where built with libdpdk-dev; loaded as the plugin
 *            libusnet-netif-dpdk.so, see src/netif/dpdk.c)
 *            iface: an interface wrapped in a DPDK virtual device, or
 *            "port:N"; vdev=net_af_packet|net_af_xdp eal=ARG;ARG mbufs=N.
 *            No wait fd (-1): the caller polls.
 * Unknown keys are rejected.  Wrappers: cfg.impair (usnet/netif_wrap.h),
 * then cfg.pcap.
 */

/* Open a backend as described by cfg.  On success *out is the netif (wrapped
 * by impair then pcap when asked) and 0 is returned; on failure a negative
 * errno and a one-line explanation in err (always NUL-terminated). */
int usnet_netif_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		     char *err, size_t errlen);

/* Close what usnet_netif_open() returned (wrappers and backend). */
void usnet_netif_close(struct usnet_netif *nif);

/* RSS awareness: the receive queue on which the frames of an IPv4 flow
 * arrive, so that a connection is served by the stack instance of that
 * queue, and an outgoing connection can pick a local port whose replies come
 * back to the instance that opened it.  src is the sender of those frames
 * (the remote end), dst the local end; addresses and ports in host byte
 * order; proto 6 (TCP) or 17 (UDP).  Returns 0..nqueues-1, or -1 when the
 * backend cannot tell (e.g. a device that does not reveal its RSS key, or a
 * veth, whose receive queue is the sender's choice).
 *   one queue  0
 *   afpacket   its own fanout program: h = src_ip ^ dst_ip ^ src_port ^
 *              dst_port; h ^= h >> 16; h ^= h >> 8; queue h % nqueues (the
 *              same both ways; non-IPv4 frames go to queue 0)
 *   afxdp      the device's Toeplitz key and indirection table (ethtool)
 * Wrappers (impair, pcap) answer for what they wrap. */
int usnet_netif_flow_queue(struct usnet_netif *nif, uint8_t proto, uint32_t src_ip, uint16_t src_port,
			   uint32_t dst_ip, uint16_t dst_port);

/* Host-address mode (cfg.steer_ports): from now on, frames to the shared
 * address for `port` (proto 6 TCP or 17 UDP) go to the stack (on != 0) or
 * to the kernel (on == 0).  Every process using the netif may call it; it
 * makes no system call.  0, or -EOPNOTSUPP when nif was not opened so (or
 * its backend cannot steer by port: only afxdp and afpacket can). */
int usnet_netif_steer_port(struct usnet_netif *nif, uint8_t proto, uint16_t port, int on);
/* Whether frames for `port` go to the stack: 1 or 0, or -EOPNOTSUPP as
 * above. */
int usnet_netif_port_steered(struct usnet_netif *nif, uint8_t proto, uint16_t port);

/* IPv4 multicast: from now on the frames to `group` (host order,
 * 224.0.0.0/4) reach the stack (on != 0) or no longer (on == 0): afxdp's
 * program steers them (and IGMP general queries while any group is on) to
 * the stack, leaving the kernel every other multicast frame; afpacket adds
 * the group's MAC to the device's filter (PACKET_MR_MULTICAST).  memwire
 * and tap need nothing.  Calls for a group must alternate on and off (the
 * stack's first join and last leave); every process using the netif may
 * make them.  0, -ENOSPC (afxdp: 64 groups), -EOPNOTSUPP (a backend that
 * cannot: dpdk, afpacket in host-address mode), or another -errno. */
int usnet_netif_steer_group(struct usnet_netif *nif, uint32_t group, int on);
/* The same for an IPv6 group a socket joined (ff00::/8; not the stack's
 * own all-nodes and solicited-node groups, which afxdp and afpacket let
 * through from the open): afxdp's program steers the group's frames to
 * the stack, in host-address mode too; afpacket adds its 33:33 MAC (the
 * group's low 32 bits) to the device's filter, not in host-address mode.
 * 0, -ENOSPC (afxdp: 32 groups), -EOPNOTSUPP, or another -errno. */
int usnet_netif_steer_group6(struct usnet_netif *nif, const uint8_t group[16], int on);

/* The names of the backends compiled in, separated by spaces. */
const char *usnet_netif_backends(void);

#ifdef __cplusplus
}
#endif
#endif /* USNET_NETIF_OPEN_H */
