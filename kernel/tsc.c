/* TSC frequency: CPUID leaf 0x15/0x16 or the hypervisor timing leaf 0x40000010 where they exist (KVM, real
 * hardware); otherwise calibrated against PIT channel 2, which QEMU drives from the host clock. Under TCG
 * none of the CPUID leaves exist (see docs), so the calibration is the normal path here. */
#include <errno.h>
#include <stdio.h>

#include "cpu.h"
#include "kernel.h"
#include "time.h"

#define PIT_HZ 1193182u
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PIT_GATE 0x61
#define CALIBRATE_MS 2
#define CALIBRATE_RUNS 3
/* Bound on one calibration wait: ~10 s even at 10 GHz. A missing PIT then fails instead of hanging. */
#define CALIBRATE_SPIN_MAX 100000000000ull

uint64_t tsc_hz;
uint64_t tsc_boot;
const char *tsc_source = "none";
static uint64_t tsc_ns_mult; /* ns = ticks * mult >> 32 */
static uint64_t tsc_mult_ns; /* ticks = ns * mult >> 32 */

uint64_t tsc_to_ns(uint64_t ticks) { return (uint64_t)(((unsigned __int128)ticks * tsc_ns_mult) >> 32); }
uint64_t ns_to_tsc(uint64_t ns) { return (uint64_t)(((unsigned __int128)ns * tsc_mult_ns) >> 32); }
uint64_t time_ns(void) { return tsc_to_ns(rdtsc() - tsc_boot); }

void tsc_delay_ns(uint64_t ns)
{
	uint64_t end = rdtsc() + ns_to_tsc(ns);
	while (rdtsc() < end)
		cpu_relax();
}

static uint64_t tsc_from_cpuid(void)
{
	struct cpuid_regs r = cpuid(0, 0);
	uint32_t max = r.eax;

	if (max >= 0x15) {
		r = cpuid(0x15, 0);
		if (r.eax && r.ebx && r.ecx) {
			tsc_source = "cpuid 0x15";
			return (uint64_t)r.ecx * r.ebx / r.eax;
		}
	}
	if (max >= 0x16) {
		r = cpuid(0x16, 0);
		if (r.eax) {
			tsc_source = "cpuid 0x16";
			return (uint64_t)r.eax * 1000000;
		}
	}
	if (cpuid(1, 0).ecx & (1u << 31)) { /* running under a hypervisor */
		r = cpuid(0x40000000, 0);
		if (r.eax >= 0x40000010) {
			r = cpuid(0x40000010, 0);
			if (r.eax) {
				tsc_source = "hypervisor leaf 0x40000010";
				return (uint64_t)r.eax * 1000;
			}
		}
	}
	return 0;
}

#define CALIBRATE_COUNT (PIT_HZ * CALIBRATE_MS / 1000) /* 2386 PIT ticks: 1.99970 ms, not 2 */

/* One PIT channel-2 one-shot of CALIBRATE_COUNT ticks: the TSC ticks it took, or 0 if the PIT never fired. */
static uint64_t tsc_pit_once(void)
{
	uint32_t count = CALIBRATE_COUNT;

	outb(PIT_GATE, (inb(PIT_GATE) & ~0x02) | 0x01); /* gate on, speaker off */
	outb(PIT_CMD, 0xB0);                            /* channel 2, lo/hi byte, mode 0, binary */
	outb(PIT_CH2, count & 0xFF);
	outb(PIT_CH2, count >> 8);
	/* Writing the count restarts mode 0; OUT2 (bit 5 of port 0x61) goes high when it reaches zero. */
	uint64_t t0 = rdtsc();
	while (!(inb(PIT_GATE) & 0x20))
		if (rdtsc() - t0 > CALIBRATE_SPIN_MAX)
			return 0;
	return rdtsc() - t0;
}

int tsc_init(void)
{
	uint64_t runs[CALIBRATE_RUNS];

	tsc_hz = tsc_from_cpuid();
	if (!tsc_hz) {
		for (int i = 0; i < CALIBRATE_RUNS; i++) {
			runs[i] = tsc_pit_once();
			if (!runs[i]) {
				printf("time: PIT channel 2 did not count; cannot calibrate the TSC\n");
				return -ENODEV;
			}
		}
		/* Median of three: one run stretched by a host preemption does not skew the result. */
		for (int i = 0; i < CALIBRATE_RUNS; i++)
			for (int j = i + 1; j < CALIBRATE_RUNS; j++)
				if (runs[j] < runs[i]) {
					uint64_t t = runs[i];
					runs[i] = runs[j];
					runs[j] = t;
				}
		/* Exact: the interval is CALIBRATE_COUNT PIT ticks (a rounded millisecond figure was 152 ppm off). */
		tsc_hz = runs[CALIBRATE_RUNS / 2] * PIT_HZ / CALIBRATE_COUNT;
		tsc_source = "PIT calibration";
	}
	tsc_ns_mult = (uint64_t)(((unsigned __int128)1000000000ull << 32) / tsc_hz);
	tsc_mult_ns = (uint64_t)(((unsigned __int128)tsc_hz << 32) / 1000000000ull);
	return 0;
}
