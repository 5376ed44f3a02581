#!/usr/bin/python3
"""Host-side clients for the lwIP service tests (tests/system/test_lwip.py).

Meant to run inside a test's own network namespace (`ip netns exec NS /usr/bin/python3 lwip_clients.py ...`)
or against 127.0.0.1 port forwards of QEMU's user network. Every mode prints one JSON object on stdout when
it finishes. Everything is bounded: counts, sizes and durations have hard upper limits.

    udp-echo --host H --port 7 --count 1000 --max-size 1472 [--timeout 1.0] [--retries 3] [--seed S]
        Stop-and-wait: one datagram of random bytes at a time, sizes spread over 1..max-size (both ends
        included) in a shuffled order; the reply must equal the request byte for byte. A datagram without
        a reply within --timeout is sent again (at most --retries times); late replies to an earlier
        attempt are recognised and counted as "stale", anything else received as "mismatched". After
        --max-failures datagrams without any reply (default 5) it stops early ("attempted" < count).
    tcp-echo --host H --port 7 --bytes N [--conns C] [--timeout 120] [--seed S]
             [--early-shutdown] [--read-after-send] [--rcvbuf BYTES]
        C connections at once, each sending N random bytes from a sender thread while the thread of the
        connection reads the echo. By default the client half-closes (SHUT_WR) once all N bytes are back
        and then awaits the peer's close (EOF). --early-shutdown half-closes right after the last byte is
        sent instead (an echo server must still return everything, then close); --read-after-send starts
        reading only once everything is sent; --rcvbuf sets SO_RCVBUF before connecting. A connection that
        receives nothing for --idle-timeout seconds (default 15) gives up.
    tcp-stream --host H --port 7 --bytes N [--timeout 600] [--seed S] [--chunk BYTES]
        One connection streaming N bytes (up to 4 GiB) that are never held in memory: the sender draws them
        chunk by chunk from a generator seeded with S, the reader draws the same sequence from a second
        generator with the same seed and compares what comes back as it arrives (first_diff), while both sides
        hash (SHA-256 of what was sent and of what came back). Then the half-close and the peer's EOF, as in
        tcp-echo. Bounded by --timeout and --idle-timeout. Prints tcp-echo's JSON shape (one result).
    status --host H --port 7007 [--reset]
        One query to the status service ("stats", or "reset": counters zeroed first); its reply text.
    arp --iface tap0 --target IP [--timeout 2]
        An ARP who-has from the interface's own MAC/IPv4 address (scapy srp); the replies' sender MACs.

--host may be an IPv4 or IPv6 address; an IPv6 link-local one carries its interface (fe80::1%tap0).
"""
import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time

from hostside import bounded

MAX_COUNT = 100000
MAX_BYTES = 128 << 20  # held in memory (the first difference is located against it)
MAX_CONNS = 64
MAX_SECONDS = 300
MAX_STREAM_BYTES = 4 << 30  # tcp-stream: generated and checked on the fly, never held
MAX_STREAM_SECONDS = 900


def resolve(host, port, kind):
    """(family, sockaddr) for a numeric IPv4 or IPv6 address (with %scope for link-local); no name look-up."""
    fam, _, _, _, addr = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_NUMERICHOST)[0]
    return fam, addr


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


# ---- UDP echo ----

