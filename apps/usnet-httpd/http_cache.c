/*
 * The response cache (see http_cache.h): loading the root, writing each
 * file's heads, and the path → entry index.
 */
#include "http_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_mime.h"

/* Directory levels followed below the root: deeper trees are refused rather
 * than walked without bound. */
#define CACHE_DEPTH_MAX 32

void http_cache_init(struct http_cache *c, uint64_t body_limit)
{
	memset(c, 0, sizeof *c);
	c->body_limit = body_limit;
}

static int head_set(struct http_head *h, const char *text, int len)
{
	if (len < 0)
		return -1;
	h->text = malloc((size_t)len + 1);
	if (!h->text)
		return -1;
	memcpy(h->text, text, (size_t)len + 1);
	h->len = (size_t)len;
	return 0;
}

static void file_free(struct http_file *f)
{
	if (!f)
		return;
	free((char *)f->body);
	free(f->head_200.text);
	free(f->head_206.text);
	free(f->head_304.text);
	free(f);
}

/* Write the file's three heads.  Their order of fields is the same in all
 * of them, which keeps a 206 or 304 recognisably the 200's sibling. */
static int file_write_heads(struct http_file *f, const char *url_path)
{
	char last_modified[HTTP_DATE_LEN + 1], buf[1024];
	http_date_format(f->mtime, last_modified);
	const char *type = http_mime_type(url_path);
	int n;

	n = snprintf(buf, sizeof buf,
		     "HTTP/1.1 200 OK\r\n" HTTP_SERVER_FIELD
		     "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n"
		     "Last-Modified: %s\r\nETag: %s\r\nAccept-Ranges: bytes\r\n",
		     type, f->size, last_modified, f->etag);
	if (n >= (int)sizeof buf || head_set(&f->head_200, buf, n) < 0)
		return -1;
	n = snprintf(buf, sizeof buf,
		     "HTTP/1.1 206 Partial Content\r\n" HTTP_SERVER_FIELD
		     "Content-Type: %s\r\nLast-Modified: %s\r\nETag: %s\r\nAccept-Ranges: bytes\r\n",
		     type, last_modified, f->etag);
	if (n >= (int)sizeof buf || head_set(&f->head_206, buf, n) < 0)
		return -1;
	n = snprintf(buf, sizeof buf,
		     "HTTP/1.1 304 Not Modified\r\n" HTTP_SERVER_FIELD
		     "Last-Modified: %s\r\nETag: %s\r\n", last_modified, f->etag);
	if (n >= (int)sizeof buf || head_set(&f->head_304, buf, n) < 0)
		return -1;
	return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = n;
	return 0;
}

static int add_entry(struct http_cache *c, const struct http_entry *e)
{
	if (grow((void **)&c->entries, &c->cap_entries, c->nentries + 1, sizeof *e) < 0)
		return -1;
	c->entries[c->nentries++] = *e;
	return 0;
}

int http_cache_add_file(struct http_cache *c, const char *url_path, char *body, uint64_t size,
			time_t mtime, uint64_t mtime_ns, char *err, size_t errlen)
{
	struct http_file *f = NULL;
	struct http_entry e;
	memset(&e, 0, sizeof e);

	if (url_path[0] != '/') {
		snprintf(err, errlen, "%s: a URL path starts with /", url_path);
		goto fail;
	}
	if (size > c->body_limit - c->body_bytes || c->body_bytes > c->body_limit) {
		snprintf(err, errlen, "%s: %" PRIu64 " bytes would pass the %" PRIu64 " MiB limit on file contents",
			 url_path, size, c->body_limit >> 20);
		goto fail;
	}
	f = calloc(1, sizeof *f);
	e.path = strdup(url_path);
	if (!f || !e.path || grow((void **)&c->files, &c->cap_files, c->nfiles + 1, sizeof *c->files) < 0) {
		snprintf(err, errlen, "%s: out of memory", url_path);
		goto fail;
	}
	f->body = body;
	body = NULL;
	f->size = size;
	f->mtime = mtime;
	/* size and modification time in nanoseconds: what changes when the
	 * file does, as nginx's and Apache's validators */
	f->etag_len = (size_t)snprintf(f->etag, sizeof f->etag, "\"%" PRIx64 "-%" PRIx64 "\"",
				       mtime_ns, size);
	if (file_write_heads(f, url_path) < 0) {
		snprintf(err, errlen, "%s: out of memory", url_path);
		goto fail;
	}
	e.path_len = strlen(e.path);
	e.kind = HTTP_ENTRY_FILE;
	e.file = f;
	if (add_entry(c, &e) < 0) {
		snprintf(err, errlen, "%s: out of memory", url_path);
		goto fail;
	}
	c->files[c->nfiles++] = f;
	c->body_bytes += size;
	return 0;
fail:
	free(body);
	free(e.path);
	file_free(f);
	return -1;
}

