/* virtio MMIO transport (virtio 1.x §4.2.2 version 2, §4.2.4 legacy version 1). Registers are 32-bit and
 * little-endian (x86 is too); the device configuration starts at 0x100. */
/* memmem (GNU, also in newlib) for the DSDT scan. */
#define _GNU_SOURCE
#include "virtio_mmio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "mm.h"
#include "mmio.h"

/* Register offsets (§4.2.2, and §4.2.4 for the legacy-only ones). */
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_GUEST_PAGE_SIZE 0x028 /* legacy */
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_ALIGN 0x03c /* legacy */
#define MMIO_QUEUE_PFN 0x040   /* legacy */
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC_LOW 0x080
#define MMIO_QUEUE_DESC_HIGH 0x084
#define MMIO_QUEUE_DRIVER_LOW 0x090
#define MMIO_QUEUE_DRIVER_HIGH 0x094
#define MMIO_QUEUE_DEVICE_LOW 0x0a0
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define MMIO_CONFIG_GENERATION 0x0fc
#define MMIO_CONFIG 0x100

#define MMIO_MAGIC_VALUE 0x74726976 /* "virt" */
#define MMIO_WINDOW_MIN 0x100       /* the registers up to the device configuration */
#define LEGACY_PAGE_SHIFT 12

struct virtio_mmio_window virtio_mmio_windows[VIRTIO_MMIO_MAX];
unsigned virtio_mmio_count;

int virtio_mmio_add(const struct virtio_mmio_window *w)
{
	for (unsigned i = 0; i < virtio_mmio_count; i++)
		if (virtio_mmio_windows[i].base == w->base)
			return 1;
	if (virtio_mmio_count == VIRTIO_MMIO_MAX)
		return -ENOSPC;
	virtio_mmio_windows[virtio_mmio_count++] = *w;
	return 0;
}

static uint32_t mmio_reg(struct virtio_dev *vd, unsigned off) { return mmio_read32(vd->mmio + off); }
static void mmio_set(struct virtio_dev *vd, unsigned off, uint32_t v) { mmio_write32(vd->mmio + off, v); }

static uint8_t vmmio_get_status(struct virtio_dev *vd) { return (uint8_t)mmio_reg(vd, MMIO_STATUS); }
static void vmmio_set_status(struct virtio_dev *vd, uint8_t s) { mmio_set(vd, MMIO_STATUS, s); }

