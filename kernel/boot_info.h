/* The one structure both boot paths hand to the kernel.
 *
 * boot/pvh builds it from Xen's hvm_start_info, boot/efi from the UEFI memory map, configuration table and
 * load options. The loader may keep it anywhere in memory; kernel_start() copies it into kernel storage
 * before it allocates a single page, so the loader's memory may then be reused. */
#ifndef BOOT_INFO_H
#define BOOT_INFO_H

#include <stdint.h>

#define BOOT_INFO_MAGIC 0x424f4f54u /* "BOOT" */
#define BOOT_INFO_VERSION 1u

#define BOOT_MEMMAP_MAX 256
#define BOOT_CMDLINE_MAX 1024

enum boot_path {
	BOOT_PATH_PVH = 1,
	BOOT_PATH_UEFI = 2,
};

/* Memory types, close to E820's. MEM_LOADER is memory the loader used (its code, data and boot-services
 * memory): usable once boot_info has been copied. */
enum boot_mem_type {
	MEM_USABLE = 1,
	MEM_RESERVED = 2,
	MEM_ACPI_RECLAIM = 3,
	MEM_ACPI_NVS = 4,
	MEM_BAD = 5,
	MEM_LOADER = 6,
	MEM_MMIO = 7,
};

struct boot_mem_region {
	uint64_t base;
	uint64_t length;
	uint32_t type; /* enum boot_mem_type */
	uint32_t reserved;
};

struct boot_info {
	uint32_t magic;   /* BOOT_INFO_MAGIC */
	uint32_t version; /* BOOT_INFO_VERSION */
	uint32_t boot_path; /* enum boot_path */
	uint32_t memmap_count;
	uint64_t rsdp;       /* physical address of the ACPI RSDP, 0 if unknown */
	uint64_t loader_tsc; /* TSC when the loader started (0 if not measured) */
	char cmdline[BOOT_CMDLINE_MAX]; /* NUL-terminated ASCII */
	struct boot_mem_region memmap[BOOT_MEMMAP_MAX];
};

#endif
