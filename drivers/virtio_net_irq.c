/* virtio-net interrupts: MSI-X (one vector each for configuration, receive and transmit, or one shared) or,
 * without usable MSI-X, legacy INTx routed through the IOAPIC; a virtio-mmio device's line goes the INTx way. Handlers only record the event, suppress the
 * queue's interrupts and wake the main loop; the work happens in the poller (virtio_net_poll.c). */
#include <errno.h>
#include <stdio.h>

#include "cpu.h"
#include "ioapic.h"
#include "loop.h"
#include "trap.h"
#include "virtio_net.h"

#define INTX_GSI_FIRST 16 /* q35 routes PCI INTx (PIRQ A-H) to IOAPIC pins 16-23 */
#define INTX_GSI_LAST 23
/* Unclaimed INTx interrupts in a row that make a storm: a level-triggered line that some other device holds
 * asserted re-fires after every EOI, and would keep the CPU in this handler for ever. */
#define INTX_STORM 1000

/* NICs on INTx share one vector: the handler asks each whether the interrupt was its own. */
static struct virtio_net *vnet_intx_nics[NETDEV_MAX];
static unsigned vnet_intx_count;
static int vnet_intx_vector = -1;
static unsigned vnet_intx_unclaimed_run;
uint64_t virtio_net_intx_storms;

