"""The data behind a view as CSV that pandas and spreadsheets read as-is (Qt-free).

Why this lives in ``models``: File ▸ Export CSV in the window, the Export button
of every drill-down panel and ``liqscope export`` must write the same file for
the same view, so all three describe the view as a :class:`Selection` and call
:func:`selection_frame` and :func:`write_csv`.

File layout, on purpose: one header row, no comment lines, ISO-8601 UTC
timestamps with milliseconds (``2025-05-09T00:00:00.000Z``), plain numbers
(no thousands separators, full float precision), ``\\n`` line ends, UTF-8.
"""
from __future__ import annotations

import csv
import io
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import UserError
from .liquidations import LiquidationModel
from .prices import PriceModel, resample
from .prices import window as window_of
from .progress import Cancelled, Task
from .timeutil import format_duration, format_time, parse_duration
from .view import View

WHATS = ("candles", "buckets", "liquidations")
CHUNK_ROWS = 100_000


class ExportError(UserError, ValueError):
    """An export that cannot be done (unwritable path, nothing to write); one line for the user."""


class ExportCancelled(Cancelled):
    """The caller cancelled; the partial file has been removed."""


@dataclass(frozen=True)
class Selection:
    """A :class:`View` plus what an export needs beyond it: price sources and the drawn levels.

    Which liquidations are exported is the view's to say (:meth:`View.liq_filter`),
    as for the headline, the panels and ``liqscope summary``. ``candle_interval``
    and ``bucket`` are the levels of detail drawn, in seconds, so the CSV holds the
    candles and bars the user is looking at.
    """

    view: View
    price_exchanges: tuple[str, ...] = ()         # candle sources, in column order
    candle_interval: int = 60
    bucket: int = 3600
    by: str = "exchange"                          # bucket columns split by exchange or asset

    @property
    def start(self) -> pd.Timestamp:
        return self.view.start

    @property
    def end(self) -> pd.Timestamp:
        return self.view.end

    @property
    def asset(self) -> str:
        return self.view.asset

    def liq_filter(self) -> dict:
        return self.view.liq_filter()


def main_view_name(view: View, what: str | None = None, ext: str = "csv") -> str:
    """Default file name for the main view: candles name their source, liquidations their filters."""
    if what in (None, "candles"):
        parts = [view.asset, view.exchange]
    else:
        parts = [view.asset if view.liq_scope == "asset" else "all-assets",
                 "+".join(sorted(view.exchanges)) if view.exchanges is not None else "all-exchanges"]
    return default_name(parts, view.start, view.end, ext, what)


# -- frames ------------------------------------------------------------------
def candles_table(prices: PriceModel, asset: str, exchanges: tuple[str, ...] | list[str],
                  start: pd.Timestamp, end: pd.Timestamp, interval: int) -> pd.DataFrame:
    """Candles of ``asset`` on each exchange at ``interval`` seconds with open time in ``[start, end)``.

    Bins are epoch-aligned and complete (a 5m candle at 10:05 holds 10:05–10:10 even
    if the window starts at 10:07), exactly as the price pane draws them.
    """
    parts = []
    for ex in exchanges:
        key = prices.find(asset, ex)
        if key is None:
            continue
        native = parse_duration(key.interval)
        src = prices.candles(key)
        if interval > native:  # resample whole epoch-aligned bins, then keep those opening in the window
            src = resample(window_of(src, start.floor(f"{interval}s"), end), interval)
        part = window_of(src, start, end)
        if not len(part):
            continue
        f = part.reset_index()
        f.insert(1, "exchange", key.exchange)
        f.insert(2, "symbol", key.symbol)
        f.insert(3, "asset", asset.upper())
        f.insert(4, "interval", format_duration(max(interval, native)))
        parts.append(f)
    cols = ["ts", "exchange", "symbol", "asset", "interval", "open", "high", "low", "close", "volume"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c == "ts" else float)
                             for c in cols})
    return pd.concat(parts, ignore_index=True)[cols]


def buckets_table(liq: LiquidationModel, bucket: int, start: pd.Timestamp, end: pd.Timestamp,
                  by: str = "exchange") -> pd.DataFrame:
    """USD liquidated per bucket: ``ts, long_usd, short_usd, total_usd`` then per-group columns.

    ``liq`` must already be filtered to the window; buckets are epoch-aligned (the
    first may start before ``start``, holding only the part inside the window), so
    the column sums equal the window's totals. Per-group columns are
    ``<group>_long_usd, <group>_short_usd`` for every group with any money, largest first.
    Sums are rounded to cents: float noise like ``3283304.6199999996`` helps nobody.
    """
    table = liq.buckets(bucket, start, end, by=by)
    out = pd.DataFrame({"ts": table.index})
    long_ = table["long"] if len(table.columns) else pd.DataFrame(index=table.index)
    short = table["short"] if len(table.columns) else pd.DataFrame(index=table.index)
    out["long_usd"] = long_.sum(axis=1).to_numpy()
    out["short_usd"] = short.sum(axis=1).to_numpy()
    out["total_usd"] = out["long_usd"] + out["short_usd"]
    sums = (long_.sum() + short.sum()).sort_values(ascending=False, kind="stable")
    for group in [g for g, v in sums.items() if v > 0]:
        out[f"{group}_long_usd"] = long_[group].to_numpy()
        out[f"{group}_short_usd"] = short[group].to_numpy()
    money = out.columns[1:]
    out[money] = out[money].round(2)
    return out


