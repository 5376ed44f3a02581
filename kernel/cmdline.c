#include "cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev.h"

#define CMDLINE_TOKEN_MAX 128

/* Index 0, the empty name, is "no test" (the default); a word `test=` with no name is refused. */
const char *const cmdline_tests[] = { "", "boot", "ticks", "ud", "pf", "gp", "de", "df", "bp", "panic", "heap", "wake", "idle", NULL };
static const char *const cmdline_consumers[] = { "lwip", "noop", NULL };
/* Same order as enum virtio_net_ring (drivers/virtio_net.h). */
static const char *const cmdline_rings[] = { "auto", "split", "packed", NULL };

#define KNOB(field, kind, lo, hi, ch, def, flags, help)                                                        \
	{ #field, kind, offsetof(struct kernel_config, field), sizeof(((struct kernel_config *)0)->field), lo, hi, \
	  ch, def, flags, help }

/* The order is the order of the `config:` line and of the README's table. */
const struct cmdline_knob cmdline_knobs[] = {
	KNOB(test, CMDLINE_ENUM, 0, 0, cmdline_tests, "", 0,
	     "Runs a self-test and exits QEMU with its result (see Test mode below)."),
	KNOB(mode, CMDLINE_ENUM, 0, 0, netdev_mode_names, "napi", CMDLINE_RUNTIME,
	     "Receive delivery mode: an interrupt per frame, budgeted polls after an interrupt, polling only, or "
	     "coalesced interrupts."),
	KNOB(budget, CMDLINE_UINT, 1, 4096, NULL, "64", CMDLINE_RUNTIME,
	     "Used buffers taken per receive poll before other work gets a turn."),
	KNOB(coalesce, CMDLINE_UINT, 1, 256, NULL, "8", CMDLINE_RUNTIME,
	     "Coalesce mode: during bursts, interrupt after this many frames ..."),
	KNOB(coalesce_us, CMDLINE_UINT, 1, 1000000, NULL, "200", CMDLINE_RUNTIME,
	     "... or this many microseconds after the first one waiting."),
	KNOB(consumer, CMDLINE_ENUM, 0, 0, cmdline_consumers, "lwip", CMDLINE_RUNTIME,
	     "`noop`: net0's frames are counted and recycled without lwIP (the receive ceiling)."),
	KNOB(rxpool, CMDLINE_UINT, 8, 65536, NULL, "0", CMDLINE_ZERO_AUTO,
	     "Receive buffers per NIC (0: twice the ring); fewer than the ring exercises refill failure."),
	KNOB(txring, CMDLINE_UINT, 2, 4096, NULL, "0", CMDLINE_ZERO_AUTO,
	     "Transmit frames in flight per NIC at most (0: as many as the ring holds); fewer exercises back-pressure."),
	KNOB(ring, CMDLINE_ENUM, 0, 0, cmdline_rings, "auto", 0,
	     "virtio ring layout: `auto` takes packed rings (VIRTIO_F_RING_PACKED) when the device offers them, "
	     "`split` refuses them, `packed` requires them (a device without them is not used)."),
	KNOB(hz, CMDLINE_UINT, 10, 10000, NULL, "100", 0, "Ticks per second of the coarse clock (timer_ticks: watchdog, heartbeat); the timer itself is one-shot, tickless."),
	KNOB(heartbeat, CMDLINE_UINT, 0, 3600, NULL, "10", 0,
	     "Print `[seconds] ticks=N idle=P%` every this many seconds; 0 turns it off."),
	KNOB(irq_vectors, CMDLINE_UINT, 1, IRQ_DEVICE_VECTORS, NULL, "0", CMDLINE_ZERO_AUTO,
	     "Device interrupt vectors the kernel hands out (0: all); fewer exercises the drivers' fallbacks."),
	KNOB(ip, CMDLINE_STR, 0, 0, NULL, "", 0, "net0's IPv4 address: `ADDR/PREFIX`, or `dhcp` (lwIP's DHCP client)."),
	KNOB(gw, CMDLINE_STR, 0, 0, NULL, "", 0, "net0's IPv4 gateway (the default route)."),
	KNOB(ip1, CMDLINE_STR, 0, 0, NULL, "", 0,
	     "The second NIC's address (`run-qemu.sh --mgmt` passes `ip1=192.168.78.2/24`)."),
	KNOB(gw1, CMDLINE_STR, 0, 0, NULL, "", 0, "The second NIC's gateway."),
	KNOB(ipv6, CMDLINE_BOOL, 0, 1, NULL, "1", 0, "IPv6 link-local address and SLAAC."),
	KNOB(services, CMDLINE_STR, 0, 0, NULL, "all", 0,
	     "Which services start: `all`, `none`, or a list such as `echo,discard,iperf,status`."),
	KNOB(tcp_conns, CMDLINE_UINT, 1, CMDLINE_TCP_CONNS_MAX, NULL, "1024", 0,
	     "TCP connections held at once (besides 128 half-open ones); a SYN beyond them is answered with RST."),
	KNOB(tcp_idle_s, CMDLINE_UINT, 0, 86400, NULL, "300", 0,
	     "The echo, discard and status services close a TCP connection that received nothing for this many "
	     "seconds (0: never)."),
	KNOB(timer_slack_ms, CMDLINE_UINT, 0, 1000, NULL, "500", CMDLINE_RUNTIME,
	     "While no TCP connection is open, lwIP's housekeeping timers (MLD every 100 ms, DHCP, ARP, ND) wake an "
	     "idle guest on a grid of this many ms instead of on their own (0: exact; TCP timers are never "
	     "deferred)."),
	/* A dotted name, as Linux spells it and QEMU microvm appends it: not a C identifier, so no KNOB(). */
	{ "virtio_mmio.device", CMDLINE_VIRTIO_MMIO, offsetof(struct kernel_config, virtio_mmio),
	  sizeof(struct cmdline_virtio_mmio), 0, 0, NULL, "", 0,
	  "A virtio-mmio device window, `SIZE@ADDR:IRQ` (size may end in K or M); QEMU microvm appends one per device "
	  "when it has no ACPI. Repeatable." },
};
const size_t cmdline_knob_count = sizeof(cmdline_knobs) / sizeof(cmdline_knobs[0]);

