/* virtio-net driver: probe and initialise every virtio-net device, PCI function or virtio-mmio window, register
 * each as a netdev and serve it from the main loop (virtio_net_poll.c). Past the transport probe the driver
 * sees only the ops table of drivers/virtio.h. */
#include "virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "mm.h"
#include "virtio_mmio.h"

#define VIRTIO_NET_DEVICE_MODERN 0x1041
#define VIRTIO_NET_DEVICE_LEGACY 0x1000
#define VIRTIO_NET_CFG_MAC 0
#define VIRTIO_NET_CFG_STATUS 6
#define VIRTIO_NET_CFG_MTU 10 /* after max_virtqueue_pairs (§5.1.4) */
#define VNET_MTU_MIN 68       /* §5.1.4.1: the device's mtu is at least 68 */
#define VNET_RXQ 0
#define VNET_TXQ 1
#define VNET_BUF_SIZE 2048 /* header + the largest frame without GSO (1514), rounded to keep buffers aligned */
#define VNET_QUEUE_MAX 1024
#define VNET_MTU 1500
#define VNET_MSIX_CONFIG 0
#define VNET_MSIX_RX 1
#define VNET_MSIX_TX 2

/* ---- the receive buffer pool ---- */

void *virtio_net_pool_alloc(void *ctx)
{
	struct virtio_net *n = ctx;
	return n->pool_free ? n->pool[--n->pool_free] : NULL;
}

void virtio_net_pool_free(void *ctx, void *buf)
{
	struct virtio_net *n = ctx;
	if (n->pool_free < n->pool_size)
		n->pool[n->pool_free++] = buf;
	else
		n->stats.pool_overflow++; /* more frees than buffers: a double free above us */
}

#define VNET_BUF_STRIDE (VNET_BUF_HEADROOM + VNET_BUF_SIZE)

static size_t vnet_pool_pages(unsigned buffers) { return ((size_t)buffers * VNET_BUF_STRIDE + PAGE_SIZE - 1) / PAGE_SIZE; }

static int vnet_pool_init(struct virtio_net *n, unsigned rxpool)
{
	/* A full ring plus as many again for frames the stack above still holds (reassembly, out-of-order TCP
	 * segments): with zero-copy receive those are ring buffers too. */
	const size_t stride = VNET_BUF_STRIDE;
	n->pool_size = rxpool ? rxpool : 2u * n->rxq.size;
	n->pool = calloc(n->pool_size, sizeof(void *));
	/* Not cleared: the device writes a receive buffer before the driver reads it. */
	uint8_t *mem = page_alloc_uninit(vnet_pool_pages(n->pool_size));
	if (!n->pool || !mem) {
		printf("virtio-net%u: no memory for %u receive buffers\n", n->id, n->pool_size);
		if (mem)
			page_free(mem, vnet_pool_pages(n->pool_size));
		free(n->pool);
		n->pool = NULL;
		return -ENOMEM;
	}
	n->pool_mem = mem;
	for (unsigned i = 0; i < n->pool_size; i++)
		n->pool[i] = mem + (size_t)i * stride + VNET_BUF_HEADROOM;
	n->pool_free = n->pool_size;
	return 0;
}

/* ---- the netdev operations kept here (the rest: virtio_net_tx.c, virtio_net_obs.c) ---- */

static void vnet_rx_buf_free(struct netdev *nd, unsigned queue, void *buf)
{
	(void)queue;
	virtio_net_pool_free(virtio_net_of(nd), buf);
}

static unsigned vnet_rx_pool_free(struct netdev *nd, unsigned queue, unsigned *size)
{
	struct virtio_net *n = virtio_net_of(nd);
	(void)queue;
	if (size)
		*size = n->pool_size;
	return n->pool_free;
}

