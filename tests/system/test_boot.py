"""Boot the real kernel (PVH under TCG, and a few UEFI boots) and check what it reports."""
import re

import pytest

from conftest import STATUS_FAIL, STATUS_PANIC, STATUS_PASS, exception_status


def test_pvh_boot_reports_banner_memory_time(guest):
    g = guest("--cmdline", "test=boot")
    assert g.status == STATUS_PASS, g.log
    g.expect(r"^vnetk \S+: .*\(boot: pvh\)")
    g.expect(r"^memory map \(\d+ entries\):")
    mib = int(g.expect(r"^memory: (\d+) MiB usable").group(1))
    assert 200 <= mib <= 256
    mhz = int(g.expect(r"^time: TSC (\d+)\.\d+ MHz \((.*)\)").group(1))
    assert mhz > 100
    g.expect(r"^lapic: x?APIC id 0, timer \d+ Hz .* one-shot \(tickless\), ticks of 10000 us")
    g.expect(r"^acpi: RSDP 0x[0-9a-f]+, 1 CPU\(s\), 1 IOAPIC\(s\)")
    g.expect(r"^net: lwIP 2\.1\.3 initialised")
    g.expect(r"^selftest boot: PASS")


def test_ready_line_breaks_down_into_stages(guest):
    """After `ready in X ms`, where the time went: every stage from kernel entry on, adding up to at most X."""
    g = guest("--cmdline", "test=boot")
    assert g.status == STATUS_PASS, g.log
    ready_ms = float(g.expect(r"^ready in (\d+\.\d+) ms since kernel entry").group(1))
    line = g.expect(r"^boot stages \(us\):((?: \S+=\d+)+)\n").group(1)
    stages = dict((k, int(v)) for k, v in (x.split("=") for x in line.split()))
    assert list(stages) == ["banner+cmdline", "cpu", "memory", "time", "random+console", "devices", "net"], line
    assert 0 < sum(stages.values()) / 1000 <= ready_ms + 0.01, (stages, ready_ms)


def test_timer_ticks_follow_the_clock(guest):
    g = guest("--cmdline", "test=ticks hz=200")
    assert g.status == STATUS_PASS, g.log
    m = g.expect(r"selftest ticks: (\d+) ticks in (\d+) ms, expected (\d+)")
    ticks, ms, expect = (int(x) for x in m.groups())
    assert ms >= 1000 and expect >= 199
    # Never more ticks than programmed; a loaded host may make QEMU skip some (reported, not a failure).
    assert expect // 2 <= ticks <= expect * 51 // 50 + 1


def host_tsc_mhz():
    """The host's TSC rate: under TCG the guest TSC counts at it (docs/boot.md). /proc/cpuinfo's first
    "cpu MHz" is the TSC rate on this machine (a fixed-rate VM CPU)."""
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)
    return float(m.group(1))


# Issue 13: on microvm the PIT calibration read port 0x61, which microvm lacks, and reported 0.195 MHz while
# the self-test still passed. Each machine must report a TSC within 2 % of the host's, the reference it
# used and the check it passed.
@pytest.mark.parametrize("machine,boot,source", [
    ("q35", "pvh", "HPET"),
    ("microvm", "pvh", "PIT"),
    ("q35", "uefi", "HPET"),
])
def test_tsc_calibration_matches_the_host(guest, machine, boot, source):
    g = guest("--machine", machine, "--boot", boot, "--net", "none", "--cmdline", "test=boot",
              timeout=90 if boot == "uefi" else 30)
    assert g.status == STATUS_PASS, g.log
    m = g.expect(r"^time: TSC (\d+\.\d+) MHz \(([^;]+); checked against ([^:]+): (\d+\.\d+) MHz; (\d+) us\)")
    mhz, src, check, check_mhz, us = float(m.group(1)), m.group(2), m.group(3), float(m.group(4)), int(m.group(5))
    host = host_tsc_mhz()
    assert src == source
    assert abs(mhz - host) <= host * 0.02, (mhz, host)
    assert abs(check_mhz - host) <= host * 0.02, (check, check_mhz, host)


