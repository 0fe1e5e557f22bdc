/*
 * The answer to a request (see http_respond.h).
 *
 * The common case — a GET or HEAD of a file on a persistent HTTP/1.1
 * connection, no conditions, no range — costs a path decode, one lookup and
 * a 39-byte copy (the Date line and the blank line); the head and the body
 * come from the cache as they are.
 */
#include "http_respond.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Status lines and bodies of the answers that are not a file's. */
struct status_text {
	unsigned status;
	const char *head;   /* status line, Server and Content-Type */
	const char *body;
};

#define ERROR_HEAD(line) "HTTP/1.1 " line "\r\n" HTTP_SERVER_FIELD "Content-Type: text/plain; charset=utf-8\r\n"
static const struct status_text status_texts[] = {
	{ 400, ERROR_HEAD("400 Bad Request"), "400 Bad Request\n" },
	{ 404, ERROR_HEAD("404 Not Found"), "404 Not Found\n" },
	{ 405, ERROR_HEAD("405 Method Not Allowed"), "405 Method Not Allowed\n" },
	{ 412, ERROR_HEAD("412 Precondition Failed"), "412 Precondition Failed\n" },
	{ 414, ERROR_HEAD("414 URI Too Long"), "414 URI Too Long\n" },
	{ 416, ERROR_HEAD("416 Range Not Satisfiable"), "416 Range Not Satisfiable\n" },
	{ 431, ERROR_HEAD("431 Request Header Fields Too Large"), "431 Request Header Fields Too Large\n" },
	{ 501, ERROR_HEAD("501 Not Implemented"), "501 Not Implemented\n" },
	{ 505, ERROR_HEAD("505 HTTP Version Not Supported"), "505 HTTP Version Not Supported\n" },
};

static const struct status_text *status_text(unsigned status)
{
	for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++)
		if (status_texts[i].status == status)
			return &status_texts[i];
	return &status_texts[0];  /* 400 */
}

/* ---- writing the per-response fields ----------------------------------------- */

static void dyn_printf(struct http_response *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dyn_printf(struct http_response *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->dyn + r->dyn_len, sizeof r->dyn - r->dyn_len, fmt, ap);
	va_end(ap);
	/* HTTP_DYN_MAX holds the longest combination; the check keeps a
	 * mistake there from ever producing a malformed response */
	if (n > 0 && (size_t)n < sizeof r->dyn - r->dyn_len)
		r->dyn_len += (size_t)n;
}

static void dyn_put(struct http_response *r, const char *s, size_t n)
{
	if (n < sizeof r->dyn - r->dyn_len) {
		memcpy(r->dyn + r->dyn_len, s, n);
		r->dyn_len += n;
	}
}

/* Date, Connection and the blank line that end every head. */
static void dyn_finish(struct http_response *r, const struct http_request *req,
		       const struct http_clock *clk)
{
	dyn_put(r, clk->line, clk->len);
	if (r->close)
		dyn_put(r, "Connection: close\r\n\r\n", 21);
	else if (req->version_minor == 0)
		dyn_put(r, "Connection: keep-alive\r\n\r\n", 26);  /* HTTP/1.0 asked for it */
	else
		dyn_put(r, "\r\n", 2);
}

static void answer_status(struct http_response *r, const struct http_request *req,
			  const struct http_clock *clk, unsigned status)
{
	const struct status_text *t = status_text(status);
	r->status = t->status;
	r->head = t->head;
	r->head_len = strlen(t->head);
	r->body = t->body;
	r->body_len = strlen(t->body);
	dyn_printf(r, "Content-Length: %zu\r\n", r->body_len);
	if (status == 405)
		dyn_put(r, "Allow: GET, HEAD\r\n", 18);
	dyn_finish(r, req, clk);
	if (req->method == HTTP_METHOD_HEAD)
		r->body_len = 0;
}

/* ---- entity tags (RFC 9110 §8.8.3) ------------------------------------------- */

