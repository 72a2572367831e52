"""Date axis over "seconds since the data origin".

Plotting raw epoch seconds loses precision wherever Qt/pyqtgraph go through
float32 (128 s steps at 2025 epochs), so views plot ``t - origin`` and this
axis adds the origin back only to label ticks. ``utc=True`` labels in UTC
(pyqtgraph's default would use the machine's local time).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg


class OriginDateAxis(pg.DateAxisItem):
    def __init__(self, origin_s: float = 0.0, utc: bool = True, **kwargs):
        super().__init__(utcOffset=0 if utc else None, **kwargs)
        self.origin_s = float(origin_s)
        self.set_utc(utc)

    def set_utc(self, utc: bool) -> None:
        self.utc = utc
        self.utcOffset = 0 if utc else None  # None: pyqtgraph uses the machine's local time
        self.picture = None
        self.update()

    def set_origin(self, origin_s: float) -> None:
        self.origin_s = float(origin_s)
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):
        levels = super().tickValues(minVal + self.origin_s, maxVal + self.origin_s, size)
        return [(spacing, [v - self.origin_s for v in values]) for spacing, values in levels]

    def tickStrings(self, values, scale, spacing):
        return super().tickStrings([v + self.origin_s for v in values], scale, spacing)


def to_x(ts_ns: np.ndarray | int, origin_s: float) -> np.ndarray:
    """UTC nanoseconds -> float seconds since the origin (float64, exact to µs)."""
    return (np.asarray(ts_ns, dtype="int64") - int(origin_s * 1e9)) / 1e9


def from_x(x: float, origin_s: float) -> pd.Timestamp:
    return pd.Timestamp(int(round((x + origin_s) * 1e9)), tz="UTC")
