/* The virtio PCI transport (virtio 1.x §4.1), modern and legacy behind one ops table, so device drivers have
 * a single code path. */
#ifndef VIRTIO_PCI_H
#define VIRTIO_PCI_H

#include <stdint.h>

#include "pci.h"
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
#define VIRTIO_PCI_VENDOR 0x1AF4
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

struct virtio_dev;

struct virtio_ops {
	const char *name;
	uint8_t (*get_status)(struct virtio_dev *vd);
	void (*set_status)(struct virtio_dev *vd, uint8_t status);
	uint64_t (*get_features)(struct virtio_dev *vd);
	void (*set_features)(struct virtio_dev *vd, uint64_t features);
	/* Device-specific configuration (§4.1.4.6 / legacy §4.1.4.8), byte offset off, width 1, 2 or 4. A read
	 * outside the device-config capability's length (or with none) returns 0 and is logged once. */
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
	/* Reads (and thereby clears) the ISR status: for INTx only. */
	uint8_t (*isr)(struct virtio_dev *vd);
	/* Whether the ring size can be chosen by the driver (modern) or is fixed at the device's (legacy). */
	int size_settable;
};

struct virtio_dev {
	struct pci_dev *pci;
	const struct virtio_ops *ops;
	int msix;                /* MSI-X vectors configured (affects the legacy register layout) */
	uint64_t features;       /* negotiated */
	/* modern */
	uintptr_t common, isr_reg, device_cfg, notify_base;
	uint32_t notify_mult;
	uint32_t notify_len, device_cfg_len; /* lengths of the notify and device-config capabilities */
	int device_cfg_oob_logged;           /* an out-of-range config read was reported (once per device) */
	/* legacy */
	uint16_t io;
};

/* Probes d as a virtio device: modern if it has the virtio capabilities, else legacy (I/O BAR 0). */
int virtio_pci_probe(struct pci_dev *d, struct virtio_dev *vd);

/* Device initialisation steps 1-6 of §3.1.1: reset, ACKNOWLEDGE, DRIVER, feature negotiation (wanted &
 * offered; VERSION_1 required on modern), FEATURES_OK and its re-read. On failure sets FAILED and returns
 * a negative errno with one log line. */
int virtio_pci_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required);

/* Step 8: DRIVER_OK. */
void virtio_pci_driver_ok(struct virtio_dev *vd);

/* Writes 0 to the status and waits (bounded) for the device to read back 0 (§4.1.4.3.2). */
int virtio_pci_reset(struct virtio_dev *vd);

static inline int virtio_has(const struct virtio_dev *vd, unsigned bit) { return (vd->features >> bit) & 1; }

/* The virtq_init flags the negotiated features imply (ring layout, EVENT_IDX). */
static inline unsigned virtio_virtq_flags(const struct virtio_dev *vd)
{
	return (virtio_has(vd, VIRTIO_F_RING_EVENT_IDX) ? VIRTQ_INIT_EVENT_IDX : 0) |
	       (virtio_has(vd, VIRTIO_F_RING_PACKED) ? VIRTQ_INIT_PACKED : 0);
}

#endif
