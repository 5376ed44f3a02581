#!/usr/bin/python3
"""timeline: where one UDP echo probe's round trip goes, stage by stage, from the tap through QEMU into the
guest and back.

It joins three records of the same run, per probe packet:

  (a) the tap-side pcap (run-qemu.sh --pcap: QEMU's filter-dump on the netdev). It stamps a host->guest frame
      when the tap backend hands it to the NIC and a guest->host frame when the NIC hands it to the tap, before
      QEMU writes it. QEMU 7.2 writes each record with the virtio-net header in front (10 bytes before the
      driver negotiated VERSION_1/MRG_RXBUF, 12 after); it is found and stripped per record. Its clock is NOT
      the wall clock: filter-dump stamps QEMU_CLOCK_VIRTUAL plus the whole second at which the filter was
      created, so it runs at host rate but lags the wall clock by a constant of up to about a second.
  (b) QEMU's trace events (run-qemu.sh --trace virtqueue_flush,virtio_notify,virtio_queue_notify --trace-file F
      --qemu-arg -msg --qemu-arg timestamp=on; without -msg timestamp=on the lines carry no time at all):
      stamped with the wall clock (gettimeofday, microseconds).
  (c) the guest's per-frame trace (control command `trace START` on UDP 7007): irq/poll/deq/done/txkick in ns
      since guest boot, from the TSC scaled by the rate the guest calibrated against the PIT.

Packets are matched by content: a request is an IPv4/UDP frame to the guest's echo port; its reply is the
frame from that port carrying the same payload; the guest's trace entry is the one whose key equals the FNV-1a
32-bit hash of the request's bytes [14, 14 + min(len - 14, 64)).

Clocks are aligned by causality, not by trusting any clock:
  * QEMU trace (wall) vs pcap: W = P + d, with per packet RX flush >= request, TX kick <= reply <= TX flush.
  * guest vs pcap: P = a + b * g. A guest stamp lies after the request left the tap (and after QEMU's RX flush
    published it: the dequeue stamp), and before the reply came back (and before QEMU saw the guest's TX kick:
    the txkick stamp). The feasible offsets a form an interval: its width is the alignment error bound, and
    its midpoint is used. The rate b (the guest's PIT calibration error, often 100-3000 ppm under TCG) is
    chosen to maximise that interval (--skew fit), or fixed (--skew PPM).

Commands:
  timeline.py join --dir DIR | --pcap F --guest-trace F [--qemu-trace F] [--stats F] [--probe-csv F] ...
  timeline.py run --netns NS [--count 200 --rate 100 ...]     boot, capture, probe, fetch, stop, join
  timeline.py trim --dir DIR --out DIR2 --max N               cut a capture down to N packets (test fixtures)
  ip netns exec NS timeline.py ctl CMD...                     control commands over UDP 7007 ('@trace-all')
"""
import argparse
import bisect
import csv
import json
import os
import pathlib
import re
import socket
import struct
import subprocess
import sys
import time

import guest_console

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUEST_IP = "192.168.77.2"
ECHO_PORT = 7
STATUS_PORT = 7007
TRACE_EVENTS = "virtqueue_flush,virtio_notify,virtio_queue_notify"
HASH_BYTES = 64  # VNET_TRACE_HASH_BYTES in drivers/virtio_net.h

# File names in a capture directory (run writes them, join --dir reads them).
F_PCAP, F_QTRACE, F_GTRACE = "capture.pcap", "qemu-trace.log", "guest-trace.txt"
F_STATS, F_HIST, F_PROBE, F_PROBE_OUT = "stats.txt", "hist.txt", "probe.csv", "probe.txt"
F_CSV, F_SUMMARY, F_CONSOLE = "timeline.csv", "summary.txt", "console.log"

COLUMNS = ["seq", "tap_req", "qemu_rx_flush", "qemu_rx_notify", "guest_irq", "guest_poll", "guest_deq",
           "guest_done", "guest_txkick", "qemu_tx_kick", "qemu_tx_flush", "tap_rep"]
# The causal order of one round trip. guest_done is stamped when the consumer returns, i.e. after the reply was
# kicked; QEMU flushes the TX used ring after filter-dump recorded the reply. Both lie off the request->reply
# chain: CHAIN partitions tap_req..tap_rep, OFF_CHAIN are the two side branches.
CHAIN = ["tap_req", "qemu_rx_flush", "qemu_rx_notify", "guest_irq", "guest_poll", "guest_deq", "guest_txkick",
         "qemu_tx_kick", "tap_rep"]
OFF_CHAIN = [("guest_txkick", "guest_done"), ("tap_rep", "qemu_tx_flush")]
GUEST_FIELDS = ["irq", "poll", "deq", "done", "txkick"]
TRUNC_US = 1.0  # pcap and QEMU trace stamps are truncated to whole microseconds


class TimelineError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------

def fnv1a32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def frame_key(eth):
    """The guest's trace key of an Ethernet frame (vnet_trace_begin in drivers/virtio_net.c)."""
    return fnv1a32(eth[14:14 + min(len(eth) - 14, HASH_BYTES)]) if len(eth) > 14 else fnv1a32(b"")


def read_pcap(path):
    """Classic pcap (µs or ns): [(t_ns, bytes)]. A torn last record (capture still being written) is dropped."""
    data = pathlib.Path(path).read_bytes()
    formats = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
               b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
    if len(data) < 24 or data[:4] not in formats:
        raise TimelineError(f"{path}: not a pcap file (pcapng is not supported)")
    endian, scale = formats[data[:4]]
    off, recs = 24, []
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            break
        recs.append((sec * 1_000_000_000 + frac * scale, data[off:off + incl]))
        off += incl
    return recs


