/* What every virtio transport offers a device driver (virtio 1.x §2, §3): status, features, configuration
 * space, queue set-up and notification behind one ops table. The PCI transport (virtio_pci.c, modern, and
 * virtio_pci_legacy.c) and the MMIO transport (virtio_mmio.c, version 2 and legacy version 1) fill it; the
 * device drivers (virtio_net*.c) see only this header's interface. */
#ifndef VIRTIO_H
#define VIRTIO_H

#include <stdint.h>

#include "virtq.h"

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport feature bits (§6). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_RING_PACKED 34

#define VIRTIO_MSI_NO_VECTOR 0xFFFF
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

struct virtio_dev;

struct virtio_ops {
	const char *name;
	uint8_t (*get_status)(struct virtio_dev *vd);
	void (*set_status)(struct virtio_dev *vd, uint8_t status);
	uint64_t (*get_features)(struct virtio_dev *vd);
	void (*set_features)(struct virtio_dev *vd, uint64_t features);
	/* Device-specific configuration (§4.1.4.6 / legacy §4.1.4.8 / MMIO §4.2.2), byte offset off, width 1, 2
	 * or 4. A read outside the device configuration's length (or with none) returns 0 and is logged once. */
	uint32_t (*config_read)(struct virtio_dev *vd, unsigned off, unsigned width);
	uint8_t (*config_generation)(struct virtio_dev *vd);
	uint16_t (*queue_max_size)(struct virtio_dev *vd, uint16_t index);
	/* Tells the device where vq's rings are, with MSI-X vector msix (or VIRTIO_MSI_NO_VECTOR), and enables
	 * it; the modern transport also checks the queue's notify address against the notify capability and
	 * caches it in vq->notify_addr. Returns 0, -EIO if the device refused the vector, or -EINVAL (one log
	 * line, queue left untouched) if the device's queue_notify_off puts the address outside the capability. */
	int (*queue_setup)(struct virtio_dev *vd, struct virtq *vq, uint16_t msix);
	int (*set_config_vector)(struct virtio_dev *vd, uint16_t msix);
	void (*notify)(struct virtio_dev *vd, struct virtq *vq);
	/* Reads (and thereby clears: MMIO acknowledges through InterruptACK) the interrupt status: for INTx and
	 * MMIO interrupts only. */
	uint8_t (*isr)(struct virtio_dev *vd);
	/* Whether the ring size can be chosen by the driver (modern) or is fixed at the device's (legacy). */
	int size_settable;
	/* A pre-1.0 interface (PCI legacy, MMIO version 1): no VERSION_1 and no FEATURES_OK step (§3.1.1). */
	int legacy;
};

struct pci_dev;

struct virtio_dev {
	struct pci_dev *pci;     /* the PCI function, NULL on other transports (no MSI-X, no INTx disable bit) */
	const struct virtio_ops *ops;
	char where[24];          /* for log lines: "00:01.0" or "mmio@0xfeb00e00" */
	int msix;                /* MSI-X vectors configured (affects the legacy register layout) */
	uint64_t features;       /* negotiated */
	/* modern */
	uintptr_t common, isr_reg, device_cfg, notify_base;
	uint32_t notify_mult;
	uint32_t notify_len, device_cfg_len; /* lengths of the notify and device-config capabilities */
	int device_cfg_oob_logged;           /* an out-of-range config read was reported (once per device) */
	/* PCI legacy */
	uint16_t io;
	/* MMIO (§4.2): the register window, its length, and the interrupt line (a GSI, through the IOAPIC) */
	uintptr_t mmio;
	uint32_t mmio_size, gsi;
	int gsi_level, gsi_low; /* trigger mode and polarity of that line */
};

/* Device initialisation steps 1-6 of §3.1.1: reset, ACKNOWLEDGE, DRIVER, feature negotiation (wanted &
 * offered; VERSION_1 required on modern), FEATURES_OK and its re-read. On failure sets FAILED and returns
 * a negative errno with one log line. */
int virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required);

/* Step 8: DRIVER_OK. */
void virtio_driver_ok(struct virtio_dev *vd);

/* Writes 0 to the status and waits (bounded) for the device to read back 0 (§2.4; §4.1.4.3.2 on PCI, §4.2.2.1 on MMIO). */
int virtio_reset(struct virtio_dev *vd);

static inline int virtio_has(const struct virtio_dev *vd, unsigned bit) { return (vd->features >> bit) & 1; }

/* The virtq_init flags the negotiated features imply (ring layout, EVENT_IDX). */
static inline unsigned virtio_virtq_flags(const struct virtio_dev *vd)
{
	return (virtio_has(vd, VIRTIO_F_RING_EVENT_IDX) ? VIRTQ_INIT_EVENT_IDX : 0) |
	       (virtio_has(vd, VIRTIO_F_RING_PACKED) ? VIRTQ_INIT_PACKED : 0);
}

#endif
