"""Annotations on the main charts: price levels, event marks and shaded ranges; the Annotate menu, the
mouse modes, the dialog and the Annotations panel.

* **Drawn** on the price pane (levels: a horizontal line with its label at the right; events: a
  vertical line with its note; ranges: a shaded band with its note) and, for events and ranges, on the
  liquidation pane too. They are chart items, so exported images (File ▸ Export PNG, Copy image,
  ``liqscope export --png``) show them. A level above or below the visible prices is named at that
  edge of the pane (▲/▼) instead of vanishing.
* **Added** with the mouse (Annotate ▸ Level: click on the price chart; Event: click on a chart;
  Range: drag across a chart, or click its start then its end; Esc or a right click cancels) or from
  the dialog (Annotate ▸ Add…); the mouse only places them: the dialog that follows takes the text.
* **Listed** in the Annotations panel (Annotate ▸ Annotations panel, or Panels ▸ Annotations): jump
  to one (double-click: the view is set around it; a level shows its asset), edit its text in place
  or with Edit…, delete it.
* **Kept** in the store's ``annotations`` table (models/store/annotation_table.py): every save and
  delete runs on the one worker type, one after the other, never on the GUI thread. The demo's seed
  events (resources/demo/annotations.json) are shown with the demo, read-only.

Colours: an annotation carries a colour *role*; :func:`role_color` turns it into one of the theme's colours.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QDockWidget, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMenu, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from liqscope.models import annotations as an
from liqscope.models.annotations import Annotation, AnnotationError
from liqscope.models.timeutil import format_time

from .panel_parts import dock_body
from .axis import from_x
from .layout import LEVEL_LABEL_AT
from .theme import PRICE_LINE_COLOR, STATUS_OK, STATUS_WAIT, THEMES, Theme
from .worker import Worker

RANGE_ALPHA = 40        # of 255: a shaded range keeps candles and bars readable through it
LABEL_FILL_ALPHA = 190  # label backgrounds: the note stays legible over candles
MIN_DRAG_PX = 4         # a shorter drag across a chart is a click (range: its start)
MODES = ("level", "event", "range")
MODE_TEXT = {"level": "Click on the price chart to place a level",
             "event": "Click on a chart to mark an event",
             "range": "Drag across a chart (or click its start, then its end) to mark a range"}


def role_color(role: str, theme: Theme) -> str:
    """The theme's colour for an annotation's colour role (the one place roles become colours)."""
    return {"note": theme.foreground, "resistance": STATUS_WAIT, "support": STATUS_OK,
            "info": PRICE_LINE_COLOR, "muted": theme.crosshair}.get(role, theme.foreground)


def _round_price(p: float) -> float:
    """A clicked price at a readable precision (5 significant digits: 101,234.5 -> 101,230)."""
    if not math.isfinite(p) or p <= 0:
        return p
    digits = 4 - int(math.floor(math.log10(p)))
    return round(p, digits) if digits > 0 else float(round(p, digits))


def _level_label(a: Annotation) -> str:
    return f"{a.text}  {a.price:,.8g}" if a.text else f"{a.price:,.8g}"


# -- drawing ----------------------------------------------------------------------
class AnnotationLayer:
    """The chart items of the annotations shown now (drawn again whenever they or the view's asset,
    exchange, scale, theme or data change; pans and zooms only re-place the edge tags)."""

    def __init__(self, window):
        self.window = window
        self.drawn: dict[str, list] = {}   # annotation id -> its chart items
        self.edges: dict[str, pg.TextItem] = {}  # level id -> its ▲/▼ tag when off the visible prices
        self._levels: dict[str, float] = {}  # level id -> y drawn at (log10 on a log scale)
        window.price.vb.sigRangeChanged.connect(lambda *_: self.place_edges())

    def clear(self) -> None:
        for items in list(self.drawn.values()) + [[t] for t in self.edges.values()]:
            for item in items:
                vb = item.getViewBox() if hasattr(item, "getViewBox") else None
                if vb is not None:
                    vb.removeItem(item)
                elif item.scene() is not None:
                    item.scene().removeItem(item)
        self.drawn, self.edges, self._levels = {}, {}, {}

    def draw(self, items: list[Annotation]) -> None:
        self.clear()
        w = self.window
        v = w.state.view
        theme = THEMES[v.theme]
        origin = w.origin_s
        fill = QColor(theme.panel)
        fill.setAlpha(LABEL_FILL_ALPHA)
        price_plot, liq_plot = w.price.plot, w.liq.plot
        for a in items:
            color = role_color(a.color, theme)
            parts: list = []
            if a.kind == "level":
                if a.asset != v.asset or (a.exchange and a.exchange != v.exchange):
                    continue
                y = math.log10(a.price) if v.log_scale else a.price
                line = pg.InfiniteLine(pos=y, angle=0, movable=False, pen=pg.mkPen(color, width=2),
                                       label=_level_label(a),
                                       labelOpts={"position": LEVEL_LABEL_AT, "anchors": [(1, 1), (1, 1)], "color": color,
                                                  "fill": pg.mkBrush(fill)})
                line.setZValue(30)
                line.label.setZValue(31)
                line.setToolTip(f"{a.text or 'level'}: {a.where()}")
                price_plot.addItem(line, ignoreBounds=True)
                parts.append(line)
                tag = pg.TextItem("", color=color, fill=pg.mkBrush(fill), anchor=(1, 0))
                tag.setZValue(31)
                tag.hide()
                price_plot.addItem(tag, ignoreBounds=True)
                self.edges[a.id] = tag
                self._levels[a.id] = y
            elif a.kind == "event":
                x = a.at.value / 1e9 - origin
                for plot, label in ((price_plot, True), (liq_plot, False)):
                    opts = {"position": 0.97, "anchors": [(0, 0), (1, 0)], "color": color, "fill": pg.mkBrush(fill)}
                    line = pg.InfiniteLine(pos=x, angle=90, movable=False,
                                           pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine),
                                           label=(a.text or format_time(a.at, "iso")) if label else None,
                                           labelOpts=opts if label else None)
                    line.setZValue(30)
                    line.setToolTip(f"{a.text or 'event'}: {a.where()}")
                    plot.addItem(line, ignoreBounds=True)
                    parts.append(line)
            else:
                x0, x1 = a.start.value / 1e9 - origin, a.end.value / 1e9 - origin
                shade = QColor(color)
                shade.setAlpha(RANGE_ALPHA)
                for plot, label in ((price_plot, True), (liq_plot, False)):
                    region = pg.LinearRegionItem((x0, x1), movable=False, brush=pg.mkBrush(shade),
                                                 pen=pg.mkPen(color, width=1))
                    region.setZValue(-40)
                    region.setToolTip(f"{a.text or 'range'}: {a.where()}")
                    if label and a.text:
                        pg.InfLineLabel(region.lines[0], text=a.text, position=0.9, anchors=[(0, 0), (0, 0)],
                                        color=color, fill=pg.mkBrush(fill))
                    plot.addItem(region, ignoreBounds=True)
                    parts.append(region)
            self.drawn[a.id] = parts
        self.place_edges()

    def place_edges(self) -> None:
        """A level above (below) the visible prices is named at the pane's top (bottom) edge, where its label
    would be (left of the last-price tag, which owns the right edge)."""
        if not self.edges:
            return
        (x0, x1), (y0, y1) = self.window.price.vb.viewRange()
        for aid, tag in self.edges.items():
            y = self._levels[aid]
            line = self.drawn[aid][0]
            if y0 <= y <= y1:
                tag.hide()
                continue
            above = y > y1
            tag.setText(("▲ " if above else "▼ ") + line.label.format)
            tag.setAnchor((1, 0) if above else (1, 1))
            tag.setPos(x0 + (x1 - x0) * LEVEL_LABEL_AT, y1 if above else y0)
            tag.show()

    def items_of(self, annotation_id: str) -> list:
        return self.drawn.get(annotation_id, [])


# -- the dialog ---------------------------------------------------------------------
class AnnotationDialog(QDialog):
    """Add or edit one annotation: its kind's fields, the text and the colour role. Accepting it checks
    the fields (one-line errors shown in the dialog) and sets :attr:`annotation`."""

    def __init__(self, parent, *, kind: str = "level", base: Annotation | None = None,
                 assets: list[str] = (), exchanges: list[str] = (), fixed_kind: bool = False, **prefill):
        super().__init__(parent)
        self.setObjectName("annotation_dialog")
        self.base = base
        self.annotation: Annotation | None = None
        self.setWindowTitle("Edit annotation" if base else "Add annotation")
        form = QFormLayout()
        self.kind = QComboBox()
        self.kind.setObjectName("annotation_kind")
        for k in MODES:
            self.kind.addItem({"level": "Price level", "event": "Event mark", "range": "Time range"}[k], k)
        self.kind.setCurrentIndex(MODES.index(base.kind if base else kind))
        self.kind.setEnabled(not (base or fixed_kind))
        form.addRow("Kind", self.kind)
        self.asset = QComboBox()
        self.asset.setEditable(True)
        self.asset.addItems(list(assets))
        self.price = QLineEdit()
        self.exchange = QComboBox()
        self.exchange.addItem("any exchange", None)
        for e in exchanges:
            self.exchange.addItem(e, e)
        self.at, self.start, self.end = QLineEdit(), QLineEdit(), QLineEdit()
        for widget, tip in ((self.at, "ISO-8601 UTC, e.g. 2025-05-09T16:43Z"), (self.start, "inclusive, UTC"),
                            (self.end, "exclusive, UTC")):
            widget.setPlaceholderText(tip)
        self.rows = {"level": [("Asset", self.asset), ("Price", self.price), ("Exchange", self.exchange)],
                     "event": [("At (UTC)", self.at)], "range": [("Start (UTC)", self.start), ("End (UTC)", self.end)]}
        for rows in self.rows.values():
            for label, widget in rows:
                form.addRow(label, widget)
        self.text = QLineEdit()
        self.text.setObjectName("annotation_text")
        self.text.setMaxLength(an.MAX_TEXT)
        self.text.setPlaceholderText("e.g. $110K resistance")
        form.addRow("Text", self.text)
        self.color = QComboBox()
        self.color.addItems(list(an.ROLES))
        form.addRow("Colour", self.color)
        self.error = QLabel()
        self.error.setObjectName("annotation_error")
        self.error.setWordWrap(True)
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self._form = form
        self.kind.currentIndexChanged.connect(self._show_rows)
        if base is not None:
            prefill = {"asset": base.asset, "price": base.price, "exchange": base.exchange, "at": base.at,
                       "start": base.start, "end": base.end, "text": base.text, "color": base.color}
        self.fill(**prefill)
        self._show_rows()

    def fill(self, *, asset=None, price=None, exchange=None, at=None, start=None, end=None, text=None,
             color=None) -> None:
        if asset is not None:
            self.asset.setCurrentText(str(asset))
        if price is not None:
            self.price.setText(f"{price:.10g}")
        if exchange is not None:
            i = self.exchange.findData(exchange)
            self.exchange.setCurrentIndex(max(i, 0))
        for widget, value in ((self.at, at), (self.start, start), (self.end, end)):
            if value is not None:
                widget.setText(format_time(value, "iso"))
        if text is not None:
            self.text.setText(text)
        self.color.setCurrentText(color or an.DEFAULT_ROLE[self.kind_name])

    @property
    def kind_name(self) -> str:
        return self.kind.currentData()

    def _show_rows(self) -> None:
        for k, rows in self.rows.items():
            for _label, widget in rows:
                self._form.setRowVisible(widget, k == self.kind_name)
        if self.base is None and self.color.currentText() in an.DEFAULT_ROLE.values():
            self.color.setCurrentText(an.DEFAULT_ROLE[self.kind_name])

    def build(self) -> Annotation:
        k = self.kind_name
        where = {"level": dict(asset=self.asset.currentText(), price=self.price.text().replace(",", "") or None,
                               exchange=self.exchange.currentData()),
                 "event": dict(at=self.at.text() or None),
                 "range": dict(start=self.start.text() or None, end=self.end.text() or None)}[k]
        if self.base is not None:
            return self.base.edited(text=self.text.text(), color=self.color.currentText(), **where)
        return an.make(k, self.text.text(), color=self.color.currentText(), **where)

    def accept(self) -> None:
        try:
            self.annotation = self.build()
        except AnnotationError as exc:
            self.error.setText(f"⚠ {exc}")
            self.error.show()
            return
        super().accept()


# -- the panel ------------------------------------------------------------------------
COLUMNS = ("Kind", "Where", "Text", "Colour")


class AnnotationsPanel(QDockWidget):
    """Every annotation (the store's, and the demo's while it is shown): jump to, edit, delete."""

    def __init__(self, ctl: "Annotations"):
        super().__init__("Annotations", ctl.window)
        self.ctl = ctl
        lay = dock_body(self, "panel_annotations")
        bar = QHBoxLayout()
        add = QPushButton("Add ▾")
        add.setObjectName("annotations_add")
        menu = QMenu(add)
        for k in MODES:
            act = menu.addAction(f"{k.capitalize()}…")
            act.triggered.connect(lambda _=False, kind=k: ctl.open_dialog(kind))
        add.setMenu(menu)
        bar.addWidget(add)
        self.buttons = {}
        for name, text, slot, tip in (
                ("jump", "Jump to", self._jump_selected, "Set the main view around it (or double-click a row)"),
                ("edit", "Edit…", self._edit_selected, "Change its text, place or colour"),
                ("delete", "Delete", self._delete_selected, "Remove it from the charts and the store")):
            b = QPushButton(text)
            b.setObjectName(f"annotations_{name}")
            b.setToolTip(tip)
            b.clicked.connect(slot)
            bar.addWidget(b)
            self.buttons[name] = b
        bar.addStretch(1)
        lay.addLayout(bar)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("annotations_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setSectionResizeMode(2, self.table.horizontalHeader().ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(lambda row, col: col != 2 and self.jump(row))
        self.table.itemChanged.connect(self._text_edited)
        self.table.setToolTip("Double-click a row to jump to it; double-click a text (or F2) to edit it")
        lay.addWidget(self.table, 1)
        self.status = QLabel()
        self.status.setProperty("role", "caption")
        lay.addWidget(self.status)
        self.ids: list[str] = []
        self.refresh()

    def refresh(self) -> None:
        items = self.ctl.listed()
        self.ids = [a.id for a in items]
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(len(items))
            for row, a in enumerate(items):
                values = (a.kind + (" (demo)" if a.readonly else ""), a.where(), a.text, a.color)
                for col, value in enumerate(values):
                    item = QTableWidgetItem(value)
                    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                    if col == 2 and not a.readonly:
                        flags |= Qt.ItemFlag.ItemIsEditable
                    item.setFlags(flags)
                    item.setData(Qt.ItemDataRole.UserRole, a.id)
                    self.table.setItem(row, col, item)
            self.table.resizeColumnsToContents()
        finally:
            self.table.blockSignals(False)
        demo = sum(a.readonly for a in items)
        self.status.setText(f"{len(items) - demo} in the store" + (f" · {demo} from the demo (read-only)" if demo else ""))

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.ids[rows[0].row()] if rows else None

    def jump(self, row: int) -> None:
        if 0 <= row < len(self.ids):
            self.ctl.jump_to(self.ids[row])

    def _jump_selected(self) -> None:
        aid = self.selected_id()
        if aid:
            self.ctl.jump_to(aid)

    def _edit_selected(self) -> None:
        aid = self.selected_id()
        if aid:
            self.ctl.open_dialog(edit=aid)

    def _delete_selected(self) -> None:
        aid = self.selected_id()
        if aid:
            self.ctl.delete(aid)

    def _text_edited(self, item: QTableWidgetItem) -> None:
        if item.column() != 2:
            return
        aid = item.data(Qt.ItemDataRole.UserRole)
        if not self.ctl.edit(aid, text=item.text()):
            self.refresh()  # refused (shown in the status bar): back to what is held


# -- the controller ----------------------------------------------------------------------
class Annotations(QObject):
    """Holds the annotations, draws them, adds them from the mouse or the dialog, keeps them in the store."""

    changed = Signal()   # the list changed (loaded, added, edited, deleted)
    idle = Signal()      # every queued store operation has finished

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.items: dict[str, Annotation] = {}  # the store's, in order
        self.demo: list[Annotation] = []        # the demo's (read-only), loaded once
        self.visible = True
        self.mode: str | None = None
        self.dialog: AnnotationDialog | None = None
        self.panel: AnnotationsPanel | None = None
        self.layer = AnnotationLayer(window)
        self._press: tuple | None = None         # (plot name, view point, widget pos) of a press in a mode
        self._range_start: float | None = None   # x of a range's first click
        self._preview: list[pg.LinearRegionItem] = []
        self._ops: deque = deque()
        self._busy = False
        self._current: tuple | None = None
        self.worker = Worker(self, name="liqscope-annotations")
        self.worker.finished.connect(self._op_finished)
        self.worker.failed.connect(self._op_failed)
        self.worker.cancelled.connect(lambda: self._op_finished(None))
        self._build_menu()
        self.escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), window, self.cancel_mode)
        self.escape.setEnabled(False)
        window.graphics.viewport().installEventFilter(self)
        window.hub.dataset_changed.connect(lambda _ds: self.redraw())
        window.state.changed.connect(self._on_state)
        self.changed.connect(self.redraw)
        self.changed.connect(lambda: self.panel is not None and self.panel.refresh())
        self.load()

    # -- what is shown ------------------------------------------------------------------
    def listed(self) -> list[Annotation]:
        """The store's annotations, then the demo's while the demo is shown."""
        out = list(self.items.values())
        if self.window.dataset.is_demo:
            if not self.demo:
                try:
                    self.demo = an.demo_annotations()
                except AnnotationError as exc:
                    self._say(f"Demo annotations: {exc}")
            out += self.demo
        return out

    def get(self, annotation_id: str) -> Annotation | None:
        return self.items.get(annotation_id) or next((a for a in self.listed() if a.id == annotation_id), None)

    def redraw(self) -> None:
        if not self.visible:
            self.layer.clear()
            return
        self.layer.draw(self.listed())

    def _on_state(self, names: frozenset) -> None:
        if names & {"asset", "exchange", "log_scale", "theme"}:
            self.redraw()

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        self.redraw()

    # -- store (one operation at a time, on the worker) ----------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    def _submit(self, fn: Callable[[], object], what: str, done: Callable[[object], None] | None = None) -> None:
        self._ops.append((fn, what, done))
        if not self._busy:
            self._next()

    def _next(self) -> None:
        if not self._ops:
            self._busy = False
            self._current = None
            self.idle.emit()
            return
        self._busy = True
        fn, what, done = self._current = self._ops.popleft()
        self.worker.start(lambda task: fn())

    def _op_finished(self, result) -> None:
        current = getattr(self, "_current", None)
        if current is not None and current[2] is not None:
            current[2](result)
        self._next()

    def _op_failed(self, exc: Exception) -> None:
        current = getattr(self, "_current", None)
        self._say(f"Annotations: could not {current[1] if current else 'finish'}: {exc}")
        if current is not None and current[1] != "read the store's annotations":
            self._ops.append((_load, "read the store's annotations", self._loaded))  # show what the store holds
        self._next()

    def load(self) -> None:
        self._submit(_load, "read the store's annotations", self._loaded)

    def _loaded(self, items) -> None:
        self.items = {a.id: a for a in items}
        self.changed.emit()

    def add(self, a: Annotation) -> Annotation:
        """Draw ``a`` now and save it in the store (replacing one with its id)."""
        self.items[a.id] = a
        self.changed.emit()
        self._submit(lambda: _save(a), f"save annotation {a.id}")
        self._say(f"Annotation added: {a.kind} {a.where()}" + (f" “{a.text}”" if a.text else ""))
        return a

    def edit(self, annotation_id: str, **changes) -> bool:
        a = self.items.get(annotation_id)
        if a is None:
            self._say("The demo's annotations are read-only" if self.get(annotation_id) else
                      f"No annotation {annotation_id}")
            return False
        try:
            new = a.edited(**changes)
        except AnnotationError as exc:
            self._say(f"Annotation not changed: {exc}")
            return False
        if new != a:
            self.items[annotation_id] = new
            self.changed.emit()
            self._submit(lambda: _save(new), f"save annotation {new.id}")
        return True

    def delete(self, annotation_id: str) -> bool:
        if annotation_id not in self.items:
            self._say("The demo's annotations are read-only" if self.get(annotation_id) else
                      f"No annotation {annotation_id}")
            return False
        del self.items[annotation_id]
        self.changed.emit()
        self._submit(lambda: _delete(annotation_id), f"delete annotation {annotation_id}")
        self._say("Annotation deleted")
        return True

    # -- jump-to -----------------------------------------------------------------------------
    def jump_to(self, annotation_id: str) -> None:
        """The main view around an event or range (half its length either side, at least 30 min); a level
        shows its asset (and exchange) in the window shown now."""
        a = self.get(annotation_id)
        if a is None:
            return
        state = self.window.state
        window = an.window_around(a)
        if window is not None:
            state.update(start=window[0], end=window[1])
        else:
            changes = {"asset": a.asset} if a.asset in self.window.dataset.assets else {}
            if a.exchange and a.exchange in self.window.dataset.exchanges:
                changes["exchange"] = a.exchange
            state.update(**changes)
        state.flush()

    # -- menu ----------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        w = self.window
        menu = QMenu("A&nnotate", w)
        menu.setObjectName("annotate_menu")
        self.mode_actions: dict[str, QAction] = {}
        for k, text in (("level", "&Level (click on the price chart)"), ("event", "&Event (click on a chart)"),
                        ("range", "&Range (drag across a chart)")):
            act = QAction(text, w)
            act.setObjectName(f"annotate_{k}")
            act.setCheckable(True)
            act.setToolTip(MODE_TEXT[k])
            act.triggered.connect(lambda on, kind=k: self.set_mode(kind if on else None))
            menu.addAction(act)
            self.mode_actions[k] = act
        menu.addSeparator()
        self.dialog_action = QAction("&Add…", w)
        self.dialog_action.setObjectName("annotate_dialog")
        self.dialog_action.triggered.connect(lambda: self.open_dialog("level"))
        menu.addAction(self.dialog_action)
        self.panel_action = QAction("Annotations &panel", w)
        self.panel_action.setObjectName("annotate_panel")
        self.panel_action.triggered.connect(self.open_panel)
        menu.addAction(self.panel_action)
        self.show_action = QAction("&Show on charts", w)
        self.show_action.setObjectName("annotate_show")
        self.show_action.setCheckable(True)
        self.show_action.setChecked(True)
        self.show_action.toggled.connect(self.set_visible)
        menu.addAction(self.show_action)
        bar = w.menuBar()
        panels = getattr(getattr(w, "drilldown", None), "menu", None)
        help_menu = getattr(w, "help_menu", None)
        before = next((m.menuAction() for m in (panels, help_menu)  # before Panels (Panels, Help stay last)
                       if m is not None and m.menuAction() in bar.actions()), None)
        if before is not None:
            bar.insertMenu(before, menu)
        else:
            bar.addMenu(menu)
        if panels is not None:
            act = panels.addAction("A&nnotations")
            act.setObjectName("panel_annotations_action")
            act.triggered.connect(self.open_panel)
        self.menu = menu

    def open_panel(self) -> AnnotationsPanel:
        if self.panel is None:
            self.panel = AnnotationsPanel(self)
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.panel.refresh()
        self.panel.show()
        self.panel.raise_()
        return self.panel

    # -- the dialog -------------------------------------------------------------------------------
    def open_dialog(self, kind: str = "level", *, edit: str | None = None, fixed_kind: bool = False,
                    **prefill) -> AnnotationDialog | None:
        """The add (or edit) dialog, window-modal, not blocking: on OK the annotation is added or replaced."""
        w = self.window
        base = None
        if edit is not None:
            base = self.items.get(edit)
            if base is None:
                self._say("The demo's annotations are read-only" if self.get(edit) else f"No annotation {edit}")
                return None
        elif not prefill:
            prefill = self._prefill(kind)
        if self.dialog is not None:
            self.dialog.reject()
        dialog = AnnotationDialog(w, kind=kind, base=base, assets=w.dataset.assets, exchanges=w.dataset.exchanges,
                                  fixed_kind=fixed_kind, **prefill)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.accepted.connect(lambda d=dialog: self.add(d.annotation))
        dialog.finished.connect(lambda _r, d=dialog: self._dialog_closed(d))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _dialog_closed(self, dialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    def _prefill(self, kind: str) -> dict:
        """Where a new annotation starts: the view's asset at its last price, the view's middle, its middle third."""
        v = self.window.state.view
        out: dict = {}
        if kind == "level":
            out["asset"] = v.asset
            stats = self.window.price.window_stats(v.start, v.end) if v.has_window else None
            last = getattr(stats, "last", None) if stats is not None else None
            if last is not None and math.isfinite(last):
                out["price"] = _round_price(float(last))
        elif v.has_window:
            third = (v.end - v.start) / 3
            if kind == "event":
                out["at"] = (v.start + (v.end - v.start) / 2).floor("min")
            else:
                out["start"], out["end"] = (v.start + third).floor("min"), (v.end - third).floor("min")
        return out

    # -- mouse modes ---------------------------------------------------------------------------------
    def set_mode(self, mode: str | None) -> None:
        """Arm the mouse to place a level, an event or a range (None: back to pan and zoom)."""
        self.mode = mode if mode in MODES else None
        for k, act in self.mode_actions.items():
            act.setChecked(k == self.mode)
        self._press, self._range_start = None, None
        self._clear_preview()
        self.escape.setEnabled(self.mode is not None)
        viewport = self.window.graphics.viewport()
        if self.mode is None:
            viewport.unsetCursor()
            self.window.statusBar().clearMessage()
        else:
            viewport.setCursor(Qt.CursorShape.CrossCursor)
            self.window.statusBar().showMessage(MODE_TEXT[self.mode] + " · Esc cancels")

    def cancel_mode(self) -> None:
        self.set_mode(None)

    def _at(self, pos) -> tuple[str, QPointF] | None:
        """Which plot a viewport position is over, and its point in that plot's view coordinates."""
        w = self.window
        scene = w.graphics.mapToScene(pos.toPoint() if hasattr(pos, "toPoint") else pos)
        for name, vb in (("price", w.price.vb), ("liq", w.liq.vb)):
            if vb.sceneBoundingRect().contains(scene):
                return name, vb.mapSceneToView(scene)
        return None

    def eventFilter(self, obj, ev) -> bool:
        if self.mode is None:
            return False
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress:
            if ev.button() == Qt.MouseButton.RightButton:
                self.cancel_mode()
                return True
            if ev.button() != Qt.MouseButton.LeftButton:
                return False
            hit = self._at(ev.position())
            if hit is None or (self.mode == "level" and hit[0] != "price"):
                self._say("Levels go on the price chart" if self.mode == "level" else MODE_TEXT[self.mode])
                return True
            self._press = (hit[0], hit[1], ev.position())
            if self.mode == "range" and self._range_start is None:
                self._show_preview(hit[1].x(), hit[1].x())
            return True
        if t == QEvent.Type.MouseMove:
            if self.mode == "range" and (self._press is not None or self._range_start is not None):
                hit = self._at(ev.position())
                if hit is not None:
                    x0 = self._range_start if self._range_start is not None else self._press[1].x()
                    self._show_preview(x0, hit[1].x())
                return True
            return self._press is not None
        if t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton:
            if self._press is None:
                return True
            name, point, pos0 = self._press
            self._press = None
            hit = self._at(ev.position())
            end = hit[1] if hit is not None else point
            dragged = (ev.position() - pos0).manhattanLength() >= MIN_DRAG_PX
            self._place(name, point, end, dragged)
            return True
        if t == QEvent.Type.Wheel:
            return False  # zoom stays available while placing
        return t in (QEvent.Type.MouseButtonDblClick,)

    def _place(self, plot: str, point: QPointF, end: QPointF, dragged: bool) -> None:
        origin = self.window.origin_s
        v = self.window.state.view
        mode = self.mode
        if mode == "level":
            y = point.y()
            price = _round_price(10 ** y if v.log_scale else y)
            self.set_mode(None)
            self.open_dialog("level", fixed_kind=True, asset=v.asset, price=price)
        elif mode == "event":
            self.set_mode(None)
            self.open_dialog("event", fixed_kind=True, at=from_x(point.x(), origin).floor("s"))
        elif mode == "range":
            if self._range_start is None and not dragged:
                self._range_start = point.x()  # a click: its start; the next click is its end
                self._say("Now click the range's end · Esc cancels")
                return
            x0 = self._range_start if self._range_start is not None else point.x()
            x1 = end.x()
            lo, hi = sorted((x0, x1))
            self.set_mode(None)
            if hi - lo < 1:
                return
            self.open_dialog("range", fixed_kind=True, start=from_x(lo, origin).floor("s"),
                             end=from_x(hi, origin).ceil("s"))

    def _show_preview(self, x0: float, x1: float) -> None:
        lo, hi = sorted((x0, x1))
        if not self._preview:
            shade = QColor(role_color("note", THEMES[self.window.state.view.theme]))
            shade.setAlpha(RANGE_ALPHA)
            for plot in (self.window.price.plot, self.window.liq.plot):
                region = pg.LinearRegionItem((lo, hi), movable=False, brush=pg.mkBrush(shade))
                region.setZValue(-39)
                plot.addItem(region, ignoreBounds=True)
                self._preview.append(region)
        for region in self._preview:
            region.setRegion((lo, hi))

    def _clear_preview(self) -> None:
        for region in self._preview:
            vb = region.getViewBox()
            if vb is not None:
                vb.removeItem(region)
        self._preview = []

    def _say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)


