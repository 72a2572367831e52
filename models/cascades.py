"""Liquidation cascades: bursts of liquidations well above each asset's own recent baseline.

Qt-free; used by ``liqscope cascades`` and (later) the window's Events panel.

Method (parameters in :class:`Params`, documented in the README's *Cascades* section):

1. **Per-minute aggregation.** Liquidated USD and event count per (asset, UTC minute), summed over
   exchanges and sides (one count per event: a store's rows respect source precedence).
2. **Baseline per asset and day.** ``x = log10(USD)`` of the asset's *active* minutes (minutes with at
   least one liquidation). For each UTC day, the median and the MAD of ``x`` over the trailing window
   (``baseline_days`` days ending with that day), from per-day histograms of ``x`` (``bin_dex`` wide
   bins). Robust sigma = max(1.4826 * MAD, ``min_sigma``). A day whose window holds fewer than
   ``min_samples`` active minutes gets no threshold (nothing is detected there).
3. **Hot and warm minutes.** Hot: ``x >= median + max(k_hot * sigma, log10(hot_ratio))``; warm:
   ``x >= median + k_warm * sigma`` (hot minutes are warm). Thresholds adapt per asset: a BTC minute and a
   DOGE minute are each compared with their own history, never one USD figure.
4. **Bursts.** Per asset, warm minutes at most ``gap_minutes`` cold minutes apart are merged into runs;
   a run holding at least one hot minute and at least ``min_events`` events is a burst (one asset's part).
5. **Cascades.** Bursts of different assets that overlap in time (or are at most ``gap_minutes``
   apart) form one cascade: its window is ``[first burst start, last burst end)`` and its figures are
   every liquidation of its assets in that window -- so a cascade's total equals ``liqscope summary``
   for that window and those assets.
6. **Details** (for the cascades listed): long/short split, USD per exchange, peak minute, events, which
   exchange's burst started first (an exchange's onset is the time its running USD in the window
   reaches ``onset_share`` of its total there; only exchanges with at least ``leader_min_share`` of the
   cascade count) and by how many seconds before the next one, and the price move on the main venue
   (open -> extreme -> close of the main asset on the exchange with the most USD in it that has candles;
   from liquidation prices when none has).

Inputs: a :class:`~liqscope.models.dataset.Dataset` (the demo, a store window) or a
:class:`~liqscope.models.store.Store` (all history: the store's per-minute rollups, raw rows where those
cannot answer; :mod:`.cascades_store`).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from .timeutil import format_time, parse_time

MINUTE_US = 60_000_000
DAY_MIN = 1440
_LO_DEX = -2.0   # histogram range of log10(USD per minute): 1 cent ...
_HI_DEX = 12.0   # ... to one trillion


@dataclass(frozen=True)
class Params:
    """Detection parameters (README, *Cascades*)."""

    baseline_days: int = 7        # trailing baseline window, days (ending with the minute's own day)
    k_hot: float = 3.0            # a hot minute is this many robust sigmas above the median minute ...
    hot_ratio: float = 8.0        # ... and at least this many times the median minute
    k_warm: float = 2.0           # warm minutes (extend a burst) are this many robust sigmas above
    min_sigma: float = 0.15       # floor on the robust sigma of log10(USD per minute)
    gap_minutes: int = 3          # cold minutes allowed inside a burst, and between bursts of one cascade
    min_events: int = 10          # events a burst needs (a single large order is no cascade)
    hot_min_events: int = 3       # events a hot minute needs, and at least hot_count_ratio times the
    hot_count_ratio: float = 5.0  # asset's trailing mean events per active minute
    warm_min_events: int = 2      # the same for warm minutes
    warm_count_ratio: float = 2.0
    rate_ratio: float = 3.0       # a burst's events: at least this many times the trailing events per minute
                                  # (of active and quiet minutes alike) times its length
    min_samples: int = 120        # active minutes a baseline window needs
    bin_dex: float = 0.02         # histogram bin width for the median and MAD, in log10(USD)
    onset_share: float = 0.10     # an exchange's onset: its running USD reaches this share of its total
    leader_min_share: float = 0.05  # exchanges with less of the cascade's USD are not ranked for onset


@dataclass
class Part:
    """One asset's share of a cascade: its own burst (``start``..``end``) and its figures over the whole
    cascade window."""

    asset: str
    start: pd.Timestamp
    end: pd.Timestamp
    total_usd: float
    count: int
    long_usd: float = 0.0
    short_usd: float = 0.0
    peak_usd: float = 0.0         # the burst's largest minute
    baseline_usd: float = 0.0     # the asset's median active minute that day (10 ** median)
    threshold_usd: float = 0.0    # the hot-minute threshold that day


@dataclass
class PriceMove:
    asset: str
    exchange: str
    source: str                   # "candles" or "liquidations"
    open: float
    extreme: float
    extreme_ts: pd.Timestamp
    close: float

    @property
    def extreme_pct(self) -> float:
        return self.extreme / self.open - 1.0

    @property
    def close_pct(self) -> float:
        return self.close / self.open - 1.0


@dataclass
class Cascade:
    start: pd.Timestamp
    end: pd.Timestamp
    assets: list[str]
    total_usd: float
    count: int
    parts: list[Part]
    long_usd: float = 0.0
    short_usd: float = 0.0
    by_exchange: dict[str, float] = field(default_factory=dict)
    peak_ts: pd.Timestamp | None = None
    peak_usd: float = 0.0
    leader: str | None = None
    lead_s: float | None = None
    onsets: dict[str, pd.Timestamp] = field(default_factory=dict)
    price: PriceMove | None = None
    detailed: bool = False

    @property
    def short_share(self) -> float:
        return self.short_usd / self.total_usd if self.total_usd else 0.0

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> dict:
        """Plain JSON-ready figures (times ISO-8601 UTC)."""
        def t(x):
            return None if x is None else format_time(x)
        out = {
            "start": t(self.start), "end": t(self.end), "duration_s": self.duration_s, "assets": self.assets,
            "total_usd": self.total_usd, "long_usd": self.long_usd, "short_usd": self.short_usd,
            "short_share": self.short_share, "count": self.count, "by_exchange": self.by_exchange,
            "peak_minute": t(self.peak_ts), "peak_minute_usd": self.peak_usd,
            "leader": self.leader, "lead_s": self.lead_s,
            "onsets": {k: t(v) for k, v in self.onsets.items()},
            "price": None, "parts": [],
        }
        if self.price is not None:
            p = self.price
            out["price"] = {"asset": p.asset, "exchange": p.exchange, "source": p.source, "open": p.open,
                            "extreme": p.extreme, "extreme_ts": t(p.extreme_ts), "close": p.close,
                            "extreme_pct": p.extreme_pct, "close_pct": p.close_pct}
        for part in self.parts:
            d = asdict(part)
            d["start"], d["end"] = t(part.start), t(part.end)
            out["parts"].append(d)
        return out


# -- per-minute aggregation -------------------------------------------------------------------------
@dataclass
class Minutes:
    """Liquidated USD and events per (asset, UTC minute), sorted by asset then minute; ``minute`` is
    minutes since the epoch, ``asset`` indexes ``names``."""

    names: list[str]
    asset: np.ndarray
    minute: np.ndarray
    usd: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls) -> "Minutes":
        return cls([], np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.minute)

    def bounds(self) -> np.ndarray:
        """Start offset of each asset's rows (len(names) + 1)."""
        return np.searchsorted(self.asset, np.arange(len(self.names) + 1), "left")


