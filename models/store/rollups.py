"""Hourly and daily liquidation totals per (exchange, symbol, asset, side, source), kept beside the raw rows.

They make the overview of all history (daily totals, the busiest day, the "All" headline) cost the same
for five years as for a day. Each (exchange, month) partition is recomputed from that partition's raw
rows after every commit that touched it, and stamped with a fingerprint of the raw files it was
computed from (``liq_files``). Readers use a partition's rollups only when the fingerprint matches the
raw snapshot they read, and read raw rows otherwise -- so a rollup can lag (a crash between the two
commits, two writers racing) but never be wrong.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import delta_io, minute_rollups, provenance
from .listings import day_files, fingerprint, recall as _recall, remember as _remember, touched_days
from .location import Location
from .tables import LIQ, ROLLUP_SCHEMA, ROLLUPS, TABLES, TS

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
LEVELS = {"1d": DAY_US, "1h": HOUR_US}


def compute(raw: pa.Table, exchange: str, month: str, liq_files: str, writer: str) -> pa.Table:
    """Rollup rows of one (exchange, month) partition's raw rows (``ts`` µs, symbol, asset, side, source,
    notional_usd)."""
    if not raw.num_rows:
        return ROLLUP_SCHEMA.empty_table()
    ts = raw.column("ts").cast(pa.int64()).to_numpy()
    usd = raw.column("notional_usd").to_numpy()
    keys = {c: pd.Categorical(raw.column(c).to_pandas()) for c in ("symbol", "asset", "side", "source")}
    out = []
    for level, width in LEVELS.items():
        frame = pd.DataFrame({"bucket": ts - ts % width, **keys, "usd": usd})
        g = frame.groupby(["bucket", "symbol", "asset", "side", "source"], observed=True, sort=True)["usd"]
        agg = g.agg(["size", "sum", "max"]).reset_index()
        n = len(agg)
        out.append(pa.table({
            "level": pa.array([level] * n, pa.string()), "exchange": pa.array([exchange] * n, pa.string()),
            "month": pa.array([month] * n, pa.string()),
            "bucket": pa.array(agg["bucket"].to_numpy(np.int64), pa.int64()).cast(TS),
            "symbol": pa.array(agg["symbol"].astype(str).to_numpy(), pa.string()),
            "asset": pa.array(agg["asset"].astype(str).to_numpy(), pa.string()),
            "side": pa.array(agg["side"].astype(str).to_numpy(), pa.string()),
            "source": pa.array(agg["source"].astype(str).to_numpy(), pa.string()),
            "count": pa.array(agg["size"].to_numpy(np.int64)),
            "notional_usd": pa.array(agg["sum"].to_numpy(np.float64)),
            "max_usd": pa.array(agg["max"].to_numpy(np.float64)),
            "liq_files": pa.array([liq_files] * n, pa.string()),
            "writer": pa.array([writer] * n, pa.string()),
        }, schema=ROLLUP_SCHEMA))
    return pa.concat_tables(out)


def refresh(loc: Location, partitions: set[tuple[str, str]]) -> int:
    """Recompute the rollups of ``partitions`` ((exchange, month)) from the latest raw snapshot -- only the
    days changed since the rollup's own snapshot where that is known (see :func:`.listings.touched_days`) -- the
    hourly and daily ones here, then the per-minute ones (:mod:`.minute_rollups`). Returns how many
    partitions were rewritten (those already current are skipped)."""
    if not partitions:
        return 0
    spec, rspec = TABLES[LIQ], TABLES[ROLLUPS]
    raw_files = delta_io.files(loc, spec, delta_io.open_table(loc, spec))
    uri = loc.table(spec.name)
    held = _held(loc, partitions)
    current: dict[tuple[str, str], set[str]] = {}
    fps = held.select(["exchange", "month", "liq_files"]).group_by(["exchange", "month", "liq_files"]).aggregate([])
    for e, m, fp in zip(*(fps.column(c).to_pylist() for c in ("exchange", "month", "liq_files"))):
        current.setdefault((e, m), set()).add(fp)
    done: set[tuple[str, str]] = set()
    for exchange, month in sorted(partitions):
        key = (exchange, month)
        part = delta_io.prune(raw_files, where={"exchange": [exchange], "month": [month]})
        fp = fingerprint(part)
        if current.get(key) == {fp}:
            _remember(uri, key, fp, part)
            continue
        writer = delta_io.new_writer_id()
        rows = None
        olds = current.get(key) or set()
        old = _recall(uri, key, next(iter(olds))) if len(olds) == 1 else None
        if old is not None and not {u for u, _a, _b in old} - {f.uri for f in part}:
            rows = _added(loc, held, key, next(iter(olds)), fp, writer, part, {u for u, _a, _b in old})
        else:
            days = None if old is None else touched_days(old, part)
            if days is not None:
                rows = _incremental(loc, held, key, next(iter(olds)), fp, writer, part, days)
        if rows is None:
            raw = delta_io.read(loc, spec, part, columns=["ts", "symbol", "asset", "side", "source", "notional_usd"])
            rows = compute(raw, exchange, month, fp, writer)
        pred = f"exchange = {delta_io.sql_literal(exchange)} AND month = {delta_io.sql_literal(month)}"
        delta_io.replace_where(loc, rspec, rows, pred, {"liqscope.op": "rollup"})
        _remember(uri, key, fp, part)
        done.add(key)
    done |= minute_rollups.refresh(loc, partitions, raw_files, recall=lambda key, fp: _recall(uri, key, fp))
    return len(done)


def _held(loc: Location, partitions: set[tuple[str, str]]) -> pa.Table:
    """The rollup rows of ``partitions`` (both levels)."""
    rspec = TABLES[ROLLUPS]
    data = delta_io.files(loc, rspec, delta_io.open_table(loc, rspec), ts_col="bucket")
    data = [f for f in data if (f.partition.get("exchange"), f.partition.get("month")) in partitions]
    return delta_io.read(loc, rspec, data)


def _old_rows(held: pa.Table, key: tuple[str, str], old_fp: str) -> pa.Table | None:
    """The rows of the rollup of ``old_fp`` (of one writer, as :func:`valid_rows` picks), or None."""
    exchange, month = key
    mine = held.filter(pc.and_(pc.and_(pc.equal(held.column("exchange"), exchange), pc.equal(held.column("month"), month)),
                               pc.equal(held.column("liq_files"), old_fp)))
    if not mine.num_rows:
        return None
    return mine.filter(pc.equal(mine.column("writer"), pc.min(mine.column("writer"))))


def _restamp(rows: pa.Table, fp: str, writer: str) -> pa.Table:
    n = rows.num_rows
    rows = rows.set_column(rows.schema.get_field_index("liq_files"), "liq_files", pa.array([fp] * n, pa.string()))
    return rows.set_column(rows.schema.get_field_index("writer"), "writer", pa.array([writer] * n, pa.string()))


GROUP = ["level", "exchange", "month", "bucket", "symbol", "asset", "side", "source"]


def _added(loc: Location, held: pa.Table, key: tuple[str, str], old_fp: str, fp: str, writer: str,
           part: list[delta_io.DataFile], old_uris: set[str]) -> pa.Table | None:
    """Files were only added since the rollup of ``old_fp`` (an append, the recorder's case): counts, sums
    and maxima add up, so the new rollup is the old one merged with the rollup of the added files' rows."""
    mine = _old_rows(held, key, old_fp)
    if mine is None:
        return None
    added = [f for f in part if f.uri not in old_uris]
    raw = delta_io.read(loc, TABLES[LIQ], added, columns=["ts", "symbol", "asset", "side", "source", "notional_usd"])
    fresh = compute(raw, key[0], key[1], fp, writer)
    both = pa.concat_tables([mine.cast(ROLLUP_SCHEMA), fresh])
    g = both.group_by(GROUP, use_threads=False).aggregate(
        [("count", "sum"), ("notional_usd", "sum"), ("max_usd", "max")])
    n = g.num_rows
    return pa.table({**{c: g.column(c) for c in GROUP}, "count": g.column("count_sum"),
                     "notional_usd": g.column("notional_usd_sum"), "max_usd": g.column("max_usd_max"),
                     "liq_files": pa.array([fp] * n, pa.string()), "writer": pa.array([writer] * n, pa.string())}
                    ).select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)


