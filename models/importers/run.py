"""Import files into the store: the Qt-free entry point the CLI and the GUI call.

Files are read and committed in batches, so memory holds a batch, not a file: liquidation files are
read about ``batch_rows`` rows at a time (default :data:`.csvread.BATCH_ROWS`; the pyarrow CSV reader on
blocks of whole lines, Parquet a row group batch at a time), each batch converted and checked exactly as
a whole file would be, and the store receives a commit (``Store.commit`` of a ``Batch``) whenever that
many rows are waiting. Candle files (a month of 1-minute candles is 45k rows) are read whole: a series
is checked for repeated open times across the file.

What lands when something goes wrong. Rows wait in memory until a batch's worth of rows is ready (or
the last file ends), so an import of fewer rows than one batch -- all files together -- is one store
commit: a bad file, an exception or a cancel leaves the store exactly as it was. A longer import commits
batch after batch; a bad row, a cancel or a crash stops it after the batches already committed (each a
whole Delta commit, never a part of one), and the error says so (``... (partly imported: N rows before
it are stored; importing the file again adds the rest)``, ``InputError.committed``). Every commit is
insert-if-absent on the event key, so importing the file again once it is fixed completes the import
without repeating a row, and its report counts only the rows that were missing as new.

Progress and cancel follow :mod:`liqscope.models.progress`: the caller's task gets ``progress(bytes
read, bytes of all files, "reading NAME")`` from the importing thread between blocks of input, and a
cancel raises :class:`~liqscope.models.progress.Cancelled` (``ImportCancelled``) there or before a commit.
"""
from __future__ import annotations

import re
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from ..progress import Step, Task
from ..schema import SchemaError, check_values
from ..store import Batch, Store, StoreError, open_store
from ..store.provenance import file_source
from ..timeutil import TimeParseError
from . import csvread
from .build import EVENT_KEY, SIDE_CONVENTIONS, Options, Parsed, drop_repeats, whole
from .contracts import ContractSizes, parse_contract_sizes
from .detect import FORMATS, detect
from .errors import ImportCancelled, InputError
from .generic import parse_mapping
from .source import open_source

CONTRACT_FORMATS = ("tardis-liquidations", "generic")  # formats that read --contract-size


@dataclass
class ImportReport:
    """What one file contributed."""

    path: str
    format: str
    kind: str
    rows: int             # events/candles read (after skipping documented non-events)
    new: int              # of those, not in the store before
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    repeated: int = 0     # rows the file repeated exactly, counted once (not in ``rows``)

    def summary(self) -> str:
        """One line: ``imported N rows (M new) from FILE[; K rows repeated in the file were counted once]``."""
        line = f"imported {self.rows} rows ({self.new} new) from {self.path}"
        if self.repeated:
            line += ("; 1 row repeated in the file was counted once" if self.repeated == 1 else
                     f"; {self.repeated:,} rows repeated in the file were counted once")
        return line


def read_file(path: str | Path, *, fmt: str | None = None, options: Options | None = None,
              task: Task | None = None) -> Parsed:
    """Parse one file into canonical rows without touching the store (the whole file, in memory).

    ``task`` (None: nobody watching) gets ``progress(raw bytes read, file size,
    "reading NAME")`` between blocks; a cancel raises ``ImportCancelled``.
    """
    options = options or Options()
    src = open_source(path)
    reading = f"reading {Path(src.display).name}"
    task = _relay(task, lambda step: (step.done, step.total, reading))
    with _reading(src):
        name = _format(src, fmt, options)
        parsed = drop_repeats(whole(FORMATS[name].read(src, options, task=task, batch_rows=None)))
        _check_values(src, parsed.kind, parsed.frame)
        _size_note(parsed.warnings, options, parsed.kind, name)
        return parsed


def _format(src, fmt: str | None, options: Options) -> str:
    name = detect(src, mapping=options.mapping) if fmt in (None, "auto") else fmt
    if name not in FORMATS:
        raise InputError(src.display, f"unknown format {name!r} (formats: {', '.join(FORMATS)})")
    if src.container == "parquet" and name != "generic":
        raise InputError(src.display, f"a Parquet file cannot be read as {name}; use --format generic")
    return name


