/* Unit tests for kernel/cmdline.c, compiled for the host with the kernel's own source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "netdev.h"

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
	assert_int_equal(c.mode, NETDEV_MODE_NAPI);
	assert_int_equal(c.budget, 64);
	assert_int_equal(c.hz, 100);
	assert_int_equal(c.test, 0);
	assert_int_equal(c.rxpool, 0);
	assert_int_equal(c.consumer, CMDLINE_CONSUMER_LWIP);
	assert_string_equal(c.services, "all");
	assert_int_equal(r.n, 0);
	assert_int_equal(parse(NULL, &c, &r), 0);
}

static void test_valid_options(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	assert_int_equal(parse("  budget=32\tmode=poll hz=1000 ip=10.1.2.3/24 gw=10.1.2.1 test=ticks ipv6=off\n", &c, &r), 0);
	assert_int_equal(c.budget, 32);
	assert_int_equal(c.mode, NETDEV_MODE_POLL);
	assert_int_equal(c.hz, 1000);
	assert_string_equal(c.ip, "10.1.2.3/24");
	assert_string_equal(c.gw, "10.1.2.1");
	assert_string_equal(cmdline_tests[c.test], "ticks");
	assert_int_equal(c.ipv6, 0);
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
	assert_int_equal(c.mode, NETDEV_MODE_NAPI);
	assert_non_null(strstr(r.last, "irq|napi|poll|coalesce"));

	assert_int_equal(parse("test=nosuch test=", &c, &r), 2);
	assert_int_equal(c.test, 0);
	assert_non_null(strstr(r.last, "one of boot|ticks"));

	assert_int_equal(parse("ipv6=maybe", &c, &r), 1);
	assert_int_equal(c.ipv6, 1);

	/* rxpool: 0 means "the kernel chooses"; 1..7 are too few to be a pool. */
	assert_int_equal(parse("rxpool=7 rxpool=0", &c, &r), 1);
	assert_int_equal(c.rxpool, 0);
	assert_int_equal(parse("services=", &c, &r), 1);
	assert_string_equal(c.services, "all");
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

/* A value for knob k that differs from its default and that the knob accepts. */
static void non_default(const struct cmdline_knob *k, char *buf, size_t len)
{
	switch (k->kind) {
	case CMDLINE_UINT:
		snprintf(buf, len, "%u", strtoul(k->def, NULL, 0) == k->max ? k->min : k->max);
		break;
	case CMDLINE_BOOL:
		snprintf(buf, len, "%s", !strcmp(k->def, "1") ? "0" : "1");
		break;
	case CMDLINE_STR:
		snprintf(buf, len, "%.*s", (int)(k->size - 1), "x,y/z.0123456789012345678901234567890123456789");
		break;
	case CMDLINE_ENUM:
		for (unsigned i = 0; k->choices[i]; i++) {
			if (*k->choices[i] && strcmp(k->choices[i], k->def)) {
				snprintf(buf, len, "%s", k->choices[i]);
				break;
			}
		}
		break;
	case CMDLINE_VIRTIO_MMIO:
		snprintf(buf, len, "512@0xfeb00e00:12");
		break;
	}
}

/* QEMU microvm appends virtio_mmio.device=SIZE@ADDR:IRQ once per device: a knob, not an unknown option. */
static void test_virtio_mmio_device(void **state)
{
	(void)state;
	struct kernel_config c;
	struct reports r;
	char line[1024];

	assert_int_equal(parse("test=boot virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=4K@0xfeb00c00:11",
			       &c, &r), 0);
	assert_int_equal(c.virtio_mmio.count, 2);
	assert_int_equal(c.virtio_mmio.dev[0].base, 0xfeb00e00ull);
	assert_int_equal(c.virtio_mmio.dev[0].size, 512);
	assert_int_equal(c.virtio_mmio.dev[0].irq, 12);
	assert_int_equal(c.virtio_mmio.dev[1].size, 4096);
	assert_int_equal(c.virtio_mmio.dev[1].irq, 11);
	/* The config line lists them comma-joined, and that parses back to the same list. */
	cmdline_format(&c, line, sizeof(line));
	assert_non_null(strstr(line, "virtio_mmio.device=512@0xfeb00e00:12,4096@0xfeb00c00:11"));
	struct kernel_config d;
	assert_int_equal(parse(line, &d, &r), 0);
	assert_memory_equal(&c.virtio_mmio, &d.virtio_mmio, sizeof(c.virtio_mmio));
	/* Malformed entries are refused whole: nothing is added. */
	const char *bad[] = { "virtio_mmio.device=512@0xfeb00e00", "virtio_mmio.device=@0x1000:5",
			      "virtio_mmio.device=512@0xfeb00e00:12,", "virtio_mmio.device=512@0xfeb00e00:999",
			      "virtio_mmio.device=0@0x1000:5", "virtio_mmio.device" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &c, &r), 1);
		assert_int_equal(c.virtio_mmio.count, 0);
	}
	/* At most CMDLINE_VIRTIO_MMIO_MAX. */
	line[0] = '\0';
	for (int i = 0; i <= CMDLINE_VIRTIO_MMIO_MAX; i++) {
		char w[64];
		snprintf(w, sizeof(w), " virtio_mmio.device=512@%#x:%d", 0xfeb00000 + 0x200 * i, 5 + i);
		strcat(line, w);
	}
	assert_int_equal(parse(line, &c, &r), 1);
	assert_int_equal(c.virtio_mmio.count, CMDLINE_VIRTIO_MMIO_MAX);
}

