#ifndef SERIAL_H
#define SERIAL_H

#include <stddef.h>

void serial_init(void);
void serial_write(const char *buf, size_t len);
/* Non-blocking: returns -1 when no byte is waiting. */
int serial_getc(void);

#endif