def test_no_time_reference_fails_the_boot(guest):
    """microvm without its PIT has no HPET, ACPI PM timer or PIT: the TSC cannot be calibrated, which is a
    failed boot step (status 35 in test mode), not a guess. Before, port 0x61 read back as "fired" at once and
    the boot passed with a TSC ~1000x off."""
    g = guest("--machine", "microvm,pit=off", "--net", "none", "--cmdline", "test=boot", timeout=30)
    assert g.status == STATUS_FAIL, g.log
    g.expect(r"^time: no HPET, ACPI PM timer or PIT that counts; cannot calibrate the TSC")
    g.expect(r"^boot: TSC calibration failed")


def test_idle_guest_halts_longer_than_a_tick(guest):
    """Tickless idle: no periodic tick, the CPU halts until lwIP's next timer (test=idle, kernel/selftest.c);
    with the 100 Hz tick no halt was longer than 10 ms."""
    g = guest("--net", "none", "--cmdline", "test=idle", timeout=30)
    assert g.status == STATUS_PASS, g.log
    m = g.expect(r"selftest idle: (\d+) halts, longest (\d+) us, (\d+) timer wake-ups in (\d+) ms \((\d+) ticks")
    longest_us, wakeups, ticks = int(m.group(2)), int(m.group(3)), int(m.group(5))
    assert longest_us > 20000
    assert wakeups * 4 < ticks


@pytest.mark.parametrize("slack_ms", [0, 500])
def test_idle_timer_slack_coalesces_housekeeping_wakeups(guest, slack_ms):
    """lwIP's MLD timer alone asks for a wake-up every 100 ms; with timer_slack_ms (default 500) and no TCP
    connection, the housekeeping timers share one wake-up per slack period (net/net.c). 0 keeps them exact."""
    g = guest("--net", "none", "--cmdline", f"test=idle timer_slack_ms={slack_ms}", timeout=30)
    assert g.status == STATUS_PASS, g.log
    m = g.expect(r"selftest idle: \d+ halts, longest (\d+) us, (\d+) timer wake-ups in (\d+) ms")
    longest_us, wakeups, ms = int(m.group(1)), int(m.group(2)), int(m.group(3))
    per_s = wakeups * 1000 / ms
    if slack_ms:
        assert per_s <= 1000 / slack_ms + 1 and longest_us >= slack_ms * 900, (per_s, longest_us)
    else:
        assert per_s >= 9 and longest_us <= 101000, (per_s, longest_us)  # MLD6_TMR_INTERVAL: 100 ms


def test_heap_and_pages_return(guest):
    g = guest("--cmdline", "test=heap")
    assert g.status == STATUS_PASS, g.log
    g.expect(r"malloc 1 MiB ok, 16 pages alloc/free ok")


def test_idle_loop_prints_live_tick_counter(guest):
    g = guest("--cmdline", "heartbeat=1", timeout=4)
    assert g.status == 124, g.log  # stopped by --timeout: the kernel ran until then
    ticks = [int(t) for t in re.findall(r"^\[\s*\d+\.\d+\] ticks=(\d+) idle=", g.output, re.M)]
    assert len(ticks) >= 2, g.output
    assert all(b - a == 100 for a, b in zip(ticks, ticks[1:])), ticks
    # Idle guest: nearly all time halted.
    idle = [float(x) for x in re.findall(r"idle=(\d+\.\d)%", g.output)]
    assert idle[-1] > 90.0


