/*
 * Serving connections (see http_conn.h).
 *
 * A connection's handler loops: send what is queued; read and parse what
 * arrived, queueing one response per request; until the stack has nothing
 * more (usnet reports changes rather than levels, so a handler must get to
 * -EAGAIN or to a full queue, whose draining is itself reported).
 *
 * Input is taken without copying where it can be: on usnet the parser reads
 * the stack's receive buffer in place (netloop_peek) and only an unfinished
 * head is copied; on kernel sockets recv() lands in a per-thread buffer,
 * and again only an unfinished head is kept with the connection.
 *
 * Output is gathered: the queued responses' pieces (pre-built head, the
 * per-response fields, the cached body) go to the stack in one sendv.  The
 * stack copies them into the socket's send buffer and segments them there
 * (stack.h has no send path that takes caller-built frames), so Sandstorm's
 * pre-segmented packets stop at pre-built bytes here; what is saved is the
 * building, not the copy.
 */
#include "http_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "http_request.h"
#include "http_respond.h"

enum conn_state {
	CONN_OPEN,      /* reading requests */
	CONN_CLOSING,   /* a final response is queued: send it, then FIN */
	CONN_LINGER,    /* FIN sent: read and drop until the peer's FIN */
};

struct http_conn {
	int id;
	enum conn_state state;
	struct http_conn *prev, *next;
	uint64_t last_active_ns;
	uint64_t discard;               /* request body bytes still to skip */
	char *in;                       /* an unfinished head (HTTP_HEAD_MAX bytes, allocated when needed) */
	size_t inlen;
	unsigned out_first, out_count;  /* the queue of responses */
	size_t out_sent;                /* bytes of the first one already sent */
	struct http_response out[HTTP_PIPELINE_MAX];
};

/* iovecs one gather write takes (netloop_sendv's own limit) */
#define CONN_IOV_MAX 16

int http_server_init(struct http_server *s)
{
	s->conns = NULL;
	s->nconns = 0;
	s->requests = 0;
	if (!s->idle_timeout_ns)
		s->idle_timeout_ns = HTTP_IDLE_TIMEOUT_NS;
	memset(&s->clock, 0, sizeof s->clock);
	http_clock_tick(&s->clock);
	s->scratch = malloc(HTTP_HEAD_MAX);
	return s->scratch ? 0 : -ENOMEM;
}

static void conn_close(struct http_server *s, struct http_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	netloop_close(s->loop, c->id);
	free(c->in);
	free(c);
}

/* Keep n bytes of an unfinished head with the connection. */
static int conn_keep(struct http_conn *c, const char *p, size_t n)
{
	if (n > HTTP_HEAD_MAX - c->inlen)
		return -1;  /* the parser's limits make this impossible */
	if (!c->in && !(c->in = malloc(HTTP_HEAD_MAX)))
		return -1;
	memmove(c->in + c->inlen, p, n);
	c->inlen += n;
	return 0;
}

/* Take len received bytes: skip body bytes, parse heads, queue responses.
 * Returns the bytes used; stops early at an unfinished head, a full queue
 * or a final response. */
static size_t conn_input(struct http_server *s, struct http_conn *c, const char *p, size_t len)
{
	size_t used = 0;
	while (used < len && c->state == CONN_OPEN) {
		if (c->discard) {
			size_t n = len - used < c->discard ? len - used : (size_t)c->discard;
			used += n;
			c->discard -= n;
			continue;
		}
		if (c->out_count == HTTP_PIPELINE_MAX)
			break;
		struct http_request req;
		size_t n = http_request_parse(p + used, len - used, &req);
		if (n == 0)
			break;
		struct http_response *r = &c->out[(c->out_first + c->out_count) % HTTP_PIPELINE_MAX];
		http_respond(s->cache, &req, &s->clock, r);
		c->out_count++;
		s->requests++;
		used += n;
		if (r->close)
			c->state = CONN_CLOSING;
		else
			c->discard = req.content_length;
	}
	return used;
}

/* Use the unfinished head kept with the connection, now that more may be
 * there or the queue has room. */
static void conn_input_kept(struct http_server *s, struct http_conn *c)
{
	size_t used = conn_input(s, c, c->in, c->inlen);
	if (used) {
		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
	}
}

/* Bytes sent: drop the responses they complete. */
static void conn_sent(struct http_conn *c, size_t n)
{
	while (n && c->out_count) {
		struct http_response *r = &c->out[c->out_first];
		size_t left = http_response_len(r) - c->out_sent;
		if (n < left) {
			c->out_sent += n;
			return;
		}
		n -= left;
		c->out_sent = 0;
		c->out_first = (c->out_first + 1) % HTTP_PIPELINE_MAX;
		c->out_count--;
	}
}

/* Send what is queued, several responses per gather write.  0 when all
 * left, 1 when the rest waits for room, -1 when the connection failed. */
