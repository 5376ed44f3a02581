/* virtio-net driver: probe and initialise every virtio-net PCI function, then serve it from the main loop. */
#include "virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "ioapic.h"
#include "loop.h"
#include "time.h"
#include "mm.h"
#include "trap.h"

#define VIRTIO_NET_DEVICE_MODERN 0x1041
#define VIRTIO_NET_DEVICE_LEGACY 0x1000
#define VIRTIO_NET_CFG_MAC 0
#define VIRTIO_NET_CFG_STATUS 6
#define VNET_RXQ 0
#define VNET_TXQ 1
#define VNET_BUF_SIZE 2048 /* header + the largest frame without GSO (1514), rounded to keep buffers aligned */
#define VNET_QUEUE_MAX 1024
#define VNET_ETH_HLEN 14
#define INTX_GSI_FIRST 16 /* q35 routes PCI INTx (PIRQ A-H) to IOAPIC pins 16-23 */
#define INTX_GSI_LAST 23

struct virtio_net *virtio_net_nics[VNET_MAX_NICS];
unsigned virtio_net_count;
static int vnet_intx_vector = -1;


/* ---- default buffer pool and frame consumer ---- */

static void vnet_consume(struct virtio_net *n, struct vnet_rx_frame *f);

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

static void vnet_count_ethertype(struct virtio_net *n, uint16_t type)
{
	for (unsigned i = 0; i < VNET_ETHERTYPES; i++) {
		if (n->stats.ethertype[i].count && n->stats.ethertype[i].type == type) {
			n->stats.ethertype[i].count++;
			return;
		}
		if (!n->stats.ethertype[i].count) {
			n->stats.ethertype[i].type = type;
			n->stats.ethertype[i].count = 1;
			return;
		}
	}
	n->stats.ethertype_other++;
}

static void vnet_deliver(void *ctx, struct vnet_rx_frame *f)
{
	struct virtio_net *n = ctx;
	uint64_t t_deq = rdtsc();

	hist_record(&n->hist[VNET_H_POLL_TO_DEQ], tsc_to_ns(t_deq - n->cur_poll_tsc));
	if (n->trace_on)
		virtio_net_trace_begin(n, f, t_deq);
	n->in_rx = 1;
	vnet_consume(n, f);
	n->in_rx = 0;
	uint64_t t_done = rdtsc();
	hist_record(&n->hist[VNET_H_INPUT], tsc_to_ns(t_done - t_deq));
	if (n->trace_cur) {
		n->trace_cur->t_done = t_done;
		n->trace_cur = NULL;
	}
}

static void vnet_consume(struct virtio_net *n, struct vnet_rx_frame *f)
{
	if (f->total_len < VNET_ETH_HLEN || f->seg[0].len < VNET_ETH_HLEN) {
		n->stats.rx_malformed++;
	} else {
		vnet_count_ethertype(n, (uint16_t)(f->seg[0].data[12] << 8 | f->seg[0].data[13]));
		if (n->consumer.rx) {
			n->consumer.rx(n, f, n->consumer.ctx);
			return;
		}
	}
	for (unsigned i = 0; i < f->nseg; i++)
		n->rx.ops->buf_free(n->rx.ctx, f->seg[i].buf);
}

static const struct vnet_rx_ops vnet_pool_ops = {
	.buf_alloc = virtio_net_pool_alloc,
	.buf_free = virtio_net_pool_free,
	.deliver = vnet_deliver,
};

/* ---- interrupts: record, suppress, defer to the poll loop ---- */

static void vnet_rx_event(struct virtio_net *n)
{
	virtq_disable_cb(&n->rxq);
	n->rx_irq_tsc = rdtsc();
	n->rx_pending = 1;
}

static void vnet_irq_rx(struct trap_frame *f, void *ctx)
{
	struct virtio_net *n = ctx;
	(void)f;
	n->stats.irq_rx++;
	vnet_rx_event(n);
	loop_kick();
}

static void vnet_irq_tx(struct trap_frame *f, void *ctx)
{
	struct virtio_net *n = ctx;
	(void)f;
	n->stats.irq_tx++;
	virtq_disable_cb(&n->txq);
	loop_kick();
}

static void vnet_irq_config(struct trap_frame *f, void *ctx)
{
	struct virtio_net *n = ctx;
	(void)f;
	n->stats.irq_config++;
	n->cfg_pending = 1;
	loop_kick();
}

