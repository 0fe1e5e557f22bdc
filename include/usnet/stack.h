/*
 * usnet — the native API of the portable TCP/IP stack core (src/stack/).
 *
 * A stack instance is one block of caller-provided memory (an "arena") that
 * holds everything: configuration, tables, sockets, buffers.  The core keeps
 * no global mutable state, reads no clock and makes no system call: time comes
 * in as an argument (`now`, monotonic nanoseconds), frames come in through
 * usnet_stack_input() and leave through the netif named in a struct usnet_io
 * given with each call.  Nothing in the arena points outside it (no code
 * pointers, no process-local pointers), so an arena in MAP_SHARED memory can
 * be used by a forked child at the same address.
 *
 * Concurrency: an instance is single-threaded; the caller serialises all
 * calls on one instance (a lock per instance).  Instances share nothing, so
 * one per core/queue scales.
 *
 * Errors are negative errno values with Linux numbering (USNET_E* below).
 * IPv4 addresses and ports in this API are in host byte order; IPv6
 * addresses are 16 bytes in network byte order (struct usnet_addr).
 *
 * The stack never blocks: calls that would block return -USNET_EAGAIN, and
 * the readiness callback (struct usnet_io.on_event) says when to try again.
 *
 * This header is freestanding (<stddef.h>/<stdint.h> only).
 */
#ifndef USNET_STACK_H
#define USNET_STACK_H

#include <stddef.h>
#include <stdint.h>
#include "usnet/netif.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errno values (Linux numbering; the core has no <errno.h>) ---------- */
#define USNET_EPERM         1
#define USNET_ENOENT        2
#define USNET_EINTR         4
#define USNET_EIO           5
#define USNET_EBADF         9
#define USNET_EAGAIN       11
#define USNET_ENOMEM       12
#define USNET_EFAULT       14
#define USNET_EBUSY        16
#define USNET_EINVAL       22
#define USNET_ENFILE       23
#define USNET_EMFILE       24
#define USNET_ENOSPC       28
#define USNET_ENODEV       19
#define USNET_EPIPE        32
#define USNET_ENOSYS       38
#define USNET_EPROTO       71
#define USNET_ENOTSOCK     88
#define USNET_EDESTADDRREQ 89
#define USNET_EMSGSIZE     90
#define USNET_EPROTOTYPE   91
#define USNET_ENOPROTOOPT  92
#define USNET_EPROTONOSUPPORT 93
#define USNET_EOPNOTSUPP   95
#define USNET_EAFNOSUPPORT 97
#define USNET_EADDRINUSE   98
#define USNET_EADDRNOTAVAIL 99
#define USNET_ENETDOWN     100
#define USNET_ENETUNREACH  101
#define USNET_ECONNABORTED 103
#define USNET_ECONNRESET   104
#define USNET_ENOBUFS      105
#define USNET_EISCONN      106
#define USNET_ENOTCONN     107
#define USNET_ETIMEDOUT    110
#define USNET_ECONNREFUSED 111
#define USNET_EHOSTUNREACH 113
#define USNET_EALREADY     114
#define USNET_EINPROGRESS  115

/* ---- readiness events (same bits as EPOLLIN/OUT/ERR/HUP/RDHUP) --------- */
#define USNET_EV_IN     0x001u  /* data, a pending connection, or EOF to read */
#define USNET_EV_OUT    0x004u  /* room to send / connect finished */
#define USNET_EV_ERR    0x008u  /* an error is pending (read it with USNET_SO_ERROR) */
#define USNET_EV_HUP    0x010u  /* both directions closed (or reset) */
#define USNET_EV_RDHUP  0x2000u /* the peer closed its sending side */

typedef int32_t usnet_sock_t;   /* a socket: an index into the instance */

struct usnet_stack;             /* opaque; lives at the start of the arena */

/* Address families of struct usnet_addr.family. */
#define USNET_AF_INET  0
#define USNET_AF_INET6 1

/* An endpoint of either family.  family USNET_AF_INET (0): ip is the IPv4
 * address in host byte order, ip6 unused -- so `(struct usnet_addr){ ip,
 * port }` and a zeroed struct are IPv4 endpoints as they always were.
 * family USNET_AF_INET6: ip6 is the IPv6 address in network byte order
 * (:: the unspecified address, ::1 loopback), ip unused (0).  port is in
 * host byte order for both.  There is no scope id: an instance has one
 * interface, so a link-local address names it.
 *
 * An IPv6 socket (USNET_SOCK_V6) takes addresses of both families where
 * IPV6_V6ONLY is 0: an IPv4 address given to it (the provider's mapping of
 * ::ffff:a.b.c.d) makes that bind/connect/send IPv4, and what such a
 * socket learns over IPv4 (an accepted IPv4 connection, the source of an
 * IPv4 datagram, its own or its peer's name once it is IPv4) comes back as
 * an IPv4 usnet_addr for the provider to map to ::ffff:a.b.c.d. */
struct usnet_addr {
	uint32_t ip;
	uint16_t port;
	uint8_t  family;    /* USNET_AF_INET or USNET_AF_INET6 */
	uint8_t  pad_;
	uint8_t  ip6[16];
};

struct usnet_iovec {
	void  *base;
	size_t len;
};

/*
 * How this process reaches the wire and hears about readiness.  Process-local:
 * given with every call that may transmit or change readiness, never stored
 * in the arena.
 */
