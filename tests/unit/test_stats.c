/* Unit tests for tools/stats.c (nearest-rank percentiles, summary, histogram) and tools/pace.c (seeded RNG,
 * exponential draws, send schedules), the math behind tools/probe and tools/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Relative to this file: the host tools live outside the kernel's include paths. */
#include "../../tools/pace.h"
#include "../../tools/stats.h"

static double pct(const double *v, size_t n, double p)
{
	double out = -1;
	assert_int_equal(stats_percentiles(v, n, &p, 1, &out), 0);
	return out;
}

static void fill_1_to_n(double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (double)(i + 1);
}

static void test_one_to_hundred(void **state)
{
	(void)state;
	double v[100];
	fill_1_to_n(v, 100);
	assert_true(pct(v, 100, 50) == 50);
	assert_true(pct(v, 100, 90) == 90);
	assert_true(pct(v, 100, 99) == 99);
	assert_true(pct(v, 100, 99.9) == 100);
	assert_true(pct(v, 100, 100) == 100);
	assert_true(pct(v, 100, 0) == 1);
	assert_true(pct(v, 100, 1) == 1);
	assert_true(pct(v, 100, 1.5) == 2);
	assert_true(pct(v, 100, 50.5) == 51);

	static const double ps[] = {50, 90, 99, 99.9};
	double out[4];
	assert_int_equal(stats_percentiles(v, 100, ps, 4, out), 0);
	assert_true(out[0] == 50 && out[1] == 90 && out[2] == 99 && out[3] == 100);

	struct stats_summary s;
	assert_int_equal(stats_summarize(v, 100, &s), 0);
	assert_int_equal(s.n, 100);
	assert_true(s.min == 1 && s.max == 100 && s.mean == 50.5);
}

static void test_single_element(void **state)
{
	(void)state;
	double v[1] = {42.5};
	assert_true(pct(v, 1, 0) == 42.5);
	assert_true(pct(v, 1, 50) == 42.5);
	assert_true(pct(v, 1, 99.9) == 42.5);
	assert_true(pct(v, 1, 100) == 42.5);
	struct stats_summary s;
	assert_int_equal(stats_summarize(v, 1, &s), 0);
	assert_true(s.min == 42.5 && s.max == 42.5 && s.mean == 42.5);
}

/* Nearest rank never averages the two middle samples of an even count. */
static void test_even_counts(void **state)
{
	(void)state;
	double v[10];
	fill_1_to_n(v, 10);
	assert_true(pct(v, 10, 50) == 5);
	assert_true(pct(v, 10, 25) == 3);
	assert_true(pct(v, 10, 90) == 9);
	assert_true(pct(v, 10, 91) == 10);
	assert_true(pct(v, 10, 99) == 10);
	double two[2] = {7, 3};
	assert_true(pct(two, 2, 50) == 3);
	assert_true(pct(two, 2, 51) == 7);
	struct stats_summary s;
	assert_int_equal(stats_summarize(two, 2, &s), 0);
	assert_true(s.mean == 5);
}

/* Ranks whose p / 100 * n is an integer only in exact arithmetic. */
static void test_rank_rounding(void **state)
{
	(void)state;
	assert_int_equal(stats_rank(100, 99), 99);
	assert_int_equal(stats_rank(100, 99.9), 100);
	assert_int_equal(stats_rank(1000, 99.9), 999);
	assert_int_equal(stats_rank(1000, 99.99), 1000);
	assert_int_equal(stats_rank(10000, 99.9), 9990);
	assert_int_equal(stats_rank(10000, 99.99), 9999);
	assert_int_equal(stats_rank(3, 100.0 / 3), 1);
	assert_int_equal(stats_rank(3, 200.0 / 3), 2);
	assert_int_equal(stats_rank(7, 0.1 * 700 / 7), 1);
	for (size_t n = 1; n <= 2000; n++)
		for (unsigned p = 1; p <= 100; p++)
			assert_int_equal(stats_rank(n, p), (p * n + 99) / 100);
	assert_int_equal(stats_rank(0, 50), 0);
	assert_int_equal(stats_rank(10, -0.1), 0);
	assert_int_equal(stats_rank(10, 100.1), 0);
	assert_int_equal(stats_rank(10, NAN), 0);
}

