/* args: option parsing shared by the host tools; see args.h for the conventions. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

void args_init(struct args *a, const char *prog, int argc, char **argv, const struct option *longopts)
{
	memset(a, 0, sizeof(*a));
	a->prog = prog;
	a->err = stderr;
	a->argc = argc;
	a->argv = argv;
	a->longopts = longopts;
	/* Errors are reported here, by name, rather than by getopt's own messages. */
	opterr = 0;
	optind = 1;
}

int args_next(struct args *a)
{
	for (;;) {
		int index = -1;
		/* ":" first: a missing value is told apart from an unknown option. */
		int c = getopt_long(a->argc, a->argv, ":", a->longopts, &index);
		if (c == -1)
			break;
		if (c == ':') {
			args_bad(a, a->argv[optind - 1], NULL, "needs a value");
			continue;
		}
		if (c == '?') {
			args_bad(a, a->argv[optind - 1], NULL, "unknown option");
			continue;
		}
		snprintf(a->opt_buf, sizeof(a->opt_buf), "--%s", index >= 0 ? a->longopts[index].name : "?");
		a->opt = a->opt_buf;
		return c;
	}
	for (int i = optind; i < a->argc; i++)
		args_bad(a, a->argv[i], NULL, "unexpected argument");
	optind = a->argc;
	return -1;
}

void args_bad(struct args *a, const char *opt, const char *val, const char *why)
{
	if (val)
		fprintf(a->err, "%s: %s: '%s' %s\n", a->prog, opt, val, why);
	else
		fprintf(a->err, "%s: %s: %s\n", a->prog, opt, why);
	a->errors++;
}

int args_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	/* strtoull() would take a leading space or sign, and turn "-1" into UINT64_MAX. */
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int args_parse_double(const char *s, double min, double max, double *out)
{
	if (!s || !*s || *s == ' ')
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void args_u64(struct args *a, uint64_t min, uint64_t max, const char *why, uint64_t *out)
{
	if (args_parse_u64(optarg, min, max, out))
		args_bad(a, a->opt, optarg, why);
}

void args_unsigned(struct args *a, unsigned min, unsigned max, const char *why, unsigned *out)
{
	uint64_t v;
	if (args_parse_u64(optarg, min, max, &v))
		args_bad(a, a->opt, optarg, why);
	else
		*out = (unsigned)v;
}

void args_double(struct args *a, double min, double max, const char *why, double *out)
{
	if (args_parse_double(optarg, min, max, out))
		args_bad(a, a->opt, optarg, why);
}

int args_target_option(struct args *a, int c, struct args_target *t)
{
	if (c == ARGS_OPT_DST) {
		t->dst = optarg;
		return 1;
	}
	if (c == ARGS_OPT_PORT) {
		args_unsigned(a, 1, 65535, "is not a port number (1..65535)", &t->port);
		t->have_port = 1;
		return 1;
	}
	return 0;
}

void args_target_check(struct args *a, const struct args_target *t)
{
	if (!t->dst)
		args_bad(a, "--dst", NULL, "is required");
	if (!t->have_port)
		args_bad(a, "--port", NULL, "is required");
}

int args_target_resolve(struct args *a, struct args_target *t)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", t->port);
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int rc = getaddrinfo(t->dst, port, &hints, &ai);
	if (rc) {
		char why[128];
		snprintf(why, sizeof(why), "is not a numeric IPv4 or IPv6 address (%s)", gai_strerror(rc));
		args_bad(a, "--dst", t->dst, why);
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addr_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int args_finish(const struct args *a)
{
	if (a->errors)
		fprintf(a->err, "%s: %d bad argument%s; see %s --help\n", a->prog, a->errors, a->errors > 1 ? "s" : "",
		        a->prog);
	return a->errors;
}
