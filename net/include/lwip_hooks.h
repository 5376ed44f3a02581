/*
 * lwip_hooks.h -- the kernel's lwIP hooks (LWIP_HOOK_FILENAME in lwipopts.h). lwIP includes this file from
 * several of its sources after its own headers; it only declares the functions the hook macros name.
 */
#ifndef NET_LWIP_HOOKS_H
#define NET_LWIP_HOOKS_H

#include "lwip/arch.h"
#include "lwip/err.h"
#include "lwip/ip_addr.h"

struct tcp_pcb;
struct tcp_hdr;
struct pbuf;

/* RFC 6528 initial sequence number (net/tcp_isn.c). */
u32_t tcp_isn_hook(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip, u16_t remote_port);

/* Admission control for segments to listening pcbs (net/tcp_guard.c). */
err_t tcp_guard_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, u8_t *opt2,
			 struct pbuf *p);

#endif