const struct cmdline_knob *cmdline_knob_find(const char *name)
{
	for (size_t i = 0; i < cmdline_knob_count; i++)
		if (!strcmp(cmdline_knobs[i].name, name))
			return &cmdline_knobs[i];
	return NULL;
}

static int cmdline_parse_uint(const char *v, const struct cmdline_knob *k, unsigned *out)
{
	int hex = v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
	char *end;
	unsigned long x;

	if (*v < '0' || *v > '9')
		return -1;
	/* Decimal, or hexadecimal with 0x; never octal (budget=010 is ten, not eight). */
	x = hex ? strtoul(v + 2, &end, 16) : strtoul(v, &end, 10);
	if (end == (hex ? v + 2 : v) || *end)
		return -1;
	if ((x < k->min || x > k->max) && !(x == 0 && (k->flags & CMDLINE_ZERO_AUTO)))
		return -1;
	*out = (unsigned)x;
	return 0;
}

/* One SIZE@ADDR:IRQ entry (Linux's virtio_mmio.device syntax: size in bytes, with an optional K or M). */
static int cmdline_parse_mmio_one(const char *v, unsigned long long *base, unsigned *size, unsigned *irq)
{
	char *end;
	unsigned long long sz, b, i;

	if (*v < '0' || *v > '9')
		return -1;
	sz = strtoull(v, &end, 0);
	if (*end == 'K' || *end == 'k')
		sz <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		sz <<= 20, end++;
	if (*end != '@' || end[1] < '0' || end[1] > '9')
		return -1;
	b = strtoull(end + 1, &end, 0);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return -1;
	i = strtoull(end + 1, &end, 0);
	if (*end || sz == 0 || sz > 0xFFFFFFFFull || i > 255 || b == 0)
		return -1;
	*base = b;
	*size = (unsigned)sz;
	*irq = (unsigned)i;
	return 0;
}

/* A comma-separated list of entries, all added or none. */
static int cmdline_parse_mmio(const char *v, struct cmdline_virtio_mmio *m)
{
	struct cmdline_virtio_mmio t = *m;
	char one[CMDLINE_TOKEN_MAX];

	if (!v || !*v)
		return -1;
	while (*v) {
		size_t n = strcspn(v, ",");
		if (n == 0 || n >= sizeof(one) || t.count == CMDLINE_VIRTIO_MMIO_MAX)
			return -1;
		memcpy(one, v, n);
		one[n] = '\0';
		if (cmdline_parse_mmio_one(one, &t.dev[t.count].base, &t.dev[t.count].size, &t.dev[t.count].irq))
			return -1;
		t.count++;
		v += n;
		if (*v == ',' && !*++v)
			return -1;
	}
	*m = t;
	return 0;
}