def _incremental(loc: Location, held: pa.Table, key: tuple[str, str], old_fp: str, fp: str, writer: str,
                 part: list[delta_io.DataFile], days: set[int]) -> pa.Table | None:
    """The partition's rollup rows for the new snapshot: the rows of untouched days carried from the rollup
    of ``old_fp`` (one writer's), the touched ``days`` recomputed from the raw rows of ``part``."""
    exchange, month = key
    mine = _old_rows(held, key, old_fp)
    if mine is None:
        return None
    bucket = mine.column("bucket").cast(pa.int64()).to_numpy()
    day = bucket - bucket % DAY_US
    keep = ~np.isin(day, np.fromiter(days, dtype=np.int64, count=len(days)))
    carried = _restamp(mine.filter(pa.array(keep)), fp, writer)
    data, flt = day_files(part, days)
    raw = delta_io.read(loc, TABLES[LIQ], data, columns=["ts", "symbol", "asset", "side", "source", "notional_usd"],
                        row_filter=flt)
    fresh = compute(raw, exchange, month, fp, writer)
    return pa.concat_tables([carried.cast(ROLLUP_SCHEMA), fresh])


def current_fingerprints(loc: Location, partitions: set[tuple[str, str]] | None = None
                         ) -> dict[tuple[str, str], set[str]]:
    """The fingerprints each rollup partition holds (normally one)."""
    rspec = TABLES[ROLLUPS]
    dt = delta_io.open_table(loc, rspec)
    data = delta_io.files(loc, rspec, dt, ts_col="bucket")
    if partitions is not None:
        data = [f for f in data if (f.partition.get("exchange"), f.partition.get("month")) in partitions]
    if not data:
        return {}
    t = delta_io.read(loc, rspec, data, columns=["exchange", "month", "liq_files"])
    out: dict[tuple[str, str], set[str]] = {}
    for e, m, fp in zip(t.column("exchange").to_pylist(), t.column("month").to_pylist(),
                        t.column("liq_files").to_pylist()):
        out.setdefault((e, m), set()).add(fp)
    return out


