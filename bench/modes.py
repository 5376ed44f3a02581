#!/usr/bin/python3
"""make modes: UDP echo round-trip latency in each receive delivery mode (irq, napi, poll, coalesce), one guest,
switched over the status service (UDP 7007) between runs.

For each mode: `mode M [BUDGET]`, `reset` (counters and stage histograms), build/tools/probe against the echo
port with --csv, then `stats` and `hist`. Writes to build/bench/ (or --out):

  rtt_<mode>.csv      probe's per-probe CSV (seq,send_ns,recv_ns,rtt_ns)
  hist_<mode>.txt     the guest's `hist` answer after the run (stage histograms, ns)
  stats_<mode>.txt    the guest's `stats` answer after the run
  modes.csv           one row per mode: RTT percentiles (µs), loss, irq_per_frame, guest idle % and QEMU CPU %
                      during the run, polls and frames
  modes_stages.csv    one row per mode and guest stage histogram (count, min, p50, p90, p99, p999, max, mean ns)

--rings split,packed runs the whole set once per virtqueue layout, each on a fresh guest (QEMU `packed=on` and
`ring=packed` for packed; `ring=split` for split, on the same device model), files then named
rtt_<ring>_<mode>.csv etc., a `ring` column in the CSVs, and the layouts side by side at the end.

The guest runs in a network namespace of its own (created here, always deleted), on a tap inside it; the probe
runs inside that namespace and talks only to 192.168.77.2. Every step is bounded. Needs root.
"""
import argparse
import csv
import os
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import guest_console  # noqa: E402
import timeline  # noqa: E402  (LiveGuest: the guest in its own namespace, control over UDP 7007)

MODES = ["irq", "napi", "poll", "coalesce"]
STAGES = ["irq_to_poll_ns", "poll_to_dequeue_ns", "input_ns", "irq_to_txkick_ns", "tx_complete_ns"]
PROBE_RE = re.compile(r"sent=(\d+) received=(\d+) lost=(\d+) loss=([\d.]+)% late=(\d+) rtt_us min=([\d.-]+) "
                      r"p50=([\d.-]+) p90=([\d.-]+) p99=([\d.-]+) p99\.9=([\d.-]+) max=([\d.-]+) mean=([\d.-]+) "
                      r"method=(\w+)")
HIST_RE = re.compile(r"^net0\.(\w+): count=(\d+) min=(\d+) p50=(\d+) p90=(\d+) p99=(\d+) p999=(\d+) max=(\d+) "
                     r"mean=(\d+)", re.M)


def parse_hist(text):
    """`hist` answer -> {stage: {count, min, p50, p90, p99, p999, max, mean}} for net0."""
    keys = ["count", "min", "p50", "p90", "p99", "p999", "max", "mean"]
    return {m.group(1): dict(zip(keys, map(int, m.groups()[1:]))) for m in HIST_RE.finditer(text)}


def parse_stats(text):
    def num(pat, cast=float):
        m = re.search(pat, text, re.M)
        return cast(m.group(1)) if m else None
    return {"uptime_ms": num(r"^uptime_ms=(\d+)", int), "idle_pct": num(r"^idle_pct=([\d.]+)"),
            "irq_per_frame": num(r"^net0: mode=\S+ .*irq_per_frame=([\d.]+)"),
            "mode": num(r"^net0: mode=(\S+)", str), "budget": num(r"^net0: mode=\S+ budget=(\d+)", int),
            "coalesce_timeouts": num(r"coalesce_timeouts=(\d+)", int),
            "rx_frames": num(r"^net0: rx_frames=(\d+)", int), "irq_rx": num(r"^net0: .*irq_rx=(\d+)", int),
            "polls": num(r"^net0: .*polls=(\d+)", int), "race_rechecks": num(r"race_rechecks=(\d+)", int)}


def qemu_cpu_seconds(pid):
    ns = guest_console.qemu_cpu_ns(pid) if pid else None
    return None if ns is None else ns / 1e9


