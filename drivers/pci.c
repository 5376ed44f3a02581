/* PCI enumeration and configuration. */
#include "pci.h"

#include <errno.h>
#include <stdio.h>

#include "acpi.h"
#include "cpu.h"
#include "lapic.h"
#include "mm.h"
#include "mmio.h"

#define PCI_CFG_ADDR 0xCF8
#define PCI_CFG_DATA 0xCFC
#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_HEADER_TYPE 0x0E
#define PCI_BAR0 0x10
#define PCI_SECONDARY_BUS 0x19
#define PCI_SUBSYS_VENDOR 0x2C
#define PCI_CAP_PTR 0x34
#define PCI_IRQ_LINE 0x3C
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CMD_IO 0x1
#define PCI_CMD_MEM 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_DISABLE 0x400
#define PCI_CLASS_BRIDGE 0x06
#define PCI_SUBCLASS_PCI_BRIDGE 0x04
#define PCI_CAP_WALK_MAX 48 /* 256-byte config space / 4-byte minimum capability */

#define MSIX_CTRL 2
#define MSIX_TABLE 4
#define MSIX_PBA 8
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000
#define MSIX_ENTRY_SIZE 16
#define MSIX_ENTRY_ADDR_LO 0
#define MSIX_ENTRY_ADDR_HI 4
#define MSIX_ENTRY_DATA 8
#define MSIX_ENTRY_CTRL 12
#define MSIX_ENTRY_MASKED 1

struct pci_dev pci_devices[PCI_MAX_DEVICES];
unsigned pci_num_devices;
static uintptr_t pci_ecam_base; /* mapped ECAM window of segment 0, 0 if port I/O is used */
static uint8_t pci_ecam_bus_start, pci_ecam_bus_end;

static uintptr_t pci_ecam_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	return pci_ecam_base + ((uintptr_t)(bus - pci_ecam_bus_start) << 20) + ((uintptr_t)dev << 15) +
	       ((uintptr_t)fn << 12) + off;
}

static int pci_use_ecam(uint8_t bus) { return pci_ecam_base && bus >= pci_ecam_bus_start && bus <= pci_ecam_bus_end; }

static uint32_t pci_cfg_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	if (pci_use_ecam(bus))
		return mmio_read32(pci_ecam_addr(bus, dev, fn, off & ~3u));
	if (off >= 256)
		return 0xFFFFFFFFu;
	outl(PCI_CFG_ADDR, 0x80000000u | ((uint32_t)bus << 16) | ((uint32_t)dev << 11) | ((uint32_t)fn << 8) | (off & 0xFC));
	return inl(PCI_CFG_DATA);
}

static void pci_cfg_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
	if (pci_use_ecam(bus)) {
		mmio_write32(pci_ecam_addr(bus, dev, fn, off & ~3u), v);
		return;
	}
	if (off >= 256)
		return;
	outl(PCI_CFG_ADDR, 0x80000000u | ((uint32_t)bus << 16) | ((uint32_t)dev << 11) | ((uint32_t)fn << 8) | (off & 0xFC));
	outl(PCI_CFG_DATA, v);
}

uint32_t pci_read32(const struct pci_dev *d, uint16_t off) { return pci_cfg_read32(d->bus, d->dev, d->fn, off); }
uint16_t pci_read16(const struct pci_dev *d, uint16_t off) { return (uint16_t)(pci_read32(d, off & ~3u) >> ((off & 2) * 8)); }
uint8_t pci_read8(const struct pci_dev *d, uint16_t off) { return (uint8_t)(pci_read32(d, off & ~3u) >> ((off & 3) * 8)); }
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v) { pci_cfg_write32(d->bus, d->dev, d->fn, off, v); }

/* Sub-dword writes are read-modify-write of the dword. The one dword where that could hurt holds the
 * command register and the status register, whose error bits are write-1-to-clear: status is written as 0. */
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v)
{
	uint32_t shift = (off & 2) * 8, dw = pci_read32(d, off & ~3u);
	if ((off & ~3u) == PCI_COMMAND)
		dw &= 0x0000FFFFu; /* never write back status bits: they are write-1-to-clear */
	dw = (dw & ~(0xFFFFu << shift)) | ((uint32_t)v << shift);
	pci_write32(d, off & ~3u, dw);
}