/* Does a list of entity tags (the values of If-Match or If-None-Match lines)
 * hold "*" or a tag equal to etag?  Weak comparison ignores W/ on either;
 * strong comparison (weak == 0) counts a weak tag as no match.  A malformed
 * list matches nothing from the malformed element on. */
static int etag_list_matches(const struct http_span *lines, unsigned nlines, const char *etag,
			     size_t etag_len, int weak)
{
	for (unsigned l = 0; l < nlines; l++) {
		const char *p = lines[l].p, *end = p + lines[l].len;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			if (p == end)
				break;
			if (*p == '*')
				return 1;
			int is_weak = 0;
			if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
				is_weak = 1;
				p += 2;
			}
			if (p == end || *p != '"')
				break;
			const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
			if (!q)
				break;
			size_t n = (size_t)(q - p + 1);
			if ((weak || !is_weak) && n == etag_len && memcmp(p, etag, n) == 0)
				return 1;
			p = q + 1;
		}
	}
	return 0;
}

/* ---- byte ranges (RFC 9110 §14) ---------------------------------------------- */

enum range_verdict {
	RANGE_NONE,           /* no usable Range: the whole representation */
	RANGE_OK,             /* one satisfiable range in [*first, *last] */
	RANGE_UNSATISFIABLE,  /* 416 */
};

