"""Outside series from files: ``liqscope import FILE --series NAME`` (Qt-free).

Any CSV (plain, ``.gz`` or a ``.zip`` holding one file) or Parquet file with a time column and one or
more value columns becomes named series in the store's ``outside_series`` table (ETF flows per fund,
Fear & Greed, BTC dominance, a user's own indicator), daily or intraday:

* the time column is ``--time-column`` or the first column named ts, time, timestamp, datetime, date or
  day; times are ISO-8601 (``2025-05-09``, ``2025-05-09T14:00:00Z``), other common date forms (month
  first), or Unix epoch numbers (seconds, milliseconds or microseconds, told apart by size). Times
  without an offset are UTC; a file mixing times with and without an offset is refused (as other imports);
* the value columns are ``--value-column`` (repeatable), else every other column whose cells are all
  numbers (text columns such as a note are left out). One value column is stored as ``NAME``, several
  as ``NAME_<column>`` (characters other than letters, digits, ``_ . -`` become ``_``);
* an empty cell (or NaN, null, NA, N/A, -) is no value: that row is left out of that series; any other
  cell that is not a finite number stops the import;
* ``--unit`` (USD, index, %...) is stored with every row; ``source`` is ``file:<file name>``.

Bad input follows the rules of the other imports: one line naming the file, line (or Parquet row) and
column, e.g. ``flows.csv, line 4, column 'IBIT': 'abc' is not a number``, and the store unchanged
(every series of every file of one import is one commit). Binary data and compressed input expanding
past 200× its size (at least 64 MiB) are refused; blank lines are skipped; rows out of time order are
sorted (with a warning); a time repeated with the same value is counted once, with another value refused.
Importing the same file again adds nothing (upsert on (name, ts)).
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import UserError

TIME_NAMES = ("ts", "time", "timestamp", "datetime", "date", "day")
MISSING = {"", "nan", "null", "na", "n/a", "-", "none"}
MIN_BOMB_BYTES = 64 * 1024 * 1024
BOMB_RATIO = 200
_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)


class SeriesInputError(UserError, ValueError):
    """A file that cannot be imported as series; one line naming the file, line and column."""


@dataclass
class SeriesReport:
    path: str
    names: list[str]
    rows: int  # rows offered (one per value, per series)
    new: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"imported {self.rows:,} rows ({self.new:,} new) from {self.path} as series {', '.join(self.names)}"


# -- reading files ---------------------------------------------------------------------
def _limit(path: Path) -> int:
    return max(MIN_BOMB_BYTES, BOMB_RATIO * path.stat().st_size)


def _bounded(fh, path: Path, limit: int) -> bytes:
    data = fh.read(limit + 1)
    if len(data) > limit:
        raise SeriesInputError(f"{path.name}: decompresses to more than {limit // (1024 * 1024)} MiB; a compression "
                               "bomb? If it is genuine, unpack it first")
    return data


def _raw(path: Path) -> tuple[bytes, str]:
    """The file's bytes (decompressed) and the inner name (for the format)."""
    try:
        head = path.open("rb").read(4)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                return _bounded(fh, path, _limit(path)), path.name[:-3] if path.name.endswith(".gz") else path.name
        if head == b"PK\x03\x04":
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise SeriesInputError(f"{path.name}: a zip archive must hold exactly one file "
                                           f"(it holds {len(members)})")
                with z.open(members[0]) as fh:
                    return _bounded(fh, path, _limit(path)), members[0].filename
        return path.read_bytes(), path.name
    except SeriesInputError:
        raise
    except FileNotFoundError:
        raise SeriesInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SeriesInputError(f"{path}: is a folder, not a file") from None
    except (OSError, EOFError, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
        raise SeriesInputError(f"{path.name}: unreadable ({' '.join(str(exc).split())[:120]})") from None


def _cells(path: Path) -> tuple[list[str], dict[str, list], list[str], bool]:
    """Column names, column values (text for CSV, typed for Parquet), where each row is (``line 4`` /
    ``row 3``), and whether values are typed."""
    data, inner = _raw(path)
    if data[:4] == b"PAR1" or inner.lower().endswith(".parquet"):
        return _parquet(path, data)
    if b"\x00" in data[:65536]:
        raise SeriesInputError(f"{path.name}: binary data, not a CSV or Parquet file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SeriesInputError(f"{path.name}, line {line}: not UTF-8 text") from None
    sample = text[:8192]
    delimiter = ","
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        pass
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    cols: dict[str, list] = {}
    where: list[str] = []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue  # blank line
            if header is None:
                header = [c.strip() for c in row]
                dup = next((c for c in header if header.count(c) > 1), None)
                if dup is not None:
                    raise SeriesInputError(f"{path.name}, line {reader.line_num}: column {dup!r} appears twice")
                cols = {c: [] for c in header}
                continue
            if len(row) != len(header):
                raise SeriesInputError(f"{path.name}, line {reader.line_num}: {len(row)} fields, the header has "
                                       f"{len(header)}")
            for c, v in zip(header, row):
                cols[c].append(v.strip())
            where.append(f"line {reader.line_num}")
    except csv.Error as exc:
        raise SeriesInputError(f"{path.name}, line {reader.line_num}: {exc}") from None
    if header is None:
        raise SeriesInputError(f"{path.name}: empty file (no header)")
    return header, cols, where, False


def _parquet(path: Path, data: bytes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        if pf.metadata.num_rows > 50_000_000:
            raise SeriesInputError(f"{path.name}: {pf.metadata.num_rows:,} rows is more than a series holds")
        table = pf.read()
    except SeriesInputError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise SeriesInputError(f"{path.name}: unreadable Parquet ({' '.join(str(exc).split())[:120]})") from None
    frame = table.to_pandas()
    cols = {str(c): list(frame[c]) if not pd.api.types.is_datetime64_any_dtype(frame[c]) else frame[c]
            for c in frame.columns}
    return [str(c) for c in frame.columns], cols, [f"row {i + 1}" for i in range(len(frame))], True


# -- cells to values ---------------------------------------------------------------------
def _times(path: Path, column: str, values, where: list[str]) -> np.ndarray:
    """UTC nanoseconds per row."""
    name = path.name
    if isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values):
        ts = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        ts = ts.dt.tz_convert("UTC")
        bad = ts.isna().to_numpy()
        if bad.any():
            raise SeriesInputError(f"{name}, {where[int(np.argmax(bad))]}, column {column!r}: no time")
        return ts.dt.as_unit("ns").astype("int64").to_numpy()
    text = pd.Series([("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).strip()
                      for v in values], dtype=object)
    empty = (text == "").to_numpy()
    if empty.any():
        raise SeriesInputError(f"{name}, {where[int(np.argmax(empty))]}, column {column!r}: no time")
    numeric = text.str.fullmatch(r"\d+(\.\d+)?").to_numpy()
    out = np.zeros(len(text), dtype="int64")
    if numeric.any():
        nums = text[numeric].astype(float).to_numpy()
        scale = np.where(nums < 1e11, 1e9, np.where(nums < 1e14, 1e6, 1e3))  # s, ms, µs
        out[numeric] = (nums * scale).astype("int64")
        if numeric.all():
            return out
    rest = text[~numeric]
    has_offset = rest.str.contains(_OFFSET).to_numpy()
    if has_offset.any() and not has_offset.all():
        i = np.flatnonzero(~numeric)[int(np.argmax(has_offset != has_offset[0]))]
        raise SeriesInputError(f"{name}, {where[i]}, column {column!r}: {text[i]!r} mixes times with and without "
                               "a UTC offset; give every time with an offset, or none (read as UTC)")
    parsed = pd.to_datetime(rest, format="ISO8601", utc=True, errors="coerce")
    if parsed.isna().any():
        retry = parsed.isna()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed[retry] = pd.to_datetime(rest[retry], format="mixed", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = np.flatnonzero(~numeric)[int(np.argmax(bad))]
        raise SeriesInputError(f"{name}, {where[i]}, column {column!r}: {text[i]!r} is not a time "
                               "(ISO-8601 such as 2025-05-09 or 2025-05-09T14:00:00Z, or Unix epoch seconds/ms)")
    out[~numeric] = parsed.dt.as_unit("ns").astype("int64").to_numpy()
    return out


def _numbers(values, typed: bool) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(values, present, first bad index or None)."""
    n = len(values)
    out = np.full(n, np.nan)
    present = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if typed and isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            f = float(v)
        else:
            s = str(v).strip()
            if s.lower() in MISSING:
                continue
            try:
                f = float(s)
            except ValueError:
                return out, present, i
        if not math.isfinite(f):
            return out, present, i
        out[i], present[i] = f, True
    return out, present, None


def _safe(column: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", column.strip()) or "value"


def read_series(path, name: str, *, time_column: str | None = None, value_columns: list[str] | None = None,
                unit: str | None = None) -> tuple[pd.DataFrame, SeriesReport]:
    """One file as outside-series rows (``name, ts, value, unit, source``), checked; nothing is stored."""
    from .store.context_tables import series_name_problem

    path = Path(path)
    header, cols, where, typed = _cells(path)
    fname = path.name
    if time_column is None:
        time_column = next((c for c in header if c.lower() in TIME_NAMES), None)
        if time_column is None:
            raise SeriesInputError(f"{fname}: no time column (named ts, time, timestamp, datetime, date or day); "
                                   f"name it with --time-column (columns: {', '.join(header)})")
    elif time_column not in cols:
        raise SeriesInputError(f"{fname}: no column {time_column!r} (columns: {', '.join(header)})")
    if value_columns:
        missing = [c for c in value_columns if c not in cols]
        if missing:
            raise SeriesInputError(f"{fname}: no column {missing[0]!r} (columns: {', '.join(header)})")
        if time_column in value_columns:
            raise SeriesInputError(f"{fname}: column {time_column!r} is the time column, not a value column")
        chosen = list(dict.fromkeys(value_columns))
    else:
        chosen = [c for c in header if c != time_column]
    parsed = {}
    for c in chosen:
        vals, present, bad = _numbers(cols[c], typed)
        if bad is not None:
            if value_columns:
                shown = str(cols[c][bad])
                raise SeriesInputError(f"{fname}, {where[bad]}, column {c!r}: "
                                       f"{shown[:40]!r} is not a {'finite ' if _is_float(shown) else ''}number")
            continue  # auto: a text column is not a value column
        parsed[c] = (vals, present)
    if not parsed:
        raise SeriesInputError(f"{fname}: no value column with numbers (columns: {', '.join(header)}); "
                               "name them with --value-column")
    if not where:
        raise SeriesInputError(f"{fname}: no rows under the header")
    ts = _times(path, time_column, cols[time_column], where)
    report = SeriesReport(str(path), [], 0)
    if len(ts) > 1 and (np.diff(ts) < 0).any():
        report.warnings.append("rows out of time order were sorted")
    multi = len(parsed) > 1
    frames = []
    for c, (vals, present) in parsed.items():
        series = f"{name}_{_safe(c)}" if multi else name
        problem = series_name_problem(series)
        if problem:
            raise SeriesInputError(f"{fname}: {problem}")
        idx = np.flatnonzero(present)
        sub = pd.DataFrame({"ts": ts[idx], "value": vals[idx], "_row": idx})
        dup = sub.duplicated("ts", keep=False).to_numpy()
        if dup.any():
            d = sub[dup].sort_values(["ts", "_row"], kind="stable")
            conflict = d.groupby("ts")["value"].nunique()
            if (conflict > 1).any():
                t = conflict.index[np.argmax((conflict > 1).to_numpy())]
                rows = d.loc[d["ts"] == t, "_row"].to_numpy()
                raise SeriesInputError(f"{fname}, {where[rows[0]]} and {where[rows[1]]}, column {c!r}: two different "
                                       f"values for {pd.Timestamp(int(t), tz='UTC').isoformat()}")
            report.warnings.append(f"{int(dup.sum() - d['ts'].nunique())} rows repeated in column {c!r} were "
                                   "counted once")
            sub = sub.drop_duplicates("ts", keep="first")
        frames.append(pd.DataFrame({"name": series, "ts": pd.to_datetime(sub["ts"].to_numpy(), utc=True),
                                    "value": sub["value"].to_numpy(), "unit": unit or "",
                                    "source": f"file:{fname}"}))
        report.names.append(series)
    out = pd.concat(frames, ignore_index=True).sort_values(["name", "ts"], kind="stable").reset_index(drop=True)
    report.rows = len(out)
    return out, report


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def import_series(paths, name: str, *, store, time_column: str | None = None,
                  value_columns: list[str] | None = None, unit: str | None = None) -> list[SeriesReport]:
    """Read every file, then store all their series in one commit (all or nothing). A time held by two
    files of one import with different values is refused."""
    from .store.context_tables import OUTSIDE, outside_table, write

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    frames, reports = [], []
    for p in paths:
        frame, report = read_series(p, name, time_column=time_column, value_columns=value_columns, unit=unit)
        frames.append(frame.assign(_file=len(frames)))
        reports.append(report)
    both = pd.concat(frames, ignore_index=True)
    clash = both.duplicated(["name", "ts"], keep=False)
    if clash.any():
        d = both[clash]
        differ = d.groupby(["name", "ts"])["value"].nunique()
        if (differ > 1).any():
            n, t = differ.index[int(np.argmax((differ > 1).to_numpy()))]
            files = sorted(set(d.loc[(d["name"] == n) & (d["ts"] == t), "_file"]))
            raise SeriesInputError(f"{Path(paths[files[0]]).name} and {Path(paths[files[-1]]).name}: two different "
                                   f"values of {n} for {t.isoformat()}")
    table = outside_table(both.drop(columns=["_file"]))  # the whole import: one commit
    existing = store.outside_series() if len(table) else None
    inserted, _updated = write(store, OUTSIDE, table)
    held = set() if existing is None else set(zip(existing["name"], existing["ts"]))
    for frame, report in zip(frames, reports):
        report.new = int(sum((n, t) not in held for n, t in zip(frame["name"], frame["ts"])))
        held |= set(zip(frame["name"], frame["ts"]))
    return reports


def add_arguments(p) -> None:
    """The ``liqscope import`` options for series files."""
    p.add_argument("--series", metavar="NAME",
                   help="import the file as named outside series (ETF flows, Fear & Greed, dominance, your own): "
                        "a time column and one or more value columns; several value columns are stored as "
                        "NAME_<column>")
    p.add_argument("--time-column", metavar="C", help="with --series: the time column (default: ts/time/timestamp/"
                                                      "datetime/date/day)")
    p.add_argument("--value-column", action="append", dest="value_columns", metavar="V",
                   help="with --series: a value column (repeatable; default: every numeric column)")
    p.add_argument("--unit", metavar="U", help="with --series: the values' unit, e.g. USD, index, %%")


def cmd_import_series(args) -> int:
    """``liqscope import FILE... --series NAME``: one line per file; errors one line, store unchanged."""
    import sys

    from .schema import SchemaError
    from .store import StoreError, open_store

    other = [flag for flag, value in (("--format", getattr(args, "format", "auto") != "auto"),
                                      ("--exchange", getattr(args, "exchange", None)),
                                      ("--symbol", getattr(args, "symbol", None)),
                                      ("--interval", getattr(args, "interval", None)),
                                      ("--map", getattr(args, "mapping", None))) if value]
    if other:
        raise SeriesInputError(f"{other[0]} does not apply to --series imports")
    try:
        store = open_store()
        reports = import_series(args.files, args.series, store=store, time_column=args.time_column,
                                value_columns=args.value_columns, unit=args.unit)
    except (SeriesInputError, SchemaError) as exc:
        raise SeriesInputError(f"{exc} (store unchanged)") from None
    except StoreError as exc:
        if getattr(exc, "committed", False):
            raise
        raise SeriesInputError(f"{exc} (store unchanged)") from None
    for r in reports:
        for w in r.warnings:
            print(f"liqscope: warning: {r.path}: {w}", file=sys.stderr)
        print(r.summary())
    return 0
