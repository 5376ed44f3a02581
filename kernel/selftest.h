#ifndef SELFTEST_H
#define SELFTEST_H

/* Runs the self-test named by test= (kernel/cmdline.c lists them). Tests that need the main loop register a
 * poller and return; the others exit QEMU themselves. Never inlined (link-time optimisation would fold it
 * into kernel_start): a fault a test provokes shows selftest_start in its stack trace. */
__attribute__((noinline)) void selftest_start(const char *name);

#endif
