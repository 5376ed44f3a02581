/* Percentiles (nearest rank), mean, min, max and fixed-width histograms; see stats.h for the definitions. */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STATS_HIST_MAX_BINS 10000000u

static int stats_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void stats_sort(double *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), stats_cmp_double);
}

size_t stats_rank(size_t n, double p)
{
	if (n == 0 || !(p >= 0.0 && p <= 100.0))
		return 0;
	double x = p / 100.0 * (double)n;
	double nearest = nearbyint(x);
	double r = fabs(x - nearest) <= 1e-9 * fmax(1.0, x) ? nearest : ceil(x);
	if (r < 1.0)
		return 1;
	if (r > (double)n)
		return n;
	return (size_t)r;
}

int stats_percentile_sorted(const double *sorted, size_t n, double p, double *out)
{
	size_t r = stats_rank(n, p);
	if (r == 0)
		return -EINVAL;
	*out = sorted[r - 1];
	return 0;
}

static int stats_has_nan(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (isnan(v[i]))
			return 1;
	return 0;
}

int stats_percentiles(const double *v, size_t n, const double *ps, size_t nps, double *out)
{
	if (n == 0 || stats_has_nan(v, n))
		return -EINVAL;
	for (size_t i = 0; i < nps; i++)
		if (stats_rank(n, ps[i]) == 0)
			return -EINVAL;
	double *copy = malloc(n * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, v, n * sizeof(*copy));
	stats_sort(copy, n);
	for (size_t i = 0; i < nps; i++)
		stats_percentile_sorted(copy, n, ps[i], &out[i]);
	free(copy);
	return 0;
}

int stats_summarize(const double *v, size_t n, struct stats_summary *s)
{
	if (n == 0 || stats_has_nan(v, n))
		return -EINVAL;
	/* long double keeps the sum of a few million nanosecond RTTs exact enough that the mean does not drift. */
	long double sum = 0;
	double lo = v[0], hi = v[0];
	for (size_t i = 0; i < n; i++) {
		sum += v[i];
		if (v[i] < lo)
			lo = v[i];
		if (v[i] > hi)
			hi = v[i];
	}
	s->n = n;
	s->min = lo;
	s->max = hi;
	s->mean = (double)(sum / n);
	return 0;
}

int stats_hist_init(struct stats_hist *h, double lo, double width, size_t nbins)
{
	memset(h, 0, sizeof(*h));
	if (!(width > 0.0) || !isfinite(lo) || !isfinite(width) || nbins == 0 || nbins > STATS_HIST_MAX_BINS)
		return -EINVAL;
	h->bins = calloc(nbins, sizeof(*h->bins));
	if (!h->bins)
		return -ENOMEM;
	h->lo = lo;
	h->width = width;
	h->nbins = nbins;
	return 0;
}

void stats_hist_add(struct stats_hist *h, double x)
{
	if (isnan(x))
		return;
	h->count++;
	if (x < h->lo) {
		h->under++;
		return;
	}
	double i = floor((x - h->lo) / h->width);
	if (i >= (double)h->nbins)
		h->over++;
	else
		h->bins[(size_t)i]++;
}

void stats_hist_free(struct stats_hist *h)
{
	free(h->bins);
	h->bins = NULL;
	h->nbins = 0;
}
