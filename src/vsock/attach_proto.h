/*
 * usnet — how a process attaches to the stack of an interface: the protocol
 * between the interface's owner (`usnet owner`, src/cli/cmd_owner.c) and
 * the switch of every process that uses the stack (attach.c).
 *
 * The owner is the one process that opened the netif (it had the
 * privileges) and holds what every attached process shares: the switch's
 * shared memory (slots, waiters), the provider's (the stack), the bell, the
 * inotify instance that reports when a user socket's file is released
 * (fdtable.c), and the netif itself, described by a usnet_netif_share.  It
 * listens on a UNIX socket (SOCK_SEQPACKET) at attach_owner_path(), mode
 * 0600: who may attach there is who may open that file.
 *
 * A connection to the owner is also the right to attach: `usnet run`
 * connects as root, before the program runs, and leaves the connection to
 * the program and all its descendants (USNET_ATTACH_FD, not close-on-exec),
 * so a program that drops its privileges (setpriv, runuser, setuid()) or
 * execs another image still attaches.  While any process holds a
 * connection, the owner stays; when the last is closed (every process that
 * could use the stack is gone) it releases the interface and exits.
 *
 * Each request carries its own reply socket (SCM_RIGHTS), so that the
 * processes sharing one inherited connection get their own replies.
 *
 *   ATTACH_OP_CHECK   is the configuration the owner's?  (`usnet run`)
 *   ATTACH_OP_ATTACH  the shared fds: reply, then the netif share.  The
 *                     first attacher is told to initialise the shared
 *                     memory (reply.init) and sends ATTACH_READY on the
 *                     reply socket when done; the owner answers the others
 *                     only then.  An initialiser that goes away without
 *                     READY leaves the state to be made afresh for the next.
 */
#ifndef USNET_VSOCK_ATTACH_PROTO_H
#define USNET_VSOCK_ATTACH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "usnet/netif_share.h"

#define ATTACH_MAGIC 0x75736174u   /* "usat" */
#define ATTACH_VERSION 1
#define ATTACH_DIR "/run/usnet"
#define ATTACH_CONFIG_MAX 1024
#define ATTACH_MSG_MAX 256

enum attach_op { ATTACH_OP_CHECK = 1, ATTACH_OP_ATTACH = 2 };

/* The configuration that must be the same in every process attached to one
 * stack, canonical: "key=value\n" lines in this order (values from the
 * USNET_* variables; a missing one is empty). */
#define ATTACH_CONFIG_KEYS "backend", "iface", "ip", "gw", "mac", "netif_options", "sockets", "buffer_mb", \
	"host_addr", "host_ports", "ip6", "gw6"

struct attach_request {
	uint32_t magic, version, op;
	char config[ATTACH_CONFIG_MAX];
};

/* The fds of an ATTACH reply, in this order. */
enum attach_fd { ATTACH_FD_SWITCH, ATTACH_FD_PROVIDER, ATTACH_FD_BELL, ATTACH_FD_CLOSE_WATCH, ATTACH_NFDS };

struct attach_reply {
	uint32_t magic, version;
	int32_t status;                 /* 0, or -errno with message */
	char message[ATTACH_MSG_MAX];   /* one line for a person when status < 0 */
	uint32_t init;                  /* ATTACH: this process initialises the shared memory */
	int32_t owner_pid;
};

#define ATTACH_READY 'R'

/* The owner's socket for interface `iface` in this network namespace:
 * ATTACH_DIR/IFACE@NETNS.sock (NETNS: the inode of /proc/self/ns/net, since
 * interfaces are per namespace).  0, or -ENAMETOOLONG. */
int attach_owner_path(const char *iface, char *out, size_t n);

/* The canonical configuration from a lookup function (getenv-like, NULL or
 * "" for missing), into out. */
void attach_config_make(const char *(*get)(const char *key), char *out, size_t n);

/* The first key whose value differs between two configurations, with both
 * values, as one line for a person ("--ip 10.0.0.2/24 (this program) vs
 * 10.0.0.3/24 (the stack)"); 0 when they agree. */
int attach_config_diff(const char *mine, const char *theirs, char *line, size_t n);

/* Send a request with its reply socket; 0 or -errno. */
int attach_send_request(int conn, const struct attach_request *rq, int reply_fd);
/* Receive a request and its reply socket (*reply_fd, close-on-exec);
 * 0, -EPROTO, -ECONNRESET at end of connection, or -errno. */
int attach_recv_request(int conn, struct attach_request *rq, int *reply_fd);
/* Send a reply with fds (nfds of them, may be 0); 0 or -errno. */
int attach_send_reply(int sock, const struct attach_reply *rp, const int *fds, unsigned nfds);
/* Receive a reply and exactly `nfds` fds (none unless status is 0);
 * 0, -EPROTO or -errno. */
int attach_recv_reply(int sock, struct attach_reply *rp, int *fds, unsigned nfds);

#endif
