#include "loop.h"

#include <errno.h>

#include "cpu.h"

#define LOOP_POLLERS_MAX 16

static struct {
	const char *name;
	loop_poll_fn fn;
	void *ctx;
} loop_pollers[LOOP_POLLERS_MAX];
static unsigned loop_npollers;
static volatile int loop_pending;
uint64_t loop_idle_tsc;
uint64_t loop_start_tsc;

int loop_add_poller(const char *name, loop_poll_fn fn, void *ctx)
{
	if (loop_npollers == LOOP_POLLERS_MAX)
		return -ENOSPC;
	loop_pollers[loop_npollers].name = name;
	loop_pollers[loop_npollers].fn = fn;
	loop_pollers[loop_npollers].ctx = ctx;
	loop_npollers++;
	return 0;
}

void loop_kick(void) { loop_pending = 1; }

void loop_run(void)
{
	loop_start_tsc = rdtsc();
	for (;;) {
		int more = 0;

		loop_pending = 0;
		/* Every poller gets a turn each round, so one busy source (a flooded NIC) cannot starve timers. */
		for (unsigned i = 0; i < loop_npollers; i++)
			more |= loop_pollers[i].fn(loop_pollers[i].ctx);
		if (more)
			continue;

		/* Check and halt with interrupts off: an interrupt that sets loop_pending after the check is held
		 * until "sti; hlt", whose one-instruction shadow makes the halt itself the wake-up point. */
		cli();
		if (loop_pending) {
			sti();
			continue;
		}
		uint64_t t0 = rdtsc();
		sti_hlt();
		loop_idle_tsc += rdtsc() - t0;
	}
}
