/* Unit tests for kernel/pmm.c: the real allocator on a host-side bitmap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "pmm.h"

#define MIB (1ull << 20)
#define R(b, l, t) { (b), (l), (t), 0 }

static struct pmm p;
static uint64_t *bitmap;

static void setup_map(const struct boot_mem_region *map, unsigned n, uint64_t top)
{
	free(bitmap);
	bitmap = malloc(pmm_bitmap_bytes(top));
	assert_non_null(bitmap);
	pmm_init(&p, bitmap, top, map, n);
}

static int teardown(void **state)
{
	(void)state;
	free(bitmap);
	bitmap = NULL;
	return 0;
}

static void test_init_counts_usable_pages(void **state)
{
	(void)state;
	struct boot_mem_region map[] = {
		R(0x0, 0x9f000, MEM_USABLE),           /* 159 pages */
		R(0x9f000, 0x61000, MEM_RESERVED),
		R(0x100000, 0x100800, MEM_USABLE),     /* partial last page not counted: 256 pages */
		R(0x300000, 0x100000, MEM_LOADER),     /* 256 pages */
		R(0x400000, 0x100000, MEM_ACPI_NVS),
	};
	setup_map(map, 5, 0x500000);
	/* Loader memory is not free until it is handed over explicitly. */
	assert_int_equal(p.free_pages, 159 + 256);
	assert_true(pmm_is_used(&p, 0x300000));
	pmm_add_free(&p, map[3].base, map[3].length);
	assert_int_equal(p.free_pages, 159 + 256 + 256);
	assert_int_equal(p.total_pages, p.free_pages);
	/* Adding the same range again changes nothing. */
	pmm_add_free(&p, map[3].base, map[3].length);
	assert_int_equal(p.free_pages, 159 + 256 + 256);
	assert_true(pmm_is_used(&p, 0x9f000));
	assert_true(pmm_is_used(&p, 0x200000)); /* the partial page */
	assert_false(pmm_is_used(&p, 0x300000));
	assert_true(pmm_is_used(&p, 0x400000));
	assert_true(pmm_is_used(&p, 0x10000000)); /* beyond the bitmap */
	assert_int_equal(pmm_bitmap_bytes(0x500000), 1280 / 64 * 8);
}

static void test_reserve_and_alloc(void **state)
{
	(void)state;
	struct boot_mem_region map[] = { R(0, 4 * MIB, MEM_USABLE) };
	uint64_t a, b;
	setup_map(map, 1, 4 * MIB);
	pmm_reserve(&p, 0, MIB);
	pmm_reserve(&p, 0x180000, 0x800); /* rounds out to one page */
	assert_int_equal(p.free_pages, 768 - 1);

	assert_int_equal(pmm_alloc(&p, 1, 1, 0, &a), 0);
	assert_int_equal(a, MIB);
	assert_int_equal(pmm_alloc(&p, 4, 1, 0, &b), 0);
	assert_int_equal(b, MIB + 0x1000);
	assert_int_equal(p.free_pages, 768 - 1 - 5);
	/* Contiguous allocation skips the reserved page. */
	assert_int_equal(pmm_alloc(&p, 0x80, 1, 0, &a), 0);
	assert_true(a > 0x180000 || a + 0x80 * 0x1000 <= 0x180000);
}

static void test_alignment_and_limit(void **state)
{
	(void)state;
	struct boot_mem_region map[] = { R(0x1000, 8 * MIB, MEM_USABLE) };
	uint64_t a;
	setup_map(map, 1, 9 * MIB);
	assert_int_equal(pmm_alloc(&p, 1, 1, 0, &a), 0);
	assert_int_equal(a, 0x1000);
	assert_int_equal(pmm_alloc(&p, 2, 512, 0, &a), 0); /* 2 MiB aligned */
	assert_int_equal(a % (2 * MIB), 0);
	assert_int_equal(pmm_alloc(&p, 1, 3, 0, &a), -EINVAL);
	assert_int_equal(pmm_alloc(&p, 0, 1, 0, &a), -EINVAL);
	/* Below a limit that leaves no room. */
	assert_int_equal(pmm_alloc(&p, 1, 1, 0x1000, &a), -ENOMEM);
	assert_int_equal(pmm_alloc(&p, 1, 1, 0x3000, &a), 0);
	assert_true(a < 0x3000);
}

static void test_exhaustion_and_free(void **state)
{
	(void)state;
	struct boot_mem_region map[] = { R(0, 64 * 0x1000, MEM_USABLE) };
	uint64_t a[64], x;
	setup_map(map, 1, 64 * 0x1000);
	for (int i = 0; i < 64; i++)
		assert_int_equal(pmm_alloc(&p, 1, 1, 0, &a[i]), 0);
	assert_int_equal(p.free_pages, 0);
	assert_int_equal(pmm_alloc(&p, 1, 1, 0, &x), -ENOMEM);
	/* Free a hole of two pages: a 2-page request fits, a 3-page one does not. */
	assert_int_equal(pmm_free(&p, a[10], 1), 0);
	assert_int_equal(pmm_free(&p, a[11], 1), 0);
	assert_int_equal(pmm_alloc(&p, 3, 1, 0, &x), -ENOMEM);
	assert_int_equal(pmm_alloc(&p, 2, 1, 0, &x), 0);
	assert_int_equal(x, a[10]);
}

