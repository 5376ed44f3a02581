"""A QEMU guest started through a launch script (run-qemu.sh, bench/linux/run.sh), its serial console read in
the background, and the host commands around it: shared by tools/timeline.py (and through it bench/modes.py)
and bench/bench.py."""
import os
import re
import signal
import subprocess
import threading
import time


def sh(*args, timeout=60, check=True, ns=None, error=RuntimeError):
    """Runs a command (inside network namespace `ns` if given) and returns its output, stderr included; a
    non-zero exit raises `error` when `check` is set."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)
    if check and p.returncode:
        raise error(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout[-2000:]}")
    return p.stdout


def qemu_cpu_ns(pid):
    """CPU time of all of a process's threads in ns (schedstat, ns resolution: /proc/PID/stat's clock ticks of
    10 ms made a 5 s window of an idle guest read 0, 0.2 or 0.4 %); None if the process is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended meanwhile
    return total


class ConsoleGuest:
    """The launch script runs in a session of its own (so that stop_process() reaches QEMU too) with its
    console on a pipe; a thread collects the lines. Subclasses set `label` (for messages) and `error` (the
    exception they raise)."""
    label = "guest"
    error = RuntimeError

    def start_process(self, cmd, env=None):
        self.lines, self.lock = [], threading.Lock()
        self.proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=60):
        """The first match of `pattern` (multi-line) in the console output, waiting up to `timeout` s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise self.error(f"{self.label}: no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}")

    def console(self, cmd, timeout=15):
        """A serial-console command of our kernel; returns the console output from it on."""
        start = len(self.text())
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        name = cmd.split()[0]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            t = self.text()[start:]
            if f"console: done {name}" in t:
                return t
            time.sleep(0.02)
        raise self.error(f"console command {cmd!r}: no answer")

    def qemu_pid(self):
        """The QEMU process on this guest's tap (subclasses set `tap`): `timeout` and `ip netns exec` carry the
        same command line, so the process name decides."""
        out = subprocess.run(["pgrep", "-f", f"ifname={self.tap},"], capture_output=True, text=True).stdout.split()
        for pid in out:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().startswith("qemu-system"):
                        return int(pid)
            except OSError:
                continue
        return None

    def stop_process(self):
        """SIGTERM to the launch script's whole session (it cleans up after QEMU), SIGKILL 10 s later."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
