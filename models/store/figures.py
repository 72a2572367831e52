"""Exact figures for any window of a store without loading it: daily rollups for whole days, raw rows
for the rest.

A window shorter than :data:`RAW_SPAN` (or one filtered by order size) is read raw -- one day of raw
rows is small. A longer one adds the daily rollups (:mod:`.rollups`) of the whole days inside it to
the raw rows of its partial first and last days; a day whose rollup is stale, or that a
higher-precedence source covers only in part, is read raw as well. So a five-year headline reads a
few thousand rollup rows, and equals the sum of the raw rows to the cent (tests check both ways).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..dataset import Dataset, busiest_day
from ..prices import PriceModel
from ..timeutil import format_time
from . import delta_io, overview_cache, provenance, rollups, tables
from .tables import LIQ, ROLLUPS, TABLES

RAW_SPAN = pd.Timedelta(days=2)
DAY = pd.Timedelta(days=1)


@dataclass
class Parts:
    """A window split into rollup rows (counted wholly) and raw windows to read."""

    rows: pa.Table
    raw: list[tuple[pd.Timestamp, pd.Timestamp, frozenset[str] | None]] = field(default_factory=list)


def day_rollups(store, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
                ) -> tuple[pa.Table, set[tuple[str, str]]]:
    """Valid daily rollup rows (buckets in ``[start, end)``) and the (exchange, month) partitions without
    valid rollups. All of history is read once per version of the two tables (the overview asks for it
    several times: assets, busiest day, daily totals)."""
    if start is None and end is None:
        liq_version = store._snapshots.version(LIQ)
        return store._snapshots.derived(ROLLUPS, f"days@{liq_version}", lambda _data: _day_rollups(store, None, None))
    return _day_rollups(store, start, end)


def _day_rollups(store, start, end):
    loc = store.location
    raw_files = store._files(LIQ)
    fps: dict[tuple[str, str], str] = {}
    by_part: dict[tuple[str, str], list] = {}
    for f in raw_files:
        by_part.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    for k, v in by_part.items():
        fps[k] = rollups.fingerprint(v)
    s = None if start is None else int(start.value // 1000)
    e = None if end is None else int(end.value // 1000)
    data = delta_io.prune(store._files(ROLLUPS), start_us=s, end_us=e, where={"level": ["1d"]})
    flt = delta_io.window_filter(s, e, "bucket")
    cols = ["exchange", "month", "bucket", "symbol", "asset", "side", "source", "count", "notional_usd", "max_usd",
            "liq_files", "writer"]
    rows = delta_io.read(loc, TABLES[ROLLUPS], data, columns=cols, row_filter=flt)
    if s is not None or e is not None:  # only partitions the window touches matter
        lo = None if start is None else start.strftime("%Y-%m")
        hi = None if end is None else (end - pd.Timedelta(1, "us")).strftime("%Y-%m")
        fps = {k: v for k, v in fps.items() if (lo is None or k[1] >= lo) and (hi is None or k[1] <= hi)}
    good, missing = rollups.valid_rows(rows, fps)
    return good, missing


def split(store, start: pd.Timestamp, end: pd.Timestamp) -> Parts:
    """Whole days inside ``[start, end)`` from rollups; partial days, stale partitions and mixed days raw.
    Cut from :func:`all_days` (one split of all history per table versions)."""
    d0, d1 = start.ceil("D"), end.floor("D")
    if d1 <= d0:
        return Parts(TABLES[ROLLUPS].schema.empty_table(), [(start, end, None)])
    raw: list = []
    if start < d0:
        raw.append((start, d0, None))
    if d1 < end:
        raw.append((d1, end, None))
    return days_between(store, d0, d1, raw)


def days_between(store, d0: pd.Timestamp, d1: pd.Timestamp, raw: list | None = None) -> Parts:
    """The daily rows of whole days ``[d0, d1)`` and the raw windows inside them (plus ``raw``)."""
    whole = all_days(store)
    b = whole.rows.column("bucket").cast(pa.int64()).to_numpy()
    keep = (b >= d0.value // 1000) & (b < d1.value // 1000)
    raw = list(raw or []) + [(max(a, d0), min(e, d1), only) for a, e, only in whole.raw if a < d1 and d0 < e]
    return Parts(whole.rows.filter(pa.array(keep)), raw)


_ALL_DAYS: dict[str, Parts] = {}
LIQ_COLUMNS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd", "source"]
DAY_COLUMNS = ["bucket", "exchange", "month", "symbol", "asset", "side", "source", "count", "notional_usd",
               "max_usd", "liq_files"]


def all_days(store) -> Parts:
    """All history as counted daily rollup rows (text columns dictionary-encoded: five years take a few MB)
    and the raw windows the rollups cannot answer (stale partitions, days a higher-precedence source
    covers only in part). Kept per table versions in memory and on disk (:mod:`.overview_cache`)."""
    key = overview_cache.key(store)
    if key not in _ALL_DAYS:
        table, extra = overview_cache.cached(store, "days", lambda: _split_all(store))
        raw = [(pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC"), None if only is None else frozenset(only))
               for a, b, only in extra["raw"]]
        _ALL_DAYS.clear()  # one store's history at a time is what a process needs
        _ALL_DAYS[key] = Parts(table, raw)
    return _ALL_DAYS[key]


def _split_all(store) -> tuple[pa.Table, dict]:
    whole = _split_uncached(store, pd.Timestamp("1970-01-01", tz="UTC"), pd.Timestamp("2262-01-01", tz="UTC"))
    raw = [(a.value, b.value, None if only is None else sorted(only)) for a, b, only in whole.raw]
    rows = whole.rows.select(DAY_COLUMNS)
    cols = {}
    for name in rows.column_names:
        c = rows.column(name).combine_chunks() if rows.num_rows else rows.column(name)
        if pa.types.is_string(c.type) or pa.types.is_large_string(c.type) or pa.types.is_string_view(c.type):
            c = c.cast(pa.string()).dictionary_encode()
        cols[name] = c
    return pa.table(cols), {"raw": raw}


def _split_uncached(store, d0: pd.Timestamp, d1: pd.Timestamp) -> Parts:
    """Whole days ``[d0, d1)`` from the daily rollups, with the windows they cannot answer."""
    raw: list = []
    rows, missing = day_rollups(store, d0, d1)
    for exchange, month in sorted(missing):
        m0 = pd.Timestamp(month + "-01", tz="UTC")
        a, b = max(m0, d0), min(m0 + pd.offsets.MonthBegin(1), d1)
        if a < b:
            raw.append((a, b, frozenset([exchange])))
    if rows.num_rows:
        cov = store.coverage()
        arrays = {"exchange": np.asarray(rows.column("exchange").to_pylist(), dtype=object),
                  "symbol": np.asarray(rows.column("symbol").to_pylist(), dtype=object),
                  "source": np.asarray(rows.column("source").to_pylist(), dtype=object),
                  "bucket": rows.column("bucket").cast(pa.int64()).to_numpy()}
        counted, mixed = provenance.bucket_status(arrays, rollups.DAY_US, cov, store.precedence)
        if mixed.any():
            days = {(e, int(b)) for e, b in zip(arrays["exchange"][mixed], arrays["bucket"][mixed])}
            drop = np.zeros(rows.num_rows, dtype=bool)
            for e, b in days:
                t = pd.Timestamp(b * 1000, tz="UTC")
                raw.append((t, t + DAY, frozenset([e])))
                drop |= (arrays["exchange"] == e) & (arrays["bucket"] == b)
            counted &= ~drop
        rows = rows.filter(pa.array(counted))
    return Parts(rows, raw)


def _raw_frame(store, windows, exchanges) -> pd.DataFrame:
    """Counted raw rows of ``windows``: ``(start, end, only these exchanges or None[, only these symbols])``."""
    frames = []
    for a, b, only, *sym in windows:
        ex = only if exchanges is None else (set(exchanges) if only is None else set(exchanges) & set(only))
        if ex is not None and not ex:
            continue
        t = store._counted(store._liq_read(a, b, exchanges=ex, symbols=sym[0] if sym else None))
        if t.num_rows:
            frames.append(tables.liq_frame(t))
    if not frames:
        return tables.liq_frame(None)
    return pd.concat([f.astype({c: object for c in ("exchange", "symbol", "asset", "source")}) for f in frames],
                     ignore_index=True)


def _filter_rows(rows: pd.DataFrame, exchanges, assets, side) -> pd.DataFrame:
    keep = np.ones(len(rows), dtype=bool)
    if exchanges is not None:
        keep &= rows["exchange"].astype(str).isin(list(exchanges)).to_numpy()
    if assets is not None:
        keep &= rows["asset"].astype(str).isin(list(assets)).to_numpy()
    if side in ("long", "short"):  # None or "both": either side
        keep &= (rows["side"].astype(str) == side).to_numpy()
    return rows[keep]


def summary(store, start: pd.Timestamp, end: pd.Timestamp, *, exchanges=None, assets=None, side=None,
            min_notional: float = 0.0, largest: int = 10, label: str | None = None) -> dict:
    """The figures of ``Dataset.summary`` for a store window, exact, reading rollups where it can."""
    label = label or f"Local store: {store.location}"
    if end - start <= RAW_SPAN or min_notional > 0:
        # raw rows only (figures need no candles), read strictly: a damaged file the window needs is a
        # one-line StoreDamagedError, never figures without its rows
        ds = Dataset(PriceModel(), store.liquidations(start, end, exchanges=exchanges))
        out = ds.summary(start, end, exchanges=exchanges, assets=assets, side=side, min_notional=min_notional,
                         largest=largest)
        out["source"] = label
        return out
    parts = split(store, start, end)
    roll = parts.rows.to_pandas() if parts.rows.num_rows else pd.DataFrame(
        columns=["exchange", "asset", "side", "count", "notional_usd", "max_usd", "bucket"])
    roll = _filter_rows(roll, exchanges, assets, side)
    raw = _filter_rows(_raw_frame(store, parts.raw, exchanges), exchanges, assets, side)
    usd = np.concatenate([roll["notional_usd"].to_numpy(float), raw["notional_usd"].to_numpy(float)])
    sides = np.concatenate([roll["side"].astype(str).to_numpy(), raw["side"].astype(str).to_numpy()])
    exs = np.concatenate([roll["exchange"].astype(str).to_numpy(), raw["exchange"].astype(str).to_numpy()])
    ast = np.concatenate([roll["asset"].astype(str).to_numpy(), raw["asset"].astype(str).to_numpy()])
    count = int(roll["count"].sum()) + len(raw)
    total = float(usd.sum())
    long_usd = float(usd[sides == "long"].sum())
    short_usd = float(usd[sides == "short"].sum())

    def ranked(keys):
        s = pd.Series(usd).groupby(keys).sum()
        s = s[s > 0].sort_values(ascending=False, kind="stable")
        return {str(k): float(v) for k, v in s.items()}
    top = largest_events(store, parts.rows, raw, largest, exchanges=exchanges, assets=assets, side=side)
    return {
        "source": label, "start": format_time(start), "end": format_time(end),
        "total_usd": total, "long_usd": long_usd, "short_usd": short_usd,
        "short_share": (short_usd / total) if total else 0.0, "count": count,
        "by_exchange": ranked(exs), "by_asset": ranked(ast),
        "largest": [{"ts": format_time(r.ts), "exchange": str(r.exchange), "symbol": str(r.symbol),
                     "side": str(r.side), "price": float(r.price), "qty": float(r.qty),
                     "notional_usd": float(r.notional_usd)} for r in top.itertuples(index=False)],
    }


def largest_events(store, rows: pa.Table, events: pd.DataFrame, n: int, *, exchanges=None, assets=None,
                   side=None) -> pd.DataFrame:
    """The ``n`` largest events of a window split into daily rollup ``rows`` (whole days) and ``events``
    (raw rows of the rest, already filtered), with the filters. They lie in the ``n`` day rows with the
    largest maxima (a day holding none of them has a smaller maximum than all of them), and by the same
    argument in the ``n`` best hours of those days: only those hours are read, one read per
    (exchange, month) for the hourly rollups and one for the raw rows."""
    side = None if side == "both" else side
    frames = [events]
    if n > 0 and rows.num_rows:
        mask = np.ones(rows.num_rows, dtype=bool)
        for col, wanted in (("exchange", exchanges), ("asset", assets), ("side", side)):
            if wanted is not None:
                mask &= _isin(rows.column(col), [wanted] if isinstance(wanted, str) else list(wanted))
        inside = rows.filter(pa.array(mask))
        if inside.num_rows > n:
            inside = inside.take(pc.select_k_unstable(inside, n, [("max_usd", "descending")]))
        if inside.num_rows:
            days = pa.table({c: (inside.column(c).cast(pa.string()) if pa.types.is_dictionary(inside.column(c).type)
                                 else inside.column(c)) for c in inside.column_names}).to_pylist()
            more = _hours_raw(store, _best_hours(store, days, n))
            keep = np.ones(more.num_rows, dtype=bool)  # filters and the n largest in Arrow: a frame of n rows
            for col, wanted in (("exchange", exchanges), ("asset", assets), ("side", side)):
                if wanted is not None and more.num_rows:
                    keep &= _isin(more.column(col), [wanted] if isinstance(wanted, str) else list(wanted))
            more = more.filter(pa.array(keep))
            if more.num_rows > n:
                more = more.take(pc.select_k_unstable(more, n, [("notional_usd", "descending")]))
            frames.append(tables.liq_frame(more))
    frames = [f for f in frames if len(f)]
    if not frames or n <= 0:
        return events.iloc[:0]
    cand = pd.concat([f.astype({c: object for c in ("exchange", "symbol", "asset", "source") if c in f.columns})
                      for f in frames], ignore_index=True)
    return cand.sort_values(["notional_usd", "ts"], ascending=[False, True], kind="stable").head(n)


def _isin(column, values: list[str]) -> np.ndarray:
    """``column`` (dictionary or plain text) is one of ``values``, per row."""
    c = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(c.type):
        hit = np.isin(np.asarray(c.dictionary.to_pylist(), dtype=object), values)
        idx = c.indices.to_numpy(zero_copy_only=False)
        return hit[idx] if len(idx) else np.zeros(0, bool)
    return pc.is_in(c.cast(pa.string()), pa.array(values, pa.string())).to_numpy(zero_copy_only=False)


def _best_hours(store, days: list[dict], n: int) -> list[tuple[str, str, str, int]]:
    """(exchange, month, symbol, hour µs) of the ``n`` hourly rollup rows with the largest maxima inside
    ``days`` (day rollup rows: same symbol, side, source and rollup computation)."""
    wanted = {(d["exchange"], d["symbol"], d["side"], d["source"], d["liq_files"],
               int(pd.Timestamp(d["bucket"]).value // 1000)) for d in days}
    groups: dict[tuple[str, str], list[dict]] = {}
    for d in days:
        groups.setdefault((d["exchange"], d["month"]), []).append(d)
    found = []
    for (exchange, month), group in groups.items():
        files = delta_io.prune(store._files(ROLLUPS), where={"level": ["1h"], "exchange": [exchange], "month": [month]})
        flt = None
        for s0 in sorted({int(pd.Timestamp(d["bucket"]).value // 1000) for d in group}):
            cond = delta_io.window_filter(s0, s0 + rollups.DAY_US, "bucket")
            flt = cond if flt is None else flt | cond
        flt = flt & pc.field("symbol").isin(sorted({d["symbol"] for d in group}))
        t = delta_io.read(store.location, TABLES[ROLLUPS], files, row_filter=flt,
                          columns=["bucket", "symbol", "side", "source", "max_usd", "liq_files"])
        for r in t.to_pylist():
            h = int(pd.Timestamp(r["bucket"]).value // 1000)
            if (exchange, r["symbol"], r["side"], r["source"], r["liq_files"], h - h % rollups.DAY_US) in wanted:
                found.append((r["max_usd"], exchange, month, r["symbol"], h))
    found.sort(key=lambda x: -x[0])
    return sorted({(e, m, y, h) for _v, e, m, y, h in found[:n]})


def _hours_raw(store, hours: list[tuple[str, str, str, int]]) -> pa.Table:
    """Counted events of the given (exchange, month, symbol, hour) cells: one read per (exchange, month)."""
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for e, m, y, h in hours:
        groups.setdefault((e, m), []).append((y, h))

    def read(item) -> pa.Table:
        (exchange, month), cells = item
        flt = None
        for y, h in cells:
            cond = delta_io.window_filter(h, h + rollups.HOUR_US, also=pc.field("symbol") == y)
            flt = cond if flt is None else flt | cond
        lo = pd.Timestamp(min(h for _y, h in cells) * 1000, tz="UTC")
        hi = pd.Timestamp((max(h for _y, h in cells) + rollups.HOUR_US) * 1000, tz="UTC")
        return store._counted(store._liq_read(lo, hi, exchanges=[exchange], months=[month], extra_filter=flt))
    with ThreadPoolExecutor(max_workers=4) as pool:  # file reads and decoding release the GIL
        got = [t.select(LIQ_COLUMNS) for t in pool.map(read, groups.items()) if t.num_rows]
    return pa.concat_tables(got) if got else TABLES[LIQ].schema.empty_table().select(LIQ_COLUMNS)


def daily_table(store) -> pd.DataFrame:
    """Liquidated USD (``usd``) and events (``count``) per UTC day over all history (each event counted
    once), indexed by day, from the daily rollups (raw rows only where they cannot answer)."""
    parts = split(store, pd.Timestamp("1970-01-01", tz="UTC"), pd.Timestamp("2262-01-01", tz="UTC"))
    frames = []
    if parts.rows.num_rows:
        r = parts.rows.select(["bucket", "notional_usd", "count"]).to_pandas()
        frames.append(r.rename(columns={"bucket": "day"}))
    raw = _raw_frame(store, parts.raw, None)
    if len(raw):
        frames.append(pd.DataFrame({"day": raw["ts"].dt.floor("D"), "notional_usd": raw["notional_usd"],
                                    "count": np.ones(len(raw), np.int64)}))
    if not frames:
        return pd.DataFrame({"usd": pd.Series(dtype=float), "count": pd.Series(dtype=np.int64)},
                            index=pd.DatetimeIndex([], tz="UTC", name="day"))
    f = pd.concat(frames, ignore_index=True)
    f["day"] = pd.to_datetime(f["day"], utc=True).dt.as_unit("ns")
    g = f.groupby("day").agg(usd=("notional_usd", "sum"), count=("count", "sum")).sort_index()
    g["count"] = g["count"].astype(np.int64)
    return g


def daily_totals(store) -> pd.Series:
    """Liquidated USD per UTC day over all history (counted once per event), from the daily rollups."""
    return daily_table(store)["usd"].rename("notional_usd")


def liquidation_assets(store) -> list[str]:
    """Assets with stored liquidations, from the daily rollups (raw rows of partitions without them)."""
    rows, missing = day_rollups(store)
    names = set(rows.column("asset").unique().to_pylist()) if rows.num_rows else set()
    for exchange, month in missing:
        t = store._liq_read(None, None, exchanges=[exchange], months=[month], columns=["asset"])
        names |= set(t.column("asset").unique().to_pylist())
    return sorted(names)


class _Prices:
    """What :func:`~liqscope.models.view.check_view` asks of a dataset's prices."""

    def __init__(self, series: list[tuple[str, str, str, str]]):
        self.series = series
        self.assets = sorted({a for *_x, a in series})

    def exchanges_for(self, asset: str) -> list[str]:
        return sorted({e for e, _s, _i, a in self.series if a == asset})


