/* Local APIC: xAPIC through MMIO, x2APIC through MSRs where the CPU has it; the timer and EOI. */
#ifndef LAPIC_H
#define LAPIC_H

#include <stdint.h>

int lapic_init(uint64_t mmio_base);
void lapic_eoi(void);
uint32_t lapic_id(void);

/* tsc_init's calibration window: the timer counts down from 0xFFFFFFFF (divide by 16, masked). */
void lapic_calibrate_begin(void);
uint32_t lapic_calibrate_read(void);
void lapic_calibrate_end(void);

/* The one-shot wake-up timer on VECTOR_TIMER (timer_wake_at), counting at rate Hz (after the divider, as
 * tsc_init measured it); hz sets the length of a timer_ticks tick. */
int lapic_timer_start(unsigned hz, uint64_t rate);

#endif
