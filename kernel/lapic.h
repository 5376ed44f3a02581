/* Local APIC: xAPIC through MMIO, x2APIC through MSRs where the CPU has it; the timer and EOI. */
#ifndef LAPIC_H
#define LAPIC_H

#include <stdint.h>

int lapic_init(uint64_t mmio_base);
void lapic_eoi(void);
uint32_t lapic_id(void);

/* Periodic timer at hz on VECTOR_TIMER. Calibrated against the TSC (tsc_init first). */
int lapic_timer_start(unsigned hz);

#endif