def valid_rows(rows: pa.Table, fingerprints: dict[tuple[str, str], str]) -> tuple[pa.Table, set[tuple[str, str]]]:
    """The rollup rows that match the raw snapshot (``fingerprints`` per partition) -- of one writer per
    partition, should two have raced -- and the partitions without a valid rollup. Joins, not Python loops:
    five years hold ~600k daily rows."""
    return valid_by(rows, fingerprints, ("exchange", "month"), "liq_files")


def valid_by(rows: pa.Table, fingerprints: dict[tuple, str], keys: tuple[str, ...], fp_col: str
             ) -> tuple[pa.Table, set[tuple]]:
    """:func:`valid_rows` for any partition ``keys`` and fingerprint column ``fp_col`` (rows need ``keys``,
    ``fp_col`` and ``writer``)."""
    keys = list(keys)
    if not rows.num_rows:
        return rows, set(fingerprints)
    cols = {k: [p[i] for p in fingerprints] for i, k in enumerate(keys)}
    want = pa.table({**cols, fp_col: list(fingerprints.values())},
                    schema=pa.schema([(k, pa.string()) for k in keys] + [(fp_col, pa.string())]))
    keyed = rows.select([*keys, fp_col, "writer"]).append_column("_row", pa.array(np.arange(rows.num_rows)))
    matching = keyed.join(want, keys=[*keys, fp_col], join_type="inner")
    if not matching.num_rows:
        return rows.slice(0, 0), set(fingerprints)
    first = matching.group_by(keys).aggregate([("writer", "min")])  # one writer per partition
    chosen = matching.join(first, keys=keys, join_type="inner")
    chosen = chosen.filter(pc.equal(chosen.column("writer"), chosen.column("writer_min")))
    idx = np.sort(chosen.column("_row").to_numpy())
    good = set(zip(*(first.column(k).to_pylist() for k in keys)))
    return rows.take(pa.array(idx)), {k for k in fingerprints if k not in good}


HOURLY_COLUMNS = ["ts", "exchange", "symbol", "asset", "side", "source", "count", "notional_usd", "max_usd"]
_RAW_COLUMNS = ["ts", "exchange", "symbol", "asset", "side", "source", "notional_usd"]


def _month_bounds(month: str) -> tuple[int, int]:
    m0 = np.datetime64(month, "M")
    return int(m0.astype("datetime64[us]").astype(np.int64)), int((m0 + 1).astype("datetime64[us]").astype(np.int64))


