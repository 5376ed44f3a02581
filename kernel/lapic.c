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
#define SVR_ENABLE (1u << 8)
#define APIC_BASE_X2APIC (1ull << 10)
#define APIC_BASE_ENABLE (1ull << 11)
#define X2APIC_MSR_BASE 0x800u

volatile uint64_t timer_ticks;
unsigned timer_hz;
uint64_t timer_wakeups;
uint64_t timer_early;

/* Tickless: the timer is only ever one-shot, armed before each halt for the earliest deadline a poller asked
 * for in that main-loop round (timer_wake_at, timer_arm_next). Nothing asks while nothing is due, so an idle
 * guest halts until its next lwIP timer or heartbeat instead of taking hz interrupts a second. timer_ticks is
 * no longer counted by interrupts: it is the TSC in units of 1/timer_hz, brought up to date at each main-loop
 * round (timer_tick_update). */
static uint64_t lapic_timer_rate;  /* timer counts per second (after the divider) */
static uint64_t lapic_tick_tsc;    /* one tick in TSC ticks */
static uint64_t lapic_armed_tsc;   /* deadline the timer is counting down to; 0: not armed */
static uint64_t lapic_count_mult;  /* timer counts = TSC ticks * mult >> 32, mult rounded up ... */
static uint64_t lapic_count_mult0; /* ... from the boot measurement (lapic_timer_irq adjusts mult) */
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

void lapic_calibrate_begin(void)
{
	lapic_write(LAPIC_TIMER_DIV, 0x3); /* divide by 16 */
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0xFFFFFFFFu);
}

uint32_t lapic_calibrate_read(void) { return lapic_read(LAPIC_TIMER_CUR); }
void lapic_calibrate_end(void) { lapic_write(LAPIC_TIMER_INIT, 0); }

void timer_tick_update(void)
{
	if (lapic_tick_tsc)
		timer_ticks = (rdtsc() - tsc_boot) / lapic_tick_tsc;
}

uint64_t timer_tick_tsc(uint64_t tick) { return tsc_boot + tick * lapic_tick_tsc; }

/* Arms the one-shot timer for the TSC deadline tsc (now: the current TSC). */
static void lapic_arm(uint64_t tsc, uint64_t now)
{
	uint64_t delta = tsc > now ? tsc - now : 1;
	/* A multiply, not a 128-bit division (a libgcc call of ~80 instructions, paid on every re-arm). */
	uint64_t c = (uint64_t)(((unsigned __int128)delta * lapic_count_mult) >> 32);
	/* Rounded up; a deadline beyond the counter's range (68 s at 62.5 MHz) fires at the range's end and is
	 * armed again. */
	c = c + 1 > 0xFFFFFFFFu ? 0xFFFFFFFFu : c + 1;
	lapic_armed_tsc = tsc ? tsc : 1;
	lapic_write(LAPIC_TIMER_INIT, (uint32_t)c);
}

static void lapic_timer_irq(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	/* The timer counts on its own clock: it may end a little before the TSC deadline (under TCG the two
	 * drift apart by up to ~0.1 % between calibrations), and a deadline beyond its range ends early by
	 * design. Waking the loop then would only have every poller find its tick not come yet and ask again,
	 * so the rest is armed instead. */
	uint64_t now = rdtsc();
	if (lapic_armed_tsc > now) {
		timer_early++;
		/* The counts per TSC tick were measured over one millisecond at boot: an early end says they were
		 * a little low, so they are raised by 1/4096 each time, up to 1/256 above the measurement (0.4 ms
		 * on a 100 ms deadline, should a run of early ends have other causes). */
		if (lapic_count_mult < lapic_count_mult0 + (lapic_count_mult0 >> 8))
			lapic_count_mult += (lapic_count_mult >> 12) + 1;
		lapic_arm(lapic_armed_tsc, now);
		return;
	}
	lapic_armed_tsc = 0;
	timer_wakeups++;
	timer_tick_update();
	loop_kick();
}

/* The earliest deadline asked for since the main-loop round began (UINT64_MAX: none). Only the main loop's
 * pollers ask, so no interrupt handler touches it. */
static uint64_t timer_next = UINT64_MAX;
void timer_wake_at(uint64_t tsc)
{
	if (tsc < timer_next)
		timer_next = tsc;
}

void timer_round_begin(void) { timer_next = UINT64_MAX; }

void timer_arm_next(void)
{
	if (!lapic_timer_rate)
		return;
	uint64_t next = timer_next == UINT64_MAX ? 0 : timer_next ? timer_next : 1;
	if (next == lapic_armed_tsc)
		return; /* already counting down to it (or stopped, with nothing asked) */
	/* A deadline a little later than the armed one (a transmit completion's, moving with every frame of a
	 * steady flow) leaves the timer as it is: should it end first, the pollers ask again. Re-arming on every
	 * round would cost a register write per frame. */
	if (next > lapic_armed_tsc && lapic_armed_tsc && next - lapic_armed_tsc < lapic_tick_tsc / 4)
		return;
	if (!next) {
		/* Nothing is due: an initial count of 0 stops the one-shot timer (an idle guest sleeps until a
		 * device interrupts). */
		lapic_armed_tsc = 0;
		lapic_write(LAPIC_TIMER_INIT, 0);
		return;
	}
	/* A deadline already past fires at once. */
	lapic_arm(next, rdtsc());
}

uint64_t timer_ticks_len(uint64_t n) { return n * lapic_tick_tsc; }

int lapic_timer_start(unsigned hz, uint64_t rate)
{
	int rc = irq_register(VECTOR_TIMER, lapic_timer_irq, NULL);
	if (rc)
		return rc;

	/* rate: timer input clock in Hz, measured by tsc_init across its calibration window (divided by 16). */
	if (rate < 1000 || hz == 0) {
		printf("lapic: timer counted at %llu Hz during calibration\n", (unsigned long long)rate);
		return -ENODEV;
	}
	timer_hz = hz;
	lapic_timer_rate = rate;
	lapic_count_mult = (uint64_t)((((unsigned __int128)rate << 32) + tsc_hz - 1) / tsc_hz);
	lapic_count_mult0 = lapic_count_mult;
	lapic_tick_tsc = tsc_hz / hz;
	lapic_write(LAPIC_TIMER_DIV, 0x3);
	lapic_write(LAPIC_LVT_TIMER, VECTOR_TIMER); /* one-shot, unmasked */
	timer_tick_update();
	printf("lapic: %s id %u, timer %llu Hz (div 16), one-shot (tickless), ticks of %u us\n",
	       lapic_x2 ? "x2APIC" : "xAPIC", lapic_id(), (unsigned long long)rate * 16, 1000000 / hz);
	return 0;
}