def aggregate(asset: np.ndarray, minute: np.ndarray, usd: np.ndarray, n_assets: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``usd`` and count rows per (asset code, minute): returns (asset, minute, usd, count) sorted."""
    if not len(minute):
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    m0 = int(minute.min())
    span = int(minute.max()) - m0 + 1
    key = asset.astype(np.int64) * span + (minute - m0)
    if n_assets * span <= 20_000_000:  # dense: one pass, no sort
        size = n_assets * span
        total = np.bincount(key, weights=usd, minlength=size)
        count = np.bincount(key, minlength=size)
        cells = np.flatnonzero(count)
        total, count = total[cells], count[cells]
    else:
        cells, inverse = np.unique(key, return_inverse=True)
        total = np.bincount(inverse, weights=usd)
        count = np.bincount(inverse)
    a, m = np.divmod(cells, span)
    return a.astype(np.int32), m + m0, total, count.astype(np.int64)


def minutes_from_frame(frame: pd.DataFrame, assets: Iterable[str] | None = None) -> Minutes:
    """Per-minute table of a liquidations frame (``ts``, ``asset``, ``notional_usd``; a ``count`` column,
    if any, weights rows that stand for several events)."""
    if assets is not None:
        frame = frame[frame["asset"].astype(str).isin(list(assets))]
    if not len(frame):
        return Minutes.empty()
    cat = pd.Categorical(frame["asset"].astype(str))
    names = [str(c) for c in cat.categories]
    ts = frame["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    minute = ts // (MINUTE_US * 1000)
    a, m, u, c = aggregate(cat.codes.astype(np.int32), minute, frame["notional_usd"].to_numpy(float), len(names))
    if "count" in frame.columns:  # aggregate rows: count their events
        _, _, c2, _ = aggregate(cat.codes.astype(np.int32), minute, frame["count"].to_numpy(float), len(names))
        c = np.rint(c2).astype(np.int64)
    return Minutes(names, a, m, u, c)


# -- detection ----------------------------------------------------------------------------------------
@dataclass
class _Baseline:
    median: np.ndarray      # per cell, log10 USD
    rate: np.ndarray        # per cell, trailing events per minute of the asset
    hot: np.ndarray         # per cell, bool
    warm: np.ndarray
    threshold: np.ndarray   # per cell, log10 USD of the hot threshold (inf: no baseline)


@dataclass
class _Days:
    """The baseline per (asset, UTC day) row, which is all detection needs, and the per-cell flags. Only
    :func:`baseline` expands the rows to per-cell arrays (on a 30M-cell table three such copies cost more than
    the rest of the detection)."""

    first_row: np.ndarray   # per asset, its first row (len(names) + 1: the last is the number of rows)
    first_day: np.ndarray   # per asset, the UTC day (days since the epoch) of its first row
    cells: np.ndarray       # per row, the asset's cells that day (rows cover each asset's first to last day)
    median: np.ndarray      # per row, log10 USD
    threshold: np.ndarray   # per row, log10 USD of the hot threshold (inf: no baseline)
    rate: np.ndarray        # per row, trailing events per minute of the asset
    warm: np.ndarray        # the warm cells (indices into the table, ascending)
    hot: np.ndarray         # per warm cell, whether it is hot (hot cells are warm)

    def row(self, asset: np.ndarray, minute: np.ndarray) -> np.ndarray:
        """The rows of cells given by asset code and minute."""
        return self.first_row[asset] + minute // DAY_MIN - self.first_day[asset]


_THREADS = 2  # assets' baselines in parallel (numpy releases the GIL)


def baseline(mins: Minutes, params: Params = Params()) -> _Baseline:
    """Hot and warm flags per cell from each asset's own trailing per-minute distribution."""
    days = _day_baseline(mins, params)
    hot, warm = np.zeros(len(mins), bool), np.zeros(len(mins), bool)
    warm[days.warm] = True
    hot[days.warm[days.hot]] = True
    return _Baseline(np.repeat(days.median, days.cells), np.repeat(days.rate, days.cells), hot, warm,
                     np.repeat(days.threshold, days.cells))


def _bounds(mins: Minutes) -> np.ndarray:
    """:meth:`Minutes.bounds`, searching with the codes' own dtype (int64 probes copy the whole code column)."""
    return np.searchsorted(mins.asset, np.arange(len(mins.names) + 1, dtype=mins.asset.dtype), "left")


def _day_baseline(mins: Minutes, params: Params, bounds: np.ndarray | None = None) -> _Days:
    """:func:`baseline` per (asset, day) row, the assets in ``_THREADS`` threads."""
    n_assets = len(mins.names)
    nb = int(math.ceil((_HI_DEX - _LO_DEX) / params.bin_dex))
    bounds = _bounds(mins) if bounds is None else bounds
    assets = [a for a in range(n_assets) if bounds[a] < bounds[a + 1]]

    def one(a):
        return _asset_days(mins, int(bounds[a]), int(bounds[a + 1]), params, nb)
    if len(assets) > 1 and _THREADS > 1:
        with ThreadPoolExecutor(_THREADS) as pool:
            res = list(pool.map(one, assets))
    else:
        res = [one(a) for a in assets]
    first_row = np.zeros(n_assets + 1, np.int64)
    first_day = np.zeros(n_assets, np.int64)
    for a, r in zip(assets, res):
        first_day[a] = r["day0"]
        first_row[a + 1] = len(r["cells"])
    np.cumsum(first_row, out=first_row)

    def cat(key, dtype):
        return np.concatenate([r[key] for r in res]) if res else np.zeros(0, dtype)
    return _Days(first_row, first_day, cat("cells", np.int64), cat("median", float), cat("threshold", float),
                 cat("rate", float), cat("warm", np.int64), cat("hot", bool))


def _asset_days(mins: Minutes, lo: int, hi: int, params: Params, nb: int) -> dict:
    """One asset's baseline per UTC day (its cells ``lo:hi``), and its hot and warm cells.

    The median and MAD of every trailing window come from one 2-D running sum of the counts per (day, bin),
    probed by binary searches (the count up to a bin grows with the bin, the mass within r bins of the median
    with r) rather than from an array per (day, candidate radius)."""
    w = max(1, int(params.baseline_days))
    minute = mins.minute[lo:hi]
    d0 = int(minute[0] // DAY_MIN)
    nd = int(minute[-1] // DAY_MIN) - d0 + 1
    starts = np.searchsorted(minute, (d0 + np.arange(nd + 1)) * DAY_MIN)  # day i: cells starts[i]:starts[i+1]
    per_day = np.diff(starts)
    usd = mins.usd[lo:hi]
    x = np.log10(usd) if usd.min() >= 1e-300 else np.log10(np.maximum(usd, 1e-300))
    b = x - _LO_DEX
    b /= params.bin_dex
    b = b.astype(np.int64)
    bmin, bmax = int(b.min()), int(b.max())
    if bmin < 0 or bmax >= nb:  # off the histogram's range: into its end bins
        np.clip(b, 0, nb - 1, out=b)
        bmin, bmax = (min(max(v, 0), nb - 1) for v in (bmin, bmax))
    k = bmax - bmin + 1  # the bins this asset spans
    # counts per (day, bin) after w empty days, summed over days then bins (in place): the trailing window of
    # day d has p[w + d, c] - p[d, c] active minutes in bins bmin .. bmin + c
    b += np.repeat((np.arange(nd) + w) * k - bmin, per_day)
    p = np.bincount(b, minlength=(nd + w) * k).reshape(nd + w, k)
    del b
    np.cumsum(p, axis=0, out=p)
    np.cumsum(p, axis=1, out=p)
    p = p.ravel()
    now, before = (np.arange(nd) + w) * k, np.arange(nd) * k

    def upto(c):
        return p[now + c] - p[before + c]
    total = upto(k - 1)
    half = total / 2.0
    mcol = _first_true(lambda c: upto(c) >= half, np.full(nd, k - 1))  # the median's bin - bmin

    def within(r):  # at least half the window within r bins of the median
        below = mcol - r - 1
        return upto(np.minimum(mcol + r, k - 1)) - np.where(below >= 0, upto(np.maximum(below, 0)), 0) >= half
    rbin = _first_true(within, np.maximum(mcol, k - 1 - mcol))  # the MAD, in bins
    med = _LO_DEX + (mcol + bmin + 0.5) * params.bin_dex
    sigma = np.maximum(1.4826 * rbin * params.bin_dex, params.min_sigma)
    hot_thr = med + np.maximum(params.k_hot * sigma, math.log10(params.hot_ratio))
    warm_thr = med + params.k_warm * sigma
    cnt = mins.count[lo:hi]
    ev = np.cumsum(np.where(per_day > 0, np.add.reduceat(cnt, starts[:-1]), 0))
    ev_win = ev.copy()
    if nd > w:
        ev_win[w:] -= ev[:-w]
    rate = ev_win / (np.minimum(np.arange(nd) + 1, w) * DAY_MIN)
    per_active = ev_win / np.maximum(total, 1)
    bad = total < params.min_samples
    hot_thr[bad] = np.inf
    warm_thr[bad] = np.inf
    hot_n = np.maximum(params.hot_min_events, params.hot_count_ratio * per_active)
    warm_n = np.maximum(params.warm_min_events, params.warm_count_ratio * per_active)
    # flags for the few cells at or above the lower of their day's two thresholds (the others have none)
    cand = np.flatnonzero(x >= np.repeat(np.minimum(hot_thr, warm_thr), per_day))
    day = np.searchsorted(starts, cand, "right") - 1
    xc, cc = x[cand], cnt[cand]
    hot = (xc >= hot_thr[day]) & (cc >= hot_n[day])
    warm = hot | ((xc >= warm_thr[day]) & (cc >= warm_n[day]))
    return {"day0": d0, "cells": per_day, "median": med, "threshold": hot_thr, "rate": rate,
            "warm": lo + cand[warm], "hot": hot[warm]}


def _first_true(pred, hi: np.ndarray) -> np.ndarray:
    """Per element, the smallest v in 0..hi with ``pred(v)`` (monotone in v, true at hi): a vectorised binary
    search, log2(hi) calls of ``pred`` instead of an array column per candidate v."""
    lo, hi = np.zeros_like(hi), hi.copy()
    for _ in range(int(hi.max(initial=0)).bit_length()):
        mid = (lo + hi) >> 1
        ok = pred(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return hi


def _bursts(mins: Minutes, days: _Days, params: Params) -> dict[str, np.ndarray]:
    """One entry per burst (arrays): asset code, start and end minute (end exclusive) of its warm run, its
    events, its largest minute's USD, and the median and hot threshold of its first day."""
    idx = days.warm
    if not len(idx):
        return {c: np.zeros(0) for c in ("asset", "start", "end", "count", "peak", "median", "threshold")}
    a = mins.asset[idx]
    m = mins.minute[idx]
    new = np.r_[True, (a[1:] != a[:-1]) | (m[1:] - m[:-1] > params.gap_minutes + 1)]
    first = np.flatnonzero(new)
    last = np.r_[first[1:], len(idx)] - 1
    hot = np.logical_or.reduceat(days.hot, first)
    # events of the run's own window: cells of the same asset between are in it (sorted by asset, minute)
    count = _range_sums(mins.count, idx[first], idx[last] + 1)
    peak = np.maximum.reduceat(mins.usd[idx], first)
    length = m[last] + 1 - m[first]
    row = days.row(a[first], m[first])
    keep = hot & (count >= params.min_events) & (count >= params.rate_ratio * days.rate[row] * length)
    return {"asset": a[first][keep], "start": m[first][keep], "end": m[last][keep] + 1, "count": count[keep],
            "peak": peak[keep], "median": days.median[row][keep], "threshold": days.threshold[row][keep]}


def _ranges(lo: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The indices lo[0] .. lo[0] + n[0] - 1, then lo[1] .. and so on, as one array."""
    ends = np.cumsum(n)
    return np.repeat(lo - (ends - n), n) + np.arange(int(ends[-1]) if len(n) else 0)


def _range_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sums of ``values[lo:hi]`` for non-empty ranges, touching only their cells (exact for integers; USD goes
    through :func:`_prefix_at`)."""
    if not len(lo):
        return np.zeros(0, values.dtype)
    n = hi - lo
    return np.add.reduceat(values[_ranges(lo, n)], np.cumsum(n) - n)


def _prefix_at(values: np.ndarray, idx: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``np.r_[0, np.cumsum(values)][idx]`` without the table-sized array: the same left-to-right running sum
    (a window's USD is a difference of two, with the rounding detection always had), a chunk at a time."""
    order = np.argsort(idx, kind="stable")
    want = idx[order]
    run = np.empty(chunk + 1, np.cumsum(values[:0]).dtype)
    got = np.empty(len(idx), run.dtype)
    carry, done = run.dtype.type(0), 0
    for s in range(0, len(values), chunk):
        if done == len(want):
            break
        e = min(s + chunk, len(values))
        run[0] = carry
        run[1:e - s + 1] = values[s:e]
        np.cumsum(run[:e - s + 1], out=run[:e - s + 1])  # run[i] = sum of values[:s + i]
        upto = int(np.searchsorted(want, e, "right"))
        got[done:upto] = run[want[done:upto] - s]
        done, carry = upto, run[e - s]
    got[done:] = carry  # only idx 0 of an empty table
    out = np.empty_like(got)
    out[order] = got
    return out


def _window_sum(mins: Minutes, bounds: np.ndarray, asset: np.ndarray, start: np.ndarray, end: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """USD and events of each window: the cells of ``asset`` with ``start <= minute < end`` (one searchsorted
    per asset)."""
    i, j = np.empty(len(asset), np.int64), np.empty(len(asset), np.int64)
    order = np.argsort(asset, kind="stable")
    seg = np.flatnonzero(np.r_[True, np.diff(asset[order]) != 0]) if len(order) else order
    for s, e in zip(seg.tolist(), np.r_[seg[1:], len(order)].tolist()):
        sel = order[s:e]
        lo, hi = bounds[asset[sel[0]]], bounds[asset[sel[0]] + 1]
        i[sel] = lo + np.searchsorted(mins.minute[lo:hi], start[sel], "left")
        j[sel] = lo + np.searchsorted(mins.minute[lo:hi], end[sel], "left")
    cu = _prefix_at(mins.usd, np.r_[i, j])
    return cu[len(i):] - cu[:len(i)], _range_sums(mins.count, i, j)


def _ts(minute: int) -> pd.Timestamp:
    return pd.Timestamp(int(minute) * MINUTE_US * 1000, tz="UTC")


def detect(mins: Minutes, params: Params = Params(), *, start=None, end=None, limit: int | None = None,
           min_usd: float = 0.0) -> list[Cascade]:
    """Cascades in a per-minute table, largest first (figures from the table: total and events; call
    :func:`add_details` for the rest). ``start``/``end`` keep the cascades that start in
    ``[start, end)`` (the baseline still uses the history before ``start``). ``min_usd`` and ``limit`` (None or
    0: all) keep the ``limit`` largest of at least ``min_usd`` -- only those are built as objects."""
    if not len(mins):
        return []
    bounds = _bounds(mins)
    bursts = _bursts(mins, _day_baseline(mins, params, bounds), params)
    if not len(bursts["start"]):
        return []
    lo_m = None if start is None else parse_time(start).value // (MINUTE_US * 1000)
    hi_m = None if end is None else parse_time(end).value // (MINUTE_US * 1000)
    g, parts = _groups(bursts, params, lo_m, hi_m)
    if not len(g["start"]):
        return []
    usd, count = _window_sum(mins, bounds, parts["asset"], g["start"][parts["group"]], g["end"][parts["group"]])
    # each cascade's parts largest first (ties: in the order of their first burst), and its figures summed in
    # that order, as Python's sum over its list of parts: the same totals, so the same ranking
    order = np.lexsort((parts["first"], -usd, parts["group"]))
    parts = {k: v[order] for k, v in parts.items()}
    usd, count = usd[order], count[order]
    seg = np.flatnonzero(np.r_[True, parts["group"][1:] != parts["group"][:-1]])
    n_parts = np.diff(np.r_[seg, len(order)])
    total = _sums_in_order(usd, seg)
    events = np.add.reduceat(count, seg)
    rank = np.lexsort((g["start"], -total))
    rank = rank[total[rank] >= min_usd]
    if limit:
        rank = rank[:limit]
    take = _ranges(seg[rank], n_parts[rank])  # the listed cascades' parts, in order
    return _cascades(mins, g["start"][rank], g["end"][rank], total[rank], events[rank], n_parts[rank],
                     {k: v[take] for k, v in parts.items()}, usd[take], count[take])


def _groups(bursts: dict, params: Params, lo_m, hi_m) -> tuple[dict, dict]:
    """Bursts in time order into cascades (overlapping or at most ``gap_minutes`` apart), those starting in
    ``[lo_m, hi_m)`` (None: open): the cascades' start and end minutes, and their parts, one per (cascade,
    asset): cascade, asset, first burst (its index in time order), start, end, peak, and the median and hot
    threshold of its first burst."""
    o = np.lexsort((bursts["asset"], bursts["start"]))
    b = {k: v[o] for k, v in bursts.items()}
    s, e = b["start"].astype(np.int64), b["end"].astype(np.int64)
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > reach[:-1] + params.gap_minutes]
    first = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    cs, ce = s[first], np.maximum.reduceat(e, first)
    keep = np.ones(len(first), bool)
    if lo_m is not None:
        keep &= cs >= lo_m
    if hi_m is not None:
        keep &= cs < hi_m
    # the bursts of the cascades kept, by (cascade, asset) and in time order within
    mine = np.flatnonzero(keep[group])
    po = mine[np.lexsort((b["asset"][mine], group[mine]))]
    pg, pa = group[po], b["asset"][po]
    pf = np.flatnonzero(np.r_[True, (pg[1:] != pg[:-1]) | (pa[1:] != pa[:-1])][:len(po)])

    def each(ufunc, v):
        return ufunc.reduceat(v[po], pf) if len(po) else v[:0]
    parts = {"group": (np.cumsum(keep) - 1)[pg[pf]], "asset": pa[pf].astype(np.int64), "first": po[pf],
             "start": each(np.minimum, s), "end": each(np.maximum, e), "peak": each(np.maximum, b["peak"]),
             "median": b["median"][po[pf]], "threshold": b["threshold"][po[pf]]}
    return {"start": cs[keep], "end": ce[keep]}, parts


def _sums_in_order(values: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Per segment (``seg``: start offsets), the left-to-right float sum of its values -- the rounding of
    Python's ``sum`` -- one step per position (a cascade has at most one part per asset)."""
    lengths = np.diff(np.r_[seg, len(values)])
    out = np.zeros(len(seg))
    for k in range(int(lengths.max(initial=0))):
        on = np.flatnonzero(lengths > k)
        out[on] += values[seg[on] + k]
    return out


def _cascades(mins: Minutes, cs, ce, total, events, n_parts, parts: dict, usd, count) -> list[Cascade]:
    """The objects: cascade ``c`` has the next ``n_parts[c]`` of ``parts`` (with ``usd`` and ``count``)."""
    n = len(usd)
    stamps = _stamps(np.concatenate([parts["start"], parts["end"], cs, ce]))
    names = [mins.names[a] for a in parts["asset"].tolist()]
    # on Python floats 10 ** x is C's pow, as on numpy scalars (and a part's threshold is below a real minute's
    # log10 USD, so it cannot overflow)
    base = [10 ** v for v in parts["median"].tolist()]
    thr = [10 ** v for v in parts["threshold"].tolist()]
    made = [Part(a, s, e, u, c, peak_usd=pk, baseline_usd=bu, threshold_usd=tu)
            for a, s, e, u, c, pk, bu, tu in zip(names, stamps[:n], stamps[n:2 * n], usd.tolist(), count.tolist(),
                                                 parts["peak"].tolist(), base, thr)]
    out: list[Cascade] = []
    i = 0
    for c, k in enumerate(n_parts.tolist()):
        out.append(Cascade(stamps[2 * n + c], stamps[2 * n + len(cs) + c], sorted(names[i:i + k]),
                           float(total[c]), int(events[c]), made[i:i + k]))
        i += k
    return out


def _stamps(minutes: np.ndarray) -> list[pd.Timestamp]:
    """:func:`_ts` of many minutes: each distinct minute boxed once, in bulk (parts share their cascade's
    bounds; several times faster than one by one)."""
    uniq, inv = np.unique(np.asarray(minutes, np.int64), return_inverse=True)
    boxed = pd.to_datetime(uniq * (MINUTE_US * 1000), unit="ns", utc=True).tolist()
    return [boxed[i] for i in inv.tolist()]


# -- details from the events and candles of a cascade's window ------------------------------------------
def _codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and names of a text column (a categorical's own codes: no string per row); a missing
    value gets a code of its own, named ""."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, names = col.cat.codes.to_numpy(), [str(c) for c in col.cat.categories]
    else:
        codes, uniq = pd.factorize(col)
        names = [str(n) for n in uniq]
    if len(codes) and codes.min() < 0:
        codes = np.where(codes < 0, len(names), codes)
        names = names + [""]
    return codes.astype(np.int64), names


@dataclass
class Events:
    """A cascade's events as arrays, sorted by time: ts (ns), notional_usd, price, and the codes and names
    of side, exchange and asset (what the details need; a market-wide cascade holds millions)."""

    ts: np.ndarray
    usd: np.ndarray
    price: np.ndarray
    side: tuple[np.ndarray, list[str]]
    exchange: tuple[np.ndarray, list[str]]
    asset: tuple[np.ndarray, list[str]]

    @classmethod
    def of(cls, events: pd.DataFrame) -> "Events":
        ev = events if events["ts"].is_monotonic_increasing else events.sort_values("ts", kind="stable")
        return cls(ev["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64), ev["notional_usd"].to_numpy(float),
                   ev["price"].to_numpy(float), _codes(ev["side"]), _codes(ev["exchange"]), _codes(ev["asset"]))


def add_details(c: Cascade, events: "pd.DataFrame | Events", candles=None, params: Params = Params()) -> Cascade:
    """Fill the long/short split, per-exchange USD, peak minute, exact totals, onsets and price move from
    ``events`` (the liquidations of ``c``'s assets with ``c.start <= ts < c.end``: a frame with ts, exchange,
    asset, side, price, notional_usd, or :class:`Events`) and ``candles(asset, exchange, start, end)`` (a
    frame indexed by time with open/high/low/close, or None). Sums per exchange, asset and side are
    bincounts over codes: a market-wide cascade holds millions of events."""
    ev = events if isinstance(events, Events) else Events.of(events)
    usd, ts = ev.usd, ev.ts
    (side_c, side_n), (ex_c, ex_n), (as_c, as_n) = ev.side, ev.exchange, ev.asset
    n_side, n_as = max(len(side_n), 1), max(len(as_n), 1)
    # one pass for every (asset, side) sum
    cell = np.bincount(as_c.astype(np.int64) * n_side + side_c, weights=usd, minlength=n_as * n_side)
    cell = cell.reshape(n_as, n_side)
    n_per_asset = np.bincount(as_c, minlength=n_as)
    li = side_n.index("long") if "long" in side_n else None
    si = side_n.index("short") if "short" in side_n else None
    c.total_usd = float(usd.sum())
    c.count = int(len(usd))
    c.long_usd = float(cell[:, li].sum()) if li is not None else 0.0
    c.short_usd = float(cell[:, si].sum()) if si is not None else 0.0
    per_ex = np.bincount(ex_c, weights=usd, minlength=len(ex_n))
    by_ex = pd.Series(per_ex, index=ex_n).sort_index().sort_values(ascending=False, kind="stable")
    c.by_exchange = {str(k): float(v) for k, v in by_ex.items() if v > 0}
    where = {n: i for i, n in enumerate(as_n)}
    for p in c.parts:
        i = where.get(p.asset)
        p.total_usd = float(cell[i].sum()) if i is not None else 0.0
        p.count = int(n_per_asset[i]) if i is not None else 0
        p.long_usd = float(cell[i, li]) if i is not None and li is not None else 0.0
        p.short_usd = float(cell[i, si]) if i is not None and si is not None else 0.0
    c.parts.sort(key=lambda p: -p.total_usd)
    if len(usd):
        minute = ts // (MINUTE_US * 1000)  # sorted: each minute one run
        first = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
        per_min = np.add.reduceat(usd, first)
        k = int(np.argmax(per_min))
        c.peak_ts = _ts(int(minute[first[k]]))
        c.peak_usd = float(per_min[k])
    # onsets: when each (large enough) exchange's running USD reaches onset_share of its total (a running
    # sum over all events with the others' USD as 0.0: the same partial sums, no selection)
    c.onsets = {}
    for ex, total in c.by_exchange.items():
        if total < params.leader_min_share * c.total_usd:
            continue
        run = np.cumsum(np.where(ex_c == ex_n.index(ex), usd, 0.0))
        i = int(np.searchsorted(run, params.onset_share * total, "left"))
        c.onsets[ex] = pd.Timestamp(int(ts[min(i, len(run) - 1)]), tz="UTC")
    ranked = sorted(c.onsets.items(), key=lambda kv: kv[1])
    c.leader = ranked[0][0] if ranked else None
    c.lead_s = (ranked[1][1] - ranked[0][1]).total_seconds() if len(ranked) > 1 else None
    c.price = _price_move(c, ev, candles)
    c.detailed = True
    return c


def _price_move(c: Cascade, ev: Events, candles) -> PriceMove | None:
    """The main asset's open -> extreme -> close: from candles of its venues (most USD first), else from
    the liquidation prices on its main venue."""
    if not c.parts:
        return None
    (as_c, as_n), (ex_c, ex_n), usd = ev.asset, ev.exchange, ev.usd
    main = c.parts[0].asset
    mine = as_c == (as_n.index(main) if main in as_n else -1)
    per_ex = np.bincount(ex_c[mine], weights=usd[mine], minlength=len(ex_n))
    rows = np.bincount(ex_c[mine], minlength=len(ex_n))
    venues = sorted((i for i in range(len(ex_n)) if rows[i]), key=lambda i: (-per_ex[i], ex_n[i]))
    if candles is not None:
        for ex in [ex_n[i] for i in venues] + [None]:
            got = candles(main, ex, c.start, c.end)
            if got is None:
                continue
            ex_name, frame = got
            if frame is None or not len(frame):
                continue
            o, cl = float(frame["open"].iloc[0]), float(frame["close"].iloc[-1])
            hi_i, lo_i = frame["high"].to_numpy().argmax(), frame["low"].to_numpy().argmin()
            hi, lo = float(frame["high"].iloc[hi_i]), float(frame["low"].iloc[lo_i])
            ext, when = (hi, frame.index[hi_i]) if hi - o >= o - lo else (lo, frame.index[lo_i])
            return PriceMove(main, ex_name, "candles", o, ext, pd.Timestamp(when), cl)
    if not venues:
        return None
    sel = mine & (ex_c == venues[0])
    p, t = ev.price[sel], ev.ts[sel]
    far = int(np.argmax(np.abs(p - p[0])))
    return PriceMove(main, ex_n[venues[0]], "liquidations", float(p[0]), float(p[far]),
                     pd.Timestamp(int(t[far]), tz="UTC"), float(p[-1]))
