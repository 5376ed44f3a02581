/* Entropy for newlib's arc4random(), which needs only getentropy() from the platform: it rekeys its ChaCha20
 * state from 40 bytes of getentropy() at first use and after every 1.6 MB of output.
 *
 * Sources, best first: RDSEED (conditioned output of the CPU's entropy source, CPUID.7.0:EBX[18]), RDRAND (a
 * DRBG reseeded from that source, CPUID.1:ECX[30]), and where the CPU has neither, the jitter of TSC reads
 * around a memory-touching loop, compressed by SipHash. The jitter source is weak under an emulator with a
 * deterministic clock; it is the last resort, and the boot log names the source in use. */
#include "random.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "siphash.h"

#define RANDOM_HW_RETRIES 32 /* Intel's guidance: RDRAND may fail transiently; 10 retries suffice, RDSEED more */

const char *random_source = "none";
static int (*random_hw_read)(uint64_t *out);

static int random_rdseed(uint64_t *out)
{
	unsigned char ok;
	for (int i = 0; i < RANDOM_HW_RETRIES; i++) {
		__asm__ volatile("rdseed %0; setc %1" : "=r"(*out), "=qm"(ok));
		if (ok)
			return 0;
		__asm__ volatile("pause");
	}
	return -1;
}

static int random_rdrand(uint64_t *out)
{
	unsigned char ok;
	for (int i = 0; i < RANDOM_HW_RETRIES; i++) {
		__asm__ volatile("rdrand %0; setc %1" : "=r"(*out), "=qm"(ok));
		if (ok)
			return 0;
	}
	return -1;
}

/* 64 bits from TSC jitter: 256 timed iterations of a loop whose duration varies with cache, interrupt and
 * emulator state; SipHash compresses the deltas (keyed with the previous output, so the chain accumulates). */
static int random_jitter(uint64_t *out)
{
	static struct siphash_key chain;
	static volatile uint8_t scratch[4096];
	uint64_t deltas[256];
	uint64_t t = rdtsc();

	for (unsigned i = 0; i < 256; i++) {
		for (unsigned j = 0; j < 64; j++)
			scratch[(i * 67 + j * 131 + (unsigned)t) & (sizeof(scratch) - 1)]++;
		uint64_t now = rdtsc();
		deltas[i] = now - t;
		t = now;
	}
	*out = siphash24(&chain, deltas, sizeof(deltas));
	chain.k0 ^= *out;
	chain.k1 += t;
	return 0;
}

static void random_select(void);

/* The platform half of newlib's arc4random (declared in <sys/unistd.h>): at most 256 bytes per call. */
int getentropy(void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t w;

	if (len > 256) {
		errno = EIO;
		return -1;
	}
	if (!random_hw_read)
		random_select();
	while (len) {
		if (random_hw_read(&w) && random_jitter(&w)) {
			errno = EIO;
			return -1;
		}
		size_t n = len < sizeof(w) ? len : sizeof(w);
		memcpy(p, &w, n);
		p += n;
		len -= n;
	}
	return 0;
}

/* Chooses the best source the CPU offers (probing that it delivers, not only that CPUID lists it). */
static void random_select(void)
{
	struct cpuid_regs r0 = cpuid(0, 0), r;
	uint64_t probe;

	random_hw_read = random_jitter;
	random_source = "TSC jitter";
	if (r0.eax >= 7 && ((r = cpuid(7, 0)).ebx & (1u << 18)) && !random_rdseed(&probe)) {
		random_hw_read = random_rdseed;
		random_source = "RDSEED";
	} else if ((cpuid(1, 0).ecx & (1u << 30)) && !random_rdrand(&probe)) {
		random_hw_read = random_rdrand;
		random_source = "RDRAND";
	}
}

void random_init(void)
{
	random_select();
	/* The first arc4random() call keys the generator now, not inside a network callback later. */
	(void)arc4random();
	printf("random: arc4random (ChaCha20) keyed from %s\n", random_source);
}

uint32_t random_u32(void) { return arc4random(); }

void random_bytes(void *buf, size_t len) { arc4random_buf(buf, len); }
