/* In-guest self-tests selected with test=NAME. Each prints what it checks and exits QEMU through
 * isa-debug-exit with a status the system tests assert on (see kernel.h). The exception tests fault on
 * purpose: the exception handler's report and exit code are what is under test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernel.h"
#include "loop.h"
#include "mm.h"
#include "selftest.h"
#include "time.h"

#define TICKS_TEST_SECONDS 1

static uint64_t ticks_t0_tsc, ticks_t0;

/* Recursion with a large frame runs into the unmapped guard page below the boot stack; the page fault cannot
 * be delivered on that stack, so the CPU raises #DF, which runs on its own IST stack. */
static int __attribute__((noinline)) selftest_recurse(int depth)
{
	volatile char pad[512];
	pad[0] = (char)depth;
	/* 2^20 frames of 512+ bytes is far more than the 64 KiB stack: the guard page is hit long before. */
	if (depth > (1 << 20))
		return 0;
	return selftest_recurse(depth + 1) + pad[0];
}

/* Reads an address the compiler cannot see through, so it emits the faulting load as written. */
static void selftest_load(uintptr_t addr)
{
	volatile uintptr_t a = addr;
	(void)*(volatile uint64_t *)a;
}

/* test=ticks: over one second of TSC time the LAPIC must deliver the programmed number of ticks: never more
 * than 2 % above it (a wrong timer calibration), and at least half of it. Below that the timer is not
 * running; in between, the host did not schedule the vCPU for a while (an overloaded TCG host drops
 * periodic ticks), which is reported but is not a kernel fault. */
static int selftest_ticks_poll(void *ctx)
{
	(void)ctx;
	uint64_t elapsed_ns = tsc_to_ns(rdtsc() - ticks_t0_tsc);
	if (elapsed_ns < TICKS_TEST_SECONDS * 1000000000ull)
		return 0;
	uint64_t ticks = timer_ticks - ticks_t0;
	uint64_t expect = elapsed_ns * timer_hz / 1000000000ull;
	printf("selftest ticks: %llu ticks in %llu ms, expected %llu\n", (unsigned long long)ticks,
	       (unsigned long long)(elapsed_ns / 1000000), (unsigned long long)expect);
	if (ticks * 50 > expect * 51 + 50 || ticks * 2 < expect) {
		printf("selftest ticks: FAIL (outside %llu..%llu)\n", (unsigned long long)(expect / 2),
		       (unsigned long long)(expect * 51 / 50 + 1));
		kernel_exit(KEXIT_FAIL);
	}
	if (ticks * 50 < expect * 49)
		printf("selftest ticks: %llu ticks missing: the host did not run the vCPU on time\n",
		       (unsigned long long)(expect - ticks));
	printf("selftest ticks: PASS\n");
	kernel_exit(KEXIT_PASS);
}

/* test=heap: newlib's malloc on our sbrk, and the page allocator, give memory back. */
static void selftest_heap(void)
{
	size_t before = kernel_pmm.free_pages;
	void *pages = page_alloc(16);
	char *m = malloc(1 << 20);
	int ok = pages && m && kernel_pmm.free_pages == before - 16;

	if (m)
		memset(m, 0xA5, 1 << 20);
	free(m);
	if (pages)
		page_free(pages, 16);
	ok = ok && kernel_pmm.free_pages == before;
	printf("selftest heap: malloc 1 MiB %s, 16 pages alloc/free %s\n", m ? "ok" : "failed",
	       ok ? "ok" : "leaked");
	kernel_exit(ok ? KEXIT_PASS : KEXIT_FAIL);
}

void selftest_start(const char *name)
{
	printf("selftest: %s\n", name);
	if (!strcmp(name, "boot")) {
		printf("selftest boot: PASS\n");
		kernel_exit(KEXIT_PASS);
	} else if (!strcmp(name, "ticks")) {
		ticks_t0_tsc = rdtsc();
		ticks_t0 = timer_ticks;
		loop_add_poller("selftest-ticks", selftest_ticks_poll, NULL);
	} else if (!strcmp(name, "heap")) {
		selftest_heap();
	} else if (!strcmp(name, "ud")) {
		__asm__ volatile("ud2");
	} else if (!strcmp(name, "pf")) {
		selftest_load(0x8);
	} else if (!strcmp(name, "gp")) {
		selftest_load(0x8000000000000000ull); /* non-canonical */
	} else if (!strcmp(name, "de")) {
		/* In assembly: the compiler may rewrite a C division by a variable (1/x becomes x == 1). */
		__asm__ volatile("xor %%ecx, %%ecx\n\tmov $1, %%eax\n\txor %%edx, %%edx\n\tdiv %%ecx" ::: "eax", "ecx", "edx");
	} else if (!strcmp(name, "bp")) {
		__asm__ volatile("int3");
	} else if (!strcmp(name, "df")) {
		selftest_recurse(0);
	} else if (!strcmp(name, "panic")) {
		panic("selftest panic requested");
	}
	/* Returning from an exception test means the exception did not fire. */
	if (strcmp(name, "ticks")) {
		printf("selftest %s: FAIL (no exception)\n", name);
		kernel_exit(KEXIT_FAIL);
	}
}
