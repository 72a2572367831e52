"""Store benchmark (a script, not a test): prints one JSON object per line.

1. ``import_csv``: import N generated liquidations from a Tardis-format CSV
   (microsecond times, 3 exchanges, 5 symbols, 60 days) into an empty store.
2. ``bucket_24h``: in a store of M events (one year), read one UTC day and
   aggregate it into 5-minute buckets per exchange and side, cold then warm.

    .venv/bin/python tests/bench/bench_store.py [--rows 5000000] [--store-rows 20000000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from liqscope.models.importers import import_files
from liqscope.models.store import Batch, open_store

SYMBOLS = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0, "XRPUSDT": 0.6, "DOGEUSDT": 0.15}
# linear USDT perpetuals whose Tardis amount is in base units (okex-swap amounts are contracts of a size per symbol)
TARDIS_EXCHANGES = ["binance-futures", "bybit"]


def emit(**rec) -> None:
    print(json.dumps(rec), flush=True)


def tardis_csv(path: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2025-04-15", tz="UTC").value // 1000
    ts = np.sort(rng.integers(t0, t0 + 60 * 86_400 * 1_000_000, n))
    sym = rng.integers(0, len(SYMBOLS), n)
    base = np.array(list(SYMBOLS.values()))[sym]
    table = pa.table({
        "exchange": pa.array(np.array(TARDIS_EXCHANGES)[rng.integers(0, len(TARDIS_EXCHANGES), n)]),
        "symbol": pa.array(np.array(list(SYMBOLS))[sym]),
        "timestamp": ts, "local_timestamp": ts + rng.integers(500, 5_000, n),
        "id": pa.nulls(n, pa.string()),
        "side": pa.array(np.where(rng.random(n) < 0.5, "buy", "sell")),
        "price": np.round(base * rng.uniform(0.9, 1.1, n), 4),
        "amount": np.round(rng.lognormal(0, 1.2, n) * 1_000 / base, 6) + 1e-6,
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))


def canonical(n: int, start: str, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC").value
    ts = np.sort(rng.integers(t0, t0 + days * 86_400 * 10**9, n))
    sym = rng.integers(0, len(SYMBOLS), n)
    names = np.array(list(SYMBOLS))
    price = np.array(list(SYMBOLS.values()))[sym] * rng.uniform(0.9, 1.1, n)
    qty = rng.lognormal(0, 1.2, n) * 1_000 / price
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(ts).tz_localize("UTC"),
        "exchange": pd.Categorical.from_codes(rng.integers(0, 3, n), ["binance", "bybit", "okx"]),
        "symbol": pd.Categorical.from_codes(sym, names),
        "asset": pd.Categorical.from_codes(sym, [s.removesuffix("USDT") for s in names]),
        "side": pd.Categorical.from_codes(rng.integers(0, 2, n), ["long", "short"]),
        "price": price, "qty": qty, "notional_usd": price * qty,
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--store-rows", type=int, default=20_000_000)
    ap.add_argument("--dir", help="work folder (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="liqscope-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    emit(bench="env", cpus=os.cpu_count(), pandas=pd.__version__, pyarrow=pa.__version__, work=str(work))
    try:
        # 1. CSV import ------------------------------------------------------------------
        csv = work / "binance-futures_liquidations_2025-04-15_BENCH.csv"
        t = time.perf_counter()
        tardis_csv(csv, args.rows)
        emit(bench="generate_csv", rows=args.rows, mb=round(csv.stat().st_size / 1e6, 1),
             seconds=round(time.perf_counter() - t, 2))
        store = open_store(work / "import-store")
        t = time.perf_counter()
        [report] = import_files([csv], store=store)
        dt = time.perf_counter() - t
        emit(bench="import_csv", format=report.format, rows=report.rows, new=report.new,
             seconds=round(dt, 2), rows_per_s=round(report.rows / dt), mb_per_s=round(csv.stat().st_size / 1e6 / dt, 1))
        t = time.perf_counter()
        [again] = import_files([csv], store=store)
        emit(bench="reimport_csv", rows=again.rows, new=again.new, seconds=round(time.perf_counter() - t, 2))
        csv.unlink()
        shutil.rmtree(work / "import-store")

        # 2. 24 h aggregation from a big store ----------------------------------------
        big = open_store(work / "big-store")
        t = time.perf_counter()
        chunks = 8
        per = args.store_rows // chunks
        for i in range(chunks):  # 8 disjoint ~46-day slices of one year
            start = pd.Timestamp("2024-06-01", tz="UTC") + pd.Timedelta(days=i * 365 / chunks)
            batch = Batch()
            batch.add_liquidations(canonical(per, str(start), 365 // chunks, seed=100 + i), trusted=True)
            big.commit(batch)
        size = sum(p.stat().st_size for p in (work / "big-store").rglob("*.parquet"))
        emit(bench="build_store", events=per * chunks, seconds=round(time.perf_counter() - t, 1),
             disk_mb=round(size / 1e6, 1))
        day = pd.Timestamp("2025-01-15", tz="UTC")
        for run in ("cold", "warm", "warm"):
            t = time.perf_counter()
            window = open_store(big.root).liquidations(day, day + pd.Timedelta(days=1))
            t_read = time.perf_counter() - t
            buckets = window.buckets(300, day, day + pd.Timedelta(days=1), by="exchange")
            totals = window.totals()
            dt = time.perf_counter() - t
            emit(bench="bucket_24h", run=run, events_in_store=per * chunks, events_in_window=len(window),
                 buckets=len(buckets), read_seconds=round(t_read, 3), total_seconds=round(dt, 3),
                 window_usd=round(totals.total_usd))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