/* What a knob accepts, for error messages and the README. */
static int cmdline_expected(const struct cmdline_knob *k, char *buf, size_t len)
{
	size_t used = 0;

	switch (k->kind) {
	case CMDLINE_BOOL:
		return snprintf(buf, len, "0/1, on/off or yes/no");
	case CMDLINE_UINT:
		return snprintf(buf, len, "an integer in %s%u..%u", (k->flags & CMDLINE_ZERO_AUTO) ? "0 or " : "", k->min,
				k->max);
	case CMDLINE_STR:
		return snprintf(buf, len, "a non-empty value of at most %zu characters", k->size - 1);
	case CMDLINE_ENUM:
		for (const char *const *c = k->choices; *c && used < len; c++)
			if (**c)
				used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "one of ", *c);
		return (int)used;
	case CMDLINE_VIRTIO_MMIO:
		return snprintf(buf, len, "SIZE@ADDR:IRQ, e.g. 512@0xfeb00e00:12 (at most %u in all)",
				CMDLINE_VIRTIO_MMIO_MAX);
	}
	return 0;
}

static int cmdline_store(struct kernel_config *cfg, const struct cmdline_knob *k, const char *val)
{
	char *field = (char *)cfg + k->offset;

	switch (k->kind) {
	case CMDLINE_BOOL:
		if (!val || !strcmp(val, "1") || !strcmp(val, "on") || !strcmp(val, "yes")) {
			*(int *)field = 1;
			return 0;
		}
		if (!strcmp(val, "0") || !strcmp(val, "off") || !strcmp(val, "no")) {
			*(int *)field = 0;
			return 0;
		}
		return -1;
	case CMDLINE_UINT:
		return val ? cmdline_parse_uint(val, k, (unsigned *)field) : -1;
	case CMDLINE_STR:
		/* Empty is only ever a default: a word `ip=` is a mistake, not a way to unset. */
		if (!val || !*val || strlen(val) >= k->size)
			return -1;
		strcpy(field, val);
		return 0;
	case CMDLINE_ENUM:
		/* The empty choice is the "none" default, never something to write on the command line. */
		for (unsigned i = 0; val && *val && k->choices[i]; i++) {
			if (!strcmp(val, k->choices[i])) {
				*(unsigned *)field = i;
				return 0;
			}
		}
		return -1;
	case CMDLINE_VIRTIO_MMIO:
		return cmdline_parse_mmio(val, (struct cmdline_virtio_mmio *)field);
	}
	return -1;
}

void cmdline_defaults(struct kernel_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		const struct cmdline_knob *k = &cmdline_knobs[i];
		/* The table's defaults are checked by the unit tests: each must be a value its own knob accepts. */
		if (k->kind == CMDLINE_STR)
			strcpy((char *)cfg + k->offset, k->def);
		else if (*k->def)
			cmdline_store(cfg, k, k->def);
	}
}

int cmdline_set(struct kernel_config *cfg, const char *key, const char *val, char *err, size_t errlen)
{
	const struct cmdline_knob *k = cmdline_knob_find(key);
	char expect[160];

	if (!k) {
		snprintf(err, errlen, "unknown option '%s'", key);
		return -EINVAL;
	}
	if (!cmdline_store(cfg, k, val))
		return 0;
	cmdline_expected(k, expect, sizeof(expect));
	snprintf(err, errlen, "option '%s': bad value '%s' (expected %s)", key, val ? val : "", expect);
	return -EINVAL;
}

int cmdline_parse(const char *s, struct kernel_config *cfg, cmdline_report_fn report, void *ctx)
{
	int problems = 0;
	char tok[CMDLINE_TOKEN_MAX], msg[320], err[256];

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
		char *eq = strchr(tok, '=');
		msg[0] = '\0';
		if (too_long) {
			snprintf(msg, sizeof(msg), "cmdline: option starting '%.32s' is too long, ignored", tok);
		} else if (eq == tok) {
			snprintf(msg, sizeof(msg), "cmdline: '%s' has no option name, ignored", tok);
		} else {
			if (eq)
				*eq = '\0';
			if (!cmdline_knob_find(tok))
				snprintf(msg, sizeof(msg), "cmdline: unknown option '%s' ignored", tok);
			else if (cmdline_set(cfg, tok, eq ? eq + 1 : NULL, err, sizeof(err)))
				snprintf(msg, sizeof(msg), "cmdline: %s; value unchanged", err);
		}
		if (msg[0]) {
			problems++;
			if (report)
				report(ctx, msg);
		}
	}
	return problems;
}

