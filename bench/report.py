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


def write(a):
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
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
