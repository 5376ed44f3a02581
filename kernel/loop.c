#include "loop.h"

#include <errno.h>

#include "cpu.h"
#include "time.h"

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
uint64_t loop_halts;
uint64_t loop_max_halt_tsc;

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
		timer_tick_update();
		timer_round_begin();
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
		/* No periodic tick: the halt lasts until the earliest deadline a poller asked for this round
		 * (timer_wake_at) or a device interrupt. */
		timer_arm_next();
		uint64_t t0 = rdtsc();
		/* Halt until an interrupt handler kicks the loop. One that did not (the timer ending before its
		 * deadline and re-arming itself, a shared line's interrupt for another device) leaves nothing to
		 * poll, so the halt goes on without a round. */
		for (;;) {
			sti_hlt();
			cli();
			if (loop_pending)
				break;
		}
		sti();
		uint64_t halted = rdtsc() - t0;
		loop_idle_tsc += halted;
		loop_halts++;
		if (halted > loop_max_halt_tsc)
			loop_max_halt_tsc = halted;
	}
}
