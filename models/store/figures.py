"""Exact figures for any window of a store without loading it: daily rollups for whole days, raw rows
for the rest.

A window shorter than :data:`RAW_SPAN` (or one filtered by order size) is read raw -- one day of raw
rows is small. A longer one adds the daily rollups (:mod:`.rollups`) of the whole days inside it to
the raw rows of its partial first and last days; a day whose rollup is stale, or that a
higher-precedence source covers only in part, is read raw as well. So a five-year headline reads a
few thousand rollup rows, and equals the sum of the raw rows to the cent (tests check both ways).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

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
    """Whole days inside ``[start, end)`` from rollups; partial days, stale partitions and mixed days raw."""
    d0, d1 = start.ceil("D"), end.floor("D")
    if d1 <= d0:
        return Parts(TABLES[ROLLUPS].schema.empty_table(), [(start, end, None)])
    raw: list = []
    if start < d0:
        raw.append((start, d0, None))
    if d1 < end:
        raw.append((d1, end, None))
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
    top = _largest(store, roll, raw, largest, exchanges, assets, side)
    return {
        "source": label, "start": format_time(start), "end": format_time(end),
        "total_usd": total, "long_usd": long_usd, "short_usd": short_usd,
        "short_share": (short_usd / total) if total else 0.0, "count": count,
        "by_exchange": ranked(exs), "by_asset": ranked(ast),
        "largest": [{"ts": format_time(r.ts), "exchange": str(r.exchange), "symbol": str(r.symbol),
                     "side": str(r.side), "price": float(r.price), "qty": float(r.qty),
                     "notional_usd": float(r.notional_usd)} for r in top.itertuples(index=False)],
    }


def _largest(store, roll: pd.DataFrame, raw: pd.DataFrame, n: int, exchanges, assets, side) -> pd.DataFrame:
    """The ``n`` largest events. They lie in the ``n`` day buckets with the largest maxima (a bucket holding
    none of them has a smaller maximum than all of them), and by the same argument in the ``n`` hour buckets
    with the largest maxima within those days: only those hours of those symbols are read raw."""
    cand = raw
    if n > 0 and len(roll):
        best = roll.sort_values("max_usd", ascending=False, kind="stable").head(n)
        hours = _best_hours(store, best, n)
        windows = [(b, b + pd.Timedelta(hours=1), frozenset([e]), frozenset([y])) for e, y, b in hours]
        more = _filter_rows(_raw_frame(store, windows, exchanges), exchanges, assets, side)
        cand = pd.concat([raw, more], ignore_index=True) if len(raw) else more
    if not len(cand) or n <= 0:
        return cand.iloc[:0]
    return cand.sort_values(["notional_usd", "ts"], ascending=[False, True], kind="stable").head(n)


def _best_hours(store, days: pd.DataFrame, n: int) -> list[tuple[str, str, pd.Timestamp]]:
    """(exchange, symbol, hour) of the ``n`` hourly rollup rows with the largest maxima inside the day rows
    ``days`` (same exchange, symbol, side, source and rollup computation)."""
    keys = ["exchange", "symbol", "side", "source", "liq_files", "writer"]
    days = days.assign(day=pd.to_datetime(days["bucket"], utc=True))
    lo, hi = days["day"].min(), days["day"].max() + DAY
    data = delta_io.prune(store._files(ROLLUPS), start_us=int(lo.value // 1000), end_us=int(hi.value // 1000),
                          where={"level": ["1h"], "exchange": set(days["exchange"]), "month": set(days["month"])})
    rows = delta_io.read(store.location, TABLES[ROLLUPS], data, row_filter=delta_io.window_filter(
        int(lo.value // 1000), int(hi.value // 1000), "bucket"),
        columns=["exchange", "month", "bucket", "symbol", "side", "source", "max_usd", "liq_files", "writer"])
    hours = rows.to_pandas()
    if not len(hours):
        return []
    hours["day"] = pd.to_datetime(hours["bucket"], utc=True).dt.floor("D")
    inside = hours.merge(days[keys + ["day"]].drop_duplicates(), on=keys + ["day"], how="inner")
    top = inside.sort_values("max_usd", ascending=False, kind="stable").head(n)
    return sorted({(str(e), str(y), pd.Timestamp(b)) for e, y, b in zip(top["exchange"], top["symbol"], top["bucket"])})


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
