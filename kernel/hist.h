/* Log-linear latency histograms: exact below 16, then 16 sub-buckets per power of two (relative error under
 * 6.25 %), up to 2^40 ns (~18 minutes). Recording is a few instructions and no division, so the stage
 * stamps on the receive path can stay on. Pure code: the host unit tests run it unchanged. */
#ifndef HIST_H
#define HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_LOG2 40
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_LOG2 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	const char *name;
	uint64_t count, sum, min, max;
	uint32_t bucket[HIST_BUCKETS];
};

void hist_init(struct hist *h, const char *name);
void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t v);

/* Bucket index of v, and the smallest value that lands in bucket i. */
unsigned hist_bucket(uint64_t v);
uint64_t hist_bucket_low(unsigned i);

/* The value at quantile q (0..1] by nearest rank over buckets: the low edge of the bucket holding that rank,
 * clamped to [min, max]. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* "name: count=N min=… p50=… p90=… p99=… p999=… max=… mean=…" plus, with buckets, " buckets=lo:n,lo:n…". */
size_t hist_format(const struct hist *h, char *buf, size_t len, int with_buckets);

#endif
