#ifndef SERIAL_H
#define SERIAL_H

#include <stddef.h>

void serial_init(void);
void serial_write(const char *buf, size_t len);
/* Non-blocking: returns -1 when no byte is waiting. */
int serial_getc(void);
/* Interrupt on received data (ISA IRQ 4); the handler must read until serial_getc returns -1, or the line
 * stays raised and no further edge comes. */
void serial_rx_irq_enable(void);

#endif
