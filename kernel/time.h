/* Time: the TSC as the clock (frequency from CPUID or calibrated at boot), and the LAPIC timer tick. */
#ifndef TIME_H
#define TIME_H

#include <stdint.h>

extern uint64_t tsc_hz;
extern uint64_t tsc_boot; /* TSC when the kernel started */
extern const char *tsc_source; /* how tsc_hz was found */
extern const char *tsc_check;  /* what it was checked against */
extern uint64_t tsc_check_hz;  /* the TSC rate that check gave */
extern uint64_t tsc_calib_ns;  /* how long the calibration took */
extern uint64_t lapic_calib_hz; /* the LAPIC timer's count rate (divide by 16) over the same window */

int tsc_init(void);

/* TSC ticks to nanoseconds, without division (multiply-shift with a factor computed once). */
uint64_t tsc_to_ns(uint64_t ticks);
uint64_t ns_to_tsc(uint64_t ns);
/* Nanoseconds since kernel start. */
uint64_t time_ns(void);

/* Busy-waits for ns nanoseconds (boot-time calibration only). */
void tsc_delay_ns(uint64_t ns);

/* Coarse time in ticks of 1/timer_hz (hz=), counted from the TSC, not by interrupts: there is no periodic
 * tick. Brought up to date at every main-loop round and timer interrupt (timer_tick_update); a poller that
 * needs to run at the next tick asks for it with timer_wake_at(timer_tick_tsc(timer_ticks + 1)). */
extern volatile uint64_t timer_ticks;
extern unsigned timer_hz;
extern uint64_t timer_wakeups; /* timer interrupts that woke the main loop */
extern uint64_t timer_early;   /* ... and that came before their TSC deadline: re-armed for the rest */
void timer_tick_update(void);
/* The TSC at which tick number `tick` begins. */
uint64_t timer_tick_tsc(uint64_t tick);

/* The length of n ticks in TSC counts. */
uint64_t timer_ticks_len(uint64_t n);

/* Asks for the main loop to be woken at TSC time tsc. A request lasts for the main-loop round it is made in:
 * every user asks from its poller at each round for as long as its deadline stands, and the loop arms the
 * timer, before it halts, for the earliest deadline asked for since the round began (timer_arm_next). So a
 * deadline that moves later (a transmit completion that came, a refill that happened) stops costing a
 * wake-up at once, and one that is no longer asked for is dropped. */
void timer_wake_at(uint64_t tsc);

/* The main loop's side of timer_wake_at: at the start of each round, and with interrupts off just before it
 * halts (arming, re-arming or stopping the timer only when the earliest deadline changed). */
void timer_round_begin(void);
void timer_arm_next(void);

#endif
