"""Liquidated USD and events per (exchange, asset, source, UTC minute), kept beside the raw rows.

Cascade detection compares every asset's minutes with its own history. Summing five years of raw rows
(100M events) per minute took over 20 s and 4 GB on each run; this table holds about a third as many
rows in four small columns, and is read in a few seconds.

It is kept like the hourly and daily rollups (:mod:`.rollups`, whose ``refresh`` calls :func:`refresh`):
each (exchange, month) partition is recomputed after every commit that touched it -- from the added
files only after an append, only the touched days when those are known -- and carries the fingerprint of
the raw files it came from. Here the fingerprint and the writer are *partition values*: a reader picks
the current rows of a partition from the file listing alone, and reads raw rows for a partition whose
minutes are stale or missing. USD is float32 (about 1.5 bytes per stored event instead of 5): the table
finds cascades; every figure shown for a cascade is summed from its events.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import delta_io
from .listings import day_files, fingerprint, touched_days
from .location import Location
from .tables import LIQ, MINUTE_SCHEMA, MINUTES, TABLES

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
RAW_COLUMNS = ["ts", "asset", "source", "notional_usd"]
_GROUP = ["ts", "asset", "source"]


def compute(raw: pa.Table, exchange: str, month: str, liq_files: str, writer: str) -> pa.Table:
    """Minute rows of one partition's raw rows (``ts`` µs, asset, source, notional_usd), sorted by asset,
    source and minute (long runs: the columns compress to a few bits per row)."""
    if not raw.num_rows:
        return MINUTE_SCHEMA.empty_table()
    if any(pa.types.is_dictionary(f.type) for f in raw.schema):  # group_by needs one dictionary per column
        raw = raw.unify_dictionaries().combine_chunks()
    ts = raw.column("ts").cast(pa.int64()).to_numpy()
    t = pa.table({"ts": pa.array(ts - ts % MINUTE_US), "asset": raw.column("asset"), "source": raw.column("source"),
                  "usd": raw.column("notional_usd")})
    return _rows(t.group_by(_GROUP, use_threads=False).aggregate([("usd", "count"), ("usd", "sum")]),
                 "usd_count", "usd_sum", exchange, month, liq_files, writer)


def _rows(g: pa.Table, count_col: str, usd_col: str, exchange: str, month: str, liq_files: str,
          writer: str) -> pa.Table:
    n = g.num_rows
    const = {"exchange": exchange, "month": month, "liq_files": liq_files, "writer": writer}
    out = pa.table({"ts": g.column("ts").cast(pa.int64()).cast(MINUTE_SCHEMA.field("ts").type),
                    **{k: pa.repeat(pa.scalar(v, pa.string()), n) for k, v in const.items()},
                    "asset": g.column("asset").cast(pa.string()), "source": g.column("source").cast(pa.string()),
                    "count": g.column(count_col).cast(pa.int32()),
                    "notional_usd": g.column(usd_col).cast(pa.float32())}, schema=MINUTE_SCHEMA)
    return out.sort_by([("asset", "ascending"), ("source", "ascending"), ("ts", "ascending")])


def listing(data: list[delta_io.DataFile]) -> dict[tuple[str, str], dict[tuple[str, str], list[delta_io.DataFile]]]:
    """The minute table's files per (exchange, month), then per (fingerprint, writer)."""
    out: dict[tuple[str, str], dict[tuple[str, str], list[delta_io.DataFile]]] = {}
    for f in data:
        p = f.partition
        out.setdefault((p["exchange"], p["month"]), {}).setdefault((p["liq_files"], p["writer"]), []).append(f)
    return out


def current(data: list[delta_io.DataFile], fingerprints: dict[tuple[str, str], str]
            ) -> dict[tuple[str, str], list[delta_io.DataFile]]:
    """The minute files that match the raw snapshot (``fingerprints`` per (exchange, month)), one writer's
    per partition should two have raced; partitions without such files are absent (read them raw)."""
    out = {}
    for key, by_fp in listing(data).items():
        fp = fingerprints.get(key)
        writers = sorted(w for f, w in by_fp if f == fp)
        if writers:
            out[key] = by_fp[(fp, writers[0])]
    return out


