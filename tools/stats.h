/* Summary statistics for the latency workbench's host tools (tools/probe.c, and tests/unit/test_stats.c).
 *
 * Percentiles use the nearest-rank method: for n samples sorted in ascending order and a percentile p in
 * [0, 100], the result is the sample of rank r = ceil(p / 100 * n), with r clamped to [1, n] (so p = 0 gives
 * the minimum and p = 100 the maximum). The result is always one of the samples, never an interpolation
 * between two. For 1..100: p50 = 50, p99 = 99, p99.9 = 100. p / 100 * n is rounded to the nearest integer
 * first when it lies within a relative 1e-9 of one, so that floating-point noise (0.99 * 100 = 98.999...)
 * cannot move the rank.
 *
 * Samples are doubles; NaN is rejected with -EINVAL. Functions return 0 or a negative errno. */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

struct stats_summary {
	size_t n;
	double min;
	double max;
	double mean;
};

/* Sorts v[0..n) in place, ascending. */
void stats_sort(double *v, size_t n);

/* The nearest rank (1-based) of percentile p among n samples; 0 if n == 0 or p is outside [0, 100]. */
size_t stats_rank(size_t n, double p);

/* Percentile p of the n samples in `sorted`, which must already be in ascending order. -EINVAL if n == 0 or
 * p is outside [0, 100]. */
int stats_percentile_sorted(const double *sorted, size_t n, double p, double *out);

/* Percentiles ps[0..nps) of v[0..n), in any order, computed on a sorted copy; v is left untouched. -EINVAL
 * for n == 0, a NaN sample or a p outside [0, 100]; -ENOMEM if the copy cannot be allocated. */
int stats_percentiles(const double *v, size_t n, const double *ps, size_t nps, double *out);

/* Count, minimum, maximum and arithmetic mean of v[0..n). -EINVAL for n == 0 or a NaN sample. */
int stats_summarize(const double *v, size_t n, struct stats_summary *s);

/* A histogram of fixed-width bins: bin i counts lo + i * width <= x < lo + (i + 1) * width. Samples below lo
 * are counted in `under`, samples at or above lo + nbins * width in `over`. */
struct stats_hist {
	double lo;
	double width;
	size_t nbins;
	uint64_t *bins;
	uint64_t under;
	uint64_t over;
	uint64_t count;
};

/* -EINVAL unless width > 0 and 0 < nbins <= 1e7; -ENOMEM if the bins cannot be allocated. */
int stats_hist_init(struct stats_hist *h, double lo, double width, size_t nbins);
/* NaN samples are ignored. */
void stats_hist_add(struct stats_hist *h, double x);
void stats_hist_free(struct stats_hist *h);

#endif
