#!/usr/bin/python3
"""Host-side TCP clients for tests/system/test_tcp_hardening.py: what any host on the guest's link can do.

Runs inside a test's own network namespace (`ip netns exec NS /usr/bin/python3 tcp_clients.py ...`) and sends
only on the given interface, to the guest's MAC and addresses. Every mode prints one JSON object on stdout.
Counts, rates and durations have hard upper limits.

    synflood --iface tap0 --guest-mac MAC [--guest 192.168.77.2] [--port 7] [--rate 2000] [--seconds 10]
             [--probe-interval 0.05]
        Spoofed SYNs from unused addresses of the guest's /24 (.10 .. .250, random locally administered MACs that
        nobody answers for) at --rate per second, paced in 5 ms batches, while the main thread makes genuine
        echo connections one after another (connect timeout 1 s, then one byte echoed). Reports how many SYNs
        went out and, per genuine attempt, whether it connected within 1 s and how long it took.
    isn --iface tap0 --guest-mac MAC [--count 200]
        One SYN per source port from the namespace's own address (192.168.77.1) to the echo port; records the
        sequence number of every SYN-ACK (the guest's initial sequence number). The host kernel answers those
        SYN-ACKs with RST (it has no such connections), so no guest state is left behind.
    hold --conns N [--probe] [--wait-eof S] [--status]
        Opens N TCP connections to the echo port (giving up after 5 failures in a row) and keeps them idle; then --probe makes one more echo
        connection (timed; "refused" if the guest answers with RST), --wait-eof waits up to S seconds for the
        guest to close the idle ones, --status appends the status service's `stats` text (UDP 7007).
"""
import argparse
import json
import os
import random
import resource
import select
import socket
import struct
import threading
import time

MAX_RATE = 5000
MAX_SECONDS = 60
MAX_CONNS = 4096
ETH_P_ALL = 0x0003


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def syn_frame(dst_mac, src_mac, src_ip, dst_ip, sport, dport, seq):
    """Ethernet + IPv4 + TCP SYN with an MSS option (as a real client sends)."""
    opts = struct.pack("!BBH", 2, 4, 1460)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, 64, 6, 0, src_ip,
                     dst_ip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def iface_mac(iface):
    with open(f"/sys/class/net/{iface}/address") as f:
        return mac_bytes(f.read().strip())


