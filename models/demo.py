"""Deterministic generator of the bundled demo dataset (synthetic, labelled so).

Calibrated to the figures widely reported for the 24 h of 2025-05-09 UTC, when
Bitcoin rose through $102,000: $860M liquidated, 82% shorts, Binance $360M,
OKX $180M, Bybit $120M, others $200M; ETH $120M, altcoins $200M, BTC the rest.
The day's largest cascade is the move through $102K (~16:41 UTC): a sharp burst
across exchanges, mostly shorts, Binance first. Every liquidation on a venue with
candles is priced inside that venue's 1-minute candle high-low.

Context series (same seed, labelled ``source="demo"``): open interest per
exchange (5-minute), funding at each 8-hourly settlement, and outside series
(ETF net flows per fund, Fear & Greed, BTC dominance), calibrated to the seed's
figures: ETH OI +34% over the move (:data:`MOVE_START` .. :data:`MOVE_END`),
funding elevated into the move and negative after it, ETF inflows $1.4B with
IBIT $800M, Fear & Greed 84 and BTC dominance 58% on 2025-05-09.

Prices and the timing/size of each event are invented; only the calibrated
figures match the news. Same seed + same library versions = same bytes.

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
STEP_NS = 5_000_000_000

# --- calibration targets (USD) for 2025-05-09 ------------------------------
DAY_TOTAL = 860e6
SHORT_SHARE = 0.82
BY_EXCHANGE = {"binance": 360e6, "okx": 180e6, "bybit": 120e6, "bitget": 120e6, "gate": 80e6}
BY_ASSET = {"BTC": 540e6, "ETH": 120e6, "SOL": 70e6, "XRP": 50e6, "DOGE": 55e6, "ADA": 25e6}
# other days: (total USD, short share), not calibrated, just plausible context
OTHER_DAYS = {"2025-05-07": (240e6, 0.38), "2025-05-08": (430e6, 0.66), "2025-05-10": (310e6, 0.5)}

# --- bursts (cascades), added explicitly ------------------------------------------------------------
# Each is carved out of its day's own per-(exchange, asset, side) targets, so every day's totals stay as
# they are. USD per asset, summed over exchanges (shared as BY_EXCHANGE) and sides; each exchange joins
# ``lag_s`` seconds after the first. The first is the move through $102K: the demo's largest cascade.
BURSTS = [
    {"start": "2025-05-09 16:41", "minutes": 5, "short_share": 0.94, "mean_usd": 190_000,
     "usd": {"BTC": 28e6, "ETH": 4.0e6, "SOL": 1.3e6, "XRP": 0.8e6, "DOGE": 0.9e6, "ADA": 0.3e6},
     "lag_s": {"binance": 0.0, "okx": 35.0, "bybit": 45.0, "bitget": 50.0, "gate": 60.0}},
    # context: a long flush on the 7th, an ETH-led short squeeze on the 8th, a long flush on the 10th
    {"start": "2025-05-07 17:05", "minutes": 3, "short_share": 0.08, "mean_usd": 90_000,
     "usd": {"BTC": 9e6, "ETH": 1.5e6},
     "lag_s": {"bybit": 0.0, "binance": 15.0, "okx": 30.0, "bitget": 30.0, "gate": 40.0}},
    {"start": "2025-05-08 12:31", "minutes": 4, "short_share": 0.9, "mean_usd": 100_000,
     "usd": {"ETH": 7.0e6, "BTC": 4.0e6, "SOL": 0.8e6},
     "lag_s": {"okx": 0.0, "binance": 10.0, "bybit": 20.0, "bitget": 30.0, "gate": 35.0}},
    {"start": "2025-05-10 14:21", "minutes": 3, "short_share": 0.1, "mean_usd": 100_000,
     "usd": {"BTC": 11e6, "ETH": 2.0e6, "SOL": 0.6e6},
     "lag_s": {"binance": 0.0, "bybit": 20.0, "okx": 25.0, "bitget": 35.0, "gate": 45.0}},
]
CASCADE_START = pd.Timestamp(BURSTS[0]["start"], tz="UTC")
# mean background order per asset (BTC's are the largest); a burst's mean_usd is BTC's, other assets'
# scale with these
BACKGROUND_MEAN_USD = {"BTC": 45_000, "ETH": 25_000, "SOL": 15_000, "XRP": 12_000, "DOGE": 10_000, "ADA": 8_000}
BACKGROUND_MAX_USD = 1.5e6       # largest background order before scaling to the cell's total
INTENSITY_CAP = 6.0              # background rate: at most 0.2 + this in units of the quiet rate ...
BURST_BACKGROUND = 1.0           # ... and at most this around BURSTS (which are added explicitly)
BURST_PROFILE = (1.8, 3.5)       # Kumaraswamy(a, b) shape of a burst's USD over its minutes

CANDLE_EXCHANGES = ("binance", "okx", "bybit")
CANDLE_ASSETS = ("BTC", "ETH", "SOL", "XRP", "ADA")
# price anchors: (time offset in hours from START, price); 64 h = 2025-05-09 16:00 UTC
BTC_ANCHORS = [(0, 96_800), (14, 96_250), (17 + 5 / 60, 96_060), (17 + 7 / 60, 95_620), (19, 95_900),
               (24, 97_300), (36 + 31 / 60, 98_380), (36 + 34 / 60, 98_930), (38, 98_600), (48, 99_850),
               (56, 100_400), (62, 101_300), (64 + 30 / 60, 101_640), (64 + 41 / 60, 101_760),
               (64 + 44 / 60, 102_470), (64 + 46 / 60, 102_640), (65 + 10 / 60, 102_420),
               (66, 102_560), (70, 103_650), (72, 103_050), (84, 103_900), (86 + 21 / 60, 103_640),
               (86 + 23 / 60, 102_960), (90, 103_200), (96, 103_750)]
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
BASIS = {"binance": 0.0, "okx": 0.0002, "bybit": -0.00012}
# exchanges without candles price off Binance's path with a small basis
OTHER_BASIS = {"bitget": 0.00008, "gate": -0.00005}

# --- context series ------------------------------------------------------------------------------
MOVE_START = START                                # "the move": the rally into and through the
MOVE_END = CALIBRATED_DAY + pd.Timedelta(days=1)  # calibrated day (OI change measured start -> end)
ETH_OI_CHANGE = 0.34                              # ETH open interest in USD, summed over exchanges
OI_PERIOD = "5m"
# open interest at START, USD per exchange
OI_USD_START = {
    "BTC": {"binance": 12.4e9, "okx": 4.3e9, "bybit": 7.6e9},
    "ETH": {"binance": 5.2e9, "okx": 1.6e9, "bybit": 2.7e9},
    "SOL": {"binance": 2.1e9, "okx": 0.62e9, "bybit": 1.15e9},
    "XRP": {"binance": 1.35e9, "okx": 0.38e9, "bybit": 0.86e9},
    "ADA": {"binance": 0.34e9, "okx": 0.09e9, "bybit": 0.19e9},
}
# base-unit OI multipliers (hours from START -> factor): rising into the squeeze, dropping in the burst
_C0 = (CASCADE_START - START) / pd.Timedelta(hours=1)
_B = 1 / 12  # one 5-minute OI period, in hours
OI_ANCHORS = {
    "BTC": [(0, 1.0), (24, 1.012), (48, 1.034), (_C0 - 3 * _B, 1.068), (_C0, 1.072), (_C0 + _B, 1.047),
            (_C0 + 2 * _B, 1.04), (_C0 + 18 * _B, 1.045), (72, 1.05), (96, 1.056)],
    "ETH": [(0, 1.0), (24, 1.04), (48, 1.09), (_C0 - 3 * _B, 1.135), (_C0, 1.14), (_C0 + _B, 1.118),
            (_C0 + 2 * _B, 1.11), (72, 1.13), (96, 1.135)],
    "SOL": [(0, 1.0), (48, 1.03), (_C0, 1.06), (_C0 + _B, 1.042), (_C0 + 2 * _B, 1.035), (96, 1.045)],
    "XRP": [(0, 1.0), (48, 1.02), (_C0, 1.05), (_C0 + _B, 1.035), (_C0 + 2 * _B, 1.03), (96, 1.04)],
    "ADA": [(0, 1.0), (48, 1.025), (_C0, 1.05), (_C0 + _B, 1.036), (_C0 + 2 * _B, 1.03), (96, 1.035)],
}
FUNDING_INTERVAL_H = 8.0
# rate per 8 h at each settlement from START (00:00, 08:00, 16:00 UTC): elevated into the move
# (the last one before it, 2025-05-09 16:00, the highest), negative after it
FUNDING_PROFILE = [0.00005, 0.00006, 0.00008,              # 2025-05-07
                   0.00010, 0.00014, 0.00020,              # 2025-05-08
                   0.00028, 0.00035, 0.00044,              # 2025-05-09
                   -0.00009, -0.00013, -0.00005]           # 2025-05-10
FUNDING_ASSET = {"BTC": 1.0, "ETH": 1.3, "SOL": 1.2, "XRP": 0.9, "ADA": 1.1}
FUNDING_EXCHANGE = {"binance": 1.0, "okx": 0.9, "bybit": 1.15}
# spot BTC ETF net flows per fund and US trading day (the weekend has none), USD
ETF_FLOWS = {
    "2025-05-07": {"IBIT": 61e6, "FBTC": 39e6, "ARKB": 22e6, "BITB": 12e6, "HODL": 6e6, "GBTC": 2e6},
    "2025-05-08": {"IBIT": 356e6, "FBTC": 124e6, "ARKB": 71e6, "BITB": 32e6, "HODL": 14e6, "GBTC": -18e6},
    "2025-05-09": {"IBIT": 800e6, "FBTC": 300e6, "ARKB": 155e6, "BITB": 75e6, "HODL": 45e6, "GBTC": 25e6},
}
FEAR_GREED = {"2025-05-07": 67.0, "2025-05-08": 73.0, "2025-05-09": 84.0, "2025-05-10": 78.0}
BTC_DOMINANCE_DAY = 58.0   # %, mean of the calibrated day's hourly values
CONTEXT_FILES = ("open_interest.parquet", "funding.parquet", "outside_series.parquet")


def symbol_for(exchange: str, asset: str) -> str:
    """Each exchange's own spelling of the USDT-margined perpetual."""
    return {"okx": f"{asset}-USDT-SWAP", "gate": f"{asset}_USDT"}.get(exchange, f"{asset}USDT")


