"""Receive-rate curve analysis (Mogul & Ramakrishnan): what bench.py and report.py say about offered vs
delivered rate. Pure functions over rows {"offered_pps", "delivered_pps", "sent", "received"}, so that
tests/unit/test_curve.py can check them without a guest.

- MLFRR: the highest offered rate delivered "loss-free" (at least LOSS_FREE of the datagrams sent counted).
- peak: the highest delivered rate seen.
- knee: where the delivered rate stops rising, the lowest offered rate at which delivery reaches KNEE_SHARE of
  the peak. It is "found" only if the curve was driven at least KNEE_MARGIN past it, i.e. a higher offered
  point exists that did not deliver more (otherwise the curve might still be climbing: the load generator,
  not the guest, ended it, as with the old 160 kpps top).
- delivered at 2x and 4x MLFRR (linear interpolation between measured points; None beyond the range): a
  livelocking receiver's delivery falls past the knee, a well-behaved one stays flat near the peak.
"""
import re

LOSS_FREE = 0.995
KNEE_SHARE = 0.95
KNEE_MARGIN = 1.25


def sorted_rows(rows):
    return sorted(rows, key=lambda r: r["offered_pps"])


def load_offered(out):
    """tools/load's summary line -> (frames offered, seconds), or None without one. A frame the tap refused (its
    queue to QEMU full: ENOBUFS) was offered and lost, like a frame dropped at a full NIC ring: `errors` count
    as offered."""
    m = re.search(r"sent=(\d+) duration_s=([\d.]+) offered_pps=[\d.]+ errors=(\d+)", out)
    return (int(m.group(1)) + int(m.group(3)), float(m.group(2))) if m else None


def is_loss_free(r, loss_free=LOSS_FREE):
    """Whether one step counted at least loss_free of the datagrams sent."""
    return bool(r["sent"]) and r["received"] / r["sent"] >= loss_free


def mlfrr(rows, loss_free=LOSS_FREE):
    """The highest offered rate with received/sent >= loss_free; 0.0 if none."""
    ok = [r["offered_pps"] for r in rows if is_loss_free(r, loss_free)]
    return max(ok) if ok else 0.0


def peak(rows):
    return max((r["delivered_pps"] for r in rows), default=0.0)


def knee(rows, share=KNEE_SHARE, margin=KNEE_MARGIN):
    """(offered rate at the knee, found): the first offered rate whose delivery reaches share * peak, and
    whether some point at least margin times further out was measured."""
    rs = sorted_rows(rows)
    if not rs:
        return 0.0, False
    top = peak(rs)
    k = next(r["offered_pps"] for r in rs if r["delivered_pps"] >= share * top)
    return k, rs[-1]["offered_pps"] >= margin * k


def delivered_at(rows, offered):
    """Delivered rate at an offered rate, interpolated linearly between the neighbouring points; None outside
    the measured range (never extrapolated)."""
    rs = sorted_rows(rows)
    if not rs or offered < rs[0]["offered_pps"] or offered > rs[-1]["offered_pps"]:
        return None
    for a, b in zip(rs, rs[1:]):
        if a["offered_pps"] <= offered <= b["offered_pps"]:
            span = b["offered_pps"] - a["offered_pps"]
            f = (offered - a["offered_pps"]) / span if span else 0.0
            return a["delivered_pps"] + f * (b["delivered_pps"] - a["delivered_pps"])
    return rs[-1]["delivered_pps"]


def summary(rows):
    """Every figure of one curve, for the tables: mlfrr, peak, knee, knee_found, at_2x, at_4x, at_4x_of_peak."""
    m, p = mlfrr(rows), peak(rows)
    k, found = knee(rows)
    a2 = delivered_at(rows, 2 * m) if m else None
    a4 = delivered_at(rows, 4 * m) if m else None
    top = max(sorted_rows(rows), key=lambda r: r["offered_pps"]) if rows else None
    return {"mlfrr": m, "peak": p, "knee": k, "knee_found": found, "at_2x": a2, "at_4x": a4,
            "at_4x_of_peak": (a4 / p) if (a4 is not None and p) else None,
            # Where the generator could not offer 4x (it shares the host's cores with QEMU), the livelock
            # check falls back on the highest rate it did offer, stated as a multiple of the MLFRR.
            "top_multiple": top["offered_pps"] / m if top and m else None,
            "at_top_of_peak": top["delivered_pps"] / p if top and p else None}


def refine_mlfrr(rows, measure, steps=3, loss_free=LOSS_FREE):
    """Bisects (on a log scale) between the MLFRR of a coarse sweep and the next offered rate, which lost
    datagrams: `steps` more rates from measure(rate) -> row, appended to rows (which is returned); a rate that
    loses is tried a second time, and counts as lossy only if that loses too. With the sweep's steps 1.46x
    apart, the MLFRR (and any ratio of two MLFRRs) was only known to within that factor; three steps narrow it
    to 1.05x."""
    m = mlfrr(rows, loss_free)
    above = [r["offered_pps"] for r in rows if r["offered_pps"] > m]
    if not m or not above:
        return rows
    lo, hi = m, min(above)
    for _ in range(steps):
        rate = int(round((lo * hi) ** 0.5))
        r = measure(rate)
        rows.append(r)
        ok = is_loss_free(r, loss_free)
        if not ok:
            # Once more before calling the rate lossy: on a shared host one stall of the guest's vCPU thread
            # longer than its ring's ~1 ms of buffering loses frames at any rate, and a single such trial
            # moved the MLFRR by 1.5x between runs.
            r = measure(rate)
            rows.append(r)
            ok = is_loss_free(r, loss_free)
        if ok and r["offered_pps"] > lo:
            lo = r["offered_pps"]
        elif not ok and r["offered_pps"] < hi:
            hi = r["offered_pps"]
        else:
            break  # the generator did not offer what was asked: no further narrowing from here
    return rows


def livelock_rates(rows, factor=4.4):
    """The offered rates still to measure so that delivery at 4x MLFRR is inside the curve (never
    extrapolated): [factor * MLFRR] if the curve stops short of 4x, else []."""
    m = mlfrr(rows)
    top = max((r["offered_pps"] for r in rows), default=0.0)
    return [int(round(factor * m, -3))] if m and top < 4 * m else []


def knee_rates(rows, factor=1.35):
    """The offered rate still to measure so that the knee counts as found (a point KNEE_MARGIN past it): [factor *
    knee] if the curve stops short of that, else []. The generator may not reach it; the knee then stays
    unconfirmed, and the table says so."""
    k, found = knee(rows)
    return [int(round(factor * k, -3))] if k and not found else []


def geometric_rates(lo, hi, n):
    """n offered rates from lo to hi, evenly spaced on a log scale and rounded to 1000 pps (at least 1000)."""
    if n < 2:
        return [int(lo)]
    f = (hi / lo) ** (1.0 / (n - 1))
    out = []
    for i in range(n):
        r = max(1000, int(round(lo * f ** i / 1000.0)) * 1000)
        if not out or r > out[-1]:
            out.append(r)
    return out


def per_unit(count_delta, idle_rate, seconds, units):
    """Guest instructions per unit of work (a packet, a MiB): the interval's count minus what the idle guest
    executes in the same time (its tick, its idle loop), divided by the units done; None without units."""
    if not units:
        return None
    return (count_delta - idle_rate * seconds) / units


def spread(values):
    """(max - min) / mean of repeated measurements: the repeatability that the tables state; None if < 2."""
    v = [x for x in values if x is not None]
    if len(v) < 2:
        return None
    m = sum(v) / len(v)
    return (max(v) - min(v)) / m if m else None
