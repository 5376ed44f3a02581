"""tools/timeline.py without QEMU: the join on a recorded fixture (tests/fixtures/timeline, 20 UDP echo probes at
100/s in napi mode, cut from a `timeline.py run` capture with `timeline.py trim`), and on synthetic inputs whose
clock offsets are known."""
import pathlib
import random
import socket
import struct
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import timeline as T  # noqa: E402

FIXTURE = ROOT / "tests/fixtures/timeline"
SAME_CLOCK = [("tap_req", "tap_rep"),
              ("qemu_rx_flush", "qemu_rx_notify"), ("qemu_rx_notify", "qemu_tx_kick"),
              ("qemu_tx_kick", "qemu_tx_flush"),
              ("guest_irq", "guest_poll"), ("guest_poll", "guest_deq"), ("guest_deq", "guest_txkick"),
              ("guest_txkick", "guest_done")]


def fixture_join(**kw):
    return T.join(FIXTURE / T.F_PCAP, FIXTURE / T.F_GTRACE, FIXTURE / T.F_QTRACE, FIXTURE / T.F_PROBE, **kw)


# ---- helpers ----

def test_fnv1a_reference_values():
    assert T.fnv1a32(b"") == 0x811C9DC5
    assert T.fnv1a32(b"a") == 0xE40C292C
    assert T.fnv1a32(b"foobar") == 0xBF9CF968


def test_key_covers_64_bytes_from_the_ip_header():
    eth = bytes(14) + bytes(range(100))
    assert T.frame_key(eth) == T.fnv1a32(bytes(range(64)))
    assert T.frame_key(bytes(14) + b"abc") == T.fnv1a32(b"abc")


def test_percentile_is_nearest_rank():
    assert T._percentile(list(range(1, 101)), 50) == 50
    assert T._percentile(list(range(1, 101)), 99) == 99
    assert T._percentile(list(range(1, 11)), 50) == 5


def test_vnet_header_length_is_found_per_record():
    frame = udp_frame(REQ, 40000, 7, b"x" * 16, 1)
    for hdr in (0, 10, 12):
        assert T.vnet_offset(bytes(hdr) + frame) == hdr


def test_trace_without_time_stamps_names_the_fix(tmp_path):
    f = tmp_path / "t.log"
    f.write_text("virtqueue_flush vq 0x7f0000001010 count 1\n")
    with pytest.raises(T.TimelineError, match="-msg timestamp=on"):
        T.read_qemu_trace(f)


def test_fit_clock_recovers_a_known_line():
    # a + b g with a = 5, b = 1 + 300 ppm; stamps 10 µs inside their windows.
    b = 1.0003
    lowers = [(g, 5 + b * g - 10) for g in range(0, 100000, 5000)]
    uppers = [(g + 50, 5 + b * (g + 50) + 10) for g in range(0, 100000, 5000)]
    fit = T.fit_clock(lowers, uppers)
    assert fit["lo"] <= 5 <= fit["hi"]
    assert fit["b_lo"] <= b <= fit["b_hi"]


# ---- the recorded fixture ----

def test_fixture_is_small():
    files = list(FIXTURE.iterdir())
    assert {f.name for f in files} >= {T.F_PCAP, T.F_QTRACE, T.F_GTRACE, T.F_PROBE, T.F_STATS}
    assert sum(f.stat().st_size for f in files) < 20000


def test_fixture_join_matches_every_packet():
    res = fixture_join()
    c = res.counts
    assert c["requests"] == 20
    for k in ("with_reply", "with_guest", "with_qemu_rx_flush", "with_qemu_rx_notify", "with_qemu_tx_kick",
              "with_qemu_tx_flush"):
        assert c[k] == 20, (k, c)
    assert not res.warnings
    # every request found its own guest entry, by key and length
    assert len({p["guest"]["i"] for p in res.packets}) == 20
    assert all(p["guest"]["len"] == p["len"] == 106 for p in res.packets)
    assert res.align["rx_vq"] != res.align["tx_vq"]


def test_fixture_offset_intervals_are_not_empty():
    a = fixture_join().align
    assert a["d_lo"] <= a["d_hi"] and 0 < a["d_width"] < 100
    # filter-dump's clock lags the wall clock by a fraction of a second, not by nothing
    assert 1e5 < a["d_mid"] < 2e6
    assert 0 <= a["guest_width"] < 200
    assert a["guest_b_lo"] <= a["guest_b"] <= a["guest_b_hi"]
    assert a["total_bound"] <= a["all_bound"]


def test_fixture_stages_are_monotonic_per_packet():
    res = fixture_join()
    tol = res.align["all_bound"]
    for r in T.rows_relative(res):
        for x, y in SAME_CLOCK:
            assert r[x] <= r[y] + 1e-6, (r["seq"], x, y, r)
        chain = [r[c] for c in T.CHAIN]
        for c, (x, y) in enumerate(zip(chain, chain[1:])):
            assert x <= y + tol, (r["seq"], T.CHAIN[c], T.CHAIN[c + 1], r)
        # the constraints themselves hold exactly at the midpoint (up to the 1 µs stamp truncation)
        assert r["qemu_rx_flush"] <= r["guest_deq"] + 1e-6
        assert r["guest_txkick"] <= r["qemu_tx_kick"] + T.TRUNC_US + 1e-6
        assert r["qemu_tx_kick"] <= r["tap_rep"] + 2 * T.TRUNC_US + res.align["d_width"]
        assert r["tap_rep"] <= r["qemu_tx_flush"] + 2 * T.TRUNC_US + res.align["d_width"]


