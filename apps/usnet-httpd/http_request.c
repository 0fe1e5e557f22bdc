/*
 * The request head parser (see http_request.h).
 *
 * One pass over the bytes received so far.  The head is parsed again from
 * its start each time more bytes arrive, which keeps the parser stateless
 * (and trivially fuzzable); the limits bound that work to HTTP_HEAD_MAX
 * bytes per pass.  Every byte is checked as soon as it is seen, so garbage
 * is answered with 400 without waiting for a line end that may never come.
 *
 * Lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets a recipient accept
 * LF); a CR anywhere else is an error, as are obs-fold continuation lines
 * and whitespace between a field name and its colon (request smuggling
 * vectors, RFC 9112 §5.1).
 */
#include "http_request.h"

#include <string.h>
#include <strings.h>

/* token characters (RFC 9110 §5.6.2) */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Bytes allowed in a field value: VCHAR, obs-text, SP and HTAB. */
static int is_field_vchar(unsigned char c)
{
	return c >= 0x20 ? c != 0x7f : c == '\t';
}

/* Methods registered for HTTP (RFC 9110 §9, RFC 5789) that this server
 * answers with 405; any other token gets 501. */
static enum http_method classify_method(const char *m, size_t n)
{
	static const char *const others[] = { "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
					      "TRACE", "PATCH" };
	if (n == 3 && memcmp(m, "GET", 3) == 0)
		return HTTP_METHOD_GET;
	if (n == 4 && memcmp(m, "HEAD", 4) == 0)
		return HTTP_METHOD_HEAD;
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
		if (strlen(others[i]) == n && memcmp(m, others[i], n) == 0)
			return HTTP_METHOD_OTHER;
	return HTTP_METHOD_UNKNOWN;
}

/* What the header fields told us beyond what struct http_request keeps. */
struct field_state {
	int host_seen, length_seen, transfer_coding, conn_close, conn_keep_alive;
	int range_twice, ims_twice, ius_twice, if_range_twice;
};

static int name_is(const struct http_span *name, const char *want)
{
	return strlen(want) == name->len && strncasecmp(name->p, want, name->len) == 0;
}

/* Content-Length: 1*DIGIT, at most 18 digits (no overflow). */
static int parse_length(const struct http_span *v, uint64_t *out)
{
	if (v->len == 0 || v->len > 18)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < v->len; i++) {
		if (v->p[i] < '0' || v->p[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v->p[i] - '0');
	}
	*out = n;
	return 0;
}

/* Connection: a comma-separated list of options, case-insensitive. */
static void parse_connection(const struct http_span *v, struct field_state *fs)
{
	size_t i = 0;
	while (i < v->len) {
		while (i < v->len && (is_ows((unsigned char)v->p[i]) || v->p[i] == ','))
			i++;
		size_t s = i;
		while (i < v->len && v->p[i] != ',' && !is_ows((unsigned char)v->p[i]))
			i++;
		struct http_span opt = { v->p + s, i - s };
		if (name_is(&opt, "close"))
			fs->conn_close = 1;
		else if (name_is(&opt, "keep-alive"))
			fs->conn_keep_alive = 1;
	}
}

/* A singleton field: the first value, unless it comes twice (then the
 * field is ignored, as an invalid one is). */
static void keep_single(struct http_span *slot, int *twice, const struct http_span *v)
{
	if (slot->p)
		*twice = 1;
	else
		*slot = *v;
}