static void test_bad_free_rejected(void **state)
{
	(void)state;
	struct boot_mem_region map[] = { R(0, MIB, MEM_USABLE) };
	uint64_t a;
	setup_map(map, 1, MIB);
	assert_int_equal(pmm_alloc(&p, 2, 1, 0, &a), 0);
	uint64_t before = p.free_pages;
	assert_int_equal(pmm_free(&p, a + 1, 1), -EINVAL);      /* unaligned */
	assert_int_equal(pmm_free(&p, a, 3), -EINVAL);          /* third page was never allocated */
	assert_int_equal(p.free_pages, before);                 /* and nothing was freed */
	assert_int_equal(pmm_free(&p, 2 * MIB, 1), -EINVAL);    /* outside */
	assert_int_equal(pmm_free(&p, a, 2), 0);
	assert_int_equal(pmm_free(&p, a, 2), -EINVAL);          /* double free */
	assert_int_equal(p.free_pages, before + 2);
}

/* Random alloc/free against a shadow model: free count and used bits always agree. */
static void test_random_against_model(void **state)
{
	(void)state;
	struct boot_mem_region map[] = { R(0, 4 * MIB, MEM_USABLE) };
	struct { uint64_t addr, n; } live[256];
	unsigned nlive = 0;
	uint64_t used = 0;
	setup_map(map, 1, 4 * MIB);
	srand(12345);
	for (int step = 0; step < 20000; step++) {
		if (nlive < 256 && (rand() % 2 || nlive == 0)) {
			uint64_t n = 1 + (uint64_t)(rand() % 8), a;
			if (pmm_alloc(&p, n, 1, 0, &a) == 0) {
				for (uint64_t i = 0; i < n; i++)
					assert_true(pmm_is_used(&p, a + i * 0x1000));
				live[nlive].addr = a;
				live[nlive].n = n;
				nlive++;
				used += n;
			}
		} else {
			unsigned k = (unsigned)rand() % nlive;
			assert_int_equal(pmm_free(&p, live[k].addr, live[k].n), 0);
			used -= live[k].n;
			live[k] = live[--nlive];
		}
		assert_int_equal(p.free_pages, 1024 - used);
	}
}

/* pmm_add_free and pmm_reserve work a bitmap word at a time: ranges that start and end inside words, span
 * several words, overlap earlier ones, or cover single pages, against a page-by-page model. */
static void test_ranges_word_at_a_time_against_model(void **state)
{
	(void)state;
	enum { PAGES = 1000 }; /* not a multiple of 64: the last word is partial */
	static unsigned char model[PAGES];
	struct boot_mem_region map[] = { R(0, (uint64_t)PAGES * 0x1000, MEM_RESERVED) };
	uint64_t free_model = 0;
	setup_map(map, 1, (uint64_t)PAGES * 0x1000);
	assert_int_equal(p.free_pages, 0);
	srand(4242);
	for (int step = 0; step < 5000; step++) {
		uint64_t first = (uint64_t)(rand() % PAGES), n = 1 + (uint64_t)(rand() % (step % 3 ? 70 : 300));
		uint64_t end = first + n > PAGES ? PAGES : first + n;
		int add = rand() % 2;
		if (add)
			pmm_add_free(&p, first * 0x1000, n * 0x1000);
		else
			pmm_reserve(&p, first * 0x1000, n * 0x1000);
		for (uint64_t pg = first; pg < end; pg++) {
			free_model += add && !model[pg];
			free_model -= !add && model[pg];
			model[pg] = (unsigned char)add;
		}
		assert_int_equal(p.free_pages, free_model);
		assert_int_equal(p.total_pages, free_model);
		for (uint64_t pg = first ? first - 1 : 0; pg < PAGES && pg <= end; pg++)
			assert_int_equal(pmm_is_used(&p, pg * 0x1000), !model[pg]);
	}
	for (uint64_t pg = 0; pg < PAGES; pg++)
		assert_int_equal(pmm_is_used(&p, pg * 0x1000), !model[pg]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_init_counts_usable_pages, teardown),
		cmocka_unit_test_teardown(test_reserve_and_alloc, teardown),
		cmocka_unit_test_teardown(test_alignment_and_limit, teardown),
		cmocka_unit_test_teardown(test_exhaustion_and_free, teardown),
		cmocka_unit_test_teardown(test_bad_free_rejected, teardown),
		cmocka_unit_test_teardown(test_random_against_model, teardown),
		cmocka_unit_test_teardown(test_ranges_word_at_a_time_against_model, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
