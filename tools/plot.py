#!/usr/bin/python3
"""make plot: render the workbench's CSVs as PNGs with gnuplot (build/plots/ by default).

  rtt_cdf.png      UDP echo RTT CDF per delivery mode        build/bench/modes.csv, rtt_<mode>.csv   (make modes)
  stages.png       guest stage histograms per mode (p50 bars, whiskers to p99)
                                                             build/bench/modes_stages.csv            (make modes)
  rx_curve.png     delivered vs offered 64 B UDP rate, ours / ours-noop / linux
                                                             build/bench/rx_curve.csv                (make bench)
  timeline.png     per-packet round trip cut into stages, slowest last (optional)
                                                             build/timeline/timeline.csv
                                                             (tools/timeline.py run --netns NS)

For each plot this writes the data (<name>.dat) and the gnuplot script (<name>.gp) next to the PNG, so a figure
can be restyled by editing the script and running `gnuplot <name>.gp`. A missing input is reported with the make
target that produces it; the plots whose inputs exist are still drawn, and the exit status is then 1.
"""
import argparse
import csv
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODES = ["irq", "napi", "poll", "coalesce"]
STAGES = [("irq_to_poll_ns", "irq -> poll"), ("poll_to_dequeue_ns", "poll -> dequeue"),
          ("input_ns", "dequeue -> done (stack)"), ("irq_to_txkick_ns", "irq -> TX kick"),
          ("tx_complete_ns", "TX post -> completion")]
CHAIN = ["tap_req", "qemu_rx_flush", "qemu_rx_notify", "guest_irq", "guest_poll", "guest_deq", "guest_txkick",
         "qemu_tx_kick", "tap_rep"]
CHAIN_LABELS = ["tap -> QEMU RX flush", "RX flush -> notify", "notify -> guest irq", "irq -> poll",
                "poll -> dequeue", "dequeue -> TX kick (lwIP, echo)", "guest kick -> QEMU kick",
                "QEMU kick -> tap"]
TERMINAL = 'set terminal pngcairo size 800,500 font "DejaVu Sans,10" noenhanced'


class Missing(Exception):
    def __init__(self, path, target):
        super().__init__(f"missing {path}: run `{target}`")
        self.path, self.target = path, target


def need(path, target):
    if not path.exists():
        raise Missing(path, target)
    return path


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def gnuplot(out, name, script):
    gp = out / f"{name}.gp"
    png = out / f"{name}.png"
    gp.write_text(f"{TERMINAL}\nset output '{png}'\n{script}\n")
    p = subprocess.run(["gnuplot", str(gp)], capture_output=True, text=True, cwd=out)
    if p.returncode or not png.exists():
        raise RuntimeError(f"gnuplot {gp} failed:\n{p.stderr[-1500:]}")
    return png


def q(s):
    return "'" + str(s).replace("'", "''") + "'"


def src(i, dat):
    """gnuplot data source of the i-th column set: the file first, then '' (the same file)."""
    return "''" if i else q(dat)


# ---- RTT CDF per mode ----

def plot_rtt_cdf(bench, out):
    modes_csv = need(bench / "modes.csv", "make modes")
    rows = read_csv(modes_csv)
    modes = [r["mode"] for r in rows] or MODES
    plots = []
    for i, m in enumerate(modes):
        f = need(bench / f"rtt_{m}.csv", "make modes")
        rtts = sorted(int(r["rtt_ns"]) / 1000 for r in read_csv(f) if r["rtt_ns"])
        if not rtts:
            continue
        dat = out / f"rtt_cdf_{m}.dat"
        n = len(rtts)
        dat.write_text("".join(f"{v:.3f} {(k + 1) / n:.6f}\n" for k, v in enumerate(rtts)))
        r = next((x for x in rows if x["mode"] == m), {})
        label = f"{m}: p50 {float(r.get('p50_us') or 0):.0f} us, p99 {float(r.get('p99_us') or 0):.0f} us"
        plots.append(f"{q(dat)} using 1:2 with steps lw 2 lc {i + 1} title {q(label)}")
    if not plots:
        raise RuntimeError(f"{modes_csv}: no received probes in any rtt_<mode>.csv")
    r0 = rows[0] if rows else {}
    title = (f"UDP echo round trip per delivery mode ({r0.get('sent', '?')} probes per mode, "
             f"{r0.get('method', '?')} timestamps)")
    return gnuplot(out, "rtt_cdf", f"""
set title {q(title)}
set xlabel 'round-trip time (us, log scale)'
set ylabel 'fraction of probes with RTT <= x'
set logscale x
set yrange [0:1.02]
set grid xtics mxtics ytics
set key right bottom box opaque
plot {', '.join(plots)}""")


