/* Just enough ACPI: find tables from the RSDP and read what the kernel needs from MADT, MCFG, HPET and FADT,
 * and the resource templates of a PCIe host bridge in the DSDT when there is no MCFG. */
#ifndef ACPI_H
#define ACPI_H

#include <stdint.h>

struct acpi_sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

#define ACPI_MAX_IOAPICS 4
#define ACPI_MAX_MCFG 4

struct acpi_info {
	uint64_t rsdp;
	uint64_t lapic_base;
	unsigned num_cpus;
	unsigned num_ioapics;
	struct {
		uint8_t id;
		uint32_t addr;
		uint32_t gsi_base;
	} ioapic[ACPI_MAX_IOAPICS];
	/* ISA IRQ -> GSI overrides (legacy IRQ 0..15), with polarity/trigger flags from MADT. */
	uint32_t isa_gsi[16];
	uint16_t isa_flags[16];
	unsigned num_mcfg;
	struct {
		uint64_t base;
		uint16_t segment;
		uint8_t bus_start, bus_end;
	} mcfg[ACPI_MAX_MCFG];
	/* A PCIe host bridge the DSDT describes but no MCFG does (QEMU microvm,pcie=on: a GPEX bridge, PNP0A08,
	 * whose ECAM is a PNP0C02 resource): its ECAM goes into mcfg[] above, and its memory windows are where
	 * the kernel puts BARs no firmware assigned (size 0: none). On q35 the windows come from the root
	 * bridge's _CRS (the PCI holes), for BARs qboot leaves unassigned. */
	struct {
		uint64_t base, size;
	} pci_mmio32, pci_mmio64;
	struct {
		uint32_t base, size;
	} pci_io; /* the root bridge's largest I/O range (q35), size 0: none */
	uint64_t hpet_base;
	uint32_t pm_timer_port; /* ACPI PM timer I/O port, 0 if none */
	int pm_timer_32bit;
};

extern struct acpi_info acpi_info;

/* Parses the tables (rsdp 0: search the BIOS area) and records their ranges with mm_reserve_early().
 * Returns 0 or a negative errno; without ACPI the kernel uses architectural defaults. */
int acpi_init(uint64_t rsdp);

/* Maps the tables in the kernel's page tables (they may lie in firmware-reserved memory outside RAM). */
int acpi_map_tables(void);

/* The table with this signature, or NULL. */
const struct acpi_sdt_header *acpi_find_table(const char *sig);

#endif