@pytest.mark.parametrize("test,vector,name", [
    ("de", 0, "#DE divide error"),
    ("bp", 3, "#BP breakpoint"),
    ("ud", 6, "#UD invalid opcode"),
    ("gp", 13, "#GP general protection"),
    ("pf", 14, "#PF page fault"),
    ("df", 8, "#DF double fault"),
])
def test_exception_dumps_registers_and_exits_with_its_code(guest, test, vector, name):
    g = guest("--cmdline", f"test={test}")
    assert g.status == exception_status(vector), g.log
    g.expect(rf"\*\*\* EXCEPTION {vector} \({re.escape(name)}\)")
    g.expect(r"^RIP [0-9a-f]{16}")
    g.expect(r"^RAX [0-9a-f]{16} RBX")
    g.expect(r"^R13 [0-9a-f]{16}")
    g.expect(r"^Stack trace:")
    if test == "pf":
        g.expect(r"CR2 0x8 ")
    if test != "df":
        # Symbolised: the faulting function and its caller chain up to kernel_main (GCC's clones of a function,
        # e.g. kernel_main.constprop.0, keep its name before the dot).
        g.expect(r"<selftest_start[.\w]*\+0x[0-9a-f]+>")
        g.expect(r"by [0-9a-f]{16} <kernel_main[.\w]*\+0x[0-9a-f]+>")
    else:
        g.expect(r"<selftest_recurse[.\w]*\+0x[0-9a-f]+>")


def test_panic_exits_with_panic_status(guest):
    g = guest("--cmdline", "test=panic")
    assert g.status == STATUS_PANIC, g.log
    g.expect(r"^PANIC: selftest panic requested")


def test_bad_command_line_is_reported_by_name(guest):
    g = guest("--cmdline", "budget=abc frobnicate=1 mode=turbo hz=20 test=boot")
    assert g.status == STATUS_PASS, g.log
    g.expect(r"cmdline: unknown option 'frobnicate' ignored")
    g.expect(r"cmdline: option 'budget': bad value 'abc' \(expected an integer in 1\.\.4096\); value unchanged")
    g.expect(r"cmdline: option 'mode': bad value 'turbo'")
    g.expect(r"^config: test=boot mode=napi budget=64 coalesce=8 coalesce_us=200 consumer=lwip rxpool=0 txring=0 ring=auto "
             r"hz=20 heartbeat=10 irq_vectors=0 ipv6=1 services=all tcp_conns=1024 tcp_idle_s=300 timer_slack_ms=500 "
             r"\(after command-line problems above\)$")


# Every knob of kernel/cmdline.c's table at a value other than its default, in the table's order.
EVERY_KNOB = ("test=boot mode=coalesce budget=7 coalesce=9 coalesce_us=333 consumer=noop rxpool=96 txring=8 ring=split hz=250 "
              "heartbeat=0 irq_vectors=100 ip=10.9.9.2/24 gw=10.9.9.1 ip1=10.9.8.2/24 gw1=10.9.8.1 ipv6=0 services=echo,status "
              "tcp_conns=100 tcp_idle_s=0 timer_slack_ms=0 virtio_mmio.device=512@0xfeb00e00:12")


def test_config_line_shows_every_knob(guest):
    """The config: line shows every knob set on the command line, and it is itself a command line that boots
    to the same configuration."""
    g = guest("--cmdline", EVERY_KNOB)
    assert g.status == STATUS_PASS, g.log
    line = g.expect(r"^config: (.*)$").group(1)
    assert line == EVERY_KNOB, g.log
    again = guest("--cmdline", line)
    assert again.status == STATUS_PASS, again.log
    assert again.expect(r"^config: (.*)$").group(1) == line


@pytest.mark.parametrize("mem", ["16", "1024", "5000"])
def test_memory_sizes(guest, mem):
    g = guest("--mem", mem, "--cmdline", "test=heap")
    assert g.status == STATUS_PASS, g.log
    if mem == "5000":
        # RAM above 4 GiB is mapped and counted.
        top = int(g.expect(r"RAM top (0x[0-9a-f]+)").group(1), 16)
        assert top > 1 << 32


def test_uefi_boot(guest):
    g = guest("--boot", "uefi", "--cmdline", "test=ticks", timeout=90)
    assert g.status == STATUS_PASS, g.log
    g.expect(r"^vnetk \S+: .*\(boot: uefi\)")
    g.expect(r"^cmdline: \"test=ticks\"")
    g.expect(r"^memory: \d+ MiB usable")
    g.expect(r"selftest ticks: PASS")


def test_uefi_exception(guest):
    g = guest("--boot", "uefi", "--cmdline", "test=ud", timeout=90)
    assert g.status == exception_status(6), g.log
    g.expect(r"<selftest_start\+0x[0-9a-f]+>")
