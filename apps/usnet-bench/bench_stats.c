/*
 * Latency samples: every request's round trip is kept, and the percentiles
 * come from the sorted samples (not from a histogram estimate).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		uint64_t *p = realloc(s->ns, cap * sizeof *p);
		if (!p)
			return;  /* out of memory: this sample is lost, not the run */
		s->ns = p;
		s->cap = cap;
	}
	s->ns[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The p-quantile of sorted v[0..n): the smallest sample with at least p of
 * all samples at or below it. */
static double quantile_us(const uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p * (double)n);
	if ((double)k < p * (double)n)
		k++;
	if (k == 0)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

void bench_report(const char *what, struct bench_samples *parts, int nparts, double seconds,
		  uint64_t errors)
{
	size_t total = 0;
	for (int i = 0; i < nparts; i++)
		total += parts[i].n;
	uint64_t *all = malloc((total ? total : 1) * sizeof *all);
	if (!all) {
		fprintf(stderr, "usnet-bench: out of memory for %zu samples\n", total);
		return;
	}
	size_t k = 0;
	for (int i = 0; i < nparts; i++) {
		memcpy(all + k, parts[i].ns, parts[i].n * sizeof *all);
		k += parts[i].n;
	}
	qsort(all, total, sizeof *all, cmp_u64);
	double rate = seconds > 0 ? (double)total / seconds : 0;
	double p50 = quantile_us(all, total, 0.50), p90 = quantile_us(all, total, 0.90);
	double p99 = quantile_us(all, total, 0.99), p999 = quantile_us(all, total, 0.999);
	printf("%s: %zu in %.2f s = %.0f/s, errors %" PRIu64 "\n", what, total, seconds, rate, errors);
	printf("latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", p50, p90, p99, p999,
	       total ? (double)all[total - 1] / 1000.0 : 0.0);
	/* One line for scripts. */
	printf("RESULT rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f count=%zu errors=%" PRIu64 "\n",
	       rate, p50, p90, p99, p999, total, errors);
	fflush(stdout);
	free(all);
}
