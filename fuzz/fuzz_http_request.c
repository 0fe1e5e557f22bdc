/*
 * libFuzzer target: usnet-httpd's request parser and responder.  An input
 * is a byte stream as a connection would receive it; it is cut into request
 * heads the way the server does (pipelined, body bytes skipped), each one
 * answered from a small cache of in-memory files, and every answer checked:
 * its head a well-formed HTTP/1.1 head ending in one blank line, its body
 * inside the file it came from (or a constant), its Content-Length and
 * Content-Range consistent with the body.  A violation aborts.  The same
 * input is then offered to the date and path decoders on their own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_cache.h"
#include "http_date.h"
#include "http_request.h"
#include "http_respond.h"

static struct http_cache cache;
static struct http_clock fixed_clock;

static void add(const char *path, const char *text, size_t len)
{
	char err[256];
	char *body = NULL;
	if (len) {
		body = malloc(len);
		if (!body)
			abort();
		memcpy(body, text, len);
	}
	if (http_cache_add_file(&cache, path, body, len, 1600000000, 1600000000000000000ull, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz_http_request: %s\n", err);
		abort();
	}
}

static void setup(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	http_cache_init(&cache, 1 << 20);
	add("/index.html", "<p>index</p>\n", 13);
	add("/a.bin", "0123456789abcdefghijklmnopqrstuvwxyz", 36);
	add("/empty", "", 0);
	add("/d/index.html", "d\n", 2);
	add("/sp ace", "x", 1);
	char err[256];
	if (http_cache_finish(&cache, err, sizeof err) < 0)
		abort();
	/* a fixed date: the answers depend only on the input */
	memcpy(fixed_clock.line, "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n", 37);
	fixed_clock.len = 37;
	fixed_clock.sec = 1;
}

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "fuzz_http_request: %s\n", #cond); abort(); } } while (0)

/* The value of field `name` in head (text, len), or NULL. */
static const char *field(const char *head, size_t len, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (const char *p = head; p < head + len;) {
		const char *e = memchr(p, '\n', (size_t)(head + len - p));
		if (!e)
			break;
		if ((size_t)(e - p) > nl + 2 && memcmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
			*vlen = (size_t)(e - 1 - (p + nl + 2));
			return p + nl + 2;
		}
		p = e + 1;
	}
	return NULL;
}

static int body_inside_cache(const char *body, size_t len)
{
	for (size_t i = 0; i < cache.nfiles; i++) {
		const struct http_file *f = cache.files[i];
		if (f->body && body >= f->body && body + len <= f->body + f->size)
			return 1;
	}
	return 0;
}

static void check_response(const struct http_request *req, const struct http_response *r)
{
	char head[2048];
	CHECK(r->head && r->head_len && r->dyn_len && r->head_len + r->dyn_len < sizeof head);
	memcpy(head, r->head, r->head_len);
	memcpy(head + r->head_len, r->dyn, r->dyn_len);
	size_t len = r->head_len + r->dyn_len;

	/* status line, CRLF lines without bare CR/LF or NUL, one blank line at the end */
	CHECK(len > 13 && memcmp(head, "HTTP/1.1 ", 9) == 0);
	CHECK((unsigned)atoi(head + 9) == r->status && head[12] == ' ');
	CHECK(len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0);
	for (size_t i = 0; i + 4 < len; i++) {
		CHECK(head[i] != '\0');
		CHECK(head[i] != '\n' || head[i - 1] == '\r');
		CHECK(head[i] != '\r' || head[i + 1] == '\n');
		CHECK(!(head[i] == '\r' && head[i + 2] == '\r'));  /* no blank line before the end */
	}
	size_t vl;
	const char *date = field(head, len, "Date", &vl);
	CHECK(date && vl == HTTP_DATE_LEN);

	if (r->status == 304) {
		CHECK(r->body_len == 0);
		return;
	}
	const char *cl = field(head, len, "Content-Length", &vl);
	CHECK(cl);
	unsigned long long n = strtoull(cl, NULL, 10);
	if (req->method == HTTP_METHOD_HEAD || r->status == 301)
		CHECK(r->body_len == 0);
	else
		CHECK(n == r->body_len);
	if (r->body_len)
		CHECK(r->body);
	if (r->status == 200 || r->status == 206)
		CHECK(r->body_len == 0 || body_inside_cache(r->body, r->body_len));
	if (r->status == 206) {
		const char *cr = field(head, len, "Content-Range", &vl);
		unsigned long long a, b, total;
		CHECK(cr && sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &total) == 3);
		CHECK(a <= b && b < total && b - a + 1 == r->body_len);
	}
	if (req->error)
		CHECK(r->close);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	const char *p = (const char *)data;
	size_t used = 0;
	uint64_t discard = 0;

	/* the connection's loop (http_conn.c's conn_input), minus the I/O */
	while (used < size) {
		if (discard) {
			size_t n = size - used < discard ? size - used : (size_t)discard;
			used += n;
			discard -= n;
			continue;
		}
		struct http_request req;
		size_t n = http_request_parse(p + used, size - used, &req);
		if (n == 0) {
			/* unfinished: within the limits the connection can hold */
			CHECK(size - used < HTTP_HEAD_MAX);
			break;
		}
		CHECK(n <= size - used);
		static struct http_response r;
		http_respond(&cache, &req, &fixed_clock, &r);
		check_response(&req, &r);
		used += n;
		if (r.close)
			break;
		discard = req.content_length;
	}

	time_t t;
	if (http_date_parse(p, size, &t) == 0) {
		/* what parses must print back and parse again to the same time */
		char again[HTTP_DATE_LEN + 1];
		time_t t2;
		http_date_format(t, again);
		CHECK(t < 0 || t > 253402300799 || (http_date_parse(again, HTTP_DATE_LEN, &t2) == 0 && t2 == t));
	}
	char path[HTTP_TARGET_MAX + 1];
	struct http_span target = { p, size < HTTP_TARGET_MAX ? size : HTTP_TARGET_MAX };
	long n = http_target_path(&target, path, sizeof path);
	if (n >= 0) {
		CHECK((size_t)n == strlen(path) && path[0] == '/');
		CHECK(strstr(path, "/../") == NULL && strstr(path, "/./") == NULL);
	}
	return 0;
}
