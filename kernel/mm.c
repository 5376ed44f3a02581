/* The kernel's page allocator instance and the heap behind sbrk. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"
#include "memmap.h"
#include "mm.h"

#define LOW_MEMORY_END 0x100000ull /* real-mode IVT, BIOS data, EBDA, option ROMs: never allocate */
#define EARLY_RESERVE_MAX 16
#define FOUR_GIB 0x100000000ull

struct pmm kernel_pmm;

static struct {
	uint64_t base, len;
} mm_early[EARLY_RESERVE_MAX];
static unsigned mm_early_count;

void mm_reserve_early(uint64_t base, uint64_t len)
{
	if (mm_early_count < EARLY_RESERVE_MAX) {
		mm_early[mm_early_count].base = base;
		mm_early[mm_early_count].len = len;
		mm_early_count++;
	} else {
		printf("mm: too many early reservations, %#llx+%#llx not reserved\n", (unsigned long long)base,
		       (unsigned long long)len);
	}
}

static uint64_t mm_bitmap_phys, mm_bitmap_bytes;

static void mm_reserve_all(void)
{
	uint64_t kstart = (uint64_t)(uintptr_t)_kernel_start, kend = (uint64_t)(uintptr_t)_kernel_end;

	pmm_reserve(&kernel_pmm, 0, LOW_MEMORY_END);
	pmm_reserve(&kernel_pmm, kstart, kend - kstart);
	pmm_reserve(&kernel_pmm, mm_bitmap_phys, mm_bitmap_bytes);
	for (unsigned i = 0; i < mm_early_count; i++)
		pmm_reserve(&kernel_pmm, mm_early[i].base, mm_early[i].len);
}

int mm_init(const struct boot_mem_region *map, unsigned n)
{
	uint64_t top = 0, bitmap_phys, kend = (uint64_t)(uintptr_t)_kernel_end;
	int rc;

	/* The allocator covers usable memory only; RAM holding ACPI tables above it needs no bits. */
	for (unsigned i = 0; i < n; i++)
		if ((map[i].type == MEM_USABLE || map[i].type == MEM_LOADER) && map[i].base + map[i].length > top)
			top = map[i].base + map[i].length;
	size_t bytes = pmm_bitmap_bytes(top);

	/* The bitmap goes above the kernel and below 4 GiB, which both loaders' early page tables map. */
	rc = memmap_find_free(map, n, (bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), kend, FOUR_GIB, &bitmap_phys);
	if (rc) {
		printf("mm: no room for a %zu-byte page bitmap\n", bytes);
		return rc;
	}
	mm_bitmap_phys = bitmap_phys;
	mm_bitmap_bytes = bytes;
	pmm_init(&kernel_pmm, (uint64_t *)(uintptr_t)bitmap_phys, top, map, n);
	mm_reserve_all();
	return 0;
}

void mm_release_loader(const struct boot_mem_region *map, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (map[i].type == MEM_LOADER)
			pmm_add_free(&kernel_pmm, map[i].base, map[i].length);
	mm_reserve_all();
}

static void *page_alloc_raw(size_t npages)
{
	uint64_t phys;

	/* Allocations from the low end first keep early page tables below 4 GiB, inside the loader's map. */
	if (pmm_alloc(&kernel_pmm, npages, 1, 0, &phys))
		return NULL;
	return (void *)(uintptr_t)phys;
}

void *page_alloc(size_t npages)
{
	void *p = page_alloc_raw(npages);
	if (p)
		memset(p, 0, npages * PAGE_SIZE);
	return p;
}

void *page_alloc_uninit(size_t npages) { return page_alloc_raw(npages); }

void page_free(void *p, size_t npages)
{
	int rc = pmm_free(&kernel_pmm, (uint64_t)(uintptr_t)p, npages);
	if (rc)
		panic("page_free(%p, %zu): not allocated (%d)", p, npages, rc);
}

/* ---- heap: a contiguous run of pages handed out by sbrk ---- */

static char *heap_base, *heap_brk, *heap_end;

int heap_init(size_t bytes)
{
	size_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;

	/* Not zeroed: malloc makes no such promise, and clearing tens of MiB would dominate boot time. */
	heap_base = page_alloc_raw(pages);
	if (!heap_base) {
		printf("mm: cannot allocate a %zu KiB heap\n", bytes / 1024);
		return -ENOMEM;
	}
	heap_brk = heap_base;
	heap_end = heap_base + pages * PAGE_SIZE;
	return 0;
}

size_t heap_used(void) { return (size_t)(heap_brk - heap_base); }
size_t heap_size(void) { return (size_t)(heap_end - heap_base); }

void *sbrk(ptrdiff_t incr);

void *sbrk(ptrdiff_t incr)
{
	char *old = heap_brk;

	if (!heap_base || incr > heap_end - heap_brk || incr < heap_base - heap_brk) {
		errno = ENOMEM;
		return (void *)-1;
	}
	heap_brk += incr;
	return old;
}
