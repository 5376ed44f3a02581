#!/usr/bin/python3
"""End-to-end check of the stock Linux baseline guest (bench/linux): boot it with run.sh in a fresh network
namespace, then from inside that namespace only: time to the first ping reply, 20 pings, UDP and TCP echo
with socat, UDP echo round trips, iperf2 for 3 s, and the UDP 9 counter (1000 datagrams). The namespace and
QEMU are removed on every exit path. Needs root. Usage: bench/linux/smoke.py [--keep-log FILE]

Every step is bounded in time; all traffic goes to the guest's address inside the namespace."""
import argparse
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOST_IP, GUEST = "192.168.77.1/24", "192.168.77.2"
TAP = "tap0"


# ---- helpers run inside the namespace (ip netns exec NS smoke.py --inner ...) ---------------------------------

def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def inner_probe(limit_s):
    """ICMP echo every 5 ms until the first reply; prints time.monotonic() of that reply (a system-wide
    clock, so the caller in the root namespace can subtract its own start time)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setblocking(False)
    ident, seq, end = os.getpid() & 0xFFFF, 0, time.monotonic() + limit_s
    while time.monotonic() < end:
        seq = (seq + 1) & 0xFFFF
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + b"vlprobe!"), ident, seq) + b"vlprobe!"
        try:
            s.sendto(pkt, (GUEST, 0))
        except OSError:
            pass  # no ARP answer yet: EHOSTUNREACH
        deadline = time.monotonic() + 0.005
        while time.monotonic() < deadline:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                time.sleep(0.0005)
                continue
            ihl = (data[0] & 0xF) * 4
            if data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                print(f"{time.monotonic():.6f}")
                return 0
    return 1


def inner_udpecho(n, size):
    """n back-to-back UDP echo round trips to port 7; prints p50/p99/max in microseconds."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.connect((GUEST, 7))
    rtts, lost, payload = [], 0, b"x" * size
    for i in range(n):
        t = time.perf_counter_ns()
        s.send(payload)
        try:
            if s.recv(65536) != payload:
                lost += 1
                continue
        except socket.timeout:
            lost += 1
            continue
        rtts.append((time.perf_counter_ns() - t) / 1000)
    rtts.sort()
    q = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))] if rtts else float("nan")
    print(f"{len(rtts)} {lost} {q(0.5):.1f} {q(0.99):.1f} {rtts[-1] if rtts else float('nan'):.1f}")
    return 0


def inner_count(n, size):
    """Reset the counter, send n datagrams of size bytes to UDP 9 (bursts of 20, 2 ms apart), query 'count'."""
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(1.0)

    def ask(cmd):
        for _ in range(3):
            c.sendto(cmd, (GUEST, 9999))
            try:
                return c.recv(8192).decode()
            except socket.timeout:
                continue
        raise SystemExit(f"no answer to {cmd!r} on UDP 9999")

    ask(b"reset")
    d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"d" * size
    for i in range(n):
        d.sendto(payload, (GUEST, 9))
        if i % 20 == 19:
            time.sleep(0.002)
    time.sleep(0.3)
    count = ask(b"count").strip()
    status = ask(b"status")
    print(count)
    print(status, end="")
    return 0


# ---- the orchestrator (root namespace) ------------------------------------------------------------------------

