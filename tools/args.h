/* args: the command-line conventions the host tools (probe, load) share. Options are long options only
 * (getopt_long); numbers are parsed strictly with their range checked; every bad argument is reported on its
 * own line, by option name, and counted, so that one run shows all of them; the tool then prints one summary
 * line and exits with status 2. */
#ifndef TOOLS_ARGS_H
#define TOOLS_ARGS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct args {
	const char *prog; /* the prefix of every message: "probe" */
	FILE *err;        /* where messages go: stderr (a unit test substitutes a memory stream) */
	int errors;
	int argc;
	char **argv;
	const struct option *longopts;
	const char *opt; /* the option args_next() returned last, for messages: "--port" */
	char opt_buf[64];
};

/* Starts parsing argv[1..argc) against longopts (a getopt_long table whose last entry is all zero). */
void args_init(struct args *a, const char *prog, int argc, char **argv, const struct option *longopts);

/* The next option's value in longopts (its argument in optarg), or -1 once the options are done. Options
 * missing their value, unknown options and, at the end, arguments that are not options are reported and
 * skipped. */
int args_next(struct args *a);

/* Reports "PROG: OPT: 'VAL' WHY" (or "PROG: OPT: WHY" when val is NULL) and counts one error. */
void args_bad(struct args *a, const char *opt, const char *val, const char *why);

/* Strict parses: digits only (decimal, or 0x hex) for u64; no sign for u64, no leading space for either, no
 * trailing text, within min..max. Return 0, or -EINVAL with *out untouched. */
int args_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int args_parse_double(const char *s, double min, double max, double *out);

/* optarg of the current option parsed into *out; if it is not a number in min..max, the option is reported as
 * "'VAL' WHY" and counted. */
void args_u64(struct args *a, uint64_t min, uint64_t max, const char *why, uint64_t *out);
void args_unsigned(struct args *a, unsigned min, unsigned max, const char *why, unsigned *out);
void args_double(struct args *a, double min, double max, const char *why, double *out);

/* --dst ADDR --port N: the UDP service a tool is aimed at. Both options come first in each tool's option enum
 * (from ARGS_OPT_TOOL on) and table (ARGS_TARGET_OPTIONS). */
enum { ARGS_OPT_DST = 1, ARGS_OPT_PORT, ARGS_OPT_TOOL };
#define ARGS_TARGET_OPTIONS                                                                                    \
	{"dst", required_argument, NULL, ARGS_OPT_DST}, { "port", required_argument, NULL, ARGS_OPT_PORT }

struct args_target {
	const char *dst;
	unsigned port;
	int have_port;
	struct sockaddr_storage addr; /* set by args_target_resolve() */
	socklen_t addr_len;
};

/* Takes --dst or --port (c, from args_next()) into *t and returns 1; returns 0 for any other option. */
int args_target_option(struct args *a, int c, struct args_target *t);

/* Reports a missing --dst or --port. */
void args_target_check(struct args *a, const struct args_target *t);

/* Resolves --dst and --port into t->addr. Numeric addresses only: no name lookup, so no DNS traffic and no
 * lookup delay in a measurement. An address that is not one is reported and counted; returns 0 or -1. */
int args_target_resolve(struct args *a, struct args_target *t);

/* The number of errors so far; when there are any, also the summary line "PROG: N bad argument(s); see PROG
 * --help". */
int args_finish(const struct args *a);

#endif
