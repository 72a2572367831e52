"""The store: the user's liquidations, candles, recorder gaps, coverage and rollups as Delta Lake tables.

``<store>/liquidations``, ``candles``, ``gaps``, ``coverage`` and ``rollups`` are plain Delta tables
(delta-rs), so Spark, Trino, DuckDB or Polars read them without Liqscope; ``store.json`` records the
schema version. The store is a local folder or an ``s3://bucket/prefix``. Every write is a Delta
commit: atomic, isolated from concurrent writers (optimistic concurrency), and a reader always sees a
committed snapshot. Reads take a time window and read only the files it needs (partition and
file-statistics pruning); overview figures come from rollups (:mod:`.rollups`, :mod:`.figures`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Sequence, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import paths
from ..dataset import Dataset
from ..liquidations import LiquidationModel
from ..prices import PriceModel
from ..progress import Cancelled, Task
from ..schema import SchemaError, check_liquidation_values, normalize_candles, normalize_liquidations, to_utc
from ..timeutil import TimeParseError, format_duration, parse_duration, parse_time
from ..version import app_version
from . import candle_rollups, delta_io, layout, provenance, rollups, tables
from .errors import (DamagedFile, StoreDamagedError, StoreError, StoreIOError, StoreVersionError, first_line,
                     store_errors)
from .location import Location
from .tables import CANDLE_ROLLUPS, CANDLES, COVERAGE, GAPS, LIQ, ROLLUPS, SERIES, TABLES

SCHEMA_VERSION = 2
FORMAT = "liqscope-store"
INFO_COLUMNS = ["kind", "exchange", "symbol", "interval", "rows", "first", "last"]
MAX_INTERVAL_S = 366 * 86400  # a candle interval longer than a year is a typo, not a market's
UNKNOWN_SOURCE = "unknown"

__all__ = ["SCHEMA_VERSION", "AppendResult", "Batch", "Cancelled", "DamagedFile", "ReplaceResult", "Scope",
           "Store", "StoreDamagedError", "StoreError", "StoreIOError", "StoreVersionError", "open_store"]


@dataclass(frozen=True)
class AppendResult:
    rows: int  # rows offered
    new: int   # rows the store did not hold before


@dataclass(frozen=True)
class ReplaceResult:
    """What a replacement changed; rows identical before and after count in neither."""

    removed: int
    added: int


SymbolScope = Collection[str] | Callable[[str, str], bool] | None
TimeSpan = tuple["str | pd.Timestamp", "str | pd.Timestamp"]


def _time(value) -> pd.Timestamp:
    """A UTC time the store can hold, else a one-line SchemaError."""
    try:
        return parse_time(value).as_unit("ns")
    except TimeParseError as exc:
        raise SchemaError(str(exc)) from None
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise SchemaError(f"time {str(value)[:40]!r} is outside the range Liqscope can hold "
                          f"({pd.Timestamp.min.isoformat()[:10]} to {pd.Timestamp.max.isoformat()[:10]})") from None


def _us(t: pd.Timestamp | None) -> int | None:
    return None if t is None else int(t.as_unit("ns").value) // 1000  # .value is always nanoseconds


def _ts_sql(us_value: int) -> str:
    return "'" + pd.Timestamp(us_value, unit="us", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


class Scope:
    """The stored liquidations a replacement covers: exchanges x time spans x symbols (x sources).

    ``spans`` are ``[start, end)`` ranges (merged here). ``symbols`` is None (all), a collection, or
    ``keep(symbol, asset) -> bool`` (the live recorder filters by asset too). ``sources`` (None: all)
    limits it to rows of those sources: a journal replay replaces only what the recorder stored.
    """

    def __init__(self, exchanges: str | Iterable[str], spans: Sequence[TimeSpan], symbols: SymbolScope = None,
                 sources: Iterable[str] | None = None):
        names = [exchanges] if isinstance(exchanges, str) else list(exchanges or [])
        self.exchanges = frozenset(str(e).lower() for e in names)
        if not self.exchanges:
            raise SchemaError("a replacement needs at least one exchange")
        pairs = []
        for start, end in spans:
            a, b = _time(start), _time(end)
            if b <= a:
                raise SchemaError(f"a replaced range must end after it starts ({a.isoformat()} to {b.isoformat()})")
            pairs.append((_us(a), _us(b)))
        if not pairs:
            raise SchemaError("a replacement needs a time range")
        self.starts, self.ends = provenance.merge_spans(np.array([a for a, _ in pairs], dtype=np.int64),
                                                        np.array([b for _, b in pairs], dtype=np.int64))
        if symbols is None or callable(symbols):
            self.symbols = symbols
        else:
            self.symbols = frozenset([symbols] if isinstance(symbols, str) else (str(x) for x in symbols))
        self.sources = None if sources is None else frozenset(sources)

    @property
    def months(self) -> list[str]:
        first = pd.Timestamp(int(self.starts[0]), unit="us", tz="UTC")
        last = pd.Timestamp(int(self.ends[-1]) - 1, unit="us", tz="UTC")
        return [str(p) for p in pd.period_range(first.tz_localize(None), last.tz_localize(None), freq="M")]

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` (ts, exchange, symbol, asset[, source]) inside this scope."""
        if not len(frame):
            return np.zeros(0, dtype=bool)
        ts = tables.us(frame["ts"])
        i = np.searchsorted(self.starts, ts, side="right") - 1
        out = (i >= 0) & (ts < self.ends[np.maximum(i, 0)])
        out &= _per_value(frame["exchange"], lambda e: str(e).lower() in self.exchanges)
        if isinstance(self.symbols, frozenset):
            out &= _per_value(frame["symbol"], lambda s: str(s) in self.symbols)
        elif self.symbols is not None:
            keep = self.symbols
            pairs = pd.DataFrame({"s": np.asarray(frame["symbol"], dtype=object),
                                  "a": np.asarray(frame["asset"], dtype=object)})
            ok = np.zeros(len(frame), dtype=bool)
            for (sym, asset), idx in pairs.groupby(["s", "a"], sort=False).indices.items():
                ok[idx] = bool(keep(str(sym), str(asset)))
            out &= ok
        if self.sources is not None and "source" in frame.columns:
            out &= _per_value(frame["source"], lambda s: str(s) in self.sources)
        return out

    def row_filter(self):
        """A pyarrow filter for the scope's exchanges, spans, listed symbols and sources."""
        ts = pc.field("ts")
        span = None
        for a, b in zip(self.starts.tolist(), self.ends.tolist()):
            cond = (ts >= pa.scalar(a, tables.TS)) & (ts < pa.scalar(b, tables.TS))
            span = cond if span is None else span | cond
        flt = span
        if isinstance(self.symbols, frozenset):
            flt &= pc.field("symbol").isin(sorted(self.symbols))
        if self.sources is not None:
            flt &= pc.field("source").isin(sorted(self.sources))
        return flt

    def partition_sql(self, alias: str = "t") -> str:
        lit = delta_io.sql_literal
        return (f"{alias}.exchange IN ({', '.join(lit(e) for e in sorted(self.exchanges))}) AND "
                f"{alias}.month IN ({', '.join(lit(m) for m in self.months)})")

    def sql(self, symbols: Collection[str] | None, alias: str = "t") -> str:
        """The scope as a delta-rs SQL predicate (``symbols``: the callable form resolved to names)."""
        lit = delta_io.sql_literal
        terms = [self.partition_sql(alias)]
        spans = " OR ".join(f"({alias}.ts >= {_ts_sql(a)} AND {alias}.ts < {_ts_sql(b)})"
                            for a, b in zip(self.starts.tolist(), self.ends.tolist()))
        terms.append(f"({spans})")
        if symbols is not None:
            terms.append(f"{alias}.symbol IN ({', '.join(lit(s) for s in sorted(symbols)) or lit('')})")
        if self.sources is not None:
            terms.append(f"{alias}.source IN ({', '.join(lit(s) for s in sorted(self.sources))})")
        return " AND ".join(terms)


