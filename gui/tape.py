"""Panels ▸ Live tape: incoming liquidations above a size, newest first, coloured by side.

Fed by the live controller's batches (``LiveController.events_arrived``: the recorder's events, and a
replay's, which go the same way), so it works while recording and while replaying. Cheap at any rate:
a ``QAbstractTableModel`` over a bounded buffer (``CAPACITY`` rows, the oldest drop off); a batch costs one
row insertion at the top, whatever the rate, and cells are formatted only for the rows on screen.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDockWidget, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableView)

from liqscope.models.alerts import parse_size
from liqscope.models.format import number, usd
from liqscope.models.timeutil import format_time

from .panel_parts import dock_body
from .theme import LONG_COLOR, SHORT_COLOR, display_name

CAPACITY = 2000
SIZES = ("$0", "$10K", "$50K", "$100K", "$250K", "$1M")
DEFAULT_MIN = "$10K"
HEADERS = ("time (UTC)", "exchange", "symbol", "side", "size", "price")


class TapeModel(QAbstractTableModel):
    """Rows newest first: (ts ns, exchange, symbol, side, USD, price), at most ``capacity``, each at least
    ``min_usd``. Raising the size drops the smaller rows held; lowering it applies to new rows."""

    def __init__(self, parent=None, capacity: int = CAPACITY, min_usd: float = 0.0):
        super().__init__(parent)
        self.capacity = capacity
        self.min_usd = float(min_usd)
        self.rows: list[tuple] = []
        self._fonts = {}
        self._colors = {"long": QColor(LONG_COLOR), "short": QColor(SHORT_COLOR)}

    def add(self, frame: pd.DataFrame) -> int:
        """Put the batch's events of at least ``min_usd`` on top (newest first); returns how many."""
        if frame is None or not len(frame):
            return 0
        usd = frame["notional_usd"].to_numpy(float)
        keep = np.flatnonzero(usd >= self.min_usd)
        if not len(keep):
            return 0
        f = frame.iloc[keep]
        ts = f["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        order = np.argsort(-ts, kind="stable")[: self.capacity]
        cols = [f[c].astype(str).to_numpy() for c in ("exchange", "symbol", "side")]
        price = f["price"].to_numpy(float)
        usd = usd[keep]
        new = [(int(ts[i]), cols[0][i], cols[1][i], cols[2][i], float(usd[i]), float(price[i])) for i in order]
        drop = len(self.rows) + len(new) - self.capacity
        if drop > 0:
            first = len(self.rows) - min(drop, len(self.rows))
            self.beginRemoveRows(QModelIndex(), first, len(self.rows) - 1)
            del self.rows[first:]
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
        self.rows[0:0] = new
        self.endInsertRows()
        return len(new)

    def set_min_usd(self, value: float) -> None:
        self.min_usd = float(value)
        kept = [r for r in self.rows if r[4] >= self.min_usd]
        if len(kept) != len(self.rows):
            self.beginResetModel()
            self.rows = kept
            self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()

    # -- Qt model API --------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:  # a tape spans minutes: the time of day (the date is in the tooltip)
                return pd.Timestamp(row[0], tz="UTC").strftime("%H:%M:%S")
            if col == 1:
                return display_name(row[1])
            if col == 4:  # compact, as traders read a tape (exact in the tooltip)
                return usd(row[4])
            if col == 5:
                return number(row[5])
            return row[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{format_time(pd.Timestamp(row[0], tz='UTC'), 'second')} UTC · {display_name(row[1])} "
                    f"{row[2]} · {row[3]} liquidated · ${row[4]:,.2f} at {number(row[5])}")
        if role == Qt.ItemDataRole.UserRole:
            return row[col] if col != 0 else pd.Timestamp(row[0], tz="UTC")
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._colors.get(row[3])
        if role == Qt.ItemDataRole.FontRole and col == 4:
            font = self._fonts.get("bold")
            if font is None:
                font = self._fonts["bold"] = QFont()
                font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole:
            h = Qt.AlignmentFlag.AlignRight if col >= 4 else Qt.AlignmentFlag.AlignLeft
            return int(h | Qt.AlignmentFlag.AlignVCenter)
        return None


class TapePanel(QDockWidget):
    def __init__(self, main, tape: "Tape"):
        super().__init__("Live tape", main)
        self.main = main
        lay = dock_body(self, "panel_tape")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("At least"))
        self.size = QComboBox()
        self.size.setObjectName("tape_min")
        self.size.setEditable(True)
        self.size.addItems(SIZES)
        self.size.setCurrentText(DEFAULT_MIN)
        self.size.setToolTip("Smallest liquidation listed (USD): 50000, 50K, 1M…")
        self.size.currentTextChanged.connect(self._size_changed)
        bar.addWidget(self.size)
        bar.addStretch(1)
        self.count = QLabel()
        self.count.setObjectName("tape_count")
        self.count.setProperty("role", "caption")
        bar.addWidget(self.count)
        clear = QPushButton("Clear")
        clear.setObjectName("tape_clear")
        clear.clicked.connect(self.clear)
        bar.addWidget(clear)
        lay.addLayout(bar)
        self.tape = tape
        self.model = tape.model
        self.view = QTableView()
        self.view.setObjectName("tape_table")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.doubleClicked.connect(self._centre)
        self.view.setToolTip("Newest first; double-click to centre the main chart on a liquidation")
        lay.addWidget(self.view, 1)
        self.model.rowsInserted.connect(self._say)
        self.model.modelReset.connect(self._say)
        self._say()

    def clear(self) -> None:
        self.tape.seen = 0
        self.model.clear()

    def set_min_usd(self, value: float) -> None:
        self.size.setCurrentText(f"${value:,.0f}")

    def _size_changed(self, text: str) -> None:
        try:
            value = 0.0 if text.strip().lstrip("$") in ("0", "") else parse_size(text)
        except ValueError:
            return  # still typing
        self.model.set_min_usd(value)
        self._say()

    def _say(self, *_args) -> None:
        self.count.setText(f"{self.model.rowCount():,} listed of {self.tape.seen:,} received")

    def _centre(self, index) -> None:
        ts = pd.Timestamp(self.model.rows[index.row()][0], tz="UTC")
        v = self.main.state.view
        if v.has_window:
            span = v.end - v.start
            self.main.state.update(start=(ts - span / 2).round("ms"), end=(ts - span / 2).round("ms") + span)


class Tape:
    """Holds the tape (fed from the live path from the start, so opening it mid-replay shows what came);
    Panels ▸ Live tape opens (or raises) its panel."""

    def __init__(self, window):
        self.window = window
        self.panel: TapePanel | None = None
        self.seen = 0
        self.model = TapeModel(window, min_usd=parse_size(DEFAULT_MIN))
        window.live.events_arrived.connect(self.add)
        self.action = QAction("Live &tape", window)
        self.action.setObjectName("panel_tape_action")
        self.action.setToolTip("Incoming liquidations above a size, newest first (recording or replaying)")
        self.action.triggered.connect(self.open)
        menu = getattr(getattr(window, "drilldown", None), "menu", None)
        if menu is not None:
            menu.addAction(self.action)

    def add(self, frame: pd.DataFrame) -> None:
        self.seen += len(frame)
        self.model.add(frame)

    def open(self) -> TapePanel:
        if self.panel is None:
            self.panel = TapePanel(self.window, self)
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.panel.show()
        self.panel.raise_()
        return self.panel


def install_tape(window) -> Tape:
    return Tape(window)
