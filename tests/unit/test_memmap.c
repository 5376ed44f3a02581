/* Unit tests for kernel/memmap.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "memmap.h"

#define R(b, l, t) { (b), (l), (t), 0 }

static void test_sorts_and_merges(void **state)
{
	(void)state;
	struct boot_mem_region in[] = {
		R(0x200000, 0x100000, MEM_USABLE),
		R(0x0, 0x9f000, MEM_USABLE),
		R(0x100000, 0x100000, MEM_USABLE),
		R(0xf0000, 0x10000, MEM_RESERVED),
	};
	struct boot_mem_region out[8];
	int n = memmap_normalize(in, 4, out, 8);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].base, 0);
	assert_int_equal(out[0].length, 0x9f000);
	assert_int_equal(out[1].type, MEM_RESERVED);
	/* The two adjacent usable regions became one. */
	assert_int_equal(out[2].base, 0x100000);
	assert_int_equal(out[2].length, 0x200000);
	assert_int_equal(out[2].type, MEM_USABLE);
}

static void test_overlap_restrictive_wins(void **state)
{
	(void)state;
	/* A reserved hole punched into the middle of usable RAM, and ACPI data overlapping its end. */
	struct boot_mem_region in[] = {
		R(0x100000, 0x1000000, MEM_USABLE),
		R(0x400000, 0x1000, MEM_RESERVED),
		R(0x10f0000, 0x20000, MEM_ACPI_RECLAIM),
	};
	struct boot_mem_region out[8];
	int n = memmap_normalize(in, 3, out, 8);
	assert_int_equal(n, 4);
	assert_int_equal(out[0].base, 0x100000);
	assert_int_equal(out[0].length, 0x300000);
	assert_int_equal(out[1].type, MEM_RESERVED);
	assert_int_equal(out[1].base, 0x400000);
	assert_int_equal(out[2].type, MEM_USABLE);
	assert_int_equal(out[2].base, 0x401000);
	assert_int_equal(out[2].base + out[2].length, 0x10f0000);
	assert_int_equal(out[3].type, MEM_ACPI_RECLAIM);
	assert_int_equal(out[3].base + out[3].length, 0x1110000);
	/* Usable bytes shrink by exactly the overlaps. */
	assert_int_equal(memmap_bytes(out, n, MEM_USABLE), 0x1000000 - 0x1000 - 0x10000);
}

static void test_empty_and_wrapping_entries(void **state)
{
	(void)state;
	struct boot_mem_region in[] = {
		R(0x1000, 0, MEM_USABLE),
		R(0xfffffffffffff000ull, 0x2000, MEM_RESERVED), /* wraps past 2^64: clipped */
		R(0x100000, 0x1000, MEM_USABLE),
	};
	struct boot_mem_region out[8];
	int n = memmap_normalize(in, 3, out, 8);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].base, 0x100000);
	assert_int_equal(out[1].base, 0xfffffffffffff000ull);
	assert_int_equal(out[1].length, 0xfff);
}

static void test_capacity(void **state)
{
	(void)state;
	struct boot_mem_region in[6], out[2];
	for (int i = 0; i < 6; i++) {
		in[i].base = (uint64_t)i * 0x10000;
		in[i].length = 0x1000;
		in[i].type = MEM_USABLE;
	}
	assert_int_equal(memmap_normalize(in, 6, out, 2), -ENOSPC);
	assert_int_equal(memmap_normalize(NULL, 1, out, 2), -EINVAL);
	assert_int_equal(memmap_normalize(in, BOOT_MEMMAP_MAX + 1, out, 2), -EINVAL);
}

static void test_ram_top_and_find(void **state)
{
	(void)state;
	struct boot_mem_region map[] = {
		R(0x0, 0x9f000, MEM_USABLE),
		R(0x100000, 0x7f00000, MEM_USABLE),
		R(0x8000000, 0x20000, MEM_ACPI_RECLAIM),
		R(0xfec00000, 0x1000, MEM_RESERVED),
		R(0x100000000ull, 0x40000000, MEM_USABLE),
		R(0x140000000ull, 0x10000000, MEM_LOADER),
	};
	uint64_t at;
	assert_int_equal(memmap_ram_top(map, 6), 0x150000000ull);
	assert_int_equal(memmap_ram_top(map, 5), 0x140000000ull);
	assert_int_equal(memmap_ram_top(map, 4), 0x8020000);

	assert_int_equal(memmap_find_free(map, 5, 0x10000, 0x123456, 0x100000000ull, &at), 0);
	assert_int_equal(at, 0x124000);
	/* Too big for anything below 4 GiB; found above it when allowed. */
	assert_int_equal(memmap_find_free(map, 5, 0x10000000, 0, 0x100000000ull, &at), -ENOMEM);
	assert_int_equal(memmap_find_free(map, 5, 0x10000000, 0, UINT64_MAX, &at), 0);
	assert_int_equal(at, 0x100000000ull);
	/* Never inside reserved, ACPI or loader memory (the loader's may still hold live page tables). */
	assert_int_equal(memmap_find_free(map, 6, 0x1000, 0x8000000, 0x9000000, &at), -ENOMEM);
	assert_int_equal(memmap_find_free(map, 6, 0x1000, 0x140000000ull, UINT64_MAX, &at), -ENOMEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorts_and_merges),
		cmocka_unit_test(test_overlap_restrictive_wins),
		cmocka_unit_test(test_empty_and_wrapping_entries),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_ram_top_and_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