def udp_sizes(count, max_size, rng):
    """`count` sizes spread evenly over 1..max_size (1 and max_size always included), shuffled."""
    if count == 1:
        return [max_size]
    sizes = [1 + (i * (max_size - 1)) // (count - 1) for i in range(count)]
    rng.shuffle(sizes)
    return sizes


def udp_echo(a):
    rng = random.Random(a.seed)
    sizes = udp_sizes(a.count, a.max_size, rng)
    fam, addr = resolve(a.host, a.port, socket.SOCK_DGRAM)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect(addr)
    sent_before = set()  # every payload sent so far (to recognise late replies to earlier attempts)
    rtts, retries, stale, mismatched, failed, mismatch_examples = [], 0, 0, 0, [], []
    deadline = time.monotonic() + a.deadline
    for i, size in enumerate(sizes):
        payload = rng.randbytes(size)
        ok = False
        for attempt in range(a.retries + 1):
            if time.monotonic() > deadline:
                break
            if attempt:
                retries += 1
            t0 = time.monotonic()
            s.send(payload)
            end = t0 + a.timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionRefusedError:  # ICMP port unreachable from an earlier datagram
                    mismatched += 1
                    mismatch_examples.append({"index": i, "error": "connection refused"})
                    continue
                if data == payload:
                    rtts.append(time.monotonic() - t0)
                    ok = True
                    break
                if data in sent_before:
                    stale += 1
                else:
                    mismatched += 1
                    if len(mismatch_examples) < 5:
                        mismatch_examples.append({"index": i, "sent_len": size, "got_len": len(data),
                                                  "sent_head": payload[:16].hex(), "got_head": data[:16].hex()})
            if ok:
                break
        sent_before.add(payload)
        if not ok:
            failed.append({"index": i, "size": size})
            if len(failed) >= a.max_failures:
                break  # the peer is gone: do not wait out every remaining datagram
    # Replies still in flight (to retried datagrams) count as stale; anything else arriving now is wrong.
    s.settimeout(0.2)
    try:
        while True:
            data = s.recv(65536)
            if data in sent_before:
                stale += 1
            else:
                mismatched += 1
    except (socket.timeout, ConnectionRefusedError):
        pass
    s.close()
    us = [r * 1e6 for r in rtts]
    return {"count": a.count, "attempted": i + 1, "echoed": len(rtts), "failed": len(failed),
            "failed_examples": failed[:10],
            "retries": retries, "stale": stale, "mismatched": mismatched, "mismatch_examples": mismatch_examples,
            "min_size": min(sizes), "max_size": max(sizes), "distinct_sizes": len(set(sizes)),
            "rtt_us_p50": percentile(us, 50), "rtt_us_p99": percentile(us, 99),
            "rtt_us_min": min(us) if us else None, "rtt_us_max": max(us) if us else None}


# ---- TCP echo ----

def end_connection(r, s, th, send_err, deadline):
    """After the reader's loop: wait for the sender thread (bounded), report its error unless the reader already
    had one, close the socket."""
    th.join(max(0.1, deadline - time.monotonic()))
    if send_err and not r["error"]:
        r["error"] = f"send: {send_err[0]}"
    s.close()


def tcp_conn(a, index, data, result):
    r = result
    r.update(index=index, bytes=len(data), sent=0, received=0, eof=False, error=None,
             sha256_sent=hashlib.sha256(data).hexdigest(), sha256_received=None, first_diff=None)
    deadline = time.monotonic() + a.timeout
    t0 = time.monotonic()
    try:
        fam, addr = resolve(a.host, a.port, socket.SOCK_STREAM)
        s = socket.socket(fam, socket.SOCK_STREAM)
        if a.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        s.settimeout(10)
        s.connect(addr)
    except OSError as e:
        r["error"] = f"connect: {e!r}"
        return
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send_err = []

    def sender():
        try:
            view = memoryview(data)
            off = 0
            while off < len(view):
                s.settimeout(max(0.1, deadline - time.monotonic()))
                n = s.send(view[off:off + 65536])
                off += n
                r["sent"] = off
            if a.early_shutdown:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            send_err.append(repr(e))

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    if a.read_after_send:
        th.join(max(0.1, deadline - time.monotonic()))
    shut = a.early_shutdown
    h = hashlib.sha256()
    got = bytearray() if a.keep else None
    received = 0
    last_progress = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                r["error"] = f"timeout after {a.timeout} s ({received} of {len(data)} bytes back)"
                break
            if now - last_progress > a.idle_timeout:
                r["error"] = (f"no data for {a.idle_timeout} s ({received} of {len(data)} bytes back, "
                              f"{r['sent']} sent)")
                break
            s.settimeout(min(left, 1.0))
            try:
                chunk = s.recv(1 << 20)
            except socket.timeout:
                continue
            last_progress = time.monotonic()
            if not chunk:
                r["eof"] = True
                break
            if got is not None:
                got += chunk
            elif r["first_diff"] is None and chunk != data[received:received + len(chunk)]:
                for k, b in enumerate(chunk):
                    if received + k >= len(data) or data[received + k] != b:
                        r["first_diff"] = received + k
                        break
            h.update(chunk)
            received += len(chunk)
            r["received"] = received
            if received >= len(data) and not shut:
                # Everything is back: now the half-close, and the peer should close its side too.
                th.join(max(0.1, deadline - time.monotonic()))
                s.shutdown(socket.SHUT_WR)
                shut = True
    except OSError as e:
        r["error"] = f"recv: {e!r}"
    end_connection(r, s, th, send_err, deadline)
    r["seconds"] = round(time.monotonic() - t0, 3)
    r["sha256_received"] = h.hexdigest()
    if got is not None and got != data:
        r["first_diff"] = next((k for k in range(min(len(got), len(data))) if got[k] != data[k]),
                               min(len(got), len(data)))
    r["equal"] = r["sha256_received"] == r["sha256_sent"] and received == len(data)
    r["mbit_s"] = round(8 * received / max(r["seconds"], 1e-6) / 1e6, 2)


def tcp_echo(a):
    rng = random.Random(a.seed)
    datas = [rng.randbytes(a.bytes) for _ in range(a.conns)]
    results = [{} for _ in range(a.conns)]
    threads = [threading.Thread(target=tcp_conn, args=(a, i, datas[i], results[i]), daemon=True)
               for i in range(a.conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.timeout + 15)
    secs = time.monotonic() - t0
    for r in results:
        r.setdefault("error", "thread did not finish")
        r.setdefault("equal", False)
    return {"conns": a.conns, "bytes_each": a.bytes, "seconds": round(secs, 3),
            "all_equal": all(r["equal"] for r in results), "all_eof": all(r.get("eof") for r in results),
            "total_mbit_s": round(8 * sum(r.get("received", 0) for r in results) / max(secs, 1e-6) / 1e6, 2),
            "results": results}


# ---- TCP stream: echo of a generated sequence, checked on the fly ----

def stream_chunks(seed, nbytes, chunk):
    """The sequence both sides of tcp-stream draw: nbytes from random.Random(seed), chunk bytes at a time."""
    rng = random.Random(seed)
    left = nbytes
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


class StreamCheck:
    """Compares what comes back with the generated sequence as it arrives: first_diff is the offset of the first
    byte that differs from it (or lies past its end), None while everything matched."""

    def __init__(self, seed, nbytes, chunk):
        self.expect = stream_chunks(seed, nbytes, chunk)
        self.want, self.want_off = b"", 0  # the expected chunk being compared, how much of it matched
        self.seen = 0
        self.first_diff = None

    def feed(self, got):
        pos = 0  # bytes slices compare with memcmp (a memoryview compares element by element)
        while self.first_diff is None and pos < len(got):
            if self.want_off == len(self.want):
                self.want, self.want_off = next(self.expect, b""), 0
                if not self.want:  # more came back than was sent
                    self.first_diff = self.seen + pos
                    break
            n = min(len(got) - pos, len(self.want) - self.want_off)
            if got[pos:pos + n] != self.want[self.want_off:self.want_off + n]:
                k = next(i for i in range(n) if got[pos + i] != self.want[self.want_off + i])
                self.first_diff = self.seen + pos + k
            pos, self.want_off = pos + n, self.want_off + n
        self.seen += len(got)


def tcp_stream(a):
    r = {"index": 0, "bytes": a.bytes, "sent": 0, "received": 0, "eof": False, "error": None,
         "sha256_sent": None, "sha256_received": None, "first_diff": None}
    deadline = time.monotonic() + a.timeout
    t0 = time.monotonic()
    try:
        fam, addr = resolve(a.host, a.port, socket.SOCK_STREAM)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(addr)
    except OSError as e:
        r["error"] = f"connect: {e!r}"
        return {"conns": 1, "bytes_each": a.bytes, "seconds": 0, "all_equal": False, "all_eof": False,
                "total_mbit_s": 0, "results": [r]}
    send_err = []
    hs = hashlib.sha256()

    def sender():
        try:
            for chunk in stream_chunks(a.seed, a.bytes, a.chunk):
                view, off = memoryview(chunk), 0
                while off < len(view):
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    off += s.send(view[off:])
                hs.update(chunk)
                r["sent"] += len(chunk)
        except OSError as e:
            send_err.append(repr(e))

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    check = StreamCheck(a.seed, a.bytes, a.chunk)
    h = hashlib.sha256()
    received, shut, last_progress = 0, False, time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now > deadline:
                r["error"] = f"timeout after {a.timeout} s ({received} of {a.bytes} bytes back)"
                break
            if now - last_progress > a.idle_timeout:
                r["error"] = f"no data for {a.idle_timeout} s ({received} of {a.bytes} bytes back, {r['sent']} sent)"
                break
            s.settimeout(min(deadline - now, 1.0))
            try:
                got = s.recv(1 << 20)
            except socket.timeout:
                continue
            last_progress = time.monotonic()
            if not got:
                r["eof"] = True
                break
            h.update(got)
            check.feed(got)
            r["first_diff"] = check.first_diff
            received += len(got)
            r["received"] = received
            if received >= a.bytes and not shut:
                th.join(max(0.1, deadline - time.monotonic()))
                s.shutdown(socket.SHUT_WR)
                shut = True
    except OSError as e:
        r["error"] = f"recv: {e!r}"
    end_connection(r, s, th, send_err, deadline)
    secs = time.monotonic() - t0
    r["seconds"] = round(secs, 3)
    r["sha256_sent"], r["sha256_received"] = hs.hexdigest(), h.hexdigest()
    r["equal"] = (r["sha256_received"] == r["sha256_sent"] and received == a.bytes == r["sent"]
                  and r["first_diff"] is None)
    r["mbit_s"] = round(8 * received / max(secs, 1e-6) / 1e6, 2)
    return {"conns": 1, "bytes_each": a.bytes, "seconds": r["seconds"], "all_equal": r["equal"],
            "all_eof": r["eof"], "total_mbit_s": r["mbit_s"], "results": [r]}


# ---- status ----

def status(a):
    fam, addr = resolve(a.host, a.port, socket.SOCK_DGRAM)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(a.timeout)
    text, tries = None, 0
    for tries in range(1, 4):
        s.sendto(b"reset" if a.reset else b"stats", addr)
        try:
            data, _ = s.recvfrom(65536)
            text = data.decode("utf-8", "replace")
            break
        except socket.timeout:
            continue
    s.close()
    return {"text": text, "tries": tries}


# ---- ARP ----

def arp(a):
    import logging
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.all import ARP, Ether, conf, get_if_addr, get_if_hwaddr, srp
    conf.verb = 0
    mac, ip = get_if_hwaddr(a.iface), get_if_addr(a.iface)
    req = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=ip, pdst=a.target)
    ans, _ = srp(req, iface=a.iface, timeout=a.timeout, retry=0, multi=True)
    replies = [{"hwsrc": r[ARP].hwsrc, "psrc": r[ARP].psrc, "op": int(r[ARP].op), "eth_dst": r[Ether].dst}
               for _, r in ans if ARP in r]
    return {"iface": a.iface, "iface_mac": mac, "iface_ip": ip, "target": a.target, "replies": replies}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    u = sub.add_parser("udp-echo")
    u.add_argument("--host", required=True)
    u.add_argument("--port", type=int, default=7)
    u.add_argument("--count", type=bounded(int, 1, MAX_COUNT), default=1000)
    u.add_argument("--max-size", type=bounded(int, 1, 65507), default=1472)
    u.add_argument("--timeout", type=bounded(float, 0.01, 10), default=1.0)
    u.add_argument("--retries", type=bounded(int, 0, 10), default=3)
    u.add_argument("--deadline", type=bounded(float, 1, MAX_SECONDS), default=120)
    u.add_argument("--max-failures", type=bounded(int, 1, MAX_COUNT), default=5,
                   help="stop after this many datagrams without a reply")
    u.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("tcp-echo")
    t.add_argument("--host", required=True)
    t.add_argument("--port", type=int, default=7)
    t.add_argument("--bytes", type=bounded(int, 1, MAX_BYTES), required=True)
    t.add_argument("--conns", type=bounded(int, 1, MAX_CONNS), default=1)
    t.add_argument("--timeout", type=bounded(float, 1, MAX_SECONDS), default=120)
    t.add_argument("--keep", action="store_true", help="keep the received bytes to locate a difference")
    t.add_argument("--idle-timeout", type=bounded(float, 1, MAX_SECONDS), default=15,
                   help="give up when nothing arrives for this long")
    t.add_argument("--early-shutdown", action="store_true")
    t.add_argument("--read-after-send", action="store_true")
    t.add_argument("--rcvbuf", type=bounded(int, 0, 16 << 20), default=0)
    t.add_argument("--seed", type=int, default=1)
    ts = sub.add_parser("tcp-stream")
    ts.add_argument("--host", required=True)
    ts.add_argument("--port", type=int, default=7)
    ts.add_argument("--bytes", type=bounded(int, 1, MAX_STREAM_BYTES), required=True)
    ts.add_argument("--chunk", type=bounded(int, 1, 16 << 20), default=1 << 20)
    ts.add_argument("--timeout", type=bounded(float, 1, MAX_STREAM_SECONDS), default=600)
    ts.add_argument("--idle-timeout", type=bounded(float, 1, MAX_SECONDS), default=15,
                    help="give up when nothing arrives for this long")
    ts.add_argument("--seed", type=int, default=1)
    st = sub.add_parser("status")
    st.add_argument("--host", required=True)
    st.add_argument("--port", type=int, default=7007)
    st.add_argument("--reset", action="store_true")
    st.add_argument("--timeout", type=bounded(float, 0.1, 10), default=2.0)
    ar = sub.add_parser("arp")
    ar.add_argument("--iface", required=True)
    ar.add_argument("--target", required=True)
    ar.add_argument("--timeout", type=bounded(float, 0.1, 10), default=2.0)
    a = ap.parse_args()
    fn = {"udp-echo": udp_echo, "tcp-echo": tcp_echo, "tcp-stream": tcp_stream, "status": status, "arp": arp}[a.mode]
    res = fn(a)
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
