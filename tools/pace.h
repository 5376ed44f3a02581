/* Send-time schedules and clocks for the host tools (tools/probe.c, tools/load.c).
 *
 * A schedule turns a mean packet rate into the send time of each packet, in nanoseconds of whatever clock
 * the caller passes as the start time:
 *
 *   fixed    one packet every 1/rate s.
 *   poisson  exponential inter-arrival times with mean 1/rate s (a Poisson process), drawn from a seeded
 *            xoshiro256** generator, so a given seed always gives the same schedule.
 *   burst    K packets back to back (the same send time) every K/rate s, so that the mean rate is still
 *            `rate` and runs with different K offer the same load.
 *
 * Fixed and burst times are computed from the packet count (no accumulated rounding); Poisson times add up
 * the draws in a double, which keeps them to well under a nanosecond for runs of days.
 *
 * Nothing here reads a clock or includes <time.h>: the unit tests are built with -I kernel, where the
 * kernel's own time.h would stand in for the C library's. The tools read their clocks themselves. */
#ifndef PACE_H
#define PACE_H

#include <stdint.h>

enum pace_pattern { PACE_FIXED, PACE_POISSON, PACE_BURST };

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64 so that any 64-bit seed, 0 included, gives a
 * good state. */
struct pace_rng {
	uint64_t s[4];
};

void pace_rng_seed(struct pace_rng *r, uint64_t seed);
uint64_t pace_rng_next(struct pace_rng *r);
/* Uniform in (0, 1]: never 0, so that log() of it is finite. */
double pace_rng_uniform(struct pace_rng *r);
/* Exponentially distributed with the given mean (inverse transform: -mean * ln U). */
double pace_rng_exp(struct pace_rng *r, double mean);

struct pace {
	enum pace_pattern pattern;
	uint64_t start_ns;
	double interval_ns; /* mean time between packets */
	unsigned burst;     /* packets per burst (PACE_BURST only) */
	uint64_t n;         /* packets handed out so far */
	double offset_ns;   /* the next packet's send time, relative to start_ns */
	struct pace_rng rng;
};

/* -EINVAL unless rate_pps > 0 and finite, and burst >= 1 (burst is ignored by the other patterns). The first
 * packet is due at start_ns. */
int pace_init(struct pace *p, enum pace_pattern pattern, double rate_pps, unsigned burst, uint64_t seed,
              uint64_t start_ns);
/* The send time of the next packet; advances the schedule by one packet. */
uint64_t pace_next(struct pace *p);
/* Moves the rest of the schedule later by delay_ns: after the sender has been held up (descheduled) it
 * resumes the pattern from now instead of sending the missed packets back to back. */
void pace_delay(struct pace *p, uint64_t delay_ns);

/* "fixed", "poisson" or "burst"; -EINVAL otherwise. */
int pace_parse_pattern(const char *s, enum pace_pattern *out);
const char *pace_pattern_name(enum pace_pattern pattern);

#endif
