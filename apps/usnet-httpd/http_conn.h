/*
 * Serving connections: one struct http_server per thread drives its
 * netloop (kernel sockets or one usnet stack instance), reads requests,
 * queues their responses in order (pipelining), sends them as one gather
 * write, and closes a connection as HTTP asks (after a final response:
 * FIN, then reading until the peer closes, so the answer is not lost to a
 * reset).  Memory per connection is bounded: one unfinished request head
 * (HTTP_HEAD_MAX) and HTTP_PIPELINE_MAX queued responses, whose bodies are
 * the cache's, not copies.
 */
#ifndef HTTP_CONN_H
#define HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "http_cache.h"
#include "http_date.h"
#include "netloop.h"

/* Responses queued on one connection; reading pauses while it is full. */
#define HTTP_PIPELINE_MAX 16
/* A connection with nothing happening this long is closed (by default). */
#define HTTP_IDLE_TIMEOUT_NS (60ull * 1000000000ull)
/* How long a closing connection waits for the peer's FIN. */
#define HTTP_LINGER_TIMEOUT_NS (2ull * 1000000000ull)

struct http_conn;

struct http_server {
	int index;                      /* thread number */
	struct netloop *loop;
	int listener;
	const struct http_cache *cache;
	uint64_t idle_timeout_ns;       /* HTTP_IDLE_TIMEOUT_NS unless the caller sets it */
	struct http_clock clock;
	struct http_conn *conns;        /* every open connection (for timeouts) */
	size_t nconns;
	uint64_t requests;
	char *scratch;                  /* HTTP_HEAD_MAX bytes: where recv() lands */
};

/* Prepare s (loop, listener and cache set by the caller, idle_timeout_ns
 * may be).  0 or -ENOMEM. */
int http_server_init(struct http_server *s);

/* The netloop handler: ctx of the loop is the struct http_server. */
void http_server_on_ready(struct netloop *l, int id, uint32_t events, void *user);

/* Close connections idle past their timeout; call about once a second. */
void http_server_sweep(struct http_server *s, uint64_t now_ns);

/* Close every connection and free what init allocated. */
void http_server_destroy(struct http_server *s);

#endif /* HTTP_CONN_H */
