/* The network layer's start-up: lwIP, an lwIP netif over every NIC the kernel registered, the services, the
 * console commands and lwIP's timers in the main loop. */
#include "net.h"

#include <stdio.h>
#include <string.h>

#include "tcp_guard.h"
#include "tcp_isn.h"
#include "console.h"
#include "control.h"
#include "ethif.h"
#include "initcall.h"
#include "loop.h"
#include "lwip/init.h"
#include "lwip/priv/tcp_priv.h" /* tcp_active_pcbs, tcp_tw_pcbs */
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "services.h"
#include "cpu.h"
#include "time.h"

static struct ethif *net_ethifs[NETDEV_MAX];
static struct kernel_config net_cfg;
static char net_control_buf[4096];

struct ethif *net_ethif(unsigned i) { return i < NETDEV_MAX ? net_ethifs[i] : NULL; }

struct kernel_config *net_config(void) { return &net_cfg; }

void net_apply_config(void)
{
	struct netdev_queue_config qc = { (enum netdev_mode)net_cfg.mode, net_cfg.budget, net_cfg.coalesce,
					  net_cfg.coalesce_us };

	for (unsigned i = 0; i < netdev_count(); i++)
		netdev_set_queue_config(netdev_get(i), NETDEV_ALL_QUEUES, &qc);
	/* net0 only: a second NIC (management) keeps its stack so the guest stays reachable. */
	if (net_ethifs[0])
		ethif_set_noop(net_ethifs[0], net_cfg.consumer == CMDLINE_CONSUMER_NOOP);
}

/* lwIP runs its housekeeping timers whether they have work or not: MLD every 100 ms, DHCP's fine timer every
 * 500 ms, ARP, ND and reassembly every second; ten wake-ups a second cost an idle guest ~0.3 % of a host core
 * under TCG. While no TCP connection is open or in TIME_WAIT (TCP's timers are its retransmissions and delayed
 * ACKs, which must be on time), the wake-up moves to the next multiple of timer_slack_ms on lwIP's clock, so
 * the housekeeping timers fire together: an MLD report or a DHCP retransmission is late by less than the slack,
 * well inside the protocols' own randomised delays. Frames wake the guest regardless, and every pass runs
 * whatever is due. */
static uint64_t net_timer_slack(uint64_t due)
{
	u32_t slack = net_cfg.timer_slack_ms;
	if (slack == 0 || tcp_active_pcbs || tcp_tw_pcbs)
		return due;
	return due % slack ? due + (slack - due % slack) : due;
}

/* The TSC deadline last computed for lwIP's next timeout (0: none known), and the slack it was computed with. */
static uint64_t net_timers_due;
static unsigned net_timers_due_slack;

static int net_timers_poll(void *ctx)
{
	(void)ctx;
	/* Without TCP, lwIP's timeouts are its cyclic timers (ARP, ND, MLD, DHCP, reassembly), which only their
	 * own runs re-arm; the one timeout packet processing adds is TCP's (tcp_timer_needed), with a connection
	 * open or in TIME_WAIT. So until the deadline computed last time nothing can be due and the deadline
	 * cannot have moved, whatever frames came and went: asked for again as it is. */
	if (net_timers_due && !tcp_active_pcbs && !tcp_tw_pcbs && net_cfg.timer_slack_ms == net_timers_due_slack &&
	    rdtsc() < net_timers_due) {
		timer_wake_at(net_timers_due);
		return 0;
	}
	/* lwIP's timers (ARP, TCP, DHCP, ...) run from the main loop. There is no periodic tick: the one-shot
	 * timer is asked for lwIP's next deadline. sys_now() counts whole milliseconds (time_ns() truncated), so
	 * a timeout sleeptime ms away is due when that millisecond begins: the wake-up is a microsecond into it
	 * (past the two clock conversions' rounding), neither before lwIP sees it due nor up to a millisecond
	 * after. */
	sys_check_timeouts();
	u32_t ms = sys_timeouts_sleeptime();
	net_timers_due = 0;
	if (ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE) {
		uint64_t due_ms = net_timer_slack(time_ns() / 1000000ull + ms);
		net_timers_due = tsc_boot + ns_to_tsc(due_ms * 1000000ull + 1000);
		net_timers_due_slack = net_cfg.timer_slack_ms;
		timer_wake_at(net_timers_due);
	}
	return 0;
}

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

static void net_register_commands(void)
{
	for (const struct control_command *c = control_commands; c->name; c++)
		console_register(c->name, net_cmd_control, c->help);
}

static int net_init(const struct kernel_config *cfg)
{
	int has_netif = 0;

	net_cfg = *cfg;
	lwip_init();
	printf("net: lwIP %s initialised\n", LWIP_VERSION_STRING);
	tcp_isn_init();
	tcp_guard_init(cfg->tcp_conns);
	/* net0 takes ip=/gw= and is the default route; net1 takes ip1=/gw1=; further NICs no address. */
	for (unsigned i = 0; i < netdev_count(); i++) {
		const char *ip = i == 0 ? cfg->ip : i == 1 ? cfg->ip1 : "";
		const char *gw = i == 0 ? cfg->gw : i == 1 ? cfg->gw1 : "";
		net_ethifs[i] = ethif_add(netdev_get(i), ip, gw, cfg->ipv6, i == 0);
		has_netif |= net_ethifs[i] != NULL;
	}
	net_apply_config();
	if (has_netif)
		services_start(cfg->services, cfg->tcp_idle_s);
	net_register_commands();
	return loop_add_poller("lwip-timers", net_timers_poll, NULL);
}
KERNEL_INITCALL(net_init);