/* Sizes BAR i by writing all ones with decoding off, as PCI 3.0 §6.2.5.1 describes. Returns the number of
 * BAR slots consumed (2 for a 64-bit BAR). */
static unsigned pci_size_bar(struct pci_dev *d, unsigned i)
{
	uint16_t off = PCI_BAR0 + 4 * i;
	uint32_t orig = pci_read32(d, off), lo;
	struct pci_bar *b = &d->bar[i];

	pci_write32(d, off, 0xFFFFFFFFu);
	lo = pci_read32(d, off);
	pci_write32(d, off, orig);
	if (lo == 0 || lo == 0xFFFFFFFFu)
		return 1; /* not implemented */
	if (orig & 1) {
		b->is_io = 1;
		b->addr = orig & ~3u;
		b->size = (uint16_t)(~(lo & ~3u) + 1);
		return 1;
	}
	b->prefetch = (orig >> 3) & 1;
	if (((orig >> 1) & 3) == 2 && i < 5) {
		uint32_t orig_hi = pci_read32(d, off + 4), hi;
		pci_write32(d, off + 4, 0xFFFFFFFFu);
		hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, orig_hi);
		b->is_64 = 1;
		b->addr = ((uint64_t)orig_hi << 32) | (orig & ~0xFu);
		b->size = ~((((uint64_t)hi << 32) | (lo & ~0xFu))) + 1;
		return 2;
	}
	b->addr = orig & ~0xFu;
	b->size = (uint32_t)(~(lo & ~0xFu) + 1);
	return 1;
}

/* Next free address in the host bridge's memory windows, for BARs no firmware assigned: on microvm,pcie=on
 * neither qboot nor SeaBIOS can reach the ECAM-only bus, and on q35 qboot assigns none, so every BAR reads 0.
 * The windows come from ACPI (acpi_info.pci_mmio32/64), or on a q35 without them from pci_q35_default_window. */
static uint64_t pci_alloc32, pci_alloc64, pci_alloc_io;
static struct {
	uint64_t base, size;
} pci_win32, pci_win64, pci_win_io;

#define PCI_ID_Q35_MCH 0x29C08086u /* Intel 82G33 (Q35) host bridge, as QEMU's q35 presents it */
/* QEMU's q35 below 4 GiB: RAM ends by 0xb0000000 (its ECAM window, 256 MiB, sits there), and from 0xfec00000
 * the IOAPIC, HPET and LAPIC; SeaBIOS puts BARs from 0xc0000000 up. The same hole, for ACPI-less boots. */
#define PCI_Q35_HOLE_BASE 0xC0000000ull
#define PCI_Q35_HOLE_END 0xFEC00000ull
/* I/O BARs from 0xc000 as SeaBIOS places them: clear of the ISA ports, the CF8 ports and their aliases. */
#define PCI_IO_FIRST 0xC000u
#define PCI_IO_END 0x10000u

static void pci_q35_default_window(uint32_t host_id)
{
	if (host_id != PCI_ID_Q35_MCH || pci_win32.size || pci_win64.size)
		return;
	pci_win32.base = PCI_Q35_HOLE_BASE;
	pci_win32.size = PCI_Q35_HOLE_END - PCI_Q35_HOLE_BASE;
	pci_win_io.base = PCI_IO_FIRST;
	pci_win_io.size = PCI_IO_END - PCI_IO_FIRST;
	printf("pci: q35 without ACPI windows; BARs go to the default hole %#llx-%#llx, I/O %#x-%#x\n",
	       (unsigned long long)PCI_Q35_HOLE_BASE, (unsigned long long)PCI_Q35_HOLE_END - 1, PCI_IO_FIRST,
	       PCI_IO_END - 1);
}

/* Gives an unassigned BAR an address in a window: naturally aligned (a BAR's size is a power of two), 64-bit
 * BARs in the 64-bit window when there is one, I/O BARs in the I/O window. Called with decoding off. Bridge
 * windows are not programmed: a device behind a bridge or root port gets an address its bridge does not
 * forward and stays unreachable under qboot (run-qemu.sh's NICs sit on the root bus). */
