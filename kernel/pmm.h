/* Physical page allocator: one bit per 4 KiB page from address 0 to the top of usable memory (1 = in use).
 * Contiguous allocations (vrings need them), next-fit from a moving hint, double-free detection. Pure code
 * on a caller-provided bitmap, so the host unit tests run it unchanged. Not reentrant: call with interrupts
 * off or from the main loop only. */
#ifndef PMM_H
#define PMM_H

#include <stddef.h>
#include <stdint.h>

#include "boot_info.h"

#define PMM_PAGE_SIZE 4096ull

struct pmm {
	uint64_t *bitmap;
	uint64_t npages;      /* pages covered by the bitmap */
	uint64_t free_pages;  /* pages currently free */
	uint64_t total_pages; /* pages that were free after init (the usable total) */
	uint64_t hint;        /* next-fit start */
};

/* Bytes of bitmap needed to cover memory up to top (a whole number of 64-bit words). */
size_t pmm_bitmap_bytes(uint64_t top);

/* Marks everything used, then frees the whole pages of MEM_USABLE regions below top. (MEM_LOADER memory
 * comes later, through pmm_add_free, once the loader's data is no longer in use.) */
void pmm_init(struct pmm *p, uint64_t *bitmap, uint64_t top, const struct boot_mem_region *map, unsigned n);

/* Frees the whole pages inside [base, base+len) that are in use (below the bitmap's top) and counts them
 * into the usable total. */
void pmm_add_free(struct pmm *p, uint64_t base, uint64_t len);

/* Marks [base, base+len) in use (rounded out to pages). Used for the kernel image, the bitmap, ACPI tables. */
void pmm_reserve(struct pmm *p, uint64_t base, uint64_t len);

/* npages contiguous pages aligned to align_pages (a power of two, 1 for none), below limit (0: no limit).
 * Returns 0 and the physical address in *out, or -ENOMEM / -EINVAL. */
int pmm_alloc(struct pmm *p, uint64_t npages, uint64_t align_pages, uint64_t limit, uint64_t *out);

/* Returns -EINVAL (and frees nothing) if any page of the range is outside the bitmap or already free. */
int pmm_free(struct pmm *p, uint64_t addr, uint64_t npages);

int pmm_is_used(const struct pmm *p, uint64_t addr);

#endif
