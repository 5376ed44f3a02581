/* Time: the TSC as the clock (frequency from CPUID or calibrated at boot), and the LAPIC timer tick. */
#ifndef TIME_H
#define TIME_H

#include <stdint.h>

extern uint64_t tsc_hz;
extern uint64_t tsc_boot; /* TSC when the kernel started */
extern const char *tsc_source; /* how tsc_hz was found */

int tsc_init(void);

/* TSC ticks to nanoseconds, without division (multiply-shift with a factor computed once). */
uint64_t tsc_to_ns(uint64_t ticks);
uint64_t ns_to_tsc(uint64_t ns);
/* Nanoseconds since kernel start. */
uint64_t time_ns(void);

/* Busy-waits for ns nanoseconds (boot-time calibration only). */
void tsc_delay_ns(uint64_t ns);

/* Periodic ticks from the LAPIC timer. */
extern volatile uint64_t timer_ticks;
extern unsigned timer_hz;
extern uint64_t timer_wakeups;

/* Interrupts the CPU (waking the main loop) at TSC time tsc, if that is before the next tick. With several
 * requests pending, the earliest is kept (the others' callers are woken early and must ask again). */
void timer_wake_at(uint64_t tsc);

#endif
