"""The context tables of a store: ``open_interest``, ``funding`` and ``outside_series`` (Delta, µs UTC).

=================  ===========  ===============================  =====================================================
table              partitions   natural key (upsert)             columns
=================  ===========  ===============================  =====================================================
``open_interest``  exchange     exchange, symbol, period, ts     ts, symbol, asset, period, oi_base, oi_usd, source
``funding``        exchange     exchange, symbol, ts             ts, symbol, asset, rate, interval_hours, source
``outside_series`` name         name, ts                         ts, value, unit, source
=================  ===========  ===============================  =====================================================

Writes are upserts on the natural key (:func:`.delta_io.upsert`, one Delta commit per call): writing
the same rows again changes nothing, a row with a new value for a held key replaces it (the later
fetch or import wins, and its ``source`` says where the value came from). A row whose ``oi_usd`` is
NaN (Bybit without a mark price) is rewritten, with the same values, by each upsert that offers it
again (NaN never equals NaN): harmless, a few rows. Reads prune files by partition and time
statistics and return frames in :mod:`liqscope.models.context`'s columns (ns UTC).

The functions take a :class:`~.core.Store`; ``Store.append_open_interest`` / ``append_funding`` /
``append_outside_series`` / ``open_interest`` / ``funding`` / ``outside_series`` / ``context`` wrap them.
"""
from __future__ import annotations

import re
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..context import FUNDING_COLUMNS, OI_COLUMNS, OUTSIDE_COLUMNS, Context, _empty, _period_ns
from ..schema import SchemaError
from . import delta_io, layout
from .errors import StoreError, store_errors
from .tables import FUNDING, OPEN_INTEREST, OUTSIDE, TABLES, TS, us

KINDS = (OPEN_INTEREST, FUNDING, OUTSIDE)
SERIES_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
MAX_ABS_VALUE = 1e15  # outside series: a value beyond this is a unit mistake (USD flows are < 1e12)


