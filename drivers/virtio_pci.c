/* virtio PCI transport: the probe and the modern (virtio 1.x) interface, §4.1.4. Device initialisation common to
 * every transport is in virtio.c. */
#include "virtio_pci.h"

#include <errno.h>
#include <stdio.h>

#include "mmio.h"

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* struct virtio_pci_cap (§4.1.4) field offsets within the capability. */
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_NOTIFY_MULT 16

/* struct virtio_pci_common_cfg (§4.1.4.3) register offsets. */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0C
#define COMMON_MSIX 0x10
#define COMMON_NUMQ 0x12
#define COMMON_STATUS 0x14
#define COMMON_CFGGEN 0x15
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1A
#define COMMON_Q_ENABLE 0x1C
#define COMMON_Q_NOFF 0x1E
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_DESCHI 0x24
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_AVAILHI 0x2C
#define COMMON_Q_USEDLO 0x30
#define COMMON_Q_USEDHI 0x34


static uint8_t modern_get_status(struct virtio_dev *vd) { return mmio_read8(vd->common + COMMON_STATUS); }
static void modern_set_status(struct virtio_dev *vd, uint8_t s) { mmio_write8(vd->common + COMMON_STATUS, s); }

static uint64_t modern_get_features(struct virtio_dev *vd)
{
	mmio_write32(vd->common + COMMON_DFSELECT, 0);
	uint64_t lo = mmio_read32(vd->common + COMMON_DF);
	mmio_write32(vd->common + COMMON_DFSELECT, 1);
	return lo | ((uint64_t)mmio_read32(vd->common + COMMON_DF) << 32);
}

static void modern_set_features(struct virtio_dev *vd, uint64_t f)
{
	mmio_write32(vd->common + COMMON_GFSELECT, 0);
	mmio_write32(vd->common + COMMON_GF, (uint32_t)f);
	mmio_write32(vd->common + COMMON_GFSELECT, 1);
	mmio_write32(vd->common + COMMON_GF, (uint32_t)(f >> 32));
}

static uint32_t modern_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	/* The capability says how much device configuration there is (§4.1.4.6); the driver's offsets come
	 * from feature bits the device offered, so a short (or missing) structure is the device's fault. Such
	 * a read must not touch whatever lies beyond it in the BAR. */
	if (!vd->device_cfg || (uint64_t)off + width > vd->device_cfg_len) {
		if (!vd->device_cfg_oob_logged) {
			printf("virtio-pci: device config read at %u (width %u) outside its %u bytes; reads as 0\n", off,
			       width, vd->device_cfg ? vd->device_cfg_len : 0);
			vd->device_cfg_oob_logged = 1;
		}
		return 0;
	}
	switch (width) {
	case 1:
		return mmio_read8(vd->device_cfg + off);
	case 2:
		return mmio_read16(vd->device_cfg + off);
	default:
		return mmio_read32(vd->device_cfg + off);
	}
}

static uint8_t modern_config_generation(struct virtio_dev *vd) { return mmio_read8(vd->common + COMMON_CFGGEN); }

static uint16_t modern_queue_max_size(struct virtio_dev *vd, uint16_t index)
{
	mmio_write16(vd->common + COMMON_Q_SELECT, index);
	return mmio_read16(vd->common + COMMON_Q_SIZE);
}

/* §4.1.5.1.3: select the queue, set its size, vector and ring addresses, then enable it. */
static int modern_queue_setup(struct virtio_dev *vd, struct virtq *vq, uint16_t msix)
{
	uintptr_t c = vd->common;

	/* The rings were laid out for the features of the first negotiation; a device that changed its offer
	 * across a reset would read them in the other layout. */
	if (virtq_is_packed(vq) != virtio_has(vd, VIRTIO_F_RING_PACKED)) {
		printf("virtio-pci: queue %u laid out %s, but the device negotiated %s rings\n", vq->index,
		       virtq_is_packed(vq) ? "packed" : "split", virtio_has(vd, VIRTIO_F_RING_PACKED) ? "packed" : "split");
		return -EINVAL;
	}
	mmio_write16(c + COMMON_Q_SELECT, vq->index);
	/* §4.1.4.4: the queue's notify address is notify_base + queue_notify_off * notify_off_multiplier; both
	 * come from the device, so the 2-byte notification written there must lie inside the notify capability.
	 * Checked once here and cached per queue, which also saves two MMIO accesses per notification. */
	uint64_t noff = (uint64_t)mmio_read16(c + COMMON_Q_NOFF) * vd->notify_mult;
	if (noff + 2 > vd->notify_len) {
		printf("virtio-pci: queue %u notify offset %llu outside the %u-byte notify capability\n", vq->index,
		       (unsigned long long)noff, vd->notify_len);
		return -EINVAL;
	}
	vq->notify_addr = vd->notify_base + (uintptr_t)noff;
	mmio_write16(c + COMMON_Q_SIZE, vq->size);
	mmio_write16(c + COMMON_Q_MSIX, msix);
	if (mmio_read16(c + COMMON_Q_MSIX) != msix)
		return -EIO;
	/* 64-bit fields written as two 32-bit halves, low first (§4.1.3.1). Split: descriptor table, available
	 * and used rings; packed (§2.8.10): descriptor ring, driver and device event suppression. */
	mmio_write32(c + COMMON_Q_DESCLO, (uint32_t)virtq_desc_addr(vq));
	mmio_write32(c + COMMON_Q_DESCHI, (uint32_t)(virtq_desc_addr(vq) >> 32));
	mmio_write32(c + COMMON_Q_AVAILLO, (uint32_t)virtq_avail_addr(vq));
	mmio_write32(c + COMMON_Q_AVAILHI, (uint32_t)(virtq_avail_addr(vq) >> 32));
	mmio_write32(c + COMMON_Q_USEDLO, (uint32_t)virtq_used_addr(vq));
	mmio_write32(c + COMMON_Q_USEDHI, (uint32_t)(virtq_used_addr(vq) >> 32));
	mmio_write16(c + COMMON_Q_ENABLE, 1);
	return 0;
}

