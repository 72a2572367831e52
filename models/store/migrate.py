"""Convert a schema-1 store (Parquet month files per exchange/symbol, nanosecond times) to Delta tables.

Runs on first open of an old store, or by ``liqscope store migrate``. Atomic in the sense users care
about: the new tables are built in ``<store>/.migrating/`` and verified against the old files (same
row count and USD total per exchange and month for liquidations, per series for candles, and the
gaps); only then are the old folders moved into ``<store>/schema1/`` (kept, never deleted by
Liqscope) and the new tables moved into place, and ``store.json`` says schema 2 last. An interrupted
migration resumes or restarts on the next open; until ``store.json`` changes, the old store is whole.
Rows of a schema-1 store never recorded their source: they become ``migrated``.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..progress import Task
from ..version import app_version
from . import delta_io, layout, rollups
from .errors import StoreError, first_line, store_errors
from .location import Location
from .provenance import MIGRATED
from .tables import (CANDLES, COVERAGE, GAPS, LIQ, SERIES, TABLES, TABLE_VERSION, candle_table, gap_table,
                     liq_table, series_rows)

log = logging.getLogger("liqscope.store")
WORK = ".migrating"
READY = "READY"
BACKUP = "schema1"
OLD_DIRS = ("liquidations", "candles", "gaps")


def _read_old(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot migrate the store: {path} is unreadable ({first_line(exc)}); run "
                         "`liqscope store check --quarantine` with the Liqscope that wrote it, or move it aside") from None


def _totals(table: pa.Table, keys: list[str], usd: str | None) -> dict:
    if not table.num_rows:
        return {}
    aggs = [(keys[0], "count")] + ([(usd, "sum")] if usd else [])
    g = table.group_by(keys).aggregate(aggs)
    out = {}
    for r in g.to_pylist():
        out[tuple(r[k] for k in keys)] = (r[f"{keys[0]}_count"], round(r[f"{usd}_sum"], 4) if usd else None)
    return out


def migrate(store, task: Task | None = None) -> dict:
    """Convert ``store`` (a local schema-1 store) in place; returns what was converted. Resumable."""
    loc: Location = store.location
    if not loc.is_local:
        raise StoreError(f"the store at {loc} has schema {store.schema_version}; migrate it on a local copy first")
    root = loc.path
    work = root / WORK
    with store_errors(str(loc), "migrate"):
        if not (work / READY).exists():
            shutil.rmtree(work, ignore_errors=True)
            try:
                summary = _build(root, work, task)
            except BaseException:  # refused, failed or cancelled: no half-built copy of the data left behind
                shutil.rmtree(work, ignore_errors=True)
                raise
            (work / READY).write_text(repr(summary), encoding="utf-8")
        _swap(root, work)
        meta = dict(store.meta, schema_version=2, table_version=TABLE_VERSION, migrated_from=1,
                    written_by=f"liqscope {app_version()}", tables=sorted(TABLES))
        loc.write_meta(meta)   # the commit point: from here the store is schema 2
        shutil.rmtree(work, ignore_errors=True)
    store.schema_version, store.meta = 2, meta
    log.warning("liqscope: migrated the store at %s to Delta tables (schema 2); the old files are kept in %s "
                "(delete that folder once you are happy)", root, root / BACKUP)
    return {"backup": str(root / BACKUP)}


def _build(root: Path, work: Path, task: Task | None) -> dict:
    new = Location.of(work)
    liq_files = layout.scan(root, layout.LIQ)
    candle_files = layout.scan(root, layout.CANDLES)
    total = len(liq_files) + len(candle_files) + 1
    done = 0
    expect_liq: dict = {}
    # liquidations: one commit per exchange/month (all symbols), so memory is one month of one exchange
    groups: dict[tuple[str, str], list[layout.PartFile]] = {}
    for f in liq_files:
        groups.setdefault((f.exchange, f.month), []).append(f)
    for (exchange, month), files in sorted(groups.items()):
        frames = [_read_old(f.path) for f in files]
        frame = pd.concat(frames, ignore_index=True) if frames else None
        if frame is None or not len(frame):
            continue
        table = liq_table(frame, MIGRATED)
        for k, v in _totals(table, ["exchange", "month"], "notional_usd").items():
            c, s = expect_liq.get(k, (0, 0.0))
            expect_liq[k] = (c + v[0], round(s + v[1], 4))
        delta_io.append(new, TABLES[LIQ], table)
        cov = table.group_by(["source", "exchange", "symbol"]).aggregate([("ts", "min"), ("ts", "max")])
        delta_io.append(new, TABLES[COVERAGE], pa.table({
            "source": cov.column("source"), "exchange": cov.column("exchange"), "symbol": cov.column("symbol"),
            "start": cov.column("ts_min"),
            "end": pa.array(cov.column("ts_max").cast(pa.int64()).to_numpy() + 1).cast(TABLES[LIQ].schema.field("ts").type)},
            schema=TABLES[COVERAGE].schema))
        done += len(files)
        if task is not None:
            task.progress(done, total, f"migrating {exchange} {month}")
    expect_candles: dict = {}
    series: dict[tuple[str, str, str], list[layout.PartFile]] = {}
    for f in candle_files:
        series.setdefault((f.exchange, f.symbol, f.interval), []).append(f)
    for (exchange, symbol, interval), files in sorted(series.items()):
        frame = pd.concat([_read_old(f.path) for f in files], ignore_index=True)
        if not len(frame):
            continue
        asset = str(frame["asset"].iloc[0]) if "asset" in frame.columns else symbol
        table = candle_table(frame, exchange=exchange, symbol=symbol, interval=interval, asset=asset)
        expect_candles[(exchange, symbol, interval)] = table.num_rows
        delta_io.append(new, TABLES[SERIES], series_rows(table))
        delta_io.append(new, TABLES[CANDLES], table)
        done += len(files)
        if task is not None:
            task.progress(done, total, f"migrating candles {exchange} {symbol} {interval}")
    gaps_path = root / layout.GAPS_FILE
    n_gaps = 0
    if gaps_path.exists():
        g = _read_old(gaps_path)
        if len(g):
            delta_io.append(new, TABLES[GAPS], gap_table(g))
            n_gaps = len(g)
    rollups.refresh(new, set(expect_liq))
    _verify(new, expect_liq, expect_candles, n_gaps)
    if task is not None:
        task.progress(total, total, "migration verified")
    return {"liquidations": sum(v[0] for v in expect_liq.values()), "candles": sum(expect_candles.values()),
            "gaps": n_gaps}


def _verify(new: Location, expect_liq: dict, expect_candles: dict, n_gaps: int) -> None:
    """The new tables hold what the old files held: else nothing is switched over."""
    liq = delta_io.read(new, TABLES[LIQ], delta_io.files(new, TABLES[LIQ], delta_io.open_table(new, TABLES[LIQ])),
                        columns=["exchange", "month", "notional_usd"])
    got = _totals(liq, ["exchange", "month"], "notional_usd")
    for key in set(got) | set(expect_liq):
        a, b = got.get(key, (0, 0.0)), expect_liq.get(key, (0, 0.0))
        if a[0] != b[0] or not np.isclose(a[1], b[1], rtol=1e-9, atol=1e-6):
            raise StoreError(f"migration check failed for {key[0]} {key[1]}: {b[0]} rows / {b[1]:,.2f} USD in the "
                             f"old store, {a[0]} / {a[1]:,.2f} in the new one; nothing was changed")
    cdl = delta_io.read(new, TABLES[CANDLES], delta_io.files(new, TABLES[CANDLES],
                                                             delta_io.open_table(new, TABLES[CANDLES])),
                        columns=["exchange", "symbol", "interval"])
    got_c = {k: v[0] for k, v in _totals(cdl, ["exchange", "symbol", "interval"], None).items()}
    if got_c != expect_candles:
        raise StoreError("migration check failed for candles (row counts differ); nothing was changed")
    gt = delta_io.open_table(new, TABLES[GAPS])
    if (gt is not None and delta_io.read(new, TABLES[GAPS], delta_io.files(new, TABLES[GAPS], gt)).num_rows
            or 0) != n_gaps:
        raise StoreError("migration check failed for the recorder gaps; nothing was changed")


def _swap(root: Path, work: Path) -> None:
    """Old folders into schema1/, new tables into place; each move is a rename, so this resumes."""
    backup = root / BACKUP
    backup.mkdir(exist_ok=True)
    for name in OLD_DIRS:
        old = root / name
        if old.exists() and not (old / "_delta_log").exists():
            old.rename(backup / name)
    meta = root / layout.STORE_FILE
    if meta.exists() and not (backup / layout.STORE_FILE).exists():
        shutil.copy2(meta, backup / layout.STORE_FILE)
    for table in sorted(p.name for p in work.iterdir() if p.is_dir()):
        dest = root / table
        if not dest.exists():
            (work / table).rename(dest)
