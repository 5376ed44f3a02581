/* Device reset and re-initialisation without a reboot: the way out when the device sets NEEDS_RESET
 * (virtio 1.x §2.1.2) or when the driver marked a queue broken (the device wrote used entries that cannot be
 * true). The device is reset so it stops using the rings; receive buffers go back to the pool and transmit
 * frames back to their owner (they are lost, and counted); the rings start afresh; features are negotiated
 * again and the device restarted (§3.1.1). The layer above sees a link down, then up. After
 * VNET_RESETS_MAX resets the NIC is declared dead, once, and no longer polled. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "virtio_net.h"

#define VNET_RESETS_MAX 8

static void vnet_kill(struct virtio_net *n, const char *why, int rc)
{
	n->dead = 1;
	printf("virtio-net%u: giving up on the device after %llu reset(s) (%s, %d): NIC dead\n", n->id,
	       (unsigned long long)n->stats.resets, why, rc);
	virtio_reset(&n->vd);
	n->vd.ops->set_status(&n->vd, VIRTIO_STATUS_FAILED);
	virtio_net_irq_teardown(n);
	if (n->nd.link_up)
		netdev_link_changed(&n->nd, 0);
}

/* Everything the device held returns to its owner; the queues go back to their initial state. */
static void vnet_reclaim_all(struct virtio_net *n)
{
	void *token;

	vnet_rx_drain(&n->rx);
	while ((token = virtq_detach_unused(&n->txq))) {
		n->stats.tx_dropped_reset++;
		token = virtio_net_tx_unwrap(n, token);
		if (!virtio_net_txtest_done(n, token) && n->nd.consumer.tx_done)
			n->nd.consumer.tx_done(&n->nd, 0, token, n->nd.consumer.ctx);
	}
	n->tx_tsc_head = n->tx_tsc_tail = 0;
	n->tx_inflight = 0;
	n->rx_pending = 0;
	n->coalesce_deadline = 0;
	n->wd_rx_used = 0;
}

int virtio_net_reset(struct virtio_net *n, const char *why)
{
	int rc;

	if (n->dead)
		return -ENODEV;
	n->stats.resets++;
	n->reset_pending = 0;
	printf("virtio-net%u: resetting the device (%s): reset %llu of at most %u\n", n->id, why,
	       (unsigned long long)n->stats.resets, VNET_RESETS_MAX);
	if (n->stats.resets > VNET_RESETS_MAX) {
		vnet_kill(n, why, -EIO);
		return -EIO;
	}
	if (n->nd.link_up)
		netdev_link_changed(&n->nd, 0);
	rc = virtio_reset(&n->vd);
	if (rc)
		goto err;
	vnet_reclaim_all(n);
	rc = virtio_net_negotiate(n);
	if (!rc)
		rc = virtio_net_queues_attach(n);
	if (rc)
		goto err;
	virtio_net_go(n);
	/* The poller re-arms interrupts the way the delivery mode wants them. */
	n->rx_pending = 1;
	printf("virtio-net%u: device restarted, link %s\n", n->id, n->nd.link_up ? "up" : "down");
	if (n->nd.link_up)
		netdev_link_changed(&n->nd, 1);
	return 0;

err:
	vnet_kill(n, why, rc);
	return rc;
}

int virtio_net_inject_fault(struct netdev *nd, const char *what)
{
	struct virtio_net *n = virtio_net_of(nd);

	/* The same flags the real detectors set: virtq.c marks a queue broken after bad used entries, and a
	 * configuration interrupt with NEEDS_RESET in the status sets reset_pending. */
	if (!strcmp(what, "rx-broken"))
		n->rxq.broken = 1;
	else if (!strcmp(what, "tx-broken"))
		n->txq.broken = 1;
	else if (!strcmp(what, "needs-reset"))
		n->fault_needs_reset = 1, n->cfg_pending = 1;
	else
		return -EINVAL;
	return 0;
}
