"""The workbench's instruction counter (tools/plugin/icount.c, a QEMU TCG plugin). A boot's own instruction
count depends on host time (the TSC calibration busy-waits a 1 ms window), so two plain boots differ by about
1 % (seen: 2 772 639 vs 2 810 452). Under -icount with sleep=off guest time is a function of the instructions
executed, the boot is deterministic, and the counter must give the same figure twice (within 0.1 %) — a real
one (hundreds of thousands, not zero: 636 k since .bss is no longer cleared twice). `make bench` gets its repeatable per-packet figures the other way: many packets,
the idle rate subtracted."""
import struct

from conftest import OUT, ROOT, STATUS_PASS

PLUGIN = ROOT / "build" / "tools" / "libicount.so"


def count_boot(guest, n):
    out = OUT / f"icount_boot_{n}"
    out.unlink(missing_ok=True)
    g = guest("--cmdline", "test=boot heartbeat=0", "--qemu-arg", "-icount", "--qemu-arg", "shift=4,sleep=off",
              "--qemu-arg", "-plugin", "--qemu-arg", f"{PLUGIN},out={out}")
    assert g.status == STATUS_PASS, g.log
    return struct.unpack("<Q", out.read_bytes()[:8])[0]


def test_instruction_count_repeats(guest):
    assert PLUGIN.exists(), f"{PLUGIN} missing: `make plugin` (make system-test builds it)"
    a, b = count_boot(guest, 1), count_boot(guest, 2)
    assert a > 300_000 and b > 300_000, (a, b)
    assert abs(a - b) / max(a, b) < 0.001, f"two identical -icount boots counted {a} and {b} instructions"


def boot_stages(guest):
    g = guest("--net", "none", "--cmdline", "test=boot heartbeat=0", "--qemu-arg", "-icount", "--qemu-arg",
              "shift=0,sleep=off")
    assert g.status == STATUS_PASS, g.log
    line = g.expect(r"^boot stages \(us\): (.*)$").group(1)
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}


def test_icount_stage_stamps_count_instructions(guest):
    """Under -icount shift=0 a guest nanosecond is one instruction: the kernel's own stage stamps (TSC reads)
    become instruction counts, what `make bench` reports per boot and receive stage. Two boots give the same
    stages within 1 %, and the calibration stage is its 1 ms window, i.e. about a million instructions."""
    a, b = boot_stages(guest), boot_stages(guest)
    assert a.keys() == b.keys() and "time" in a, (a, b)
    for k in a:
        assert abs(a[k] - b[k]) <= max(2, a[k] // 100), (k, a, b)
    assert 1000 <= a["time"] <= 1500, a  # microseconds = thousands of instructions
