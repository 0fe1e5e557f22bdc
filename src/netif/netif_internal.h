/*
 * Internal glue shared by the netif backends and wrappers (not installed).
 */
#ifndef USNET_NETIF_INTERNAL_H
#define USNET_NETIF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "usnet/netif.h"
#include "usnet/netif_open.h"
#include "usnet/netif_share.h"

/* Write a one-line message into err (printf-style) and return -errnum's
 * negative value, so callers can `return netif_err(err, errlen, EINVAL, ...)`. */
int netif_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Copy a string into a fixed-size info field, always NUL-terminated. */
void netif_set_name(char dst[USNET_NETIF_NAME_MAX], const char *src);

/* Backend-specific "key=value,key,..." options.
 * netif_opt_check() rejects keys not in the NULL-terminated `known` list.
 * netif_opt_get() copies the value of `key` into val (empty for a bare key)
 * and returns 1 when present, 0 when absent. */
int netif_opt_check(const char *options, const char *const known[], const char *backend,
		    char *err, size_t errlen);
int netif_opt_get(const char *options, const char *key, char *val, size_t vallen);
/* Parse a decimal option into [min,max]; returns 0 (value set or absent: *out
 * unchanged) or a negative errno with err filled. */
int netif_opt_uint(const char *options, const char *key, uint64_t min, uint64_t max,
		   uint64_t *out, char *err, size_t errlen);

/* Fill the L4 checksum of a frame sent with USNET_PKT_TX_CSUM_PARTIAL, as a
 * device would (sum from csum_start to the end, folded, complemented, stored
 * at csum_start + csum_offset).  Returns 0, or -EINVAL when the offsets lie
 * outside the frame. */
int netif_csum_fill(uint8_t *frame, uint32_t len, uint16_t csum_start, uint16_t csum_offset);
/* The 16-bit value netif_csum_fill() would store (network byte order bytes
 * in out[0..1]). */
int netif_csum_compute(const uint8_t *frame, uint32_t len, uint16_t csum_start,
		       uint16_t csum_offset, uint8_t out[2]);

/* Zeroed memory that a forked child shares with its parent (MAP_SHARED),
 * for backend state behind USNET_NETIF_CAP_SHARED; NULL when out of memory.
 * netif_shm_free(NULL) does nothing. */
void *netif_shm_calloc(size_t size);
void netif_shm_free(void *p);

/*
 * A backend's shared state for processes that do not fork from each other
 * (usnet/netif_share.h): one memfd, mapped wherever each process likes, in
 * which allocations are offsets.  Sparse: pages cost memory once touched,
 * so the owner can size it generously when it opens the backend.
 */
struct netif_shm_region {
	int      fd;       /* the memfd (-1: none) */
	uint8_t *base;     /* this process's mapping */
	size_t   size;     /* bytes mapped */
	size_t   used;     /* bump allocator (the owner's; attachers only map) */
};
/* Create a region of `size` bytes named `name` (memfd name, for
 * /proc/PID/maps); 0 or a negative errno with a line in err. */
int netif_shm_region_create(struct netif_shm_region *r, const char *name, size_t size, char *err, size_t errlen);
/* Map the region behind a received memfd (takes fd); 0 or -errno with a line. */
int netif_shm_region_map(struct netif_shm_region *r, int fd, char *err, size_t errlen);
/* Zeroed bytes in the region, 64-byte aligned: their offset, or
 * NETIF_SHM_NONE when the region is full. */
#define NETIF_SHM_NONE ((size_t)-1)
size_t netif_shm_region_alloc(struct netif_shm_region *r, size_t size);
static inline void *netif_shm_at(const struct netif_shm_region *r, size_t off)
{
	return r->base + off;
}
/* Unmap and close this process's view (the memory lives while another
 * process maps it). */
void netif_shm_region_release(struct netif_shm_region *r);

/* Close the fds of a share that attach refuses (they are the attacher's). */
void netif_share_close_fds(const struct usnet_netif_share *sh);

/* Share/attach per backend (usnet/netif_share.h); a backend without them
 * cannot be shared (usnet_netif_share() says so). */
int netif_tap_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
	__attribute__((weak));
int netif_tap_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
	__attribute__((weak));