def liquidations_table(liq: LiquidationModel) -> pd.DataFrame:
    """Raw events, oldest first, in the canonical column order (categories stay categories:
    turning 1M names into Python strings costs seconds; the writer decodes them in C++)."""
    return liq.frame.reset_index(drop=True)


def selection_frame(prices: PriceModel, liquidations: LiquidationModel, sel: Selection,
                    what: str) -> pd.DataFrame:
    """The rows behind a view: ``what`` is 'candles', 'buckets' or 'liquidations'."""
    if what not in WHATS:
        raise ExportError(f"unknown export {what!r} (choose {', '.join(WHATS)})")
    if what == "candles":
        if not sel.asset or not sel.price_exchanges:
            raise ExportError("this view shows no candles; export buckets or liquidations instead")
        return candles_table(prices, sel.asset, sel.price_exchanges, sel.start, sel.end, sel.candle_interval)
    liq = liquidations.filter(sel.start, sel.end, **sel.liq_filter())
    if what == "buckets":
        return buckets_table(liq, sel.bucket, sel.start, sel.end, by=sel.by)
    return liquidations_table(liq)


def dataset_frame(dataset, sel: Selection, what: str) -> pd.DataFrame:
    """:func:`selection_frame` of a dataset: raw rows are single events, read from the store when the
    dataset holds whole days for that window (a wide view of a large store)."""
    liq = dataset.events(sel.start, sel.end) if what == "liquidations" else dataset.liquidations
    return selection_frame(dataset.prices, liq, sel, what)


# -- writing -----------------------------------------------------------------
def iso_ms(values) -> np.ndarray:
    """UTC timestamps as ``2025-05-09T00:00:00.000Z`` strings, vectorised (100k rows in ms)."""
    idx = pd.DatetimeIndex(values)
    idx = idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx
    return np.char.add(np.datetime_as_string(idx.to_numpy().astype("datetime64[ms]"), unit="ms"), "Z")


def csv_ready(frame: pd.DataFrame) -> pa.Table:
    """An Arrow table of text and numbers: ISO timestamps, category labels; numbers untouched."""
    columns = {}
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            columns[col] = pa.array(iso_ms(values), type=pa.string())
        elif isinstance(values.dtype, pd.CategoricalDtype):
            columns[col] = pc.cast(pa.array(values, from_pandas=True), pa.string())
        elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            columns[col] = pa.array(values.to_numpy(), from_pandas=True)
        else:
            columns[col] = pa.array(values.astype(str).to_numpy(), type=pa.string())
    return pa.table(columns)


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, in one line, when ``path`` cannot be written (before any rendering work)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ExportError(f"cannot write {p}: it is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"cannot write {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ExportError(f"cannot write {p}: permission denied")
    return p


@contextmanager
def atomic_file(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one rename.

    A failed or cancelled export never leaves a half-written file under the
    user's chosen name; OS errors become one-line ``ExportError``s.
    """
    p = check_writable(path)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield tmp
        os.replace(tmp, p)
    except OSError as exc:
        raise ExportError(f"cannot write {p}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, task: Task | None = None,
              chunk_rows: int = CHUNK_ROWS) -> int:
    """Write ``frame`` as CSV in chunks (reporting progress), atomically; returns rows written.

    The file appears only when complete (temp file + rename), so a cancelled or
    failed export never leaves half a CSV under the user's chosen name. Arrow's
    C++ writer does the formatting: 1M rows in well under a second, where
    ``DataFrame.to_csv`` takes ~10 s.
    """
    table = csv_ready(frame)
    total = table.num_rows
    with atomic_file(path) as tmp:
        try:
            _write_arrow_csv(table, tmp, task, chunk_rows, quoting="none")
        except pa.ArrowInvalid:  # a text value holds a comma, quote or line end: quote text values
            _write_arrow_csv(table, tmp, task, chunk_rows, quoting="needed")
    return total


def _write_arrow_csv(table: pa.Table, path: Path, task: Task | None, chunk_rows: int, quoting: str) -> None:
    total = table.num_rows
    options = pacsv.WriteOptions(include_header=False, quoting_style=quoting)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(table.column_names)  # Arrow would quote every name
    with open(path, "wb") as fh:
        fh.write(header.getvalue().encode("utf-8"))
        with pacsv.CSVWriter(fh, table.schema, write_options=options) as writer:
            done = 0
            for batch in table.to_batches(max_chunksize=max(1, chunk_rows)):
                writer.write_batch(batch)
                done += batch.num_rows
                if task is not None:
                    try:
                        task.progress(done, total)
                    except Cancelled:
                        raise ExportCancelled("export cancelled") from None
    if task is not None and total == 0:
        task.progress(0, 0)


# -- names -------------------------------------------------------------------
def default_name(parts: list[str], start: pd.Timestamp, end: pd.Timestamp, ext: str,
                 what: str | None = None) -> str:
    """``BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.csv`` (+ ``_buckets`` etc. unless candles).

    Colons are replaced so the name is valid on Windows and macOS too.
    """
    safe = ["".join(ch if ch.isalnum() or ch in "-+." else "-" for ch in str(p)) for p in parts if p]
    name = "_".join([*safe, format_time(start, "file"), format_time(end, "file")])
    if what and what != "candles":
        name += f"_{what}"
    return f"{name}.{ext.lstrip('.')}"

