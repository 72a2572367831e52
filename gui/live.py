"""Data → Record live and Data → Fetch candles…: the connectors, wired to the window
(Data → Fetch open interest… / Fetch funding… are gui/context_fetch.py, installed from here).

The recorder and the candle fetcher run on their own threads (the recorder has
its own asyncio loop); their callbacks are re-emitted as Qt signals, which
queue onto the GUI thread. New liquidations are merged into the shown dataset
at most every ``MERGE_MS`` so a burst costs one redraw, and the view follows
the live edge when it was showing it.
"""
from __future__ import annotations

import html
import math
import threading
from typing import Callable

import pandas as pd
from PySide6.QtCore import QDateTime, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDateTimeEdit, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QLineEdit, QMessageBox)

from liqscope.models.connectors import (CONNECTED, EXCHANGES, HISTORY_NOTES, OFFLINE, RECONNECTING, STOPPED,
                                        ExchangeStatus, ExchangeUnavailable, FetchError, NetworkUnreachable,
                                        Recorder, fetch_candles)
from liqscope.models.store import open_store

from .context_fetch import ContextFetchController
from .loader import ProgressDialogJob, progress_dialog
from .theme import STATUS_IDLE, STATUS_OFFLINE, STATUS_OK, STATUS_WAIT, display_name
from .worker import Worker, WorkerSignals

MERGE_MS = 400
# Okabe-Ito green / orange / vermillion and the theme's muted grey: offline (no network
# here) must not look like the amber "exchange dropped us, reconnecting".
STATE_COLORS = {CONNECTED: STATUS_OK, RECONNECTING: STATUS_WAIT, OFFLINE: STATUS_OFFLINE, STOPPED: STATUS_IDLE}


def recording_to_store(exchanges, **kw) -> Recorder:
    """The window's recorder: into the local store, with the store kept compacted in the background and
    open interest and funding of the recorded symbols kept current (as ``liqscope record --context``).
    A store that cannot be opened now is opened by the recorder when it can (events wait meanwhile)."""
    from liqscope.models.store import StoreError

    try:
        store = open_store()
    except (StoreError, OSError):
        store = None
    return Recorder(exchanges, store=store, context_poll=store is not None, **kw)


