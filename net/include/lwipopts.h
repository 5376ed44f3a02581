/*
 * lwipopts.h -- lwIP 2.1.3 configuration for the unikernel.
 *
 * One core, no threads: lwIP runs in the kernel's main loop (NO_SYS=1, the
 * raw/callback API), which feeds received frames to netif->input and calls
 * sys_check_timeouts(). The kernel provides u32_t sys_now(void) (ms),
 * lwip_port_rand() and lwip_port_assert() (see arch/cc.h).
 *
 * Every option not set here keeps lwIP's default from lwip/opt.h.
 */
#ifndef NET_LWIPOPTS_H
#define NET_LWIPOPTS_H

/* ---- system model ------------------------------------------------------ */
#define NO_SYS                          1   /* no OS threads, no sys_arch mbox/sem */
#define LWIP_TIMERS                     1   /* lwIP's timeout list; kernel calls sys_check_timeouts() */
#define SYS_LIGHTWEIGHT_PROT            0   /* single core and lwIP only runs in the main loop
                                               (never from an interrupt handler): the kernel masks
                                               interrupts itself where it shares data with ISRs */
#define LWIP_NETCONN                    0   /* sequential APIs need threads */
#define LWIP_SOCKET                     0

/* ---- memory ------------------------------------------------------------ */
/* x86_64: 8-byte alignment keeps u64_t/pointers in pbufs and pools aligned. */
#define MEM_ALIGNMENT                   8
/* lwIP's heap (mem_malloc): PBUF_RAM buffers, i.e. every TCP segment written
 * with TCP_WRITE_FLAG_COPY, TX headers of no-copy writes, ARP/ND queued
 * packets and lwiperf's state. 256 KiB holds ~10 full TCP send buffers
 * (TCP_SND_BUF = 23 KiB each) with room to spare; RAM is not scarce here. */
#define MEM_SIZE                        (256 * 1024)

/* RX buffers: the NIC driver allocates received frames from this pool. 256
 * buffers cover a 256-entry receive ring, or the full advertised TCP window
 * (16 segments) of several connections plus reassembly, without drops. */
#define PBUF_POOL_SIZE                  256
/* One whole Ethernet frame per pool buffer (1514 bytes, 1518 with a VLAN
 * tag), rounded up to a cache-line multiple: received frames are never
 * chained, which keeps the driver's RX path to one pbuf per descriptor. */
#define PBUF_POOL_BUFSIZE               1536

/* Room for the NIC driver's own per-frame header in front of every frame lwIP builds (virtio-net's 12-byte
 * header), so the driver sends header and frame as one piece (netdev tx_headroom, ethif_linkoutput): one
 * descriptor fewer per frame, and no header slot to manage. */
#define PBUF_LINK_ENCAPSULATION_HLEN    12

/* pbuf headers for PBUF_ROM/PBUF_REF: TCP no-copy writes (lwiperf sends its
 * payload that way) take one per segment, so allow a full send queue
 * (TCP_SND_QUEUELEN) of two connections. */
#define MEMP_NUM_PBUF                   (2 * TCP_SND_QUEUELEN)

/* protocol control blocks */
#define MEMP_NUM_RAW_PCB                4    /* ping tools, tests */
#define MEMP_NUM_UDP_PCB                8    /* DHCP + a few app sockets */
/* TCP connections: tcp_conns= (kernel/cmdline.c, default 1024) sets how many are held at once, up to
 * TCP_CONNS_MAX; net/tcp_guard.c keeps TCP_SYN_BACKLOG half-open ones besides and answers a SYN beyond both with
 * RST. The pool is static (a pcb is 280 bytes on x86_64: 2192 of them are ~600 KiB of .bss, printed at boot);
 * 16 more cover pcbs the guard does not count (lwiperf's, TIME_WAIT until lwIP reclaims them). */
#define TCP_CONNS_MAX                   2048
#define TCP_SYN_BACKLOG                 128
#define MEMP_NUM_TCP_PCB                (TCP_CONNS_MAX + TCP_SYN_BACKLOG + 16)
#define MEMP_NUM_TCP_PCB_LISTEN         8    /* listening ports */

/* ---- protocols ---------------------------------------------------------- */
#define LWIP_IPV4                       1
#define LWIP_IPV6                       1
/* On a 64-bit target lwIP's reassembly helper (two pointers) no longer fits in the 8-byte fragment header it
 * overlays, so reassembly must copy the header aside (lwIP asserts this at run time). */
#define IPV6_FRAG_COPYHEADER            1
/* IPv4 datagrams up to 65535 bytes both ways (ping -s 65507: 45 fragments at MTU 1500). lwIP's defaults (10
 * pbufs awaiting reassembly, 15 fragments in flight) refused them without a trace. Reassembly stays bounded:
 * at most IP_REASS_MAX_PBUFS fragments are held over all datagrams (each is one receive buffer, zero-copy), the
 * oldest incomplete datagram is dropped for a new one, and a datagram not complete after IP_REASS_MAXAGE
 * seconds is dropped, so a fragment flood holds at most 96 of the driver's 512 receive buffers (the same bound
 * applies to IPv6 reassembly separately). opt.h asks PBUF_POOL_SIZE > 2 * IP_REASS_MAX_PBUFS (256 > 192). */
#define IP_REASS_MAX_PBUFS              96
#define IP_REASS_MAXAGE                 5
/* Fragments of outgoing datagrams reference the datagram (PBUF_REF) until the device has read them: a 64 KiB
 * reply is 45 of them, and a UDP echo and a ping reply may be in flight at once. */
