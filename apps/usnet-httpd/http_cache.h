/*
 * The response cache: every file under the document root, read into memory
 * at start-up with its response heads already written (Sandstorm's idea: a
 * static site's answers are known before anyone asks, so serving one is a
 * lookup and a send).  Built once by one thread, then only read, by every
 * thread, without locks.  Files changed on disk later are not seen: the
 * cache is a snapshot of the root taken at start-up.
 */
#ifndef HTTP_CACHE_H
#define HTTP_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http_date.h"

/* The Server field every response carries. */
#define HTTP_SERVER_FIELD "Server: usnet-httpd\r\n"

/* A head written in advance: the status line and fixed fields, up to (not
 * including) the per-response fields and the blank line. */
struct http_head {
	char *text;
	size_t len;
};

struct http_file {
	const char *body;        /* size bytes (NULL when empty), owned by the cache */
	uint64_t size;
	time_t mtime;            /* Last-Modified, whole seconds */
	char etag[48];           /* strong validator with its quotes */
	size_t etag_len;
	struct http_head head_200;  /* 200: type, length, validators, Accept-Ranges */
	struct http_head head_206;  /* 206: the same less the length (it varies) */
	struct http_head head_304;  /* 304: the validators only (RFC 9110 §15.4.5) */
};

enum http_entry_kind {
	HTTP_ENTRY_FILE,
	HTTP_ENTRY_REDIRECT,     /* a directory named without its slash: 301 to it */
};

struct http_entry {
	char *path;              /* the key: the decoded URL path, "/a/b.html" */
	size_t path_len;
	enum http_entry_kind kind;
	const struct http_file *file;   /* HTTP_ENTRY_FILE */
	struct http_head head_301;      /* HTTP_ENTRY_REDIRECT: with its Location */
};

struct http_cache {
	struct http_file **files;
	size_t nfiles, cap_files;
	struct http_entry *entries;
	size_t nentries, cap_entries;
	uint32_t *index;         /* open addressing: entry number + 1, 0 empty */
	size_t index_mask;
	uint64_t body_bytes;     /* file contents held */
	uint64_t body_limit;     /* refuse to hold more than this */
};

/* An empty cache that will hold at most body_limit bytes of file contents. */
void http_cache_init(struct http_cache *c, uint64_t body_limit);

/* Add a file served at url_path ("/" followed by its path under the root):
 * the cache takes body (malloc'd, or NULL when size is 0) and frees it with
 * itself, also on failure.  0, or -1 with a one-line reason in err. */
int http_cache_add_file(struct http_cache *c, const char *url_path, char *body, uint64_t size,
			time_t mtime, uint64_t mtime_ns, char *err, size_t errlen);

/* Add every regular file under root (recursively; symbolic links only to
 * regular files inside root; other kinds skipped with a line on stderr).
 * 0, or -1 with a one-line reason (carrying errno's text) in err. */
int http_cache_load_dir(struct http_cache *c, const char *root, char *err, size_t errlen);

/* Done adding: give each directory holding an index.html its "/dir/" name
 * and a redirect from "/dir", and build the lookup index.  0, or -1 with
 * the reason in err. */
int http_cache_finish(struct http_cache *c, char *err, size_t errlen);

/* The entry for a decoded URL path, or NULL. */
const struct http_entry *http_cache_lookup(const struct http_cache *c, const char *path, size_t len);

void http_cache_destroy(struct http_cache *c);

#endif /* HTTP_CACHE_H */
