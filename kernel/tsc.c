/* The TSC as the clock, and the calibration that gives it (and the LAPIC timer) a rate.
 *
 * One window of CALIBRATE_US against the best fixed-rate reference the machine has (HPET, else the ACPI PM
 * timer, else PIT channel 0 read back through its latch), with a second reference read in the same window
 * as a cross-check (without one, the window's two halves are compared). CPUID 0x15/0x16 or the hypervisor
 * timing leaf, where offered, give the rate directly and the window only checks it. A result outside
 * TSC_HZ_MIN..TSC_HZ_MAX, references that disagree, or no reference at all fail the boot step: a wrong clock
 * silently breaks every timeout above it (issue 13: microvm's PIT gate read back as "done" at once and gave
 * 0.195 MHz). */
#include <errno.h>
#include <stdio.h>

#include "acpi.h"
#include "cpu.h"
#include "kernel.h"
#include "lapic.h"
#include "mm.h"
#include "mmio.h"
#include "time.h"

#define CALIBRATE_US 1000
#define TSC_HZ_MIN 100000000ull    /* 100 MHz: no x86_64 with an invariant-rate TSC is slower */
#define TSC_HZ_MAX 20000000000ull  /* 20 GHz */
#define AGREE_PPM 10000            /* two measurements must agree within 1 % */
#define CPUID_AGREE_PPM 20000      /* CPUID 0x16 is the nominal base clock: 2 % */
#define PROBE_READS 1000           /* reads a present reference must change within */
#define SPIN_READS 20000000        /* bound on the window's reads: a stuck reference fails, not hangs */
#define READ_TRIES 4               /* a read bracketed by a host preemption is retried; the tightest wins */

#define PIT_HZ 1193182u
#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define HPET_CAP 0x000
#define HPET_CONFIG 0x010
#define HPET_COUNTER 0x0F0
#define HPET_ENABLE 1u
#define PM_TIMER_HZ 3579545u

uint64_t tsc_hz;
uint64_t tsc_boot;
const char *tsc_source = "none";
const char *tsc_check = "none";
uint64_t tsc_check_hz;
uint64_t tsc_calib_ns;
uint64_t lapic_calib_hz;
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

/* A fixed-rate counter, read as an up-counter modulo mask + 1. */
struct tsc_ref {
	const char *name;
	uint64_t hz;
	uint32_t mask;
	uint32_t (*read)(const struct tsc_ref *r);
	uintptr_t mmio;
	uint16_t port;
};

static uint32_t tsc_hpet_read(const struct tsc_ref *r) { return mmio_read32(r->mmio + HPET_COUNTER); }
static uint32_t tsc_pm_read(const struct tsc_ref *r) { return inl(r->port); }

/* Counter latch command (8254 data sheet): the count is frozen for the two byte reads. It counts down, so it
 * is negated into an up-counter. Channel 0 rather than 2: channel 2's gate is port 0x61, which microvm does
 * not have (its count never started and its OUT bit read back as set). */
static uint32_t tsc_pit_read(const struct tsc_ref *r)
{
	(void)r;
	outb(PIT_CMD, 0x00);
	uint32_t lo = inb(PIT_CH0);
	uint32_t hi = inb(PIT_CH0);
	return (0x10000u - (lo | hi << 8)) & 0xFFFFu;
}

static int tsc_ref_hpet(struct tsc_ref *r)
{
	if (!acpi_info.hpet_base || paging_map_mmio(acpi_info.hpet_base, 4096))
		return 0;
	uintptr_t b = (uintptr_t)acpi_info.hpet_base;
	uint32_t period_fs = (uint32_t)(mmio_read64(b + HPET_CAP) >> 32);
	if (period_fs == 0 || period_fs > 100000000u) /* the spec's bound: at most 100 ns per count */
		return 0;
	mmio_write64(b + HPET_CONFIG, mmio_read64(b + HPET_CONFIG) | HPET_ENABLE);
	*r = (struct tsc_ref){ "HPET", 1000000000000000ull / period_fs, 0xFFFFFFFFu, tsc_hpet_read, b, 0 };
	return 1;
}

static int tsc_ref_pm(struct tsc_ref *r)
{
	if (!acpi_info.pm_timer_port)
		return 0;
	*r = (struct tsc_ref){ "ACPI PM timer", PM_TIMER_HZ, acpi_info.pm_timer_32bit ? 0xFFFFFFFFu : 0xFFFFFFu,
			       tsc_pm_read, 0, (uint16_t)acpi_info.pm_timer_port };
	return 1;
}

