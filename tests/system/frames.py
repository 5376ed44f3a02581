#!/usr/bin/python3
"""Malformed-frame generator for the robustness tests (tests/system/test_robustness.py).

Meant to run inside a test's own network namespace, on the tap QEMU is attached to:

    ip netns exec NS /usr/bin/python3 tests/system/frames.py send --iface tap0 --guest-mac 52:54:00:12:34:56 \\
        --guest-ip 192.168.77.2 --host-ip 192.168.77.1 --count 100000 --seed 1 --rate 25000 \\
        --exclude-known nested-frag6,tiny-pmtu6 --no-routers
    ip netns exec NS /usr/bin/python3 tests/system/frames.py runts --port 40002 --count 2000 --seed 1
    ip netns exec NS /usr/bin/python3 tests/system/frames.py crafted --name tiny-pmtu6 --iface tap0
    /usr/bin/python3 tests/system/frames.py describe --count 100000 --seed 1 [--only tcp,udp]   # nothing sent

How frames are made: scapy builds a corpus of well-formed seed packets once (IPv4/IPv6 with UDP, TCP, ICMP and
ICMPv6 incl. neighbour discovery, ARP, VLAN-tagged frames, fragments); a seeded generator (random.Random(seed):
the same seed always gives the same frames) then derives every frame from the corpus in pure Python, which is
what makes 10^5..10^6 frames affordable (scapy alone builds a few thousand packets a second). Categories:

  runt60     a valid Ethernet header plus 0..45 bytes (a truncated packet of the ethertype): below the 60-byte
             Ethernet minimum (QEMU's virtio-net does not pad). Frames < 14 bytes cannot go through a tap: Linux
             refuses them on an AF_PACKET socket (dev_validate_header, min_header_len = ETH_HLEN -> EINVAL); the
             `runts` command sends those as UDP datagrams to a QEMU `-netdev socket,udp=` NIC instead.
  oversize   frames of 1515..--max-frame bytes (the tap's MTU must be raised for more than 1514; up to 65535):
             IPv4/IPv6/UDP/ICMP with true or lying lengths, random ethertypes.
  ipv4_hdr   IPv4 header lies: IHL 0..15, total length 0 / < header / > frame / 65535, version != 4, options,
             fragment fields, protocols; the header checksum recomputed after the lie (mostly) or not.
  ipv6_hdr   IPv6 header lies and extension-header chains: payload length, version, next header, hop-by-hop /
             destination options (PadN, jumbo, router alert, unknown with every action), routing types 0/2/3,
             long chains, no-next-header.
  udp        length field < 8 / > packet / 0, zero / bad / good checksums, ports 7, 9, 5001, 0, random.
  tcp        bad options (length 0, 1, beyond the header, wrong MSS/WS/SACK/TS lengths, unknown kinds), data
             offset < 5 or beyond the segment, odd flag sets (SYN+FIN, all, none), good or bad checksums.
  icmp       ICMPv4 of every type with truncated / embedded headers, ICMPv6 echo, NS/NA/RS/RA/redirect with bad
             options (length 0, beyond the packet), MLD, packet-too-big with tiny MTUs, parameter problems.
  frag4      IPv4 fragment trains: overlapping, duplicate, endless (MF always set), beyond 65535, tiny first
             fragments, zero-length, out of order; ids from a small pool so trains collide.
  frag6      the same with IPv6 fragment headers (plus atomic fragments and fragmented extension headers).
  arp        odd hardware types / protocol types / address lengths (0, 1, 6, 16, 255), opcodes, truncation.
  vlan       802.1Q and QinQ (0x88a8 / 0x8100 stacks) around IPv4/IPv6/ARP, VIDs 0 and 4095, cut-off tags.
  random     a valid Ethernet header (known or random ethertype) followed by random bytes.
  mutant     any seed with generic mutations: bit flips, boundary bytes, truncation, extension, splicing,
             inserted / deleted bytes; checksums recomputed half of the time so deeper code gets to see them.

Every frame's destination MAC is the guest's (85 %) or broadcast. Two protections keep the guest testable
afterwards, applied to every frame: no frame carries the bytes 0x1b5f (7007) past the Ethernet header, so
nothing can reach the guest's control service (`reset`, `mode poll`, `consumer noop` would change the guest
under test), and no ARP frame claims the host's own IPv4 address as sender (that would poison the guest's ARP
entry for the host for ARP_MAXAGE = 5 minutes, which is ARP working as designed, not a robustness failure).

Known bugs: `crafted --name NAME` sends a minimal deterministic reproducer of a bug the generator found
(nested-frag6: lwIP 2.1.3 assertion -> kernel panic; tiny-pmtu6: lwIP 2.1.3 endless loop; spoofed-syns: TCP
locked out for 20 s; the -dstopts / -deep / -8ext variants put the same constructs behind extension headers; see
the functions crafted_*). `send --exclude-known NAME,...` keeps the two lwIP constructs out of the mutated frames
(Generator.defuse_ipv6, behind any extension headers), so the rest of the space is still covered while a bug is
open; `--no-routers` keeps Router Advertisements from leaving lasting (bounded) router state behind, which a
before/after memory comparison would otherwise see.

`send` prints one JSON object on stdout: frames per category, sent, refused by the host kernel per errno
(EMSGSIZE, EINVAL, ENOBUFS), the tap's tx_packets / tx_dropped growth, bytes, seconds, and the frame-size range.
Everything is bounded: --count <= 10^7 per run, generated and sent in chunks of --chunk frames, --max-seconds.
"""
import argparse
import array
import errno
import json
import random
import socket
import struct
import sys
import time

from hostside import bounded, iface_counter, iface_mac, iface_mtu, parse_mac

MAX_COUNT = 10_000_000
MAX_SECONDS = 900.0
ETH_HLEN = 14
ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_8021Q, ETH_P_8021AD = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8
PROTECTED_PORT = b"\x1b\x5f"  # 7007, the guest's control/status service
CATEGORIES = ("runt60", "oversize", "ipv4_hdr", "ipv6_hdr", "udp", "tcp", "icmp", "frag4", "frag6", "arp", "vlan",
              "random", "mutant")
WEIGHTS = (6, 4, 10, 9, 8, 10, 9, 1, 1, 6, 6, 6, 11)  # per event; a fragment train is ~10 frames


# ---- addresses and checksums ----

def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def link_local(mac):
    """The EUI-64 link-local address lwIP derives from a MAC."""
    eui = bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return b"\xfe\x80" + b"\0" * 6 + eui


