"""Lightweight pyqtgraph items that draw pre-sliced arrays of primitives.

Callers hand over only what is visible (plus a margin) at a level of detail
that fits the pixels, so painting cost follows the screen, not the dataset.
``BarGraphItem`` would draw every bar it holds; these draw what they are given.
Primitives are written straight into contiguous QLineF/QRectF arrays from
numpy (pyqtgraph's PrimitiveArray, the same fast path BarGraphItem uses)
instead of building one Python object per candle, and painted directly: no
QPicture, whose recording and replay cost more than the drawing itself.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QBrush, QColor, QPainter, QPen

from .theme import DARK

try:
    from pyqtgraph.Qt.internals import PrimitiveArray
except ImportError:  # pragma: no cover - older/newer pyqtgraph without it
    PrimitiveArray = None


def _pen(color: str) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidth(0)  # cosmetic 1 px
    pen.setCosmetic(True)
    return pen


def _primitives(kind, a, b, c, d):
    """QLineF(a, b, c, d) or QRectF(a, b, c, d) per row, written straight from numpy into a C array."""
    if PrimitiveArray is None:
        return [kind(*v) for v in zip(a.tolist(), b.tolist(), c.tolist(), d.tolist())]
    arr = PrimitiveArray(kind, 4)
    arr.resize(len(a))
    mem = arr.ndarray()
    mem[:, 0], mem[:, 1], mem[:, 2], mem[:, 3] = a, b, c, d
    return arr


def _draw(painter: QPainter, method: str, prims) -> None:
    if isinstance(prims, list):
        getattr(painter, method)(prims)
    else:
        getattr(painter, method)(*prims.drawargs())


class _PrimitivesItem(pg.GraphicsObject):
    """Holds (pen, brush, method, primitives) layers and paints them as they are."""

    def __init__(self):
        super().__init__()
        self._layers: list[tuple] = []
        self._bounds = QRectF()

    def paint(self, painter, *args):
        for pen, brush, method, prims in self._layers:
            painter.setPen(pen)
            painter.setBrush(brush)
            _draw(painter, method, prims)

    def boundingRect(self):
        return QRectF(self._bounds)


class CandlesItem(_PrimitivesItem):
    """OHLC candlesticks: one wick line and one body rectangle per candle."""

    def __init__(self, up: str = DARK.candle_up, down: str = DARK.candle_down):
        super().__init__()
        self.colors = (up, down)
        self.data = (np.empty(0),) * 5
        self.width = 60.0

    def set_colors(self, up: str, down: str) -> None:
        self.colors = (up, down)
        self.set_data(*self.data, width=self.width)

    def set_data(self, x, o, h, l, c, width: float) -> None:
        self.data = tuple(np.asarray(a, dtype=float) for a in (x, o, h, l, c))
        self.width = float(width)
        self.prepareGeometryChange()
        x, o, h, l, c = self.data
        half = self.width * 0.35
        up_mask = c >= o
        layers = []
        for sel, color in ((up_mask, self.colors[0]), (~up_mask, self.colors[1])):
            if not sel.any():
                continue
            xs = x[sel]
            pen, brush = _pen(color), QBrush(QColor(color))
            layers.append((pen, brush, "drawLines", _primitives(QLineF, xs, l[sel], xs, h[sel])))
            lo = np.minimum(o[sel], c[sel])
            layers.append((pen, brush, "drawRects",
                           _primitives(QRectF, xs - half, lo, np.full(len(xs), 2 * half),
                                       np.maximum(o[sel], c[sel]) - lo)))
        self._layers = layers
        if len(x):
            lo, hi = float(np.min(l)), float(np.max(h))
            self._bounds = QRectF(float(x[0]) - self.width, lo, float(x[-1] - x[0]) + 2 * self.width, hi - lo)
        else:
            self._bounds = QRectF()
        self.update()


class RectsItem(_PrimitivesItem):
    """Filled rectangles coloured by group: volume bars and stacked liquidation bars."""

    def __init__(self):
        super().__init__()
        self.rects = np.empty((0, 4))
        self.groups = np.empty(0, dtype=int)

    def set_data(self, x0, x1, y0, y1, groups, colors: list[str], alpha: int = 255) -> None:
        """Rects [x0,x1]×[y0,y1]; ``groups[i]`` indexes ``colors``."""
        self.prepareGeometryChange()
        self.rects = np.column_stack([x0, x1, y0, y1]).astype(float) if len(x0) else np.empty((0, 4))
        self.groups = np.asarray(groups, dtype=int)
        no_pen = pg.mkPen(None)
        layers = []
        for gi, color in enumerate(colors):
            sel = self.groups == gi
            if not sel.any():
                continue
            q = QColor(color)
            q.setAlpha(alpha)
            r = self.rects[sel]
            layers.append((no_pen, QBrush(q), "drawRects",
                           _primitives(QRectF, r[:, 0], r[:, 2], r[:, 1] - r[:, 0], r[:, 3] - r[:, 2])))
        self._layers = layers
        if len(self.rects):
            r = self.rects
            ymin, ymax = float(min(r[:, 2].min(), r[:, 3].min())), float(max(r[:, 2].max(), r[:, 3].max()))
            self._bounds = QRectF(float(r[:, 0].min()), ymin, float(r[:, 1].max() - r[:, 0].min()), ymax - ymin)
        else:
            self._bounds = QRectF()
        self.update()


def recolor_legend(legend: pg.LegendItem, color: str) -> None:
    """Set a legend's text colour, existing labels included (pyqtgraph only re-renders on setText)."""
    legend.setLabelTextColor(color)
    for _sample, label in legend.items:
        label.setText(label.text, color=color)


class PaneNote(pg.TextItem):
    """A sentence in the middle of a plot saying why it is empty (no candles, no data in the window).

    Parented to the view box, so it stays centred whatever the zoom; hidden when there is nothing to say.
    """

    def __init__(self, vb: pg.ViewBox):
        super().__init__(anchor=(0.5, 0.5))
        self.vb = vb
        self.setParentItem(vb)
        self.setZValue(50)
        self.hide()
        vb.sigResized.connect(self._place)

    def say(self, text: str | None) -> None:
        if not text:
            self.hide()
            return
        if text != getattr(self, "_text", None):
            self._text = text
            self.setText(text)
        self._place()
        self.show()

    @property
    def text(self) -> str:
        return getattr(self, "_text", "") if self.isVisible() else ""

    def _place(self, *_):
        self.setPos(self.vb.width() / 2, self.vb.height() / 2)
