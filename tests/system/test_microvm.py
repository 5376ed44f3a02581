"""QEMU's microvm machine: the virtio-mmio NIC (drivers/virtio_mmio.c) found through the ACPI DSDT or, with
acpi=off, through the `virtio_mmio.device=` word QEMU appends to the command line; version 2 and the legacy
version 1 (QEMU 7.2's default for virtio-mmio); its interrupt line through the IOAPIC. The same lwIP services
and robustness checks as on q35 run unchanged against it: this module calls the q35 tests with a guest
fixture that adds `--machine microvm` (and QEMU options per variant).

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
}
MMIO_LINE = r"^virtio-net0: mmio@(0x[0-9a-f]+) (\w+), MAC [0-9a-f:]{17}, link up, rx (\d+) tx (\d+) entries, GSI (\d+) level\n"


def microvm(tap_guest, variant="acpi-legacy"):
    """A tap_guest-like starter for microvm in the given variant (a later --machine overrides the first)."""
    extra = VARIANTS[variant][0]

    def start(*args, **kw):
        return tap_guest("--machine", "microvm", *extra, *args, **kw)
    return start


def borrow(module, fn, *args):
    """Runs a q35 test function against microvm and keeps the figures it recorded, prefixed by its name."""
    before = dict(module.FIGURES)
    fn(*args)
    for k, v in module.FIGURES.items():
        if before.get(k) != v:
            FIGURES[f"{fn.__name__}: {k}"] = v


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_mmio_nic_found_and_serves(tap_guest, variant):
    _, transport, source = VARIANTS[variant]
    g = lwip.boot(microvm(tap_guest, variant))
    m = g.wait_for(MMIO_LINE, 5)
    assert m.group(2) == transport, m.group(0)
    cmdline = g.output.split("\n", 4)[:4]
    appended = any("virtio_mmio.device=" in line for line in cmdline)
    assert appended == (source == "cmdline"), cmdline
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

def test_ping(tap_guest):
    borrow(lwip, lwip.test_ping, microvm(tap_guest))


def test_udp_echo(tap_guest):
    borrow(lwip, lwip.test_udp_echo_1000_datagrams, microvm(tap_guest))


def test_tcp_echo(tap_guest):
    borrow(lwip, lwip.test_tcp_echo_16mib_then_8_connections, microvm(tap_guest))


def test_iperf2(tap_guest):
    borrow(lwip, lwip.test_iperf2_client, microvm(tap_guest))


# ---- the robustness quick set: link changes (config interrupt), resets over MMIO, a flood ----

def test_link_flap(tap_guest):
    borrow(rob, rob.test_link_flap, microvm(tap_guest))


@pytest.mark.parametrize("fault", ["needs-reset", "rx-broken"])
def test_device_reset_without_reboot(tap_guest, fault):
    borrow(rob, rob.test_device_reset_without_reboot, microvm(tap_guest), fault)


def test_malformed_frames(tap_guest):
    borrow(rob, rob.test_malformed_frames_are_refused_and_counted, microvm(tap_guest))
