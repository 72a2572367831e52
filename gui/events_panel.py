"""Panels ▸ Events: the cascades (models/cascades.py) in view or in all history, shaded on the main charts.

Detection runs on the one worker type (``gui/worker.py``), never on the GUI thread: on a dataset that is a
part of a large store it asks the store (all history, read per exchange-month), else the dataset. A
complete dataset is searched once (all history) and the view filters that list; a store is asked again for
the view when it settles. The table sorts on any column; a double-click (or Jump to) sets the main view
around the cascade; Export CSV writes the table as shown (models/export.py conventions).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMessageBox,
                               QPushButton)

from liqscope.models.cascade_search import find_cascades
from liqscope.models.export import ExportError, default_name, write_csv
from liqscope.models.format import usd
from liqscope.models.timeutil import format_duration

from .panel_parts import dock_body, make_table
from .table_model import Column, DataFrameModel, percent
from .theme import CASCADE_SHADE, CASCADE_SHADE_ALPHA, display_name
from .worker import Worker

IN_VIEW, ALL = "view", "all"
LIMIT = 500            # cascades listed at most (largest first)
STORE_ALL_LIMIT = 100  # ... of all history of a large store: each listed cascade's events are read (the 100
                       # largest of the 100M-event benchmark take ~15 s, 500 take ~45 s)
SETTLE_MS = 300        # a moving view asks a store again once it has been still this long
LOOKBACK = pd.Timedelta(days=1)  # a cascade overlapping the view started at most this long before it
MIN_PAD = pd.Timedelta(minutes=10)  # jump-to: at least this much either side of the cascade


def _signed_pct(x: float) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:+.2%}"


def _assets(joined: str) -> str:
    """A few assets by name; a market-wide cascade (dozens) by count, so the column stays narrow."""
    names = joined.split(",") if joined else []
    return joined if len(names) <= 3 else f"{len(names)} assets"


# cascades are found per minute: minutes and compact USD keep the dock narrow (the CSV has exact values)
COLUMNS = [
    Column("start", "start (UTC)", lambda t: pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")),
    Column("duration_s", "duration", lambda s: format_duration(int(s)), True),
    Column("assets", "assets", _assets),
    Column("total_usd", "total", usd, True),
    Column("short_share", "shorts", percent, True),
    Column("leader", "leader", lambda x: display_name(x) if x else "–"),
    Column("lead_s", "lead", lambda s: "" if s is None or not np.isfinite(s) else f"+{s:.0f} s", True),
    Column("price_move", "price move", _signed_pct, True),
    Column("count", "events", lambda n: f"{int(n):,}", True),
]


def cascade_frame(found) -> pd.DataFrame:
    """One row per cascade: the table's columns (raw values), plus ``end`` and the main asset for jump-to."""
    rows = {c.key: [] for c in COLUMNS}
    rows["end"], rows["main_asset"], rows["price_text"] = [], [], []
    for c in found:
        rows["start"].append(c.start)
        rows["end"].append(c.end)
        rows["duration_s"].append(float(c.duration_s))
        rows["assets"].append(",".join(c.assets))
        rows["total_usd"].append(float(c.total_usd))
        rows["short_share"].append(float(c.short_share))
        rows["leader"].append(c.leader or "")
        rows["lead_s"].append(np.nan if c.lead_s is None else float(c.lead_s))
        rows["price_move"].append(np.nan if c.price is None else float(c.price.close_pct))
        rows["count"].append(int(c.count))
        rows["main_asset"].append(c.parts[0].asset if c.parts else (c.assets[0] if c.assets else ""))
        p = c.price
        rows["price_text"].append("" if p is None else f"{p.asset}@{p.exchange}: {p.open:,.6g} → {p.extreme:,.6g} "
                                                       f"→ {p.close:,.6g}")
    out = pd.DataFrame(rows)
    if not len(out):
        out = out.astype({"start": "datetime64[ns, UTC]", "end": "datetime64[ns, UTC]", "duration_s": float,
                          "total_usd": float, "short_share": float, "lead_s": float, "price_move": float,
                          "count": "int64"})
    return out


def detection_source(dataset):
    """What find_cascades reads: the whole store behind a part of a large store, else the dataset."""
    return dataset.part.windows.store if dataset.part is not None else dataset


