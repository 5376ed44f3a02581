#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netif_virtio.h"
#include "services.h"
#include "virtio_net.h"

#define CONTROL_ARGS 4

extern struct netif_virtio *net_netifs[];
extern unsigned net_netif_count;

static size_t control_error(char *out, size_t len, const char *msg, const char *arg)
{
	int k = snprintf(out, len, "error: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
	return k < 0 ? 0 : ((size_t)k < len ? (size_t)k : len - 1);
}

size_t net_control(const char *cmd, char *out, size_t len)
{
	char buf[96], *argv[CONTROL_ARGS] = { 0 };
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", cmd);
	for (char *t = strtok(buf, " \t\r\n"); t && argc < CONTROL_ARGS; t = strtok(NULL, " \t\r\n"))
		argv[argc++] = t;

	if (argc == 0 || !strcmp(argv[0], "stats"))
		return services_format_status(out, len);
	if (!strcmp(argv[0], "reset")) {
		services_reset_counters();
		for (unsigned i = 0; i < virtio_net_count; i++)
			virtio_net_reset_hist(virtio_net_nics[i]);
		return services_format_status(out, len);
	}
	if (!strcmp(argv[0], "hist")) {
		int buckets = argc > 1 && !strcmp(argv[1], "buckets");
		size_t used = 0;
		for (unsigned i = 0; i < virtio_net_count && used + 1 < len; i++) {
			if (argc > 1 && !strcmp(argv[1], "reset"))
				virtio_net_reset_hist(virtio_net_nics[i]);
			used += virtio_net_format_hist(virtio_net_nics[i], out + used, len - used, buckets);
		}
		return used;
	}
	if (!strcmp(argv[0], "mode")) {
		enum vnet_mode mode;
		unsigned budget = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
		if (argc < 2 || virtio_net_mode_parse(argv[1], &mode))
			return control_error(out, len, "mode: expected irq|napi|poll|coalesce, got", argv[1] ? argv[1] : "nothing");
		if (argc > 2 && (budget < 1 || budget > 4096))
			return control_error(out, len, "mode: budget must be 1..4096, got", argv[2]);
		for (unsigned i = 0; i < virtio_net_count; i++)
			virtio_net_set_mode(virtio_net_nics[i], mode, budget);
		return services_format_status(out, len);
	}
	if (!strcmp(argv[0], "coalesce")) {
		unsigned frames = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 0;
		unsigned usec = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
		if (frames < 1 || frames > 256 || usec < 1 || usec > 1000000)
			return control_error(out, len, "coalesce: expected FRAMES (1..256) USEC (1..1000000)", NULL);
		for (unsigned i = 0; i < virtio_net_count; i++)
			virtio_net_set_coalesce(virtio_net_nics[i], frames, usec);
		return services_format_status(out, len);
	}
	if (!strcmp(argv[0], "consumer")) {
		if (argc < 2 || (strcmp(argv[1], "noop") && strcmp(argv[1], "lwip")))
			return control_error(out, len, "consumer: expected lwip|noop, got", argv[1] ? argv[1] : "nothing");
		/* net0 only: a second NIC (management) keeps its stack so the guest stays reachable. */
		if (net_netif_count)
			netif_virtio_set_noop(net_netifs[0], !strcmp(argv[1], "noop"));
		return services_format_status(out, len);
	}
	if (!strcmp(argv[0], "trace")) {
		/* trace on|off on net0, or: trace START -> up to 24 entries from START */
		if (!virtio_net_count)
			return control_error(out, len, "trace: no NIC", NULL);
		struct virtio_net *n = virtio_net_nics[0];
		if (argc > 1 && (!strcmp(argv[1], "on") || !strcmp(argv[1], "off"))) {
			if (virtio_net_trace(n, !strcmp(argv[1], "on")))
				return control_error(out, len, "trace: no memory", NULL);
			return virtio_net_format_trace(n, UINT32_MAX, 0, out, len);
		}
		return virtio_net_format_trace(n, argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 0, 24, out, len);
	}
	return control_error(out, len, "unknown command", argv[0]);
}