def _check_values(src, kind: str, frame: pd.DataFrame) -> None:
    try:  # sane values (schema.BOUNDS): a row that would poison every total never reaches the store
        check_values(kind, frame)
    except SchemaError as exc:
        raise InputError(src.display, str(exc)) from None


def _size_note(warnings: list[str], options: Options, kind: str, name: str) -> None:
    if options.contract_size and (kind != "liquidations" or name not in CONTRACT_FORMATS):
        warnings.append("--contract-size not used: only Tardis and generic liquidation files read it")


@contextmanager
def _reading(src):
    """Errors of reading ``src`` as one-line InputErrors naming it; the file closed afterwards."""
    try:
        yield
    except (InputError, ImportCancelled):
        raise
    except (pa.ArrowException, SchemaError, TimeParseError, UnicodeError, OSError, EOFError, zlib.error,
            zipfile.BadZipFile) as exc:
        raise InputError(src.display, f"cannot read: {exc}") from None
    finally:
        src.close()


def import_files(paths: Iterable[str | Path], *, store: Store | None = None, fmt: str | None = None,
                 exchange: str | None = None, symbol: str | None = None, interval: str | None = None,
                 mapping: str | list[str] | dict | None = None, side_convention: str | None = None,
                 contract_size: str | float | list[str] | dict | ContractSizes | None = None,
                 task: Task | None = None, batch_rows: int | None = None) -> list[ImportReport]:
    """Read every file and add it to ``store``, a batch of ``batch_rows`` rows at a time (see the module doc).

    ``contract_size`` states the size of amounts given in contracts, for symbols
    whose size is not documented (or to override it): ``"ETH-USDT-SWAP=0.1"``
    (base units per contract), ``"XRP-USD-SWAP=10usd"`` (USD per inverse
    contract), several joined by commas, a list of those, a dict, or one value
    for every symbol of unknown size.

    ``batch_rows`` (default :data:`.csvread.BATCH_ROWS`): rows read, converted and committed at a time;
    an import of fewer rows (all files together) is one store commit.

    ``task`` (:class:`~liqscope.models.progress.Task`; None: nobody watching)
    gets ``progress(done, total, "reading NAME")`` in bytes over all files
    (compressed bytes for .gz/.zip), and a note at each store commit.
    Raises :class:`InputError` (one line naming file/line/column) for bad
    input and :class:`ImportCancelled` (``liqscope.models.progress.Cancelled``)
    when the task is cancelled; the store is unchanged unless a batch was committed before (then the
    message says so, and ``committed`` on the exception is the number of rows offered in those commits).
    """
    paths = [str(p) for p in paths]
    if side_convention not in (None, *SIDE_CONVENTIONS):
        raise ValueError(f"side convention must be one of {', '.join(SIDE_CONVENTIONS)}")
    if batch_rows is not None and batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    try:
        opts = Options(exchange=exchange, symbol=symbol, interval=interval,
                       mapping=parse_mapping(mapping) or None, side_convention=side_convention)
    except ValueError as exc:
        raise InputError("--map", str(exc)) from None
    try:
        opts.contract_size = parse_contract_sizes(contract_size)
    except ValueError as exc:
        raise InputError("--contract-size", str(exc)) from None
    store = store if store is not None else open_store()
    sizes = [Path(p).stat().st_size if Path(p).is_file() else 0 for p in paths]
    total = sum(sizes)
    done = 0
    commits = _Commits(store, batch_rows or csvread.BATCH_ROWS, task)
    reports: list[ImportReport] = []
    try:
        for path, size in zip(paths, sizes):
            reading = f"reading {Path(path).name}"
            if task is not None:
                task.progress(done, total, reading)  # stops here if cancelled
            in_all = _relay(task, lambda step, base=done: (min(base + step.done, total), total, step.message))
            reports.append(_import_file(path, fmt, opts, in_all, commits))
            done += size
            if task is not None:
                task.progress(done, total, reading)
        commits.flush()
    except (InputError, ImportCancelled, StoreError) as exc:
        try:  # what was committed before the failure gets its rollups too
            store.refresh_deferred()
        except StoreError:
            pass  # they lag (readers read raw rows meanwhile); the failure that stopped the import is the news
        raise commits.said(exc) from None
    store.refresh_deferred()  # a failure here says the rows are in (StoreError, "partly committed")
    for report in reports:
        report.new = commits.new.get(id(report), 0)
    return reports


