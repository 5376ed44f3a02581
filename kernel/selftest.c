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

static uint64_t ticks_t0_tsc;

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

/* test=ticks: there is no periodic tick any more; a poller that wants one asks for a wake-up at each tick
 * boundary (as the console and the NIC watchdog do). Over one second of TSC time it must see every tick,
 * each on time: the one-shot timer's calibration is what is under test. Never more ticks than the TSC
 * allows (2 %), at least half of them seen (fewer: the timer is not running; in between, the
 * host did not run the vCPU on time, reported but not a kernel fault), and the median lateness must stay
 * under a quarter of a tick. */
#define TICKS_LATE_SAMPLES 256
static uint64_t ticks_wake0, ticks_seen, ticks_last = UINT64_MAX;
static uint64_t ticks_late_ns[TICKS_LATE_SAMPLES];

static int selftest_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int selftest_ticks_poll(void *ctx)
{
	(void)ctx;
	uint64_t now = rdtsc();
	uint64_t elapsed_ns = tsc_to_ns(now - ticks_t0_tsc);
	if (timer_ticks != ticks_last) {
		if (ticks_last != UINT64_MAX) {
			ticks_late_ns[ticks_seen % TICKS_LATE_SAMPLES] = tsc_to_ns(now - timer_tick_tsc(timer_ticks));
			ticks_seen++;
		}
		ticks_last = timer_ticks;
	}
	if (elapsed_ns < TICKS_TEST_SECONDS * 1000000000ull) {
		timer_wake_at(timer_tick_tsc(timer_ticks + 1));
		return 0;
	}
	uint64_t ticks = ticks_seen, wakeups = timer_wakeups - ticks_wake0;
	uint64_t expect = elapsed_ns * timer_hz / 1000000000ull;
	unsigned n = ticks < TICKS_LATE_SAMPLES ? (unsigned)ticks : TICKS_LATE_SAMPLES;
	qsort(ticks_late_ns, n, sizeof(ticks_late_ns[0]), selftest_u64_cmp);
	uint64_t median = n ? ticks_late_ns[n / 2] : 0;
	printf("selftest ticks: %llu ticks in %llu ms, expected %llu; %llu timer wake-ups, late_us median=%llu\n",
	       (unsigned long long)ticks, (unsigned long long)(elapsed_ns / 1000000), (unsigned long long)expect,
	       (unsigned long long)wakeups, (unsigned long long)(median / 1000));
	if (ticks * 50 > expect * 51 + 50 || ticks * 2 < expect ||
	    median * timer_hz > 250000000ull) {
		printf("selftest ticks: FAIL (ticks outside %llu..%llu, or late)\n",
		       (unsigned long long)(expect / 2), (unsigned long long)(expect * 51 / 50 + 1));
		kernel_exit(KEXIT_FAIL);
	}
	if (ticks * 50 < expect * 49)
		printf("selftest ticks: %llu ticks missing: the host did not run the vCPU on time\n",
		       (unsigned long long)(expect - ticks));
	printf("selftest ticks: PASS\n");
	kernel_exit(KEXIT_PASS);
}

/* test=idle: with nothing due but lwIP's own timers (and the heartbeat, if on), the CPU must halt for far
 * longer than a tick: IDLE_TEST_SECONDS of idling, then the longest halt must exceed two ticks and the
 * timer interrupts must number fewer than a quarter of the ticks. With the old periodic tick no halt was
 * longer than one tick. */
#define IDLE_TEST_SECONDS 2
static uint64_t idle_halts0, idle_wake0;

static int selftest_idle_poll(void *ctx)
{
	(void)ctx;
	uint64_t elapsed_ns = tsc_to_ns(rdtsc() - ticks_t0_tsc);
	if (elapsed_ns < IDLE_TEST_SECONDS * 1000000000ull) {
		timer_wake_at(ticks_t0_tsc + ns_to_tsc(IDLE_TEST_SECONDS * 1000000000ull));
		return 0;
	}
	uint64_t ticks = elapsed_ns * timer_hz / 1000000000ull, wakeups = timer_wakeups - idle_wake0;
	uint64_t max_us = tsc_to_ns(loop_max_halt_tsc) / 1000;
	unsigned idle_pm = (unsigned)(loop_idle_tsc * 1000 / (rdtsc() - loop_start_tsc));
	printf("selftest idle: %llu halts, longest %llu us, %llu timer wake-ups in %llu ms (%llu ticks of %u us), "
	       "idle %u.%u%%\n",
	       (unsigned long long)(loop_halts - idle_halts0), (unsigned long long)max_us,
	       (unsigned long long)wakeups, (unsigned long long)(elapsed_ns / 1000000), (unsigned long long)ticks,
	       1000000 / timer_hz, idle_pm / 10, idle_pm % 10);
	int ok = max_us * timer_hz > 2000000ull && wakeups * 4 < ticks;
	printf("selftest idle: %s\n", ok ? "PASS" : "FAIL");
	kernel_exit(ok ? KEXIT_PASS : KEXIT_FAIL);
}

/* test=wake: timer_wake_at must wake the CPU at the requested time whatever the timer is doing, since the
 * coalescing bound of the receive path relies on it. Each round, just after a tick: (1) a wake-up 500 us
 * ahead from the periodic state; (2) right after it fired, another 500 us ahead (the timer is then counting
 * down the rest of the tick period, where requests used to be ignored); (3) one 500 us ahead followed by one
 * 3 ms ahead (the earlier must be kept, not overridden); (4) one 15/16 of a tick after the tick (the timer's
 * prediction of the next tick used to drift ahead of the real tick, and requests in between were dropped).
 * Lateness is measured at the first main-loop round after the deadline; the idle loop halts between rounds,
 * so a dropped wake-up waits for the next tick. A wake-up that comes early (a different interrupt, or count
 * rounding) is asked for again, as the network driver does. The median over the rounds must be under
 * WAKE_LATE_MAX_US for each case; one late round can be the host not running the vCPU. */
