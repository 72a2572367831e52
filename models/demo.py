"""Deterministic generator of the bundled demo dataset (synthetic, labelled so).

Calibrated to the figures widely reported for the 24 h of 2025-05-09 UTC, when
Bitcoin rose through $102,000: $860M liquidated, 82% shorts, Binance $360M,
OKX $180M, Bybit $120M, others $200M; ETH $120M, altcoins $200M, BTC the rest.
Prices and the timing/size of each event are invented; only the calibrated
totals match the news. Same seed + same library versions = same bytes.

Regenerate with ``liqscope demo --regenerate``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import ts_ns

SEED = 20250509
START = pd.Timestamp("2025-05-07", tz="UTC")
END = pd.Timestamp("2025-05-11", tz="UTC")
CALIBRATED_DAY = pd.Timestamp("2025-05-09", tz="UTC")
SUB_STEPS = 12  # 5-second path points per 1-minute candle

# --- calibration targets (USD) for 2025-05-09 ------------------------------
DAY_TOTAL = 860e6
SHORT_SHARE = 0.82
BY_EXCHANGE = {"binance": 360e6, "okx": 180e6, "bybit": 120e6, "bitget": 120e6, "gate": 80e6}
BY_ASSET = {"BTC": 540e6, "ETH": 120e6, "SOL": 70e6, "XRP": 50e6, "DOGE": 55e6, "ADA": 25e6}
# other days: (total USD, short share), not calibrated, just plausible context
OTHER_DAYS = {"2025-05-07": (240e6, 0.38), "2025-05-08": (430e6, 0.66), "2025-05-10": (310e6, 0.5)}

CANDLE_EXCHANGES = ("binance", "okx", "bybit")
CANDLE_ASSETS = ("BTC", "ETH", "SOL", "XRP", "ADA")
# price anchors: (time offset in hours from START, price)
BTC_ANCHORS = [(0, 96_800), (14, 96_250), (19, 95_900), (24, 97_300), (38, 98_600), (48, 99_850),
               (56, 100_400), (62, 101_300), (66, 102_450), (70, 103_650), (72, 103_050),
               (84, 103_900), (90, 103_200), (96, 103_750)]
# other assets: start price, end price, beta to BTC log returns, tick size
ASSETS = {
    "BTC": (None, None, 1.0, 0.1),
    "ETH": (1_815.0, 2_380.0, 1.35, 0.01),
    "SOL": (147.2, 171.9, 1.25, 0.01),
    "XRP": (2.128, 2.402, 1.1, 0.0001),
    "ADA": (0.7012, 0.7935, 1.15, 0.0001),
    "DOGE": (0.1745, 0.2231, 1.4, 0.00001),
}
QTY_STEP = {"BTC": 0.001, "ETH": 0.001, "SOL": 0.01, "XRP": 0.1, "ADA": 1.0, "DOGE": 1.0}
VOLUME_SHARE = {"binance": 1.0, "okx": 0.45, "bybit": 0.6}


def symbol_for(exchange: str, asset: str) -> str:
    """Each exchange's own spelling of the USDT-margined perpetual."""
    return {"okx": f"{asset}-USDT-SWAP", "gate": f"{asset}_USDT"}.get(exchange, f"{asset}USDT")


def _minutes() -> pd.DatetimeIndex:
    return pd.date_range(START, END, freq="1min", inclusive="left")