class _Commits:
    """Rows waiting for the store, committed as one ``Batch`` once ``limit`` rows wait (and at the end).

    Each queued item belongs to a file's report, which gets the item's new rows."""

    def __init__(self, store: Store, limit: int, task: Task | None):
        self.store, self.limit, self.task = store, limit, task
        self.batch, self.owners, self.waiting = Batch(), [], 0
        self.committed = 0                  # rows offered in commits done
        self.new: dict[int, int] = {}       # id(report) -> new rows

    def liquidations(self, report: ImportReport, frame: pd.DataFrame, *, source: str, span: tuple | None) -> None:
        self._make_room(len(frame))
        self.batch.add_liquidations(frame, trusted=True, source=source, coverage_span=span)
        self._queued(report, len(frame))

    def candles(self, report: ImportReport, p: Parsed) -> None:
        self._make_room(len(p.frame))
        self.batch.add_candles(p.frame, exchange=p.exchange, symbol=p.symbol, interval=p.interval, asset=p.asset)
        self._queued(report, len(p.frame))

    def _make_room(self, rows: int) -> None:
        """Commit what waits first if ``rows`` more would pass the limit: a commit holds at most the
        limit, or one batch of a file (the limit plus the rest of the block that reached it)."""
        if self.waiting and self.waiting + rows > self.limit:
            self.flush()

    def _queued(self, report: ImportReport, rows: int) -> None:
        self.owners.append(report)
        self.waiting += rows
        if self.waiting >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not len(self.batch):
            return
        if self.task is not None:
            self.task.note(f"adding {self.waiting:,} rows to the store")
        # rollups once at the end (import_files): each batch of a big file lands in the same months
        results = self.store.commit(self.batch, task=self.task, defer_rollups=True)
        for report, res in zip(self.owners, results):
            self.new[id(report)] = self.new.get(id(report), 0) + res.new
        self.committed += self.waiting
        self.batch, self.owners, self.waiting = Batch(), [], 0

    def said(self, exc: Exception) -> Exception:
        """``exc``, its message telling what earlier commits stored (if any)."""
        if self.committed:  # the CLI then never says "store unchanged"
            exc.committed = self.committed
            exc.args = (f"{exc} (partly imported: {self.committed:,} rows before it are stored; importing the "
                        "same files again adds the rest)",)
        return exc


def _import_file(path: str, fmt: str | None, opts: Options, task: Task | None, commits: _Commits) -> ImportReport:
    """Read one file and queue its rows (committing whenever a batch is full); its report (``new`` later)."""
    src = open_source(path)
    reading = f"reading {Path(src.display).name}"
    task = _relay(task, lambda step: (step.done, step.total, reading))
    with _reading(src):
        name = _format(src, fmt, opts)
        got = FORMATS[name].read(src, opts, task=task, batch_rows=commits.limit)
        if isinstance(got, Parsed):  # candles: the whole series at once
            parsed = drop_repeats(got)
            _check_values(src, parsed.kind, parsed.frame)
            _size_note(parsed.warnings, opts, parsed.kind, name)
            ts = parsed.frame["ts"]
            report = ImportReport(path, parsed.format, parsed.kind, len(parsed.frame), 0, parsed.skipped,
                                  parsed.warnings, ts.iloc[0] if len(ts) else None, ts.iloc[-1] if len(ts) else None,
                                  repeated=parsed.repeated)
            if parsed.kind == "liquidations":
                source, span = provenance_of(path, parsed.format, parsed.frame)
                commits.liquidations(report, parsed.frame, source=source, span=span)
            else:
                commits.candles(report, parsed)
            return report
        report = ImportReport(path, got.format, got.kind, 0, 0)
        repeats = _Repeats()
        for frame in got.frames:
            frame = repeats.drop(frame)
            _check_values(src, "liquidations", frame)
            if not len(frame):
                continue
            report.rows += len(frame)
            ts = frame["ts"]
            report.first = ts.iloc[0] if report.first is None else min(report.first, ts.iloc[0])
            report.last = ts.iloc[-1] if report.last is None else max(report.last, ts.iloc[-1])
            # each batch states what it covers, as a whole file does: its rows' span per symbol, or the
            # whole day of a Tardis day file (when the batch's rows lie inside that day)
            source, span = provenance_of(path, got.format, frame)
            commits.liquidations(report, frame, source=source, span=span)
        report.skipped, report.warnings, report.repeated = got.tally.skipped, list(got.tally.warnings), repeats.count
        _size_note(report.warnings, opts, got.kind, name)
        return report


