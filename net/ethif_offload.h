/* Checksum offload for the lwIP netif (net/ethif.c): which of lwIP's receive checks one frame may skip, and
 * the partial checksum a transmitted TCP segment carries when the NIC completes it.
 *
 * lwIP 2.1.3 can switch its checksum checks per netif (LWIP_CHECKSUM_CTRL_PER_NETIF) but not per packet. With
 * NO_SYS=1 a frame goes through netif->input synchronously, to the end of TCP/UDP input, before the next one
 * is looked at; so the netif clears the check flags this frame earned for exactly that call and restores them
 * after (ethif_rx). What lwIP keeps past the call was verified before it was kept (TCP's out-of-order queue
 * holds checked segments), except reassembly, which checks a datagram when its last fragment arrives: a
 * fragment therefore never earns anything (its flag would vouch for the whole datagram). */
#ifndef ETHIF_OFFLOAD_H
#define ETHIF_OFFLOAD_H

#include <stdint.h>

#include "lwip/pbuf.h"
#include "netdev.h"

/* The NETIF_CHECKSUM_CHECK_* flags lwIP may skip for this frame: TCP's or UDP's when the device vouched for
 * (DATA_VALID) or a local sender left partial (NEEDS_CSUM) the checksum of an unfragmented IPv4 datagram or
 * an IPv6 packet whose first next header is TCP or UDP; 0 otherwise. */
uint16_t ethif_rx_csum_trust(const struct netdev_rx_frame *f);

/* lwIP's checksum-failure counters summed (IPv4 header, ICMP, ICMPv6, UDP, TCP): their growth across one
 * frame's input says lwIP dropped it for a bad checksum. */
uint32_t ethif_chkerr_total(void);

/* For a frame lwIP built without a TCP checksum (NETIF_CHECKSUM_GEN_TCP off), or a UDP datagram whose checksum
 * field it left 0 (ethif_udp_csum_hint): stores the pseudo-header sum in the checksum field and fills *off for
 * the device. 1 if done; 0 if the frame is neither, or is fragmented, or its UDP checksum is already there
 * (it is then left as lwIP made it); -1 if its headers are split over pbufs, which the caller must make
 * contiguous first. */
int ethif_tx_csum_prepare(struct pbuf *p, struct netdev_tx_offload *off);

/* Whether the frame in p (headers in its first pbuf) is an unfragmented TCP segment; off: what
 * ethif_tx_csum_prepare filled in for it when it returned 1 (it has parsed the frame then), else NULL. */
int ethif_tx_is_tcp(const struct pbuf *p, const struct netdev_tx_offload *off);

#endif