static void pci_assign_bar(struct pci_dev *d, unsigned i)
{
	struct pci_bar *b = &d->bar[i];
	int high = b->is_64 && pci_win64.size;
	uint64_t wbase = high ? pci_win64.base : pci_win32.base;
	uint64_t wsize = high ? pci_win64.size : pci_win32.size;
	uint64_t *next = high ? &pci_alloc64 : &pci_alloc32;

	if (b->is_io)
		wbase = pci_win_io.base, wsize = pci_win_io.size, next = &pci_alloc_io;
	if (b->addr || !b->size || !wsize)
		return;
	if (*next < wbase)
		*next = wbase;
	uint64_t a = (*next + b->size - 1) & ~(b->size - 1);
	if (a + b->size > wbase + wsize) {
		printf("pci: %02x:%02x.%u BAR%u (%#llx bytes) does not fit the host bridge window; left unassigned\n",
		       d->bus, d->dev, d->fn, i, (unsigned long long)b->size);
		return;
	}
	if (b->is_io) {
		pci_write32(d, PCI_BAR0 + 4 * i, (uint32_t)a | 1u);
		b->addr = a;
		b->assigned = 1;
		*next = a + b->size;
		return;
	}
	pci_write32(d, PCI_BAR0 + 4 * i, (uint32_t)a | (b->is_64 ? 4u : 0) | (b->prefetch ? 8u : 0));
	if (b->is_64)
		pci_write32(d, PCI_BAR0 + 4 * i + 4, (uint32_t)(a >> 32));
	b->addr = a;
	b->assigned = 1;
	*next = a + b->size;
}

static void pci_scan_bus(uint8_t bus, unsigned depth);

static void pci_add_function(uint8_t bus, uint8_t dev, uint8_t fn, unsigned depth)
{
	uint32_t id = pci_cfg_read32(bus, dev, fn, PCI_VENDOR_ID);
	struct pci_dev tmp = { 0 }, *d = &tmp;

	if ((id & 0xFFFF) == 0xFFFF)
		return;
	if (pci_num_devices < PCI_MAX_DEVICES)
		d = &pci_devices[pci_num_devices++];
	else
		printf("pci: more than %d functions; %02x:%02x.%u not recorded\n", PCI_MAX_DEVICES, bus, dev, fn);
	d->bus = bus;
	d->dev = dev;
	d->fn = fn;
	d->vendor = id & 0xFFFF;
	d->device = id >> 16;
	uint32_t cls = pci_read32(d, PCI_REVISION);
	d->revision = cls & 0xFF;
	d->prog_if = (cls >> 8) & 0xFF;
	d->subclass = (cls >> 16) & 0xFF;
	d->class_code = cls >> 24;
	d->header_type = pci_read8(d, PCI_HEADER_TYPE) & 0x7F;
	if (bus == 0 && dev == 0 && fn == 0)
		pci_q35_default_window(id);

	if (d->header_type == 0) {
		/* Decoding off while sizing, so a BAR briefly at all-ones decodes nothing. */
		uint16_t cmd = pci_read16(d, PCI_COMMAND);
		pci_write16(d, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM));
		for (unsigned i = 0; i < 6;)
			i += pci_size_bar(d, i);
		for (unsigned i = 0; i < 6; i++)
			pci_assign_bar(d, i);
		pci_write16(d, PCI_COMMAND, cmd);
		uint32_t ss = pci_read32(d, PCI_SUBSYS_VENDOR);
		d->subsys_vendor = ss & 0xFFFF;
		d->subsys_id = ss >> 16;
		d->irq_line = pci_read8(d, PCI_IRQ_LINE);
		d->irq_pin = pci_read8(d, PCI_IRQ_LINE + 1);
		d->msix_cap = pci_find_cap(d, PCI_CAP_MSIX, 0);
	}
	printf("pci: %02x:%02x.%u %04x:%04x class %02x.%02x.%02x%s\n", bus, dev, fn, d->vendor, d->device,
	       d->class_code, d->subclass, d->prog_if, d->msix_cap ? " msix" : "");
	for (unsigned i = 0; i < 6; i++)
		if (d->bar[i].size)
			printf("pci:   BAR%u %s %#llx size %#llx%s%s%s\n", i, d->bar[i].is_io ? "io " : "mem",
			       (unsigned long long)d->bar[i].addr, (unsigned long long)d->bar[i].size,
			       d->bar[i].is_64 ? " 64-bit" : "", d->bar[i].prefetch ? " prefetchable" : "",
			       d->bar[i].assigned ? " (assigned here)" : "");

	if (d->class_code == PCI_CLASS_BRIDGE && d->subclass == PCI_SUBCLASS_PCI_BRIDGE && d->header_type == 1) {
		uint8_t secondary = pci_read8(d, PCI_SECONDARY_BUS);
		if (secondary > bus)
			pci_scan_bus(secondary, depth + 1);
	}
}

