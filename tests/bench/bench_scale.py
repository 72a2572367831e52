"""Store benchmark at full scale (a script, not a test): prints one JSON object per line.

Builds once, and caches, a synthetic store of ``--events`` liquidations over ``--years`` years (default
100M over 2021-01-01 to 2026-01-01: binance, bybit and okx, 60 USDT perpetuals; a Poisson background whose
rate follows the price moves, plus cascades -- market-wide crashes and single-asset squeezes of hundreds
to thousands of events within minutes; heavy-tailed sizes; prices on each symbol's tick grid following a
random walk with jumps; quantities in whole lots; Tardis rows before the recorder took over) and 1-minute
candles of ``--candle-assets`` assets on the three exchanges. The build writes the Delta tables
directly (``deltalake.write_deltalake``, the store's schemas, partitions and writer properties), one
exchange-month at a time, so memory stays bounded; then rollups, compaction, checkpoints and vacuum.
The cache folder (``--cache``) keeps one store per set of build parameters (``bench-params.json``
marks a finished build; an interrupted one resumes at the month it stopped in).

Then, each case one JSON line ``{"case", "seconds", "peak_rss_mb", "target", "met", ...}``:

* ``inproc_day`` / ``inproc_busiest_day`` / ``inproc_all``: ``store.load_window(start, end).summary(...)``
  with the store open (the whole history only up to ``--inproc-all-max`` events); ``inproc_figures_*``
  too when ``models/store/figures.py`` offers exact window figures (``summary``, ``Overview``). Peak
  RSS is the process's high-water mark, reset before each case (``/proc/self/clear_refs``);
* ``cli_summary_*``: ``liqscope summary --start --end --json`` as a whole process (the headless
  ``liqscope.models.cli`` entry; for one day also the installed ``liqscope`` script), wall time and the
  child's peak RSS (GNU ``time``); a child over ``--child-rss-limit-mb`` or ``--child-timeout`` is
  killed and reported as such;
* ``disk_bytes_per_event``, ``files_per_table_year``;
* ``window_launch_day`` / ``window_launch_all``: ``liqscope --screenshot`` on a 24 h window and on all
  history (a whole process: imports, the part of the store the view needs, first frame, grab), then
  ``window_*`` gestures from ``tests/bench/bench_window.py`` (frames while panning and zooming across
  years, and the exact part arriving after the gesture stops);
* ``pyarrow_read_csv`` / ``import_csv`` / ``reimport_csv``: a cached ``--import-rows`` Tardis CSV
  read by pyarrow, then ``liqscope import FILE`` into an empty store (a process), then again;
* ``recorder_visible``: ``store.append_liquidations(df, source="binance-ws")`` to visible in another
  ``open_store`` instance (the store is restored to its previous Delta versions afterwards).

    .venv/bin/python tests/bench/bench_scale.py                                   # 100M: builds ~once
    .venv/bin/python tests/bench/bench_scale.py --events 2000000 --import-rows 500000   # a quick run
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from deltalake import CommitProperties, write_deltalake

from liqscope.models.store import open_store
from liqscope.models.store import delta_io, rollups, tables
from liqscope.models.store.location import Location

GEN_VERSION = 2  # bump when the generator changes: a new cache key
MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
YEAR_MIN = 525_960
EXCHANGES = {"binance": 0.47, "bybit": 0.33, "okx": 0.20}  # share of events
BASIS = {"binance": 0.0, "bybit": 1.5e-4, "okx": -1.0e-4}  # price offset between venues
TARDIS_CSV_EXCHANGES = {"binance-futures": 0.55, "bybit": 0.45}  # linear USDT perpetuals: amount in base units
CANDLE_ASSETS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "BNB"]

# asset, price on 2021-01-01 (roughly), annual volatility, beta to the market, listed from
ASSETS = [
    ("BTC", 29000, 0.60, 1.0, None), ("ETH", 730, 0.75, 1.2, None), ("SOL", 1.5, 1.00, 1.5, None),
    ("XRP", 0.22, 0.90, 1.2, None), ("DOGE", 0.0047, 1.10, 1.5, None), ("BNB", 37.5, 0.75, 1.1, None),
    ("ADA", 0.18, 0.90, 1.3, None), ("AVAX", 3.6, 1.00, 1.5, None), ("LINK", 11.5, 0.90, 1.3, None),
    ("DOT", 8.0, 0.90, 1.3, None), ("LTC", 125, 0.80, 1.1, None), ("TRX", 0.027, 0.70, 0.9, None),
    ("BCH", 340, 0.85, 1.1, None), ("ATOM", 5.6, 0.95, 1.3, None), ("NEAR", 1.4, 1.05, 1.5, None),
    ("MATIC", 0.018, 1.10, 1.4, None), ("UNI", 4.8, 0.95, 1.3, None), ("ETC", 5.6, 0.90, 1.2, None),
    ("FIL", 21, 1.00, 1.3, None), ("XLM", 0.13, 0.85, 1.1, None), ("AAVE", 88, 1.00, 1.4, None),
    ("ALGO", 0.38, 0.95, 1.3, None), ("FTM", 0.017, 1.20, 1.6, None), ("SAND", 0.036, 1.20, 1.6, None),
    ("MANA", 0.08, 1.15, 1.5, None), ("AXS", 0.52, 1.20, 1.6, None), ("CRV", 0.6, 1.10, 1.5, None),
    ("SNX", 6.5, 1.10, 1.5, None), ("COMP", 145, 1.00, 1.4, None), ("MKR", 590, 0.95, 1.2, None),
    ("SUSHI", 3.0, 1.15, 1.5, None), ("YFI", 22000, 1.00, 1.4, None), ("1INCH", 1.3, 1.10, 1.5, None),
    ("ZEC", 60, 0.95, 1.2, None), ("DASH", 90, 0.90, 1.2, None), ("XTZ", 2.0, 0.90, 1.2, None),
    ("KAVA", 1.1, 1.05, 1.4, None), ("RUNE", 1.3, 1.20, 1.6, None), ("EGLD", 36, 1.05, 1.4, None),
    ("INJ", 1.2, 1.20, 1.6, None), ("STX", 0.4, 1.10, 1.5, None), ("HBAR", 0.035, 0.95, 1.3, None),
    ("FET", 0.08, 1.20, 1.6, None), ("ICP", 40, 1.10, 1.4, "2021-05"), ("GALA", 0.05, 1.25, 1.7, "2021-09"),
    ("DYDX", 12, 1.15, 1.5, "2021-09"), ("IMX", 5.0, 1.15, 1.5, "2021-11"), ("OP", 1.0, 1.10, 1.5, "2022-06"),
    ("LDO", 1.5, 1.10, 1.5, "2022-01"), ("APT", 8.0, 1.10, 1.5, "2022-10"), ("GMX", 30, 1.00, 1.3, "2022-08"),
    ("ARB", 1.2, 1.05, 1.4, "2023-03"), ("SUI", 1.2, 1.15, 1.5, "2023-05"), ("WLD", 2.0, 1.20, 1.6, "2023-07"),
    ("SEI", 0.2, 1.20, 1.6, "2023-08"), ("TIA", 2.5, 1.15, 1.5, "2023-10"), ("ORDI", 20, 1.30, 1.7, "2023-11"),
    ("JUP", 0.6, 1.20, 1.6, "2024-02"), ("WIF", 2.5, 1.40, 1.9, "2024-03"), ("ENA", 0.8, 1.25, 1.7, "2024-04"),
]


# -- output & measurement -------------------------------------------------------------------
def emit(**rec) -> None:
    print(json.dumps(rec, default=str), flush=True)


def log(text: str) -> None:
    print(f"[bench_scale {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _status_mb(pid: int | str, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def reset_peak() -> float | None:
    """Reset this process's peak RSS (Linux: VmHWM := VmRSS) and return the current RSS in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    return _status_mb("self", "VmRSS")


