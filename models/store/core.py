"""The local store: the user's imported and recorded data, on disk, crash-safe.

Parquet month files per kind/exchange/symbol(/interval), read with pyarrow
datasets (see README "Local store and importing files" for why not DuckDB).
Every append goes through :meth:`Store.commit`, which deduplicates against what
is stored, writes new partition files or small append segments, and publishes
them atomically (see :mod:`.atomic`), so a failed or cancelled import leaves
every byte of the store as it was.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import paths
from ..dataset import Dataset
from ..liquidations import LiquidationModel
from ..prices import PriceModel
from ..schema import SchemaError, normalize_candles, normalize_liquidations, to_utc
from ..timeutil import TimeParseError, format_duration, parse_duration, parse_time
from . import atomic, layout, tables
from .layout import CANDLES, GAPS, GAPS_FILE, LIQ, STORE_FILE

SCHEMA_VERSION = 1
MAX_SEGMENTS = 8      # append segments per liquidation month before they are merged
COMPACT_RATIO = 0.25  # segments fold into the month's base file at this fraction of it
FORMAT = "liqscope-store"
GAP_COLUMNS = ["exchange", "start", "end", "reason"]
INFO_COLUMNS = ["kind", "exchange", "symbol", "interval", "rows", "first", "last"]


class StoreError(Exception):
    """The store cannot be opened or written; the message is one line for the user."""


class StoreVersionError(StoreError):
    """The store was written by a newer Liqscope with a schema this one cannot read."""


class Cancelled(Exception):
    """The caller's ``cancelled()`` returned True; nothing was written."""


@dataclass(frozen=True)
class AppendResult:
    rows: int  # rows offered
    new: int   # rows the store did not hold before


def _version() -> str:
    try:
        return version("liqscope")
    except PackageNotFoundError:
        return "0+unknown"


def _norm_interval(interval: str) -> str:
    try:
        return format_duration(parse_duration(str(interval)))
    except TimeParseError as exc:
        raise SchemaError(str(exc)) from None


class Batch:
    """Appends committed together by :meth:`Store.commit`: all land or none do."""

    def __init__(self) -> None:
        self.items: list[tuple[str, pd.DataFrame]] = []

    def __len__(self) -> int:
        return len(self.items)

    def add_liquidations(self, df: pd.DataFrame, *, trusted: bool = False) -> int:
        """Queue liquidations; ``trusted`` skips re-validation of a canonical frame."""
        frame = df if trusted else normalize_liquidations(df)
        self.items.append((LIQ, frame))
        return len(self.items) - 1

    def add_candles(self, df: pd.DataFrame, *, exchange: str, symbol: str, interval: str, asset: str) -> int:
        frame = normalize_candles(df).reset_index()
        frame["exchange"] = str(exchange).lower()
        frame["symbol"] = str(symbol)
        frame["interval"] = _norm_interval(interval)
        frame["asset"] = str(asset).upper()
        self.items.append((CANDLES, frame))
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
        frame["start"] = pd.to_datetime(frame["start"], utc=True)
        frame["end"] = pd.to_datetime(frame["end"], utc=True)
        if frame[["start", "end"]].isna().any().any():
            raise SchemaError("gaps have missing start or end times")
        if (frame["end"] < frame["start"]).any():
            raise SchemaError("a gap ends before it starts")
        self.items.append((GAPS, frame))
        return len(self.items) - 1