# ---- guest stage histograms per mode ----

def plot_stages(bench, out):
    rows = read_csv(need(bench / "modes_stages.csv", "make modes"))
    modes = [m for m in dict.fromkeys(r["mode"] for r in rows)]
    by = {(r["mode"], r["stage"]): r for r in rows}
    lines = ["# stage " + " ".join(f"{m}_p50_us {m}_p50_us {m}_p99_us" for m in modes)]
    for st, label in STAGES:
        vals = []
        for m in modes:
            r = by.get((m, st))
            p50 = float(r["p50_ns"]) / 1000 if r and int(r["count"]) else float("nan")
            p99 = float(r["p99_ns"]) / 1000 if r and int(r["count"]) else float("nan")
            vals += [p50, p50, p99]
        lines.append(q(label).replace("'", '"') + " " + " ".join(f"{v:.3f}" for v in vals))
    dat = out / "stages.dat"
    dat.write_text("\n".join(lines) + "\n")
    cols = [f"{src(i, dat)} using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}{':xtic(1)' if i == 0 else ''} "
            f"title {q(m)} lc {i + 1}" for i, m in enumerate(modes)]
    return gnuplot(out, "stages", f"""
set title 'Guest stage latency per delivery mode (hist after each mode run): bar = p50, whisker = p99'
set ylabel 'latency (us, log scale)'
set xlabel 'guest stage (`hist`; poll mode takes no interrupts, so it has no irq -> poll bar)'
set logscale y
set yrange [0.5:*]
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by -15 scale 0
set key left top box opaque
plot {', '.join(cols)}""")


# ---- delivered vs offered ----

def plot_rx_curve(bench, out):
    rows = read_csv(need(bench / "rx_curve.csv", "make bench"))
    guests = list(dict.fromkeys(r["guest"] for r in rows))
    plots, top = [], 0.0
    for i, gname in enumerate(guests):
        pts = sorted((float(r["offered_pps"]), float(r["delivered_pps"])) for r in rows if r["guest"] == gname)
        top = max([top] + [max(a, b) for a, b in pts])
        dat = out / f"rx_curve_{gname}.dat"
        dat.write_text("".join(f"{a / 1000:.3f} {b / 1000:.3f}\n" for a, b in pts))
        plots.append(f"{q(dat)} using 1:2 with linespoints lw 2 pt {5 + i} ps 1.2 lc {i + 1} title {q(gname)}")
    plots.append("x with lines dt 2 lc rgb 'gray40' title 'delivered = offered'")
    return gnuplot(out, "rx_curve", f"""
set title 'Receive rate: 64-byte UDP datagrams to the discard port (make bench)'
set xlabel 'offered rate (kpps, log scale: the curve runs to 4x the knee)'
set ylabel 'delivered rate (kpps, counted by the guest)'
set logscale x
set xrange [{min(float(r["offered_pps"]) for r in rows) / 1000 * 0.9:.3f}:{top / 1000 * 1.1:.3f}]
set yrange [0:{top / 1000 * 1.05:.3f}]
set grid
set key left top box opaque
plot {', '.join(plots)}""")


# ---- latency under load (bench/loadlat.py) ----