class _Repeats:
    """:func:`drop_repeats` over a file read in batches: rows repeated within a batch, and rows that
    repeat the previous batch's rows at its last time (a sorted file's repeats across a batch boundary)."""

    def __init__(self) -> None:
        self.count = 0
        self.tail: pd.DataFrame | None = None  # key columns of the previous batch's rows at its last time
        self.tail_ts = 0

    def drop(self, frame: pd.DataFrame) -> pd.DataFrame:
        parsed = drop_repeats(Parsed("liquidations", frame, ""))
        frame, self.count = parsed.frame, self.count + parsed.repeated
        if not len(frame):
            return frame
        keys = EVENT_KEY["liquidations"]
        ts = pd.DatetimeIndex(frame["ts"]).asi8
        if self.tail is not None:
            at = np.flatnonzero(ts == self.tail_ts)
            if len(at):
                head = _plain(frame.iloc[at][keys])
                seen = pd.MultiIndex.from_frame(self.tail)
                repeat = np.zeros(len(frame), dtype=bool)
                repeat[at] = pd.MultiIndex.from_frame(head).isin(seen)
                if n := int(repeat.sum()):
                    frame = frame[~repeat].reset_index(drop=True)
                    ts = ts[~repeat]
                    self.count += n
        self.tail_ts = int(ts.max())
        self.tail = _plain(frame[ts == self.tail_ts][keys])
        return frame


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Key columns comparable across batches (categories differ per batch)."""
    return pd.DataFrame({c: (frame[c].astype(str) if isinstance(frame[c].dtype, pd.CategoricalDtype) else frame[c])
                         .to_numpy() for c in frame.columns})


_TARDIS_DAY = re.compile(r"_(\d{4}-\d{2}-\d{2})_")


def provenance_of(path: str, fmt: str, frame) -> tuple[str, tuple | None]:
    """The source a file's rows are stored under, and the time span it covers when the file says so.

    Tardis names its files per UTC day (``binance-futures_liquidations_2024-03-01_PERPETUALS.csv``):
    such a file covers that whole day, so a live recording of the same day is not counted on top of it
    (see models/store/provenance.py). Other files cover their first to last row. A file read in batches
    is asked once per batch (``frame`` the batch): each batch covers its day, or its rows' span per symbol.
    """
    name = Path(path).name
    if fmt.startswith("tardis"):
        m = _TARDIS_DAY.search(name)
        if m and frame is not None and len(frame):
            day = pd.Timestamp(m.group(1), tz="UTC")
            ts = frame["ts"]
            if ts.min() >= day and ts.max() < day + pd.Timedelta(days=1):
                return "tardis", (day, day + pd.Timedelta(days=1))
        return "tardis", None
    if fmt.startswith("binance-liquidation"):
        return "binance-snapshot", None
    return file_source(name), None


def _relay(task: Task | None, step: Callable[[Step], tuple[int, int, str]]) -> Task | None:
    """A task whose steps reach ``task`` rewritten by ``step`` (offset, message); same cancel."""
    if task is None:
        return None
    return Task(lambda s: task.progress(*step(s)), task.cancel)