/* Shared vectors (a device with fewer than three MSI-X entries): treat it as every event. */
static void vnet_irq_all(struct trap_frame *f, void *ctx)
{
	vnet_irq_rx(f, ctx);
	vnet_irq_tx(f, ctx);
	vnet_irq_config(f, ctx);
}

/* INTx is level-triggered and may be shared: reading ISR tells whose it is and deasserts it. */
static void vnet_irq_intx(struct trap_frame *f, void *ctx)
{
	int mine = 0;
	(void)ctx;
	for (unsigned i = 0; i < virtio_net_count; i++) {
		struct virtio_net *n = virtio_net_nics[i];
		if (n->use_msix)
			continue;
		uint8_t isr = n->vd.ops->isr(&n->vd);
		if (isr & VIRTIO_ISR_QUEUE) {
			vnet_irq_rx(f, n);
			vnet_irq_tx(f, n);
			mine = 1;
		}
		if (isr & VIRTIO_ISR_CONFIG) {
			vnet_irq_config(f, n);
			mine = 1;
		}
		if (!isr)
			n->stats.irq_intx_spurious++;
	}
	(void)mine;
}

static int vnet_setup_msix(struct virtio_net *n)
{
	irq_handler_fn handlers[3] = { vnet_irq_config, vnet_irq_rx, vnet_irq_tx };
	int vecs[3];
	int rc = pci_msix_init(n->vd.pci, &n->msix);
	if (rc)
		return rc;
	unsigned entries = n->msix.table_size < 3 ? n->msix.table_size : 3;
	for (unsigned e = 0; e < entries; e++) {
		vecs[e] = irq_alloc_vector();
		if (vecs[e] < 0)
			return vecs[e];
		rc = irq_register((unsigned)vecs[e], entries == 3 ? handlers[e] : vnet_irq_all, n);
		if (!rc)
			rc = pci_msix_set(&n->msix, e, (uint8_t)vecs[e]);
		if (rc)
			return rc;
	}
	/* config -> entry 0, RX -> 1, TX -> 2; with fewer entries the last one is shared. */
	n->vec_cfg = vecs[0];
	n->vec_rx = vecs[entries > 1 ? 1 : 0];
	n->vec_tx = vecs[entries > 2 ? 2 : entries - 1];
	n->use_msix = (int)entries;
	n->vd.msix = 1;
	pci_intx_disable(n->vd.pci, 1);
	pci_msix_enable(&n->msix);
	return 0;
}

static int vnet_setup_intx(struct virtio_net *n)
{
	if (vnet_intx_vector < 0) {
		int v = irq_alloc_vector();
		if (v < 0)
			return v;
		int rc = irq_register((unsigned)v, vnet_irq_intx, NULL);
		if (rc)
			return rc;
		for (uint32_t gsi = INTX_GSI_FIRST; gsi <= INTX_GSI_LAST; gsi++)
			ioapic_route(gsi, (uint8_t)v, 1, 1);
		vnet_intx_vector = v;
	}
	n->vec_rx = n->vec_tx = n->vec_cfg = vnet_intx_vector;
	pci_intx_disable(n->vd.pci, 0);
	return 0;
}

static int vnet_queue_create(struct virtio_net *n, struct virtq *vq, uint16_t index, uint16_t msix)
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
	rc = virtq_init(vq, index, size, mem, virtio_has(&n->vd, VIRTIO_F_RING_EVENT_IDX));
	if (rc) {
		printf("virtio-net%u: queue %u: bad size %u (%d)\n", n->id, index, size, rc);
		goto err_free;
	}
	rc = n->vd.ops->queue_setup(&n->vd, vq, msix);
	if (rc) {
		printf("virtio-net%u: queue %u setup refused (%d)\n", n->id, index, rc);
		goto err_destroy;
	}
	return 0;

err_destroy:
	virtq_destroy(vq);
err_free:
	page_free(mem, (virtq_mem_size(size) + PAGE_SIZE - 1) / PAGE_SIZE);
	return rc;
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
				n->mac[i] = (uint8_t)vd->ops->config_read(vd, VIRTIO_NET_CFG_MAC + i, 1);
		n->link_up = virtio_has(vd, VIRTIO_NET_F_STATUS)
				     ? (vd->ops->config_read(vd, VIRTIO_NET_CFG_STATUS, 2) & VIRTIO_NET_S_LINK_UP) != 0
				     : 1;
		if (vd->ops->config_generation(vd) == gen)
			break;
	}
}

