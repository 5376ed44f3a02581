/* Admission control for new TCP connections, in front of lwIP 2.1.3's listen path: at most TCP_SYN_BACKLOG
 * half-open connections (the oldest is dropped for a new SYN), and at most `max_conns` others (a SYN beyond them
 * is answered with RST). */
#ifndef TCP_GUARD_H
#define TCP_GUARD_H

#include <stdint.h>

struct tcp_guard_stats {
	uint64_t syn_evicted; /* half-open connections dropped to make room for a newer SYN */
	uint64_t refused;     /* SYNs answered with RST because max_conns connections exist */
};

struct tcp_guard_counts {
	unsigned conns;     /* pcbs past SYN_RCVD, not in TIME_WAIT: what max_conns limits */
	unsigned syn_rcvd;  /* half-open */
	unsigned time_wait;
};

extern struct tcp_guard_stats tcp_guard_stats;
extern unsigned tcp_guard_max_conns;

/* Sets the connection limit (clamped to what lwIP's static pcb pool holds) and prints the memory it costs. */
void tcp_guard_init(unsigned max_conns);
void tcp_guard_count(struct tcp_guard_counts *c);

#endif