class LiveController(QObject):
    """Owns the recorder while recording is on; shows per-exchange status in the status bar."""

    status_arrived = Signal(object)   # ExchangeStatus
    events_arrived = Signal(object)   # canonical liquidation frame
    recording_changed = Signal(bool)

    def __init__(self, window, recorder_factory: Callable[..., Recorder] | None = None):
        super().__init__(window)
        self.window = window
        self.recorder_factory = recorder_factory or recording_to_store
        self.recorder: Recorder | None = None
        self.labels: dict[str, QLabel] = {}
        self._pending: list[pd.DataFrame] = []
        self._merge_timer = QTimer(self)
        self._merge_timer.setSingleShot(True)
        self._merge_timer.setInterval(MERGE_MS)
        self._merge_timer.timeout.connect(self._merge)
        self.status_arrived.connect(self._show_status)
        self.events_arrived.connect(self._queue_events)

    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.running

    def start(self, exchanges=EXCHANGES, symbols=None) -> None:
        if self.recording:
            return
        for ex in exchanges:
            if ex not in self.labels:
                label = QLabel()
                label.setObjectName(f"live_{ex}")
                self.window.statusBar().addPermanentWidget(label)
                self.labels[ex] = label
            self.labels[ex].show()
        try:
            self.recorder = self.recorder_factory(list(exchanges), symbols=symbols,
                                                  on_status=self.status_arrived.emit,
                                                  on_events=self.events_arrived.emit)
            self.recorder.start()
        except (RuntimeError, ValueError, OSError) as exc:
            self.recorder = None
            QMessageBox.warning(self.window, "Record live", f"Could not start recording: {exc}")
            self.recording_changed.emit(False)
            return
        for st in self.recorder.status().values():
            self._show_status(st)
        self.recording_changed.emit(True)

    def stop(self) -> None:
        rec, self.recorder = self.recorder, None
        if rec is not None:
            rec.stop()  # flushes the journal and the store; records the open gap
            for st in rec.status().values():
                self._show_status(st)
        self._merge()
        self.recording_changed.emit(False)

    def _show_status(self, st: ExchangeStatus) -> None:
        label = self.labels.get(st.exchange)
        if label is None:
            return
        color = STATE_COLORS.get(st.state, STATUS_WAIT)
        # what could not be stored is shown, not only counted: it stays in the raw journal
        held = []
        if st.quarantined:
            held.append(f"{st.quarantined:,} quarantined")
        if st.oversize:
            held.append(f"{st.oversize:,} oversize frames dropped")
        if st.unstored:
            held.append(f"{st.unstored:,} waiting for the store")
        label.setText(f"<span style='color:{color}'>●</span> {display_name(st.exchange)} {self._state_text(st)}"
                      f" · {st.events_per_minute:.0f}/min · gaps {st.gaps}"
                      + "".join(f" · {html.escape(h)}" for h in held))
        tip = [st.note] if st.note else []
        if st.last_error:
            tip.append(f"last error: {st.last_error}")
        if st.last_quarantined:
            tip.append(f"last quarantined: {st.last_quarantined} (kept in the raw journal)")
        if st.unconverted:
            tip.append(f"{st.unconverted} events held: contract size unknown")
        label.setToolTip("\n".join(tip))

    @staticmethod
    def _state_text(st: ExchangeStatus) -> str:
        """``offline: name resolution failed — retrying in 8 s``: the state, why, and when it tries again."""
        text = st.state + (f": {html.escape(st.reason)}" if st.reason else "")
        if st.retry_at is not None and st.state in (OFFLINE, RECONNECTING):
            wait = math.ceil((st.retry_at - pd.Timestamp.now(tz="UTC")).total_seconds())
            text += f" — retrying in {wait} s" if wait > 0 else " — retrying"
        return text

    def _queue_events(self, frame: pd.DataFrame) -> None:
        self._pending.append(frame)
        if not self._merge_timer.isActive():
            self._merge_timer.start()

    def _merge(self) -> None:
        """Merge queued live events into the shown dataset: one redraw per burst."""
        if not self._pending:
            return
        frames, self._pending = self._pending, []
        events = pd.concat(frames, ignore_index=True)
        ds = self.window.dataset
        latest_before = ds.liquidations.time_range()
        view = self.window.state.view
        at_edge = view.end is not None and latest_before is not None and view.end >= latest_before[1]
        if not self.window.hub.append_liquidations(events):  # announces the growth once (hub.data_appended)
            return
        newest = self.window.dataset.liquidations.time_range()[1]
        if view.start is None or latest_before is None:  # empty store: show the last hour up to the newest event
            self.window.state.update(start=newest.floor("min") - pd.Timedelta(hours=1),
                                     end=newest.ceil("min") + pd.Timedelta(minutes=1))
        elif at_edge and newest >= view.end:  # follow the live edge
            shift = newest.ceil("min") + pd.Timedelta(minutes=1) - view.end
            self.window.state.update(start=view.start + shift, end=view.end + shift)


