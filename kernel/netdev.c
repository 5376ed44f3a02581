/* The NIC registry and the driver-independent half of the netdev interface (kernel/netdev.h). */
#include "netdev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *const netdev_mode_names[NETDEV_MODE_COUNT + 1] = { "irq", "napi", "poll", "coalesce", NULL };

static struct netdev *netdev_table[NETDEV_MAX];
static unsigned netdev_registered;

const char *netdev_mode_name(unsigned mode)
{
	return mode < NETDEV_MODE_COUNT ? netdev_mode_names[mode] : "?";
}

int netdev_mode_parse(const char *s, enum netdev_mode *mode)
{
	for (unsigned m = 0; m < NETDEV_MODE_COUNT; m++) {
		if (!strcmp(s, netdev_mode_names[m])) {
			*mode = (enum netdev_mode)m;
			return 0;
		}
	}
	return -EINVAL;
}

int netdev_register(struct netdev *nd)
{
	if (netdev_registered == NETDEV_MAX)
		return -ENOSPC;
	nd->id = netdev_registered;
	snprintf(nd->name, sizeof(nd->name), "net%u", nd->id);
	netdev_table[netdev_registered++] = nd;
	return 0;
}

unsigned netdev_count(void) { return netdev_registered; }

struct netdev *netdev_get(unsigned i) { return i < netdev_registered ? netdev_table[i] : NULL; }

void netdev_attach(struct netdev *nd, const struct netdev_consumer *c)
{
	if (c)
		nd->consumer = *c;
	else
		memset(&nd->consumer, 0, sizeof(nd->consumer));
}

void netdev_link_changed(struct netdev *nd, int up)
{
	nd->link_up = up;
	if (nd->consumer.link)
		nd->consumer.link(nd, up, nd->consumer.ctx);
}

void netdev_set_queue_config(struct netdev *nd, unsigned queue, const struct netdev_queue_config *qc)
{
	for (unsigned q = 0; q < nd->num_queues; q++) {
		if (queue != NETDEV_ALL_QUEUES && q != queue)
			continue;
		nd->queue[q] = *qc;
		nd->ops->set_queue_config(nd, q, qc);
	}
}