int netif_memwire_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
	__attribute__((weak));
int netif_memwire_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
	__attribute__((weak));
int netif_afpacket_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
	__attribute__((weak));
int netif_afpacket_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
	__attribute__((weak));
int netif_afxdp_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
	__attribute__((weak));
int netif_afxdp_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
	__attribute__((weak));

/* A random locally administered unicast MAC address. */
void netif_random_mac(uint8_t mac[6]);

/* Look up a kernel interface for a backend: its index, MTU (1500 when it
 * can't be read) and MAC.  0, or a negative errno with a one-line reason
 * naming the backend in err (name too long, interface not found). */
int netif_iface_lookup(const char *backend, const char *ifname, int *ifindex,
		       uint32_t *mtu, uint8_t mac[6], char *err, size_t errlen);

/* How many receive queues a kernel interface has (ethtool's channels: the
 * larger of rx and combined); 1 when the driver does not say. */
uint16_t netif_iface_rx_queues(const char *ifname);

/* The Toeplitz hash NICs use for RSS, over `len` bytes of input with a key
 * of at least len + 4 bytes. */
uint32_t netif_toeplitz(const uint8_t *key, size_t keylen, const uint8_t *in, size_t len);

/* The netif a wrapper (impair, pcap) wraps, or NULL if nif is no wrapper. */
struct usnet_netif *netif_impair_lower(struct usnet_netif *nif);
struct usnet_netif *netif_pcap_lower(struct usnet_netif *nif);

/* Flow-to-queue mapping of multi-queue backends (see
 * usnet_netif_flow_queue()); -1 when unknown. */
int netif_afpacket_flow_queue(struct usnet_netif *nif, uint8_t proto, uint32_t src_ip,
			      uint16_t src_port, uint32_t dst_ip, uint16_t dst_port);
int netif_afxdp_flow_queue(struct usnet_netif *nif, uint8_t proto, uint32_t src_ip,
			   uint16_t src_port, uint32_t dst_ip, uint16_t dst_port);
/* ---- host-address mode: the port bitmap and afpacket's programs ---------
 * The bitmap (a BPF_F_MMAPABLE array of the embedded BPF object: TCP's
 * 65536 bits, then UDP's) says which ports of the shared address are the
 * stack's; every process using the netif maps it (host_steer.c). */
#define NETIF_PORT_WORDS 1024
#define NETIF_PORTS_BYTES (2 * NETIF_PORT_WORDS * 8)
struct bpf_object;
struct netif_host_steer {
	struct bpf_object *obj;   /* the opener's */
	int ports_fd;             /* the bitmap map, shared with attachers */
	uint64_t *ports;          /* mapped here */
	int keep_fd;              /* the socket filter (the opener's) */
	int ifindex;
	bool hook_created, attached;
	uint32_t tc_handle, tc_priority;
};
/* Map the bitmap map fd (hs's from then on).  0 or -errno with err. */
int netif_ports_map(struct netif_host_steer *hs, int fd, char *err, size_t errlen);
/* Set/clear or read one port's bit: 0 / the bit, or -EOPNOTSUPP (no
 * bitmap), -EINVAL (proto not 6 or 17). */
int netif_ports_set(uint64_t *ports, uint8_t proto, uint16_t port, int on);
int netif_ports_get(const uint64_t *ports, uint8_t proto, uint16_t port);
/* The IPv6 unicast addresses cfg gives usnet (usnet_netif_config.ipv6),
 * the link-local one from mac first when cfg asks for it: the count, each
 * in out (USNET_NETIF_IPV6_MAX + 1 slots). */
unsigned netif_ipv6_addrs(const struct usnet_netif_config *cfg, const uint8_t mac[6],
			  uint8_t out[USNET_NETIF_IPV6_MAX + 1][16]);

/* The opener: load the programs for the shared IPv4 address ip_be and the
 * nip6 shared IPv6 addresses ip6 (netif_ipv6_addrs()'s), map the bitmap,
 * attach the tc program to ifindex's ingress.  0 or -errno with err (the
 * caller closes hs either way). */
int netif_host_steer_open(struct netif_host_steer *hs, const char *ifname, int ifindex, uint32_t ip_be,
			  uint8_t (*ip6)[16], unsigned nip6, char *err, size_t errlen);