def echo_once(host, port, timeout):
    """One echo connection: (outcome, connect seconds). outcome: ok, refused, timeout, error:..."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    t0 = time.monotonic()
    try:
        s.connect((host, port))
        took = time.monotonic() - t0
        s.sendall(b"x")
        s.settimeout(5)
        if s.recv(1) != b"x":
            return "error:bad echo", took
        return "ok", took
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    except socket.timeout:
        return "timeout", time.monotonic() - t0
    except OSError as e:
        return f"error:{e}", time.monotonic() - t0
    finally:
        s.close()


def synflood(a):
    rate, seconds = min(a.rate, MAX_RATE), min(a.seconds, MAX_SECONDS)
    gm, g4 = mac_bytes(a.guest_mac), socket.inet_aton(a.guest)
    rng = random.Random(a.seed)
    frames = []
    for _ in range(4096):
        src = g4[:3] + bytes([rng.randint(10, 250)])
        mac = bytes([0x02, rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(256),
                     rng.randrange(256)])
        frames.append(syn_frame(gm, mac, src, g4, rng.randint(1024, 65535), a.port, rng.getrandbits(32)))
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.iface, 0))
    sent = [0, 0]  # frames, send errors
    stop = threading.Event()

    def flood():
        batch = max(1, rate // 200)  # every 5 ms
        t_next = time.monotonic()
        end = t_next + seconds
        i = 0
        while not stop.is_set() and time.monotonic() < end:
            for _ in range(batch):
                try:
                    tx.send(frames[i % len(frames)])
                    sent[0] += 1
                except OSError:
                    sent[1] += 1
                i += 1
            t_next += batch / rate
            d = t_next - time.monotonic()
            if d > 0:
                time.sleep(d)

    th = threading.Thread(target=flood, daemon=True)
    t0 = time.monotonic()
    th.start()
    time.sleep(0.5)  # the flood is under way before the first genuine connection
    attempts = []
    while th.is_alive() and time.monotonic() - t0 < seconds - 0.5:
        outcome, took = echo_once(a.guest, a.port, 1.0)
        attempts.append({"outcome": outcome, "seconds": round(took, 4)})
        time.sleep(a.probe_interval)
    stop.set()
    th.join(5)
    elapsed = time.monotonic() - t0
    ok = [x for x in attempts if x["outcome"] == "ok" and x["seconds"] <= 1.0]
    times = sorted(x["seconds"] for x in ok)
    return {"syns_sent": sent[0], "send_errors": sent[1], "seconds": round(elapsed, 2),
            "syn_rate": round(sent[0] / elapsed), "attempts": len(attempts), "ok_within_1s": len(ok),
            "failed": [x for x in attempts if x not in ok][:20],
            "connect_p50": times[len(times) // 2] if times else None, "connect_max": times[-1] if times else None}


def isn(a):
    count = min(a.count, 2000)
    gm, hm = mac_bytes(a.guest_mac), iface_mac(a.iface)
    h4, g4 = socket.inet_aton(a.host), socket.inet_aton(a.guest)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    rx.bind((a.iface, 0))
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.iface, 0))
    seqs = {}
    base = 30000 + random.randrange(20000)
    for i in range(count):
        sport = base + i
        tx.send(syn_frame(gm, hm, h4, g4, sport, a.port, random.getrandbits(32)))
        end = time.monotonic() + 1.0
        while sport not in seqs and time.monotonic() < end:
            r, _, _ = select.select([rx], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            f = rx.recv(2048)
            if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6 or f[26:30] != g4:
                continue
            ihl = (f[14] & 15) * 4
            t = f[14 + ihl:]
            sp, dp, seq = struct.unpack("!HHI", t[:8])
            if sp == a.port and t[13] & 0x12 == 0x12:
                seqs[dp] = seq
    isns = [seqs[p] for p in sorted(seqs)]
    return {"sent": count, "isns": isns}


def status_text(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        for _ in range(3):
            s.sendto(b"stats", (host, 7007))
            try:
                return s.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                continue
    finally:
        s.close()
    return ""


def hold(a):
    n = min(a.conns, MAX_CONNS)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want,
                                                    hard))
    socks, errors, failed_in_a_row = [], {}, 0
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((a.guest, a.port))
            socks.append(s)
            failed_in_a_row = 0
        except OSError as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            s.close()
            failed_in_a_row += 1
            if failed_in_a_row >= 5:
                break  # the guest takes no more: do not wait out a timeout per remaining connection
    out = {"conns": n, "held": len(socks), "open_errors": errors, "open_seconds": round(time.monotonic() - t0, 2)}
    if a.probe:
        outcome, took = echo_once(a.guest, a.port, 1.0)
        out["probe"] = {"outcome": outcome, "seconds": round(took, 4)}
        # Every held connection must still be a working echo connection (not silently dropped by the guest).
        alive = 0
        for s in socks[:: max(1, len(socks) // 50)]:
            try:
                s.sendall(b"y")
                alive += s.recv(1) == b"y"
            except OSError:
                pass
        out["sampled_alive"] = alive
        out["sampled"] = len(socks[:: max(1, len(socks) // 50)])
    if a.wait_eof:
        end = time.monotonic() + min(a.wait_eof, MAX_SECONDS)
        closed = set()
        while len(closed) < len(socks) and time.monotonic() < end:
            r, _, _ = select.select([s for s in socks if s.fileno() not in closed], [], [], 0.2)
            for s in r:
                try:
                    data = s.recv(16)
                except OSError:
                    data = b""
                if not data:
                    closed.add(s.fileno())
        out["closed_by_guest"] = len(closed)
        out["eof_seconds"] = round(time.monotonic() - t0 - out["open_seconds"], 2)
    if a.status:
        out["status"] = status_text(a.guest)
    for s in socks:
        s.close()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("synflood")
    f.add_argument("--iface", default="tap0")
    f.add_argument("--guest-mac", required=True)
    f.add_argument("--rate", type=int, default=2000)
    f.add_argument("--seconds", type=float, default=10)
    f.add_argument("--probe-interval", type=float, default=0.05)
    f.add_argument("--seed", type=int, default=1)
    i = sub.add_parser("isn")
    i.add_argument("--iface", default="tap0")
    i.add_argument("--guest-mac", required=True)
    i.add_argument("--host", default="192.168.77.1")
    i.add_argument("--count", type=int, default=200)
    h = sub.add_parser("hold")
    h.add_argument("--conns", type=int, required=True)
    h.add_argument("--probe", action="store_true")
    h.add_argument("--wait-eof", type=float, default=0)
    h.add_argument("--status", action="store_true")
    for x in (f, i, h):
        x.add_argument("--guest", default="192.168.77.2")
        x.add_argument("--port", type=int, default=7)
    a = p.parse_args()
    print(json.dumps({"synflood": synflood, "isn": isn, "hold": hold}[a.mode](a)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
