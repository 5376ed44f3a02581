#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "tcp_guard.h"
#include "tcp_isn.h"
#include "console.h"
#include "control.h"
#include "ioapic.h"
#include "loop.h"
#include "lwip/init.h"
#include "lwip/timeouts.h"
#include "netif_virtio.h"
#include "pci.h"
#include "services.h"
#include "virtio_net.h"

struct netif_virtio *net_netifs[VNET_MAX_NICS];
unsigned net_netif_count;

#define TXTEST_ETHERTYPE 0x88B5 /* IEEE local experimental */
#define TXTEST_LEN 60
#define TXTEST_SLOTS 256

/* txtest frames in flight: each has its own buffer, free again once the device has read it. */
static struct {
	struct virtio_net *nic;
	unsigned left, sent;
	uint8_t busy[TXTEST_SLOTS];
	void (*saved_tx_done)(struct virtio_net *n, void *token, void *ctx);
	uint8_t frame[TXTEST_SLOTS][TXTEST_LEN];
} txtest;

static int net_timers_poll(void *ctx)
{
	(void)ctx;
	/* lwIP's timers (ARP, TCP, DHCP, ...) run from the main loop; the tick interrupt wakes it. */
	sys_check_timeouts();
	return 0;
}

static char net_control_buf[4096];

/* Console commands share the status service's control language (net/control.c). */
static void net_cmd_control(int argc, char **argv)
{
	char cmd[96];
	size_t used = 0;
	for (int i = 0; i < argc && used < sizeof(cmd); i++)
		used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, "%s%s", i ? " " : "", argv[i]);
	net_control(cmd, net_control_buf, sizeof(net_control_buf));
	fputs(net_control_buf, stdout);
}

static void net_tx_done(struct virtio_net *n, void *token, void *ctx)
{
	uint8_t *p = token;
	if (p >= &txtest.frame[0][0] && p < &txtest.frame[0][0] + sizeof(txtest.frame))
		txtest.busy[(p - &txtest.frame[0][0]) / TXTEST_LEN] = 0;
	else if (txtest.saved_tx_done)
		txtest.saved_tx_done(n, token, ctx);
}

/* txtest: broadcast frames of a local experimental ethertype carrying a sequence number, sent as fast as
 * the ring takes them; a full ring is retried on the next round (back-pressure, not loss). */
static int net_txtest_poll(void *ctx)
{
	(void)ctx;
	while (txtest.left) {
		unsigned slot = txtest.sent % TXTEST_SLOTS;
		uint8_t *f = txtest.frame[slot];
		if (txtest.busy[slot] && (virtio_net_tx_reclaim(txtest.nic), txtest.busy[slot]))
			return 1;
		memset(f, 0xff, 6);
		memcpy(f + 6, txtest.nic->mac, 6);
		f[12] = TXTEST_ETHERTYPE >> 8;
		f[13] = TXTEST_ETHERTYPE & 0xff;
		memcpy(f + 14, &txtest.sent, sizeof(txtest.sent));
		struct virtq_sg sg = { (uint64_t)(uintptr_t)f, TXTEST_LEN };
		if (virtio_net_xmit(txtest.nic, &sg, 1, f))
			return 1;
		txtest.busy[slot] = 1;
		txtest.sent++;
		txtest.left--;
		if (!txtest.left)
			printf("txtest: sent %u frames\n", txtest.sent);
	}
	return 0;
}

static void net_cmd_txtest(int argc, char **argv)
{
	if (virtio_net_count == 0 || argc < 2) {
		printf("usage: txtest COUNT (needs a NIC)\n");
		return;
	}
	txtest.nic = virtio_net_nics[0];
	/* txtest frames are its own; completions of lwIP's frames still go to lwIP. */
	if (txtest.nic->consumer.tx_done != net_tx_done) {
		txtest.saved_tx_done = txtest.nic->consumer.tx_done;
		txtest.nic->consumer.tx_done = net_tx_done;
	}
	txtest.left = (unsigned)strtoul(argv[1], NULL, 0);
	txtest.sent = 0;
}

static enum vnet_mode net_mode(const char *s)
{
	if (!strcmp(s, "irq"))
		return VNET_MODE_IRQ;
	if (!strcmp(s, "poll"))
		return VNET_MODE_POLL;
	if (!strcmp(s, "coalesce"))
		return VNET_MODE_COALESCE;
	return VNET_MODE_NAPI;
}

int net_init(const struct kernel_config *cfg)
{
	lwip_init();
	printf("net: lwIP %s initialised\n", LWIP_VERSION_STRING);
	tcp_isn_init();
	tcp_guard_init(cfg->tcp_conns);
	pci_init();
	if (ioapic_init())
		printf("net: no IOAPIC; devices without MSI-X cannot interrupt\n");
	printf("net: stage stamp cost %llu ns (TSC read + histogram update; 4 per received frame)\n",
	       (unsigned long long)virtio_net_stamp_cost_ns());
	virtio_net_pool_override = cfg->rxpool;
	virtio_net_init_all(cfg->budget, net_mode(cfg->mode));
	/* net0 takes ip=/gw= and is the default route; further NICs take ip1=/gw1=, ... */
	for (unsigned i = 0; i < virtio_net_count; i++) {
		const char *ip = i == 0 ? cfg->ip : i == 1 ? cfg->ip1 : "";
		const char *gw = i == 0 ? cfg->gw : i == 1 ? cfg->gw1 : "";
		struct netif_virtio *nv = netif_virtio_add(virtio_net_nics[i], ip, gw, cfg->ipv6, i == 0);
		if (nv)
			net_netifs[net_netif_count++] = nv;
	}
	for (unsigned i = 0; i < virtio_net_count; i++)
		virtio_net_set_coalesce(virtio_net_nics[i], cfg->coalesce, cfg->coalesce_us);
	if (net_netif_count) {
		services_start(cfg->services, cfg->tcp_idle_s);
		if (!strcmp(cfg->consumer, "noop"))
			netif_virtio_set_noop(net_netifs[0], 1);
	}
	console_register("stats", net_cmd_control, "print all counters");
	console_register("reset", net_cmd_control, "zero the counters and histograms");
	console_register("hist", net_cmd_control, "hist [buckets|reset]: receive-path stage latencies");
	console_register("mode", net_cmd_control, "mode irq|napi|poll|coalesce [BUDGET]");
	console_register("coalesce", net_cmd_control, "coalesce FRAMES USEC: coalesce-mode threshold and bound");
	console_register("consumer", net_cmd_control, "consumer lwip|noop: noop recycles frames without lwIP");
	console_register("trace", net_cmd_control, "trace on|off|START: per-frame stamps for tools/timeline.py");
	console_register("txtest", net_cmd_txtest, "txtest COUNT: send COUNT broadcast frames (ethertype 88b5)");
	loop_add_poller("txtest", net_txtest_poll, NULL);
	return loop_add_poller("lwip-timers", net_timers_poll, NULL);
}