def csum(data):
    """RFC 1071 Internet checksum, computed on native 16-bit words (byte-order independent); returns the
    2 bytes to store."""
    if len(data) & 1:
        data = data + b"\0"
    s = sum(array.array("H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return array.array("H", [~s & 0xFFFF]).tobytes()


def l4_offsets(proto):
    return {6: 16, 17: 6, 1: 2, 58: 2}.get(proto)


def fix_checksums(f, ip_hdr=True, l4=True):
    """Recompute the IPv4 header checksum and the UDP/TCP/ICMP/ICMPv6 checksum over what the frame really
    holds (the lengths may lie), so that a lie gets past the checksum checks to the code that must catch it."""
    f = bytearray(f)
    n = len(f)
    if n < ETH_HLEN + 20:
        return bytes(f)
    et = f[12] << 8 | f[13]
    if et == ETH_P_IP:
        ihl = (f[14] & 0xF) * 4
        if ihl < 20 or ETH_HLEN + ihl > n:
            return bytes(f)
        if ip_hdr:
            f[24:26] = b"\0\0"
            f[24:26] = csum(bytes(f[14:14 + ihl]))
        proto = f[23]
        off = l4_offsets(proto)
        frag = (f[20] << 8 | f[21]) & 0x3FFF
        if not l4 or off is None or frag:
            return bytes(f)
        tot = f[16] << 8 | f[17]
        end = min(n, ETH_HLEN + max(tot, ihl))
        start = ETH_HLEN + ihl
        if end - start < off + 2:
            return bytes(f)
        f[start + off:start + off + 2] = b"\0\0"
        seg = bytes(f[start:end])
        pseudo = b"" if proto == 1 else bytes(f[26:34]) + struct.pack("!BBH", 0, proto, len(seg))
        c = csum(pseudo + seg)
        if proto == 17 and c == b"\0\0":
            c = b"\xff\xff"
        f[start + off:start + off + 2] = c
    elif et == ETH_P_IPV6 and n >= ETH_HLEN + 40:
        nh = f[20]
        off = l4_offsets(nh)
        if not l4 or off is None or nh == 1:
            return bytes(f)
        plen = f[18] << 8 | f[19]
        start = ETH_HLEN + 40
        end = min(n, start + plen)
        if end - start < off + 2:
            return bytes(f)
        f[start + off:start + off + 2] = b"\0\0"
        seg = bytes(f[start:end])
        pseudo = bytes(f[22:54]) + struct.pack("!IxxxB", len(seg), nh)
        c = csum(pseudo + seg)
        if nh == 17 and c == b"\0\0":
            c = b"\xff\xff"
        f[start + off:start + off + 2] = c
    return bytes(f)


# ---- the corpus ----

class Corpus:
    """Well-formed seed frames built with scapy, grouped by kind, plus the raw material the categories use."""

    def __init__(self, guest_mac, host_mac, guest_ip, host_ip, rng):
        import logging
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6DestUnreach, ICMPv6EchoRequest,
                               ICMPv6MLQuery, ICMPv6MLReport, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_Redirect,
                               ICMPv6ND_RS, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr,
                               ICMPv6PacketTooBig, ICMPv6ParamProblem, IPOption_RR, IPOption_Router_Alert, IPv6,
                               IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, conf)
        conf.verb = 0
        self.guest_mac, self.host_mac = guest_mac, host_mac
        gm, hm = mac_str(guest_mac), mac_str(host_mac)
        self.guest_ip, self.host_ip = guest_ip, host_ip
        self.guest_ip_b, self.host_ip_b = socket.inet_aton(guest_ip), socket.inet_aton(host_ip)
        self.guest_ip6 = socket.inet_ntop(socket.AF_INET6, link_local(guest_mac))
        self.host_ip6 = socket.inet_ntop(socket.AF_INET6, link_local(host_mac))
        net = guest_ip.rsplit(".", 1)[0]
        eth = Ether(dst=gm, src=hm)
        g4, h4, g6, h6 = guest_ip, host_ip, self.guest_ip6, self.host_ip6
        ports = [7, 9, 5001, 0, 65535, 1, 53, 80]
        payloads = [b"", b"x", b"robustness" * 3, bytes(range(256)), b"\0" * 1000]
        self.ip4, self.ip6, self.l4tcp, self.arp, self.icmp = [], [], [], [], []
        for i, pl in enumerate(payloads):
            for dp in ports[:5]:
                self.ip4.append(bytes(eth / IP(src=h4, dst=g4, id=i) / UDP(sport=40000 + i, dport=dp) / pl))
                self.ip6.append(bytes(eth / IPv6(src=h6, dst=g6) / UDP(sport=40000 + i, dport=dp) / pl))
        for fl in ("S", "SA", "A", "PA", "F", "R", "FPU", "SF", "", "SRAFUPEC"):
            for dp in (7, 9, 5001, 4444):
                t = TCP(sport=rng.randrange(1024, 65535), dport=dp, flags=fl, seq=rng.getrandbits(32),
                        ack=rng.getrandbits(32), options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7),
                                                          ("Timestamp", (1, 0)), ("NOP", None)])
                self.l4tcp.append(bytes(eth / IP(src=h4, dst=g4) / t / b"data"))
                self.l4tcp.append(bytes(eth / IPv6(src=h6, dst=g6) / t / b"data"))
        self.ip4 += [bytes(x) for x in (
            eth / IP(src=h4, dst=g4, options=[IPOption_RR(routers=["1.2.3.4"] * 3)]) / UDP(dport=9) / b"opt",
            eth / IP(src=h4, dst=g4, options=[IPOption_Router_Alert()]) / ICMP() / b"ra",
            eth / IP(src=h4, dst=f"{net}.255") / UDP(dport=7) / b"bcast",
            eth / IP(src=h4, dst="255.255.255.255") / UDP(dport=9) / b"bcast",
            eth / IP(src=g4, dst=g4) / TCP(sport=7, dport=7, flags="S"),  # land
            eth / IP(src="0.0.0.0", dst=g4) / UDP(dport=9),
            eth / IP(src=h4, dst=g4, proto=200) / b"unknown protocol",
            eth / IP(src=h4, dst=g4, proto=41) / IPv6(src=h6, dst=g6) / UDP(dport=9),  # 6in4
            eth / IP(src=h4, dst=g4, proto=4) / IP(src=h4, dst=g4) / UDP(dport=9),  # IP in IP
        )]
        self.icmp += [bytes(eth / IP(src=h4, dst=g4) / ICMP(type=t, code=c) / b"icmp-payload-0123456789")
                      for t, c in ((8, 0), (0, 0), (3, 3), (3, 4), (5, 1), (11, 0), (12, 0), (13, 0), (17, 0),
                                   (255, 255), (3, 2))]
        # ICMP errors carrying an inner header that points at the guest's own connections/ports.
        self.icmp += [bytes(eth / IP(src=h4, dst=g4) / ICMP(type=3, code=c) / IP(src=g4, dst=h4) /
                            TCP(sport=7, dport=40000)) for c in (0, 1, 3, 4)]
        self.icmp += [bytes(eth / IP(src=h4, dst=g4) / ICMP(type=3, code=3) / IP(src=g4, dst=h4) / UDP(sport=7))]
        nd_dst = [g6, "ff02::1", "ff02::1:ff12:3456"]
        icmp6 = [ICMPv6EchoRequest(data=b"ping6"), ICMPv6ND_NS(tgt=g6) / ICMPv6NDOptSrcLLAddr(lladdr=hm),
                 ICMPv6ND_NA(tgt=h6, R=0, S=1, O=1), ICMPv6ND_RS(),
                 ICMPv6ND_RA() / ICMPv6NDOptMTU(mtu=1280) /
                 ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, validlifetime=60, preferredlifetime=30),
                 ICMPv6ND_Redirect(tgt=h6, dst="2001:db8::1"), ICMPv6MLQuery(), ICMPv6MLReport(mladdr="ff02::1:2"),
                 ICMPv6PacketTooBig(mtu=68) / IPv6(src=g6, dst=h6) / UDP(sport=7),
                 ICMPv6ParamProblem(code=1, ptr=6) / IPv6(src=g6, dst=h6) / UDP(sport=7),
                 ICMPv6DestUnreach(code=4) / IPv6(src=g6, dst=h6) / TCP(sport=7, dport=40000)]
        for m in icmp6:
            for d in nd_dst:
                hl = 255 if m.name.startswith("ICMPv6 Neighbor") or "Router" in m.name else 64
                self.icmp.append(bytes(eth / IPv6(src=h6, dst=d, hlim=hl) / m))
        ext = [IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(type=0, addresses=[h6]),
               IPv6ExtHdrRouting(type=2, addresses=[g6], segleft=1), IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()]
        for e in ext:
            self.ip6.append(bytes(eth / IPv6(src=h6, dst=g6) / e / UDP(dport=9) / b"ext"))
        self.ip6.append(bytes(eth / IPv6(src=h6, dst=g6, nh=59) / b"no next header, bytes anyway"))
        self.ip6.append(bytes(eth / IPv6(src=h6, dst=g6) / IPv6ExtHdrFragment(id=7, offset=0, m=0) / UDP(dport=9) /
                              b"atomic fragment"))
        for op in (1, 2):
            self.arp.append(bytes(Ether(dst=gm if op == 2 else "ff:ff:ff:ff:ff:ff", src=hm) /
                                  ARP(op=op, hwsrc="02:00:00:00:00:01", psrc=f"{net}.77", hwdst=gm, pdst=g4)))
        self.vlan_inner = self.ip4[:10] + self.arp + self.ip6[:5]
        self.Dot1Q = Dot1Q
        self.seeds = self.ip4 + self.ip6 + self.l4tcp + self.arp + self.icmp
        assert all(len(s) >= ETH_HLEN for s in self.seeds)


