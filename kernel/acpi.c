/* ACPI table discovery (ACPI 6.x §5.2). Runs before the kernel's page tables exist, on the loader's identity
 * map, which covers where both SeaBIOS and OVMF put the tables. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "mm.h"

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length; /* revision >= 2 from here */
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

#define ACPI_MAX_TABLES 64

struct acpi_info acpi_info;
static const struct acpi_sdt_header *acpi_tables[ACPI_MAX_TABLES];
static unsigned acpi_num_tables;
static const struct acpi_sdt_header *acpi_root;
static uint32_t acpi_root_len, acpi_table_len[ACPI_MAX_TABLES]; /* read while still mapped */

static int acpi_checksum_ok(const void *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += ((const uint8_t *)p)[i];
	return sum == 0;
}

static uint64_t acpi_scan_rsdp(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 20 <= end; a += 16)
		if (!memcmp((const void *)(uintptr_t)a, "RSD PTR ", 8) && acpi_checksum_ok((const void *)(uintptr_t)a, 20))
			return a;
	return 0;
}

const struct acpi_sdt_header *acpi_find_table(const char *sig)
{
	for (unsigned i = 0; i < acpi_num_tables; i++)
		if (!memcmp(acpi_tables[i]->signature, sig, 4))
			return acpi_tables[i];
	return NULL;
}

/* MADT (§5.2.12): local APIC address, I/O APICs, interrupt source overrides. */
static void acpi_parse_madt(const struct acpi_sdt_header *h)
{
	const uint8_t *p = (const uint8_t *)h + sizeof(*h);
	const uint8_t *end = (const uint8_t *)h + h->length;

	acpi_info.lapic_base = *(const uint32_t *)p;
	p += 8; /* local APIC address, flags */
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		switch (p[0]) {
		case 0: /* processor local APIC; flags bit 0 = enabled */
			if (*(const uint32_t *)(p + 4) & 1)
				acpi_info.num_cpus++;
			break;
		case 1: /* I/O APIC */
			if (acpi_info.num_ioapics < ACPI_MAX_IOAPICS) {
				unsigned k = acpi_info.num_ioapics++;
				acpi_info.ioapic[k].id = p[2];
				acpi_info.ioapic[k].addr = *(const uint32_t *)(p + 4);
				acpi_info.ioapic[k].gsi_base = *(const uint32_t *)(p + 8);
			}
			break;
		case 2: /* interrupt source override */
			if (p[3] < 16) {
				acpi_info.isa_gsi[p[3]] = *(const uint32_t *)(p + 4);
				acpi_info.isa_flags[p[3]] = *(const uint16_t *)(p + 8);
			}
			break;
		case 5: /* local APIC address override */
			acpi_info.lapic_base = *(const uint64_t *)(p + 4);
			break;
		default:
			break;
		}
		p += p[1];
	}
}

/* MCFG (PCI Firmware spec §4.1.2): ECAM windows. */
static void acpi_parse_mcfg(const struct acpi_sdt_header *h)
{
	const uint8_t *p = (const uint8_t *)h + sizeof(*h) + 8;
	const uint8_t *end = (const uint8_t *)h + h->length;

	for (; p + 16 <= end && acpi_info.num_mcfg < ACPI_MAX_MCFG; p += 16) {
		unsigned k = acpi_info.num_mcfg++;
		acpi_info.mcfg[k].base = *(const uint64_t *)p;
		acpi_info.mcfg[k].segment = *(const uint16_t *)(p + 8);
		acpi_info.mcfg[k].bus_start = p[10];
		acpi_info.mcfg[k].bus_end = p[11];
	}
}

/* Large resource descriptors (ACPI 6.x §6.4.3.5): QWord and DWord address space, type 0 = memory. */
#define RES_DWORD_ADDR 0x87
#define RES_QWORD_ADDR 0x8A
#define RES_DWORD_LEN 0x17
#define RES_QWORD_LEN 0x2B
#define GPEX_SCAN_MAX 4096 /* bytes of a host bridge's AML searched for its resources */