struct usnet_io {
	struct usnet_netif *netif;  /* where frames leave */
	uint16_t queue;             /* which of its queues */
	/* Called (inside stack calls) when a socket's readiness may have changed;
	 * `events` is the socket's current USNET_EV_* mask and `user` the value
	 * set with usnet_sock_set_user().  It must not call back into the same
	 * instance.  May be NULL.
	 * Semantics: called when the mask changes, and also on every arrival
	 * of new data, a datagram or a pending connection even when the mask
	 * stays the same (so edge-triggered waiters wake).  A socket returned
	 * by usnet_accept() gets no initial call: read usnet_sock_events()
	 * once after accepting; changes from then on are reported. */
	void (*on_event)(struct usnet_io *io, usnet_sock_t s, uint32_t events, uint64_t user);
	void *ctx;                  /* for on_event's use */
	/* RSS (an instance with rss_queues > 1): the queue the netif puts a
	 * frame from (src_ip, src_port) to (dst_ip, dst_port) on, e.g. through
	 * usnet_netif_flow_queue(), or -1 when it cannot tell.  May be NULL
	 * (see usnet_stack_config.rss_key). */
	int (*flow_queue)(struct usnet_io *io, uint8_t ip_proto, uint32_t src_ip, uint16_t src_port,
			  uint32_t dst_ip, uint16_t dst_port);
	/* The same for IPv6 (16-byte addresses).  May be NULL: the NIC is
	 * then assumed to hash IPv6 TCP as NICs do, Toeplitz with rss_key over
	 * the source and destination addresses and ports (36 bytes). */
	int (*flow_queue6)(struct usnet_io *io, uint8_t ip_proto, const uint8_t src_ip[16], uint16_t src_port,
			   const uint8_t dst_ip[16], uint16_t dst_port);
};

/* ---- creating an instance ------------------------------------------------ */

/* Congestion control algorithms. */
enum usnet_cc { USNET_CC_CUBIC = 0, USNET_CC_NEWRENO = 1 };

/* IPv6 addresses an instance may have besides its link-local one. */
#define USNET_IP6_ADDRS 4

struct usnet_stack_config {
	uint8_t  mac[6];        /* our Ethernet address */
	uint32_t ip;            /* our IPv4 address */
	uint8_t  prefix_len;    /* on-link prefix */
	uint32_t gateway;       /* default gateway, 0 for none */
	uint32_t mtu;           /* IP MTU of the netif (1500) */
	uint32_t netif_caps;    /* USNET_NETIF_CAP_* of the netif: checksum offload */
	uint32_t max_sockets;   /* socket table size (TCP + UDP + listeners) */
	uint32_t buffer_bytes;  /* shared pool for socket buffers, reassembly, ARP queue */
	uint32_t sndbuf;        /* default per-socket send buffer limit, bytes */
	uint32_t rcvbuf;        /* default per-socket receive buffer limit, bytes */
	uint64_t secret[2];     /* random key for ISNs (RFC 6528) and port choice */
	uint16_t ephemeral_lo;  /* local ports for connect() without bind() */
	uint16_t ephemeral_hi;
	uint8_t  cc;            /* enum usnet_cc, default for new TCP sockets */
	/* RSS: when rss_queues > 1 this instance serves queue rss_queue of
	 * rss_queues; connect() and an unbound sendto() then pick local ports
	 * whose replies arrive on this queue (IPv6: connect()).  Which queue a
	 * flow's frames arrive on is asked of the call's usnet_io.flow_queue
	 * (flow_queue6) (the netif knows
	 * its backend's own steering; -1 from it: any port is taken); without
	 * one the NIC is assumed to use the Toeplitz hash with rss_key and a
	 * 128-entry indirection table filled round-robin.  (The question goes
	 * through the per-process usnet_io, not this configuration, which
	 * lives in the instance's memory: no code pointers there.)  Only the
	 * instance of queue 0 answers ARP requests and Neighbor Solicitations
	 * for our addresses (each instance learns from every ARP and ND frame
	 * it is given). */
	uint16_t rss_queues;
	uint16_t rss_queue;
	uint8_t  rss_key[40];
	/* TCP choices Linux takes from net.ipv4 sysctls (the provider reads
	 * the host's): timestamps, SACK and window scaling offered and
	 * accepted (1, default) or not (0); SYN cookies when a listener's SYN
	 * queue is full (1, default), always (2) or never (0). */
	uint8_t  tcp_timestamps, tcp_sack, tcp_window_scaling, tcp_syncookies;
	/* More of them: the receive-buffer limit Linux computes its window
	 * scale from (the larger of tcp_rmem[2] and net.core.rmem_max; 6 MiB,
	 * Linux's default, gives 7), how long an orphan stays in FIN_WAIT2
	 * (tcp_fin_timeout, 60), the keepalive defaults (tcp_keepalive_time,
	 * _intvl, _probes: 7200, 75, 9) and the cap on a listen() backlog
	 * (net.core.somaxconn, 4096). */
	uint32_t tcp_rmem_max;
	uint32_t tcp_fin_timeout_s;
	uint32_t tcp_keepalive_time_s, tcp_keepalive_intvl_s;
	uint8_t  tcp_keepalive_probes;
	uint32_t somaxconn;
	/* ECN (RFC 3168), net.ipv4.tcp_ecn: asked for on active opens and
	 * granted when asked (1), only granted when a peer asks (2, Linux's
	 * default), or neither (0).  And net.ipv4.tcp_max_syn_backlog: without
	 * SYN cookies, a listener whose SYN queue is within a quarter of it
	 * takes no new SYN (Linux's rule for peers it has no history of). */
	uint8_t  tcp_ecn;
	uint32_t tcp_max_syn_backlog;
	/* Buffer autotuning, as Linux's (net.ipv4.tcp_rmem / tcp_wmem): a TCP
	 * connection starts with rcvbuf and sndbuf and, unless its program set
	 * SO_RCVBUF / SO_SNDBUF, grows them up to these: the receive window to
	 * twice what the program read in the last round trip (dynamic right-
	 * sizing), the send buffer to twice the congestion window.  0: fixed
	 * buffers.  UDP sockets take udp_rcvbuf / udp_sndbuf when set (0: the
	 * same as TCP's start). */
	uint32_t rcvbuf_max, sndbuf_max;
	uint32_t udp_rcvbuf, udp_sndbuf;
	/* IPv6 (none unless set).  ip6_link_local 1 gives the interface the
	 * link-local address fe80::/64 with mac's modified EUI-64 interface
	 * identifier (RFC 4291 2.5.1, appendix A); ip6[] are further addresses
	 * with their on-link prefix lengths (an all-zero address is none);
	 * ip6_gateway is the default router for what is off-link (all zero:
	 * none: the routers Router Advertisements name, below).  Each address
	 * first goes through Duplicate Address Detection with
	 * ip6_dad_transmits probes (RFC 4862; usnet_stack_config_init sets 1;
	 * 0 uses the addresses at once); see usnet_ip6_addr().
	 * With the link-local address, the instance does router discovery
	 * (RFC 4861 6.3): once that address is in use it sends up to
	 * ip6_router_solicits Router Solicitations (usnet_stack_config_init
	 * sets 3, MAX_RTR_SOLICITATIONS; 0 sends none), and learns from every
	 * Router Advertisement its default routers (used while ip6_gateway is
	 * unset), on-link prefixes, the link's MTU (only ever below mtu) and
	 * the default hop limit; see usnet_ip6_route().
	 * ip6_shared[i] 1 marks ip6[i] as the host kernel's own address, shared
	 * with the stack (host-address mode): the kernel did its DAD and
	 * defends it, so the stack uses it at once (no DAD), answers no
	 * Neighbor Solicitation for it and does not join its solicited-node
	 * group; the stack's neighbours then come from outside
	 * (usnet_neigh6_set), as the kernel receives the advertisements. */
	uint8_t  ip6_link_local;
	uint8_t  ip6_dad_transmits;
	uint8_t  ip6_router_solicits;
	uint8_t  ip6_prefix_len[USNET_IP6_ADDRS];
	uint8_t  ip6[USNET_IP6_ADDRS][16];
	uint8_t  ip6_shared[USNET_IP6_ADDRS];
	uint8_t  ip6_gateway[16];
};

