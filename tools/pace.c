/* Send-time schedules and a seeded random number generator; see pace.h. */
#include "pace.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static uint64_t pace_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void pace_rng_seed(struct pace_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = pace_splitmix64(&seed);
}

static uint64_t pace_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t pace_rng_next(struct pace_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = pace_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = pace_rotl(s[3], 45);
	return result;
}

double pace_rng_uniform(struct pace_rng *r)
{
	/* The top 53 bits, shifted from [0, 2^53) to [1, 2^53], scaled to (0, 1]. */
	return (double)((pace_rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

double pace_rng_exp(struct pace_rng *r, double mean)
{
	return -mean * log(pace_rng_uniform(r));
}

int pace_init(struct pace *p, enum pace_pattern pattern, double rate_pps, unsigned burst, uint64_t seed,
              uint64_t start_ns)
{
	memset(p, 0, sizeof(*p));
	if (!(rate_pps > 0.0) || !isfinite(rate_pps) || burst == 0)
		return -EINVAL;
	if (pattern != PACE_FIXED && pattern != PACE_POISSON && pattern != PACE_BURST)
		return -EINVAL;
	p->pattern = pattern;
	p->start_ns = start_ns;
	p->interval_ns = 1e9 / rate_pps;
	p->burst = pattern == PACE_BURST ? burst : 1;
	pace_rng_seed(&p->rng, seed);
	return 0;
}

uint64_t pace_next(struct pace *p)
{
	uint64_t t = p->start_ns + (uint64_t)p->offset_ns;
	p->n++;
	switch (p->pattern) {
	case PACE_FIXED:
		/* From the packet count, not by adding up intervals, so that rounding errors do not accumulate. */
		p->offset_ns = (double)p->n * p->interval_ns;
		break;
	case PACE_POISSON:
		p->offset_ns += pace_rng_exp(&p->rng, p->interval_ns);
		break;
	case PACE_BURST:
		p->offset_ns = (double)(p->n / p->burst) * p->burst * p->interval_ns;
		break;
	}
	return t;
}

void pace_delay(struct pace *p, uint64_t delay_ns)
{
	p->start_ns += delay_ns;
}

static const char *const pace_names[] = {[PACE_FIXED] = "fixed", [PACE_POISSON] = "poisson", [PACE_BURST] = "burst"};

int pace_parse_pattern(const char *s, enum pace_pattern *out)
{
	for (unsigned i = 0; i < sizeof(pace_names) / sizeof(pace_names[0]); i++) {
		if (strcmp(s, pace_names[i]) == 0) {
			*out = (enum pace_pattern)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *pace_pattern_name(enum pace_pattern pattern)
{
	return (unsigned)pattern < sizeof(pace_names) / sizeof(pace_names[0]) ? pace_names[pattern] : "?";
}
