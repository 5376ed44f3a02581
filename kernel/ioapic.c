/* I/O APIC (82093AA datasheet): indirect register window IOREGSEL/IOWIN, redirection entries at 0x10+2n. */
#include "ioapic.h"

#include <errno.h>
#include <stdio.h>

#include "acpi.h"
#include "lapic.h"
#include "mm.h"
#include "mmio.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOAPIC_VER 0x01
#define IOAPIC_REDTBL 0x10
#define RTE_MASKED (1u << 16)
#define RTE_REMOTE_IRR (1u << 14)
#define RTE_LEVEL (1u << 15)
#define RTE_ACTIVE_LOW (1u << 13)

static struct {
	uintptr_t base;
	uint32_t gsi_base;
	unsigned pins;
} ioapics[ACPI_MAX_IOAPICS];
static unsigned ioapic_count;

static uint32_t ioapic_read(uintptr_t base, uint8_t reg)
{
	mmio_write32(base + IOREGSEL, reg);
	return mmio_read32(base + IOWIN);
}

static void ioapic_write(uintptr_t base, uint8_t reg, uint32_t v)
{
	mmio_write32(base + IOREGSEL, reg);
	mmio_write32(base + IOWIN, v);
}

#define IOAPIC_DEFAULT_BASE 0xFEC00000u /* where every PC chipset (and QEMU microvm without ACPI) puts it */

int ioapic_init(void)
{
	if (acpi_info.num_ioapics == 0) {
		/* No MADT (microvm with acpi=off): the architectural default, one IOAPIC serving GSIs from 0. */
		acpi_info.ioapic[0].addr = IOAPIC_DEFAULT_BASE;
		acpi_info.ioapic[0].gsi_base = 0;
		acpi_info.num_ioapics = 1;
		printf("ioapic: no ACPI MADT; assuming one IOAPIC at %#x\n", IOAPIC_DEFAULT_BASE);
	}
	for (unsigned i = 0; i < acpi_info.num_ioapics; i++) {
		uintptr_t base = acpi_info.ioapic[i].addr;
		if (paging_map_mmio(base, 4096))
			continue;
		ioapics[ioapic_count].base = base;
		ioapics[ioapic_count].gsi_base = acpi_info.ioapic[i].gsi_base;
		ioapics[ioapic_count].pins = ((ioapic_read(base, IOAPIC_VER) >> 16) & 0xFF) + 1;
		/* Everything masked until a driver routes it. */
		for (unsigned p = 0; p < ioapics[ioapic_count].pins; p++)
			ioapic_write(base, IOAPIC_REDTBL + 2 * p, RTE_MASKED);
		ioapic_count++;
	}
	return ioapic_count ? 0 : -ENODEV;
}

static int ioapic_find(uint32_t gsi, unsigned *idx, unsigned *pin)
{
	for (unsigned i = 0; i < ioapic_count; i++) {
		if (gsi >= ioapics[i].gsi_base && gsi < ioapics[i].gsi_base + ioapics[i].pins) {
			*idx = i;
			*pin = gsi - ioapics[i].gsi_base;
			return 0;
		}
	}
	return -ENOENT;
}

int ioapic_route(uint32_t gsi, uint8_t vector, int level, int low)
{
	unsigned i, pin;
	if (ioapic_find(gsi, &i, &pin))
		return -ENOENT;
	uint32_t lo = vector | (level ? RTE_LEVEL : 0) | (low ? RTE_ACTIVE_LOW : 0);
	ioapic_write(ioapics[i].base, IOAPIC_REDTBL + 2 * pin + 1, (lapic_id() & 0xFF) << 24);
	ioapic_write(ioapics[i].base, IOAPIC_REDTBL + 2 * pin, lo);
	return 0;
}

void ioapic_mask(uint32_t gsi, int masked)
{
	unsigned i, pin;
	if (ioapic_find(gsi, &i, &pin))
		return;
	uint32_t lo = ioapic_read(ioapics[i].base, IOAPIC_REDTBL + 2 * pin);
	lo = masked ? (lo | RTE_MASKED) : (lo & ~RTE_MASKED);
	ioapic_write(ioapics[i].base, IOAPIC_REDTBL + 2 * pin, lo);
}

int ioapic_in_service(uint32_t gsi)
{
	unsigned i, pin;
	if (ioapic_find(gsi, &i, &pin))
		return 0;
	/* Remote IRR: a level-triggered interrupt from this pin was delivered and has not had its EOI yet. */
	return (ioapic_read(ioapics[i].base, IOAPIC_REDTBL + 2 * pin) & RTE_REMOTE_IRR) != 0;
}
