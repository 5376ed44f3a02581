"""The latency workbench inside the guest: every delivery mode can be switched at run time and still echoes,
the stage histograms fill and reset, and the per-frame trace records frames (the control language of
net/control.h over UDP 7007, from inside the test's namespace)."""
import json
import re
import subprocess

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


@pytest.mark.parametrize("mode", ["irq", "napi", "poll", "coalesce", "napi"])
def test_mode_switch_still_echoes(guest, mode):
    out = ctl(guest.netns, f"mode {mode} 16")
    assert re.search(rf"^net0: mode={mode} budget=16 ", out, re.M), out[:400]
    before = int(re.search(r"^net0: rx_frames=(\d+)", out, re.M).group(1))
    r = echo(guest.netns, 100)
    assert r["echoed"] == 100 and r["mismatched"] == 0, json.dumps(r)
    after = ctl(guest.netns, "stats")
    assert int(re.search(r"^net0: rx_frames=(\d+)", after, re.M).group(1)) >= before + 100
    if mode == "poll":
        # Busy polling: the guest never halts while in this mode.
        assert float(re.search(r"^idle_pct=([\d.]+)", after, re.M).group(1)) < 100.0


def test_bad_mode_is_refused_by_name(guest):
    out = ctl(guest.netns, "mode turbo")
    assert out.startswith("error: mode: expected irq|napi|poll|coalesce, got turbo"), out
    out = ctl(guest.netns, "mode napi 0")
    assert out.startswith("error: mode: budget must be 1..4096, got 0"), out
    assert re.search(r"^net0: mode=napi budget=64 ", ctl(guest.netns, "stats"), re.M)


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
