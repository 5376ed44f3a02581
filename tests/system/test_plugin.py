"""The workbench's instruction counter (tools/plugin/icount.c, a QEMU TCG plugin): a guest that boots and exits
(test=boot) executes the same guest instructions every time, so two runs must count within 1 % of each other
— the repeatability `make bench`'s instructions-per-packet figures rest on — and the count must be a real
one (millions, not zero or a constant)."""
import struct

from conftest import OUT, ROOT, STATUS_PASS

PLUGIN = ROOT / "build" / "tools" / "libicount.so"


def count_boot(guest, n):
    out = OUT / f"icount_boot_{n}"
    out.unlink(missing_ok=True)
    g = guest("--cmdline", "test=boot heartbeat=0", "--qemu-arg", "-plugin", "--qemu-arg", f"{PLUGIN},out={out}")
    assert g.status == STATUS_PASS, g.log
    return struct.unpack("<Q", out.read_bytes()[:8])[0]


def test_instruction_count_repeats_within_one_percent(guest):
    assert PLUGIN.exists(), f"{PLUGIN} missing: `make plugin` (make system-test builds it)"
    a, b = count_boot(guest, 1), count_boot(guest, 2)
    assert a > 1_000_000 and b > 1_000_000, (a, b)
    assert abs(a - b) / max(a, b) < 0.01, f"two identical boots counted {a} and {b} instructions"