static void vnet_irq_rx(struct trap_frame *f, void *ctx)
{
	struct virtio_net *n = ctx;
	(void)f;
	n->stats.irq_rx++;
	virtq_disable_cb(&n->rxq);
	n->rx_irq_tsc = rdtsc();
	n->rx_pending = 1;
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

/* A storm on lines none of our NICs claims: mask the lines being serviced now (Remote IRR set), once each.
 * A NIC of ours on the same line then loses its interrupt; its poller's watchdog still finds its work each
 * tick (rx_lost_irqs). */
static void vnet_intx_storm(void)
{
	for (uint32_t gsi = INTX_GSI_FIRST; gsi <= INTX_GSI_LAST; gsi++) {
		if (!ioapic_in_service(gsi))
			continue;
		ioapic_mask(gsi, 1);
		virtio_net_intx_storms++;
		printf("virtio-net: GSI %u: %u unclaimed interrupts in a row (another device holds the shared line): "
		       "line masked\n", gsi, INTX_STORM);
	}
	/* virtio-mmio lines (level-triggered on microvm) are each a device's own: one that keeps firing with
	 * nothing in InterruptStatus is masked too. */
	for (unsigned i = 0; i < vnet_intx_count; i++) {
		struct virtio_net *n = vnet_intx_nics[i];
		if (n->vd.pci || !n->vd.gsi_level || !ioapic_in_service(n->vd.gsi))
			continue;
		ioapic_mask(n->vd.gsi, 1);
		virtio_net_intx_storms++;
		printf("virtio-net%u: GSI %u: %u unclaimed interrupts in a row: line masked\n", n->id, n->vd.gsi,
		       INTX_STORM);
	}
	vnet_intx_unclaimed_run = 0;
}

/* INTx is level-triggered and may be shared: reading ISR tells whose it is and deasserts it. */
static void vnet_irq_intx(struct trap_frame *f, void *ctx)
{
	int claimed = 0;

	(void)ctx;
	for (unsigned i = 0; i < vnet_intx_count; i++) {
		struct virtio_net *n = vnet_intx_nics[i];
		uint8_t isr = n->vd.ops->isr(&n->vd);
		if (isr & VIRTIO_ISR_QUEUE) {
			vnet_irq_rx(f, n);
			vnet_irq_tx(f, n);
		}
		if (isr & VIRTIO_ISR_CONFIG)
			vnet_irq_config(f, n);
		if (!isr)
			n->stats.irq_intx_spurious++;
		claimed |= isr != 0;
	}
	if (claimed)
		vnet_intx_unclaimed_run = 0;
	else if (++vnet_intx_unclaimed_run >= INTX_STORM)
		vnet_intx_storm();
}

/* Every vector this NIC registered is released; MSI-X is switched off (INTx may then be used). */
static void vnet_msix_release(struct virtio_net *n, const int *vecs, unsigned registered)
{
	pci_msix_disable(&n->msix);
	for (unsigned e = 0; e < registered; e++)
		irq_unregister((unsigned)vecs[e]);
	n->use_msix = 0;
	n->vd.msix = 0; /* the legacy interface's device configuration moves back */
}

static int vnet_setup_msix(struct virtio_net *n)
{
	irq_handler_fn handlers[3] = { vnet_irq_config, vnet_irq_rx, vnet_irq_tx };
	int vecs[3];
	unsigned registered = 0;
	int rc = pci_msix_init(n->vd.pci, &n->msix);
	if (rc)
		goto err;
	unsigned entries = n->msix.table_size < 3 ? n->msix.table_size : 3;
	for (unsigned e = 0; e < entries; e++) {
		vecs[e] = irq_alloc_vector();
		if (vecs[e] < 0) {
			rc = vecs[e];
			goto err;
		}
		rc = irq_register((unsigned)vecs[e], entries == 3 ? handlers[e] : vnet_irq_all, n);
		if (rc)
			goto err;
		registered++;
		rc = pci_msix_set(&n->msix, e, (uint8_t)vecs[e]);
		if (rc)
			goto err;
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

err:
	/* pci_msix_init may have enabled MSI-X (function-masked) before failing: with MSI-X enabled, INTx can
	 * never fire, so the fallback needs it off again. */
	if (n->msix.dev)
		vnet_msix_release(n, vecs, registered);
	return rc;
}

/* The one vector every NIC on a line (PCI INTx, a virtio-mmio line) shares, allocated on first use. */
static int vnet_intx_vector_get(void)
{
	if (vnet_intx_vector < 0) {
		int v = irq_alloc_vector();
		if (v < 0)
			return v;
		int rc = irq_register((unsigned)v, vnet_irq_intx, NULL);
		if (rc)
			return rc;
		vnet_intx_vector = v;
	}
	return vnet_intx_vector;
}

static int vnet_setup_intx(struct virtio_net *n)
{
	static int pci_lines_routed;

	if (vnet_intx_count == NETDEV_MAX)
		return -ENOSPC;
	int v = vnet_intx_vector_get();
	if (v < 0)
		return v;
	if (n->vd.pci && !pci_lines_routed) {
		for (uint32_t gsi = INTX_GSI_FIRST; gsi <= INTX_GSI_LAST; gsi++)
			ioapic_route(gsi, (uint8_t)v, 1, 1);
		pci_lines_routed = 1;
	} else if (!n->vd.pci) {
		/* virtio-mmio: the line the platform described (microvm: level-triggered, active-high); the
		 * handler's InterruptStatus read and InterruptACK write deassert it before the EOI. */
		int rc = ioapic_route(n->vd.gsi, (uint8_t)v, n->vd.gsi_level, n->vd.gsi_low);
		if (rc) {
			printf("virtio-net%u: cannot route GSI %u (%d)\n", n->id, n->vd.gsi, rc);
			return rc;
		}
	}
	n->vec_rx = n->vec_tx = n->vec_cfg = v;
	if (n->vd.pci)
		pci_intx_disable(n->vd.pci, 0);
	vnet_intx_nics[vnet_intx_count++] = n;
	return 0;
}

int virtio_net_irq_setup(struct virtio_net *n)
{
	if (!n->vd.pci)
		return vnet_setup_intx(n); /* virtio-mmio: one line per device, no MSI-X */
	/* MSI-X first: on the legacy interface it moves the device configuration registers. */
	int rc = vnet_setup_msix(n);
	if (!rc)
		return 0;
	printf("virtio-net%u: no usable MSI-X (%d); using INTx through the IOAPIC\n", n->id, rc);
	return vnet_setup_intx(n);
}

void virtio_net_irq_teardown(struct virtio_net *n)
{
	if (n->use_msix) {
		int vecs[3] = { n->vec_cfg, n->vec_rx, n->vec_tx };
		/* Shared entries repeat a vector: release each once. */
		unsigned k = (unsigned)n->use_msix;
		vnet_msix_release(n, vecs, k);
		return;
	}
	for (unsigned i = 0; i < vnet_intx_count; i++) {
		if (vnet_intx_nics[i] != n)
			continue;
		uint64_t flags = irq_save();
		vnet_intx_nics[i] = vnet_intx_nics[--vnet_intx_count];
		irq_restore(flags);
		if (n->vd.pci)
			pci_intx_disable(n->vd.pci, 1);
		else
			ioapic_mask(n->vd.gsi, 1); /* a virtio-mmio line is the device's own */
		break;
	}
}

uint16_t virtio_net_irq_entry(const struct virtio_net *n, unsigned which)
{
	/* MSI-X table entries as vnet_setup_msix laid them out: config 0, RX 1, TX 2, the last one shared. */
	if (!n->use_msix)
		return VIRTIO_MSI_NO_VECTOR;
	return (uint16_t)(which < (unsigned)n->use_msix ? which : (unsigned)n->use_msix - 1);
}
