#!/usr/bin/python3
"""make loadlat: UDP echo RTT under a background load, per delivery mode, and the coalescing sweep.

Latency under load (the figure of the receive-livelock and interrupt-moderation literature): for every mode,
at LEVELS offered rates of 64-byte datagrams to the discard port (AF_PACKET sender, tools/load --packet) from
idle to past the guest's MLFRR, probe measures echo RTT p50/p99/p99.9 on port 7 while the load runs; QEMU's
CPU and the guest's idle share are taken over the same interval. Writes loadlat.csv (one row per mode and level).

--sweep: the coalesce mode over a grid of `coalesce FRAMES USEC` under one background load; p99 RTT and
interrupts per frame per cell, written to coalesce_sweep.csv (tools/plot.py draws both as heat maps).

One guest in a namespace of its own (always deleted), every client inside it, every step bounded. Needs root.
"""
import argparse
import pathlib
import re
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))
import curve  # noqa: E402
import modes  # noqa: E402  (parse_stats, idle_during, qemu_cpu_seconds, write_csv, PROBE_RE)
import timeline  # noqa: E402

TOOLS = ROOT / "build" / "tools"
GUEST = timeline.GUEST_IP
FRAMES = [1, 4, 16, 64]
USECS = [20, 100, 500, 2000]


def levels(mlfrr, n):
    """Idle, then n-1 offered rates from mlfrr/16 to 2*mlfrr on a log scale."""
    lo, hi = mlfrr / 16.0, 2.0 * mlfrr
    return [0] + [int(round(lo * (hi / lo) ** (i / (n - 2)), -2)) for i in range(n - 1)]


def guest_mac(g):
    out = timeline.sh("ip", "neigh", "show", GUEST, "dev", g.tap, ns=g.ns)
    mac = re.search(r"lladdr ([0-9a-f:]{17})", out).group(1)
    timeline.sh("ip", "neigh", "replace", GUEST, "lladdr", mac, "dev", g.tap, "nud", "permanent", ns=g.ns)
    return mac


