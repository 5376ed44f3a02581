/* rawtx: the AF_PACKET path of tools/load. A paced UDP socket tops out near the guest's own receive rate under
 * TCG (each datagram crosses the host's UDP, IP, neighbour and qdisc layers), so the receive-rate curve never
 * got past the guest's knee. rawtx writes whole Ethernet frames to the interface with PACKET_QDISC_BYPASS:
 * the frames are built once, only the sequence number changes, and the kernel hands each straight to the
 * driver (the tap). Frame building is split from the socket so that a unit test can check it. */
#ifndef TOOLS_RAWTX_H
#define TOOLS_RAWTX_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define RAWTX_HDR_LEN (14 + 20 + 8) /* Ethernet + IPv4 without options + UDP */

struct rawtx_flow {
	uint8_t dst_mac[6], src_mac[6];
	struct in_addr src, dst;
	uint16_t sport, dport;
};

/* The IPv4 header checksum (RFC 791) of len bytes: the ones'-complement of the ones'-complement sum. */
uint16_t rawtx_csum(const void *data, size_t len);

/* Writes an Ethernet/IPv4/UDP frame with payload bytes of zeros for flow into buf (at least RAWTX_HDR_LEN +
 * payload bytes); the UDP checksum is 0 (none, allowed over IPv4), so the payload can change without
 * touching the headers. Returns the frame length, or 0 if payload does not fit one IPv4 datagram. */
size_t rawtx_build(uint8_t *buf, const struct rawtx_flow *flow, unsigned payload, uint16_t ip_id);

/* Parses "aa:bb:cc:dd:ee:ff" into mac; 0, or -1 if it is not one. */
int rawtx_parse_mac(const char *s, uint8_t mac[6]);

/* An AF_PACKET socket bound to ifname with PACKET_QDISC_BYPASS; fills flow->src_mac and flow->src (the
 * interface's first IPv4 address) from the interface. Returns the socket, or -1 with one line on stderr. */
int rawtx_open(const char *ifname, struct rawtx_flow *flow);

#endif
