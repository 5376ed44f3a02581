/* Kernel-wide entry points, the image's linker symbols and the exit/panic paths. */
#ifndef KERNEL_H
#define KERNEL_H

#include <stdint.h>

#include "boot_info.h"

#define KERNEL_NAME "vnetk"
#define KERNEL_VERSION "0.1"

/* Values written to QEMU's isa-debug-exit port in test mode; QEMU exits with status 2*value+1.
 * Exceptions exit with KEXIT_EXCEPTION_BASE + vector, so each vector has its own status. No code maps to
 * status 1, which QEMU itself uses when it fails to start: a broken run can never look like a pass. */
enum kernel_exit_code {
	KEXIT_PASS = 0x10,           /* status 33 */
	KEXIT_FAIL = 0x11,           /* status 35 */
	KEXIT_PANIC = 0x12,          /* status 37 */
	KEXIT_EXCEPTION_BASE = 0x20, /* status 65 + 2*vector */
};

extern char _kernel_start[], _kernel_end[], __bss_start[], __bss_end[], __text_start[], __text_end[];
extern char boot_stack_top[], boot_stack_guard[];

void kernel_start(const struct boot_info *bi) __attribute__((noreturn));
/* Never inlined (link-time optimisation would fold it into kernel_start): stack traces end in it. */
void kernel_main(const struct boot_info *bi) __attribute__((noreturn, noinline));

/* Console before newlib is usable: raw serial. */
void early_console_init(void);
void early_fatal(const char *msg) __attribute__((noreturn));

/* True when the command line asked for a test: failures then exit QEMU instead of halting. */
extern int kernel_test_mode;

void kernel_exit(int code) __attribute__((noreturn));
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