static const struct netdev_ops vnet_netdev_ops = {
	.xmit = virtio_net_xmit,
	.tx_reclaim = virtio_net_tx_reclaim,
	.rx_buf_free = vnet_rx_buf_free,
	.rx_pool_free = vnet_rx_pool_free,
	.set_queue_config = virtio_net_set_queue_config,
	.format_stats = virtio_net_format_stats,
	.format_summary = virtio_net_format_summary,
	.reset_stats = virtio_net_reset_stats,
	.format_hist = virtio_net_format_hist,
	.reset_hist = virtio_net_reset_hist,
	.trace = virtio_net_trace,
	.format_trace = virtio_net_format_trace,
	.tx_test = virtio_net_tx_test,
	.inject_fault = virtio_net_inject_fault,
};

/* ---- device set-up ---- */

static int vnet_queue_alloc(struct virtio_net *n, struct virtq *vq, uint16_t index)
{
	uint16_t max = n->vd.ops->queue_max_size(&n->vd, index), size = max;
	int rc;

	if (max == 0) {
		printf("virtio-net%u: queue %u does not exist\n", n->id, index);
		return -ENODEV;
	}
	if (n->vd.ops->size_settable && size > VNET_QUEUE_MAX)
		size = VNET_QUEUE_MAX;
	void *mem = page_alloc((virtq_mem_size(size) + PAGE_SIZE - 1) / PAGE_SIZE);
	if (!mem) {
		printf("virtio-net%u: no memory for queue %u (%u entries)\n", n->id, index, size);
		return -ENOMEM;
	}
	/* The layout (split or packed) is the negotiated one; above virtq.h nothing depends on it. */
	rc = virtq_init(vq, index, size, mem, virtio_virtq_flags(&n->vd));
	if (rc) {
		printf("virtio-net%u: queue %u: bad size %u (%d)\n", n->id, index, size, rc);
		page_free(mem, (virtq_mem_size(size) + PAGE_SIZE - 1) / PAGE_SIZE);
		vq->desc = NULL;
	}
	return rc;
}

/* Undoes vnet_queue_alloc (a queue that was never allocated has no rings: nothing to do). */
static void vnet_queue_free(struct virtq *vq)
{
	if (!vq->desc)
		return;
	page_free(vq->desc, (virtq_mem_size(vq->size) + PAGE_SIZE - 1) / PAGE_SIZE);
	virtq_destroy(vq);
	vq->desc = NULL;
}

static void vnet_read_config(struct virtio_net *n)
{
	struct virtio_dev *vd = &n->vd;
	uint8_t gen;

	/* §2.5.1: re-read until the generation is stable, so MAC and status come from one configuration. */
	for (int tries = 0; tries < 8; tries++) {
		gen = vd->ops->config_generation(vd);
		if (virtio_has(vd, VIRTIO_NET_F_MAC))
			for (int i = 0; i < 6; i++)
				n->nd.mac[i] = (uint8_t)vd->ops->config_read(vd, VIRTIO_NET_CFG_MAC + i, 1);
		n->nd.link_up = virtio_has(vd, VIRTIO_NET_F_STATUS)
					? (vd->ops->config_read(vd, VIRTIO_NET_CFG_STATUS, 2) & VIRTIO_NET_S_LINK_UP) != 0
					: 1;
		if (vd->ops->config_generation(vd) == gen)
			break;
	}
}

void virtio_net_config_change(struct virtio_net *n)
{
	int was = n->nd.link_up;
	n->cfg_pending = 0;
	if ((n->vd.ops->get_status(&n->vd) & VIRTIO_STATUS_NEEDS_RESET) || n->fault_needs_reset) {
		n->fault_needs_reset = 0;
		printf("virtio-net%u: device needs a reset\n", n->id);
		n->reset_pending = 1;
		return;
	}
	vnet_read_config(n);
	if (n->nd.link_up != was) {
		n->stats.link_changes++;
		printf("virtio-net%u: link %s\n", n->id, n->nd.link_up ? "up" : "down");
		netdev_link_changed(&n->nd, n->nd.link_up);
	}
}