def peak_mb() -> float:
    """Peak RSS since the last :func:`reset_peak` (else since the process started)."""
    hwm = _status_mb("self", "VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


GNU_TIME = "/usr/bin/time"


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except (OSError, ValueError):
        return []


def _tree_rss_mb(pid: int) -> float:
    total, todo = 0.0, [pid]
    while todo:
        q = todo.pop()
        total += _status_mb(q, "VmRSS") or 0.0
        todo += _children(q)
    return total


def run_child(argv: list[str], *, timeout: float, rss_limit_mb: float, env: dict | None = None) -> dict:
    """Run a process to its end: wall seconds, its peak RSS, exit code and output. The peak comes from GNU
    ``time -f %M`` (a small launcher: a child's ``ru_maxrss`` from wait4 would count the RSS of this big
    process it was forked from), else from sampling. The process group is killed when its RSS passes
    ``rss_limit_mb`` or it runs past ``timeout``, so a runaway cannot take the machine down."""
    gnu_time = os.path.exists(GNU_TIME)
    stat_file = Path(f"/tmp/bench_scale_time_{os.getpid()}_{time.monotonic_ns()}")
    full = [GNU_TIME, "-f", "%M", "-o", str(stat_file), *argv] if gnu_time else argv
    t0 = time.perf_counter()
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda f=f, acc=acc: acc.append(f.read()), daemon=True)
               for f, acc in ((p.stdout, out), (p.stderr, err))]
    for r in readers:
        r.start()
    done = threading.Event()
    killed: list[str] = []
    seen = [0.0]

    def monitor() -> None:
        while not done.wait(0.02):
            rss = _tree_rss_mb(p.pid) - ((_status_mb(p.pid, "VmRSS") or 0.0) if gnu_time else 0.0)
            seen[0] = max(seen[0], rss, 0.0 if gnu_time else (_status_mb(p.pid, "VmHWM") or 0.0))
            why = (f"killed: RSS {rss:.0f} MB over the {rss_limit_mb:.0f} MB limit" if rss > rss_limit_mb else
                   f"killed: still running after {timeout:.0f} s" if time.perf_counter() - t0 > timeout else None)
            if why:
                killed.append(why)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
    m = threading.Thread(target=monitor, daemon=True)
    m.start()
    p.wait()
    seconds = time.perf_counter() - t0
    done.set()
    for r in readers:
        r.join()
    m.join()
    peak = seen[0]
    try:
        peak = max(peak, int(stat_file.read_text().strip().splitlines()[-1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    stat_file.unlink(missing_ok=True)
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(peak, 1), "rc": p.returncode,
            "stdout": b"".join(out).decode(errors="replace"),
            "stderr": b"".join(err).decode(errors="replace"), "killed": killed[0] if killed else None}


def met(**checks) -> bool:
    return all(checks.values())


# -- the plan: everything decided up front, cheaply, from the seed ---------------------------
class Plan:
    """Months, per-month activity and market shocks, monthly price anchors and the events of each
    (month, exchange) cell: every month can be generated on its own (and resumed)."""

    def __init__(self, *, events: int, start: str, years: float, seed: int, n_assets: int, candle_assets: int):
        self.seed = seed
        self.assets = ASSETS[:n_assets]
        self.names = [a[0] for a in self.assets]
        self.candle_assets = [a for a in CANDLE_ASSETS[:candle_assets] if a in self.names]
        t0 = pd.Timestamp(start, tz="UTC")
        n_months = max(1, round(years * 12))
        self.months = [str(p) for p in pd.period_range(t0.tz_localize(None), periods=n_months, freq="M")]
        self.start = t0
        self.end = pd.Timestamp(pd.Period(self.months[-1], "M").end_time.ceil("D"), tz="UTC")
        self.month_us = [tables.us([pd.Timestamp(m + "-01", tz="UTC")])[0] for m in self.months]
        self.month_us.append(tables.us([self.end])[0])
        self.switch = self.months[min(len(self.months) - 1, int(len(self.months) * 0.7))]  # tardis -> recorder
        rng = np.random.default_rng([seed, 0])
        A = len(self.assets)
        self.p0 = np.array([a[1] for a in self.assets], dtype=float)
        self.sigma = np.array([a[2] for a in self.assets])
        self.beta = np.array([a[3] for a in self.assets])
        self.listed = [a[4] or "0000-00" for a in self.assets]
        self.tick = 10.0 ** (np.floor(np.log10(self.p0)) - 5)
        self.lot = 10.0 ** np.floor(np.log10(1.0 / self.p0))
        self.popularity = 1.0 / np.arange(1, A + 1) ** 1.15
        # market shocks (log-price jumps, market-wide, in a few minutes): start minute, duration, size
        self.shocks = []
        activity = rng.lognormal(0, 0.45, n_months)
        for m in range(n_months):
            T = self.minutes(m)
            k = rng.poisson(4)
            size = np.minimum(0.25, 0.006 * (1 + rng.pareto(1.7, k))) * np.where(rng.random(k) < 0.62, -1, 1)
            dur = rng.integers(3, 46, k)
            at = rng.integers(0, max(1, T - 60), k)
            self.shocks.append((at, dur, size))
            activity[m] *= 1 + 0.25 * float(np.sum((np.abs(size) / 0.01) ** 1.3)) / 4
        # diffusion part of each month's log return per asset: market factor x beta + own noise
        frac = np.array([self.minutes(m) / YEAR_MIN for m in range(n_months)])
        market = rng.normal(0, 0.55, n_months) * np.sqrt(frac)
        own = rng.normal(0, 1, (n_months, A)) * np.sqrt(np.maximum(self.sigma ** 2 - (0.55 * self.beta) ** 2, 0.04)
                                                         ) * np.sqrt(frac)[:, None]
        self.diffusion = market[:, None] * self.beta[None, :] + own
        jumps = np.array([self.shocks[m][2].sum() for m in range(n_months)])[:, None] * self.beta[None, :]
        logp = np.log(self.p0)[None, :] + np.vstack([np.zeros((1, A)), np.cumsum(self.diffusion + jumps, axis=0)])
        # keep five years of random walk within sane bounds (no coin at 1e-6 of its start)
        self.anchor = np.log(self.p0)[None, :] + np.clip(logp - np.log(self.p0)[None, :], -3.5, 3.5)
        # events per (month, exchange): activity x exchange share, rounded to sum exactly to ``events``
        weights = np.outer(activity, list(EXCHANGES.values())).ravel()
        raw = weights / weights.sum() * events
        counts = np.floor(raw).astype(np.int64)
        counts[np.argsort(raw - counts)[::-1][: events - counts.sum()]] += 1
        self.counts = counts.reshape(n_months, len(EXCHANGES))

    def minutes(self, m: int) -> int:
        p = pd.Period(self.months[m], "M")
        return p.days_in_month * 1440

    def source(self, m: int, exchange: str) -> str:
        return "tardis" if self.months[m] < self.switch else f"{exchange}-ws"

    def symbol(self, exchange: str, asset: str) -> str:
        return f"{asset}-USDT-SWAP" if exchange == "okx" else f"{asset}USDT"


class Month:
    """One month's minute prices of every asset (open/high/low/close, log-return) and market intensity."""

    def __init__(self, plan: Plan, m: int):
        self.plan, self.m = plan, m
        rng = np.random.default_rng([plan.seed, 1, m])
        T, A = plan.minutes(m), len(plan.assets)
        self.T = T
        sig_min = plan.sigma / math.sqrt(YEAR_MIN)
        day_vol = np.exp(rng.normal(0, 0.35, T // 1440 + 1))[np.arange(T) // 1440]  # volatility clustering
        market = rng.standard_normal(T) * day_vol
        z = 0.6 * market[None, :] * (plan.beta / 1.3)[:, None] + 0.8 * rng.standard_normal((A, T)) * day_vol[None, :]
        inc = z * sig_min[:, None]
        inc -= ((inc.sum(axis=1) - (plan.anchor[m + 1] - plan.anchor[m]
                                     - plan.shocks[m][2].sum() * plan.beta)) / T)[:, None]  # bridge to the anchor
        at, dur, size = plan.shocks[m]
        jump = np.zeros(T)
        for a, d, s in zip(at, dur, size):
            jump[a:a + d] += s / d
        inc += jump[None, :] * plan.beta[:, None]
        logc = plan.anchor[m][:, None] + np.cumsum(inc, axis=1)
        close = np.exp(logc)
        opn = np.empty_like(close)
        opn[:, 0] = np.exp(plan.anchor[m])
        opn[:, 1:] = close[:, :-1]
        wig = np.abs(rng.standard_normal((2, A, T))) * sig_min[None, :, None] * 0.7
        self.high = np.maximum(opn, close) * np.exp(wig[0])
        self.low = np.minimum(opn, close) * np.exp(-wig[1])
        self.open, self.close, self.ret = opn, close, inc
        # liquidations follow the market's moves: per-minute intensity ~ squared BTC move
        r = np.abs(inc[0]) / sig_min[0]
        hour = (np.arange(T) // 60) % 24
        self.intensity = (1 + 0.35 * np.minimum(r, 40) ** 2) * (1 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24))
        self.t0 = plan.month_us[m]
        self.listed = np.array([plan.months[m] >= li for li in plan.listed])


def _pick(rng, p: np.ndarray, n: int) -> np.ndarray:
    c = np.cumsum(p)
    return np.minimum(np.searchsorted(c, rng.random(n) * c[-1], side="right"), len(p) - 1)


def month_events(mo: Month, exchange: str, n: int) -> dict[str, np.ndarray]:
    """``n`` liquidations of one exchange in one month: minute, µs time, asset, side (1 = long),
    price, qty, notional; not yet sorted."""
    plan = mo.plan
    ei = list(EXCHANGES).index(exchange)
    rng = np.random.default_rng([plan.seed, 2, mo.m, ei])
    T = mo.T
    pop = plan.popularity * mo.listed * np.exp(rng.normal(0, 0.25, len(plan.assets)))
    n_casc = rng.binomial(n, 0.42)
    n_bg = n - n_casc
    # clusters: the month's market shocks (all assets, one direction) and single-asset squeezes
    at, dur, size = plan.shocks[mo.m]
    k_micro = max(1, rng.poisson(45))
    m_at = _pick(rng, mo.intensity, k_micro)
    m_dur = rng.integers(1, 12, k_micro)
    c_at = np.concatenate([at, m_at])
    c_dur = np.concatenate([dur, m_dur])
    c_w = np.concatenate([10 * (np.abs(size) / 0.01) ** 1.5, 1 + rng.pareto(1.2, k_micro)])
    c_focus = np.concatenate([np.full(len(at), -1), _pick(rng, pop, k_micro)])
    c_long = np.concatenate([size < 0, rng.random(k_micro) < 0.55])
    c_big = np.concatenate([np.ones(len(at), bool), np.zeros(k_micro, bool)])
    per = rng.multinomial(n_casc, c_w / c_w.sum())
    cid = np.repeat(np.arange(len(c_w)), per)
    off = rng.gamma(1.0, c_dur[cid] * MINUTE_US / 2.5)
    off = np.minimum(off, c_dur[cid] * 3 * MINUTE_US)
    t_c = np.minimum(c_at[cid] * MINUTE_US + off.astype(np.int64), T * MINUTE_US - 1)
    beta_pop = pop * plan.beta
    a_c = _pick(rng, beta_pop, n_casc)
    focus = c_focus[cid]
    on_focus = (focus >= 0) & (rng.random(n_casc) < 0.75)
    a_c[on_focus] = focus[on_focus]
    long_c = np.where(rng.random(n_casc) < 0.9, c_long[cid], ~c_long[cid])
    usd_c = np.where(c_big[cid], rng.lognormal(math.log(2200), 1.6, n_casc), rng.lognormal(math.log(1300), 1.5, n_casc))
    # background: Poisson in time with the market's intensity
    mi = _pick(rng, mo.intensity, n_bg)
    t_b = mi * MINUTE_US + rng.integers(0, MINUTE_US, n_bg)
    a_b = _pick(rng, pop, n_bg)
    r = mo.ret[a_b, mi] / (plan.sigma[a_b] / math.sqrt(YEAR_MIN))
    long_b = rng.random(n_bg) < 0.5 - 0.35 * np.tanh(r / 2)
    usd_b = rng.lognormal(math.log(700), 1.4, n_bg)
    t = np.concatenate([t_c, t_b])
    a = np.concatenate([a_c, a_b])
    long = np.concatenate([long_c, long_b])
    usd = np.concatenate([usd_c, usd_b]) * (1 + 1.5 * plan.popularity[a])
    tail = rng.random(n) < 0.01
    usd[tail] *= 1 + rng.pareto(1.1, int(tail.sum()))
    usd = np.minimum(usd, 2e7)
    minute = t // MINUTE_US
    t = (t // 1000) * 1000  # exchanges stamp milliseconds
    lo, hi = mo.low[a, minute], mo.high[a, minute]
    price = (lo + (hi - lo) * rng.random(n)) * (1 + BASIS[exchange])
    tick, lot = plan.tick[a], plan.lot[a]
    price = np.maximum(np.round(price / tick), 1) * tick
    qty = np.maximum(np.round(usd / price / lot), 1) * lot
    # clean decimals on the grid (what an exchange sends), not 0.30000000000000004
    price = _round_to(price, tick)
    qty = _round_to(qty, lot)
    return {"ts": mo.t0 + t, "asset": a, "long": long, "price": price, "qty": qty, "notional": price * qty}


def _round_to(x: np.ndarray, step: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    dp = np.clip(-np.floor(np.log10(step)).astype(int), 0, 12)
    for d in np.unique(dp):
        sel = dp == d
        out[sel] = np.round(x[sel], int(d))
    return out


def _strings(idx: np.ndarray, names: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), pa.array(names, pa.string())).cast(pa.string())


def liq_partition(plan: Plan, mo: Month, exchange: str, n: int) -> pa.Table:
    """One exchange-month as store rows (tables.LIQ_SCHEMA), sorted by day, symbol, time (tables.liq_table)."""
    ev = month_events(mo, exchange, n)
    symbols = [plan.symbol(exchange, x) for x in plan.names]
    rank = np.argsort(np.argsort(np.array(symbols)))  # symbol index -> its place in string order
    order = np.lexsort((ev["ts"], rank[ev["asset"]], ev["ts"] // tables.DAY_US))
    a = ev["asset"][order]
    src = plan.source(mo.m, exchange)
    return pa.table({
        "ts": pa.array(ev["ts"][order], pa.int64()).cast(tables.TS),
        "exchange": pa.array(np.full(n, exchange, dtype=object), pa.string()),
        "month": pa.array(np.full(n, plan.months[mo.m], dtype=object), pa.string()),
        "symbol": _strings(a, symbols), "asset": _strings(a, plan.names),
        "side": _strings(np.where(ev["long"][order], 0, 1), ["long", "short"]),
        "price": ev["price"][order], "qty": ev["qty"][order], "notional_usd": ev["notional"][order],
        "source": pa.array(np.full(n, src, dtype=object), pa.string()),
    }, schema=tables.LIQ_SCHEMA)


def candle_partition(plan: Plan, mo: Month, exchange: str) -> pa.Table | None:
    """1-minute candles of the candle assets on one exchange in one month, sorted by time (tables.candle_table)."""
    if not plan.candle_assets:
        return None
    rng = np.random.default_rng([plan.seed, 3, mo.m, list(EXCHANGES).index(exchange)])
    pieces = []
    T = mo.T
    ts = pa.array(mo.t0 + np.arange(T, dtype=np.int64) * MINUTE_US, pa.int64()).cast(tables.TS)
    for asset in sorted(plan.candle_assets, key=lambda x: plan.symbol(exchange, x)):
        i = plan.names.index(asset)
        f = 1 + BASIS[exchange]
        o, h, lo, c = (_round_to(np.round(x[i] * f / plan.tick[i]) * plan.tick[i], np.full(T, plan.tick[i]))
                       for x in (mo.open, mo.high, mo.low, mo.close))
        vol = np.round(rng.lognormal(math.log(3e5 / plan.p0[i]), 0.8, T)
                       * (1 + 2 * np.abs(mo.ret[i]) / (plan.sigma[i] / math.sqrt(YEAR_MIN))) / plan.lot[i]) * plan.lot[i]
        sym = plan.symbol(exchange, asset)
        pieces.append(pa.table({
            "ts": ts, "exchange": pa.array([exchange] * T, pa.string()), "interval": pa.array(["1m"] * T, pa.string()),
            "month": pa.array([plan.months[mo.m]] * T, pa.string()), "symbol": pa.array([sym] * T, pa.string()),
            "asset": pa.array([asset] * T, pa.string()), "open": o, "high": np.maximum(h, np.maximum(o, c)),
            "low": np.minimum(lo, np.minimum(o, c)), "close": c, "volume": _round_to(vol, np.full(T, plan.lot[i])),
        }, schema=tables.CANDLE_SCHEMA))
    return pa.concat_tables(pieces).sort_by([("ts", "ascending"), ("symbol", "ascending")])


# -- building the store --------------------------------------------------------------------
def _props(op: str) -> CommitProperties:
    return CommitProperties(custom_metadata={"liqscope": "1", "liqscope.op": op})


def _write(loc: Location, kind: str, table: pa.Table, op: str = "bench-build") -> None:
    spec = tables.TABLES[kind]
    write_deltalake(loc.table(kind), table, mode="append", partition_by=list(spec.partitions) or None,
                    writer_properties=delta_io.WRITER, target_file_size=delta_io.TARGET_FILE_BYTES,
                    commit_properties=_props(op))


def _delete_from(loc: Location, kind: str, month: str) -> None:
    """Remove what an interrupted build wrote for ``month`` and later (whole partitions)."""
    dt = delta_io.open_table(loc, tables.TABLES[kind])
    if dt is not None:
        dt.delete(f"month >= '{month}'", commit_properties=_props("bench-resume"))


def build_store(root: Path, plan: Plan, params: dict) -> dict:
    loc = Location.of(root)
    progress_file = root / "bench-progress.json"
    state = {"params": params, "next": 0, "coverage": {}, "seconds": 0.0}
    if progress_file.exists():
        old = json.loads(progress_file.read_text())
        if old.get("params") == params:
            state = old
    if state["next"] == 0 and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    open_store(root)._init_meta()  # store.json exactly as the store writes it
    if state["next"]:
        resume = plan.months[state["next"]]
        log(f"resuming the build at {resume}")
        for kind in (tables.LIQ, tables.CANDLES, tables.ROLLUPS):
            _delete_from(loc, kind, resume)
    cov: dict[str, list[int]] = state["coverage"]
    t_start = time.perf_counter() - state["seconds"]
    liq_spec = tables.TABLES[tables.LIQ]
    for m in range(state["next"], len(plan.months)):
        tm = time.perf_counter()
        mo = Month(plan, m)
        rows = 0
        for ei, exchange in enumerate(EXCHANGES):
            n = int(plan.counts[m, ei])
            if n:
                part = liq_partition(plan, mo, exchange, n)
                _write(loc, tables.LIQ, part)
                # rollups of the partition just written, stamped with its files (as rollups.refresh does)
                files = delta_io.prune(delta_io.files(loc, liq_spec, delta_io.open_table(loc, liq_spec)),
                                       where={"exchange": [exchange], "month": [plan.months[m]]})
                roll = rollups.compute(part.select(["ts", "symbol", "asset", "side", "source", "notional_usd"]),
                                       exchange, plan.months[m], rollups.fingerprint(files), delta_io.new_writer_id())
                _write(loc, tables.ROLLUPS, roll, "rollup")
                g = part.group_by(["source", "symbol"]).aggregate([("ts", "min"), ("ts", "max")])
                for src, sym, lo, hi in zip(g.column("source").to_pylist(), g.column("symbol").to_pylist(),
                                            pc.cast(g.column("ts_min"), pa.int64()).to_pylist(),
                                            pc.cast(g.column("ts_max"), pa.int64()).to_pylist()):
                    key = f"{src}\t{exchange}\t{sym}"
                    span = cov.get(key)
                    cov[key] = [min(span[0], lo), max(span[1], hi + 1)] if span else [lo, hi + 1]
                rows += n
                del part, roll
            candles = candle_partition(plan, mo, exchange)
            if candles is not None:
                _write(loc, tables.CANDLES, candles)
        del mo
        state.update(next=m + 1, coverage=cov, seconds=time.perf_counter() - t_start)
        tmp = progress_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, progress_file)
        log(f"{plan.months[m]}: {rows:,} events in {time.perf_counter() - tm:.1f} s "
            f"(total {time.perf_counter() - t_start:.0f} s, rss {_status_mb('self', 'VmRSS'):.0f} MB)")
    t_gen = time.perf_counter() - t_start
    # coverage: one row per (source, exchange, symbol) span
    keys = sorted(cov)
    if keys and delta_io.open_table(loc, tables.TABLES[tables.COVERAGE]) is None:
        parts = [k.split("\t") for k in keys]
        _write(loc, tables.COVERAGE, pa.table({
            "source": [p[0] for p in parts], "exchange": [p[1] for p in parts], "symbol": [p[2] for p in parts],
            "start": pa.array([cov[k][0] for k in keys], pa.int64()).cast(tables.TS),
            "end": pa.array([cov[k][1] for k in keys], pa.int64()).cast(tables.TS)}, schema=tables.COVERAGE_SCHEMA))
    # compaction, then rollups of any partition whose files compaction rewrote, then tidy every table
    t = time.perf_counter()
    compacted = {}
    for kind in (tables.LIQ, tables.CANDLES, tables.COVERAGE):
        compacted[kind] = _compact(loc, kind)
    rebuilt = open_store(root).rebuild_rollups()
    compacted[tables.ROLLUPS] = _compact(loc, tables.ROLLUPS)
    for kind in (tables.LIQ, tables.CANDLES, tables.COVERAGE, tables.ROLLUPS, tables.MINUTES):
        dt = delta_io.open_table(loc, tables.TABLES[kind])
        if dt is not None:
            dt.create_checkpoint()
            dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    t_tidy = time.perf_counter() - t
    progress_file.unlink(missing_ok=True)
    return {"generate_write_seconds": round(t_gen, 1), "compact_vacuum_seconds": round(t_tidy, 1),
            "rollups_rebuilt_after_compaction": rebuilt, "compaction": compacted}


def _compact(loc: Location, kind: str) -> dict:
    dt = delta_io.open_table(loc, tables.TABLES[kind])
    if dt is None:
        return {}
    res = dt.optimize.compact(target_size=delta_io.TARGET_FILE_BYTES, writer_properties=delta_io.WRITER,
                              commit_properties=_props("compact"))
    return {"added": res.get("numFilesAdded"), "removed": res.get("numFilesRemoved")}


def ensure_store(cache: Path, args) -> tuple[Path, Plan, dict]:
    params = {"gen": GEN_VERSION, "events": args.events, "start": args.start, "years": args.years,
              "seed": args.seed, "assets": args.assets, "candle_assets": args.candle_assets}
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    root = cache / f"store-{args.events}-{args.years}y-{key}"
    marker = root / "bench-params.json"
    plan = Plan(events=args.events, start=args.start, years=args.years, seed=args.seed, n_assets=args.assets,
                candle_assets=args.candle_assets)
    if marker.exists() and json.loads(marker.read_text()).get("params") == params and not args.rebuild:
        info = json.loads(marker.read_text())
        emit(case="build", cached=True, store=str(root), **info.get("result", {}))
        return root, plan, info
    if args.rebuild and root.exists():
        shutil.rmtree(root)
    log(f"building {args.events:,} events over {len(plan.months)} months into {root}")
    t = time.perf_counter()
    result = build_store(root, plan, params)
    liq_rows = sum(f.rows for f in delta_io.files(Location.of(root), tables.TABLES[tables.LIQ],
                                                  delta_io.open_table(Location.of(root), tables.TABLES[tables.LIQ])))
    candle_rows = sum(f.rows for f in delta_io.files(Location.of(root), tables.TABLES[tables.CANDLES],
                                                     delta_io.open_table(Location.of(root),
                                                                         tables.TABLES[tables.CANDLES])))
    result.update(seconds=round(time.perf_counter() - t, 1), events=liq_rows, candles=candle_rows,
                  symbols=len(plan.names) * len(EXCHANGES), months=len(plan.months), first=plan.start, end=plan.end,
                  source_switch=plan.switch, build_peak_rss_mb=round(peak_mb(), 1))
    info = {"params": params, "result": json.loads(json.dumps(result, default=str))}
    marker.write_text(json.dumps(info, indent=2))
    emit(case="build", cached=False, store=str(root), **info["result"])
    return root, plan, info


# -- Tardis CSV ------------------------------------------------------------------------------
def ensure_tardis_csv(cache: Path, rows: int, seed: int) -> Path:
    """A Tardis-format liquidations CSV of ``rows`` rows (binance-futures and bybit, one month,
    sorted by time), cached."""
    folder = cache / f"tardis-{rows}-s{seed}-g{GEN_VERSION}"
    path = folder / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    plan = Plan(events=rows, start="2024-01-01", years=1, seed=seed + 1000, n_assets=len(ASSETS), candle_assets=0)
    mo = Month(plan, 2)
    pieces = []
    shares = np.array(list(TARDIS_CSV_EXCHANGES.values()))
    counts = np.floor(shares * rows).astype(int)
    counts[0] += rows - counts.sum()
    rng = np.random.default_rng([seed, 4])
    for (tex, _share), exchange, n in zip(TARDIS_CSV_EXCHANGES.items(), ("binance", "bybit"), counts):
        ev = month_events(mo, exchange, int(n))
        names = np.array([f"{x}USDT" for x in plan.names], dtype=object)
        pieces.append(pa.table({
            "exchange": pa.array(np.full(n, tex, dtype=object), pa.string()),
            "symbol": pa.array(names[ev["asset"]], pa.string()),
            "timestamp": ev["ts"], "local_timestamp": ev["ts"] + rng.integers(800, 60_000, n),
            "id": pa.nulls(n, pa.string()),
            # Tardis' side is the liquidation order's: a sell liquidates a long
            "side": pa.array(np.where(ev["long"], "sell", "buy").astype(object), pa.string()),
            "price": ev["price"], "amount": ev["qty"],
        }))
        del ev
    table = pa.concat_tables(pieces).sort_by([("timestamp", "ascending")])
    del pieces
    tmp = path.with_suffix(".part")
    with pacsv.CSVWriter(tmp, table.schema, write_options=pacsv.WriteOptions(quoting_style="none")) as w:
        for batch in table.to_batches(max_chunksize=1_000_000):
            w.write_batch(batch)
    del table
    os.replace(tmp, path)
    emit(case="generate_tardis_csv", rows=rows, mb=round(path.stat().st_size / 1e6, 1),
         seconds=round(time.perf_counter() - t, 1), path=str(path))
    return path


# -- cases -----------------------------------------------------------------------------------
HEADLESS = "from liqscope.models.cli import main; raise SystemExit(main())"


def child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.pop("LIQSCOPE_DATA_DIR", None)
    return env


def cli_argv(entry: str, args: list[str]) -> list[str]:
    if entry == "script":
        script = Path(sys.executable).with_name("liqscope")
        return [str(script), *args]
    return [sys.executable, "-c", HEADLESS, *args]


def day_iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def busiest_day(root: Path) -> pd.Timestamp:
    loc = Location.of(root)
    spec = tables.TABLES[tables.ROLLUPS]
    data = delta_io.prune(delta_io.files(loc, spec, delta_io.open_table(loc, spec), ts_col="bucket"),
                          where={"level": ["1d"]})
    t = delta_io.read(loc, spec, data, columns=["bucket", "notional_usd"])
    g = t.group_by("bucket").aggregate([("notional_usd", "sum")])
    i = int(np.argmax(g.column("notional_usd_sum").to_numpy()))
    return pd.Timestamp(g.column("bucket")[i].as_py()).tz_convert("UTC")


def case_inproc(root: Path, windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]], events: int,
                inproc_all_max: int) -> None:
    t = time.perf_counter()
    store = open_store(root)
    emit(case="open_store", seconds=round(time.perf_counter() - t, 4))
    for name, (start, end) in windows.items():
        case = f"inproc_{name}"
        target = {"seconds": 1.5 if name == "all" else 1.0}
        if name == "all" and events > inproc_all_max:
            emit(case=case, skipped=f"load_window of all {events:,} events in this process: over "
                                    f"--inproc-all-max {inproc_all_max:,}", target=target)
            continue
        for run in ("first", "again"):
            base = reset_peak()
            t = time.perf_counter()
            ds = store.load_window(start, end)
            t_load = time.perf_counter() - t
            fig = ds.summary(start, end)
            dt = time.perf_counter() - t
            emit(case=case, via="load_window+Dataset.summary", run=run, seconds=round(dt, 3),
                 load_seconds=round(t_load, 3), peak_rss_mb=round(peak_mb(), 1), rss_before_mb=round(base or 0, 1),
                 window=[day_iso(start), day_iso(end)], events=fig["count"], total_usd=round(fig["total_usd"]),
                 target=target, met=dt <= target["seconds"])
            del ds
    case_figures(store, windows)


def case_figures(store, windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> None:
    """Exact window figures from ``models/store/figures.py``, if it exists (its API probed, not assumed)."""
    try:
        figures = importlib.import_module("liqscope.models.store.figures")
    except ModuleNotFoundError:
        emit(case="inproc_figures", skipped="models/store/figures.py does not exist (yet)")
        return
    calls = []
    fn = getattr(figures, "summary", None)
    if callable(fn):
        calls.append(("figures.summary", lambda s, e: fn(store, s, e)))
    overview = getattr(figures, "Overview", None)
    if overview is not None:
        base = reset_peak()
        t = time.perf_counter()
        try:
            ov = overview(store)
            day = ov.busiest_day()
            rng = ov.time_range()
            info = {"busiest_day": day_iso(day[0]) if day else None,
                    "time_range": [day_iso(x) for x in rng] if rng else None, "assets": len(ov.assets),
                    "exchanges": ov.exchanges}
            error = None
        except Exception as exc:  # noqa: BLE001 - an API we probe: report, do not stop the bench
            info, error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        dt = time.perf_counter() - t
        emit(case="inproc_figures_overview", via="figures.Overview(store): busiest_day, time_range, assets, exchanges",
             seconds=round(dt, 3), peak_rss_mb=round(peak_mb(), 1), rss_before_mb=round(base or 0, 1),
             result=info, error=error, target={"seconds": 1.0}, met=error is None and dt <= 1.0)
    if not calls:
        public = sorted(n for n, f in vars(figures).items() if inspect.isfunction(f) and not n.startswith("_"))
        emit(case="inproc_figures", skipped="figures.py has no summary(store, start, end)", functions=public)
        return
    for label, call in calls:
        for name, (s, e) in windows.items():
            target = 1.5 if name == "all" else 1.0
            for run in ("first", "again"):
                base = reset_peak()
                t = time.perf_counter()
                try:
                    out, error = call(s, e), None
                except Exception as exc:  # noqa: BLE001
                    out, error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
                dt = time.perf_counter() - t
                emit(case=f"inproc_figures_{name}", via=label, run=run, seconds=round(dt, 3),
                     peak_rss_mb=round(peak_mb(), 1), rss_before_mb=round(base or 0, 1),
                     window=[day_iso(s), day_iso(e)], result=_short(out), error=error, target={"seconds": target},
                     met=error is None and dt <= target)


def _short(out) -> object:
    if out is None:
        return None
    if isinstance(out, dict):
        return {k: round(out[k]) if isinstance(out[k], float) else out[k] for k in ("count", "total_usd") if k in out}
    for attr in ("count", "total_usd"):
        if hasattr(out, attr):
            return {a: getattr(out, a) for a in ("count", "total_usd", "long_usd", "short_usd") if hasattr(out, a)}
    return type(out).__name__


def case_cli(root: Path, windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]], args) -> None:
    for name, (s, e) in windows.items():
        target = {"seconds": 1.5 if name == "all" else 1.0, "peak_rss_mb": 300}
        for entry in ("headless", "script") if name == "day" else ("headless",):
            argv = cli_argv(entry, ["summary", "--data-dir", str(root), "--start", day_iso(s), "--end", day_iso(e),
                                    "--json"])
            r = run_child(argv, timeout=args.child_timeout, rss_limit_mb=args.child_rss_limit_mb, env=child_env())
            out = None
            if r["rc"] == 0:
                try:
                    j = json.loads(r["stdout"].strip().splitlines()[-1])
                    out = {"count": j.get("count"), "total_usd": round(j.get("total_usd") or 0)}
                except (ValueError, IndexError):
                    out = None
            emit(case=f"cli_summary_{name}", entry=entry, seconds=r["seconds"], peak_rss_mb=r["peak_rss_mb"],
                 rc=r["rc"], killed=r["killed"], window=[day_iso(s), day_iso(e)], result=out,
                 stderr=r["stderr"].strip()[-300:] or None, target=target,
                 met=r["rc"] == 0 and met(seconds=r["seconds"] <= target["seconds"],
                                          rss=r["peak_rss_mb"] <= target["peak_rss_mb"]))


def case_window(root: Path, windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]], args) -> None:
    """The window on the store: ``liqscope --screenshot`` (launch, read, first frame, grab: a whole process)
    on a 24 h window and on all history, then gestures in one process (tests/bench/bench_window.py)."""
    env = child_env()
    for name in ("day", "all"):
        s, e = windows[name]
        out = Path(f"/tmp/bench_window_{name}_{os.getpid()}.png")
        argv = cli_argv("script", ["--data-dir", str(root), "--screenshot", str(out), "--size", "1600x1000",
                                   "--start", day_iso(s), "--end", day_iso(e)])
        r = run_child(argv, timeout=args.child_timeout, rss_limit_mb=args.child_rss_limit_mb, env=env)
        target = {"seconds": 1.5, "peak_rss_mb": 600}
        emit(case=f"window_launch_{name}", via="liqscope --screenshot", seconds=r["seconds"],
             peak_rss_mb=r["peak_rss_mb"], rc=r["rc"], window=[day_iso(s), day_iso(e)],
             stderr=r["stderr"].strip()[-300:] or None, target=target,
             met=r["rc"] == 0 and met(seconds=r["seconds"] <= target["seconds"],
                                      rss=r["peak_rss_mb"] <= target["peak_rss_mb"]))
        out.unlink(missing_ok=True)
    script = Path(__file__).with_name("bench_window.py")
    r = run_child([sys.executable, str(script), "--data-dir", str(root), "--day", windows["day"][0].strftime("%Y-%m-%d")],
                  timeout=args.child_timeout * 4, rss_limit_mb=args.child_rss_limit_mb, env=env)
    for line in r["stdout"].splitlines():
        if line.startswith("{"):
            print(line, flush=True)
    if r["rc"] != 0:
        emit(case="window_gestures", rc=r["rc"], stderr=r["stderr"].strip()[-500:])


def case_disk(root: Path, events: int) -> None:
    loc = Location.of(root)
    per_table = {}
    years: dict[str, dict[str, int]] = {}
    for kind, spec in tables.TABLES.items():
        dt = delta_io.open_table(loc, spec)
        data = delta_io.files(loc, spec, dt, ts_col="bucket" if kind == tables.ROLLUPS else
                              "start" if kind in (tables.GAPS, tables.COVERAGE) else "ts")
        folder = root / kind
        on_disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
        per_table[kind] = {"files": len(data), "data_bytes": sum(f.size for f in data), "dir_bytes": on_disk,
                           "rows": sum(f.rows for f in data)}
        counts: dict[str, int] = {}
        for f in data:
            month = f.partition.get("month")
            counts[month[:4] if month else "all"] = counts.get(month[:4] if month else "all", 0) + 1
        years[kind] = dict(sorted(counts.items()))
    liq = per_table[tables.LIQ]
    bpe = liq["data_bytes"] / max(events, 1)
    emit(case="disk_bytes_per_event", bytes_per_event=round(bpe, 2),
         dir_bytes_per_event=round(liq["dir_bytes"] / max(events, 1), 2), events=events,
         store_mb=round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6, 1),
         tables={k: {"files": v["files"], "mb": round(v["dir_bytes"] / 1e6, 1), "rows": v["rows"]}
                 for k, v in per_table.items()},
         target={"bytes_per_event": 30}, met=bpe <= 30)
    worst = max((n for counts in years.values() for n in counts.values()), default=0)
    emit(case="files_per_table_year", max_files=worst, per_table_year=years, target={"files": 100}, met=worst <= 100)