class Store:
    """A folder of Parquet partitions plus ``store.json``. Use :func:`open_store`."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.schema_version = self._check_version()
        if self.root.is_dir() and atomic.needs_recovery(self.root):
            with atomic.StoreLock(self.root):
                atomic.recover(self.root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- version -----------------------------------------------------------------
    def _check_version(self) -> int | None:
        meta_path = self.root / STORE_FILE
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            fmt, ver = meta.get("format"), int(meta["schema_version"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"{meta_path} is unreadable ({exc}); not a Liqscope store?") from None
        if fmt != FORMAT:
            raise StoreError(f"{meta_path} is not a Liqscope store (format {fmt!r})")
        if ver > SCHEMA_VERSION:
            by = meta.get("written_by", "a newer Liqscope")
            raise StoreVersionError(
                f"the store at {self.root} was written by {by} (store schema {ver}); this Liqscope "
                f"({_version()}) reads schema {SCHEMA_VERSION} or older: update Liqscope or use another --data-dir")
        return ver

    def _init_files(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / atomic.READ_LOCK).exists():
            (self.root / atomic.READ_LOCK).touch()
        if not (self.root / STORE_FILE).exists():
            meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "written_by": f"liqscope {_version()}"}
            atomic.write_bytes_atomic(self.root / STORE_FILE, (json.dumps(meta, indent=2) + "\n").encode())
            self.schema_version = SCHEMA_VERSION

    # -- writing -------------------------------------------------------------------
    def append_liquidations(self, df: pd.DataFrame) -> AppendResult:
        """Add liquidations in the canonical schema; rows already held are skipped."""
        batch = Batch()
        batch.add_liquidations(df)
        return self.commit(batch)[0]

    def append_candles(self, df: pd.DataFrame, *, exchange: str, symbol: str, interval: str,
                       asset: str) -> AppendResult:
        """Add candles of one series; a candle already held is replaced by the new values."""
        batch = Batch()
        batch.add_candles(df, exchange=exchange, symbol=symbol, interval=interval, asset=asset)
        return self.commit(batch)[0]

    def append_gaps(self, df: pd.DataFrame) -> AppendResult:
        """Record periods a live recorder was disconnected (exchange, start, end, reason)."""
        batch = Batch()
        batch.add_gaps(df)
        return self.commit(batch)[0]

    def commit(self, batch: Batch, *, cancelled: Callable[[], bool] | None = None) -> list[AppendResult]:
        """Merge every queued frame into its partitions and replace them atomically.

        ``cancelled`` is polled between partitions until the commit point; if it
        returns True, :class:`Cancelled` is raised and the store is untouched.
        """
        if not len(batch):
            return []
        with atomic.StoreLock(self.root):
            atomic.recover(self.root)
            self._check_version()
            self._init_files()
            tx = atomic.Transaction(self.root)
            try:
                new = {i: 0 for i in range(len(batch))}
                for target, kind, parts in self._plan(batch):
                    if cancelled is not None and cancelled():
                        raise Cancelled("import cancelled")
                    if kind == LIQ:
                        for tag, n in self._append_liq_partition(tx, target, parts).items():
                            new[tag] += n
                        continue
                    path = self.root / target
                    existing = tables.read_frame(path) if path.exists() else None
                    merge = {LIQ: tables.merge_liquidations, CANDLES: tables.merge_candles,
                             GAPS: tables.merge_gaps}[kind]
                    merged, counts, changed = merge(existing, parts)[:3]
                    for tag, n in counts.items():
                        new[tag] += n
                    if changed:
                        schema = {LIQ: tables.LIQ_SCHEMA, CANDLES: tables.CANDLE_SCHEMA, GAPS: tables.GAP_SCHEMA}[kind]
                        _write_partition(tables.to_table(merged, schema), tx.stage(target))
                if cancelled is not None and cancelled():
                    raise Cancelled("import cancelled")
                tx.commit()
            except BaseException:
                tx.abort()
                raise
        return [AppendResult(len(frame), new[i]) for i, (_, frame) in enumerate(batch.items)]

    def _append_liq_partition(self, tx: atomic.Transaction, target: str, parts) -> dict[int, int]:
        """Add new rows to one liquidation month without rewriting it on every append.

        New rows are found by reading only the stored rows in the incoming time
        range, then written as a small segment file. Segments are merged into
        one when there are too many, and into the base file once they reach a
        quarter of it, so each row is rewritten O(log n) times, not once per append.
        """
        base, segs = layout.partition_files(self.root, target)
        files = ([base] if base.exists() else []) + [p for _, p in segs]
        existing = None
        if files:
            lo = min(p["ts"].min() for _, p in parts)
            hi = max(p["ts"].max() for _, p in parts)
            flt = (ds.field("ts") >= pa.scalar(lo.as_unit("ns"), type=tables.TS)) & \
                  (ds.field("ts") <= pa.scalar(hi.as_unit("ns"), type=tables.TS))
            table = ds.dataset([str(f) for f in files], schema=tables.LIQ_SCHEMA, format="parquet").to_table(filter=flt)
            existing = table.to_pandas() if table.num_rows else None
        merged, counts, changed, is_new = tables.merge_liquidations(existing, parts)
        if not changed:
            return counts
        fresh = merged[is_new]
        rel = lambda p: p.relative_to(self.root).as_posix()  # noqa: E731
        base_rows = pq.read_metadata(base).num_rows if base.exists() else 0
        seg_rows = sum(pq.read_metadata(p).num_rows for _, p in segs)
        if not files:
            rows, out = fresh, target
        elif seg_rows + len(fresh) >= COMPACT_RATIO * base_rows:
            rows, out = tables.sort_liquidations(tables.concat([tables.read_frame(f) for f in files] + [fresh])), target
            for _, p in segs:
                tx.delete(rel(p))
        elif len(segs) >= MAX_SEGMENTS:
            rows = tables.sort_liquidations(tables.concat([tables.read_frame(p) for _, p in segs] + [fresh]))
            out = layout.segment_target(target, segs[-1][0] + 1)
            for _, p in segs:
                tx.delete(rel(p))
        else:
            rows, out = fresh, layout.segment_target(target, segs[-1][0] + 1 if segs else 1)
        _write_partition(tables.to_table(rows, tables.LIQ_SCHEMA), tx.stage(out))
        return counts

    def _plan(self, batch: Batch):
        """(target file, kind, [(item index, rows)]) for every partition touched."""
        plan: dict[str, tuple[str, list]] = {}
        for tag, (kind, frame) in enumerate(batch.items):
            if not len(frame):
                continue
            if kind == GAPS:
                plan.setdefault(GAPS_FILE, (GAPS, []))[1].append((tag, frame))
                continue
            months = layout.month_keys(frame["ts"])
            if kind == LIQ:
                keys = pd.DataFrame({"e": frame["exchange"].array, "s": frame["symbol"].array, "m": months})
                groups = keys.groupby(["e", "s", "m"], sort=True, observed=True).indices
            else:
                groups = pd.DataFrame({"m": months}).groupby("m", sort=True, observed=True).indices
            first = frame.iloc[0]
            for key, idx in groups.items():
                if kind == LIQ:
                    target = layout.liq_target(str(key[0]), str(key[1]), str(key[2]))
                else:
                    target = layout.candle_target(first["exchange"], first["symbol"], first["interval"], str(key))
                plan.setdefault(target, (kind, []))[1].append((tag, frame.iloc[idx]))
        return [(t, k, parts) for t, (k, parts) in sorted(plan.items())]

    # -- reading -------------------------------------------------------------------
    def has_data(self) -> bool:
        return bool(layout.scan(self.root, LIQ) or layout.scan(self.root, CANDLES))

    def liquidations(self, start=None, end=None) -> LiquidationModel:
        """Stored liquidations with ``start <= ts < end`` (either bound may be None)."""
        s = parse_time(start) if start is not None else None
        e = parse_time(end) if end is not None else None
        with atomic.snapshot(self.root):
            files = layout.in_months(layout.scan(self.root, LIQ), s, e)
            if not files:
                return LiquidationModel()
            table = _read(files, tables.LIQ_SCHEMA, _ts_filter("ts", s, e))
        if not table.num_rows:
            return LiquidationModel()
        table = table.sort_by([("ts", "ascending")])
        return LiquidationModel(tables.liq_frame_from_table(table), _trusted=True)

    def _series_files(self, exchange: str, symbol: str, interval: str) -> list[layout.PartFile]:
        iv = _norm_interval(interval)
        folder = self.root / layout.candle_target(exchange.lower(), symbol, iv, "x").rsplit("/", 1)[0]
        if not folder.is_dir():
            return []
        return [layout.PartFile(CANDLES, exchange.lower(), symbol, iv, p.stem, p)
                for p in sorted(folder.glob("*.parquet")) if not p.name.startswith(".")]

    def candles(self, exchange: str, symbol: str, interval: str, start=None, end=None) -> pd.DataFrame:
        """One series' candles indexed by UTC open time, ``start <= ts < end``."""
        s = parse_time(start) if start is not None else None
        e = parse_time(end) if end is not None else None
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in tables.OHLCV},
                             index=pd.DatetimeIndex([], tz="UTC", name="ts").as_unit("ns"))
        with atomic.snapshot(self.root):
            files = layout.in_months(self._series_files(exchange, symbol, interval), s, e)
            if not files:
                return empty
            table = _read(files, tables.CANDLE_SCHEMA, _ts_filter("ts", s, e), columns=["ts", *tables.OHLCV])
        if not table.num_rows:
            return empty
        frame = table.sort_by([("ts", "ascending")]).to_pandas()
        return frame.set_index("ts")

    def candle_coverage(self, exchange: str, symbol: str, interval: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Contiguous ranges held, as ``(first open, last open + interval)`` (end exclusive)."""
        step = parse_duration(_norm_interval(interval)) * 1_000_000_000
        with atomic.snapshot(self.root):
            files = self._series_files(exchange, symbol, interval)
            if not files:
                return []
            ts = np.sort(_read(files, tables.CANDLE_SCHEMA, None, columns=["ts"]).column("ts")
                         .cast(pa.int64()).to_numpy())
        if not len(ts):
            return []
        breaks = np.flatnonzero(np.diff(ts) > step)
        starts = np.concatenate(([ts[0]], ts[breaks + 1]))
        ends = np.concatenate((ts[breaks], [ts[-1]])) + step
        return [(pd.Timestamp(int(a), tz="UTC"), pd.Timestamp(int(b), tz="UTC")) for a, b in zip(starts, ends)]

    def gaps(self) -> pd.DataFrame:
        """Recorder disconnections, sorted by start."""
        path = self.root / GAPS_FILE
        if not path.exists():
            return pd.DataFrame({"exchange": pd.Series(dtype=str),
                                 "start": pd.Series(dtype="datetime64[ns, UTC]"),
                                 "end": pd.Series(dtype="datetime64[ns, UTC]"),
                                 "reason": pd.Series(dtype=str)})
        with atomic.snapshot(self.root):
            return tables.read_frame(path)

    def candle_series(self) -> list[tuple[str, str, str, str]]:
        """(exchange, symbol, interval, asset) of every stored candle series."""
        out = []
        seen = set()
        with atomic.snapshot(self.root):
            for f in layout.scan(self.root, CANDLES):
                key = (f.exchange, f.symbol, f.interval)
                if key in seen:
                    continue
                seen.add(key)
                asset = pq.read_table(f.path, columns=["asset"]).column("asset")
                out.append((*key, str(asset[0]) if len(asset) else f.symbol))
        return out

    def load_dataset(self) -> Dataset:
        """Everything in the store as the Dataset the GUI and CLI show."""
        prices = PriceModel()
        for exchange, symbol, interval, asset in self.candle_series():
            frame = self.candles(exchange, symbol, interval)
            if len(frame):
                prices.add(exchange, symbol, interval, frame, asset)
        return Dataset(prices, self.liquidations(), label=f"Local store: {self.root}", is_demo=False)

    def info(self) -> pd.DataFrame:
        """Per kind/exchange/symbol/interval: rows, first and last timestamp (from file footers)."""
        rows = []
        with atomic.snapshot(self.root):
            for kind in (LIQ, CANDLES):
                for f in layout.scan(self.root, kind):
                    n, lo, hi = _footer_stats(f.path)
                    rows.append((kind, f.exchange, f.symbol, f.interval, n, lo, hi))
        g = self.gaps()
        for ex, part in g.groupby("exchange", sort=True):
            rows.append((GAPS, str(ex), None, None, len(part), part["start"].min(), part["end"].max()))
        if not rows:
            return pd.DataFrame({c: [] for c in INFO_COLUMNS})
        df = pd.DataFrame(rows, columns=INFO_COLUMNS)
        out = df.groupby(["kind", "exchange", "symbol", "interval"], dropna=False, sort=False).agg(
            rows=("rows", "sum"), first=("first", "min"), last=("last", "max")).reset_index()
        out["rows"] = out["rows"].astype("int64")
        return out[INFO_COLUMNS]


def _write_partition(table: pa.Table, path: Path) -> None:
    """Module-level so tests can inject a failure while a batch is being staged."""
    tables.write_parquet(table, path)


def _ts_filter(col: str, start: pd.Timestamp | None, end: pd.Timestamp | None):
    flt = None
    if start is not None:
        flt = ds.field(col) >= pa.scalar(start.as_unit("ns"), type=tables.TS)
    if end is not None:
        cond = ds.field(col) < pa.scalar(end.as_unit("ns"), type=tables.TS)
        flt = cond if flt is None else flt & cond
    return flt


def _read(files: list[layout.PartFile], schema: pa.Schema, flt, columns: list[str] | None = None) -> pa.Table:
    dataset = ds.dataset([str(f.path) for f in files], schema=schema, format="parquet")
    return dataset.to_table(columns=columns, filter=flt)


def _footer_stats(path: Path) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
    md = pq.read_metadata(path)
    lo = hi = None
    for i in range(md.num_row_groups):
        st = md.row_group(i).column(0).statistics
        if st is None or not st.has_min_max:
            continue
        a, b = int(st.min_raw), int(st.max_raw)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    conv = (lambda v: None if v is None else pd.Timestamp(v, unit="ns", tz="UTC"))
    return md.num_rows, conv(lo), conv(hi)


def open_store(path: str | Path | None = None) -> Store:
    """The store at ``path`` (default: ``paths.data_dir()``; created on first write)."""
    return Store(paths.data_dir() if path is None else path)
