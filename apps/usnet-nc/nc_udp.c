/*
 * usnet-nc — a UDP session.  Each read of stdin becomes one datagram (reads
 * are capped at MTU - 28 bytes, MTU - 48 over IPv6, so a datagram fits one
 * frame); each received
 * datagram is written to stdout as it is.  The client sends to HOST:PORT;
 * with -l the session binds HOST:PORT and replies to the last sender (stdin
 * is not read until someone has sent something).  UDP has no close, so the
 * session ends -q SECS after the end of stdin (and the last datagram left:
 * one waiting for ARP or ND has not), after -w SECS without traffic, or by a
 * signal.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nc.h"

#define NC_UDP_MAX_DGRAM 65535u

struct nc_udp {
	struct usnet_app *app;
	struct usnet_stack *st;
	struct usnet_io *io;
	const struct nc_options *opt;
	usnet_sock_t s;
	uint8_t *buf;
	size_t max_send;       /* bytes per datagram we send */
	uint8_t *pending;      /* a datagram read from stdin, not yet sent */
	size_t pending_len;
	int have_pending;
	int stdin_open;
	uint64_t stdin_eof_at; /* when stdin ended (for -q) */
	uint64_t last_traffic; /* for -w */
	int have_peer;         /* -l: someone has sent to us */
	struct usnet_addr peer;
};

static int receive_datagrams(struct nc_udp *u)
{
	int moved = 0;

	for (;;) {
		struct usnet_addr from;
		long n = usnet_recvv(u->st, u->io, u->s,
				     &(struct usnet_iovec){ .base = u->buf, .len = NC_UDP_MAX_DGRAM },
				     1, 0, &from, usnet_app_now());
		if (n == -USNET_EAGAIN)
			return moved;
		if (n < 0) {
			/* A connected client hears of an ICMP port unreachable as
			 * ECONNREFUSED, as with kernel sockets. */
			nc_error("receive from %s: %s", nc_addr_str(&u->opt->addr),
				 nc_strerror(n));
			return -1;
		}
		for (size_t off = 0; off < (size_t)n;) {
			ssize_t w = write(STDOUT_FILENO, u->buf + off, (size_t)n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				nc_error("write to stdout: %s", nc_strerror(errno));
				return -1;
			}
			off += (size_t)w;
		}
		if (u->opt->listen) {
			if (!u->have_peer || !nc_addr_equal(&u->peer, &from))
				nc_verbose(u->opt, "datagrams from %s", nc_addr_str(&from));
			u->peer = from;
			u->have_peer = 1;
		}
		u->last_traffic = usnet_app_now();
		moved = 1;
	}
}

/* Send the pending datagram: to HOST:PORT (connected) or the last sender. */
static long send_pending(struct nc_udp *u)
{
	struct usnet_iovec iov = { .base = u->pending, .len = u->pending_len };
	return usnet_sendv(u->st, u->io, u->s, &iov, 1, 0, u->opt->listen ? &u->peer : NULL,
			   usnet_app_now());
}

static int send_stdin(struct nc_udp *u, int stdin_ready)
{
	int moved = 0;

	if (!u->have_pending && u->stdin_open && stdin_ready) {
		ssize_t r = read(STDIN_FILENO, u->pending, u->max_send);
		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			nc_error("read from stdin: %s", nc_strerror(errno));
			return -1;
		}
		if (r == 0) {
			u->stdin_open = 0;
			u->stdin_eof_at = usnet_app_now();
			moved = 1;
		} else if (r > 0) {
			u->pending_len = (size_t)r;
			u->have_pending = 1;
			moved = 1;
		}
	}
	if (u->have_pending) {
		long n = send_pending(u);
		if (n == -USNET_EAGAIN)
			return moved;
		if (n < 0) {
			nc_error("send to %s: %s",
				 u->opt->listen ? nc_addr_str(&u->peer)
						: nc_addr_str(&u->opt->addr),
				 nc_strerror(n));
			return -1;
		}
		u->have_pending = 0;
		u->last_traffic = usnet_app_now();
		if (!u->stdin_open)
			u->stdin_eof_at = u->last_traffic;
		moved = 1;
	}
	return moved;
}

