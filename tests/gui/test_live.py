"""Data → Record live and Data → Fetch candles… through the real window, loopback only."""
from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "connectors"))

from connector_fakes import FakeExchangeHTTP, WSReplay, fixture  # noqa: E402

from liqscope.models.connectors import Backoff, NetworkUnreachable, Recorder  # noqa: E402
from liqscope.models.store import open_store  # noqa: E402

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.5, reset_after=30)


def binance_frames():
    return [f["raw"] for f in fixture("binance")["frames"]]


def binance_expected():
    return [e for f in fixture("binance")["frames"] for e in f["expect"]]


@pytest.fixture
def offline(monkeypatch):
    """Only loopback names resolve, as on a machine without network (no DNS query leaves)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in (None, "localhost", "127.0.0.1", "::1", b"127.0.0.1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def window_size():
    return 1200, 800


@pytest.fixture(autouse=True)
def _stop_recording(window):
    yield
    window.live.stop()  # a failing test must not leave a recorder thread running


def test_record_live_shows_new_liquidations_within_a_second(qtbot, window, tmp_path):
    expected = binance_expected()
    with WSReplay([binance_frames()]) as ws:
        def factory(exchanges, **kw):
            return Recorder(["binance"], endpoints={"binance": {"ws": ws.url, "rest": "http://127.0.0.1:9"}},
                            journal_dir=tmp_path / "journal", backoff=FAST, flush_interval=0.05,
                            store_interval=0.1, fsync=False, **kw)

        window.live.recorder_factory = factory
        window.record_action.setChecked(True)
        # the store replaces the demo (read off the GUI thread), then the recorder starts
        qtbot.waitUntil(lambda: window.live.recording, timeout=10_000)
        assert not window.dataset.is_demo
        qtbot.waitUntil(lambda: len(window.dataset.liquidations) == len(expected), timeout=3000)
        qtbot.waitUntil(lambda: "connected" in window.live.labels["binance"].text(), timeout=3000)
        assert "Binance" in window.live.labels["binance"].text()
        assert "per symbol per 1000 ms" in window.live.labels["binance"].toolTip()
        window.state.flush()
        window.update_headline()
        # the headline, the bars and the markers now show the recorded events
        v = window.state.view
        newest = window.dataset.liquidations.time_range()[1]
        assert v.start <= newest < v.end  # the view jumped to the live edge
        in_view = window.dataset.liquidations.filter(v.start, v.end).totals()
        assert in_view.count > 0
        assert window.headline.figures["total_usd"] == pytest.approx(in_view.total_usd)
        if "notional_usd" in expected[0]:
            assert window.dataset.liquidations.totals().total_usd == pytest.approx(
                sum(e["notional_usd"] for e in expected))
        window.record_action.setChecked(False)
    assert not window.live.recording
    assert "stopped" in window.live.labels["binance"].text()
    assert len(open_store().liquidations()) == len(expected)  # journalled and stored


def test_record_live_offline_says_why_in_the_status_bar(qtbot, window, tmp_path, offline):
    def factory(exchanges, **kw):
        return Recorder(["binance"], endpoints={"binance": {"ws": "ws://nonexistent.invalid:1/"}},
                        journal_dir=tmp_path / "journal", backoff=FAST, fsync=False, **kw)

    window.live.recorder_factory = factory
    window.record_action.setChecked(True)
    qtbot.waitUntil(lambda: window.live.recording, timeout=10_000)
    label = window.live.labels["binance"]
    qtbot.waitUntil(lambda: "offline" in label.text(), timeout=5000)
    text = label.text()
    assert re.search(r"Binance offline: name resolution failed — retrying( in \d+ s)?", text), text
    assert "#D55E00" in text and "#E69F00" not in text  # not the amber of "reconnecting"
    assert "gaierror" in label.toolTip()  # the raw error stays in the tooltip
    window.record_action.setChecked(False)
    assert "Binance stopped ·" in label.text()


def test_fetch_candles_dialog_fills_the_store_and_the_window(qtbot, window):
    with FakeExchangeHTTP() as http:
        start, end = pd.Timestamp("2025-05-09T00:00Z"), pd.Timestamp("2025-05-09T06:00Z")
        with qtbot.waitSignal(window.fetcher.finished, timeout=20_000):
            thread = window.fetcher.start(exchange="binance", symbol="BTC/USDT:USDT", interval="1m",
                                          start=start, end=end, api_base=http.base)
        thread.join(20)
    result = window.fetcher.last_result
    assert result.rows == 360 and result.new == 360
    qtbot.waitUntil(lambda: not window.dataset.is_demo and bool(window.dataset.prices.find("BTC", "binance")),
                    timeout=20_000)
    key = window.dataset.prices.find("BTC", "binance")
    candles = window.dataset.prices.candles(key)
    assert len(candles) == 360 and candles.index[0] == start
    assert "fetched 360 candles (360 new)" in window.statusBar().currentMessage()


def test_fetch_failure_is_one_line_and_changes_nothing(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    with qtbot.waitSignal(window.fetcher.failed, timeout=20_000):
        window.fetcher.start(exchange="binance", symbol="BTC/USDT:USDT", interval="1m",
                             start=pd.Timestamp("2025-05-09T00:00Z"), end=pd.Timestamp("2025-05-09T01:00Z"),
                             api_base="http://127.0.0.1:9", retries=0).join(20)
    assert shown and "\n" not in shown[0]
    err = window.fetcher.last_error
    assert isinstance(err, NetworkUnreachable) and err.cause == "connection refused"
    assert "connection refused" in shown[0]
    assert window.dataset.is_demo
    assert not open_store().has_data()


def test_fetch_dialog_shows_why_it_is_waiting_and_cancels(qtbot, window, offline):
    """Offline, the progress dialog's label names the reason and the retry to come at
    the first failure; Cancel then ends the fetch without waiting for the retry."""
    thread = window.fetcher.start(exchange="okx", symbol="BTC/USDT:USDT", interval="1m",
                                  start=pd.Timestamp("2025-05-09T00:00Z"), end=pd.Timestamp("2025-05-09T01:00Z"),
                                  api_base="http://nonexistent.invalid", retry_delay=600)
    dialog = window.fetcher.dialog
    qtbot.waitUntil(lambda: "retry 1 of 5" in dialog.labelText(), timeout=10_000)
    assert "okx markets: cannot reach the exchange (name resolution failed: are you offline?)" in dialog.labelText()
    with qtbot.waitSignal(window.fetcher.worker.cancelled, timeout=10_000):
        dialog.canceled.emit()  # the Cancel button
    thread.join(10)
    assert not thread.is_alive() and window.fetcher.last_result is None
    assert "fetch cancelled" in window.statusBar().currentMessage()


def test_status_label_shows_what_could_not_be_stored(window):
    """Quarantined events and dropped frames are shown in the label, the last reason in the tooltip."""
    from liqscope.models.connectors import ExchangeStatus

    from PySide6.QtWidgets import QLabel

    window.live.labels["binance"] = label = QLabel()
    window.live._show_status(ExchangeStatus("binance", "connected", quarantined=3, oversize=1, unstored=12,
                                            last_quarantined="price is not a number (True)"))
    assert "3 quarantined" in label.text() and "1 oversize frames dropped" in label.text()
    assert "12 waiting for the store" in label.text()
    assert "price is not a number (True)" in label.toolTip()


def test_the_windows_recorder_keeps_the_store_compacted_and_the_context_current(_isolated_data_dir):
    """Recording from the window writes to the local store with background maintenance and open interest /
    funding polling on (built, not started: nothing connects)."""
    from liqscope.gui.live import recording_to_store

    rec = recording_to_store(["binance", "okx"])
    assert rec.maintenance is not None and rec.context is not None
