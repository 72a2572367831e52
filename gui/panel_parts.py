"""Small building blocks shared by the panels: dock frame, split bar, tables, bars, plot set-up."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QDockWidget, QHeaderView, QSizePolicy, QTableView, QVBoxLayout,
                               QWidget)

from liqscope.models.format import usd

from .axis import OriginDateAxis
from .layout import AXIS_WIDTH, HIDDEN_TIME_AXIS_HEIGHT, TITLE_HEIGHT
from .table_model import DataFrameModel
from .theme import LONG_COLOR, SHORT_COLOR, SPLIT_EMPTY_COLOR, SPLIT_TEXT_COLOR, Theme


PANEL_FEATURES = (QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable
                  | QDockWidget.DockWidgetFeature.DockWidgetFloatable)


def dock_body(dock: QDockWidget, name: str) -> QVBoxLayout:
    """A panel's frame: its object name (saved layouts and tests find the panel by it), the panel features,
    and the column its widgets go in (already the dock's widget)."""
    dock.setObjectName(name)
    dock.setFeatures(PANEL_FEATURES)
    body = QWidget()
    lay = QVBoxLayout(body)
    lay.setContentsMargins(4, 2, 4, 4)
    dock.setWidget(body)
    return lay


class SplitBar(QWidget):
    """Longs vs shorts as one horizontal bar, each part labelled with USD and share."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.long_usd = 0.0
        self.short_usd = 0.0
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(320, 22)

    def set_values(self, long_usd: float, short_usd: float) -> None:
        self.long_usd, self.short_usd = float(long_usd), float(short_usd)
        total = self.long_usd + self.short_usd
        self.setToolTip(f"longs {usd(self.long_usd)} · shorts {usd(self.short_usd)}"
                        + (f" ({self.short_usd / total:.0%} shorts)" if total else ""))
        self.update()

    def texts(self) -> tuple[str, str]:
        total = self.long_usd + self.short_usd
        if not total:
            return "no liquidations", ""
        return (f"Longs {usd(self.long_usd)} ({self.long_usd / total:.0%})",
                f"Shorts {usd(self.short_usd)} ({self.short_usd / total:.0%})")

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        total = self.long_usd + self.short_usd
        if not total:
            p.fillRect(r, QColor(SPLIT_EMPTY_COLOR))
        else:
            w_long = r.width() * self.long_usd / total
            p.fillRect(QRectF(r.left(), r.top(), w_long, r.height()), QColor(LONG_COLOR))
            p.fillRect(QRectF(r.left() + w_long, r.top(), r.width() - w_long, r.height()), QColor(SHORT_COLOR))
        p.setPen(QColor(SPLIT_TEXT_COLOR))
        left, right = self.texts()
        inner = r.adjusted(6, 0, -6, 0)
        p.drawText(inner, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), left)
        p.drawText(inner, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), right)
        p.end()


def make_table(model: DataFrameModel, name: str, sort_column: int | None = None,
               descending: bool = True) -> QTableView:
    """A sortable, row-selecting table; column widths from the first 100 rows only (fast at 100k)."""
    view = QTableView()
    view.setObjectName(name)
    view.setModel(model)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(20)
    header = view.horizontalHeader()
    header.setResizeContentsPrecision(100)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    if sort_column is not None:
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        header.setSortIndicator(sort_column, order)
    view.setSortingEnabled(True)  # sorts by the indicator now, and on every header click
    return view


def stacked_bars(x: np.ndarray, width: float, longs: list[np.ndarray], shorts: list[np.ndarray],
                 stacked: bool = False):
    """Rectangles for per-group bars: shorts stacked above zero, longs below (or all above).

    Returns ``(x0, x1, y0, y1, group)`` arrays for :class:`RectsItem`; group ``i`` is
    ``longs[i]``/``shorts[i]``. The summed heights equal the inputs exactly.
    """
    x0s, x1s, y0s, y1s, gs = [], [], [], [], []
    pos = np.zeros(len(x))
    neg = np.zeros(len(x))
    for gi, (lo, sh) in enumerate(zip(longs, shorts)):
        for side, vals in (("short", sh), ("long", lo)):
            nz = vals > 0
            if not nz.any():
                continue
            if side == "long" and not stacked:
                y0, y1 = neg[nz], neg[nz] - vals[nz]
                neg[nz] -= vals[nz]
            else:
                y0, y1 = pos[nz], pos[nz] + vals[nz]
                pos[nz] += vals[nz]
            x0s.append(x[nz] + width * 0.08)
            x1s.append(x[nz] + width * 0.92)
            y0s.append(y0)
            y1s.append(y1)
            gs.append(np.full(int(nz.sum()), gi))
    if not x0s:
        return (np.empty(0),) * 4 + (np.empty(0, dtype=int),), 0.0, 0.0
    arrays = tuple(np.concatenate(a) for a in (x0s, x1s, y0s, y1s, gs))
    return arrays, float(pos.max(initial=0.0)), float(neg.min(initial=0.0))


def add_plot(layout: pg.GraphicsLayoutWidget, row: int, origin_s: float, utc: bool,
             right_axis: pg.AxisItem | None = None, show_time: bool = True) -> pg.PlotItem:
    """A plot with a UTC date axis at the bottom and a fixed-width value axis on the right."""
    bottom = OriginDateAxis(origin_s, utc=utc, orientation="bottom")
    axes = {"bottom": bottom}
    if right_axis is not None:
        axes["right"] = right_axis
    plot = layout.addPlot(row=row, col=0, axisItems=axes)
    plot.hideAxis("left")
    plot.showAxis("right")
    plot.getAxis("right").setWidth(AXIS_WIDTH)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    use_caption(plot)
    if not show_time:
        bottom.setStyle(showValues=False)
        bottom.setHeight(HIDDEN_TIME_AXIS_HEIGHT)
    vb = plot.getViewBox()
    vb.setMouseMode(pg.ViewBox.PanMode)
    vb.enableAutoRange(x=False, y=False)
    vb.setMouseEnabled(x=True, y=False)
    vb.setLimits(minXRange=300)
    return plot


class Caption(pg.LabelItem):
    """A plot title that never asks the layout for its text's width.

    ``LabelItem`` re-applies its text width as minimum size on every resize, so a
    long caption would widen the plot past a narrow dock and clip the value axis;
    this one lets the text run on (left-aligned) instead.
    """

    def updateMin(self) -> None:
        super().updateMin()
        h = self.itemRect().height()
        self.setMinimumWidth(0)
        self._sizeHint[Qt.SizeHint.MinimumSize] = (0, h)
        self._sizeHint[Qt.SizeHint.PreferredSize] = (0, h)
        self.updateGeometry()


def use_caption(plot: pg.PlotItem) -> None:
    """Swap the plot's title label for a :class:`Caption` (same layout cell)."""
    old = plot.titleLabel
    plot.layout.removeItem(old)
    if old.scene() is not None:
        old.scene().removeItem(old)
    plot.titleLabel = Caption(" ", parent=plot, size="8pt", justify="left")
    plot.layout.addItem(plot.titleLabel, 0, 1)
    plot.setTitle(None)


def set_title(plot: pg.PlotItem, html: str, color: str) -> None:
    """A one-line, left-aligned caption row above the plot (it never covers the data)."""
    plot.setTitle(html, size="8pt", color=color, justify="left")
    plot.titleLabel.setMaximumHeight(TITLE_HEIGHT)
    plot.layout.setRowFixedHeight(0, TITLE_HEIGHT)


def swatch(color: str, text: str, mark: str = "■") -> str:
    """An inline legend entry for a title: coloured mark, then the name."""
    return f"<span style='color:{color}'>{mark}</span>&nbsp;{text}"


def style_plot(plot: pg.PlotItem, theme: Theme) -> None:
    for name in ("bottom", "right"):
        ax = plot.getAxis(name)
        ax.setPen(pg.mkPen(theme.crosshair))
        ax.setTextPen(pg.mkPen(theme.foreground))
    plot.showGrid(x=True, y=True, alpha=theme.grid_alpha)