# The stage medians and p99s of the fixture (µs), computed once by this tool and pinned.
FIXTURE_STAGES = {
    "tap_req->qemu_rx_flush": (23.0, 56.0),
    "qemu_rx_flush->qemu_rx_notify": (13.0, 50.0),
    "qemu_rx_notify->guest_irq": (24.3, 232.0),
    "guest_irq->guest_poll": (9.5, 47.4),
    "guest_poll->guest_deq": (11.3, 43.5),
    "guest_deq->guest_txkick": (56.5, 134.1),
    "guest_txkick->qemu_tx_kick": (46.0, 94.2),
    "qemu_tx_kick->tap_rep": (18.0, 57.0),
    "tap_req->tap_rep(total)": (217.0, 511.0),
    "guest_txkick->guest_done(side)": (77.6, 161.0),
    "tap_rep->qemu_tx_flush(side)": (22.0, 1200.0),
}


def test_fixture_stage_medians_equal_precomputed_values():
    medians = T.stage_medians(T.rows_relative(fixture_join()))
    got = {k: (round(p50, 1), round(p99, 1)) for k, (p50, p99) in medians.items()}
    assert got == FIXTURE_STAGES


def test_fixture_chain_stages_add_up_to_the_tap_round_trip():
    res = fixture_join()
    for r in T.rows_relative(res):
        pieces = [r[b] - r[a] for a, b in zip(T.CHAIN, T.CHAIN[1:])]
        assert sum(pieces) == pytest.approx(r["tap_rep"], abs=1e-6)


