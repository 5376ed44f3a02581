#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "net.h"
#include "services.h"

#define CONTROL_ARGS 4
#define CONTROL_TRACE_LINES 24

const struct control_command control_commands[] = {
	{ "stats", "print all counters" },
	{ "reset", "zero the counters and histograms" },
	{ "hist", "hist [buckets|reset]: receive-path stage latencies" },
	{ "mode", "mode irq|napi|poll|coalesce [BUDGET]" },
	{ "coalesce", "coalesce FRAMES USEC: coalesce-mode threshold and bound" },
	{ "consumer", "consumer lwip|noop: noop recycles frames without lwIP" },
	{ "set", "set KNOB VALUE (or KNOB=VALUE): change a run-time knob (see config)" },
	{ "config", "print the configuration in force, as a command line" },
	{ "trace", "trace on|off|START: per-frame stamps for tools/timeline.py" },
	{ "txtest", "txtest COUNT: send COUNT broadcast frames (ethertype 88b5) on net0" },
	{ "fault", "fault rx-broken|tx-broken|needs-reset: make net0's driver recover from that fault (tests)" },
	{ "iperf", "iperf ADDR [PORT]: send to an iperf2 server on a local subnet for 10 s (guest->host)" },
	{ NULL, NULL },
};

static size_t control_error(char *out, size_t len, const char *msg, const char *arg)
{
	int k = snprintf(out, len, "error: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
	return k < 0 ? 0 : ((size_t)k < len ? (size_t)k : len - 1);
}

/* Sets run-time knobs from (name, value) pairs, all or none: a bad value leaves the configuration as it was
 * and names the knob. */
static size_t control_set(const char *const *kv, unsigned pairs, char *out, size_t len)
{
	struct kernel_config c = *net_config();
	char err[256];

	for (unsigned i = 0; i < pairs; i++) {
		const struct cmdline_knob *k = cmdline_knob_find(kv[2 * i]);
		if (k && !(k->flags & CMDLINE_RUNTIME))
			return control_error(out, len, "only the command line sets", kv[2 * i]);
		if (cmdline_set(&c, kv[2 * i], kv[2 * i + 1], err, sizeof(err)))
			return control_error(out, len, err, NULL);
	}
	*net_config() = c;
	net_apply_config();
	return services_format_status(out, len);
}

static size_t control_hist(int argc, char **argv, char *out, size_t len)
{
	int buckets = argc > 1 && !strcmp(argv[1], "buckets");
	size_t used = 0;

	for (unsigned i = 0; i < netdev_count() && used + 1 < len; i++) {
		struct netdev *nd = netdev_get(i);
		if (argc > 1 && !strcmp(argv[1], "reset"))
			nd->ops->reset_hist(nd);
		used += nd->ops->format_hist(nd, out + used, len - used, buckets);
	}
	return used < len ? used : len - 1;
}

static size_t control_trace(int argc, char **argv, char *out, size_t len)
{
	/* trace on|off on net0, or: trace START -> up to CONTROL_TRACE_LINES entries from START */
	struct netdev *nd = netdev_get(0);

	if (!nd)
		return control_error(out, len, "trace: no NIC", NULL);
	if (argc > 1 && (!strcmp(argv[1], "on") || !strcmp(argv[1], "off"))) {
		if (nd->ops->trace(nd, !strcmp(argv[1], "on")))
			return control_error(out, len, "trace: no memory", NULL);
		return nd->ops->format_trace(nd, UINT32_MAX, 0, out, len);
	}
	return nd->ops->format_trace(nd, argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 0, CONTROL_TRACE_LINES, out,
				     len);
}

static size_t control_txtest(int argc, char **argv, char *out, size_t len)
{
	struct netdev *nd = netdev_get(0);
	char *end;
	unsigned long count = argc > 1 ? strtoul(argv[1], &end, 10) : 0;

	if (!nd || argc < 2 || *end || count == 0 || count > 100000000ul)
		return control_error(out, len, "usage: txtest COUNT (1..100000000; needs a NIC)", NULL);
	if (nd->ops->tx_test(nd, (unsigned)count))
		return control_error(out, len, "txtest: no memory", NULL);
	return (size_t)snprintf(out, len, "txtest: sending %lu frames on %s\n", count, nd->name);
}

static size_t control_fault(int argc, char **argv, char *out, size_t len)
{
	struct netdev *nd = netdev_get(0);

	if (!nd || argc != 2)
		return control_error(out, len, "usage: fault rx-broken|tx-broken|needs-reset (needs a NIC)", NULL);
	if (nd->ops->inject_fault(nd, argv[1]))
		return control_error(out, len, "fault: expected rx-broken|tx-broken|needs-reset, got", argv[1]);
	return (size_t)snprintf(out, len, "fault: %s injected on %s\n", argv[1], nd->name);
}

size_t net_control(const char *cmd, char *out, size_t len)
{
	char buf[96], *argv[CONTROL_ARGS] = { 0 };
	const char *kv[4];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", cmd);
	for (char *t = strtok(buf, " \t\r\n"); t && argc < CONTROL_ARGS; t = strtok(NULL, " \t\r\n"))
		argv[argc++] = t;

	if (argc == 0 || !strcmp(argv[0], "stats"))
		return services_format_status(out, len);
	if (!strcmp(argv[0], "reset")) {
		services_reset_counters();
		for (unsigned i = 0; i < netdev_count(); i++)
			netdev_get(i)->ops->reset_hist(netdev_get(i));
		return services_format_status(out, len);
	}
	if (!strcmp(argv[0], "hist"))
		return control_hist(argc, argv, out, len);
	if (!strcmp(argv[0], "mode")) {
		/* mode M [BUDGET] */
		kv[0] = "mode", kv[1] = argc > 1 ? argv[1] : "", kv[2] = "budget", kv[3] = argv[2];
		return control_set(kv, argc > 2 ? 2 : 1, out, len);
	}
	if (!strcmp(argv[0], "coalesce")) {
		/* coalesce FRAMES USEC */
		if (argc != 3)
			return control_error(out, len, "usage: coalesce FRAMES USEC", NULL);
		kv[0] = "coalesce", kv[1] = argv[1], kv[2] = "coalesce_us", kv[3] = argv[2];
		return control_set(kv, 2, out, len);
	}
	if (!strcmp(argv[0], "consumer")) {
		kv[0] = "consumer", kv[1] = argc > 1 ? argv[1] : "";
		return control_set(kv, 1, out, len);
	}
	if (!strcmp(argv[0], "set")) {
		/* set KNOB VALUE, or set KNOB=VALUE */
		char *eq = argc == 2 ? strchr(argv[1], '=') : NULL;
		if (eq)
			*eq = '\0';
		if (!(argc == 3 || eq))
			return control_error(out, len, "usage: set KNOB VALUE", NULL);
		kv[0] = argv[1], kv[1] = eq ? eq + 1 : argv[2];
		return control_set(kv, 1, out, len);
	}
	if (!strcmp(argv[0], "config")) {
		int k = cmdline_format(net_config(), out, len > 1 ? len - 1 : 0);
		size_t used = k < 0 ? 0 : ((size_t)k < len - 1 ? (size_t)k : len - 2);
		out[used++] = '\n';
		out[used] = '\0';
		return used;
	}
	if (!strcmp(argv[0], "trace"))
		return control_trace(argc, argv, out, len);
	if (!strcmp(argv[0], "txtest"))
		return control_txtest(argc, argv, out, len);
	if (!strcmp(argv[0], "fault"))
		return control_fault(argc, argv, out, len);
	if (!strcmp(argv[0], "iperf"))
		return services_iperf_client(argv[1], argc > 2 ? argv[2] : NULL, out, len);
	return control_error(out, len, "unknown command", argv[0]);
}
