"""bench/report.py's comparison of two make-bench tables: each figure's change against the noise the report
states (instruction counts 1 %, host times 2x), rows matched by label and order."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
import report  # noqa: E402

HEAD = "metric,unit,ours,linux,ratio,target,met\n"


def table(tmp_path, name, rows):
    p = tmp_path / name
    p.write_text(HEAD + "".join(",".join(r) + "\n" for r in rows))
    return p


def test_instruction_counts_must_repeat_within_one_percent(tmp_path):
    prev = table(tmp_path, "a.csv", [("per echo", "insn", "4195", "27660", "", "", "")])
    now = table(tmp_path, "b.csv", [("per echo", "insn", "4300", "27600", "", "", "")])  # +2.5 %, -0.2 %
    text, outside = report.compare(prev, now)
    assert outside == 1
    assert "| per echo | ours | 4195 | 4300 | 1.025x | **no** |" in text
    assert "| per echo | linux | 27660 | 27600 | 0.998x | yes |" in text


def test_host_times_may_move_twofold_and_spreads_are_skipped(tmp_path):
    rows_a = [("RTT p50", "us", "95", "349", "", "", ""), ("  its range", "ms", "1", "", "", "", ""),
              ("  its range", "ms", "10", "", "", "", ""), ("  its spread", "", "0.005", "0.006", "", "", "")]
    rows_b = [("RTT p50", "us", "180", "120", "", "", ""), ("  its range", "ms", "1.5", "", "", "", ""),
              ("  its range", "ms", "30", "", "", "", ""), ("  its spread", "", "0.05", "0.0006", "", "", "")]
    text, outside = report.compare(table(tmp_path, "a.csv", rows_a), table(tmp_path, "b.csv", rows_b))
    assert outside == 2  # linux RTT 0.34x, and the second "its range" row 3x; the first range row pairs with 1.5
    assert "| its range | ours | 1 | 1.5 | 1.500x | yes |" in text
    assert "spread" not in text
