/* PVH boot: translate Xen's hvm_start_info (the layout of xen/include/public/arch-x86/hvm/start_info.h) into
 * the kernel's struct boot_info, then enter the common kernel_start(). */
#include <stdint.h>
#include <string.h>

#include "boot_info.h"
#include "cpu.h"
#include "kernel.h"

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version >= 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820 types */
	uint32_t reserved;
};

static struct boot_info pvh_boot_info;

static uint32_t pvh_mem_type(uint32_t e820_type)
{
	switch (e820_type) {
	case 1:
		return MEM_USABLE;
	case 3:
		return MEM_ACPI_RECLAIM;
	case 4:
		return MEM_ACPI_NVS;
	case 5:
		return MEM_BAD;
	default:
		return MEM_RESERVED;
	}
}

void pvh_main(const struct hvm_start_info *si);

void pvh_main(const struct hvm_start_info *si)
{
	struct boot_info *bi = &pvh_boot_info;
	uint64_t tsc = rdtsc();

	early_console_init();
	if (si->magic != HVM_START_MAGIC)
		early_fatal("pvh: bad hvm_start_info magic");
	if (si->version < 1 || si->memmap_entries == 0)
		early_fatal("pvh: no memory map in hvm_start_info (version 0)");

	bi->magic = BOOT_INFO_MAGIC;
	bi->version = BOOT_INFO_VERSION;
	bi->boot_path = BOOT_PATH_PVH;
	bi->rsdp = si->rsdp_paddr;
	bi->loader_tsc = tsc;
	if (si->cmdline_paddr) {
		strncpy(bi->cmdline, (const char *)(uintptr_t)si->cmdline_paddr, BOOT_CMDLINE_MAX - 1);
		bi->cmdline[BOOT_CMDLINE_MAX - 1] = '\0';
	}

	const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	uint32_t n = si->memmap_entries < BOOT_MEMMAP_MAX ? si->memmap_entries : BOOT_MEMMAP_MAX;
	for (uint32_t i = 0; i < n; i++) {
		bi->memmap[i].base = e[i].addr;
		bi->memmap[i].length = e[i].size;
		bi->memmap[i].type = pvh_mem_type(e[i].type);
	}
	bi->memmap_count = n;

	kernel_start(bi);
}
