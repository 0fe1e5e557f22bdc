/*
 * Zipfian ranks by the method of Gray et al. ("Quickly generating
 * billion-record synthetic databases", SIGMOD 1994), the generator YCSB and
 * the memcached benchmarks use: one pass over n to compute zeta(n), then
 * O(1) per sample.
 */
#include <math.h>

#include "bench.h"

static double zeta(uint64_t n, double theta)
{
	double sum = 0;
	for (uint64_t i = 1; i <= n; i++)
		sum += 1.0 / pow((double)i, theta);
	return sum;
}

void bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta)
{
	z->n = n;
	z->theta = theta;
	z->alpha = 1.0 / (1.0 - theta);
	z->zetan = zeta(n, theta);
	double zeta2 = zeta(2, theta);
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan);
	z->half_pow_theta = 1.0 + pow(0.5, theta);
}

uint64_t bench_zipf_next(const struct bench_zipf *z, double u)
{
	double uz = u * z->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow_theta)
		return 1;
	uint64_t r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	return r >= z->n ? z->n - 1 : r;
}