# ---- the generator ----

def ipv4_header(rng, src, dst, proto, payload_len, ident=None, flags_frag=0, ihl=5, options=b"", ttl=64, tos=0):
    tot = 20 + len(options) + payload_len
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, tot & 0xFFFF, rng.getrandbits(16) if ident is None else ident,
                    flags_frag, ttl, proto, 0, src, dst) + options
    return h[:10] + csum(h) + h[12:]


class Generator:
    def __init__(self, corpus, seed, max_frame, bcast_share=0.15, exclude=(), only=None, no_routers=False):
        self.c = corpus
        self.no_routers = no_routers
        self.exclude = set(exclude)
        self.nested_frag6 = "nested-frag6" not in self.exclude
        self.weights = [w if not only or c in only else 0 for c, w in zip(CATEGORIES, WEIGHTS)]
        self.rng = random.Random(seed)
        self.max_frame = max_frame
        self.bcast_share = bcast_share
        self.frag_ids = [self.rng.getrandbits(16) for _ in range(6)]
        self.gen = {name: getattr(self, "gen_" + name) for name in CATEGORIES}

    # helpers
    def eth(self, ethertype, dst=None):
        r = self.rng
        if dst is None:
            dst = b"\xff" * 6 if r.random() < self.bcast_share else self.c.guest_mac
        src = self.c.host_mac if r.random() < 0.9 else bytes([r.getrandbits(8) & 0xFE | 2]) + r.randbytes(5)
        return dst + src + struct.pack("!H", ethertype)

    def ipv6_header(self, plen, nh, hlim=64):
        """Host link-local -> guest link-local."""
        return struct.pack("!IHBB", 6 << 28, plen & 0xFFFF, nh, hlim) + link_local(self.c.host_mac) + \
            link_local(self.c.guest_mac)

    def rnd_ethertype(self):
        r = self.rng
        return r.choice([ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_8021Q, ETH_P_8021AD, 0x88CC, 0x8863, 0x8864,
                         0x0000, 0x05DC, 0x05FF, 0x0600, 0xFFFF, r.getrandbits(16)])

    def dst_ip4(self):
        r = self.rng
        x = r.random()
        if x < 0.85:
            return self.c.guest_ip_b
        if x < 0.93:
            return self.c.guest_ip_b[:3] + b"\xff"
        return r.choice([b"\xff" * 4, b"\0" * 4, bytes([224, 0, 0, 1]), bytes([127, 0, 0, 1]), r.randbytes(4)])

    def src_ip4(self):
        r = self.rng
        if r.random() < 0.8:
            return self.c.host_ip_b
        neighbour = self.c.guest_ip_b[:3] + bytes([r.randrange(3, 254)])
        return r.choice([self.c.guest_ip_b, b"\0" * 4, b"\xff" * 4, neighbour])

    def mutate(self, f, rounds=None):
        """Generic mutations past the Ethernet header."""
        r = self.rng
        f = bytearray(f)
        for _ in range(rounds or r.choice((1, 1, 1, 2, 3, 8))):
            op = r.randrange(9)
            n = len(f)
            if op == 0 and n > ETH_HLEN:  # flip bits
                for _ in range(r.choice((1, 1, 2, 4))):
                    i = r.randrange(ETH_HLEN, n)
                    f[i] ^= 1 << r.randrange(8)
            elif op == 1 and n > ETH_HLEN:  # boundary byte
                f[r.randrange(ETH_HLEN, n)] = r.choice((0, 1, 0x7F, 0x80, 0xFE, 0xFF))
            elif op == 2 and n > ETH_HLEN + 1:  # boundary 16-bit word
                i = r.randrange(ETH_HLEN, n - 1)
                f[i:i + 2] = struct.pack("!H", r.choice((0, 1, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, n, n - ETH_HLEN)))
            elif op == 3 and n > ETH_HLEN:  # truncate
                del f[r.randrange(ETH_HLEN, n + 1):]
            elif op == 4:  # extend
                f += r.randbytes(r.choice((1, 4, 8, 40, 200)))
            elif op == 5 and n > ETH_HLEN:  # insert
                i = r.randrange(ETH_HLEN, n + 1)
                f[i:i] = r.randbytes(r.choice((1, 2, 4, 8)))
            elif op == 6 and n > ETH_HLEN + 1:  # delete
                i = r.randrange(ETH_HLEN, n)
                del f[i:i + r.choice((1, 2, 4, 8))]
            elif op == 7:  # splice with another seed
                other = r.choice(self.c.seeds)
                i = r.randrange(ETH_HLEN, max(ETH_HLEN + 1, len(f)))
                f = f[:i] + other[r.randrange(ETH_HLEN, len(other)):] if len(other) > ETH_HLEN else f
            elif op == 8 and n > ETH_HLEN + 4:  # random run
                i = r.randrange(ETH_HLEN, n)
                k = min(n - i, r.choice((2, 4, 16)))
                f[i:i + k] = r.randbytes(k)
        return bytes(f)

    def finish(self, f):
        """The two protections (see the module docstring), the destination MAC, and the tap's size limit."""
        r = self.rng
        f = bytearray(f[:self.max_frame])
        if len(f) < ETH_HLEN:
            f += bytes(ETH_HLEN - len(f))
        if f[:6] != b"\xff" * 6 and f[:6] != self.c.guest_mac:
            f[:6] = b"\xff" * 6 if r.random() < self.bcast_share else self.c.guest_mac
        body = bytes(f[ETH_HLEN:])
        if PROTECTED_PORT in body:
            f[ETH_HLEN:] = body.replace(PROTECTED_PORT, b"\x1b\x60")
        if f[12:14] == b"\x08\x06" and len(f) >= 32 and f[28:32] == self.c.host_ip_b:
            f[31] ^= 0x80
        if (self.exclude or self.no_routers) and f[12:14] == b"\x86\xdd":
            self.defuse_ipv6(f)
        return bytes(f)

    def defuse_ipv6(self, f):
        """Keeps known lwIP crashes (--exclude-known, see `crafted`) and lasting router state (--no-routers) out
        of an IPv6 frame, in place. Walks the extension-header chain as lwIP does:
          nested-frag6  a non-atomic fragment header gets next header 59 (no next header) instead of another
                        extension header;
          tiny-pmtu6    a Packet Too Big gets MTU 1280 instead of 48..55;
          no-routers    a Router Advertisement gets router lifetime 0 (lwIP keeps a router's neighbour entry,
                        and up to MEMP_NUM_ND6_QUEUE packets queued for it in the heap, for the whole lifetime
                        when the router never answers: bounded state, not a leak, but it would hide one).
        A changed ICMPv6 message keeps a valid checksum if it had one."""
        n, nh_pos, off = len(f), 20, 54
        for _ in range(64):
            if nh_pos >= n:
                return
            nh = f[nh_pos]
            if nh in (0, 43, 60) and off + 2 <= n:
                nh_pos, off = off, off + (f[off + 1] + 1) * 8
            elif nh == 44 and off + 8 <= n:
                atomic = (f[off + 2] << 8 | f[off + 3]) & 0xFFF9 == 0
                if not atomic and "nested-frag6" in self.exclude and f[off] in (0, 43, 44, 60):
                    f[off] = 59
                nh_pos, off = off, off + 8
            else:
                if nh != 58 or off + 8 > n:
                    return
                end = min(n, ETH_HLEN + 40 + (f[18] << 8 | f[19]))
                if end - off < 8:
                    return
                pseudo = lambda: bytes(f[22:54]) + struct.pack("!IxxxB", end - off, 58)
                valid = csum(pseudo() + bytes(f[off:end])) == b"\0\0"
                changed = False
                if f[off] == 2 and "tiny-pmtu6" in self.exclude and 48 <= struct.unpack_from("!I", f, off + 4)[0] <= 55:
                    f[off + 4:off + 8] = struct.pack("!I", 1280)
                    changed = True
                if f[off] == 134 and self.no_routers and f[off + 6:off + 8] != b"\0\0":
                    f[off + 6:off + 8] = b"\0\0"
                    changed = True
                if changed and valid:
                    f[off + 2:off + 4] = b"\0\0"
                    f[off + 2:off + 4] = csum(pseudo() + bytes(f[off:end]))
                return

    # categories: each returns a list of frames
    def gen_runt60(self):
        r = self.rng
        et = self.rnd_ethertype()
        src = r.choice(self.c.seeds)
        body = src[ETH_HLEN:] if src[12:14] == struct.pack("!H", et) or r.random() < 0.5 else r.randbytes(46)
        return [self.eth(et) + body[:r.randrange(0, 46)]]

    def gen_oversize(self):
        r = self.rng
        if self.max_frame <= 1514:
            size = 1514
        else:
            x = r.random()
            if x < 0.5:  # around the buffer boundaries: 2048-byte buffers carry 2036 bytes of the first frame
                size = r.choice((1515, 1518, 1522, 2035, 2036, 2037, 2047, 2048, 2049, 4071, 4072, 4073, 4096,
                                 6109, 8145, 9014, 9018, 9216))
            elif x < 0.9:
                size = r.randrange(1515, min(self.max_frame, 16384) + 1)
            else:
                size = r.choice((32768, 60000, 65535, r.randrange(16384, 65536)))
            size = min(size, self.max_frame)
        kind = r.randrange(5)
        dst, src = self.dst_ip4(), self.src_ip4()
        if kind == 0:  # IPv4/UDP, true lengths, to discard/echo/elsewhere
            pl = r.randbytes(max(0, size - ETH_HLEN - 28))
            udp = struct.pack("!HHHH", r.randrange(1024, 65535), r.choice((9, 7, 4444)), (8 + len(pl)) & 0xFFFF, 0) + pl
            f = self.eth(ETH_P_IP) + ipv4_header(r, src, dst, 17, len(udp)) + udp
            return [fix_checksums(f)]
        if kind == 1:  # IPv4 whose total length lies (short, long, 65535)
            pl = r.randbytes(max(0, size - ETH_HLEN - 20))
            h = bytearray(ipv4_header(r, src, dst, r.choice((1, 6, 17)), len(pl)))
            h[2:4] = struct.pack("!H", r.choice((20, 28, 576, 1500, 65535, (size - ETH_HLEN + 100) & 0xFFFF)))
            return [fix_checksums(self.eth(ETH_P_IP) + bytes(h) + pl, l4=False)]
        if kind == 2:  # IPv6/UDP with true or lying payload length
            pl = r.randbytes(max(0, size - ETH_HLEN - 48))
            udp = struct.pack("!HHHH", 40000, r.choice((9, 7)), (8 + len(pl)) & 0xFFFF, 0) + pl
            plen = r.choice((len(udp) & 0xFFFF, 0, 1500, 65535))
            h = struct.pack("!IHBB", 6 << 28, plen, 17, 64) + link_local(self.c.host_mac) + link_local(self.c.guest_mac)
            return [fix_checksums(self.eth(ETH_P_IPV6) + h + udp)]
        if kind == 3:  # a big ping
            pl = r.randbytes(max(0, size - ETH_HLEN - 28))
            icmp = struct.pack("!BBHHH", 8, 0, 0, r.getrandbits(16), 1) + pl
            return [fix_checksums(self.eth(ETH_P_IP) + ipv4_header(r, src, dst, 1, len(icmp)) + icmp)]
        return [self.eth(self.rnd_ethertype()) + r.randbytes(size - ETH_HLEN)]

    def gen_ipv4_hdr(self):
        r = self.rng
        f = bytearray(r.choice(self.c.ip4 + self.c.icmp[:15] + self.c.l4tcp[::2]))
        if f[12:14] != b"\x08\x00":
            f = bytearray(self.c.ip4[0])
        what = r.randrange(8)
        if what == 0:
            f[14] = (f[14] & 0xF0) | r.randrange(16)  # IHL
        elif what == 1:
            f[16:18] = struct.pack("!H", r.choice((0, 1, 19, 20, 21, len(f) - ETH_HLEN - 1, len(f) - ETH_HLEN + 1,
                                                   len(f) + 100, 65535)))
        elif what == 2:
            f[14] = (r.choice((0, 1, 5, 6, 7, 15)) << 4) | (f[14] & 0xF)  # version
        elif what == 3:  # fragment fields on an unfragmented packet
            f[20:22] = struct.pack("!H", r.choice((0x2000, 0x4000, 0x8000, 0x1FFF, 0x3FFF, 0xFFFF, 1)))
        elif what == 4:  # options: bogus lengths
            opts = r.choice((b"\x07\x00\x04\x00", b"\x07\xff\x04\x00", b"\x44\x02\x05\x00", b"\x83\x01\x00\x00",
                             b"\x94\x04\x00\x00", b"\x01\x01\x01\x00", b"\x00" * 4, r.randbytes(r.choice((4, 8, 40)))))
            ihl = min(15, 5 + len(opts) // 4)
            f = f[:14] + bytes([0x40 | ihl]) + f[15:34] + opts[:(ihl - 5) * 4] + f[34:]
            f[16:18] = struct.pack("!H", len(f) - ETH_HLEN)
        elif what == 5:
            f[23] = r.choice((0, 2, 4, 41, 50, 51, 58, 132, 255))  # protocol
        elif what == 6:
            f[22] = r.choice((0, 1))  # TTL
            f[15] = r.getrandbits(8)  # TOS / ECN
        else:
            f = bytearray(self.mutate(bytes(f), 2))
        return [fix_checksums(bytes(f), ip_hdr=r.random() < 0.85, l4=r.random() < 0.7)]

    def gen_ipv6_hdr(self):
        r = self.rng
        f = bytearray(r.choice(self.c.ip6 + self.c.icmp[15:] + self.c.l4tcp[1::2]))
        if f[12:14] != b"\x86\xdd":
            f = bytearray(self.c.ip6[0])
        what = r.randrange(7)
        if what == 0:
            f[18:20] = struct.pack("!H", r.choice((0, 1, 7, 8, len(f) - 54 - 1, len(f) - 54 + 1, len(f) + 200, 65535)))
        elif what == 1:
            f[14] = (r.choice((0, 4, 5, 7, 15)) << 4) | (f[14] & 0xF)
        elif what == 2:
            f[20] = r.choice((0, 43, 44, 50, 51, 59, 60, 135, 139, 140, 253, 255, r.getrandbits(8)))
        else:  # an extension-header chain of our own
            chain, nh_codes = b"", []
            for _ in range(r.choice((1, 1, 2, 3, 8, 30))):
                kind = r.choice((0, 60, 43, 44))
                if kind in (0, 60):
                    opt = r.choice((b"\x01\x04\0\0\0\0", b"\xc2\x04\0\x01\x00\x00", b"\x05\x02\0\0\x01\x00",
                                    b"\x3e\x04\0\0\0\0", b"\x7e\x04\0\0\0\0", b"\xbe\x04\0\0\0\0", b"\xfe\x04\0\0\0\0",
                                    b"\x01\xff\0\0\0\0", b"\x00\x00\x00\x00\x00\x00", r.randbytes(6)))
                    chain_hdr = [kind, bytes([0, 0]) + opt]
                elif kind == 43:
                    rtype, naddr = r.choice(((0, 1), (2, 1), (3, 0), (4, 1), (253, 0)))
                    body = bytes([0, 2 * naddr, rtype, r.choice((0, 1, 2, 255))]) + b"\0" * 4 + \
                        link_local(self.c.host_mac) * naddr
                    chain_hdr = [kind, body]
                else:
                    chain_hdr = [kind, bytes([0, 0]) + struct.pack("!HI", r.choice((0, 1, 8)), r.getrandbits(32))]
                nh_codes.append(chain_hdr)
            # link the chain: each header's first byte is the next header, second the length in 8-octet units
            out = []
            final_nh = f[20]
            for i, (kind, body) in enumerate(nh_codes):
                body = bytearray(body)
                body[0] = nh_codes[i + 1][0] if i + 1 < len(nh_codes) else final_nh
                if kind != 44:
                    body[1] = max(0, (len(body) + 7) // 8 - 1) if r.random() < 0.9 else r.getrandbits(8)
                    body += bytes((-len(body)) % 8)
                out.append(bytes(body))
            chain = b"".join(out)
            f = f[:54] + chain + f[54:]
            f[20] = nh_codes[0][0]
            f[18:20] = struct.pack("!H", (len(f) - 54) & 0xFFFF)
        return [fix_checksums(bytes(f), l4=r.random() < 0.7)]

    def gen_udp(self):
        r = self.rng
        v6 = r.random() < 0.3
        pl = r.randbytes(r.choice((0, 1, 8, 18, 100, 1000)))
        dport = r.choice((7, 9, 9, 5001, 0, 53, r.randrange(65536)))
        ulen = r.choice((8 + len(pl), 0, 1, 7, 8, 9, 8 + len(pl) - 1, 8 + len(pl) + 1, 65535))
        udp = bytearray(struct.pack("!HHHH", r.randrange(65536), dport, ulen & 0xFFFF, 0) + pl)
        if v6:
            f = self.eth(ETH_P_IPV6) + self.ipv6_header(len(udp), 17) + bytes(udp)
        else:
            f = self.eth(ETH_P_IP) + ipv4_header(r, self.src_ip4(), self.dst_ip4(), 17, len(udp)) + bytes(udp)
        mode = r.randrange(4)
        if mode == 0:
            return [f]  # checksum 0: none for IPv4, invalid for IPv6
        f = fix_checksums(f)
        if mode == 1:  # bad checksum
            f = bytearray(f)
            i = (54 if v6 else 34) + 6
            f[i] ^= 0x5A
            f = bytes(f)
        return [f]

    def gen_tcp(self):
        r = self.rng
        v6 = r.random() < 0.3
        opts = b""
        for _ in range(r.choice((0, 1, 2, 3, 6))):
            kind = r.choice((0, 1, 2, 3, 4, 5, 8, 19, 28, 29, 30, 34, 253, 254, 255, r.getrandbits(8)))
            if kind in (0, 1):
                opts += bytes([kind])
                continue
            good = {2: 4, 3: 3, 4: 2, 5: 10, 8: 10, 19: 18, 28: 4, 29: 4, 30: 4, 34: 10}.get(kind, 4)
            ln = r.choice((good, good, 0, 1, 2, good + 1, good - 1, 40, 255))
            opts += bytes([kind, ln & 0xFF]) + r.randbytes(max(0, min(ln, 40) - 2))
        opts = opts[:40]
        opts += bytes((-len(opts)) % 4)
        doff = (20 + len(opts)) // 4
        if r.random() < 0.2:
            doff = r.choice((0, 1, 4, 15, doff + 1))
        flags = r.choice((0x02, 0x02, 0x12, 0x10, 0x18, 0x01, 0x04, 0x03, 0x3F, 0xFF, 0x00, 0x29, r.getrandbits(8)))
        pl = r.randbytes(r.choice((0, 0, 1, 10, 500)))
        tcp = struct.pack("!HHIIBBHHH", r.randrange(1024, 65535), r.choice((7, 9, 5001, 7, 4444, 0)),
                          r.getrandbits(32), r.getrandbits(32), (doff & 0xF) << 4, flags,
                          r.choice((0, 1, 65535, 8192)), 0, r.choice((0, 1, 65535))) + opts + pl
        if v6:
            f = self.eth(ETH_P_IPV6) + self.ipv6_header(len(tcp), 6) + tcp
        else:
            f = self.eth(ETH_P_IP) + ipv4_header(r, self.src_ip4(), self.dst_ip4(), 6, len(tcp)) + tcp
        if r.random() < 0.8:
            f = fix_checksums(f)
        return [f]

    def gen_icmp(self):
        r = self.rng
        f = r.choice(self.c.icmp)
        x = r.random()
        if x < 0.25:
            return [fix_checksums(self.mutate(f, 1))]
        if x < 0.4:
            return [f[:r.randrange(ETH_HLEN, len(f) + 1)]]
        if x < 0.55:  # NDP options with bad lengths (0, past the end)
            opt = bytes([r.choice((1, 2, 3, 4, 5, 25, 31, 255)), r.choice((0, 0, 1, 2, 255))]) + r.randbytes(6)
            icmp6 = bytes([r.choice((133, 134, 135, 136, 137)), 0, 0, 0]) + r.randbytes(r.choice((4, 12, 20, 36))) + opt
            h = struct.pack("!IHBB", 6 << 28, len(icmp6), 58, 255) + link_local(self.c.host_mac) + \
                r.choice((link_local(self.c.guest_mac), bytes.fromhex("ff020000000000000000000000000001")))
            return [fix_checksums(self.eth(ETH_P_IPV6) + h + icmp6)]
        if x < 0.7:  # ICMPv4 any type/code, random body
            icmp = bytes([r.getrandbits(8) if r.random() < 0.5 else r.choice((0, 3, 4, 5, 8, 11, 12, 13, 14)),
                          r.getrandbits(8) if r.random() < 0.3 else 0, 0, 0]) + r.randbytes(r.choice((0, 4, 8, 28, 60)))
            f2 = self.eth(ETH_P_IP) + ipv4_header(r, self.src_ip4(), self.dst_ip4(), 1, len(icmp)) + icmp
            return [fix_checksums(f2) if r.random() < 0.8 else f2]
        return [f if r.random() < 0.5 else fix_checksums(self.mutate(f, 2))]

    def frag_train4(self):
        r = self.rng
        ident = r.choice(self.frag_ids)
        proto = r.choice((17, 1, 6))
        total = r.choice((16, 24, 100, 1000, 3000, 8000))
        data = bytearray(r.randbytes(total))
        if proto == 17:
            data[0:8] = struct.pack("!HHHH", 40000, r.choice((9, 7)), total & 0xFFFF, 0)
        elif proto == 1:
            data[0:4] = b"\x08\x00\x00\x00"
        src, dst = self.src_ip4(), self.c.guest_ip_b
        frames = []
        style = r.randrange(9)
        step = r.choice((8, 16, 64, 512, 1480))
        pieces = [(o, min(step, total - o)) for o in range(0, total, step)]
        if style == 1:  # overlapping: every piece starts half a piece early
            pieces = [(max(0, o - (step // 2) // 8 * 8), ln + step // 2) for o, ln in pieces]
        elif style == 2:  # duplicates
            pieces = pieces + pieces[:2]
        elif style == 3:  # out of order
            r.shuffle(pieces)
        elif style == 4:  # endless: MF on every fragment, offsets growing
            pieces = [(o, step) for o in range(0, step * r.choice((3, 10, 40)), step)]
        elif style == 5:  # beyond 65535 (ping of death)
            pieces = [(65528 - 8 * r.randrange(4), r.choice((8, 16, 64, 100)))]
        elif style == 6:  # tiny first fragment, then the rest overlapping its header
            pieces = [(0, 8), (0, total)]
        elif style == 7:  # zero-length / odd-length middle fragments
            pieces = [(0, 8), (8, 0), (8, 7), (16, total - 16)]
        elif style == 8:  # first fragment missing
            pieces = pieces[1:] or [(8, 8)]
        last = max(o + ln for o, ln in pieces)
        for o, ln in pieces:
            chunk = bytes(data[o:o + ln]) if o < len(data) else r.randbytes(ln)
            chunk = chunk + r.randbytes(max(0, ln - len(chunk)))
            mf = 0x2000 if (style == 4 or o + ln < last or r.random() < 0.05) else 0
            ff = mf | ((o // 8) & 0x1FFF)
            frames.append(self.eth(ETH_P_IP, self.c.guest_mac) +
                          ipv4_header(r, src, dst, proto, len(chunk), ident=ident, flags_frag=ff) + chunk)
        return frames[:24]

    def gen_frag4(self):
        return self.frag_train4()

    def gen_frag6(self):
        r = self.rng
        ident = r.choice(self.frag_ids) | 0x10000
        total = r.choice((16, 24, 100, 1000, 3000))
        data = bytearray(r.randbytes(total))
        nh = r.choice((17, 17, 58, 6, 60, 44) if self.nested_frag6 else (17, 17, 58, 6, 60, 0))
        if nh == 17:
            data[0:8] = struct.pack("!HHHH", 40000, 9, total & 0xFFFF, 0)
        elif nh in (0, 60) and not self.nested_frag6:
            data[0] = r.choice((17, 59))  # the options header's own next header: never another fragment header
        step = r.choice((8, 16, 64, 512, 1232))
        pieces = [(o, min(step, total - o)) for o in range(0, total, step)]
        style = r.randrange(7)
        if style == 1:
            pieces = [(max(0, o - 8), ln + 8) for o, ln in pieces]
        elif style == 2:
            pieces = pieces + pieces[:1]
        elif style == 3:
            r.shuffle(pieces)
        elif style == 4:
            pieces = [(o, step) for o in range(0, step * r.choice((3, 10, 40)), step)]
        elif style == 5:
            pieces = [(65528, 16)]
        elif style == 6:
            pieces = pieces[1:] or [(8, 8)]
        last = max(o + ln for o, ln in pieces)
        frames = []
        hsrc, hdst = link_local(self.c.host_mac), link_local(self.c.guest_mac)
        for o, ln in pieces:
            chunk = bytes(data[o:o + ln]) + r.randbytes(max(0, ln - max(0, len(data) - o)))
            m = 1 if (style == 4 or o + ln < last) else 0
            fh = struct.pack("!BBHI", nh, 0, ((o // 8) << 3 | m) & 0xFFFF, ident)
            h = struct.pack("!IHBB", 6 << 28, 8 + len(chunk), 44, 64) + hsrc + hdst
            frames.append(self.eth(ETH_P_IPV6, self.c.guest_mac) + h + fh + chunk)
        return frames[:24]

    def gen_arp(self):
        r = self.rng
        hlen = r.choice((6, 6, 0, 1, 4, 16, 255))
        plen = r.choice((4, 4, 0, 1, 6, 16, 255))
        htype = r.choice((1, 1, 6, 0, 0xFFFF, r.getrandbits(16)))
        ptype = r.choice((0x0800, 0x0800, 0x86DD, 0, r.getrandbits(16)))
        op = r.choice((1, 2, 1, 2, 0, 3, 4, 8, 0xFFFF))
        sha = bytes([r.getrandbits(8) & 0xFE | 2]) + r.randbytes(max(0, hlen - 1)) if hlen else b""
        spa = (self.c.guest_ip_b[:3] + bytes([r.randrange(3, 254)]) + r.randbytes(max(0, plen - 4)))[:plen]
        tha = r.randbytes(hlen)
        tpa = (self.c.guest_ip_b + r.randbytes(max(0, plen - 4)))[:plen]
        arp = struct.pack("!HHBBH", htype, ptype, hlen & 0xFF, plen & 0xFF, op) + sha[:hlen] + spa + tha + tpa
        if r.random() < 0.3:
            arp = arp[:r.randrange(0, len(arp) + 1)]
        if r.random() < 0.2:
            arp += r.randbytes(r.choice((1, 20, 100)))
        return [self.eth(ETH_P_ARP) + arp]

    def gen_vlan(self):
        r = self.rng
        inner = r.choice(self.c.vlan_inner)
        tags = []
        for _ in range(r.choice((1, 1, 2, 2, 3))):
            tpid = r.choice((ETH_P_8021Q, ETH_P_8021AD, ETH_P_8021Q))
            tci = r.choice((0, 1, 100, 4095, r.getrandbits(16)))
            tags.append((tpid, tci))
        f = bytearray(inner[:12])
        for i, (tpid, tci) in enumerate(tags):
            f += struct.pack("!HH", tpid, tci)
        f += inner[12:]
        if r.random() < 0.15:
            f = f[:r.randrange(ETH_HLEN, ETH_HLEN + 4 * len(tags) + 2)]
        return [bytes(f)]

    def gen_random(self):
        r = self.rng
        return [self.eth(self.rnd_ethertype()) + r.randbytes(r.choice((0, 1, 2, 20, 46, 100, r.randrange(1500))))]

    def gen_mutant(self):
        r = self.rng
        f = self.mutate(r.choice(self.c.seeds))
        return [fix_checksums(f) if r.random() < 0.5 else f]

    def frames(self, count):
        """Yields (category, frame) until count frames."""
        r = self.rng
        made = 0
        while made < count:
            cat = r.choices(CATEGORIES, self.weights)[0]
            for f in self.gen[cat]():
                if made >= count:
                    return
                made += 1
                yield cat, self.finish(f)


# ---- commands ----

def build(a):
    corpus = Corpus(a.guest_mac, a.host_mac, a.guest_ip, a.host_ip, random.Random(a.seed))
    return Generator(corpus, a.seed, a.max_frame, exclude=a.exclude_known.split(",") if a.exclude_known else (),
                     only=a.only.split(",") if a.only else None, no_routers=a.no_routers)


def cmd_describe(a):
    a.host_mac = a.host_mac or parse_mac("02:00:00:00:00:01")
    gen = build(a)
    cats, sizes = {}, [1 << 30, 0]
    t0 = time.monotonic()
    for cat, f in gen.frames(a.count):
        cats[cat] = cats.get(cat, 0) + 1
        sizes[0] = min(sizes[0], len(f))
        sizes[1] = max(sizes[1], len(f))
    print(json.dumps({"frames": a.count, "categories": cats, "size_min": sizes[0], "size_max": sizes[1],
                      "seconds": round(time.monotonic() - t0, 3)}))
    return 0


def cmd_send(a):
    a.host_mac = a.host_mac or iface_mac(a.iface)
    mtu = iface_mtu(a.iface)
    a.max_frame = min(a.max_frame, mtu + ETH_HLEN)
    gen = build(a)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: this socket receives nothing
    s.bind((a.iface, 0))
    cats = {c: 0 for c in CATEGORIES}
    refused = {}
    sent = nbytes = 0
    sizes = [1 << 30, 0]
    tx0, drop0 = iface_counter(a.iface, "tx_packets"), iface_counter(a.iface, "tx_dropped")
    gen_seconds = 0.0
    t_start = time.monotonic()
    deadline = t_start + a.max_seconds
    left = a.count
    stopped = None
    while left > 0 and not stopped:
        g0 = time.monotonic()
        chunk = list(gen.frames(min(a.chunk, left)))  # built before sending, so generation never paces sending
        gen_seconds += time.monotonic() - g0
        left -= len(chunk)
        t0 = time.monotonic()
        for i, (cat, f) in enumerate(chunk):
            if a.rate and not i & 31:
                ahead = t0 + i / a.rate - time.monotonic()
                if ahead > 0.0005:
                    time.sleep(ahead)
                if time.monotonic() > deadline:
                    stopped = f"--max-seconds {a.max_seconds}"
                    break
            cats[cat] += 1
            try:
                s.send(f)
                sent += 1
                nbytes += len(f)
                n = len(f)
                if n < sizes[0]:
                    sizes[0] = n
                if n > sizes[1]:
                    sizes[1] = n
            except OSError as e:
                name = errno.errorcode.get(e.errno, str(e.errno))
                refused.setdefault(name, {}).setdefault(cat, 0)
                refused[name][cat] += 1
    seconds = time.monotonic() - t_start
    s.close()
    time.sleep(0.2)  # let the tap's queue drain into QEMU before reading its counters
    tx1, drop1 = iface_counter(a.iface, "tx_packets"), iface_counter(a.iface, "tx_dropped")
    res = {"mode": "send", "iface": a.iface, "seed": a.seed, "requested": a.count, "tried": sum(cats.values()),
           "sent": sent, "refused": refused, "refused_total": sum(sum(v.values()) for v in refused.values()),
           "categories": cats, "bytes": nbytes, "size_min": sizes[0] if sent else None,
           "size_max": sizes[1] if sent else None, "max_frame": a.max_frame, "mtu": mtu,
           "seconds": round(seconds, 3), "generate_seconds": round(gen_seconds, 3),
           "pps": round(sent / max(seconds - gen_seconds, 1e-6)),
           "iface_tx_packets": (tx1 - tx0) if None not in (tx0, tx1) else None,
           "iface_tx_dropped": (drop1 - drop0) if None not in (drop0, drop1) else None, "stopped": stopped}
    print(f"frames: sent {sent} of {res['tried']} frames ({res['refused_total']} refused by the host) in "
          f"{seconds:.2f} s", file=sys.stderr)
    print(json.dumps(res), flush=True)
    return 0


def cmd_runts(a):
    """Frames shorter than an Ethernet header (1..13 bytes), as UDP datagrams to a QEMU `-netdev socket,udp=`
    NIC listening on 127.0.0.1:PORT (inside the namespace). Never 0 bytes: QEMU's socket backend takes an empty
    datagram for the end of the connection and stops reading."""
    rng = random.Random(a.seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = errors = 0
    lengths = {}
    t0 = time.monotonic()
    for i in range(a.count):
        if a.rate and not i & 15:
            ahead = t0 + i / a.rate - time.monotonic()
            if ahead > 0.0005:
                time.sleep(ahead)
        n = 1 + i % 13
        data = rng.randbytes(n) if rng.random() < 0.5 else (b"\xff" * 6 + bytes(6) + b"\x08\x00")[:n]
        try:
            s.sendto(data, ("127.0.0.1", a.port))
            sent += 1
            lengths[n] = lengths.get(n, 0) + 1
        except OSError:
            errors += 1
    s.close()
    print(json.dumps({"mode": "runts", "sent": sent, "errors": errors, "lengths": lengths,
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    return 0


def ipv6_frame(gm, hm, nh, payload):
    """Host link-local -> guest link-local, next header nh, payload as given (no checksum work)."""
    return gm + hm + b"\x86\xdd" + struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + link_local(hm) + \
        link_local(gm) + payload


def crafted_nested_frag6_dstopts(gm, hm):
    """nested-frag6 with a destination-options header between the two fragment headers: the fragments' own
    fragment header says next header 60 (destination options), and the reassembled payload is a destination-
    options header (next header 44) followed by the inner fragment header. lwIP's second ip6_reass() runs with
    the same stale ip6_current_header() as in nested-frag6."""
    dstopts = bytes([44, 0, 1, 4, 0, 0, 0, 0])  # next header: fragment; PadN
    inner = dstopts + struct.pack("!BBHI", 17, 0, (1 << 3) | 1, 99) + b"A" * 8  # + fragment (offset 8, M=1)

    def frag(off, m, data):
        return ipv6_frame(gm, hm, 44, struct.pack("!BBHI", 60, 0, (off // 8) << 3 | m, 0x4321) + data)

    filler = gm + hm + b"\x88\xb5" + bytes(46)
    return [frag(0, 1, inner[:16])] + [filler] * 60 + [frag(16, 0, inner[16:])]


def crafted_tiny_pmtu6_deep(gm, hm, depth=9):
    """tiny-pmtu6 with the Packet Too Big behind `depth` destination-options headers (lwIP walks any number)."""
    echo = lambda seq: struct.pack("!BBHHH", 128, 0, 0, 0x7777, seq) + bytes(range(56))
    inner = struct.pack("!IHBB", 6 << 28, 64, 58, 64) + link_local(gm) + link_local(hm) + bytes(8)
    icmp = bytearray(struct.pack("!BBHI", 2, 0, 0, 48) + inner)
    pseudo = link_local(hm) + link_local(gm) + struct.pack("!IxxxB", len(icmp), 58)
    icmp[2:4] = csum(pseudo + bytes(icmp))
    chain = b"".join(bytes([60 if i + 1 < depth else 58, 0, 1, 4, 0, 0, 0, 0]) for i in range(depth))
    return [icmp6_frame(gm, hm, echo(1)), ipv6_frame(gm, hm, 60, chain + bytes(icmp)), icmp6_frame(gm, hm, echo(2))]


def crafted_tiny_pmtu6_8ext(gm, hm):
    """tiny-pmtu6 behind exactly 8 destination-options headers: as many as the netif's guard walks
    (IP6_EXT_MAX), so the header after them is the one it must still look at."""
    return crafted_tiny_pmtu6_deep(gm, hm, depth=8)


def crafted_nested_frag6(gm, hm):
    """lwIP 2.1.3 crash: an IPv6 datagram in two fragments whose reassembled payload starts with another fragment
    header. ip6_input() continues after ip6_reass() with a new local ip6hdr but leaves ip_data.current_ip6_header
    pointing at the header of the last fragment received; the second ip6_reass() computes
    hdrdiff = p->payload - ip6_current_header() across two different receive buffers. The 60 filler frames
    between the fragments put the two fragments > 64 KiB apart in the driver's buffer pool (a fresh ring is
    posted in descending address order), so hdrdiff > 0xFFFF: LWIP_ASSERT at ip6_frag.c:300 -> kernel panic.
    (With the buffers the other way round, hdrdiff < 40 asserts at line 301.)"""
    src, dst = link_local(hm), link_local(gm)
    inner = struct.pack("!BBHI", 17, 0, (8 << 3) | 1, 99) + b"A" * 8  # fragment header (offset 8, M=1) + 8 bytes

    def frag(off, m, data):
        fh = struct.pack("!BBHI", 44, 0, (off // 8) << 3 | m, 0x1234)
        return gm + hm + b"\x86\xdd" + struct.pack("!IHBB", 6 << 28, 8 + len(data), 44, 64) + src + dst + fh + data

    filler = gm + hm + b"\x88\xb5" + bytes(46)  # an ethertype nobody handles: freed at once
    return [frag(0, 1, inner[:8])] + [filler] * 60 + [frag(8, 0, inner[8:])]


def icmp6_frame(gm, hm, icmp):
    """An ICMPv6 message from the host's link-local address to the guest's, checksum filled in."""
    src, dst = link_local(hm), link_local(gm)
    return fix_checksums(gm + hm + b"\x86\xdd" + struct.pack("!IHBB", 6 << 28, len(icmp), 58, 64) + src + dst + icmp)


def crafted_tiny_pmtu6(gm, hm):
    """lwIP 2.1.3 hang: a Packet Too Big with MTU 48..55 for a destination in the guest's destination cache.
    nd6_input() stores any PTB MTU (no lower bound of 1280, RFC 8201 sec. 4); ip6_frag() then computes
    nfb = (mtu - 48) & 0xfff8 = 0 bytes of payload per fragment and loops `while (left)` without ever making
    progress: the guest's single main loop never returns (no console, no network). Three frames: an echo
    request (the guest's reply creates the destination-cache entry for the host), the PTB (MTU 48), another
    echo request (its 104-byte reply is > 48 bytes: ip6_frag)."""
    echo = lambda seq: struct.pack("!BBHHH", 128, 0, 0, 0x7777, seq) + bytes(range(56))
    inner = struct.pack("!IHBB", 6 << 28, 64, 58, 64) + link_local(gm) + link_local(hm) + bytes(8)
    ptb = struct.pack("!BBHI", 2, 0, 0, 48) + inner
    return [icmp6_frame(gm, hm, echo(1)), icmp6_frame(gm, hm, ptb), icmp6_frame(gm, hm, echo(2))]


def crafted_spoofed_syns(gm, hm, guest_ip="192.168.77.2", count=16):
    """A SYN to the echo port (7) from each of `count` unused addresses of the guest's subnet (.100 up): the
    guest's SYN-ACKs never get an answer (nobody owns those addresses; ARP stays unresolved), so every SYN leaves
    a pcb in SYN_RCVD until TCP_SYN_RCVD_TIMEOUT (20 s). lwIP 2.1.3 has MEMP_NUM_TCP_PCB (16 here) pcbs and
    tcp_alloc() never reclaims a SYN_RCVD pcb for a new connection of the same priority (tcp_kill_prio() only
    takes lower priorities), so 16 such SYNs locked every new TCP connection out for 20 s (fixed by net/tcp_guard.c)."""
    g4 = socket.inet_aton(guest_ip)
    out = []
    for i in range(count):
        src = g4[:3] + bytes([100 + i])
        tcp = struct.pack("!HHIIBBHHH", 40000 + i, 7, 0x1000 * (i + 1), 0, 5 << 4, 0x02, 8192, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i, 0, 64, 6, 0, src, g4)
        out.append(fix_checksums(gm + hm + b"\x08\x00" + ip + tcp))
    return out


EXCLUDABLE = ("nested-frag6", "tiny-pmtu6")  # what Generator.defuse_ipv6 can keep out (with any variant)
CRAFTED = {"nested-frag6": crafted_nested_frag6, "tiny-pmtu6": crafted_tiny_pmtu6,
           "nested-frag6-dstopts": crafted_nested_frag6_dstopts, "tiny-pmtu6-deep": crafted_tiny_pmtu6_deep,
           "tiny-pmtu6-8ext": crafted_tiny_pmtu6_8ext,
           "spoofed-syns": crafted_spoofed_syns}


def cmd_crafted(a):
    hm = a.host_mac or iface_mac(a.iface)
    frames = CRAFTED[a.name](a.guest_mac, hm)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((a.iface, 0))
    for f in frames:
        s.send(f)
        time.sleep(0.01)  # one frame at a time through the guest (the order matters, not the rate)
    s.close()
    print(json.dumps({"mode": "crafted", "name": a.name, "sent": len(frames)}), flush=True)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--guest-mac", type=parse_mac, default=parse_mac("52:54:00:12:34:56"))
    common.add_argument("--guest-ip", default="192.168.77.2")
    common.add_argument("--host-ip", default="192.168.77.1")
    common.add_argument("--count", type=bounded(int, 1, MAX_COUNT), required=True)
    common.add_argument("--seed", type=int, default=1)
    common.add_argument("--max-frame", type=bounded(int, 60, 65535), default=65535,
                        help="largest frame (bytes without FCS); send caps it at the interface's MTU + 14")
    common.add_argument("--only", help="comma-separated categories to generate (default: all)")
    common.add_argument("--no-routers", action="store_true",
                        help="Router Advertisements carry router lifetime 0 (no lasting router state in the guest)")
    common.add_argument("--exclude-known", metavar="NAME,...",
                        help="keep these known crashes out of the frames (nested-frag6, tiny-pmtu6: also their "
                             "variants behind extension headers), so the rest of the space can still be tested")
    ps = sub.add_parser("send", parents=[common], help="generate and send COUNT frames out of IFACE")
    ps.add_argument("--iface", default="tap0")
    ps.add_argument("--host-mac", type=parse_mac, help="source MAC (default: the interface's own)")
    ps.add_argument("--rate", type=bounded(float, 0, 10_000_000), default=0.0, help="frames/s; 0 = flat out")
    ps.add_argument("--chunk", type=bounded(int, 1, 1_000_000), default=100_000)
    ps.add_argument("--max-seconds", type=bounded(float, 1, MAX_SECONDS), default=300.0)
    pd = sub.add_parser("describe", parents=[common], help="generate COUNT frames, send nothing, print categories")
    pd.add_argument("--host-mac", type=parse_mac)
    pr = sub.add_parser("runts", help="1..13-byte frames as UDP datagrams to a QEMU socket NIC on 127.0.0.1:PORT")
    pr.add_argument("--port", type=bounded(int, 1, 65535), required=True)
    pr.add_argument("--count", type=bounded(int, 1, 1_000_000), required=True)
    pr.add_argument("--seed", type=int, default=1)
    pr.add_argument("--rate", type=bounded(float, 0, 1_000_000), default=5000.0)
    pc = sub.add_parser("crafted", help="send one crafted frame sequence (a known bug's reproducer)")
    pc.add_argument("--name", choices=sorted(CRAFTED), required=True)
    pc.add_argument("--iface", default="tap0")
    pc.add_argument("--guest-mac", type=parse_mac, default=parse_mac("52:54:00:12:34:56"))
    pc.add_argument("--host-mac", type=parse_mac)
    a = p.parse_args(argv)
    if getattr(a, "only", None) and not set(a.only.split(",")) <= set(CATEGORIES):
        p.error(f"--only: categories are {', '.join(CATEGORIES)}")
    if getattr(a, "exclude_known", None) and not set(a.exclude_known.split(",")) <= set(EXCLUDABLE):
        p.error(f"--exclude-known: names are {', '.join(EXCLUDABLE)}")
    return {"send": cmd_send, "describe": cmd_describe, "runts": cmd_runts, "crafted": cmd_crafted}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
