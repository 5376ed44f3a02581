#ifndef SELFTEST_H
#define SELFTEST_H

/* Runs the self-test named by test= (kernel/cmdline.c lists them). Tests that need the main loop register a
 * poller and return; the others exit QEMU themselves. */
void selftest_start(const char *name);

#endif
