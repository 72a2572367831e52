"""Benchmark of the liquidation model on synthetic events, and of `liqscope summary` end to end.

Not a test (tests/conftest.py tells pytest to skip this folder). Run:

    .venv/bin/python tests/bench/bench_models.py [--events 5000000] [--repeat 5]

Prints one JSON object per line: {"step": ..., "seconds": ..., ...}. Times of the fast steps are the
median of --repeat runs; `summary` is the median of 3 runs of the installed console script.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from liqscope.models.liquidations import LiquidationModel

EXCHANGES = ["binance", "okx", "bybit", "bitget", "gate"]
ASSETS = {"BTC": 100_000.0, "ETH": 2_300.0, "SOL": 160.0, "XRP": 2.3, "ADA": 0.75, "DOGE": 0.2}
START = pd.Timestamp("2025-04-10", tz="UTC")
DAYS = 30


def emit(step: str, seconds: float, **extra) -> None:
    print(json.dumps({"step": step, "seconds": round(seconds, 4), **extra}), flush=True)


def timed(fn, repeat: int):
    """(median seconds, last result) over ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def build(n: int, seed: int = 1) -> pd.DataFrame:
    """n events over DAYS days: 5 exchanges, 6 assets, 2 sides, Pareto-tailed USD sizes. Vectorised."""
    rng = np.random.default_rng(seed)
    span_ns = DAYS * 86_400 * 1_000_000_000
    ts = np.sort(rng.integers(0, span_ns, n, dtype=np.int64)) + START.value
    ex = rng.choice(len(EXCHANGES), n, p=[0.4, 0.2, 0.15, 0.15, 0.1]).astype(np.int8)
    asset = rng.choice(len(ASSETS), n, p=[0.55, 0.15, 0.1, 0.08, 0.05, 0.07]).astype(np.int8)
    side = (rng.random(n) < 0.6).astype(np.int8)  # 1 = short
    usd = np.minimum(5_000 * (1 - rng.random(n)) ** (-1 / 1.25), 2e7)
    price = np.array(list(ASSETS.values()))[asset] * rng.lognormal(0, 0.02, n)
    qty = usd / price
    asset_names = list(ASSETS)
    symbols = pd.Categorical.from_codes(asset, [f"{a}USDT" for a in asset_names])
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(ts, tz="UTC"),
        "exchange": pd.Categorical.from_codes(ex, EXCHANGES),
        "symbol": symbols,
        "asset": pd.Categorical.from_codes(asset, asset_names),
        "side": pd.Categorical.from_codes(side, ["long", "short"]),
        "price": price,
        "qty": qty,
        "notional_usd": np.round(price * qty, 2),
    })


def bench_summary_cli(runs: int = 3) -> tuple[float, list[float]]:
    exe = Path(sys.executable).parent / "liqscope"
    times = []
    with tempfile.TemporaryDirectory() as data_dir:
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([str(exe), "--data-dir", data_dir, "summary", "--json"], check=True,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    r = args.repeat

    t = time.perf_counter()
    frame = build(args.events)
    emit("build", time.perf_counter() - t, events=len(frame))

    t = time.perf_counter()
    model = LiquidationModel(frame)  # validates and normalises every column
    emit("model_construct_validated", time.perf_counter() - t, events=len(model))
    sec, _ = timed(lambda: LiquidationModel(model.frame, _trusted=True), r)
    emit("model_construct_trusted", sec)

    day0 = START + pd.Timedelta(days=12)
    day1 = day0 + pd.Timedelta(days=1)
    sec, w = timed(lambda: model.window(day0, day1), r)
    emit("window_24h", sec, events=len(w))
    sec, tot = timed(lambda: model.window(day0, day1).totals(), r)
    emit("window_24h+totals", sec, events=tot.count, total_usd=round(tot.total_usd),
         short_share=round(tot.short_share, 4))
    sec, tot = timed(lambda: model.totals(), r)
    emit("totals_all", sec, events=tot.count)

    sec, b = timed(lambda: model.buckets(300, day0, day1), r)
    emit("buckets_300s_24h", sec, buckets=len(b), columns=b.shape[1])
    sec, b = timed(lambda: model.buckets(300), r)
    emit("buckets_300s_all", sec, buckets=len(b), columns=b.shape[1])
    assert abs(b.to_numpy().sum() - tot.total_usd) <= 1e-6 * tot.total_usd

    sec, f = timed(lambda: model.filter(min_notional=100_000), r)
    emit("filter_min_notional_100k_all", sec, events=len(f))
    sec, f = timed(lambda: model.filter(day0, day1, exchanges=["binance", "okx"], assets=["BTC"], side="short",
                                        min_notional=10_000), r)
    emit("filter_24h_ex_asset_side_min", sec, events=len(f))

    sec, top = timed(lambda: model.largest(10), r)
    emit("largest_10_all", sec, top_usd=float(top["notional_usd"].iloc[0]))

    sec, runs = bench_summary_cli(3)
    emit("cli_summary_json_end_to_end", sec, runs=[round(x, 3) for x in runs], note="median of 3, demo data")


if __name__ == "__main__":
    main()
