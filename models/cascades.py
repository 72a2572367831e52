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
:class:`~liqscope.models.store.Store` (all history: read per exchange-month, only the columns needed,
aggregated with numpy -- no Python loop per event).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

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


def baseline(mins: Minutes, params: Params = Params()) -> _Baseline:
    """Hot and warm flags per cell from each asset's own trailing per-minute distribution."""
    n = len(mins)
    med_out = np.full(n, np.nan)
    thr_out = np.full(n, np.inf)
    warm_thr_out = np.full(n, np.inf)
    rate_out = np.zeros(n)
    per_active = np.zeros(n)
    if not n:
        return _Baseline(med_out, np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), thr_out)
    nb = int(math.ceil((_HI_DEX - _LO_DEX) / params.bin_dex))
    x_all = np.log10(np.maximum(mins.usd, 1e-300))
    bins_all = np.clip(((x_all - _LO_DEX) / params.bin_dex).astype(np.int64), 0, nb - 1)
    bounds = mins.bounds()
    w = max(1, int(params.baseline_days))
    for a in range(len(mins.names)):
        lo, hi = bounds[a], bounds[a + 1]
        if lo == hi:
            continue
        day = mins.minute[lo:hi] // DAY_MIN
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
        med = _LO_DEX + (mbin + 0.5) * params.bin_dex
        sigma = np.maximum(1.4826 * rbin * params.bin_dex, params.min_sigma)
        hot_thr = med + np.maximum(params.k_hot * sigma, math.log10(params.hot_ratio))
        warm_thr = med + params.k_warm * sigma
        ev = np.cumsum(np.bincount(di, weights=mins.count[lo:hi], minlength=nd))
        ev_win = ev.copy()
        if nd > w:
            ev_win[w:] -= ev[:-w]
        rate = ev_win / (np.minimum(np.arange(nd) + 1, w) * DAY_MIN)
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
    return _Baseline(med_out, rate_out, hot, warm, thr_out)


def _bursts(mins: Minutes, base: _Baseline, params: Params) -> pd.DataFrame:
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


def _window_sum(mins: Minutes, bounds: np.ndarray, cu, cc, asset: int, start: int, end: int) -> tuple[float, int]:
    lo, hi = bounds[asset], bounds[asset + 1]
    i = lo + np.searchsorted(mins.minute[lo:hi], start, "left")
    j = lo + np.searchsorted(mins.minute[lo:hi], end, "left")
    return float(cu[j] - cu[i]), int(cc[j] - cc[i])


def _ts(minute: int) -> pd.Timestamp:
    return pd.Timestamp(int(minute) * MINUTE_US * 1000, tz="UTC")


def detect(mins: Minutes, params: Params = Params(), *, start=None, end=None) -> list[Cascade]:
    """Cascades in a per-minute table, largest first (figures from the table: total and events; call
    :func:`add_details` for the rest). ``start``/``end`` keep the cascades that start in
    ``[start, end)`` (the baseline still uses the history before ``start``)."""
    base = baseline(mins, params)
    bursts = _bursts(mins, base, params)
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
    lo_m = None if start is None else parse_time(start).value // (MINUTE_US * 1000)
    hi_m = None if end is None else parse_time(end).value // (MINUTE_US * 1000)
    out: list[Cascade] = []
    for _g, rows in bursts.groupby(group, sort=True):
        cs, ce = int(rows["start"].min()), int(rows["end"].max())
        if (lo_m is not None and cs < lo_m) or (hi_m is not None and cs >= hi_m):
            continue
        parts = []
        for asset, prow in rows.groupby("asset", sort=False):
            usd, cnt = _window_sum(mins, bounds, cu, cc, int(asset), cs, ce)
            parts.append(Part(mins.names[int(asset)], _ts(prow["start"].min()), _ts(prow["end"].max()), usd, cnt,
                              peak_usd=float(prow["peak"].max()),
                              baseline_usd=float(10 ** prow["median"].iloc[0]),
                              threshold_usd=float(10 ** prow["threshold"].iloc[0])))
        parts.sort(key=lambda p: -p.total_usd)
        out.append(Cascade(_ts(cs), _ts(ce), sorted(p.asset for p in parts),
                           float(sum(p.total_usd for p in parts)), int(sum(p.count for p in parts)), parts))
    out.sort(key=lambda c: (-c.total_usd, c.start))
    return out


