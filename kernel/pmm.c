#include "pmm.h"

#include <errno.h>
#include <string.h>

static int pmm_test(const struct pmm *p, uint64_t pg) { return (p->bitmap[pg / 64] >> (pg % 64)) & 1; }

size_t pmm_bitmap_bytes(uint64_t top)
{
	uint64_t pages = (top + PMM_PAGE_SIZE - 1) / PMM_PAGE_SIZE;
	return (size_t)((pages + 63) / 64 * 8);
}

void pmm_init(struct pmm *p, uint64_t *bitmap, uint64_t top, const struct boot_mem_region *map, unsigned n)
{
	p->bitmap = bitmap;
	p->npages = (top + PMM_PAGE_SIZE - 1) / PMM_PAGE_SIZE;
	p->free_pages = 0;
	p->hint = 0;
	memset(bitmap, 0xff, pmm_bitmap_bytes(top));

	p->total_pages = 0;
	for (unsigned i = 0; i < n; i++)
		if (map[i].type == MEM_USABLE)
			pmm_add_free(p, map[i].base, map[i].length);
}

/* Bits [lo, hi) of one bitmap word, hi - lo in 1..64. */
static uint64_t pmm_word_mask(unsigned lo, unsigned hi)
{
	uint64_t upto = hi == 64 ? ~0ull : (1ull << hi) - 1;
	return upto & ~((1ull << lo) - 1);
}

/* Sets (used != 0) or clears the bits of pages [first, end) a word at a time, and returns how many bits
 * changed: at boot the whole of RAM goes through here, and under TCG a page-by-page loop over 256 MiB
 * costs about a millisecond. */
static uint64_t pmm_mark(struct pmm *p, uint64_t first, uint64_t end, int used)
{
	uint64_t changed = 0;

	while (first < end) {
		unsigned lo = first % 64, hi = end - first + lo >= 64 ? 64 : (unsigned)(end - first + lo);
		uint64_t m = pmm_word_mask(lo, hi), *w = &p->bitmap[first / 64];
		uint64_t flip = used ? ~*w & m : *w & m;
		changed += (uint64_t)__builtin_popcountll(flip);
		*w ^= flip;
		first += hi - lo;
	}
	return changed;
}

void pmm_add_free(struct pmm *p, uint64_t base, uint64_t len)
{
	uint64_t first = (base + PMM_PAGE_SIZE - 1) / PMM_PAGE_SIZE;
	uint64_t end = (base + len) / PMM_PAGE_SIZE;

	if (end > p->npages)
		end = p->npages;
	if (first >= end)
		return;
	uint64_t n = pmm_mark(p, first, end, 0);
	p->free_pages += n;
	p->total_pages += n;
}

void pmm_reserve(struct pmm *p, uint64_t base, uint64_t len)
{
	if (len == 0)
		return;
	uint64_t first = base / PMM_PAGE_SIZE;
	uint64_t end = (base + len + PMM_PAGE_SIZE - 1) / PMM_PAGE_SIZE;
	if (end > p->npages)
		end = p->npages;
	if (first >= end)
		return;
	uint64_t n = pmm_mark(p, first, end, 1);
	p->free_pages -= n;
	p->total_pages -= n;
}

/* The first page in [first, end) whose bit equals `used`, or end: a word at a time (the heap's allocation at boot
 * asks for 16 k pages at once; bit by bit that was ~0.3 M guest instructions). */
static uint64_t pmm_find(const struct pmm *p, uint64_t first, uint64_t end, int used)
{
	while (first < end) {
		unsigned lo = first % 64, hi = end - first + lo >= 64 ? 64 : (unsigned)(end - first + lo);
		uint64_t w = p->bitmap[first / 64];
		uint64_t hits = (used ? w : ~w) & pmm_word_mask(lo, hi);
		if (hits)
			return first - lo + (uint64_t)__builtin_ctzll(hits);
		first += hi - lo;
	}
	return end;
}

/* First fit from start: returns the first page of a free aligned run of npages below end, or UINT64_MAX. */
static uint64_t pmm_scan(const struct pmm *p, uint64_t start, uint64_t end, uint64_t npages, uint64_t align)
{
	uint64_t pg = (start + align - 1) & ~(align - 1);

	while (pg < end && end - pg >= npages) {
		uint64_t used = pmm_find(p, pg, pg + npages, 1);
		if (used == pg + npages)
			return pg;
		/* Past the used page and the used run after it, then realign. */
		pg = pmm_find(p, used + 1, end, 0);
		pg = (pg + align - 1) & ~(align - 1);
	}
	return UINT64_MAX;
}

int pmm_alloc(struct pmm *p, uint64_t npages, uint64_t align_pages, uint64_t limit, uint64_t *out)
{
	uint64_t end = p->npages, pg;

	if (npages == 0 || align_pages == 0 || (align_pages & (align_pages - 1)))
		return -EINVAL;
	if (limit && limit / PMM_PAGE_SIZE < end)
		end = limit / PMM_PAGE_SIZE;
	if (npages > p->free_pages)
		return -ENOMEM;

	pg = p->hint < end ? pmm_scan(p, p->hint, end, npages, align_pages) : UINT64_MAX;
	if (pg == UINT64_MAX)
		pg = pmm_scan(p, 0, end, npages, align_pages);
	if (pg == UINT64_MAX)
		return -ENOMEM;

	pmm_mark(p, pg, pg + npages, 1);
	p->free_pages -= npages;
	p->hint = pg + npages;
	*out = pg * PMM_PAGE_SIZE;
	return 0;
}

int pmm_free(struct pmm *p, uint64_t addr, uint64_t npages)
{
	uint64_t first = addr / PMM_PAGE_SIZE;

	if (addr % PMM_PAGE_SIZE || npages == 0 || first + npages > p->npages || first + npages < first)
		return -EINVAL;
	if (pmm_find(p, first, first + npages, 0) != first + npages)
		return -EINVAL; /* a page of the range is free already: a double or a wild free */
	pmm_mark(p, first, first + npages, 0);
	p->free_pages += npages;
	if (first < p->hint)
		p->hint = first;
	return 0;
}

int pmm_is_used(const struct pmm *p, uint64_t addr)
{
	uint64_t pg = addr / PMM_PAGE_SIZE;
	return pg >= p->npages || pmm_test(p, pg);
}
