/*
 * usnet-nc — a TCP session: connect (or accept one connection), copy stdin
 * to the socket and the socket to stdout, half-close at the end of stdin,
 * finish when the peer has closed too.
 *
 * stdin and stdout are kernel fds: stdin is polled together with the netif's
 * wait fd (usnet_app_poll_fds), so one thread sleeps on both.  Data moves in
 * large blocks: a read of stdin fills up to NC_TCP_CHUNK bytes and is offered
 * to the stack whole; received bytes go to stdout in blocks of the same size.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nc.h"

#define NC_TCP_CHUNK (256u * 1024u)
/* How long to wait, after both sides have closed, for our FIN's ACK. */
#define NC_TCP_CLOSE_WAIT_MS 10000
/* Default connect timeout when -w is not given. */
#define NC_TCP_CONNECT_TIMEOUT_S 30

struct nc_tcp {
	struct usnet_app *app;
	struct usnet_stack *st;
	struct usnet_io *io;
	const struct nc_options *opt;
	usnet_sock_t s;
	uint8_t *inbuf;        /* read from stdin, not yet taken by the stack */
	size_t in_len, in_off;
	uint8_t *outbuf;       /* received, going to stdout */
	int stdin_open;
	int write_shut;        /* FIN queued */
	int peer_eof;          /* peer's FIN seen and everything read */
	uint64_t bytes_in, bytes_out;
};

/* Write all of buf to fd (a kernel fd that may be non-blocking). */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				poll(&p, 1, 1000);
				continue;
			}
			return -errno;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The socket's pending error as a negative errno (0 when none). */
static int sock_error(struct nc_tcp *t)
{
	int e = 0;
	if (usnet_getsockopt(t->st, t->s, USNET_SO_ERROR, &e) < 0 || e == 0)
		return 0;
	return -e;
}

static int wait_connected(struct nc_tcp *t)
{
	const struct nc_options *opt = t->opt;
	struct usnet_addr to = opt->addr;
	int timeout_s = opt->wait_s ? opt->wait_s : NC_TCP_CONNECT_TIMEOUT_S;
	uint64_t end = usnet_app_now() + (uint64_t)timeout_s * 1000000000ull;
	int r;

	r = usnet_connect(t->st, t->io, t->s, &to, usnet_app_now());
	if (r < 0 && r != -USNET_EINPROGRESS) {
		nc_error("connect to %s: %s", nc_addr_str(&opt->addr), nc_strerror(r));
		return -1;
	}
	for (;;) {
		uint32_t ev = usnet_sock_events(t->st, t->s);
		if (ev & (USNET_EV_ERR | USNET_EV_HUP)) {
			int e = sock_error(t);
			nc_error("connect to %s: %s", nc_addr_str(&opt->addr),
				 nc_strerror(e ? e : -USNET_ECONNREFUSED));
			return -1;
		}
		if (ev & USNET_EV_OUT)
			break;
		uint64_t now = usnet_app_now();
		if (now >= end) {
			nc_error("connect to %s: timed out after %d s", nc_addr_str(&opt->addr),
				 timeout_s);
			return -1;
		}
		r = usnet_app_poll(t->app, (int)((end - now) / 1000000ull) + 1);
		if (r < 0 && r != -EINTR) {
			nc_error("netif: %s", nc_strerror(r));
			return -1;
		}
	}
	nc_verbose(opt, "connected to %s", nc_addr_str(&opt->addr));
	return 0;
}

