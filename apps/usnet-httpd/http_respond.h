/*
 * Choosing the answer to a parsed request (RFC 9110): the entry it names,
 * preconditions (If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, in the order of §13.2.2), a single byte range (If-Range
 * honoured), and the error statuses.  Pure like the parser: the answer is
 * a plan of three pieces that point into the cache or into the plan itself.
 */
#ifndef HTTP_RESPOND_H
#define HTTP_RESPOND_H

#include <stddef.h>

#include "http_cache.h"
#include "http_date.h"
#include "http_request.h"

/* Room for the per-response fields: Content-Range, Content-Length, Allow,
 * Date, Connection and the blank line (about 170 bytes at most). */
#define HTTP_DYN_MAX 256

/* A response is sent as its pieces in order: the head written in advance
 * (in the cache, or a constant), the fields written for this response, and
 * the body (a slice of a cached file, or a constant error text). */
struct http_response {
	unsigned status;
	int close;                 /* close the connection once it is sent */
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
	size_t dyn_len;
	char dyn[HTTP_DYN_MAX];
};

/* The answer to req (parsed by http_request_parse(), req->error included)
 * from cache c, dated by clk.  Fills *out; never fails. */
void http_respond(const struct http_cache *c, const struct http_request *req,
		  const struct http_clock *clk, struct http_response *out);

/* Bytes the whole response takes on the wire. */
static inline size_t http_response_len(const struct http_response *r)
{
	return r->head_len + r->dyn_len + r->body_len;
}

#endif /* HTTP_RESPOND_H */
