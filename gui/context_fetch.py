"""Data ▸ Fetch open interest… and Data ▸ Fetch funding…: ``fetch_context`` behind a dialog.

The same shape as Data ▸ Fetch candles… (gui/live.py): a dialog asks exchange, symbol, (period) and
range and shows what history the exchange serves; the fetch runs on the one worker type with a
cancellable progress dialog; every page is stored as it arrives, so a cancel or an error keeps what
was fetched and the same fetch later resumes. The exchange's history notices (e.g. "Binance serves
open interest history for the last 30 days only …") are said in words: in the status bar and in a
message box. Errors are one line. Afterwards the window re-reads the store, and the pane of what was
fetched is turned on (View ▸ Context panes) so the new rows are seen.
"""
from __future__ import annotations

import threading
from typing import Callable

import pandas as pd
from PySide6.QtCore import QDateTime, QEvent, QObject, QTimeZone
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QComboBox, QDateTimeEdit, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                               QMessageBox)

from liqscope.models.connectors import ExchangeUnavailable, FetchError, NetworkUnreachable
from liqscope.models.connectors.context import FUNDING, HISTORY_NOTES, OI, HistoryUnavailable, oi_periods
from liqscope.models.connectors.context_fetch import WHAT, fetch_context
from liqscope.models.store import open_store

from .loader import ProgressDialogJob, progress_dialog
from .theme import display_name
from .worker import Worker, WorkerSignals

TITLES = {OI: "Fetch open interest", FUNDING: "Fetch funding"}
EXCHANGES = ("binance", "bybit", "okx")


