#include "net.h"

#include <stdio.h>

#include "cmdline.h"
#include "loop.h"
#include "lwip/init.h"
#include "lwip/timeouts.h"

static int net_timers_poll(void *ctx)
{
	(void)ctx;
	/* lwIP's timers (ARP, TCP, DHCP, ...) run from the main loop; the tick interrupt wakes it. */
	sys_check_timeouts();
	return 0;
}

int net_init(const struct kernel_config *cfg)
{
	(void)cfg;
	lwip_init();
	printf("net: lwIP %s initialised\n", LWIP_VERSION_STRING);
	return loop_add_poller("lwip-timers", net_timers_poll, NULL);
}
