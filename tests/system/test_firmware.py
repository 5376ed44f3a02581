"""PVH firmware on q35 (issue 13): qboot by default, SeaBIOS on request (`--firmware`). qboot assigns no PCI
BARs, so the kernel places them itself in the root bridge's PCI holes from the DSDT's _CRS, or without ACPI in
q35's documented hole from 0xc0000000; with SeaBIOS the firmware's addresses are kept. Each variant must bring
the NIC up and answer pings and TCP echo. Every client runs inside the test's own namespace (conftest.py)."""
import pathlib
import re
import subprocess

import pytest

import test_lwip as lwip

ROOT = pathlib.Path(__file__).resolve().parents[2]
QBOOT = pathlib.Path("/usr/share/qemu/qboot.rom")
NIC = r"^pci: 00:0[1-9a-f]\.0 1af4:1041 class 02\.00\.00 msix\n((?:pci:   BAR.*\n)+)"

# id -> (run-qemu.sh arguments, the line that says where the windows came from or None, BARs placed by the kernel)
VARIANTS = {
    "qboot": (("--firmware", "qboot"), r"^acpi: PCI root bridge windows 0xc0000000\+0x3ec00000, 0x[0-9a-f]+\+", True),
    "qboot-acpi-off": (("--firmware", "qboot", "--machine", "q35,acpi=off"),
                       r"^pci: q35 without ACPI windows; BARs go to the default hole 0xc0000000-0xfebfffff, "
                       r"I/O 0xc000-0xffff", True),
    "seabios": (("--firmware", "seabios"), None, False),
}
LEGACY = ("--nic-opts", "disable-legacy=off,disable-modern=on")


def dry_run(*args):
    return subprocess.run([ROOT / "run-qemu.sh", "--dry-run", "--no-build", *args], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.skipif(not QBOOT.exists(), reason="qboot.rom missing (Debian package qemu-system-data)")
def test_q35_pvh_defaults_to_qboot_with_a_nic():
    assert f"-bios {QBOOT}" in dry_run("--net", "tap")
    assert "-bios" not in dry_run("--net", "tap", "--firmware", "seabios")
    assert "-bios" not in dry_run("--net", "tap", "--machine", "microvm")  # QEMU's microvm default is qboot
    assert "bios-microvm.bin" in dry_run("--net", "tap", "--machine", "microvm", "--firmware", "seabios")


@pytest.mark.skipif(not QBOOT.exists(), reason="qboot.rom missing (Debian package qemu-system-data)")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_nic_works_under_each_firmware(tap_guest, variant):
    args, window, assigned = VARIANTS[variant]
    g = lwip.boot(tap_guest, *args)
    if window:
        g.expect(window)
    bars = g.expect(NIC).group(1)
    # The NIC's BARs: MSI-X table (BAR1) and virtio structures (BAR4), both with an address.
    assert re.search(r"BAR1 mem 0x[0-9a-f]*[1-9a-f][0-9a-f]* size 0x1000", bars), bars
    assert re.search(r"BAR4 mem 0x[0-9a-f]*[1-9a-f][0-9a-f]* size 0x4000 64-bit", bars), bars
    assert ("(assigned here)" in bars) == assigned, bars
    with lwip.known_tx_stall(g):
        tx, rx, _, out = lwip.ping(g.netns, "-c", "20", "-i", "0.01", "-W", "2", "-w", "20")
        assert (tx, rx) == (20, 20), out[-800:]
        lwip.assert_echoed(lwip.tcp_echo(g.netns, 1 << 20, seed=13))
    lwip.close(g)


@pytest.mark.skipif(not QBOOT.exists(), reason="qboot.rom missing (Debian package qemu-system-data)")
@pytest.mark.parametrize("variant", ["qboot", "qboot-acpi-off"])
def test_legacy_nic_io_bar_under_qboot(tap_guest, variant):
    """A legacy virtio device is driven through its I/O BAR0, which qboot leaves at 0 too: the kernel puts it
    in the root bridge's I/O range (no lower than 0xc000, where SeaBIOS starts)."""
    g = lwip.boot(tap_guest, *VARIANTS[variant][0], *LEGACY)
    bars = g.expect(r"^pci: 00:0[1-9a-f]\.0 1af4:1000 class 02\.00\.00 msix\n((?:pci:   BAR.*\n)+)").group(1)
    assert re.search(r"BAR0 io  0xc[0-9a-f]{3} size 0x\d+ \(assigned here\)", bars), bars
    g.expect(r"^virtio-net0: \S+ legacy, ")
    tx, rx, _, out = lwip.ping(g.netns, "-c", "10", "-i", "0.01", "-W", "2", "-w", "20")
    assert (tx, rx) == (10, 10), out[-800:]
    lwip.close(g)
