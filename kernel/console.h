/* A line-oriented command console on the serial port, for people and for the system tests ("stats",
 * "reset", ...). Read on the UART's interrupt once console_irq_init has routed it (the idle loop then needs
 * no wake-ups for it), else polled once per timer tick. */
#ifndef CONSOLE_H
#define CONSOLE_H

typedef void (*console_cmd_fn)(int argc, char **argv);

int console_register(const char *name, console_cmd_fn fn, const char *help);
void console_init(void);
/* After the IOAPIC is up: input by interrupt. */
void console_irq_init(void);

#endif
