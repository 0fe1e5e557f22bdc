/*
 * The HTTP/1.x request head parser (RFC 9112): request line and header
 * fields, with the limits that keep a connection's memory bounded.  Pure:
 * no I/O, no allocation, spans point into the caller's buffer; the same code
 * runs in the server and in the fuzz target (fuzz/fuzz_http_request.c).
 */
#ifndef HTTP_REQUEST_H
#define HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* Limits.  A request-target longer than HTTP_TARGET_MAX gets 414; header
 * fields over HTTP_HEADER_SECTION_MAX bytes or HTTP_HEADER_FIELDS_MAX lines
 * get 431.  A connection therefore never holds more than HTTP_HEAD_MAX bytes
 * of one request head. */
#define HTTP_METHOD_MAX 32
#define HTTP_TARGET_MAX 4096
#define HTTP_HEADER_SECTION_MAX 8192
#define HTTP_HEADER_FIELDS_MAX 100
/* Empty lines tolerated before a request line (RFC 9112 §2.2). */
#define HTTP_LEADING_EMPTY_LINES_MAX 8
/* Request line: method, SP, target, SP, "HTTP/x.y", CR LF. */
#define HTTP_REQUEST_LINE_MAX (HTTP_METHOD_MAX + 1 + HTTP_TARGET_MAX + 1 + 8 + 2)
#define HTTP_HEAD_MAX (2 * HTTP_LEADING_EMPTY_LINES_MAX + HTTP_REQUEST_LINE_MAX + HTTP_HEADER_SECTION_MAX + 2)
/* If-None-Match / If-Match lines kept (each holds a list of tags). */
#define HTTP_TAG_LINES_MAX 4

enum http_method {
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_OTHER,    /* a registered method this server does not allow (405) */
	HTTP_METHOD_UNKNOWN,  /* a well-formed token it does not know (501) */
};

struct http_span {
	const char *p;
	size_t len;
};

struct http_request {
	/* 0, or the status a malformed request gets: 400, 414, 431, 501
	 * (a transfer coding this server cannot frame) or 505.  The
	 * connection is closed after answering it. */
	unsigned error;
	enum http_method method;
	struct http_span target;     /* as sent (origin-form or absolute-form) */
	unsigned version_minor;      /* 0: HTTP/1.0; 1: HTTP/1.1 or a later 1.x */
	int keep_alive;              /* the connection stays open after this request */
	uint64_t content_length;     /* body bytes that follow the head */
	int expect_continue;         /* "Expect: 100-continue": the body may never come */
	struct http_span host;
	struct http_span range;      /* .p NULL when absent or sent twice */
	struct http_span if_modified_since, if_unmodified_since, if_range;
	struct http_span if_none_match[HTTP_TAG_LINES_MAX];
	unsigned if_none_match_lines;
	struct http_span if_match[HTTP_TAG_LINES_MAX];
	unsigned if_match_lines;
};

/* Parse the request head at the start of buf (len bytes).  Returns 0 when
 * more bytes are needed (nothing malformed so far, and still within the
 * limits), else the bytes the head took (blank lines before it included),
 * with req filled; a malformed or oversized head sets req->error (the
 * return value then only says the head is done with).  Detects errors as
 * early as it can: a byte that cannot start a request gets 400 at once. */
size_t http_request_parse(const char *buf, size_t len, struct http_request *req);

/* Decode the path of req->target into out (cap bytes, NUL ended): the
 * absolute-form's scheme and authority and the query are dropped, %XX
 * escapes decoded.  Returns the path's length, or -1 (400) when the target
 * is not a path ("*", a relative path), holds a byte a target may not (a
 * control, space or non-ASCII byte), an escape is malformed, it decodes
 * to NUL, or a segment is "." or ".." (nothing above the root can be
 * named); -2 when it does not fit. */
long http_target_path(const struct http_span *target, char *out, size_t cap);

#endif /* HTTP_REQUEST_H */
