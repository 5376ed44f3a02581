"""Coalesce mode keeps its time bound (issue 9 item 4).

In coalesce mode (`mode=coalesce coalesce=FRAMES coalesce_us=USEC`) a poll that found a burst (at least FRAMES/2
frames) asks for the next interrupt only after FRAMES more (EVENT_IDX used_event) and arms a wake-up USEC later
(kernel/lapic.c timer_wake_at), so the tail of a burst smaller than FRAMES is delivered by the time bound; a poll
that found fewer goes back to an interrupt per frame.

Two checks:
  * test_coalesce_single_probes_within_bound: the issue's case, measured from the host the way the workbench
    does (build/tools/probe, kernel timestamps): 200 UDP echo probes 20 ms apart against coalesce=64 must each
    come back within the bound + a margin for TCG and a shared host, never a tick (10 ms) late.
  * test_timer_wake_ups_keep_their_deadline: the bound's wake-up itself, in the guest (test=wake,
    kernel/selftest.c), where host scheduling noise cannot hide a dropped wake-up. Before the fix a wake-up
    requested while the timer finished the tick period after an earlier wake-up (TIMER_TICK_ONESHOT) was
    ignored (median 49 ms late at hz=20, 9 ms at hz=100), and a later request replaced an earlier pending one
    (2.65 ms late for a 500 us wake-up followed by a 3 ms one).

Why the bound is checked in the guest and not with bursts from the host: on this shared two-core host, trains of
datagrams sent to reach the bound (groups of 5 + 5 + 3 against coalesce=8) came back 10-50 ms late in 5-10 % of
trains whatever the kernel (before or after the fix, and in napi mode too): QEMU's threads waiting for a CPU,
which no margin smaller than a tick tells apart from a missed bound. The figures are printed and written to
tests/out/test_coalesce-figures.txt.
"""
import csv
import pathlib
import re
import subprocess

import pytest

from conftest import OUT, STATUS_PASS
from test_lwip import IPV4_LINE

# Every test runs on both virtqueue layouts (conftest.py): split, and packed (QEMU packed=on).
RING_LAYOUTS = ("split", "packed")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = ROOT / "build/tools/probe"
GUEST = "192.168.77.2"
COALESCE_US = 200
MARGIN_US = 5000  # TCG and a host shared with other jobs; a tick is 10000
BOUND_US = COALESCE_US + MARGIN_US
STRANDED_US = 50000  # well below the 100 ms of lwIP's most frequent timer, the next wake-up after a missed one
CTL = ("import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);"
       "s.sendto(sys.argv[1].encode(),('192.168.77.2',7007));sys.stdout.write(s.recv(65536).decode())")
FIGURES = {}  # printed and saved by the figures fixture (conftest.py)
FIGURES_TITLE = "coalesce"


def ctl(ns, cmd):
    p = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", CTL, cmd], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


def coalesce_timeouts(ns):
    return int(re.search(r"^net0: mode=coalesce .*coalesce_timeouts=(\d+)", ctl(ns, "stats"), re.M).group(1))


def probe(ns, csv_path, count, rate):
    """build/tools/probe from inside the namespace: its summary line and the RTT (us) of every echo."""
    args = ["ip", "netns", "exec", ns, str(PROBE), "--dst", GUEST, "--port", "7", "--count", str(count),
            "--rate", str(rate), "--warmup", "5", "--timeout-ms", "1000", "--csv", str(csv_path), "--quiet"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=count / rate + 60)
    assert p.returncode == 0, f"probe failed ({p.returncode}): {p.stdout}{p.stderr}"
    summary = p.stdout.strip().splitlines()[-1]
    with open(csv_path, newline="") as f:
        rtts = [int(r["rtt_ns"]) / 1000 for r in csv.DictReader(f) if r["rtt_ns"] not in ("", "0", "-1")]
    return summary, rtts


def test_coalesce_single_probes_within_bound(tap_guest, request):
    """The issue's case: 200 probes 20 ms apart against a threshold of 64, which they never reach. (Each poll
    finds one frame, so the driver stays on an interrupt per frame: this guards the property from the host's
    side; the bound's wake-up is checked by test_timer_wake_ups_keep_their_deadline.)"""
    if not PROBE.exists():
        pytest.skip(f"{PROBE} not built (make tools)")
    g = tap_guest("--cmdline", f"mode=coalesce coalesce=64 coalesce_us={COALESCE_US}", timeout=180)
    g.wait_for(IPV4_LINE, 30)
    g.expect(r"^config: mode=coalesce ")
    before = coalesce_timeouts(g.netns)
    OUT.mkdir(parents=True, exist_ok=True)
    summary, rtts = probe(g.netns, OUT / f"{request.node.name}.csv", 200, 50)
    timeouts = coalesce_timeouts(g.netns) - before
    g.close()
    late = sorted(r for r in rtts if r > BOUND_US)
    FIGURES[request.node.name] = (f"coalesce=64 coalesce_us={COALESCE_US}, 200 probes at 20 ms: "
                                  f"{len(rtts)} echoed, max_rtt_us={max(rtts):.0f}, over {BOUND_US} us: {len(late)}, "
                                  f"coalesce_timeouts={timeouts}; {summary}")
    assert len(rtts) == 200, summary
    # A frame the bound failed to wake for would wait for the guest's next wake-up of any kind: with the
    # tickless timer that is lwIP's next timeout, 100 ms or more away. A few echoes over bound + margin but far
    # below that are the host's scheduling (seen under load: 4 of 200 between 5.6 and 21.6 ms, none when the
    # machine is quiet), so up to 3 % may be late, and none by anything near a missed wake-up.
    stranded = [r for r in late if r > STRANDED_US]
    assert not stranded, (f"{len(stranded)} echoes waited over {STRANDED_US} us, as long as a missed wake-up "
                          f"would: {[round(x) for x in stranded]} us: {summary}")
    assert len(late) <= 6, (f"{len(late)} of 200 echoes took longer than the {COALESCE_US} us bound + "
                            f"{MARGIN_US} us (worst {[round(x) for x in late[-3:]]} us): {summary}")


@pytest.mark.no_nic
@pytest.mark.parametrize("hz", [20, 100])
def test_timer_wake_ups_keep_their_deadline(guest, hz):
    """kernel/lapic.c timer_wake_at, in the guest (test=wake): a wake-up requested from the periodic state,
    one requested while the timer counts down the rest of a tick after an earlier wake-up, one requested
    before a later one, and one just before the tick all come on time (median lateness under 1 ms over 16
    rounds; a dropped one waits for the tick, 50 ms at hz=20)."""
    g = guest("--cmdline", f"test=wake hz={hz}", timeout=60)
    lines = re.findall(r"^selftest wake: (\S+) late_us median=(\d+) max=(\d+)", g.output, re.M)
    FIGURES[f"timer wake-ups, hz={hz}"] = ", ".join(f"{n} median={m} max={x} us" for n, m, x in lines)
    assert g.status == STATUS_PASS, g.output[-1500:]
    assert len(lines) == 4, g.output[-1500:]
