/*
 * HTTP-date formatting and parsing (see http_date.h).  Days are counted with
 * the proleptic Gregorian calendar arithmetic below rather than timegm()/
 * gmtime_r(), so the result does not depend on the process's time zone or
 * locale and no libc state is touched per request.
 */
#include "http_date.h"

#include <string.h>

static const char day_names[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char month_names[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char *const long_day_names[7] = { "Sunday", "Monday", "Tuesday", "Wednesday",
					       "Thursday", "Friday", "Saturday" };

/* Days since 1970-01-01 of a civil date (month 1-12). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

void http_date_format(time_t t, char out[HTTP_DATE_LEN + 1])
{
	int64_t secs = (int64_t)t;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;
	unsigned wday = (unsigned)(((days % 7) + 11) % 7);  /* 1970-01-01 was a Thursday */
	memcpy(out, day_names[wday], 3);
	memcpy(out + 3, ", ", 2);
	put2(out + 5, d);
	out[7] = ' ';
	memcpy(out + 8, month_names[m - 1], 3);
	out[11] = ' ';
	put2(out + 12, (unsigned)(y / 100));
	put2(out + 14, (unsigned)(y % 100));
	out[16] = ' ';
	put2(out + 17, (unsigned)(rem / 3600));
	out[19] = ':';
	put2(out + 20, (unsigned)(rem / 60 % 60));
	out[22] = ':';
	put2(out + 23, (unsigned)(rem % 60));
	memcpy(out + 25, " GMT", 4);
	out[HTTP_DATE_LEN] = '\0';
}

/* A small cursor over the field value. */
struct cursor {
	const char *p, *end;
};

static int take_lit(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

/* Exactly `digits` decimal digits (or, with lead_space, a space then one
 * digit: asctime's day of month). */
static int take_num(struct cursor *c, unsigned digits, int lead_space, unsigned *v)
{
	if ((size_t)(c->end - c->p) < digits)
		return -1;
	unsigned n = 0;
	for (unsigned i = 0; i < digits; i++) {
		char ch = c->p[i];
		if (i == 0 && lead_space && ch == ' ')
			continue;
		if (ch < '0' || ch > '9')
			return -1;
		n = n * 10 + (unsigned)(ch - '0');
	}
	c->p += digits;
	*v = n;
	return 0;
}

static int take_month(struct cursor *c, unsigned *m)
{
	if (c->end - c->p < 3)
		return -1;
	for (unsigned i = 0; i < 12; i++)
		if (memcmp(c->p, month_names[i], 3) == 0) {
			c->p += 3;
			*m = i + 1;
			return 0;
		}
	return -1;
}

static int take_time(struct cursor *c, unsigned *hh, unsigned *mm, unsigned *ss)
{
	if (take_num(c, 2, 0, hh) || take_lit(c, ":") || take_num(c, 2, 0, mm) ||
	    take_lit(c, ":") || take_num(c, 2, 0, ss))
		return -1;
	return 0;
}

static int make_time(int64_t y, unsigned m, unsigned d, unsigned hh, unsigned mm, unsigned ss,
		     time_t *t)
{
	static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || hh > 23 || mm > 59 || ss > 60)
		return -1;
	*t = (time_t)(days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss);
	return 0;
}

int http_date_parse(const char *s, size_t len, time_t *t)
{
	struct cursor c = { s, s + len };
	unsigned d, m, y, hh, mm, ss;

	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	for (unsigned i = 0; i < 7; i++) {
		c.p = s;
		if (take_lit(&c, day_names[i]) || take_lit(&c, ", "))
			continue;
		if (take_num(&c, 2, 0, &d) || take_lit(&c, " ") || take_month(&c, &m) ||
		    take_lit(&c, " ") || take_num(&c, 4, 0, &y) || take_lit(&c, " ") ||
		    take_time(&c, &hh, &mm, &ss) || take_lit(&c, " GMT") || c.p != c.end)
			return -1;
		return make_time(y, m, d, hh, mm, ss, t);
	}
	/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years are read
	 * as the nearest such year not more than 50 years ahead (RFC 9110),
	 * which for any date this server meets means 19xx for 70-99. */
	for (unsigned i = 0; i < 7; i++) {
		c.p = s;
		if (take_lit(&c, long_day_names[i]) || take_lit(&c, ", "))
			continue;
		if (take_num(&c, 2, 0, &d) || take_lit(&c, "-") || take_month(&c, &m) ||
		    take_lit(&c, "-") || take_num(&c, 2, 0, &y) || take_lit(&c, " ") ||
		    take_time(&c, &hh, &mm, &ss) || take_lit(&c, " GMT") || c.p != c.end)
			return -1;
		return make_time(y >= 70 ? 1900 + y : 2000 + y, m, d, hh, mm, ss, t);
	}
	/* asctime: "Sun Nov  6 08:49:37 1994" */
	for (unsigned i = 0; i < 7; i++) {
		c.p = s;
		if (take_lit(&c, day_names[i]) || take_lit(&c, " "))
			continue;
		if (take_month(&c, &m) || take_lit(&c, " ") || take_num(&c, 2, 1, &d) ||
		    take_lit(&c, " ") || take_time(&c, &hh, &mm, &ss) || take_lit(&c, " ") ||
		    take_num(&c, 4, 0, &y) || c.p != c.end)
			return -1;
		return make_time(y, m, d, hh, mm, ss, t);
	}
	return -1;
}

void http_clock_tick(struct http_clock *c)
{
	time_t now = time(NULL);
	if (now == c->sec && c->len)
		return;
	char date[HTTP_DATE_LEN + 1];
	http_date_format(now, date);
	memcpy(c->line, "Date: ", 6);
	memcpy(c->line + 6, date, HTTP_DATE_LEN);
	memcpy(c->line + 6 + HTTP_DATE_LEN, "\r\n", 2);
	c->len = 6 + HTTP_DATE_LEN + 2;
	c->sec = now;
}
