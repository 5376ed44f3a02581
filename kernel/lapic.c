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
#define CALIBRATE_NS 10000000ull

volatile uint64_t timer_ticks;
unsigned timer_hz;
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
int lapic_is_x2apic(void) { return lapic_x2; }
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

static void lapic_timer_irq(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	timer_ticks++;
	loop_kick();
}

int lapic_timer_start(unsigned hz)
{
	int rc = irq_register(VECTOR_TIMER, lapic_timer_irq, NULL);
	if (rc)
		return rc;

	/* Count the timer down (divide by 16) over a known number of TSC ticks to find its rate. */
	lapic_write(LAPIC_TIMER_DIV, 0x3);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0xFFFFFFFFu);
	tsc_delay_ns(CALIBRATE_NS);
	uint32_t elapsed = 0xFFFFFFFFu - lapic_read(LAPIC_TIMER_CUR);
	lapic_write(LAPIC_TIMER_INIT, 0);
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
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VECTOR_TIMER);
	lapic_write(LAPIC_TIMER_INIT, (uint32_t)initial);
	printf("lapic: %s id %u, timer %llu Hz (div 16), ticking at %u Hz\n", lapic_x2 ? "x2APIC" : "xAPIC",
	       lapic_id(), (unsigned long long)timer_rate * 16, hz);
	return 0;
}
