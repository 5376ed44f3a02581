"""QEMU's microvm machine. Its virtio-mmio NIC (drivers/virtio_mmio.c) is found through the ACPI DSDT or,
with acpi=off, through the `virtio_mmio.device=` word QEMU appends to the command line; version 2 and the legacy
version 1 (QEMU 7.2's default for virtio-mmio); its interrupt line goes through the IOAPIC. With pcie=on a
virtio-net-pci NIC sits on a PCIe bus that only the DSDT describes (no MCFG, no CF8 ports): ECAM and BAR windows
from the DSDT, BARs assigned by the kernel. The same lwIP services and robustness checks as on q35 run unchanged
against it: this module calls the q35 tests with a guest fixture that adds `--machine microvm` (and QEMU options
per variant).

Timing on microvm is not asserted here: the kernel's TSC calibration there is another piece of work (issue 13).
Every client runs inside the test's own network namespace (conftest.py)."""
import re

import pytest

import test_lwip as lwip
import test_robustness as rob

FIGURES = {}
FIGURES_TITLE = "microvm"

# id -> (run-qemu.sh arguments, the transport name the driver prints, where it found the device)
VARIANTS = {
    # QEMU 7.2's virtio-mmio defaults to force-legacy=on: version 1 registers, QueuePFN.
    "acpi-legacy": ((), "legacy", "DSDT"),
    "acpi-v2": (("--qemu-arg", "-global", "--qemu-arg", "virtio-mmio.force-legacy=off"), "modern", "DSDT"),
    # Without ACPI the device comes from the command line and the IOAPIC from the architectural default.
    "cmdline-v2": (("--machine", "microvm,acpi=off", "--qemu-arg", "-global", "--qemu-arg",
                    "virtio-mmio.force-legacy=off"), "modern", "cmdline"),
    # PCIe on microvm: no MCFG and no CF8 ports; the ECAM and the BAR windows come from the DSDT's GPEX bridge,
    # and the kernel assigns the BARs itself (no firmware reaches that bus).
    "pcie": (("--machine", "microvm,pcie=on"), "modern", "pcie"),
}
MMIO_LINE = r"^virtio-net0: mmio@(0x[0-9a-f]+) (\w+), MAC [0-9a-f:]{17}, link up, rx (\d+) tx (\d+) entries, GSI (\d+) level\n"


# QEMU's virtio-mmio reports QueueNumMax 1024 whatever rx_queue_size says, and the driver takes it (the PCI
# device reports its configured 256): the robustness tests' ring-size figure differs accordingly.
MMIO_RING = 1024


def microvm(tap_guest, variant="acpi-legacy"):
    """A tap_guest-like starter for microvm in the given variant (a later --machine overrides the first).
    heartbeat=0 keeps heartbeat lines out of console command replies."""
    extra = ("--cmdline", "heartbeat=0") + VARIANTS[variant][0]

    def start(*args, **kw):
        return tap_guest("--machine", "microvm", *extra, *args, **kw)
    return start


def borrow(module, fn, *args, tag=""):
    """Runs a q35 test function against microvm and keeps the figures it recorded, prefixed by its name."""
    before = dict(module.FIGURES)
    fn(*args)
    for k, v in module.FIGURES.items():
        if before.get(k) != v:
            FIGURES[f"{fn.__name__}{tag}: {k}"] = v


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_mmio_nic_found_and_serves(tap_guest, variant):
    _, transport, source = VARIANTS[variant]
    g = lwip.boot(microvm(tap_guest, variant))
    if source == "pcie":
        g.expect(r"^acpi: PCIe host bridge in the DSDT: ECAM 0xe0000000 \(256 buses\)")
        g.expect(r"^pci:   BAR4 mem 0xc000000000 size 0x4000 64-bit prefetchable \(assigned here\)$")
        g.expect(r"^virtio-net0: 00:01\.0 modern, MAC 52:54:00:12:34:56, link up, rx 256 tx 256 entries, MSI-X$")
    else:
        m = g.wait_for(MMIO_LINE, 5)
        assert m.group(2) == transport, m.group(0)
    cmdline = re.search(r'^cmdline: "(.*)"$', g.output, re.M).group(1)
    assert ("virtio_mmio.device=" in cmdline) == (source == "cmdline"), cmdline
    if source == "cmdline":
        # The word QEMU appended is a knob now, not an unknown option, and shows in the config line.
        assert "unknown option" not in g.output, g.log
        assert re.search(r"^config: .* virtio_mmio\.device=512@" + m.group(1) + r":" + m.group(5) + r"\b",
                         g.output, re.M), g.log
    tx, rx, _, out = lwip.ping(g.netns, "-c", "20", "-i", "0.02", "-W", "2", "-w", "20")
    assert (tx, rx) == (20, 20), out[-800:]
    r = lwip.client(g.netns, "udp-echo", "--host", lwip.GUEST, "--port", 7, "--count", 200, "--max-size", 1472,
                    "--timeout", 1.0, "--retries", 3, "--seed", 11)
    assert r["failed"] == 0 and r["echoed"] == 200 and r["mismatched"] == 0, r
    lwip.assert_echoed(lwip.tcp_echo(g.netns, 1 << 20, conns=2, seed=12))
    st = g.stats()["net0"]
    assert st["irq_rx"] > 0, st  # the line through the IOAPIC, not the watchdog, delivered the frames
    FIGURES[f"{variant}: irq_rx after ping+udp+tcp"] = st["irq_rx"]
    lwip.close(g)


