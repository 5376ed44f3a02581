/* I/O APIC: routes a global system interrupt (GSI) to a LAPIC vector. Used for PCI INTx when a device has no
 * MSI-X. */
#ifndef IOAPIC_H
#define IOAPIC_H

#include <stdint.h>

int ioapic_init(void);
/* level: level-triggered (PCI INTx) vs edge; low: active-low (PCI INTx) vs active-high. */
int ioapic_route(uint32_t gsi, uint8_t vector, int level, int low);
void ioapic_mask(uint32_t gsi, int masked);
/* Whether a level-triggered interrupt from gsi is being serviced (delivered, no EOI yet): inside a handler,
 * which of the shared lines fired. */
int ioapic_in_service(uint32_t gsi);

#endif
