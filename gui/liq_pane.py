"""Liquidation pane: bars per time bucket, stacked and coloured by exchange.

Shorts liquidated plot above zero and longs below (or both stacked upwards).
The bucket follows the zoom so there are never more bars than pixels allow.
Bars are re-binned from the prefix-sum index for the view plus one view-width
either side; pans inside that range only move the view (finplot's 3x cache).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pyqtgraph as pg

from liqscope.models.format import usd
from liqscope.models.liq_index import BucketSums, LiquidationIndex
from liqscope.models.timeutil import format_duration, pick_bucket

from .axis import to_x
from .items import PaneNote, RectsItem, recolor_legend
from .layout import AXIS_WIDTH, CAPTION_BAND_PX, MIN_BAR_PX, Y_HEADROOM
from .theme import ZERO_LINE_COLOR, display_name, exchange_color


class UsdAxis(pg.AxisItem):
    """Ticks like $120M / -$40M (longs plot negative, labels show magnitude with sign)."""

    def tickStrings(self, values, scale, spacing):
        return [("-" if v < 0 else "") + usd(abs(v)) if v else "0" for v in values]


class LiqPane:
    def __init__(self, plot: pg.PlotItem, origin: Callable[[], float]):
        self.plot = plot
        self._origin = origin  # the data hub's origin, read when drawing (never a copy)
        self.bars = RectsItem()
        plot.addItem(self.bars)
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(ZERO_LINE_COLOR, width=1))
        plot.addItem(self.zero)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        plot.hideButtons()  # the view follows the ViewState; pyqtgraph's auto-range "A" would fight it
        plot.hideAxis("left")
        plot.showAxis("right")
        plot.getAxis("right").setWidth(AXIS_WIDTH)
        self.vb = plot.getViewBox()
        self.vb.setMouseMode(pg.ViewBox.PanMode)
        self.vb.enableAutoRange(x=False, y=False)
        self.vb.setMouseEnabled(x=True, y=False)
        self.legend = pg.LegendItem(offset=(8, 4), labelTextSize="8pt", colCount=6)
        self.legend.setParentItem(self.vb)
        self.label = pg.TextItem(anchor=(1, 0))
        self.label.setParentItem(self.vb)
        self.note = PaneNote(self.vb)
        self.bucket = 3600
        self.table: BucketSums | None = None  # what is drawn: USD per (side, exchange, bucket)
        self._cache_key = None
        self._range_ns = (0, 0)
        self._tops = self._bottoms = np.empty(0)
        self._legend_names: tuple[str, ...] = ()

    @property
    def origin_s(self) -> float:
        return self._origin()

    def set_foreground(self, color: str):
        self.label.setColor(color)
        recolor_legend(self.legend, color)

    def pick_bucket(self, span_s: float, override: int | None, min_bucket: int = 0) -> int:
        """The bucket that fits the pixels (or the user's), never finer than the rows held (whole days
        of a wide view of a large store)."""
        if override:
            return max(override, min_bucket)
        px = max(self.vb.width(), 200)
        return max(pick_bucket(span_s, int(px / MIN_BAR_PX)), min_bucket)

    def redraw(self, index: LiquidationIndex, start: pd.Timestamp, end: pd.Timestamp, *,
               override: int | None, stacked: bool, exchanges: list[str], filters: dict,
               force: bool = False, min_bucket: int = 0) -> bool:
        """Re-bin if the bucket, the filters or the cached range no longer fit; returns True if it did."""
        s_ns, e_ns = int(start.value), int(end.value)
        span = e_ns - s_ns
        self.bucket = self.pick_bucket(span / 1e9, override, min_bucket)
        key = (id(index), self.bucket, stacked, tuple(exchanges), repr(sorted(filters.items())))
        rebinned = force or key != self._cache_key or s_ns < self._range_ns[0] or e_ns > self._range_ns[1]
        if rebinned:
            lo, hi = s_ns - span, e_ns + span
            self.table = index.bucket_sums(self.bucket, pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC"),
                                           by="exchange", **filters)
            self._draw(stacked, exchanges)
            self._cache_key, self._range_ns = key, (lo, hi)
        self._fit_y(s_ns, e_ns, stacked)
        self.label.setText(f"liquidations per {format_duration(self.bucket)} bucket · "
                           + ("stacked" if stacked else "▲ shorts  ▼ longs"))
        self.label.setPos(self.vb.width(), 0)
        return rebinned

    def _draw(self, stacked: bool, exchanges: list[str]) -> None:
        t = self.table
        names = [e for e in exchanges if e in t.groups]
        x = to_x(t.starts_ns, self.origin_s)
        w = t.size_ns / 1e9
        pos_base, neg_base = np.zeros(t.n), np.zeros(t.n)
        parts = []
        for gi, name in enumerate(names):
            g = t.groups.index(name)
            for side in (1, 0):  # shorts first, then longs
                vals = t.sums[side, g]
                nz = vals > 0
                if not nz.any():
                    continue
                if side == 0 and not stacked:
                    y0 = neg_base[nz].copy()
                    neg_base[nz] -= vals[nz]
                    y1 = neg_base[nz]
                else:
                    y0 = pos_base[nz].copy()
                    pos_base[nz] += vals[nz]
                    y1 = pos_base[nz]
                parts.append((x[nz], y0, y1, np.full(nz.sum(), gi)))
        colors = [exchange_color(n) for n in names]
        if parts:
            xs, y0, y1, grp = (np.concatenate(p) for p in zip(*parts))
            self.bars.set_data(xs + w * 0.08, xs + w * 0.92, y0, y1, grp, colors)
        else:
            self.bars.set_data([], [], [], [], [], colors)
        self._tops, self._bottoms = pos_base, neg_base
        self._update_legend(names, colors)

    def _fit_y(self, s_ns: int, e_ns: int, stacked: bool) -> None:
        """Fit the y axis to the buckets in view (cheap: runs on every pan)."""
        t = self.table
        if t is None or not t.n:
            top, bottom = 0.0, 0.0
        else:
            lo = max(0, (s_ns - t.first_ns) // t.size_ns)
            hi = min(t.n, -(-(e_ns - t.first_ns) // t.size_ns))
            top = float(self._tops[lo:hi].max()) if hi > lo else 0.0
            bottom = float(self._bottoms[lo:hi].min()) if hi > lo else 0.0
        top, bottom = max(top, 1.0) * Y_HEADROOM, min(bottom, 0.0 if stacked else -1.0) * Y_HEADROOM
        # keep a caption band free above the highest bar: top - highest >= band share of the range
        band = min(0.4, CAPTION_BAND_PX / max(self.vb.height(), 1.0))
        top = max(top, (top / Y_HEADROOM - band * bottom) / (1 - band))
        self.vb.setYRange(bottom, top, padding=0)

    def _update_legend(self, names: list[str], colors: list[str]) -> None:
        if tuple(names) == self._legend_names:
            return
        self._legend_names = tuple(names)
        self.legend.clear()
        for name, color in zip(names, colors):
            swatch = pg.BarGraphItem(x=[0], height=[1], width=1, brush=color, pen=None)
            self.legend.addItem(swatch, display_name(name))

    def value_at(self, ts: pd.Timestamp) -> tuple[pd.Timestamp, dict] | None:
        """The drawn bucket containing ``ts``: its start and USD for longs, shorts, and per exchange."""
        t = self.table
        if t is None or not t.n:
            return None
        i = (int(ts.value) - t.first_ns) // t.size_ns
        if not 0 <= i < t.n:
            return None
        per_ex = {g: float(t.sums[0, j, i] + t.sums[1, j, i]) for j, g in enumerate(t.groups)}
        return pd.Timestamp(int(t.starts_ns[i]), tz="UTC"), {
            "long": float(t.sums[0, :, i].sum()), "short": float(t.sums[1, :, i].sum()),
            "by_exchange": dict(sorted(per_ex.items(), key=lambda kv: -kv[1])),
        }