static int wait_accepted(struct nc_tcp *t)
{
	const struct nc_options *opt = t->opt;
	struct usnet_addr local = opt->addr, peer;
	usnet_sock_t ls = t->s;
	int r;

	if ((r = usnet_setsockopt(t->st, ls, USNET_SO_REUSEADDR, 1)) < 0 && r != -USNET_ENOPROTOOPT) {
		nc_error("setsockopt SO_REUSEADDR: %s", nc_strerror(r));
		return -1;
	}
	if ((r = usnet_bind(t->st, ls, &local)) < 0) {
		nc_error("bind %s: %s", nc_addr_str(&opt->addr), nc_strerror(r));
		return -1;
	}
	if ((r = usnet_listen(t->st, ls, 1)) < 0) {
		nc_error("listen on %s: %s", nc_addr_str(&opt->addr), nc_strerror(r));
		return -1;
	}
	nc_verbose(opt, "listening on %s", nc_addr_str(&opt->addr));
	uint64_t end = opt->wait_s ? usnet_app_now() + (uint64_t)opt->wait_s * 1000000000ull : UINT64_MAX;
	for (;;) {
		r = usnet_accept(t->st, t->io, ls, &peer, usnet_app_now());
		if (r >= 0)
			break;
		if (r != -USNET_EAGAIN) {
			nc_error("accept on %s: %s", nc_addr_str(&opt->addr), nc_strerror(r));
			return -1;
		}
		uint64_t now = usnet_app_now();
		if (now >= end) {
			nc_error("no connection on %s within %d s", nc_addr_str(&opt->addr),
				 opt->wait_s);
			return -1;
		}
		int wait = end == UINT64_MAX ? -1 : (int)((end - now) / 1000000ull) + 1;
		r = usnet_app_poll(t->app, wait);
		if (r < 0 && r != -EINTR) {
			nc_error("netif: %s", nc_strerror(r));
			return -1;
		}
	}
	t->s = r;
	/* One connection only: later SYNs to this port are refused. */
	usnet_close(t->st, t->io, ls, usnet_app_now());
	nc_verbose(opt, "connection from %s", nc_addr_str(&peer));
	return 0;
}

/* Socket to stdout.  Returns 1 when something moved, 0 when not, -1 on error. */
static int copy_to_stdout(struct nc_tcp *t)
{
	if (t->peer_eof)
		return 0;
	long n = usnet_recv(t->st, t->io, t->s, t->outbuf, NC_TCP_CHUNK, 0, usnet_app_now());
	if (n == -USNET_EAGAIN)
		return 0;
	if (n < 0) {
		nc_error("receive: %s", nc_strerror(n));
		return -1;
	}
	if (n == 0) {
		t->peer_eof = 1;
		nc_verbose(t->opt, "peer closed its side after %llu bytes",
			   (unsigned long long)t->bytes_in);
		return 1;
	}
	int w = write_all(STDOUT_FILENO, t->outbuf, (size_t)n);
	if (w < 0) {
		nc_error("write to stdout: %s", nc_strerror(w));
		return -1;
	}
	t->bytes_in += (uint64_t)n;
	return 1;
}

/* stdin to socket.  stdin_ready: poll said stdin can be read. */
static int copy_from_stdin(struct nc_tcp *t, int stdin_ready)
{
	int moved = 0;

	if (t->in_off == t->in_len && t->stdin_open && stdin_ready) {
		ssize_t r = read(STDIN_FILENO, t->inbuf, NC_TCP_CHUNK);
		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			nc_error("read from stdin: %s", nc_strerror(errno));
			return -1;
		}
		if (r == 0) {
			t->stdin_open = 0;
			moved = 1;
		} else if (r > 0) {
			t->in_off = 0;
			t->in_len = (size_t)r;
			moved = 1;
		}
	}
	while (t->in_off < t->in_len) {
		long n = usnet_send(t->st, t->io, t->s, t->inbuf + t->in_off, t->in_len - t->in_off,
				    0, usnet_app_now());
		if (n == -USNET_EAGAIN)
			break;
		if (n < 0) {
			int e = sock_error(t);
			nc_error("send: %s", nc_strerror(e ? e : n));
			return -1;
		}
		t->in_off += (size_t)n;
		t->bytes_out += (uint64_t)n;
		moved = 1;
	}
	if (!t->stdin_open && t->in_off == t->in_len && !t->write_shut) {
		int r = usnet_shutdown(t->st, t->io, t->s, 1, usnet_app_now());
		if (r < 0) {
			nc_error("shutdown: %s", nc_strerror(r));
			return -1;
		}
		t->write_shut = 1;
		nc_verbose(t->opt, "end of stdin after %llu bytes: sent FIN",
			   (unsigned long long)t->bytes_out);
		moved = 1;
	}
	return moved;
}