/* Fill cfg with defaults (MTU 1500, CUBIC, 64 KiB sndbuf/rcvbuf, 1024
 * sockets, 16 MiB of buffers, ports 32768-60999).  Address, MAC and secret
 * are left zero for the caller to set. */
void usnet_stack_config_init(struct usnet_stack_config *cfg);

/* Bytes of memory an instance with this configuration needs. */
size_t usnet_stack_mem_size(const struct usnet_stack_config *cfg);

/* Build an instance inside mem (size bytes, 64-byte aligned, at least
 * usnet_stack_mem_size(cfg)).  Returns the instance (== mem) or NULL when
 * the configuration is invalid or the memory too small. */
struct usnet_stack *usnet_stack_create(void *mem, size_t size, const struct usnet_stack_config *cfg);

/* ---- driving it ---------------------------------------------------------- */

/* Process n received frames (the caller gives them back to the netif after
 * the call: the stack copies what it keeps).  May transmit and raise events.
 * Pass whole rx bursts: the segments of one connection within a call are
 * acknowledged together at its end (as GRO would), and everything the call
 * transmits leaves in one tx_burst + flush. */
void usnet_stack_input(struct usnet_stack *st, struct usnet_io *io,
		       struct usnet_pkt *pkts, unsigned n, uint64_t now);

/* Run timers due at `now` (retransmissions, delayed ACKs, keepalives, ARP,
 * reassembly expiry, TIME_WAIT).  Returns the time of the next deadline, or
 * UINT64_MAX when nothing is pending. */
uint64_t usnet_stack_poll(struct usnet_stack *st, struct usnet_io *io, uint64_t now);

/* ---- a process died inside a call ----------------------------------------
 * An instance shared by several processes (MAP_SHARED, guarded by a robust
 * mutex) may be left half updated by a process killed inside a call on it.
 * Whoever takes the instance's lock next and learns that its holder died
 * (EOWNERDEAD) calls usnet_stack_repair() before anything else.
 *
 * Repair rebuilds everything derived from the sockets' own facts: the free
 * lists of sockets and buffers and their counts (a buffer no queue holds
 * goes back to the pool), the connection and port tables, the timer heap,
 * accept queues, queue lengths.  A queue that does not hold together is
 * dropped; a TCP connection whose stream it was, or whose sequence numbers
 * no longer match its send queue, is reset (USNET_ECONNRESET, as if the peer
 * had reset it; the peer's next segment draws an RST); a socket in a state
 * it cannot be in is closed; a connection left without the timer its state
 * needs gets one.  It transmits nothing and reports no readiness (no
 * usnet_io): read usnet_sock_events() of the sockets that matter.  A socket
 * its user holds is never freed by repair (at most reset), so the caller's
 * socket numbers stay valid; only sockets no user holds (unaccepted
 * children of no listener, closed sockets finishing) may go.  It does not
 * close the dead process's sockets: the caller knows which they were.
 * Returns how many things it fixed (0: the instance was consistent), or
 * -USNET_EINVAL for memory that is not an instance.  Safe on a consistent
 * instance; O(sockets + buffers). */
int usnet_stack_repair(struct usnet_stack *st, uint64_t now);

/* Verify every invariant of the instance (free lists, tables, timer heap,
 * buffer ownership and counts, accept queues, TCP sequence and state
 * facts).  0 when all hold; otherwise -USNET_EIO with the first broken one
 * described in why (len bytes, NUL-terminated; why may be NULL).  Changes
 * nothing but scratch memory of its own: call it with the instance's lock
 * held.  For tests and debugging: O(sockets + buffers). */
int usnet_stack_check(struct usnet_stack *st, char *why, size_t len);

/* Add a route: packets to dst/prefix_len go via gateway (0: on-link). */
int usnet_route_add(struct usnet_stack *st, uint32_t dst, uint8_t prefix_len, uint32_t gateway);

/* Neighbours from outside the stack (host-address mode, where the kernel
 * answers ARP for the shared address and the stack never sees ARP): set
 * ip's MAC as an ARP reply would, creating the entry and sending the frames
 * that waited on it. */
void usnet_neigh_set(struct usnet_stack *st, struct usnet_io *io, uint32_t ip, const uint8_t mac[6], uint64_t now);
/* Up to max neighbours the stack is resolving (asked for, or re-confirming,
 * without an answer yet) into ips; returns how many. */
