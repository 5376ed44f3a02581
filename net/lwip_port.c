/* What lwIP needs from the platform (NO_SYS=1): a millisecond clock, assertions and random numbers. */
#include <stdio.h>

#include "kernel.h"
#include "lwip/arch.h"
#include "random.h"
#include "time.h"

u32_t sys_now(void);

u32_t sys_now(void) { return (u32_t)(time_ns() / 1000000ull); }

void lwip_port_assert(const char *msg, const char *file, int line)
{
	panic("lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
}

/* lwIP draws ephemeral ports, DHCP transaction ids and IPv6 timers from it: none of them may be guessable by
 * another host on the link (a guessed DHCP xid lets it answer for the server). */
uint32_t lwip_port_rand(void) { return random_u32(); }
