/* Unit tests for kernel/cmdline.c, compiled for the host with the kernel's own source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"

struct reports {
	int n;
	char last[256];
	char all[1024];
};

static void collect(void *ctx, const char *msg)
{
	struct reports *r = ctx;
	r->n++;
	snprintf(r->last, sizeof(r->last), "%s", msg);
	strncat(r->all, msg, sizeof(r->all) - strlen(r->all) - 2);
	strcat(r->all, "\n");
}

static int parse(const char *s, struct kernel_config *c, struct reports *r)
{
	memset(r, 0, sizeof(*r));
	cmdline_defaults(c);
	return cmdline_parse(s, c, collect, r);
}

static void test_defaults(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	assert_int_equal(parse("", &c, &r), 0);
	assert_string_equal(c.mode, "napi");
	assert_int_equal(c.budget, 64);
	assert_int_equal(c.hz, 100);
	assert_string_equal(c.test, "");
	assert_int_equal(r.n, 0);
	assert_int_equal(parse(NULL, &c, &r), 0);
}

static void test_valid_options(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	assert_int_equal(parse("  budget=32\tmode=poll hz=1000 ip=10.1.2.3/24 gw=10.1.2.1 test=ticks quiet\n", &c, &r), 0);
	assert_int_equal(c.budget, 32);
	assert_string_equal(c.mode, "poll");
	assert_int_equal(c.hz, 1000);
	assert_string_equal(c.ip, "10.1.2.3/24");
	assert_string_equal(c.gw, "10.1.2.1");
	assert_string_equal(c.test, "ticks");
	assert_int_equal(c.quiet, 1);
}

static void test_last_wins(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	assert_int_equal(parse("budget=8 budget=16", &c, &r), 0);
	assert_int_equal(c.budget, 16);
}

static void test_unknown_option_named(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	assert_int_equal(parse("budget=8 frobnicate=3 hz=200", &c, &r), 1);
	assert_non_null(strstr(r.last, "'frobnicate'"));
	assert_non_null(strstr(r.last, "unknown"));
	/* The options around it still apply. */
	assert_int_equal(c.budget, 8);
	assert_int_equal(c.hz, 200);
}

static void test_bad_values_keep_default(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	assert_int_equal(parse("budget=abc", &c, &r), 1);
	assert_int_equal(c.budget, 64);
	assert_non_null(strstr(r.last, "'budget'"));
	assert_non_null(strstr(r.last, "'abc'"));
	assert_non_null(strstr(r.last, "1..4096"));

	assert_int_equal(parse("budget=0 budget=4097 budget=-1 budget=12x budget=", &c, &r), 5);
	assert_int_equal(c.budget, 64);

	assert_int_equal(parse("hz=9", &c, &r), 1);
	assert_int_equal(c.hz, 100);

	assert_int_equal(parse("mode=turbo", &c, &r), 1);
	assert_string_equal(c.mode, "napi");
	assert_non_null(strstr(r.last, "irq|napi|poll|coalesce"));

	assert_int_equal(parse("test=nosuch", &c, &r), 1);
	assert_string_equal(c.test, "");

	assert_int_equal(parse("quiet=maybe", &c, &r), 1);
	assert_int_equal(c.quiet, 0);
}

static void test_overflow_and_oddities(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	char longv[200];

	assert_int_equal(parse("budget=99999999999999999999", &c, &r), 1);
	assert_int_equal(c.budget, 64);

	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	assert_int_equal(parse(longv, &c, &r), 1);
	assert_non_null(strstr(r.last, "too long"));

	/* A value longer than the field: rejected, not truncated. */
	assert_int_equal(parse("ip=1234567890123456789012345678901234567890123456789", &c, &r), 1);
	assert_string_equal(c.ip, "");

	assert_int_equal(parse("=5", &c, &r), 1);
	assert_non_null(strstr(r.last, "no option name"));

	assert_int_equal(parse("ip=", &c, &r), 1);
	assert_int_equal(parse("budget=0x20", &c, &r), 0);
	assert_int_equal(c.budget, 32);
	/* A leading zero is still decimal. */
	assert_int_equal(parse("budget=010", &c, &r), 0);
	assert_int_equal(c.budget, 10);
	assert_int_equal(parse("budget=0x", &c, &r), 1);
	assert_int_equal(c.budget, 64);
}

static void test_format_roundtrip(void **state)
{
	(void)state;
	struct kernel_config c, d;
	struct reports r;
	char buf[256];

	parse("mode=irq budget=7 hz=250 heartbeat=0 ip=dhcp", &c, &r);
	cmdline_format(&c, buf, sizeof(buf));
	assert_non_null(strstr(buf, "mode=irq"));
	assert_non_null(strstr(buf, "budget=7"));
	assert_null(strstr(buf, "gw="));
	assert_null(strstr(buf, "test="));
	/* What is printed parses back to the same configuration, without a single complaint. */
	cmdline_defaults(&d);
	assert_int_equal(cmdline_parse(buf, &d, NULL, NULL), 0);
	assert_memory_equal(&c, &d, sizeof(c));
}

/* The TCP limits: range-checked, printed only when they differ from their defaults, and parsed back. */
static void test_tcp_limits(void **state)
{
	(void)state;
	struct kernel_config c, d;
	struct reports r;
	char buf[256];

	parse("", &c, &r);
	assert_int_equal(c.tcp_conns, CMDLINE_TCP_CONNS_DEFAULT);
	assert_int_equal(c.tcp_idle_s, CMDLINE_TCP_IDLE_S_DEFAULT);
	cmdline_format(&c, buf, sizeof(buf));
	assert_null(strstr(buf, "tcp_"));
	assert_int_equal(parse("tcp_conns=0 tcp_idle_s=x", &c, &r), 2);
	assert_int_equal(c.tcp_conns, CMDLINE_TCP_CONNS_DEFAULT);
	assert_int_equal(parse("tcp_conns=8 tcp_idle_s=0", &c, &r), 0);
	assert_int_equal(c.tcp_conns, 8);
	assert_int_equal(c.tcp_idle_s, 0);
	int n = cmdline_format(&c, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_non_null(strstr(buf, " tcp_conns=8 tcp_idle_s=0"));
	cmdline_defaults(&d);
	assert_int_equal(cmdline_parse(buf, &d, NULL, NULL), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	/* A short buffer: the return value is still the full length, as snprintf's. */
	char small[8];
	assert_int_equal(cmdline_format(&c, small, sizeof(small)), n);
	assert_int_equal(strlen(small), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_valid_options),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_unknown_option_named),
		cmocka_unit_test(test_bad_values_keep_default),
		cmocka_unit_test(test_overflow_and_oddities),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_tcp_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
