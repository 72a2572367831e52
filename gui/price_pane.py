"""Price pane: candles or close line, volume overlay, liquidation markers.

Draws only the visible range (plus one view-width either side, so small pans
reuse the cached picture) at a level of detail where candles are >= ~4 px wide.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt

from liqscope.models.format import number
from liqscope.models.lod import Candles, CandlePyramid, PriceStats
from liqscope.models.schema import ts_ns
from liqscope.models.timeutil import BUCKETS

from .axis import to_x
from .items import CandlesItem, PaneNote, RectsItem, recolor_legend
from .layout import AXIS_WIDTH, MIN_BAR_PX
from .price_axis import PriceAxis  # noqa: F401  (the pane's axis; imported from here by the window)
from .theme import LONG_COLOR, MARKER_OUTLINE_COLOR, PRICE_LINE_COLOR, SHORT_COLOR, ZERO_LINE_COLOR, Theme
from .worker import Worker

LADDER = list(BUCKETS.values())  # candle levels of detail, seconds
MAX_MARKERS = 2000
MARKER_SIZES = (5, 7, 9, 12, 16, 21)  # bucketed by notional decade-halves


def marker_size_bucket(notional: np.ndarray) -> np.ndarray:
    """Index into MARKER_SIZES: <$10k, <$50k, <$250k, <$1M, <$4M, larger."""
    edges = np.array([1e4, 5e4, 2.5e5, 1e6, 4e6])
    return np.searchsorted(edges, notional, side="right")


class PassiveViewBox(pg.ViewBox):
    """An overlay view box that lets every mouse event through to the view box beneath.

    pyqtgraph's scene offers drags to items by z order and a ViewBox accepts them
    even with its mouse disabled, so the volume overlay would swallow every pan.
    """

    def mouseDragEvent(self, ev, axis=None):
        ev.ignore()

    def mouseClickEvent(self, ev):
        ev.ignore()

    def wheelEvent(self, ev, axis=None):
        ev.ignore()


class PricePane:
    def __init__(self, plot: pg.PlotItem, origin: Callable[[], float]):
        self.plot = plot
        self._origin = origin  # the data hub's origin, read when drawing (never a copy)
        self.candles = CandlesItem()
        self.line = pg.PlotDataItem(pen=pg.mkPen(PRICE_LINE_COLOR, width=1))
        self.line.setVisible(False)
        plot.addItem(self.candles)
        plot.addItem(self.line)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        plot.showGrid(x=True, y=True)
        plot.hideAxis("left")
        plot.showAxis("right")
        plot.getAxis("right").setWidth(AXIS_WIDTH)
        plot.setMenuEnabled(False)
        plot.hideButtons()  # the view follows the ViewState; pyqtgraph's auto-range "A" would fight it
        self.vb = plot.getViewBox()
        self.vb.setLimits(minXRange=300)  # never zoom below 5 minutes
        self.vb.setMouseMode(pg.ViewBox.PanMode)
        self.vb.enableAutoRange(x=False, y=False)
        # volume in its own view box, x-linked, occupying the bottom quarter
        self.vol_vb = PassiveViewBox(enableMouse=False)
        self.vol_vb.setXLink(self.vb)
        plot.scene().addItem(self.vol_vb)
        self.vol_vb.setZValue(-10)
        self.volume = RectsItem()
        self.vol_vb.addItem(self.volume)
        self.vb.sigResized.connect(self._sync_volume_geometry)
        # liquidation markers, one scatter per side (bucketed sizes keep it fast)
        self.markers = {
            side: pg.ScatterPlotItem(pen=pg.mkPen(MARKER_OUTLINE_COLOR, width=0.6), brush=pg.mkBrush(color + "b0"),
                                     symbol="o", name=f"{side} liquidated")
            for side, color in (("long", LONG_COLOR), ("short", SHORT_COLOR))
        }
        for m in self.markers.values():
            m.setZValue(20)
            plot.addItem(m)
        self.legend = pg.LegendItem(offset=(8, 8), labelTextSize="8pt")
        self.legend.setParentItem(self.vb)
        for side, m in self.markers.items():
            self.legend.addItem(m, f"{side}s liquidated")
        self.note = PaneNote(self.vb)
        # the window's last price as a tag at the right edge, on a dotted line across the pane
        self.last_line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(ZERO_LINE_COLOR, width=1,
                                                                              style=Qt.PenStyle.DotLine),
                                         label="", labelOpts={"position": 0.99, "anchors": [(1, 1), (1, 1)]})
        self.last_line.setZValue(25)  # its tag above the liquidation markers (20): the price stays readable
        self.last_line.hide()
        plot.addItem(self.last_line, ignoreBounds=True)
        self.lod_worker = Worker(name="liqscope-lod")  # the one worker type; one build at a time
        self.pyramid: CandlePyramid | None = None
        self._cached: tuple[int, int, int] | None = None  # (level, start ns, end ns) in the picture
        self.level = 60
        self.visible: pd.DataFrame | None = None

    @property
    def origin_s(self) -> float:
        return self._origin()

    def _sync_volume_geometry(self):
        self.vol_vb.setGeometry(self.vb.sceneBoundingRect())

    def set_theme(self, theme: Theme):
        self.candles.set_colors(theme.candle_up, theme.candle_down)
        self.last_line.label.fill = pg.mkBrush(theme.panel)
        self.last_line.label.setColor(theme.foreground)
        self.plot.showGrid(x=True, y=True, alpha=theme.grid_alpha)
        recolor_legend(self.legend, theme.foreground)

    def set_series(self, candles: pd.DataFrame | None):
        """New price source (asset/exchange changed): a new level-of-detail pyramid."""
        self._cached = None
        if candles is None or candles.empty:
            self.lod_worker.cancel()  # nothing to build for: stop the previous series' build
            self.pyramid = None
        else:
            base = int(np.median(np.diff(ts_ns(candles.index[:1000])))) // 1_000_000_000 if len(candles) > 1 else 60
            self.pyramid = CandlePyramid(Candles.from_frame(candles), max(base, 1), LADDER)
            # coarser levels for later zoom-outs, built off the GUI thread (numpy releases the GIL);
            # until one is ready, a zoomed view merges just its own window
            self.lod_worker.start(self.pyramid.build_all)  # cancels the build of the previous series

    def lod(self, level: int) -> Candles | None:
        return self.pyramid.level(level) if self.pyramid is not None else None

    def pick_level(self, span_s: float) -> int:
        """Candles at least ~4 px wide: never more candles than the pixels can show."""
        return self.pyramid.pick(span_s, int(max(self.vb.width(), 200) / MIN_BAR_PX))

    def redraw_empty(self) -> None:
        self.last_line.hide()
        self.candles.set_data(*(np.empty(0),) * 5, width=60)
        self.line.setData([], [])
        self.volume.set_data([], [], [], [], [], [])
        self.visible = None
        self._cached = None

    def redraw(self, start: pd.Timestamp, end: pd.Timestamp, *, style: str, log: bool, force: bool = False):
        if self.pyramid is None:
            self.redraw_empty()
            return
        s_ns, e_ns = int(start.value), int(end.value)
        span_ns = e_ns - s_ns
        level = self.pick_level(span_ns / 1e9)
        self.level = level
        cached = self._cached
        if force or cached is None or cached[0] != level or s_ns < cached[1] or e_ns > cached[2]:
            # draw one view-width either side so small pans reuse the cached picture
            lo_ns, hi_ns = s_ns - span_ns, e_ns + span_ns
            part = self.pyramid.window(level, lo_ns - level * 1_000_000_000, hi_ns)
            x = to_x(part.ts, self.origin_s) + level / 2  # centre candles in their interval
            o, h, l, c = part.open, part.high, part.low, part.close
            if log:
                o, h, l, c = (np.log10(v) for v in (o, h, l, c))
            empty = (np.empty(0),) * 5
            self.candles.set_data(*((x, o, h, l, c) if style == "candles" else empty), width=level)
            self.line.setData(*((x, c) if style != "candles" else ([], [])))
            self.candles.setVisible(style == "candles")
            self.line.setVisible(style != "candles")
            xs = x - level / 2
            self.volume.set_data(xs + level * 0.1, xs + level * 0.9, np.zeros(len(part)), part.volume,
                                 (part.close < part.open).astype(int),
                                 [self.candles.colors[0], self.candles.colors[1]], alpha=55)
            self._cached = (level, lo_ns, hi_ns)
        vis = self.pyramid.window(level, s_ns - level * 1_000_000_000 + 1, e_ns)
        self.visible = vis
        if len(vis):
            lo_p, hi_p = float(vis.low.min()), float(vis.high.max())
            if log:
                lo_p, hi_p = np.log10(lo_p), np.log10(hi_p)
            pad = (hi_p - lo_p) * 0.08 or abs(hi_p) * 0.001
            self.vb.setYRange(lo_p - pad, hi_p + pad, padding=0)
            self.vol_vb.setYRange(0, float(vis.volume.max()) * 4 or 1, padding=0)
            # the window's last close from the finest candles (the drawn one may run past the window's
            # end): the headline's "last" says the same
            fine = self.pyramid.window(self.pyramid.base_level, s_ns, e_ns)
            last = float(fine.close[-1]) if len(fine) else float(vis.close[-1])
            self.last_line.setPos(np.log10(last) if log else last)
            self.last_line.label.setFormat(f"last {number(last, 6)}")
        self.last_line.setVisible(bool(len(vis)))
        self.plot.getAxis("right").setLogMode(False, log)

    def window_stats(self, start: pd.Timestamp, end: pd.Timestamp) -> PriceStats | None:
        """Open, last, % change, high and low of ``[start, end)`` from the finest candles (exact, not the drawn level)."""
        if self.pyramid is None:
            return None
        return self.pyramid.window(self.pyramid.base_level, int(start.value), int(end.value)).stats()

    def candle_at(self, ts_ns_value: int) -> dict | None:
        """The drawn-level candle whose interval contains the time (for the crosshair)."""
        if self.pyramid is None:
            return None
        step = self.level * 1_000_000_000
        c = self.pyramid.window(self.level, ts_ns_value - step, ts_ns_value + step)
        if not len(c):
            return None
        i = int(np.searchsorted(c.ts, ts_ns_value, "right")) - 1
        if i < 0 or ts_ns_value >= c.ts[i] + self.level * 1_000_000_000:
            return None
        return {"open": c.open[i], "high": c.high[i], "low": c.low[i], "close": c.close[i], "volume": c.volume[i]}

    def set_markers(self, arrays: dict, rows: np.ndarray | None, *, log: bool, visible: bool):
        """Draw the events at ``rows`` (already thinned to the largest), sizes bucketed."""
        for m in self.markers.values():
            m.setVisible(visible)
        if not visible or rows is None:
            return
        rows = rows[:MAX_MARKERS]
        for code, (side, item) in enumerate(self.markers.items()):  # SIDES order: long, short
            r = rows[arrays["side"][rows] == code]
            y = arrays["price"][r]
            if log:
                y = np.log10(y)
            sizes = np.take(MARKER_SIZES, marker_size_bucket(arrays["notional_usd"][r]))
            item.setData(x=to_x(arrays["ts"][r], self.origin_s), y=y, size=sizes)