#define WAKE_ROUNDS 16
#define WAKE_CASES 4
#define WAKE_LATE_MAX_US 1000
#define WAKE_EARLY_OK_NS 20000

enum selftest_wake_phase { WAKE_SYNC, WAKE_SYNC_NEAR, WAKE_RUN };
static struct {
	enum selftest_wake_phase phase;
	unsigned round, kase;
	uint64_t tick, tick_tsc, due;
	uint64_t late_ns[WAKE_CASES][WAKE_ROUNDS];
} selftest_wake;

static const char *const selftest_wake_names[WAKE_CASES] = { "from-periodic", "after-wake", "earliest-kept",
							     "near-tick" };

static void selftest_wake_arm(unsigned kase, uint64_t now)
{
	uint64_t tick_tsc = ns_to_tsc(1000000000ull / timer_hz);

	selftest_wake.kase = kase;
	switch (kase) {
	case 0:
	case 1:
		selftest_wake.due = now + ns_to_tsc(500000);
		timer_wake_at(selftest_wake.due);
		break;
	case 2:
		selftest_wake.due = now + ns_to_tsc(500000);
		timer_wake_at(selftest_wake.due);
		timer_wake_at(now + ns_to_tsc(3000000));
		break;
	default:
		selftest_wake.due = selftest_wake.tick_tsc + tick_tsc * 15 / 16;
		timer_wake_at(selftest_wake.due);
		break;
	}
}

static int selftest_wake_poll(void *ctx)
{
	uint64_t now = rdtsc();
	(void)ctx;

	if (selftest_wake.phase != WAKE_RUN) {
		/* Start each round (and the near-tick case) on a fresh tick, so that the wake-ups fall where they
		 * are meant to within the tick period. */
		if (timer_ticks == selftest_wake.tick) {
			timer_wake_at(timer_tick_tsc(timer_ticks + 1));
			return 0;
		}
		selftest_wake.tick = timer_ticks;
		selftest_wake.tick_tsc = now;
		selftest_wake_arm(selftest_wake.phase == WAKE_SYNC ? 0 : WAKE_CASES - 1, now);
		selftest_wake.phase = WAKE_RUN;
		return 0;
	}
	if (now + ns_to_tsc(WAKE_EARLY_OK_NS) < selftest_wake.due) {
		timer_wake_at(selftest_wake.due); /* woken early: ask again */
		return 0;
	}
	selftest_wake.late_ns[selftest_wake.kase][selftest_wake.round] =
		now > selftest_wake.due ? tsc_to_ns(now - selftest_wake.due) : 0;
	if (selftest_wake.kase + 1 < WAKE_CASES - 1) {
		selftest_wake_arm(selftest_wake.kase + 1, now);
		return 0;
	}
	if (selftest_wake.kase + 1 == WAKE_CASES - 1) {
		selftest_wake.phase = WAKE_SYNC_NEAR;
		selftest_wake.tick = timer_ticks;
		return 0;
	}
	if (++selftest_wake.round < WAKE_ROUNDS) {
		selftest_wake.phase = WAKE_SYNC;
		selftest_wake.tick = timer_ticks;
		return 0;
	}
	int fail = 0;
	for (unsigned k = 0; k < WAKE_CASES; k++) {
		uint64_t *l = selftest_wake.late_ns[k];
		qsort(l, WAKE_ROUNDS, sizeof(l[0]), selftest_u64_cmp);
		uint64_t median = l[WAKE_ROUNDS / 2], max = l[WAKE_ROUNDS - 1];
		printf("selftest wake: %s late_us median=%llu max=%llu (%u rounds, tick %u us)\n", selftest_wake_names[k],
		       (unsigned long long)(median / 1000), (unsigned long long)(max / 1000), WAKE_ROUNDS,
		       1000000 / timer_hz);
		if (median > WAKE_LATE_MAX_US * 1000ull) {
			printf("selftest wake: %s: FAIL (median over %u us)\n", selftest_wake_names[k], WAKE_LATE_MAX_US);
			fail = 1;
		}
	}
	printf("selftest wake: %s\n", fail ? "FAIL" : "PASS");
	kernel_exit(fail ? KEXIT_FAIL : KEXIT_PASS);
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
		ticks_wake0 = timer_wakeups;
		loop_add_poller("selftest-ticks", selftest_ticks_poll, NULL);
	} else if (!strcmp(name, "idle")) {
		ticks_t0_tsc = rdtsc();
		idle_wake0 = timer_wakeups;
		idle_halts0 = loop_halts;
		loop_max_halt_tsc = 0;
		loop_add_poller("selftest-idle", selftest_idle_poll, NULL);
	} else if (!strcmp(name, "wake")) {
		selftest_wake.tick = timer_ticks;
		loop_add_poller("selftest-wake", selftest_wake_poll, NULL);
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
	if (strcmp(name, "ticks") && strcmp(name, "wake") && strcmp(name, "idle")) {
		printf("selftest %s: FAIL (no exception)\n", name);
		kernel_exit(KEXIT_FAIL);
	}
}