class FetchDialog(QDialog):
    """Exchange, symbol, interval and range for a candle download."""

    def __init__(self, parent=None, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None):
        super().__init__(parent)
        self.setWindowTitle("Fetch candles")
        form = QFormLayout(self)
        self.exchange = QComboBox()
        for ex in ("binance", "okx", "bybit"):
            self.exchange.addItem(display_name(ex), ex)
        self.exchange.currentIndexChanged.connect(self._note)
        form.addRow("Exchange", self.exchange)
        self.symbol = QLineEdit("BTC/USDT:USDT")
        self.symbol.setToolTip("ccxt unified symbol: BTC/USDT:USDT is the USDT perpetual, BTC/USDT is spot")
        form.addRow("Symbol", self.symbol)
        self.interval = QComboBox()
        for iv in ("1m", "5m", "15m", "1h", "4h", "1d"):
            self.interval.addItem(iv, iv)
        form.addRow("Interval", self.interval)
        now = pd.Timestamp.now(tz="UTC").floor("min")
        self.start = self._edit(start or now - pd.Timedelta(days=1))
        self.end = self._edit(end or now)
        form.addRow("Start (UTC)", self.start)
        form.addRow("End (UTC)", self.end)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setProperty("role", "caption")
        form.addRow(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._note()

    @staticmethod
    def _edit(ts: pd.Timestamp) -> QDateTimeEdit:
        e = QDateTimeEdit()
        e.setTimeSpec(Qt.TimeSpec.UTC)
        e.setDisplayFormat("yyyy-MM-dd HH:mm")
        e.setCalendarPopup(True)
        e.setDateTime(QDateTime.fromSecsSinceEpoch(int(ts.value // 1_000_000_000), Qt.TimeSpec.UTC))
        return e

    def _note(self) -> None:
        self.note.setText(HISTORY_NOTES.get(self.exchange.currentData(), ""))

    def request(self) -> dict:
        to_ts = lambda e: pd.Timestamp(e.dateTime().toSecsSinceEpoch(), unit="s", tz="UTC")  # noqa: E731
        return {"exchange": self.exchange.currentData(), "symbol": self.symbol.text().strip(),
                "interval": self.interval.currentData(), "start": to_ts(self.start), "end": to_ts(self.end)}


class FetchController(WorkerSignals, ProgressDialogJob, QObject):
    """Runs ``fetch_candles`` on the one worker type, with a cancellable progress dialog."""

    def __init__(self, window, fetch: Callable = fetch_candles):
        super().__init__(window)
        self.window = window
        self.fetch = fetch
        self.worker = Worker(self, name="liqscope-fetch")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(lambda: self._on_finished(None))  # cancelled before anything was stored
        # Data ▸ Fetch open interest… / Fetch funding…, next to Fetch candles… (gui/context_fetch.py)
        self.context = ContextFetchController(window)
        menu = getattr(window, "data_menu", None)
        if menu is not None:
            self.context.install(menu)

    def ask_and_fetch(self) -> None:
        v = self.window.state.view
        dlg = FetchDialog(self.window, v.start, v.end)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.start(**dlg.request())

    def start(self, *, exchange: str, symbol: str, interval: str, start, end, **kw) -> threading.Thread:
        self._label = f"Fetching {symbol} {interval} from {display_name(exchange)}…"
        self.dialog = progress_dialog(self.window, "Fetch candles", self._label, self.worker.cancel)
        return self.worker.start(lambda task: self.fetch(exchange, symbol, interval, start, end, store=open_store(),
                                                         task=task, **kw))

    def _on_finished(self, result) -> None:
        self._close()
        self.last_result = result
        if result is None:
            self.window.statusBar().showMessage("fetch cancelled: nothing was fetched", 15_000)
            return
        what = "cancelled after" if result.cancelled else "fetched"
        self.window.statusBar().showMessage(
            f"{what} {result.rows:,} candles ({result.new:,} new) of {result.symbol} {result.interval} "
            f"from {display_name(result.exchange)} in {result.requests} requests", 15_000)
        self.window.importer.reload_store()

    def _on_failed(self, exc: Exception) -> None:
        self._close()
        self.last_error = exc
        QMessageBox.warning(self.window, self._failure_title(exc), self._failure_text(exc))

    @staticmethod
    def _failure_title(exc: Exception) -> str:
        if isinstance(exc, NetworkUnreachable):
            return "Fetch candles: offline" if exc.offline else "Fetch candles: exchange unreachable"
        if isinstance(exc, ExchangeUnavailable):
            return "Fetch candles: exchange unavailable"
        return "Fetch candles"

    @staticmethod
    def _failure_text(exc: Exception) -> str:
        """One line; what to do next for the errors that have a remedy (stored pages are kept)."""
        if isinstance(exc, NetworkUnreachable):
            todo = "Check the network connection and fetch again" if exc.offline else "Fetch again later"
            return f"{exc}. {todo}: it resumes where it stopped."
        if isinstance(exc, ExchangeUnavailable):
            return f"{exc}. Try again later: the fetch resumes where it stopped."
        if isinstance(exc, FetchError):
            return str(exc)
        return f"{type(exc).__name__}: {exc}"
