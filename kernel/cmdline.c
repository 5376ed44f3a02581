#include "cmdline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMDLINE_TOKEN_MAX 128

enum opt_kind { OPT_UINT, OPT_STR, OPT_ENUM, OPT_BOOL };

struct cmdline_opt {
	const char *name;
	enum opt_kind kind;
	size_t offset;
	size_t size;
	unsigned min, max;
	const char *const *choices;
};

const char *const cmdline_tests[] = { "boot", "ticks", "wake", "ud", "pf", "gp", "de", "df", "bp", "panic", "heap", NULL };
static const char *const cmdline_modes[] = { "irq", "napi", "poll", "coalesce", NULL };
static const char *const cmdline_consumers[] = { "lwip", "noop", NULL };

#define OPT(field, kind, lo, hi, ch) \
	{ #field, kind, offsetof(struct kernel_config, field), sizeof(((struct kernel_config *)0)->field), lo, hi, ch }

static const struct cmdline_opt cmdline_opts[] = {
	OPT(test, OPT_ENUM, 0, 0, cmdline_tests),
	OPT(mode, OPT_ENUM, 0, 0, cmdline_modes),
	OPT(budget, OPT_UINT, 1, 4096, NULL),
	OPT(hz, OPT_UINT, 10, 10000, NULL),
	OPT(heartbeat, OPT_UINT, 0, 3600, NULL),
	OPT(ip, OPT_STR, 0, 0, NULL),
	OPT(gw, OPT_STR, 0, 0, NULL),
	OPT(quiet, OPT_BOOL, 0, 1, NULL),
	OPT(ip1, OPT_STR, 0, 0, NULL),
	OPT(gw1, OPT_STR, 0, 0, NULL),
	OPT(ipv6, OPT_BOOL, 0, 1, NULL),
	OPT(services, OPT_STR, 0, 0, NULL),
	OPT(coalesce, OPT_UINT, 1, 256, NULL),
	OPT(coalesce_us, OPT_UINT, 1, 1000000, NULL),
	OPT(consumer, OPT_ENUM, 0, 0, cmdline_consumers),
	OPT(rxpool, OPT_UINT, 8, 65536, NULL),
};

void cmdline_defaults(struct kernel_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->mode, "napi");
	cfg->budget = 64;
	cfg->hz = 100;
	cfg->heartbeat = 10;
	cfg->ipv6 = 1;
	strcpy(cfg->services, "all");
	cfg->coalesce = 8;
	cfg->coalesce_us = 200;
	strcpy(cfg->consumer, "lwip");
}

static void cmdline_report(cmdline_report_fn report, void *ctx, const char *fmt, const char *a, const char *b,
			   const char *c)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, a, b, c);
	if (report)
		report(ctx, msg);
}

static int cmdline_parse_uint(const char *v, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long x;

	if (*v < '0' || *v > '9')
		return -1;
	/* Decimal, or hexadecimal with 0x; never octal (budget=010 is ten, not eight). */
	x = (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) ? strtoul(v + 2, &end, 16) : strtoul(v, &end, 10);
	if (end == v || (v[0] == '0' && (v[1] == 'x' || v[1] == 'X') && end == v + 2))
		return -1;
	if (*end || x < min || x > max)
		return -1;
	*out = (unsigned)x;
	return 0;
}

/* Applies one key=value (value NULL for a bare key). Returns 0, or 1 after reporting a problem. */
static int cmdline_apply(const char *key, const char *val, struct kernel_config *cfg, cmdline_report_fn report,
			 void *ctx)
{
	const struct cmdline_opt *o = NULL;
	char expect[160];

	for (size_t i = 0; i < sizeof(cmdline_opts) / sizeof(cmdline_opts[0]); i++)
		if (!strcmp(cmdline_opts[i].name, key))
			o = &cmdline_opts[i];
	if (!o) {
		cmdline_report(report, ctx, "cmdline: unknown option '%s' ignored%s%s", key, "", "");
		return 1;
	}

	char *field = (char *)cfg + o->offset;
	switch (o->kind) {
	case OPT_BOOL:
		if (!val || !strcmp(val, "1") || !strcmp(val, "on") || !strcmp(val, "yes")) {
			*(int *)field = 1;
			return 0;
		}
		if (!strcmp(val, "0") || !strcmp(val, "off") || !strcmp(val, "no")) {
			*(int *)field = 0;
			return 0;
		}
		snprintf(expect, sizeof(expect), "0/1, on/off or yes/no");
		break;
	case OPT_UINT:
		if (val && !cmdline_parse_uint(val, o->min, o->max, (unsigned *)field))
			return 0;
		snprintf(expect, sizeof(expect), "an integer in %u..%u", o->min, o->max);
		break;
	case OPT_STR:
		if (val && *val && strlen(val) < o->size) {
			strcpy(field, val);
			return 0;
		}
		snprintf(expect, sizeof(expect), "a non-empty value of at most %zu characters", o->size - 1);
		break;
	case OPT_ENUM: {
		size_t used = 0;
		for (const char *const *c = o->choices; *c; c++) {
			if (val && !strcmp(val, *c) && strlen(val) < o->size) {
				strcpy(field, val);
				return 0;
			}
			used += (size_t)snprintf(expect + used, sizeof(expect) - used, "%s%s", c == o->choices ? "one of " : "|", *c);
			if (used >= sizeof(expect))
				break;
		}
		break;
	}
	}
	cmdline_report(report, ctx, "cmdline: option '%s': bad value '%s' (expected %s); value unchanged", key,
		       val ? val : "", expect);
	return 1;
}

int cmdline_parse(const char *s, struct kernel_config *cfg, cmdline_report_fn report, void *ctx)
{
	int problems = 0;
	char tok[CMDLINE_TOKEN_MAX];

	if (!s)
		return 0;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (!*s)
			break;
		size_t n = 0;
		int too_long = 0;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
			if (n < sizeof(tok) - 1)
				tok[n++] = *s;
			else
				too_long = 1;
			s++;
		}
		tok[n] = '\0';
		if (too_long) {
			cmdline_report(report, ctx, "cmdline: option starting '%.32s' is too long, ignored%s%s", tok, "", "");
			problems++;
			continue;
		}
		char *eq = strchr(tok, '=');
		if (eq == tok) {
			cmdline_report(report, ctx, "cmdline: '%s' has no option name, ignored%s%s", tok, "", "");
			problems++;
			continue;
		}
		if (eq)
			*eq = '\0';
		problems += cmdline_apply(tok, eq ? eq + 1 : NULL, cfg, report, ctx);
	}
	return problems;
}

int cmdline_format(const struct kernel_config *cfg, char *buf, size_t len)
{
	/* Empty options are left out, so the line parses back to the same configuration. */
	return snprintf(buf, len, "mode=%s budget=%u hz=%u heartbeat=%u%s%s%s%s%s%s%s%s ipv6=%d services=%s%s%s%s",
			cfg->mode, cfg->budget, cfg->hz, cfg->heartbeat, cfg->ip[0] ? " ip=" : "", cfg->ip,
			cfg->gw[0] ? " gw=" : "", cfg->gw, cfg->ip1[0] ? " ip1=" : "", cfg->ip1, cfg->gw1[0] ? " gw1=" : "",
			cfg->gw1, cfg->ipv6, cfg->services, cfg->test[0] ? " test=" : "", cfg->test,
			cfg->quiet ? " quiet" : "");
}