def write_pcap(path, records, linktype=1):
    """records: [(t_ns, bytes)], written as a µs pcap (as QEMU does)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for t_ns, pkt in records:
        out.append(struct.pack("<IIII", t_ns // 1_000_000_000, (t_ns % 1_000_000_000) // 1000, len(pkt), len(pkt)))
        out.append(pkt)
    pathlib.Path(path).write_bytes(b"".join(out))


def _ipv4_header_ok(b):
    if len(b) < 20 or b[0] >> 4 != 4 or (b[0] & 15) < 5 or len(b) < (b[0] & 15) * 4:
        return False
    h = b[:(b[0] & 15) * 4]
    s = sum(struct.unpack("!%dH" % (len(h) // 2), h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def vnet_offset(pkt, hint=None):
    """Length of the virtio-net header in front of a filter-dump record: 12 (VERSION_1 or MRG_RXBUF), 10
    (legacy, before feature negotiation) or 0. An IPv4 frame is recognised by a valid header checksum;
    anything else keeps the hint."""
    for o in (12, 10, 0):
        if len(pkt) >= o + 34 and pkt[o + 12:o + 14] == b"\x08\x00" and _ipv4_header_ok(pkt[o + 14:]):
            return o
    return hint if hint is not None else 12


class Frame:
    __slots__ = ("t", "eth", "src", "dst", "sport", "dport", "payload")

    def __init__(self, t, eth):
        self.t, self.eth = t, eth
        self.src = self.dst = None
        self.sport = self.dport = 0
        self.payload = b""
        if len(eth) >= 42 and eth[12:14] == b"\x08\x00" and eth[23] == 17:
            ihl = (eth[14] & 15) * 4
            u = 14 + ihl
            if len(eth) >= u + 8:
                self.src, self.dst = socket.inet_ntoa(eth[26:30]), socket.inet_ntoa(eth[30:34])
                self.sport, self.dport, ulen = struct.unpack("!HHH", eth[u:u + 6])
                self.payload = eth[u + 8:u + max(8, ulen)]


def pcap_frames(path):
    """[(t_ns, Ethernet frame)] with the virtio-net header removed."""
    hint, out = None, []
    for t, pkt in read_pcap(path):
        hint = vnet_offset(pkt, hint)
        out.append((t, pkt[hint:]))
    return out


TRACE_RE = re.compile(r"^(?:\d+@)?(\d+)\.(\d{6}):(virtqueue_flush|virtio_notify|virtio_queue_notify) (.*)$")
BARE_TRACE_RE = re.compile(r"^(virtqueue_flush|virtio_notify|virtio_queue_notify) ")


class Event:
    __slots__ = ("t", "line", "name", "vq", "n")

    def __init__(self, t, line, name, vq, n):
        self.t, self.line, self.name, self.vq, self.n = t, line, name, vq, n


def read_qemu_trace(path):
    """QEMU 'log' trace backend lines with -msg timestamp=on: [Event(t_ns, line, name, vq, n)]."""
    events, bare = [], 0
    for lineno, line in enumerate(pathlib.Path(path).read_text(errors="replace").splitlines()):
        m = TRACE_RE.match(line)
        if not m:
            bare += bool(BARE_TRACE_RE.match(line))
            continue
        args = dict(zip(m.group(4).split()[::2], m.group(4).split()[1::2]))
        n = int(args["n"]) if "n" in args else None
        events.append(Event(int(m.group(1)) * 1_000_000_000 + int(m.group(2)) * 1000, lineno, m.group(3),
                            args.get("vq"), n))
    if bare and not events:
        raise TimelineError(f"{path}: {bare} trace lines without time stamps: run QEMU with -msg timestamp=on "
                            "(run-qemu.sh --qemu-arg -msg --qemu-arg timestamp=on; `timeline.py run` does)")
    return events


GUEST_RE = re.compile(r"trace: i=(\d+) key=([0-9a-fA-F]{8}) len=(\d+) irq=(\d+) poll=(\d+) deq=(\d+) done=(\d+) "
                      r"txkick=(\d+)")
GUEST_HDR_RE = re.compile(r"trace: net(\d+) entries (\d+)\.\.(\d+) tsc_hz=(\d+)")


def read_guest_trace(path_or_text):
    """The guest's `trace START` pages (any number, overlapping or not): ({i: entry}, tsc_hz)."""
    text = path_or_text
    if isinstance(text, pathlib.Path) or (isinstance(text, str) and "\n" not in text and os.path.exists(text)):
        text = pathlib.Path(text).read_text()
    entries, tsc_hz = {}, None
    for m in GUEST_HDR_RE.finditer(text):
        tsc_hz = int(m.group(4))
    for m in GUEST_RE.finditer(text):
        i = int(m.group(1))
        e = {"i": i, "key": int(m.group(2), 16), "len": int(m.group(3))}
        for k, v in zip(GUEST_FIELDS, m.groups()[3:]):
            e[k] = int(v) or None  # 0: not stamped (no reply sent while the frame was consumed)
        entries[i] = e
    return entries, tsc_hz


def read_stats(path):
    """The last value of every key=value pair in a `stats` answer (keys prefixed per NIC: net0.rx_frames)."""
    vals = {}
    for line in pathlib.Path(path).read_text().splitlines():
        m = re.match(r"^(net\d+): ", line)
        prefix = m.group(1) + "." if m else ""
        for k, v in re.findall(r"(\w+)=([-\w.]+)", line):
            vals[prefix + k] = v
    return vals