unsigned usnet_neigh_waiting(const struct usnet_stack *st, uint32_t *ips, unsigned max);
/* The same for IPv6 (host-address mode with shared IPv6 addresses, where
 * the kernel receives the Neighbor Advertisements): set ip's (16 bytes)
 * MAC as a solicited advertisement would (the entry REACHABLE, the frames
 * that waited on it sent); a multicast MAC or address is ignored. */
void usnet_neigh6_set(struct usnet_stack *st, struct usnet_io *io, const uint8_t ip[16], const uint8_t mac[6],
		      uint64_t now);
/* Up to max IPv6 neighbours the stack is resolving (INCOMPLETE, or PROBE
 * without an answer yet) into ips; returns how many. */
unsigned usnet_neigh6_waiting(const struct usnet_stack *st, uint8_t (*ips)[16], unsigned max);

/* ---- sockets --------------------------------------------------------------
 * TCP and UDP over IPv4 and IPv6.  Each call acts at once and never blocks. */
#define USNET_SOCK_STREAM 1
#define USNET_SOCK_DGRAM  2
/* OR'ed into usnet_socket()'s type: an IPv6 socket (AF_INET6).  It binds,
 * connects and sends to IPv6 addresses, and to IPv4 ones while
 * USNET_IPV6_V6ONLY is 0 (the default, as Linux's net.ipv6.bindv6only):
 * bound to :: it then takes IPv4 too (a listener's IPv4 connections, a UDP
 * socket's IPv4 datagrams), and it conflicts with a socket bound to
 * 0.0.0.0 or any IPv4 address on its port as on Linux; with V6ONLY 1 it
 * is IPv6 alone.  usnet_sock_type() reports the type without this bit,
 * usnet_sock_family() the family.  An IPv4 socket given an IPv6 address
 * fails with -USNET_EAFNOSUPPORT. */
#define USNET_SOCK_V6     0x100

/* Message flags. */
#define USNET_MSG_PEEK     0x02u  /* look at data without consuming it */
#define USNET_MSG_TRUNC    0x20u  /* recv on UDP: return the datagram's full length */
#define USNET_MSG_MORE     0x8000u /* send: more data follows soon (hold a partial segment) */

int usnet_socket(struct usnet_stack *st, int type);
int usnet_bind(struct usnet_stack *st, usnet_sock_t s, const struct usnet_addr *addr);
int usnet_listen(struct usnet_stack *st, usnet_sock_t s, int backlog);
/* Whether a socket of the stack of `type` takes what is sent to addr: a
 * TCP listener, or a bound UDP socket, on addr->port and bound to addr->ip
 * or to the wildcard: 1 or 0.  A connect or a datagram to a loopback
 * address (127.0.0.0/8) reaches the stack's socket this way, its frames
 * never leaving the stack (source 127.0.0.1). */
int usnet_local_taker(struct usnet_stack *st, int type, const struct usnet_addr *addr);
/* Returns a new socket, or -USNET_EAGAIN when no connection is waiting. */
int usnet_accept(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		 struct usnet_addr *peer, uint64_t now);
/* TCP: starts the handshake and returns -USNET_EINPROGRESS; completion is
 * reported as USNET_EV_OUT (or USNET_EV_ERR with USNET_SO_ERROR set).
 * UDP: sets the default destination and returns 0. */
int usnet_connect(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		  const struct usnet_addr *addr, uint64_t now);

/* Send from iov; `to` is for unconnected UDP (NULL otherwise).  Returns bytes
 * taken (TCP may take fewer than offered), -USNET_EAGAIN when the buffer is
 * full, -USNET_EPIPE after shutdown/close of the sending side or a reset.
 * TCP before the handshake completes: -USNET_EAGAIN (wait for USNET_EV_OUT);
 * after a reset the pending error is returned once (e.g. -USNET_ECONNRESET).
 * UDP datagrams larger than the MTU leave as IPv4 fragments (up to 65507
 * bytes, else -USNET_EMSGSIZE). */
long usnet_sendv(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		 const struct usnet_iovec *iov, int iovcnt, unsigned flags,
		 const struct usnet_addr *to, uint64_t now);
/* Receive into iov.  Returns bytes, 0 at end of stream (TCP) or for an empty
 * datagram, -USNET_EAGAIN when nothing is there.  `from` (may be NULL) gets
 * the sender.  TCP after a reset: queued data first, then the error once
 * (-USNET_ECONNRESET, -USNET_ECONNREFUSED, -USNET_ETIMEDOUT), then 0. */
long usnet_recvv(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		 const struct usnet_iovec *iov, int iovcnt, unsigned flags,
		 struct usnet_addr *from, uint64_t now);
/* Send from a source that writes straight into the send buffer (TCP; a
 * file for sendfile): the stack offers fill() free room in its buffer as
 * iov entries, fill() writes into them in order and returns the bytes it
 * wrote (fewer than offered: the source has no more now), or a negative
 * error.  Up to len bytes; returns the bytes taken, -USNET_EAGAIN when the
 * buffer is full, the errors of usnet_sendv, or fill()'s error when
 * nothing was taken.  -USNET_EOPNOTSUPP for a datagram socket.  fill()
 * runs under the caller's hold of the stack and must not call it. */
typedef long (*usnet_fill_fn)(void *arg, const struct usnet_iovec *iov, int iovcnt);
long usnet_send_fill(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, size_t len,
		     usnet_fill_fn fill, void *arg, unsigned flags, uint64_t now);
long usnet_send(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		const void *buf, size_t len, unsigned flags, uint64_t now);
long usnet_recv(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		void *buf, size_t len, unsigned flags, uint64_t now);

/* Zero-copy receive (TCP): point iov (up to max entries) at the received,
 * in-order bytes without copying; returns the entry count (0: none, or EOF
 * when usnet_sock_events() has USNET_EV_RDHUP).  The bytes stay valid until
 * usnet_recv_consume() releases the first n of them. */