/* ---- walking the root -------------------------------------------------------- */

struct walk {
	struct http_cache *c;
	char root_real[PATH_MAX];   /* the root with its links resolved */
	char *err;
	size_t errlen;
};

/* Read the open file fd (st from fstat) into memory and add it. */
static int load_file(struct walk *w, int fd, const struct stat *st, const char *url_path)
{
	uint64_t size = (uint64_t)st->st_size;
	char *body = NULL;
	if (size > w->c->body_limit - w->c->body_bytes) {
		snprintf(w->err, w->errlen, "%s: %" PRIu64 " bytes would pass the %" PRIu64 " MiB limit on file contents",
			 url_path, size, w->c->body_limit >> 20);
		return -1;
	}
	if (size) {
		body = malloc(size);
		if (!body) {
			snprintf(w->err, w->errlen, "%s: cannot hold %" PRIu64 " bytes: out of memory", url_path, size);
			return -1;
		}
		uint64_t got = 0;
		while (got < size) {
			ssize_t n = read(fd, body + got, size - got > (1u << 30) ? (1u << 30) : size - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				snprintf(w->err, w->errlen, "%s: read: %s", url_path,
					 n < 0 ? strerror(errno) : "the file shrank while it was read");
				free(body);
				return -1;
			}
			got += (uint64_t)n;
		}
	}
	uint64_t mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
	return http_cache_add_file(w->c, url_path, body, size, st->st_mtim.tv_sec, mtime_ns, w->err, w->errlen);
}

/* A symbolic link is followed only to a regular file inside the root. */
static int link_target_inside(struct walk *w, int dir_fd, const char *name, const char *url_path)
{
	char proc[64], dir_path[PATH_MAX], target[PATH_MAX], real[PATH_MAX];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", dir_fd);
	ssize_t n = readlink(proc, dir_path, sizeof dir_path - 1);
	if (n < 0)
		return 0;
	dir_path[n] = '\0';
	if ((size_t)snprintf(target, sizeof target, "%s/%s", dir_path, name) >= sizeof target)
		return 0;
	if (!realpath(target, real)) {
		fprintf(stderr, "usnet-httpd: skipping %s: its link does not resolve: %s\n", url_path, strerror(errno));
		return 0;
	}
	size_t rl = strlen(w->root_real);
	if (strncmp(real, w->root_real, rl) != 0 || (real[rl] != '/' && strcmp(w->root_real, "/") != 0)) {
		fprintf(stderr, "usnet-httpd: skipping %s: it links outside the root (%s)\n", url_path, real);
		return 0;
	}
	return 1;
}

