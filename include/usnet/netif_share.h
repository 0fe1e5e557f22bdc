/*
 * usnet — one open netif, used by several processes that did not fork from
 * each other (the attach model of the design notes).
 *
 * The process that opened a netif (the stack's owner, which has the
 * privileges: AF_XDP, AF_PACKET, TAP) describes it with usnet_netif_share():
 * the file descriptors another process needs (the sockets or device of each
 * queue, the memfd holding the backend's shared state, ...) and a small
 * blob.  Both travel over a UNIX socket (the fds with SCM_RIGHTS); the other
 * process, which may have no privilege at all, builds its own netif object
 * on them with usnet_netif_attach() and uses it exactly as the owner uses
 * its own.
 *
 * What a shareable backend (info.caps & USNET_NETIF_CAP_SHARED) guarantees:
 *  - everything several processes update (ring indices and their cached
 *    copies, buffer pools and free lists, statistics) lives in memory behind
 *    one of the shared fds and holds no pointer -- offsets and indices only,
 *    since each process maps it at an address of its own;
 *  - what is process-local stays in the netif object: its ops (code
 *    pointers), fd numbers, mapping addresses;
 *  - calls on one queue are serialised by the caller across processes as
 *    within one (netif.h: the stack instance's lock is process-shared); a
 *    process that takes the queue after another one finds the shared state
 *    as that one left it, and a process that died holding it left the
 *    queue usable (at worst a frame lent to it is lost from the pool);
 *  - usnet_netif_close() of an attached netif releases only that process's
 *    mappings and fds; the device is let go (XDP program detached, TAP
 *    removed if it was created) when the owner closes its netif, whatever
 *    attached processes still hold.
 * A forked child keeps using its parent's netif object as before
 * (after_fork); attaching is for the processes that did not inherit one.
 *
 * Wrappers (impair, pcap) are not shared: usnet_netif_share() of a wrapper
 * describes the backend under it, and the attaching process stacks its own
 * wrappers on what it attached.
 */
#ifndef USNET_NETIF_SHARE_H
#define USNET_NETIF_SHARE_H

#include <stddef.h>
#include <stdint.h>
#include "usnet/netif.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enough for 64 queues with two fds each, plus the shared state. */
#define USNET_NETIF_SHARE_FDS 136
#define USNET_NETIF_SHARE_BLOB 1024

struct usnet_netif_share {
	char     backend[USNET_NETIF_NAME_MAX];  /* info.backend of the backend described */
	uint32_t nfds;                           /* fds[0..nfds-1] */
	int      fds[USNET_NETIF_SHARE_FDS];
	uint32_t blob_len;                       /* blob[0..blob_len-1]: the backend's own */
	uint8_t  blob[USNET_NETIF_SHARE_BLOB];
};

/* Describe nif (or the backend under its wrappers) for another process.
 * The fds in *out stay nif's: the caller sends copies and closes nothing.
 * 0, or a negative errno with a line in err (-EOPNOTSUPP: this backend
 * cannot be shared). */
int usnet_netif_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen);

/* In another process: a netif on what `sh` describes, whose fds were
 * received by this process.  The fds become the netif's (closed by
 * usnet_netif_close(); on failure, closed here).  0 with *out set, or a
 * negative errno with a line in err. */
int usnet_netif_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen);

/* One message of len bytes with nfds (at most 64) fds in SCM_RIGHTS, over
 * a connected UNIX socket: what a share travels in, and the owner's
 * protocol too.  0, or a negative errno (-EPROTO for a short send). */
int usnet_fd_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Receive one such message: exactly len bytes and exactly `want` fds
 * (close-on-exec), else every fd received is closed and -EPROTO returned;
 * -ECONNRESET at the end of the connection. */
int usnet_fd_recv(int sock, void *buf, size_t len, int *fds, unsigned want);

/* Send a share over a connected UNIX socket (SOCK_STREAM or SOCK_SEQPACKET):
 * the struct, then its fds with SCM_RIGHTS.  0 or a negative errno. */
int usnet_netif_share_send(int sock, const struct usnet_netif_share *sh);
/* Receive what usnet_netif_share_send() sent; the fds in *sh are then this
 * process's (received close-on-exec).  0, -EPROTO for something else, or a
 * negative errno. */
int usnet_netif_share_recv(int sock, struct usnet_netif_share *sh);

#ifdef __cplusplus
}
#endif
#endif /* USNET_NETIF_SHARE_H */