def plot_loadlat(bench, out):
    rows = read_csv(need(bench / "loadlat.csv", "make loadlat"))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    plots = []
    for i, m in enumerate(modes):
        pts = sorted((max(float(r["offered_pps"]), 100.0), r) for r in rows if r["mode"] == m)
        dat = out / f"loadlat_{m}.dat"
        dat.write_text("# offered_kpps p50_us p99_us p999_us qemu_cpu_pct idle_pct\n" + "".join(
            f"{o / 1000:.3f} {r['p50_us'] or 'NaN'} {r['p99_us'] or 'NaN'} {r['p999_us'] or 'NaN'} "
            f"{r['qemu_cpu_pct'] or 'NaN'} {r['idle_pct'] or 'NaN'}\n" for o, r in pts))
        plots.append(f"{q(dat)} using 1:3 with linespoints lw 2 pt {5 + i} lc {i + 1} title {q(m + ' p99')}")
        plots.append(f"'' using 1:5 axes x1y2 with lines dt 3 lc {i + 1} title {q(m + ' QEMU CPU %')}")
        plots.append(f"'' using 1:6 axes x1y2 with lines dt 2 lc {i + 1} title {q(m + ' guest idle %')}")
    return gnuplot(out, "loadlat", f"""
set title 'UDP echo RTT p99 under a background 64-byte load, per delivery mode (idle drawn at 0.1 kpps)'
set xlabel 'background load offered (kpps, log scale)'
set ylabel 'echo RTT p99 (us, log scale)'
set y2label 'QEMU CPU (% of a core, dotted), guest idle (%, dashed)'
set logscale x
set logscale y
set y2range [0:200]
set y2tics
set grid
set key left top box opaque font ',8'
plot {', '.join(plots)}""")


def wakeups(r):
    """Receive wake-ups per frame of a sweep cell (interrupts and coalesce-bound timer polls); older CSVs have
    interrupts only."""
    return r.get("wakeups_per_frame") or r.get("irq_per_frame") or "NaN"


def plot_coalesce(bench, out):
    rows = read_csv(need(bench / "coalesce_sweep.csv", "make loadlat LOADLAT_ARGS=--sweep-only"))
    frames = sorted({int(r["frames"]) for r in rows})
    usecs = sorted({int(r["usec"]) for r in rows})
    cell = {(int(r["frames"]), int(r["usec"])): r for r in rows}
    dat = out / "coalesce.dat"
    # One block per frames row (gnuplot's matrix-less image format: x y value, blank line between rows).
    dat.write_text("".join("".join(f"{j} {i} {cell.get((f, u), {}).get('p99_us') or 'NaN'} "
                                   f"{wakeups(cell.get((f, u), {}))}\n"
                                   for j, u in enumerate(usecs)) + "\n" for i, f in enumerate(frames)))
    xt = ", ".join(f"'{u}' {j}" for j, u in enumerate(usecs))
    yt = ", ".join(f"'{f}' {i}" for i, f in enumerate(frames))
    return gnuplot(out, "coalesce", f"""
set terminal pngcairo size 1200,500
set multiplot layout 1,2 title 'coalesce FRAMES USEC under a background load (bench/loadlat.py --sweep)'
set xtics ({xt})
set ytics ({yt})
set xlabel 'time bound (us)'
set ylabel 'frames per interrupt'
set title 'echo RTT p99 (us)'
plot {q(dat)} using 1:2:3 with image notitle, '' using 1:2:(sprintf('%.0f', $3)) with labels notitle
set title 'receive wake-ups (interrupts + bound timers) per frame'
plot {q(dat)} using 1:2:4 with image notitle, '' using 1:2:(sprintf('%.3f', $4)) with labels notitle
unset multiplot""")


# ---- one capture's timeline ----

