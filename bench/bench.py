#!/usr/bin/python3
"""make bench: this kernel against a stock Linux guest, booted with the same QEMU flags, NIC and namespace
setup, measured in the same run. Prints one table (metric, ours, Linux, ratio, target) and writes it as CSV and
Markdown under build/bench/, with the receive-rate curves for `make plot`.

Every guest runs in a namespace of its own, on a tap inside it; every client runs inside that namespace and
talks only to the guest (192.168.77.2). Durations are bounded; namespaces are removed at the end, also on
failure. Needs root (namespaces, taps, raw ICMP).
"""
import argparse
import csv
import os
import pathlib
import re
import select
import socket
import statistics
import struct
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
TOOLS = ROOT / "build" / "tools"
GUEST, HOST_IP = "192.168.77.2", "192.168.77.1/24"
PLUGIN = ROOT / "build" / "tools" / "libicount.so"
# Offered rates for the receive-rate curve: 10 kpps to 640 kpps, a factor 1.46 apart. Under TCG here both
# guests bend between 100 and 200 kpps, so the curve is driven past 4x their MLFRR (the livelock check); the
# AF_PACKET generator's own ceiling (~800 kpps against a veth sink) is above the top rate.
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))
from guest_console import ConsoleGuest, qemu_cpu_ns, sh  # noqa: E402
import curve  # noqa: E402

RATES = curve.geometric_rates(10e3, 640e3, 12)
LOAD_THREADS = 2


# ---- inside the namespace: first ICMP echo reply after boot ----

