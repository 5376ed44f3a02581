"""bench/bench.py: kernel entry -> ready as each guest's console reports it."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
import bench  # noqa: E402

OURS = """time: TSC 2999.812 MHz (HPET; checked against PM timer: 3000.101 MHz; 612 us)
net0: IPv4 192.168.77.2/24
ready in 17.342 ms since kernel entry (loader entry to kernel: 41 us; CPU reset to loader, the firmware: 5461 us)
"""
LINUX = "[    0.000000] Linux version 6.1\nLINUX-GUEST READY dev=eth0 ip=192.168.77.2/24 kernel=6.1.0-28-cloud-amd64 uptime=1.87s\n"


def test_ours_ready_line():
    assert bench.ready_ms("ours", OURS) == 17.342


def test_linux_uptime_in_ms():
    assert abs(bench.ready_ms("linux", LINUX) - 1870.0) < 1e-9


def test_missing_or_mid_line_is_none():
    assert bench.ready_ms("ours", "booting\n") is None
    assert bench.ready_ms("linux", "LINUX-GUEST READY dev=eth0\n") is None
    # Only a line that starts with it: a console command echoing the words is not the boot's figure.
    assert bench.ready_ms("ours", "> echo ready in 3 ms since kernel entry\n") is None


def test_microvm_rows_compare_with_linux_q35():
    keys = {m[0] for m in bench.METRICS}
    for k, lk in bench.LINUX_KEY.items():
        assert k in keys and lk in keys