def case_import(cache: Path, args) -> None:
    csv = ensure_tardis_csv(cache, args.import_rows, args.seed)
    mb = csv.stat().st_size / 1e6
    base = reset_peak()
    t = time.perf_counter()
    table = pacsv.read_csv(csv)
    t_pa = time.perf_counter() - t
    emit(case="pyarrow_read_csv", seconds=round(t_pa, 3), peak_rss_mb=round(peak_mb(), 1),
         rss_before_mb=round(base or 0, 1), rows=table.num_rows, mb=round(mb, 1))
    del table
    r = run_child([sys.executable, "-c", f"import pyarrow.csv as c; c.read_csv({str(csv)!r})"],
                  timeout=args.child_timeout, rss_limit_mb=args.child_rss_limit_mb)
    t_pa_process = r["seconds"]
    emit(case="pyarrow_read_csv_process", seconds=r["seconds"], peak_rss_mb=r["peak_rss_mb"], rc=r["rc"])
    store = cache / "import-store"
    shutil.rmtree(store, ignore_errors=True)
    try:
        first = None
        for case in ("import_csv", "reimport_csv"):
            argv = cli_argv("headless", ["import", str(csv), "--data-dir", str(store), "--progress", "never"])
            r = run_child(argv, timeout=args.import_timeout, rss_limit_mb=args.import_rss_limit_mb, env=child_env())
            if case == "import_csv":
                first = r["seconds"]
                target = {"seconds": round(1.5 * t_pa, 3), "x_pyarrow": 1.5, "peak_rss_mb": 1000}
                ok = r["seconds"] <= 1.5 * t_pa and r["peak_rss_mb"] <= 1000
            else:
                target = {"seconds": round(2 * first, 3), "x_first": 2.0}
                ok = r["seconds"] <= 2 * first
            emit(case=case, seconds=r["seconds"], peak_rss_mb=r["peak_rss_mb"], rc=r["rc"], killed=r["killed"],
                 rows=args.import_rows, mb=round(mb, 1), x_pyarrow=round(r["seconds"] / t_pa, 2),
                 x_pyarrow_process=round(r["seconds"] / t_pa_process, 2),
                 output=r["stdout"].strip()[-300:] or None, stderr=r["stderr"].strip()[-300:] or None,
                 target=target, met=r["rc"] == 0 and ok)
            if r["rc"] != 0:
                break
    finally:
        shutil.rmtree(store, ignore_errors=True)