# -- details from the events and candles of a cascade's window ------------------------------------------
def add_details(c: Cascade, events: pd.DataFrame, candles=None, params: Params = Params()) -> Cascade:
    """Fill the long/short split, per-exchange USD, peak minute, exact totals, onsets and price move from
    ``events`` (the liquidations of ``c``'s assets with ``c.start <= ts < c.end``: ts, exchange, asset,
    side, price, notional_usd) and ``candles(asset, exchange, start, end)`` (a frame indexed by time with
    open/high/low/close, or None)."""
    ev = events.sort_values("ts", kind="stable")
    usd = ev["notional_usd"].to_numpy(float)
    side = ev["side"].astype(str).to_numpy()
    exch = ev["exchange"].astype(str).to_numpy()
    asset = ev["asset"].astype(str).to_numpy()
    ts = ev["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    c.total_usd = float(usd.sum())
    c.count = int(len(ev))
    c.long_usd = float(usd[side == "long"].sum())
    c.short_usd = float(usd[side == "short"].sum())
    by_ex = pd.Series(usd).groupby(exch).sum().sort_values(ascending=False, kind="stable")
    c.by_exchange = {str(k): float(v) for k, v in by_ex.items() if v > 0}
    for p in c.parts:
        mine = asset == p.asset
        p.total_usd = float(usd[mine].sum())
        p.count = int(mine.sum())
        p.long_usd = float(usd[mine & (side == "long")].sum())
        p.short_usd = float(usd[mine & (side == "short")].sum())
    c.parts.sort(key=lambda p: -p.total_usd)
    if len(ev):
        minute = ts // (MINUTE_US * 1000)
        per_min = pd.Series(usd).groupby(minute).sum()
        c.peak_ts = _ts(int(per_min.idxmax()))
        c.peak_usd = float(per_min.max())
    # onsets: when each (large enough) exchange's running USD reaches onset_share of its total
    c.onsets = {}
    for ex, total in c.by_exchange.items():
        if total < params.leader_min_share * c.total_usd:
            continue
        sel = exch == ex
        run = np.cumsum(usd[sel])
        i = int(np.searchsorted(run, params.onset_share * total, "left"))
        c.onsets[ex] = pd.Timestamp(int(ts[sel][min(i, len(run) - 1)]), tz="UTC")
    ranked = sorted(c.onsets.items(), key=lambda kv: kv[1])
    c.leader = ranked[0][0] if ranked else None
    c.lead_s = (ranked[1][1] - ranked[0][1]).total_seconds() if len(ranked) > 1 else None
    c.price = _price_move(c, ev, candles)
    c.detailed = True
    return c


def _price_move(c: Cascade, ev: pd.DataFrame, candles) -> PriceMove | None:
    if not c.parts:
        return None
    main = c.parts[0].asset
    mine = ev[ev["asset"].astype(str) == main]
    venues = mine.groupby(mine["exchange"].astype(str))["notional_usd"].sum().sort_values(ascending=False,
                                                                                         kind="stable")
    if candles is not None:
        for ex in list(venues.index) + [None]:
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
    if not len(venues):
        return None
    ex = str(venues.index[0])
    px = mine[mine["exchange"].astype(str) == ex]
    p = px["price"].to_numpy(float)
    t = px["ts"]
    far = int(np.argmax(np.abs(p - p[0])))
    return PriceMove(main, ex, "liquidations", float(p[0]), float(p[far]), pd.Timestamp(t.iloc[far]), float(p[-1]))


# -- sources: a Dataset or a Store ----------------------------------------------------------------------
_EVENT_COLS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]


def find_cascades(source, *, start=None, end=None, assets: Sequence[str] | None = None, min_usd: float = 0.0,
                  limit: int | None = None, params: Params = Params(), details: bool = True) -> list[Cascade]:
    """Cascades of a :class:`~liqscope.models.dataset.Dataset` or a :class:`~liqscope.models.store.Store`,
    largest first: those starting in ``[start, end)`` (None: all history; the baseline always uses the
    history before ``start`` as well), of ``assets`` only (None: all), at least ``min_usd`` in total,
    at most ``limit`` (None or 0: all). ``details``: also the split, exchanges, onsets and price move
    (reads the events of each cascade listed)."""
    assets = None if not assets else [str(a).upper() for a in assets]
    if _is_store(source):
        mins = store_minutes(source, end=end, assets=assets, warmup_from=start, params=params)
    else:
        mins = minutes_from_frame(source.liquidations.frame, assets)
    found = detect(mins, params, start=start, end=end)
    found = [c for c in found if c.total_usd >= min_usd]
    if limit:
        found = found[:limit]
    if details and found:
        if _is_store(source):
            _store_details(source, found, params)
        else:
            _dataset_details(source, found, params)
        found = [c for c in found if c.total_usd >= min_usd]
        found.sort(key=lambda c: (-c.total_usd, c.start))
    return found


