"""The local store: the user's imported and recorded data, on disk, crash-safe.

Parquet month files per kind/exchange/symbol(/interval), read with pyarrow
datasets (see README "Local store and importing files" for why not DuckDB).
Every append goes through :meth:`Store.commit`, which deduplicates against what
is stored, writes new partition files or small append segments, and publishes
them atomically (see :mod:`.atomic`), so a failed or cancelled import leaves
every byte of the store as it was. :meth:`Store.replace_liquidations` goes
through the same commit: appends alone can never take a wrong row back out
(after a parser fix, say), a replacement can.
"""
from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import paths
from ..errors import UserError
from ..dataset import Dataset
from ..liquidations import LiquidationModel
from ..prices import PriceModel
from ..progress import Cancelled, Task
from ..schema import (SchemaError, check_liquidation_values, empty_liquidations, normalize_candles,
                      normalize_liquidations, to_utc)
from ..version import app_version
from ..timeutil import TimeParseError, format_duration, parse_duration, parse_time
from . import atomic, layout, tables
from .layout import CANDLES, GAPS, GAPS_FILE, LIQ, STORE_FILE

SCHEMA_VERSION = 1
MAX_SEGMENTS = 8      # append segments per liquidation month before they are merged
COMPACT_RATIO = 0.25  # segments fold into the month's base file at this fraction of it
FORMAT = "liqscope-store"
INFO_COLUMNS = ["kind", "exchange", "symbol", "interval", "rows", "first", "last"]


class StoreError(UserError):
    """The store cannot be opened or written; the message is one line for the user.

    ``committed`` is True only when a write failed after its commit point: the
    change is on disk and the next open of the store completes it.
    """

    committed = False


class StoreIOError(StoreError, OSError):
    """The operating system refused a store file (disk full, read-only, permission denied...).

    Still an ``OSError`` (with its ``errno``) for callers that retry on those; one line for the user.
    """


class StoreVersionError(StoreError):
    """The store was written by a newer Liqscope with a schema this one cannot read."""


@dataclass(frozen=True)
class AppendResult:
    rows: int  # rows offered
    new: int   # rows the store did not hold before


@dataclass(frozen=True)
class ReplaceResult:
    """What a replacement changed; rows identical before and after count in neither."""

    removed: int  # stored rows in the replaced range that are gone
    added: int    # rows of the new frame the store did not hold


SymbolScope = Collection[str] | Callable[[str, str], bool] | None
TimeSpan = tuple["str | pd.Timestamp", "str | pd.Timestamp"]


