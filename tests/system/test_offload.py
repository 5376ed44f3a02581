"""Large datagrams and receive/transmit offloads (issue 11).

Every test boots its own guest on tap0 in a namespace of its own (conftest.py's `tap_guest`); every host-side
client runs inside that namespace and talks only to the guest (192.168.77.2). Counts and durations are bounded.

  test_64k_ping_and_udp_echo            ping -s 65507 and UDP echo of 1..65507 bytes (45 fragments each way)
  test_fragment_flood_stays_bounded     trains of 44 of a 64 KiB datagram's 45 fragments: what reassembly holds
                                        stays under IP_REASS_MAX_PBUFS, 64 KiB pings still answered, memory back
"""
import json
import pathlib
import time

from test_lwip import GUEST, PY, boot, client, close, known_tx_stall, ping, run, status
from test_robustness import counters, memory, settled_counters

HERE = pathlib.Path(__file__).resolve().parent
FRAG_FLOOD = HERE / "frag_flood.py"
IP_REASS_MAX_PBUFS = 96  # net/include/lwipopts.h
IP_REASS_MAXAGE = 5      # seconds, ditto

FIGURES = {}
FIGURES_TITLE = "offload"


def test_64k_ping_and_udp_echo(tap_guest):
    g = boot(tap_guest)
    ns = g.netns
    with known_tx_stall(g):
        _, before = status(ns)
        tx, rx, rtt, out = ping(ns, "-c", "3", "-i", "0.5", "-W", "5", "-w", "30", "-s", "65507")
        assert (tx, rx) == (3, 3), out[-800:]
        assert f"65515 bytes from {GUEST}" in out, out[-800:]
        FIGURES["ping -s 65507 rtt min/avg/max ms"] = f"{rtt['min']}/{rtt['avg']}/{rtt['max']}"
        r = client(ns, "udp-echo", "--host", GUEST, "--port", 7, "--count", 40, "--max-size", 65507,
                   "--timeout", 3.0, "--retries", 2, "--seed", 11)
        g.note(f"udp echo: {json.dumps(r)}")
        assert (r["min_size"], r["max_size"]) == (1, 65507), r
        assert r["failed"] == 0 and r["echoed"] == 40 and r["mismatched"] == 0, r
        FIGURES["udp echo 40 x 1..65507 B rtt p50/p99 us"] = f"{r['rtt_us_p50']:.0f}/{r['rtt_us_p99']:.0f}"
        _, after = status(ns)
        assert after["lwip"]["ipfrag_drop"] == before["lwip"]["ipfrag_drop"], after["lwip"]
    close(g)


def test_fragment_flood_stays_bounded(tap_guest):
    g = boot(tap_guest)
    ns = g.netns
    m0 = memory(settled_counters(g))
    p = run([PY, FRAG_FLOOD, "--dst", GUEST, "--datagrams", 300, "--max-seconds", 120], ns, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    g.note(f"fragment flood: {r}")
    m1 = memory(counters(g))
    # Reassembly holds at most IP_REASS_MAX_PBUFS fragments (one receive buffer each); a few more may be in
    # flight between the ring and lwIP.
    assert m1["held"] <= IP_REASS_MAX_PBUFS + 8, (m0, m1)
    FIGURES["fragment flood: fragments sent / buffers held after"] = f"{r['fragments']}/{m1['held']}"
    # lwIP drops the oldest incomplete datagram for a new one, so a genuine 64 KiB datagram still gets through.
    tx, rx, _, out = ping(ns, "-c", "2", "-i", "0.5", "-W", "5", "-w", "20", "-s", "65507")
    assert rx == 2, out[-800:]
    # Incomplete trains time out: everything back where it was.
    deadline = time.monotonic() + IP_REASS_MAXAGE + 15
    while True:
        m2 = memory(counters(g))
        if m2["held"] == 0 and m2["mem_used"] <= m0["mem_used"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert m2["held"] == 0, (m0, m2)
    for k in ("heap_used", "mem_used", "pbuf_pool_used"):
        assert m2[k] <= m0[k], (k, m0, m2)
    _, c = status(ns)
    # The flood did reach reassembly, far beyond what it may hold.
    assert c["lwip"]["ipfrag_recv"] >= 10 * IP_REASS_MAX_PBUFS, c["lwip"]
    close(g)