static void test_defaults_are_valid(void **state)
{
	(void)state;
	char err[256];
	struct kernel_config c;
	/* Every default in the table is a value its own knob accepts (or the empty "unset"). */
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		const struct cmdline_knob *k = &cmdline_knobs[i];
		cmdline_defaults(&c);
		if (*k->def)
			assert_int_equal(cmdline_set(&c, k->name, k->def, err, sizeof(err)), 0);
		assert_non_null(k->help);
		assert_true(strlen(k->help) > 10);
	}
}

static void test_format_roundtrip_every_knob(void **state)
{
	(void)state;
	struct kernel_config def, c, d;
	char line[2048], val[80], word[160], err[256];

	cmdline_defaults(&def);
	cmdline_defaults(&c);
	line[0] = '\0';
	/* Every knob at once, each at a value other than its default. */
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		const struct cmdline_knob *k = &cmdline_knobs[i];
		non_default(k, val, sizeof(val));
		assert_int_equal(cmdline_set(&c, k->name, val, err, sizeof(err)), 0);
		snprintf(word, sizeof(word), " %s=%s", k->name, val);
		strcat(line, word);
	}
	cmdline_defaults(&d);
	assert_int_equal(cmdline_parse(line, &d, NULL, NULL), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	/* Each field really moved away from its default ... */
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		const struct cmdline_knob *k = &cmdline_knobs[i];
		assert_memory_not_equal((char *)&c + k->offset, (char *)&def + k->offset, k->size);
	}
	/* ... the config line shows every one of them ... */
	cmdline_format(&c, line, sizeof(line));
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		/* As a whole word: `ring=` is also the tail of `txring=`. */
		snprintf(word, sizeof(word), "%s=", cmdline_knobs[i].name);
		const char *p = strstr(line, word);
		while (p && p != line && p[-1] != ' ')
			p = strstr(p + 1, word);
		assert_non_null(p);
	}
	/* ... and parses back to the same configuration without a complaint. */
	cmdline_defaults(&d);
	assert_int_equal(cmdline_parse(line, &d, NULL, NULL), 0);
	assert_memory_equal(&c, &d, sizeof(c));

	/* The defaults round-trip too (empty strings are left out, not written as `ip=`). */
	cmdline_format(&def, line, sizeof(line));
	assert_null(strstr(line, "ip="));
	assert_null(strstr(line, "test="));
	cmdline_defaults(&d);
	assert_int_equal(cmdline_parse(line, &d, NULL, NULL), 0);
	assert_memory_equal(&def, &d, sizeof(def));
}

static void test_set_names_the_knob(void **state)
{
	(void)state;
	struct kernel_config c, before;
	char err[256];
	cmdline_defaults(&c);
	before = c;
	assert_int_equal(cmdline_set(&c, "budget", "0", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'budget'"));
	assert_non_null(strstr(err, "1..4096"));
	assert_int_equal(cmdline_set(&c, "nosuch", "1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'nosuch'"));
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(cmdline_set(&c, "mode", "coalesce", err, sizeof(err)), 0);
	assert_int_equal(c.mode, NETDEV_MODE_COALESCE);
}

static void test_markdown_lists_every_knob(void **state)
{
	(void)state;
	static char md[16384];
	char word[64];
	int n = cmdline_format_markdown(md, sizeof(md));
	assert_true(n > 0 && (size_t)n < sizeof(md));
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		snprintf(word, sizeof(word), "| `%s` |", cmdline_knobs[i].name);
		assert_non_null(strstr(md, word));
	}
}

/* README.md carries the generated table between its knobs markers (make readme-knobs): they must agree. */
static void test_readme_table_is_current(void **state)
{
	(void)state;
	static char md[16384], readme[262144];
	FILE *f = fopen("README.md", "r");
	assert_non_null(f);
	size_t n = fread(readme, 1, sizeof(readme) - 1, f);
	fclose(f);
	readme[n] = '\0';
	cmdline_format_markdown(md, sizeof(md));
	const char *b = strstr(readme, "<!-- knobs:begin -->\n"), *e = strstr(readme, "<!-- knobs:end -->");
	assert_non_null(b);
	assert_non_null(e);
	b += strlen("<!-- knobs:begin -->\n");
	if ((size_t)(e - b) != strlen(md) || memcmp(b, md, strlen(md)))
		fail_msg("README.md's option table differs from kernel/cmdline.c's knob table: run `make readme-knobs`");
}

/* The TCP limits: range-checked, printed, and parsed back. */
static void test_tcp_limits(void **state)
{
	(void)state;
	struct kernel_config c, d;
	struct reports r;
	char buf[512];

	parse("", &c, &r);
	assert_int_equal(c.tcp_conns, 1024);
	assert_int_equal(c.tcp_idle_s, 300);
	cmdline_format(&c, buf, sizeof(buf));
	assert_non_null(strstr(buf, " tcp_conns=1024 tcp_idle_s=300"));
	assert_int_equal(parse("tcp_conns=0 tcp_idle_s=x tcp_conns=2049", &c, &r), 3);
	assert_int_equal(c.tcp_conns, 1024);
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
		cmocka_unit_test(test_defaults_are_valid),
		cmocka_unit_test(test_format_roundtrip_every_knob),
		cmocka_unit_test(test_set_names_the_knob),
		cmocka_unit_test(test_virtio_mmio_device),
		cmocka_unit_test(test_markdown_lists_every_knob),
		cmocka_unit_test(test_readme_table_is_current),
		cmocka_unit_test(test_tcp_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