/* Take one header field; 0, or the status its value earns. */
static unsigned take_field(struct http_request *req, struct field_state *fs,
			   const struct http_span *name, const struct http_span *v)
{
	if (name_is(name, "host")) {
		if (fs->host_seen)
			return 400;  /* RFC 9112 §3.2 */
		fs->host_seen = 1;
		req->host = *v;
	} else if (name_is(name, "content-length")) {
		uint64_t n;
		if (parse_length(v, &n) < 0 || (fs->length_seen && n != req->content_length))
			return 400;
		fs->length_seen = 1;
		req->content_length = n;
	} else if (name_is(name, "transfer-encoding")) {
		fs->transfer_coding = 1;
	} else if (name_is(name, "expect")) {
		req->expect_continue = name_is(v, "100-continue");
	} else if (name_is(name, "connection")) {
		parse_connection(v, fs);
	} else if (name_is(name, "range")) {
		keep_single(&req->range, &fs->range_twice, v);
	} else if (name_is(name, "if-modified-since")) {
		keep_single(&req->if_modified_since, &fs->ims_twice, v);
	} else if (name_is(name, "if-unmodified-since")) {
		keep_single(&req->if_unmodified_since, &fs->ius_twice, v);
	} else if (name_is(name, "if-range")) {
		keep_single(&req->if_range, &fs->if_range_twice, v);
	} else if (name_is(name, "if-none-match")) {
		if (req->if_none_match_lines == HTTP_TAG_LINES_MAX)
			return 400;
		req->if_none_match[req->if_none_match_lines++] = *v;
	} else if (name_is(name, "if-match")) {
		if (req->if_match_lines == HTTP_TAG_LINES_MAX)
			return 400;
		req->if_match[req->if_match_lines++] = *v;
	}
	return 0;
}

static size_t fail(struct http_request *req, unsigned status, size_t len)
{
	req->error = status;
	return len;
}

/* A line end at b[i]: 1 with *i past it, 0 when more bytes are needed, -1
 * when b[i] is not one. */
static int take_eol(const unsigned char *b, size_t len, size_t *i)
{
	if (*i >= len)
		return 0;
	if (b[*i] == '\n') {
		(*i)++;
		return 1;
	}
	if (b[*i] != '\r')
		return -1;
	if (*i + 1 >= len)
		return 0;
	if (b[*i + 1] != '\n')
		return -1;
	*i += 2;
	return 1;
}

size_t http_request_parse(const char *buf, size_t len, struct http_request *req)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct field_state fs;
	size_t i = 0;
	int r;

	memset(req, 0, sizeof *req);
	memset(&fs, 0, sizeof fs);

	/* Empty lines before the request line (a client's stray CRLF after a
	 * body) are skipped, a few of them. */
	for (unsigned empty = 0;; empty++) {
		if (i >= len)
			return 0;
		if (b[i] != '\r' && b[i] != '\n')
			break;
		if (empty == HTTP_LEADING_EMPTY_LINES_MAX)
			return fail(req, 400, len);
		r = take_eol(b, len, &i);
		if (r == 0)
			return 0;
		if (r < 0)
			return fail(req, 400, len);
	}

	/* method SP */
	size_t m0 = i;
	while (i < len && is_tchar(b[i])) {
		if (++i - m0 > HTTP_METHOD_MAX)
			return fail(req, 400, len);
	}
	if (i >= len)
		return 0;
	if (b[i] != ' ' || i == m0)
		return fail(req, 400, len);
	req->method = classify_method(buf + m0, i - m0);
	i++;

	/* request-target SP: visible ASCII only */
	size_t t0 = i;
	while (i < len && b[i] != ' ') {
		if (b[i] <= 0x20 || b[i] >= 0x7f)
			return fail(req, 400, len);
		if (++i - t0 > HTTP_TARGET_MAX)
			return fail(req, 414, len);
	}
	if (i >= len)
		return 0;
	if (i == t0)
		return fail(req, 400, len);
	req->target.p = buf + t0;
	req->target.len = i - t0;
	i++;

	/* HTTP-version: "HTTP/" DIGIT "." DIGIT, checked byte by byte */
	static const char version_shape[] = "HTTP/9.9";
	for (size_t k = 0; k < 8; k++) {
		if (i + k >= len)
			return 0;
		unsigned char c = b[i + k], want = (unsigned char)version_shape[k];
		if (want == '9' ? (c < '0' || c > '9') : c != want)
			return fail(req, 400, len);
	}
	unsigned major = (unsigned)(b[i + 5] - '0'), minor = (unsigned)(b[i + 7] - '0');
	i += 8;
	r = take_eol(b, len, &i);
	if (r == 0)
		return 0;
	if (r < 0)
		return fail(req, 400, len);
	if (major != 1)
		return fail(req, 505, len);
	req->version_minor = minor >= 1 ? 1 : 0;

	/* field-line CRLF ... CRLF */
	size_t h0 = i;
	unsigned fields = 0;
