"""Level-of-detail pyramid for candles: truthful OHLC merges, built once per level.

Level k merges the candles of level k-1 into epoch-aligned bins
(open=first, high=max, low=min, close=last, volume=sum) with ``reduceat``, so a
zoomed-out candle shows exactly the wicks of the minutes it covers, unlike
row-skipping decimation. Each level is built from the previous, coarser levels
are ~5x smaller, and nothing is recomputed while panning.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .progress import Task
from .schema import ts_ns

NS = 1_000_000_000


@dataclass(frozen=True)
class PriceStats:
    """The price context of a window: what a headline quotes next to "BTC clears $102K"."""

    open: float
    last: float
    high: float
    low: float
    change_pct: float


@dataclass(frozen=True)
class Candles:
    """Column arrays of one candle series at one level (ts = bin open, int64 ns UTC)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, start_ns: int, end_ns: int) -> "Candles":
        """Candles with start <= open time < end (binary search, no copy)."""
        lo, hi = np.searchsorted(self.ts, [start_ns, end_ns], "left")
        return Candles(*(a[lo:hi] for a in (self.ts, self.open, self.high, self.low, self.close, self.volume)))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"open": self.open, "high": self.high, "low": self.low, "close": self.close,
                             "volume": self.volume},
                            index=pd.DatetimeIndex(self.ts.astype("datetime64[ns]")).tz_localize("UTC").rename("ts"))

    def stats(self) -> "PriceStats | None":
        """Open, last close, % change, high and low of these candles (None if there are none)."""
        if not len(self):
            return None
        first, last = float(self.open[0]), float(self.close[-1])
        return PriceStats(first, last, float(self.high.max()), float(self.low.min()),
                          (last / first - 1) * 100 if first else 0.0)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Candles":
        return cls(ts_ns(frame.index), *(np.ascontiguousarray(frame[c].to_numpy(dtype=float))
                                         for c in ("open", "high", "low", "close", "volume")))


def merge(c: Candles, level_s: int) -> Candles:
    """Merge candles into ``level_s``-second epoch-aligned bins."""
    if not len(c):
        return c
    bins = c.ts // (level_s * NS)
    starts = np.flatnonzero(np.concatenate([[True], bins[1:] != bins[:-1]]))
    ends = np.concatenate([starts[1:], [len(bins)]]) - 1
    return Candles(bins[starts] * level_s * NS, c.open[starts], np.maximum.reduceat(c.high, starts),
                   np.minimum.reduceat(c.low, starts), c.close[ends], np.add.reduceat(c.volume, starts))


class CandlePyramid:
    """All levels of one series; ``level(s)`` builds lazily from the next finer level.

    Thread-safe: a builder thread (:meth:`build_all`) and the GUI thread may ask
    for levels at once. Merges run outside the lock; a finished level is
    published under it, so readers never see a dict being changed under them.
    """

    def __init__(self, base: Candles, base_level_s: int, ladder: list[int]):
        self.base_level = base_level_s
        self.ladder = [lv for lv in ladder if lv >= base_level_s and lv % base_level_s == 0]
        self._levels: dict[int, Candles] = {base_level_s: base}
        self._lock = threading.Lock()

    def _finer(self, seconds: int) -> Candles:
        """The coarsest built level that divides ``seconds`` (the cheapest source to merge from)."""
        with self._lock:
            finer = max((lv for lv in self._levels if lv < seconds and seconds % lv == 0), default=self.base_level)
            return self._levels[finer]

    def _built(self, seconds: int) -> Candles | None:
        with self._lock:
            return self._levels.get(seconds)

    def level(self, seconds: int) -> Candles:
        got = self._built(seconds)
        if got is None:
            merged = merge(self._finer(seconds), seconds)
            with self._lock:
                got = self._levels.setdefault(seconds, merged)
        return got

    def window(self, seconds: int, lo_ns: int, hi_ns: int, max_merge: int = 200_000) -> Candles:
        """Candles of level ``seconds`` with lo <= open < hi.

        A level not built yet is merged for this window only (exact: bins are
        epoch-aligned), so the first paint of a zoomed-in view never waits for
        a whole-history merge; wide windows build and cache the full level.
        """
        built = self._built(seconds)
        if built is not None:
            return built.slice(lo_ns, hi_ns)
        size = seconds * NS
        part = self._finer(seconds).slice((lo_ns // size) * size, -(-hi_ns // size) * size)
        if len(part) > max_merge:
            return self.level(seconds).slice(lo_ns, hi_ns)
        return merge(part, seconds).slice(lo_ns, hi_ns)

    def built(self, seconds: int) -> bool:
        return self._built(seconds) is not None

    def pick(self, span_s: float, max_candles: int) -> int:
        """Finest level that keeps the span within ``max_candles`` candles."""
        for lv in self.ladder:
            if span_s / lv <= max_candles:
                return lv
        return self.ladder[-1]

    def build_all(self, task: Task | None = None) -> None:
        """Pre-compute every level (off the GUI thread for big series); stops between levels if cancelled."""
        for i, lv in enumerate(self.ladder):
            if task is not None:
                task.progress(i, len(self.ladder))
            self.level(lv)