static int vnet_poll(void *ctx);

static int vnet_pool_init(struct virtio_net *n)
{
	/* A full ring plus as many again for frames the stack above still holds (reassembly, out-of-order TCP
	 * segments): with zero-copy receive those are ring buffers too. */
	const size_t stride = VNET_BUF_HEADROOM + VNET_BUF_SIZE;
	n->pool_size = virtio_net_pool_override ? virtio_net_pool_override : 2u * n->rxq.size;
	n->pool = calloc(n->pool_size, sizeof(void *));
	uint8_t *mem = page_alloc(((size_t)n->pool_size * stride + PAGE_SIZE - 1) / PAGE_SIZE);
	if (!n->pool || !mem) {
		free(n->pool);
		n->pool = NULL;
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n->pool_size; i++)
		n->pool[i] = mem + (size_t)i * stride + VNET_BUF_HEADROOM;
	n->pool_free = n->pool_size;
	return 0;
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
	};
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((f >> names[i].bit) & 1)
			used += (size_t)snprintf(buf + used, len > used ? len - used : 0, "%s%s", used ? " " : "", names[i].name);
	return buf;
}

/* Device initialisation, virtio 1.x §3.1.1 with the virtio-net specifics of §5.1.5. */
static int vnet_probe(struct pci_dev *d, unsigned budget, enum vnet_mode mode)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	char fbuf[128];
	int rc, kick;

	if (!n)
		return -ENOMEM;
	n->id = virtio_net_count;
	n->budget = budget;
	n->mode = mode;
	rc = virtio_pci_probe(d, &n->vd);
	if (rc)
		goto err_free;
	/* MSI-X first: on the legacy interface it moves the device configuration registers. */
	rc = vnet_setup_msix(n);
	if (rc) {
		printf("virtio-net%u: no usable MSI-X (%d); using INTx through the IOAPIC\n", n->id, rc);
		rc = vnet_setup_intx(n);
		if (rc)
			goto err_free;
	}
	/* Steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
	uint64_t wanted = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
			  (1ull << VIRTIO_F_RING_EVENT_IDX) | (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_F_ANY_LAYOUT);
	rc = virtio_pci_negotiate(&n->vd, wanted, 1ull << VIRTIO_F_VERSION_1);
	if (rc)
		goto err_free;
	n->hdr_len = (virtio_has(&n->vd, VIRTIO_F_VERSION_1) || virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF))
			     ? VIRTIO_NET_HDR_LEN
			     : VIRTIO_NET_HDR_LEN_LEGACY;

	/* Step 7: device-specific setup: configuration vector, the receive and transmit queues (§5.1.2). */
	if (n->use_msix && n->vd.ops->set_config_vector(&n->vd, 0))
		printf("virtio-net%u: device refused the config MSI-X vector\n", n->id);
	uint16_t rx_entry = n->use_msix ? (n->use_msix > 1 ? 1 : 0) : VIRTIO_MSI_NO_VECTOR;
	uint16_t tx_entry = n->use_msix ? (uint16_t)(n->use_msix > 2 ? 2 : n->use_msix - 1) : VIRTIO_MSI_NO_VECTOR;
	rc = vnet_queue_create(n, &n->rxq, VNET_RXQ, rx_entry);
	if (rc)
		goto err_failed;
	rc = vnet_queue_create(n, &n->txq, VNET_TXQ, tx_entry);
	if (rc)
		goto err_failed;
	vnet_read_config(n);
	static const char *const hist_names[VNET_H_COUNT] = { "irq_to_poll_ns", "poll_to_dequeue_ns", "input_ns",
							      "irq_to_txkick_ns", "tx_complete_ns" };
	for (int i = 0; i < VNET_H_COUNT; i++)
		hist_init(&n->hist[i], hist_names[i]);
	n->tx_tsc = calloc(n->txq.size, sizeof(uint64_t));
	virtio_net_set_coalesce(n, 8, 200);
	rc = n->tx_tsc ? vnet_pool_init(n) : -ENOMEM;
	if (rc) {
		printf("virtio-net%u: no memory for %u receive buffers\n", n->id, 2u * n->rxq.size);
		goto err_failed;
	}
	vnet_rx_init(&n->rx, &n->rxq, VNET_BUF_SIZE, n->hdr_len, virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF),
		     &vnet_pool_ops, n);
	/* §5.1.5: fill the receive queue before DRIVER_OK so the device has buffers from its first frame. */
	vnet_rx_refill(&n->rx, &kick);
	/* Transmit completions are reclaimed by polling; the TX interrupt is only wanted when the ring is full. */
	virtq_disable_cb(&n->txq);
	if (mode == VNET_MODE_POLL)
		virtq_disable_cb(&n->rxq);

	/* Step 8: DRIVER_OK. */
	virtio_pci_driver_ok(&n->vd);
	n->vd.ops->notify(&n->vd, &n->rxq);

	virtio_net_nics[virtio_net_count++] = n;
	loop_add_poller("virtio-net", vnet_poll, n);
	printf("virtio-net%u: %02x:%02x.%u %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s, rx %u tx %u entries, "
	       "%s\n",
	       n->id, d->bus, d->dev, d->fn, n->vd.ops->name, n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4],
	       n->mac[5], n->link_up ? "up" : "down", n->rxq.size, n->txq.size,
	       n->use_msix ? "MSI-X" : "INTx");
	printf("virtio-net%u: features %s; irq vectors rx %#x tx %#x config %#x\n", n->id,
	       vnet_feature_names(n->vd.features, fbuf, sizeof(fbuf)), n->vec_rx, n->vec_tx, n->vec_cfg);
	return 0;