static const uint8_t *acpi_aml_find(const uint8_t *p, const uint8_t *end, const char *s)
{
	size_t n = strlen(s) + 1; /* an AML string ends in NUL: "PNP0A08" does not match "PNP0A08X" */
	for (; p + n <= end; p++)
		if (!memcmp(p, s, n))
			return p + n;
	return NULL;
}

/* A memory address-space descriptor at p: its minimum and length. */
static int acpi_res_memory(const uint8_t *p, const uint8_t *end, uint64_t *base, uint64_t *len)
{
	if (p[0] == RES_QWORD_ADDR && p + 3 + RES_QWORD_LEN <= end && p[1] == RES_QWORD_LEN && p[2] == 0 && p[3] == 0) {
		memcpy(base, p + 14, 8); /* granularity at +6, minimum +14, maximum +22, translation +30, length +38 */
		memcpy(len, p + 38, 8);
		return 1;
	}
	if (p[0] == RES_DWORD_ADDR && p + 3 + RES_DWORD_LEN <= end && p[1] == RES_DWORD_LEN && p[2] == 0 && p[3] == 0) {
		uint32_t b, l;
		memcpy(&b, p + 10, 4);
		memcpy(&l, p + 22, 4);
		*base = b, *len = l;
		return 1;
	}
	return 0;
}

/* QEMU's GPEX host bridge as microvm,pcie=on builds it (hw/pci-host/gpex-acpi.c): Device PCI0 (_HID PNP0A08)
 * whose _CRS holds the bus range and the 32- and 64-bit memory windows, followed by Device RES0 (_HID PNP0C02)
 * whose _CRS is the ECAM window; there is no MCFG. Not an AML interpreter: the resource templates are static
 * buffers, so their descriptors are found by their fixed tags and lengths in the bytes between the names. */
static void acpi_parse_gpex(const struct acpi_sdt_header *dsdt)
{
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;
	const uint8_t *host = acpi_aml_find((const uint8_t *)dsdt + sizeof(*dsdt), end, "PNP0A08");
	if (!host)
		return;
	const uint8_t *host_end = end - host > GPEX_SCAN_MAX ? host + GPEX_SCAN_MAX : end;
	const uint8_t *res0 = acpi_aml_find(host, host_end, "PNP0C02");
	uint64_t base, len;
	if (!res0)
		return;
	for (const uint8_t *p = host; p < res0; p++) {
		if (!acpi_res_memory(p, res0, &base, &len) || !len)
			continue;
		if (base + len <= (1ull << 32) && !acpi_info.pci_mmio32.size)
			acpi_info.pci_mmio32.base = base, acpi_info.pci_mmio32.size = len;
		else if (base >= (1ull << 32) && !acpi_info.pci_mmio64.size)
			acpi_info.pci_mmio64.base = base, acpi_info.pci_mmio64.size = len;
	}
	for (const uint8_t *p = res0; p < host_end; p++) {
		if (!acpi_res_memory(p, host_end, &base, &len) || len < (1u << 20))
			continue;
		/* ECAM is 1 MiB per bus from bus 0 (the bridge's _BBN is 0 on QEMU). */
		uint64_t buses = len >> 20;
		acpi_info.mcfg[0].base = base;
		acpi_info.mcfg[0].segment = 0;
		acpi_info.mcfg[0].bus_start = 0;
		acpi_info.mcfg[0].bus_end = (uint8_t)(buses > 256 ? 255 : buses - 1);
		acpi_info.num_mcfg = 1;
		printf("acpi: PCIe host bridge in the DSDT: ECAM %#llx (%llu buses), windows %#llx+%#llx, %#llx+%#llx\n",
		       (unsigned long long)base, (unsigned long long)(buses > 256 ? 256 : buses),
		       (unsigned long long)acpi_info.pci_mmio32.base, (unsigned long long)acpi_info.pci_mmio32.size,
		       (unsigned long long)acpi_info.pci_mmio64.base, (unsigned long long)acpi_info.pci_mmio64.size);
		return;
	}
}

