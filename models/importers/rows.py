"""Parsed rows plus their source line numbers, with checks that name the line.

Every importer converts columns through :class:`Rows`, so every complaint
about a value reads the same: ``FILE, line N, column 'c': what is wrong``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError

# Plausible event times: Bitcoin's first year to 2100. Anything else is a unit or parse error.
MIN_NS = pd.Timestamp("2009-01-01", tz="UTC").value
MAX_NS = pd.Timestamp("2100-01-01", tz="UTC").value
_TZ_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$"


@dataclass
class Rows:
    display: str
    table: pa.Table
    lines: np.ndarray
    unit: str = "line"

    def __len__(self) -> int:
        return self.table.num_rows

    # -- errors ------------------------------------------------------------------
    def error(self, i: int | None, column: str | None, message: str, *, kind: type[InputError] = InputError,
              **extra) -> InputError:
        """The error for row ``i`` (None: no row); ``kind`` an :class:`InputError` subclass, ``extra`` its fields."""
        line = None if i is None else int(self.lines[i])
        return kind(self.display, message, line=line, column=column, unit=self.unit, **extra)

    def fail_first(self, bad: np.ndarray, column: str | None, message) -> None:
        """Raise for the first True in ``bad``; ``message`` may be a callable of the row index."""
        idx = np.flatnonzero(bad)
        if len(idx):
            i = int(idx[0])
            raise self.error(i, column, message(i) if callable(message) else message)

    # -- row selection -------------------------------------------------------------
    def take(self, mask: np.ndarray) -> "Rows":
        if mask.all():
            return self
        return Rows(self.display, self.table.filter(pa.array(mask)), self.lines[mask], self.unit)

    def drop_blank(self) -> "Rows":
        """Drop empty lines (every field null or empty)."""
        if not len(self):
            return self
        # a blank line leaves every field empty: only rows whose first field is empty can be blank
        first = self.table.column(0)
        maybe = ~pc.is_valid(first).to_numpy(zero_copy_only=False)
        if pa.types.is_string(first.type) or pa.types.is_large_string(first.type):
            maybe |= (pc.utf8_length(pc.fill_null(first, "")).to_numpy(zero_copy_only=False) == 0)
        elif pa.types.is_dictionary(first.type):
            maybe |= (pc.utf8_length(pc.fill_null(first.cast(pa.string()), "")).to_numpy(zero_copy_only=False) == 0)
        if not maybe.any():
            return self
        blank = np.ones(len(self), dtype=bool)
        for col in self.table.columns:
            valid = pc.is_valid(col)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                valid = pc.and_(valid, pc.not_equal(pc.utf8_length(col), 0))
            elif pa.types.is_dictionary(col.type):
                valid = pc.and_(valid, pc.not_equal(pc.utf8_length(col.cast(pa.string())), 0))
            blank &= ~valid.to_numpy(zero_copy_only=False)
        return self.take(~blank) if blank.any() else self

    def has(self, column: str) -> bool:
        return column in self.table.column_names

    # -- columns -------------------------------------------------------------------
    def raw(self, column: str) -> pa.ChunkedArray:
        return self.table.column(column)

    def text(self, column: str, *, required: bool = True) -> np.ndarray:
        """A column as stripped Python strings ('' for missing)."""
        col = self.table.column(column)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            col = col.cast(pa.string())
        col = pc.utf8_trim_whitespace(pc.fill_null(col, ""))
        values = col.to_numpy(zero_copy_only=False).astype(object)
        if required:
            self.fail_first(values == "", column, "missing value")
        return values

    def categorical(self, column: str, *, required: bool = True) -> pd.Categorical:
        """A repetitive text column (exchange, symbol, side) as a stripped Categorical, fast."""
        col = self.table.column(column)
        if not pa.types.is_dictionary(col.type):
            col = pc.dictionary_encode(col.cast(pa.string()) if not pa.types.is_string(col.type) else col)
        col = col.unify_dictionaries() if hasattr(col, "unify_dictionaries") else \
            pa.table({"c": col}).unify_dictionaries().column("c")
        if col.num_chunks == 0:
            return pd.Categorical([])
        dictionary = col.chunk(0).dictionary.cast(pa.string()).to_numpy(zero_copy_only=False).astype(str)
        codes = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                                for c in col.chunks]) if len(self) else np.zeros(0, np.int64)
        stripped = np.char.strip(dictionary) if len(dictionary) else dictionary
        cats, inverse = np.unique(stripped, return_inverse=True)
        codes = np.where(codes >= 0, inverse[np.maximum(codes, 0)] if len(inverse) else -1, -1)
        if required:
            empty = np.flatnonzero(cats == "")
            bad = (codes < 0) | (np.isin(codes, empty) if len(empty) else False)
            self.fail_first(np.asarray(bad), column, "missing value")
        return pd.Categorical.from_codes(codes, categories=cats) if len(cats) else pd.Categorical([None] * len(self))

    def numbers(self, column: str, *, positive: bool = True, allow_zero: bool = False) -> np.ndarray:
        """A numeric column as float64; missing, non-finite or (by default) non-positive values fail."""
        col = self.table.column(column)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
            text = self.text(column)
            values = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype="float64")
            self.fail_first(np.isnan(values) & (text != "nan"), column, lambda i: f"cannot read {text[i]!r} as a number")
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
            valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
            self.fail_first(~valid, column, "missing value")
            values = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            raise self.error(None, column, f"expected numbers, found {col.type}")
        self.fail_first(~np.isfinite(values), column, lambda i: f"{values[i]} is not a finite number")
        if positive:
            bad = values < 0 if allow_zero else values <= 0
            what = "negative" if allow_zero else "not positive"
            self.fail_first(bad, column, lambda i: f"{values[i]:g} is {what}")
        return values

    def times(self, column: str) -> np.ndarray:
        """UTC nanoseconds from epoch numbers (s/ms/µs/ns by magnitude, per row) or ISO-8601 text."""
        col = self.table.column(column)
        if pa.types.is_timestamp(col.type):
            self.fail_first(~pc.is_valid(col).to_numpy(zero_copy_only=False), column, "missing time")
            ns = col.cast(pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64()).to_numpy(zero_copy_only=False)
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            self.fail_first(~pc.is_valid(col).to_numpy(zero_copy_only=False), column, "missing time")
            ns = self._epoch(col.to_numpy(zero_copy_only=False), column)
        else:
            text = self.text(column)
            s = pd.Series(text, dtype=object)
            if s.str.fullmatch(r"[+-]?\d{1,18}").all():  # fits int64; longer digit runs go the float way
                ns = self._epoch(s.astype("int64").to_numpy(), column)
            elif s.str.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?").all():
                ns = self._epoch(s.astype("float64").to_numpy(), column)
            else:
                ns = self._iso(s, column)
        self.fail_first((ns < MIN_NS) | (ns >= MAX_NS), column,
                        lambda i: f"time {pd.Timestamp(int(ns[i]), tz='UTC')} is outside 2009-2099 (wrong unit?)")
        return ns

    def _epoch(self, values: np.ndarray, column: str) -> np.ndarray:
        v = values
        if v.dtype.kind == "f":
            self.fail_first(~np.isfinite(v), column, "time is not a finite number")
        self.fail_first(v <= 0, column, lambda i: f"time {v[i]} is not positive")
        a = np.abs(v).astype("float64")
        # seconds < 1e11 <= ms < 1e14 <= µs < 1e17 <= ns: unambiguous for 1973..5138
        scale = np.where(a < 1e11, 1_000_000_000, np.where(a < 1e14, 1_000_000, np.where(a < 1e17, 1_000, 1)))
        approx = a * scale
        self.fail_first((approx < MIN_NS) | (approx >= MAX_NS), column,
                        lambda i: f"time {v[i]} is outside 2009-2099 in any epoch unit (s, ms, µs, ns)")
        if v.dtype.kind == "f":
            return np.round(v * scale).astype("int64")
        return v.astype("int64") * scale.astype("int64")

    def _iso(self, s: pd.Series, column: str) -> np.ndarray:
        s = s.str.replace(r"\s*(?:UTC|GMT)$", "Z", regex=True)
        parsed = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
        self.fail_first(parsed.isna().to_numpy(), column,
                        lambda i: f"cannot read {s.iloc[i]!r} as a time (expected ISO-8601 or epoch numbers)")
        aware = s.str.contains(_TZ_SUFFIX, regex=True).to_numpy(dtype=bool)
        if aware.any() and not aware.all():
            first_naive, first_aware = int(np.flatnonzero(~aware)[0]), int(np.flatnonzero(aware)[0])
            bad, other = (first_naive, first_aware) if first_naive > first_aware else (first_aware, first_naive)
            raise self.error(bad, column, (
                f"mixed timezones: {s.iloc[bad]!r} {'has' if aware[bad] else 'has no'} UTC offset but "
                f"{self.unit} {int(self.lines[other])} ({s.iloc[other]!r}) {'has' if aware[other] else 'has no'}"))
        idx = pd.DatetimeIndex(parsed)  # may be in s/us: years beyond 1677-2262 do not fit in ns
        self.fail_first((idx < pd.Timestamp(MIN_NS, tz="UTC")) | (idx >= pd.Timestamp(MAX_NS, tz="UTC")), column,
                        lambda i: f"time {s.iloc[i]!r} is outside 2009-2099 (wrong unit?)")
        return idx.as_unit("ns").asi8