def hourly(store, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Counted hourly rows of ``store`` (see ``Store.hourly_liquidations``): the valid 1h rollup rows
    (``start <= bucket < end``) a higher-precedence source covers nowhere in their hour; raw rows (counted by
    precedence) aggregated per hour for stale partitions and for the (exchange, hour)s a higher-precedence
    source covers only in part -- the rule ``figures.split`` applies to days."""
    s = None if start is None else -((-(int(start.value) // 1000)) // HOUR_US) * HOUR_US
    e = None if end is None else -((-(int(end.value) // 1000)) // HOUR_US) * HOUR_US
    if s is not None and e is not None and e <= s:
        return _hourly_frame([])
    loc = store.location
    raw_files = delta_io.prune(store._files(LIQ), start_us=s, end_us=e)
    by_part: dict[tuple[str, str], list] = {}
    for f in store._files(LIQ):
        by_part.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    wanted = {(f.partition["exchange"], f.partition["month"]) for f in raw_files}
    fps = {k: fingerprint(v) for k, v in by_part.items() if k in wanted}
    data = delta_io.prune(store._files(ROLLUPS), start_us=s, end_us=e,
                          where={"level": ["1h"], "exchange": {k[0] for k in fps}, "month": {k[1] for k in fps}})
    rows = delta_io.read(loc, TABLES[ROLLUPS], data, row_filter=delta_io.window_filter(s, e, "bucket"),
                         columns=["exchange", "month", "bucket", "symbol", "asset", "side", "source", "count",
                                  "notional_usd", "max_usd", "liq_files", "writer"])
    rows, missing = valid_rows(rows, fps) if fps else (rows.slice(0, 0), set())
    windows: list[tuple[int | None, int | None, str]] = []
    for exchange, month in sorted(missing):
        a, b = _month_bounds(month)
        windows.append((a if s is None else max(a, s), b if e is None else min(b, e), exchange))
    if rows.num_rows:
        ex = np.asarray(rows.column("exchange").to_pylist(), dtype=object)
        bucket = rows.column("bucket").cast(pa.int64()).to_numpy()
        counted, mixed = provenance.bucket_status(
            {"exchange": ex, "symbol": np.asarray(rows.column("symbol").to_pylist(), dtype=object),
             "source": np.asarray(rows.column("source").to_pylist(), dtype=object), "bucket": bucket},
            HOUR_US, store.coverage(), store.precedence)
        if mixed.any():  # every row of such an (exchange, hour) comes from the raw rows
            hours = pd.DataFrame({"e": ex[mixed], "b": bucket[mixed]}).drop_duplicates()
            drop = pd.MultiIndex.from_arrays([ex, bucket]).isin(pd.MultiIndex.from_frame(hours))
            counted &= ~drop
            for exchange, part in hours.groupby("e", sort=True):
                a, b = provenance.merge_spans(part["b"].to_numpy(np.int64), part["b"].to_numpy(np.int64) + HOUR_US)
                windows += [(int(x), int(y), str(exchange)) for x, y in zip(a, b)]
        rows = rows.filter(pa.array(counted))
    pieces = []
    if rows.num_rows:
        pieces.append(pd.DataFrame({
            "ts": rows.column("bucket").cast(pa.int64()).to_numpy(), "exchange": rows.column("exchange").to_pylist(),
            "symbol": rows.column("symbol").to_pylist(), "asset": rows.column("asset").to_pylist(),
            "side": rows.column("side").to_pylist(), "source": rows.column("source").to_pylist(),
            "count": rows.column("count").to_numpy(), "notional_usd": rows.column("notional_usd").to_numpy(),
            "max_usd": rows.column("max_usd").to_numpy()}))
    for a, b, exchange in windows:
        if a is not None and b is not None and b <= a:
            continue
        raw = store._counted(store._liq_read(None if a is None else pd.Timestamp(a, unit="us", tz="UTC"),
                                             None if b is None else pd.Timestamp(b, unit="us", tz="UTC"),
                                             exchanges=[exchange], columns=_RAW_COLUMNS))
        if raw.num_rows:
            ts = raw.column("ts").cast(pa.int64()).to_numpy()
            frame = pd.DataFrame({"ts": ts - ts % HOUR_US, **{c: raw.column(c).to_pylist() for c in
                                                              ("exchange", "symbol", "asset", "side", "source")},
                                  "usd": raw.column("notional_usd").to_numpy()})
            g = frame.groupby(["ts", "exchange", "symbol", "asset", "side", "source"], sort=False)["usd"]
            agg = g.agg(["size", "sum", "max"]).reset_index()
            pieces.append(agg.rename(columns={"size": "count", "sum": "notional_usd", "max": "max_usd"}))
    return _hourly_frame(pieces)


def _hourly_frame(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    if not pieces:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in HOURLY_COLUMNS})
        frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
        frame["count"] = pd.Series(dtype=np.int64)
        for c in ("notional_usd", "max_usd"):
            frame[c] = pd.Series(dtype=np.float64)
        return frame
    frame = pd.concat(pieces, ignore_index=True)
    frame["ts"] = pd.to_datetime(frame["ts"].to_numpy(np.int64), unit="us", utc=True).as_unit("ns")
    frame["count"] = frame["count"].astype(np.int64)
    frame = frame.sort_values(["ts", "exchange", "symbol", "side", "source"], kind="stable")
    return frame[HOURLY_COLUMNS].reset_index(drop=True)