def series_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an outside series, in one line; None if it can. Letters, digits, ``_``,
    ``.`` and ``-``, starting with a letter or digit, at most 100 characters (it is a partition folder)."""
    text = str(name)
    if SERIES_NAME.match(text):
        return None
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    return (f"series name {shown} is not allowed: use letters, digits, '_', '.' and '-' (starting with a letter "
            f"or digit, at most 100 characters), e.g. etf_flows_IBIT")


# -- frames -> Arrow ---------------------------------------------------------------
def _text(values, n: int) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object).astype(str), pa.string()) if n else pa.array([], pa.string())


def _times(frame: pd.DataFrame, what: str) -> np.ndarray:
    try:
        ts = us(pd.to_datetime(frame["ts"], utc=True))
    except (ValueError, TypeError, OverflowError) as exc:
        raise SchemaError(f"{what}: unreadable times ({' '.join(str(exc).split())[:120]})") from None
    if len(ts) and (pd.isna(frame["ts"]).any()):
        raise SchemaError(f"{what}: {int(pd.isna(frame['ts']).sum())} rows have no time")
    return ts


def _floats(frame: pd.DataFrame, col: str, what: str, *, allow_nan: bool) -> np.ndarray:
    try:
        v = pd.to_numeric(frame[col], errors="raise").to_numpy(dtype="float64")
    except (ValueError, TypeError):
        raise SchemaError(f"{what}: column {col!r} holds values that are not numbers") from None
    bad = np.isinf(v) | (np.isnan(v) if not allow_nan else np.zeros(len(v), dtype=bool))
    if bad.any():
        raise SchemaError(f"{what}: column {col!r} holds {v[bad][0]!r} (not a finite number)")
    return v


def _need(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what} rows lack the column(s) {', '.join(missing)}")


def _names_ok(frame: pd.DataFrame, cols: Iterable[str]) -> None:
    for col in cols:
        for value in pd.unique(frame[col]) if len(frame) else ():
            problem = layout.name_problem(col, value, slash=col in ("symbol", "source"))
            if problem:
                raise StoreError(problem)


def _dedupe(table: pa.Table, key: list[str]) -> pa.Table:
    """The last row of each key (a frame repeating a key: its later row wins, as a later write would)."""
    if table.num_rows < 2:
        return table
    idx = table.append_column("_i", pa.array(np.arange(table.num_rows)))
    keep = idx.group_by(key, use_threads=False).aggregate([("_i", "max")]).column("_i_max").to_numpy()
    return table.take(pa.array(np.sort(keep)))


def oi_table(frame: pd.DataFrame, *, source: str | None = None, period: str | None = None) -> pa.Table:
    """Open interest rows (``OI_COLUMNS``; ``period``/``source`` fill a column the frame lacks) as store rows."""
    frame = frame.copy()
    if "period" not in frame.columns and period is not None:
        frame["period"] = period
    if source is not None:
        frame["source"] = source
    _need(frame, OI_COLUMNS, "open interest")
    what = "open interest"
    n = len(frame)
    frame["exchange"] = frame["exchange"].astype(str).str.lower()
    frame["asset"] = frame["asset"].astype(str).str.upper()
    _names_ok(frame, ("exchange", "symbol", "period", "source"))
    base = _floats(frame, "oi_base", what, allow_nan=True)
    usd = _floats(frame, "oi_usd", what, allow_nan=True)
    if ((base < 0) | (usd < 0)).any():
        raise SchemaError(f"{what}: negative open interest")
    table = pa.table({"ts": pa.array(_times(frame, what), pa.int64()).cast(TS),
                      **{c: _text(frame[c], n) for c in ("exchange", "symbol", "asset", "period")},
                      "oi_base": pa.array(base), "oi_usd": pa.array(usd), "source": _text(frame["source"], n)},
                     schema=TABLES[OPEN_INTEREST].schema)
    return _dedupe(table, list(TABLES[OPEN_INTEREST].key)).sort_by(
        [("exchange", "ascending"), ("symbol", "ascending"), ("ts", "ascending")])


def funding_table(frame: pd.DataFrame, *, source: str | None = None) -> pa.Table:
    frame = frame.copy()
    if source is not None:
        frame["source"] = source
    _need(frame, FUNDING_COLUMNS, "funding")
    what = "funding"
    n = len(frame)
    frame["exchange"] = frame["exchange"].astype(str).str.lower()
    frame["asset"] = frame["asset"].astype(str).str.upper()
    _names_ok(frame, ("exchange", "symbol", "source"))
    rate = _floats(frame, "rate", what, allow_nan=False)
    hours = _floats(frame, "interval_hours", what, allow_nan=True)
    if (np.abs(rate) > 1).any():
        raise SchemaError(f"{what}: a rate of {rate[np.abs(rate) > 1][0]!r} per interval (over 100%): "
                          "rates are fractions (0.0001 = 0.01%)")
    if (hours <= 0).any():
        raise SchemaError(f"{what}: interval_hours must be > 0")
    table = pa.table({"ts": pa.array(_times(frame, what), pa.int64()).cast(TS),
                      **{c: _text(frame[c], n) for c in ("exchange", "symbol", "asset")},
                      "rate": pa.array(rate), "interval_hours": pa.array(hours), "source": _text(frame["source"], n)},
                     schema=TABLES[FUNDING].schema)
    return _dedupe(table, list(TABLES[FUNDING].key)).sort_by(
        [("exchange", "ascending"), ("symbol", "ascending"), ("ts", "ascending")])


def outside_table(frame: pd.DataFrame, *, source: str | None = None, unit: str | None = None) -> pa.Table:
    frame = frame.copy()
    if source is not None:
        frame["source"] = source
    if unit is not None:
        frame["unit"] = unit
    _need(frame, OUTSIDE_COLUMNS, "outside series")
    what = "outside series"
    n = len(frame)
    for name in pd.unique(frame["name"]) if n else ():
        problem = series_name_problem(name)
        if problem:
            raise StoreError(problem)
    _names_ok(frame, ("source",))
    value = _floats(frame, "value", what, allow_nan=False)
    if (np.abs(value) > MAX_ABS_VALUE).any():
        raise SchemaError(f"{what}: value {value[np.abs(value) > MAX_ABS_VALUE][0]!r} is beyond ±1e15: a unit "
                          "mistake?")
    table = pa.table({"name": _text(frame["name"], n), "ts": pa.array(_times(frame, what), pa.int64()).cast(TS),
                      "value": pa.array(value), "unit": _text(frame["unit"].fillna(""), n),
                      "source": _text(frame["source"], n)}, schema=TABLES[OUTSIDE].schema)
    return _dedupe(table, list(TABLES[OUTSIDE].key)).sort_by([("name", "ascending"), ("ts", "ascending")])


# -- writing -------------------------------------------------------------------------
def write(store, kind: str, table: pa.Table) -> tuple[int, int]:
    """Upsert store rows of ``kind`` in one commit: (inserted, updated)."""
    store._require_current()
    if not table.num_rows:
        return 0, 0
    with store_errors(str(store.location), "write to"):
        store._init_meta()
        return delta_io.upsert(store.location, TABLES[kind], table, {"liqscope.op": f"upsert {kind}"})


# -- reading -------------------------------------------------------------------------
def _us(t) -> int | None:
    if t is None:
        return None
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    return int(t.as_unit("ns").value) // 1000


def read(store, kind: str, start=None, end=None, *, where: dict | None = None, row_filter=None) -> pd.DataFrame:
    """Rows of ``kind`` with ``start <= ts < end``, in the context frame columns (ns UTC), sorted by time."""
    store._require_current()
    spec = TABLES[kind]
    s, e = _us(start), _us(end)
    data = delta_io.prune(store._files(kind), start_us=s, end_us=e, where=where)
    columns = {OPEN_INTEREST: OI_COLUMNS, FUNDING: FUNDING_COLUMNS, OUTSIDE: OUTSIDE_COLUMNS}[kind]
    if not data:
        return _empty(columns)
    with store_errors(str(store.location), "read"):
        t = delta_io.read(store.location, spec, data, columns=columns,
                          row_filter=delta_io.window_filter(s, e, also=row_filter))
    frame = t.to_pandas()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("ns")
    return frame


def context(store, start=None, end=None) -> Context:
    """The store's open interest, funding and outside series with ``start <= ts < end`` (None: open)."""
    return Context.from_frames(read(store, OPEN_INTEREST, start, end), read(store, FUNDING, start, end),
                               read(store, OUTSIDE, start, end))


