#include "memmap.h"

#include <errno.h>
#include <stddef.h>

#define PAGE_SIZE 4096ull

static int memmap_priority(uint32_t type)
{
	switch (type) {
	case MEM_USABLE:
		return 1;
	case MEM_LOADER:
		return 2;
	case MEM_ACPI_RECLAIM:
		return 3;
	case MEM_ACPI_NVS:
		return 4;
	case MEM_MMIO:
		return 5;
	case MEM_RESERVED:
		return 6;
	case MEM_BAD:
		return 7;
	default:
		return 6; /* unknown types are treated as reserved */
	}
}

static void memmap_sort_u64(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		uint64_t x = v[i];
		unsigned j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Sweep over the elementary intervals between all region boundaries: each takes the highest-priority type of
 * the regions covering it. O(n^2) on at most BOOT_MEMMAP_MAX entries, run once at boot. */
int memmap_normalize(const struct boot_mem_region *in, unsigned n, struct boot_mem_region *out, unsigned cap)
{
	uint64_t edges[2 * BOOT_MEMMAP_MAX];
	unsigned ne = 0, count = 0;

	if (!in || !out || n > BOOT_MEMMAP_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (in[i].length == 0)
			continue;
		uint64_t end = in[i].base + in[i].length;
		if (end < in[i].base) /* wraps past 2^64: clip */
			end = UINT64_MAX;
		edges[ne++] = in[i].base;
		edges[ne++] = end;
	}
	memmap_sort_u64(edges, ne);

	for (unsigned e = 0; e + 1 < ne; e++) {
		uint64_t lo = edges[e], hi = edges[e + 1];
		uint32_t type = 0;
		int best = 0;

		if (lo == hi)
			continue;
		for (unsigned i = 0; i < n; i++) {
			uint64_t end = in[i].base + in[i].length;
			if (end < in[i].base)
				end = UINT64_MAX;
			if (in[i].length && in[i].base <= lo && end >= hi && memmap_priority(in[i].type) > best) {
				best = memmap_priority(in[i].type);
				type = in[i].type;
			}
		}
		if (!best)
			continue; /* a hole between regions */
		if (count && out[count - 1].type == type && out[count - 1].base + out[count - 1].length == lo) {
			out[count - 1].length += hi - lo;
			continue;
		}
		if (count == cap)
			return -ENOSPC;
		out[count].base = lo;
		out[count].length = hi - lo;
		out[count].type = type;
		out[count].reserved = 0;
		count++;
	}
	return (int)count;
}

int memmap_is_ram(uint32_t type)
{
	return type == MEM_USABLE || type == MEM_LOADER || type == MEM_ACPI_RECLAIM || type == MEM_ACPI_NVS;
}

uint64_t memmap_ram_top(const struct boot_mem_region *map, unsigned n)
{
	uint64_t top = 0;

	for (unsigned i = 0; i < n; i++)
		if (memmap_is_ram(map[i].type) && map[i].base + map[i].length > top)
			top = map[i].base + map[i].length;
	return top;
}

uint64_t memmap_bytes(const struct boot_mem_region *map, unsigned n, uint32_t type)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		if (map[i].type == type)
			sum += map[i].length;
	return sum;
}

int memmap_find_free(const struct boot_mem_region *map, unsigned n, uint64_t size, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	for (unsigned i = 0; i < n; i++) {
		if (map[i].type != MEM_USABLE)
			continue;
		uint64_t lo = (map[i].base + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		uint64_t hi = (map[i].base + map[i].length) & ~(PAGE_SIZE - 1);
		if (lo < min)
			lo = (min + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		if (hi > max)
			hi = max & ~(PAGE_SIZE - 1);
		if (lo < hi && hi - lo >= size) {
			*out = lo;
			return 0;
		}
	}
	return -ENOMEM;
}

const char *memmap_type_name(uint32_t type)
{
	switch (type) {
	case MEM_USABLE:
		return "usable";
	case MEM_RESERVED:
		return "reserved";
	case MEM_ACPI_RECLAIM:
		return "acpi";
	case MEM_ACPI_NVS:
		return "acpi-nvs";
	case MEM_BAD:
		return "bad";
	case MEM_LOADER:
		return "loader";
	case MEM_MMIO:
		return "mmio";
	default:
		return "unknown";
	}
}