int usnet_recv_peek(struct usnet_stack *st, usnet_sock_t s, struct usnet_iovec *iov, int max);
int usnet_recv_consume(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s,
		       size_t n, uint64_t now);

/* how: 0 read side, 1 write side (sends FIN after queued data), 2 both. */
int usnet_shutdown(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, int how, uint64_t now);
/* Release the socket.  TCP closes in the background (queued data is still
 * sent, then FIN); with USNET_SO_LINGER set to 0, or when received data was
 * left unread (as Linux), it sends RST at once.  The index may be reused by
 * a later usnet_socket()/usnet_accept() as soon as this returns. */
int usnet_close(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, uint64_t now);

int usnet_getsockname(struct usnet_stack *st, usnet_sock_t s, struct usnet_addr *addr);
int usnet_getpeername(struct usnet_stack *st, usnet_sock_t s, struct usnet_addr *addr);

/* Options (integer valued).  Times in milliseconds or seconds as named. */
enum usnet_sockopt {
	USNET_SO_REUSEADDR = 1,
	USNET_SO_REUSEPORT,
	USNET_SO_KEEPALIVE,
	USNET_SO_LINGER,       /* seconds; -1 = off (default), 0 = abort on close */
	USNET_SO_RCVBUF,       /* bytes */
	USNET_SO_SNDBUF,       /* bytes */
	USNET_SO_ERROR,        /* get only: pending error (positive errno), cleared on read */
	USNET_SO_TYPE,         /* get only */
	USNET_SO_ACCEPTCONN,   /* get only */
	USNET_TCP_NODELAY,     /* 1: Nagle off */
	USNET_TCP_KEEPIDLE,    /* seconds */
	USNET_TCP_KEEPINTVL,   /* seconds */
	USNET_TCP_KEEPCNT,
	USNET_TCP_CONGESTION,  /* enum usnet_cc */
	USNET_TCP_MAXSEG,
	USNET_TCP_QUICKACK,
	USNET_IP_TTL,          /* 1..255, -1: the default (64) */
	USNET_IP_TOS,          /* the DS field of the IPv4 header */
	USNET_TCP_USER_TIMEOUT,/* ms: abort when data stays unacknowledged this long (0: off) */
	USNET_TCP_SYNCNT,      /* SYN retransmissions before connect() gives up (1..127) */
	USNET_TCP_LINGER2,     /* seconds in FIN_WAIT2 (0: the default 60, -1: none) */
	USNET_TCP_WINDOW_CLAMP,/* bytes: the largest window offered (0: no clamp) */
	USNET_SO_RCVLOWAT,     /* bytes to be readable (USNET_EV_IN) */
	USNET_TCP_NOTSENT_LOWAT, /* unsent bytes below which it is writable (0: off) */
	USNET_TCP_CORK,        /* 1: hold partial segments until cleared (usnet_push sends them) */
	USNET_TCP_DEFER_ACCEPT,/* seconds a listener's connections wait for data before
				* accept() sees them (read back as Linux rounds it: 5 -> 7) */
	USNET_IP_MULTICAST_TTL,/* UDP: TTL of its multicast, 0..255 (default 1; -1 sets it) */
	USNET_IP_MULTICAST_LOOP,/* 1 (default): its multicast reaches the stack's own members too */
	USNET_IP_MULTICAST_ALL,/* 1 (default): a UDP socket bound to a port takes datagrams to
				* any group the instance joined, 0: only to the groups it joined */
	USNET_IP_MULTICAST_IF, /* UDP: source address of its multicast, host order in the int's
				* bits: 0 (the stack's, default) or the stack's address */
	/* IPv6 sockets only (else -USNET_ENOPROTOOPT), as Linux's: */
	USNET_IPV6_V6ONLY,     /* 0 (default): also IPv4 (see USNET_SOCK_V6); 1: IPv6 only.
				* Set before bind/connect (after: -USNET_EINVAL) */
	USNET_IPV6_UNICAST_HOPS, /* hop limit of its unicast packets 0..255, -1: the default (64) */
	USNET_IPV6_TCLASS,     /* traffic class of its IPv6 packets 0..255, -1: 0; the ECN bits
				* are the stack's (TCP) as IP_TOS's are */
	USNET_IPV6_MULTICAST_HOPS, /* UDP: hop limit of its multicast 0..255, -1: the default (1) */
	USNET_IPV6_MULTICAST_LOOP, /* 1 (default): its multicast reaches the stack's own members
				    * too; 0 or 1 (else -USNET_EINVAL) */
};
int usnet_setsockopt(struct usnet_stack *st, usnet_sock_t s, enum usnet_sockopt opt, int val);
int usnet_getsockopt(struct usnet_stack *st, usnet_sock_t s, enum usnet_sockopt opt, int *val);
/* Send what Nagle or the cork held back, as Linux does when TCP_NODELAY is
 * set or TCP_CORK cleared: call it after such a usnet_setsockopt (which has
 * no io to send with).  0, or a negative usnet errno. */
int usnet_push(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, uint64_t now);

/* IPv4 multicast (IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP) on the instance's
 * one interface, as Linux: a UDP socket joins `group` (host order,
 * 224.0.0.0/4).  The first member of a group on the instance reports it by
 * IGMP (v3, or the version of an older querier heard; the report repeated
 * once), and the last one to leave reports the leave.  0, or
 * -USNET_EPROTO (a TCP socket), -USNET_EINVAL (not a multicast address),
 * -USNET_EADDRINUSE (joined already), -USNET_ENOBUFS (20 groups on the
 * socket, or the instance's tables full: 64 groups, 256 memberships);
 * leaving a group not joined: -USNET_EADDRNOTAVAIL.  usnet_close() leaves
 * every group of the socket. */
int usnet_mc_join(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, uint32_t group, uint64_t now);
int usnet_mc_leave(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, uint32_t group, uint64_t now);
/* Whether the instance is a member of group (some socket joined it): 1 or
 * 0.  What the netif must let through (usnet_netif_steer_group). */
