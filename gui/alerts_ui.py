"""Data ▸ Alerts…: alert rules on live and replayed liquidations, their notifications and log.

The rules are evaluated by :class:`liqscope.models.alerts.AlertMonitor` on its own thread: the recorder's
events are queued to it from the recorder's thread (the live controller's recorder factory is wrapped), a
replay's from the replay worker. Neither waits for the evaluation, and a fired alert reaches the window as
a queued Qt signal, so none is lost while the window is busy. Each alert: a status-bar notice, a desktop
notification (``QSystemTrayIcon.showMessage``) when the desktop has a tray and it is ticked, a beep when
Sound is ticked, a row in the log. Rules and choices persist in ``<config dir>/alerts.json``.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QCheckBox, QDockWidget, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QSplitter,
                               QSystemTrayIcon, QTableView, QVBoxLayout, QWidget)

from liqscope.models.alerts import (RULE_SYNTAX, Alert, AlertEngine, AlertMonitor, AlertSettings, RuleError,
                                    load_settings, parse_rule, save_settings)
from liqscope.models.cascades import Params
from liqscope.models.timeutil import format_time

from .panel_parts import dock_body
from .theme import ALERT_TEXT

LOG_ROWS = 1000
NOTICE_MS = 20_000
LOG_HEADERS = ("market time (UTC)", "rule", "alert")


class AlertLogModel(QAbstractTableModel):
    """Fired alerts, newest first (at most ``LOG_ROWS``)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.alerts: list[Alert] = []

    def add(self, alert: Alert) -> None:
        if len(self.alerts) >= LOG_ROWS:
            self.beginRemoveRows(QModelIndex(), LOG_ROWS - 1, len(self.alerts) - 1)
            del self.alerts[LOG_ROWS - 1:]
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.alerts.insert(0, alert)
        self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.alerts)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(LOG_HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return LOG_HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        a = self.alerts[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (format_time(a.ts, "second"), a.rule, a.message)[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and index.row() == 0:
            return QColor(ALERT_TEXT)
        return None


class AlertsController(QObject):
    """Rules, the monitor that evaluates them, notifications and the log model."""

    fired = Signal(object)  # Alert (emitted on the monitor's thread: queued to the GUI thread)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.settings: AlertSettings = load_settings()
        self.monitor = AlertMonitor(AlertEngine(self.settings.rules), on_alert=self.fired.emit)
        self.log = AlertLogModel(self)
        self.count = 0
        self.tray: QSystemTrayIcon | None = None
        self.fired.connect(self._notify)
        self.notice = QLabel()
        self.notice.setObjectName("alert_notice")
        self.notice.hide()
        window.statusBar().addPermanentWidget(self.notice)
        self.hook(window.live)
        window.live.recording_changed.connect(self._recording_changed)

    def hook(self, live) -> None:
        """Wrap the live controller's recorder factory: the recorder's events also go to the monitor, from the
        recorder's own thread (a queue put). Call again after giving the controller another factory."""
        factory = live.recorder_factory

        def recorder_with_alerts(*args, on_events=None, **kw):
            def both(frame):
                self.monitor.submit(frame)
                if on_events is not None:
                    on_events(frame)
            return factory(*args, on_events=both, **kw)
        live.recorder_factory = recorder_with_alerts

    # -- rules -----------------------------------------------------------------
    @property
    def rules(self):
        return list(self.settings.rules)

    def set_rules(self, rules) -> None:
        """Use and save ``rules`` (Rule objects or texts; a text that does not parse raises RuleError)."""
        parsed = [parse_rule(r) if isinstance(r, str) else r for r in rules]
        self.settings.rules = parsed
        self.save()
        self.monitor.call(lambda engine: engine.set_rules(parsed))

    def save(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.window.statusBar().showMessage(f"could not save the alert rules: {exc}", 10_000)

    # -- the live path -----------------------------------------------------------
    def restart(self, history: pd.DataFrame | None) -> None:
        """A recording or a replay starts: forget what was seen, learn baselines from ``history``."""
        def go(engine: AlertEngine) -> None:
            engine.reset()
            engine.seed(history)
        self.monitor.call(go)

    def submit(self, frame: pd.DataFrame) -> None:
        self.monitor.submit(frame)

    def _recording_changed(self, on: bool) -> None:
        if not on:
            return
        ds = self.window.dataset
        liq = ds.liquidations.events_only() if ds.liquidations.has_aggregates else ds.liquidations
        r = liq.time_range()
        days = Params().baseline_days + 1
        self.restart(liq.window(r[1] - pd.Timedelta(days=days), None).frame if r else None)

    # -- notifications -------------------------------------------------------------
    def _notify(self, alert: Alert) -> None:
        self.count += 1
        self.log.add(alert)
        text = f"⚠ {alert.rule}: {alert.message}"
        self.notice.setText(f"<span style='color:{ALERT_TEXT}'>{text}</span>")
        self.notice.setToolTip(alert.line())
        self.notice.show()
        self.window.statusBar().showMessage(text, NOTICE_MS)
        if self.settings.desktop and QSystemTrayIcon.isSystemTrayAvailable():
            if self.tray is None:
                self.tray = QSystemTrayIcon(self.window.windowIcon(), self)
                self.tray.show()
            self.tray.showMessage("Liqscope alert", f"{alert.rule}: {alert.message}",
                                  QSystemTrayIcon.MessageIcon.Information, 10_000)
        if self.settings.sound:
            QApplication.beep()


class AlertsDock(QDockWidget):
    """Rules (tick to enable, add, remove), notification choices, and the log of fired alerts."""

    def __init__(self, main, ctl: AlertsController):
        super().__init__("Alerts", main)
        self.ctl = ctl
        lay = dock_body(self, "panel_alerts")
        self.rules = QListWidget()
        self.rules.setObjectName("alert_rules")
        self.rules.itemChanged.connect(self._ticked)
        row = QHBoxLayout()
        self.edit = QLineEdit()
        self.edit.setObjectName("alert_rule_edit")
        self.edit.setPlaceholderText("single>=1M, single>=p99.5@BTC, minute>=5M, cascade")
        self.edit.setToolTip(RULE_SYNTAX)
        self.edit.returnPressed.connect(self.add_from_edit)
        row.addWidget(self.edit, 1)
        add = QPushButton("Add")
        add.setObjectName("alert_add")
        add.clicked.connect(self.add_from_edit)
        row.addWidget(add)
        remove = QPushButton("Remove")
        remove.setObjectName("alert_remove")
        remove.clicked.connect(self.remove_selected)
        row.addWidget(remove)
        self.error = QLabel()
        self.error.setObjectName("alert_error")
        self.error.setWordWrap(True)
        self.error.setProperty("role", "caption")
        opts = QHBoxLayout()
        self.desktop = QCheckBox("Desktop notification")
        self.desktop.setObjectName("alert_desktop")
        self.desktop.setChecked(ctl.settings.desktop)
        self.desktop.setToolTip("A message from the system tray" + ("" if QSystemTrayIcon.isSystemTrayAvailable()
                                                                   else " (this desktop has no tray)"))
        self.desktop.toggled.connect(self._options)
        self.sound = QCheckBox("Sound")
        self.sound.setObjectName("alert_sound")
        self.sound.setChecked(ctl.settings.sound)
        self.sound.toggled.connect(self._options)
        opts.addWidget(self.desktop)
        opts.addWidget(self.sound)
        opts.addStretch(1)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(QLabel("<b>Rules</b> (on recorded and replayed liquidations)"))
        tl.addWidget(self.rules, 1)
        tl.addLayout(row)
        tl.addWidget(self.error)
        tl.addLayout(opts)
        self.log_view = QTableView()
        self.log_view.setObjectName("alert_log")
        self.log_view.setModel(ctl.log)
        self.log_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.log_view.verticalHeader().setVisible(False)
        self.log_view.verticalHeader().setDefaultSectionSize(20)
        self.log_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.log_view.horizontalHeader().setStretchLastSection(True)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(QLabel("<b>Fired</b> (newest first)"))
        bl.addWidget(self.log_view, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        lay.addWidget(split, 1)
        self._fill()

    def _fill(self) -> None:
        self.rules.blockSignals(True)
        self.rules.clear()
        for r in self.ctl.rules:
            item = QListWidgetItem(r.text)
            item.setToolTip(r.describe())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if r.enabled else Qt.CheckState.Unchecked)
            self.rules.addItem(item)
        self.rules.blockSignals(False)

    def add_from_edit(self) -> bool:
        text = self.edit.text().strip()
        if not text:
            return False
        try:
            rule = parse_rule(text)
        except RuleError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        self.ctl.set_rules(self.ctl.rules + [rule])
        self.edit.clear()
        self._fill()
        return True

    def remove_selected(self) -> None:
        row = self.rules.currentRow()
        if row < 0:
            return
        rules = self.ctl.rules
        del rules[row]
        self.ctl.set_rules(rules)
        self._fill()

    def _ticked(self, item: QListWidgetItem) -> None:
        rules = self.ctl.rules
        row = self.rules.row(item)
        rules[row] = replace(rules[row], enabled=item.checkState() == Qt.CheckState.Checked)
        self.ctl.set_rules(rules)

    def _options(self) -> None:
        self.ctl.settings.desktop = self.desktop.isChecked()
        self.ctl.settings.sound = self.sound.isChecked()
        self.ctl.save()


class Alerts:
    """Data ▸ Alerts… opens (or raises) the alerts dock; the controller runs from start-up."""

    def __init__(self, window):
        self.window = window
        self.controller = AlertsController(window)
        self.dock: AlertsDock | None = None
        self.action = QAction("&Alerts…", window)
        self.action.setObjectName("action_alerts")
        self.action.setToolTip("Alert rules on recorded and replayed liquidations, and the alerts fired")
        self.action.triggered.connect(self.open)
        window.data_menu.addAction(self.action)

    def open(self) -> AlertsDock:
        if self.dock is None:
            self.dock = AlertsDock(self.window, self.controller)
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.show()
        self.dock.raise_()
        return self.dock


def install_alerts(window) -> Alerts:
    return Alerts(window)