static void pci_scan_bus(uint8_t bus, unsigned depth)
{
	if (depth > 8)
		return; /* a bridge loop from bad firmware: stop */
	for (uint8_t dev = 0; dev < 32; dev++) {
		uint32_t id = pci_cfg_read32(bus, dev, 0, PCI_VENDOR_ID);
		if ((id & 0xFFFF) == 0xFFFF)
			continue;
		uint8_t multi = (pci_cfg_read32(bus, dev, 0, PCI_HEADER_TYPE & ~3u) >> 16) & 0x80;
		for (uint8_t fn = 0; fn < (multi ? 8 : 1); fn++)
			pci_add_function(bus, dev, fn, depth);
	}
}

int pci_init(void)
{
	pci_num_devices = 0;
	pci_win32.base = acpi_info.pci_mmio32.base, pci_win32.size = acpi_info.pci_mmio32.size;
	pci_win64.base = acpi_info.pci_mmio64.base, pci_win64.size = acpi_info.pci_mmio64.size;
	/* Inside the ACPI I/O range, but no lower than PCI_IO_FIRST. */
	if (acpi_info.pci_io.base + acpi_info.pci_io.size > PCI_IO_FIRST) {
		pci_win_io.base = acpi_info.pci_io.base > PCI_IO_FIRST ? acpi_info.pci_io.base : PCI_IO_FIRST;
		pci_win_io.size = acpi_info.pci_io.base + acpi_info.pci_io.size - pci_win_io.base;
	}
	for (unsigned i = 0; i < acpi_info.num_mcfg; i++) {
		if (acpi_info.mcfg[i].segment != 0)
			continue;
		uint64_t base = acpi_info.mcfg[i].base;
		uint8_t first = acpi_info.mcfg[i].bus_start, last = acpi_info.mcfg[i].bus_end;
		/* ECAM: 1 MiB of configuration space per bus. */
		uint64_t len = ((uint64_t)(last - first) + 1) << 20;
		if (paging_map_mmio(base + ((uint64_t)first << 20), len) == 0) {
			pci_ecam_base = (uintptr_t)(base + ((uint64_t)first << 20));
			pci_ecam_bus_start = first;
			pci_ecam_bus_end = last;
			printf("pci: ECAM at %#llx for buses %u-%u\n", (unsigned long long)pci_ecam_base, first, last);
		}
		break;
	}
	if (!pci_ecam_base)
		printf("pci: no ECAM window (no ACPI MCFG); using configuration ports 0xCF8/0xCFC\n");
	pci_scan_bus(0, 0);
	printf("pci: %u function(s)\n", pci_num_devices);
	return 0;
}

uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id, uint8_t start)
{
	uint8_t off;

	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	off = start ? pci_read8(d, start + 1) : pci_read8(d, PCI_CAP_PTR);
	for (int i = 0; i < PCI_CAP_WALK_MAX && off >= 0x40; i++) {
		off &= 0xFC;
		if (pci_read8(d, off) == id)
			return off;
		off = pci_read8(d, off + 1);
	}
	return 0;
}

