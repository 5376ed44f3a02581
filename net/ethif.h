/* The lwIP network interface over any NIC behind the netdev interface (kernel/netdev.h), in the shape of
 * lwIP's ethernetif skeleton: init, low-level output (linkoutput) and input through netif->input. */
#ifndef ETHIF_H
#define ETHIF_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/netif.h"

struct netdev;

/* Guest-side copies, with their reasons: the receive path is zero-copy unless the buffer pool runs low. */
struct ethif_stats {
	uint64_t rx_zero_copy_frames; /* handed to lwIP in the buffer the device wrote */
	uint64_t rx_copied_frames, rx_copied_bytes; /* copied out because few ring buffers were left */
	uint64_t rx_dropped_nomem;    /* no pbuf for a frame that had to be copied, or input refused */
	uint64_t tx_zero_copy_frames; /* sent from lwIP's own pbufs */
	uint64_t tx_rx_buf_reused;    /* ... of which replies built in their request's receive buffer */
	uint64_t tx_copied_frames, tx_copied_bytes; /* chains longer than the descriptors allowed per frame */
	uint64_t tx_dropped_full;     /* transmit ring full: lwIP sees ERR_MEM and retries (TCP) or drops (UDP) */
	uint64_t tx_dropped_nomem;
	uint64_t rx_refused_ipv6;     /* nested IPv6 fragments and sub-minimum Packet Too Big (ip6_guard.h) */
	uint64_t tx_tcp_resumed;      /* times output refused by a full ring was retried as soon as it had room */
	uint64_t rx_csum_trusted;     /* frames whose TCP/UDP checksum lwIP skipped (device: valid or partial) */
	uint64_t rx_csum_untrusted;   /* frames with such a flag that lwIP verified anyway (fragments, others) */
	uint64_t rx_csum_bad;         /* frames lwIP dropped for a bad checksum (IP header, ICMP, UDP, TCP) */
	uint64_t tx_csum_requested;   /* TCP segments and UDP datagrams sent with a partial checksum for the NIC
				       * to complete */
	uint64_t rx_gso_to_ip;        /* super-segments handed to IP input directly (Ethernet header left out) */
	uint64_t rx_gso_not_ip;       /* ... of which neither IPv4 nor IPv6: dropped */
	uint64_t rx_too_long;         /* frames longer than a pbuf chain can describe: dropped */
};

struct ethif {
	struct netif netif;
	struct netdev *nd;
	struct ethif_stats stats;
	/* What the status callback printed last, so each address is announced once. */
	uint32_t shown_ip4, shown_gw4;
	uint8_t shown_ip6; /* bit per valid IPv6 address slot */
	int tx_refused;    /* the ring refused a frame since the last tx_space */
	int tx_csum;       /* the NIC completes TCP (and hinted UDP) checksums: lwIP leaves them out */
};

/* Adds an lwIP netif for nd and attaches it as nd's consumer. ip is "ADDR/PREFIX", "dhcp" or "" (no IPv4);
 * gw may be "". ipv6: link-local plus SLAAC. Returns NULL (and logs why) on failure. */
struct ethif *ethif_add(struct netdev *nd, const char *ip, const char *gw, int ipv6, int is_default);

/* Before a udp_send*() of a datagram of len payload bytes to dst that will leave through out (for a reply,
 * ip_current_input_netif()): lets the NIC complete its checksum when it can do so in one frame (IPv4,
 * unfragmented, out offloads checksums), and has lwIP compute it otherwise. Sets or clears the pcb's
 * UDP_FLAGS_NOCHKSUM. */
struct udp_pcb;
void ethif_udp_csum_hint(struct udp_pcb *pcb, const ip_addr_t *dst, u16_t len, const struct netif *out);

size_t ethif_format_stats(struct ethif *e, char *buf, size_t len);
void ethif_reset_stats(struct ethif *e);

/* noop: frames are counted by the driver and their buffers recycled at once, without lwIP (the receive
 * ceiling of device and driver alone). */
void ethif_set_noop(struct ethif *e, int noop);

#endif
