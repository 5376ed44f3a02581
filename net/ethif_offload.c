#include "ethif_offload.h"

#include <string.h>

#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/ip6.h"
#include "lwip/stats.h"

#define ETH_HLEN 14
#define ETHTYPE_IPV4 0x0800
#define ETHTYPE_IPV6 0x86DD
#define TCP_CSUM_OFFSET 16 /* offsetof(struct tcp_hdr, chksum) */
#define TCP_HLEN_MIN 20
#define UDP_CSUM_OFFSET 6 /* offsetof(struct udp_hdr, chksum) */
#define UDP_HLEN_MIN 8

/* Where the L4 header starts and which protocol it is, for an unfragmented IPv4 datagram or an IPv6 packet
 * without extension headers, read from the first len bytes at b; 0 if neither. */
static inline unsigned ethif_l4(const uint8_t *b, uint32_t len, uint8_t *proto)
{
	uint16_t type;

	/* IPv4 without options first: nearly every frame. */
	if (len >= ETH_HLEN + IP_HLEN && b[12] == 0x08 && b[13] == 0x00 && b[ETH_HLEN] == 0x45) {
		if ((b[ETH_HLEN + 6] & 0x3F) | b[ETH_HLEN + 7])
			return 0; /* MF set or a fragment offset: a fragment */
		*proto = b[ETH_HLEN + 9];
		return ETH_HLEN + IP_HLEN;
	}
	if (len < ETH_HLEN)
		return 0;
	type = (uint16_t)(b[12] << 8 | b[13]);
	if (type == ETHTYPE_IPV4) {
		if (len < ETH_HLEN + IP_HLEN || (b[ETH_HLEN] >> 4) != 4)
			return 0;
		unsigned ihl = (b[ETH_HLEN] & 0xFu) * 4;
		/* MF set or a fragment offset: a fragment. */
		if (ihl < IP_HLEN || ((b[ETH_HLEN + 6] & 0x3F) | b[ETH_HLEN + 7]))
			return 0;
		*proto = b[ETH_HLEN + 9];
		return ETH_HLEN + ihl;
	}
	if (type == ETHTYPE_IPV6) {
		if (len < ETH_HLEN + IP6_HLEN || (b[ETH_HLEN] >> 4) != 6)
			return 0;
		*proto = b[ETH_HLEN + 6];
		return ETH_HLEN + IP6_HLEN;
	}
	return 0;
}

uint16_t ethif_rx_csum_trust(const struct netdev_rx_frame *f)
{
	uint8_t proto = 0;

	if (f->csum == NETDEV_RX_CSUM_NONE || f->nseg == 0)
		return 0;
	if (!ethif_l4(f->seg[0].data, f->seg[0].len, &proto))
		return 0;
	if (proto == IP_PROTO_TCP)
		return NETIF_CHECKSUM_CHECK_TCP;
	if (proto == IP_PROTO_UDP)
		return NETIF_CHECKSUM_CHECK_UDP;
	return 0;
}

uint32_t ethif_chkerr_total(void)
{
	return lwip_stats.ip.chkerr + lwip_stats.icmp.chkerr + lwip_stats.icmp6.chkerr + lwip_stats.udp.chkerr +
	       lwip_stats.tcp.chkerr;
}

int ethif_tx_csum_prepare(struct pbuf *p, struct netdev_tx_offload *off)
{
	uint8_t *b = p->payload, proto = 0;
	unsigned l4, hlen, where;
	uint16_t l4_len;
	u16_t sum;

	/* lwIP builds a segment's or datagram's Ethernet, IP and TCP/UDP headers in one pbuf (the payload may
	 * follow in others); the type and version are in it whenever the frame is IP at all. */
	l4 = ethif_l4(b, p->len, &proto);
	if (!l4)
		return 0;
	if (proto == IP_PROTO_TCP) {
		hlen = TCP_HLEN_MIN;
		where = TCP_CSUM_OFFSET;
	} else if (proto == IP_PROTO_UDP) {
		/* Only a datagram lwIP left without a checksum (ethif_udp_csum_hint): a nonzero field is already
		 * complete. */
		if (p->len < l4 + UDP_HLEN_MIN || b[l4 + UDP_CSUM_OFFSET] | b[l4 + UDP_CSUM_OFFSET + 1])
			return 0;
		hlen = UDP_HLEN_MIN;
		where = UDP_CSUM_OFFSET;
	} else {
		return 0;
	}
	if (p->len < l4 + hlen)
		return -1;
	/* The pseudo-header sum over 0 data bytes, complemented by lwIP; the field holds the sum itself, which the
	 * device's checksum over [csum_start, end) then completes (§5.1.6.2). A UDP sum that completes to 0 goes
	 * out as 0xFFFF (RFC 768; Linux's skb_checksum_help, behind QEMU's tap, does). Lengths that do not fit
	 * the frame are not ours to fix: the frame is left as lwIP made it. */
	if (b[ETH_HLEN] >> 4 == 4) {
		l4_len = (uint16_t)((b[ETH_HLEN + 2] << 8 | b[ETH_HLEN + 3]) - (l4 - ETH_HLEN));
		if (l4 + l4_len > p->tot_len || l4_len < hlen)
			return 0;
		ip4_addr_t src, dst;
		memcpy(&src, b + ETH_HLEN + 12, 4);
		memcpy(&dst, b + ETH_HLEN + 16, 4);
		sum = (u16_t)~inet_chksum_pseudo_partial(p, proto, l4_len, 0, &src, &dst);
	} else {
		l4_len = (uint16_t)(b[ETH_HLEN + 4] << 8 | b[ETH_HLEN + 5]);
		if (l4 + l4_len > p->tot_len || l4_len < hlen)
			return 0;
		ip6_addr_t src, dst;
		ip6_addr_set_zero(&src);
		ip6_addr_set_zero(&dst);
		memcpy(src.addr, b + ETH_HLEN + 8, 16);
		memcpy(dst.addr, b + ETH_HLEN + 24, 16);
		sum = (u16_t)~ip6_chksum_pseudo_partial(p, proto, l4_len, 0, &src, &dst);
	}
	memcpy(b + l4 + where, &sum, 2);
	off->csum_start = (uint16_t)l4;
	off->csum_offset = (uint16_t)where;
	return 1;
}

int ethif_tx_is_tcp(const struct pbuf *p, const struct netdev_tx_offload *off)
{
	uint8_t proto = 0;

	if (off)
		return off->csum_offset == TCP_CSUM_OFFSET; /* ethif_tx_csum_prepare parsed it already */
	return ethif_l4(p->payload, p->len, &proto) && proto == IP_PROTO_TCP;
}
