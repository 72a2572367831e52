"""Data ▸ Fetch open interest… / Fetch funding… through the real window, against the loopback exchanges
of tests/models/connectors/test_connector_context.py (documented endpoints, pagination, history limits;
no internet): rows land in the store, the context pane shows them after the window re-reads the store,
history notices are said in words, and a dropped connection is one line with the rows fetched kept."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QDateTime, QTimeZone
from PySide6.QtWidgets import QDialog, QMessageBox

sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "connectors"))

from test_connector_context import DAY, HOUR, ContextHTTP, fill_funding, fill_oi  # noqa: E402

from liqscope.gui.app import settle  # noqa: E402
from liqscope.gui.context_fetch import ContextFetchDialog  # noqa: E402
from liqscope.models.connectors.context import HISTORY_NOTES  # noqa: E402
from liqscope.models.connectors.context_fetch import fetch_context  # noqa: E402
from liqscope.models.store import open_store  # noqa: E402

NOW = pd.Timestamp("2025-06-01T00:00Z")  # the exchanges' history limits count back from now: pinned
NOW_MS = int(NOW.value // 1_000_000)


def t(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


@pytest.fixture
def window_size():
    return 1200, 800


@pytest.fixture
def ex():
    with ContextHTTP() as srv:
        yield srv


@pytest.fixture
def told(monkeypatch):
    """What the message boxes said: (kind, title, text)."""
    said = []
    for kind, name in (("info", "information"), ("warning", "warning")):
        monkeypatch.setattr(QMessageBox, name, lambda parent, title, text, *a, k=kind, **kw: said.append((k, title, text)))
    return said


def loopback(window, ex, **kw):
    """The window's context fetcher pointed at the loopback exchange, now pinned, no pacing."""
    ctl = window.fetcher.context
    ctl.fetch = functools.partial(fetch_context, api_base=ex.base, now=NOW, pace=0, retry_delay=0.01, **kw)
    return ctl