def sh(*args, timeout=30, check=True, **kw):
    return subprocess.run(args, timeout=timeout, check=check, text=True, capture_output=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-log", help="write the guest console to FILE")
    ap.add_argument("--inner", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inner:
        cmd, *rest = a.inner
        return {"probe": lambda: inner_probe(float(rest[0])),
                "udpecho": lambda: inner_udpecho(int(rest[0]), int(rest[1])),
                "count": lambda: inner_count(int(rest[0]), int(rest[1]))}[cmd]()
    if os.getuid() != 0:
        sys.exit("smoke.py: needs root")
    for f in ("vmlinuz", "initramfs.cpio.gz"):
        if not os.path.exists(os.path.join(ROOT, "build/linux-guest", f)):
            sys.exit("smoke.py: build/linux-guest/%s missing: run bench/linux/build.sh" % f)

    ns = f"vlsmoke{os.getpid()}"
    nsx = ["ip", "netns", "exec", ns]
    me = [*nsx, "/usr/bin/python3", os.path.abspath(__file__), "--inner"]
    results, failures = {}, []
    log, ready = [], threading.Event()
    proc = None

    def check(name, ok, detail):
        print(f"smoke: {'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if not ok:
            failures.append(name)

    sh("ip", "netns", "add", ns)
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen([os.path.join(HERE, "run.sh"), "--netns", ns, "--tap", TAP, "--host-ip", HOST_IP,
                                 "--timeout", "240", "--cmdline", "vg_shell=0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)

        def reader():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                log.append(line)
                if "LINUX-GUEST READY" in line and not ready.is_set():
                    results["ready_s"] = time.monotonic() - t0
                    ready.set()
        threading.Thread(target=reader, daemon=True).start()

        # Short ARP retries on the tap as soon as it exists, then probe for the first reply.
        for _ in range(200):
            if sh(*nsx, "ip", "link", "show", TAP, check=False).returncode == 0:
                break
            time.sleep(0.01)
        sh(*nsx, "sysctl", "-q", f"net.ipv4.neigh.{TAP}.retrans_time_ms=10")
        r = sh(*me, "probe", "60", timeout=70, check=False)
        if r.returncode == 0:
            results["first_ping_s"] = float(r.stdout) - t0
        check("first ping reply", r.returncode == 0, f"{results.get('first_ping_s', float('nan')):.2f} s after start")
        check("READY marker", ready.wait(30), f"{results.get('ready_s', float('nan')):.2f} s after start")

        r = sh(*nsx, "ping", "-c", "20", "-i", "0.01", "-W", "1", "-q", GUEST, timeout=30, check=False)
        m = re.search(r"(\d+(?:\.\d+)?)% packet loss", r.stdout)
        rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", r.stdout)
        check("ping 20x", bool(m) and float(m.group(1)) == 0 and bool(rtt),
              f"{m.group(1) if m else '?'}% loss, rtt min/avg/max {'/'.join(rtt.groups()[:3]) if rtt else '?'} ms")

        msg = "hello-linux-guest\n"
        r = sh(*nsx, "socat", "-t", "2", "-T", "5", "-", f"UDP:{GUEST}:7", input=msg, timeout=15, check=False)
        check("UDP echo (socat)", r.stdout == msg, repr(r.stdout))
        r = sh(*nsx, "socat", "-t", "2", "-T", "5", "-", f"TCP:{GUEST}:7", input=msg, timeout=15, check=False)
        check("TCP echo (socat)", r.stdout == msg, repr(r.stdout))

        r = sh(*me, "udpecho", "2000", "64", timeout=60, check=False)
        if r.returncode == 0:
            got, lost, p50, p99, mx = r.stdout.split()
            check("UDP echo 64 B x2000", int(lost) == 0, f"{got} answered, {lost} lost, p50/p99/max {p50}/{p99}/{mx} us")
        else:
            check("UDP echo 64 B x2000", False, r.stderr.strip())

        r = sh(*nsx, "timeout", "30", "iperf", "-c", GUEST, "-t", "3", "-f", "m", timeout=40, check=False)
        m = re.findall(r"([\d.]+) Mbits/sec", r.stdout)
        check("iperf -c -t 3", r.returncode == 0 and bool(m), f"{m[-1] if m else '?'} Mbit/s")

        r = sh(*me, "count", "1000", "64", timeout=30, check=False)
        lines = r.stdout.splitlines()
        got = lines[0] if lines else "?"
        drops = re.search(r"RcvbufErrors=(\d+)", r.stdout)
        check("UDP 9 counter", got == "1000",
              f"sent 1000, guest counted {got} (kernel RcvbufErrors {drops.group(1) if drops else '?'})")
    finally:
        if proc is not None:
            # run.sh stops QEMU and deletes the tap in its own EXIT trap.
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            # Anything left in run.sh's session (QEMU) is ours: stop it by pid.
            left = sh("pgrep", "-s", str(proc.pid), check=False).stdout.split()
            for pid in left:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if left:
                print(f"smoke: killed leftover processes {' '.join(left)}", flush=True)
        sh("ip", "netns", "del", ns, check=False)
        if a.keep_log:
            with open(a.keep_log, "w") as f:
                f.writelines(log)
    print(f"smoke: {'PASS' if not failures else 'FAILED: ' + ', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
