"""File → Import and drag-and-drop through the real window, against a temporary store."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from liqscope.models.importers import read_file
from liqscope.models.store import open_store

FIXTURES = Path(__file__).parents[1] / "models" / "fixtures"
TARDIS = FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"


def store_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def window_size():
    return 1200, 800


def wait_import(qtbot, window, thread):
    assert thread is not None
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        thread.join(20)


def test_import_shows_the_new_data_without_restart(qtbot, window):
    expected = read_file(TARDIS).frame
    thread = window.importer.start([str(TARDIS)])
    wait_import(qtbot, window, thread)
    qtbot.waitUntil(lambda: not window.dataset.is_demo, timeout=5000)
    assert "Local store" in window.dataset.label
    got = window.dataset.liquidations.totals()
    assert got.count == len(expected)
    assert got.total_usd == pytest.approx(expected["notional_usd"].sum())
    assert window.importer.last_reports[0].new == len(expected)
    assert f"imported {len(expected)} rows ({len(expected)} new)" in window.statusBar().currentMessage()
    # re-importing the same file adds nothing
    thread = window.importer.start([str(TARDIS)])
    wait_import(qtbot, window, thread)
    assert window.importer.last_reports[0].new == 0
    assert window.dataset.liquidations.totals().count == len(expected)


def test_cancel_leaves_the_store_unchanged(qtbot, window, _isolated_data_dir):
    thread = window.importer.start([str(TARDIS)])
    wait_import(qtbot, window, thread)
    before = store_digest(_isolated_data_dir)
    worker = window.importer.worker
    start = worker.start
    # as if the user pressed Cancel at once: the task is cancelled before the import reads a byte
    worker.start = lambda fn: start(lambda task: (task.cancel.set(), fn(task))[1])
    try:
        with qtbot.waitSignal(worker.cancelled, timeout=20_000):  # connect before the worker runs
            thread = window.importer.start([str(FIXTURES / "generic-bybit-liquidations.csv")],
                                           fmt="generic", side_convention="position")
            thread.join(20)
    finally:
        worker.start = start
    assert "cancelled" in window.statusBar().currentMessage()
    assert store_digest(_isolated_data_dir) == before


def test_bad_file_gets_one_line_error_and_no_write(qtbot, window, tmp_path, monkeypatch, _isolated_data_dir):
    monkeypatch.setattr(QMessageBox, "exec", lambda self: 0)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\x8f\xffPK\x03\x04 not a csv \x00\x01" * 50)
    before = store_digest(_isolated_data_dir)
    with qtbot.waitSignal(window.importer.worker.failed, timeout=20_000):  # connect before the worker runs
        window.importer.start([str(garbage)]).join(20)
    text = window.importer.error_box.text()
    assert "garbage.csv" in text and "\n" not in text
    assert store_digest(_isolated_data_dir) == before
    assert window.dataset.is_demo


def test_unrecognised_columns_offer_a_mapping_dialog(qtbot, window, tmp_path):
    from liqscope.gui.importing import MappingDialog, file_columns

    odd = tmp_path / "vendor.csv"
    odd.write_text("time,venue,ticker,dir,px,size\n"
                   "2025-05-09T10:00:00Z,okx,BTC-USDT-SWAP,sell,100000,0.5\n"
                   "2025-05-09T10:00:01Z,okx,BTC-USDT-SWAP,buy,100010,2\n")
    cols = file_columns(str(odd))
    assert cols == ["time", "venue", "ticker", "dir", "px", "size"]
    dlg = MappingDialog(str(odd), cols)
    qtbot.addWidget(dlg)
    for field, col in {"ts": "time", "exchange": "venue", "symbol": "ticker", "side": "dir",
                       "price": "px", "qty": "size"}.items():
        box = dlg.combos[field]
        box.setCurrentIndex(box.findData(col))
    dlg.side.setCurrentIndex(dlg.side.findData("order"))
    opts = dlg.options()
    assert opts["mapping"]["ts"] == "time" and opts["side_convention"] == "order"
    thread = window.importer.start([str(odd)], **opts)
    wait_import(qtbot, window, thread)
    frame = window.dataset.liquidations.frame
    # order side: a SELL order liquidates a long, a BUY order a short
    assert frame.set_index("price")["side"].to_dict() == {100000.0: "long", 100010.0: "short"}
    assert frame["notional_usd"].sum() == pytest.approx(100000 * 0.5 + 100010 * 2)


def test_drop_files_on_the_window_imports_them(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(TARDIS))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    wait_import(qtbot, window, window.importer.thread)
    qtbot.waitUntil(lambda: not window.dataset.is_demo, timeout=5000)
    assert window.dataset.liquidations.totals().count == len(read_file(TARDIS).frame)
    assert len(open_store().info()) >= 1


def test_unknown_contract_size_is_asked_for_never_guessed(qtbot, window, monkeypatch, _isolated_data_dir):
    from PySide6.QtWidgets import QInputDialog

    okx = FIXTURES / "okex-swap_liquidations_2024-03-01_PERPETUALS.csv"
    monkeypatch.setattr(QMessageBox, "exec", lambda self: 0)
    before = store_digest(_isolated_data_dir)
    with qtbot.waitSignal(window.importer.worker.failed, timeout=20_000):
        window.importer.start([str(okx)]).join(20)
    box = window.importer.error_box
    assert "ETH-USDT-SWAP" in box.text() and "contract" in box.text()
    assert "Set contract size…" in [b.text() for b in box.buttons()]
    assert store_digest(_isolated_data_dir) == before
    # the user states the size (OKX: ETH-USDT-SWAP is 0.1 ETH per contract); the next unknown symbol
    # is asked for in turn, and the earlier answer is kept
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("ETH-USDT-SWAP=0.1", True))
    with qtbot.waitSignal(window.importer.worker.failed, timeout=20_000):
        window.importer.ask_contract_size(box.text())
        window.importer.thread.join(20)
    assert "XRP-USD-SWAP" in window.importer.error_box.text()
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("XRP-USD-SWAP=10usd", True))
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        window.importer.ask_contract_size(window.importer.error_box.text())
        window.importer.thread.join(20)
    frame = window.dataset.liquidations.frame
    eth = frame[frame["symbol"] == "ETH-USDT-SWAP"]
    assert eth["qty"].tolist() == pytest.approx([12 * 0.1])
    assert eth["notional_usd"].tolist() == pytest.approx([12 * 0.1 * 3400.5])
    xrp = frame[frame["symbol"] == "XRP-USD-SWAP"]  # inverse: 8 contracts of 10 USD
    assert xrp["notional_usd"].tolist() == pytest.approx([80.0])


def test_a_file_whose_kind_its_name_does_not_say_is_asked_for(qtbot, window, tmp_path, monkeypatch):
    """A Tardis-shaped file named BTCUSDT.csv could be trades or liquidations: the window asks,
    and imports it as liquidations only when the user says so."""
    import gzip

    src = TARDIS.read_text()
    path = tmp_path / "BTCUSDT.csv.gz"
    path.write_bytes(gzip.compress(src.encode()))
    clicked = {}

    def answer(box):
        buttons = [b for b in box.buttons() if b.text().startswith("It holds")]
        clicked["texts"] = [b.text() for b in buttons]
        box.clickedButton = lambda: buttons[0]  # the user picks "It holds liquidations (Tardis)"
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    with qtbot.waitSignal(window.importer.worker.failed, timeout=20_000):
        window.importer.start([str(path)]).join(20)
    assert clicked["texts"] == ["It holds liquidations (Tardis)"]
    assert "--format tardis-liquidations" in window.importer.error_box.text()
    wait_import(qtbot, window, window.importer.thread)
    assert window.dataset.liquidations.totals().count == len(read_file(TARDIS).frame)


def test_cancel_after_a_stored_batch_says_what_was_stored(qtbot, window, tmp_path):
    """A long import commits batch by batch: a cancel after the first batch says how many rows are stored
    (not 'the store is unchanged') and shows them."""
    from liqscope.models.importers import run

    path = tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
    ts0 = 1709251200000000
    rows = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    rows += [f"binance-futures,BTCUSDT,{ts0 + i * 1_000_000},{ts0 + i * 1_000_000},{i},sell,60000,0.01"
             for i in range(2000)]
    path.write_text("\n".join(rows) + "\n")
    worker = window.importer.worker
    start = worker.start
    flush = run._Commits.flush

    def flush_then_cancel(self):  # as if the user pressed Cancel right after the first batch was stored
        flush(self)
        if self.committed and self.task is not None:
            self.task.cancel.set()
    run._Commits.flush = flush_then_cancel
    try:
        with qtbot.waitSignal(worker.cancelled, timeout=20_000):
            window.importer.start([str(path)], batch_rows=500).join(20)
    finally:
        run._Commits.flush = flush
        worker.start = start
    message = window.statusBar().currentMessage()
    assert "2,000 rows were stored before it" in message and "again adds the rest" in message
    assert "unchanged" not in message
