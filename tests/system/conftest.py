"""Shared helpers for the system tests: boot the real image under QEMU through run-qemu.sh and collect the
serial console. Every guest's output is saved under tests/out/ so a failure leaves its log behind.

Failure artefacts: every guest the fixtures start with `--net tap` also records its first NIC's traffic
(run-qemu.sh --pcap, QEMU's filter-dump) to tests/out/<test>-N.pcap, next to tests/out/<test>-N.log, unless the
test passes a --pcap of its own. A failing test prints the paths of its logs and pcaps; the automatic pcaps of
a test that passed are deleted at its teardown (a flood test's pcap is tens of MB), those of failed and xfailed
tests are kept.

Ring layouts: a test module that sets RING_LAYOUTS = ("split", "packed") has every test that boots a guest through
these fixtures run once per layout (ids [split] / [packed]; not those marked no_nic): for "packed" the first NIC gets QEMU's `packed=on`
(added to any --nic-opts the test passes), so the driver negotiates VIRTIO_F_RING_PACKED where the transport
has it (modern; legacy has no packed rings and stays split). VNETK_RING=packed puts every other test on packed
rings too."""
import codecs
import itertools
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "out"

# QEMU exit statuses for the kernel's isa-debug-exit codes (kernel/kernel.h): status = 2 * code + 1.
STATUS_PASS = 33
STATUS_FAIL = 35
STATUS_PANIC = 37


def exception_status(vector):
    return 2 * (0x20 + vector) + 1


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



@pytest.fixture(scope="module", autouse=True)
def figures(request):
    """A test module's measured figures. A module that defines FIGURES (a dict its tests fill) and FIGURES_TITLE
    has them printed once it is done, under "<FIGURES_TITLE> figures", and written to
    tests/out/<module>-figures.txt."""
    found = getattr(request.module, "FIGURES", None)
    yield found
    if not found:
        return
    name = f"{pathlib.Path(request.module.__file__).stem}-figures.txt"
    lines = [f"{k}: {v}" for k, v in found.items()]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text("\n".join(lines) + "\n")
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    cap = request.config.pluginmanager.get_plugin("capturemanager")
    if tr and cap:
        with cap.global_and_fixture_disabled():
            tr.write_line("")
            tr.write_sep("-", f"{request.module.FIGURES_TITLE} figures (tests/out/{name})")
            for line in lines:
                tr.write_line(line)

def pytest_configure(config):
    config.addinivalue_line("markers", "no_nic: boots no NIC, so RING_LAYOUTS does not run it once per layout")
    config.addinivalue_line("markers", "ipv6: the test's namespace keeps IPv6 on (see the netns fixture)")


def pytest_generate_tests(metafunc):
    layouts = getattr(metafunc.module, "RING_LAYOUTS", None)
    if layouts and "ring_layout" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("no_nic"):
        metafunc.parametrize("ring_layout", layouts, indirect=True)


@pytest.fixture
def ring_layout(request):
    """The virtqueue layout the test's guests run on: the module's RING_LAYOUTS parametrizes it; elsewhere
    "split" (QEMU's default), or $VNETK_RING (e.g. VNETK_RING=packed make system-test: the whole suite on
    packed rings)."""
    return getattr(request, "param", os.environ.get("VNETK_RING", "split"))


def with_ring(args, layout):
    """run-qemu.sh args with `packed=on` added to the first NIC's --nic-opts for layout "packed"."""
    args = list(args)
    if layout != "packed":
        return args
    if "--nic-opts" in args[:-1]:
        i = args.index("--nic-opts") + 1
        args[i] = f"{args[i]},packed=on" if args[i] else "packed=on"
    else:
        args += ["--nic-opts", "packed=on"]
    return args


def _next_log(request):
    """tests/out/<test>-N.log, N counting the guests of this test (shared by the guest fixtures)."""
    OUT.mkdir(parents=True, exist_ok=True)
    node = request.node
    node._vnetk_logs = getattr(node, "_vnetk_logs", 0) + 1
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name)
    return OUT / f"{name}-{node._vnetk_logs}.log"