def case_recorder(root: Path, plan: Plan, n: int, seed: int) -> None:
    """A recorder batch into the last day of the store, seen by a second store instance; the three
    tables it touches are restored to their versions before (and vacuumed), keeping the cache intact."""
    loc = Location.of(root)
    rng = np.random.default_rng([seed, 5])
    t0 = plan.end - pd.Timedelta(minutes=10)
    ts = pd.DatetimeIndex(np.sort(t0.value + rng.integers(0, 5 * 60 * 10**9, n)), tz="UTC")
    a = rng.integers(0, 6, n)
    names = plan.names[:6]
    mo_price = np.exp(plan.anchor[-1][:6])
    price = _round_to(np.round(mo_price[a] * rng.uniform(0.995, 1.005, n) / plan.tick[a]) * plan.tick[a], plan.tick[a])
    qty = _round_to(np.maximum(np.round(rng.lognormal(math.log(900), 1.4, n) / price / plan.lot[a]), 1) * plan.lot[a],
                    plan.lot[a])
    df = pd.DataFrame({"ts": ts, "exchange": "binance", "symbol": [f"{names[i]}USDT" for i in a],
                       "asset": [names[i] for i in a], "side": np.where(rng.random(n) < 0.5, "long", "short"),
                       "price": price, "qty": qty, "notional_usd": price * qty})
    kinds = (tables.LIQ, tables.ROLLUPS, tables.COVERAGE)
    before = {k: delta_io.open_table(loc, tables.TABLES[k]).version() for k in kinds}
    writer, reader = open_store(root), open_store(root)
    win = (ts[0], ts[-1] + pd.Timedelta(microseconds=1))

    def held() -> int:
        t = reader._liq_read(win[0], win[1], exchanges=["binance"], columns=["source"],
                             extra_filter=pc.field("source") == "binance-ws")
        return t.num_rows
    already = held()
    done: dict = {}

    def append() -> None:
        t = time.perf_counter()
        try:
            done["result"] = writer.append_liquidations(df, source="binance-ws")
        except Exception as exc:  # noqa: BLE001
            done["error"] = f"{type(exc).__name__}: {exc}"[:300]
        done["seconds"] = time.perf_counter() - t
    base = reset_peak()
    t = time.perf_counter()
    th = threading.Thread(target=append)
    th.start()
    visible = None
    polls = 0
    while time.perf_counter() - t < 120:
        polls += 1
        if held() >= already + n:
            visible = time.perf_counter() - t
            break
        if "error" in done:
            break
        time.sleep(0.02)
    th.join()
    emit(case="recorder_visible", seconds=round(visible, 3) if visible is not None else None,
         append_seconds=round(done.get("seconds", float("nan")), 3), rows=n, polls=polls,
         new=getattr(done.get("result"), "new", None), error=done.get("error"),
         peak_rss_mb=round(peak_mb(), 1), rss_before_mb=round(base or 0, 1), target={"seconds": 5.0},
         met=visible is not None and visible <= 5.0)
    for k in kinds:  # put the cached store back as it was
        dt = delta_io.open_table(loc, tables.TABLES[k])
        if dt.version() != before[k]:
            dt.restore(before[k])
            dt = delta_io.open_table(loc, tables.TABLES[k])
            dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
            dt.create_checkpoint()
    stale = open_store(root).rebuild_rollups()
    if stale:
        log(f"after restoring, {stale} rollup partitions were rebuilt")


