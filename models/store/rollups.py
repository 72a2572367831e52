"""Hourly and daily liquidation totals per (exchange, symbol, asset, side, source), kept beside the raw rows.

They make the overview of all history (daily totals, the busiest day, the "All" headline) cost the same
for five years as for a day. Each (exchange, month) partition is recomputed from that partition's raw
rows after every commit that touched it, and stamped with a fingerprint of the raw files it was
computed from (``liq_files``). Readers use a partition's rollups only when the fingerprint matches the
raw snapshot they read, and read raw rows otherwise -- so a rollup can lag (a crash between the two
commits, two writers racing) but never be wrong.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import delta_io
from .location import Location
from .tables import LIQ, ROLLUP_SCHEMA, ROLLUPS, TABLES, TS

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
LEVELS = {"1d": DAY_US, "1h": HOUR_US}


def fingerprint(data: list[delta_io.DataFile]) -> str:
    """Identifies a partition's raw content: Delta data files are immutable and uniquely named."""
    names = sorted(f.uri.rsplit("/", 1)[-1] for f in data)
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


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
    """Recompute the rollups of ``partitions`` ((exchange, month)) from the latest raw snapshot.
    Returns how many partitions were rewritten (those already current are skipped)."""
    if not partitions:
        return 0
    spec, rspec = TABLES[LIQ], TABLES[ROLLUPS]
    raw_files = delta_io.files(loc, spec, delta_io.open_table(loc, spec))
    current = current_fingerprints(loc, partitions)
    done = 0
    for exchange, month in sorted(partitions):
        part = delta_io.prune(raw_files, where={"exchange": [exchange], "month": [month]})
        fp = fingerprint(part)
        if current.get((exchange, month)) == {fp}:
            continue
        raw = delta_io.read(loc, spec, part, columns=["ts", "symbol", "asset", "side", "source", "notional_usd"])
        rows = compute(raw, exchange, month, fp, delta_io.new_writer_id())
        pred = f"exchange = {delta_io.sql_literal(exchange)} AND month = {delta_io.sql_literal(month)}"
        delta_io.replace_where(loc, rspec, rows, pred, {"liqscope.op": "rollup"})
        done += 1
    return done


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
    if not rows.num_rows:
        return rows, set(fingerprints)
    want = pa.table({"exchange": [k[0] for k in fingerprints], "month": [k[1] for k in fingerprints],
                     "liq_files": list(fingerprints.values())},
                    schema=pa.schema([("exchange", pa.string()), ("month", pa.string()), ("liq_files", pa.string())]))
    keyed = rows.select(["exchange", "month", "liq_files", "writer"]).append_column(
        "_row", pa.array(np.arange(rows.num_rows)))
    matching = keyed.join(want, keys=["exchange", "month", "liq_files"], join_type="inner")
    if not matching.num_rows:
        return rows.slice(0, 0), set(fingerprints)
    first = matching.group_by(["exchange", "month"]).aggregate([("writer", "min")])  # one writer per partition
    chosen = matching.join(first, keys=["exchange", "month"], join_type="inner")
    chosen = chosen.filter(pc.equal(chosen.column("writer"), chosen.column("writer_min")))
    idx = np.sort(chosen.column("_row").to_numpy())
    good = set(zip(first.column("exchange").to_pylist(), first.column("month").to_pylist()))
    return rows.take(pa.array(idx)), {k for k in fingerprints if k not in good}
