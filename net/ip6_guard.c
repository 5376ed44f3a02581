/* A guard in front of lwIP's IPv6 input for two remote failures of lwIP 2.1.3 (see ip6_guard.h). */
#include "ip6_guard.h"

#define ETH_TYPE_IPV6 0x86DD
#define IP6_HLEN_BYTES 40
#define IP6_NH_HOPOPTS 0
#define IP6_NH_ROUTING 43
#define IP6_NH_FRAGMENT 44
#define IP6_NH_DSTOPTS 60
#define IP6_NH_ICMP6 58
#define ICMP6_PACKET_TOO_BIG 2
#define IPV6_MIN_MTU 1280
#define IP6_EXT_MAX 8

/* Walks the IPv6 header chain of the first segment; see ip6_guard.h for what is refused and why. */
int ip6_guard_refuse(const struct netdev_rx_frame *f)
{
	const uint8_t *p = f->seg[0].data;
	uint32_t len = f->seg[0].len, off = 14 + IP6_HLEN_BYTES;

	if (len < off || (p[12] << 8 | p[13]) != ETH_TYPE_IPV6)
		return 0;
	uint8_t nh = p[14 + 6];
	/* Up to IP6_EXT_MAX extension headers are walked; whatever follows them is inspected too. */
	for (int walked = 0; off + 8 <= len; walked++) {
		int ext = nh == IP6_NH_HOPOPTS || nh == IP6_NH_ROUTING || nh == IP6_NH_DSTOPTS || nh == IP6_NH_FRAGMENT;
		if (ext && walked == IP6_EXT_MAX)
			return 1; /* a longer chain than this walk checks: too long to accept */
		switch (nh) {
		case IP6_NH_HOPOPTS:
		case IP6_NH_ROUTING:
		case IP6_NH_DSTOPTS:
			nh = p[off];
			off += 8u * (p[off + 1] + 1u);
			break;
		case IP6_NH_FRAGMENT: {
			uint8_t next = p[off];
			int atomic = ((p[off + 2] << 8 | p[off + 3]) & 0xFFF9) == 0; /* offset 0, no more fragments */
			if (!atomic)
				return next == IP6_NH_FRAGMENT || next == IP6_NH_HOPOPTS || next == IP6_NH_ROUTING ||
				       next == IP6_NH_DSTOPTS;
			nh = next;
			off += 8;
			break;
		}
		case IP6_NH_ICMP6:
			return p[off] == ICMP6_PACKET_TOO_BIG &&
			       ((uint32_t)p[off + 4] << 24 | (uint32_t)p[off + 5] << 16 | (uint32_t)p[off + 6] << 8 | p[off + 7]) <
				       IPV6_MIN_MTU;
		default:
			return 0;
		}
	}
	/* The headers run past what the first segment holds: refuse an unfinished extension chain. */
	return nh == IP6_NH_HOPOPTS || nh == IP6_NH_ROUTING || nh == IP6_NH_DSTOPTS || nh == IP6_NH_FRAGMENT;
}