err_failed:
	/* The device keeps running without us: tell it we gave up (§3.1.1). */
	n->vd.ops->set_status(&n->vd, n->vd.ops->get_status(&n->vd) | VIRTIO_STATUS_FAILED);
err_free:
	free(n);
	return rc;
}

unsigned virtio_net_pool_override;

int virtio_net_init_all(unsigned budget, enum vnet_mode mode)
{
	for (unsigned i = 0; i < pci_num_devices && virtio_net_count < VNET_MAX_NICS; i++) {
		struct pci_dev *d = &pci_devices[i];
		/* 0x1041 modern; 0x1000 transitional/legacy, which is a network device only with subsystem 1. */
		if (d->vendor != VIRTIO_PCI_VENDOR ||
		    !(d->device == VIRTIO_NET_DEVICE_MODERN || (d->device == VIRTIO_NET_DEVICE_LEGACY && d->subsys_id == 1)))
			continue;
		int rc = vnet_probe(d, budget, mode);
		if (rc)
			printf("virtio-net: %02x:%02x.%u not usable (%d); continuing without it\n", d->bus, d->dev, d->fn, rc);
	}
	if (virtio_net_count == 0)
		printf("virtio-net: no network device found\n");
	return (int)virtio_net_count;
}

/* ---- the poll loop ---- */

static void vnet_config_change(struct virtio_net *n)
{
	int was = n->link_up;
	n->cfg_pending = 0;
	if (n->vd.ops->get_status(&n->vd) & VIRTIO_STATUS_NEEDS_RESET)
		printf("virtio-net%u: device needs a reset\n", n->id);
	vnet_read_config(n);
	if (n->link_up != was) {
		n->stats.link_changes++;
		printf("virtio-net%u: link %s\n", n->id, n->link_up ? "up" : "down");
		if (n->consumer.link)
			n->consumer.link(n, n->link_up, n->consumer.ctx);
	}
}

/* NAPI-style: the interrupt only marked the queue; here at most `budget` buffers are taken per call, so
 * other pollers (timers, other NICs) get a turn between calls however fast frames arrive. */
/* Once per tick: a queue with published buffers outstanding whose device has returned nothing for at least a
 * tick gets another notification (virtq_kick_overdue decides, with back-off). It recovers from a lost one (a
 * VMM that reorders our index store with its event-index check, or a device that ignored a kick), including
 * one lost right after a refill of a ring the device had just emptied, which would otherwise stop that queue
 * for good. */
static void vnet_watchdog(struct virtio_net *n)
{
	uint16_t rx_used = le16_read(&n->rxq.used->idx);

	if (timer_ticks == n->wd_tick)
		return;
	n->wd_tick = timer_ticks;
	if (virtq_kick_overdue(&n->txq, timer_ticks)) {
		n->stats.tx_rekicks++;
		n->vd.ops->notify(&n->vd, &n->txq);
	}
	if (virtq_kick_overdue(&n->rxq, timer_ticks)) {
		n->stats.rx_rekicks++;
		n->vd.ops->notify(&n->vd, &n->rxq);
	}
	/* The other direction: used entries that sat a whole tick with no poll pending mean an interrupt the
	 * device should have raised never came (the same lost-ordering race seen from the device side). */
	if (!n->rx_pending && rx_used == n->wd_rx_used && rx_used != n->rxq.last_used_idx) {
		n->stats.rx_lost_irqs++;
		virtq_disable_cb(&n->rxq);
		n->rx_pending = 1;
	}
	n->wd_rx_used = rx_used;
}