def read_probe_csv(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            rows[int(r["seq"])] = (int(r["send_ns"]), int(r["recv_ns"]) if r["recv_ns"] else None)
    return rows


# ---------------------------------------------------------------------------------------------------------
# Clock alignment
# ---------------------------------------------------------------------------------------------------------

def interval_of(lowers, uppers):
    """Constraints x >= l and x <= u: the feasible interval [max l, min u] (may be empty: lo > hi)."""
    return (max(lowers) if lowers else float("-inf")), (min(uppers) if uppers else float("inf"))


def fit_clock(lowers, uppers, skew="fit", span=0.05):
    """Guest stamp g -> reference time a + b * g, from constraints a + b*g >= L (lowers: [(g, L)]) and
    a + b*g <= U (uppers: [(g, U)]). g should be centred (small) for a meaningful a.

    For a fixed rate b the feasible offsets form an interval; its width is concave in b. skew="fit" picks the
    b of the widest interval (golden section over 1 +- span); a number fixes b = 1 + ppm * 1e-6.
    Returns dict(b, lo, hi, b_lo, b_hi) where [b_lo, b_hi] is the range of rates with a non-empty interval."""
    if not lowers or not uppers:
        raise TimelineError("clock alignment: no constraint pairs (no packet with both a request and a reply)")

    def width(b):
        lo = max(L - b * g for g, L in lowers)
        hi = min(U - b * g for g, U in uppers)
        return hi - lo, lo, hi

    if skew != "fit":
        b = 1.0 + float(skew) * 1e-6
        w, lo, hi = width(b)
        return {"b": b, "lo": lo, "hi": hi, "b_lo": b if w >= 0 else None, "b_hi": b if w >= 0 else None}
    x0, x1 = 1.0 - span, 1.0 + span
    phi = (5 ** 0.5 - 1) / 2
    c, d = x1 - phi * (x1 - x0), x0 + phi * (x1 - x0)
    wc, wd = width(c)[0], width(d)[0]
    for _ in range(200):
        if wc >= wd:
            x1, d, wd = d, c, wc
            c = x1 - phi * (x1 - x0)
            wc = width(c)[0]
        else:
            x0, c, wc = c, d, wd
            d = x0 + phi * (x1 - x0)
            wd = width(d)[0]
    b = (x0 + x1) / 2
    w, lo, hi = width(b)
    b_lo = b_hi = None
    if w >= 0:
        def edge(inside, outside):
            for _ in range(100):
                mid = (inside + outside) / 2
                if width(mid)[0] >= 0:
                    inside = mid
                else:
                    outside = mid
            return inside
        b_lo, b_hi = edge(b, 1.0 - span), edge(b, 1.0 + span)
    return {"b": b, "lo": lo, "hi": hi, "b_lo": b_lo, "b_hi": b_hi}


def rough_trace_offset(reply_ts, tx_flush_ts, window_us=100.0):
    """A first estimate of d = W - P from the TX path alone: every reply frame is followed within microseconds by
    a TX flush, so the differences flush - reply crowd in one narrow window. Returns the smallest difference in
    the densest window (>= d up to truncation), or None."""
    fl = sorted(tx_flush_ts)
    diffs = []
    for p in reply_ts[:800]:
        i = bisect.bisect_left(fl, p - 2e6)
        diffs.extend(w - p for w in fl[i:bisect.bisect_right(fl, p + 6e6)])
    if not diffs:
        return None
    diffs.sort()
    best, best_n, j = None, 0, 0
    for i, x in enumerate(diffs):
        while diffs[j] < x - window_us:
            j += 1
        if i - j + 1 > best_n:
            best_n, best = i - j + 1, diffs[j]
    return best


# ---------------------------------------------------------------------------------------------------------
# The join
# ---------------------------------------------------------------------------------------------------------

class Join:
    """Result of join(): rows (dicts of absolute reference-clock µs), alignment facts, warnings."""

    def __init__(self):
        self.packets = []
        self.notes, self.warnings = [], []
        self.align = {}
        self.counts = {}


def _percentile(vals, p):
    """Nearest rank, as tools/stats.c: the sample of rank ceil(p/100 * n)."""
    s = sorted(vals)
    k = -(-len(s) * p // 100)
    return s[max(1, min(len(s), int(k))) - 1]


def join(pcap, guest_trace, qemu_trace=None, probe_csv=None, guest_ip=GUEST_IP, port=ECHO_PORT, skew="fit",
         irq_bound=False):
    res = Join()
    frames = pcap_frames(pcap)
    if not frames:
        raise TimelineError(f"{pcap}: no frames")
    base_ns = frames[0][0] // 1_000_000_000 * 1_000_000_000   # all host times: µs after this whole second

    def us(t_ns):
        return (t_ns - base_ns) / 1000.0

    # (a) requests and replies of the echo service
    fr = [Frame(us(t), eth) for t, eth in frames]
    reqs = [f for f in fr if f.dst == guest_ip and f.dport == port]
    reps = [f for f in fr if f.src == guest_ip and f.sport == port]
    macs = {f.eth[6:12] for f in fr if f.src == guest_ip}   # the guest's MAC: the source of its IP frames
    from_guest = [f.t for f in fr if f.eth[6:12] in macs]
    to_guest = [f.t for f in fr if f.eth[6:12] not in macs]
    pending = {}
    for f in reps:
        pending.setdefault((f.dport, f.payload), []).append(f)
    probe = read_probe_csv(probe_csv) if probe_csv else None
    for f in reqs:
        tag, seq = struct.unpack("<II", f.payload[:8]) if len(f.payload) >= 8 else (None, None)
        if probe is not None and seq not in probe:
            continue  # a warm-up probe (not in probe's CSV)
        rep = None
        for r in pending.get((f.sport, f.payload), []):
            if r.t >= f.t:
                rep = r
                pending[(f.sport, f.payload)].remove(r)
                break
        res.packets.append({"seq": seq if seq is not None else len(res.packets), "tag": tag, "key": frame_key(f.eth),
                            "tap_req": f.t, "tap_rep": rep.t if rep else None, "len": len(f.eth)})
    if not res.packets:
        raise TimelineError(f"{pcap}: no UDP datagrams to {guest_ip} port {port}")

    # (c) guest entries by key, in trace order
    entries, tsc_hz = read_guest_trace(guest_trace)
    by_key, prev_irq = {}, None
    for i in sorted(entries):
        e = entries[i]
        # An interrupt of its own: a stamp no earlier entry carries, and not the poll's (polled without one).
        e["own_irq"] = bool(e["irq"]) and e["irq"] != e["poll"] and e["irq"] != prev_irq and (i - 1) in entries
        prev_irq = e["irq"]
        by_key.setdefault(e["key"], []).append(e)
    for p in res.packets:
        cand = by_key.get(p["key"])
        p["guest"] = cand.pop(0) if cand else None
        if p["guest"] and p["guest"]["len"] != p["len"]:
            res.warnings.append(f"seq {p['seq']}: guest entry i={p['guest']['i']} has len {p['guest']['len']}, "
                                f"pcap frame {p['len']}")
    res.align["tsc_hz"] = tsc_hz

    # (b) QEMU trace: which vq is which, the trace clock's offset, then the events of each packet
    d_lo = d_hi = None
    if qemu_trace:
        events = read_qemu_trace(qemu_trace)
        for e in events:
            e.t = us(e.t)
        d_lo, d_hi = _join_qemu(res, events, to_guest, from_guest)
        if d_lo is None:
            res.align.pop("d_mid")
        elif probe is not None:
            # probe's kernel time stamps are CLOCK_REALTIME, the trace's clock: the host stack on either side.
            for p in res.packets:
                send, recv = probe.get(p["seq"], (None, None))
                p["probe_send"] = None if send is None else us(send) - res.align["d_mid"]
                p["probe_recv"] = None if recv is None else us(recv) - res.align["d_mid"]

    # guest clock: ref = a + b * (g - g0), where ref is the QEMU trace's wall clock when there is a trace (its
    # flush and kick events bound the guest most tightly), else the pcap clock. Pcap stamps enter the wall-clock
    # constraints through the most conservative end of d's interval.
    wall = d_lo is not None
    lowers, uppers = [], []
    g0 = None
    for p in res.packets:
        g = p["guest"]
        if not g or not g["deq"] or not g["txkick"] or p["tap_rep"] is None:
            continue
        if g0 is None:
            g0 = g["deq"] / 1000.0
        lo = p["tap_req"] + (d_lo if wall else 0.0)
        hi = p["tap_rep"] + TRUNC_US + (d_hi if wall else 0.0)
        if wall and p.get("qemu_rx_flush_w") is not None:
            lo = max(lo, p["qemu_rx_flush_w"])
        if wall and p.get("qemu_tx_kick_w") is not None:
            hi = min(hi, p["qemu_tx_kick_w"] + TRUNC_US)
        lowers.append((g["deq"] / 1000.0 - g0, lo))
        if wall and irq_bound and g["own_irq"] and p.get("qemu_rx_notify_w") is not None:
            lowers.append((g["irq"] / 1000.0 - g0, p["qemu_rx_notify_w"]))
        uppers.append((g["txkick"] / 1000.0 - g0, hi))
    fit = fit_clock(lowers, uppers, skew)
    a_mid = (fit["lo"] + fit["hi"]) / 2
    res.align.update({"guest_ref": "QEMU trace" if wall else "pcap", "guest_lo": fit["lo"], "guest_hi": fit["hi"],
                      "guest_width": fit["hi"] - fit["lo"], "guest_b": fit["b"], "guest_b_lo": fit["b_lo"],
                      "guest_b_hi": fit["b_hi"], "guest_pairs": len(uppers), "irq_bound": irq_bound, "g0_us": g0,
                      "base_ns": base_ns, "skew": skew})
    if fit["hi"] < fit["lo"]:
        res.warnings.append(f"guest clock: no offset satisfies every packet (violated by "
                            f"{fit['lo'] - fit['hi']:.1f} µs); the least-violating midpoint is used")
    # The bound over every clock model (a, b) that fits, at the packets' own guest times.
    res.align["guest_bound"] = _model_spread(lowers, uppers, fit, a_mid)
    # guest -> pcap: add d's half width when the guest was aligned to the trace clock.
    half = max(fit["hi"] - fit["lo"], 0) / 2
    res.align["total_bound"] = half + (res.align["d_width"] / 2 if wall else 0.0)
    if res.align["guest_bound"] is not None:
        res.align["all_bound"] = res.align["guest_bound"] + (res.align["d_width"] / 2 if wall else 0.0)
    shift = res.align["d_mid"] if wall else 0.0

    def g2p(v):
        return None if not v else a_mid + fit["b"] * (v / 1000.0 - g0) - shift

    for p in res.packets:
        g = p["guest"] or {}
        for k in GUEST_FIELDS:
            p["guest_" + k] = g2p(g.get(k))
    res.counts = {"requests": len(res.packets),
                  "with_reply": sum(p["tap_rep"] is not None for p in res.packets),
                  "with_guest": sum(p["guest"] is not None for p in res.packets),
                  "guest_entries": len(entries)}
    for c in ("qemu_rx_flush", "qemu_rx_notify", "qemu_tx_kick", "qemu_tx_flush"):
        res.counts["with_" + c] = sum(p.get(c) is not None for p in res.packets)
    return res


def _golden(f, x0, x1, maximise=True, iters=120):
    """Extremum of a unimodal (concave for max, convex for min) function on [x0, x1]."""
    sign = 1 if maximise else -1

    def g(x):
        return sign * f(x)

    phi = (5 ** 0.5 - 1) / 2
    ends = max(g(x0), g(x1))
    c, d = x1 - phi * (x1 - x0), x0 + phi * (x1 - x0)
    gc, gd = g(c), g(d)
    for _ in range(iters):
        if gc >= gd:
            x1, d, gd = d, c, gc
            c = x1 - phi * (x1 - x0)
            gc = g(c)
        else:
            x0, c, gc = c, d, gd
            d = x0 + phi * (x1 - x0)
            gd = g(d)
    return sign * max(ends, gc, gd)


def _model_spread(lowers, uppers, fit, a_mid):
    """The largest distance, at any packet's guest time, between the chosen model (a_mid, b) and any feasible
    model (a, b'): how far off a stamp can be if the fitted rate is not the true one. For fixed g the offset
    of the feasible models spans [lo(b') + (b' - b) g, hi(b') + (b' - b) g]; hi is concave and lo convex in
    b', so both extremes are found by golden section over the feasible rates."""
    if fit["b_lo"] is None:
        return None
    gs = [g for g, _ in lowers] + [g for g, _ in uppers]
    worst = (fit["hi"] - fit["lo"]) / 2

    def lo(b):
        return max(L - b * g for g, L in lowers)

    def hi(b):
        return min(U - b * g for g, U in uppers)

    for g in (min(gs), max(gs)):
        top = _golden(lambda b: hi(b) + (b - fit["b"]) * g, fit["b_lo"], fit["b_hi"], True)
        bot = _golden(lambda b: lo(b) + (b - fit["b"]) * g, fit["b_lo"], fit["b_hi"], False)
        worst = max(worst, top - a_mid, a_mid - bot)
    return worst


def _join_qemu(res, events, to_guest, from_guest):
    flushes = [e for e in events if e.name == "virtqueue_flush"]
    if not flushes:
        raise TimelineError("QEMU trace: no virtqueue_flush events (trace virtqueue_flush,virtio_notify,"
                            "virtio_queue_notify)")
    # Which vq is which. virtio_queue_notify names the queue index (n 0 = receiveq, n 1 = transmitq); the rule
    # "the RX vq is the one flushed first after a host->guest frame" decides when that is missing, and checks it.
    by_n = {}
    for e in events:
        if e.name == "virtio_queue_notify" and e.n is not None:
            by_n.setdefault(e.n, e.vq)
    vqs = sorted({e.vq for e in flushes})
    d0 = rough_trace_offset(from_guest, [e.t for e in flushes])
    votes = {}
    if d0 is not None:
        ft = [e.t for e in flushes]
        for t in to_guest[:500]:
            i = bisect.bisect_left(ft, t + d0 - 2 * TRUNC_US)
            if i < len(ft) and ft[i] - (t + d0) < 5000:
                votes[flushes[i].vq] = votes.get(flushes[i].vq, 0) + 1
    voted_rx = max(votes, key=votes.get) if votes else None
    rx_vq = by_n.get(0) or voted_rx
    tx_vq = by_n.get(1) or next((v for v in vqs if v != rx_vq), None)
    if rx_vq is None or tx_vq is None:
        raise TimelineError(f"QEMU trace: cannot tell the RX and TX queues apart (flushed vqs {vqs})")
    if voted_rx and voted_rx != rx_vq:
        res.warnings.append(f"QEMU trace: vq {voted_rx} is flushed first after host->guest frames, but "
                            f"virtio_queue_notify names {rx_vq} as queue 0")
    res.align.update({"rx_vq": rx_vq, "tx_vq": tx_vq})
    rx_fl = [e for e in flushes if e.vq == rx_vq]
    tx_fl = [e for e in flushes if e.vq == tx_vq]
    rx_nt = [e for e in events if e.name == "virtio_notify" and e.vq == rx_vq]
    tx_kk = [e for e in events if e.name == "virtio_queue_notify" and e.vq == tx_vq]
    d_rough = rough_trace_offset([p["tap_rep"] for p in res.packets if p["tap_rep"] is not None],
                                 [e.t for e in tx_fl])
    if d_rough is None:
        raise TimelineError("QEMU trace: no TX flush near any reply: is the trace from the same run as the pcap?")

    # Two passes: match with the rough offset, bound d by causality, match again within the bound.
    d_lo, d_hi = d_rough - 50.0, d_rough + TRUNC_US
    for _ in range(2):
        _match_events(res.packets, rx_fl, rx_nt, tx_fl, tx_kk, d_lo)
        lows, ups = [], []
        for p in res.packets:
            if p.get("qemu_rx_flush_w") is not None:
                ups.append(p["qemu_rx_flush_w"] - p["tap_req"] + TRUNC_US)
            if p["tap_rep"] is not None:
                if p.get("qemu_tx_kick_w") is not None:
                    lows.append(p["qemu_tx_kick_w"] - p["tap_rep"] - TRUNC_US)
                if p.get("qemu_tx_flush_w") is not None:
                    ups.append(p["qemu_tx_flush_w"] - p["tap_rep"] + TRUNC_US)
        lo, hi = interval_of(lows, ups)
        if lo == float("-inf"):
            lo = d_rough - 1000.0
            res.warnings.append("QEMU trace: no TX kick matched; the lower bound of the trace offset is a guess")
        violation = lo - hi
        if hi < lo:
            lo, hi = (lo + hi) / 2, (lo + hi) / 2
        d_lo, d_hi = lo, hi
    d_mid = (d_lo + d_hi) / 2
    if violation > 0:
        res.warnings.append(f"QEMU trace vs pcap: no constant offset satisfies every packet (violated by "
                            f"{violation:.1f} µs): the two clocks do not run together (under -icount the pcap clock "
                            "is QEMU's instruction-driven virtual clock, which stands still while the vCPU halts). "
                            "QEMU event columns are left empty and the guest is aligned to the pcap alone")
        res.align.update({"d_lo": None, "d_hi": None, "d_mid": None, "d_width": None, "d_violation": violation})
        for p in res.packets:
            for c in ("qemu_rx_flush", "qemu_rx_notify", "qemu_tx_kick", "qemu_tx_flush"):
                p[c] = p[c + "_w"] = None
        return None, None
    res.align.update({"d_lo": d_lo, "d_hi": d_hi, "d_mid": d_mid, "d_width": d_hi - d_lo,
                      "d_constraints": len(lows) + len(ups)})
    for p in res.packets:
        for c in ("qemu_rx_flush", "qemu_rx_notify", "qemu_tx_kick", "qemu_tx_flush"):
            w = p.get(c + "_w")
            p[c] = None if w is None else w - d_mid
    return d_lo, d_hi


def _match_events(packets, rx_fl, rx_nt, tx_fl, tx_kk, d_lo):
    """Per packet, in trace-file order: the first RX flush after the request entered (converted with the lowest
    feasible offset), the RX notify between that flush and the next RX flush, the first TX flush after the reply
    was recorded, and the last TX kick before that flush that came after the RX flush."""
    rx_t = [e.t for e in rx_fl]
    tx_t = [e.t for e in tx_fl]
    nt_line = [e.line for e in rx_nt]
    kk_line = [e.line for e in tx_kk]
    used_rx, used_tx = set(), set()
    for p in packets:
        for c in ("qemu_rx_flush", "qemu_rx_notify", "qemu_tx_kick", "qemu_tx_flush"):
            p[c + "_w"] = None
        i = bisect.bisect_left(rx_t, p["tap_req"] + d_lo - 2 * TRUNC_US)
        while i < len(rx_fl) and i in used_rx:
            i += 1
        rx = None
        if i < len(rx_fl) and (p["tap_rep"] is None or rx_t[i] <= p["tap_rep"] + d_lo + 1e4):
            rx = rx_fl[i]
            used_rx.add(i)
            p["qemu_rx_flush_w"] = rx.t
            nxt = rx_fl[i + 1].line if i + 1 < len(rx_fl) else float("inf")
            k = bisect.bisect_right(nt_line, rx.line)
            if k < len(rx_nt) and rx_nt[k].line < nxt:
                p["qemu_rx_notify_w"] = rx_nt[k].t
        if p["tap_rep"] is None:
            continue
        j = bisect.bisect_left(tx_t, p["tap_rep"] + d_lo - 2 * TRUNC_US)
        while j < len(tx_fl) and j in used_tx:
            j += 1
        if j < len(tx_fl) and tx_t[j] - (p["tap_rep"] + d_lo) < 1e4:
            used_tx.add(j)
            p["qemu_tx_flush_w"] = tx_fl[j].t
            k = bisect.bisect_left(kk_line, tx_fl[j].line) - 1
            if k >= 0 and (rx is None or tx_kk[k].line > rx.line):
                p["qemu_tx_kick_w"] = tx_kk[k].t


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------

def rows_relative(res):
    """One row per packet, every column in µs after tap_req (empty where a stamp is missing)."""
    rows = []
    for p in res.packets:
        r = {"seq": p["seq"]}
        for c in COLUMNS[1:]:
            v = p.get(c)
            r[c] = None if v is None else round(v - p["tap_req"], 3)
        rows.append(r)
    return rows


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(["" if r[c] is None else (f"{r[c]:.3f}" if c != "seq" else r[c]) for c in COLUMNS])


def stages(rows):
    """Per packet, the request->reply chain cut at every stamp it has (so the pieces always add up to the tap
    round trip), plus the two side branches. Returns {(from, to): [µs, ...]} in chain order."""
    out = {}
    for r in rows:
        have = [c for c in CHAIN if r.get(c) is not None]
        if have[-1] != "tap_rep":
            continue
        for a, b in zip(have, have[1:]):
            out.setdefault((a, b), []).append(r[b] - r[a])
        out.setdefault(("tap_req", "tap_rep(total)"), []).append(r["tap_rep"])
    for a, b in OFF_CHAIN:
        for r in rows:
            if r.get(a) is not None and r.get(b) is not None:
                out.setdefault((a, b + "(side)"), []).append(r[b] - r[a])
    return out


STAGE_MEANING = {
    ("tap_req", "qemu_rx_flush"): "QEMU: tap read, copy into the posted buffer, publish used->idx",
    ("qemu_rx_flush", "qemu_rx_notify"): "QEMU: interrupt decision (event index)",
    ("qemu_rx_notify", "guest_irq"): "MSI-X injection, vCPU wake-up, ISR entry (crosses clocks)",
    ("qemu_rx_flush", "guest_irq"): "no RX notify (interrupt off or suppressed): flush to the guest's first stamp "
                                     "(in poll mode irq = poll) (crosses clocks)",
    ("qemu_rx_flush", "guest_poll"): "no interrupt: flush to the poll that found it (crosses clocks)",
    ("tap_req", "guest_irq"): "(no QEMU trace) tap to the guest's interrupt stamp (crosses clocks)",
    ("tap_req", "guest_poll"): "(no QEMU trace) tap to the poll that found it (crosses clocks)",
    ("guest_irq", "guest_poll"): "guest: ISR to the poller (main-loop wake-up)",
    ("guest_poll", "guest_deq"): "guest: poll start to this frame's dequeue",
    ("guest_deq", "guest_txkick"): "guest: lwIP input, echo, output, virtio TX post",
    ("guest_txkick", "qemu_tx_kick"): "TX notify write to QEMU's handler (crosses clocks)",
    ("qemu_tx_kick", "tap_rep"): "QEMU: TX bottom half, pop, hand to the tap",
    ("guest_txkick", "tap_rep"): "(no QEMU trace) guest TX kick to the tap (crosses clocks)",
    ("guest_txkick", "guest_done(side)"): "guest: rest of the consumer after the kick (off the RTT)",
    ("tap_rep", "qemu_tx_flush(side)"): "QEMU: TX used-ring flush after the send (off the RTT)",
    ("tap_req", "tap_rep(total)"): "round trip at the tap",
}


def copy_answer(stats):
    def g(k):
        return int(stats.get("net0." + k, 0) or 0)
    rx_zc, rx_cp, tx_zc, tx_cp = g("rx_zero_copy_frames"), g("rx_copied_frames"), g("tx_zero_copy_frames"), \
        g("tx_copied_frames")
    lines = ["copies per frame (guest counters, net0):",
             f"  host->guest: 1 copy in QEMU (iov_from_buf into the posted buffer); guest: {rx_zc} frames handed "
             f"to lwIP in place, {rx_cp} copied ({g('rx_copied_bytes')} bytes), {g('rx_dropped_nomem')} dropped "
             f"for lack of memory",
             f"  guest->host: guest: {tx_zc} frames posted in place, {tx_cp} copied ({g('tx_copied_bytes')} bytes);"
             f" then 1 copy into the host kernel (tap writev)"]
    total = rx_zc + rx_cp
    if total:
        lines.append(f"  answer: {'zero' if rx_cp == 0 else f'{rx_cp / total:.1%} of'} received frames copied "
                     f"by the guest; {'zero' if tx_cp == 0 else f'{tx_cp / max(1, tx_zc + tx_cp):.1%} of'} sent "
                     f"frames copied by the guest")
    return "\n".join(lines)


def summary(res, rows, stats=None):
    a, c = res.align, res.counts
    out = []
    out.append(f"timeline: {c['requests']} probe requests, {c['with_reply']} with a reply, {c['with_guest']} "
               f"matched to a guest trace entry (of {c['guest_entries']} entries, the rest being other frames)")
    if "d_mid" in a:
        out.append(f"  QEMU events matched: rx_flush {c['with_qemu_rx_flush']}, rx_notify {c['with_qemu_rx_notify']}"
                   f" (none when the guest kept interrupts off), tx_kick {c['with_qemu_tx_kick']}, tx_flush "
                   f"{c['with_qemu_tx_flush']}; RX vq {a['rx_vq']}, TX vq {a['tx_vq']}")
    all_ok = c["with_reply"] == c["requests"] == c["with_guest"]
    out.append(f"  join complete: {'yes' if all_ok else 'NO'}")
    out.append("clock alignment (reference: the pcap clock; every column is µs after the request's tap stamp):")
    if "d_mid" in a:
        out.append(f"  QEMU trace (wall clock) - pcap clock = {a['d_mid'] / 1e3:.3f} ms, feasible interval "
                   f"[{a['d_lo'] / 1e3:.3f}, {a['d_hi'] / 1e3:.3f}] ms, width {a['d_width']:.1f} µs, midpoint used "
                   f"(filter-dump's pcap clock is QEMU's virtual clock, not the wall clock)")
    w = a["guest_width"]
    out.append(f"  guest (ns since boot) -> {a['guest_ref']} clock: feasible offset interval width {w:.1f} µs at "
               f"rate {(a['guest_b'] - 1) * 1e6:+.1f} ppm ({a['guest_pairs']} packets' causality constraints"
               f"{', incl. irq >= RX notify' if a['irq_bound'] else ''}), midpoint used: "
               f"error +-{max(w, 0) / 2:.1f} µs")
    if a["guest_ref"] != "pcap":
        out.append(f"  alignment error bound, guest stamp vs pcap stamp: +-{a['total_bound']:.1f} µs "
                   f"(guest vs QEMU event: +-{max(w, 0) / 2:.1f} µs; "
                   f"QEMU event vs pcap: +-{a['d_width'] / 2:.1f} µs)")
    if a.get("guest_b_lo") is not None and a["skew"] == "fit":
        out.append(f"  feasible guest rates {(a['guest_b_lo'] - 1) * 1e6:+.1f}..{(a['guest_b_hi'] - 1) * 1e6:+.1f} ppm "
                   f"(the guest's PIT-calibrated TSC rate, tsc_hz={a['tsc_hz']}, is off by about that); over all of "
                   f"them a guest stamp stays within +-{a['all_bound']:.1f} µs of where it is drawn")
    for wmsg in res.warnings:
        out.append("  warning: " + wmsg)
    st = stages(rows)
    if st:
        total = _percentile(st[("tap_req", "tap_rep(total)")], 50) if ("tap_req", "tap_rep(total)") in st else None
        out.append("where the time goes (µs; nearest-rank percentiles over packets):")
        out.append(f"  {'stage':<36} {'n':>4} {'p50':>9} {'p99':>9} {'of RTT':>6}  meaning")
        for (s0, s1), v in st.items():
            share = f"{_percentile(v, 50) / total:6.0%}" if total and not s1.endswith(")") else ""
            out.append(f"  {s0 + ' -> ' + s1:<36} {len(v):>4} {_percentile(v, 50):>9.1f} {_percentile(v, 99):>9.1f} "
                       f"{share:>6}  {STAGE_MEANING.get((s0, s1), '')}")
    host = [(p["tap_req"] - p["probe_send"], p["probe_recv"] - p["tap_rep"]) for p in res.packets
            if p.get("probe_send") is not None and p.get("probe_recv") is not None and p["tap_rep"] is not None]
    if host:
        tx, rx = [h[0] for h in host], [h[1] for h in host]
        rtt = [p["probe_recv"] - p["probe_send"] for p in res.packets if p.get("probe_recv") is not None]
        out.append(f"host side (probe's kernel stamps, CLOCK_REALTIME like the trace; +-{a['d_width'] / 2:.1f} µs):")
        for name, v, meaning in (("probe send -> tap_req", tx, "host UDP/IP output, tap queue, QEMU's tap read"),
                                 ("tap_rep -> probe receive", rx, "QEMU's tap write, host input to the socket"),
                                 ("probe send -> receive (probe RTT)", rtt, "")):
            out.append(f"  {name:<36} {len(v):>4} {_percentile(v, 50):>9.1f} {_percentile(v, 99):>9.1f} "
                       f"{'':>6}  {meaning}")
        if min(min(tx), min(rx)) < -a["d_width"] - 2 * TRUNC_US:
            out.append("  warning: a probe stamp falls outside the tap stamps: probe's CSV is not CLOCK_REALTIME "
                       "(method=user?), so these lines are meaningless")
    if stats:
        out.append(copy_answer(stats))
    return "\n".join(out) + "\n"


def stage_medians(rows):
    """{'from->to': (p50, p99)} — what the unit test pins and plot.py draws."""
    return {f"{a}->{b}": (_percentile(v, 50), _percentile(v, 99)) for (a, b), v in stages(rows).items()}


# ---------------------------------------------------------------------------------------------------------
# Live capture (used by `run` and by bench/modes.py)
# ---------------------------------------------------------------------------------------------------------

def sh(*args, **kw):
    """guest_console.sh(), failing with TimelineError."""
    return guest_console.sh(*args, error=TimelineError, **kw)


def netns_exists(ns):
    return ns in [l.split()[0] for l in sh("ip", "netns", "list").splitlines() if l.strip()]


class LiveGuest(guest_console.ConsoleGuest):
    """The guest on a tap in a network namespace of its own: created here, always deleted by stop()."""
    error = TimelineError

    def __init__(self, netns, tap, run_args=(), timeout=600, log_path=None):
        if os.geteuid() != 0:
            raise TimelineError("needs root (a network namespace and a tap)")
        if netns_exists(netns):
            raise TimelineError(f"network namespace {netns} already exists: pick a name of your own (it is "
                                "created and deleted here)")
        self.ns, self.tap, self.log_path = netns, tap, log_path
        sh("ip", "netns", "add", netns)
        cmd = [ROOT / "run-qemu.sh", "--no-build", "--net", "tap", "--netns", netns, "--tap", tap,
               "--timeout", str(timeout), *run_args]
        try:
            self.start_process(cmd)
        except Exception:
            sh("ip", "netns", "del", netns, check=False)
            raise

    def ready(self, timeout=60):
        self.wait_for(r"^services:.*status/7007", timeout)
        self.wait_for(r"^net0: IPv4 ", timeout)
        # ARP and the first frames: the first query may wait for the neighbour entry.
        self.control("stats")

    def control(self, *cmds, timeout=30):
        """Control commands over UDP 7007 from inside the namespace; '@trace-all' fetches every trace page."""
        out = sh("/usr/bin/python3", __file__, "ctl", "--json", "--dst", GUEST_IP, *cmds, ns=self.ns,
                 timeout=timeout)
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise TimelineError(f"control {cmds}: {out[-500:]}")

    def probe(self, count, rate, warmup, csv_path, pattern="fixed", size=64, extra=()):
        return sh(ROOT / "build/tools/probe", "--dst", GUEST_IP, "--port", ECHO_PORT, "--count", count, "--rate",
                  rate, "--warmup", warmup, "--pattern", pattern, "--size", size, "--csv", csv_path, *extra,
                  ns=self.ns, timeout=(count + warmup) / rate + 60, check=False)

    def stop(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.console("exit", timeout=5)
                    self.proc.wait(10)
                except (TimelineError, subprocess.TimeoutExpired, BrokenPipeError, OSError):
                    pass
            self.stop_process()
        finally:
            time.sleep(0.2)
            if self.log_path:
                pathlib.Path(self.log_path).write_text(self.text() + "\n")
            sh("ip", "netns", "del", self.ns, check=False)


def _ctl_main(argv):
    """Inside the namespace: send each command to the status service and print the answers (--json: as one JSON
    list). '@trace-all' fetches every page of the guest's trace ring."""
    ap = argparse.ArgumentParser(prog="timeline.py ctl", description=_ctl_main.__doc__)
    ap.add_argument("--dst", default=GUEST_IP)
    ap.add_argument("--port", type=int, default=STATUS_PORT)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("cmds", nargs="+")
    a = ap.parse_args(argv)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)

    def ask(cmd):
        for _ in range(5):
            s.sendto(cmd.encode(), (a.dst, a.port))
            try:
                return s.recv(65536).decode(errors="replace")
            except socket.timeout:
                continue
        raise SystemExit(f"ctl: no answer to {cmd!r} from {a.dst}:{a.port}")

    answers = []
    for cmd in a.cmds:
        if cmd != "@trace-all":
            answers.append(ask(cmd))
            continue
        pages, start = [], 0
        while True:
            page = ask(f"trace {start}")
            pages.append(page)
            hdr = GUEST_HDR_RE.search(page)
            idx = [int(m.group(1)) for m in GUEST_RE.finditer(page)]
            if not hdr or not idx:
                break
            start = max(idx) + 1
            if start >= int(hdr.group(3)):
                break
        answers.append("".join(pages))
    print(json.dumps(answers) if a.json else "".join(answers), end="\n" if a.json else "")
    return 0


def live_run(a):
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in (F_PCAP, F_QTRACE, F_GTRACE, F_STATS, F_HIST, F_PROBE, F_CSV, F_SUMMARY):
        (out / f).unlink(missing_ok=True)
    run_args = ["--pcap", out / F_PCAP, "--trace", TRACE_EVENTS, "--trace-file", out / F_QTRACE,
                "--qemu-arg", "-msg", "--qemu-arg", "timestamp=on"]
    if a.cmdline:
        run_args += ["--cmdline", a.cmdline]
    for q in a.qemu_arg or []:
        run_args += ["--qemu-arg", q]
    tap = a.tap or f"tl{os.getpid() % 100000}"
    print(f"timeline: booting the guest in namespace {a.netns} (tap {tap}) ...", flush=True)
    g = LiveGuest(a.netns, tap, run_args, timeout=a.count / a.rate + 240, log_path=out / F_CONSOLE)
    try:
        g.ready()
        setup = []
        if a.mode:
            setup.append(f"mode {a.mode}" + (f" {a.budget}" if a.budget else ""))
        if a.coalesce:
            setup.append(f"coalesce {a.coalesce}")
        if a.consumer:
            setup.append(f"consumer {a.consumer}")
        g.control(*setup, "reset", "trace on")
        print(f"timeline: {a.count} probes at {a.rate}/s (+{a.warmup} warm-up) ...", flush=True)
        txt = g.probe(a.count, a.rate, a.warmup, out / F_PROBE, a.pattern)
        (out / F_PROBE_OUT).write_text(txt)
        print("  " + "\n  ".join(l for l in txt.splitlines() if l.startswith("probe: sent")), flush=True)
        stats, hist, _, pages = g.control("stats", "hist", "trace off", "@trace-all", timeout=120)
        (out / F_STATS).write_text(stats)
        (out / F_HIST).write_text(hist)
        (out / F_GTRACE).write_text(pages)
    finally:
        g.stop()
    print(f"timeline: capture in {out}/ ({F_PCAP}, {F_QTRACE}, {F_GTRACE}, {F_STATS}, {F_HIST}, {F_PROBE})")
    return join_dir(out, a.guest_ip, a.port, a.skew, a.irq_bound)


def join_dir(d, guest_ip=GUEST_IP, port=ECHO_PORT, skew="fit", irq_bound=False, write=True):
    d = pathlib.Path(d)
    q = d / F_QTRACE
    res = join(d / F_PCAP, d / F_GTRACE, q if q.exists() else None,
               d / F_PROBE if (d / F_PROBE).exists() else None, guest_ip, port, skew, irq_bound)
    stats = read_stats(d / F_STATS) if (d / F_STATS).exists() else None
    rows = rows_relative(res)
    text = summary(res, rows, stats)
    if write:
        write_csv(rows, d / F_CSV)
        (d / F_SUMMARY).write_text(text)
    print(text, end="")
    if write:
        print(f"written: {d / F_CSV}, {d / F_SUMMARY}")
    return 0


def trim(src, dst, max_packets):
    """Cut a capture directory down to its first max_packets joined probes (for a committed test fixture)."""
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    res = join(src / F_PCAP, src / F_GTRACE, src / F_QTRACE, src / F_PROBE, skew="fit")
    keep = [p for p in res.packets if p["tap_rep"] is not None and p["guest"]][:max_packets]
    t0, t1 = keep[0]["tap_req"], max(p["tap_rep"] for p in keep)
    seqs, keys = {p["seq"] for p in keep}, {p["guest"]["i"] for p in keep}
    base = res.align["base_ns"]
    recs = []
    for t, pkt in read_pcap(src / F_PCAP):
        tu = (t - base) / 1000.0
        f = Frame(tu, pkt[vnet_offset(pkt):])
        if t0 - 1 <= tu <= t1 + 1 and f.payload[4:8] and (f.dport == ECHO_PORT or f.sport == ECHO_PORT) and \
                struct.unpack("<I", f.payload[4:8])[0] in seqs:
            recs.append((t, pkt))
    write_pcap(dst / F_PCAP, recs)
    d = res.align["d_mid"]
    lines = []
    for line in (src / F_QTRACE).read_text().splitlines():
        m = TRACE_RE.match(line)
        if m:
            tu = (int(m.group(1)) * 1_000_000_000 + int(m.group(2)) * 1000 - base) / 1000.0 - d
            if t0 - 500 <= tu <= t1 + 500:
                lines.append(line)
    (dst / F_QTRACE).write_text("\n".join(lines) + "\n")
    g = (src / F_GTRACE).read_text().splitlines()
    hdr = next(l for l in g if GUEST_HDR_RE.search(l))
    (dst / F_GTRACE).write_text("\n".join([hdr] + [l for l in g if (m := GUEST_RE.search(l))
                                                   and int(m.group(1)) in keys]) + "\n")
    if (src / F_STATS).exists():
        (dst / F_STATS).write_text((src / F_STATS).read_text())
    with open(src / F_PROBE) as f, open(dst / F_PROBE, "w", newline="") as o:
        r = csv.DictReader(f)
        w = csv.DictWriter(o, r.fieldnames)
        w.writeheader()
        for row in r:
            if int(row["seq"]) in seqs:
                w.writerow(row)
    print(f"trim: {len(keep)} packets, {len(recs)} pcap records, {len(lines)} QEMU trace lines -> {dst}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ctl"]:
        return _ctl_main(argv[1:])
    ap = argparse.ArgumentParser(prog="timeline.py", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--guest-ip", default=GUEST_IP)
        p.add_argument("--port", type=int, default=ECHO_PORT, help="the echo port (default 7)")
        p.add_argument("--skew", default="fit", help="guest clock rate: 'fit' (default) or a fixed error in ppm")
        p.add_argument("--irq-bound", action="store_true",
                       help="also bound the guest clock by 'an interrupt of its own comes after QEMU's RX notify' "
                            "(tighter; assumes each such irq stamp belongs to this frame's notify)")

    j = sub.add_parser("join", help="join recorded files")
    j.add_argument("--dir", help=f"a capture directory ({F_PCAP}, {F_QTRACE}, {F_GTRACE}, {F_STATS}, {F_PROBE})")
    j.add_argument("--pcap")
    j.add_argument("--qemu-trace")
    j.add_argument("--guest-trace")
    j.add_argument("--stats")
    j.add_argument("--probe-csv", help="probe's --csv: keep only its (measured) probes, not the warm-up")
    j.add_argument("--csv", help="write the per-packet CSV here")
    j.add_argument("--summary", help="write the summary here")
    common(j)

    r = sub.add_parser("run", help="boot the guest in a namespace of its own, capture, probe, join")
    r.add_argument("--netns", required=True, help="namespace to create (must not exist; always deleted)")
    r.add_argument("--tap", help="tap name inside it (default tl<pid>)")
    r.add_argument("--out", default=str(ROOT / "build/timeline"))
    r.add_argument("--count", type=int, default=200)
    r.add_argument("--rate", type=float, default=100.0)
    r.add_argument("--warmup", type=int, default=5)
    r.add_argument("--pattern", default="fixed", choices=["fixed", "poisson", "burst"])
    r.add_argument("--mode", choices=["irq", "napi", "poll", "coalesce"])
    r.add_argument("--budget", type=int)
    r.add_argument("--coalesce", metavar="'FRAMES USEC'")
    r.add_argument("--consumer", choices=["lwip", "noop"])
    r.add_argument("--cmdline", help="kernel command line (run-qemu.sh --cmdline)")
    r.add_argument("--qemu-arg", action="append", help="passed to run-qemu.sh --qemu-arg (repeatable)")
    common(r)

    t = sub.add_parser("trim", help="cut a capture directory down to N packets (test fixtures)")
    t.add_argument("--dir", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--max", type=int, default=30)

    a = ap.parse_args(argv)
    try:
        if a.cmd == "run":
            if a.count < 1 or a.count > 1000 or a.rate <= 0 or a.rate > 1000:
                ap.error("run: --count 1..1000 (the guest keeps the last 1024 frames) and --rate 0..1000")
            return live_run(a)
        if a.cmd == "trim":
            return trim(a.dir, a.out, a.max)
        if a.dir:
            if not (a.csv or a.summary):
                return join_dir(a.dir, a.guest_ip, a.port, a.skew, a.irq_bound)
            d = pathlib.Path(a.dir)
            a.pcap, a.guest_trace = a.pcap or d / F_PCAP, a.guest_trace or d / F_GTRACE
            a.qemu_trace = a.qemu_trace or (d / F_QTRACE if (d / F_QTRACE).exists() else None)
            a.stats = a.stats or (d / F_STATS if (d / F_STATS).exists() else None)
            a.probe_csv = a.probe_csv or (d / F_PROBE if (d / F_PROBE).exists() else None)
        if not a.pcap or not a.guest_trace:
            ap.error("join: give --dir, or --pcap and --guest-trace")
        res = join(a.pcap, a.guest_trace, a.qemu_trace, a.probe_csv, a.guest_ip, a.port, a.skew, a.irq_bound)
        rows = rows_relative(res)
        text = summary(res, rows, read_stats(a.stats) if a.stats else None)
        if a.csv:
            write_csv(rows, a.csv)
        if a.summary:
            pathlib.Path(a.summary).write_text(text)
        print(text, end="")
        return 0
    except (TimelineError, FileNotFoundError) as e:
        print(f"timeline: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
