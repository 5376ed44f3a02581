/* Run-time control of the network path, shared by the serial console and the status service (UDP/TCP 7007).
 * Every command answers with text (the counters, or "error: ..."); control_commands lists them with their
 * help. Knob values are checked against the kernel's knob table (kernel/cmdline.c), so the command line and
 * the control language accept exactly the same values. */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>

struct control_command {
	const char *name;
	const char *help;
};

/* NULL-terminated. */
extern const struct control_command control_commands[];

size_t net_control(const char *cmd, char *out, size_t len);

#endif
