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

/* Per-socket facts the stack does not keep (how the program sees it). */
struct sock_meta {
	uint8_t domain6;     /* an AF_INET6 socket */
	uint8_t v6only;
	uint8_t type;        /* SOCK_STREAM / SOCK_DGRAM */
	uint8_t protocol;
};

/* Receive queues one provider serves at most (the backends' own limit). */
#define STACK_PROV_MAX_QUEUES 64

/* The shared head of the mapping; the stack arena follows. */
#define SHARED_HEAD_MAGIC 0x75737368u   /* "ussh": the state is made */
struct shared_head {
	_Atomic uint32_t magic;     /* SHARED_HEAD_MAGIC once made (attached processes join it) */
	uint64_t total, head;       /* bytes of the mapping; where the stack arena starts */
	pthread_mutex_t lock;
	uint32_t max_sockets;
	uint64_t next_deadline;
	uint64_t rx_calls, rx_frames;
	/* TCP connections accepted and connects started, for `usnet stat`
	 * (the stack counts segments, not connections). */
	uint64_t tcp_accepted, tcp_connects;
	/* Frames received per netif queue, for `usnet stat`: shows that the
	 * NIC's steering spreads flows and that every queue is read. */
	uint64_t rx_frames_queue[STACK_PROV_MAX_QUEUES];
};

/* The provider's state: the ctx of every provider call.  The struct is the
 * process's own (a forked child has a copy at the same address); what it
 * points to lives in the MAP_SHARED mapping or belongs to the netif, so
 * forked children keep using the same stack. */
struct prov {
	const struct usnet_provider_host *host;
	struct usnet_netif *nif;
	uint16_t nqueues;           /* the netif's receive queues, all read */
	struct usnet_stack *st;
	struct usnet_io io;         /* replies leave by queue 0 */
	/* Transmit batching (builtin.h): sendmsg and recvmsg run the stack on
	 * held_io, whose netif (a tx defer wrapper, include/usnet/netif_wrap.h)
	 * forwards everything to the real one except the flush, so the frames
	 * stay queued in the backend's ring until the next real flush. */
	bool tx_batch;
	struct usnet_tx_defer held_nif;
	struct usnet_io held_io;
	struct shared_head *sh;
	struct sock_meta *meta;     /* in the shared mapping, max_sockets entries */
	uint32_t ip, prefix, gw;
	int kernel_ifindex;         /* the interface's kernel index; 0: none (memwire) */
	/* Host-address mode (host_addr.h): the kernel's address is shared. */
	bool host_mode;
	uint16_t host_ports_lo, host_ports_hi;   /* the stack's reserved ephemeral ports */
	uint64_t host_neigh_at;     /* the next look at the kernel's neighbours */
};

/* Take the instance's lock (recovering it from a process that died with it). */
void stack_prov_lock(struct prov *p);
/* Flush the netif's queued frames and release the lock. */
void stack_prov_unlock(struct prov *p);
/* Release the lock when nothing was sent. */
static inline void stack_prov_unlock_quiet(struct prov *p) { pthread_mutex_unlock(&p->sh->lock); }

/* stack_opts.c */
int stack_prov_getsockopt(void *ctx, usnet_psock_t s, int level, int name, void *val, socklen_t *len);
int stack_prov_setsockopt(void *ctx, usnet_psock_t s, int level, int name, const void *val, socklen_t len);
int stack_prov_ioctl(void *ctx, usnet_psock_t s, unsigned long req, void *arg);

#endif
