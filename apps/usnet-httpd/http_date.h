/*
 * HTTP-dates (RFC 9110 §5.6.7): formatting the preferred IMF-fixdate form
 * and parsing all three forms a recipient must accept.  No locale, no
 * time zone: HTTP-dates are always GMT.
 */
#ifndef HTTP_DATE_H
#define HTTP_DATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". */
#define HTTP_DATE_LEN 29

/* Write t as an IMF-fixdate into out (HTTP_DATE_LEN + 1 bytes, NUL ended). */
void http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/* Parse an IMF-fixdate, an RFC 850 date or an asctime() date (s, len bytes,
 * not NUL ended).  0 and *t set, or -1 when it is none of them (a recipient
 * then ignores the field). */
int http_date_parse(const char *s, size_t len, time_t *t);

/* The "Date: ...\r\n" line a thread puts in its responses, rebuilt when the
 * second changes (one per thread: no locking). */
struct http_clock {
	time_t sec;
	char line[HTTP_DATE_LEN + 9];  /* "Date: " + date + "\r\n" */
	size_t len;
};

/* Bring the line up to date with the wall clock. */
void http_clock_tick(struct http_clock *c);

#endif /* HTTP_DATE_H */