def _with_pcap(request, args, log):
    """args plus `--pcap tests/out/<test>-N.pcap` (N as for the log) for a guest on a tap, unless the test passed
    a --pcap itself. Every pcap of the test (its own or automatic) is remembered on the test item, so a failure
    can name it; the automatic ones are deleted again if the test passes (pytest_runtest_makereport)."""
    args = list(args)
    node = request.node
    pcaps = node.__dict__.setdefault("_vnetk_pcaps", [])
    if "--pcap" in args[:-1]:
        pcaps.append((pathlib.Path(args[args.index("--pcap") + 1]), False))
        return args
    nets = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--net"]
    if nets and nets[-1] == "tap":
        pcap = log.with_suffix(".pcap")
        pcap.unlink(missing_ok=True)  # a leftover of an earlier run must not be taken for this one's
        pcaps.append((pcap, True))
        args += ["--pcap", str(pcap)]
    return args


@pytest.fixture
def guest(request, ring_layout):
    """guest(*run_qemu_args, timeout=60) -> GuestRun. The log is named after the test."""

    def run(*args, timeout=60):
        log = _next_log(request)
        net = [] if "--net" in args else ["--net", "none"]  # no NIC unless the test asks for one
        args = _with_pcap(request, with_ring(args, ring_layout), log)
        cmd = [str(ROOT / "run-qemu.sh"), "--no-build", "--timeout", str(timeout), *net, *args]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=ROOT, timeout=timeout + 30)
        seconds = time.monotonic() - t0
        out = p.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        log.write_text(f"$ {' '.join(cmd)}\n{out}\n[exit status {p.returncode}, {seconds:.2f} s]\n")
        return GuestRun(p.returncode, out, log, seconds)

    return run


def pytest_runtest_makereport(item, call):
    if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
        item._vnetk_failed = True  # failed or xfailed, in any phase: keep its pcaps
    if call.when == "call" and call.excinfo is not None:
        logs = sorted(OUT.glob(re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name) + "-*.log"))
        if logs:
            print("\nguest logs: " + ", ".join(str(p) for p in logs))
        pcaps = [p for p, _ in getattr(item, "_vnetk_pcaps", []) if p.exists()]
        if pcaps:
            print("guest pcaps: " + ", ".join(f"{p} ({p.stat().st_size} bytes)" for p in pcaps))
    if call.when == "teardown" and not getattr(item, "_vnetk_failed", False):
        # The guests are closed by now (fixture teardown), so QEMU has finished writing.
        for p, auto in getattr(item, "_vnetk_pcaps", []):
            if auto:
                p.unlink(missing_ok=True)


# ---- interactive guests: the serial command console, a tap in a namespace of the test's own ----

def _tap_skip_reason():
    if os.geteuid() != 0:
        return "needs root: a tap in a network namespace of the test's own"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (modprobe tun)"
    if not shutil.which("ip"):
        return "'ip' (iproute2) not found"
    return None


_netns_seq = itertools.count(1)


def _netns_list():
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    return {line.split()[0] for line in p.stdout.splitlines() if line.strip()}


@pytest.fixture
def netns(request):
    """A fresh network namespace, vnt-<pid>-<n>, deleted at teardown whatever happened. IPv6 is off for every
    interface created in it later (a tap would otherwise send router solicitations and MLD reports), unless the
    test is marked `ipv6`: then interfaces created in this namespace (only) get IPv6 with a link-local address
    usable at once (no duplicate address detection), no router solicitations and no SLAAC from the guest's
    side; the host reaches the guest at its link-local address through the tap (fe80::...%tap0)."""
    reason = _tap_skip_reason()
    if reason:
        pytest.skip(reason)
    existing = _netns_list()
    for _ in range(1000):
        name = f"vnt-{os.getpid()}-{next(_netns_seq)}"
        if name not in existing:  # a leftover of a killed run with the same pid is not ours to reuse
            break
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        if request.node.get_closest_marker("ipv6"):
            settings = {"default.accept_dad": 0, "default.router_solicitations": 0, "default.accept_ra": 0}
        else:
            settings = {"default.disable_ipv6": 1, "all.disable_ipv6": 1}
        for key, val in settings.items():
            subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", f"net.ipv6.conf.{key}={val}"], timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=30)
        assert name not in _netns_list(), f"namespace {name} left behind"


