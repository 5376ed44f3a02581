/* Send-time schedules, a seeded random number generator and precise waits; see pace.h. */
#include "pace.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/prctl.h>

#if defined(__x86_64__) || defined(__i386__)
#define pace_cpu_relax() __builtin_ia32_pause()
#else
#define pace_cpu_relax() do { } while (0)
#endif

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
	switch (p->pattern) {
	case PACE_FIXED:
		p->offset_ns += p->interval_ns;
		break;
	case PACE_POISSON:
		p->offset_ns += pace_rng_exp(&p->rng, p->interval_ns);
		break;
	case PACE_BURST:
		if (++p->in_burst == p->burst) {
			p->in_burst = 0;
			p->offset_ns += p->interval_ns * p->burst;
		}
		break;
	}
	return t;
}

void pace_delay(struct pace *p, uint64_t delay_ns)
{
	p->start_ns += delay_ns;
}

static const char *const pace_names[] = { [PACE_FIXED] = "fixed", [PACE_POISSON] = "poisson", [PACE_BURST] = "burst" };

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

uint64_t pace_now(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pace_wait_until(uint64_t deadline_ns, uint64_t spin_ns)
{
	uint64_t now = pace_now(CLOCK_MONOTONIC);
	if (now + spin_ns < deadline_ns) {
		uint64_t wake = deadline_ns - spin_ns;
		struct timespec ts = { .tv_sec = (time_t)(wake / 1000000000ull), .tv_nsec = (long)(wake % 1000000000ull) };
		/* EINTR (a signal) just ends the sleep early; the busy wait below covers the rest. */
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		now = pace_now(CLOCK_MONOTONIC);
	}
	while (now < deadline_ns) {
		pace_cpu_relax();
		now = pace_now(CLOCK_MONOTONIC);
	}
	return now;
}

void pace_tight_timers(void)
{
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
}