class EventsPanel(QDockWidget):
    def __init__(self, main):
        super().__init__("Events: cascades", main)
        self.main = main
        lay = dock_body(self, "panel_events")
        self.found: list = []           # what the last detection returned (all history, or the view's)
        self.found_for: tuple | None = None  # (id(dataset), scope key) it answers
        self._limit = LIMIT                  # how many it asked for
        self.regions: list[pg.LinearRegionItem] = []
        self.worker = Worker(self, name="liqscope-cascades")
        self.worker.finished.connect(self._detected)
        self.worker.failed.connect(self._failed)
        self._pending_key: tuple | None = None
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.refresh)

        bar = QHBoxLayout()
        self.scope = QComboBox()
        self.scope.setObjectName("events_scope")
        self.scope.addItem("In view", IN_VIEW)
        self.scope.addItem("All history", ALL)
        self.scope.setToolTip("Cascades that start in the main window's view, or in all the data")
        self.scope.currentIndexChanged.connect(self.refresh)
        bar.addWidget(self.scope)
        self.shade_box = QCheckBox("Shade on charts")
        self.shade_box.setObjectName("events_shade")
        self.shade_box.setChecked(True)
        self.shade_box.toggled.connect(self.shade)
        bar.addWidget(self.shade_box)
        bar.addStretch(1)
        self.jump_button = QPushButton("Jump to")
        self.jump_button.setObjectName("events_jump")
        self.jump_button.setToolTip("Set the main view around the selected cascade (or double-click a row)")
        self.jump_button.clicked.connect(self._jump_selected)
        bar.addWidget(self.jump_button)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setObjectName("events_export")
        self.export_button.clicked.connect(self.ask_export)
        bar.addWidget(self.export_button)
        lay.addLayout(bar)
        self.status = QLabel()
        self.status.setObjectName("events_status")
        self.status.setProperty("role", "caption")
        lay.addWidget(self.status)
        self.model = DataFrameModel(COLUMNS, self)
        self.table = make_table(self.model, "events_table", sort_column=self.model_column("total_usd"))
        self.table.doubleClicked.connect(lambda index: self.jump_to(index.row()))
        self.table.setToolTip("Double-click a cascade to set the main view around it")
        lay.addWidget(self.table, 1)

        main.state.changed.connect(self._on_state)
        main.hub.dataset_changed.connect(lambda _ds: self.refresh())
        main.hub.data_appended.connect(self._settle.start)
        self.refresh()

    # -- detection -------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.scope.currentData()

    def _key(self) -> tuple:
        """What the list must answer: a complete dataset is searched once; a store per view."""
        ds = self.main.dataset
        n = len(ds.liquidations)
        if ds.part is None:
            return (id(ds), n, ALL)
        if self.mode == ALL:
            return (id(ds.part.windows.store), ALL)
        v = self.main.state.view
        return (id(ds.part.windows.store), v.start, v.end)

    def refresh(self) -> None:
        """Show what is known for the view; detect on the worker what is not."""
        self._settle.stop()
        key = self._key()
        if key == self.found_for:
            self._show()
            return
        if key == self._pending_key and self.worker.running:
            return
        self._pending_key = key
        ds = self.main.dataset
        source = detection_source(ds)
        v = self.main.state.view
        # cascades that began before the view but run into it are in view too (at most LOOKBACK long)
        window = {} if key[-1] == ALL else {"start": v.start - LOOKBACK, "end": v.end}
        self.status.setText("Finding cascades…" + (" (all history of the store: this can take a while)"
                                                    if ds.part is not None and key[-1] == ALL else ""))
        limit = STORE_ALL_LIMIT if ds.part is not None and key[-1] == ALL else LIMIT
        self._limit = limit
        self.worker.start(lambda task: (key, find_cascades(source, limit=limit, **window)))

    def _detected(self, result) -> None:
        key, found = result
        self.found, self.found_for = found, key
        self._pending_key = None
        if key != self._key():  # the view moved on meanwhile
            self.refresh()
            return
        self._show()

    def _failed(self, exc: Exception) -> None:
        self._pending_key = None
        self.status.setText(f"Could not find cascades: {exc}")

    def _on_state(self, names: frozenset) -> None:
        if names & {"start", "end"}:
            if self.main.dataset.part is not None and self.mode == IN_VIEW:
                self._settle.start()
            else:
                self._show()
        elif "theme" in names:
            self.shade()

    # -- the list ----------------------------------------------------------------
    def listed(self) -> list:
        """The cascades the table shows: those overlapping the view (In view), else all found."""
        if self.mode == ALL:
            return list(self.found)
        v = self.main.state.view
        if not v.has_window:
            return []
        return [c for c in self.found if c.start < v.end and c.end > v.start]

    def _show(self) -> None:
        shown = self.listed()
        self.model.set_frame(cascade_frame(shown))
        self.table.resizeColumnsToContents()  # whole start times and totals (the user may widen them after)
        total = sum(c.total_usd for c in shown)
        where = "in view" if self.mode == IN_VIEW else "in all history"
        more = f" (the largest {self._limit})" if len(self.found) >= self._limit else ""
        self.status.setText(f"{len(shown):,} cascade{'s' if len(shown) != 1 else ''} {where}{more}"
                            + (f", {usd(total)} in all" if shown else ""))
        self.shade()

    def model_column(self, key: str) -> int:
        return [c.key for c in COLUMNS].index(key)

    # -- jump-to ---------------------------------------------------------------
    def _jump_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if rows:
            self.jump_to(rows[0].row())
        elif self.model.rowCount():
            self.jump_to(0)

    def jump_to(self, view_row: int) -> None:
        """Main view around the cascade at ``view_row`` (its length either side, at least 10 min); the price
        pane shows its main asset."""
        row = self.model.row(view_row)
        start, end = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
        pad = max(end - start, MIN_PAD)
        changes = {"start": start - pad, "end": end + pad}
        if row["main_asset"] in self.main.dataset.assets:
            changes["asset"] = row["main_asset"]
        self.main.state.update(**changes)
        self.main.state.flush()

    # -- shading ---------------------------------------------------------------
    def shade(self) -> None:
        """A translucent band per listed cascade that overlaps the view, on the price and liquidation plots."""
        for item in self.regions:
            item.getViewBox() and item.getViewBox().removeItem(item)
        self.regions = []
        if not self.shade_box.isChecked() or not self.isVisible():
            return
        v = self.main.state.view
        if not v.has_window:
            return
        color = QColor(CASCADE_SHADE)
        color.setAlpha(CASCADE_SHADE_ALPHA)
        origin = self.main.origin_s
        for c in self.listed():
            if c.end <= v.start or c.start >= v.end:
                continue
            x0, x1 = c.start.value / 1e9 - origin, c.end.value / 1e9 - origin
            for plot in (self.main.price.plot, self.main.liq.plot):
                region = pg.LinearRegionItem((x0, x1), movable=False, brush=pg.mkBrush(color),
                                             pen=pg.mkPen(None))
                region.setZValue(-50)
                region.setToolTip(f"cascade {c.start:%Y-%m-%d %H:%M} UTC, {', '.join(c.assets)}, {usd(c.total_usd)}")
                plot.addItem(region, ignoreBounds=True)
                self.regions.append(region)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.shade()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.shade()

    # -- export ----------------------------------------------------------------
    def table_frame(self) -> pd.DataFrame:
        """The table as shown: its columns (raw values), rows in display order."""
        keys = [c.key for c in COLUMNS]
        frame = self.model.frame
        if not len(frame):
            return frame.reindex(columns=keys)
        order = [int(self.model.row(i).name) for i in range(self.model.rowCount())]
        return frame.loc[order, keys].reset_index(drop=True)

    def export_name(self) -> str:
        v = self.main.state.view
        if self.mode == ALL or not v.has_window:
            r = self.main.dataset.time_range()
            start, end = (r if r else (v.start, v.end))
            return default_name(["cascades"], start, end, "csv")
        return default_name(["cascades"], v.start, v.end, "csv")

    def export_csv(self, path) -> int:
        return write_csv(self.table_frame(), path)

    def ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export cascades as CSV", self.export_name(), "CSV (*.csv)")
        if not path:
            return
        try:
            n = self.export_csv(path)
        except (ExportError, OSError) as exc:
            QMessageBox.warning(self, "Export CSV", str(exc))
            return
        self.main.statusBar().showMessage(f"exported {n:,} cascades to {path}", 10_000)


class EventsPanels:
    """Panels ▸ Events opens (or raises) the one Events panel."""

    def __init__(self, window):
        self.window = window
        self.panel: EventsPanel | None = None
        self.action = QAction("&Events (cascades)", window)
        self.action.setObjectName("panel_events_action")
        self.action.setToolTip("Liquidation cascades in view or in all history; jump to one, export CSV")
        self.action.triggered.connect(self.open)
        menu = getattr(getattr(window, "drilldown", None), "menu", None)
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.action)

    def open(self) -> EventsPanel:
        if self.panel is None:
            self.panel = EventsPanel(self.window)
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.panel.show()
        self.panel.raise_()
        return self.panel


def install_events_panel(window) -> EventsPanels:
    """Panels ▸ Events in a main window (after install_drilldown, whose Panels menu it extends)."""
    return EventsPanels(window)