class LiveGuest:
    """One QEMU guest driven through its serial console (run-qemu.sh with stdin and stdout as pipes).

    A reader thread collects everything the guest prints (and copies it to the log as it arrives, so a hang
    still leaves the log). wait_for() and command() look only at output that arrived after their start."""

    def __init__(self, args, log, timeout, monitor=False):
        self.log = log
        self.timeout = timeout
        self.monitor_dir = tempfile.mkdtemp(prefix="vnt-mon-") if monitor else None
        self.monitor_path = os.path.join(self.monitor_dir, "hmp.sock") if monitor else None
        mon = ["--monitor", self.monitor_path] if monitor else []
        self.cmd = [str(ROOT / "run-qemu.sh"), "--no-build", "--timeout", str(timeout), *mon, *args]
        self.status = None
        self._buf = ""
        self._cond = threading.Condition()
        self._eof = False
        self._logf = open(log, "w", buffering=1)
        self._logf.write(f"$ {' '.join(self.cmd)}\n")
        self.t0 = time.monotonic()
        # Its own session: run-qemu.sh, timeout, ip netns exec and QEMU form one process group to stop.
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, name=f"guest-reader-{log.name}", daemon=True)
        self._reader.start()

    def __repr__(self):
        return f"LiveGuest(log={self.log}, status={self.status})"

    def _read(self):
        fd = self.proc.stdout.fileno()
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            text = dec.decode(chunk, final=not chunk).replace("\r", "")
            with self._cond:
                self._buf += text
                self._eof = not chunk
                self._cond.notify_all()
                self._logf.write(text)
            if not chunk:
                break

    @property
    def output(self):
        with self._cond:
            return self._buf

    def mark(self):
        """A position in the output: wait_for(..., start=mark) looks only after it."""
        with self._cond:
            return len(self._buf)

    def alive(self):
        return self.proc.poll() is None

    def wait_for(self, pattern, timeout=10.0, start=0):
        """Wait until regex `pattern` (multiline) matches the output from `start`; returns the match (positions
        in the whole output). Fails with the log's tail on timeout or when the guest is gone. Output arrives in
        pieces: `$` also matches at the end of a line still being written, so end patterns with `\\n` where a
        whole line matters."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._buf, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    why = "guest exited" if self._eof else f"timeout {timeout} s"
                    raise AssertionError(f"{why} waiting for {pattern!r} (log: {self.log})\n"
                                         f"{self._buf[-3000:]}")
                self._cond.wait(min(left, 0.5))

    def expect(self, pattern):
        """Like GuestRun.expect: a pattern in what has arrived so far."""
        m = re.search(pattern, self.output, re.M)
        assert m, f"pattern {pattern!r} not in guest output (log: {self.log})\n{self.output[-3000:]}"
        return m

    def hmp(self, cmd, timeout=5.0):
        """One QEMU human-monitor command (the guest must be started with monitor=True), e.g. "stop" / "cont";
        returns the monitor's answer."""
        assert self.monitor_path, "start the guest with monitor=True"
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            while True:  # QEMU creates the socket early, but be patient right after the start
                try:
                    s.connect(self.monitor_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

            def until_prompt():
                data = b""
                while not data.endswith(b"(qemu) "):
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                return data.decode("utf-8", "replace")

            until_prompt()  # the banner
            s.sendall(cmd.encode() + b"\n")
            out = until_prompt()
        self.note(f"monitor: {cmd}")
        # The monitor echoes the command line (with terminal escapes); keep what follows it.
        return out.rsplit("\r\n", 1)[0].split("\r\n", 1)[-1] if "\r\n" in out else ""

    def note(self, text):
        """A line from the test in the guest's log, marked so it cannot be taken for guest output."""
        with self._cond:
            self._logf.write(f"\n[test] {text}\n")

    def write(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def command(self, cmd, timeout=10.0):
        """Type a console command; returns what the guest printed up to its `console: done NAME` line (the
        console reads its UART once per 10 ms tick, 64 characters at a time: keep commands short)."""
        assert "\n" not in cmd and len(cmd) < 64, cmd
        name = cmd.split()[0]
        start = self.mark()
        self.write(cmd + "\n")
        m = self.wait_for(rf"^console: done {re.escape(name)}\n", timeout, start)
        with self._cond:
            return self._buf[start:m.start()]

    def stats(self, timeout=10.0):
        """`stats` parsed: {"net0": {"rx_frames": int, ..., "ethertypes": {0x88b6: int, ...},
        "ethertype_other": int}, ...}."""
        return parse_stats(self.command("stats", timeout))

    def close(self, timeout=10.0):
        """`exit` through the console (if the guest is still running), else stop it; returns QEMU's status."""
        if self.status is not None:
            return self.status
        if self.alive():
            try:
                self.write("exit\n")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self.status = self.proc.wait()
        self._reader.join(10)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.stdout.close()
        self._logf.write(f"\n[exit status {self.status}, {time.monotonic() - self.t0:.2f} s]\n")
        self._logf.close()
        if self.monitor_dir:
            shutil.rmtree(self.monitor_dir, ignore_errors=True)
        return self.status

    def _kill(self):
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)  # the group of the run-qemu.sh we started (its own session)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                pass


_STATS_LINE = re.compile(r"^(net\d+): (.*)$", re.M)


def parse_stats(text):
    """The driver's `netN: key=value ...` lines -> {"net0": {key: int, ..., "ethertypes": {0x88b6: n, ...},
    "ethertype_other": n}, ...}. Values that are not numbers stay strings; `netN:` lines that are not all
    key=value (e.g. "net0: IPv6 fe80::...") are not counters and are left out."""
    nics = {}
    for m in _STATS_LINE.finditer(text):
        nic, rest = m.group(1), m.group(2).split()
        if rest and rest[0] == "ethertypes":
            d = nics.setdefault(nic, {"ethertypes": {}})
            for tok in rest[1:]:
                key, eq, val = tok.partition("=")
                assert eq and val.isdigit(), f"unparsable ethertype count {tok!r} in {m.group(0)!r}"
                if key == "other":
                    d["ethertype_other"] = int(val)
                else:
                    d["ethertypes"][int(key, 16)] = int(val)
            continue
        pairs = [tok.partition("=") for tok in rest]
        if not pairs or not all(eq and key for key, eq, _ in pairs):
            continue
        d = nics.setdefault(nic, {"ethertypes": {}})
        for key, _, val in pairs:
            d[key] = int(val) if val.isdigit() else val
    return nics


@pytest.fixture
def live_guest(request, ring_layout):
    """live_guest(*run_qemu_args, timeout=60, ready=r"^ready in .*\\n", monitor=False) -> LiveGuest, started and
    past its boot (the `ready in` line: console input sent earlier would be lost when the kernel resets the UART
    FIFO). monitor=True adds a QEMU monitor socket for LiveGuest.hmp() (e.g. "stop" / "cont").
    Every guest still running at teardown is closed; logs go to tests/out/<test>-N.log (and, on a tap,
    the traffic to tests/out/<test>-N.pcap: see the module docstring)."""
    guests = []

    def start(*args, timeout=60, ready=r"^ready in .*\n", boot_timeout=30, monitor=False):
        log = _next_log(request)
        g = LiveGuest(_with_pcap(request, with_ring(args, ring_layout), log), log, timeout, monitor)
        g.ring_layout = ring_layout
        guests.append(g)
        if ready:
            g.wait_for(ready, boot_timeout)
        return g

    yield start
    for g in guests:
        g.close()


@pytest.fixture
def tap_guest(netns, live_guest):
    """tap_guest(*run_qemu_args, **live_guest_kwargs) -> LiveGuest on a tap `tap0` in the test's own namespace
    (`netns`, which outlives the guest). The namespace's name is the guest's .netns."""

    def start(*args, **kw):
        g = live_guest("--net", "tap", "--netns", netns, "--tap", "tap0", *args, **kw)
        g.netns = netns
        return g

    return start
