#!/usr/bin/python3
"""Host side of the virtio-net system tests: raw Ethernet frames over an AF_PACKET socket.

Meant to run inside a test's own network namespace, on the tap QEMU is attached to:

    ip netns exec NS /usr/bin/python3 tests/system/netns_send.py send --iface tap0 --dst 52:54:00:12:34:56 \\
        --ethertype 0x88b6 --count 2000 --size 60-1514 --rate 2000
    ip netns exec NS /usr/bin/python3 tests/system/netns_send.py recv --iface tap0 --ethertype 0x88b5 \\
        --expect 1000 --duration 20

Every frame sent carries its sequence number as a little-endian uint32 at offset 14 (right after the
Ethernet header), the same layout as the guest's `txtest` frames.

Both modes print one JSON object on stdout when they finish (and a one-line summary on stderr):
  send: {"sent": frames the kernel accepted, "nobufs": sends refused with ENOBUFS (the tap's queue was full:
         the frame was dropped), "iface_tx_dropped": growth of the interface's tx_dropped counter, ...}
  recv: {"count": frames of the ethertype received, "seq_unique", "seq_dups", "seq_missing" (of 0..expect-1),
         "seq_min", "seq_max", "others": {"86dd": n, ...} (every other frame that arrived, by ethertype),
         "socket_drops" (frames the socket itself dropped), ...}
In recv mode a line "ready" is printed (and flushed) on stdout once the socket is bound, so a caller can start
the guest's transmission only after that. It listens until --duration, --linger seconds after --expect frames,
or SIGINT/SIGTERM, whichever comes first; frames already queued are still counted.

Everything is bounded: --count and --duration have hard upper limits.
"""
import argparse
import errno
import json
import signal
import socket
import struct
import sys
import time

from hostside import iface_counter, iface_mac, parse_mac

MAX_COUNT = 1_000_000
MAX_DURATION = 120.0
ETH_HLEN = 14
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33


def parse_ethertype(s):
    v = int(s, 0)
    if not 0x0600 <= v <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"ethertype {s} is not in 0x0600..0xffff")
    return v


def parse_sizes(s):
    lo, _, hi = s.partition("-")
    lo, hi = int(lo), int(hi or lo)
    if not ETH_HLEN + 4 <= lo <= hi <= 1514:
        raise argparse.ArgumentTypeError(f"frame sizes {s} not within 18..1514 (lo <= hi)")
    return lo, hi


def bounded_count(s):
    v = int(s)
    if not 0 <= v <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"count {v} not in 0..{MAX_COUNT}")
    return v


def bounded_duration(s):
    v = float(s)
    if not 0 < v <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"duration {v} not in (0, {MAX_DURATION}]")
    return v


def cmd_send(a):
    src = a.src or iface_mac(a.iface)
    lo, hi = a.size
    span = hi - lo + 1
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: this socket receives nothing
    s.bind((a.iface, 0))
    header = a.dst + src + struct.pack("!H", a.ethertype)
    filler = bytes(i & 0xFF for i in range(1514))
    dropped0 = iface_counter(a.iface, "tx_dropped")
    sent = nobufs = errors = nbytes = 0
    deadline = time.monotonic() + a.max_seconds
    t0 = time.monotonic()
    for i in range(a.count):
        seq = a.seq_start + i
        size = lo + (i % span)  # a sweep: every size of the range in turn
        frame = header + struct.pack("<I", seq & 0xFFFFFFFF) + filler[: size - ETH_HLEN - 4]
        if a.rate:
            ahead = t0 + i / a.rate - time.monotonic()
            if ahead > 0.0005:
                time.sleep(ahead)
        now = time.monotonic()
        if now > deadline:
            print(f"netns_send: stopped after --max-seconds {a.max_seconds}", file=sys.stderr)
            break
        try:
            s.send(frame)
            sent += 1
            nbytes += size
        except OSError as e:
            if e.errno == errno.ENOBUFS:
                nobufs += 1  # the device queue was full: this frame is gone
            else:
                errors += 1
                if errors == 1:
                    print(f"netns_send: send: {e}", file=sys.stderr)
    seconds = time.monotonic() - t0
    s.close()
    dropped1 = iface_counter(a.iface, "tx_dropped")
    res = {
        "mode": "send", "iface": a.iface, "ethertype": a.ethertype, "requested": a.count, "sent": sent,
        "nobufs": nobufs, "errors": errors, "bytes": nbytes, "seconds": round(seconds, 4),
        "pps": round(sent / seconds) if seconds > 0 else None,
        "iface_tx_dropped": (dropped1 - dropped0) if dropped0 is not None and dropped1 is not None else None,
        "seq_first": a.seq_start, "sizes": [lo, hi],
    }
    print(f"netns_send: sent {sent} of {a.count} frames ({nobufs} ENOBUFS, {errors} errors) in "
          f"{seconds:.3f} s", file=sys.stderr)
    print(json.dumps(res), flush=True)
    return 0 if errors == 0 else 1


