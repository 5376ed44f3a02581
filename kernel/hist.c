#include "hist.h"

#include <stdio.h>
#include <string.h>

void hist_init(struct hist *h, const char *name)
{
	h->name = name;
	hist_reset(h);
}

void hist_reset(struct hist *h)
{
	h->count = h->sum = h->max = 0;
	h->min = UINT64_MAX;
	memset(h->bucket, 0, sizeof(h->bucket));
}

unsigned hist_bucket(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned lg = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	if (lg >= HIST_MAX_LOG2)
		return HIST_BUCKETS - 1;
	unsigned sub = (unsigned)(v >> (lg - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return HIST_SUB + (lg - HIST_SUB_BITS) * HIST_SUB + sub;
}

uint64_t hist_bucket_low(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned lg = (i - HIST_SUB) / HIST_SUB + HIST_SUB_BITS, sub = (i - HIST_SUB) % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub)) << (lg - HIST_SUB_BITS);
}

void hist_record(struct hist *h, uint64_t v)
{
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->bucket[hist_bucket(v)]++;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_low(i);
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}

size_t hist_format(const struct hist *h, char *buf, size_t len, int with_buckets)
{
	size_t used = 0;
	int k = snprintf(buf, len, "%s: count=%llu min=%llu p50=%llu p90=%llu p99=%llu p999=%llu max=%llu mean=%llu",
			 h->name, (unsigned long long)h->count, (unsigned long long)(h->count ? h->min : 0),
			 (unsigned long long)hist_quantile(h, 0.5), (unsigned long long)hist_quantile(h, 0.9),
			 (unsigned long long)hist_quantile(h, 0.99), (unsigned long long)hist_quantile(h, 0.999),
			 (unsigned long long)h->max, (unsigned long long)(h->count ? h->sum / h->count : 0));
	if (k > 0)
		used = (size_t)k;
	if (with_buckets) {
		const char *sep = " buckets=";
		for (unsigned i = 0; i < HIST_BUCKETS && used < len; i++) {
			if (!h->bucket[i])
				continue;
			k = snprintf(buf + used, len - used, "%s%llu:%u", sep, (unsigned long long)hist_bucket_low(i),
				     h->bucket[i]);
			if (k > 0)
				used += (size_t)k;
			sep = ",";
		}
	}
	if (used < len) {
		k = snprintf(buf + used, len - used, "\n");
		if (k > 0)
			used += (size_t)k;
	}
	return used < len ? used : (len ? len - 1 : 0);
}
