/* PCI: configuration access (ECAM from ACPI MCFG, 0xCF8/0xCFC as fallback), enumeration through bridges, BAR
 * sizing and mapping, capability lists and MSI-X. */
#ifndef PCI_H
#define PCI_H

#include <stdint.h>

#define PCI_MAX_DEVICES 64
#define PCI_CAP_MSIX 0x11
#define PCI_CAP_VENDOR 0x09

struct pci_bar {
	uint64_t addr; /* bus address (== physical); 0 if unassigned */
	uint64_t size;
	uint8_t is_io;
	uint8_t is_64;
	uint8_t prefetch;
	uint8_t assigned; /* placed by pci.c in a host bridge window (no firmware did) */
};

struct pci_dev {
	uint16_t segment;
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t class_code, subclass, prog_if, revision;
	uint8_t header_type;
	uint8_t irq_line, irq_pin;
	uint16_t subsys_vendor, subsys_id;
	struct pci_bar bar[6];
	uint8_t msix_cap; /* config offset of the MSI-X capability, 0 if none */
};

struct pci_msix {
	struct pci_dev *dev;
	uintptr_t table; /* mapped MSI-X table */
	uintptr_t pba;
	uint16_t table_size; /* entries */
};

extern struct pci_dev pci_devices[PCI_MAX_DEVICES];
extern unsigned pci_num_devices;

/* Enumerates every bus reachable from bus 0 and logs each function. */
int pci_init(void);

uint8_t pci_read8(const struct pci_dev *d, uint16_t off);
uint16_t pci_read16(const struct pci_dev *d, uint16_t off);
uint32_t pci_read32(const struct pci_dev *d, uint16_t off);
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v);
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v);


/* Offset of the first capability with this ID at or after `start` in the list (0: from the beginning);
 * 0 if none. The walk is bounded, so a looping list cannot hang the kernel. */
uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id, uint8_t start);

/* Maps a memory BAR uncached and returns its address (identity map), or 0. */
uintptr_t pci_map_bar(struct pci_dev *d, unsigned bar);

/* Turns on memory and/or I/O decoding and bus mastering (DMA: the device writes our rings). */
void pci_enable(struct pci_dev *d, int mem, int io);
void pci_intx_disable(struct pci_dev *d, int disable);

/* MSI-X (PCI 3.0 §6.8.2): map the table, mask all entries, enable with the function mask set. */
int pci_msix_init(struct pci_dev *d, struct pci_msix *m);
/* Points entry at vector on the boot CPU's LAPIC and unmasks it. */
int pci_msix_set(struct pci_msix *m, unsigned entry, uint8_t vector);
/* Clears the function mask: entries that are unmasked may now fire. */
void pci_msix_enable(struct pci_msix *m);
void pci_msix_disable(struct pci_msix *m);

#endif