static int conn_flush(struct http_server *s, struct http_conn *c)
{
	while (c->out_count) {
		struct iovec iov[CONN_IOV_MAX];
		int n = 0;
		size_t skip = c->out_sent, total = 0;
		for (unsigned k = 0; k < c->out_count && n + 3 <= CONN_IOV_MAX; k++) {
			const struct http_response *r = &c->out[(c->out_first + k) % HTTP_PIPELINE_MAX];
			const char *base[3] = { r->head, r->dyn, r->body };
			size_t len[3] = { r->head_len, r->dyn_len, r->body_len };
			for (int i = 0; i < 3; i++) {
				if (skip >= len[i]) {
					skip -= len[i];
					continue;
				}
				iov[n].iov_base = (void *)(base[i] + skip);
				iov[n].iov_len = len[i] - skip;
				total += iov[n].iov_len;
				n++;
				skip = 0;
			}
		}
		long sent = netloop_sendv(s->loop, c->id, iov, n);
		if (sent == -EAGAIN) {
			netloop_want_write(s->loop, c->id, 1);
			return 1;
		}
		if (sent < 0)
			return -1;
		conn_sent(c, (size_t)sent);
		if ((size_t)sent < total) {
			netloop_want_write(s->loop, c->id, 1);
			return 1;
		}
	}
	netloop_want_write(s->loop, c->id, 0);
	return 0;
}

/* Take what arrived.  1 when something was used, 0 when nothing is there,
 * -1 at the peer's FIN, -2 on an error. */
static int conn_receive(struct http_server *s, struct http_conn *c)
{
	if (c->inlen == 0) {
		struct iovec iov[1];
		int n = netloop_peek(s->loop, c->id, iov, 1);
		if (n > 0) {
			const char *p = iov[0].iov_base;
			size_t len = iov[0].iov_len;
			size_t used = conn_input(s, c, p, len);
			if (used < len && c->state == CONN_OPEN && c->out_count < HTTP_PIPELINE_MAX &&
			    !c->discard) {
				if (conn_keep(c, p + used, len - used) < 0)
					return -2;
				used = len;
			}
			if (used && netloop_consume(s->loop, c->id, used) < 0)
				return -2;
			return used ? 1 : 0;
		}
		/* nothing to peek (recv tells EOF from nothing), or kernel sockets */
	}
	char *dst = c->inlen ? c->in + c->inlen : s->scratch;
	size_t room = HTTP_HEAD_MAX - c->inlen;
	if (room == 0)
		return -2;  /* the parser's limits make this impossible */
	long n = netloop_recv(s->loop, c->id, dst, room);
	if (n == -EAGAIN)
		return 0;
	if (n == 0)
		return -1;
	if (n < 0)
		return -2;
	if (c->inlen) {
		c->inlen += (size_t)n;
		conn_input_kept(s, c);
		return 1;
	}
	size_t used = conn_input(s, c, s->scratch, (size_t)n);
	if (used < (size_t)n && c->state == CONN_OPEN && conn_keep(c, s->scratch + used, (size_t)n - used) < 0)
		return -2;
	return 1;
}

/* After our FIN: read and drop until the peer's; 1 when it came (or the
 * connection failed), 0 when more may come. */
static int conn_drain(struct http_server *s, struct http_conn *c)
{
	for (;;) {
		long n = netloop_recv(s->loop, c->id, s->scratch, HTTP_HEAD_MAX);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return 1;
	}
}

static void conn_handle(struct http_server *s, struct http_conn *c, uint32_t ev)
{
	if (ev & NETLOOP_EV_ERR) {
		conn_close(s, c);
		return;
	}
	c->last_active_ns = netloop_now_ns();
	http_clock_tick(&s->clock);
	for (;;) {
		int f = conn_flush(s, c);
		if (f < 0) {
			conn_close(s, c);
			return;
		}
		if (c->state == CONN_CLOSING) {
			if (f)
				return;  /* the rest leaves when there is room */
			if (netloop_shutdown_write(s->loop, c->id) < 0) {
				conn_close(s, c);
				return;
			}
			c->state = CONN_LINGER;
		}
		if (c->state == CONN_LINGER) {
			if (conn_drain(s, c))
				conn_close(s, c);
			return;
		}
		if (c->out_count == HTTP_PIPELINE_MAX)
			return;  /* f == 1: the queue drains when there is room */
		if (c->inlen && !c->discard) {
			unsigned queued = c->out_count;
			conn_input_kept(s, c);
			if (c->out_count != queued)
				continue;  /* send those first */
		}
		int r = conn_receive(s, c);
		if (r == 0)
			return;
		if (r < 0) {
			/* The peer is done sending: answer what it asked, then close. */
			if (r == -1 && c->out_count) {
				c->state = CONN_CLOSING;
				continue;
			}
			conn_close(s, c);
			return;
		}
	}
}

/* A new connection (netloop_accept_all). */
static void *conn_adopt(struct netloop *l, int id)
{
	struct http_server *s = netloop_ctx(l);
	struct http_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->id = id;
	c->state = CONN_OPEN;
	c->last_active_ns = netloop_now_ns();
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	return c;
}

void http_server_on_ready(struct netloop *l, int id, uint32_t events, void *user)
{
	struct http_server *s = netloop_ctx(l);
	if (id == s->listener) {
		netloop_accept_all(l, id, conn_adopt);
		return;
	}
	if (user)
		conn_handle(s, user, events);
}

void http_server_sweep(struct http_server *s, uint64_t now_ns)
{
	struct http_conn *c = s->conns;
	while (c) {
		struct http_conn *next = c->next;
		uint64_t limit = c->state == CONN_LINGER ? HTTP_LINGER_TIMEOUT_NS : s->idle_timeout_ns;
		if (now_ns - c->last_active_ns > limit)
			conn_close(s, c);
		c = next;
	}
}

void http_server_destroy(struct http_server *s)
{
	while (s->conns)
		conn_close(s, s->conns);
	free(s->scratch);
	s->scratch = NULL;
}