/* Keep only the stack's flows on packet socket sock. */
int netif_host_steer_filter(struct netif_host_steer *hs, int sock, char *err, size_t errlen);
/* Let go: the opener (owner) also detaches the tc program. */
void netif_host_steer_close(struct netif_host_steer *hs, bool owner);

/* Host-address mode: steer proto/port to the stack or not (see
 * usnet_netif_steer_port()); -EOPNOTSUPP unless afxdp opened with
 * cfg.steer_ports. */
int netif_afxdp_steer_port(struct usnet_netif *nif, uint8_t proto, uint16_t port, int on);
int netif_afxdp_port_steered(struct usnet_netif *nif, uint8_t proto, uint16_t port);
/* The same for afpacket opened with cfg.steer_ports. */
int netif_afpacket_steer_port(struct usnet_netif *nif, uint8_t proto, uint16_t port, int on);
int netif_afpacket_port_steered(struct usnet_netif *nif, uint8_t proto, uint16_t port);
/* Let the IPv4 multicast group's frames reach the stack or not (see
 * usnet_netif_steer_group()). */
int netif_afxdp_steer_group(struct usnet_netif *nif, uint32_t group, int on);
int netif_afpacket_steer_group(struct usnet_netif *nif, uint32_t group, int on);
int netif_afxdp_steer_group6(struct usnet_netif *nif, const uint8_t group[16], int on);
int netif_afpacket_steer_group6(struct usnet_netif *nif, const uint8_t group[16], int on);
/* Frames received and sent on afxdp queue q by every process using the
 * netif (its shared counters); 0, or -EINVAL for another backend or queue. */
int netif_afxdp_queue_counters(struct usnet_netif *nif, uint16_t q, uint64_t *rx_frames, uint64_t *tx_frames);

/* Backends, each opened from a configuration (usnet_netif_open() picks one). */
int netif_memwire_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		       char *err, size_t errlen);
int netif_tap_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		   char *err, size_t errlen);
int netif_afpacket_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
			char *err, size_t errlen);
int netif_afxdp_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		     char *err, size_t errlen);

/*
 * ARP for every queue (arp_share.c).  With several queues the device hands
 * an ARP frame to one queue only, yet every queue's stack instance keeps its
 * own neighbour table.  A multi-queue backend keeps one netif_arp_share: its
 * rx_burst(q) first lends what netif_arp_share_take() has for q, then
 * publishes its own received frames with netif_arp_share_publish() (ARP ones
 * are copied to every other queue), and its rx_release hands frames whose id
 * has NETIF_ARP_SHARE_ID to netif_arp_share_release().  Lock-free (one
 * producer and one consumer per pair of queues), in the backend's shm
 * region with no pointer inside (frames are copied into it).  A
 * sleeping queue is not woken: it sees the copy at its next rx_burst.
 */
#define NETIF_ARP_SHARE_ID (1ull << 63)
struct netif_arp_share;
/* Lay out the shared state for nq queues in r (the owner, at open): its
 * offset in r, or NETIF_SHM_NONE when nq < 2 or r is full (then ARP is not
 * shared).  It takes at most netif_arp_share_size(nq) bytes of r. */
size_t netif_arp_share_create(struct netif_shm_region *r, uint16_t nq);
size_t netif_arp_share_size(uint16_t nq);
/* This process's handle on the state at off in its mapping of r (the owner
 * after create, a forked child inherits it, an attached process opens its
 * own): malloc'd, NULL when off does not hold one or out of memory.  Freed
 * with netif_arp_share_free(), which leaves the region alone. */
struct netif_arp_share *netif_arp_share_open(struct netif_shm_region *r, size_t off);
void netif_arp_share_free(struct netif_arp_share *s);
void netif_arp_share_publish(struct netif_arp_share *s, uint16_t from, const struct usnet_pkt *pkts, unsigned n);
unsigned netif_arp_share_take(struct netif_arp_share *s, uint16_t to, struct usnet_pkt *pkts, unsigned max);
void netif_arp_share_release(struct netif_arp_share *s, uint16_t to, const struct usnet_pkt *p);

#endif
