/* virtio PCI legacy interface (virtio 1.x §4.1.4.8 and the 0.9.5 layout): registers in I/O BAR 0, 32
 * feature bits, ring addresses as a page frame number with the legacy ring layout (virtq.c always uses it),
 * queue size fixed by the device. Device config follows the MSI-X vector registers when MSI-X is on. */
#include <errno.h>

#include "cpu.h"
#include "virtio_pci.h"

#define LEGACY_HOST_FEATURES 0
#define LEGACY_GUEST_FEATURES 4
#define LEGACY_QUEUE_PFN 8
#define LEGACY_QUEUE_SIZE 12
#define LEGACY_QUEUE_SELECT 14
#define LEGACY_QUEUE_NOTIFY 16
#define LEGACY_STATUS 18
#define LEGACY_ISR 19
#define LEGACY_CONFIG_VECTOR 20
#define LEGACY_QUEUE_VECTOR 22
#define LEGACY_CONFIG_NOMSIX 20
#define LEGACY_CONFIG_MSIX 24
#define LEGACY_PAGE_SHIFT 12

static uint8_t legacy_get_status(struct virtio_dev *vd) { return inb(vd->io + LEGACY_STATUS); }
static void legacy_set_status(struct virtio_dev *vd, uint8_t s) { outb(vd->io + LEGACY_STATUS, s); }
static uint64_t legacy_get_features(struct virtio_dev *vd) { return inl(vd->io + LEGACY_HOST_FEATURES); }
static void legacy_set_features(struct virtio_dev *vd, uint64_t f) { outl(vd->io + LEGACY_GUEST_FEATURES, (uint32_t)f); }

static uint32_t legacy_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	uint16_t port = vd->io + (vd->msix ? LEGACY_CONFIG_MSIX : LEGACY_CONFIG_NOMSIX) + off;
	switch (width) {
	case 1:
		return inb(port);
	case 2:
		return inw(port);
	default:
		return inl(port);
	}
}

static uint8_t legacy_config_generation(struct virtio_dev *vd)
{
	(void)vd;
	return 0; /* legacy has no generation counter */
}

static uint16_t legacy_queue_max_size(struct virtio_dev *vd, uint16_t index)
{
	outw(vd->io + LEGACY_QUEUE_SELECT, index);
	return inw(vd->io + LEGACY_QUEUE_SIZE);
}

static int legacy_queue_setup(struct virtio_dev *vd, struct virtq *vq, uint16_t msix)
{
	if (virtq_is_packed(vq))
		return -EINVAL; /* the legacy interface has only split rings (its features stop at bit 31) */
	outw(vd->io + LEGACY_QUEUE_SELECT, vq->index);
	if (inw(vd->io + LEGACY_QUEUE_SIZE) != vq->size)
		return -EINVAL; /* the legacy ring size is the device's, not ours */
	if (vd->msix) {
		outw(vd->io + LEGACY_QUEUE_VECTOR, msix);
		if (inw(vd->io + LEGACY_QUEUE_VECTOR) != msix)
			return -EIO;
	}
	outl(vd->io + LEGACY_QUEUE_PFN, (uint32_t)(virtq_desc_addr(vq) >> LEGACY_PAGE_SHIFT));
	return 0;
}

static int legacy_set_config_vector(struct virtio_dev *vd, uint16_t msix)
{
	outw(vd->io + LEGACY_CONFIG_VECTOR, msix);
	return inw(vd->io + LEGACY_CONFIG_VECTOR) == msix ? 0 : -EIO;
}

static void legacy_notify(struct virtio_dev *vd, struct virtq *vq) { outw(vd->io + LEGACY_QUEUE_NOTIFY, vq->index); }
static uint8_t legacy_isr(struct virtio_dev *vd) { return inb(vd->io + LEGACY_ISR); }

const struct virtio_ops virtio_pci_legacy_ops = {
	.name = "legacy",
	.get_status = legacy_get_status,
	.set_status = legacy_set_status,
	.get_features = legacy_get_features,
	.set_features = legacy_set_features,
	.config_read = legacy_config_read,
	.config_generation = legacy_config_generation,
	.queue_max_size = legacy_queue_max_size,
	.queue_setup = legacy_queue_setup,
	.set_config_vector = legacy_set_config_vector,
	.notify = legacy_notify,
	.isr = legacy_isr,
	.size_settable = 0,
	.legacy = 1,
};