static int vnet_poll(void *ctx)
{
	struct virtio_net *n = ctx;
	int kick, more = 0;

	if (n->cfg_pending)
		vnet_config_change(n);
	virtio_net_tx_reclaim(n);
	vnet_watchdog(n);
	if (!n->rx_pending && n->mode == VNET_MODE_COALESCE && n->coalesce_deadline) {
		/* The coalescing bound. The wake-up timer may fire a little early (count rounding): within 1/8 of
		 * the bound counts as due, otherwise it is armed again. When due, frames that did not reach the
		 * threshold are polled now; with none waiting, the burst is over and the next frame interrupts at
		 * once. */
		if (rdtsc() + n->coalesce_tsc / 8 < n->coalesce_deadline) {
			timer_wake_at(n->coalesce_deadline);
		} else {
			n->coalesce_deadline = 0;
			if (virtq_has_used(&n->rxq) || virtq_enable_cb(&n->rxq)) {
				virtq_disable_cb(&n->rxq);
				n->rx_pending = 1;
				n->stats.coalesce_timeouts++;
			}
		}
	}
	if (!n->rx_pending && n->mode != VNET_MODE_POLL)
		return 0;

	n->stats.polls++;
	n->cur_poll_tsc = rdtsc();
	if (n->rx_irq_tsc) {
		hist_record(&n->hist[VNET_H_IRQ_TO_POLL], tsc_to_ns(n->cur_poll_tsc - n->rx_irq_tsc));
		n->cur_irq_tsc = n->rx_irq_tsc;
		n->rx_irq_tsc = 0;
	} else {
		n->cur_irq_tsc = n->cur_poll_tsc; /* polled without an interrupt: the poll is the first stamp */
	}
	n->coalesce_deadline = 0;
	unsigned budget = n->mode == VNET_MODE_IRQ ? 1 : n->budget;
	unsigned done = vnet_rx_poll(&n->rx, budget);
	/* Refill in batches while busy (half the ring), and top the ring up completely when the poll finished
	 * under budget, so an idle NIC always has every buffer posted for the next burst. */
	if (vnet_rx_needs_refill(&n->rx) || (done < budget && n->rxq.num_free)) {
		int rc = vnet_rx_refill(&n->rx, &kick);
		if (kick)
			n->vd.ops->notify(&n->vd, &n->rxq);
		/* Not a single buffer posted: count it as a full budget and come back, rather than sleep on an
		 * empty ring (the device would drop everything, silently, for good). A partly filled ring still
		 * receives, and the next poll refills it further. */
		if (rc < 0 && n->rxq.num_free == n->rxq.size)
			more = 1;
	}
	if (done >= budget && n->mode != VNET_MODE_IRQ) {
		n->stats.budget_exhausted++;
		more = 1;
	}
	if (n->mode == VNET_MODE_POLL || more)
		return 1;
	if (n->mode == VNET_MODE_COALESCE && done * 2 >= n->coalesce_frames) {
		/* Frames are coming in bursts: interrupt only after coalesce_frames more (EVENT_IDX used_event set
		 * ahead), with a time bound so the tail of a burst is not stranded. A poll that found fewer
		 * re-arms the ordinary per-frame interrupt below, so a lone frame never waits for the bound. */
		n->rx_pending = 0;
		n->coalesce_deadline = rdtsc() + n->coalesce_tsc;
		timer_wake_at(n->coalesce_deadline);
		if (virtq_enable_cb_delayed(&n->rxq, (uint16_t)n->coalesce_frames)) {
			virtq_disable_cb(&n->rxq);
			n->rx_pending = 1;
			n->stats.race_rechecks++;
			return 1;
		}
		return 0;
	}

	/* Under budget: re-enable the interrupt, then look again. An entry that arrived after our last look
	 * but before the device saw the re-enable raised no interrupt; without this check it would wait for
	 * the next frame. */
	n->rx_pending = 0;
	if (virtq_enable_cb(&n->rxq)) {
		virtq_disable_cb(&n->rxq);
		n->rx_pending = 1;
		n->stats.race_rechecks++;
		return 1;
	}
	return 0;
}
