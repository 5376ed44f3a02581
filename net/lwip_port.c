/* What lwIP needs from the platform (NO_SYS=1): a millisecond clock, assertions and random numbers. */
#include <stdio.h>

#include "cpu.h"
#include "kernel.h"
#include "lwip/arch.h"
#include "time.h"

u32_t sys_now(void);

u32_t sys_now(void) { return (u32_t)(time_ns() / 1000000ull); }

void lwip_port_assert(const char *msg, const char *file, int line)
{
	panic("lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
}

/* Not cryptographic: lwIP uses it for ports, ISNs, DHCP xids. Seeded from the TSC, mixed by xorshift64*. */
uint32_t lwip_port_rand(void)
{
	static uint64_t s;

	if (!s)
		s = rdtsc() | 1;
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return (uint32_t)((s * 0x2545F4914F6CDD1Dull) >> 32);
}