/* The root bridge's _CRS on QEMU's pc/q35 DSDT (hw/i386/acpi-build.c): a resource template that opens with a
 * Word bus-number descriptor for buses from 0 (an expander bridge's starts at its own bus) and lists the PCI
 * holes as DWord (below 4 GiB) and QWord (above) memory descriptors. qboot, unlike SeaBIOS, assigns no BARs,
 * so the kernel places them in these windows. Walked descriptor by descriptor (§6.4) to the end tag. */
#define RES_WORD_ADDR 0x88
#define RES_WORD_LEN 0x0D
#define RES_TYPE_IO 1
#define RES_TYPE_BUS 2
#define RES_END_TAG 0x79
#define RES_WALK_MAX 64 /* descriptors in one template */

static void acpi_parse_root_crs(const struct acpi_sdt_header *dsdt)
{
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;
	const uint8_t *p = (const uint8_t *)dsdt + sizeof(*dsdt);

	for (; p + 3 + RES_WORD_LEN <= end; p++)
		if (p[0] == RES_WORD_ADDR && p[1] == RES_WORD_LEN && p[2] == 0 && p[3] == RES_TYPE_BUS &&
		    p[8] == 0 && p[9] == 0)
			break;
	for (unsigned n = 0; p + 3 + RES_WORD_LEN <= end && n < RES_WALK_MAX && p[0] != RES_END_TAG; n++) {
		uint64_t base, len;
		if (acpi_res_memory(p, end, &base, &len) && len >= (1u << 20)) {
			/* Of the holes below 4 GiB the highest (q35: 0xc0000000 up to the IOAPIC, where SeaBIOS
			 * puts BARs); the one between RAM and the ECAM window is left alone. */
			if (base + len <= (1ull << 32) && base >= acpi_info.pci_mmio32.base)
				acpi_info.pci_mmio32.base = base, acpi_info.pci_mmio32.size = len;
			else if (base >= (1ull << 32) && !acpi_info.pci_mmio64.size)
				acpi_info.pci_mmio64.base = base, acpi_info.pci_mmio64.size = len;
		}
		/* Word I/O ranges (q35: 0-0xcf7 and 0xd00-0xffff, around the CF8 ports): the largest, for the
		 * I/O BARs of legacy and transitional virtio devices. */
		if (p[0] == RES_WORD_ADDR && p[1] == RES_WORD_LEN && p[2] == 0 && p[3] == RES_TYPE_IO) {
			uint16_t min, iolen;
			memcpy(&min, p + 8, 2);
			memcpy(&iolen, p + 14, 2);
			if (iolen > acpi_info.pci_io.size)
				acpi_info.pci_io.base = min, acpi_info.pci_io.size = iolen;
		}
		p += (p[0] & 0x80) ? 3 + (p[1] | (unsigned)p[2] << 8) : 1 + (p[0] & 7u);
	}
	if (acpi_info.pci_mmio32.size || acpi_info.pci_mmio64.size)
		printf("acpi: PCI root bridge windows %#llx+%#llx, %#llx+%#llx, I/O %#x+%#x\n",
		       (unsigned long long)acpi_info.pci_mmio32.base, (unsigned long long)acpi_info.pci_mmio32.size,
		       (unsigned long long)acpi_info.pci_mmio64.base, (unsigned long long)acpi_info.pci_mmio64.size,
		       acpi_info.pci_io.base, acpi_info.pci_io.size);
}

static void acpi_add_table(uint64_t addr)
{
	const struct acpi_sdt_header *h = (const void *)(uintptr_t)addr;

	if (!addr || acpi_num_tables == ACPI_MAX_TABLES)
		return;
	if (h->length < sizeof(*h) || !acpi_checksum_ok(h, h->length)) {
		printf("acpi: table at %#llx has a bad length or checksum, ignored\n", (unsigned long long)addr);
		return;
	}
	acpi_table_len[acpi_num_tables] = h->length;
	acpi_tables[acpi_num_tables++] = h;
	mm_reserve_early(addr, h->length);
}