static const char *vnet_feature_names(uint64_t f, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ VIRTIO_F_VERSION_1, "VERSION_1" }, { VIRTIO_NET_F_MAC, "MAC" },
		{ VIRTIO_NET_F_STATUS, "STATUS" },   { VIRTIO_F_RING_EVENT_IDX, "EVENT_IDX" },
		{ VIRTIO_NET_F_MRG_RXBUF, "MRG_RXBUF" }, { VIRTIO_F_ANY_LAYOUT, "ANY_LAYOUT" },
		{ VIRTIO_F_RING_PACKED, "RING_PACKED" },
		{ VIRTIO_NET_F_CSUM, "CSUM" }, { VIRTIO_NET_F_GUEST_CSUM, "GUEST_CSUM" },
		{ VIRTIO_NET_F_GUEST_TSO4, "GUEST_TSO4" }, { VIRTIO_NET_F_GUEST_TSO6, "GUEST_TSO6" },
		{ VIRTIO_NET_F_GUEST_ECN, "GUEST_ECN" }, { VIRTIO_NET_F_MTU, "MTU" },
	};
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((f >> names[i].bit) & 1)
			used += (size_t)snprintf(buf + used, len > used ? len - used : 0, "%s%s", used ? " " : "", names[i].name);
	return buf;
}

/* Steps 1-6 of §3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; then the header size they imply. */
#define F(bit) (1ull << (bit))
#define VNET_F_GUEST_GSO (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN))

/* Drops what a negotiated set may not contain (§5.1.3.1: a feature without the one it requires), and the
 * large receive offloads without MRG_RXBUF: §5.1.6.3.1 would then want every posted buffer to hold a 64 KiB
 * packet (65562 bytes), and we post 2 KiB buffers. */
static uint64_t vnet_features_consistent(uint64_t f)
{
	if (!(f & F(VIRTIO_NET_F_GUEST_CSUM)) || !(f & F(VIRTIO_NET_F_MRG_RXBUF)))
		f &= ~VNET_F_GUEST_GSO;
	if (!(f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))))
		f &= ~F(VIRTIO_NET_F_GUEST_ECN);
	return f;
}

int virtio_net_negotiate(struct virtio_net *n)
{
	/* GUEST_CSUM (§5.1.3): the device may hand us frames whose TCP/UDP checksum it verified (DATA_VALID)
	 * or that a local sender left partial (NEEDS_CSUM); without it QEMU's tap backend has the host kernel
	 * complete every checksum and the guest verifies each one again. CSUM: we may send frames with a partial
	 * checksum (NEEDS_CSUM, §5.1.6.2) that the device (the host kernel, through the tap) completes.
	 * GUEST_TSO4/6 and GUEST_ECN: the host may hand us TCP super-segments of up to 64 KiB (the tap's GSO
	 * packets as they are), one used entry over merged buffers instead of ~45 wire frames. */
	const uint64_t wanted = F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) |
				F(VIRTIO_F_RING_EVENT_IDX) | F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_F_ANY_LAYOUT) |
				F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_MTU) | VNET_F_GUEST_GSO;
	/* ring=split refuses packed rings (§2.8) so one device can be measured both ways; ring=packed requires
	 * them, so a measurement never silently runs on split. */
	uint64_t packed = n->ring == VNET_RING_SPLIT ? 0 : F(VIRTIO_F_RING_PACKED);
	uint64_t required = F(VIRTIO_F_VERSION_1) | (n->ring == VNET_RING_PACKED ? packed : 0);
	int rc = virtio_negotiate(&n->vd, wanted | packed, required);
	if (rc)
		return rc;
	/* What the device offered decides the dependencies; the device is not told of a set it cannot honour,
	 * so a second, consistent negotiation (from reset, §3.1.1) replaces the first. */
	uint64_t consistent = vnet_features_consistent(n->vd.features);
	if (consistent != n->vd.features) {
		rc = virtio_negotiate(&n->vd, consistent, required);
		if (rc)
			return rc;
	}
	n->hdr_len = (virtio_has(&n->vd, VIRTIO_F_VERSION_1) || virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF))
			     ? VIRTIO_NET_HDR_LEN
			     : VIRTIO_NET_HDR_LEN_LEGACY;
	n->rx_offloads = (virtio_has(&n->vd, VIRTIO_NET_F_GUEST_CSUM) ? VNET_RX_OFF_CSUM : 0) |
			 (virtio_has(&n->vd, VIRTIO_NET_F_GUEST_TSO4) ? VNET_RX_OFF_TSO4 : 0) |
			 (virtio_has(&n->vd, VIRTIO_NET_F_GUEST_TSO6) ? VNET_RX_OFF_TSO6 : 0) |
			 (virtio_has(&n->vd, VIRTIO_NET_F_GUEST_ECN) ? VNET_RX_OFF_ECN : 0);
	vnet_rx_set_offloads(&n->rx, n->rx_offloads);
	return 0;
}

