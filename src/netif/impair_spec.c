/*
 * Parser of impair specs ("loss=0.02,rx:delay=1ms,seed=7"; grammar in
 * include/usnet/netif_wrap.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impair_spec.h"
#include "netif_internal.h"

static int parse_prob(const char *v, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || errno || !isfinite(x))
		return -1;
	if (*end == '%') {
		x /= 100.0;
		end++;
	}
	if (*end || x < 0.0 || x > 1.0)
		return -1;
	*out = x;
	return 0;
}

static int parse_duration_ns(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || errno || !isfinite(x) || x < 0)
		return -1;
	double mul;
	if (!*end || !strcmp(end, "ms"))
		mul = 1e6;
	else if (!strcmp(end, "us"))
		mul = 1e3;
	else if (!strcmp(end, "ns"))
		mul = 1;
	else if (!strcmp(end, "s"))
		mul = 1e9;
	else
		return -1;
	x *= mul;
	if (x > 60e9) /* a minute is far beyond any test's patience */
		return -1;
	*out = (uint64_t)x;
	return 0;
}

int impair_spec_parse(const char *spec, struct impair_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->seed = 1;
	if (!spec || !spec[0])
		return netif_err(err, errlen, EINVAL, "impair: empty spec (want e.g. loss=0.02,seed=7)");
	const char *p = spec;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char item[128];
		if (n == 0 || n >= sizeof item)
			return netif_err(err, errlen, EINVAL, "impair: %s item in spec '%s'",
					 n ? "overlong" : "empty", spec);
		memcpy(item, p, n);
		item[n] = 0;
		char orig[128];
		memcpy(orig, item, n + 1);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return netif_err(err, errlen, EINVAL, "impair: trailing ',' in spec '%s'", spec);
		}

		char *key = item;
		int dirs = 3; /* bit 0: rx, bit 1: tx */
		char *colon = strchr(item, ':');
		if (colon) {
			*colon = 0;
			if (!strcmp(item, "rx"))
				dirs = 1;
			else if (!strcmp(item, "tx"))
				dirs = 2;
			else
				return netif_err(err, errlen, EINVAL,
						 "impair: direction '%s' is not rx or tx", item);
			key = colon + 1;
		}
		char *eq = strchr(key, '=');
		if (!eq || eq == key || !eq[1])
			return netif_err(err, errlen, EINVAL, "impair: '%s' is not KEY=VALUE", orig);
		*eq = 0;
		const char *val = eq + 1;

		if (!strcmp(key, "seed")) {
			if (dirs != 3)
				return netif_err(err, errlen, EINVAL, "impair: seed applies to both directions");
			char *e;
			errno = 0;
			unsigned long long s = strtoull(val, &e, 0);
			if (*e || errno || val[0] == '-')
				return netif_err(err, errlen, EINVAL, "impair: seed=%s is not a number", val);
			out->seed = s;
			continue;
		}
		for (int d = 0; d < 2; d++) {
			if (!(dirs & (1 << d)))
				continue;
			struct impair_dir_spec *ds = &out->dir[d];
			int bad;
			if (!strcmp(key, "loss"))
				bad = parse_prob(val, &ds->loss);
			else if (!strcmp(key, "reorder"))
				bad = parse_prob(val, &ds->reorder);
			else if (!strcmp(key, "dup"))
				bad = parse_prob(val, &ds->dup);
			else if (!strcmp(key, "corrupt"))
				bad = parse_prob(val, &ds->corrupt);
			else if (!strcmp(key, "delay"))
				bad = parse_duration_ns(val, &ds->delay_ns);
			else
				return netif_err(err, errlen, EINVAL,
						 "impair: unknown key '%s' (known: loss reorder dup corrupt delay seed)", key);
			if (bad && !strcmp(key, "delay"))
				return netif_err(err, errlen, EINVAL,
						 "impair: delay=%s is not a duration like 500us, 1ms, 0.1s (at most 60s)", val);
			if (bad)
				return netif_err(err, errlen, EINVAL,
						 "impair: %s=%s is not a probability from 0 to 1 (or 0%%..100%%)", key, val);
		}
	}
	return 0;
}
