"""The latency workbench inside the guest: every delivery mode can be switched at run time and still echoes,
the stage histograms fill and reset, and the per-frame trace records frames (the control language of
net/control.h over UDP 7007, from inside the test's namespace)."""
import json
import re
import subprocess
import time

import pytest

from test_lwip import IPV4_LINE, PY, client

GUEST = "192.168.77.2"
CTL = ("import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);"
       "s.sendto(sys.argv[1].encode(),('192.168.77.2',7007));sys.stdout.write(s.recv(65536).decode())")


def ctl(ns, cmd):
    p = subprocess.run(["ip", "netns", "exec", ns, PY, "-c", CTL, cmd], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


def hist_counts(text):
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^net0\.(\w+): count=(\d+)", text, re.M)}


def echo(ns, count):
    r = client(ns, "udp-echo", "--host", GUEST, "--port", 7, "--count", count, "--max-size", 512,
               "--timeout", 1.0, "--retries", 3, "--seed", count)
    return r


@pytest.fixture
def guest(tap_guest):
    g = tap_guest(timeout=120)
    g.wait_for(IPV4_LINE, 30)
    yield g
    g.close()


def idle_share(ns, seconds=1.0):
    """The guest's halted share of the last `seconds` (from the since-boot idle and uptime counters)."""
    def sample():
        out = ctl(ns, "stats")
        return (int(re.search(r"^idle_ms=(\d+)", out, re.M).group(1)),
                int(re.search(r"^uptime_ms=(\d+)", out, re.M).group(1)))
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def test_every_mode_switch_still_echoes(guest):
    """One guest through every mode and back to napi: each switch takes effect, echoes still come back, and
    polling keeps the CPU busy while the interrupt-driven modes let it halt."""
    for mode in ["irq", "napi", "poll", "coalesce", "napi"]:
        out = ctl(guest.netns, f"mode {mode} 16")
        assert re.search(rf"^net0: mode={mode} budget=16 ", out, re.M), out[:400]
        before = int(re.search(r"^net0: rx_frames=(\d+)", out, re.M).group(1))
        r = echo(guest.netns, 100)
        assert r["echoed"] == 100 and r["mismatched"] == 0, f"{mode}: {json.dumps(r)}"
        after = ctl(guest.netns, "stats")
        assert int(re.search(r"^net0: rx_frames=(\d+)", after, re.M).group(1)) >= before + 100
        share = idle_share(guest.netns)
        if mode == "poll":
            # Busy polling: the guest does not halt while in this mode.
            assert share < 0.05, f"poll mode halted {share:.0%} of a second"
        else:
            # Nothing to do between the two status queries: an interrupt-driven mode halts nearly all of it.
            assert share > 0.5, f"{mode} mode halted only {share:.0%} of an idle second"


def test_bad_mode_is_refused_by_name(guest):
    out = ctl(guest.netns, "mode turbo")
    assert out.startswith("error: option 'mode': bad value 'turbo' (expected one of irq|napi|poll|coalesce)"), out
    out = ctl(guest.netns, "mode napi 0")
    assert out.startswith("error: option 'budget': bad value '0' (expected an integer in 1..4096)"), out
    out = ctl(guest.netns, "coalesce 0 100")
    assert out.startswith("error: option 'coalesce': bad value '0' (expected an integer in 1..256)"), out
    assert re.search(r"^net0: mode=napi budget=64 coalesce_frames=8 ", ctl(guest.netns, "stats"), re.M)


def test_set_and_config_use_the_knob_table(guest):
    """`set` changes run-time knobs with the command line's own names and checks, `config` prints the
    configuration in force as a command line; boot-only knobs are refused by name."""
    out = ctl(guest.netns, "set budget=32")
    assert re.search(r"^net0: mode=napi budget=32 ", out, re.M), out[:400]
    out = ctl(guest.netns, "set coalesce 12")
    assert re.search(r"^net0: mode=napi budget=32 coalesce_frames=12 ", out, re.M), out[:400]
    config = ctl(guest.netns, "config").strip()
    assert " budget=32 coalesce=12 " in f" {config} ", config
    assert " hz=100 " in f" {config} ", config
    assert ctl(guest.netns, "set hz 50").startswith("error: only the command line sets hz")
    assert ctl(guest.netns, "set nosuch 1").startswith("error: unknown option 'nosuch'")
    assert ctl(guest.netns, "set budget 5000").startswith("error: option 'budget': bad value '5000'")
    assert ctl(guest.netns, "config").strip() == config
    r = echo(guest.netns, 50)
    assert r["echoed"] == 50, json.dumps(r)


def test_histograms_fill_and_reset(guest):
    ctl(guest.netns, "hist reset")
    # Only the "hist" query's own frame (and the previous reply's completion) may have been counted.
    assert all(v <= 2 for v in hist_counts(ctl(guest.netns, "hist")).values())
    r = echo(guest.netns, 200)
    assert r["echoed"] == 200, json.dumps(r)
    h = ctl(guest.netns, "hist buckets")
    counts = hist_counts(h)
    assert set(counts) == {"irq_to_poll_ns", "poll_to_dequeue_ns", "input_ns", "irq_to_txkick_ns", "tx_complete_ns"}
    # Every echo request went through dequeue and lwIP, and queued its reply.
    assert counts["poll_to_dequeue_ns"] >= 200 and counts["input_ns"] >= 200, counts
    assert counts["irq_to_txkick_ns"] >= 200, counts
    line = re.search(r"^net0\.input_ns: count=\d+ min=(\d+) p50=(\d+) p90=(\d+) p99=(\d+) p999=(\d+) max=(\d+)"
                     r" mean=\d+ buckets=(\S+)$", h, re.M)
    assert line, h[:500]
    mn, p50, p90, p99, p999, mx = (int(x) for x in line.groups()[:6])
    assert 0 < mn <= p50 <= p90 <= p99 <= p999 <= mx
    assert sum(int(b.split(":")[1]) for b in line.group(7).split(",")) == counts["input_ns"]
    ctl(guest.netns, "hist reset")
    assert all(v <= 2 for v in hist_counts(ctl(guest.netns, "hist")).values())


def test_trace_records_frames(guest):
    out = ctl(guest.netns, "trace on")
    assert out.startswith("trace: net0 entries 0..0 tsc_hz="), out
    r = echo(guest.netns, 20)
    assert r["echoed"] == 20, json.dumps(r)
    t = ctl(guest.netns, "trace 0")
    entries = re.findall(r"^trace: i=\d+ key=[0-9a-f]{8} len=(\d+) irq=(\d+) poll=(\d+) deq=(\d+) done=(\d+) "
                         r"txkick=(\d+)$", t, re.M)
    assert len(entries) >= 20, t[:600]
    for e in entries[:20]:
        _, irq, poll, deq, done, txkick = (int(x) for x in e)
        assert irq <= poll <= deq <= done, e
        if txkick:
            assert deq <= txkick <= done, e
    ctl(guest.netns, "trace off")