int usnet_mc_joined(struct usnet_stack *st, uint32_t group);
/* Up to max groups socket s joined into out; returns how many it joined. */
int usnet_mc_sock_groups(struct usnet_stack *st, usnet_sock_t s, uint32_t *out, unsigned max);

/* IPv6 multicast (IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP), as the IPv4 calls
 * above: a UDP socket made USNET_AF_INET6 joins `group` (ff00::/8).  The
 * first member of a group on the instance reports it by MLD (v2, or v1
 * while an MLDv1 querier is heard; the report repeated once), the last one
 * to leave reports the leave; all-nodes (ff02::1) and interface-local
 * groups (ff01::/16) are joined but never reported.  0, or -USNET_EPROTO
 * (a TCP socket), -USNET_ENOPROTOOPT (an IPv4 socket), -USNET_EINVAL (not
 * a multicast address), -USNET_EADDRINUSE (joined already),
 * -USNET_ENOBUFS (20 groups on the socket, or the instance's tables full:
 * 32 groups its sockets alone have, 128 memberships); leaving a group not
 * joined: -USNET_EADDRNOTAVAIL.  usnet_close() leaves every group of the
 * socket.  A datagram to a group goes to every IPv6 UDP socket on its
 * port bound to :: or to the group (connected to nobody or the sender),
 * as Linux with IPV6_MULTICAST_ALL on. */
int usnet_mc6_join(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, const uint8_t group[16],
		   uint64_t now);
int usnet_mc6_leave(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t s, const uint8_t group[16],
		    uint64_t now);
/* Whether a socket of the instance joined group: 1 or 0.  What the netif
 * must let through (usnet_netif_steer_group6); the stack's own groups
 * (all-nodes, solicited-node) are not counted. */
int usnet_mc6_joined(struct usnet_stack *st, const uint8_t group[16]);
/* Up to max groups socket s joined into out; returns how many it joined. */
int usnet_mc6_sock_groups(struct usnet_stack *st, usnet_sock_t s, uint8_t (*out)[16], unsigned max);

/* Current readiness (USNET_EV_* mask). */
uint32_t usnet_sock_events(struct usnet_stack *st, usnet_sock_t s);
/* Bytes readable now (FIONREAD): in-order stream bytes, or the next datagram's size. */
long usnet_sock_readable_bytes(struct usnet_stack *st, usnet_sock_t s);
/* The next datagram of a UDP socket: the destination address it was sent to
 * (ours, broadcast, or loopback) and the stack's clock when it arrived (the
 * `now` of the call that took it in).  0, -USNET_EAGAIN when none waits. */
int usnet_udp_next_meta(struct usnet_stack *st, usnet_sock_t s, uint32_t *dst, uint64_t *at_ns);
/* The same for either family: dst gets the destination of the next
 * datagram (an IPv4 usnet_addr for an IPv4 datagram, USNET_AF_INET6 for
 * an IPv6 one: IP_PKTINFO / IPV6_PKTINFO) with the socket's local port;
 * at_ns as above (either may be NULL).  usnet_udp_next_meta() gives 0 as
 * the destination of an IPv6 datagram. */
int usnet_udp_next_dst(struct usnet_stack *st, usnet_sock_t s, struct usnet_addr *dst, uint64_t *at_ns);
/* A value passed back to on_event for this socket (e.g. an fd number). */
int usnet_sock_set_user(struct usnet_stack *st, usnet_sock_t s, uint64_t user);
uint64_t usnet_sock_get_user(struct usnet_stack *st, usnet_sock_t s);

/* TCP states, RFC 9293 names. */
enum usnet_tcp_state {
	USNET_TCP_CLOSED = 0, USNET_TCP_LISTEN, USNET_TCP_SYN_SENT, USNET_TCP_SYN_RECEIVED,
	USNET_TCP_ESTABLISHED, USNET_TCP_FIN_WAIT_1, USNET_TCP_FIN_WAIT_2, USNET_TCP_CLOSE_WAIT,
	USNET_TCP_CLOSING, USNET_TCP_LAST_ACK, USNET_TCP_TIME_WAIT,
};

/* Per-connection statistics (TCP_INFO). */
struct usnet_tcp_info {
	uint8_t  state;          /* enum usnet_tcp_state */
	uint8_t  cc;             /* enum usnet_cc */
	uint8_t  snd_wscale, rcv_wscale;
	uint32_t options;        /* 1 timestamps, 2 SACK, 4 window scaling */
	uint32_t rtt_us, rttvar_us, rto_us;
	uint32_t snd_mss, rcv_mss;
	uint32_t cwnd;           /* bytes */
	uint32_t ssthresh;       /* bytes */
	uint32_t snd_wnd, rcv_wnd;
	uint32_t unacked;        /* bytes in flight */
	uint32_t sacked, lost;   /* bytes, from the scoreboard */
	uint32_t retransmits;    /* consecutive RTO backoffs now */
	uint64_t total_retrans;  /* segments retransmitted */
	uint64_t bytes_sent, bytes_acked, bytes_received;
	uint64_t segs_out, segs_in;
};
int usnet_tcp_info(struct usnet_stack *st, usnet_sock_t s, struct usnet_tcp_info *info);