def open_interest(store, start=None, end=None, *, exchange: str | None = None, symbol: str | None = None,
                  period: str | None = None) -> pd.DataFrame:
    flt = None
    for col, value in (("symbol", symbol), ("period", period)):
        if value is not None:
            cond = pc.field(col) == str(value)
            flt = cond if flt is None else flt & cond
    where = {"exchange": {exchange.lower()}} if exchange else None
    return Context.from_frames(oi=read(store, OPEN_INTEREST, start, end, where=where, row_filter=flt)).oi_frame


def funding(store, start=None, end=None, *, exchange: str | None = None, symbol: str | None = None) -> pd.DataFrame:
    flt = pc.field("symbol") == str(symbol) if symbol is not None else None
    where = {"exchange": {exchange.lower()}} if exchange else None
    return Context.from_frames(funding=read(store, FUNDING, start, end, where=where, row_filter=flt)).funding_frame


def outside_series(store, name: str | None = None, start=None, end=None) -> pd.DataFrame:
    where = {"name": {name}} if name is not None else None
    return Context.from_frames(outside=read(store, OUTSIDE, start, end, where=where)).outside_frame


# -- coverage (resuming fetches) ---------------------------------------------------------
def oi_coverage(store, exchange: str, symbol: str, period: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous ranges of snapshots held, as ``(first ts, last ts + period)`` (end exclusive)."""
    df = open_interest(store, exchange=exchange, symbol=symbol, period=period)
    return _ranges(df["ts"], np.full(len(df), _period_ns(period)), np.full(len(df), _period_ns(period)))


def funding_coverage(store, exchange: str, symbol: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous ranges of settlements held, as ``(first ts, last ts + 1 ms)``: two settlements are
    contiguous when the later one's interval (plus a minute) spans the time between them."""
    df = funding(store, exchange=exchange, symbol=symbol)
    hours = df["interval_hours"].to_numpy(dtype="float64")
    hours = np.where(np.isfinite(hours), hours, 8.0)
    step = (hours * 3600 + 60) * 1e9
    return _ranges(df["ts"], step.astype("int64"), np.full(len(df), 1_000_000))


def _ranges(ts: pd.Series, step_ns: np.ndarray, tail_ns: np.ndarray) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if not len(ts):
        return []
    t = pd.DatetimeIndex(ts).as_unit("ns").asi8
    order = np.argsort(t, kind="stable")
    t, step_ns, tail_ns = t[order], step_ns[order], tail_ns[order]
    breaks = np.flatnonzero(np.diff(t) > step_ns[1:])
    starts = np.concatenate(([t[0]], t[breaks + 1]))
    last = np.concatenate((breaks, [len(t) - 1]))
    ends = t[last] + tail_ns[last]
    return [(pd.Timestamp(int(a), tz="UTC"), pd.Timestamp(int(b), tz="UTC")) for a, b in zip(starts, ends)]


# -- store info --------------------------------------------------------------------------
def info_rows(store, note) -> list[tuple]:
    """``store info`` rows (kind, exchange, symbol, interval, rows, first, last) of the context tables: per
    exchange, symbol (and period) for open interest and funding, per name (as symbol, exchange "-") for
    outside series."""
    out = []
    for kind, keys in ((OPEN_INTEREST, ["exchange", "symbol", "period"]), (FUNDING, ["exchange", "symbol"]),
                       (OUTSIDE, ["name"])):
        data = store._files(kind)
        if not data:
            continue
        with store_errors(str(store.location), "read"):
            t = delta_io.read(store.location, TABLES[kind], data, columns=[*keys, "ts"], on_damage=note)
        g = t.group_by(keys).aggregate([("ts", "count"), ("ts", "min"), ("ts", "max")])
        for r in g.to_pylist():
            exchange = r.get("exchange", "-")
            symbol = r.get("symbol", r.get("name"))
            out.append((kind, exchange, symbol, r.get("period"), r["ts_count"],
                        pd.Timestamp(r["ts_min"]).tz_convert("UTC"), pd.Timestamp(r["ts_max"]).tz_convert("UTC")))
    return out
