"""Import files into the store: the Qt-free entry point the CLI and the GUI call.

All files of one call are parsed first and committed in one store
transaction, so a bad file, an exception or a cancel leaves the store exactly
as it was. Progress and cancel follow :mod:`liqscope.models.progress`: the
caller's task gets ``progress(bytes read, bytes of all files, "reading NAME")``
from the importing thread between blocks of input, and a cancel raises
:class:`~liqscope.models.progress.Cancelled` (``ImportCancelled``) there or
between partitions of the store commit.
"""
from __future__ import annotations

import re

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import pyarrow as pa

from ..progress import Step, Task
from ..schema import SchemaError, check_values
from ..store import Batch, Store, open_store
from ..store.provenance import file_source
from ..timeutil import TimeParseError
from .build import SIDE_CONVENTIONS, Options, Parsed, drop_repeats
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
    """Parse one file into canonical rows without touching the store.

    ``task`` (None: nobody watching) gets ``progress(raw bytes read, file size,
    "reading NAME")`` between blocks; a cancel raises ``ImportCancelled``.
    """
    options = options or Options()
    src = open_source(path)
    reading = f"reading {Path(src.display).name}"
    task = _relay(task, lambda step: (step.done, step.total, reading))
    try:
        name = detect(src, mapping=options.mapping) if fmt in (None, "auto") else fmt
        if name not in FORMATS:
            raise InputError(src.display, f"unknown format {name!r} (formats: {', '.join(FORMATS)})")
        if src.container == "parquet" and name != "generic":
            raise InputError(src.display, f"a Parquet file cannot be read as {name}; use --format generic")
        parsed = drop_repeats(FORMATS[name].parse(src, options, task=task))
        try:  # sane values (schema.BOUNDS): a row that would poison every total never reaches the store
            check_values(parsed.kind, parsed.frame)
        except SchemaError as exc:
            raise InputError(src.display, str(exc)) from None
        if options.contract_size and (parsed.kind != "liquidations" or name not in CONTRACT_FORMATS):
            parsed.warnings.append("--contract-size not used: only Tardis and generic liquidation files read it")
        return parsed
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
                 task: Task | None = None) -> list[ImportReport]:
    """Read every file, then add them all to ``store`` in one atomic commit.

    ``contract_size`` states the size of amounts given in contracts, for symbols
    whose size is not documented (or to override it): ``"ETH-USDT-SWAP=0.1"``
    (base units per contract), ``"XRP-USD-SWAP=10usd"`` (USD per inverse
    contract), several joined by commas, a list of those, a dict, or one value
    for every symbol of unknown size.

    ``task`` (:class:`~liqscope.models.progress.Task`; None: nobody watching)
    gets ``progress(done, total, "reading NAME")`` in bytes over all files
    (compressed bytes for .gz/.zip), then a note while the store commits.
    Raises :class:`InputError` (one line naming file/line/column) for bad
    input and :class:`ImportCancelled` (``liqscope.models.progress.Cancelled``)
    when the task is cancelled; in both cases the store is unchanged.
    """
    paths = [str(p) for p in paths]
    if side_convention not in (None, *SIDE_CONVENTIONS):
        raise ValueError(f"side convention must be one of {', '.join(SIDE_CONVENTIONS)}")
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
    parsed: list[Parsed] = []
    for path, size in zip(paths, sizes):
        reading = f"reading {Path(path).name}"
        if task is not None:
            task.progress(done, total, reading)  # stops here if cancelled
        in_all = _relay(task, lambda step, base=done: (min(base + step.done, total), total, step.message))
        parsed.append(read_file(path, fmt=fmt, options=opts, task=in_all))
        done += size
        if task is not None:
            task.progress(done, total, reading)
    batch = Batch()
    for path, p in zip(paths, parsed):
        if p.kind == "liquidations":
            source, span = provenance_of(path, p.format, p.frame)
            batch.add_liquidations(p.frame, trusted=True, source=source, coverage_span=span)
        else:
            batch.add_candles(p.frame, exchange=p.exchange, symbol=p.symbol, interval=p.interval, asset=p.asset)
    if task is not None and len(batch):
        task.note(f"adding {sum(len(p.frame) for p in parsed):,} rows to the store")
    results = store.commit(batch, task=task) if len(batch) else []
    reports = []
    for path, p, res in zip(paths, parsed, results):
        ts = p.frame["ts"]
        reports.append(ImportReport(path, p.format, p.kind, res.rows, res.new, p.skipped, p.warnings,
                                    ts.iloc[0] if len(ts) else None, ts.iloc[-1] if len(ts) else None,
                                    repeated=p.repeated))
    return reports


_TARDIS_DAY = re.compile(r"_(\d{4}-\d{2}-\d{2})_")


def provenance_of(path: str, fmt: str, frame) -> tuple[str, tuple | None]:
    """The source a file's rows are stored under, and the time span it covers when the file says so.

    Tardis names its files per UTC day (``binance-futures_liquidations_2024-03-01_PERPETUALS.csv``):
    such a file covers that whole day, so a live recording of the same day is not counted on top of it
    (see models/store/provenance.py). Other files cover their first to last row.
    """
    name = Path(path).name
    if fmt.startswith("tardis"):
        m = _TARDIS_DAY.search(name)
        if m and len(frame):
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