static void test_unsorted_input_is_left_alone(void **state)
{
	(void)state;
	double v[100], orig[100];
	fill_1_to_n(v, 100);
	struct pace_rng r;
	pace_rng_seed(&r, 12345);
	for (size_t i = 99; i > 0; i--) { /* Fisher-Yates */
		size_t j = pace_rng_next(&r) % (i + 1);
		double t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	memcpy(orig, v, sizeof(v));
	assert_true(pct(v, 100, 50) == 50);
	assert_true(pct(v, 100, 99) == 99);
	assert_true(pct(v, 100, 99.9) == 100);
	assert_memory_equal(v, orig, sizeof(v));
	struct stats_summary s;
	assert_int_equal(stats_summarize(v, 100, &s), 0);
	assert_true(s.min == 1 && s.max == 100 && s.mean == 50.5);

	double dup[] = {5, 1, 5, 5, 2, 9, 5}; /* sorted: 1 2 5 5 5 5 9 */
	assert_true(pct(dup, 7, 50) == 5);
	assert_true(pct(dup, 7, 20) == 2);
	assert_true(pct(dup, 7, 100) == 9);
	double neg[] = {-3.5, 10, -7, 0};
	assert_true(pct(neg, 4, 25) == -7);
	assert_int_equal(stats_summarize(neg, 4, &s), 0);
	assert_true(s.min == -7 && s.max == 10 && s.mean == -0.125);
}

static void test_sorted_helpers(void **state)
{
	(void)state;
	double v[] = {3, 1, 2};
	stats_sort(v, 3);
	assert_true(v[0] == 1 && v[1] == 2 && v[2] == 3);
	double out;
	assert_int_equal(stats_percentile_sorted(v, 3, 50, &out), 0);
	assert_true(out == 2);
	stats_sort(v, 0);
}

static void test_bad_input_is_an_error(void **state)
{
	(void)state;
	double v[4] = {1, 2, 3, 4}, out = 17, p = 50;
	struct stats_summary s;
	assert_int_equal(stats_percentiles(v, 0, &p, 1, &out), -EINVAL);
	assert_int_equal(stats_percentile_sorted(v, 0, 50, &out), -EINVAL);
	assert_int_equal(stats_summarize(v, 0, &s), -EINVAL);
	assert_int_equal(stats_percentiles(NULL, 0, &p, 1, &out), -EINVAL);
	assert_true(out == 17);
	p = 101;
	assert_int_equal(stats_percentiles(v, 4, &p, 1, &out), -EINVAL);
	p = -1;
	assert_int_equal(stats_percentiles(v, 4, &p, 1, &out), -EINVAL);
	assert_int_equal(stats_percentile_sorted(v, 4, 100.5, &out), -EINVAL);
	p = 50;
	v[2] = NAN;
	assert_int_equal(stats_percentiles(v, 4, &p, 1, &out), -EINVAL);
	assert_int_equal(stats_summarize(v, 4, &s), -EINVAL);
}

static void test_histogram(void **state)
{
	(void)state;
	struct stats_hist h;
	assert_int_equal(stats_hist_init(&h, 10, 5, 4), 0); /* [10,15) [15,20) [20,25) [25,30) */
	static const double xs[] = {9.99, 10, 14.99, 15, 24, 29.99, 30, 1e9, -1e9, NAN};
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		stats_hist_add(&h, xs[i]);
	assert_int_equal(h.under, 2);
	assert_int_equal(h.bins[0], 2);
	assert_int_equal(h.bins[1], 1);
	assert_int_equal(h.bins[2], 1);
	assert_int_equal(h.bins[3], 1);
	assert_int_equal(h.over, 2);
	assert_int_equal(h.count, 9);
	stats_hist_free(&h);
	assert_null(h.bins);

	assert_int_equal(stats_hist_init(&h, 0, 0, 4), -EINVAL);
	assert_int_equal(stats_hist_init(&h, 0, -1, 4), -EINVAL);
	assert_int_equal(stats_hist_init(&h, 0, 1, 0), -EINVAL);
	assert_int_equal(stats_hist_init(&h, NAN, 1, 4), -EINVAL);
	assert_int_equal(stats_hist_init(&h, 0, INFINITY, 4), -EINVAL);
}

static void test_rng_is_seeded(void **state)
{
	(void)state;
	struct pace_rng a, b, c;
	pace_rng_seed(&a, 7);
	pace_rng_seed(&b, 7);
	pace_rng_seed(&c, 8);
	int differ = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t x = pace_rng_next(&a);
		assert_true(x == pace_rng_next(&b));
		differ += x != pace_rng_next(&c);
	}
	assert_true(differ > 990);
	pace_rng_seed(&a, 0); /* seed 0 must not give the all-zero state, which xoshiro never leaves */
	assert_true(pace_rng_next(&a) != 0 || pace_rng_next(&a) != 0);
	for (int i = 0; i < 100000; i++) {
		double u = pace_rng_uniform(&a);
		assert_true(u > 0.0 && u <= 1.0);
	}
}

/* Exponential draws: mean within 2 % over 100000 draws (the standard error is 0.32 %), and the tail
 * P(X > mean) = 1/e within 1 percentage point. */