/* Instance-wide counters: what came in, and what was dropped and why. */
struct usnet_stack_stats {
	uint64_t rx_frames, tx_frames;
	uint64_t rx_drop_short, rx_drop_not_ours, rx_drop_bad_eth;
	uint64_t arp_rx, arp_tx, arp_drop;
	uint64_t ip_rx, ip_drop_header, ip_drop_csum, ip_drop_len, ip_drop_not_ours;
	uint64_t ip_frag_rx, ip_frag_reassembled, ip_frag_drop, ip_frag_timeout;
	uint64_t icmp_rx, icmp_tx, icmp_drop;
	/* IPv6 (RFC 8200): packets in and out, and dropped by reason: a bad
	 * fixed header (version, a source no packet may have), a payload
	 * length past the frame, not for our addresses, an extension header
	 * cut short, Hop-by-Hop options not first, an option whose type says
	 * drop, a Routing header with segments left, a next header the stack
	 * does not know, a fragment dropped for a reason not counted below (a
	 * bad length, no room, a slot given up for a newer datagram, the rest
	 * of a datagram that overlapped, a Fragment header inside a
	 * reassembled packet, ND in fragments: RFC 6980), an upper layer the
	 * walk took that has no socket layer (answered with port unreachable;
	 * none today: TCP and UDP count their own). */
	uint64_t ip6_rx, ip6_tx, ip6_drop_header, ip6_drop_len, ip6_drop_not_ours, ip6_drop_ext,
		 ip6_drop_hbh_order, ip6_drop_option, ip6_drop_routing, ip6_drop_next_header,
		 ip6_drop_frag, ip6_no_transport;
	/* IPv6 fragments (RFC 8200 4.5): taken in, datagrams made whole,
	 * datagrams dropped for overlapping fragments (RFC 5722), first
	 * fragments without the whole header chain (RFC 7112), datagrams given
	 * up after 60 s; fragments sent.  Path MTU (RFC 8201): Packet Too Big
	 * messages that lowered a destination's path MTU, and those ignored
	 * (about a packet not from us, cut short, or no lower than what is
	 * known). */
	uint64_t ip6_frag_rx, ip6_frag_reassembled, ip6_frag_drop_overlap, ip6_frag_drop_chain,
		 ip6_frag_timeout, ip6_frag_tx, ip6_pmtu_update, ip6_pmtu_ignored;
	/* ICMPv6 (RFC 4443): messages in and out (ND included), dropped as too
	 * short or with a bad checksum, errors sent, errors the rate limit
	 * held back. */
	uint64_t icmp6_rx, icmp6_tx, icmp6_drop_len, icmp6_drop_csum, icmp6_err_tx, icmp6_err_ratelimit;
	/* Neighbor Discovery (RFC 4861): messages in and out, and invalid ones
	 * dropped by reason (hop limit not 255, code not 0, too short, a bad
	 * option, a multicast target, source rules, an NA to a multicast group
	 * with the Solicited flag); frames dropped while waiting for
	 * resolution, and the gauge of those waiting; addresses Duplicate
	 * Address Detection found taken (RFC 4862). */
	uint64_t nd_rx, nd_tx, nd_drop_hop_limit, nd_drop_code, nd_drop_len, nd_drop_option,
		 nd_drop_target, nd_drop_source, nd_drop_solicited, nd_queue_drop, nd_waiting, nd_dad_duplicate;
	/* Router discovery (RFC 4861 6.3): Router Solicitations sent, Router
	 * Advertisements taken; the gauges of the default routers and the
	 * on-link prefixes they taught that are current. */
	uint64_t nd_rs_tx, nd_ra_rx, nd_routers, nd_prefixes;
	uint64_t udp_rx, udp_tx, udp_drop_csum, udp_drop_len, udp_no_port, udp_drop_nobuf;
	uint64_t tcp_rx, tcp_tx, tcp_drop_csum, tcp_drop_header, tcp_drop_options,
		 tcp_no_port, tcp_rst_tx, tcp_challenge_ack, tcp_retrans, tcp_drop_nobuf;
	uint64_t tx_no_buffer;   /* netif had no tx buffer: frame dropped */
	uint64_t buffers_in_use, buffers_total; /* pool gauges, bytes */
	uint32_t sockets_in_use, sockets_total;
	/* TCP loss recovery: retransmission timeouts, fast-recovery episodes,
	 * tail-loss probes (RFC 8985). */
	uint64_t tcp_rto, tcp_recovery, tcp_tlp;
	/* Gauge: frames held until their next hop answers ARP (sent when it
	 * does, counted in arp_drop when it never does). */
	uint64_t arp_waiting;
	/* Gauges: TCP sockets in TIME_WAIT (in sockets_in_use: they hold a
	 * socket, but no buffer and no descriptor), and sockets the user closed
	 * that are still finishing their connection (FIN_WAIT, LAST_ACK, ...). */
	uint32_t tcp_time_wait, tcp_orphans;
	/* Listeners: SYNs dropped because the accept queue (or, without SYN
	 * cookies, the SYN queue) was full; SYN cookies sent, and ACKs that
	 * brought back a valid or an invalid one. */
	uint64_t tcp_listen_drop, tcp_syncookies_sent, tcp_syncookies_ok, tcp_syncookies_failed;
	/* ECN: segments that came marked CE, and reductions of the congestion
	 * window for an ECN-Echo. */
	uint64_t tcp_ecn_ce, tcp_ecn_reduced;
	/* IGMP: messages received, sent (reports and leaves), queries
	 * answered, and messages dropped (too short or malformed, bad checksum);
	 * UDP datagrams to a group delivered to the stack's sockets (one per
	 * datagram, whatever the number of sockets). */
	uint64_t igmp_rx, igmp_tx, igmp_queries, igmp_drop_len, igmp_drop_csum;
	uint64_t udp_mcast_rx;
	/* MLD (the listener reports that keep the solicited-node groups of
	 * the stack's IPv6 addresses forwarded to it by switches that snoop):
	 * messages received, sent (reports and Dones), queries taken, and
	 * messages dropped as too short or malformed, or invalid (a query's
	 * address neither :: nor a group, a source not link-local, a hop
	 * limit not 1, no Router Alert: RFC 3810 6.2). */
	uint64_t mld_rx, mld_tx, mld_queries, mld_drop_len, mld_drop_invalid;
};
void usnet_stack_stats(struct usnet_stack *st, struct usnet_stack_stats *out);

/* Every counter of struct usnet_stack_stats, in the order and by the names
 * `usnet stat` shows them: X64(field) for a uint64_t, X32(field) for a
 * uint32_t.  Tools that print the counters expand this list. */