def inner_first_ping(limit, tap):
    """Started before QEMU (so that this interpreter's own start-up, ~0.1 s here, is not counted): says
    "armed", waits for the tap to get its carrier (QEMU opened it), then sends an ICMP echo to the guest every
    2 ms until one is answered, and prints the monotonic time of the reply in seconds (CLOCK_MONOTONIC is
    system-wide, so the parent subtracts its own QEMU start time)."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print("armed", flush=True)
    carrier = f"/sys/class/net/{tap}/carrier"
    while True:
        try:
            with open(carrier) as f:
                if f.read().strip() == "1":
                    break
        except OSError:
            pass  # no tap yet, or down: reading carrier fails with EINVAL
        if time.monotonic() - t0 > limit:
            print("nan", flush=True)
            return
        time.sleep(0.002)
    # Resolve the guest's MAC quickly: retry ARP every 10 ms, not every second.
    subprocess.run(["sysctl", "-qw", f"net.ipv4.neigh.{tap}.retrans_time_ms=10"], check=False)
    ident, seq = os.getpid() & 0xFFFF, 0
    while time.monotonic() - t0 < limit:
        seq = (seq + 1) & 0xFFFF
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"vnetk-bench!"  # even length for the checksum
        csum = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
        csum = (csum >> 16) + (csum & 0xFFFF)
        csum = ~(csum + (csum >> 16)) & 0xFFFF
        pkt = hdr[:2] + struct.pack("!H", csum) + hdr[4:]
        try:
            s.sendto(pkt, (GUEST, 0))
        except OSError:
            pass  # neighbour resolution failed this round; the next send retries it
        end = time.monotonic() + 0.002
        while time.monotonic() < end:
            r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            data, addr = s.recvfrom(2048)
            ihl = (data[0] & 0xF) * 4
            if addr[0] == GUEST and data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                print(f"{time.monotonic():.6f}", flush=True)
                return
    print("nan", flush=True)


# ---- guests ----

VCPU_NAMES = ("--qemu-arg", "-name", "--qemu-arg", "bench,debug-threads=on")  # "CPU 0/TCG" for vcpu_seconds


class Guest(ConsoleGuest):
    """One guest (ours or Linux) in its own namespace; its console output is collected in the background."""

    def __init__(self, kind, ns, tap, extra=(), icount=None):
        self.kind, self.label, self.ns, self.tap = kind, kind, ns, tap
        self.icount_path = icount
        self.probe = self.proc = None
        self.stamp = OUT / f"start_{tap}"
        extra = (*VCPU_NAMES, *extra)
        if icount:
            extra = [*extra, "--qemu-arg", "-plugin", "--qemu-arg", f"{PLUGIN},out={icount}"]
        sh("ip", "netns", "add", ns)
        try:
            self._start(extra)
        except BaseException:
            self.stop()  # the namespace (and the probe, the launch script) go also when the start fails
            raise

    def _start(self, extra):
        ns, tap = self.ns, self.tap
        # The first-ping probe is armed before QEMU starts (see inner_first_ping).
        self.probe = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, __file__, "--inner-first-ping",
                                       "60", tap], stdout=subprocess.PIPE, text=True)
        if self.probe.stdout.readline().strip() != "armed":
            raise RuntimeError("first-ping probe did not start")
        if self.kind == "ours":
            cmd = [ROOT / "run-qemu.sh", "--no-build", "--net", "tap", "--netns", ns, "--tap", tap,
                   "--timeout", "900", *extra]
        else:
            cmd = [ROOT / "bench/linux/run.sh", "--netns", ns, "--tap", tap, "--timeout", "900",
                   "--cmdline", "vg_shell=1", *extra]  # the shell runs iperf's client (guest->host)
        self.stamp.unlink(missing_ok=True)
        self.start_process(cmd, env={**os.environ, "VNETK_START_STAMP": str(self.stamp)})
        # The clock starts when the launch script starts the QEMU command (its $EPOCHREALTIME, written just
        # before; tools/launch-lib.sh), not when the script itself started (namespace and tap set-up): both
        # guests are timed from the same event. Waiting for the file polls slowly, and costs nothing timed.
        end = time.monotonic() + 30
        while time.monotonic() < end and not (self.stamp.exists() and self.stamp.stat().st_size):
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        if not (self.stamp.exists() and self.stamp.stat().st_size):
            raise RuntimeError(f"{self.kind}: the launch script never started QEMU:\n{self.text()[-2000:]}")
        realtime = float(self.stamp.read_text().strip().replace(",", "."))  # the decimal point is the locale's
        self.t_qemu = time.monotonic() - (time.time() - realtime)

    def icount(self):
        """Guest instructions so far (tools/plugin/icount.c's shared counter), and the monotonic time."""
        with open(self.icount_path, "rb") as f:
            return struct.unpack("<Q", f.read(8))[0], time.monotonic()

    def mac(self):
        """The guest's MAC from the namespace's neighbour table (after traffic), pinned as permanent: the
        AF_PACKET load needs it, and without lwIP (consumer noop) nothing would answer ARP."""
        out = sh("ip", "neigh", "show", GUEST, "dev", self.tap, ns=self.ns)
        mac = re.search(r"lladdr ([0-9a-f:]{17})", out).group(1)
        sh("ip", "neigh", "replace", GUEST, "lladdr", mac, "dev", self.tap, "nud", "permanent", ns=self.ns)
        return mac

    def stop(self):
        if self.probe is not None and self.probe.poll() is None:
            self.probe.kill()
            self.probe.communicate()
        if self.proc is not None:
            self.stop_process()
        self.stamp.unlink(missing_ok=True)
        sh("ip", "netns", "del", self.ns, check=False)


# ---- measurements ----

def first_ping(g):
    """QEMU start -> first ICMP echo reply in ms, from the probe armed before QEMU started."""
    try:
        out, _ = g.probe.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        g.probe.kill()
        g.probe.communicate()
        return float("nan")
    return (float(out.strip().splitlines()[-1]) - g.t_qemu) * 1000


def ping_rtt(g, count=200):
    out = sh("ping", "-c", count, "-i", "0.01", "-W", "1", "-n", GUEST, ns=g.ns, timeout=60,
             check=False)
    rtts = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", out))
    if not rtts:
        raise RuntimeError(f"{g.kind}: no ping replies\n{out[-500:]}")
    return pct(rtts, 50), pct(rtts, 99), len(rtts) / count


def pct(sorted_vals, p):
    """Nearest rank, as tools/stats.c."""
    k = max(1, min(len(sorted_vals), -(-len(sorted_vals) * p // 100)))
    return sorted_vals[int(k) - 1]


def udp_echo(g, count=2000, csv_path=None):
    args = [TOOLS / "probe", "--dst", GUEST, "--port", 7, "--count", count, "--rate", 500, "--size", 64,
            "--warmup", 20]
    if csv_path:
        args += ["--csv", csv_path]
    out = sh(*args, ns=g.ns, timeout=60, check=False)
    m = re.search(r"p50=([\d.]+) p90=([\d.]+) p99=([\d.]+) p99\.9=([\d.]+) max=([\d.]+).*method=(\w+)", out)
    loss = re.search(r"loss=([\d.]+)%", out)
    if not m:
        raise RuntimeError(f"{g.kind}: probe failed\n{out[-800:]}")
    return float(m.group(1)), float(m.group(3)), float(m.group(4)), float(loss.group(1)), m.group(6)


class Counter:
    """Datagrams the guest received on the UDP discard port (ours: console; Linux: echod's UDP 9999)."""

    def __init__(self, g, noop=False):
        self.g, self.noop = g, noop

    def reset(self):
        if self.g.kind == "ours":
            self.g.console("reset")
        else:
            self._linux("reset")

    def read(self):
        if self.g.kind == "ours":
            t = self.g.console("stats")
            if self.noop:
                # Without lwIP, the driver's ethertype histogram counts the IPv4 frames.
                return int(re.findall(r"^net0: ethertypes.* 0800=(\d+)", t, re.M)[-1])
            return int(re.findall(r"discard_datagrams=(\d+)", t)[-1])
        return int(self._linux("count").split()[0])

    def _linux(self, cmd):
        code = ("import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);"
                f"s.sendto(b'{cmd}',('{GUEST}',9999));sys.stdout.write(s.recv(65536).decode())")
        return sh(sys.executable, "-c", code, ns=self.g.ns, timeout=20)


def load_args(g, mac, rate):
    """AF_PACKET frames straight to the tap from a PACKET_TX_RING (one send() per batch: ~25 % less CPU per
    frame than sendmmsg, which against a running guest on two cores was the generator's limit, ~0.7 Mpps):
    a load that outruns the guest. One paced thread in batches
    200 us apart (at most 256 frames, below the tap's queue of 500): the sender busy-waits the last 50 us
    before each batch, and with QEMU on one of the two cores, spinning threads of ours would take the CPU
    the guest needs (seen: 2 threads with 10 us batches offered 18 kpps when 44 kpps were asked)."""
    batch = max(1, min(256, int(rate * 200e-6)))
    return ["--packet", g.tap, "--dst-mac", mac, "--batch", batch, "--tx-ring"]


def rx_curve(g, counter, rates, seconds, mac):
    """Offered vs delivered 64-byte UDP rate (Mogul & Ramakrishnan): one step per rate, then three steps that
    bisect the MLFRR (bench/curve.py refine_mlfrr), a step at 4.4x the MLFRR if the sweep stopped short of it
    (the livelock check reads a measured point), and one 1.35x past the knee if nothing confirms it yet."""
    def step(rate):
        counter.reset()
        out = sh(TOOLS / "load", "--dst", GUEST, "--port", 9, "--rate", rate, "--duration", seconds,
                 *load_args(g, mac, rate), ns=g.ns, timeout=seconds + 30, check=False)
        offered = curve.load_offered(out)
        if not offered:
            raise RuntimeError(f"load failed\n{out[-500:]}")
        time.sleep(0.3)  # let the guest drain its ring
        sent, dur = offered
        got = counter.read()
        return {"rate": rate, "offered_pps": sent / dur, "sent": sent, "received": got, "delivered_pps": got / dur,
                "ratio": got / sent if sent else 0.0}

    rows = [step(rate) for rate in rates]
    curve.refine_mlfrr(rows, step)
    rows += [step(rate) for rate in curve.livelock_rates(rows)]
    rows += [step(rate) for rate in curve.knee_rates(rows)]
    return sorted(rows, key=lambda r: r["offered_pps"])


def sink_ceiling(seconds=2.0):
    """The generator's own ceiling: the same AF_PACKET load, unpaced, into a veth pair in a namespace of its
    own (the peer receives and drops every frame), so that a curve's top is known to be the guest's and not
    the generator's. Returns pps."""
    ns = f"vbench-sink-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", "sk0", "type", "veth", "peer", "name", "sk1", ns=ns)
        sh("ip", "addr", "add", "10.99.0.1/24", "dev", "sk0", ns=ns)
        for dev in ("sk0", "sk1"):
            sh("ip", "link", "set", dev, "up", ns=ns)
        out = sh(TOOLS / "load", "--dst", "10.99.0.2", "--port", 9, "--flat", "--duration", seconds, "--packet",
                 "sk0", "--dst-mac", "02:00:00:00:00:02", "--threads", LOAD_THREADS, "--tx-ring", "--quiet", ns=ns,
                 timeout=seconds + 20)
        return float(re.search(r"offered_pps=([\d.]+)", out).group(1))
    finally:
        sh("ip", "netns", "del", ns, check=False)


def icount_idle_rate(g, seconds=3.0):
    """Guest instructions per second of host time while nothing is sent (its tick and idle loop)."""
    c0, t0 = g.icount()
    time.sleep(seconds)
    c1, t1 = g.icount()
    return (c1 - c0) / (t1 - t0)


def icount_echo(g, idle, count=2000):
    """Guest instructions per echoed 64-byte UDP datagram, idle rate subtracted."""
    c0, t0 = g.icount()
    out = sh(TOOLS / "probe", "--dst", GUEST, "--port", 7, "--count", count, "--rate", 1000, "--size", 64,
             "--quiet", ns=g.ns, timeout=60, check=False)
    c1, t1 = g.icount()
    got = int(re.search(r"received=(\d+)", out).group(1))
    return curve.per_unit(c1 - c0, idle, t1 - t0, got)


def icount_tcp(g, idle, mib=16):
    """Guest instructions per MiB of iperf2 TCP received, idle rate subtracted."""
    c0, t0 = g.icount()
    sh("iperf", "-c", GUEST, "-n", f"{mib}M", ns=g.ns, timeout=120, check=False)
    c1, t1 = g.icount()
    return curve.per_unit(c1 - c0, idle, t1 - t0, mib)


def icount_block(g, r, repeats=3):
    """Per-packet and per-MiB counts, `repeats` times each; the mean and the spread go in the table."""
    idle = icount_idle_rate(g)
    echo = [icount_echo(g, idle) for _ in range(repeats)]
    tcp = [icount_tcp(g, idle) for _ in range(repeats)]
    r["idle_insn_per_s"] = idle
    r["insn_per_echo"] = sum(echo) / len(echo)
    r["insn_per_echo_spread"] = curve.spread(echo)
    r["insn_per_tcp_mib"] = sum(tcp) / len(tcp)
    r["insn_per_tcp_mib_spread"] = curve.spread(tcp)
    print(f"  instructions: idle {idle:.3g}/s, per echo {echo}, per TCP MiB {tcp}", flush=True)


def vcpu_seconds(g):
    """CPU time of QEMU's vCPU thread ("CPU 0/TCG", named through VCPU_NAMES) so far: under TCG the guest's
    own work (a halted vCPU uses none), without the I/O thread's copies."""
    pid = g.qemu_pid()
    for tid in os.listdir(f"/proc/{pid}/task") if pid else ():
        try:
            if open(f"/proc/{pid}/task/{tid}/comm").read().startswith("CPU 0/"):
                f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return float("nan")


def iperf_tcp(g, seconds=5, parallel=1):
    """host -> guest Mbit/s, and the guest's vCPU milliseconds per MiB received (guest work per MiB). With
    parallel > 1 (iperf -P), the [SUM] line, which iperf2 prints last."""
    c0 = vcpu_seconds(g)
    out = sh("iperf", "-c", GUEST, "-t", seconds, "-P", parallel, "-f", "m", ns=g.ns, timeout=seconds + 40,
             check=False)
    c1 = vcpu_seconds(g)
    m = re.findall(r"([\d.]+) Mbits/sec", out)
    mb = re.findall(r"([\d.]+) MBytes", out)
    mbps = float(m[-1]) if m else 0.0
    mib = float(mb[-1]) * 1e6 / (1 << 20) if mb else 0.0
    return mbps, (1000.0 * (c1 - c0) / mib) if mib else float("nan")


def iperf_tx(g, seconds=10):
    """guest -> host: an iperf2 server in the guest's namespace and the guest's own client (ours: the `iperf`
    console command, lwiperf's client, which sends for 10 s; Linux: iperf -c from its console shell). The
    server's report, Mbit/s."""
    host = HOST_IP.split("/")[0]
    srv = subprocess.Popen(["ip", "netns", "exec", g.ns, "timeout", str(seconds + 30), "iperf", "-s", "-B", host,
                            "-f", "m"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1)
        if g.kind == "ours":
            g.console(f"iperf {host}")
        else:
            g.proc.stdin.write(f"iperf -c {host} -t {seconds} -f m\n".encode())
            g.proc.stdin.flush()
        time.sleep(seconds + 3)
    finally:
        srv.terminate()
        out = srv.communicate(timeout=10)[0]
    m = re.findall(r"([\d.]+) Mbits/sec", out)
    return float(m[-1]) if m else 0.0


def idle_cpu(g, seconds=5):
    """QEMU's CPU share of one core, in %, while the guest is left alone for `seconds`."""
    pid = g.qemu_pid()
    if not pid:
        return float("nan")
    a, t = qemu_cpu_ns(pid), time.monotonic()
    time.sleep(seconds)
    b, t2 = qemu_cpu_ns(pid), time.monotonic()
    return 100.0 * (b - a) / 1e9 / (t2 - t)


def accel_used():
    out = subprocess.run([str(ROOT / "run-qemu.sh"), "--dry-run", "--no-build", "--net", "none"],
                         capture_output=True, text=True).stdout
    return "kvm" if "-accel kvm" in out else "tcg"


# ---- the run ----

# Ring layouts for `--rings` (issue 12): the same virtio-net device with and without VIRTIO_F_RING_PACKED.
RING_ARGS = {"split": ("--cmdline", "ring=split"),
             "packed": ("--nic-opts", "packed=on", "--cmdline", "ring=packed")}
STAGES = ("irq_to_poll_ns", "poll_to_dequeue_ns", "input_ns", "irq_to_txkick_ns", "tx_complete_ns")


def merge_nic_opts(args):
    """run-qemu.sh takes one --nic-opts: join every one given (ring layout, --ours-nic-opts) into it."""
    out, opts, it = [], [], iter(args)
    for a in it:
        if a == "--nic-opts":
            opts.append(next(it))
        else:
            out.append(a)
    return (*out, "--nic-opts", ",".join(opts)) if opts else tuple(out)


def guest_path_figures(g, r):
    """Our guest's own view after the UDP echo run: interrupts per received frame and the p50 of each
    receive-path stage (the `stats` and `hist` console commands)."""
    m = re.search(r"irq_per_frame=([\d.]+)", g.console("stats"))
    r["irq_per_frame"] = float(m.group(1)) if m else None
    hist = g.console("hist")
    for s in STAGES:
        m = re.search(rf"net0\.{s}: count=\d+ min=\d+ p50=(\d+)", hist)
        r[f"stage_{s}_p50"] = int(m.group(1)) if m else None


# Kernel entry -> ready, as each guest reports it: ours prints "ready in X ms since kernel entry" (kernel/main.c);
# the Linux guest's init prints /proc/uptime (seconds since the kernel's clock started, early in start_kernel)
# once its servers listen.
READY_RE = {"ours": r"^ready in (\d+(?:\.\d+)?) ms since kernel entry",
            "linux": r"LINUX-GUEST READY .*\buptime=(\d+(?:\.\d+)?)s"}


def ready_ms(kind, text):
    """Kernel entry -> ready in ms from a guest's console text, or None when the line is not there."""
    m = re.search(READY_RE[kind], text, re.M)
    if not m:
        return None
    return float(m.group(1)) * (1000.0 if kind == "linux" else 1.0)


def boot_figures(g, r, prefix=""):
    """QEMU start -> first ping reply, kernel entry -> ready, into r under prefix."""
    r[prefix + "first_ping_ms"] = first_ping(g)
    print(f"  first ping reply {r[prefix + 'first_ping_ms']:.0f} ms after QEMU start", flush=True)
    g.wait_for(READY_RE[g.kind], 60)
    r[prefix + "ready_ms"] = ready_ms(g.kind, g.text())
    m = re.search(r"CPU reset to loader, the firmware: (\d+) us", g.text())
    if m:
        r[prefix + "firmware_ms"] = int(m.group(1)) / 1000
    print(f"  kernel entry -> ready {fmt(r[prefix + 'ready_ms'])} ms", flush=True)


def more_boots(kind, extra, r, runs, counted=True):
    """Further boots of the same guest for its boot figures, and r's first-ping and ready figures become the
    medians of `runs` boots (with their minimum and maximum): one boot on this shared 2-core host moves by up
    to 2x. counted: r's own boot is one of them (not when it ran under the instruction-counting plugin, which
    slows TCG)."""
    fp, rd = ([r["first_ping_ms"]], [r["ready_ms"]]) if counted else ([], [])
    for i in range(runs - len(fp)):
        ns, tap = f"vbench-boot{i}-{os.getpid()}", f"tbb{i}{os.getpid() % 1000}"
        g = Guest(kind, ns, tap, extra=extra)
        one = {}
        try:
            boot_figures(g, one)
        finally:
            g.stop()
        fp.append(one["first_ping_ms"])
        rd.append(one["ready_ms"])
    fp, rd = [x for x in fp if x == x], [x for x in rd if x is not None]
    r["boot_runs"] = runs
    if fp:
        r["first_ping_ms"], r["first_ping_range"] = statistics.median(fp), f"{min(fp):.0f}-{max(fp):.0f}"
    if rd:
        r["ready_ms"], r["ready_range"] = statistics.median(rd), f"{min(rd):.1f}-{max(rd):.1f}"


def measure_boot(kind, args, tag, extra=()):
    """Boot figures and idle CPU only: the first-ping, ready and idle rows for a further machine type."""
    ns, tap = f"vbench-{tag}-{os.getpid()}"[:40], f"tb{tag[0]}{os.getpid() % 10000}m"
    g = Guest(kind, ns, tap, extra=merge_nic_opts(extra))
    r = {}
    try:
        boot_figures(g, r)
        time.sleep(0.5)
        r["idle_cpu_pct"] = idle_cpu(g)
    finally:
        g.stop()
        (OUT / f"console_{tag}.log").write_text(g.text())
    more_boots(kind, merge_nic_opts(extra), r, args.boot_runs)
    return r


# Under -icount shift=0 one guest instruction is one nanosecond of guest time, and sleep=off makes that time
# depend on nothing but the instructions (an idle vCPU jumps to its next timer): the guest's own stage stamps
# (TSC reads) then count instructions, the same in every run and on every host.
ICOUNT_ARGS = ("--qemu-arg", "-icount", "--qemu-arg", "shift=0,sleep=off")
# tx_complete spans the device's work, during which the idle guest's clock jumps ahead: not an instruction count.
ICOUNT_STAGES = STAGES[:4]
BOOT_STAGES_RE = r"^boot stages \(us\): (.*)$"


def measure_icount_stages(args, extra=()):
    """Our guest under -icount: kernel entry -> ready and each boot stage, and the p50 of each receive-path
    stage over a UDP echo run, all in guest instructions."""
    ns, tap = f"vbench-icount-{os.getpid()}", f"tbi{os.getpid() % 10000}"
    g = Guest("ours", ns, tap, extra=merge_nic_opts((*extra, *ICOUNT_ARGS)))
    r = {}
    try:
        g.wait_for(r"^boot stages ", 60)  # printed after the ready line (net0's address comes before both)
        r["icount_ready_insn"] = ready_ms("ours", g.text()) * 1e6
        m = re.search(BOOT_STAGES_RE, g.text(), re.M)
        # The line is in microseconds: thousands of instructions.
        r["icount_boot_stages"] = " ".join(f"{k}={v}k" for k, v in re.findall(r"(\S+)=(\d+)", m.group(1))) \
            if m else None
        udp_echo(g)
        hist = g.console("hist")
        for s in ICOUNT_STAGES:
            m = re.search(rf"net0\.{s}: count=\d+ min=\d+ p50=(\d+)", hist)
            r[f"icount_stage_{s}"] = int(m.group(1)) if m else None
    finally:
        g.stop()
        (OUT / "console_ours-icount.log").write_text(g.text())
    print(f"  under -icount: kernel entry -> ready {fmt(r.get('icount_ready_insn'))} instructions", flush=True)
    return r


def measure(kind, args, tag, extra=()):
    ns, tap = f"vbench-{kind}-{os.getpid()}", f"tb{kind[0]}{os.getpid() % 10000}"
    if kind == "ours" and args.ours_nic_opts:
        extra = (*extra, "--nic-opts", args.ours_nic_opts)
    extra = merge_nic_opts(extra)
    g = Guest(kind, ns, tap, extra=extra, icount=OUT / f"icount_{tag}" if args.icount else None)
    r = {}
    try:
        boot_figures(g, r)
        time.sleep(0.5)
        if args.boot_only:
            r["idle_cpu_pct"] = idle_cpu(g)
        else:
            traffic_figures(g, r, args, tag)
    finally:
        g.stop()
        (OUT / f"console_{tag}.log").write_text(g.text())
    more_boots(kind, extra, r, args.boot_runs, counted=not args.icount)
    return r


def traffic_figures(g, r, args, tag):
    """Everything after boot on one guest: RTTs, instruction counts, receive curves, TCP."""
    r["ping_p50_ms"], r["ping_p99_ms"], _ = ping_rtt(g)
    r["udp_p50_us"], r["udp_p99_us"], r["udp_p999_us"], r["udp_loss_pct"], r["ts_method"] = \
        udp_echo(g, csv_path=OUT / f"udp_echo_{tag}.csv")
    if g.kind == "ours":
        guest_path_figures(g, r)
    r["idle_cpu_pct"] = idle_cpu(g)
    if args.icount:
        icount_block(g, r)
    mac = g.mac()
    rows = rx_curve(g, Counter(g), args.rates, args.step_seconds, mac)
    r["rx_curve"] = rows
    add_curve(r, "", rows)
    r["tcp_mbps"], r["rx_vcpu_ms_per_mib"] = iperf_tcp(g)
    r["tcp_p4_mbps"], r["rx_vcpu_ms_per_mib_p4"] = iperf_tcp(g, parallel=4)
    r["tcp_tx_mbps"] = iperf_tx(g)
    if g.kind == "ours":
        g.console("consumer noop")
        rows = rx_curve(g, Counter(g, noop=True), args.rates, args.step_seconds, mac)
        r["noop_curve"] = rows
        add_curve(r, "noop_", rows)
        r["image_bytes"] = (ROOT / "build/kernel.stripped.elf").stat().st_size
    else:
        r["image_bytes"] = sum((ROOT / "build/linux-guest" / f).stat().st_size
                               for f in ("vmlinuz", "initramfs.cpio.gz"))


def add_curve(r, prefix, rows):
    """The curve's figures (bench/curve.py) into r under prefix; loss_free_pps/peak_delivered_pps as before."""
    s = curve.summary(rows)
    r[prefix + "loss_free_pps"], r[prefix + "peak_delivered_pps"] = s["mlfrr"], s["peak"]
    r[prefix + "knee_pps"], r[prefix + "knee_found"] = s["knee"], s["knee_found"]
    r[prefix + "top_multiple"], r[prefix + "at_top_of_peak"] = s["top_multiple"], s["at_top_of_peak"]
    r[prefix + "at_2x_pps"], r[prefix + "at_4x_pps"], r[prefix + "at_4x_of_peak"] = \
        s["at_2x"], s["at_4x"], s["at_4x_of_peak"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inner-first-ping", nargs=2, metavar=("LIMIT", "TAP"), help=argparse.SUPPRESS)
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=RATES,
                    help="offered rates for the receive-rate steps, pps, comma-separated")
    ap.add_argument("--step-seconds", type=float, default=2.0)
    ap.add_argument("--only", choices=["ours", "linux"])
    ap.add_argument("--ours-nic-opts", default="",
                    help="virtio-net-pci properties for our guest, e.g. the offloads off to compare: "
                         "'csum=off,guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off'")
    ap.add_argument("--rings", type=lambda s: s.split(","), default=["split"],
                    help="ring layouts to measure ours on, e.g. split,packed (the first one is compared with Linux)")
    ap.add_argument("--no-icount", dest="icount", action="store_false",
                    help="no instruction counts (without build/tools/libicount.so: make plugin)")
    ap.add_argument("--boot-runs", type=int, default=5,
                    help="boots per guest and machine for the boot figures, reported as median and range (default 5)")
    ap.add_argument("--boot-only", action="store_true",
                    help="only the boot figures (first ping, kernel entry -> ready) and idle CPU")
    ap.add_argument("--machines", type=lambda s: s.split(","), default=["q35", "microvm"],
                    help="machine types to boot ours on; the first gets the full measurement, the others "
                         "(e.g. microvm) the boot and idle figures (the Linux guest boots on q35 only)")
    a = ap.parse_args()
    if a.inner_first_ping:
        limit, tap = a.inner_first_ping
        inner_first_ping(float(limit), tap)
        return 0
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces and taps)")
    OUT.mkdir(parents=True, exist_ok=True)
    if a.icount and not PLUGIN.exists():
        sys.exit(f"bench: {PLUGIN} missing (make plugin), or run with --no-icount")
    res = {"sink_pps": sink_ceiling()}
    print(f"bench: load generator ceiling against a veth sink: {res['sink_pps']:.0f} pps "
          f"(AF_PACKET TX ring, {LOAD_THREADS} threads)", flush=True)
    bad = [x for x in a.rings if x not in RING_ARGS]
    if bad:
        sys.exit(f"bench: --rings: unknown layout(s) {bad}; choose from {sorted(RING_ARGS)}")
    for kind in ("ours", "linux"):
        if a.only and a.only != kind:
            continue
        if kind == "linux":
            print("bench: measuring linux ...", flush=True)
            res["linux"] = measure("linux", a, "linux")
            continue
        for ring in a.rings:
            print(f"bench: measuring ours ({ring} ring) ...", flush=True)
            res[f"ours-{ring}"] = measure("ours", a, "ours" if ring == a.rings[0] else f"ours-{ring}",
                                          (*RING_ARGS[ring], "--machine", a.machines[0]))
        res["ours"] = res[f"ours-{a.rings[0]}"]
        if a.icount and not a.boot_only:
            print("bench: measuring ours under -icount (stage stamps in instructions) ...", flush=True)
            res["ours"].update(measure_icount_stages(a, (*RING_ARGS[a.rings[0]], "--machine", a.machines[0])))
        for machine in a.machines[1:]:
            print(f"bench: measuring ours on {machine} (boot and idle only) ...", flush=True)
            rb = measure_boot("ours", a, f"ours-{machine.split(',')[0]}", ("--machine", machine))
            res["ours"].update({f"{machine.split(',')[0]}_{k}": v for k, v in rb.items()})
    report(res, accel_used())
    if len(a.rings) > 1 and "ours" in res:
        report_rings(res, a.rings)
    return 0


METRICS = [
    # key, label, unit, better, target ratio (ours/linux) or None
    ("first_ping_ms", "QEMU start -> first ping reply (median of --boot-runs)", "ms", "lower", 1 / 20),
    ("first_ping_range", "  its range (min-max)", "ms", "lower", None),
    ("microvm_first_ping_ms", "  on microvm (Linux: its q35 figure)", "ms", "lower", 1 / 20),
    ("microvm_first_ping_range", "  on microvm: its range", "ms", "lower", None),
    ("ready_ms", "kernel entry -> ready (Linux: uptime at READY; median)", "ms", "lower", None),
    ("ready_range", "  its range (min-max)", "ms", "lower", None),
    ("firmware_ms", "  before it: the firmware, vCPU reset -> loader (one boot)", "ms", "lower", None),
    ("microvm_ready_ms", "  on microvm (Linux: its q35 figure)", "ms", "lower", None),
    ("microvm_ready_range", "  on microvm: its range", "ms", "lower", None),
    ("microvm_firmware_ms", "  on microvm: the firmware (one boot)", "ms", "lower", None),
    ("ping_p50_ms", "ping RTT p50 (10 ms interval)", "ms", "lower", 0.5),
    ("ping_p99_ms", "ping RTT p99", "ms", "lower", 0.5),
    ("udp_p50_us", "UDP echo 64 B RTT p50", "us", "lower", 0.5),
    ("udp_p99_us", "UDP echo 64 B RTT p99", "us", "lower", 0.5),
    ("udp_p999_us", "UDP echo 64 B RTT p99.9", "us", "lower", None),
    ("loss_free_pps", "loss-free 64 B UDP receive rate", "pps", "higher", 2.0),
    ("peak_delivered_pps", "peak delivered 64 B UDP rate", "pps", "higher", None),
    ("knee_pps", "knee: offered rate where delivery reaches 95 % of peak", "pps", "higher", None),
    ("at_2x_pps", "delivered at 2x MLFRR", "pps", "higher", None),
    ("at_4x_pps", "delivered at 4x MLFRR", "pps", "higher", None),
    ("at_4x_of_peak", "delivered at 4x MLFRR / peak (livelock check)", "", "higher", None),
    ("insn_per_echo", "guest instructions per echoed 64 B UDP datagram", "insn", "lower", 0.1),
    ("insn_per_echo_spread", "  its spread over 3 runs (max-min)/mean", "", "lower", None),
    ("insn_per_tcp_mib", "guest instructions per received MiB of TCP (iperf2)", "insn", "lower", None),
    ("insn_per_tcp_mib_spread", "  its spread over 3 runs", "", "lower", None),
    ("idle_insn_per_s", "idle guest: instructions per second", "insn/s", "lower", None),
    ("tcp_mbps", "TCP receive throughput (iperf2 host->guest)", "Mbit/s", "higher", 2.0),
    ("tcp_p4_mbps", "TCP receive throughput, 4 streams (iperf2 -P 4 host->guest)", "Mbit/s", "higher", None),
    ("tcp_tx_mbps", "TCP send throughput (iperf2 guest->host)", "Mbit/s", "higher", None),
    ("rx_vcpu_ms_per_mib", "guest vCPU time per MiB received (iperf2)", "ms/MiB", "lower", None),
    ("rx_vcpu_ms_per_mib_p4", "  the same with 4 streams (iperf2 -P 4)", "ms/MiB", "lower", None),
    ("idle_cpu_pct", "idle guest: QEMU CPU", "% of a core", "lower", 1.0),
    ("microvm_idle_cpu_pct", "  on microvm (Linux: its q35 figure)", "% of a core", "lower", 1.0),
    ("image_bytes", "image size (kernel [+ initramfs])", "bytes", "lower", None),
    ("icount_ready_insn", "kernel entry -> ready, guest instructions (-icount)", "insn", "lower", None),
    ("icount_boot_stages", "  by boot stage (-icount)", "insn", "lower", None),
] + [(f"icount_stage_{s}", f"stage {s} p50, guest instructions (-icount)", "insn", "lower", None)
     for s in ("irq_to_poll_ns", "poll_to_dequeue_ns", "input_ns", "irq_to_txkick_ns")]


# Rows whose Linux figure is another key's: the Linux guest boots on q35 only, so ours on microvm is compared
# with its q35 figure (the row's label says so).
LINUX_KEY = {f"microvm_{k}": k for k in ("first_ping_ms", "first_ping_range", "ready_ms", "ready_range",
                                         "idle_cpu_pct")}
# Absolute targets (issue 13), besides the ratios: key, label, unit, limit (ours <= limit).
ABS_TARGETS = [
    ("first_ping_ms", "QEMU start -> first ping target (q35)", "ms", 60),
    ("microvm_first_ping_ms", "QEMU start -> first ping target (microvm)", "ms", 35),
    ("ready_ms", "kernel entry -> ready target (q35)", "ms", 3),
    ("microvm_ready_ms", "kernel entry -> ready target (microvm)", "ms", 3),
    ("idle_cpu_pct", "idle QEMU CPU target", "%", 0.3),
]


def report(res, accel):
    ours, lin = res.get("ours", {}), res.get("linux", {})
    rows = [["load generator ceiling (AF_PACKET TX ring into a veth sink)", "pps", fmt(res.get("sink_pps")), "", "", "",
             ""]]
    for key, label, unit, better, target in METRICS:
        o, l_ = ours.get(key), lin.get(LINUX_KEY.get(key, key))
        if o is None and l_ is None:
            continue  # not measured in this run (--boot-only, --only, --machines)
        ratio = o / l_ if isinstance(o, (int, float)) and isinstance(l_, (int, float)) and l_ else None
        met = ""
        if ratio is not None and target is not None:
            met = "yes" if (ratio <= target if better == "lower" else ratio >= target) else "no"
        rows.append([label, unit, fmt(o), fmt(l_), fmt(ratio, 3), f"{'<=' if better == 'lower' else '>='} "
                     f"{target:g}" if target else "", met])
    if "rx_curve" in ours:
        nl = ours.get("noop_loss_free_pps")
        share = ours["loss_free_pps"] / nl if nl else None
        rows.append(["ours, noop consumer: loss-free rate (ceiling)", "pps", fmt(nl), "", "", "", ""])
        rows.append(["ours: loss-free rate / noop ceiling", "", fmt(share, 3), "", "", ">= 0.7",
                     "" if share is None else ("yes" if share >= 0.7 else "no")])
        rows.append(["ours, noop consumer: peak / knee", "pps", f"{fmt(ours.get('noop_peak_delivered_pps'))} / "
                     f"{fmt(ours.get('noop_knee_pps'))}", "", "", "", ""])
        a4 = ours.get("at_4x_of_peak")
        rows.append(["ours: delivered at 4x MLFRR / peak", "", fmt(a4, 3), "", "", ">= 0.8",
                     "" if a4 is None else ("yes" if a4 >= 0.8 else "no")])
        if a4 is None and ours.get("top_multiple"):
            rows.append([f"  not offered (generator ceiling); at the top rate, {ours['top_multiple']:.1f}x MLFRR: "
                         "delivered / peak", "", fmt(ours.get("at_top_of_peak"), 3), "", "", ">= 0.8",
                         "yes" if ours["at_top_of_peak"] >= 0.8 else "no"])
        found = [g.get(k) for g, k in ((ours, "knee_found"), (ours, "noop_knee_found"), (lin, "knee_found"))
                 if g]
        rows.append(["knee found inside the offered range (ours, noop, linux)", "", " ".join(
            "yes" if f else "no" for f in found), "", "", "all", "yes" if found and all(found) else "no"])
    for key, label, unit, limit in ABS_TARGETS:
        o = ours.get(key)
        if o is not None:
            rows.append([label, unit, fmt(o), "", "", f"<= {limit:g}", "yes" if o <= limit else "no"])
    head = ["metric", "unit", "ours", "linux", "ratio", "target", "met"]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(f"\nbench ({accel.upper()}, {time.strftime('%Y-%m-%d %H:%M')}; UDP echo timestamps: "
          f"{ours.get('ts_method', '?')})")
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    with open(OUT / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)
    with open(OUT / "results.md", "w") as f:
        f.write(f"Measured with {accel.upper()} on {time.strftime('%Y-%m-%d')}.\n\n")
        f.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
        for r in rows:
            f.write("| " + " | ".join(str(c) for c in r) + " |\n")
    with open(OUT / "rx_curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["guest", "offered_pps", "delivered_pps", "sent", "received"])
        for name, pts in (("ours", ours.get("rx_curve")), ("ours-noop", ours.get("noop_curve")),
                          ("linux", lin.get("rx_curve"))):
            for x in pts or []:
                w.writerow([name, f"{x['offered_pps']:.0f}", f"{x['delivered_pps']:.0f}", x["sent"], x["received"]])
    print(f"\nwritten: {OUT}/results.csv, results.md, rx_curve.csv, udp_echo_*.csv, console_*.log")


RING_METRICS = [
    ("udp_p50_us", "UDP echo 64 B RTT p50", "us"),
    ("udp_p99_us", "UDP echo 64 B RTT p99", "us"),
    ("loss_free_pps", "loss-free 64 B UDP receive rate", "pps"),
    ("peak_delivered_pps", "peak delivered 64 B UDP rate", "pps"),
    ("insn_per_echo", "guest instructions per echoed 64 B datagram", "insn"),
    ("insn_per_tcp_mib", "guest instructions per received TCP MiB", "insn"),
    ("tcp_mbps", "TCP receive throughput (iperf2)", "Mbit/s"),
    ("irq_per_frame", "interrupts per received frame (UDP echo run)", ""),
] + [(f"stage_{s}_p50", f"stage {s} p50", "ns") for s in STAGES]


def report_rings(res, rings):
    """Our guest on each ring layout, side by side, with each layout's ratio to the first (same run)."""
    base = res[f"ours-{rings[0]}"]
    head = ["metric", "unit", *rings, *(f"{x}/{rings[0]}" for x in rings[1:])]
    rows = []
    for key, label, unit in RING_METRICS:
        vals = [res[f"ours-{x}"].get(key) for x in rings]
        ratios = [fmt(v / base[key], 3) if v is not None and base.get(key) else "" for v in vals[1:]]
        rows.append([label, unit, *(fmt(v) for v in vals), *ratios])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print("\nours by ring layout (same run)")
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    with open(OUT / "results_rings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)
    print(f"written: {OUT}/results_rings.csv")


def fmt(v, digits=None):
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:
            return "nan"
        if digits:
            return f"{v:.{digits}g}"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
