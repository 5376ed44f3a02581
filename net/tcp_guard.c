/* What lwIP 2.1.3 does not do when a SYN reaches a listener.
 *
 * lwIP keeps a pcb for every SYN it answers (SYN_RCVD) until the handshake completes or TCP_SYN_RCVD_TIMEOUT
 * (20 s) passes, and takes it from the same pool as established connections. tcp_alloc() only reclaims pcbs of a
 * lower priority than the new one, never a half-open pcb of the same priority, and tcp_listen_input() drops a
 * SYN it has no pcb for without a word. So SYNs from addresses that never answer (spoofed, or a host that died)
 * filled the pool and locked every new connection out for 20 s (test_robustness.py LWIP_SPOOFED_SYNS;
 * test_tcp_hardening.py's SYN flood), and a guest full of idle connections timed its clients out instead of
 * refusing them.
 *
 * This runs as lwIP's LWIP_HOOK_TCP_INPACKET_PCB, which tcp_input() calls for a segment addressed to a listening
 * pcb right before tcp_listen_input(): at that point lwIP has checked the checksum and found no connection for
 * the 4-tuple, so a SYN here is a new connection request. Dropping another pcb from here is what tcp_alloc()
 * itself does from inside tcp_listen_input() (tcp_kill_prio()), so no list walk of tcp_input() is disturbed. */
#include "tcp_guard.h"

#include <stdio.h>

#include "lwip/ip.h"
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip_hooks.h"

#include "cmdline.h"

_Static_assert(CMDLINE_TCP_CONNS_MAX <= TCP_CONNS_MAX, "tcp_conns= may ask for more pcbs than lwIP's pool holds");

struct tcp_guard_stats tcp_guard_stats;
unsigned tcp_guard_max_conns = TCP_CONNS_MAX;

void tcp_guard_init(unsigned max_conns)
{
	tcp_guard_max_conns = max_conns && max_conns <= TCP_CONNS_MAX ? max_conns : TCP_CONNS_MAX;
	printf("tcp: up to %u connections + %u half-open; pcb pool %u x %u bytes = %u KiB static (pool for %u)\n",
	       tcp_guard_max_conns, TCP_SYN_BACKLOG, (unsigned)MEMP_NUM_TCP_PCB,
	       (unsigned)LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_pcb)),
	       (unsigned)(MEMP_NUM_TCP_PCB * LWIP_MEM_ALIGN_SIZE(sizeof(struct tcp_pcb)) / 1024), TCP_CONNS_MAX);
}

/* One walk of the active list: the counts, and the oldest half-open pcb (lwIP pushes new pcbs at the head, so
 * the last SYN_RCVD pcb in the list is the oldest). */
static struct tcp_pcb *tcp_guard_scan(struct tcp_guard_counts *c)
{
	struct tcp_pcb *oldest = NULL;

	c->conns = c->syn_rcvd = c->time_wait = 0;
	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
		if (pcb->state == SYN_RCVD) {
			c->syn_rcvd++;
			oldest = pcb;
		} else {
			c->conns++;
		}
	}
	for (struct tcp_pcb *pcb = tcp_tw_pcbs; pcb; pcb = pcb->next)
		c->time_wait++;
	return oldest;
}

void tcp_guard_count(struct tcp_guard_counts *c) { (void)tcp_guard_scan(c); }

err_t tcp_guard_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, u8_t *opt2,
			 struct pbuf *p)
{
	struct tcp_guard_counts c;
	struct tcp_pcb *oldest;
	(void)optlen;
	(void)opt1len;
	(void)opt2;
	(void)p;

	if (pcb->state != LISTEN || (TCPH_FLAGS(hdr) & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
		return ERR_OK;
	oldest = tcp_guard_scan(&c);
	if (c.syn_rcvd >= TCP_SYN_BACKLOG && oldest) {
		/* No RST: the peer of a pcb that waited this long is most likely an address nobody owns, and a
		 * genuine peer that answers late gets a RST from the listener for its ACK anyway. */
		tcp_abandon(oldest, 0);
		tcp_guard_stats.syn_evicted++;
	}
	if (c.conns >= tcp_guard_max_conns) {
		/* tcp_input() has converted the header to host order. The RST acknowledges the SYN, as RFC 793
		 * asks of a closed port, so the client's connect() fails at once with "connection refused". */
		tcp_rst(pcb, 0, hdr->seqno + 1, ip_current_dest_addr(), ip_current_src_addr(), hdr->dest, hdr->src);
		tcp_guard_stats.refused++;
		return ERR_ABRT;
	}
	return ERR_OK;
}