# -- store operations (worker thread; Qt-free models) --------------------------------------------
def _load() -> list[Annotation]:
    from liqscope.models.store import open_store
    from liqscope.models.store.annotation_table import load_annotations

    return load_annotations(open_store())


def _save(a: Annotation) -> Annotation:
    from liqscope.models.store import open_store
    from liqscope.models.store.annotation_table import save_annotation

    return save_annotation(open_store(), a)


def _delete(annotation_id: str) -> None:
    from liqscope.models.store import open_store
    from liqscope.models.store.annotation_table import delete_annotation

    delete_annotation(open_store(), annotation_id)


def install_annotations(window) -> Annotations:
    """Annotate menu, mouse modes, dialog, Annotations panel and the chart items (after install_drilldown,
    whose Panels menu it extends)."""
    return Annotations(window)


def wait_for_annotations(window, timeout_s: float = 10.0) -> None:
    """Let the annotations' queued store reads finish (they are drawn in the image)."""
    import time

    from PySide6.QtWidgets import QApplication

    ann = getattr(window, "annotations", None)
    if ann is None:
        return
    deadline = time.monotonic() + timeout_s
    QApplication.processEvents()
    while ann.busy and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)


__all__ = ["AnnotationDialog", "AnnotationLayer", "Annotations", "AnnotationsPanel", "install_annotations",
           "role_color", "wait_for_annotations"]