/* Step 7, the part repeated after every reset: the configuration vector and both queues' rings (already
 * allocated) handed to the device, and its configuration read. */
int virtio_net_queues_attach(struct virtio_net *n)
{
	int rc;

	if (n->use_msix && n->vd.ops->set_config_vector(&n->vd, VNET_MSIX_CONFIG))
		printf("virtio-net%u: device refused the config MSI-X vector\n", n->id);
	rc = n->vd.ops->queue_setup(&n->vd, &n->rxq, virtio_net_irq_entry(n, VNET_MSIX_RX));
	if (!rc)
		rc = n->vd.ops->queue_setup(&n->vd, &n->txq, virtio_net_irq_entry(n, VNET_MSIX_TX));
	if (rc) {
		printf("virtio-net%u: queue setup refused (%d)\n", n->id, rc);
		return rc;
	}
	vnet_read_config(n);
	return 0;
}

/* §5.1.5: the receive queue is filled before DRIVER_OK so the device has buffers from its first frame;
 * step 8, DRIVER_OK. */
void virtio_net_go(struct virtio_net *n)
{
	int kick;

	vnet_rx_refill(&n->rx, &kick);
	/* Transmit completions are reclaimed by polling; the TX interrupt is only wanted when the ring is full. */
	virtq_disable_cb(&n->txq);
	virtio_driver_ok(&n->vd);
	n->vd.ops->notify(&n->vd, &n->rxq);
}

/* Step 7 of §3.1.1 for virtio-net (§5.1.5), the first time: rings for the receive and transmit queues
 * (§5.1.2), then the driver's own per-NIC state. */
static int vnet_setup_queues(struct virtio_net *n, const struct virtio_net_params *p)
{
	static const char *const hist_names[VNET_H_COUNT] = { "irq_to_poll_ns", "poll_to_dequeue_ns", "input_ns",
							      "irq_to_txkick_ns", "tx_complete_ns" };
	int rc;

	rc = vnet_queue_alloc(n, &n->rxq, VNET_RXQ);
	if (!rc)
		rc = vnet_queue_alloc(n, &n->txq, VNET_TXQ);
	if (!rc)
		rc = virtio_net_queues_attach(n);
	if (rc)
		return rc;
	for (int i = 0; i < VNET_H_COUNT; i++)
		hist_init(&n->hist[i], hist_names[i]);
	n->tx_tsc = calloc(n->txq.size, sizeof(uint64_t));
	n->tx_slots = calloc(n->txq.size, sizeof(*n->tx_slots));
	n->tx_slot_free = calloc(n->txq.size, sizeof(uint16_t));
	for (unsigned i = 0; n->tx_slot_free && i < n->txq.size; i++)
		n->tx_slot_free[n->tx_slot_nfree++] = (uint16_t)i;
	if (!n->tx_tsc || !n->tx_slots || !n->tx_slot_free) {
		printf("virtio-net%u: no memory for transmit stamps\n", n->id);
		return -ENOMEM;
	}
	rc = vnet_pool_init(n, p->rxpool);
	n->tx_limit = p->txring ? p->txring : n->txq.size;
	if (rc)
		return rc;
	vnet_rx_init(&n->rx, &n->rxq, VNET_BUF_SIZE, n->hdr_len, virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF),
		     &virtio_net_rx_ops, n);
	vnet_rx_set_offloads(&n->rx, n->rx_offloads);
	return 0;
}

/* The MTU the netif uses: the device's (VIRTIO_NET_F_MTU, QEMU's host_mtu=), else Ethernet's. §5.1.6.3.1 asks
 * for receive buffers that hold an mtu-sized frame: merged buffers hold any size; one buffer without
 * MRG_RXBUF holds what fits in it, and a larger MTU is refused (logged) rather than frames dropped. */
