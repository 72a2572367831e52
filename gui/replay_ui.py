"""Data ▸ Replay…: play a recorded journal or the current window at N x through the live path.

The window shows the data *before* the replay's start (a dataset cut there: candles, and the liquidations
before it), then the replay's events arrive exactly as a recorder's do -- ``LiveController.events_arrived``
-- so the bars, markers and headline grow, the view follows the live edge, the tape lists them, and the
alert monitor evaluates them (seeded with the days before). Reading the events and the replay itself
run on the one worker type; the clock is :class:`liqscope.models.replay.SystemClock` (tests inject a
:class:`~liqscope.models.replay.FakeClock`). When the events are out, the replayed data stays on screen
to look at; Data ▸ End replay stops a replay that still runs and brings back the data shown before.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QRadioButton, QWidget)

from liqscope.models.cascades import Params
from liqscope.models.connectors.journal import journal_root
from liqscope.models.dataset import Dataset
from liqscope.models.replay import SPEEDS, Replay, ReplayError, SystemClock, journal_events, window_events
from liqscope.models.timeutil import format_time

from .worker import Worker

CONTEXT = pd.Timedelta(hours=1)  # the view at the start: this much before the first replayed event


class ReplayDialog(QDialog):
    def __init__(self, parent=None, window_text: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Replay")
        form = QFormLayout(self)
        self.current = QRadioButton(f"Current window ({window_text})" if window_text else "Current window")
        self.current.setObjectName("replay_current")
        self.current.setChecked(True)
        self.journal = QRadioButton("Journal file or folder:")
        self.journal.setObjectName("replay_journal")
        group = QButtonGroup(self)
        group.addButton(self.current)
        group.addButton(self.journal)
        form.addRow(self.current)
        row = QHBoxLayout()
        row.addWidget(self.journal)
        self.path = QLineEdit(str(journal_root()))
        self.path.setObjectName("replay_path")
        row.addWidget(self.path, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(browse)
        box = QWidget()
        box.setLayout(row)
        form.addRow(box)
        self.speed = QComboBox()
        self.speed.setObjectName("replay_speed")
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}×", s)
        self.speed.setCurrentIndex(SPEEDS.index(60.0))
        form.addRow("Speed", self.speed)
        note = QLabel("The window shows the data before the start, then the events arrive as if live: "
                      "tape, alerts and charts follow them.")
        note.setWordWrap(True)
        note.setProperty("role", "caption")
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Journal day file", self.path.text(),
                                              "Journal (*.jsonl *.jsonl.zst);;All files (*)")
        if path:
            self.path.setText(path)
            self.journal.setChecked(True)

    def request(self) -> dict:
        return {"journal": self.path.text().strip() if self.journal.isChecked() else None,
                "speed": float(self.speed.currentData())}


class ReplayController(QObject):
    """Reads what to replay and replays it, each on the one worker type."""

    started = Signal()
    stopped = Signal(object)  # ReplayStats or None

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.clock_factory = SystemClock  # (cancel event) -> Clock; tests use a FakeClock
        self.replay: Replay | None = None
        self.stats = None
        self._before: tuple[Dataset, object] | None = None  # what to bring back afterwards
        self.loader = Worker(self, name="liqscope-replay-read")
        self.loader.finished.connect(self._loaded)
        self.loader.failed.connect(self._failed)
        self.worker = Worker(self, name="liqscope-replay")
        self.worker.progressed.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.cancelled.connect(lambda: self._finished(None))
        self.worker.failed.connect(self._failed)
        self.label = QLabel()
        self.label.setObjectName("replay_status")
        self.label.hide()
        window.statusBar().addPermanentWidget(self.label)
        self.action = QAction("Re&play…", window)
        self.action.setObjectName("action_replay")
        self.action.setToolTip("Play a recorded journal or the current window at 1×–600× through the live path")
        self.action.triggered.connect(self.ask_and_start)
        self.stop_action = QAction("End replay", window)
        self.stop_action.setObjectName("action_stop_replay")
        self.stop_action.setEnabled(False)
        self.stop_action.setToolTip("Stop the replay and bring back the data shown before it")
        self.stop_action.triggered.connect(self.end)
        self._restore_when_stopped = False
        window.data_menu.addAction(self.action)
        window.data_menu.addAction(self.stop_action)

    @property
    def running(self) -> bool:
        return self.worker.running or self.loader.running

    def ask_and_start(self) -> None:
        if self.running:
            self.stop()
        dlg = ReplayDialog(self.window, self.window.state.view.window_text())
        if dlg.exec() == QDialog.DialogCode.Accepted:
            req = dlg.request()
            if req["journal"]:
                self.start_journal([req["journal"]], req["speed"])
            else:
                self.start_window(req["speed"])

    # -- reading ---------------------------------------------------------------
    def start_window(self, speed: float, start=None, end=None) -> None:
        """Replay the current view's window (or ``start``..``end``) of the shown data."""
        ds, v = self.window.dataset, self.window.state.view
        start, end = start or v.start, end or v.end
        self._speed = speed
        self.window.statusBar().showMessage(f"reading the liquidations of {format_time(start, 'minute')} → "
                                            f"{format_time(end, 'minute')} UTC to replay…")
        self.loader.start(lambda task: window_events(ds, start, end))

    def start_journal(self, paths, speed: float) -> None:
        self._speed = speed
        self.window.statusBar().showMessage("reading the journal to replay…")
        self.loader.start(lambda task: journal_events(paths))

    def _loaded(self, events: pd.DataFrame) -> None:
        if not len(events):
            self.window.statusBar().showMessage("nothing to replay there", 10_000)
            return
        self.play(events, self._speed)

    # -- playing ---------------------------------------------------------------
    def play(self, events: pd.DataFrame, speed: float) -> None:
        """Cut the shown data at the first event, then hand the events to the live path at ``speed`` x."""
        w = self.window
        ds = w.dataset
        first = pd.Timestamp(events["ts"].min())
        if self._before is None:
            self._before = (ds, w.state.view)
        liq = ds.liquidations.events_only() if ds.liquidations.has_aggregates else ds.liquidations
        before = liq.window(None, first)
        shown = Dataset(prices=ds.prices, liquidations=before, label=f"Replay at {speed:g}× — {ds.label}")
        view = replace(w.state.view, start=first.floor("min") - CONTEXT, end=first.ceil("min") + pd.Timedelta(minutes=1))
        w.set_dataset(shown, view)
        alerts = getattr(w, "alerts", None)
        ctl = getattr(alerts, "controller", None)
        if ctl is not None:
            ctl.restart(before.window(first - pd.Timedelta(days=Params().baseline_days + 1), None).frame)
        live = w.live
        self.replay = Replay(events, speed, clock=None, max_wait_s=5.0)
        self.stats = None
        self.stop_action.setEnabled(True)
        self.label.show()
        self.label.setText(f"Replay {speed:g}×")

        def run(task):
            self.replay.clock = self.clock_factory(task.cancel)

            def sink(batch):
                if ctl is not None:
                    ctl.submit(batch)          # the alert monitor's queue: never waits
                live.events_arrived.emit(batch)  # the recorder's way into the window (queued)
            return self.replay.run(sink, cancel=task.cancel,
                                   progress=lambda i, n, t: task.progress(i, n, format_time(t, "second")))
        self.worker.start(run)
        self.started.emit()

    def set_speed(self, speed: float) -> None:
        if self.replay is not None:
            self.replay.set_speed(speed)

    def stop(self) -> None:
        """Stop the replay; what was replayed stays shown."""
        self.loader.cancel()
        self.worker.cancel()

    def end(self) -> None:
        """Stop the replay (if it runs) and bring back the data shown before it."""
        if self.worker.running:
            self._restore_when_stopped = True
            self.stop()
        else:
            self.restore()

    def _progress(self, step) -> None:
        speed = self.replay.speed if self.replay is not None else 0
        self.label.setText(f"Replay {'max' if math.isinf(speed) else f'{speed:g}×'} · {step.message} UTC · "
                           f"{step.done:,}/{step.total:,}")

    def _finished(self, stats) -> None:
        self.stats = stats
        self.label.hide()
        done = "replay finished" if stats is not None and not stats.cancelled else "replay stopped"
        n = stats.events if stats is not None else (self.replay.done if self.replay is not None else 0)
        self.window.statusBar().showMessage(f"{done}: {n:,} liquidations replayed", 15_000)
        self.stopped.emit(stats)
        if self._restore_when_stopped:
            self.restore()

    def restore(self) -> None:
        """Bring back the data (and view) shown before the replay."""
        self._restore_when_stopped = False
        self.stop_action.setEnabled(False)
        if self._before is not None and not self.running:
            ds, view = self._before
            self._before = None
            self.window.set_dataset(ds, view)

    def _failed(self, exc: Exception) -> None:
        self.stop_action.setEnabled(False)
        self.label.hide()
        what = str(exc) if isinstance(exc, ReplayError) else f"{type(exc).__name__}: {exc}"
        QMessageBox.warning(self.window, "Replay", what)


def install_replay(window) -> ReplayController:
    """Data ▸ Replay… and Data ▸ Stop replay."""
    return ReplayController(window)