def idle_during(s0, s1, ready_ms):
    """The guest reports idle % since its main loop started (`reset` does not restart it): the idle time during
    the run is the difference of idle_pct x loop time at both ends."""
    if None in (s0["uptime_ms"], s1["uptime_ms"], s0["idle_pct"], s1["idle_pct"]):
        return None
    e0, e1 = s0["uptime_ms"] - ready_ms, s1["uptime_ms"] - ready_ms
    if e1 <= e0:
        return None
    return max(0.0, min(100.0, (s1["idle_pct"] * e1 - s0["idle_pct"] * e0) / (e1 - e0)))


def run(a):
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = a.modes.split(",")
    for m in modes:
        if m not in MODES:
            sys.exit(f"modes: unknown mode {m!r} (irq, napi, poll, coalesce)")
    rings = a.rings.split(",")
    if not set(rings) <= {"split", "packed"}:
        sys.exit(f"modes: --rings takes split and/or packed, not {a.rings!r}")
    rows, stage_rows = [], []
    for ring in rings:
        run_layout(a, out, modes, ring if len(rings) > 1 else None, ring, rows, stage_rows)
    write_csv(out / "modes.csv", rows)
    write_csv(out / "modes_stages.csv", stage_rows)
    if len(rings) > 1:
        print("layouts side by side (RTT µs and interrupts per frame, split / packed):")
        for m in modes:
            r = {x["ring"]: x for x in rows if x["mode"] == m}
            if len(r) == 2:
                s, p = r["split"], r["packed"]
                print(f"  {m:<8} p50 {s['p50_us']:.1f} / {p['p50_us']:.1f} ({100 * (p['p50_us'] / s['p50_us'] - 1):+.1f}%)  "
                      f"p99 {s['p99_us']:.1f} / {p['p99_us']:.1f}  irq/frame {s['irq_per_frame']:.3f} / "
                      f"{p['irq_per_frame']:.3f}", flush=True)
    print(f"written: {out}/modes.csv, modes_stages.csv, rtt_*.csv, hist_*.txt, stats_*.txt")
    return 0