/* PIT channel 0 in mode 0 (interrupt on terminal count) with count 0 = 65536: it counts down through 55 ms,
 * then keeps wrapping without reloading. Unlike the firmware's mode 3 (a square wave at 18.2 Hz) it changes
 * its output once and then never again, so QEMU stops running a host timer for it every 27.5 ms (each edge of
 * the square wave) while the guest is idle: 0.4 % of a host core, half of an idle guest's cost on q35. */
static void tsc_pit_mode0(void)
{
	outb(PIT_CMD, 0x30); /* channel 0, lo/hi byte, mode 0, binary */
	outb(PIT_CH0, 0);
	outb(PIT_CH0, 0);
}

/* Channel 0 is already counting in mode 0: tsc_init programs it first, on every machine. */
static int tsc_ref_pit(struct tsc_ref *r)
{
	*r = (struct tsc_ref){ "PIT", PIT_HZ, 0xFFFFu, tsc_pit_read, 0, 0 };
	return 1;
}

/* A reference that does not count (absent hardware reads back a constant) is not used. */
static int tsc_ref_counts(const struct tsc_ref *r)
{
	uint32_t v0 = r->read(r);
	for (int i = 0; i < PROBE_READS; i++)
		if (r->read(r) != v0)
			return 1;
	return 0;
}

/* One reading of a reference, stamped with the TSC midway through it. Under TCG a port or MMIO read is a
 * trip through QEMU; the tightest of a few brackets is kept, so a host preemption in one does not count. */
struct tsc_sample {
	uint64_t tsc;
	uint32_t v;
};

static struct tsc_sample tsc_sample(const struct tsc_ref *r)
{
	struct tsc_sample best = { 0, 0 };
	uint64_t best_w = ~0ull;
	for (int i = 0; i < READ_TRIES; i++) {
		uint64_t t0 = rdtsc();
		uint32_t v = r->read(r);
		uint64_t t1 = rdtsc();
		if (t1 - t0 < best_w) {
			best_w = t1 - t0;
			best = (struct tsc_sample){ t0 + (t1 - t0) / 2, v };
		}
	}
	return best;
}

static uint64_t tsc_rate(const struct tsc_ref *r, struct tsc_sample a, struct tsc_sample b)
{
	uint32_t d = (b.v - a.v) & r->mask;
	return d ? (uint64_t)((unsigned __int128)(b.tsc - a.tsc) * r->hz / d) : 0;
}

static int tsc_agree(uint64_t a, uint64_t b, unsigned ppm)
{
	uint64_t diff = a > b ? a - b : b - a;
	return a && b && (unsigned __int128)diff * 1000000 <= (unsigned __int128)(a < b ? a : b) * ppm;
}

static uint64_t tsc_from_cpuid(const char **src)
{
	struct cpuid_regs r = cpuid(0, 0);
	uint32_t max = r.eax;

	if (max >= 0x15) {
		r = cpuid(0x15, 0);
		if (r.eax && r.ebx && r.ecx) {
			*src = "cpuid 0x15";
			return (uint64_t)r.ecx * r.ebx / r.eax;
		}
	}
	if (max >= 0x16) {
		r = cpuid(0x16, 0);
		if (r.eax) {
			*src = "cpuid 0x16";
			return (uint64_t)r.eax * 1000000;
		}
	}
	if (cpuid(1, 0).ecx & (1u << 31)) { /* running under a hypervisor */
		r = cpuid(0x40000000, 0);
		if (r.eax >= 0x40000010) {
			r = cpuid(0x40000010, 0);
			if (r.eax) {
				*src = "hypervisor leaf 0x40000010";
				return (uint64_t)r.eax * 1000;
			}
		}
	}
	return 0;
}

/* Waits until the reference has advanced by `ticks` since `from`. */
static int tsc_wait_ref(const struct tsc_ref *r, uint32_t from, uint32_t ticks)
{
	for (int i = 0; i < SPIN_READS; i++)
		if (((r->read(r) - from) & r->mask) >= ticks)
			return 0;
	return -ETIMEDOUT;
}

