/* Kernel memory: the physical page allocator instance, the identity map and the heap behind newlib's sbrk.
 * Virtual == physical everywhere, so a physical address is usable as a pointer once it is mapped. */
#ifndef MM_H
#define MM_H

#include <stddef.h>
#include <stdint.h>

#include "boot_info.h"
#include "pmm.h"

#define PAGE_SIZE 4096ull

extern struct pmm kernel_pmm;

/* Sets up the page allocator from the normalised map, reserving the low 1 MiB, the kernel image and the
 * ranges registered with mm_reserve_early() before it. */
int mm_init(const struct boot_mem_region *map, unsigned n);
/* Adds the loader's memory (MEM_LOADER) to the free pages, keeping the reservations. Call once the kernel
 * runs on its own page tables: under UEFI the firmware's tables live in that memory. */
void mm_release_loader(const struct boot_mem_region *map, unsigned n);
void mm_reserve_early(uint64_t base, uint64_t len);

/* Zeroed, contiguous physical pages (identity-mapped); NULL when memory is exhausted. */
void *page_alloc(size_t npages);
/* The same without clearing, for memory that is always written before it is read (packet buffers): clearing the
 * megabyte of a NIC's receive pool was ~0.2 M guest instructions of every boot. */
void *page_alloc_uninit(size_t npages);
void page_free(void *p, size_t npages);

/* Cache attributes for paging_map. */
enum page_cache {
	PAGE_CACHE_WB = 0,
	PAGE_CACHE_UC = 1,
};

/* Builds the kernel's own 4-level tables: all RAM identity-mapped write-back (2 MiB pages, 4 KiB in the
 * first 2 MiB so that page 0 and the boot-stack guard page can stay unmapped), then switches CR3. */
int paging_init(const struct boot_mem_region *map, unsigned n);

/* Identity-maps [phys, phys+size) with the given cache attribute, splitting 2 MiB pages where needed. */
int paging_map(uint64_t phys, uint64_t size, enum page_cache cache);
int paging_unmap(uint64_t phys, uint64_t size);

/* Device registers: uncached. Any address, including BARs above 4 GiB. */
static inline int paging_map_mmio(uint64_t phys, uint64_t size) { return paging_map(phys, size, PAGE_CACHE_UC); }

/* True if the address is mapped (used by the stack trace to avoid faulting in the fault handler). */
int paging_is_mapped(uint64_t addr);

/* The heap that newlib's sbrk hands out (malloc for newlib and lwIP's own needs). */
int heap_init(size_t bytes);
size_t heap_used(void);
size_t heap_size(void);

#endif
