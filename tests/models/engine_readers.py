"""The three engines of test_store_engines.py, as a user would write them: no Liqscope imports.

A module of its own (not the test module) so the exit test's subprocesses import it without pytest.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import DeltaTable


def arrow_dataset(table_path) -> pds.Dataset:
    """deltalake lists the snapshot's data files; pyarrow reads them on its native filesystem, with the
    partition columns from the ``exchange=…/month=…`` folders."""
    dt = DeltaTable(str(table_path))
    schema = pa.schema(dt.schema().to_arrow())
    parts = dt.metadata().partition_columns
    partitioning = (pds.partitioning(pa.schema([schema.field(p) for p in parts]), flavor="hive")
                    if parts else None)
    return pds.dataset(dt.file_uris(), schema=schema, format="parquet", partitioning=partitioning,
                       partition_base_dir=str(table_path))


def window_bounds(start: str, end: str) -> tuple[datetime, datetime]:
    return pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()


def arrow_totals(table_path, start: str, end: str) -> dict:
    s, e = window_bounds(start, end)
    ts = pa.timestamp("us", tz="UTC")
    t = arrow_dataset(table_path).to_table(
        columns=["ts", "exchange", "side", "notional_usd"],
        filter=(pc.field("ts") >= pa.scalar(s, ts)) & (pc.field("ts") < pa.scalar(e, ts)))
    usd, side = t.column("notional_usd"), t.column("side")
    by_ex = t.group_by("exchange").aggregate([("notional_usd", "sum")])
    return {"total_usd": pc.sum(usd).as_py() or 0.0,
            "long_usd": pc.sum(pc.filter(usd, pc.equal(side, "long"))).as_py() or 0.0,
            "short_usd": pc.sum(pc.filter(usd, pc.equal(side, "short"))).as_py() or 0.0,
            "count": t.num_rows,
            "by_exchange": dict(zip(by_ex.column("exchange").to_pylist(),
                                    by_ex.column("notional_usd_sum").to_pylist()))}


def polars_totals(table_path, start: str, end: str) -> dict:
    s, e = window_bounds(start, end)
    lf = pl.scan_delta(str(table_path)).filter(pl.col("ts").is_between(s, e, closed="left"))
    usd = pl.col("notional_usd")
    head = lf.select(total_usd=usd.sum(), long_usd=usd.filter(pl.col("side") == "long").sum(),
                     short_usd=usd.filter(pl.col("side") == "short").sum(), count=pl.len()).collect()
    by_ex = lf.group_by("exchange").agg(usd.sum()).collect()
    return {**head.row(0, named=True),
            "by_exchange": dict(zip(by_ex["exchange"].to_list(), by_ex["notional_usd"].to_list()))}


DUCK_TOTALS = """
SELECT coalesce(sum(notional_usd), 0) AS total_usd,
       coalesce(sum(notional_usd) FILTER (WHERE side = 'long'), 0) AS long_usd,
       coalesce(sum(notional_usd) FILTER (WHERE side = 'short'), 0) AS short_usd,
       count(*) AS count
FROM liquidations WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ
"""
DUCK_BY_EXCHANGE = """
SELECT exchange, sum(notional_usd) FROM liquidations
WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ GROUP BY exchange
"""


def duckdb_totals(con: duckdb.DuckDBPyConnection, start: str, end: str) -> dict:
    """Over a view or registered Arrow object named ``liquidations`` on ``con``."""
    cur = con.execute(DUCK_TOTALS, [start, end])
    names = [d[0] for d in cur.description]
    out = dict(zip(names, cur.fetchone()))
    out["by_exchange"] = dict(con.execute(DUCK_BY_EXCHANGE, [start, end]).fetchall())
    return out


def duckdb_over_arrow(store_root: Path, *tables: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in tables:
        con.register(name, arrow_dataset(store_root / name))
    return con


def offline_delta_extension() -> duckdb.DuckDBPyConnection | None:
    """A connection with DuckDB's ``delta`` extension if it is already installed here (never downloaded)."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    installed = con.execute("SELECT installed FROM duckdb_extensions() WHERE extension_name = 'delta'").fetchone()
    if not installed or not installed[0]:
        return None
    con.execute("LOAD delta")
    return con