def _is_store(source) -> bool:
    return hasattr(source, "_liq_read") and hasattr(source, "_files")


def _dataset_details(ds, found: list[Cascade], params: Params) -> None:
    liq = ds.liquidations.events_only() if ds.liquidations.has_aggregates else ds.liquidations

    def candles(asset, exchange, s, e):
        ex = exchange or next(iter(ds.prices.exchanges_for(asset)), None)
        key = ds.prices.find(asset, ex) if ex else None
        if key is None:
            return None
        return key.exchange, ds.prices.candles(key, s, e)
    for c in found:
        f = liq.window(c.start, c.end).frame
        f = f[f["asset"].astype(str).isin(c.assets)]
        add_details(c, f, candles, params)


# -- the store: per exchange-month reads, numpy aggregation ------------------------------------------------
def store_minutes(store, *, end=None, assets: Sequence[str] | None = None, warmup_from=None,
                  params: Params = Params(), threads: int = 2) -> Minutes:
    """The per-minute table of a store's counted liquidations (one count per event, by source precedence),
    up to ``end``; from ``warmup_from - baseline_days`` when given (the baseline needs the days before).
    Reads ts, notional_usd and asset (plus source and symbol on exchanges several sources cover) per
    (exchange, month) file group, in ``threads`` threads."""
    from .store import delta_io
    from .store.errors import store_errors
    from .store.tables import LIQ, TABLES

    store._require_current()
    s_us = None
    if warmup_from is not None:
        s_us = int((parse_time(warmup_from).floor("D") - pd.Timedelta(days=params.baseline_days)).value // 1000)
    e_us = None if end is None else int(parse_time(end).value // 1000)
    files = delta_io.prune(store._files(LIQ), start_us=s_us, end_us=e_us)
    groups: dict[tuple[str, str], list] = {}
    for f in files:
        groups.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    cov = store.coverage()
    order = store.precedence
    from .store import provenance

    def multi(exchange: str) -> bool:
        ranks = {provenance.rank(s, order) for s in cov.sources(exchange)}
        return len(ranks) > 1

    flt = delta_io.window_filter(s_us, e_us)
    if assets is not None:
        import pyarrow.compute as pc
        cond = pc.field("asset").isin(list(assets))
        flt = cond if flt is None else flt & cond
    spec = TABLES[LIQ]

    def read(key):
        exchange, _month = key
        check = multi(exchange)
        cols = ["ts", "notional_usd", "asset"] + (["source", "symbol"] if check else [])
        with store_errors(str(store.location), "read"):
            t = delta_io.read(store.location, spec, groups[key], columns=cols, row_filter=flt,
                              dictionary=("asset", "source", "symbol"))
        return exchange, t, check

    names: dict[str, int] = {}
    out_a, out_m, out_u, out_c = [], [], [], []
    keys = sorted(groups, key=lambda k: (k[1], k[0]))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for exchange, t, check in pool.map(read, keys):
            if not t.num_rows:
                continue
            if any(col.num_chunks != 1 for col in t.columns):
                t = t.unify_dictionaries().combine_chunks()
            ts = t.column("ts").chunk(0).cast("int64").to_numpy()
            usd = t.column("notional_usd").chunk(0).to_numpy()
            acol = t.column("asset").chunk(0)
            if check:
                keep = _counted_mask(exchange, t, ts, cov, order)
                if keep is not None:
                    ts, usd = ts[keep], usd[keep]
                    acol = acol.filter(keep)
            dict_names = acol.dictionary.to_pylist()
            remap = np.array([names.setdefault(n, len(names)) for n in dict_names] or [0], dtype=np.int32)
            codes = remap[acol.indices.to_numpy(zero_copy_only=False)]
            a, m, u, c = aggregate(codes, ts // MINUTE_US, usd, len(names))
            out_a.append(a), out_m.append(m), out_u.append(u), out_c.append(c)
    if not out_a:
        return Minutes.empty()
    a, m, u, c = (np.concatenate(x) for x in (out_a, out_m, out_u, out_c))
    # the same (asset, minute) from several exchanges: sum them (sorted by asset, then minute)
    order_idx = np.lexsort((m, a))
    a, m, u, c = a[order_idx], m[order_idx], u[order_idx], c[order_idx]
    new = np.r_[True, (a[1:] != a[:-1]) | (m[1:] != m[:-1])]
    first = np.flatnonzero(new)
    u = np.add.reduceat(u, first) if len(first) else u
    c = np.add.reduceat(c, first) if len(first) else c
    a, m = a[first], m[first]
    # names in alphabetical order (codes renumbered)
    sorted_names = sorted(names)
    renum = np.empty(len(names), np.int32)
    for i, n in enumerate(sorted_names):
        renum[names[n]] = i
    a = renum[a]
    o = np.argsort(a, kind="stable")
    return Minutes(sorted_names, a[o], m[o], u[o], c[o])


def _counted_mask(exchange: str, t, ts: np.ndarray, cov, order) -> np.ndarray | None:
    """Rows of one exchange's read that count (None: all), by the store's source precedence: only rows of
    a source that a higher-ranked source covers somewhere at their time are checked row by row
    (:func:`provenance.counted`, the rule ``Store._counted`` applies)."""
    from .store import provenance

    src = t.column("source").chunk(0)
    src_names = src.dictionary.to_pylist()
    src_codes = src.indices.to_numpy(zero_copy_only=False)
    keep = np.ones(len(ts), dtype=bool)
    touched = False
    for code, name in enumerate(src_names):
        mine_rank = provenance.rank(name, order)
        above = [o for o in cov.sources(exchange) if provenance.rank(o, order) < mine_rank]
        if not above:
            continue
        starts, ends = [], []
        for (s, e, _sym), (a, b) in cov.spans.items():
            if e == exchange and s in above:
                starts.append(a), ends.append(b)
        if not starts:
            continue
        us, ue = provenance.merge_spans(np.concatenate(starts), np.concatenate(ends))
        rows = np.flatnonzero(src_codes == code)
        if not len(rows):
            continue
        inside = rows[provenance._inside(us, ue, ts[rows])]
        if not len(inside):
            continue
        sym = t.column("symbol").chunk(0)
        sym_names = np.asarray(sym.dictionary.to_pylist(), dtype=object)
        sym_codes = sym.indices.to_numpy(zero_copy_only=False)
        frame_like = {"exchange": np.full(len(inside), exchange, dtype=object),
                      "symbol": sym_names[sym_codes[inside]],
                      "source": np.full(len(inside), name, dtype=object),
                      "ts": ts[inside]}
        keep[inside] = provenance.counted(frame_like, cov, order)
        touched = True
    return keep if touched and not keep.all() else None


def _store_details(store, found: list[Cascade], params: Params) -> None:
    """Events of each cascade's window (one read per month, counted by source precedence) and candles."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .store import tables

    by_month: dict[str, list[Cascade]] = {}
    for c in found:
        by_month.setdefault(c.start.strftime("%Y-%m"), []).append(c)
    series = None

    def candles(asset, exchange, s, e):
        nonlocal series
        if series is None:
            series = store.candle_series()
        opts = [(ex, sym, iv) for ex, sym, iv, a in series if a == asset and (exchange is None or ex == exchange)]
        opts = [o for o in opts if o[2] == "1m"] or opts
        for ex, sym, iv in sorted(opts):
            frame = store.candles(ex, sym, iv, s, e)
            if len(frame):
                return ex, frame
        return None
    for cs in by_month.values():
        lo, hi = min(c.start for c in cs), max(c.end for c in cs)
        flt = None
        for c in cs:
            cond = ((pc.field("ts") >= pa.scalar(c.start.value // 1000, pa.timestamp("us", tz="UTC")))
                    & (pc.field("ts") < pa.scalar(c.end.value // 1000, pa.timestamp("us", tz="UTC"))))
            flt = cond if flt is None else flt | cond
        assets = sorted({a for c in cs for a in c.assets})
        flt = flt & pc.field("asset").isin(assets)
        t = store._counted(store._liq_read(lo, hi, columns=[*_EVENT_COLS, "source"], extra_filter=flt))
        frame = tables.liq_frame(t)
        ts = frame["ts"]
        for c in cs:
            sel = (ts >= c.start) & (ts < c.end) & frame["asset"].astype(str).isin(c.assets)
            add_details(c, frame[sel.to_numpy()], candles, params)