static int take_u64(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;
	while (*p < end && **p >= '0' && **p <= '9') {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	*v = n;
	return *p == s ? -1 : 0;
}

/* A single range of a Range value.  Several ranges are answered with the
 * whole representation (allowed: a server may ignore Range), as is any
 * syntax it does not know; only a well-formed range past the end gets 416. */
static enum range_verdict parse_range(const struct http_span *v, uint64_t size,
				      uint64_t *first, uint64_t *last)
{
	const char *p = v->p, *end = v->p + v->len;
	if (end - p < 6 || strncasecmp(p, "bytes", 5) != 0)
		return RANGE_NONE;
	p += 5;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != '=')
		return RANGE_NONE;
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	uint64_t a = 0, b = 0;
	int suffix = 0, open_end = 0;
	if (p < end && *p == '-') {
		p++;
		if (take_u64(&p, end, &b) < 0)
			return RANGE_NONE;
		suffix = 1;
	} else {
		if (take_u64(&p, end, &a) < 0 || p == end || *p != '-')
			return RANGE_NONE;
		p++;
		if (p < end && *p >= '0' && *p <= '9') {
			if (take_u64(&p, end, &b) < 0 || b < a)
				return RANGE_NONE;
		} else {
			open_end = 1;
		}
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p != end)
		return RANGE_NONE;  /* a second range, or junk */
	if (suffix) {
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return RANGE_OK;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	*first = a;
	*last = open_end || b >= size ? size - 1 : b;
	return RANGE_OK;
}

/* If-Range: the range applies only while the representation is the one
 * the client has part of (strong comparison; a date must equal
 * Last-Modified exactly). */
static int if_range_holds(const struct http_request *req, const struct http_file *f)
{
	const struct http_span *v = &req->if_range;
	if (!v->p)
		return 1;
	if (v->len && (v->p[0] == '"' || (v->len >= 2 && v->p[0] == 'W' && v->p[1] == '/')))
		return etag_list_matches(v, 1, f->etag, f->etag_len, 0) && v->p[0] == '"';
	time_t t;
	return http_date_parse(v->p, v->len, &t) == 0 && t == f->mtime;
}

/* ---- the answer -------------------------------------------------------------- */

static void answer_file(struct http_response *r, const struct http_request *req,
			const struct http_clock *clk, const struct http_file *f)
{
	int head_only = req->method == HTTP_METHOD_HEAD;
	time_t t;

	/* Preconditions, RFC 9110 §13.2.2 */
	if (req->if_match_lines) {
		if (!etag_list_matches(req->if_match, req->if_match_lines, f->etag, f->etag_len, 0)) {
			answer_status(r, req, clk, 412);
			return;
		}
	} else if (req->if_unmodified_since.p &&
		   http_date_parse(req->if_unmodified_since.p, req->if_unmodified_since.len, &t) == 0 &&
		   f->mtime > t) {
		answer_status(r, req, clk, 412);
		return;
	}
	int not_modified = 0;
	if (req->if_none_match_lines)
		not_modified = etag_list_matches(req->if_none_match, req->if_none_match_lines,
						 f->etag, f->etag_len, 1);
	else if (req->if_modified_since.p &&
		 http_date_parse(req->if_modified_since.p, req->if_modified_since.len, &t) == 0)
		not_modified = f->mtime <= t;
	if (not_modified) {
		r->status = 304;
		r->head = f->head_304.text;
		r->head_len = f->head_304.len;
		dyn_finish(r, req, clk);
		return;
	}

	/* Range applies to GET only (§14.2) */
	uint64_t first = 0, last = 0;
	enum range_verdict rv = RANGE_NONE;
	if (req->method == HTTP_METHOD_GET && req->range.p && if_range_holds(req, f))
		rv = parse_range(&req->range, f->size, &first, &last);
	if (rv == RANGE_UNSATISFIABLE) {
		answer_status(r, req, clk, 416);
		/* the status's own fields, then where the representation ends */
		r->dyn_len = 0;
		dyn_printf(r, "Content-Length: %zu\r\nContent-Range: bytes */%" PRIu64 "\r\n",
			   strlen(r->body), f->size);
		dyn_finish(r, req, clk);
		return;
	}
	if (rv == RANGE_OK) {
		r->status = 206;
		r->head = f->head_206.text;
		r->head_len = f->head_206.len;
		dyn_printf(r, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n"
			   "Content-Length: %" PRIu64 "\r\n", first, last, f->size, last - first + 1);
		dyn_finish(r, req, clk);
		r->body = f->body + first;
		r->body_len = (size_t)(last - first + 1);
		return;
	}
	r->status = 200;
	r->head = f->head_200.text;
	r->head_len = f->head_200.len;
	dyn_finish(r, req, clk);
	r->body = f->body;
	r->body_len = head_only ? 0 : (size_t)f->size;
}

void http_respond(const struct http_cache *c, const struct http_request *req,
		  const struct http_clock *clk, struct http_response *r)
{
	char path[HTTP_TARGET_MAX + 1];

	r->status = 0;
	/* A client that waits for "100 Continue" before sending its body and
	 * gets a final answer instead may never send it (RFC 9110 §10.1.1):
	 * the next request could not be told from the body, so close. */
	r->close = !req->keep_alive || (req->expect_continue && req->content_length);
	r->head = r->body = NULL;
	r->head_len = r->body_len = r->dyn_len = 0;

	if (req->error) {
		r->close = 1;  /* the rest of the stream cannot be trusted */
		answer_status(r, req, clk, req->error);
		return;
	}
	if (req->method == HTTP_METHOD_OTHER || req->method == HTTP_METHOD_UNKNOWN) {
		answer_status(r, req, clk, req->method == HTTP_METHOD_OTHER ? 405 : 501);
		return;
	}
	long n = http_target_path(&req->target, path, sizeof path);
	if (n < 0) {
		answer_status(r, req, clk, n == -2 ? 414 : 400);
		return;
	}
	const struct http_entry *e = http_cache_lookup(c, path, (size_t)n);
	if (!e) {
		answer_status(r, req, clk, 404);
		return;
	}
	if (e->kind == HTTP_ENTRY_REDIRECT) {
		r->status = 301;
		r->head = e->head_301.text;
		r->head_len = e->head_301.len;
		dyn_put(r, "Content-Length: 0\r\n", 19);
		dyn_finish(r, req, clk);
		return;
	}
	answer_file(r, req, clk, e->file);
}