def refresh(loc: Location, partitions: set[tuple[str, str]], raw_files: list[delta_io.DataFile] | None = None,
            recall=None) -> set[tuple[str, str]]:
    """Bring the minute rows of ``partitions`` up to date with the latest raw snapshot (``raw_files``, its
    listing, if the caller has it). ``recall(key, fp)``: the raw listing a fingerprint stood for, if known
    (see :func:`.listings.recall`), which lets an append recompute only its added files and a rewrite only its
    touched days. Returns the partitions rewritten."""
    if not partitions:
        return set()
    spec, mspec = TABLES[LIQ], TABLES[MINUTES]
    if raw_files is None:
        raw_files = delta_io.files(loc, spec, delta_io.open_table(loc, spec))
    held = listing([f for f in delta_io.files(loc, mspec, delta_io.open_table(loc, mspec))
                    if (f.partition.get("exchange"), f.partition.get("month")) in partitions])
    done = set()
    for exchange, month in sorted(partitions):
        key = (exchange, month)
        part = delta_io.prune(raw_files, where={"exchange": [exchange], "month": [month]})
        fp = fingerprint(part)
        mine = held.get(key, {})
        if any(f == fp for f, _w in mine):
            continue
        if not part and not mine:
            continue
        writer = delta_io.new_writer_id()
        rows = None
        if len(mine) == 1 and recall is not None:
            (old_fp, old_writer), = mine
            old = recall(key, old_fp)
            if old is not None:
                rows = _update(loc, mine[(old_fp, old_writer)], old, part, key, fp, writer)
        if rows is None:
            raw = delta_io.read(loc, spec, part, columns=RAW_COLUMNS, dictionary=("asset", "source"))
            rows = compute(raw, exchange, month, fp, writer)
        pred = f"exchange = {delta_io.sql_literal(exchange)} AND month = {delta_io.sql_literal(month)}"
        delta_io.replace_where(loc, mspec, rows, pred, {"liqscope.op": "minute-rollup"})
        done.add(key)
    return done


def _update(loc: Location, old_files: list[delta_io.DataFile], old: tuple, part: list[delta_io.DataFile],
            key: tuple[str, str], fp: str, writer: str) -> pa.Table | None:
    """The new minute rows from the old ones: after an append, the old rows plus the added files' rows;
    after a rewrite of a few days, the old rows of the other days plus those days recomputed. None when
    neither applies (recompute the partition)."""
    spec = TABLES[LIQ]
    old_uris = {u for u, _a, _b in old}
    held = delta_io.read(loc, TABLES[MINUTES], old_files, columns=["ts", "asset", "source", "count", "notional_usd"])
    if not old_uris - {f.uri for f in part}:  # only added files
        added = [f for f in part if f.uri not in old_uris]
        raw = delta_io.read(loc, spec, added, columns=RAW_COLUMNS)
        ts = raw.column("ts").cast(pa.int64()).to_numpy()
        fresh = pa.table({"ts": pa.array(ts - ts % MINUTE_US), "asset": raw.column("asset"),
                          "source": raw.column("source"), "count": pa.array(np.ones(len(ts), np.int64)),
                          "usd": raw.column("notional_usd")})
        both = pa.concat_tables([
            pa.table({"ts": held.column("ts").cast(pa.int64()), "asset": held.column("asset"),
                      "source": held.column("source"), "count": held.column("count").cast(pa.int64()),
                      "usd": held.column("notional_usd").cast(pa.float64())}), fresh])
        g = both.group_by(_GROUP, use_threads=False).aggregate([("count", "sum"), ("usd", "sum")])
        return _rows(g, "count_sum", "usd_sum", *key, fp, writer)
    days = touched_days(old, part)
    if days is None:
        return None
    ts = held.column("ts").cast(pa.int64()).to_numpy()
    keep = ~np.isin(ts - ts % DAY_US, np.fromiter(days, dtype=np.int64, count=len(days)))
    carried = held.filter(pa.array(keep))
    data, flt = day_files(part, days)
    fresh = compute(delta_io.read(loc, spec, data, columns=RAW_COLUMNS, row_filter=flt), *key, fp, writer)
    n = carried.num_rows
    const = {"exchange": key[0], "month": key[1], "liq_files": fp, "writer": writer}
    carried = pa.table({"ts": carried.column("ts"), **{k: pa.repeat(pa.scalar(v, pa.string()), n) for k, v in const.items()},
                        **{c: carried.column(c) for c in ("asset", "source", "count", "notional_usd")}},
                       schema=MINUTE_SCHEMA)
    return pa.concat_tables([carried, fresh]).sort_by([("asset", "ascending"), ("source", "ascending"),
                                                       ("ts", "ascending")])