def _edit(ts: pd.Timestamp) -> QDateTimeEdit:
    e = QDateTimeEdit()
    e.setTimeZone(QTimeZone.utc())
    e.setDisplayFormat("yyyy-MM-dd HH:mm")
    e.setCalendarPopup(True)
    e.setDateTime(QDateTime.fromSecsSinceEpoch(int(ts.value // 1_000_000_000), QTimeZone.utc()))
    return e


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class ContextFetchDialog(QDialog):
    """Exchange, perpetual symbol, period (open interest) and range; what the exchange serves, in words."""

    def __init__(self, kind: str, parent=None, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None):
        super().__init__(parent)
        self.kind = kind
        self.setWindowTitle(TITLES[kind])
        form = QFormLayout(self)
        self.exchange = QComboBox()
        self.exchange.setObjectName("context_exchange")
        for ex in EXCHANGES:
            self.exchange.addItem(display_name(ex), ex)
        self.exchange.currentIndexChanged.connect(self._exchange_changed)
        form.addRow("Exchange", self.exchange)
        self.symbol = QLineEdit("BTC/USDT:USDT")
        self.symbol.setObjectName("context_symbol")
        self.symbol.setToolTip("ccxt unified perpetual symbol, e.g. BTC/USDT:USDT (open interest and funding exist "
                               "for perpetual swaps only)")
        form.addRow("Symbol", self.symbol)
        self.period = QComboBox()
        self.period.setObjectName("context_period")
        self.period.setToolTip("Open interest snapshot period")
        if kind == OI:
            form.addRow("Period", self.period)
        now = pd.Timestamp.now(tz="UTC").floor("min")
        self.start = _edit(start if start is not None else now - pd.Timedelta(days=7))
        self.end = _edit(min(end, now) if end is not None else now)
        form.addRow("Start (UTC)", self.start)
        form.addRow("End (UTC)", self.end)
        self.note = QLabel()
        self.note.setObjectName("context_history_note")
        self.note.setWordWrap(True)
        self.note.setProperty("role", "caption")
        form.addRow(self.note)
        self.problem = QLabel()
        self.problem.setObjectName("context_problem")
        self.problem.setWordWrap(True)
        self.problem.hide()
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._exchange_changed()

    def _exchange_changed(self) -> None:
        ex = self.exchange.currentData()
        if self.kind == OI:
            keep = self.period.currentData() or "1h"
            self.period.clear()
            for p in oi_periods(ex):
                self.period.addItem(p, p)
            i = self.period.findData(keep)
            self.period.setCurrentIndex(i if i >= 0 else max(0, self.period.findData("1h")))
        self.note.setText(HISTORY_NOTES.get((self.kind, ex), ""))

    def accept(self) -> None:
        """Refuse an empty symbol or an empty range here, in one line, instead of after a round trip."""
        req = self.request()
        problem = ("Give a symbol, e.g. BTC/USDT:USDT" if not req["symbol"]
                   else "The end must be after the start" if req["end"] <= req["start"] else "")
        if problem:
            self.problem.setText(problem)
            self.problem.show()
            return
        super().accept()

    def request(self) -> dict:
        to_ts = lambda e: pd.Timestamp(e.dateTime().toSecsSinceEpoch(), unit="s", tz="UTC")  # noqa: E731
        req = {"kind": self.kind, "exchange": self.exchange.currentData(), "symbol": self.symbol.text().strip(),
               "start": to_ts(self.start), "end": to_ts(self.end)}
        if self.kind == OI:
            req["period"] = self.period.currentData() or "1h"
        return req


class ContextFetchController(WorkerSignals, ProgressDialogJob, QObject):
    """Runs ``fetch_context`` on the one worker type, with a cancellable progress dialog; notices in words."""

    def __init__(self, window, fetch: Callable = fetch_context):
        super().__init__(window)
        self.window = window
        self.fetch = fetch
        self.kind = OI
        self.last_result = None
        self.last_error: Exception | None = None
        self.last_message = ""  # what the user was told last (status bar / message box), one line
        self.last_notices: list[str] = []
        self.actions: dict[str, QAction] = {}
        self.worker = Worker(self, name="liqscope-fetch-context")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(lambda: self._on_finished(None))

    # -- the menu ------------------------------------------------------------------------------
    def install(self, menu) -> None:
        """Data ▸ Fetch open interest… / Fetch funding…, right after Fetch candles… (added now if it is
        there, else as soon as it is)."""
        for kind, text, tip in ((OI, "Fetch &open interest…", "Download open interest history (USD and base "
                                                               "units per period) from Binance, Bybit or OKX"),
                                (FUNDING, "Fetch f&unding…", "Download funding rate history (per settlement) "
                                                             "from Binance, Bybit or OKX")):
            act = QAction(text, self.window)
            act.setObjectName(f"action_fetch_{kind}")
            act.setToolTip(tip)
            act.triggered.connect(lambda _=False, k=kind: self.ask_and_fetch(k))
            self.actions[kind] = act
        self._menu = menu
        menu.addActions(list(self.actions.values()))
        if not any(a.objectName() == "action_fetch" for a in menu.actions()):
            menu.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if (obj is getattr(self, "_menu", None) and event.type() == QEvent.Type.ActionAdded
                and event.action().objectName() == "action_fetch"):
            obj.removeEventFilter(self)
            ours = list(self.actions.values())
            for act in ours:
                obj.removeAction(act)
            obj.addActions(ours)  # Fetch candles… was just appended: ours follow it
        return False

    # -- running -------------------------------------------------------------------------------
    def ask_and_fetch(self, kind: str) -> None:
        v = self.window.state.view
        dlg = ContextFetchDialog(kind, self.window, v.start, v.end)
        self.request_dialog = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.start(**dlg.request())

    def start(self, *, kind: str, exchange: str, symbol: str, start, end=None, period: str = "1h",
              **kw) -> threading.Thread:
        """Fetch in a worker; returns the thread (tests join it). ``kw`` goes to ``fetch_context``
        (``api_base``, ``retries``...)."""
        self.kind = kind
        what = WHAT[kind] + (f" {period}" if kind == OI else "")
        self._label = f"Fetching {symbol} {what} from {display_name(exchange)}…"
        self.last_result, self.last_error, self.last_notices = None, None, []
        self.dialog = progress_dialog(self.window, TITLES[kind], self._label, self.worker.cancel)
        fetch = self.fetch
        return self.worker.start(lambda task: fetch(kind, exchange, symbol, start, end, store=open_store(),
                                                    period=period, task=task, **kw))

    def _tell(self, text: str) -> None:
        self.last_message = text
        self.window.statusBar().showMessage(text, 30_000)

    def _on_finished(self, result) -> None:
        self._close()
        self.last_result = result
        if result is None:  # cancelled before the first page came back
            self._tell("fetch cancelled: pages stored before the cancel are kept")
            self._reload()
            return
        notices = list(dict.fromkeys(_one_line(n.message) for n in result.notices))
        self.last_notices = notices
        span = f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC"
        head = f"{display_name(result.exchange)} {result.symbol} {result.what}"
        if not result.missing:
            line = f"{head}: already complete from {span}"
        else:
            what = "cancelled after" if result.cancelled else "fetched"
            line = (f"{head}: {what} {result.rows:,} rows ({result.new:,} new) in {result.requests:,} requests, "
                    f"{span}")
        self._tell(" · ".join([line, *notices]))
        self._reload()
        if notices:  # older history than the exchange serves was asked for: say so, not only in passing
            QMessageBox.information(self.window, TITLES[self.kind], "\n\n".join([line, *notices]))

    def _on_failed(self, exc: Exception) -> None:
        self._close()
        self.last_error = exc
        text = self.failure_text(exc)
        self._tell(text)
        got = getattr(exc, "fetched", None)
        if got is not None and got.rows:
            self._reload()  # the pages stored before the error are shown
        title = TITLES[self.kind]
        if isinstance(exc, NetworkUnreachable):
            title += ": offline" if exc.offline else ": exchange unreachable"
        elif isinstance(exc, HistoryUnavailable):
            title += ": not served"
        QMessageBox.warning(self.window, title, text)

    @staticmethod
    def failure_text(exc: Exception) -> str:
        """One line: what went wrong, what was kept, and what to do next when there is a remedy."""
        got = getattr(exc, "fetched", None)
        kept = (f"the {got.rows:,} rows fetched before it are stored" if got is not None and got.rows
                else "nothing was stored")
        if isinstance(exc, HistoryUnavailable):
            return _one_line(exc)
        if isinstance(exc, NetworkUnreachable):
            todo = "check the network connection and fetch again" if exc.offline else "fetch again later"
            return _one_line(f"{exc}; {kept}; {todo}: it resumes where it stopped")
        if isinstance(exc, ExchangeUnavailable):
            return _one_line(f"{exc}; {kept}; try again later: the fetch resumes where it stopped")
        if isinstance(exc, (FetchError, ValueError)):
            return _one_line(f"{exc}" + (f"; {kept}" if got is not None and got.rows else ""))
        return _one_line(f"{type(exc).__name__}: {exc}")

    def _reload(self) -> None:
        """Re-read the store; once shown, the pane of what was fetched is on."""
        loader = self.window.loader
        kind = self.kind

        def shown(_ds) -> None:
            loader.loaded.disconnect(shown)
            panes = getattr(self.window, "context_panes", None)
            if panes is not None and kind not in panes.shown():
                panes.set_on(kind, True)

        loader.loaded.connect(shown)
        loader.reload_store()


__all__ = ["ContextFetchController", "ContextFetchDialog"]
