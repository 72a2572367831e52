"""The common frame of a drill-down panel (a ``QDockWidget``); see exchange_panel/asset_panel.

While "Linked" is ticked (the default) a panel holds no view of its own: it reads
the main ``ViewState`` (through :meth:`View.for_exchange`/:meth:`View.for_asset`),
so it follows zoom, pan and filters, refreshing at most every ``REFRESH_MS``.
Unticked, it keeps the view it had and can be panned on its own. Panels never
read files and keep no dataset: they query the window's data hub through the
prefix-sum index (no scan of the events per refresh).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QHBoxLayout, QHeaderView, QLabel, QSplitter,
                               QToolButton, QVBoxLayout, QWidget)

from liqscope.models.dataset import Dataset
from liqscope.models.drilldown import index_breakdown
from liqscope.models.liq_index import LiquidationIndex
from liqscope.models.export import default_name
from liqscope.models.format import number, usd
from liqscope.models.liquidations import Totals
from liqscope.models.timeutil import pick_bucket

from .axis import from_x
from .export import export_menu
from .items import RectsItem
from .layout import MIN_BAR_PX, Y_HEADROOM
from .panel_parts import SplitBar, make_table, set_title, stacked_bars, style_plot
from .state import View
from .table_model import Column, DataFrameModel, iso_utc, percent, usd_exact
from .theme import THEMES, display_name

DATA_FIELDS = frozenset({"start", "end", "side", "min_usd", "exchanges", "exchange", "bucket"})
REFRESH_MS = 80  # linked panels refresh at most this often while the main view moves
TOP_CHOICES = {"top 100": 100, "top 1,000": 1000, "all": 0}

# notional before price and qty: the figure that matters stays visible in a narrow dock
ORDER_COLUMNS = [
    Column("ts", "time (UTC)", lambda t: iso_utc(pd.Timestamp(t))),
    Column("exchange", "exchange", display_name),
    Column("symbol", "symbol"),
    Column("side", "side"),
    Column("notional_usd", "notional", usd_exact, True),
    Column("price", "price", number, True),
    Column("qty", "qty", number, True),
]


def breakdown_columns(by: str) -> list[Column]:
    name_fmt = display_name if by == "exchange" else str
    # compact money ($226.0M) keeps six columns readable in a narrow dock; RAW_ROLE holds the exact value
    return [Column(by, by, name_fmt), Column("total_usd", "total", usd, True),
            Column("long_usd", "longs", usd, True), Column("short_usd", "shorts", usd, True),
            Column("count", "count", lambda n: f"{int(n):,}", True), Column("share", "share", percent, True)]


class DrillPanel(QDockWidget):
    """Common frame: Linked + Export controls, heading, long/short split, charts, two tables."""

    kind = ""
    by = "asset"  # breakdown table groups
    export_whats: tuple[str, ...] = ("buckets", "liquidations")

    def __init__(self, main, key: str, title: str):
        super().__init__(title, main)
        self.main, self.key = main, key
        self.state = main.state
        self._own_view: View | None = None  # only while unlinked: the window this panel keeps
        self.bucket = 3600
        self.totals = None
        self._applying_range = False
        self.setObjectName(f"panel_{self.kind}_{key}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.setMinimumWidth(420)
        self._drawn = False
        self._columns_sized = False
        self.titles: dict[int, str] = {}  # id(plot) -> caption html, re-coloured with the theme
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._redraw_timer = QTimer(self, singleShot=True, interval=60)  # after resizes: bars follow pixels
        self._redraw_timer.timeout.connect(self.redraw)

        body = QWidget()
        outer = QVBoxLayout(body)
        outer.setContentsMargins(4, 2, 4, 4)
        outer.setSpacing(2)
        bar = QHBoxLayout()
        self.linked_box = QCheckBox("Linked")
        self.linked_box.setObjectName("linked_box")
        self.linked_box.setChecked(True)
        self.linked_box.setToolTip("Follow the main window's time window and filters; "
                                   "untick to keep this panel's window while you explore")
        self.linked_box.toggled.connect(self.set_linked)
        bar.addWidget(self.linked_box)
        bar.addStretch(1)
        self.export_button = QToolButton()
        self.export_button.setObjectName("export_button")
        self.export_button.setText("Export ▾")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setMenu(export_menu(self, self))
        bar.addWidget(self.export_button)
        outer.addLayout(bar)

        self.content = QWidget()  # what a PNG export shows (no checkbox or button)
        self.content.setObjectName("panel_content")
        lay = QVBoxLayout(self.content)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(4)
        self.heading = QLabel()
        self.heading.setObjectName("panel_heading")
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setWordWrap(True)  # a narrow dock wraps the heading instead of widening
        lay.addWidget(self.heading)
        self.split = SplitBar()
        lay.addWidget(self.split)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.ci.layout.setSpacing(0)
        self.build_plots()
        for plot in self.plots():
            plot.getViewBox().sigResized.connect(lambda *_: self._redraw_timer.start())
        self.breakdown_model = DataFrameModel(breakdown_columns(self.by), self)
        self.breakdown_view = make_table(self.breakdown_model, "breakdown_table", sort_column=1)
        self.breakdown_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.breakdown_view.horizontalHeader().setMinimumSectionSize(36)  # six columns fit a narrow dock
        self.breakdown_view.horizontalHeader().setStretchLastSection(False)  # else it keeps 100 px
        self.breakdown_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.orders_model = DataFrameModel(ORDER_COLUMNS, self)
        self.orders_view = make_table(self.orders_model, "orders_table",
                                      sort_column=self.orders_model_column("notional_usd"))
        self.orders_view.doubleClicked.connect(self._order_double_clicked)
        self.orders_view.setToolTip("Double-click an order to centre the main chart on it")
        orders_box = QWidget()
        ol = QVBoxLayout(orders_box)
        ol.setContentsMargins(0, 0, 0, 0)
        ol.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Largest orders</b> (double-click to centre the chart)"))
        row.addStretch(1)
        self.top_combo = QComboBox()
        self.top_combo.setObjectName("top_combo")
        for text, n in TOP_CHOICES.items():
            self.top_combo.addItem(text, n)
        self.top_combo.setCurrentIndex(1)
        self.top_combo.currentIndexChanged.connect(self.refresh)
        row.addWidget(self.top_combo)
        ol.addLayout(row)
        ol.addWidget(self.orders_view)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.graphics)
        splitter.addWidget(self.breakdown_view)
        splitter.addWidget(orders_box)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 2)
        splitter.setStretchFactor(2, 3)
        self.graphics.setMinimumHeight(240)
        self.breakdown_view.setMinimumHeight(118)  # header + 4 rows
        orders_box.setMinimumHeight(150)
        lay.addWidget(splitter, 1)
        outer.addWidget(self.content, 1)
        self.setWidget(body)
        self.state.changed.connect(self._on_state_changed)
        main.hub.dataset_changed.connect(self._on_dataset_changed)
        main.hub.data_appended.connect(self._refresh_timer.start)
        self.apply_theme()
        self.refresh()

    # -- subclass hooks ------------------------------------------------------
    def build_plots(self) -> None:
        raise NotImplementedError

    def panel_view(self, base: View) -> View:
        """The panel's view of ``base`` (the main view, or the one it kept): which liquidations it shows."""
        raise NotImplementedError

    def draw(self) -> None:
        raise NotImplementedError

    def name_parts(self) -> list[str]:
        raise NotImplementedError

    def heading_name(self) -> str:
        raise NotImplementedError

    def plots(self) -> list[pg.PlotItem]:
        raise NotImplementedError

    # -- state ---------------------------------------------------------------
    @property
    def dataset(self) -> Dataset:
        """Always the window's current dataset (it is swapped in after a background load)."""
        return self.main.dataset

    @property
    def origin_s(self) -> float:
        return self.main.origin_s

    def origin(self) -> float:
        """For the panel's axes: read at draw time, so a dataset swap re-labels them."""
        return self.main.origin_s

    @property
    def view(self) -> View:
        """What this panel shows: derived from the main view while linked, else from the view it kept."""
        return self.panel_view(self.state.view if self._own_view is None else self._own_view)

    def index(self) -> LiquidationIndex:
        return self.dataset.index(self.view.min_usd)

    def query(self) -> dict:
        """Index filters of this panel's view (its liquidations, one definition: ``View.liq_filter``)."""
        f = self.view.liq_filter()
        f.pop("min_notional")
        return f

    @property
    def linked(self) -> bool:
        return self.linked_box.isChecked()

    def set_linked(self, on: bool) -> None:
        if self.linked_box.isChecked() != on:
            self.linked_box.setChecked(on)  # re-enters through toggled
            return
        self._own_view = None if on else self.state.view
        if on:
            self.refresh()

    def _on_state_changed(self, names: frozenset) -> None:
        if "theme" in names:
            self.apply_theme()
        if "utc" in names:
            for plot in self.plots():
                plot.getAxis("bottom").set_utc(self.state.view.utc)
        if self.linked and names & DATA_FIELDS:
            self._refresh_timer.start()  # coalesced: a drag emits dozens of window changes

    def _on_dataset_changed(self, _dataset) -> None:
        for plot in self.plots():
            plot.getAxis("bottom").invalidate()
        self._refresh_timer.start()

    def _on_user_range(self, _vb, rng) -> None:
        """Panning/zooming a panel plot: moves the main window if linked, else only this panel."""
        if self._applying_range:
            return
        start = from_x(rng[0], self.origin_s).round("ms")
        end = from_x(rng[1], self.origin_s).round("ms")
        if self.linked:
            self.state.update(start=start, end=end)
        else:
            self._own_view = replace(self._own_view, start=start, end=end)
            self._refresh_timer.start()

    def set_window(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        """Show ``[start, end)``: through the main state when linked, else just here."""
        if self.linked:
            self.state.update(start=start, end=end)
        else:
            self._own_view = replace(self._own_view, start=start, end=end)
            self.refresh()

    # -- drawing -------------------------------------------------------------
    def refresh(self) -> None:
        """Heading, long/short split, both tables and the charts, from the index."""
        v = self.view
        if not v.has_window:
            return
        self._refresh_timer.stop()
        index, query = self.index(), self.query()
        self.totals: Totals = index.totals(v.start, v.end, **query)
        self.heading.setText(f"<b>{self.heading_name()}</b> · {v.window_text()}"
                             f"<br>Total <b>{usd_exact(self.totals.total_usd)}</b>"
                             f" in {self.totals.count:,} liquidations")
        self.split.set_values(self.totals.long_usd, self.totals.short_usd)
        self.breakdown_model.set_frame(index_breakdown(index, v.start, v.end, self.by, **query))
        n = self.top_combo.currentData()
        self.orders_model.set_frame(self.dataset.largest(v.start, v.end, n if n else self.totals.count,
                                                         min_notional=v.min_usd, **query))
        if not self._columns_sized and self.orders_model.rowCount():
            self.orders_view.resizeColumnsToContents()  # once: columns must not jump while panning
            self._columns_sized = True
        self._drawn = True
        self.redraw()

    def redraw(self) -> None:
        """Charts only (window range, bars, lines) for the current size; tables stay as they are."""
        v = self.view
        if not self._drawn or not v.has_window:
            return
        self._redraw_timer.stop()
        self._applying_range = True
        try:
            x0, x1 = (t.value / 1e9 - self.origin_s for t in (v.start, v.end))
            for plot in self.plots():
                plot.getViewBox().setXRange(x0, x1, padding=0)
            self.draw()
        finally:
            self._applying_range = False

    def set_title(self, plot: pg.PlotItem, html: str) -> None:
        self.titles[id(plot)] = html
        set_title(plot, html, THEMES[self.state.view.theme].foreground)

    def pick_bucket(self) -> int:
        v = self.view
        floor = self.dataset.resolution_s  # never finer than the rows held (whole days: a wide view)
        if v.bucket:
            return max(int(v.bucket), floor)
        px = max(self.plots()[-1].getViewBox().width(), 300)
        return max(pick_bucket((v.end - v.start).total_seconds(), int(px / MIN_BAR_PX)), floor)

    def apply_theme(self) -> None:
        theme = THEMES[self.state.view.theme]
        self.graphics.setBackground(theme.background)
        for plot in self.plots():
            style_plot(plot, theme)
            if id(plot) in self.titles:
                set_title(plot, self.titles[id(plot)], theme.foreground)

    # -- orders --------------------------------------------------------------
    def orders_model_column(self, key: str) -> int:
        return [c.key for c in ORDER_COLUMNS].index(key)

    def _order_double_clicked(self, index) -> None:
        self.centre_main_on(self.orders_model.row(index.row())["ts"])

    def centre_main_on(self, ts: pd.Timestamp) -> None:
        """Centre the main chart on ``ts``, keeping its span, and put the crosshair there."""
        v = self.state.view
        span = v.end - v.start
        start = (ts - span / 2).round("ms")
        self.state.update(start=start, end=start + span)
        self.state.flush()
        self.main.show_readout(ts.value / 1e9 - self.origin_s)

    # -- export target -------------------------------------------------------
    def export_widget(self) -> QWidget:
        return self.content

    def export_name(self, what: str | None, ext: str) -> str:
        return default_name(self.name_parts(), self.view.start, self.view.end, ext, what)

    def bars(self):
        """USD per bucket × (side, exchange) of this panel's view, at the drawn bucket (index, no scan)."""
        v = self.view
        return self.index().buckets(self.bucket, v.start, v.end, by="exchange", **self.query())

    def _bars(self, plot_rects: RectsItem, x: np.ndarray, longs, shorts, colors, plot: pg.PlotItem) -> None:
        (x0, x1, y0, y1, g), top, bottom = stacked_bars(x, self.bucket, longs, shorts)
        plot_rects.set_data(x0, x1, y0, y1, g, colors)
        top, bottom = max(top, 1.0), min(bottom, -1.0)
        plot.getViewBox().setYRange(bottom * Y_HEADROOM, top * Y_HEADROOM, padding=0)
