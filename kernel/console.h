/* A line-oriented command console on the serial port, for people and for the system tests ("stats",
 * "reset", ...). Read by polling on timer ticks; no interrupt needed. */
#ifndef CONSOLE_H
#define CONSOLE_H

typedef void (*console_cmd_fn)(int argc, char **argv);

int console_register(const char *name, console_cmd_fn fn, const char *help);
void console_init(void);

#endif