def _minutes() -> pd.DatetimeIndex:
    return pd.date_range(START, END, freq="1min", inclusive="left")


def _bridge(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Brownian bridge from 0 to 0 over n points with per-step std ``sigma``."""
    w = np.concatenate([[0.0], np.cumsum(rng.normal(0, sigma, n - 1))])
    return w - np.linspace(0, 1, n) * w[-1]


def _anchored(rng: np.random.Generator, t: np.ndarray, anchors, sigma: float) -> np.ndarray:
    """Piecewise-linear interpolation of ``anchors`` (time, log value) at ``t`` plus a Brownian bridge per
    segment (every anchor value exact at the point nearest its time)."""
    hours = np.array([a[0] for a in anchors], float)
    base = np.interp(t, hours, [a[1] for a in anchors])
    noise = np.zeros(len(t))
    edges = np.minimum(np.searchsorted(t, hours), len(t) - 1)
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            noise[a:b + 1] = _bridge(rng, b + 1 - a, sigma)
    return base + noise


def _btc_log_path(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / (SUB_STEPS * 60)
    return _anchored(rng, t, [(h, np.log(p)) for h, p in BTC_ANCHORS], 0.00009)


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


class _Venue:
    """One exchange's price of one asset: the 5-second path and its rounded 1-minute candles."""

    def __init__(self, px: np.ndarray, tick: float):
        n_min = (len(px) - 1) // SUB_STEPS
        blocks = np.lib.stride_tricks.sliding_window_view(px[: n_min * SUB_STEPS + 1], SUB_STEPS + 1)[::SUB_STEPS]
        self.px, self.tick = px, tick
        self.raw_open, self.raw_close = blocks[:, 0], blocks[:, -1]
        self.open, self.close = _round(blocks[:, 0], tick), _round(blocks[:, -1], tick)
        self.high, self.low = _round(blocks.max(axis=1), tick), _round(blocks.min(axis=1), tick)


def _venues(rng, paths) -> dict[tuple[str, str], _Venue]:
    out = {}
    for asset in CANDLE_ASSETS:
        for ex in CANDLE_EXCHANGES:
            # a slowly mean-reverting basis of a few basis points per exchange
            basis = np.zeros(len(paths[asset]))
            if ex != "binance":
                basis = BASIS[ex] + _bridge(rng, len(basis), 0.000004)
            out[asset, ex] = _Venue(np.exp(paths[asset] + basis), ASSETS[asset][3])
    return out


def _candles(rng, venues) -> pd.DataFrame:
    minutes = _minutes()
    n_min = len(minutes)
    parts = []
    for (asset, ex), v in venues.items():
        ret = np.abs(np.log(v.raw_close / v.raw_open))
        vol_usd = VOLUME_SHARE[ex] * 2.2e6 * (0.35 + 1800 * ret) * rng.lognormal(0, 0.35, n_min)
        if asset != "BTC":
            vol_usd *= {"ETH": 0.5, "SOL": 0.18, "XRP": 0.12, "ADA": 0.04}[asset]
        parts.append(pd.DataFrame({
            "exchange": ex, "symbol": symbol_for(ex, asset), "asset": asset, "interval": "1m",
            "ts": minutes, "open": v.open, "high": v.high, "low": v.low, "close": v.close,
            "volume": np.round(vol_usd / v.raw_close, 3),
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


def _burst_usd(burst: dict, ex: str, asset: str, side: str) -> float:
    ex_share = BY_EXCHANGE[ex] / sum(BY_EXCHANGE.values())
    side_share = burst["short_share"] if side == "short" else 1 - burst["short_share"]
    return burst["usd"].get(asset, 0.0) * ex_share * side_share


def _prices(rng, paths, venues, ex: str, asset: str, ts: np.ndarray) -> np.ndarray:
    """Each event's price: the venue's path at the event's time (linear between 5-second points) plus a
    little noise, rounded to the tick and, where the venue has candles, inside that minute's high-low."""
    start = int(ts_ns(pd.DatetimeIndex([START]))[0])
    pos = (ts - start) / STEP_NS
    i = np.minimum(pos.astype(np.int64), len(paths[asset]) - 2)
    frac = pos - i
    v = venues.get((asset, ex))
    if v is not None:
        px = v.px
    elif (asset, "binance") in venues:
        px = venues[asset, "binance"].px * (1 + OTHER_BASIS.get(ex, 0.0))
    else:
        px = np.exp(paths[asset])
    p = px[i] * (1 - frac) + px[i + 1] * frac
    price = _round(p * (1 + rng.normal(0, 0.00006, len(ts))), ASSETS[asset][3])
    if v is not None:
        m = i // SUB_STEPS
        price = np.clip(price, v.low[m], v.high[m])
    return price


def _frame(rng, paths, venues, ex, asset, side, ts, sizes) -> pd.DataFrame:
    price = _prices(rng, paths, venues, ex, asset, ts)
    qty = np.maximum(_round(sizes / price, QTY_STEP[asset]), QTY_STEP[asset])
    return pd.DataFrame({
        "ts": pd.to_datetime(ts, utc=True, unit="ns"), "exchange": ex, "symbol": symbol_for(ex, asset),
        "asset": asset, "side": side, "price": price, "qty": qty, "notional_usd": np.round(price * qty, 2),
    })


def _liquidations(rng, paths, venues) -> pd.DataFrame:
    minutes = _minutes()
    minute_ns = ts_ns(minutes)
    days = {CALIBRATED_DAY.strftime("%Y-%m-%d"): (DAY_TOTAL, SHORT_SHARE, False)}
    days.update({d: (t, s, True) for d, (t, s) in OTHER_DAYS.items()})
    # per-asset intensity: fast moves up squeeze shorts, fast moves down flush longs (capped: the
    # move through $102K gets its burst explicitly below)
    intensity = {}
    for asset, path in paths.items():
        closes = path[::SUB_STEPS][: len(minutes) + 1]
        r = np.diff(closes)
        r = np.convolve(r, np.ones(5) / 5, mode="same")  # cascades last a few minutes
        scale = np.abs(r).mean()
        intensity[asset] = {
            "short": 0.2 + np.minimum((np.clip(r, 0, None) / scale) ** 2, INTENSITY_CAP),
            "long": 0.2 + np.minimum((np.clip(-r, 0, None) / scale) ** 2, INTENSITY_CAP),
        }
    bursts = [dict(b, t0=pd.Timestamp(b["start"], tz="UTC")) for b in BURSTS]
    for b in bursts:  # the smoothing would otherwise spread each burst's move around it
        m0 = minutes.searchsorted(b["t0"])
        for sides in intensity.values():
            for w in sides.values():
                w[m0 - 6:m0 + b["minutes"] + 3] = np.minimum(w[m0 - 6:m0 + b["minutes"] + 3], BURST_BACKGROUND)
    rows = []
    for day, (total, short_share, jitter) in sorted(days.items()):
        d0 = pd.Timestamp(day, tz="UTC")
        lo, hi = minutes.searchsorted(d0), minutes.searchsorted(d0 + pd.Timedelta(days=1))
        todays = [b for b in bursts if d0 <= b["t0"] < d0 + pd.Timedelta(days=1)]
        for ex, asset, side, usd in _cell_targets(total, short_share, rng, jitter):
            burst_usd = [_burst_usd(b, ex, asset, side) for b in todays]
            usd -= sum(burst_usd)
            n = max(3, int(usd / BACKGROUND_MEAN_USD[asset]))
            sizes = np.minimum(5_000 * (1 - rng.random(n)) ** (-1 / 1.25), BACKGROUND_MAX_USD)
            sizes *= usd / sizes.sum()
            w = intensity[asset][side][lo:hi]
            mins = lo + rng.choice(hi - lo, size=n, p=w / w.sum())
            ts = minute_ns[mins] + rng.integers(0, 60_000, n) * 1_000_000
            rows.append(_frame(rng, paths, venues, ex, asset, side, ts, sizes))
            for b, usd_b in zip(todays, burst_usd):
                if usd_b <= 0:
                    continue
                # this exchange joins lag_s after the first. Its USD arrives along one profile (most in the
                # first minutes): each order at the profile's quantile of the USD before it, +-1.5 s, so
                # which exchange starts first does not hinge on where the largest orders happen to fall
                mean = b["mean_usd"] * BACKGROUND_MEAN_USD[asset] / BACKGROUND_MEAN_USD["BTC"]
                k = max(2, int(round(usd_b / mean)))
                sizes = 20_000 * (1 - rng.random(k)) ** (-1 / 1.5)
                sizes *= usd_b / sizes.sum()
                u = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
                x = (1 - (1 - u) ** (1 / BURST_PROFILE[1])) ** (1 / BURST_PROFILE[0])
                lag_ms = b["lag_s"][ex] * 1000
                span_ms = b["minutes"] * 60_000
                off = lag_ms + np.floor(x * (span_ms - lag_ms)) + rng.integers(-1500, 1500, k)
                off = np.clip(off, lag_ms, span_ms - 1)
                ts = int(ts_ns(pd.DatetimeIndex([b["t0"]]))[0]) + off.astype(np.int64) * 1_000_000
                rows.append(_frame(rng, paths, venues, ex, asset, side, ts, sizes))
    liq = pd.concat(rows, ignore_index=True)
    return liq.sort_values(["ts", "exchange", "symbol"], kind="stable").reset_index(drop=True)


def _generate(seed: int):
    rng = np.random.default_rng(seed)
    paths = _asset_paths(rng)
    venues = _venues(rng, paths)
    candles = _candles(rng, venues)
    return candles, _liquidations(rng, paths, venues), paths, venues


def generate(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (candles in long form, liquidation events)."""
    candles, liqs, _, _ = _generate(seed)
    return candles, liqs


# -- context series ---------------------------------------------------------------------------------
def _open_interest(rng, venues) -> pd.DataFrame:
    step = pd.Timedelta(OI_PERIOD)
    ts = pd.date_range(START, END, freq=step, inclusive="left").as_unit("ns")
    hours = (ts - START) / pd.Timedelta(hours=1)
    at = (np.asarray(hours) * 60).astype(np.int64)   # the minute each snapshot is taken at (its open)
    parts = []
    for asset in CANDLE_ASSETS:
        anchors = [(h, np.log(f)) for h, f in OI_ANCHORS[asset]]
        frames = []
        for ex in CANDLE_EXCHANGES:
            v = venues[asset, ex]
            price = v.raw_open[at]
            base0 = OI_USD_START[asset][ex] / price[0]
            base = base0 * np.exp(_anchored(rng, np.asarray(hours, float), anchors, 0.0012))
            frames.append([ex, price, base])
        if asset == "ETH":  # ETH_OI_CHANGE exactly: a ramp in log over the move window, flat after it
            i0, i1 = ts.searchsorted(MOVE_START), ts.searchsorted(MOVE_END)
            usd = sum(p * b for _, p, b in frames)
            c = np.log((1 + ETH_OI_CHANGE) * usd[i0] / usd[i1])
            ramp = np.clip((np.arange(len(ts)) - i0) / (i1 - i0), 0, 1) * c
            for f in frames:
                f[2] = f[2] * np.exp(ramp)
        for ex, price, base in frames:
            oi_base = _round(base, QTY_STEP[asset])
            parts.append(pd.DataFrame({
                "ts": ts, "exchange": ex, "symbol": symbol_for(ex, asset), "asset": asset, "period": OI_PERIOD,
                "oi_base": oi_base, "oi_usd": np.round(oi_base * price, 2), "source": "demo",
            }))
    return pd.concat(parts, ignore_index=True).sort_values(["ts", "exchange", "symbol"], kind="stable",
                                                           ignore_index=True)


def _funding(rng) -> pd.DataFrame:
    ts = pd.date_range(START, END, freq=f"{int(FUNDING_INTERVAL_H)}h", inclusive="left").as_unit("ns")
    assert len(ts) == len(FUNDING_PROFILE)
    profile = np.array(FUNDING_PROFILE)
    parts = []
    for asset in CANDLE_ASSETS:
        for ex in CANDLE_EXCHANGES:
            # each venue within +-20% of the common profile: never changes its sign
            rate = profile * FUNDING_ASSET[asset] * FUNDING_EXCHANGE[ex] * rng.uniform(0.8, 1.2, len(ts))
            parts.append(pd.DataFrame({
                "ts": ts, "exchange": ex, "symbol": symbol_for(ex, asset), "asset": asset,
                "rate": np.round(rate, 8), "interval_hours": FUNDING_INTERVAL_H, "source": "demo",
            }))
    return pd.concat(parts, ignore_index=True).sort_values(["ts", "exchange", "symbol"], kind="stable",
                                                           ignore_index=True)


def _outside_series(rng, venues) -> pd.DataFrame:
    def series(name, ts, value, unit):
        return pd.DataFrame({"name": name, "ts": pd.DatetimeIndex(ts).as_unit("ns"), "value": np.asarray(value, float),
                             "unit": unit, "source": "demo"})

    days = [pd.Timestamp(d, tz="UTC") for d in ETF_FLOWS]
    parts = [series(f"etf_flows_{fund}", days, [ETF_FLOWS[d][fund] for d in ETF_FLOWS], "USD")
             for fund in ETF_FLOWS[CALIBRATED_DAY.strftime("%Y-%m-%d")]]
    parts.append(series("etf_flows_total", days, [sum(f.values()) for f in ETF_FLOWS.values()], "USD"))
    parts.append(series("fear_greed", [pd.Timestamp(d, tz="UTC") for d in FEAR_GREED], list(FEAR_GREED.values()),
                        "index"))
    # BTC dominance, hourly: falls as ETH outperforms BTC; the calibrated day's mean is BTC_DOMINANCE_DAY
    hourly = pd.date_range(START, END, freq="1h", inclusive="left")
    at = np.asarray((hourly - START) / pd.Timedelta(minutes=1)).astype(np.int64)
    x = np.log(venues["BTC", "binance"].raw_open[at] / venues["ETH", "binance"].raw_open[at])
    dom = 10.0 * (x - x[0]) + _bridge(rng, len(at), 0.03)
    day = (hourly >= CALIBRATED_DAY) & (hourly < CALIBRATED_DAY + pd.Timedelta(days=1))
    dom = np.round(dom - dom[day].mean() + BTC_DOMINANCE_DAY, 2)
    dom = np.round(dom + (BTC_DOMINANCE_DAY - dom[day].mean()), 2)  # the rounding keeps the day's mean
    parts.append(series("btc_dominance", hourly, dom, "%"))
    return pd.concat(parts, ignore_index=True)


def generate_context(seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The context series: {"open_interest": ..., "funding": ..., "outside_series": ...} (own random stream,
    so they do not change the candles or liquidations)."""
    _, _, _, venues = _generate(seed)
    return _context(seed, venues)


def _context(seed: int, venues) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng([seed, 1])
    return {"open_interest": _open_interest(rng, venues), "funding": _funding(rng),
            "outside_series": _outside_series(rng, venues)}


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    for name in ("exchange", "symbol", "asset", "side", "interval"):
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, table.column(name).dictionary_encode())
    pq.write_table(table, path, compression="zstd", compression_level=9, write_statistics=False)


def write(folder: Path, seed: int = SEED) -> list[Path]:
    """Write candles, liquidations and the context series (CONTEXT_FILES) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    candles, liqs, _, venues = _generate(seed)
    frames = {"candles": candles, "liquidations": liqs, **_context(seed, venues)}
    out = []
    for name, frame in frames.items():
        out.append(folder / f"{name}.parquet")
        _write_parquet(frame, out[-1])
    return out
