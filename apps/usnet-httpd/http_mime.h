/*
 * Content types by file name extension: the media types a browser needs to
 * render or run what a static site holds (RFC 9110 §8.3; IANA registry).
 */
#ifndef HTTP_MIME_H
#define HTTP_MIME_H

/* The Content-Type value for a file named `name` (its extension, compared
 * without regard to case); application/octet-stream when unknown. */
const char *http_mime_type(const char *name);

#endif /* HTTP_MIME_H */
