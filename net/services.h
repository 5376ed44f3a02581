/* Network services on lwIP's raw API: echo (RFC 862, UDP+TCP port 7), discard (RFC 863, port 9), an iperf2
 * server (lwiperf, TCP 5001) and a status/control service (UDP and TCP 7007, the language of net/control.h)
 * returning every counter as text. */
#ifndef SERVICES_H
#define SERVICES_H

#include <stddef.h>

#define SERVICE_ECHO_PORT 7
#define SERVICE_DISCARD_PORT 9
#define SERVICE_IPERF_PORT 5001
#define SERVICE_STATUS_PORT 7007

/* names: comma-separated subset of "echo,discard,iperf,status", "all" or "none". A TCP connection of the echo,
 * discard or status service that receives nothing for tcp_idle_s seconds is closed (0: never). */
int services_start(const char *names, unsigned tcp_idle_s);

/* Fills buf with every counter (drivers, netifs, lwIP, services); the status service and the console's
 * "stats" use it. Returns the length written (truncated to len-1). */
size_t services_format_status(char *buf, size_t len);
void services_reset_counters(void);

/* Starts lwiperf's client towards an iperf2 server at ADDR (on-link IPv4) and PORT (NULL: 5001); the text
 * answer (or "error: ...") goes to out. */
size_t services_iperf_client(const char *addr, const char *port, char *out, size_t len);

#endif