class Overview:
    """The facts of a whole store a command needs before it picks a window (assets, exchanges, time range,
    busiest day), from the table logs and daily rollups -- never the raw rows -- and exact figures for any
    window (:func:`summary`). Duck-types the parts of :class:`~liqscope.models.dataset.Dataset` that
    :func:`~liqscope.models.view.check_view` and ``liqscope summary`` read."""

    is_demo = False
    damaged: list = []

    def __init__(self, store):
        self.store = store
        self.label = f"Local store: {store.location}"
        self.notes = store.notes
        self._daily: pd.DataFrame | None = None
        self._liq_assets: list[str] = []

    @cached_property
    def prices(self) -> _Prices:
        """Candle series, read only when a view asks which exchanges price an asset (summaries do not)."""
        return _Prices(self.store.candle_series())

    def _facts(self) -> tuple[pd.DataFrame, list[str]]:
        """USD and events per day, and the assets with liquidations: from the on-disk cache of the same
        table versions (:mod:`.overview_cache`), else computed from the daily rollups; read once."""
        if self._daily is None:
            self._daily, self._liq_assets = overview_cache.facts(
                self.store, lambda: (daily_table(self.store), liquidation_assets(self.store)))
        return self._daily, self._liq_assets

    def daily_table(self) -> pd.DataFrame:
        """USD and events per day (:func:`daily_table`)."""
        return self._facts()[0]

    def daily_totals(self) -> pd.Series:
        return self.daily_table()["usd"]

    @property
    def exchanges(self) -> list[str]:
        liq = {f.partition["exchange"] for f in self.store._files(LIQ)}
        return sorted(liq | {e for e, *_r in self.prices.series})

    @cached_property
    def assets(self) -> list[str]:
        return sorted(set(self._facts()[1]) | set(self.prices.assets))

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        lo, hi = [], []
        for kind in (LIQ, tables.CANDLES):
            for f in self.store._files(kind):
                if f.ts_min is not None:
                    lo.append(f.ts_min)
                    hi.append(f.ts_max)
        if not lo:
            return None
        return pd.Timestamp(min(lo) * 1000, tz="UTC"), pd.Timestamp(max(hi) * 1000, tz="UTC")

    def busiest_day(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        return busiest_day(self.daily_totals(), self.time_range)

    def damaged_in(self, start, end, **_kw) -> list:
        return []

    def summary(self, start, end, **kw) -> dict:
        return summary(self.store, start, end, label=self.label, **kw)