def _per_value(values, fn: Callable[[object], bool]) -> np.ndarray:
    cat = values.array if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype) else pd.Categorical(values)
    lookup = np.array([bool(fn(c)) for c in cat.categories] + [False], dtype=bool)
    return lookup[np.asarray(cat.codes)]


def _spans(start, end, spans: Sequence[TimeSpan] | None) -> list[TimeSpan]:
    if spans is not None:
        if start is not None or end is not None:
            raise SchemaError("give either start and end or spans, not both")
        return list(spans)
    if start is None or end is None:
        raise SchemaError("a replacement needs start and end (or spans)")
    return [(start, end)]


def _norm_interval(interval: str) -> str:
    try:
        return format_duration(parse_duration(str(interval)))
    except TimeParseError as exc:
        raise SchemaError(str(exc)) from None


def _check_name(what: str, value: object, *, slash: bool = False) -> None:
    problem = layout.name_problem(what, value, slash=slash)
    if problem:
        raise StoreError(problem)


def _check_frame_names(frame: pd.DataFrame) -> None:
    for col in ("exchange", "symbol"):
        for value in pd.unique(frame[col]) if len(frame) else ():
            _check_name(col, value, slash=col == "symbol")


def _sources(frame: pd.DataFrame, source: str | None) -> np.ndarray:
    """Per-row source: ``source`` (``{exchange}`` filled in per row), else the frame's column."""
    if source is None:
        if "source" in frame.columns:
            return np.asarray(frame["source"].astype(str), dtype=object)
        source = UNKNOWN_SOURCE
    if "{exchange}" in source:
        ex = np.asarray(frame["exchange"].astype(str), dtype=object)
        return np.array([source.format(exchange=e) for e in ex], dtype=object)
    return np.full(len(frame), source, dtype=object)


@dataclass
class _Item:
    kind: str
    table: pa.Table
    scope: Scope | None = None
    offered: int = 0
    coverage: pa.Table | None = None


class Batch:
    """Writes committed by :meth:`Store.commit`. Each item is one atomic Delta commit, applied in order;
    readers never see half an item. (Items of different tables are separate commits.)"""

    def __init__(self) -> None:
        self.items: list[_Item] = []

    def __len__(self) -> int:
        return len(self.items)

    @property
    def scopes(self) -> dict[int, Scope]:
        return {i: it.scope for i, it in enumerate(self.items) if it.scope is not None}

    def _liq(self, df: pd.DataFrame, trusted: bool, source: str | None) -> tuple[pd.DataFrame, pa.Table]:
        if trusted:
            check_liquidation_values(df)
            frame = df
        else:
            src_col = df["source"] if source is None and "source" in df.columns else None
            frame = normalize_liquidations(df)
            if src_col is not None:
                frame["source"] = np.asarray(src_col, dtype=object)[np.argsort(
                    tables.us(df["ts"]), kind="stable")] if len(df) else src_col.to_numpy()
        _check_frame_names(frame)
        src = _sources(frame, source)
        for name in set(src.tolist()):
            _check_name("source", name, slash=True)
        return frame, tables.liq_table(frame, src)

    def add_liquidations(self, df: pd.DataFrame, *, trusted: bool = False, source: str | None = None,
                         coverage_span: tuple | None = None) -> int:
        """Queue liquidations of ``source`` (``"{exchange}-ws"`` style templates allowed; None: the frame's
        ``source`` column, else ``unknown``). Rows the store holds from the same source are skipped.
        ``coverage_span`` ``(start, end)``: the time the source covers, when it says more than its first and
        last row (a Tardis file covers its whole day)."""
        frame, table = self._liq(df, trusted, source)
        self.items.append(_Item(LIQ, table, offered=len(frame), coverage=_coverage(table, coverage_span)))
        return len(self.items) - 1

    def replace_liquidations(self, df: pd.DataFrame, *, exchanges: str | Iterable[str], start=None, end=None,
                             symbols: SymbolScope = None, spans: Sequence[TimeSpan] | None = None,
                             trusted: bool = False, source: str | None = None,
                             sources: Iterable[str] | None = None) -> int:
        """Queue a replacement: stored liquidations of ``exchanges`` (and ``symbols``, and ``sources``) with
        ``start <= ts < end`` (or inside ``spans``) are removed and ``df`` takes their place, in one
        commit. Every row of ``df`` must lie inside that scope, so replaying the same frame is a no-op."""
        scope = Scope(exchanges, _spans(start, end, spans), symbols, sources)
        frame, table = self._liq(df, trusted, source)
        outside = ~scope.mask(frame.assign(source=_sources(frame, source)) if scope.sources is not None else frame)
        if outside.any():
            row = frame[outside].iloc[0]
            raise SchemaError(f"{int(outside.sum())} replacement rows lie outside the replaced exchanges, range or "
                              f"symbols (first: {row['ts'].isoformat()} {row['exchange']} {row['symbol']})")
        self.items.append(_Item(LIQ, table, scope=scope, offered=len(frame), coverage=_coverage(table)))
        return len(self.items) - 1

    def add_candles(self, df: pd.DataFrame, *, exchange: str, symbol: str, interval: str, asset: str) -> int:
        _check_name("exchange", str(exchange).lower())
        _check_name("symbol", symbol, slash=True)
        iv = _norm_interval(interval)
        if parse_duration(iv) > MAX_INTERVAL_S:
            shown = str(interval) if len(str(interval)) <= 40 else str(interval)[:40] + "…"
            raise StoreError(f"interval {shown!r} is longer than a year (366d): not a candle interval")
        _check_name("interval", iv)
        try:
            frame = normalize_candles(df).reset_index()
        except SchemaError as exc:
            raise SchemaError(f"{exchange} {symbol} {interval}: {exc}") from None
        table = tables.candle_table(frame, exchange=str(exchange).lower(), symbol=str(symbol), interval=iv,
                                    asset=str(asset).upper())
        self.items.append(_Item(CANDLES, table, offered=len(frame)))
        return len(self.items) - 1

    def add_gaps(self, df: pd.DataFrame) -> int:
        missing = [c for c in ("exchange", "start", "end") if c not in df.columns]
        if missing:
            raise SchemaError(f"gaps are missing columns: {', '.join(missing)}")
        frame = pd.DataFrame({
            "exchange": df["exchange"].astype(str).str.lower().to_numpy(),
            "start": pd.Series(to_utc(df["start"])).to_numpy(),
            "end": pd.Series(to_utc(df["end"])).to_numpy(),
            "reason": (df["reason"].astype(str) if "reason" in df.columns else pd.Series([""] * len(df))).to_numpy(),
        })
        if frame[["start", "end"]].isna().any().any():
            raise SchemaError("gaps have missing start or end times")
        if (pd.to_datetime(frame["end"], utc=True) < pd.to_datetime(frame["start"], utc=True)).any():
            raise SchemaError("a gap ends before it starts")
        self.items.append(_Item(GAPS, tables.gap_table(frame), offered=len(frame)))
        return len(self.items) - 1