static unsigned vnet_mtu(struct virtio_net *n)
{
	unsigned mtu = VNET_MTU, fits = VNET_BUF_SIZE - n->hdr_len - VNET_ETH_HLEN;

	if (!virtio_has(&n->vd, VIRTIO_NET_F_MTU))
		return mtu;
	mtu = n->vd.ops->config_read(&n->vd, VIRTIO_NET_CFG_MTU, 2);
	if (mtu < VNET_MTU_MIN) {
		printf("virtio-net%u: device MTU %u below %u; using %u\n", n->id, mtu, VNET_MTU_MIN, VNET_MTU);
		return VNET_MTU;
	}
	if (!virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF) && mtu > fits) {
		printf("virtio-net%u: device MTU %u does not fit a %u-byte buffer without MRG_RXBUF; using %u\n", n->id,
		       mtu, VNET_BUF_SIZE, fits);
		return fits;
	}
	return mtu;
}

/* What the layers above see of this NIC. */
static void vnet_netdev_fill(struct virtio_net *n)
{
	struct netdev_queue_config qc = { NETDEV_MODE_NAPI, 64, 8, 200 };

	n->nd.mtu = vnet_mtu(n);
	n->nd.features = (virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF) ? NETDEV_F_MRG_RXBUF : 0) |
			 (virtio_has(&n->vd, VIRTIO_F_RING_EVENT_IDX) ? NETDEV_F_EVENT_IDX : 0) |
			 (virtio_has(&n->vd, VIRTIO_NET_F_GUEST_CSUM) ? NETDEV_F_RX_CSUM : 0) |
			 (virtio_has(&n->vd, VIRTIO_NET_F_CSUM) ? NETDEV_F_TX_CSUM : 0) |
			 (n->rx_offloads & (VNET_RX_OFF_TSO4 | VNET_RX_OFF_TSO6) ? NETDEV_F_RX_GSO : 0);
	n->nd.num_queues = 1;
	n->nd.rx_headroom = VNET_BUF_HEADROOM;
	/* A transmitted frame's header can sit in front of it, in its first descriptor, where the device
	 * accepts any layout (the network device's "Legacy Interface: Framing Requirements", a descriptor of
	 * the header's own, bind only a legacy driver without ANY_LAYOUT). */
	n->nd.tx_headroom = n->hdr_len == VIRTIO_NET_HDR_LEN && (virtio_has(&n->vd, VIRTIO_F_VERSION_1) ||
								  virtio_has(&n->vd, VIRTIO_F_ANY_LAYOUT))
				    ? VIRTIO_NET_HDR_LEN
				    : 0;
	n->nd.ops = &vnet_netdev_ops;
	n->nd.priv = n;
	n->nd.queue[0] = qc;
	virtio_net_set_queue_config(&n->nd, 0, &qc);
}

static void vnet_print(const struct virtio_net *n)
{
	char fbuf[192], irq[24];
	const uint8_t *m = n->nd.mac;

	if (n->use_msix)
		snprintf(irq, sizeof(irq), "MSI-X");
	else if (n->vd.pci)
		snprintf(irq, sizeof(irq), "INTx");
	else
		snprintf(irq, sizeof(irq), "GSI %u %s", n->vd.gsi, n->vd.gsi_level ? "level" : "edge");
	printf("virtio-net%u: %s %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s, rx %u tx %u entries, %s\n", n->id,
	       n->vd.where, n->vd.ops->name, m[0], m[1], m[2], m[3], m[4], m[5], n->nd.link_up ? "up" : "down",
	       n->rxq.size, n->txq.size, irq);
	printf("virtio-net%u: features %s; irq vectors rx %#x tx %#x config %#x; mtu %u\n", n->id,
	       vnet_feature_names(n->vd.features, fbuf, sizeof(fbuf)), n->vec_rx, n->vec_tx, n->vec_cfg, n->nd.mtu);
}

