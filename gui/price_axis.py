"""The price axis: thousands separators, and readable ticks on a logarithmic scale.

In log mode the view holds log10(price). pyqtgraph's own log ticks sit at whole
decades (plus 2…9 × 10^n when the view spans less than three of them), so a
view of one day of BTC — a few percent around 100,000 — got a single label.
Here the ticks are "nice" prices picked for the visible price range and mapped
to log10: 1-2-5 steps in price while the range is narrow enough for even steps
to stay apart on screen, else per-decade sets (1, 2, 5 × 10^n; 1 and 3 × 10^n;
every decade...). The set chosen has at least 4 labels at least
``PRICE_LABEL_GAP_PX`` apart (about one per ``PRICE_LABEL_PITCH_PX``, never
more than 10) and leaves the smallest unlabelled stretch.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from .layout import PRICE_LABEL_EDGE_PX, PRICE_LABEL_GAP_PX, PRICE_LABEL_PITCH_PX

MIN_LABELS = 4
MAX_LABELS = 10
# per-decade sets for views spanning more than a few times in price (mantissas of m × 10^n)
DECADE_SETS = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 1.5, 2, 3, 5, 7), (1, 2, 5), (1, 3), (1,))


def nice_steps(span: float):
    """1-2-2.5-5 × 10^k price steps from about span/40 up to span (smallest first)."""
    if not span > 0 or not math.isfinite(span):
        return
    k = math.floor(math.log10(span / 40))
    while True:
        for m in (1, 2, 2.5, 5):
            step = m * 10.0 ** k
            if step > span:
                return
            if step >= span / 40:
                yield step
        k += 1


def _round(values: np.ndarray, step: float) -> np.ndarray:
    """Multiples of a 1-2-5 step without float dust (0.30000000000000004 -> 0.3)."""
    return np.round(values, max(0, -math.floor(math.log10(step))) + 2)


def linear_ticks(lo: float, hi: float, step: float) -> np.ndarray:
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    if last - first > 1000:
        return np.empty(0)
    return _round(np.arange(first, last + 1) * step, step)


def decade_ticks(lo: float, hi: float, mantissas: tuple, stride: int = 1) -> np.ndarray:
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    out = []
    for e in range(e0 - e0 % stride, e1 + 1, stride):
        for m in mantissas:
            v = m * 10.0 ** e
            if lo <= v <= hi:
                out.append(float(f"{v:.12g}"))
    return np.array(out)


def log_price_ticks(lo_log: float, hi_log: float, size_px: float) -> np.ndarray:
    """Tick prices for a log10 view from ``lo_log`` to ``hi_log`` drawn ``size_px`` tall."""
    lo_log, hi_log = sorted((float(lo_log), float(hi_log)))
    if not (math.isfinite(lo_log) and math.isfinite(hi_log)) or hi_log <= lo_log or hi_log > 300 or lo_log < -300:
        return np.empty(0)
    size_px = max(float(size_px), 1.0)
    px_per_decade = size_px / (hi_log - lo_log)
    inset = min(PRICE_LABEL_EDGE_PX / px_per_decade, (hi_log - lo_log) / 4)
    lo, hi = 10 ** (lo_log + inset), 10 ** (hi_log - inset)
    max_labels = int(min(MAX_LABELS, max(MIN_LABELS, size_px // PRICE_LABEL_PITCH_PX)))

    # (ticks, plain): 2.5 steps and the 1-1.5-2-3-5-7 set only where plain 1-2-5 sets do not fit
    candidates = [(linear_ticks(lo, hi, step), f"{step:e}"[0] != "2" or f"{step:e}"[2] != "5")
                  for step in nice_steps(hi - lo)]
    candidates += [(decade_ticks(lo, hi, m), 1.5 not in m) for m in DECADE_SETS]
    decades = hi_log - lo_log
    candidates += [(decade_ticks(lo, hi, (1,), stride), True)
                   for stride in (2, 3, 5, 10, 20, 50, 100) if stride < decades]

    best, best_key = None, None
    for values, plain in candidates:
        values = values[values > 0]
        if len(values) < 1:
            continue
        logs = np.log10(values)
        gaps = np.diff(np.concatenate(([lo_log], logs, [hi_log]))) * px_per_decade
        inner = gaps[1:-1]
        min_gap = float(inner.min()) if len(inner) else math.inf
        readable = min_gap >= PRICE_LABEL_GAP_PX
        enough = len(values) >= MIN_LABELS
        valid = readable and enough and len(values) <= MAX_LABELS
        if valid:  # plain steps, about the wanted density, the smallest unlabelled stretch, the widest gaps
            key = (True, plain, len(values) <= max_labels, -float(gaps.max()), min_gap)
        else:  # an axis too short for it all: at least 4 labels, as far apart as they can be
            key = (False, enough, min_gap, plain, -len(values))
        if best_key is None or key > best_key:
            best, best_key = values, key
    return best if best is not None else np.empty(0)


def price_labels(prices) -> list[str]:
    """Thousands separators and just enough decimals to show each price exactly.

    Prices within one decade of each other share their decimals (99,999.8 100,000.0
    100,000.2); across decades each label has its own (0.001 0.1 10 1,000).
    """
    prices = [float(p) for p in prices]
    if not prices:
        return []
    places = [_decimals(p) for p in prices]
    low, high = min(map(abs, prices)), max(map(abs, prices))
    if low > 0 and high / low <= 10:
        places = [max(places)] * len(prices)
    return [f"{p:,.{d}f}" for p, d in zip(prices, places)]


def _decimals(price: float) -> int:
    """Fewest decimals that write ``price`` exactly (to 1e-9 of it; float dust ignored)."""
    for d in range(12):
        if abs(price - round(price, d)) <= 1e-9 * abs(price):
            return d
    return 12


class PriceAxis(pg.AxisItem):
    """Prices with thousands separators; in log mode the view holds log10(price)."""

    def tickValues(self, minVal, maxVal, size):
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        prices = log_price_ticks(minVal, maxVal, size)
        # one level: every tick is labelled and gets a grid line; spacing only reaches tickStrings
        return [(None, np.log10(prices).tolist())] if len(prices) else []

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            return price_labels(10.0 ** np.asarray(values, dtype=float))
        decimals = max(0, -int(np.floor(np.log10(spacing)))) if spacing > 0 else 0
        return [f"{v:,.{decimals}f}" for v in values]