int acpi_map_tables(void)
{
	int rc = 0;

	if (!acpi_info.rsdp)
		return 0;
	rc |= paging_map(acpi_info.rsdp, sizeof(struct acpi_rsdp), PAGE_CACHE_WB);
	if (acpi_root)
		rc |= paging_map((uint64_t)(uintptr_t)acpi_root, acpi_root_len, PAGE_CACHE_WB);
	for (unsigned i = 0; i < acpi_num_tables; i++)
		rc |= paging_map((uint64_t)(uintptr_t)acpi_tables[i], acpi_table_len[i], PAGE_CACHE_WB);
	return rc ? -ENOMEM : 0;
}

int acpi_init(uint64_t rsdp)
{
	for (unsigned i = 0; i < 16; i++)
		acpi_info.isa_gsi[i] = i;
	acpi_info.lapic_base = 0xFEE00000;
	if (!rsdp)
		rsdp = acpi_scan_rsdp(0xE0000, 0x100000);
	if (!rsdp) {
		printf("acpi: no RSDP found\n");
		return -ENOENT;
	}
	const struct acpi_rsdp *r = (const void *)(uintptr_t)rsdp;
	if (memcmp(r->signature, "RSD PTR ", 8) || !acpi_checksum_ok(r, 20)) {
		printf("acpi: bad RSDP at %#llx\n", (unsigned long long)rsdp);
		return -EINVAL;
	}
	acpi_info.rsdp = rsdp;
	mm_reserve_early(rsdp, sizeof(*r));

	int xsdt = r->revision >= 2 && r->xsdt_address;
	uint64_t root_addr = xsdt ? r->xsdt_address : r->rsdt_address;
	const struct acpi_sdt_header *root = (const void *)(uintptr_t)root_addr;
	if (!root_addr || root->length < sizeof(*root) || !acpi_checksum_ok(root, root->length)) {
		printf("acpi: bad %s at %#llx\n", xsdt ? "XSDT" : "RSDT", (unsigned long long)root_addr);
		return -EINVAL;
	}
	mm_reserve_early(root_addr, root->length);
	acpi_root = root;
	acpi_root_len = root->length;
	unsigned entry = xsdt ? 8 : 4;
	unsigned n = (root->length - sizeof(*root)) / entry;
	const uint8_t *ents = (const uint8_t *)root + sizeof(*root);
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = 0;
		memcpy(&a, ents + i * entry, entry);
		acpi_add_table(a);
	}

	const struct acpi_sdt_header *h;
	if ((h = acpi_find_table("APIC")))
		acpi_parse_madt(h);
	if ((h = acpi_find_table("MCFG")))
		acpi_parse_mcfg(h);
	if ((h = acpi_find_table("HPET")) && h->length >= 56)
		acpi_info.hpet_base = *(const uint64_t *)((const uint8_t *)h + 44);
	if ((h = acpi_find_table("FACP")) && h->length >= 116) {
		acpi_info.pm_timer_port = *(const uint32_t *)((const uint8_t *)h + 76);
		acpi_info.pm_timer_32bit = (*(const uint32_t *)((const uint8_t *)h + 112) >> 8) & 1;
		/* The DSDT is reached through the FADT (X_DSDT at 140 when present, else DSDT at 40), not the root
		 * table; kept so drivers can find devices only it describes (microvm's virtio-mmio windows). */
		uint64_t dsdt = *(const uint32_t *)((const uint8_t *)h + 40);
		if (h->length >= 148 && *(const uint64_t *)((const uint8_t *)h + 140))
			dsdt = *(const uint64_t *)((const uint8_t *)h + 140);
		acpi_add_table(dsdt);
	}
	if (!acpi_info.num_mcfg && (h = acpi_find_table("DSDT")))
		acpi_parse_gpex(h);
	else if ((h = acpi_find_table("DSDT")))
		acpi_parse_root_crs(h);
	return 0;
}
