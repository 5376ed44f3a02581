/* x86_64 4-level paging, identity map only. Table pages come from the page allocator, so the tables live in
 * RAM that they map themselves. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "kernel.h"
#include "memmap.h"
#include "mm.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull
#define HUGE_2M 0x200000ull

static uint64_t *paging_pml4;
/* Set once CR3 points at paging_pml4: until then no TLB can hold our entries, and the identity map of RAM
 * (several hundred entries) skips an invlpg per entry, each a TLB-flush helper call under TCG. */
static int paging_live;

static uint64_t paging_cache_bits(enum page_cache cache)
{
	/* With the power-on PAT, PCD|PWT selects UC. */
	return cache == PAGE_CACHE_UC ? (PTE_PCD | PTE_PWT) : 0;
}

/* Returns the table that entry idx of tbl points to, creating it if absent. A 2 MiB leaf in a page directory
 * is split into 512 4 KiB entries with the same attributes. NULL when out of memory. */
static uint64_t *paging_next(uint64_t *tbl, unsigned idx)
{
	uint64_t e = tbl[idx];

	if (e & PTE_P) {
		if (!(e & PTE_PS))
			return (uint64_t *)(uintptr_t)(e & PTE_ADDR);
		uint64_t *pt = page_alloc(1);
		if (!pt)
			return NULL;
		uint64_t base = e & PTE_ADDR & ~(HUGE_2M - 1);
		uint64_t attrs = e & (PTE_P | PTE_W | PTE_PWT | PTE_PCD);
		for (unsigned i = 0; i < 512; i++)
			pt[i] = (base + i * PAGE_SIZE) | attrs;
		tbl[idx] = (uint64_t)(uintptr_t)pt | PTE_P | PTE_W;
		return pt;
	}
	uint64_t *next = page_alloc(1);
	if (!next)
		return NULL;
	tbl[idx] = (uint64_t)(uintptr_t)next | PTE_P | PTE_W;
	return next;
}

static void paging_invlpg(uint64_t addr) { __asm__ volatile("invlpg (%0)" ::"r"(addr) : "memory"); }

/* Maps (or, with present == 0, unmaps) one page of 4 KiB or 2 MiB. */
static int paging_set(uint64_t addr, uint64_t size, uint64_t flags, int present)
{
	uint64_t *pdpt = paging_next(paging_pml4, (addr >> 39) & 511);
	uint64_t *pd = pdpt ? paging_next(pdpt, (addr >> 30) & 511) : NULL;
	if (!pd)
		return -ENOMEM;
	unsigned pdi = (addr >> 21) & 511;
	if (size == HUGE_2M) {
		/* Replacing a table with a leaf would leak the table; only small holes are ever split off. */
		if ((pd[pdi] & PTE_P) && !(pd[pdi] & PTE_PS))
			return -EEXIST;
		pd[pdi] = present ? (addr | flags | PTE_PS | PTE_P | PTE_W) : 0;
	} else {
		uint64_t *pt = paging_next(pd, pdi);
		if (!pt)
			return -ENOMEM;
		pt[(addr >> 12) & 511] = present ? (addr | flags | PTE_P | PTE_W) : 0;
	}
	if (paging_live)
		paging_invlpg(addr);
	return 0;
}

static int paging_range(uint64_t phys, uint64_t size, uint64_t flags, int present)
{
	uint64_t addr = phys & ~(PAGE_SIZE - 1);
	uint64_t end = (phys + size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	int rc;

	if (!paging_pml4)
		return -EINVAL;
	while (addr < end) {
		int huge = (addr % HUGE_2M) == 0 && end - addr >= HUGE_2M;
		if (huge) {
			/* Keep an existing 4 KiB table (holes, MMIO) rather than replacing it. */
			uint64_t *pdpt = paging_next(paging_pml4, (addr >> 39) & 511);
			uint64_t *pd = pdpt ? paging_next(pdpt, (addr >> 30) & 511) : NULL;
			if (!pd)
				return -ENOMEM;
			uint64_t e = pd[(addr >> 21) & 511];
			huge = !(e & PTE_P) || (e & PTE_PS);
		}
		rc = paging_set(addr, huge ? HUGE_2M : PAGE_SIZE, flags, present);
		if (rc)
			return rc;
		addr += huge ? HUGE_2M : PAGE_SIZE;
	}
	return 0;
}

int paging_map(uint64_t phys, uint64_t size, enum page_cache cache)
{
	return paging_range(phys, size, paging_cache_bits(cache), 1);
}

int paging_unmap(uint64_t phys, uint64_t size) { return paging_range(phys, size, 0, 0); }

int paging_is_mapped(uint64_t addr)
{
	if (!paging_pml4)
		return 1; /* still on the loader's tables, which map at least the first 4 GiB */
	uint64_t e = paging_pml4[(addr >> 39) & 511];
	if (!(e & PTE_P))
		return 0;
	e = ((uint64_t *)(uintptr_t)(e & PTE_ADDR))[(addr >> 30) & 511];
	if (!(e & PTE_P))
		return 0;
	e = ((uint64_t *)(uintptr_t)(e & PTE_ADDR))[(addr >> 21) & 511];
	if (!(e & PTE_P))
		return 0;
	if (e & PTE_PS)
		return 1;
	e = ((uint64_t *)(uintptr_t)(e & PTE_ADDR))[(addr >> 12) & 511];
	return (e & PTE_P) != 0;
}

int paging_init(const struct boot_mem_region *map, unsigned n)
{
	int rc = 0;

	paging_pml4 = page_alloc(1);
	if (!paging_pml4) {
		printf("paging: no page for the PML4\n");
		return -ENOMEM;
	}
	/* Page 0 stays unmapped so that NULL dereferences fault, and the first 2 MiB uses 4 KiB pages so the
	 * boot-stack guard page can be unmapped too. */
	rc = paging_map(PAGE_SIZE, HUGE_2M - PAGE_SIZE, PAGE_CACHE_WB);
	/* RAM only: holes (the PCI window, firmware-reserved ranges) stay unmapped until a driver maps what it
	 * uses, uncached, so nothing can touch device memory through a write-back mapping by accident. */
	for (unsigned i = 0; i < n && !rc; i++) {
		uint64_t lo = map[i].base, hi = map[i].base + map[i].length;
		if (!memmap_is_ram(map[i].type) || hi <= HUGE_2M)
			continue;
		if (lo < HUGE_2M)
			lo = HUGE_2M;
		rc = paging_map(lo, hi - lo, PAGE_CACHE_WB);
	}
	if (rc) {
		printf("paging: identity map of RAM failed (%d)\n", rc);
		return rc;
	}
	write_cr3((uint64_t)(uintptr_t)paging_pml4);
	paging_live = 1;
	return 0;
}
