/* IPv6 inputs that break lwIP 2.1.3, refused before lwIP sees them (found by tests/system/test_robustness.py):
 *  - a fragment whose fragmentable part starts with another extension header (fragment, hop-by-hop, routing,
 *    destination options: any of them can lead to a second fragment header after reassembly): lwIP's second
 *    reassembly pass works with a stale header pointer and asserts (a remote kernel panic);
 *  - an ICMPv6 Packet Too Big below the IPv6 minimum MTU: lwIP stores it, and ip6_frag() then loops for ever
 *    making empty fragments (RFC 8201 §4: such a message must not lower the MTU below 1280 anyway). */
#ifndef IP6_GUARD_H
#define IP6_GUARD_H

#include "netdev.h"

/* Nonzero if the frame must be dropped. Only the first receive segment is inspected (the headers of a frame
 * this stack answers live there); the walk over extension headers is bounded, and a chain longer than the
 * walk is refused rather than let through. */
int ip6_guard_refuse(const struct netdev_rx_frame *f);

#endif
