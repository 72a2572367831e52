"""The part of a store the window holds: the events around the view, or whole days as totals.

Years of history do not fit in memory, and the window never shows them at once: a day shows events,
five years show days. So a store with more events than :func:`raw_budget` is held in parts
(:class:`Part`, hung on the :class:`~liqscope.models.dataset.Dataset`):

* **events** around the view (the view plus one view-width either side, finplot's 3x cache, or just
  the view when that is too many): every figure of any window inside is exact, zooming and panning
  inside need no read;
* **days**, for a view too wide for its events: one aggregate row per (day, exchange, symbol, side,
  source) from the daily rollups, holding the day's count and USD, for the whole days around the
  view; the view's own first and last day, and days the rollups cannot answer (stale, or a
  higher-precedence source covering them only in part), as events. So the view's totals, counts and
  breakdowns are exact to the cent, bars are whole days, and its largest orders are read for it
  (:func:`~.figures.largest`), with the view's filters.

Candles follow the span: 1-minute candles up to :data:`RAW_CANDLE_SPAN`, else hourly or daily candle
rollups. A part says which views it serves exactly (:meth:`Part.serves`); for any other the window
keeps drawing what it holds and loads the part that does, off the GUI thread.
Memory is bounded by the budget, not by the store: opening years costs what opening a day costs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..dataset import Dataset
from ..liquidations import AGGREGATE, COUNT, LiquidationModel, _concat_frames
from ..prices import PriceModel
from . import figures, tables
from .errors import store_errors

DEFAULT_RAW_BUDGET = 3_000_000  # events held at most (~100 bytes each with the index: ~300 MB)
RAW_CANDLE_SPAN = pd.Timedelta(days=40)   # up to this, 1-minute candles (26k per day for 18 series)
HOURLY_CANDLE_SPAN = pd.Timedelta(days=400)
DAY = pd.Timedelta(days=1)
MIN_CANDLES = 300   # a view shows at most ~this many candles (>= 4 px each): coarser ones still look right
TOP_EVENTS = 10     # largest orders read for a view held as days (the headline shows one, panels a list)
EVENT_COLUMNS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd", "source"]


def raw_budget() -> int:
    """Most events held in memory (``LIQSCOPE_RAW_BUDGET`` overrides: tests and the benchmark)."""
    value = os.environ.get("LIQSCOPE_RAW_BUDGET")
    return int(value) if value else DEFAULT_RAW_BUDGET


def filter_key(liq_filter: dict) -> tuple:
    """A hashable form of ``View.liq_filter()`` (which liquidations a view shows)."""
    return tuple(sorted((k, repr(sorted(v) if isinstance(v, (set, frozenset)) else v))
                        for k, v in liq_filter.items()))


@dataclass
class Part:
    """Which part of a store a dataset holds, what the whole store holds, and how to load another part."""

    windows: "StoreWindows"
    extent: tuple[pd.Timestamp, pd.Timestamp] | None
    daily: pd.Series                    # USD per UTC day over all history (busiest day, overview)
    assets: list[str]
    exchanges: list[str]
    loaded: tuple[pd.Timestamp, pd.Timestamp]   # the rows held have loaded[0] <= ts < loaded[1]
    resolution_s: int = 0               # 0: events; 86400: whole days as aggregate rows
    candle_s: int = 60                  # seconds per held candle
    min_notional: float = 0.0           # only events at least this large are held
    built_for: tuple | None = None      # days: the (start, end, filter) whose figures are exact
    top_events: LiquidationModel | None = field(default=None, repr=False)

    def serves(self, start, end, liq_filter: dict) -> bool:
        """Exact figures, bars and orders for ``[start, end)`` with ``liq_filter`` from what is held."""
        if start is None or end is None:
            return True
        lo, hi = self.loaded
        if self.candle_s > 60 and (end - start).total_seconds() / self.candle_s < MIN_CANDLES:
            return False  # zoomed in past the held candles
        if self.resolution_s == 0:
            return (lo <= start and end <= hi
                    and float(liq_filter.get("min_notional") or 0.0) >= self.min_notional)
        return self.built_for == (start, end, filter_key(liq_filter))

    def holds_events(self, start, end) -> bool:
        """Every single event of ``[start, end)`` is held (not days, not only large ones)."""
        return (self.resolution_s == 0 and self.min_notional == 0
                and self.loaded[0] <= start and end <= self.loaded[1])


class StoreWindows:
    """Loads the part of one store a view needs (Qt-free: the window runs it on its worker)."""

    def __init__(self, store, budget: int | None = None):
        self.store = store
        self.budget = raw_budget() if budget is None else int(budget)
        self.overview = figures.Overview(store)
        self._context = None

    # -- whole-store facts (table logs and rollups, never raw rows) -------------
    def count(self, start=None, end=None) -> int:
        """Events on the days ``[start, end)`` touches (an upper bound: whole days)."""
        daily = self.overview.daily_table()
        if not len(daily):
            return 0
        day = daily.index
        keep = np.ones(len(day), dtype=bool)
        if start is not None:
            keep &= day + DAY > start
        if end is not None:
            keep &= day < end
        return int(daily["count"].to_numpy()[keep].sum())

    def first(self, start=None, end=None, liq_filter: dict | None = None) -> Dataset:
        """The dataset a window opens with: the whole store when it fits the budget (exact for every view,
        no reads later), else the part for ``[start, end)`` (default: the busiest day)."""
        if self.count() <= self.budget:
            return self.store.load_window()
        if start is None or end is None:
            day = self.overview.busiest_day()
            if day is None:
                return self.store.load_window()
            start, end = day
        return self.load(start, end, liq_filter or {})

    def load(self, start: pd.Timestamp, end: pd.Timestamp, liq_filter: dict | None = None, *,
             held: Dataset | None = None) -> Dataset:
        """The part that serves ``[start, end)`` with ``liq_filter`` (see the module doc). ``held``: the part
        shown now; events it holds are kept rather than read again (a pan reads only what came into view)."""
        liq_filter = liq_filter or {}
        span = end - start
        extent = self.overview.time_range()
        lo, hi = start - span, end + span
        if extent is not None:
            lo, hi = max(lo, extent[0].floor("D")), min(hi, extent[1].floor("D") + DAY)
            lo, hi = min(lo, start), max(hi, end)
        min_n = float(liq_filter.get("min_notional") or 0.0)
        if self.count(lo, hi) <= self.budget:
            return self._events(lo, hi, held=held)
        if self.count(start, end) <= self.budget:  # the widest margins the budget allows (pans need them)
            margin = span
            while margin > pd.Timedelta(minutes=1) and self.count(start - margin, end + margin) > self.budget:
                margin = margin / 2
            margin = margin if self.count(start - margin, end + margin) <= self.budget else pd.Timedelta(0)
            return self._events(max(lo, start - margin), min(hi, end + margin), held=held)
        if min_n > 0:  # rollups hold no sizes: the large events themselves, pruned by size while read
            return self._events(start, end, min_notional=min_n)
        return self._days(start, end, lo, hi, liq_filter)

    def events(self, start, end) -> LiquidationModel:
        """Every counted event of ``[start, end)``, read strictly (a damaged file it needs is an error)."""
        return self.store.liquidations(start, end)

    # -- parts ---------------------------------------------------------------------
    def _part(self, loaded, **kw) -> Part:
        ov = self.overview
        return Part(self, ov.time_range(), ov.daily_totals(), ov.assets, ov.exchanges, loaded, **kw)

    def _dataset(self, prices: PriceModel, liqs: LiquidationModel, part: Part, damaged: dict) -> Dataset:
        if self._context is None:  # open interest, funding, outside series: small, read once for all history
            self._context = self.store.context()
        return Dataset(prices, liqs, label=self.overview.label, is_demo=False,
                       notes=self.store.notes + [d.message for d in damaged.values()],
                       damaged=list(damaged.values()), part=part, context=self._context)

    def _events(self, lo, hi, *, min_notional: float = 0.0, held: Dataset | None = None) -> Dataset:
        damaged: dict = {}
        keep = lambda d: damaged.setdefault(d.path, d)  # noqa: E731
        reuse = _reusable(held, self, lo, hi) if min_notional == 0 else None
        if reuse is not None:
            return self._extended(held, lo, hi, reuse, damaged, keep)
        prices, candle_s = self._prices(lo, hi, keep)
        also = pc.field("notional_usd") >= min_notional if min_notional > 0 else None
        table = self.store._counted(self.store._liq_read(lo, hi, on_damage=keep, extra_filter=also))
        liqs = LiquidationModel(tables.liq_frame(table), _trusted=True)
        part = self._part((lo, hi), candle_s=candle_s, min_notional=min_notional)
        return self._dataset(prices, liqs, part, damaged)

    def _extended(self, held: Dataset, lo, hi, kept: tuple, damaged: dict, keep) -> Dataset:
        """The events of ``[lo, hi)``: those ``held`` has in ``kept`` (a span inside it), the rest read."""
        k_lo, k_hi = kept
        spans = [(a, b) for a, b in ((lo, k_lo), (k_hi, hi)) if a < b]
        frames, prices = [], []
        for a, b in spans:
            frames.append(tables.liq_frame(self.store._counted(self.store._liq_read(a, b, on_damage=keep))))
            prices.append(self.store._window_candles(a, b, None, keep))
        middle = held.liquidations.window(k_lo, k_hi).frame
        ordered = ([frames[0]] if spans and spans[0][0] == lo and lo < k_lo else []) + [middle] + \
                  ([frames[-1]] if spans and spans[-1][1] == hi and k_hi < hi else [])
        liqs = LiquidationModel(_concat_frames([f for f in ordered if len(f)] or [middle]), _trusted=True)
        out = PriceModel()
        for key in held.prices.keys():
            out.add(key.exchange, key.symbol, key.interval, held.prices.candles(key, k_lo, k_hi),
                    held.prices.asset_of(key))
        for p in prices:
            out = out.merged(p) if len(p) else out
        for d in held.damaged:
            damaged.setdefault(d.path, d)
        return self._dataset(out, liqs, self._part((lo, hi), candle_s=60), damaged)

    def _days(self, start, end, lo, hi, liq_filter: dict) -> Dataset:
        damaged: dict = {}
        keep = lambda d: damaged.setdefault(d.path, d)  # noqa: E731
        d_lo, d_hi = lo.floor("D"), hi.ceil("D")
        parts = figures.days_between(self.store, d_lo, d_hi)
        edges = sorted({t.floor("D") for t in (start, end) if t != t.floor("D") and d_lo <= t.floor("D") < d_hi})
        rows = parts.rows
        if edges and rows.num_rows:  # the view's partial days are held as events: its figures are exact
            bucket = rows.column("bucket").cast(pa.int64()).to_numpy()
            drop = np.isin(bucket, [int(d.value // 1000) for d in edges])
            rows = rows.filter(pa.array(~drop))
        windows = [(d, d + DAY, None) for d in edges]
        windows += [w for w in parts.raw if not any(w[0] < d + DAY and d < w[1] for d in edges)]
        raw = self._raw_rows(windows, keep)
        liqs = _with_aggregates(rows, raw)
        prices, candle_s = self._prices(d_lo, d_hi, keep)
        top = self._top(start, end, rows, raw, liq_filter)
        part = self._part((d_lo, d_hi), resolution_s=86400, candle_s=candle_s,
                          built_for=(start, end, filter_key(liq_filter)), top_events=top)
        return self._dataset(prices, liqs, part, damaged)

    def _raw_rows(self, windows, keep) -> pa.Table:
        """Counted events of ``(start, end, exchanges or None)`` windows, each event once."""
        got = []
        for a, b, only in windows:
            t = self.store._counted(self.store._liq_read(a, b, exchanges=only, on_damage=keep))
            if t.num_rows:
                got.append(t.select(tables.LIQ_SCHEMA.names))
        if not got:
            return tables.LIQ_SCHEMA.empty_table()
        t = pa.concat_tables(got)
        return t if len(got) == 1 else t.group_by(t.column_names).aggregate([])  # windows may overlap

    def _top(self, start, end, rows: pa.Table, raw: pa.Table, liq_filter: dict) -> LiquidationModel:
        """The largest orders of the view, with its filters (:func:`figures.largest_events`)."""
        ex, assets, side = liq_filter.get("exchanges"), liq_filter.get("assets"), liq_filter.get("side")
        b = rows.column("bucket").cast(pa.int64()).to_numpy()
        inside = rows.filter(pa.array((b >= start.value // 1000) & (b < end.value // 1000)))
        events = tables.liq_frame(raw)
        events = figures._filter_rows(events[(events["ts"] >= start) & (events["ts"] < end)], ex, assets, side)
        top = figures.largest_events(self.store, inside, events, TOP_EVENTS, exchanges=ex, assets=assets, side=side)
        return LiquidationModel(top.drop(columns=["source"], errors="ignore"))

    def _prices(self, lo, hi, keep) -> tuple[PriceModel, int]:
        """Candles of ``[lo, hi)``: 1-minute ones for short spans, else candle rollups."""
        if hi - lo <= RAW_CANDLE_SPAN:
            return self.store._window_candles(lo, hi, None, keep), 60
        level = "1h" if hi - lo <= HOURLY_CANDLE_SPAN else "1d"
        with store_errors(str(self.store.location), "read"):
            frame = self.store.coarse_candles(level, lo, hi)
        return (PriceModel.from_long(frame) if len(frame) else PriceModel()), (3600 if level == "1h" else 86400)


def _reusable(held: Dataset | None, windows: StoreWindows, lo, hi) -> tuple | None:
    """The span of ``[lo, hi)`` whose events and 1-minute candles ``held`` (a part of the same store) has,
    or None when it has none of them."""
    p = held.part if held is not None else None
    if (p is None or p.windows is not windows or p.resolution_s != 0 or p.min_notional != 0 or p.candle_s != 60
            or hi - lo > RAW_CANDLE_SPAN):
        return None
    k_lo, k_hi = max(lo, p.loaded[0]), min(hi, p.loaded[1])
    return (k_lo, k_hi) if k_lo < k_hi else None


def _with_aggregates(rows: pa.Table, raw: pa.Table) -> LiquidationModel:
    """Aggregate rows (one per daily rollup row) and events in one time-sorted model."""
    n = rows.num_rows
    agg = pa.table({
        "ts": rows.column("bucket").cast(tables.TS), "exchange": rows.column("exchange"),
        "symbol": rows.column("symbol"), "asset": rows.column("asset"), "side": rows.column("side"),
        "price": pa.array(np.full(n, np.nan)), "qty": pa.array(np.full(n, np.nan)),
        "notional_usd": rows.column("notional_usd"), "source": rows.column("source"),
        COUNT: rows.column("count").cast(pa.int64()), AGGREGATE: pa.array(np.ones(n, bool)),
    }) if n else None
    ev = raw.select(EVENT_COLUMNS)
    ev = ev.append_column(COUNT, pa.array(np.ones(ev.num_rows, np.int64))).append_column(
        AGGREGATE, pa.array(np.zeros(ev.num_rows, bool)))
    both = pa.concat_tables([agg.cast(ev.schema), ev]) if agg is not None else ev
    both = both.sort_by([("ts", "ascending")])  # stable: liq_frame's own sort keeps this order
    frame = tables.liq_frame(both.select(EVENT_COLUMNS))
    frame[COUNT] = both.column(COUNT).to_numpy()
    frame[AGGREGATE] = both.column(AGGREGATE).to_numpy(zero_copy_only=False)
    return LiquidationModel(frame, _trusted=True)