class Scope:
    """The stored liquidations a replacement covers: exchanges x time spans x symbols.

    ``spans`` are ``[start, end)`` ranges (merged here). ``symbols`` is None (all),
    a collection of symbols, or ``keep(symbol, asset) -> bool`` -- the live
    recorder filters by asset too, so a replay needs the predicate form.
    """

    def __init__(self, exchanges: str | Iterable[str], spans: Sequence[TimeSpan], symbols: SymbolScope = None):
        names = [exchanges] if isinstance(exchanges, str) else list(exchanges or [])
        self.exchanges = frozenset(str(e).lower() for e in names)
        if not self.exchanges:
            raise SchemaError("a replacement needs at least one exchange")
        pairs = []
        for start, end in spans:
            a, b = _time(start), _time(end)
            if b <= a:
                raise SchemaError(f"a replaced range must end after it starts ({a.isoformat()} to {b.isoformat()})")
            pairs.append((a.as_unit("ns").value, b.as_unit("ns").value))
        if not pairs:
            raise SchemaError("a replacement needs a time range")
        pairs.sort()
        merged = [list(pairs[0])]
        for a, b in pairs[1:]:
            if a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.starts = np.array([a for a, _ in merged], dtype=np.int64)
        self.ends = np.array([b for _, b in merged], dtype=np.int64)
        if symbols is None or callable(symbols):
            self.symbols = symbols
        else:
            self.symbols = frozenset([symbols] if isinstance(symbols, str) else (str(x) for x in symbols))

    def may_touch(self, exchange: str, symbol: str, month: str) -> bool:
        """Whether the partition of ``exchange``/``symbol``/``month`` can hold covered rows."""
        if exchange not in self.exchanges:
            return False
        if isinstance(self.symbols, frozenset) and symbol not in self.symbols:
            return False
        lo = pd.Timestamp(month + "-01", tz="UTC")
        m_start, m_end = lo.value, (lo + pd.offsets.MonthBegin(1)).value
        i = int(np.searchsorted(self.ends, m_start, side="right"))
        return i < len(self.starts) and int(self.starts[i]) < m_end

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` (ts, exchange, symbol, asset) inside this scope."""
        if not len(frame):
            return np.zeros(0, dtype=bool)
        ts = pd.DatetimeIndex(frame["ts"]).as_unit("ns").asi8
        i = np.searchsorted(self.starts, ts, side="right") - 1
        out = (i >= 0) & (ts < self.ends[np.maximum(i, 0)])
        out &= _per_value(frame["exchange"], lambda e: str(e).lower() in self.exchanges)
        if isinstance(self.symbols, frozenset):
            out &= _per_value(frame["symbol"], lambda s: str(s) in self.symbols)
        elif self.symbols is not None:
            keep = self.symbols
            pairs = pd.DataFrame({"s": frame["symbol"].to_numpy(), "a": frame["asset"].to_numpy()})
            ok = np.zeros(len(frame), dtype=bool)
            for (sym, asset), idx in pairs.groupby(["s", "a"], sort=False, observed=True).indices.items():
                ok[idx] = bool(keep(str(sym), str(asset)))
            out &= ok
        return out


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    check_liquidation_values(frame)
    return frame


def _per_value(values: pd.Series, fn: Callable[[object], bool]) -> np.ndarray:
    """``fn`` of each row's value, evaluated once per distinct value."""
    cat = values.array if isinstance(values.dtype, pd.CategoricalDtype) else pd.Categorical(values)
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


def _time(value) -> pd.Timestamp:
    """A UTC time the store can hold (nanoseconds: 1677-09-21 to 2262-04-11), else a one-line SchemaError."""
    try:
        return parse_time(value).as_unit("ns")
    except TimeParseError as exc:
        raise SchemaError(str(exc)) from None
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise SchemaError(f"time {str(value)[:40]!r} is outside the range Liqscope can hold "
                          f"({pd.Timestamp.min.isoformat()[:10]} to {pd.Timestamp.max.isoformat()[:10]})") from None


def _norm_interval(interval: str) -> str:
    try:
        return format_duration(parse_duration(str(interval)))
    except TimeParseError as exc:
        raise SchemaError(str(exc)) from None


MAX_INTERVAL_S = 366 * 86400  # a candle interval longer than a year is a typo, not a market's


def _check_name(what: str, value: object, *, slash: bool = False) -> None:
    """A one-line :class:`StoreError` naming ``value`` unless it can name a store folder (layout.name_problem):
    checked before the commit point, so a name the file system would refuse never reaches the journal."""
    problem = layout.name_problem(what, value, slash=slash)
    if problem:
        raise StoreError(problem)


def _check_frame_names(frame: pd.DataFrame) -> None:
    for col in ("exchange", "symbol"):
        for value in pd.unique(frame[col]) if len(frame) else ():
            _check_name(col, value, slash=col == "symbol")


class Batch:
    """Appends committed together by :meth:`Store.commit`: all land or none do."""

    def __init__(self) -> None:
        self.items: list[tuple[str, pd.DataFrame]] = []
        self.scopes: dict[int, Scope] = {}  # item index -> what that replacement removes

    def __len__(self) -> int:
        return len(self.items)

    def add_liquidations(self, df: pd.DataFrame, *, trusted: bool = False) -> int:
        """Queue liquidations; ``trusted`` skips re-validation of a canonical frame, but never the
        value bounds (``schema.BOUNDS``): the store must not hold a row that poisons every total."""
        frame = _checked(df) if trusted else normalize_liquidations(df)
        _check_frame_names(frame)
        self.items.append((LIQ, frame))
        return len(self.items) - 1

    def replace_liquidations(self, df: pd.DataFrame, *, exchanges: str | Iterable[str], start=None, end=None,
                             symbols: SymbolScope = None, spans: Sequence[TimeSpan] | None = None,
                             trusted: bool = False) -> int:
        """Queue a replacement: the stored liquidations of ``exchanges`` (and ``symbols``)
        with ``start <= ts < end`` (or inside any of ``spans``) are removed and ``df``
        takes their place, in the same commit as the rest of the batch. Every row of
        ``df`` must lie inside that scope, so replaying the same frame is a no-op.
        Stored rows are removed before any of the batch's rows are added.
        """
        scope = Scope(exchanges, _spans(start, end, spans), symbols)
        frame = _checked(df) if trusted else normalize_liquidations(df)
        _check_frame_names(frame)
        outside = ~scope.mask(frame)
        if outside.any():
            row = frame[outside].iloc[0]
            raise SchemaError(f"{int(outside.sum())} replacement rows lie outside the replaced exchanges, range or "
                              f"symbols (first: {row['ts'].isoformat()} {row['exchange']} {row['symbol']})")
        self.items.append((LIQ, frame))
        self.scopes[len(self.items) - 1] = scope
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
            self._recover_on_open()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def _recover_on_open(self) -> None:
        """Finish (or discard) an interrupted write. Never fails the open: what cannot be finished now
        (disk full, read-only, a refused journal that cannot be set aside) is one warning line, the
        store is read as it is, and the next open or write tries again."""
        try:
            with atomic.StoreLock(self.root):
                atomic.recover(self.root)
        except atomic.Refused as exc:
            atomic.log.warning("liqscope: warning: the store at %s: %s", self.root, exc)
        except OSError as exc:
            if os.path.lexists(self.root / atomic.JOURNAL):
                atomic.log.warning("liqscope: warning: cannot finish an interrupted write to the store at %s: %s; "
                                   "it is read as it is until an open or write can finish it",
                                   self.root, _os_hint(exc))

    # -- version -----------------------------------------------------------------
    def _check_version(self) -> int | None:
        meta_path = self.root / STORE_FILE
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            fmt, ver = meta.get("format"), meta["schema_version"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise StoreError(f"{meta_path} is unreadable ({_first_line(exc)}); not a Liqscope store?") from None
        if fmt != FORMAT:
            raise StoreError(f"{meta_path} is not a Liqscope store (format {fmt!r})")
        if type(ver) is not int or ver < 1:  # JSON 1e999 is float('inf'), 1.5 a float: neither is a version
            raise StoreError(f"{meta_path}: schema_version {str(ver)[:40]!r} is not a whole number >= 1; "
                             "a damaged or hand-edited store.json?")
        if ver > SCHEMA_VERSION:
            by = meta.get("written_by", "a newer Liqscope")
            raise StoreVersionError(
                f"the store at {self.root} was written by {by} (store schema {ver}); this Liqscope "
                f"({app_version()}) reads schema {SCHEMA_VERSION} or older: update Liqscope or use another --data-dir")
        return ver

    def _init_files(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in (atomic.READ_LOCK, atomic.STAGING, *atomic.DATA_DIRS):  # refused now, not after the commit point
            atomic.check_no_links(self.root, [name])
        atomic.touch_nofollow(self.root / atomic.READ_LOCK)
        if not (self.root / STORE_FILE).exists():
            meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "written_by": f"liqscope {app_version()}"}
            atomic.write_bytes_atomic(self.root / STORE_FILE, (json.dumps(meta, indent=2) + "\n").encode())
            self.schema_version = SCHEMA_VERSION

    # -- writing -------------------------------------------------------------------
    def append_liquidations(self, df: pd.DataFrame) -> AppendResult:
        """Add liquidations in the canonical schema; rows already held are skipped."""
        batch = Batch()
        batch.add_liquidations(df)
        return self.commit(batch)[0]

    def replace_liquidations(self, df: pd.DataFrame, *, exchanges: str | Iterable[str], start=None, end=None,
                             symbols: SymbolScope = None,
                             spans: Sequence[TimeSpan] | None = None) -> ReplaceResult:
        """Atomically swap the stored liquidations of ``exchanges`` in ``[start, end)``
        (optionally only ``symbols``) for ``df``; other rows are untouched.

        Appends only ever add and dedupe identical rows, so a row stored wrong (a
        flipped side, a wrong contract size) would stay next to its correction.
        Same commit as appends: a failure leaves the store byte-for-byte unchanged.
        ``spans`` replaces several ranges at once; ``symbols`` may be a predicate
        ``keep(symbol, asset)``. See :meth:`Batch.replace_liquidations`.
        """
        batch = Batch()
        batch.replace_liquidations(df, exchanges=exchanges, start=start, end=end, symbols=symbols, spans=spans)
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

    def commit(self, batch: Batch, *, task: Task | None = None) -> list[AppendResult | ReplaceResult]:
        """Merge every queued frame into its partitions and replace them atomically.

        One result per queued item, in order: :class:`ReplaceResult` for
        replacements, :class:`AppendResult` for everything else.

        ``task`` (:mod:`liqscope.models.progress`; None: nobody watching) is
        checked between partitions until the commit point; if the caller
        cancelled, :class:`~liqscope.models.progress.Cancelled` is raised and
        the store is untouched.
        """
        if not len(batch):
            return []
        tx: atomic.Transaction | None = None
        with os_errors(self.root, "write to", lambda: tx is not None and tx.committed), \
                atomic.StoreLock(self.root):
            atomic.recover(self.root)
            self._check_version()
            self._init_files()
            tx = atomic.Transaction(self.root)
            try:
                new = {i: 0 for i in range(len(batch))}
                removed = {i: 0 for i in batch.scopes}
                for target, kind, parts, scopes in self._plan(batch):
                    if task is not None:
                        task.check()
                    if kind == LIQ and scopes:
                        added, gone = self._replace_liq_partition(tx, target, parts, scopes)
                        for tag, n in added.items():
                            new[tag] += n
                        for tag, n in gone.items():
                            removed[tag] += n
                        continue
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
                if task is not None:
                    task.check()
                tx.commit()
            except BaseException:
                tx.abort()
                raise
        return [ReplaceResult(removed[i], new[i]) if i in batch.scopes else AppendResult(len(frame), new[i])
                for i, (_, frame) in enumerate(batch.items)]

    def _replace_liq_partition(self, tx: atomic.Transaction, target: str, parts,
                               scopes: list[tuple[int, Scope]]) -> tuple[dict[int, int], dict[int, int]]:
        """Rewrite one liquidation month with the rows ``scopes`` cover replaced.

        Reads the whole partition (base and segments) and writes it back as one
        base file, or deletes it if nothing is left. Rows covered by several
        scopes count as removed by the first. Appends in the same batch are
        merged after the removal. Nothing is written if nothing changed.
        """
        base, segs = layout.partition_files(self.root, target)
        files = ([base] if base.exists() else []) + [p for _, p in segs]
        existing = tables.concat([tables.read_frame(f) for f in files]) if files else None
        owner = np.full(0 if existing is None else len(existing), -1)
        for tag, scope in scopes if existing is not None else ():
            owner[(owner < 0) & scope.mask(existing)] = tag
        covered = owner >= 0
        mine = [(t, p) for t, p in parts if t in dict(scopes)]
        appended = [(t, p) for t, p in parts if t not in dict(scopes)]
        old = existing[covered].reset_index(drop=True) if covered.any() else None
        rows, added, gone = tables.diff_replacement(old, mine)
        removed = pd.Series(owner[covered][gone]).value_counts()
        counts = {t: int(added.get(t, 0)) for t, _ in mine}
        if appended:
            counts.update(tables.merge_liquidations(existing, appended)[1])
        gone_by_tag = {t: int(removed.get(t, 0)) for t, _ in scopes}
        if not gone.any() and not any(counts.values()):
            return counts, gone_by_tag
        frames = [f for f in [existing[~covered] if existing is not None else None, rows, *(p for _, p in appended)]
                  if f is not None and len(f)]
        rel = lambda p: p.relative_to(self.root).as_posix()  # noqa: E731
        for _, p in segs:
            tx.delete(rel(p))
        if frames:
            merged = tables.merge_liquidations(tables.concat(frames), [])[0]
            _write_partition(tables.to_table(merged, tables.LIQ_SCHEMA), tx.stage(target))
        elif base.exists():
            tx.delete(rel(base))
        return counts, gone_by_tag

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
        """(target file, kind, [(item index, rows)], [(item index, scope)]) for every
        partition touched: by queued rows, or holding rows a replacement covers."""
        plan: dict[str, tuple[str, list]] = {}
        where: dict[str, tuple[str, str, str]] = {}  # liquidation target -> (exchange, symbol, month)
        if batch.scopes:
            for f in layout.scan(self.root, LIQ):
                if any(s.may_touch(f.exchange, f.symbol, f.month) for s in batch.scopes.values()):
                    target = layout.liq_target(f.exchange, f.symbol, f.month)
                    plan.setdefault(target, (LIQ, []))
                    where[target] = (f.exchange, f.symbol, f.month)
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
                    where[target] = (str(key[0]), str(key[1]), str(key[2]))
                else:
                    target = layout.candle_target(first["exchange"], first["symbol"], first["interval"], str(key))
                plan.setdefault(target, (kind, []))[1].append((tag, frame.iloc[idx]))
        out = []
        for t, (k, parts) in sorted(plan.items()):
            scopes = [(tag, s) for tag, s in batch.scopes.items() if t in where and s.may_touch(*where[t])]
            out.append((t, k, parts, scopes))
        return out

    # -- reading -------------------------------------------------------------------
    def has_data(self) -> bool:
        return bool(layout.scan(self.root, LIQ) or layout.scan(self.root, CANDLES))

    def liquidations(self, start=None, end=None) -> LiquidationModel:
        """Stored liquidations with ``start <= ts < end`` (either bound may be None)."""
        s = _time(start) if start is not None else None
        e = _time(end) if end is not None else None
        with atomic.snapshot(self.root):
            files = layout.in_months(layout.scan(self.root, LIQ), s, e)
            if not files:
                return LiquidationModel()
            table = _read(files, tables.LIQ_SCHEMA, _ts_filter("ts", s, e))
        if not table.num_rows:
            return LiquidationModel()
        table = table.sort_by([("ts", "ascending")])
        return LiquidationModel(tables.liq_frame_from_table(table), _trusted=True)

    def covered_liquidations(self, scope: Scope) -> pd.DataFrame:
        """The stored liquidations ``scope`` covers -- what replacing it (by nothing: a delete)
        would remove -- sorted by time. Reads only the partitions the scope can touch."""
        with atomic.snapshot(self.root):
            files = [f for f in layout.scan(self.root, LIQ) if scope.may_touch(f.exchange, f.symbol, f.month)]
            table = _read(files, tables.LIQ_SCHEMA, _ts_filter(
                "ts", pd.Timestamp(int(scope.starts[0]), tz="UTC"), pd.Timestamp(int(scope.ends[-1]), tz="UTC"))) \
                if files else None
        if table is None or not table.num_rows:
            return empty_liquidations()
        frame = tables.liq_frame_from_table(table.sort_by([("ts", "ascending")]))
        return frame[scope.mask(frame)].reset_index(drop=True)

    def _series_files(self, exchange: str, symbol: str, interval: str) -> list[layout.PartFile]:
        iv = _norm_interval(interval)
        folder = self.root / layout.candle_target(exchange.lower(), symbol, iv, "x").rsplit("/", 1)[0]
        if not folder.is_dir():
            return []
        return [layout.PartFile(CANDLES, exchange.lower(), symbol, iv, p.stem, p)
                for p in sorted(folder.glob("*.parquet")) if not p.name.startswith(".")]

    def candles(self, exchange: str, symbol: str, interval: str, start=None, end=None) -> pd.DataFrame:
        """One series' candles indexed by UTC open time, ``start <= ts < end``."""
        s = _time(start) if start is not None else None
        e = _time(end) if end is not None else None
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


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or use another --data-dir",
    errno.EDQUOT: "the disk quota is used up: free some space or use another --data-dir",
    errno.EROFS: "the store is on a read-only file system: use another --data-dir",
    errno.EACCES: "permission denied: make the store folder writable or use another --data-dir",
    errno.EPERM: "permission denied: make the store folder writable or use another --data-dir",
    errno.EISDIR: "a folder stands where the store keeps a file: remove it",
    errno.ENOTDIR: "a file stands where the store needs a folder: is --data-dir a file?",
    errno.EEXIST: "a file stands where the store needs a folder: is --data-dir a file?",
    errno.ENAMETOOLONG: "a file name is too long for this file system",
    errno.ELOOP: "a symbolic link stands where the store keeps a file; Liqscope never follows links inside "
                 "a store: remove it",
    errno.EMFILE: "too many open files: close some programs or raise the limit (ulimit -n)",
    errno.ENFILE: "too many open files on this system: close some programs",
    errno.EIO: "input/output error: a failing disk or a disconnected drive?",
}


def _os_hint(exc: OSError) -> str:
    hint = _OS_HINTS.get(exc.errno or 0, exc.strerror or _first_line(exc))
    return hint + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def os_errors(root: Path, doing: str, committed: Callable[[], bool] = lambda: False):
    """Turn an OSError (disk full, read-only, permission denied, a folder where a file belongs)
    into a one-line :class:`StoreError` naming the store, the file and what to do."""
    try:
        yield
    except StoreError:
        raise
    except atomic.Refused as exc:  # a path outside the store or a link inside it: nothing was applied
        raise StoreError(f"cannot {doing} the store at {root}: {exc}") from None
    except atomic.Abandoned as exc:  # committed, and set aside what can never be placed
        err = StoreError(f"the store at {root}: {exc}")
        err.committed = True
        raise err from None
    except OSError as exc:
        err = StoreIOError(f"cannot {doing} the store at {root}: {_os_hint(exc)}")
        err.errno, err.committed = exc.errno, bool(committed())
        if err.committed:
            err.args = (f"{err.args[0]}; the change was committed and completes when the store is next opened",)
        raise err from None


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