uintptr_t pci_map_bar(struct pci_dev *d, unsigned bar)
{
	if (bar >= 6 || d->bar[bar].is_io || !d->bar[bar].size || !d->bar[bar].addr)
		return 0;
	if (paging_map_mmio(d->bar[bar].addr, d->bar[bar].size)) {
		printf("pci: %02x:%02x.%u: cannot map BAR%u at %#llx\n", d->bus, d->dev, d->fn, bar,
		       (unsigned long long)d->bar[bar].addr);
		return 0;
	}
	return (uintptr_t)d->bar[bar].addr;
}

void pci_enable(struct pci_dev *d, int mem, int io)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND) | PCI_CMD_MASTER;
	if (mem)
		cmd |= PCI_CMD_MEM;
	if (io)
		cmd |= PCI_CMD_IO;
	pci_write16(d, PCI_COMMAND, cmd);
}

void pci_intx_disable(struct pci_dev *d, int disable)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	cmd = disable ? (cmd | PCI_CMD_INTX_DISABLE) : (cmd & ~PCI_CMD_INTX_DISABLE);
	pci_write16(d, PCI_COMMAND, cmd);
}

int pci_msix_init(struct pci_dev *d, struct pci_msix *m)
{
	if (!d->msix_cap)
		return -ENODEV;
	uint16_t ctrl = pci_read16(d, d->msix_cap + MSIX_CTRL);
	uint32_t table = pci_read32(d, d->msix_cap + MSIX_TABLE), pba = pci_read32(d, d->msix_cap + MSIX_PBA);
	unsigned tbir = table & 7, pbir = pba & 7;

	m->dev = d;
	m->table_size = (ctrl & 0x7FF) + 1;
	if (tbir > 5 || pbir > 5 || d->bar[tbir].is_io || d->bar[pbir].is_io ||
	    (table & ~7u) + (uint64_t)m->table_size * MSIX_ENTRY_SIZE > d->bar[tbir].size) {
		printf("pci: %02x:%02x.%u: MSI-X table outside its BAR\n", d->bus, d->dev, d->fn);
		return -EINVAL;
	}
	uintptr_t tb = pci_map_bar(d, tbir), pb = pci_map_bar(d, pbir);
	if (!tb || !pb)
		return -ENOMEM;
	m->table = tb + (table & ~7u);
	m->pba = pb + (pba & ~7u);
	/* Enable with the function masked, then mask every entry individually: nothing fires until the driver
	 * has pointed an entry at a handler and unmasked it. */
	pci_write16(d, d->msix_cap + MSIX_CTRL, ctrl | MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK);
	for (unsigned i = 0; i < m->table_size; i++)
		mmio_write32(m->table + i * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL, MSIX_ENTRY_MASKED);
	return 0;
}

int pci_msix_set(struct pci_msix *m, unsigned entry, uint8_t vector)
{
	if (entry >= m->table_size)
		return -EINVAL;
	uintptr_t e = m->table + entry * MSIX_ENTRY_SIZE;
	/* Message address 0xFEExxxxx with the destination APIC ID in bits 19:12, physical mode; data = vector,
	 * fixed delivery, edge. */
	mmio_write32(e + MSIX_ENTRY_CTRL, MSIX_ENTRY_MASKED);
	mmio_write32(e + MSIX_ENTRY_ADDR_LO, 0xFEE00000u | ((lapic_id() & 0xFF) << 12));
	mmio_write32(e + MSIX_ENTRY_ADDR_HI, 0);
	mmio_write32(e + MSIX_ENTRY_DATA, vector);
	mmio_write32(e + MSIX_ENTRY_CTRL, 0);
	return 0;
}

void pci_msix_enable(struct pci_msix *m)
{
	uint16_t ctrl = pci_read16(m->dev, m->dev->msix_cap + MSIX_CTRL);
	pci_write16(m->dev, m->dev->msix_cap + MSIX_CTRL, (ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_FMASK);
}

void pci_msix_disable(struct pci_msix *m)
{
	uint16_t ctrl = pci_read16(m->dev, m->dev->msix_cap + MSIX_CTRL);
	pci_write16(m->dev, m->dev->msix_cap + MSIX_CTRL, ctrl & ~MSIX_CTRL_ENABLE);
}
