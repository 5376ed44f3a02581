/* The virtio MMIO transport (virtio 1.x §4.2): version 2 and the legacy version 1 behind the ops table of
 * drivers/virtio.h. QEMU's microvm machine has no PCI by default; its NICs are virtio-mmio devices, each a
 * 512-byte register window with one interrupt line on the IOAPIC. */
#ifndef VIRTIO_MMIO_H
#define VIRTIO_MMIO_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_MMIO_MAX 16
#define VIRTIO_ID_NET 1

/* A device window as the platform describes it: the command line (`virtio_mmio.device=SIZE@ADDR:IRQ`, which
 * QEMU microvm appends without ACPI) or the ACPI DSDT (LNRO0005 devices, microvm with ACPI). */
struct virtio_mmio_window {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
	int level, low; /* trigger mode and polarity */
};

extern struct virtio_mmio_window virtio_mmio_windows[VIRTIO_MMIO_MAX];
extern unsigned virtio_mmio_count;

/* Records a window. Returns 0, 1 if a window at that base is known already (the command line and the DSDT
 * may both name it; the first wins), or -ENOSPC when the table is full. */
int virtio_mmio_add(const struct virtio_mmio_window *w);

/* Finds the LNRO0005 devices in the DSDT and adds their windows. Returns how many were added. */
int virtio_mmio_scan_acpi(void);

/* Maps window w and checks it is a virtio device (magic, version 1 or 2, a device ID other than 0).
 * Returns the device ID (§5) with vd ready for virtio_negotiate, 0 for an empty slot, or a negative errno
 * (one log line). */
int virtio_mmio_probe(const struct virtio_mmio_window *w, struct virtio_dev *vd);

#endif
