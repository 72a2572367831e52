"""Import files into the store: the Qt-free entry point the CLI and the GUI call.

All files of one call are parsed first and committed in one store
transaction, so a bad file, an exception or a cancel leaves the store exactly
as it was; ``progress(done_bytes, total_bytes)`` and ``cancelled()`` are called
from the importing thread between blocks of input.
"""
from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import pyarrow as pa

from ..schema import SchemaError
from ..store import Batch, Store, open_store
from ..timeutil import TimeParseError
from .build import SIDE_CONVENTIONS, Options, Parsed
from .contracts import ContractSizes, parse_contract_sizes
from .detect import FORMATS, detect
from .errors import ImportCancelled, InputError
from .generic import parse_mapping
from .source import open_source

Progress = Callable[[int, int], None]
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

    def summary(self) -> str:
        return f"imported {self.rows} rows ({self.new} new) from {self.path}"


def read_file(path: str | Path, *, fmt: str | None = None, options: Options | None = None,
              progress: Callable[[int], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> Parsed:
    """Parse one file into canonical rows without touching the store."""
    options = options or Options()
    src = open_source(path)
    try:
        name = detect(src, mapping=options.mapping) if fmt in (None, "auto") else fmt
        if name not in FORMATS:
            raise InputError(src.display, f"unknown format {name!r} (formats: {', '.join(FORMATS)})")
        if src.container == "parquet" and name != "generic":
            raise InputError(src.display, f"a Parquet file cannot be read as {name}; use --format generic")
        parsed = FORMATS[name].parse(src, options, progress=progress, cancelled=cancelled)
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
                 progress: Progress | None = None,
                 cancelled: Callable[[], bool] | None = None) -> list[ImportReport]:
    """Read every file, then add them all to ``store`` in one atomic commit.

    ``contract_size`` states the size of amounts given in contracts, for symbols
    whose size is not documented (or to override it): ``"ETH-USDT-SWAP=0.1"``
    (base units per contract), ``"XRP-USD-SWAP=10usd"`` (USD per inverse
    contract), several joined by commas, a list of those, a dict, or one value
    for every symbol of unknown size. Raises :class:`InputError` (one line
    naming file/line/column) for bad input and :class:`ImportCancelled` when
    ``cancelled()`` turns True; in both cases the store is unchanged.
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
        if cancelled is not None and cancelled():
            raise ImportCancelled("import cancelled")
        report = None if progress is None else (lambda pos, base=done: progress(min(base + pos, total), total))
        parsed.append(read_file(path, fmt=fmt, options=opts, progress=report, cancelled=cancelled))
        done += size
        if progress is not None:
            progress(done, total)
    batch = Batch()
    for p in parsed:
        if p.kind == "liquidations":
            batch.add_liquidations(p.frame, trusted=True)
        else:
            batch.add_candles(p.frame, exchange=p.exchange, symbol=p.symbol, interval=p.interval, asset=p.asset)
    results = store.commit(batch, cancelled=cancelled) if len(batch) else []
    reports = []
    for path, p, res in zip(paths, parsed, results):
        ts = p.frame["ts"]
        reports.append(ImportReport(path, p.format, p.kind, res.rows, res.new, p.skipped, p.warnings,
                                    ts.iloc[0] if len(ts) else None, ts.iloc[-1] if len(ts) else None))
    return reports