static int walk_dir(struct walk *w, int dir_fd, char *url_path, size_t url_len, unsigned depth)
{
	DIR *d = fdopendir(dir_fd);
	if (!d) {
		snprintf(w->err, w->errlen, "%s: fdopendir: %s", url_path, strerror(errno));
		close(dir_fd);
		return -1;
	}
	int rc = 0;
	while (rc == 0) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				url_path[url_len] = '\0';
				snprintf(w->err, w->errlen, "%s: readdir: %s", url_path, strerror(errno));
				rc = -1;
			}
			break;
		}
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		size_t nl = strlen(name);
		if (url_len + nl + 2 > PATH_MAX) {
			fprintf(stderr, "usnet-httpd: skipping %s%s: path too long\n", url_path, name);
			continue;
		}
		memcpy(url_path + url_len, name, nl + 1);
		struct stat st;
		if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(w->err, w->errlen, "%s: stat: %s", url_path, strerror(errno));
			rc = -1;
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			if (!link_target_inside(w, dir_fd, name, url_path))
				continue;
			if (fstatat(dir_fd, name, &st, 0) < 0 || !S_ISREG(st.st_mode)) {
				fprintf(stderr, "usnet-httpd: skipping %s: links to something not a regular file\n", url_path);
				continue;
			}
		}
		if (S_ISDIR(st.st_mode)) {
			if (depth == CACHE_DEPTH_MAX) {
				snprintf(w->err, w->errlen, "%s: directories nest deeper than %d levels", url_path, CACHE_DEPTH_MAX);
				rc = -1;
				break;
			}
			int sub = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 && errno == EACCES) {
				fprintf(stderr, "usnet-httpd: skipping %s: %s\n", url_path, strerror(errno));
				continue;
			}
			if (sub < 0) {
				snprintf(w->err, w->errlen, "%s: open: %s", url_path, strerror(errno));
				rc = -1;
				break;
			}
			url_path[url_len + nl] = '/';
			url_path[url_len + nl + 1] = '\0';
			rc = walk_dir(w, sub, url_path, url_len + nl + 1, depth + 1);
			url_path[url_len + nl] = '\0';
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "usnet-httpd: skipping %s: not a regular file\n", url_path);
			continue;
		}
		int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == EACCES) {
			fprintf(stderr, "usnet-httpd: skipping %s: %s\n", url_path, strerror(errno));
			continue;
		}
		if (fd < 0) {
			snprintf(w->err, w->errlen, "%s: open: %s", url_path, strerror(errno));
			rc = -1;
			break;
		}
		if (fstat(fd, &st) < 0) {
			snprintf(w->err, w->errlen, "%s: stat: %s", url_path, strerror(errno));
			rc = -1;
		} else {
			rc = load_file(w, fd, &st, url_path);
		}
		close(fd);
	}
	closedir(d);
	return rc;
}

int http_cache_load_dir(struct http_cache *c, const char *root, char *err, size_t errlen)
{
	struct walk *w = calloc(1, sizeof *w);
	char *url_path = malloc(PATH_MAX);
	int rc = -1;
	if (!w || !url_path) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	w->c = c;
	w->err = err;
	w->errlen = errlen;
	if (!realpath(root, w->root_real)) {
		snprintf(err, errlen, "--root %s: %s", root, strerror(errno));
		goto out;
	}
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "--root %s: %s", root, strerror(errno));
		goto out;
	}
	strcpy(url_path, "/");
	rc = walk_dir(w, fd, url_path, 1, 0);
out:
	free(url_path);
	free(w);
	return rc;
}

/* ---- the index -------------------------------------------------------------- */

/* FNV-1a: short keys, one pass, good enough spread for a power-of-two table. */
static uint64_t path_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

const struct http_entry *http_cache_lookup(const struct http_cache *c, const char *path, size_t len)
{
	if (!c->index)
		return NULL;
	for (size_t i = path_hash(path, len) & c->index_mask;; i = (i + 1) & c->index_mask) {
		uint32_t slot = c->index[i];
		if (!slot)
			return NULL;
		const struct http_entry *e = &c->entries[slot - 1];
		if (e->path_len == len && memcmp(e->path, path, len) == 0)
			return e;
	}
}

