#!/usr/bin/python3
"""Host side of the offload tests: a flood of IPv4 fragment trains that never complete.

Run inside a test's own network namespace; it sends only to --dst (the guest), through a raw IPv4 socket
(IP_HDRINCL), so the namespace's kernel resolves the guest's MAC:

    ip netns exec NS /usr/bin/python3 tests/system/frag_flood.py --dst 192.168.77.2 --datagrams 200

Each datagram is a 65507-byte UDP datagram cut into 1480-byte fragments, of which every one but the last is
sent: the guest must hold them until reassembly gives up, which is what a fragment flood aims at. Prints one
JSON object: datagrams, fragments, seconds. Bounded: --datagrams <= 10000, --max-seconds <= 300.
"""
import argparse
import json
import socket
import struct
import time

FRAG = 1480           # payload bytes per fragment (a multiple of 8 in a 1500-byte MTU)
TOTAL = 8 + 65507     # the UDP datagram the trains pretend to carry


def ip_checksum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fragment(src, dst, ident, off, payload, more):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, (0x2000 if more else 0) | off // 8,
                      64, socket.IPPROTO_UDP, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", ip_checksum(hdr)) + hdr[12:]
    return hdr + payload


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dst", required=True)
    ap.add_argument("--src", default="192.168.77.1")
    ap.add_argument("--datagrams", type=int, default=200)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--first-id", type=int, default=0x4000)
    a = ap.parse_args()
    assert 1 <= a.datagrams <= 10000 and 0 < a.max_seconds <= 300
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    src, dst = socket.inet_aton(a.src), socket.inet_aton(a.dst)
    body = bytes(range(256)) * (TOTAL // 256 + 1)
    t0, sent, n = time.monotonic(), 0, 0
    for n in range(a.datagrams):
        ident = (a.first_id + n) & 0xFFFF
        for off in range(0, TOTAL - FRAG, FRAG):  # every fragment but the last
            for _ in range(100):  # a full socket buffer: wait a little, bounded
                try:
                    s.sendto(fragment(src, dst, ident, off, body[off:off + FRAG], True), (a.dst, 0))
                    sent += 1
                    break
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError as e:
                    if e.errno != 105:  # ENOBUFS
                        raise
                    time.sleep(0.001)
        if time.monotonic() - t0 > a.max_seconds:
            break
    print(json.dumps({"datagrams": n + 1, "fragments": sent, "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