int tsc_init(void)
{
	struct tsc_ref refs[2];
	struct tsc_sample s[2][3];
	unsigned n = 0;
	uint64_t t_start = rdtsc();

	/* Whether or not it becomes a reference, the PIT must stop ticking (on a machine without one the writes go
	 * nowhere). */
	tsc_pit_mode0();
	/* Best first: the finer the reference, the shorter the window can be for the same precision. */
	int (*const probes[])(struct tsc_ref *) = { tsc_ref_hpet, tsc_ref_pm, tsc_ref_pit };
	for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]) && n < 2; i++)
		if (probes[i](&refs[n]) && tsc_ref_counts(&refs[n]))
			n++;
	if (n == 0) {
		printf("time: no HPET, ACPI PM timer or PIT that counts; cannot calibrate the TSC\n");
		return -ENODEV;
	}

	/* One window, sampled at its start, middle and end: the primary's two halves and the secondary over the
	 * whole window are two independent measurements of the same TSC rate. The LAPIC timer counts down across
	 * the same window. */
	uint32_t half = (uint32_t)(refs[0].hz * CALIBRATE_US / 2000000);
	lapic_calibrate_begin();
	for (unsigned k = 0; k < n; k++)
		s[k][0] = tsc_sample(&refs[k]);
	uint64_t lapic0_tsc = rdtsc();
	uint32_t lapic0 = lapic_calibrate_read();
	lapic0_tsc += (rdtsc() - lapic0_tsc) / 2;
	int rc = tsc_wait_ref(&refs[0], s[0][0].v, half);
	s[0][1] = tsc_sample(&refs[0]);
	if (!rc)
		rc = tsc_wait_ref(&refs[0], s[0][0].v, 2 * half);
	uint64_t lapic1_tsc = rdtsc();
	uint32_t lapic1 = lapic_calibrate_read();
	lapic1_tsc += (rdtsc() - lapic1_tsc) / 2;
	for (unsigned k = 0; k < n; k++)
		s[k][2] = tsc_sample(&refs[k]);
	lapic_calibrate_end();
	if (rc) {
		printf("time: %s stopped counting during calibration\n", refs[0].name);
		return rc;
	}

	uint64_t hz = tsc_rate(&refs[0], s[0][0], s[0][2]);
	uint64_t h1 = tsc_rate(&refs[0], s[0][0], s[0][1]), h2 = tsc_rate(&refs[0], s[0][1], s[0][2]);
	uint64_t other = n > 1 ? tsc_rate(&refs[1], s[1][0], s[1][2]) : 0;
	const char *cpuid_src = NULL;
	uint64_t cpuid_hz = tsc_from_cpuid(&cpuid_src);

	if (hz < TSC_HZ_MIN || hz > TSC_HZ_MAX) {
		printf("time: TSC %llu Hz against the %s is implausible\n", (unsigned long long)hz, refs[0].name);
		return -ERANGE;
	}
	if (n > 1 && !tsc_agree(hz, other, AGREE_PPM)) {
		printf("time: TSC %llu Hz by the %s but %llu Hz by the %s\n", (unsigned long long)hz, refs[0].name,
		       (unsigned long long)other, refs[1].name);
		return -ERANGE;
	}
	if (n == 1 && !tsc_agree(h1, h2, AGREE_PPM)) {
		printf("time: TSC %llu Hz then %llu Hz over two halves of the %s window\n", (unsigned long long)h1,
		       (unsigned long long)h2, refs[0].name);
		return -ERANGE;
	}
	if (cpuid_hz && !tsc_agree(hz, cpuid_hz, CPUID_AGREE_PPM)) {
		printf("time: TSC %llu Hz by %s but %llu Hz by the %s\n", (unsigned long long)cpuid_hz, cpuid_src,
		       (unsigned long long)hz, refs[0].name);
		return -ERANGE;
	}
	tsc_hz = cpuid_hz ? cpuid_hz : hz;
	tsc_source = cpuid_hz ? cpuid_src : refs[0].name;
	tsc_check = cpuid_hz ? refs[0].name : n > 1 ? refs[1].name : "the window's halves";
	tsc_check_hz = cpuid_hz ? hz : n > 1 ? other : h2;
	tsc_ns_mult = (uint64_t)(((unsigned __int128)1000000000ull << 32) / tsc_hz);
	tsc_mult_ns = (uint64_t)(((unsigned __int128)tsc_hz << 32) / 1000000000ull);
	lapic_calib_hz = lapic1_tsc > lapic0_tsc
				 ? (uint64_t)((unsigned __int128)(lapic0 - lapic1) * tsc_hz / (lapic1_tsc - lapic0_tsc))
				 : 0;
	tsc_calib_ns = tsc_to_ns(rdtsc() - t_start);
	return 0;
}
