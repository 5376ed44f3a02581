/* The virtio PCI transport (virtio 1.x §4.1), modern and legacy behind one ops table (drivers/virtio.h), so
 * device drivers have a single code path. */
#ifndef VIRTIO_PCI_H
#define VIRTIO_PCI_H

#include <stdint.h>

#include "pci.h"
#include "virtio.h"

#define VIRTIO_PCI_VENDOR 0x1AF4

/* Probes d as a virtio device: modern if it has the virtio capabilities, else legacy (I/O BAR 0). */
int virtio_pci_probe(struct pci_dev *d, struct virtio_dev *vd);

/* The legacy interface (virtio_pci_legacy.c), chosen by virtio_pci_probe for devices without the virtio
 * capabilities. */
extern const struct virtio_ops virtio_pci_legacy_ops;

#endif