static void test_exponential_mean(void **state)
{
	(void)state;
	static const uint64_t seeds[] = {1, 2, 42, 0xdeadbeef};
	for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
		struct pace_rng r;
		pace_rng_seed(&r, seeds[k]);
		const double mean = 1000.0;
		double sum = 0;
		unsigned above = 0;
		for (int i = 0; i < 100000; i++) {
			double x = pace_rng_exp(&r, mean);
			assert_true(x >= 0.0 && isfinite(x));
			sum += x;
			above += x > mean;
		}
		assert_true(fabs(sum / 100000 / mean - 1.0) < 0.02);
		assert_true(fabs(above / 100000.0 - exp(-1.0)) < 0.01);
	}
}

static void test_fixed_schedule(void **state)
{
	(void)state;
	struct pace p;
	assert_int_equal(pace_init(&p, PACE_FIXED, 1000, 1, 1, 5000), 0);
	for (uint64_t i = 0; i < 10000; i++)
		assert_int_equal(pace_next(&p), 5000 + i * 1000000);
	assert_int_equal(pace_init(&p, PACE_FIXED, 3, 1, 1, 0), 0); /* 333333333.3 ns: no drift over a day */
	uint64_t t = 0;
	for (int i = 0; i <= 3 * 86400; i++)
		t = pace_next(&p);
	assert_true(t >= 86400000000000ull - 1 && t <= 86400000000000ull);
}

static void test_burst_schedule(void **state)
{
	(void)state;
	struct pace p;
	assert_int_equal(pace_init(&p, PACE_BURST, 1000, 4, 1, 0), 0);
	for (uint64_t b = 0; b < 100; b++)
		for (int i = 0; i < 4; i++)
			assert_int_equal(pace_next(&p), b * 4000000); /* 4 back to back every 4/1000 s */
	/* burst is ignored by the other patterns */
	assert_int_equal(pace_init(&p, PACE_FIXED, 1000, 4, 1, 0), 0);
	assert_int_equal(pace_next(&p), 0);
	assert_int_equal(pace_next(&p), 1000000);
}

static void test_poisson_schedule(void **state)
{
	(void)state;
	struct pace p, q;
	assert_int_equal(pace_init(&p, PACE_POISSON, 1000, 1, 99, 0), 0);
	assert_int_equal(pace_init(&q, PACE_POISSON, 1000, 1, 99, 0), 0);
	uint64_t prev = pace_next(&p), last = prev;
	assert_int_equal(pace_next(&q), prev);
	assert_int_equal(prev, 0);
	for (int i = 0; i < 100000; i++) {
		last = pace_next(&p);
		assert_true(last >= prev);
		assert_int_equal(pace_next(&q), last); /* same seed, same schedule */
		prev = last;
	}
	double mean_gap = (double)last / 100000;
	assert_true(fabs(mean_gap / 1e6 - 1.0) < 0.02);
}

static void test_delay_and_parse(void **state)
{
	(void)state;
	struct pace p;
	assert_int_equal(pace_init(&p, PACE_FIXED, 1000, 1, 1, 0), 0);
	assert_int_equal(pace_next(&p), 0);
	pace_delay(&p, 300);
	assert_int_equal(pace_next(&p), 1000300);
	assert_int_equal(pace_next(&p), 2000300);

	assert_int_equal(pace_init(&p, PACE_FIXED, 0, 1, 1, 0), -EINVAL);
	assert_int_equal(pace_init(&p, PACE_FIXED, -5, 1, 1, 0), -EINVAL);
	assert_int_equal(pace_init(&p, PACE_FIXED, NAN, 1, 1, 0), -EINVAL);
	assert_int_equal(pace_init(&p, PACE_FIXED, INFINITY, 1, 1, 0), -EINVAL);
	assert_int_equal(pace_init(&p, PACE_BURST, 1000, 0, 1, 0), -EINVAL);

	enum pace_pattern pat;
	assert_int_equal(pace_parse_pattern("fixed", &pat), 0);
	assert_int_equal(pat, PACE_FIXED);
	assert_int_equal(pace_parse_pattern("poisson", &pat), 0);
	assert_int_equal(pat, PACE_POISSON);
	assert_int_equal(pace_parse_pattern("burst", &pat), 0);
	assert_int_equal(pat, PACE_BURST);
	assert_int_equal(pace_parse_pattern("Burst", &pat), -EINVAL);
	assert_int_equal(pace_parse_pattern("", &pat), -EINVAL);
	assert_string_equal(pace_pattern_name(PACE_POISSON), "poisson");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_to_hundred),
	    cmocka_unit_test(test_single_element),
	    cmocka_unit_test(test_even_counts),
	    cmocka_unit_test(test_rank_rounding),
	    cmocka_unit_test(test_unsorted_input_is_left_alone),
	    cmocka_unit_test(test_sorted_helpers),
	    cmocka_unit_test(test_bad_input_is_an_error),
	    cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_rng_is_seeded),
	    cmocka_unit_test(test_exponential_mean),
	    cmocka_unit_test(test_fixed_schedule),
	    cmocka_unit_test(test_burst_schedule),
	    cmocka_unit_test(test_poisson_schedule),
	    cmocka_unit_test(test_delay_and_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