#define MEMP_NUM_FRAG_PBUF              128
#define LWIP_ARP                        1
#define LWIP_ETHERNET                   1
#define LWIP_ICMP                       1
/* No raw pcbs here: with them on, every received IP packet also walked the (empty) raw pcb list, ~35 guest
 * instructions of the ~1300 a UDP datagram costs. */
#define LWIP_RAW                        0
#define LWIP_UDP                        1
#define LWIP_TCP                        1
#define LWIP_DHCP                       1
#define LWIP_AUTOIP                     0
#define LWIP_DHCP_AUTOIP_COOP           0
#define LWIP_IGMP                       0
#define LWIP_DNS                        0

/* ---- TCP ---------------------------------------------------------------- */
/* Ethernet MTU 1500 - 20 (IPv4) - 20 (TCP). IPv6 connections derive a smaller
 * effective MSS from the netif MTU (TCP_CALCULATE_EFF_SEND_MSS, default on). */
#define TCP_MSS                         1460
/* 64 segments (~91 KiB) with window scaling: a TCG guest answers slowly, so a sender needs a large window
 * in flight to keep the virtual link busy (16 segments held iperf2 near 80 Mbit/s). Out-of-order segments
 * held for that window are receive-ring buffers (zero-copy receive), which the driver's pool (twice the
 * ring) has room for. */
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   2
#define TCP_WND                         (64 * TCP_MSS)
/* Same size as the window so one connection can fill the peer's window. */
#define TCP_SND_BUF                     (16 * TCP_MSS)
/* pbufs queued per connection: lwIP's rule of thumb (4 per MSS of send
 * buffer, = 64), since a no-copy write uses a header pbuf plus a data pbuf;
 * init.c requires >= 2 * TCP_SND_BUF / TCP_MSS (= 32). */
#define TCP_SND_QUEUELEN                ((4 * TCP_SND_BUF + (TCP_MSS - 1)) / TCP_MSS)
/* tcp_seg structures: one connection's full send queue plus out-of-order
 * segments held for a full receive window (TCP_QUEUE_OOSEQ), times two for a
 * second busy connection. init.c requires >= TCP_SND_QUEUELEN. */
#define MEMP_NUM_TCP_SEG                (2 * (TCP_SND_QUEUELEN + TCP_WND / TCP_MSS))

/* Hooks (net/include/lwip_hooks.h): RFC 6528 initial sequence numbers instead of lwIP's counter
 * (net/tcp_isn.c), and admission control in front of tcp_listen_input() (net/tcp_guard.c). */
#define LWIP_HOOK_FILENAME              "lwip_hooks.h"
#define LWIP_HOOK_TCP_ISN               tcp_isn_hook
#define LWIP_HOOK_TCP_INPACKET_PCB      tcp_guard_inpacket

/* ---- netif ------------------------------------------------------------- */
#define LWIP_SINGLE_NETIF               0   /* the NIC plus possibly loopback/test netifs */
#define LWIP_NETIF_LINK_CALLBACK        1   /* the NIC driver reports link up/down */
#define LWIP_NETIF_STATUS_CALLBACK      1   /* kernel learns when DHCP has bound an address */
/* Per-netif checksum generation/checking, so a NIC with checksum offload
 * (transmit/receive checksum offload) can switch lwIP's off. */
#define LWIP_CHECKSUM_CTRL_PER_NETIF    1

/* ---- IPv6 -------------------------------------------------------------- */
/* Link-local address at link up, and stateless autoconfiguration (SLAAC) from router advertisements. */
#define LWIP_IPV6_AUTOCONFIG            1
#define LWIP_IPV6_NUM_ADDRESSES         3
#define LWIP_ICMP6                      1
#define LWIP_IPV6_MLD                   1

/* ---- ARP --------------------------------------------------------------- */
/* Queue a few packets per unresolved neighbour instead of dropping all but the last (a UDP echo reply to a
 * host whose ARP entry expired would otherwise be lost). */
#define ARP_QUEUEING                    1
/* Room for neighbours that never answer. A SYN from a spoofed on-link address leaves an ARP entry pending with
 * the SYN-ACK queued on it, and lwIP recycles the oldest *stable* entry first when the table is full: at 2000
 * spoofed SYNs/s a 10-entry table dropped the entry (and the queued SYN-ACK) of a genuine client before its ARP
 * reply was processed, failing 7 % of its connects (test_tcp_hardening.py's SYN flood). 256 entries give a
 * pending entry ~128 ms at that rate; each costs 40 bytes, and one queued packet per entry needs a queue slot. */
#define ARP_TABLE_SIZE                  256
#define MEMP_NUM_ARP_QUEUE              (2 * ARP_TABLE_SIZE)

/* ---- statistics (exported by the kernel later) -------------------------- */
/* lwIP's third checksum loop (32 bits a step) rather than its default second (16 bits): a UDP echo's
 * software checksums (the reply's payload, both IPv4 headers) took ~40 guest instructions more with the second. */
#define LWIP_CHKSUM_ALGORITHM           3
/* The IPv4 header checksum summed field by field as ip4.c writes the header, instead of a second pass over
 * it (lwIP turns this off by default when checksums are controlled per netif, but its inline code honours
 * the netif's flag too): ~60 guest instructions less per datagram sent. */
#define LWIP_INLINE_IP_CHKSUM           1
#define LWIP_STATS                      1
#define LWIP_STATS_LARGE                1   /* 32-bit counters: 16-bit ones wrap within seconds of iperf */
#define LWIP_STATS_DISPLAY              1   /* stats_display() for debugging, via LWIP_PLATFORM_DIAG */
#define MIB2_STATS                      0

#endif /* NET_LWIPOPTS_H */
