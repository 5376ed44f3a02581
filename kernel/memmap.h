/* The boot memory map: normalisation (sorted, non-overlapping, merged) and queries. Pure functions on arrays,
 * so the host unit tests run this exact code. */
#ifndef MEMMAP_H
#define MEMMAP_H

#include <stdint.h>

#include "boot_info.h"

/* Sorts, resolves overlaps (the more restrictive type wins: bad > reserved > MMIO > ACPI NVS > ACPI reclaim >
 * loader > usable), drops empty entries and merges neighbours of one type. Writes at most cap entries to
 * out; returns the count, or -ENOSPC if they do not fit, -EINVAL for bad arguments. in and out may not
 * overlap. */
int memmap_normalize(const struct boot_mem_region *in, unsigned n, struct boot_mem_region *out, unsigned cap);

/* True for memory that is RAM (usable now, after boot, or holding ACPI tables). */
int memmap_is_ram(uint32_t type);

/* One past the highest RAM byte: what the identity map must cover. */
uint64_t memmap_ram_top(const struct boot_mem_region *map, unsigned n);

/* Bytes of the given type. */
uint64_t memmap_bytes(const struct boot_mem_region *map, unsigned n, uint32_t type);

/* Lowest page-aligned address >= min with size bytes of MEM_USABLE memory (never the loader's, which may
 * still be in use), ending at or below max. Returns 0 and sets *out, or -ENOMEM. */
int memmap_find_free(const struct boot_mem_region *map, unsigned n, uint64_t size, uint64_t min, uint64_t max,
		     uint64_t *out);

const char *memmap_type_name(uint32_t type);

#endif
