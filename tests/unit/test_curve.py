"""bench/curve.py: MLFRR, peak, knee and livelock figures of a receive-rate curve, on made-up curves whose
answers are known."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
import curve  # noqa: E402


def rows(points, ratio_for=None):
    """[(offered, delivered)] -> rows; sent = offered, received = delivered (1 s steps)."""
    return [{"offered_pps": o, "delivered_pps": d, "sent": o, "received": d} for o, d in points]


FLAT = rows([(10e3, 10e3), (50e3, 50e3), (100e3, 99.8e3), (150e3, 140e3), (200e3, 150e3), (400e3, 151e3),
             (800e3, 150e3)])
LIVELOCK = rows([(10e3, 10e3), (50e3, 50e3), (100e3, 100e3), (200e3, 120e3), (400e3, 60e3), (800e3, 10e3)])
CLIMBING = rows([(10e3, 10e3), (80e3, 80e3), (160e3, 157e3)])  # the old bench: ended by the generator


def test_mlfrr_is_highest_loss_free_offered_rate():
    assert curve.mlfrr(FLAT) == 100e3  # 99.8 % >= 99.5 %; 150k delivered only 93 %
    assert curve.mlfrr(rows([(1e3, 900.0)])) == 0.0


def test_knee_found_on_a_flat_curve():
    k, found = curve.knee(FLAT)
    assert k == 200e3 and found  # 140k < 0.95 * 151k <= 150k; measured out to 800k


def test_knee_not_found_when_the_generator_ends_the_curve():
    k, found = curve.knee(CLIMBING)
    assert k == 160e3 and not found


def test_delivered_at_interpolates_and_never_extrapolates():
    assert curve.delivered_at(FLAT, 300e3) == pytest.approx(150.5e3)
    assert curve.delivered_at(FLAT, 900e3) is None
    assert curve.delivered_at(FLAT, 5e3) is None


def test_summary_shows_livelock():
    s = curve.summary(LIVELOCK)
    assert s["mlfrr"] == 100e3 and s["peak"] == 120e3
    assert s["at_2x"] == 120e3 and s["at_4x"] == 60e3
    assert s["at_4x_of_peak"] == pytest.approx(0.5)
    flat = curve.summary(FLAT)
    assert flat["at_4x_of_peak"] == pytest.approx(151e3 / 151e3)


def test_geometric_rates():
    r = curve.geometric_rates(10e3, 640e3, 7)
    assert r == [10000, 20000, 40000, 80000, 160000, 320000, 640000]
    assert curve.geometric_rates(1e3, 2e3, 10) == [1000, 2000]  # duplicates after rounding dropped


def test_per_unit_subtracts_idle_and_spread():
    assert curve.per_unit(5_000_000, 100_000.0, 10.0, 1000) == 4000.0
    assert curve.per_unit(5, 0, 1, 0) is None
    assert curve.spread([100.0, 101.0, 99.0]) == pytest.approx(0.02)
    assert curve.spread([1.0]) is None


def fake_guest(capacity, generator_max=float("inf")):
    """measure(rate) for a guest that delivers up to `capacity` pps, fed by a generator that offers at most
    generator_max."""
    def measure(rate):
        offered = min(rate, generator_max)
        return {"offered_pps": offered, "sent": offered, "received": min(offered, capacity),
                "delivered_pps": min(offered, capacity)}
    return measure


def test_refine_narrows_the_mlfrr_between_coarse_steps():
    coarse = [fake_guest(250e3)(r) for r in (100e3, 146e3, 213e3, 311e3, 454e3)]
    assert curve.mlfrr(coarse) == 213e3
    rows = curve.refine_mlfrr(list(coarse), fake_guest(250e3), steps=3)
    assert len(rows) == len(coarse) + 3 + 1  # 258k loses twice (the retry), 234k and 246k do not
    assert 240e3 <= curve.mlfrr(rows) <= 250e3  # within 1.05x of the true 250k (was 1.46x)


def test_refine_stops_when_the_generator_cannot_offer_more():
    coarse = [fake_guest(1e9, 200e3)(r) for r in (100e3, 150e3)] + [
        {"offered_pps": 300e3, "sent": 300e3, "received": 100e3, "delivered_pps": 100e3}]
    rows = curve.refine_mlfrr(list(coarse), fake_guest(1e9, 150e3), steps=3)
    assert len(rows) == len(coarse) + 1  # asked 212k, got 150k offered: no progress, stop


def test_refine_retries_a_lossy_trial_once():
    """The guest takes 280k; the first bisection trial (257k) hits a host stall and loses 2 %. Retried, it
    is loss-free, and the bisection goes on above it instead of settling below 257k."""
    stalls = iter([True])

    def stalling(rate):
        r = fake_guest(280e3)(rate)
        if next(stalls, False):
            r = {**r, "received": r["sent"] * 0.98, "delivered_pps": r["offered_pps"] * 0.98}
        return r
    coarse = [fake_guest(280e3)(r) for r in (100e3, 146e3, 213e3, 311e3)]
    rows = curve.refine_mlfrr(list(coarse), stalling, steps=3)
    assert curve.mlfrr(rows) >= 265e3, sorted(r["offered_pps"] for r in rows)


def test_livelock_rates_reach_four_times_the_mlfrr():
    assert curve.livelock_rates(FLAT) == []  # 800k >= 4 x 100k
    assert curve.livelock_rates(rows([(100e3, 100e3), (200e3, 150e3)])) == [440000]
    assert curve.livelock_rates(rows([(1e3, 10.0)])) == []  # no MLFRR: nothing to scale


def test_summary_states_the_highest_offered_multiple():
    s = curve.summary(LIVELOCK)
    assert s["top_multiple"] == pytest.approx(8.0)  # 800k offered, MLFRR 100k
    assert s["at_top_of_peak"] == pytest.approx(10e3 / 120e3)


def test_knee_rates_ask_for_a_point_past_an_unconfirmed_knee():
    assert curve.knee_rates(FLAT) == []  # found: 800k >= 1.25 x 200k
    assert curve.knee_rates(CLIMBING) == [216000]  # knee 160k at the top: 1.35 x 160k


def test_load_offered_counts_refused_frames_as_offered():
    out = "load: sent=900 duration_s=2.000 offered_pps=450.0 errors=100 slips=0\n"
    assert curve.load_offered(out) == (1000, 2.0)
    assert curve.load_offered("load: cannot open socket\n") is None
