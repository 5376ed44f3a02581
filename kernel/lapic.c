/* Local APIC (Intel SDM vol. 3, ch. 11). */
#include <errno.h>
#include <stdio.h>

#include "cpu.h"
#include "kernel.h"
#include "lapic.h"
#include "loop.h"
#include "mm.h"
#include "mmio.h"
#include "time.h"
#include "trap.h"

#define LAPIC_ID 0x020
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3E0

#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define SVR_ENABLE (1u << 8)
#define APIC_BASE_X2APIC (1ull << 10)
#define APIC_BASE_ENABLE (1ull << 11)
#define X2APIC_MSR_BASE 0x800u
#define CALIBRATE_NS 2000000ull
#define CALIBRATE_RUNS 3

volatile uint64_t timer_ticks;
unsigned timer_hz;

/* The timer runs periodic at timer_hz; a wake-up earlier than the next tick (timer_wake_at) switches it to
 * one-shot for the wake-up, then one-shot for the rest of the tick period, then back to periodic, so ticks
 * keep their count and cadence. Another wake-up may be armed in either one-shot state; the earliest wins. */
enum lapic_timer_state { TIMER_PERIODIC, TIMER_WAKE, TIMER_TICK_ONESHOT };
static enum lapic_timer_state lapic_timer_state;
static uint32_t lapic_period_count;  /* initial count of one tick period */
static uint64_t lapic_timer_rate;    /* timer counts per second (after the divider) */
static uint64_t lapic_tick_tsc;      /* one tick period in TSC ticks */
static uint64_t lapic_next_tick_tsc; /* when the next tick is due */
static uint64_t lapic_wake_tsc;      /* the pending wake-up's deadline (TIMER_WAKE) */
uint64_t timer_wakeups;
static uintptr_t lapic_mmio;
static int lapic_x2;

static uint32_t lapic_read(unsigned reg)
{
	if (lapic_x2)
		return (uint32_t)rdmsr(X2APIC_MSR_BASE + (reg >> 4));
	return mmio_read32(lapic_mmio + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
	if (lapic_x2)
		wrmsr(X2APIC_MSR_BASE + (reg >> 4), v);
	else
		mmio_write32(lapic_mmio + reg, v);
}

void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
uint32_t lapic_id(void) { return lapic_x2 ? lapic_read(LAPIC_ID) : lapic_read(LAPIC_ID) >> 24; }

int lapic_init(uint64_t mmio_base)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);
	int rc;

	if (cpuid(1, 0).ecx & (1u << 21)) {
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
		lapic_x2 = 1;
	} else {
		rc = paging_map_mmio(mmio_base, 4096);
		if (rc) {
			printf("lapic: cannot map %#llx (%d)\n", (unsigned long long)mmio_base, rc);
			return rc;
		}
		lapic_mmio = (uintptr_t)mmio_base;
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_ENABLE);
	}
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
	lapic_write(LAPIC_SVR, SVR_ENABLE | VECTOR_SPURIOUS);
	return 0;
}

static uint32_t lapic_tsc_to_count(uint64_t tsc)
{
	uint64_t c = (uint64_t)(((unsigned __int128)tsc * lapic_timer_rate) / tsc_hz);
	return c == 0 ? 1 : c > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)c;
}

static void lapic_timer_periodic(uint64_t now)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VECTOR_TIMER);
	lapic_write(LAPIC_TIMER_INIT, lapic_period_count);
	lapic_next_tick_tsc = now + lapic_tick_tsc;
	lapic_timer_state = TIMER_PERIODIC;
}

static void lapic_timer_oneshot(uint64_t delta_tsc, enum lapic_timer_state state)
{
	lapic_write(LAPIC_LVT_TIMER, VECTOR_TIMER);
	lapic_write(LAPIC_TIMER_INIT, lapic_tsc_to_count(delta_tsc));
	lapic_timer_state = state;
}