# ---- the lwIP services, as on q35 ----

@pytest.mark.parametrize("variant", ["acpi-legacy", "acpi-v2"])
def test_ping(tap_guest, variant):
    """test_lwip.test_ping without the fragmented pings (test_ping_fragmented)."""
    g = lwip.boot(microvm(tap_guest, variant))
    with lwip.known_tx_stall(g):
        tx, rx, rtt, out = lwip.ping(g.netns, "-c", "100", "-i", "0.01", "-W", "2", "-w", "30")
        assert (tx, rx) == (100, 100), out[-800:]
        FIGURES[f"{variant}: ping -c 100 -i 0.01 rtt min/avg/max ms"] = f"{rtt['min']}/{rtt['avg']}/{rtt['max']}"
        for size in (0, 56, 1472):
            tx, rx, _, out = lwip.ping(g.netns, "-c", "5", "-i", "0.05", "-W", "2", "-w", "15", "-M", "do", "-s",
                                       str(size))
            assert (tx, rx) == (5, 5), f"size {size}: {out[-800:]}"
    lwip.close(g)


def test_ping_fragmented(tap_guest):
    """An 8000-byte ping: reassembly, and a fragmented reply. It failed while microvm's clock was wrong (the
    PIT read through port 0x61, which microvm lacks): lwIP's ARP entries expired at once and its ARP queue
    dropped the first fragments of the reply."""
    g = lwip.boot(microvm(tap_guest))
    try:
        tx, rx, _, out = lwip.ping(g.netns, "-c", "3", "-i", "0.2", "-W", "3", "-w", "20", "-s", "8000")
        assert (tx, rx) == (3, 3), out[-800:]
    finally:
        g.close()


def test_udp_echo(tap_guest):
    borrow(lwip, lwip.test_udp_echo_1000_datagrams, microvm(tap_guest))


def test_tcp_echo(tap_guest):
    borrow(lwip, lwip.test_tcp_echo_16mib_then_8_connections, microvm(tap_guest))


@pytest.mark.parametrize("variant", ["acpi-legacy", "pcie"])
def test_iperf2(tap_guest, variant):
    """test_lwip.test_iperf2_client's transfer and checks, lwiperf's own report included: type 0, a server
    transfer that ended normally (with microvm's clock wrong, lwIP's retransmission timer could expire within
    a real millisecond and abort it: type 2)."""
    g = lwip.boot(microvm(tap_guest, variant))
    with lwip.known_tx_stall(g):
        start = g.mark()
        p = lwip.run(["iperf", "-c", lwip.GUEST, "-t", "5", "-f", "m"], g.netns, timeout=60)
        g.note(f"iperf -c: {p.stdout}{p.stderr}")
        assert p.returncode == 0, p.stdout + p.stderr
        m = re.search(r"([\d.]+)-([\d.]+) sec\s+[\d.]+ \w?Bytes\s+([\d.]+) Mbits/sec", p.stdout)
        assert m, p.stdout
        mbit = float(m.group(3))
        assert mbit > 0, p.stdout
        rep = g.wait_for(r"^iperf: report type (\d+) from 192\.168\.77\.1: (\d+) bytes", 15, start)
        FIGURES[f"{variant}: iperf2 host->guest -t 5 Mbit/s"] = f"{mbit}, lwiperf report type {rep.group(1)}"
        assert rep.group(1) == "0", f"lwiperf report type {rep.group(1)} (0: server transfer done)"
        tx, rx, _, out = lwip.ping(g.netns, "-c", "5", "-i", "0.1", "-W", "2", "-w", "10")
        assert rx == 5, out[-800:]
    lwip.close(g)


# ---- the robustness quick set: link changes (config interrupt), resets over MMIO, a flood ----

def test_link_flap(tap_guest):
    borrow(rob, rob.test_link_flap, microvm(tap_guest))


@pytest.mark.parametrize("fault", ["needs-reset", "rx-broken", "tx-broken"])
def test_device_reset_without_reboot(tap_guest, fault, monkeypatch):
    """virtio_reset and the queue set-up again over MMIO (QueueReady back to 0 after the status reset)."""
    monkeypatch.setattr(rob, "RING", MMIO_RING)
    borrow(rob, rob.test_device_reset_without_reboot, microvm(tap_guest), fault)


def test_reset_is_bounded_then_nic_is_dead(tap_guest, monkeypatch):
    monkeypatch.setattr(rob, "RING", MMIO_RING)
    borrow(rob, rob.test_reset_is_bounded_then_nic_is_dead, microvm(tap_guest))