def _coverage(table: pa.Table, span: tuple | None = None) -> pa.Table:
    """What a commit of ``table`` covers: per (source, exchange, symbol), first row to last (+1 µs), or
    ``span`` when the source states it."""
    if not table.num_rows:
        return tables.COVERAGE_SCHEMA.empty_table()
    g = table.group_by(["source", "exchange", "symbol"]).aggregate([("ts", "min"), ("ts", "max")])
    lo = g.column("ts_min").cast(pa.int64()).to_numpy()
    hi = g.column("ts_max").cast(pa.int64()).to_numpy() + 1
    if span is not None:
        a, b = _us(_time(span[0])), _us(_time(span[1]))
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    return pa.table({"source": g.column("source"), "exchange": g.column("exchange"), "symbol": g.column("symbol"),
                     "start": pa.array(lo).cast(tables.TS), "end": pa.array(hi).cast(tables.TS)},
                    schema=tables.COVERAGE_SCHEMA)


class Store:
    """A store at a :class:`Location` (local folder or ``s3://``). Use :func:`open_store`."""

    def __init__(self, where: str | object):
        self.location = Location.of(where)
        self._notes: dict[str, None] = {}
        self.schema_version, self.meta = self._check_version()
        self._snapshots = _Snapshots(self.location)
        # partitions whose rollups commits with defer_rollups left behind (refresh_deferred)
        self._deferred_liq: set[tuple[str, str]] = set()
        self._deferred_candles: set[tuple[str, str, str]] = set()

    @property
    def root(self):
        """The local folder (a Path), or the ``s3://`` URI (a str)."""
        return self.location.path if self.location.is_local else self.location.uri

    def __repr__(self) -> str:
        return f"Store({self.location.uri!r})"

    # -- version ------------------------------------------------------------------
    def _check_version(self) -> tuple[int | None, dict]:
        where = self.location.table(layout.STORE_FILE)
        try:
            meta = self.location.read_meta()
        except (OSError, ValueError, RecursionError) as exc:
            raise StoreError(f"{where} is unreadable ({first_line(exc)}); not a Liqscope store?") from None
        if meta is None:
            return None, {}
        if not isinstance(meta, dict):
            raise StoreError(f"{where} is unreadable (not a JSON object); not a Liqscope store?")
        fmt, ver = meta.get("format"), meta.get("schema_version")
        if fmt != FORMAT:
            raise StoreError(f"{where} is not a Liqscope store (format {fmt!r})")
        if type(ver) is not int or ver < 1:
            raise StoreError(f"{where}: schema_version {str(ver)[:40]!r} is not a whole number >= 1; "
                             "a damaged or hand-edited store.json?")
        if ver > SCHEMA_VERSION:
            by = meta.get("written_by", "a newer Liqscope")
            raise StoreVersionError(
                f"the store at {self.location} was written by {by} (store schema {ver}); this Liqscope "
                f"({app_version()}) reads schema {SCHEMA_VERSION} or older: update Liqscope or use another --data-dir")
        return ver, meta

    @property
    def needs_migration(self) -> bool:
        return self.schema_version is not None and self.schema_version < SCHEMA_VERSION

    def _require_current(self) -> None:
        if self.needs_migration:
            from .migrate import migrate
            migrate(self)  # converts in place, atomically (see .migrate); refuses in words if it cannot

    def _init_meta(self) -> None:
        if self.schema_version is None:
            meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "table_version": tables.TABLE_VERSION,
                    "written_by": f"liqscope {app_version()}", "tables": sorted(TABLES)}
            self.location.write_meta(meta)
            self.schema_version, self.meta = SCHEMA_VERSION, meta

    # -- precedence -----------------------------------------------------------------
    @property
    def precedence(self) -> tuple[str, ...]:
        """Source precedence: the user's order (``liqscope store prefer``) before the default."""
        mine = tuple(self.meta.get("precedence") or ())
        return mine + tuple(p for p in provenance.DEFAULT_PRECEDENCE if p not in mine)

    def set_precedence(self, order: Sequence[str]) -> None:
        self._require_current()
        self._init_meta()
        meta = dict(self.meta, precedence=list(order))
        with store_errors(str(self.location), "write to"):
            self.location.write_meta(meta)
        self.meta = meta

    # -- writing ------------------------------------------------------------------
    def append_liquidations(self, df: pd.DataFrame, *, source: str | None = None) -> AppendResult:
        """Add liquidations in the canonical schema; rows already held from the same source are skipped."""
        batch = Batch()
        batch.add_liquidations(df, source=source)
        return self.commit(batch)[0]

    def replace_liquidations(self, df: pd.DataFrame, *, exchanges: str | Iterable[str], start=None, end=None,
                             symbols: SymbolScope = None, spans: Sequence[TimeSpan] | None = None,
                             source: str | None = None, sources: Iterable[str] | None = None) -> ReplaceResult:
        """Atomically swap the stored liquidations in a scope for ``df`` (see :meth:`Batch.replace_liquidations`)."""
        batch = Batch()
        batch.replace_liquidations(df, exchanges=exchanges, start=start, end=end, symbols=symbols, spans=spans,
                                   source=source, sources=sources)
        return self.commit(batch)[0]

    def append_candles(self, df: pd.DataFrame, *, exchange: str, symbol: str, interval: str,
                       asset: str) -> AppendResult:
        """Add candles of one series; a candle already held is replaced by the new values."""
        batch = Batch()
        batch.add_candles(df, exchange=exchange, symbol=symbol, interval=interval, asset=asset)
        return self.commit(batch)[0]

    def append_gaps(self, df: pd.DataFrame) -> AppendResult:
        batch = Batch()
        batch.add_gaps(df)
        return self.commit(batch)[0]

    def commit(self, batch: Batch, *, task: Task | None = None,
               defer_rollups: bool = False) -> list[AppendResult | ReplaceResult]:
        """Apply every queued item, each as one Delta commit, in order; then bring the rollups of the
        touched partitions up to date. ``task`` is checked before each item: a cancel before the first
        leaves the store as it was. ``defer_rollups``: leave the rollups for :meth:`refresh_deferred`
        (a bulk import commits batch after batch into the same months: refreshing them once at the end
        saves a month's re-read per batch; until then readers see the rollups as stale and read raw)."""
        if not len(batch):
            return []
        self._require_current()
        out: list[AppendResult | ReplaceResult] = []
        touched: set[tuple[str, str]] = set()
        before = self._versions(batch)
        try:
            self._commit(batch, out, touched, task, defer_rollups)
        except StoreError as exc:
            if self._versions(batch) != before:  # some items are in: never say "unchanged"
                exc.committed = True
                exc.args = (f"{exc} (partly committed: what was written before the failure is stored; "
                            "the same command again adds the rest)",)
            raise
        return [r for _i, r in sorted(out, key=lambda x: x[0])]

    def _versions(self, batch: Batch) -> dict[str, int]:
        """The version of each table ``batch`` writes (-1: none yet, -2: unreadable)."""
        out = {}
        for kind in {it.kind for it in batch.items} | ({COVERAGE} if any(it.kind == LIQ for it in batch.items)
                                                        else set()):
            try:
                out[kind] = self._snapshots.version(kind)
            except Exception:  # noqa: BLE001 - an unreadable log cannot have taken a write either
                out[kind] = -2
        return out

    def refresh_deferred(self) -> int:
        """Bring the rollups that commits with ``defer_rollups`` left behind up to date; returns how many
        liquidation partitions were refreshed."""
        liq, candle_parts = self._deferred_liq, self._deferred_candles
        self._deferred_liq, self._deferred_candles = set(), set()
        if not liq and not candle_parts:
            return 0
        try:
            with store_errors(str(self.location), "write to"):
                n = rollups.refresh(self.location, liq) if liq else 0
                if candle_parts:
                    first = self._snapshots.version(CANDLE_ROLLUPS) < 0
                    candle_rollups.refresh(self.location, None if first else candle_parts, self._files(CANDLES))
        except StoreError as exc:  # the rows are in (readers read them raw until the rollups catch up)
            exc.committed = True
            exc.args = (f"{exc} (partly committed: what was written before the failure is stored; "
                        "the same command again adds the rest)",)
            raise
        return n

    def _commit(self, batch: Batch, out: list, touched: set, task: Task | None, defer: bool = False) -> None:
        loc = self.location
        with store_errors(str(loc), "write to"):
            self._init_meta()
            self._append_together(batch, out, touched, task)
            # what the batch put in so far: a later replacement of the same batch keeps it
            written = [it.table for it in batch.items if it.kind == LIQ and it.scope is None]
            for i, item in enumerate(batch.items):
                if item.kind == LIQ and item.scope is None:
                    continue  # committed together above
                if task is not None:
                    task.check()
                if item.kind == LIQ:
                    out.append((i, self._commit_liq(item, written)))
                    touched |= set(zip(item.table.column("exchange").to_pylist(),
                                       item.table.column("month").to_pylist()))
                    if item.scope is not None:
                        touched |= {(e, m) for e in item.scope.exchanges for m in item.scope.months}
                elif item.kind == CANDLES:
                    delta_io.insert_new(loc, TABLES[SERIES], tables.series_rows(item.table))  # listed first
                    inserted, _updated = delta_io.upsert(loc, TABLES[CANDLES], item.table)
                    out.append((i, AppendResult(item.offered, inserted)))
                else:
                    out.append((i, AppendResult(item.offered, delta_io.insert_new(loc, TABLES[GAPS], item.table))))
            if defer:
                self._deferred_liq |= touched
                self._deferred_candles |= {(e, i, m) for it in batch.items if it.kind == CANDLES for e, i, m in zip(
                    *(it.table.column(c).to_pylist() for c in ("exchange", "interval", "month")))}
                return
            rollups.refresh(loc, touched)
            self._refresh_candle_rollups(batch)

    def _refresh_candle_rollups(self, batch: Batch) -> None:
        """Bring the candle rollups of the (exchange, interval, month) partitions ``batch`` wrote up to date;
        all of them on the first write to a store written before the table existed."""
        parts = {(e, i, m) for it in batch.items if it.kind == CANDLES for e, i, m in zip(
            *(it.table.column(c).to_pylist() for c in ("exchange", "interval", "month")))}
        if parts:
            first = self._snapshots.version(CANDLE_ROLLUPS) < 0
            candle_rollups.refresh(self.location, None if first else parts, self._files(CANDLES))

    def _append_together(self, batch: Batch, out: list, touched: set, task: Task | None) -> None:
        """All plain liquidation appends of a batch (the files of one import) as one commit: they land
        together or not at all. Results are counted per item."""
        idx = [i for i, it in enumerate(batch.items) if it.kind == LIQ and it.scope is None]
        if not idx:
            return
        if task is not None:
            task.check()
        loc, spec = self.location, TABLES[LIQ]
        parts = [batch.items[i].table for i in idx]
        both = _dedupe(pa.concat_tables(parts).append_column(  # a repeat counts for the first item holding it
            "_tag", pa.array(np.concatenate([np.full(p.num_rows, i) for i, p in zip(idx, parts)]))))
        fresh = delta_io.absent(loc, spec, both)
        counts = dict(zip(idx, [0] * len(idx)))
        tags, n = np.unique(both.column("_tag").to_numpy()[fresh], return_counts=True)
        counts.update({int(t): int(c) for t, c in zip(tags, n)})
        if fresh.any():
            delta_io.append(loc, spec, both.drop_columns(["_tag"]).filter(pa.array(fresh)))
        for i in idx:
            it = batch.items[i]
            touched |= set(zip(it.table.column("exchange").to_pylist(), it.table.column("month").to_pylist()))
            if it.coverage is not None and it.coverage.num_rows:
                delta_io.insert_new(loc, TABLES[COVERAGE], it.coverage)
            out.append((i, AppendResult(it.offered, counts[i])))

    def _commit_liq(self, item: _Item, written: list[pa.Table] | None = None) -> ReplaceResult:
        """A replacement (plain appends are committed together by :meth:`_append_together`)."""
        table = _dedupe(item.table)
        result = self._replace(item.scope, table, written or [])
        if written is not None:
            written.append(table)
        if result.removed:
            self._uncover(item.scope)
        if item.coverage is not None and item.coverage.num_rows:
            delta_io.insert_new(self.location, TABLES[COVERAGE], item.coverage)
        return result

    def _uncover(self, scope: Scope) -> None:
        """Rows a replacement removed no longer cover their time: cut the scope's spans out of the coverage
        of its exchanges (and symbols, and sources), in one commit -- else a deleted Tardis day would still
        hide the live rows of that day. The replacement's own rows then add their coverage back."""
        symbols = self._scope_symbols(scope)
        data = delta_io.prune(self._files(COVERAGE), where={"exchange": scope.exchanges})
        if not data:
            return
        cov = delta_io.read(self.location, TABLES[COVERAGE], data).to_pandas()
        lo = tables.us(cov["start"])
        hi = tables.us(cov["end"])
        hit = np.ones(len(cov), dtype=bool)
        if symbols is not None:
            hit &= cov["symbol"].isin(list(symbols)).to_numpy()
        if scope.sources is not None:
            hit &= cov["source"].isin(sorted(scope.sources)).to_numpy()
        pieces = []
        for i in range(len(cov)):
            spans = [(int(lo[i]), int(hi[i]))]
            if hit[i]:
                spans = provenance.subtract(spans[0], scope.starts, scope.ends)
            pieces += [(cov["source"].iat[i], cov["exchange"].iat[i], cov["symbol"].iat[i], a, b) for a, b in spans]
        if len(pieces) == len(cov) and all(p[3] == a and p[4] == b for p, a, b in zip(pieces, lo, hi)):
            return  # nothing covered the scope
        out = pa.table({"source": [p[0] for p in pieces], "exchange": [p[1] for p in pieces],
                        "symbol": [p[2] for p in pieces],
                        "start": pa.array([p[3] for p in pieces], pa.int64()).cast(tables.TS),
                        "end": pa.array([p[4] for p in pieces], pa.int64()).cast(tables.TS)},
                       schema=tables.COVERAGE_SCHEMA)
        lit = delta_io.sql_literal
        delta_io.replace_where(self.location, TABLES[COVERAGE], out,
                               f"exchange IN ({', '.join(lit(e) for e in sorted(scope.exchanges))})")

    def _replace(self, scope: Scope, table: pa.Table, earlier: Sequence[pa.Table] = ()) -> ReplaceResult:
        """One merge: identical rows stay, new rows are inserted, stored rows in scope not offered go.
        Rows ``earlier`` items of the same batch put in the scope stay too (removal applies to what was
        stored before the batch)."""
        loc, spec = self.location, TABLES[LIQ]
        symbols = self._scope_symbols(scope)
        prior = [t.filter(pa.array(scope.mask(t.to_pandas()))) for t in earlier if t.num_rows]
        prior = [t for t in prior if t.num_rows]
        if prior:
            table = _dedupe(pa.concat_tables([table, *prior]))
        if symbols is not None and not symbols and not table.num_rows:
            return ReplaceResult(0, 0)
        if delta_io.open_table(loc, spec) is None:
            return ReplaceResult(0, delta_io.insert_new(loc, spec, table))
        # every column: a row whose notional or asset was corrected is one removed plus one added row
        on = " AND ".join(f"t.{k} = s.{k}" for k in spec.schema.names)
        gone = scope.sql(symbols, "t")
        source = table if table.num_rows else spec.schema.empty_table()

        def run():
            target = delta_io.open_table(loc, spec)
            res = (target.merge(source, predicate=f"{scope.partition_sql('t')} AND {on}",
                                source_alias="s", target_alias="t", writer_properties=delta_io.WRITER,
                                commit_properties=delta_io._props({"liqscope.op": "replace"}))
                   .when_not_matched_insert_all()
                   .when_not_matched_by_source_delete(predicate=gone)
                   .execute())
            return ReplaceResult(int(res.get("num_target_rows_deleted", 0)),
                                 int(res.get("num_target_rows_inserted", 0)))
        return delta_io.retrying(run)

    def _scope_symbols(self, scope: Scope) -> Collection[str] | None:
        """The symbols a scope names: its list, or its predicate applied to the stored (symbol, asset)s."""
        if scope.symbols is None or isinstance(scope.symbols, frozenset):
            return scope.symbols
        held = self._liq_read(None, None, exchanges=scope.exchanges, columns=["symbol", "asset"],
                              months=scope.months)
        pairs = set(zip(held.column("symbol").to_pylist(), held.column("asset").to_pylist()))
        return sorted({s for s, a in pairs if scope.symbols(s, a)})

    # -- reading ------------------------------------------------------------------
    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    def _note(self, text: str) -> None:
        self._notes[text] = None

    def _files(self, kind: str) -> list[delta_io.DataFile]:
        """The data files of ``kind``'s latest snapshot (listed once per table version)."""
        with store_errors(str(self.location), "read"):
            return self._snapshots.files(kind)

    def has_data(self) -> bool:
        if self.schema_version is None:
            return False
        if self.needs_migration:
            return True
        return bool(self._files(LIQ) or self._files(CANDLES))

    def _liq_read(self, start, end, *, exchanges=None, symbols=None, columns=None, months=None,
                  on_damage=None, extra_filter=None, dictionary: tuple[str, ...] = ()) -> pa.Table:
        self._require_current()
        s = _us(_time(start)) if start is not None else None
        e = _us(_time(end)) if end is not None else None
        where: dict[str, Iterable[str]] = {}
        if exchanges is not None:
            where["exchange"] = {str(x).lower() for x in exchanges}
        if months is not None:
            where["month"] = set(months)
        data = delta_io.prune(self._files(LIQ), start_us=s, end_us=e, where=where)
        flt = extra_filter
        if symbols is not None:
            cond = pc.field("symbol").isin(sorted({str(x) for x in symbols}))
            flt = cond if flt is None else flt & cond
        flt = delta_io.window_filter(s, e, also=flt)
        with store_errors(str(self.location), "read"):
            return delta_io.read(self.location, TABLES[LIQ], data, columns=columns, row_filter=flt,
                                 on_damage=on_damage, dictionary=dictionary)

    def coverage(self) -> provenance.Coverage:
        """Which source covers what (read once per version of the coverage table)."""
        with store_errors(str(self.location), "read"):
            return self._snapshots.derived(COVERAGE, "coverage", lambda data: provenance.Coverage.from_table(
                delta_io.read(self.location, TABLES[COVERAGE], data) if data else None))

    def liquidations(self, start=None, end=None, *, exchanges: Iterable[str] | None = None,
                     symbols: Iterable[str] | None = None, counted: bool = True) -> LiquidationModel:
        """Stored liquidations with ``start <= ts < end`` (None: unbounded), optionally only of ``exchanges``
        and ``symbols``; only files that can hold them are read. ``counted``: one row per event, by source
        precedence (:mod:`.provenance`); False: every stored row of every source."""
        table = self._liq_read(start, end, exchanges=exchanges, symbols=symbols)
        return _liq_model(self._counted(table) if counted else table)

    def _counted(self, table: pa.Table) -> pa.Table:
        """One row per event: ``table`` (with ``exchange``, ``symbol``, ``source``, ``ts``) without the rows a
        higher-precedence source covers."""
        if not self._may_be_outranked(table):
            return table
        keep = provenance.counted({"exchange": np.asarray(table.column("exchange").to_pylist(), dtype=object),
                                   "symbol": np.asarray(table.column("symbol").to_pylist(), dtype=object),
                                   "source": np.asarray(table.column("source").to_pylist(), dtype=object),
                                   "ts": table.column("ts").cast(pa.int64()).to_numpy()},
                                  self.coverage(), self.precedence)
        return table if keep.all() else table.filter(pa.array(keep))

    def _may_be_outranked(self, table: pa.Table) -> bool:
        """Whether a source covering some of ``table``'s exchanges and time outranks one of its rows' sources
        (needs ``exchange``, ``source`` and ``ts``): if not, every row counts, with no check per row."""
        if not table.num_rows:
            return False
        cov = self.coverage()
        if not cov.spans:
            return False
        order = self.precedence
        low = max(provenance.rank(s, order) for s in table.column("source").unique().to_pylist())
        span = pc.min_max(table.column("ts").cast(pa.int64()))
        lo, hi = span["min"].as_py(), span["max"].as_py()
        exchanges = set(table.column("exchange").unique().to_pylist())
        return any(provenance.rank(src, order) < low and bool(np.any((np.asarray(a) <= hi) & (np.asarray(b) > lo)))
                   for (src, ex, _y), (a, b) in cov.spans.items() if ex in exchanges)

    def covered_liquidations(self, scope: Scope) -> pd.DataFrame:
        """The stored rows ``scope`` covers -- what deleting it would remove -- sorted by time."""
        table = self._liq_read(None, None, exchanges=scope.exchanges, months=scope.months,
                               extra_filter=scope.row_filter())
        frame = tables.liq_frame(table)
        return frame[scope.mask(frame)].reset_index(drop=True)

    def candles(self, exchange: str, symbol: str, interval: str, start=None, end=None) -> pd.DataFrame:
        """One series' candles indexed by UTC open time, ``start <= ts < end``."""
        return self._candles(exchange, symbol, interval, start, end)

    def _candles(self, exchange, symbol, interval, start=None, end=None, on_damage=None) -> pd.DataFrame:
        self._require_current()
        s = _us(_time(start)) if start is not None else None
        e = _us(_time(end)) if end is not None else None
        iv = _norm_interval(interval)
        data = delta_io.prune(self._files(CANDLES), start_us=s, end_us=e,
                              where={"exchange": [str(exchange).lower()], "interval": [iv]})
        flt = delta_io.window_filter(s, e, also=pc.field("symbol") == str(symbol))
        with store_errors(str(self.location), "read"):
            table = delta_io.read(self.location, TABLES[CANDLES], data, columns=["ts", *tables.OHLCV],
                                  row_filter=flt, on_damage=on_damage)
        frame = table.sort_by([("ts", "ascending")]).to_pandas()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("ns")
        return frame.set_index("ts")

    def candle_coverage(self, exchange: str, symbol: str, interval: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Contiguous ranges held, as ``(first open, last open + interval)`` (end exclusive)."""
        step = parse_duration(_norm_interval(interval)) * 1_000_000_000
        frame = self._candles(exchange, symbol, interval)
        if not len(frame):
            return []
        ts = np.sort(frame.index.as_unit("ns").asi8)
        breaks = np.flatnonzero(np.diff(ts) > step)
        starts = np.concatenate(([ts[0]], ts[breaks + 1]))
        ends = np.concatenate((ts[breaks], [ts[-1]])) + step
        return [(pd.Timestamp(int(a), tz="UTC"), pd.Timestamp(int(b), tz="UTC")) for a, b in zip(starts, ends)]

    def gaps(self) -> pd.DataFrame:
        """Recorder disconnections, sorted by start."""
        self._require_current()
        data = self._files(GAPS)
        with store_errors(str(self.location), "read"):
            t = delta_io.read(self.location, TABLES[GAPS], data)
        frame = t.to_pandas()
        for c in ("start", "end"):
            frame[c] = pd.to_datetime(frame[c], utc=True).dt.as_unit("ns")
        return frame.sort_values(["start", "exchange"], kind="stable").reset_index(drop=True)

    def candle_series(self, start=None, end=None, *, on_damage=None) -> list[tuple[str, str, str, str]]:
        """(exchange, symbol, interval, asset) of every stored candle series (with candles in the window).
        Without a window, from the small ``series`` table; a store written before it existed, or a window,
        reads the candles' exchange/symbol/interval/asset columns (as dictionary codes). A damaged file is
        left out, handed to ``on_damage`` (default: noted in :attr:`notes`)."""
        self._require_current()
        if start is None and end is None and self._files(SERIES):
            with store_errors(str(self.location), "read"):
                t = delta_io.read(self.location, TABLES[SERIES], self._files(SERIES))
            return self._series_list(t)
        return self._series_list(self._scan_series(start, end, on_damage))

    def _scan_series(self, start=None, end=None, on_damage=None) -> pa.Table:
        s = _us(_time(start)) if start is not None else None
        e = _us(_time(end)) if end is not None else None
        data = delta_io.prune(self._files(CANDLES), start_us=s, end_us=e)
        if not data:
            return TABLES[SERIES].schema.empty_table()
        with store_errors(str(self.location), "read"):
            t = delta_io.read(self.location, TABLES[CANDLES], data, columns=list(TABLES[SERIES].schema.names),
                              on_damage=on_damage or (lambda d: self._note(d.message)),
                              dictionary=("symbol", "asset"))
        t = t.unify_dictionaries().group_by(list(t.column_names)).aggregate([])  # on codes: no string per row
        return t.cast(TABLES[SERIES].schema)

    @staticmethod
    def _series_list(t: pa.Table) -> list[tuple[str, str, str, str]]:
        g = t.group_by(["exchange", "symbol", "interval"]).aggregate([("asset", "min")])
        return sorted(zip(g.column("exchange").to_pylist(), g.column("symbol").to_pylist(),
                          g.column("interval").to_pylist(), g.column("asset_min").to_pylist()))

    def load_window(self, start=None, end=None, *, exchanges: Iterable[str] | None = None) -> Dataset:
        """The dataset of one window (None: everything): the liquidations (one per event) and the candles
        with ``start <= ts < end``. Only the files the window needs are read, each once; a damaged one is
        left out and named in the dataset's ``notes``/``damaged``."""
        damaged: dict[str, DamagedFile] = {}

        def keep(d: DamagedFile) -> None:
            damaged.setdefault(d.path, d)
        prices = self._window_candles(start, end, exchanges, keep)
        table = self._liq_read(start, end, exchanges=exchanges, on_damage=keep)
        liqs = _liq_model(self._counted(table))
        return Dataset(prices, liqs, label=f"Local store: {self.location}", is_demo=False,
                       notes=self.notes + [d.message for d in damaged.values()], damaged=list(damaged.values()),
                       context=self.context(start, end))

    def _window_candles(self, start, end, exchanges, keep) -> PriceModel:
        """Every candle series of a window from one read of the files it needs, split per series."""
        self._require_current()
        s = _us(_time(start)) if start is not None else None
        e = _us(_time(end)) if end is not None else None
        where = {} if exchanges is None else {"exchange": {str(x).lower() for x in exchanges}}
        data = delta_io.prune(self._files(CANDLES), start_us=s, end_us=e, where=where)
        prices = PriceModel()
        if not data:
            return prices
        with store_errors(str(self.location), "read"):
            t = delta_io.read(self.location, TABLES[CANDLES], data, row_filter=delta_io.window_filter(s, e),
                              on_damage=keep,
                              columns=["ts", "exchange", "interval", "symbol", "asset", *tables.OHLCV])
        if not t.num_rows:
            return prices
        frame = t.sort_by([("ts", "ascending")]).to_pandas()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("ns")
        for (exchange, interval, symbol), part in frame.groupby(["exchange", "interval", "symbol"], sort=True):
            prices.add(exchange, symbol, interval, part.set_index("ts")[list(tables.OHLCV)],
                       str(part["asset"].iloc[0]))
        return prices

    # -- context: open interest, funding, outside series (context_tables.py) ----------------
    def append_open_interest(self, df: pd.DataFrame, *, source: str | None = None,
                             period: str | None = None) -> AppendResult:
        """Upsert open interest rows (``ts, exchange, symbol, asset, period, oi_base, oi_usd, source``) on
        (exchange, symbol, period, ts), one commit. ``new`` counts keys not held before."""
        from . import context_tables as ct

        table = ct.oi_table(df, source=source, period=period)
        return AppendResult(table.num_rows, ct.write(self, tables.OPEN_INTEREST, table)[0])

    def append_funding(self, df: pd.DataFrame, *, source: str | None = None) -> AppendResult:
        """Upsert funding rows (``ts, exchange, symbol, asset, rate, interval_hours, source``) on
        (exchange, symbol, ts), one commit."""
        from . import context_tables as ct

        table = ct.funding_table(df, source=source)
        return AppendResult(table.num_rows, ct.write(self, tables.FUNDING, table)[0])

    def append_outside_series(self, df: pd.DataFrame, *, source: str | None = None,
                              unit: str | None = None) -> AppendResult:
        """Upsert outside series rows (``name, ts, value, unit, source``) on (name, ts): every series of
        ``df`` in one commit (all or nothing)."""
        from . import context_tables as ct

        table = ct.outside_table(df, source=source, unit=unit)
        return AppendResult(table.num_rows, ct.write(self, tables.OUTSIDE, table)[0])

    def open_interest(self, start=None, end=None, *, exchange: str | None = None, symbol: str | None = None,
                      period: str | None = None) -> pd.DataFrame:
        from . import context_tables as ct

        return ct.open_interest(self, start, end, exchange=exchange, symbol=symbol, period=period)

    def funding(self, start=None, end=None, *, exchange: str | None = None,
                symbol: str | None = None) -> pd.DataFrame:
        from . import context_tables as ct

        return ct.funding(self, start, end, exchange=exchange, symbol=symbol)

    def outside_series(self, name: str | None = None, start=None, end=None) -> pd.DataFrame:
        from . import context_tables as ct

        return ct.outside_series(self, name, start, end)

    def context(self, start=None, end=None):
        """The :class:`~liqscope.models.context.Context` (open interest, funding, outside series) with
        ``start <= ts < end`` (None: open); empty when the store holds none."""
        from . import context_tables as ct

        return ct.context(self, start, end)

    def load_dataset(self) -> Dataset:
        """Everything in the store (see :meth:`load_window`)."""
        return self.load_window()

    def info(self) -> pd.DataFrame:
        """Per kind/exchange/symbol/interval: rows, first and last time (from the table log's file stats,
        and one column read per table)."""
        self._require_current()
        rows = []
        for kind in (LIQ, CANDLES):
            data = self._files(kind)
            if not data:
                continue
            cols = ["exchange", "symbol", "ts"] + (["interval"] if kind == CANDLES else [])
            with store_errors(str(self.location), "read"):
                t = delta_io.read(self.location, TABLES[kind], data, columns=cols,
                                  on_damage=lambda d: self._note(d.message))
            keys = ["exchange", "symbol"] + (["interval"] if kind == CANDLES else [])
            g = t.group_by(keys).aggregate([("ts", "count"), ("ts", "min"), ("ts", "max")])
            for r in g.to_pylist():
                rows.append((kind, r["exchange"], r["symbol"], r.get("interval"), r["ts_count"],
                             pd.Timestamp(r["ts_min"]).tz_convert("UTC"), pd.Timestamp(r["ts_max"]).tz_convert("UTC")))
        from .context_tables import info_rows
        rows += info_rows(self, lambda d: self._note(d.message))
        g = self.gaps()
        for ex, part in g.groupby("exchange", sort=True):
            rows.append((GAPS, str(ex), None, None, len(part), part["start"].min(), part["end"].max()))
        if not rows:
            return pd.DataFrame({c: [] for c in INFO_COLUMNS})
        df = pd.DataFrame(rows, columns=INFO_COLUMNS).sort_values(["kind", "exchange", "symbol"], kind="stable")
        df["rows"] = df["rows"].astype("int64")
        return df.reset_index(drop=True)[INFO_COLUMNS]

    def source_info(self) -> pd.DataFrame:
        """Per source and exchange: rows stored, rows counted, covered span, and precedence rank."""
        self._require_current()
        table = self._liq_read(None, None, columns=["ts", "exchange", "symbol", "source", "notional_usd"],
                               on_damage=lambda d: self._note(d.message))  # as info(): the rest, and a note
        if not table.num_rows:
            return pd.DataFrame(columns=["source", "exchange", "rank", "rows", "counted", "first", "last"])
        keep = self._counted(table.append_column("_i", pa.array(np.arange(table.num_rows)))).column("_i")
        counted = np.zeros(table.num_rows, dtype=bool)
        counted[keep.to_numpy()] = True
        df = pd.DataFrame({"source": table.column("source").to_pylist(),
                           "exchange": table.column("exchange").to_pylist(),
                           "ts": table.column("ts").to_pandas(), "counted": counted})
        out = df.groupby(["source", "exchange"], sort=True).agg(
            rows=("ts", "size"), counted=("counted", "sum"), first=("ts", "min"), last=("ts", "max")).reset_index()
        out["rank"] = [provenance.rank(s, self.precedence) for s in out["source"]]
        return out.sort_values(["exchange", "rank", "source"]).reset_index(drop=True)[
            ["source", "exchange", "rank", "rows", "counted", "first", "last"]]

    def coarse_candles(self, level: str, start=None, end=None) -> pd.DataFrame:
        """Every candle series as ``level`` bars ("1h" or "1d", epoch-aligned) with ``start <= ts < end``: a
        long frame (exchange, symbol, asset, interval = ``level``, ts UTC, OHLCV) as
        :meth:`PriceModel.from_long` takes it, from the candle rollups (raw candles where they are stale)."""
        self._require_current()
        start = None if start is None else _time(start)
        end = None if end is None else _time(end)
        with store_errors(str(self.location), "read"):
            return candle_rollups.coarse(self, level, start, end)

    def hourly_liquidations(self, start=None, end=None) -> pd.DataFrame:
        """Counted liquidations per UTC hour (hour starts with ``start <= ts < end``) and exchange, symbol,
        asset, side and source: ts, exchange, symbol, asset, side, source, count, notional_usd, max_usd.
        From the hourly rollups; stale partitions, and hours a higher-precedence source covers in part,
        from the raw rows (one count per event, as every figure)."""
        self._require_current()
        start = None if start is None else _time(start)
        end = None if end is None else _time(end)
        with store_errors(str(self.location), "read"):
            return rollups.hourly(self, start, end)

    # -- maintenance ---------------------------------------------------------------
    def rebuild_rollups(self) -> int:
        """Recompute every stale rollup partition (e.g. after a crash between two commits), and list the
        candle series of a store written before the ``series`` table existed. Returns how many liquidation
        rollup partitions were rewritten (stale candle rollups are rebuilt too, uncounted)."""
        self._require_current()
        parts = {(f.partition["exchange"], f.partition["month"]) for f in self._files(LIQ)}
        with store_errors(str(self.location), "write to"):
            if self._files(CANDLES) and not self._files(SERIES):
                delta_io.insert_new(self.location, TABLES[SERIES], self._scan_series())
            done = rollups.refresh(self.location, parts)
            if self._files(CANDLES):
                candle_rollups.refresh(self.location, None, self._files(CANDLES))
            return done


class _Snapshots:
    """The latest snapshot of each table, kept open and brought up to date incrementally (reading only new
    log entries), with its file listing and anything derived from it cached per table version: one command
    opens each table once, not once per read."""

    def __init__(self, loc: Location):
        self.loc = loc
        self.lock = threading.RLock()  # a derived value may read other tables through the same cache
        self.tables: dict[str, object] = {}
        self.cache: dict[tuple[str, str], tuple[int, object]] = {}

    def _latest(self, kind: str):
        dt = self.tables.get(kind)
        if dt is None:
            dt = delta_io.open_table(self.loc, TABLES[kind])
            if dt is not None:
                self.tables[kind] = dt
            return dt
        dt.update_incremental()
        return dt

    def derived(self, kind: str, what: str, make: Callable[[list], _T]) -> _T:
        with self.lock:
            dt = self._latest(kind)
            version = -1 if dt is None else dt.version()
            hit = self.cache.get((kind, what))
            if hit is not None and hit[0] == version:
                return hit[1]
            data = self.cache.get((kind, "files"))
            if data is None or data[0] != version:
                ts_col = "bucket" if kind == ROLLUPS else ("start" if kind in (GAPS, COVERAGE) else "ts")
                data = (version, delta_io.files(self.loc, TABLES[kind], dt, ts_col=ts_col))
                self.cache[(kind, "files")] = data
            value = data[1] if what == "files" else make(data[1])
            self.cache[(kind, what)] = (version, value)
            return value

    def files(self, kind: str) -> list[delta_io.DataFile]:
        return self.derived(kind, "files", lambda data: data)

    def version(self, kind: str) -> int:
        """The table's latest version (-1: never written)."""
        with self.lock:
            dt = self._latest(kind)
            return -1 if dt is None else dt.version()


_T = TypeVar("_T")


def _dedupe(table: pa.Table) -> pa.Table:
    """Drop rows repeated within one offered batch (a Binance snapshot lists each order twice); the first
    of each is kept. Only the event key is compared (other columns ride along)."""
    if table.num_rows < 2:
        return table
    # Rows with the same key share (exchange, symbol, ts): only rows whose hash of those collides can repeat,
    # and there are few, so the exact comparison (a group-by on the whole key) runs on them alone.
    probe = pd.DataFrame({c: np.asarray(pc.dictionary_encode(table.column(c)).combine_chunks().indices)
                          for c in ("exchange", "symbol")})
    probe["ts"] = table.column("ts").cast(pa.int64()).to_numpy()
    maybe = np.flatnonzero(probe.duplicated(keep=False).to_numpy())
    if not maybe.size:
        return table
    keys = list(tables.LIQ_KEY)
    sub = table.take(pa.array(maybe)).append_column("_i", pa.array(maybe))
    g = sub.group_by(keys, use_threads=False).aggregate([("_i", "min")])
    drop = np.setdiff1d(maybe, g.column("_i_min").to_numpy(), assume_unique=True)
    if not drop.size:
        return table
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    return table.filter(pa.array(keep))


def _liq_model(table: pa.Table | None) -> LiquidationModel:
    """Stored rows as a model; an empty one has the same columns (``source`` included)."""
    return LiquidationModel(tables.liq_frame(table), _trusted=True)


def open_store(path=None) -> Store:
    """The store at ``path`` (a folder or ``s3://bucket/prefix``; default: ``paths.data_location()``)."""
    return Store(paths.data_location() if path is None else path)