static int copy_both_ways(struct nc_tcp *t)
{
	struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
	int stdin_ready = 0;

	while (!(t->write_shut && t->peer_eof)) {
		int a = copy_to_stdout(t);
		if (a < 0)
			return -1;
		int b = copy_from_stdin(t, stdin_ready);
		if (b < 0)
			return -1;
		uint32_t ev = usnet_sock_events(t->st, t->s);
		if (ev & USNET_EV_ERR) {
			int e = sock_error(t);
			if (e) {
				nc_error("connection: %s", nc_strerror(e));
				return -1;
			}
		}
		/* Read stdin only when the last block has been taken. */
		int want_stdin = t->stdin_open && t->in_off == t->in_len;
		in.fd = want_stdin ? STDIN_FILENO : -1;
		in.revents = 0;
		int r = usnet_app_poll_fds(t->app, &in, 1, (a || b) ? 0 : -1);
		if (r < 0 && r != -EINTR) {
			nc_error("netif: %s", nc_strerror(r));
			return -1;
		}
		stdin_ready = want_stdin && (in.revents & (POLLIN | POLLHUP | POLLERR));
	}
	return 0;
}

/* Both sides have closed: wait until our FIN is acknowledged. */
static int finish_close(struct nc_tcp *t)
{
	uint64_t end = usnet_app_now() + (uint64_t)NC_TCP_CLOSE_WAIT_MS * 1000000ull;
	struct usnet_tcp_info info;

	for (;;) {
		if (usnet_tcp_info(t->st, t->s, &info) < 0 || info.state == USNET_TCP_TIME_WAIT ||
		    info.state == USNET_TCP_CLOSED)
			break;
		int e = sock_error(t);
		if (e) {
			nc_error("closing: %s", nc_strerror(e));
			return -1;
		}
		uint64_t now = usnet_app_now();
		if (now >= end) {
			/* The peer's FIN is in: the peer has finished.  Only the ACK
			 * of our last segments (our FIN, perhaps the data it rode
			 * with) is missing, and a peer that already left after
			 * receiving them (its last ACK lost) never sends it again.
			 * This ends as close(2) does, which does not wait for that
			 * ACK either, not as an error. */
			if (info.state == USNET_TCP_LAST_ACK || info.state == USNET_TCP_CLOSING) {
				nc_verbose(t->opt, "tcp: our FIN was not acknowledged within %d s (%u bytes unacknowledged)",
					   NC_TCP_CLOSE_WAIT_MS / 1000, (unsigned)info.unacked);
				break;
			}
			nc_error("closing: peer did not acknowledge our FIN within %d s",
				 NC_TCP_CLOSE_WAIT_MS / 1000);
			return -1;
		}
		usnet_app_poll(t->app, (int)((end - now) / 1000000ull) + 1);
	}
	if (usnet_tcp_info(t->st, t->s, &info) == 0)
		nc_verbose(t->opt, "tcp: mss %u, rtt %u us, rto %u us, cwnd %u, %llu segments out, "
			   "%llu retransmitted",
			   info.snd_mss, info.rtt_us, info.rto_us, info.cwnd, (unsigned long long)info.segs_out,
			   (unsigned long long)info.total_retrans);
	usnet_close(t->st, t->io, t->s, usnet_app_now());
	usnet_app_poll(t->app, 0);
	nc_verbose(t->opt, "closed: %llu bytes received, %llu bytes sent",
		   (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out);
	return 0;
}

int nc_tcp_session(struct usnet_app *app, const struct nc_options *opt)
{
	struct nc_tcp t = {
		.app = app, .st = usnet_app_stack(app), .io = usnet_app_io(app), .opt = opt,
		.stdin_open = 1, .s = -1,
	};
	int rc = NC_EXIT_ERROR;

	t.inbuf = malloc(NC_TCP_CHUNK);
	t.outbuf = malloc(NC_TCP_CHUNK);
	if (!t.inbuf || !t.outbuf) {
		nc_error("out of memory");
		goto out;
	}
	t.s = usnet_socket(t.st, USNET_SOCK_STREAM | nc_sock_family_flag(opt));
	if (t.s < 0) {
		nc_error("socket: %s", nc_strerror(t.s));
		goto out;
	}
	if ((opt->listen ? wait_accepted(&t) : wait_connected(&t)) < 0)
		goto out;
	if (copy_both_ways(&t) < 0 || finish_close(&t) < 0)
		goto out;
	rc = NC_EXIT_OK;
out:
	if (rc != NC_EXIT_OK && t.s >= 0) {
		/* Leave no half-open connection behind: abort it with a RST. */
		usnet_setsockopt(t.st, t.s, USNET_SO_LINGER, 0);
		usnet_close(t.st, t.io, t.s, usnet_app_now());
		usnet_app_poll(app, 0);
	}
	free(t.inbuf);
	free(t.outbuf);
	return rc;
}
