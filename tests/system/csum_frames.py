#!/usr/bin/python3
"""Host side of the checksum tests: IPv4 (or IPv6) frames with wrong TCP/UDP/ICMP checksums, sent raw to the guest.

Run inside a test's own network namespace on the tap QEMU is attached to. The frames go out through an
AF_PACKET socket, so they reach the guest without a partial-checksum mark (no NEEDS_CSUM / DATA_VALID): the
guest must verify them and drop them. Every frame is addressed to --guest-mac / --guest-ip only.

    ip netns exec NS /usr/bin/python3 tests/system/csum_frames.py --iface tap0 --count 50

Sends --count frames of each kind (udp to port 7, tcp SYN to port 7, icmp echo), each with its checksum off
by one, and --count good UDP datagrams to port 9 (discard) as a control. Prints one JSON object. Bounded:
--count <= 10000. With --guest-ip6/--host-ip6 (link-local addresses, no scope) the same frames go over IPv6,
the ICMP ones as ICMPv6 echo requests (whose checksum, unlike ICMPv4's, covers the pseudo-header).
"""
import argparse
import json
import socket
import struct
import time

from hostside import iface_mac, parse_mac


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ipv6(src, dst, proto, payload, ident):
    del ident  # no identification field outside a fragment header
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64, src, dst) + payload


def l4(src, dst, proto, seg, off, bad):
    if len(src) == 16:  # IPv6 pseudo-header (RFC 8200 8.1), ICMPv6 included
        pseudo = src + dst + struct.pack("!I3xB", len(seg), proto)
    else:
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    c = csum(pseudo + seg) if proto != 1 else csum(seg)
    if bad:
        c = (c + 1) & 0xFFFF or 1
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iface", default="tap0")
    ap.add_argument("--guest-mac", type=parse_mac, default=parse_mac("52:54:00:12:34:56"))
    ap.add_argument("--guest-ip", default="192.168.77.2")
    ap.add_argument("--host-ip", default="192.168.77.1")
    ap.add_argument("--guest-ip6", help="send IPv6 frames to this (link-local) address")
    ap.add_argument("--host-ip6", help="their source address (the tap's link-local one)")
    ap.add_argument("--count", type=int, default=50)
    a = ap.parse_args()
    assert 1 <= a.count <= 10000
    v6 = a.guest_ip6 is not None
    assert v6 == (a.host_ip6 is not None), "--guest-ip6 and --host-ip6 go together"
    if v6:
        src, dst = socket.inet_pton(socket.AF_INET6, a.host_ip6), socket.inet_pton(socket.AF_INET6, a.guest_ip6)
        assert dst[:2] == b"\xfe\x80", "IPv6 frames go to the guest's link-local address only"
        ip, icmp_proto, icmp_type, ethertype = ipv6, 58, 128, b"\x86\xdd"
    else:
        src, dst = socket.inet_aton(a.host_ip), socket.inet_aton(a.guest_ip)
        ip, icmp_proto, icmp_type, ethertype = ipv4, 1, 8, b"\x08\x00"
    eth = a.guest_mac + iface_mac(a.iface) + ethertype
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = {"udp": 0, "tcp": 0, "icmp": 0, "good_udp": 0}
    for i in range(a.count):
        udp = struct.pack("!HHHH", 40000 + i % 1000, 7, 8 + 32, 0) + bytes(32)
        tcp = struct.pack("!HHIIBBHHH", 41000 + i % 1000, 7, i, 0, 5 << 4, 0x02, 8192, 0, 0)
        icmp = struct.pack("!BBHHH", icmp_type, 0, 0, 0x7700, i) + bytes(16)
        good = struct.pack("!HHHH", 42000 + i % 1000, 9, 8 + 32, 0) + bytes(32)
        for kind, proto, seg, off, bad in (("udp", 17, udp, 6, True), ("tcp", 6, tcp, 16, True),
                                           ("icmp", icmp_proto, icmp, 2, True), ("good_udp", 17, good, 6, False)):
            s.send(eth + ip(src, dst, proto, l4(src, dst, proto, seg, off, bad), (i * 4 + proto) & 0xFFFF))
            sent[kind] += 1
        time.sleep(0.001)
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