def test_fixture_command_line_writes_csv_and_summary(tmp_path):
    out, summ = tmp_path / "t.csv", tmp_path / "s.txt"
    p = subprocess.run([sys.executable, str(ROOT / "tools/timeline.py"), "join", "--dir", str(FIXTURE), "--csv",
                        str(out), "--summary", str(summ)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(T.COLUMNS)
    assert len(lines) == 21
    text = summ.read_text()
    assert "join complete: yes" in text and "midpoint used" in text and "alignment error bound" in text
    assert "rx_copied_frames" not in text and "0 copied" in text  # the copy answer, from stats.txt


def test_fixture_without_the_qemu_trace_aligns_on_the_pcap_alone():
    res = T.join(FIXTURE / T.F_PCAP, FIXTURE / T.F_GTRACE, None, FIXTURE / T.F_PROBE)
    a = res.align
    assert a["guest_ref"] == "pcap" and a["guest_width"] >= 0
    assert res.counts["with_guest"] == 20
    rows = T.rows_relative(res)
    assert all(r["qemu_rx_flush"] is None for r in rows)
    assert all(0 <= r["guest_deq"] and r["guest_txkick"] <= r["tap_rep"] + T.TRUNC_US + 1e-6 for r in rows)


# ---- synthetic: known clocks ----

GUEST_MAC, HOST_MAC = bytes.fromhex("525400123456"), bytes.fromhex("0200000000aa")
REQ = ("192.168.77.1", "192.168.77.2")
RX_VQ, TX_VQ = "0x7f0000001010", "0x7f00000010a8"


def ip_checksum(h):
    s = sum(struct.unpack("!%dH" % (len(h) // 2), h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(addrs, sport, dport, payload, ident):
    src, dst = addrs
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0, 64, 17, 0, socket.inet_aton(src),
                     socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    macs = GUEST_MAC + HOST_MAC if dst == REQ[1] else HOST_MAC + GUEST_MAC
    return macs + b"\x08\x00" + ip + udp


def synthesize(tmp_path, n=60, pcap_lag_ns=731_234_567, skew_ppm=1500.0, seed=7):
    """A capture with known clocks. Truth is the wall clock (ns); the pcap stamps lag it by pcap_lag_ns; the
    guest counts ns since its boot at (1 + skew_ppm) the wall rate. Returns the truth per packet."""
    rnd = random.Random(seed)
    t0 = 1_800_000_000_250_000_000
    boot = t0 - 5_000_000_000
    recs, trace, guest, truth = [], [], [], []

    def w(t):
        return f"4242@{t // 1_000_000_000}.{t % 1_000_000_000 // 1000:06d}:"

    def g(t):
        return round((t - boot) * (1 + skew_ppm * 1e-6))

    def us(a, b):
        return int(rnd.uniform(a, b) * 1000)

    for k in range(n):
        req = t0 + k * 10_000_000 + us(0, 500)
        flush = req + us(8, 40)
        notify = flush + us(1, 15)
        irq = notify + us(2, 60)
        poll = irq + us(3, 20)
        deq = poll + us(2, 15)
        txkick = deq + us(30, 90)
        qkick = txkick + us(1, 40)
        rep = qkick + us(5, 30)
        txflush = rep + us(1, 10)
        done = txkick + us(20, 80)
        payload = struct.pack("<IIQ", 0xC0FFEE, k, req) + bytes(48)
        f_req = udp_frame(REQ, 40000, 7, payload, 100 + k)
        f_rep = udp_frame(REQ[::-1], 7, 40000, payload, 5000 + k)
        recs += [(req - pcap_lag_ns, bytes(12) + f_req), (rep - pcap_lag_ns, bytes(12) + f_rep)]
        trace += [w(flush) + f"virtqueue_flush vq {RX_VQ} count 1",
                  w(notify) + f"virtio_notify vdev 0x55000000 vq {RX_VQ}",
                  w(qkick) + f"virtio_queue_notify vdev 0x55000000 n 1 vq {TX_VQ}",
                  w(txflush) + f"virtqueue_flush vq {TX_VQ} count 1"]
        guest.append(f"trace: i={k} key={T.frame_key(f_req):08x} len={len(f_req)} irq={g(irq)} poll={g(poll)} "
                     f"deq={g(deq)} done={g(done)} txkick={g(txkick)}")
        truth.append({"seq": k, "tap_req": req, "qemu_rx_flush": flush, "qemu_rx_notify": notify, "guest_irq": irq,
                      "guest_poll": poll, "guest_deq": deq, "guest_done": done, "guest_txkick": txkick,
                      "qemu_tx_kick": qkick, "qemu_tx_flush": txflush, "tap_rep": rep})
    T.write_pcap(tmp_path / T.F_PCAP, recs)
    (tmp_path / T.F_QTRACE).write_text("\n".join(trace) + "\n")
    (tmp_path / T.F_GTRACE).write_text(f"trace: net0 entries 0..{n} tsc_hz=2100000000\n" + "\n".join(guest) + "\n")
    return truth


@pytest.mark.parametrize("skew_ppm", [0.0, 1500.0, -4000.0])
def test_synthetic_offsets_are_recovered_within_the_reported_bound(tmp_path, skew_ppm):
    lag = 731_234_567
    truth = synthesize(tmp_path, skew_ppm=skew_ppm, pcap_lag_ns=lag)
    res = T.join(tmp_path / T.F_PCAP, tmp_path / T.F_GTRACE, tmp_path / T.F_QTRACE)
    a = res.align
    assert res.counts["requests"] == res.counts["with_guest"] == res.counts["with_qemu_tx_kick"] == len(truth)
    assert a["rx_vq"] == RX_VQ and a["tx_vq"] == TX_VQ
    # the trace clock's lead over the pcap clock
    assert a["d_lo"] - 1 <= lag / 1000 <= a["d_hi"] + 1
    # the guest's rate error
    b_true = 1 / (1 + skew_ppm * 1e-6)
    assert a["guest_b_lo"] - 1e-9 <= b_true <= a["guest_b_hi"] + 1e-9
    # every stamp, in the pcap clock, where the truth puts it (µs after the second the tool took as base)
    base = a["base_ns"]
    bound = a["all_bound"] + 2 * T.TRUNC_US
    worst = 0.0
    for p, t in zip(res.packets, truth):
        for c in ("guest_irq", "guest_poll", "guest_deq", "guest_done", "guest_txkick", "qemu_rx_flush",
                  "qemu_tx_kick"):
            err = p[c] - (t[c] - lag - base) / 1000
            worst = max(worst, abs(err))
            assert abs(err) <= bound, (c, p["seq"], err, bound)
    assert worst > 0  # not trivially exact


def test_synthetic_without_qemu_trace(tmp_path):
    lag = 250_000_000
    truth = synthesize(tmp_path, skew_ppm=-700.0, pcap_lag_ns=lag, seed=3)
    res = T.join(tmp_path / T.F_PCAP, tmp_path / T.F_GTRACE)
    a = res.align
    assert a["guest_ref"] == "pcap" and a["guest_width"] >= 0
    for p, t in zip(res.packets, truth):
        err = p["guest_deq"] - (t["guest_deq"] - lag - a["base_ns"]) / 1000
        assert abs(err) <= a["all_bound"] + T.TRUNC_US


def test_synthetic_reply_without_guest_entry_is_reported(tmp_path):
    synthesize(tmp_path, n=10)
    lines = (tmp_path / T.F_GTRACE).read_text().splitlines()
    (tmp_path / T.F_GTRACE).write_text("\n".join(l for l in lines if "i=4 " not in l) + "\n")
    res = T.join(tmp_path / T.F_PCAP, tmp_path / T.F_GTRACE, tmp_path / T.F_QTRACE)
    assert res.counts["with_guest"] == 9
    assert "join complete: NO" in T.summary(res, T.rows_relative(res))


# ---- tools/plot.py: a missing input names the target that makes it ----

def test_plot_names_the_make_target_of_a_missing_csv(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "tools/plot.py"), "--bench-dir", str(tmp_path / "nothing"),
                        "--out", str(tmp_path / "plots")], capture_output=True, text=True)
    assert p.returncode != 0
    assert "make modes" in p.stderr and "make bench" in p.stderr
