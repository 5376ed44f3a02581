#!/usr/bin/python3
"""Boot-time probe: wall time from starting QEMU to the kernel's banner (kernel_main) and to "ready", for
both boot paths, median of N runs. Usage: bench/boot_time.py [--runs N] [--boot pvh|uefi ...]"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one(boot):
    cmd = [os.path.join(ROOT, "run-qemu.sh"), "--no-build", "--net", "none", "--boot", boot,
           "--cmdline", "test=boot", "--timeout", "120"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marks = {}
    for raw in p.stdout:
        line = raw.decode("utf-8", "replace")
        now = time.monotonic() - t0
        if "x86_64 unikernel network stack" in line and "banner" not in marks:
            marks["banner"] = now
        if line.startswith("ready in") and "ready" not in marks:
            marks["ready"] = now
    p.wait()
    marks["exit"] = time.monotonic() - t0
    if p.returncode != 33 or "banner" not in marks:  # 33: test pass (kernel/kernel.h)
        sys.exit(f"boot_time: {boot} boot failed (status {p.returncode})")
    return marks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--boot", action="append", choices=["pvh", "uefi"])
    a = ap.parse_args()
    for boot in a.boot or ["pvh", "uefi"]:
        runs = [one(boot) for _ in range(a.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in ("banner", "ready", "exit")}
        print(f"{boot}: QEMU start -> kernel_main banner {med['banner']*1000:.0f} ms, -> ready "
              f"{med['ready']*1000:.0f} ms, -> QEMU exit {med['exit']*1000:.0f} ms (median of {a.runs})")


if __name__ == "__main__":
    main()
