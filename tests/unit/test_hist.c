/* Unit tests for kernel/hist.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hist.h"

static void test_buckets_exact_then_log_linear(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 16; v++)
		assert_int_equal(hist_bucket(v), v);
	/* Every bucket's low edge maps back to it, and edges increase. */
	for (unsigned i = 1; i < HIST_BUCKETS; i++) {
		assert_int_equal(hist_bucket(hist_bucket_low(i)), i);
		assert_true(hist_bucket_low(i) > hist_bucket_low(i - 1));
		if (i + 1 < HIST_BUCKETS)
			assert_int_equal(hist_bucket(hist_bucket_low(i + 1) - 1), i);
	}
	/* Relative width under 1/16 above the exact range. */
	for (uint64_t v = 16; v < (1ull << 30); v = v * 3 + 1) {
		uint64_t lo = hist_bucket_low(hist_bucket(v));
		assert_true(lo <= v);
		assert_true((v - lo) * 16 <= v);
	}
	assert_int_equal(hist_bucket(UINT64_MAX), HIST_BUCKETS - 1);
}

static void test_quantiles_known_input(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h, "t");
	assert_int_equal(hist_quantile(&h, 0.5), 0);
	for (uint64_t v = 1; v <= 100; v++)
		hist_record(&h, v * 1000);
	assert_int_equal(h.count, 100);
	assert_int_equal(h.min, 1000);
	assert_int_equal(h.max, 100000);
	/* Nearest rank: p50 is the 50th value (50000), reported as its bucket's low edge, within 6.25 %. */
	uint64_t p50 = hist_quantile(&h, 0.5), p99 = hist_quantile(&h, 0.99);
	assert_true(p50 <= 50000 && p50 * 16 >= 50000 * 15);
	assert_true(p99 <= 99000 && p99 * 16 >= 99000 * 15);
	assert_int_equal(hist_quantile(&h, 1.0) <= 100000, 1);
	assert_true(hist_quantile(&h, 0.001) == 1000);
}

static void test_small_values_exact(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h, "small");
	for (int i = 0; i < 90; i++)
		hist_record(&h, 3);
	for (int i = 0; i < 10; i++)
		hist_record(&h, 7);
	assert_int_equal(hist_quantile(&h, 0.5), 3);
	assert_int_equal(hist_quantile(&h, 0.9), 3);
	assert_int_equal(hist_quantile(&h, 0.91), 7);
	assert_int_equal(h.sum, 90 * 3 + 70);
}

static void test_format_and_reset(void **state)
{
	(void)state;
	struct hist h;
	char buf[512];
	hist_init(&h, "irq_to_poll");
	hist_record(&h, 100);
	hist_record(&h, 5000);
	size_t n = hist_format(&h, buf, sizeof(buf), 1);
	assert_int_equal(n, strlen(buf));
	assert_non_null(strstr(buf, "irq_to_poll: count=2 min=100 "));
	assert_non_null(strstr(buf, "max=5000 mean=2550"));
	assert_non_null(strstr(buf, " buckets=100:1,4864:1\n"));
	/* Truncation is safe. */
	n = hist_format(&h, buf, 20, 1);
	assert_true(n < 20);
	assert_int_equal(strlen(buf), n);
	hist_reset(&h);
	assert_int_equal(h.count, 0);
	hist_format(&h, buf, sizeof(buf), 0);
	assert_non_null(strstr(buf, "count=0 min=0 "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_exact_then_log_linear),
		cmocka_unit_test(test_quantiles_known_input),
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_format_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