/* Frees what vnet_setup_queues allocated (each part may be missing). */
static void vnet_free_queues(struct virtio_net *n)
{
	if (n->pool) {
		page_free(n->pool_mem, vnet_pool_pages(n->pool_size));
		free(n->pool);
	}
	free(n->tx_tsc);
	free(n->tx_slots);
	free(n->tx_slot_free);
	vnet_queue_free(&n->rxq);
	vnet_queue_free(&n->txq);
}

/* Device initialisation, virtio 1.x §3.1.1 with the virtio-net specifics of §5.1.5, for a device whose
 * transport probe filled vd. */
static int vnet_probe(const struct virtio_dev *vd, unsigned id, const struct virtio_net_params *p)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	int rc;

	if (!n)
		return -ENOMEM;
	n->id = id;
	n->ring = p->ring;
	n->vd = *vd;
	rc = virtio_net_irq_setup(n);
	if (rc)
		goto err_free;
	rc = virtio_net_negotiate(n);
	if (rc)
		goto err_irq;
	rc = vnet_setup_queues(n, p);
	if (rc)
		goto err_queues;
	vnet_netdev_fill(n);
	rc = netdev_register(&n->nd);
	if (rc)
		goto err_queues;
	virtio_net_go(n);
	loop_add_poller(n->nd.name, virtio_net_poll, n);
	vnet_print(n);
	return 0;

err_queues:
	/* The device must stop using our rings before they are freed (§3.1.1 leaves it running otherwise). */
	virtio_reset(&n->vd);
	vnet_free_queues(n);
	n->vd.ops->set_status(&n->vd, VIRTIO_STATUS_FAILED);
err_irq:
	virtio_net_irq_teardown(n);
err_free:
	free(n);
	return rc;
}

/* The windows the platform described: the command line's virtio_mmio.device= entries, then the DSDT's. */
static void vnet_mmio_windows(const struct virtio_net_params *p)
{
	for (unsigned i = 0; p->mmio && i < p->mmio->count; i++) {
		/* microvm wires its virtio-mmio lines level-triggered, active-high (its DSDT says so). */
		struct virtio_mmio_window w = { p->mmio->dev[i].base, p->mmio->dev[i].size, p->mmio->dev[i].irq, 1, 0 };
		if (virtio_mmio_add(&w) < 0)
			printf("virtio-mmio: more than %u windows; %#llx ignored\n", VIRTIO_MMIO_MAX,
			       (unsigned long long)w.base);
	}
	virtio_mmio_scan_acpi();
}

int virtio_net_init_all(const struct virtio_net_params *p)
{
	unsigned found = 0;
	int rc;

	for (unsigned i = 0; i < pci_num_devices && netdev_count() < NETDEV_MAX; i++) {
		struct pci_dev *d = &pci_devices[i];
		struct virtio_dev vd = { 0 };
		/* 0x1041 modern; 0x1000 transitional/legacy, which is a network device only with subsystem 1. */
		if (d->vendor != VIRTIO_PCI_VENDOR ||
		    !(d->device == VIRTIO_NET_DEVICE_MODERN || (d->device == VIRTIO_NET_DEVICE_LEGACY && d->subsys_id == 1)))
			continue;
		rc = virtio_pci_probe(d, &vd);
		if (!rc)
			rc = vnet_probe(&vd, netdev_count(), p);
		if (rc)
			printf("virtio-net: %02x:%02x.%u not usable (%d); continuing without it\n", d->bus, d->dev, d->fn, rc);
		else
			found++;
	}
	vnet_mmio_windows(p);
	for (unsigned i = 0; i < virtio_mmio_count && netdev_count() < NETDEV_MAX; i++) {
		struct virtio_dev vd = { 0 };
		rc = virtio_mmio_probe(&virtio_mmio_windows[i], &vd);
		if (rc != VIRTIO_ID_NET)
			continue; /* an empty slot, another kind of device, or not virtio (logged) */
		rc = vnet_probe(&vd, netdev_count(), p);
		if (rc)
			printf("virtio-net: %s not usable (%d); continuing without it\n", vd.where, rc);
		else
			found++;
	}
	if (found == 0)
		printf("virtio-net: no network device found\n");
	return (int)found;
}