#define USNET_STACK_STATS(X64, X32) \
	X64(rx_frames) X64(tx_frames) X64(rx_drop_short) X64(rx_drop_not_ours) X64(rx_drop_bad_eth) \
	X64(arp_rx) X64(arp_tx) X64(arp_drop) X64(arp_waiting) X64(ip_rx) X64(ip_drop_header) \
	X64(ip_drop_csum) X64(ip_drop_len) X64(ip_drop_not_ours) X64(ip_frag_rx) X64(ip_frag_reassembled) \
	X64(ip_frag_drop) X64(ip_frag_timeout) X64(icmp_rx) X64(icmp_tx) X64(icmp_drop) X64(ip6_rx) \
	X64(ip6_tx) X64(ip6_drop_header) X64(ip6_drop_len) X64(ip6_drop_not_ours) X64(ip6_drop_ext) \
	X64(ip6_drop_hbh_order) X64(ip6_drop_option) X64(ip6_drop_routing) X64(ip6_drop_next_header) \
	X64(ip6_drop_frag) X64(ip6_no_transport) X64(ip6_frag_rx) X64(ip6_frag_reassembled) \
	X64(ip6_frag_drop_overlap) X64(ip6_frag_drop_chain) X64(ip6_frag_timeout) X64(ip6_frag_tx) \
	X64(ip6_pmtu_update) X64(ip6_pmtu_ignored) X64(icmp6_rx) X64(icmp6_tx) X64(icmp6_drop_len) \
	X64(icmp6_drop_csum) X64(icmp6_err_tx) X64(icmp6_err_ratelimit) X64(nd_rx) X64(nd_tx) \
	X64(nd_drop_hop_limit) X64(nd_drop_code) X64(nd_drop_len) X64(nd_drop_option) X64(nd_drop_target) \
	X64(nd_drop_source) X64(nd_drop_solicited) X64(nd_queue_drop) X64(nd_waiting) \
	X64(nd_dad_duplicate) X64(nd_rs_tx) X64(nd_ra_rx) X64(nd_routers) X64(nd_prefixes) X64(udp_rx) X64(udp_tx) X64(udp_drop_csum) X64(udp_drop_len) \
	X64(udp_no_port) X64(udp_drop_nobuf) X64(tcp_rx) X64(tcp_tx) X64(tcp_drop_csum) \
	X64(tcp_drop_header) X64(tcp_drop_options) X64(tcp_no_port) X64(tcp_rst_tx) X64(tcp_challenge_ack) \
	X64(tcp_retrans) X64(tcp_drop_nobuf) X64(tcp_rto) X64(tcp_recovery) X64(tcp_tlp) \
	X64(tcp_listen_drop) X64(tcp_syncookies_sent) X64(tcp_syncookies_ok) X64(tcp_syncookies_failed) \
	X64(tcp_ecn_ce) X64(tcp_ecn_reduced) X64(igmp_rx) X64(igmp_tx) X64(igmp_queries) \
	X64(igmp_drop_len) X64(igmp_drop_csum) X64(udp_mcast_rx) X64(mld_rx) X64(mld_tx) X64(mld_queries) \
	X64(mld_drop_len) X64(mld_drop_invalid) X32(sockets_in_use) X32(sockets_total) \
	X32(tcp_time_wait) X32(tcp_orphans) X64(buffers_in_use) X64(buffers_total) X64(tx_no_buffer)

/* States of an IPv6 address (RFC 4862): being checked by Duplicate Address
 * Detection (not used yet), in use, or found taken by another node (never
 * used; the provider should report it). */
enum usnet_ip6_addr_state {
	USNET_IP6_ADDR_NONE = 0, USNET_IP6_ADDR_TENTATIVE, USNET_IP6_ADDR_PREFERRED, USNET_IP6_ADDR_DUPLICATE,
};
/* The instance's IPv6 address i (0: the link-local one, 1..USNET_IP6_ADDRS:
 * cfg.ip6[i - 1]): copies it to addr and its prefix length to prefix_len
 * (either may be NULL) and returns its enum usnet_ip6_addr_state
 * (USNET_IP6_ADDR_NONE: that slot has no address), or -USNET_EINVAL when i
 * is out of range. */
int usnet_ip6_addr(struct usnet_stack *st, unsigned i, uint8_t addr[16], uint8_t *prefix_len);
/* The source address the instance gives a connection or datagram to dst
 * from a socket bound to :: (getsockname() of a connected one): dst itself
 * for ::1 and the instance's own addresses, else as it picks one for its
 * packets (the link-local address for link scope, then an address on
 * dst's prefix, then the first usable one).  0, or -USNET_EADDRNOTAVAIL
 * when it has none usable. */
int usnet_ip6_source(struct usnet_stack *st, const uint8_t dst[16], uint8_t src[16]);
/* Whether the instance can send to the IPv6 address dst (not multicast):
 * 0 with its next hop in nh (dst itself when on-link: link-local, on the
 * prefix of one of its addresses or on a prefix a Router Advertisement
 * named; else cfg.ip6_gateway, or without one a default router an RA
 * named), or -USNET_ENETUNREACH. */
int usnet_ip6_route(struct usnet_stack *st, const uint8_t dst[16], uint8_t nh[16]);

/* Iterate sockets (for `usnet stat`): returns the next socket index >= from
 * that is in use, or -1. */
int usnet_sock_next(struct usnet_stack *st, int from);
int usnet_sock_type(struct usnet_stack *st, usnet_sock_t s);  /* USNET_SOCK_* or -EBADF */
/* The family a socket was made with: USNET_AF_INET6 for a USNET_SOCK_V6
 * one and for the connections its listener accepts, USNET_AF_INET
 * otherwise; or -USNET_EBADF.  An IPv6 socket's connection may be IPv4
 * (dual-stack): its names then come back as IPv4 usnet_addr. */
int usnet_sock_family(struct usnet_stack *st, usnet_sock_t s);

#ifdef __cplusplus
}
#endif
#endif /* USNET_STACK_H */