static void lapic_timer_irq(struct trap_frame *f, void *ctx)
{
	uint64_t now = rdtsc();
	(void)f;
	(void)ctx;

	switch (lapic_timer_state) {
	case TIMER_PERIODIC:
		timer_ticks++;
		lapic_next_tick_tsc += lapic_tick_tsc;
		if (lapic_next_tick_tsc < now)
			lapic_next_tick_tsc = now + lapic_tick_tsc; /* ticks were lost (host did not run us) */
		break;
	case TIMER_WAKE:
		timer_wakeups++;
		if (now + lapic_tick_tsc / 64 >= lapic_next_tick_tsc) {
			timer_ticks++;
			lapic_timer_periodic(now);
		} else {
			lapic_timer_oneshot(lapic_next_tick_tsc - now, TIMER_TICK_ONESHOT);
		}
		break;
	case TIMER_TICK_ONESHOT:
		timer_ticks++;
		lapic_timer_periodic(now);
		break;
	}
	loop_kick();
}

void timer_wake_at(uint64_t tsc)
{
	uint64_t flags = irq_save(), now = rdtsc();

	/* Only if it comes before the next tick (which wakes the loop anyway) and before a wake-up already
	 * pending: the earliest deadline is the one to keep, since the caller of the earlier one is still
	 * waiting for it (the caller of a later one is woken early and asks again). In TIMER_TICK_ONESHOT the
	 * timer is counting down the rest of the tick period after an earlier wake-up: a new wake-up is armed
	 * the same way, since its interrupt goes back to counting the rest of the period (lapic_next_tick_tsc
	 * is kept in every state). Ignoring it there left a coalescing bound armed in that window waiting for
	 * the next tick instead. */
	if (lapic_timer_rate && tsc < lapic_next_tick_tsc &&
	    !(lapic_timer_state == TIMER_WAKE && lapic_wake_tsc <= tsc)) {
		lapic_wake_tsc = tsc;
		lapic_timer_oneshot(tsc > now ? tsc - now : 1, TIMER_WAKE);
	}
	irq_restore(flags);
}

int lapic_timer_start(unsigned hz)
{
	int rc = irq_register(VECTOR_TIMER, lapic_timer_irq, NULL);
	if (rc)
		return rc;

	/* Count the timer down (divide by 16) over a known number of TSC ticks to find its rate. A host that
	 * deschedules the vCPU mid-window makes the count too large (QEMU's timer follows host time while the
	 * TSC window was stretched, or the reverse), so take the median of three windows. */
	uint32_t runs[CALIBRATE_RUNS], elapsed;
	lapic_write(LAPIC_TIMER_DIV, 0x3);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
	for (int i = 0; i < CALIBRATE_RUNS; i++) {
		lapic_write(LAPIC_TIMER_INIT, 0xFFFFFFFFu);
		tsc_delay_ns(CALIBRATE_NS);
		runs[i] = 0xFFFFFFFFu - lapic_read(LAPIC_TIMER_CUR);
	}
	lapic_write(LAPIC_TIMER_INIT, 0);
	for (int i = 0; i < CALIBRATE_RUNS; i++)
		for (int j = i + 1; j < CALIBRATE_RUNS; j++)
			if (runs[j] < runs[i]) {
				uint32_t t = runs[i];
				runs[i] = runs[j];
				runs[j] = t;
			}
	elapsed = runs[CALIBRATE_RUNS / 2];
	if (elapsed == 0) {
		printf("lapic: timer did not count during calibration\n");
		return -ENODEV;
	}
	uint64_t timer_rate = (uint64_t)elapsed * (1000000000ull / CALIBRATE_NS);
	uint64_t initial = timer_rate / hz;
	if (initial == 0 || initial > 0xFFFFFFFFu) {
		printf("lapic: tick rate %u Hz out of range for a %llu Hz timer\n", hz, (unsigned long long)timer_rate);
		return -ERANGE;
	}
	timer_hz = hz;
	lapic_timer_rate = timer_rate;
	lapic_period_count = (uint32_t)initial;
	lapic_tick_tsc = tsc_hz / hz;
	lapic_timer_periodic(rdtsc());
	printf("lapic: %s id %u, timer %llu Hz (div 16), ticking at %u Hz\n", lapic_x2 ? "x2APIC" : "xAPIC",
	       lapic_id(), (unsigned long long)timer_rate * 16, hz);
	return 0;
}