static uint64_t vmmio_get_features(struct virtio_dev *vd)
{
	mmio_set(vd, MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = mmio_reg(vd, MMIO_DEVICE_FEATURES);
	mmio_set(vd, MMIO_DEVICE_FEATURES_SEL, 1);
	return lo | ((uint64_t)mmio_reg(vd, MMIO_DEVICE_FEATURES) << 32);
}

static void vmmio_set_features(struct virtio_dev *vd, uint64_t f)
{
	mmio_set(vd, MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_set(vd, MMIO_DRIVER_FEATURES, (uint32_t)f);
	mmio_set(vd, MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_set(vd, MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

static uint32_t vmmio_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	/* The device configuration runs from 0x100 to the end of the window the platform described; a read
	 * beyond it would reach the next device's registers. */
	if ((uint64_t)MMIO_CONFIG + off + width > vd->mmio_size) {
		if (!vd->device_cfg_oob_logged) {
			printf("virtio-mmio: %s: config read at %u (width %u) outside the window; reads as 0\n", vd->where,
			       off, width);
			vd->device_cfg_oob_logged = 1;
		}
		return 0;
	}
	uintptr_t a = vd->mmio + MMIO_CONFIG + off;
	switch (width) {
	case 1:
		return mmio_read8(a);
	case 2:
		return mmio_read16(a);
	default:
		return mmio_read32(a);
	}
}

static uint8_t vmmio_config_generation(struct virtio_dev *vd)
{
	/* Version 1 has no generation counter (the register is reserved and reads 0). */
	return vd->ops->legacy ? 0 : (uint8_t)mmio_reg(vd, MMIO_CONFIG_GENERATION);
}

static uint16_t vmmio_queue_max_size(struct virtio_dev *vd, uint16_t index)
{
	mmio_set(vd, MMIO_QUEUE_SEL, index);
	uint32_t max = mmio_reg(vd, MMIO_QUEUE_NUM_MAX);
	return max > 0x8000 ? 0x8000 : (uint16_t)max; /* split rings hold at most 32768 entries (§2.7) */
}

/* §4.2.3.2: select the queue, check it is not in use, set its size and ring addresses, then QueueReady. */
static int vmmio_queue_setup(struct virtio_dev *vd, struct virtq *vq, uint16_t msix)
{
	(void)msix; /* MMIO has one interrupt line per device: no vectors */
	/* The rings were laid out for the features of the first negotiation (§2.8 for packed: descriptor ring,
	 * driver and device event suppression in the three address pairs below). */
	if (virtq_is_packed(vq) != virtio_has(vd, VIRTIO_F_RING_PACKED))
		return -EINVAL;
	mmio_set(vd, MMIO_QUEUE_SEL, vq->index);
	if (mmio_reg(vd, MMIO_QUEUE_READY)) {
		printf("virtio-mmio: %s: queue %u already live\n", vd->where, vq->index);
		return -EBUSY;
	}
	if (vq->size > mmio_reg(vd, MMIO_QUEUE_NUM_MAX))
		return -EINVAL;
	mmio_set(vd, MMIO_QUEUE_NUM, vq->size);
	mmio_set(vd, MMIO_QUEUE_DESC_LOW, (uint32_t)virtq_desc_addr(vq));
	mmio_set(vd, MMIO_QUEUE_DESC_HIGH, (uint32_t)(virtq_desc_addr(vq) >> 32));
	mmio_set(vd, MMIO_QUEUE_DRIVER_LOW, (uint32_t)virtq_avail_addr(vq));
	mmio_set(vd, MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(virtq_avail_addr(vq) >> 32));
	mmio_set(vd, MMIO_QUEUE_DEVICE_LOW, (uint32_t)virtq_used_addr(vq));
	mmio_set(vd, MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(virtq_used_addr(vq) >> 32));
	mmio_set(vd, MMIO_QUEUE_READY, 1);
	return 0;
}

/* §4.2.4.3 (legacy): the ring is one contiguous area in the legacy layout, given as a page frame number with
 * QueueAlign between the available and used rings (virtq.c lays every queue out that way). */
static int vmmio_legacy_queue_setup(struct virtio_dev *vd, struct virtq *vq, uint16_t msix)
{
	(void)msix;
	if (virtq_is_packed(vq))
		return -EINVAL; /* legacy MMIO knows only the split layout (its features stop at bit 31) */
	/* §4.2.4.1: the page size QueuePFN counts in; written before every set-up, so a device reset in between
	 * cannot leave it unset. */
	mmio_set(vd, MMIO_GUEST_PAGE_SIZE, 1u << LEGACY_PAGE_SHIFT);
	mmio_set(vd, MMIO_QUEUE_SEL, vq->index);
	if (mmio_reg(vd, MMIO_QUEUE_PFN)) {
		printf("virtio-mmio: %s: queue %u already live\n", vd->where, vq->index);
		return -EBUSY;
	}
	if (vq->size > mmio_reg(vd, MMIO_QUEUE_NUM_MAX) || (virtq_desc_addr(vq) >> LEGACY_PAGE_SHIFT) > UINT32_MAX)
		return -EINVAL;
	mmio_set(vd, MMIO_QUEUE_NUM, vq->size);
	mmio_set(vd, MMIO_QUEUE_ALIGN, VIRTQ_LEGACY_ALIGN);
	mmio_set(vd, MMIO_QUEUE_PFN, (uint32_t)(virtq_desc_addr(vq) >> LEGACY_PAGE_SHIFT));
	return 0;
}

static int vmmio_set_config_vector(struct virtio_dev *vd, uint16_t msix)
{
	(void)vd;
	return msix == VIRTIO_MSI_NO_VECTOR ? 0 : -EIO;
}

static void vmmio_notify(struct virtio_dev *vd, struct virtq *vq) { mmio_set(vd, MMIO_QUEUE_NOTIFY, vq->index); }

/* §4.2.3.4: the line stays asserted (level-triggered on microvm) until the bits are acknowledged. */
static uint8_t vmmio_isr(struct virtio_dev *vd)
{
	uint32_t st = mmio_reg(vd, MMIO_INTERRUPT_STATUS) & (VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	if (st)
		mmio_set(vd, MMIO_INTERRUPT_ACK, st);
	return (uint8_t)st;
}

static const struct virtio_ops virtio_mmio_ops = {
	.name = "modern",
	.get_status = vmmio_get_status,
	.set_status = vmmio_set_status,
	.get_features = vmmio_get_features,
	.set_features = vmmio_set_features,
	.config_read = vmmio_config_read,
	.config_generation = vmmio_config_generation,
	.queue_max_size = vmmio_queue_max_size,
	.queue_setup = vmmio_queue_setup,
	.set_config_vector = vmmio_set_config_vector,
	.notify = vmmio_notify,
	.isr = vmmio_isr,
	.size_settable = 1,
};

static const struct virtio_ops virtio_mmio_legacy_ops = {
	.name = "legacy",
	.get_status = vmmio_get_status,
	.set_status = vmmio_set_status,
	.get_features = vmmio_get_features, /* the high word reads 0 on version 1 */
	.set_features = vmmio_set_features,
	.config_read = vmmio_config_read,
	.config_generation = vmmio_config_generation,
	.queue_max_size = vmmio_queue_max_size,
	.queue_setup = vmmio_legacy_queue_setup,
	.set_config_vector = vmmio_set_config_vector,
	.notify = vmmio_notify,
	.isr = vmmio_isr,
	.size_settable = 1, /* QueueNum is the driver's choice up to QueueNumMax on both versions */
	.legacy = 1,
};

int virtio_mmio_probe(const struct virtio_mmio_window *w, struct virtio_dev *vd)
{
	snprintf(vd->where, sizeof(vd->where), "mmio@%#llx", (unsigned long long)w->base);
	if (w->size < MMIO_WINDOW_MIN || (w->base & 3)) {
		printf("virtio-mmio: %s: window of %u bytes is too small or misaligned\n", vd->where, w->size);
		return -EINVAL;
	}
	if (paging_map_mmio(w->base, w->size)) {
		printf("virtio-mmio: %s: cannot map %u bytes\n", vd->where, w->size);
		return -ENOMEM;
	}
	vd->mmio = (uintptr_t)w->base;
	vd->mmio_size = w->size;
	vd->gsi = w->gsi;
	vd->gsi_level = w->level;
	vd->gsi_low = w->low;
	/* §4.2.3.1.1: check MagicValue and Version first; DeviceID 0 is a placeholder with no device behind it
	 * (QEMU microvm has eight such slots whether or not they are used). */
	uint32_t magic = mmio_reg(vd, MMIO_MAGIC), version = mmio_reg(vd, MMIO_VERSION);
	if (magic != MMIO_MAGIC_VALUE || (version != 1 && version != 2)) {
		printf("virtio-mmio: %s: not a virtio device (magic %#x, version %u)\n", vd->where, magic, version);
		return -ENODEV;
	}
	uint32_t id = mmio_reg(vd, MMIO_DEVICE_ID);
	if (id == 0)
		return 0;
	vd->ops = version == 2 ? &virtio_mmio_ops : &virtio_mmio_legacy_ops;
	return (int)id;
}

/* ---- discovery through ACPI ---- */

#define AML_SCAN_AFTER_HID 160  /* bytes after the _HID string in which the device's _CRS must appear */
#define RES_MEMORY32_FIXED 0x86 /* large resource descriptors (ACPI 6.x §6.4.3) */
#define RES_EXTENDED_IRQ 0x89
#define RES_EXT_IRQ_EDGE 0x02
#define RES_EXT_IRQ_LOW 0x04

static uint32_t le32_at(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Reads the window of the LNRO0005 device whose _HID string ends at p: QEMU's DSDT gives each one a _CRS
 * with one Memory32Fixed and one Extended Interrupt descriptor. Not an AML interpreter: it looks for those
 * two descriptors in the bytes that follow, which is all a static resource template is. */
static int vmmio_acpi_window(const uint8_t *p, const uint8_t *end, struct virtio_mmio_window *w)
{
	int have_mem = 0, have_irq = 0;
	const uint8_t *stop = end - p > AML_SCAN_AFTER_HID ? p + AML_SCAN_AFTER_HID : end;

	for (; p + 12 <= stop && !(have_mem && have_irq); p++) {
		if (!have_mem && p[0] == RES_MEMORY32_FIXED && p[1] == 9 && p[2] == 0) {
			w->base = le32_at(p + 4);
			w->size = le32_at(p + 8);
			have_mem = 1;
		} else if (!have_irq && p[0] == RES_EXTENDED_IRQ && p[1] >= 6 && p[2] == 0 && p[4] == 1) {
			w->gsi = le32_at(p + 5);
			w->level = !(p[3] & RES_EXT_IRQ_EDGE);
			w->low = (p[3] & RES_EXT_IRQ_LOW) != 0;
			have_irq = 1;
		}
	}
	return have_mem && have_irq ? 0 : -ENOENT;
}

int virtio_mmio_scan_acpi(void)
{
	static const char hid[] = "LNRO0005"; /* the virtio-mmio _HID QEMU (and Linux) use */
	const struct acpi_sdt_header *dsdt = acpi_find_table("DSDT");
	int added = 0;

	if (!dsdt)
		return 0;
	const uint8_t *p = (const uint8_t *)dsdt + sizeof(*dsdt), *end = (const uint8_t *)dsdt + dsdt->length;
	/* memmem, not a memcmp at every byte: on q35 the 8 KiB DSDT has no such device, and the byte-wise scan
	 * was ~0.2 M guest instructions of every boot. sizeof includes the NUL that ends an AML string. */
	while (p < end && (p = memmem(p, (size_t)(end - p), hid, sizeof(hid))) != NULL) {
		struct virtio_mmio_window w = { 0 };
		p += sizeof(hid);
		if (vmmio_acpi_window(p, end, &w)) {
			printf("virtio-mmio: an ACPI LNRO0005 device without a readable _CRS; ignored\n");
			continue;
		}
		if (virtio_mmio_add(&w) == 0)
			added++;
	}
	return added;
}
