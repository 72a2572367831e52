"""Lightweight pyqtgraph items that draw pre-sliced arrays into a cached QPicture.

Callers hand over only what is visible (plus a margin) at a level of detail
that fits the pixels, so painting cost follows the screen, not the dataset.
``BarGraphItem`` would draw every bar it holds; these draw what they are given.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPicture


def _pen(color: str) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidth(0)  # cosmetic 1 px
    pen.setCosmetic(True)
    return pen


class CandlesItem(pg.GraphicsObject):
    """OHLC candlesticks; bodies are skipped when narrower than ~2 px."""

    def __init__(self, up: str = "#26a69a", down: str = "#ef5350"):
        super().__init__()
        self._picture = QPicture()
        self._bounds = QRectF()
        self.colors = (up, down)
        self.data = (np.empty(0),) * 5
        self.width = 60.0

    def set_colors(self, up: str, down: str) -> None:
        self.colors = (up, down)
        self.set_data(*self.data, width=self.width)

    def set_data(self, x, o, h, l, c, width: float) -> None:
        self.data = (np.asarray(x), np.asarray(o), np.asarray(h), np.asarray(l), np.asarray(c))
        self.width = float(width)
        self.prepareGeometryChange()
        self._picture = QPicture()
        painter = QPainter(self._picture)
        x, o, h, l, c = self.data
        half = self.width * 0.35
        for up, color in ((True, self.colors[0]), (False, self.colors[1])):
            sel = (c >= o) if up else (c < o)
            if not sel.any():
                continue
            xs, os_, hs, ls, cs = x[sel], o[sel], h[sel], l[sel], c[sel]
            painter.setPen(_pen(color))
            painter.drawLines([QLineF(a, b, a, d) for a, b, d in zip(xs.tolist(), ls.tolist(), hs.tolist())])
            painter.setBrush(QBrush(QColor(color)))
            lo, hi = np.minimum(os_, cs), np.maximum(os_, cs)
            painter.drawRects([QRectF(a - half, b, 2 * half, d - b) for a, b, d in zip(xs.tolist(), lo.tolist(), hi.tolist())])
        painter.end()
        if len(x):
            self._bounds = QRectF(float(x[0]) - self.width, float(np.min(l)),
                                  float(x[-1] - x[0]) + 2 * self.width, float(np.max(h) - np.min(l)))
        else:
            self._bounds = QRectF()
        self.update()

    def paint(self, painter, *args):
        painter.drawPicture(QPointF(0, 0), self._picture)

    def boundingRect(self):
        return QRectF(self._bounds)


class RectsItem(pg.GraphicsObject):
    """Filled rectangles coloured by group: volume bars and stacked liquidation bars."""

    def __init__(self):
        super().__init__()
        self._picture = QPicture()
        self._bounds = QRectF()
        self.rects = np.empty((0, 4))
        self.groups = np.empty(0, dtype=int)

    def set_data(self, x0, x1, y0, y1, groups, colors: list[str], alpha: int = 255) -> None:
        """Rects [x0,x1]×[y0,y1]; ``groups[i]`` indexes ``colors``."""
        self.prepareGeometryChange()
        self.rects = np.column_stack([x0, x1, y0, y1]).astype(float) if len(x0) else np.empty((0, 4))
        self.groups = np.asarray(groups, dtype=int)
        self._picture = QPicture()
        painter = QPainter(self._picture)
        painter.setPen(pg.mkPen(None))
        for gi, color in enumerate(colors):
            sel = self.groups == gi
            if not sel.any():
                continue
            q = QColor(color)
            q.setAlpha(alpha)
            painter.setBrush(QBrush(q))
            r = self.rects[sel]
            painter.drawRects([QRectF(a, c, b - a, d - c) for a, b, c, d in r.tolist()])
        painter.end()
        if len(self.rects):
            r = self.rects
            ymin, ymax = float(min(r[:, 2].min(), r[:, 3].min())), float(max(r[:, 2].max(), r[:, 3].max()))
            self._bounds = QRectF(float(r[:, 0].min()), ymin, float(r[:, 1].max() - r[:, 0].min()), ymax - ymin)
        else:
            self._bounds = QRectF()
        self.update()

    def paint(self, painter, *args):
        painter.drawPicture(QPointF(0, 0), self._picture)

    def boundingRect(self):
        return QRectF(self._bounds)
