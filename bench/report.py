#!/usr/bin/python3
"""make report: run (or, with --reuse, reuse) make bench, the latency-under-load and coalescing
experiments (bench/loadlat.py) and make plot, then write one Markdown report, build/report/report.md, with
every table and PNG. The report is stamped with the QEMU version, host CPU, accelerator, date and commit, so
two reports (from two commits, two machines, KVM and TCG) can be read side by side; every figure in it came
from the accelerator named at its top. Needs root for the measurements (namespaces, taps); --reuse needs none.
"""
import argparse
import csv
import datetime
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT / "build" / "bench"
PLOTS = ROOT / "build" / "plots"
PY = "/usr/bin/python3"


def stamp():
    """What produced the figures: {name: value}."""
    def out(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    dirty = " (uncommitted changes)" if out("git", "status", "--porcelain", "--untracked-files=no") else ""
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "commit": out("git", "rev-parse", "--short", "HEAD") + dirty,
            "qemu": out("qemu-system-x86_64", "--version").splitlines()[0],
            "host CPU": f"{cpu}, {len([1 for line in open('/proc/cpuinfo') if line.startswith('processor')])} "
                        "logical CPUs",
            "accelerator": out(str(ROOT / "tools/kvm-usable.sh")).upper() or "TCG",
            "host kernel": out("uname", "-r")}


def md_table(path, cols=None):
    """A CSV as a Markdown table (all columns, or cols)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return "(empty)\n"
    cols = cols or list(rows[0])
    return ("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n" +
            "".join("| " + " | ".join(r.get(c, "") for c in cols) + " |\n" for r in rows))


def run(cmd, budget):
    print(f"report: {' '.join(map(str, cmd))}", flush=True)
    t = time.monotonic()
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, timeout=budget)
    print(f"report: ... {time.monotonic() - t:.0f} s", flush=True)


def measure(a):
    run(["make", "-s", "all", "plugin"], 600)
    run(["bench/linux/build.sh"], 600)
    run([PY, "bench/bench.py", "--step-seconds", a.step_seconds], 900)
    mlfrr = 120000
    with open(BENCH / "results.csv") as f:
        for r in csv.reader(f):
            if r and r[0] == "loss-free 64 B UDP receive rate" and r[2]:
                mlfrr = float(r[2])
    run([PY, "bench/loadlat.py", "--mlfrr", mlfrr, "--sweep"], 900)


# The noise each kind of figure is stated to have (the report's header says it): instruction counts repeat within
# 1 %, host-time figures under TCG on a shared machine within 2x.
INSN_NOISE, HOST_NOISE = 0.01, 2.0


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def compare(prev_csv, now_csv):
    """The previous report's make-bench table against this one's, ours and Linux column by column: each change,
    and whether it lies within the stated noise (instruction counts 1 %, host times 2x). Rows are matched by
    label and order, so repeated labels ("its range") pair up too."""
    def rows(path):
        with open(path) as f:
            return [r for r in csv.reader(f)][1:]
    prev, now = rows(prev_csv), rows(now_csv)
    seen, lines, outside = {}, [], 0
    index = {}
    for r in prev:
        index.setdefault(r[0], []).append(r)
    for r in now:
        k = seen[r[0]] = seen.get(r[0], -1) + 1
        old = index.get(r[0], [])
        if k >= len(old):
            continue
        for col, who in ((2, "ours"), (3, "linux")):
            a, b = number(old[k][col]), number(r[col])
            if a is None or b is None or a == 0 or b == 0:
                continue
            if "spread" in r[0]:
                continue  # a spread is itself the noise of its row
            insn = r[1] == "insn"  # per packet, per MiB, per stage; instructions per idle second follow host time
            change = b / a
            ok = abs(change - 1) <= INSN_NOISE if insn else 1 / HOST_NOISE <= change <= HOST_NOISE
            outside += not ok
            lines.append(f"| {r[0].strip()} | {who} | {old[k][col]} | {r[col]} | {change:.3f}x | "
                         f"{'yes' if ok else '**no**'} |\n")
    head = ("| metric | guest | previous | now | now / previous | within the stated noise |\n"
            "|---|---|---|---|---|---|\n")
    return head + "".join(lines), outside


def write(a):
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # The previous report's table is kept, so that this one can say what moved (and whether by more than noise).
    if (out / "results.csv").exists():
        shutil.copy(out / "results.csv", out / "previous_results.csv")
    if (BENCH / "results.csv").exists():
        shutil.copy(BENCH / "results.csv", out / "results.csv")
    subprocess.run([PY, "tools/plot.py", "--out", out / "img"], cwd=ROOT, check=False)
    st = stamp()
    parts = ["# vnetk workbench report\n\n", "| | |\n|---|---|\n",
             "".join(f"| {k} | {v} |\n" for k, v in st.items()),
             f"\nEvery figure below was produced under **{st['accelerator']}**. Host times under TCG move by up "
             "to 2x between runs on a shared machine; compare ratios from one report, and instruction counts "
             "(which do not move) across reports.\n"]
    sections = [
        ("This kernel against a stock Linux guest (make bench)", BENCH / "results.md", None, ["rx_curve.png"]),
        ("Receive-rate curves (offered vs delivered, make bench)", BENCH / "rx_curve.csv", None, []),
        ("Latency under load, per delivery mode (bench/loadlat.py)", BENCH / "loadlat.csv",
         ["mode", "offered_pps", "p50_us", "p99_us", "p999_us", "loss_pct", "irq_per_frame", "qemu_cpu_pct",
          "idle_pct"], ["loadlat.png"]),
        ("Coalescing sweep (bench/loadlat.py --sweep)", BENCH / "coalesce_sweep.csv",
         ["frames", "usec", "p50_us", "p99_us", "p999_us", "irq_per_frame", "wakeups_per_frame", "qemu_cpu_pct"],
         ["coalesce.png"]),
    ]
    for title, path, cols, pngs in sections:
        parts.append(f"\n## {title}\n\n")
        if not path.exists():
            parts.append(f"(not measured: no {path.relative_to(ROOT)})\n")
            continue
        parts.append(path.read_text() if path.suffix == ".md" else md_table(path, cols))
        for p in pngs:
            if (out / "img" / p).exists():
                parts.append(f"\n![{p}](img/{p})\n")
    if (out / "previous_results.csv").exists() and (out / "results.csv").exists():
        table, outside = compare(out / "previous_results.csv", out / "results.csv")
        parts.append("\n## Against the previous report (make bench rows)\n\n"
                     f"{outside} figure(s) moved by more than the stated noise (instruction counts {INSN_NOISE:.0%},"
                     f" host times {HOST_NOISE:g}x).\n\n{table}")
    (out / "report.md").write_text("".join(parts))
    print(f"report: written {out / 'report.md'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reuse", action="store_true", help="write the report from the CSVs already in build/bench")
    ap.add_argument("--step-seconds", type=float, default=1.0, help="receive-rate curve step (default 1 s)")
    ap.add_argument("--out", default=str(ROOT / "build/report"))
    a = ap.parse_args()
    t = time.monotonic()
    if not a.reuse:
        measure(a)
    write(a)
    print(f"report: {time.monotonic() - t:.0f} s in all")
    return 0


if __name__ == "__main__":
    shutil.which("gnuplot") or print("report: gnuplot missing: no PNGs (apt-get install gnuplot-nox)")
    sys.exit(main())