/* Milliseconds until the session should end (-1: no limit), 0 when now. */
static int ms_until_end(const struct nc_udp *u, uint64_t now)
{
	uint64_t end = UINT64_MAX;

	if (u->opt->quit_s >= 0 && !u->stdin_open && !u->have_pending)
		end = u->stdin_eof_at + (uint64_t)u->opt->quit_s * 1000000000ull;
	if (u->opt->wait_s > 0) {
		uint64_t idle_end = u->last_traffic + (uint64_t)u->opt->wait_s * 1000000000ull;
		if (idle_end < end)
			end = idle_end;
	}
	if (end == UINT64_MAX)
		return -1;
	if (now >= end)
		return 0;
	return (int)((end - now + 999999ull) / 1000000ull);
}

int nc_udp_session(struct usnet_app *app, const struct nc_options *opt)
{
	struct nc_udp u = {
		.app = app, .st = usnet_app_stack(app), .io = usnet_app_io(app), .opt = opt,
		.stdin_open = 1,
	};
	struct usnet_addr addr = opt->addr;
	struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
	uint32_t mtu = usnet_app_netif(app)->info.mtu;
	int rc = NC_EXIT_ERROR, stdin_ready = 0;
	long r;

	/* IP and UDP headers: 28 bytes over IPv4, 48 over IPv6 */
	uint32_t headers = opt->addr.family == USNET_AF_INET6 ? 48 : 28;
	u.max_send = mtu > headers ? mtu - headers : 548;
	u.buf = malloc(NC_UDP_MAX_DGRAM);
	u.pending = malloc(u.max_send);
	if (!u.buf || !u.pending) {
		nc_error("out of memory");
		goto out;
	}
	u.s = usnet_socket(u.st, USNET_SOCK_DGRAM | nc_sock_family_flag(opt));
	if (u.s < 0) {
		nc_error("socket: %s", nc_strerror(u.s));
		goto out;
	}
	if (opt->listen) {
		if ((r = usnet_bind(u.st, u.s, &addr)) < 0) {
			nc_error("bind %s: %s", nc_addr_str(&opt->addr), nc_strerror(r));
			goto out;
		}
		nc_verbose(opt, "receiving on %s", nc_addr_str(&opt->addr));
	} else if ((r = usnet_connect(u.st, u.io, u.s, &addr, usnet_app_now())) < 0) {
		nc_error("connect to %s: %s", nc_addr_str(&opt->addr), nc_strerror(r));
		goto out;
	}
	u.last_traffic = usnet_app_now();
	for (;;) {
		int a = receive_datagrams(&u);
		if (a < 0)
			goto out;
		int b = send_stdin(&u, stdin_ready);
		if (b < 0)
			goto out;
		if (!u.stdin_open && !u.have_pending && opt->quit_s >= 0) {
			/* -q counts from the last datagram out of the stack: one
			 * still waiting for ARP or ND (retried every second) is not. */
			struct usnet_stack_stats ss;
			usnet_stack_stats(u.st, &ss);
			if (ss.arp_waiting || ss.nd_waiting)
				u.stdin_eof_at = usnet_app_now();
		}
		int left = ms_until_end(&u, usnet_app_now());
		if (left == 0)
			break;
		/* -l reads stdin only once there is someone to reply to. */
		int want_stdin = u.stdin_open && !u.have_pending && (!opt->listen || u.have_peer);
		in.fd = want_stdin ? STDIN_FILENO : -1;
		in.revents = 0;
		int p = usnet_app_poll_fds(app, &in, 1, (a || b) ? 0 : left);
		if (p < 0 && p != -EINTR) {
			nc_error("netif: %s", nc_strerror(p));
			goto out;
		}
		stdin_ready = want_stdin && (in.revents & (POLLIN | POLLHUP | POLLERR));
	}
	rc = NC_EXIT_OK;
out:
	if (u.s >= 0)
		usnet_close(u.st, u.io, u.s, usnet_app_now());
	free(u.buf);
	free(u.pending);
	return rc;
}