def answer_dialog(monkeypatch, **fields):
    """The user fills the fetch dialog and presses OK."""
    def exec_(dlg):
        dlg.exchange.setCurrentIndex(dlg.exchange.findData(fields["exchange"]))
        if "period" in fields:
            dlg.period.setCurrentIndex(dlg.period.findData(fields["period"]))
        dlg.symbol.setText(fields.get("symbol", "BTC/USDT:USDT"))
        for edit, ts in ((dlg.start, fields["start"]), (dlg.end, fields["end"])):
            edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(ts.value // 10**9), QTimeZone.utc()))
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(ContextFetchDialog, "exec", exec_)


def wait_fetch_and_reload(qtbot, window, signal, trigger):
    ctl = window.fetcher.context
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        with qtbot.waitSignal(signal, timeout=20_000):
            trigger()
        ctl.thread.join(20)
    settle(window)


def show_window(window, start, end, asset="BTC"):
    window.state.update(start=start, end=end, asset=asset)
    window.state.flush()
    settle(window)


def test_data_menu_has_the_fetches_after_fetch_candles(window):
    names = [a.objectName() for a in window.data_menu.actions()]
    i = names.index("action_fetch")
    assert names[i + 1:i + 3] == ["action_fetch_oi", "action_fetch_funding"]
    texts = {a.objectName(): a.text() for a in window.data_menu.actions()}
    assert texts["action_fetch_oi"].replace("&", "") == "Fetch open interest…"
    assert texts["action_fetch_funding"].replace("&", "") == "Fetch funding…"


def test_dialog_says_what_each_exchange_serves_and_offers_its_periods(qtbot, window):
    dlg = ContextFetchDialog("oi", window)
    qtbot.addWidget(dlg)
    dlg.exchange.setCurrentIndex(dlg.exchange.findData("binance"))
    assert dlg.note.text() == HISTORY_NOTES[("oi", "binance")]
    assert "last 30 days only" in dlg.note.text()
    assert "2h" in [dlg.period.itemData(i) for i in range(dlg.period.count())]
    dlg.exchange.setCurrentIndex(dlg.exchange.findData("bybit"))
    periods = [dlg.period.itemData(i) for i in range(dlg.period.count())]
    assert "2h" not in periods and dlg.period.currentData() == "1h"
    fund = ContextFetchDialog("funding", window)
    qtbot.addWidget(fund)
    fund.exchange.setCurrentIndex(fund.exchange.findData("okx"))
    assert "last 3 months only" in fund.note.text()
    assert "period" not in fund.request()
    # an empty range is refused in the dialog, in one line
    fund.end.setDateTime(fund.start.dateTime())
    fund.accept()
    assert fund.result() != QDialog.DialogCode.Accepted and "after the start" in fund.problem.text()


def test_fetch_open_interest_from_the_menu_fills_the_store_and_the_pane(qtbot, window, ex, monkeypatch, told):
    start = NOW_MS - 10 * DAY
    fill_oi(ex, "bybit", start, 5 * 24)
    loopback(window, ex)
    answer_dialog(monkeypatch, exchange="bybit", period="1h", start=t(start), end=t(start + 5 * DAY))
    act = next(a for a in window.data_menu.actions() if a.objectName() == "action_fetch_oi")
    wait_fetch_and_reload(qtbot, window, window.fetcher.context.finished, act.trigger)
    result = window.fetcher.context.last_result
    assert (result.rows, result.new) == (120, 120) and not result.cancelled
    stored = open_store().context().oi_by_exchange(t(start), t(start + 5 * DAY), "BTC")
    assert list(stored.columns) == ["bybit"] and len(stored) == 120
    assert "Bybit BTCUSDT open interest 1h: fetched 120 rows (120 new)" in window.statusBar().currentMessage()
    assert not [m for m in told if m[0] == "warning"]
    # the window re-read the store; the open interest pane is on and draws the stored rows
    assert not window.dataset.is_demo
    assert "oi" in window.context_panes.shown()
    show_window(window, t(start + DAY), t(start + 2 * DAY))
    pane = window.context_panes.panes["oi"]
    v = window.state.view
    span = v.end - v.start
    want = open_store().context().oi_by_exchange(v.start - span, v.end + span, "BTC")["bybit"]
    ts, values = pane.values["bybit"]
    np.testing.assert_array_equal(ts, want.index.as_unit("ns").asi8)
    np.testing.assert_allclose(values, want.to_numpy(dtype=float))
    # fetching the same again fetches nothing and says so
    wait_fetch_and_reload(qtbot, window, window.fetcher.context.finished, act.trigger)
    assert "already complete" in window.statusBar().currentMessage()


def test_fetch_funding_fills_the_store_and_the_pane(qtbot, window, ex, told):
    start = NOW_MS - 20 * DAY
    fill_funding(ex, "okx", start - 8 * HOUR, 31)
    ctl = loopback(window, ex)
    wait_fetch_and_reload(qtbot, window, ctl.finished,
                          lambda: ctl.start(kind="funding", exchange="okx", symbol="BTC/USDT:USDT", start=t(start),
                                            end=t(start + 10 * DAY)))
    f = open_store().funding()
    assert len(f) == 30 and set(f["exchange"]) == {"okx"}
    assert "OKX BTC-USDT-SWAP funding: fetched 30 rows (30 new)" in window.statusBar().currentMessage()
    assert "funding" in window.context_panes.shown()
    show_window(window, t(start), t(start + 10 * DAY))
    pane = window.context_panes.panes["funding"]
    v = window.state.view
    span = v.end - v.start
    rows = open_store().context().funding(v.start - span, v.end + span, asset="BTC")
    np.testing.assert_allclose(pane.values["okx"][1], rows["per_8h"].to_numpy() * 100.0)
    assert len(pane.values["okx"][1]) == 30


def test_history_limit_is_said_in_words(qtbot, window, ex, told):
    """Binance serves 30 days of open interest: asking for more fetches what it serves and says so."""
    fill_oi(ex, "binance", NOW_MS - 29 * DAY, 29 * 24)
    ctl = loopback(window, ex)
    wait_fetch_and_reload(qtbot, window, ctl.finished,
                          lambda: ctl.start(kind="oi", exchange="binance", symbol="BTC/USDT:USDT",
                                            start=t(NOW_MS - 40 * DAY), end=t(NOW_MS - 28 * DAY)))
    assert len(open_store().open_interest()) > 0
    [notice] = ctl.last_notices
    assert notice.startswith("Binance serves open interest history for the last 30 days only")
    assert notice in window.statusBar().currentMessage()
    [(kind, title, text)] = told
    assert kind == "info" and title == "Fetch open interest" and notice in text


def test_a_window_entirely_older_than_served_is_one_line(qtbot, window, ex, told):
    ctl = loopback(window, ex)
    with qtbot.waitSignal(ctl.failed, timeout=20_000):
        ctl.start(kind="oi", exchange="binance", symbol="BTC/USDT:USDT", start=t(NOW_MS - 60 * DAY),
                  end=t(NOW_MS - 45 * DAY))
        ctl.thread.join(20)
    [(kind, title, text)] = told
    assert kind == "warning" and "\n" not in text
    assert text.startswith("Binance serves open interest history for the last 30 days only; nothing of BTCUSDT")
    assert window.dataset.is_demo and open_store().open_interest().empty


def test_dropped_connection_is_one_line_and_keeps_the_rows_fetched(qtbot, window, ex, told):
    start = NOW_MS - 25 * DAY
    fill_oi(ex, "bybit", start, 600)
    path = ex.OI_PATHS["bybit"]
    ex.script[path] = [None, None, "drop", "drop"]
    ctl = loopback(window, ex, retries=1)
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        with qtbot.waitSignal(ctl.failed, timeout=20_000):
            ctl.start(kind="oi", exchange="bybit", symbol="BTC/USDT:USDT", start=t(start), end=t(start + 600 * HOUR))
        ctl.thread.join(20)
    settle(window)
    [(kind, title, text)] = told
    assert kind == "warning" and "\n" not in text and title == "Fetch open interest: exchange unreachable"
    assert "cannot reach the exchange (connection reset)" in text
    assert "the 400 rows fetched before it are stored" in text and "resumes where it stopped" in text
    assert window.statusBar().currentMessage() == text
    assert len(open_store().open_interest()) == 400
    # the partial rows are shown; fetching again resumes from where it stopped
    show_window(window, t(start), t(start + 10 * DAY))
    assert len(window.context_panes.panes["oi"].values["bybit"][1]) > 0
    before = len(ex.calls(path))
    wait_fetch_and_reload(qtbot, window, ctl.finished,
                          lambda: ctl.start(kind="oi", exchange="bybit", symbol="BTC/USDT:USDT", start=t(start),
                                            end=t(start + 600 * HOUR)))
    assert ctl.last_result.new == 200
    assert min(int(q["startTime"]) for q in ex.calls(path)[before:]) >= start + 400 * HOUR
    assert len(open_store().open_interest()) == 600


def test_cancel_keeps_what_was_stored(qtbot, window, ex, told):
    start = NOW_MS - 10 * DAY
    fill_oi(ex, "okx", start, 240)
    ctl = loopback(window, ex)
    # as if the user pressed Cancel once the first page is in
    real = ctl.fetch

    def fetch(*a, task, **k):
        def progress(step):
            if step.done >= 100:
                task.cancel.set()
            on(step)
        on, task.on_progress = task.on_progress, progress
        return real(*a, task=task, **k)
    ctl.fetch = fetch
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        ctl.start(kind="oi", exchange="okx", symbol="BTC/USDT:USDT", start=t(start), end=t(start + 240 * HOUR))
        ctl.thread.join(20)
    held = len(open_store().open_interest())
    assert 0 < held < 240
    assert "cancel" in window.statusBar().currentMessage()
    assert not told