static int index_insert(struct http_cache *c, size_t entry)
{
	const struct http_entry *e = &c->entries[entry];
	for (size_t i = path_hash(e->path, e->path_len) & c->index_mask;; i = (i + 1) & c->index_mask) {
		uint32_t slot = c->index[i];
		if (!slot) {
			c->index[i] = (uint32_t)entry + 1;
			return 0;
		}
		const struct http_entry *o = &c->entries[slot - 1];
		if (o->path_len == e->path_len && memcmp(o->path, e->path, e->path_len) == 0)
			return -1;
	}
}

/* "/dir/index.html" also answers "/dir/", and "/dir" redirects there. */
static int add_index_names(struct http_cache *c, char *err, size_t errlen)
{
	static const char index_name[] = "index.html";
	const size_t il = sizeof index_name - 1;
	size_t files = c->nentries;
	for (size_t i = 0; i < files; i++) {
		const struct http_entry *f = &c->entries[i];
		if (f->kind != HTTP_ENTRY_FILE || f->path_len < il + 1 ||
		    memcmp(f->path + f->path_len - il, index_name, il) != 0 || f->path[f->path_len - il - 1] != '/')
			continue;
		struct http_entry dir, redirect;
		memset(&dir, 0, sizeof dir);
		memset(&redirect, 0, sizeof redirect);
		dir.path_len = f->path_len - il;
		dir.path = strndup(f->path, dir.path_len);
		dir.kind = HTTP_ENTRY_FILE;
		dir.file = f->file;
		if (!dir.path || add_entry(c, &dir) < 0) {
			free(dir.path);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		f = NULL;  /* entries may have moved */
		if (dir.path_len == 1)
			continue;  /* the root has no slash-less name */
		redirect.path_len = dir.path_len - 1;
		redirect.path = strndup(dir.path, redirect.path_len);
		redirect.kind = HTTP_ENTRY_REDIRECT;
		char buf[PATH_MAX * 3 + 256];
		int n = 0;
		if (redirect.path) {
			/* Location is a URI: escape what a path may not hold as is */
			n = snprintf(buf, sizeof buf, "HTTP/1.1 301 Moved Permanently\r\n" HTTP_SERVER_FIELD "Location: ");
			for (size_t k = 0; k < dir.path_len; k++) {
				unsigned char ch = (unsigned char)dir.path[k];
				if (ch <= 0x20 || ch >= 0x7f || ch == '%' || ch == '?' || ch == '#' || ch == '"')
					n += snprintf(buf + n, sizeof buf - (size_t)n, "%%%02X", ch);
				else
					buf[n++] = (char)ch;
			}
			n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
		}
		if (!redirect.path || head_set(&redirect.head_301, buf, n) < 0 || add_entry(c, &redirect) < 0) {
			free(redirect.path);
			free(redirect.head_301.text);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

int http_cache_finish(struct http_cache *c, char *err, size_t errlen)
{
	if (add_index_names(c, err, errlen) < 0)
		return -1;
	if (c->nentries >= UINT32_MAX / 2) {
		snprintf(err, errlen, "too many files (%zu)", c->nentries);
		return -1;
	}
	size_t slots = 16;
	while (slots < c->nentries * 2)
		slots *= 2;
	free(c->index);
	c->index = calloc(slots, sizeof *c->index);
	if (!c->index) {
		snprintf(err, errlen, "out of memory for an index of %zu entries", c->nentries);
		return -1;
	}
	c->index_mask = slots - 1;
	for (size_t i = 0; i < c->nentries; i++)
		if (index_insert(c, i) < 0) {
			snprintf(err, errlen, "%s: two files have this name", c->entries[i].path);
			return -1;
		}
	return 0;
}

void http_cache_destroy(struct http_cache *c)
{
	for (size_t i = 0; i < c->nentries; i++) {
		free(c->entries[i].path);
		free(c->entries[i].head_301.text);
	}
	for (size_t i = 0; i < c->nfiles; i++)
		file_free(c->files[i]);
	free(c->entries);
	free(c->files);
	free(c->index);
	memset(c, 0, sizeof *c);
}
