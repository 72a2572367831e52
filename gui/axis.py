"""Date axis over "seconds since the data origin".

Plotting raw epoch seconds loses precision wherever Qt/pyqtgraph go through
float32 (128 s steps at 2025 epochs), so views plot ``t - origin`` and this
axis adds the origin back only to label ticks. ``utc=True`` labels in UTC
(pyqtgraph's default would use the machine's local time).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pyqtgraph as pg

from .layout import MIN_LABEL_GAP_PX


class OriginDateAxis(pg.DateAxisItem):
    """``origin`` is a number or, in the app, a callable reading the data hub's current origin:
    the axis keeps no copy, so a dataset swap can never leave it labelling the old days."""

    def __init__(self, origin: float | Callable[[], float] = 0.0, utc: bool = True, **kwargs):
        super().__init__(utcOffset=0 if utc else None, **kwargs)
        self._origin = origin if callable(origin) else (lambda value=float(origin): value)
        self.set_utc(utc)

    @property
    def origin_s(self) -> float:
        return float(self._origin())

    def set_utc(self, utc: bool) -> None:
        self.utc = utc
        self.utcOffset = 0 if utc else None  # None: pyqtgraph uses the machine's local time
        self.picture = None
        self._label_zone()
        self.update()

    # -- the axis label names the zone the ticks are in ---------------------------------------
    def zone_label(self) -> str:
        """``time (UTC)``, or the machine's zone and its UTC offset over the dates shown:
        ``time (Europe/Berlin, UTC+02:00)``; across a daylight-saving switch both offsets."""
        if self.utc:
            return "time (UTC)"
        lo, hi = sorted(self.range)
        name, offsets = local_zone(lo + self.origin_s, hi + self.origin_s)
        return f"time ({name}, UTC{'/'.join(offsets)})"

    def _label_zone(self) -> None:
        """Keep the label on :meth:`zone_label` while the axis shows values; none on an axis without."""
        if self.style["showValues"]:
            text = self.zone_label()
            if text != self.labelText or not self.label.isVisible():
                self.setLabel(text)
            self._zone_labelled = True
        elif getattr(self, "_zone_labelled", False):
            self.setLabel(None)
            self._zone_labelled = False

    def setStyle(self, **kwargs):
        super().setStyle(**kwargs)
        if "showValues" in kwargs and hasattr(self, "utc"):
            self._label_zone()

    def setRange(self, mn, mx):
        super().setRange(mn, mx)
        if getattr(self, "_zone_labelled", False) and not self.utc:
            self._label_zone()  # panned into summer or winter time: the offset follows

    def invalidate(self) -> None:
        """Re-label (the origin changed with the dataset): pyqtgraph caches the axis picture."""
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):
        levels = super().tickValues(minVal + self.origin_s, maxVal + self.origin_s, size)
        # a finer level's tick too close to a coarser one would print over its label ("MarMon 3 Mar")
        px_per_s = size / (maxVal - minVal) if maxVal > minVal else 0.0
        taken: list[float] = []
        out = []
        for spacing, values in levels:
            if taken and px_per_s:
                near = np.asarray(taken)
                values = [v for v in values if np.abs(near - v).min() * px_per_s >= MIN_LABEL_GAP_PX]
            taken += list(values)
            out.append((spacing, [v - self.origin_s for v in values]))
        return out

    def tickStrings(self, values, scale, spacing):
        epochs = [v + self.origin_s for v in values]
        labels = super().tickStrings(epochs, scale, spacing)
        if spacing > 86400:
            return labels
        # a window spanning days: a midnight tick names the day and month ("Fri 9 May"), not just "Fri 09"
        out = []
        for epoch, label in zip(epochs, labels):
            t = pd.Timestamp(epoch, unit="s", tz="UTC") if self.utc else pd.Timestamp.fromtimestamp(epoch)
            midnight = t.hour == 0 and t.minute == 0 and t.second == 0
            out.append(f"{t:%a} {t.day} {t:%b}" if midnight else label)
        return out


def local_zone(start_s: float, end_s: float) -> tuple[str, list[str]]:
    """The machine's time zone as pyqtgraph labels local time with (Qt's local time), and its
    UTC offsets ("+02:00") from ``start_s`` to ``end_s`` (epoch seconds), in order.

    The name is the IANA id ("Europe/Berlin") when the system has one, else the
    zone's abbreviations over the window ("EST", "CET/CEST": a POSIX TZ string).
    """
    from PySide6.QtCore import QDateTime, QTimeZone

    def at(seconds: float) -> QDateTime:
        return QDateTime.fromSecsSinceEpoch(int(min(max(seconds, -1e11), 1e11)))

    start, end = at(start_s), at(end_s)
    points = [(start.offsetFromUtc(), start.timeZoneAbbreviation())]
    zone = QTimeZone.systemTimeZone()
    if zone.isValid() and end_s > start_s:
        points += [(t.offsetFromUtc, t.abbreviation) for t in zone.transitions(start, end)]
    points.append((end.offsetFromUtc(), end.timeZoneAbbreviation()))
    offsets = list(dict.fromkeys(_offset_text(seconds) for seconds, _ in points))
    zone_id = bytes(QTimeZone.systemTimeZoneId()).decode(errors="replace")
    if zone.isValid() and zone_id and "," not in zone_id:
        name = zone_id
    else:
        name = "/".join(dict.fromkeys(abbr for _, abbr in points if abbr)) or "local"
    return name, offsets


def _offset_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(int(seconds)) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def to_x(ts_ns: np.ndarray | int, origin_s: float) -> np.ndarray:
    """UTC nanoseconds -> float seconds since the origin (float64, exact to µs)."""
    return (np.asarray(ts_ns, dtype="int64") - int(origin_s * 1e9)) / 1e9


def from_x(x: float, origin_s: float) -> pd.Timestamp:
    return pd.Timestamp(int(round((x + origin_s) * 1e9)), tz="UTC")
