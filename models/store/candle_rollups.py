"""Hourly and daily candles kept beside the raw candles, so a view of years opens without reading
millions of 1-minute candles.

The ``candle_rollups`` table holds, per source series (exchange, interval, symbol), its bars at each
:data:`LEVELS` no finer than the source: epoch-aligned, open = first, high = max, low = min,
close = last, volume = sum (what :func:`liqscope.models.prices.resample` computes). It is partitioned
by (level, exchange, month); the rows computed from one (exchange, interval, month) partition of the
candle table are recomputed together after every commit that touched it, and stamped with a
fingerprint of that partition's candle files (``candle_files``). Readers use them only where the
fingerprint matches the candle snapshot they read and compute the bars from the raw candles
otherwise -- a rollup can lag (a crash between the two commits, a store written before the table
existed) but never be wrong.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..timeutil import parse_duration
from . import delta_io, rollups
from .location import Location
from .tables import CANDLE_ROLLUP_SCHEMA, CANDLE_ROLLUPS, CANDLES, OHLCV, TABLES, TS

LEVELS = {"1h": rollups.HOUR_US, "1d": rollups.DAY_US}
COLUMNS = ["exchange", "symbol", "asset", "interval", "ts", *OHLCV]
Part = tuple[str, str, str]  # (exchange, interval, month) of the candle table


def level_us(level: str) -> int:
    if level not in LEVELS:
        raise ValueError(f"candle rollup level {level!r}: one of {', '.join(LEVELS)}")
    return LEVELS[level]


def _interval_us(interval: str) -> int | None:
    try:
        return parse_duration(str(interval)) * 1_000_000
    except Exception:  # noqa: BLE001 - a name no rollup can use
        return None


def compute(raw: pa.Table, exchange: str, interval: str, month: str, candle_files: str, writer: str,
            levels: tuple[str, ...] | None = None) -> pa.Table:
    """The bars of one candle partition's rows (``ts`` µs, symbol, asset, OHLCV) at each level no finer than
    ``interval``."""
    src = _interval_us(interval)
    want = [lv for lv in (levels or tuple(LEVELS)) if src is not None and src <= LEVELS[lv]]
    if not raw.num_rows or not want:
        return CANDLE_ROLLUP_SCHEMA.empty_table()
    ts = raw.column("ts").cast(pa.int64()).to_numpy()
    sym = pc.dictionary_encode(raw.column("symbol")).combine_chunks()
    codes = np.asarray(sym.indices, dtype=np.int64)
    order = np.lexsort((ts, codes))
    ts, codes = ts[order], codes[order]
    names = np.asarray(sym.dictionary.to_pylist(), dtype=object)
    asset = np.asarray(raw.column("asset").to_pylist(), dtype=object)[order]
    val = {c: raw.column(c).to_numpy()[order].astype(np.float64) for c in OHLCV}
    out = []
    for level in want:
        width = LEVELS[level]
        bucket = ts - ts % width
        new = np.r_[True, (codes[1:] != codes[:-1]) | (bucket[1:] != bucket[:-1])]
        first = np.flatnonzero(new)
        last = np.r_[first[1:], len(ts)] - 1
        n = len(first)
        out.append(pa.table({
            "level": pa.array([level] * n, pa.string()), "exchange": pa.array([exchange] * n, pa.string()),
            "month": pa.array([month] * n, pa.string()), "ts": pa.array(bucket[first], pa.int64()).cast(TS),
            "interval": pa.array([interval] * n, pa.string()),
            "symbol": pa.array(names[codes[first]], pa.string()), "asset": pa.array(asset[first], pa.string()),
            "open": pa.array(val["open"][first]), "high": pa.array(np.maximum.reduceat(val["high"], first)),
            "low": pa.array(np.minimum.reduceat(val["low"], first)), "close": pa.array(val["close"][last]),
            "volume": pa.array(np.add.reduceat(val["volume"], first)),
            "candle_files": pa.array([candle_files] * n, pa.string()),
            "writer": pa.array([writer] * n, pa.string()),
        }, schema=CANDLE_ROLLUP_SCHEMA))
    return pa.concat_tables(out)


def by_partition(data: list[delta_io.DataFile]) -> dict[Part, list[delta_io.DataFile]]:
    out: dict[Part, list[delta_io.DataFile]] = {}
    for f in data:
        out.setdefault((f.partition["exchange"], f.partition["interval"], f.partition["month"]), []).append(f)
    return out


def _predicate(part: Part) -> str:
    lit = delta_io.sql_literal
    exchange, interval, month = part
    return f'exchange = {lit(exchange)} AND month = {lit(month)} AND "interval" = {lit(interval)}'


def refresh(loc: Location, partitions: set[Part] | None, candle_files: list[delta_io.DataFile] | None = None) -> int:
    """Recompute the bars of ``partitions`` ((exchange, interval, month) of the candle table; None: every
    partition) from the latest candle snapshot (or the listing ``candle_files``). Partitions already current
    are skipped, and so are intervals longer than a day. Returns how many were rewritten."""
    spec, rspec = TABLES[CANDLES], TABLES[CANDLE_ROLLUPS]
    if candle_files is None:
        candle_files = delta_io.files(loc, spec, delta_io.open_table(loc, spec))
    parts = by_partition(candle_files)
    if partitions is None:
        partitions = set(parts)
    todo = {p for p in partitions if p in parts and (_interval_us(p[1]) or 1 << 62) <= LEVELS["1d"]}
    if not todo:
        return 0
    current = current_fingerprints(loc, todo)
    done = 0
    for part in sorted(todo):
        fp = rollups.fingerprint(parts[part])
        if current.get(part) == {fp}:
            continue
        raw = delta_io.read(loc, spec, parts[part], columns=["ts", "symbol", "asset", *OHLCV])
        rows = compute(raw, part[0], part[1], part[2], fp, delta_io.new_writer_id())
        delta_io.replace_where(loc, rspec, rows, _predicate(part), {"liqscope.op": "candle-rollup"})
        done += 1
    return done


def current_fingerprints(loc: Location, partitions: set[Part]) -> dict[Part, set[str]]:
    """The fingerprints the rollup rows of each candle partition hold (normally one)."""
    rspec = TABLES[CANDLE_ROLLUPS]
    data = delta_io.files(loc, rspec, delta_io.open_table(loc, rspec))
    where = {"exchange": {p[0] for p in partitions}, "month": {p[2] for p in partitions}}
    data = delta_io.prune(data, where=where)
    if not data:
        return {}
    t = delta_io.read(loc, rspec, data, columns=["exchange", "interval", "month", "candle_files"],
                      row_filter=pc.field("interval").isin(sorted({p[1] for p in partitions})))
    t = t.group_by(["exchange", "interval", "month", "candle_files"]).aggregate([])
    out: dict[Part, set[str]] = {}
    for e, i, m, fp in zip(*(t.column(c).to_pylist() for c in ("exchange", "interval", "month", "candle_files"))):
        if (e, i, m) in partitions:
            out.setdefault((e, i, m), set()).add(fp)
    return out


def _ceil(us: int, width: int) -> int:
    return -((-us) // width) * width


def coarse(store, level: str, start=None, end=None) -> pd.DataFrame:
    """Every candle series' bars at ``level`` with ``start <= ts < end`` as a long frame (:data:`COLUMNS`,
    ``interval`` = ``level``): valid rollup rows, and bars computed from the raw candles of partitions whose
    rollup is missing or stale. A series stored at several intervals takes each bar from its finest one."""
    width = level_us(level)
    s = None if start is None else _ceil(_us(start), width)
    e = None if end is None else _ceil(_us(end), width)
    if s is not None and e is not None and e <= s:
        return _frame(CANDLE_ROLLUP_SCHEMA.empty_table(), level)
    raw_files = delta_io.prune(store._files(CANDLES), start_us=s, end_us=e)
    parts = {p: fs for p, fs in by_partition(raw_files).items() if (_interval_us(p[1]) or 1 << 62) <= width}
    if not parts:
        return _frame(CANDLE_ROLLUP_SCHEMA.empty_table(), level)
    fps = {p: rollups.fingerprint(fs) for p, fs in by_partition(store._files(CANDLES)).items() if p in parts}
    rdata = delta_io.prune(store._files(CANDLE_ROLLUPS), start_us=s, end_us=e,
                           where={"level": [level], "exchange": {p[0] for p in parts},
                                  "month": {p[2] for p in parts}})
    rows = delta_io.read(store.location, TABLES[CANDLE_ROLLUPS], rdata, row_filter=delta_io.window_filter(s, e))
    good, missing = rollups.valid_by(rows, fps, ("exchange", "interval", "month"), "candle_files")
    pieces = [good]
    for part in sorted(missing):  # stale or missing: from the raw candles of that partition
        data = delta_io.prune(parts[part], start_us=s, end_us=e)
        raw = delta_io.read(store.location, TABLES[CANDLES], data, columns=["ts", "symbol", "asset", *OHLCV],
                            row_filter=delta_io.window_filter(s, e))
        pieces.append(compute(raw, part[0], part[1], part[2], fps[part], "", (level,)))
    return _frame(pa.concat_tables(pieces), level)


def _us(value) -> int:
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")
    return int(t.as_unit("ns").value) // 1000


def _frame(rows: pa.Table, level: str) -> pd.DataFrame:
    if not rows.num_rows:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
        for c in OHLCV:
            frame[c] = pd.Series(dtype=np.float64)
        return frame[COLUMNS]
    frame = rows.select(["exchange", "symbol", "asset", "interval", "ts", *OHLCV]).to_pandas()
    frame["_src"] = frame["interval"].map({i: _interval_us(i) or 0 for i in frame["interval"].unique()})
    frame = (frame.sort_values(["exchange", "symbol", "ts", "_src"], kind="stable")
             .drop_duplicates(["exchange", "symbol", "ts"], keep="first"))  # the finest source per bar
    frame["interval"] = level
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("ns")
    return frame[COLUMNS].reset_index(drop=True)
