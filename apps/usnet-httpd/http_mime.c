/*
 * The extension → media type table (see http_mime.h).  Text types carry
 * charset=utf-8: without it browsers guess, and a guess is wrong for UTF-8
 * pages that do not declare it themselves.
 */
#include "http_mime.h"

#include <stddef.h>
#include <strings.h>
#include <string.h>

struct mime_entry {
	const char *ext;
	const char *type;
};

static const struct mime_entry mime_table[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "md", "text/markdown; charset=utf-8" },
	{ "csv", "text/csv; charset=utf-8" },
	{ "xml", "application/xml" },
	{ "rss", "application/rss+xml" },
	{ "atom", "application/atom+xml" },
	{ "xhtml", "application/xhtml+xml" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "avif", "image/avif" },
	{ "ico", "image/vnd.microsoft.icon" },
	{ "bmp", "image/bmp" },
	{ "tif", "image/tiff" },
	{ "tiff", "image/tiff" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "ttf", "font/ttf" },
	{ "otf", "font/otf" },
	{ "wasm", "application/wasm" },
	{ "pdf", "application/pdf" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "tar", "application/x-tar" },
	{ "xz", "application/x-xz" },
	{ "zst", "application/zstd" },
	{ "mp3", "audio/mpeg" },
	{ "ogg", "audio/ogg" },
	{ "oga", "audio/ogg" },
	{ "wav", "audio/wav" },
	{ "flac", "audio/flac" },
	{ "mp4", "video/mp4" },
	{ "m4v", "video/mp4" },
	{ "webm", "video/webm" },
	{ "ogv", "video/ogg" },
	{ "mov", "video/quicktime" },
};

const char *http_mime_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *slash = strrchr(name, '/');
	if (dot && (!slash || dot > slash) && dot[1]) {
		for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
			if (strcasecmp(dot + 1, mime_table[i].ext) == 0)
				return mime_table[i].type;
	}
	return "application/octet-stream";
}