static int modern_set_config_vector(struct virtio_dev *vd, uint16_t msix)
{
	mmio_write16(vd->common + COMMON_MSIX, msix);
	return mmio_read16(vd->common + COMMON_MSIX) == msix ? 0 : -EIO;
}

static void modern_notify(struct virtio_dev *vd, struct virtq *vq)
{
	(void)vd;
	mmio_write16(vq->notify_addr, vq->index); /* checked and cached by modern_queue_setup */
}

static uint8_t modern_isr(struct virtio_dev *vd) { return mmio_read8(vd->isr_reg); }

static const struct virtio_ops virtio_pci_modern_ops = {
	.name = "modern",
	.get_status = modern_get_status,
	.set_status = modern_set_status,
	.get_features = modern_get_features,
	.set_features = modern_set_features,
	.config_read = modern_config_read,
	.config_generation = modern_config_generation,
	.queue_max_size = modern_queue_max_size,
	.queue_setup = modern_queue_setup,
	.set_config_vector = modern_set_config_vector,
	.notify = modern_notify,
	.isr = modern_isr,
	.size_settable = 1,
};

/* Finds the virtio structures through the vendor capabilities (§4.1.4) and maps their BARs. */
static int virtio_pci_probe_modern(struct pci_dev *d, struct virtio_dev *vd)
{
	int found = 0;

	for (uint8_t cap = pci_find_cap(d, PCI_CAP_VENDOR, 0); cap; cap = pci_find_cap(d, PCI_CAP_VENDOR, cap)) {
		uint8_t type = pci_read8(d, cap + CAP_CFG_TYPE), bar = pci_read8(d, cap + CAP_BAR);
		uint32_t off = pci_read32(d, cap + CAP_OFFSET), len = pci_read32(d, cap + CAP_LENGTH);
		if (bar > 5 || type < VIRTIO_PCI_CAP_COMMON_CFG || type > VIRTIO_PCI_CAP_DEVICE_CFG)
			continue; /* PCI cfg access capability and reserved types: not used */
		if ((uint64_t)off + len > d->bar[bar].size || d->bar[bar].is_io) {
			printf("virtio-pci: capability type %u points outside BAR%u; ignored\n", type, bar);
			continue;
		}
		uintptr_t base = pci_map_bar(d, bar);
		if (!base)
			return -ENOMEM;
		/* The first capability of each type is the preferred one (§4.1.4.1). */
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			if (!vd->common)
				vd->common = base + off;
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			if (!vd->notify_base) {
				vd->notify_base = base + off;
				vd->notify_len = len;
				vd->notify_mult = pci_read32(d, cap + CAP_NOTIFY_MULT);
			}
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			if (!vd->isr_reg)
				vd->isr_reg = base + off;
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			if (!vd->device_cfg) {
				vd->device_cfg = base + off;
				vd->device_cfg_len = len;
			}
			break;
		}
		found++;
	}
	if (!found)
		return -ENODEV;
	if (!vd->common || !vd->notify_base || !vd->isr_reg) {
		printf("virtio-pci: %02x:%02x.%u lacks a required capability (common %d, notify %d, isr %d)\n", d->bus,
		       d->dev, d->fn, !!vd->common, !!vd->notify_base, !!vd->isr_reg);
		return -EINVAL;
	}
	vd->ops = &virtio_pci_modern_ops;
	return 0;
}

int virtio_pci_probe(struct pci_dev *d, struct virtio_dev *vd)
{
	int rc;

	vd->pci = d;
	snprintf(vd->where, sizeof(vd->where), "%02x:%02x.%u", d->bus, d->dev, d->fn);
	pci_enable(d, 1, 1);
	rc = virtio_pci_probe_modern(d, vd);
	if (rc != -ENODEV)
		return rc;
	/* No virtio capabilities: a legacy-only device (transitional ID, modern interface disabled). */
	if (!d->bar[0].is_io || d->bar[0].size < 24) {
		printf("virtio-pci: %02x:%02x.%u has neither virtio capabilities nor a legacy I/O BAR\n", d->bus,
		       d->dev, d->fn);
		return -ENODEV;
	}
	vd->io = (uint16_t)d->bar[0].addr;
	vd->ops = &virtio_pci_legacy_ops;
	return 0;
}