def _bridge(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Brownian bridge from 0 to 0 over n points with per-step std ``sigma``."""
    w = np.concatenate([[0.0], np.cumsum(rng.normal(0, sigma, n - 1))])
    return w - np.linspace(0, 1, n) * w[-1]


def _btc_log_path(rng: np.random.Generator, n: int) -> np.ndarray:
    hours = np.array([a[0] for a in BTC_ANCHORS], float)
    prices = np.log([a[1] for a in BTC_ANCHORS])
    t = np.arange(n) / (SUB_STEPS * 60)
    base = np.interp(t, hours, prices)
    noise = np.zeros(n)
    # a bridge per anchor segment keeps every anchor price exact
    edges = np.searchsorted(t, hours)
    for a, b in zip(edges[:-1], edges[1:]):
        noise[a:b + 1] = _bridge(rng, b + 1 - a, 0.00009)
    return base + noise


def _asset_paths(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(_minutes()) * SUB_STEPS + 1
    btc = _btc_log_path(rng, n)
    paths = {"BTC": btc}
    for asset, (p0, p1, beta, _tick) in ASSETS.items():
        if asset == "BTC":
            continue
        rel = beta * (btc - btc[0])
        drift = np.linspace(0, np.log(p1 / p0) - rel[-1], n)
        paths[asset] = np.log(p0) + rel + drift + _bridge(rng, n, 0.00012)
    return paths


def _round(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(np.round(x / step) * step, 10)


def _candles(rng, paths) -> pd.DataFrame:
    minutes = _minutes()
    n_min = len(minutes)
    parts = []
    for asset in CANDLE_ASSETS:
        tick = ASSETS[asset][3]
        for ex in CANDLE_EXCHANGES:
            # a slowly mean-reverting basis of a few basis points per exchange
            basis = np.zeros(len(paths[asset]))
            if ex != "binance":
                offset = 0.0002 if ex == "okx" else -0.00012
                basis = offset + _bridge(rng, len(basis), 0.000004)
            px = np.exp(paths[asset] + basis)
            grid = px[: n_min * SUB_STEPS + 1]
            blocks = np.lib.stride_tricks.sliding_window_view(grid, SUB_STEPS + 1)[::SUB_STEPS]
            o, c = blocks[:, 0], blocks[:, -1]
            h, lo = blocks.max(axis=1), blocks.min(axis=1)
            ret = np.abs(np.log(c / o))
            vol_usd = VOLUME_SHARE[ex] * 2.2e6 * (0.35 + 1800 * ret) * rng.lognormal(0, 0.35, n_min)
            if asset != "BTC":
                vol_usd *= {"ETH": 0.5, "SOL": 0.18, "XRP": 0.12, "ADA": 0.04}[asset]
            parts.append(pd.DataFrame({
                "exchange": ex, "symbol": symbol_for(ex, asset), "asset": asset, "interval": "1m",
                "ts": minutes, "open": _round(o, tick), "high": _round(h, tick),
                "low": _round(lo, tick), "close": _round(c, tick),
                "volume": np.round(vol_usd / c, 3),
            }))
    return pd.concat(parts, ignore_index=True)


def _cell_targets(total: float, short_share: float, rng, jitter: bool) -> list[tuple[str, str, str, float]]:
    ex_w = np.array(list(BY_EXCHANGE.values()))
    as_w = np.array(list(BY_ASSET.values()))
    if jitter:
        ex_w = ex_w * rng.uniform(0.8, 1.2, len(ex_w))
        as_w = as_w * rng.uniform(0.8, 1.2, len(as_w))
    ex_w, as_w = ex_w / ex_w.sum(), as_w / as_w.sum()
    cells = []
    for i, ex in enumerate(BY_EXCHANGE):
        for j, asset in enumerate(BY_ASSET):
            for side, share in (("long", 1 - short_share), ("short", short_share)):
                cells.append((ex, asset, side, total * ex_w[i] * as_w[j] * share))
    return cells


def _liquidations(rng, paths) -> pd.DataFrame:
    minutes = _minutes()
    minute_ns = ts_ns(minutes)
    days = {CALIBRATED_DAY.strftime("%Y-%m-%d"): (DAY_TOTAL, SHORT_SHARE, False)}
    days.update({d: (t, s, True) for d, (t, s) in OTHER_DAYS.items()})
    # per-asset intensity: fast moves up squeeze shorts, fast moves down flush longs
    intensity = {}
    for asset, path in paths.items():
        closes = path[::SUB_STEPS][: len(minutes) + 1]
        r = np.diff(closes)
        r = np.convolve(r, np.ones(5) / 5, mode="same")  # cascades last a few minutes
        scale = np.abs(r).mean()
        intensity[asset] = {
            "short": 0.2 + (np.clip(r, 0, None) / scale) ** 2,
            "long": 0.2 + (np.clip(-r, 0, None) / scale) ** 2,
        }
    rows = []
    for day, (total, short_share, jitter) in sorted(days.items()):
        d0 = pd.Timestamp(day, tz="UTC")
        lo, hi = minutes.searchsorted(d0), minutes.searchsorted(d0 + pd.Timedelta(days=1))
        for ex, asset, side, usd in _cell_targets(total, short_share, rng, jitter):
            n = max(3, int(usd / 28_000))
            sizes = np.minimum(5_000 * (1 - rng.random(n)) ** (-1 / 1.25), 9.5e6)
            sizes *= usd / sizes.sum()
            w = intensity[asset][side][lo:hi]
            mins = lo + rng.choice(hi - lo, size=n, p=w / w.sum())
            ts = minute_ns[mins] + rng.integers(0, 60_000, n) * 1_000_000
            step = ASSETS[asset][3]
            logp = paths[asset][mins * SUB_STEPS + rng.integers(0, SUB_STEPS, n)]
            price = _round(np.exp(logp) * (1 + rng.normal(0, 0.0003, n)), step)
            qty = np.maximum(_round(sizes / price, QTY_STEP[asset]), QTY_STEP[asset])
            rows.append(pd.DataFrame({
                "ts": pd.to_datetime(ts, utc=True, unit="ns"), "exchange": ex, "symbol": symbol_for(ex, asset),
                "asset": asset, "side": side, "price": price, "qty": qty,
                "notional_usd": np.round(price * qty, 2),
            }))
    liq = pd.concat(rows, ignore_index=True)
    return liq.sort_values(["ts", "exchange", "symbol"], kind="stable").reset_index(drop=True)


def generate(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (candles in long form, liquidation events)."""
    rng = np.random.default_rng(seed)
    paths = _asset_paths(rng)
    return _candles(rng, paths), _liquidations(rng, paths)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    for name in ("exchange", "symbol", "asset", "side", "interval"):
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(name).dictionary_encode())
    pq.write_table(table, path, compression="zstd", compression_level=9, write_statistics=False)


def write(folder: Path, seed: int = SEED) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    candles, liqs = generate(seed)
    out = [folder / "candles.parquet", folder / "liquidations.parquet"]
    _write_parquet(candles, out[0])
    _write_parquet(liqs, out[1])
    return out
