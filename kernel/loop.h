/* The main loop: run every poller until none has work, then halt until an interrupt. */
#ifndef LOOP_H
#define LOOP_H

#include <stdint.h>

/* A poller does a bounded amount of work and returns nonzero if it has more (it is then called again before
 * the CPU halts). */
typedef int (*loop_poll_fn)(void *ctx);

int loop_add_poller(const char *name, loop_poll_fn fn, void *ctx);

/* From interrupt handlers: there is work, do not halt. */
void loop_kick(void);

void loop_run(void) __attribute__((noreturn));

/* TSC ticks spent halted, and the TSC when loop_run started. */
extern uint64_t loop_idle_tsc;
extern uint64_t loop_start_tsc;
/* Halts so far, and the longest (TSC ticks): with the tickless timer an idle guest halts far longer than a
 * tick (test=idle). */
extern uint64_t loop_halts;
extern uint64_t loop_max_halt_tsc;

#endif
