/*
 * usnet provider "usnet" — what its files share (stack.c: set-up, addresses,
 * socket calls, progress; stack_opts.c: socket options, TCP_INFO, ioctl).
 */
#ifndef USNET_PROVIDERS_STACK_PROV_H
#define USNET_PROVIDERS_STACK_PROV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "usnet/netif_open.h"
#include "usnet/netif_wrap.h"
#include "usnet/provider.h"
#include "usnet/stack.h"

#define STACK_PROV_LOCAL_OPTS 13

/* Per-socket facts the stack does not keep (how the program sees it), one
 * per provider handle. */
struct sock_meta {
	uint8_t domain6;     /* an AF_INET6 socket */
	uint8_t stack6;      /* ... that is the stack's IPv6 socket (USNET_SOCK_V6: the stack has IPv6) */
	uint8_t v6only;      /* IPV6_V6ONLY as the program sees it (the stack's too when stack6) */
	uint8_t type;        /* SOCK_STREAM / SOCK_DGRAM */
	uint8_t protocol;
	uint8_t group;       /* a listener with a copy in every instance */
	int32_t moved_to;    /* a handle whose socket moved to another instance: its handle + 1 */
	uint8_t inq;         /* TCP_INQ: recvmsg reports the bytes left (TCP_CM_INQ) */
	uint8_t pktinfo;     /* IP_PKTINFO: a datagram's recvmsg says where it was sent */
	uint8_t pktinfo6;    /* IPV6_RECVPKTINFO: the same as IPV6_PKTINFO (struct in6_pktinfo) */
	uint8_t bound_dev;   /* SO_BINDTODEVICE to the stack's own interface */
	uint8_t tstamp;      /* a datagram's arrival time: 1 SO_TIMESTAMP, 2 SO_TIMESTAMPNS */
	int32_t mc6_if;      /* IPV6_MULTICAST_IF: 0 or the stack's interface index (the only one it sends by) */
	/* Options with no effect here, as set (stack_opts.c, local_opts). */
	int32_t local_opt[STACK_PROV_LOCAL_OPTS];
	uint8_t local_set[STACK_PROV_LOCAL_OPTS];
};

/* Receive queues one provider serves at most (the backends' own limit);
 * one instance each. */
#define STACK_PROV_MAX_QUEUES 64

/* Frames one instance's inbox holds (see stack_inst.c). */
#define STACK_PROV_INBOX_SLOTS 512u

/* What one instance keeps in the shared mapping besides its stack arena. */
struct inst_shared {
	pthread_mutex_t lock;        /* its stack, and its queue's rx and tx rings */
	pthread_mutex_t inbox_lock;  /* the writers of its inbox */
	uint64_t arena_off;          /* its stack, from the mapping's start */
	uint64_t inbox_off;          /* STACK_PROV_INBOX_SLOTS slots of slot_bytes */
	_Atomic uint32_t inbox_head; /* next slot to read (the instance's lock holder) */
	_Atomic uint32_t inbox_tail; /* next slot to write (under inbox_lock) */
	uint64_t next_deadline;
	/* For `usnet stat`: frames read from its queue; frames it handed to
	 * another instance and frames handed to it; frames lost because its
	 * inbox was full; TCP connections accepted and connects started. */
	uint64_t rx_calls, rx_frames, handed_out, handed_in, inbox_drop;
	uint64_t tcp_accepted, tcp_connects;
	/* Times a process died holding the lock and the next holder repaired
	 * the stack (usnet_stack_repair). */
	_Atomic uint64_t repairs;
};

/* The shared head of the mapping; the per-socket tables and the instances'
 * inboxes and arenas follow. */
#define SHARED_HEAD_MAGIC 0x75737369u   /* "ussi": the state is made */
struct shared_head {
	_Atomic uint32_t magic;     /* SHARED_HEAD_MAGIC once made (attached processes join it) */
	uint64_t total, head;       /* bytes of the mapping; where the first arena starts */
	uint32_t max_sockets;       /* per instance */
	uint16_t ninst;             /* instances: one per receive queue */
	uint32_t slot_bytes;        /* an inbox slot: a frame of the MTU and its length */
	uint64_t meta_off;          /* ninst * max_sockets struct sock_meta */
	uint64_t members_off;       /* ninst * max_sockets * ninst int32_t: a group's copies + 1 */
	struct inst_shared inst[STACK_PROV_MAX_QUEUES];
};

struct prov;

/* One instance as this process sees it. */
struct inst {
	struct prov *p;
	uint16_t q;                 /* its receive queue, and its index */
	struct usnet_stack *st;
	struct inst_shared *sh;
	struct usnet_io io;         /* replies leave by its own queue */
	/* Transmit batching (builtin.h): sendmsg and recvmsg run the stack on
	 * held_io, whose netif (a tx defer wrapper, include/usnet/netif_wrap.h)
	 * forwards everything to the real one except the flush, so the frames
	 * stay queued in the backend's ring until the next real flush. */
	struct usnet_tx_defer held_nif;
	struct usnet_io held_io;
	bool held;                  /* frames wait in held_nif for a flush */
};

