"""Shared helpers for the system tests: boot the real image under QEMU through run-qemu.sh and collect the
serial console. Every guest's output is saved under tests/out/ so a failure leaves its log behind."""
import os
import pathlib
import re
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "out"

# QEMU exit statuses for the kernel's isa-debug-exit codes (kernel/kernel.h): status = 2 * code + 1.
STATUS_PASS = 1
STATUS_FAIL = 3
STATUS_PANIC = 5


def exception_status(vector):
    return 2 * (0x10 + vector) + 1


class GuestRun:
    def __init__(self, status, output, log, seconds):
        self.status = status
        self.output = output
        self.log = log
        self.seconds = seconds

    def __repr__(self):
        return f"GuestRun(status={self.status}, log={self.log})"

    def expect(self, pattern):
        m = re.search(pattern, self.output, re.M)
        assert m, f"pattern {pattern!r} not in guest output (log: {self.log})\n{self.output[-3000:]}"
        return m


@pytest.fixture
def guest(request):
    """guest(*run_qemu_args, timeout=60) -> GuestRun. The log is named after the test."""
    OUT.mkdir(parents=True, exist_ok=True)
    counter = [0]

    def run(*args, timeout=60):
        counter[0] += 1
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        log = OUT / f"{name}-{counter[0]}.log"
        cmd = [str(ROOT / "run-qemu.sh"), "--no-build", "--timeout", str(timeout), *args]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=ROOT, timeout=timeout + 30)
        seconds = time.monotonic() - t0
        out = p.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        log.write_text(f"$ {' '.join(cmd)}\n{out}\n[exit status {p.returncode}, {seconds:.2f} s]\n")
        return GuestRun(p.returncode, out, log, seconds)

    return run


def pytest_runtest_makereport(item, call):
    if call.when == "call" and call.excinfo is not None:
        logs = sorted(OUT.glob(re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name) + "-*.log"))
        if logs:
            print("\nguest logs: " + ", ".join(str(p) for p in logs))
