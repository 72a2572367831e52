"""``cascades.detect`` (vectorised) against the straightforward implementation it replaced: the same cascades,
parts, figures and order, bit for bit, on synthetic per-minute tables (several assets, market-wide and
single-asset bursts, quiet gaps longer than the baseline window, values off the histogram's range), with the
default and unusual parameters; plus ``limit``/``min_usd`` and the exact running-sum helper."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liqscope.models import cascades as C

START_MIN = int(pd.Timestamp("2024-03-01", tz="UTC").value // 60_000_000_000)


def _table(seed: int, n_assets: int = 5, days: int = 30) -> C.Minutes:
    """A per-minute table: heavy-tailed background per asset (scales 100x apart), market-wide bursts hitting
    several assets at once, single-asset bursts, a 9-day quiet gap in one asset, a late-starting asset, an asset
    with one active minute, and a zero and a 1e13 USD minute (below and above the histogram's range)."""
    rng = np.random.default_rng(seed)
    market = [(START_MIN + int(rng.integers(8 * 1440, days * 1440 - 60)), int(rng.integers(3, 25)))
              for _ in range(10)]
    out_a, out_m, out_u, out_c = [], [], [], []
    for a in range(n_assets):
        first = START_MIN + (int(rng.integers(0, 1440)) if a != 2 else 6 * 1440)
        minutes = np.arange(first, START_MIN + days * 1440)
        m = minutes[rng.random(len(minutes)) < rng.uniform(0.1, 0.7)]
        if a == 1:  # quiet for longer than the baseline window: days without rows, then a fresh start
            m = m[(m < START_MIN + 10 * 1440) | (m >= START_MIN + 19 * 1440)]
        usd = 10 ** rng.uniform(2, 4) * rng.lognormal(0.0, 1.3, len(m))
        cnt = rng.poisson(1.5, len(m)) + 1
        for t0, length in market:
            if rng.random() < 0.7:
                sel = (m >= t0 + int(rng.integers(0, 4))) & (m < t0 + length)
                usd[sel] *= 10 ** rng.uniform(1.0, 2.5)
                cnt[sel] += rng.integers(3, 30, int(sel.sum()))
        for _ in range(6):  # this asset alone
            i = int(rng.integers(0, len(m) - 30))
            n = int(rng.integers(1, 20))
            usd[i:i + n] *= 10 ** rng.uniform(0.8, 2.5)
            cnt[i:i + n] += rng.integers(2, 25, n)
        if a == 0:
            usd[len(m) // 2] = 0.0
            usd[len(m) // 3] = 1e13
        out_a.append(np.full(len(m), a, np.int32)), out_m.append(m), out_u.append(usd), out_c.append(cnt)
    # an asset with a single active minute (a one-day, one-bin histogram)
    out_a.append(np.array([n_assets], np.int32)), out_m.append(np.array([START_MIN + 5000]))
    out_u.append(np.array([1234.5])), out_c.append(np.array([40]))
    return C.Minutes([f"A{i}" for i in range(n_assets + 1)], np.concatenate(out_a),
                     np.concatenate(out_m).astype(np.int64), np.concatenate(out_u),
                     np.concatenate(out_c).astype(np.int64))


PARAMS = [
    C.Params(),
    C.Params(baseline_days=1, gap_minutes=0, min_samples=30, min_events=5),
    C.Params(k_hot=1.5, k_warm=2.5, hot_ratio=2.0, min_events=4, rate_ratio=1.0),  # warm above hot
    C.Params(baseline_days=3, bin_dex=0.05, min_sigma=0.05, gap_minutes=6),
]


def _dicts(found):
    return [c.to_dict() for c in found]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("p", range(len(PARAMS)))
def test_detect_matches_reference(seed, p):
    mins, params = _table(seed), PARAMS[p]
    want = _ref_detect(mins, params)
    assert want and any(len(c.parts) > 1 for c in want)  # the case exercises multi-asset cascades
    assert _dicts(C.detect(mins, params)) == _dicts(want)


def test_detect_matches_reference_single_thread(monkeypatch):
    mins = _table(4)
    monkeypatch.setattr(C, "_THREADS", 1)
    assert _dicts(C.detect(mins)) == _dicts(_ref_detect(mins))


@pytest.mark.parametrize("p", range(len(PARAMS)))
def test_baseline_matches_reference(p):
    mins, params = _table(5), PARAMS[p]
    got, want = C.baseline(mins, params), _ref_baseline(mins, params)
    for name in ("median", "rate", "threshold"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    for name in ("hot", "warm"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert want.hot.any()


def test_start_end_window():
    mins = _table(6)
    start, end = pd.Timestamp("2024-03-12", tz="UTC"), pd.Timestamp("2024-03-24", tz="UTC")
    want = _ref_detect(mins, start=start, end=end)
    assert want
    assert _dicts(C.detect(mins, start=start, end=end)) == _dicts(want)
    assert C.detect(mins, start="2030-01-01") == []


def test_limit_and_min_usd_keep_the_largest():
    mins = _table(7)
    full = _dicts(C.detect(mins))
    floor = full[len(full) // 3]["total_usd"]
    assert _dicts(C.detect(mins, limit=5)) == full[:5]
    assert _dicts(C.detect(mins, min_usd=floor)) == [c for c in full if c["total_usd"] >= floor]
    assert _dicts(C.detect(mins, limit=3, min_usd=floor)) == [c for c in full if c["total_usd"] >= floor][:3]
    assert _dicts(C.detect(mins, limit=0)) == full  # 0: all, as find_cascades


def test_empty_table():
    assert C.detect(C.Minutes.empty()) == []
    base = C.baseline(C.Minutes.empty())
    assert len(base.median) == len(base.hot) == len(base.threshold) == 0


def test_prefix_at_is_the_running_sum_bit_for_bit():
    rng = np.random.default_rng(8)
    values = rng.lognormal(5, 3, 10_001)
    idx = np.r_[0, len(values), rng.integers(0, len(values) + 1, 500)]
    got = C._prefix_at(values, idx, chunk=64)
    assert np.array_equal(got, np.r_[0.0, np.cumsum(values)][idx])
    assert np.array_equal(C._prefix_at(values[:0], np.array([0])), [0.0])


# -- the implementation before vectorisation (per-asset nd x nb MAD arrays, a pandas groupby per cascade) --------

def _ref_baseline(mins: C.Minutes, params: C.Params = C.Params()) -> C._Baseline:
    """Hot and warm flags per cell from each asset's own trailing per-minute distribution."""
    n = len(mins)
    med_out = np.full(n, np.nan)
    thr_out = np.full(n, np.inf)
    warm_thr_out = np.full(n, np.inf)
    rate_out = np.zeros(n)
    per_active = np.zeros(n)
    if not n:
        return C._Baseline(med_out, np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), thr_out)
    nb = int(math.ceil((C._HI_DEX - C._LO_DEX) / params.bin_dex))
    x_all = np.log10(np.maximum(mins.usd, 1e-300))
    bins_all = np.clip(((x_all - C._LO_DEX) / params.bin_dex).astype(np.int64), 0, nb - 1)
    bounds = mins.bounds()
    w = max(1, int(params.baseline_days))
    for a in range(len(mins.names)):
        lo, hi = bounds[a], bounds[a + 1]
        if lo == hi:
            continue
        day = mins.minute[lo:hi] // C.DAY_MIN
        d0 = int(day[0])
        di = day - d0
        nd = int(di[-1]) + 1
        b = bins_all[lo:hi]
        used = np.unique(b)
        # histogram over the bins this asset uses (a compact axis: a few hundred columns, not thousands)
        col = np.searchsorted(used, b)
        k = len(used)
        hist = np.bincount(di * k + col, minlength=nd * k).reshape(nd, k)
        cum = np.cumsum(hist, axis=0)
        win = cum.copy()
        if nd > w:
            win[w:] -= cum[:-w]
        q = np.cumsum(win, axis=1)
        total = q[:, -1]
        half = total / 2.0
        mcol = np.argmax(q >= half[:, None], axis=1)           # median's column
        mbin = used[mcol]
        # MAD: smallest radius r (in bins) with at least half the mass within [median - r, median + r]
        r = np.arange(nb)
        rows = np.arange(nd)[:, None]
        hi_idx = np.searchsorted(used, mbin[:, None] + r, side="right") - 1
        lo_idx = np.searchsorted(used, mbin[:, None] - r, side="left") - 1
        mass = q[rows, np.maximum(hi_idx, 0)] * (hi_idx >= 0) - np.where(lo_idx >= 0, q[rows, np.maximum(lo_idx, 0)], 0)
        rbin = np.argmax(mass >= half[:, None], axis=1)
        med = C._LO_DEX + (mbin + 0.5) * params.bin_dex
        sigma = np.maximum(1.4826 * rbin * params.bin_dex, params.min_sigma)
        hot_thr = med + np.maximum(params.k_hot * sigma, math.log10(params.hot_ratio))
        warm_thr = med + params.k_warm * sigma
        ev = np.cumsum(np.bincount(di, weights=mins.count[lo:hi], minlength=nd))
        ev_win = ev.copy()
        if nd > w:
            ev_win[w:] -= ev[:-w]
        rate = ev_win / (np.minimum(np.arange(nd) + 1, w) * C.DAY_MIN)
        rate_out[lo:hi] = rate[di]
        per_active[lo:hi] = (ev_win / np.maximum(total, 1))[di]
        bad = total < params.min_samples
        hot_thr[bad] = np.inf
        warm_thr[bad] = np.inf
        med_out[lo:hi] = med[di]
        thr_out[lo:hi] = hot_thr[di]
        warm_thr_out[lo:hi] = warm_thr[di]
    hot_n = np.maximum(params.hot_min_events, params.hot_count_ratio * per_active)
    warm_n = np.maximum(params.warm_min_events, params.warm_count_ratio * per_active)
    hot = (x_all >= thr_out) & (mins.count >= hot_n)
    warm = hot | ((x_all >= warm_thr_out) & (mins.count >= warm_n))
    return C._Baseline(med_out, rate_out, hot, warm, thr_out)


def _ref_bursts(mins: C.Minutes, base: C._Baseline, params: C.Params) -> pd.DataFrame:
    """One row per burst: asset code, start and end minute (end exclusive), cells lo..hi of its warm run."""
    idx = np.flatnonzero(base.warm)
    cols = ["asset", "start", "end", "usd", "count", "peak", "median", "threshold"]
    if not len(idx):
        return pd.DataFrame({c: [] for c in cols})
    a = mins.asset[idx]
    m = mins.minute[idx]
    new = np.r_[True, (a[1:] != a[:-1]) | (m[1:] - m[:-1] > params.gap_minutes + 1)]
    first = np.flatnonzero(new)
    last = np.r_[first[1:], len(idx)] - 1
    hot = np.add.reduceat(base.hot[idx].astype(np.int64), first) > 0
    # figures of the run's own window, from cumulative sums over all cells of the asset
    cu = np.r_[0.0, np.cumsum(mins.usd)]
    cc = np.r_[0, np.cumsum(mins.count)]
    lo_cell = idx[first]
    hi_cell = idx[last] + 1  # cells of the same asset between are in the window (sorted by asset, minute)
    usd = cu[hi_cell] - cu[lo_cell]
    count = cc[hi_cell] - cc[lo_cell]
    peak = np.maximum.reduceat(mins.usd[idx], first)
    length = m[last] + 1 - m[first]
    keep = hot & (count >= params.min_events) & (count >= params.rate_ratio * base.rate[lo_cell] * length)
    return pd.DataFrame({
        "asset": a[first][keep], "start": m[first][keep], "end": m[last][keep] + 1,
        "usd": usd[keep], "count": count[keep], "peak": peak[keep],
        "median": base.median[lo_cell][keep], "threshold": base.threshold[lo_cell][keep]})


def _ref_window_sum(mins: C.Minutes, bounds: np.ndarray, cu, cc, asset: int, start: int, end: int
                    ) -> tuple[float, int]:
    lo, hi = bounds[asset], bounds[asset + 1]
    i = lo + np.searchsorted(mins.minute[lo:hi], start, "left")
    j = lo + np.searchsorted(mins.minute[lo:hi], end, "left")
    return float(cu[j] - cu[i]), int(cc[j] - cc[i])


def _ref_ts(minute: int) -> pd.Timestamp:
    return pd.Timestamp(int(minute) * C.MINUTE_US * 1000, tz="UTC")


def _ref_detect(mins: C.Minutes, params: C.Params = C.Params(), *, start=None, end=None) -> list[C.Cascade]:
    """Cascades in a per-minute table, largest first (figures from the table: total and events; call
    :func:`add_details` for the rest). ``start``/``end`` keep the cascades that start in
    ``[start, end)`` (the baseline still uses the history before ``start``)."""
    base = _ref_baseline(mins, params)
    bursts = _ref_bursts(mins, base, params)
    if not len(bursts):
        return []
    bursts = bursts.sort_values(["start", "asset"], kind="stable").reset_index(drop=True)
    s = bursts["start"].to_numpy(np.int64)
    e = bursts["end"].to_numpy(np.int64)
    reach = np.maximum.accumulate(e)
    group = np.cumsum(np.r_[True, s[1:] > reach[:-1] + params.gap_minutes])
    bounds = mins.bounds()
    cu = np.r_[0.0, np.cumsum(mins.usd)]
    cc = np.r_[0, np.cumsum(mins.count)]
    lo_m = None if start is None else C.parse_time(start).value // (C.MINUTE_US * 1000)
    hi_m = None if end is None else C.parse_time(end).value // (C.MINUTE_US * 1000)
    out: list[C.Cascade] = []
    for _g, rows in bursts.groupby(group, sort=True):
        cs, ce = int(rows["start"].min()), int(rows["end"].max())
        if (lo_m is not None and cs < lo_m) or (hi_m is not None and cs >= hi_m):
            continue
        parts = []
        for asset, prow in rows.groupby("asset", sort=False):
            usd, cnt = _ref_window_sum(mins, bounds, cu, cc, int(asset), cs, ce)
            parts.append(C.Part(mins.names[int(asset)], _ref_ts(prow["start"].min()), _ref_ts(prow["end"].max()),
                                usd, cnt,
                              peak_usd=float(prow["peak"].max()),
                              baseline_usd=float(10 ** prow["median"].iloc[0]),
                              threshold_usd=float(10 ** prow["threshold"].iloc[0])))
        parts.sort(key=lambda p: -p.total_usd)
        out.append(C.Cascade(_ref_ts(cs), _ref_ts(ce), sorted(p.asset for p in parts),
                           float(sum(p.total_usd for p in parts)), int(sum(p.count for p in parts)), parts))
    out.sort(key=lambda c: (-c.total_usd, c.start))
    return out