/* The provider's state: the ctx of every provider call.  The struct is the
 * process's own (a forked child has a copy at the same address); what it
 * points to lives in the MAP_SHARED mapping or belongs to the netif, so
 * forked children keep using the same stack.
 *
 * Handles: a socket's provider handle is inst * max_sockets + its index in
 * that instance, so no allocator is shared.  A listener is a group: a copy
 * in every instance, so that each connection lives on the instance of the
 * queue its frames arrive on (members_off).  A TCP socket bound to a port
 * before connect() may have to move to the instance its flow belongs to:
 * its handle then names the new socket (sock_meta.moved_to) and keeps the
 * old one, unused, so that no other socket gets the same handle. */
struct prov {
	const struct usnet_provider_host *host;
	struct usnet_netif *nif;
	uint16_t ninst;
	struct inst in[STACK_PROV_MAX_QUEUES];
	bool tx_batch;
	uint32_t rmem_max, wmem_max;   /* net.core.rmem_max / wmem_max: SO_RCVBUF / SO_SNDBUF's caps */
	struct shared_head *sh;
	struct sock_meta *meta;     /* in the shared mapping, one per handle */
	int32_t *members;
	uint32_t ip, prefix, gw;
	int kernel_ifindex;         /* the interface's kernel index; 0: none (memwire) */
	char iface[16];             /* the interface's name (SO_BINDTODEVICE) */
	/* Host-address mode (host_addr.h): the kernel's address is shared. */
	bool host_mode;
	uint16_t host_ports_lo, host_ports_hi;   /* the stack's reserved ephemeral ports */
	uint64_t host_neigh_at[STACK_PROV_MAX_QUEUES];   /* per instance: the next look at the kernel's neighbours */
	/* IPv6 (stack_ip6.h): the configured addresses besides the link-local
	 * one, their prefix lengths, the gateway. */
	uint8_t ip6_count;
	uint8_t ip6[USNET_IP6_ADDRS][16];
	uint8_t ip6_prefix[USNET_IP6_ADDRS];
	bool ip6_has_gw;
	uint8_t ip6_gw[16];
	uint8_t ip6_ll[16];         /* the link-local address the stack took (from its MAC) */
	uint8_t bindv6only;         /* net.ipv6.bindv6only: IPV6_V6ONLY's default */
};

/* ---- stack_inst.c: instances, their locks, and which frames each takes -- */

/* Take the instance's lock.  When its holder died with it, the stack is
 * repaired first (usnet_stack_repair) and the repair counted. */
void inst_lock(struct inst *in);
/* The same without waiting: false when another holds it. */
bool inst_trylock(struct inst *in);
/* Flush its queue's frames, release the lock, then take in what other
 * instances handed it meanwhile. */
void inst_unlock(struct inst *in);
/* Release the lock when nothing was sent (the inbox is still looked at). */
void inst_unlock_quiet(struct inst *in);
/* The instance a TCP flow belongs to (frames from src to dst, dst ours):
 * the queue the netif steers it to where the netif can tell, else a hash of
 * its own; instance 0 for everything but TCP.  As usnet_io.flow_queue. */
int inst_flow_owner(struct usnet_io *io, uint8_t proto, uint32_t src_ip, uint16_t src_port,
		    uint32_t dst_ip, uint16_t dst_port);
/* The same for an IPv6 TCP flow: always the provider's own hash (of the
 * peer's address, src, and both ports: the netif's steering speaks IPv4),
 * frames arriving elsewhere handed over.  As usnet_io.flow_queue6. */
int inst_flow_owner6(struct usnet_io *io, uint8_t proto, const uint8_t src_ip[16], uint16_t src_port,
		     const uint8_t dst_ip[16], uint16_t dst_port);
/* Read up to `bursts` rx bursts of in's queue, each frame into the instance
 * it belongs to; false when the queue had more. */
bool inst_drain_queue(struct inst *in, int bursts, uint64_t now);
/* Run what other instances handed to in (its lock held). */
void inst_drain_inbox(struct inst *in, uint64_t now);

/* ---- handles (stack.c) ---------------------------------------------------- */

/* The instance and socket a handle names now. */
struct inst *stack_prov_sock(struct prov *p, usnet_psock_t ps, usnet_sock_t *s);
/* Whether the program allowed datagrams to broadcast addresses (SO_BROADCAST). */
bool stack_prov_broadcast_ok(struct prov *p, usnet_psock_t ps);
/* Set an option on the handle's socket and on every copy of a group. */
int stack_prov_setopt(struct prov *p, usnet_psock_t ps, enum usnet_sockopt o, int v);
/* After a socket of in (its lock held) left groups (closed): those the
 * instance is no longer a member of leave the netif's filter. */
void stack_prov_mc_unsteer(struct prov *p, struct inst *in, const uint32_t *groups, int n);
/* The same for IPv6 groups (usnet_mc6_sock_groups). */
void stack_prov_mc6_unsteer(struct prov *p, struct inst *in, const uint8_t (*groups)[16], int n);

/* stack_opts.c */
int stack_prov_getsockopt(void *ctx, usnet_psock_t s, int level, int name, void *val, socklen_t *len);
/* Transmit batching: the io whose frames wait for the switch's flush when
 * it batches, and the unlock that leaves them waiting. */
struct usnet_io *stack_prov_io_for_data(struct inst *in);
void stack_prov_unlock_io(struct inst *in);
int stack_prov_setsockopt(void *ctx, usnet_psock_t s, int level, int name, const void *val, socklen_t len);
int stack_prov_ioctl(void *ctx, usnet_psock_t s, unsigned long req, void *arg);

#endif
