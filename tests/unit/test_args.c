/* Unit tests for tools/args.c, the option parsing of tools/probe and tools/load: every bad argument is
 * reported by its name and counted, and numbers outside their range are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Relative to this file: the host tools live outside the kernel's include paths. */
#include "../../tools/args.h"

enum { OPT_PORT = 1, OPT_RATE, OPT_QUIET };

static const struct option test_longopts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {NULL, 0, NULL, 0},
};

/* Parses argv (NULL-terminated) the way the tools do; returns the messages and sets *port, *rate. */
static char *parse(char **argv, int *errors, unsigned *port, double *rate)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	char *text = NULL;
	size_t len = 0;
	struct args a;
	args_init(&a, "tool", argc, argv, test_longopts);
	a.err = open_memstream(&text, &len);
	assert_non_null(a.err);
	int c;
	while ((c = args_next(&a)) != -1) {
		if (c == OPT_PORT)
			args_unsigned(&a, 1, 65535, "is not a port number (1..65535)", port);
		else if (c == OPT_RATE)
			args_double(&a, 1e-3, 1e7, "is not a rate", rate);
	}
	*errors = args_finish(&a);
	fclose(a.err);
	return text;
}

static void test_good_options(void **state)
{
	(void)state;
	char *argv[] = {"tool", "--port", "7", "--rate=2.5", "--quiet", NULL};
	int errors = -1;
	unsigned port = 0;
	double rate = 0;
	char *text = parse(argv, &errors, &port, &rate);
	assert_int_equal(errors, 0);
	assert_int_equal(port, 7);
	assert_true(rate == 2.5);
	assert_string_equal(text, "");
	free(text);
}

static void test_bad_options_are_named(void **state)
{
	(void)state;
	char *argv[] = {"tool", "--frob", "--port", "0", "--rate", "1e9", "extra", "--port", NULL};
	int errors = 0;
	unsigned port = 99;
	double rate = 0;
	char *text = parse(argv, &errors, &port, &rate);
	assert_int_equal(errors, 5);
	assert_non_null(strstr(text, "tool: --frob: unknown option\n"));
	assert_non_null(strstr(text, "tool: --port: '0' is not a port number (1..65535)\n"));
	assert_non_null(strstr(text, "tool: --rate: '1e9' is not a rate\n"));
	assert_non_null(strstr(text, "tool: --port: needs a value\n"));
	assert_non_null(strstr(text, "tool: extra: unexpected argument\n"));
	assert_non_null(strstr(text, "tool: 5 bad arguments; see tool --help\n"));
	/* A refused value leaves the setting as it was. */
	assert_int_equal(port, 99);
	free(text);
}

static void test_u64_ranges(void **state)
{
	(void)state;
	uint64_t v = 42;
	assert_int_equal(args_parse_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(args_parse_u64("0x10", 0, 16, &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(args_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 42;
	const char *bad[] = {"", " 1", "-1", "+1", "11", "1x", "18446744073709551616", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_not_equal(args_parse_u64(bad[i], 0, 10, &v), 0);
	assert_int_not_equal(args_parse_u64("1", 2, 10, &v), 0);
	assert_int_not_equal(args_parse_u64(NULL, 0, 10, &v), 0);
	assert_int_equal(v, 42);
}

static void test_double_ranges(void **state)
{
	(void)state;
	double v = 42;
	assert_int_equal(args_parse_double("0.001", 1e-3, 1, &v), 0);
	assert_true(v == 0.001);
	assert_int_equal(args_parse_double("-1", -1, 1, &v), 0);
	assert_true(v == -1);
	v = 42;
	const char *bad[] = {"", " 1", "1s", "nan", "inf", "2", "0.0009", "1e999", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_not_equal(args_parse_double(bad[i], 1e-3, 1, &v), 0);
	assert_true(v == 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_options),
	    cmocka_unit_test(test_bad_options_are_named),
	    cmocka_unit_test(test_u64_ranges),
	    cmocka_unit_test(test_double_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