class _Stop(Exception):
    pass


def _stop(signum, frame):
    raise _Stop()


def cmd_recv(a):
    # ETH_P_ALL: the test's ethertype is checked frame by frame, everything else that arrives is counted per
    # ethertype ("others"), so a caller can tell the guest's other traffic from its test frames.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.bind((a.iface, ETH_P_ALL))
    s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading the statistics zeroes them
    want = struct.pack("!H", a.ethertype)
    seqs, others = {}, {}
    count = short = 0
    t0 = time.monotonic()
    end = t0 + a.duration
    done_at = None

    def take(data, addr):
        nonlocal count, short
        if addr[2] == PACKET_OUTGOING or len(data) < ETH_HLEN:
            return
        if data[12:14] != want:
            t = f"{struct.unpack_from('!H', data, 12)[0]:04x}"
            others[t] = others.get(t, 0) + 1
            return
        count += 1
        if len(data) < ETH_HLEN + 4:
            short += 1
            return
        seq = struct.unpack_from("<I", data, ETH_HLEN)[0]
        seqs[seq] = seqs.get(seq, 0) + 1

    # SIGINT / SIGTERM: stop listening, but still count what has already arrived.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print("ready", flush=True)
    try:
        while True:
            now = time.monotonic()
            limit = end if done_at is None else min(end, done_at + a.linger)
            if now >= limit:
                break
            s.settimeout(limit - now)
            try:
                take(*s.recvfrom(65536))
            except socket.timeout:
                break
            if a.expect and done_at is None and count >= a.expect:
                done_at = time.monotonic()  # keep listening a little: duplicates or extras would show up
    except _Stop:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    s.setblocking(False)
    for _ in range(MAX_COUNT):  # what is already queued
        try:
            take(*s.recvfrom(65536))
        except (BlockingIOError, InterruptedError):
            break
    seconds = time.monotonic() - t0
    packets, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    s.close()
    missing = [q for q in range(a.expect) if q not in seqs] if a.expect else []
    res = {
        "mode": "recv", "iface": a.iface, "ethertype": a.ethertype, "count": count, "short": short,
        "seq_unique": len(seqs), "seq_dups": sum(c - 1 for c in seqs.values()),
        "seq_missing": len(missing), "seq_missing_first": missing[:20],
        "seq_min": min(seqs) if seqs else None, "seq_max": max(seqs) if seqs else None,
        "seq_out_of_range": sum(1 for q in seqs if a.expect and q >= a.expect),
        "others": others, "socket_drops": drops, "seconds": round(seconds, 4),
    }
    print(f"netns_send: received {count} frames of ethertype {a.ethertype:#06x} on {a.iface} in {seconds:.3f} s "
          f"({len(seqs)} distinct sequence numbers, {sum(others.values())} other frames, {drops} dropped by the "
          f"socket)", file=sys.stderr)
    print(json.dumps(res), flush=True)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    ps = sub.add_parser("send", help="send COUNT frames out of IFACE")
    ps.add_argument("--iface", default="tap0")
    ps.add_argument("--dst", type=parse_mac, default=b"\xff" * 6, help="destination MAC or 'broadcast' (default)")
    ps.add_argument("--src", type=parse_mac, help="source MAC (default: the interface's own)")
    ps.add_argument("--ethertype", type=parse_ethertype, default=0x88B6)
    ps.add_argument("--count", type=bounded_count, required=True)
    ps.add_argument("--size", type=parse_sizes, default=(60, 60),
                    help="frame size without FCS, N or LO-HI (a sweep over the range); default 60")
    ps.add_argument("--rate", type=float, default=0.0, help="frames per second; 0 (default) = flat out")
    ps.add_argument("--seq-start", type=int, default=0)
    ps.add_argument("--max-seconds", type=bounded_duration, default=60.0, help="stop sending after this long")
    pr = sub.add_parser("recv", help="count frames of one ethertype arriving on IFACE")
    pr.add_argument("--iface", default="tap0")
    pr.add_argument("--ethertype", type=parse_ethertype, default=0x88B5)
    pr.add_argument("--duration", type=bounded_duration, default=10.0, help="listen at most this long")
    pr.add_argument("--expect", type=bounded_count, default=0,
                    help="stop --linger seconds after this many test frames (0: listen for --duration, or until "
                         "SIGINT/SIGTERM); also the range 0..expect-1 of sequence numbers checked for gaps")
    pr.add_argument("--linger", type=float, default=0.5)
    a = p.parse_args(argv)
    if a.mode == "send" and a.rate < 0:
        p.error("--rate must be >= 0")
    return cmd_send(a) if a.mode == "send" else cmd_recv(a)


if __name__ == "__main__":
    sys.exit(main())