int cmdline_format_value(const struct kernel_config *cfg, const struct cmdline_knob *k, char *buf, size_t len)
{
	const char *field = (const char *)cfg + k->offset;

	switch (k->kind) {
	case CMDLINE_BOOL:
		return snprintf(buf, len, "%d", *(const int *)field);
	case CMDLINE_UINT:
		return snprintf(buf, len, "%u", *(const unsigned *)field);
	case CMDLINE_STR:
		return snprintf(buf, len, "%s", field);
	case CMDLINE_ENUM: {
		unsigned i = *(const unsigned *)field, n = 0;
		while (k->choices[n])
			n++;
		return snprintf(buf, len, "%s", i < n ? k->choices[i] : "?");
	}
	case CMDLINE_VIRTIO_MMIO: {
		/* Comma-joined, so the config line parses back to the same list. */
		const struct cmdline_virtio_mmio *m = (const void *)field;
		size_t used = 0;
		if (len)
			buf[0] = '\0';
		for (unsigned i = 0; i < m->count; i++)
			used += (size_t)snprintf(buf + (used < len ? used : len), used < len ? len - used : 0, "%s%u@%#llx:%u",
						 i ? "," : "", m->dev[i].size, m->dev[i].base, m->dev[i].irq);
		return (int)used;
	}
	}
	return 0;
}

int cmdline_format(const struct kernel_config *cfg, char *buf, size_t len)
{
	size_t used = 0;
	char val[256]; /* a virtio_mmio.device list is the longest */

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		const struct cmdline_knob *k = &cmdline_knobs[i];
		cmdline_format_value(cfg, k, val, sizeof(val));
		/* Empty strings are left out, so the line parses back to the same configuration. */
		if (!val[0])
			continue;
		used += (size_t)snprintf(buf + (used < len ? used : len), used < len ? len - used : 0, "%s%s=%s",
					 used ? " " : "", k->name, val);
	}
	return (int)used;
}

int cmdline_format_markdown(char *buf, size_t len)
{
	size_t used = 0;
	char expect[160];

#define MD_APPEND(...) \
	(used += (size_t)snprintf(buf + (used < len ? used : len), used < len ? len - used : 0, __VA_ARGS__))
	MD_APPEND("| Option | Values | Default | Run time | Effect |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < cmdline_knob_count; i++) {
		const struct cmdline_knob *k = &cmdline_knobs[i];
		if (k->kind == CMDLINE_STR)
			snprintf(expect, sizeof(expect), "text, at most %zu characters", k->size - 1);
		else if (k->kind == CMDLINE_ENUM) {
			/* Not "a|b": a bar would end the Markdown cell. */
			size_t e = 0;
			expect[0] = '\0';
			for (const char *const *c = k->choices; *c && e < sizeof(expect); c++)
				if (**c)
					e += (size_t)snprintf(expect + e, sizeof(expect) - e, "%s`%s`", e ? " " : "", *c);
		}
		else if (k->kind == CMDLINE_BOOL)
			snprintf(expect, sizeof(expect), "0/1, on/off, yes/no");
		else if (k->kind == CMDLINE_VIRTIO_MMIO)
			snprintf(expect, sizeof(expect), "`SIZE@ADDR:IRQ`, comma-separated, at most %u", CMDLINE_VIRTIO_MMIO_MAX);
		else
			snprintf(expect, sizeof(expect), "%s%u..%u", (k->flags & CMDLINE_ZERO_AUTO) ? "0 or " : "", k->min,
				 k->max);
		MD_APPEND("| `%s` | %s | %s%s%s | %s | %s |\n", k->name, expect, *k->def ? "`" : "", *k->def ? k->def : "none",
			  *k->def ? "`" : "", (k->flags & CMDLINE_RUNTIME) ? "yes" : "", k->help);
	}
#undef MD_APPEND
	return (int)used;
}