def plot_timeline(csv_path, out):
    rows = read_csv(csv_path)
    data = []
    for r in rows:
        if not r.get("tap_rep"):
            continue
        last, pieces = 0.0, []
        for c in CHAIN[1:]:
            v = float(r[c]) if r.get(c) else last   # a missing stamp: its piece is 0, the next spans the gap
            pieces.append(max(0.0, v - last))       # a cross-clock piece below 0 (alignment error) is drawn as 0
            last = max(last, v)
        data.append((float(r["tap_rep"]), r["seq"], pieces))
    if not data:
        raise RuntimeError(f"{csv_path}: no packet with a reply")
    data.sort()
    dat = out / "timeline.dat"
    # Cumulative ends of the pieces, drawn tallest first as boxes from 0: a stacked bar per packet.
    dat.write_text("# rank seq cumulative_end_of: " + " | ".join(CHAIN_LABELS) + "\n" +
                   "".join(f"{k} {seq} " + " ".join(f"{sum(pieces[:i + 1]):.3f}" for i in range(len(pieces))) + "\n"
                           for k, (_, seq, pieces) in enumerate(data)))
    rtts = [d[0] for d in data]
    cap = _pct(rtts, 95) * 1.4
    clipped = sum(r > cap for r in rtts)
    cols = [f"{q(dat)} using 1:{3 + i} with boxes fs solid 0.9 noborder lc {i + 1} title {q(CHAIN_LABELS[i])}"
            for i in reversed(range(len(CHAIN_LABELS)))]
    note = f"; {clipped} taller bars cut at {cap:.0f} us" if clipped else ""
    return gnuplot(out, "timeline", f"""
set title {q(f"Where each probe round trip goes ({len(data)} packets sorted by tap RTT{note})")}
set xlabel 'packets, fastest to slowest'
set ylabel 'us after the request reached the tap'
set xrange [-1:{len(data)}]
set yrange [0:{cap:.0f}]
set boxwidth 1 absolute
set grid ytics
set key left top box opaque
plot {', '.join(cols)}""")


def _pct(vals, p):
    s = sorted(vals)
    return s[max(1, min(len(s), -(-len(s) * p // 100))) - 1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--bench-dir", default=str(ROOT / "build/bench"))
    ap.add_argument("--timeline", default=str(ROOT / "build/timeline/timeline.csv"),
                    help="a timeline.py CSV (optional: drawn when it exists)")
    ap.add_argument("--out", default=str(ROOT / "build/plots"))
    ap.add_argument("--only", help="comma-separated subset of rtt_cdf,stages,rx_curve,loadlat,coalesce,timeline")
    a = ap.parse_args(argv)
    if not shutil.which("gnuplot"):
        print("plot: gnuplot not found: apt-get install gnuplot-nox", file=sys.stderr)
        return 2
    bench, out = pathlib.Path(a.bench_dir), pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    only = set(a.only.split(",")) if a.only else None
    jobs = [("rtt_cdf", lambda: plot_rtt_cdf(bench, out)), ("stages", lambda: plot_stages(bench, out)),
            ("rx_curve", lambda: plot_rx_curve(bench, out))]
    for name, fn in (("loadlat", plot_loadlat), ("coalesce", plot_coalesce)):
        csv_name = "loadlat.csv" if name == "loadlat" else "coalesce_sweep.csv"
        if (bench / csv_name).exists() or (only and name in only):
            jobs.append((name, lambda fn=fn: fn(bench, out)))
    tl = pathlib.Path(a.timeline)
    if tl.exists() or (only and "timeline" in only):
        jobs.append(("timeline", lambda: plot_timeline(need(tl, "tools/timeline.py run --netns NS"), out)))
    missing, failed = [], []
    for name, fn in jobs:
        if only and name not in only:
            continue
        try:
            print(f"plot: {fn()}")
        except Missing as e:
            missing.append((name, e))
        except (RuntimeError, KeyError, ValueError) as e:
            failed.append((name, e))
    for name, e in missing:
        print(f"plot: {name}.png not drawn: {e}", file=sys.stderr)
    for name, e in failed:
        print(f"plot: {name}.png failed: {e}", file=sys.stderr)
    if not tl.exists() and not only:
        print(f"plot: (timeline.png skipped: no {tl}; make one with tools/timeline.py run --netns NS)")
    return 1 if missing or failed else 0


if __name__ == "__main__":
    sys.exit(main())
