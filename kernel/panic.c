/* Ways out: panic, early fatal errors and the QEMU exit used by tests. A guest must never hang silently:
 * each path says why on the serial port first. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "kernel.h"
#include "serial.h"

#define ISA_DEBUG_EXIT_PORT 0xf4

int kernel_test_mode;

void early_console_init(void) { serial_init(); }

void early_fatal(const char *msg)
{
	serial_write("FATAL: ", 7);
	serial_write(msg, strlen(msg));
	serial_write("\n", 1);
	/* Too early to know whether this is a test run: exit anyway, so a test never waits for its timeout.
	 * Without QEMU's debug-exit device nothing listens on the port and the CPU halts below. */
	outl(ISA_DEBUG_EXIT_PORT, KEXIT_PANIC);
	cpu_halt_forever();
}

void kernel_exit(int code)
{
	fflush(stdout);
	/* Only QEMU's isa-debug-exit device listens here; elsewhere the write is ignored and we halt. */
	outl(ISA_DEBUG_EXIT_PORT, (uint32_t)code);
	cpu_halt_forever();
}

void panic(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	cli();
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	serial_write("PANIC: ", 7);
	serial_write(buf, n < 0 ? 0 : (n >= (int)sizeof(buf) ? sizeof(buf) - 1 : (size_t)n));
	serial_write("\n", 1);
	if (kernel_test_mode)
		kernel_exit(KEXIT_PANIC);
	cpu_halt_forever();
}