def run_layout(a, out, modes, tag, ring, rows, stage_rows):
    """One guest on one ring layout, every mode in turn; appends to rows and stage_rows. tag: the file-name
    prefix (None when only one layout runs, keeping the old names)."""
    pre = f"{tag}_" if tag else ""
    ns = a.netns or f"vmodes-{os.getpid()}"
    tap = f"tm{os.getpid() % 100000}"
    cmdline = " ".join(x for x in (a.cmdline, f"ring={ring}") if x)
    run_args = ["--cmdline", cmdline] + (["--nic-opts", "packed=on"] if ring == "packed" else [])
    for q in a.qemu_arg or []:
        run_args += ["--qemu-arg", q]
    budget_s = len(modes) * ((a.count + a.warmup) / a.rate + 60) + 120
    print(f"modes: guest in namespace {ns} (tap {tap}), {ring} rings; {a.count} probes per mode at {a.rate:g}/s "
          f"({a.pattern}), modes {', '.join(modes)}", flush=True)
    g = timeline.LiveGuest(ns, tap, run_args, timeout=int(budget_s), log_path=out / f"console_modes{'_' + tag if tag else ''}.log")
    try:
        g.ready()
        ready = re.search(r"ready in ([\d.]+) ms", g.text())
        ready_ms = float(ready.group(1)) if ready else 0.0
        if a.coalesce:
            g.control(f"coalesce {a.coalesce}")
        for m in modes:
            setup = f"mode {m}" + (f" {a.budget}" if a.budget else "")
            ans = g.control(setup, "reset", "stats")
            if ans[0].startswith("error"):
                raise timeline.TimelineError(f"{setup}: {ans[0]}")
            s0 = parse_stats(ans[2])
            c0, t0 = qemu_cpu_seconds(g.qemu_pid()), time.monotonic()
            txt = g.probe(a.count, a.rate, a.warmup, out / f"rtt_{pre}{m}.csv", a.pattern, a.size)
            c1, t1 = qemu_cpu_seconds(g.qemu_pid()), time.monotonic()
            stats, hist = g.control("stats", "hist")
            (out / f"stats_{pre}{m}.txt").write_text(stats)
            (out / f"hist_{pre}{m}.txt").write_text(hist)
            s1 = parse_stats(stats)
            pm = PROBE_RE.search(txt)
            if not pm:
                raise timeline.TimelineError(f"mode {m}: probe failed:\n{txt[-800:]}")
            sent, recv, lost, loss, late = (int(pm.group(1)), int(pm.group(2)), int(pm.group(3)),
                                            float(pm.group(4)), int(pm.group(5)))
            pct = [None if x == "-" else float(x) for x in pm.groups()[5:12]]
            row = {"ring": ring, "mode": m, "budget": s1["budget"], "sent": sent, "received": recv, "lost": lost, "late": late,
                   "loss_pct": loss, "min_us": pct[0], "p50_us": pct[1], "p90_us": pct[2], "p99_us": pct[3],
                   "p999_us": pct[4], "max_us": pct[5], "mean_us": pct[6], "method": pm.group(13),
                   "irq_per_frame": s1["irq_per_frame"], "idle_pct": idle_during(s0, s1, ready_ms),
                   "qemu_cpu_pct": None if c0 is None or c1 is None else 100 * (c1 - c0) / (t1 - t0),
                   "polls": s1["polls"], "rx_frames": s1["rx_frames"], "irq_rx": s1["irq_rx"],
                   "race_rechecks": s1["race_rechecks"], "coalesce_timeouts": s1["coalesce_timeouts"]}
            rows.append(row)
            for st, h in parse_hist(hist).items():
                stage_rows.append({"ring": ring, "mode": m, "stage": st, **{k + ("_ns" if k != "count" else ""): v
                                                               for k, v in h.items()}})
            print(f"  {ring:<6} {m:<8} p50 {row['p50_us']:>8.1f} µs  p99 {row['p99_us']:>8.1f} µs  loss {loss:.2f}%  "
                  f"irq/frame {row['irq_per_frame']:.3f}  guest idle {fmt(row['idle_pct'])}%  "
                  f"QEMU CPU {fmt(row['qemu_cpu_pct'])}%", flush=True)
    finally:
        g.stop()


def fmt(v):
    return "-" if v is None else f"{v:.1f}"


def write_csv(path, rows):
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else ("" if v is None else v)) for k, v in r.items()})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, default irq,napi,poll,coalesce")
    ap.add_argument("--count", type=int, default=1000, help="measured probes per mode (default 1000)")
    ap.add_argument("--rate", type=float, default=500.0, help="probes per second (default 500)")
    ap.add_argument("--pattern", default="poisson", choices=["fixed", "poisson", "burst"])
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--size", type=int, default=64, help="UDP payload bytes (default 64)")
    ap.add_argument("--budget", type=int, help="poll budget for every mode (default: the guest's, 64)")
    ap.add_argument("--coalesce", metavar="'FRAMES USEC'", help="coalescing threshold and bound, e.g. '8 200'")
    ap.add_argument("--cmdline", help="kernel command line (run-qemu.sh --cmdline)")
    ap.add_argument("--rings", default="split", help="virtqueue layouts, comma-separated: split (default), packed, "
                    "or split,packed for both side by side")
    ap.add_argument("--qemu-arg", action="append", help="passed to run-qemu.sh --qemu-arg (repeatable)")
    ap.add_argument("--netns", help="namespace to create and delete (default vmodes-<pid>)")
    ap.add_argument("--out", default=str(ROOT / "build/bench"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("modes: needs root (a network namespace and a tap)")
    if not 1 <= a.count <= 100000 or not 0 < a.rate <= 20000:
        sys.exit("modes: --count 1..100000, --rate 0..20000")
    try:
        return run(a)
    except timeline.TimelineError as e:
        print(f"modes: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