#define SECTION_CHECK() do { if (i - h0 > HTTP_HEADER_SECTION_MAX) return fail(req, 431, len); } while (0)
	for (;;) {
		SECTION_CHECK();
		if (i >= len)
			return 0;
		if (b[i] == '\r' || b[i] == '\n') {
			r = take_eol(b, len, &i);
			if (r == 0)
				return 0;
			if (r < 0)
				return fail(req, 400, len);
			break;
		}
		size_t n0 = i;
		while (i < len && is_tchar(b[i])) {
			i++;
			SECTION_CHECK();
		}
		if (i >= len)
			return 0;
		/* a leading SP/HTAB (obs-fold) or SP before the colon lands here */
		if (b[i] != ':' || i == n0)
			return fail(req, 400, len);
		struct http_span name = { buf + n0, i - n0 };
		i++;
		while (i < len && is_ows(b[i])) {
			i++;
			SECTION_CHECK();
		}
		size_t v0 = i;
		while (i < len && b[i] != '\r' && b[i] != '\n') {
			if (!is_field_vchar(b[i]))
				return fail(req, 400, len);
			i++;
			SECTION_CHECK();
		}
		if (i >= len)
			return 0;
		size_t v1 = i;
		while (v1 > v0 && is_ows(b[v1 - 1]))
			v1--;
		r = take_eol(b, len, &i);
		if (r == 0)
			return 0;
		if (r < 0)
			return fail(req, 400, len);
		if (++fields > HTTP_HEADER_FIELDS_MAX)
			return fail(req, 431, len);
		struct http_span value = { buf + v0, v1 - v0 };
		unsigned status = take_field(req, &fs, &name, &value);
		if (status)
			return fail(req, status, len);
	}
#undef SECTION_CHECK

	if (req->version_minor >= 1 && !fs.host_seen)
		return fail(req, 400, len);  /* RFC 9112 §3.2 */
	if (fs.transfer_coding) {
		/* Both framings: a smuggling attempt (RFC 9112 §6.3).  A
		 * transfer coding alone: a body whose end this server does
		 * not look for, so it cannot find the next request. */
		return fail(req, fs.length_seen ? 400 : 501, len);
	}
	if (fs.range_twice)
		req->range.p = NULL, req->range.len = 0;
	if (fs.ims_twice)
		req->if_modified_since.p = NULL, req->if_modified_since.len = 0;
	if (fs.ius_twice)
		req->if_unmodified_since.p = NULL, req->if_unmodified_since.len = 0;
	if (fs.if_range_twice)
		req->if_range.p = NULL, req->if_range.len = 0;
	req->keep_alive = !fs.conn_close && (req->version_minor >= 1 || fs.conn_keep_alive);
	return i;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long http_target_path(const struct http_span *target, char *out, size_t cap)
{
	const char *p = target->p, *end = target->p + target->len;

	/* absolute-form (RFC 9112 §3.2.2): a server must accept it; the
	 * authority is this server whatever it says (there is one site) */
	int absolute = 0;
	if (end - p >= 7 && strncasecmp(p, "http://", 7) == 0)
		p += 7, absolute = 1;
	else if (end - p >= 8 && strncasecmp(p, "https://", 8) == 0)
		p += 8, absolute = 1;
	else if (p == end || *p != '/')
		return -1;
	if (absolute) {
		while (p < end && *p != '/' && *p != '?' && *p != '#')
			p++;
		if (p == end || *p != '/') {
			if (cap < 2)
				return -2;
			out[0] = '/';
			out[1] = '\0';
			return 1;
		}
	}

	size_t n = 0;
	while (p < end && *p != '?' && *p != '#') {
		char c = *p++;
		if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f)
			return -1;  /* the parser lets none through; callers may not be it */
		if (c == '%') {
			if (end - p < 2)
				return -1;
			int hi = hex_value(p[0]), lo = hex_value(p[1]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				return -1;
			p += 2;
		}
		if (n + 1 >= cap)
			return -2;
		out[n++] = c;
	}
	out[n] = '\0';

	/* No "." or ".." segment, however it was spelled. */
	for (size_t s = 0; s < n; s++) {
		if (out[s] != '/')
			continue;
		size_t e = s + 1;
		while (e < n && out[e] != '/')
			e++;
		size_t seg = e - s - 1;
		if ((seg == 1 && out[s + 1] == '.') || (seg == 2 && out[s + 1] == '.' && out[s + 2] == '.'))
			return -1;
	}
	return (long)n;
}
