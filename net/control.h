/* Run-time control of the network path, shared by the serial console and the status service (UDP 7007):
 *   stats | reset | hist [buckets|reset] | mode irq|napi|poll|coalesce [BUDGET] | coalesce FRAMES USEC |
 *   consumer lwip|noop | trace on|off|START
 * Every command answers with text (the counters, or "error: ..."). */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>

size_t net_control(const char *cmd, char *out, size_t len);

#endif