def under_load(g, mac, rate, seconds, count, probe_rate, csv_path, batch=None):
    """probe (count at probe_rate) while load offers `rate` pps; returns the measurement row. The load runs
    until the probe and the stats around it are done and is then stopped (SIGINT: it still prints its
    summary), so the two overlap whatever the control round trips cost under load (a fixed duration ended
    before the probes at the top levels of the first runs: 480 kpps "offered", the guest 95 % idle)."""
    bg = None
    if rate:
        bg = subprocess.Popen(["ip", "netns", "exec", g.ns, str(TOOLS / "load"), "--dst", GUEST, "--port", "9",
                               "--rate", str(rate), "--duration", str(seconds + 60), "--packet", g.tap,
                               "--dst-mac", mac, "--batch", str(batch or max(1, min(256, int(rate * 200e-6)))),
                               "--tx-ring", "--quiet"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # the load is running before the first probe
    try:
        s0 = modes.parse_stats(g.control("reset", "stats")[1])
        c0, t0 = modes.qemu_cpu_seconds(g.qemu_pid()), time.monotonic()
        txt = g.probe(count, probe_rate, 10, csv_path, "poisson", 64)
        c1, t1 = modes.qemu_cpu_seconds(g.qemu_pid()), time.monotonic()
        s1 = modes.parse_stats(g.control("stats")[0])
    finally:
        out = ""
        if bg:
            bg.send_signal(signal.SIGINT)
            try:
                out, _ = bg.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                bg.kill()
                bg.communicate()
    sent_dur = curve.load_offered(out) if bg else None
    offered = sent_dur[0] / sent_dur[1] if sent_dur else None
    pm = modes.PROBE_RE.search(txt)
    if not pm:
        raise timeline.TimelineError(f"probe failed under {rate} pps:\n{txt[-600:]}")
    pct = [None if x == "-" else float(x) for x in pm.groups()[5:12]]
    return {"offered_pps": offered or 0.0, "loss_pct": float(pm.group(4)), "p50_us": pct[1], "p99_us": pct[3],
            "p999_us": pct[4], "irq_per_frame": s1["irq_per_frame"],
            # Wake-ups the receive path caused per frame: interrupts and coalesce-bound timer polls (`reset`
            # zeroed both), the cost coalescing trades against latency.
            "wakeups_per_frame": (s1["irq_rx"] + (s1["coalesce_timeouts"] or 0)) / s1["rx_frames"]
            if s1["rx_frames"] and s1["irq_rx"] is not None else None,
            "idle_pct": modes.idle_during(s0, s1, g.ready_ms),
            "qemu_cpu_pct": None if None in (c0, c1) else 100 * (c1 - c0) / (t1 - t0)}


def run(a):
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ns, tap = f"vloadlat-{a.tag}", f"tl{a.tag % 100000}"
    g = timeline.LiveGuest(ns, tap, ["--cmdline", "heartbeat=0"], timeout=1800, log_path=out / "console_loadlat.log")
    rows, sweep = [], []
    seconds = a.count / a.probe_rate + 1.5
    try:
        g.ready()
        m = re.search(r"ready in ([\d.]+) ms", g.text())
        g.ready_ms = float(m.group(1)) if m else 0.0
        g.control("stats")  # traffic, so that the neighbour entry exists
        mac = guest_mac(g)
        if not a.sweep_only:
            for mode in a.modes.split(","):
                g.control(f"mode {mode}")
                for rate in levels(a.mlfrr, a.levels):
                    r = under_load(g, mac, rate, seconds, a.count, a.probe_rate, out / "rtt_loadlat.csv")
                    rows.append({"mode": mode, "rate": rate, **r})
                    print(f"  {mode:<8} load {r['offered_pps']:>8.0f} pps  p50 {r['p50_us']} p99 {r['p99_us']} "
                          f"p99.9 {r['p999_us']} µs  loss {r['loss_pct']:.1f}%  QEMU CPU "
                          f"{modes.fmt(r['qemu_cpu_pct'])}%  idle {modes.fmt(r['idle_pct'])}%", flush=True)
            modes.write_csv(out / "loadlat.csv", rows)
        if a.sweep or a.sweep_only:
            g.control("mode coalesce")
            for fr in FRAMES:
                for us in USECS:
                    g.control(f"coalesce {fr} {us}")
                    r = under_load(g, mac, a.sweep_load, seconds, a.count, a.probe_rate, out / "rtt_loadlat.csv",
                                   a.sweep_batch)
                    sweep.append({"frames": fr, "usec": us, **r})
                    print(f"  coalesce {fr:>3} {us:>5} µs  p99 {r['p99_us']} µs  irq/frame {r['irq_per_frame']}  "
                          f"wake-ups/frame {r['wakeups_per_frame'] or 0:.3f}", flush=True)
            modes.write_csv(out / "coalesce_sweep.csv", sweep)
    finally:
        g.stop()
    print(f"written: {out}/loadlat.csv" + (", coalesce_sweep.csv" if sweep else ""))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default=",".join(modes.MODES))
    ap.add_argument("--mlfrr", type=float, default=120000.0,
                    help="the guest's MLFRR from make bench, pps: the levels run to twice it (default 120000)")
    ap.add_argument("--levels", type=int, default=10, help="load levels including idle (default 10)")
    # 2000 probes: a p99 from 20 samples above it and a p99.9 from 2 (500 gave 5 and none: the first sweep's
    # cells jumped 20x between neighbours).
    ap.add_argument("--count", type=int, default=2000, help="probes per level (default 2000)")
    ap.add_argument("--probe-rate", type=float, default=1000.0)
    ap.add_argument("--sweep", action="store_true", help="also the coalesce grid")
    ap.add_argument("--sweep-only", action="store_true", help="only the coalesce grid")
    # Coalescing engages only after a poll that found at least FRAMES/2 frames (virtio_net_poll.c: a lone frame
    # never waits for the bound), so the sweep's background comes in bursts: 32 frames every millisecond. Every
    # FRAMES of the grid then takes effect, and the probes arriving between bursts see what it costs them.
    ap.add_argument("--sweep-load", type=int, default=32000, help="background pps during the sweep (32000)")
    ap.add_argument("--sweep-batch", type=int, default=32, help="frames per background burst in the sweep (32)")
    ap.add_argument("--out", default=str(ROOT / "build/bench"))
    a = ap.parse_args()
    a.tag = __import__("os").getpid()
    if not 3 <= a.levels <= 30 or not 10 <= a.count <= 100000:
        sys.exit("loadlat: --levels 3..30, --count 10..100000")
    try:
        return run(a)
    except timeline.TimelineError as e:
        print(f"loadlat: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