# -- main ---------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000_000, help="liquidations in the store (default 100M)")
    ap.add_argument("--years", type=float, default=5, help="years of history from --start (default 5)")
    ap.add_argument("--start", default="2021-01-01", help="first day (default 2021-01-01)")
    ap.add_argument("--assets", type=int, default=len(ASSETS), help=f"assets per exchange (default {len(ASSETS)})")
    ap.add_argument("--candle-assets", type=int, default=len(CANDLE_ASSETS),
                    help="assets with 1-minute candles on each of the 3 exchanges (default 6)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "liqscope" / "bench_scale"),
                    help="cache folder (default ~/.cache/liqscope/bench_scale)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the store even if cached")
    ap.add_argument("--build-only", action="store_true", help="build (or find) the store and stop")
    ap.add_argument("--cases", default="inproc,cli,disk,window,import,recorder",
                    help="comma-separated: inproc, cli, disk, window, import, recorder")
    ap.add_argument("--import-rows", type=int, default=10_000_000, help="rows of the Tardis CSV (default 10M)")
    ap.add_argument("--recorder-rows", type=int, default=500, help="rows of the recorder batch (default 500)")
    ap.add_argument("--child-rss-limit-mb", type=float, default=8000,
                    help="kill a measured process past this RSS (default 8000)")
    ap.add_argument("--child-timeout", type=float, default=300, help="kill a summary process after this (s)")
    ap.add_argument("--import-rss-limit-mb", type=float, default=12000,
                    help="kill an import process past this RSS (default 12000)")
    ap.add_argument("--import-timeout", type=float, default=3600, help="kill an import process after this (s)")
    ap.add_argument("--inproc-all-max", type=int, default=20_000_000,
                    help="run the in-process whole-history load_window only up to this many events")
    args = ap.parse_args()
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    import deltalake
    emit(case="env", cpus=os.cpu_count(), python=sys.version.split()[0], pandas=pd.__version__,
         pyarrow=pa.__version__, deltalake=deltalake.__version__, cache=str(cache),
         free_disk_gb=round(shutil.disk_usage(cache).free / 1e9, 1))
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    root, plan, info = ensure_store(cache, args)
    if args.build_only:
        return
    events = int(info.get("result", {}).get("events") or args.events)
    mid = pd.Timestamp(plan.start + (plan.end - plan.start) / 2).floor("D")
    busy = busiest_day(root)
    one = pd.Timedelta(days=1)
    windows = {"day": (mid, mid + one), "busiest_day": (busy, busy + one), "all": (plan.start, plan.end)}
    if "disk" in cases:
        case_disk(root, events)
    if "inproc" in cases:
        case_inproc(root, windows, events, args.inproc_all_max)
    if "cli" in cases:
        case_cli(root, windows, args)
    if "window" in cases:
        case_window(root, windows, args)
    if "recorder" in cases:
        case_recorder(root, plan, args.recorder_rows, args.seed)
    if "import" in cases:
        case_import(cache, args)


if __name__ == "__main__":
    main()
