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
from typing import Callable, Collection, Iterable, Sequence, TypeVar

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
from . import atomic, layout, reading, tables
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


def damage_message(path: Path, reason: str) -> str:
    return f"{path} is damaged ({reason}): run `liqscope store check --quarantine` to move it aside"


class StoreDamagedError(StoreError):
    """A store file a read needs is damaged (truncated, empty, not Parquet, wrong schema, bytes changed
    on disk): one line naming it and what to do. Reads that do not need it are unaffected."""

    def __init__(self, path: Path, reason: str):
        super().__init__(damage_message(path, reason))
        self.path, self.reason = Path(path), reason


@dataclass(frozen=True)
class DamagedFile:
    """A damaged store file a read left out: where, what is wrong, and the partition it held
    (``month`` etc. None where the file is not a month partition, e.g. ``gaps/gaps.parquet``)."""

    path: Path
    reason: str
    kind: str
    exchange: str | None = None
    symbol: str | None = None
    interval: str | None = None
    month: str | None = None

    @classmethod
    def of(cls, exc: tables.Damaged, part: layout.PartFile | None = None, kind: str = GAPS) -> "DamagedFile":
        if part is None:
            return cls(exc.path, exc.reason, kind)
        return cls(exc.path, exc.reason, part.kind, part.exchange, part.symbol, part.interval, part.month)

    @property
    def message(self) -> str:
        return damage_message(self.path, self.reason)

    def overlaps(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
        """Whether the file can hold rows with ``start <= ts < end`` (None: unbounded)."""
        try:
            lo = pd.Timestamp(f"{self.month}-01", tz="UTC")
        except (TypeError, ValueError):
            return True  # no month partition: it may hold any time
        hi = lo + pd.offsets.MonthBegin(1)
        return (end is None or lo < end) and (start is None or start < hi)


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
        """Finish (or discard) an interrupted write -- only if no writer holds the lock: an open never
        waits (a writer at work owns staging/ and the journal and finishes them itself). Never fails
        the open: what cannot be finished now (disk full, read-only, a refused journal that cannot be
        set aside) is one warning line, reads see what was committed (see ``_listing``), and the next
        open or write tries again. Leftover staging alone is nothing to finish: no warning."""
        try:
            with reading.lock_if_free(self.root) as free:
                if free:
                    atomic.recover(self.root)
        except atomic.Refused as exc:
            atomic.log.warning("liqscope: warning: the store at %s: %s", self.root, exc)
        except OSError as exc:
            if os.path.lexists(self.root / atomic.JOURNAL):
                atomic.log.warning("liqscope: warning: cannot finish an interrupted write to the store at %s: %s; "
                                   "reads see what it committed until an open or write can finish it",
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
        with _damage_errors(), os_errors(self.root, "write to", lambda: tx is not None and tx.committed), \
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
            table = tables.read(files, tables.LIQ_SCHEMA, flt=flt)  # checked: a damaged file is not merged over
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
    # Reads see the last committed state and never wait on a writer (see .reading): files are
    # listed through a commit still being applied (or left half applied by a crash, or by a
    # store that cannot be written), under a reader snapshot that gives up waiting. Only files
    # a read needs are opened (month, exchange, symbol, series), each checked as it is read:
    # a damaged one is a one-line StoreDamagedError naming it, or, for the whole-store load,
    # left out and named (DamagedFile) while everything else loads.

    @property
    def notes(self) -> list[str]:
        """One-line remarks on what reads could not see (e.g. a commit journal that cannot be read)."""
        return list(self.__dict__.get("_notes", {}))

    def _note(self, text: str) -> None:
        self.__dict__.setdefault("_notes", {})[text] = None

    def _pending(self) -> reading.Pending | None:
        try:
            return reading.pending(self.root)
        except atomic.Refused:
            return None  # never applied: the files as they are are the store (the next write sets it aside)
        except OSError as exc:
            self._note(f"cannot read the commit journal of the store at {self.root} ({_os_hint(exc)}): "
                       "the data may be behind its last write")
            return None

    def _listing(self, kind: str, folder: str | None = None) -> list[layout.PartFile]:
        """The files of ``kind`` (only those in ``folder``, relative, if given) in the last committed state."""
        if folder is None:
            files = layout.scan(self.root, kind)
        else:
            where = self.root / folder
            named = [(_part_keys(f"{folder}/{p.name}"), p) for p in sorted(where.glob("*.parquet"))] \
                if where.is_dir() else []
            files = [layout.PartFile(kind, *keys, p) for keys, p in named if keys is not None]
        pend = self._pending()
        if pend is None:
            return files
        out = {f.path.relative_to(self.root).as_posix(): f for f in files}
        for target, staged in pend.staged.items():
            keys = _part_keys(target)
            inside = folder is None or target.startswith(folder + "/")
            if keys is not None and target.split("/")[0] == kind and inside:
                out[target] = layout.PartFile(kind, *keys, staged)
        for target in pend.deletes:
            out.pop(target, None)
        return sorted(out.values(), key=lambda f: (f.exchange, f.symbol, f.interval or "", f.month, f.path.name))

    def _gaps_path(self) -> Path | None:
        pend = self._pending()
        if pend is not None and GAPS_FILE in pend.deletes:
            return None
        if pend is not None and GAPS_FILE in pend.staged:
            return pend.staged[GAPS_FILE]
        path = self.root / GAPS_FILE
        return path if path.exists() else None

    def _consistent(self, read: Callable[[Callable | None], _T], on_damage: Callable | None = None) -> _T:
        """``read(keep)`` -- list, then open, files -- seeing one committed state without waiting long on
        a writer; ``keep`` (None: raise) is where it puts each DamagedFile it left out, handed to
        ``on_damage`` once it succeeded. OS refusals and damage are one-line StoreErrors."""
        for attempt in range(3):
            left_out: list[DamagedFile] = []
            with _read_errors(self.root), reading.read_snapshot(self.root) as locked:
                try:
                    result = read(left_out.append if on_damage is not None else None)
                except FileNotFoundError:
                    if locked or attempt == 2:
                        raise
                    continue  # no lock (a writer stuck renaming): a file moved under us, list again
            for d in left_out:
                on_damage(d)
            return result
        raise AssertionError("unreachable")

    def has_data(self) -> bool:
        return bool(self._listing(LIQ) or self._listing(CANDLES))

    def liquidations(self, start=None, end=None, *, exchanges: Iterable[str] | None = None,
                     symbols: Iterable[str] | None = None) -> LiquidationModel:
        """Stored liquidations with ``start <= ts < end`` (either bound may be None), optionally only
        of ``exchanges`` and ``symbols``. Files of other months, exchanges or symbols are never
        opened, so a damaged one spoils only the reads that need it (:class:`StoreDamagedError`)."""
        return _liq_model(self._liq_table(start, end, exchanges, symbols))

    def _liq_table(self, start=None, end=None, exchanges=None, symbols=None, on_damage=None) -> pa.Table | None:
        s = _time(start) if start is not None else None
        e = _time(end) if end is not None else None
        ex = None if exchanges is None else {str(x).lower() for x in exchanges}
        sy = None if symbols is None else {str(x) for x in symbols}

        def read(keep):
            files = [f for f in layout.in_months(self._listing(LIQ), s, e)
                     if (ex is None or f.exchange in ex) and (sy is None or f.symbol in sy)]
            return _read(files, tables.LIQ_SCHEMA, _ts_filter("ts", s, e), keep=keep) if files else None
        return self._consistent(read, on_damage)

    def covered_liquidations(self, scope: Scope) -> pd.DataFrame:
        """The stored liquidations ``scope`` covers -- what replacing it (by nothing: a delete)
        would remove -- sorted by time. Reads only the partitions the scope can touch."""
        def read(keep):
            files = [f for f in self._listing(LIQ) if scope.may_touch(f.exchange, f.symbol, f.month)]
            return _read(files, tables.LIQ_SCHEMA, _ts_filter(
                "ts", pd.Timestamp(int(scope.starts[0]), tz="UTC"), pd.Timestamp(int(scope.ends[-1]), tz="UTC"))) \
                if files else None
        table = self._consistent(read)
        if table is None or not table.num_rows:
            return empty_liquidations()
        frame = tables.liq_frame_from_table(table.sort_by([("ts", "ascending")]))
        return frame[scope.mask(frame)].reset_index(drop=True)

    def _series_files(self, exchange: str, symbol: str, interval: str) -> list[layout.PartFile]:
        iv = _norm_interval(interval)
        return self._listing(CANDLES, layout.candle_target(exchange.lower(), symbol, iv, "x").rsplit("/", 1)[0])

    def candles(self, exchange: str, symbol: str, interval: str, start=None, end=None) -> pd.DataFrame:
        """One series' candles indexed by UTC open time, ``start <= ts < end``; only that
        series' files of those months are opened (:class:`StoreDamagedError` if one is damaged)."""
        return self._candles(exchange, symbol, interval, start, end)

    def _candles(self, exchange, symbol, interval, start=None, end=None, on_damage=None) -> pd.DataFrame:
        s = _time(start) if start is not None else None
        e = _time(end) if end is not None else None
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in tables.OHLCV},
                             index=pd.DatetimeIndex([], tz="UTC", name="ts").as_unit("ns"))

        def read(keep):
            files = layout.in_months(self._series_files(exchange, symbol, interval), s, e)
            return _read(files, tables.CANDLE_SCHEMA, _ts_filter("ts", s, e), columns=["ts", *tables.OHLCV],
                         keep=keep) if files else None
        table = self._consistent(read, on_damage)
        if table is None or not table.num_rows:
            return empty
        frame = table.sort_by([("ts", "ascending")]).to_pandas()
        return frame.set_index("ts")

    def candle_coverage(self, exchange: str, symbol: str, interval: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Contiguous ranges held, as ``(first open, last open + interval)`` (end exclusive)."""
        step = parse_duration(_norm_interval(interval)) * 1_000_000_000

        def read(keep):
            files = self._series_files(exchange, symbol, interval)
            return _read(files, tables.CANDLE_SCHEMA, None, columns=["ts"]) if files else None
        table = self._consistent(read)
        if table is None or not table.num_rows:
            return []
        ts = np.sort(table.column("ts").cast(pa.int64()).to_numpy())
        breaks = np.flatnonzero(np.diff(ts) > step)
        starts = np.concatenate(([ts[0]], ts[breaks + 1]))
        ends = np.concatenate((ts[breaks], [ts[-1]])) + step
        return [(pd.Timestamp(int(a), tz="UTC"), pd.Timestamp(int(b), tz="UTC")) for a, b in zip(starts, ends)]

    def gaps(self) -> pd.DataFrame:
        """Recorder disconnections, sorted by start."""
        return self._gaps()

    def _gaps(self, on_damage=None) -> pd.DataFrame:
        def read(keep):
            path = self._gaps_path()
            if path is None:
                return None
            try:
                return tables.read_frame(path, tables.GAP_SCHEMA)
            except tables.Damaged as exc:
                if keep is None:
                    raise
                keep(DamagedFile.of(exc, None, GAPS))
                return None
        frame = self._consistent(read, on_damage)
        if frame is not None:
            return frame
        return pd.DataFrame({"exchange": pd.Series(dtype=str),
                             "start": pd.Series(dtype="datetime64[ns, UTC]"),
                             "end": pd.Series(dtype="datetime64[ns, UTC]"),
                             "reason": pd.Series(dtype=str)})

    def candle_series(self) -> list[tuple[str, str, str, str]]:
        """(exchange, symbol, interval, asset) of every stored candle series."""
        return self._candle_series()

    def _candle_series(self, on_damage=None) -> list[tuple[str, str, str, str]]:
        def read(keep):
            series: dict[tuple, list[layout.PartFile]] = {}
            for f in self._listing(CANDLES):
                series.setdefault((f.exchange, f.symbol, f.interval), []).append(f)
            out = []
            for key, files in series.items():
                asset = None
                for f in files:  # the first file that can tell (with ``keep``: damaged ones are skipped)
                    column = _read([f], tables.CANDLE_SCHEMA, None, columns=["asset"], keep=keep).column("asset")
                    if len(column):
                        asset = str(column[0])
                        break
                out.append((*key, asset or key[1]))
            return out
        return self._consistent(read, on_damage)

    def load_dataset(self) -> Dataset:
        """Everything in the store as the Dataset the GUI and CLI show.

        A damaged file is left out and named, once, in the dataset's ``damaged`` (DamagedFile)
        and ``notes``: everything else loads, windows that do not need it read right, and the
        commands refuse a window that does (:meth:`Dataset.damaged_in`).
        """
        damaged: dict[Path, DamagedFile] = {}

        def keep(d: DamagedFile) -> None:
            damaged.setdefault(d.path, d)
        prices = PriceModel()
        for exchange, symbol, interval, asset in self._candle_series(keep):
            frame = self._candles(exchange, symbol, interval, on_damage=keep)
            if len(frame):
                prices.add(exchange, symbol, interval, frame, asset)
        liqs = _liq_model(self._liq_table(on_damage=keep))
        return Dataset(prices, liqs, label=f"Local store: {self.root}", is_demo=False,
                       notes=self.notes + [d.message for d in damaged.values()], damaged=list(damaged.values()))

    def info(self) -> pd.DataFrame:
        """Per kind/exchange/symbol/interval: rows, first and last timestamp (from file footers).

        A damaged file is left out and named in :attr:`notes` (one line each; ``store check``
        reads every page, this only footers).
        """
        def keep(d: DamagedFile) -> None:
            self._note(d.message)

        def read(keep):
            rows = []
            for kind, schema in ((LIQ, tables.LIQ_SCHEMA), (CANDLES, tables.CANDLE_SCHEMA)):
                for f in self._listing(kind):
                    try:
                        n, lo, hi = _footer_stats(f.path, schema)
                    except tables.Damaged as exc:
                        if keep is None:
                            raise
                        keep(DamagedFile.of(exc, f))
                        continue
                    rows.append((kind, f.exchange, f.symbol, f.interval, n, lo, hi))
            return rows
        rows = self._consistent(read, keep)
        g = self._gaps(keep)
        for ex, part in g.groupby("exchange", sort=True):
            rows.append((GAPS, str(ex), None, None, len(part), part["start"].min(), part["end"].max()))
        if not rows:
            return pd.DataFrame({c: [] for c in INFO_COLUMNS})
        df = pd.DataFrame(rows, columns=INFO_COLUMNS)
        out = df.groupby(["kind", "exchange", "symbol", "interval"], dropna=False, sort=False).agg(
            rows=("rows", "sum"), first=("first", "min"), last=("last", "max")).reset_index()
        out["rows"] = out["rows"].astype("int64")
        return out[INFO_COLUMNS]


_T = TypeVar("_T")


def _part_keys(target: str) -> tuple[str, str, str | None, str] | None:
    """(exchange, symbol, interval, month) of a partition file's relative path; None if it is none."""
    parts = target.split("/")
    name = parts[-1]
    if not name.endswith(".parquet") or name.startswith("."):
        return None
    month = name.split(".")[0]
    if parts[0] == LIQ and len(parts) == 4:
        return layout.decode(parts[1]), layout.decode(parts[2]), None, month
    if parts[0] == CANDLES and len(parts) == 5:
        return layout.decode(parts[1]), layout.decode(parts[2]), layout.decode(parts[3]), month
    return None


def _liq_model(table: pa.Table | None) -> LiquidationModel:
    if table is None or not table.num_rows:
        return LiquidationModel()
    return LiquidationModel(tables.liq_frame_from_table(table.sort_by([("ts", "ascending")])), _trusted=True)


@contextmanager
def _damage_errors():
    """A damaged store file (tables.Damaged) as a one-line StoreDamagedError naming it."""
    try:
        yield
    except tables.Damaged as exc:
        raise StoreDamagedError(exc.path, exc.reason) from None


@contextmanager
def _read_errors(root: Path):
    """A damaged file or an OS refusal while reading, as a one-line StoreError."""
    with _damage_errors(), os_errors(root, "read"):
        yield


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


def _read(files: list[layout.PartFile], schema: pa.Schema, flt, columns: list[str] | None = None,
          keep: Callable[[DamagedFile], None] | None = None) -> pa.Table:
    """Rows of ``files``, each checked (tables.read); a damaged one raises, or with ``keep`` goes there."""
    by_path = {f.path: f for f in files}
    on_damage = None if keep is None else (lambda exc: keep(DamagedFile.of(exc, by_path.get(exc.path))))
    return tables.read([f.path for f in files], schema, columns, flt, on_damage)


def _footer_stats(path: Path, schema: pa.Schema) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
    md = tables.footer(path, schema)
    ts = md.schema.to_arrow_schema().get_field_index("ts")
    lo = hi = None
    for i in range(md.num_row_groups):
        st = md.row_group(i).column(ts).statistics
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
