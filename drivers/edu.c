/* QEMU's "edu" teaching device (hw/misc/edu.c, PCI 1234:11e8), used only by the tests: it raises a PCI INTx
 * interrupt on request and holds the line asserted until acknowledged, which is how a device that no driver
 * of ours serves behaves on a shared line. Console command `edu-irq` raises it; nothing here ever
 * acknowledges it. */
#include "edu.h"

#include <stdio.h>

#include "console.h"
#include "mmio.h"
#include "pci.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11E8
#define EDU_IRQ_RAISE 0x60 /* write: sets these status bits and asserts the interrupt */

static uintptr_t edu_bar0;

static void edu_cmd_irq(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!edu_bar0) {
		printf("edu-irq: no edu device (QEMU: -device edu)\n");
		return;
	}
	mmio_write32(edu_bar0 + EDU_IRQ_RAISE, 1);
	printf("edu-irq: raised, never acknowledged\n");
}

void edu_init(void)
{
	for (unsigned i = 0; i < pci_num_devices; i++) {
		struct pci_dev *d = &pci_devices[i];
		if (d->vendor != EDU_VENDOR || d->device != EDU_DEVICE)
			continue;
		pci_enable(d, 1, 0);
		pci_intx_disable(d, 0);
		edu_bar0 = pci_map_bar(d, 0);
		printf("edu: %02x:%02x.%u, INTx pin %u%s\n", d->bus, d->dev, d->fn, d->irq_pin,
		       edu_bar0 ? "" : " (BAR0 not mappable)");
		console_register("edu-irq", edu_cmd_irq, "assert the edu test device's INTx line and never clear it");
		return;
	}
}
