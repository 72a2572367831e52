"""File ▸ Import files… on an outside series (ETF flows, Fear & Greed): the importer does not recognise the
columns, the error box offers Import as series…, the dialog asks name, time column, value columns and unit,
``import_series`` stores the series, the window re-reads the store; bad input is one line, store unchanged."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from PySide6.QtWidgets import QDialog, QMessageBox

from liqscope.gui.series_dialog import SeriesDialog, default_name, series_columns
from liqscope.models.store import open_store

T0 = pd.Timestamp("2025-05-09T00:00Z")
FLOWS = ("Date,IBIT,FBTC,note\n"
         "2025-05-07,300000000,50000000,quiet\n"
         "2025-05-08,500000000,100000000,\n"
         "2025-05-09,800000000,-20000000,big day\n")


@pytest.fixture
def window_size():
    return 1200, 800


def store_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def click(monkeypatch, text: str, seen: list):
    """Every error box is answered by clicking the button ``text`` (if it has one; else Close)."""
    def exec_(box):
        seen.append((box.text(), [b.text() for b in box.buttons()]))
        match = [b for b in box.buttons() if b.text() == text]
        box.clickedButton = lambda: match[0] if match else None
        return 0
    monkeypatch.setattr(QMessageBox, "exec", exec_)


def answer_series(monkeypatch, **answers):
    """The user fills the series dialog and presses OK (what the dialog offered is kept for asserts)."""
    offered = {}

    def exec_(dlg):
        offered["name"] = dlg.name.text()
        offered["time"] = dlg.time.currentData()
        offered["values"] = [dlg.values.item(i).text() for i in range(dlg.values.count())]
        offered["checked"] = dlg.value_columns()
        if "name" in answers:
            dlg.name.setText(answers["name"])
        if "time_column" in answers:
            dlg.time.setCurrentIndex(dlg.time.findData(answers["time_column"]))
        if "value_columns" in answers:
            dlg.set_value_columns(answers["value_columns"])
        if "unit" in answers:
            dlg.unit.setCurrentText(answers["unit"])
        dlg.accept()
        offered["problem"] = dlg.problem.text() if not dlg.problem.isHidden() else ""
        return dlg.result()
    monkeypatch.setattr(SeriesDialog, "exec", exec_)
    return offered


def import_and_fail(qtbot, window, path):
    with qtbot.waitSignal(window.importer.worker.failed, timeout=20_000):
        window.importer.start([str(path)]).join(20)


def test_unrecognised_columns_offer_import_as_series_and_store_it(qtbot, window, tmp_path, monkeypatch):
    flows = tmp_path / "etf flows.csv"
    flows.write_text(FLOWS)
    seen = []
    click(monkeypatch, "Import as series…", seen)
    offered = answer_series(monkeypatch, name="etf_flows", value_columns=["IBIT", "FBTC"], unit="USD")
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        import_and_fail(qtbot, window, flows)  # the liquidation importers do not know these columns
        window.importer.thread.join(20)  # the series import the answers started
    [(text, buttons)] = seen
    assert "unrecognised columns" in text and "Import as series…" in buttons and "Map columns…" in buttons
    # what the dialog offered: a name from the file, the date column, the numeric columns all checked
    assert offered == {"name": "etf_flows", "time": "Date", "values": ["IBIT", "FBTC"], "checked": ["IBIT", "FBTC"],
                       "problem": ""}
    stored = open_store().outside_series()
    assert sorted(set(stored["name"])) == ["etf_flows_FBTC", "etf_flows_IBIT"]
    ibit = stored[stored["name"] == "etf_flows_IBIT"].sort_values("ts")
    assert list(ibit["value"]) == [3e8, 5e8, 8e8] and set(ibit["unit"]) == {"USD"}
    assert list(ibit["ts"]) == [T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1), T0]
    assert set(stored["source"]) == {"file:etf flows.csv"}
    # the window re-read the store: the series are context panes to turn on
    assert not window.dataset.is_demo
    assert {"series:etf_flows_IBIT", "series:etf_flows_FBTC"} <= set(window.context_panes.available())
    assert "as series etf_flows_IBIT, etf_flows_FBTC" in window.statusBar().currentMessage()
    assert [r.new for r in window.importer.last_reports] == [6]


def test_series_dialog_offers_numeric_columns_and_checks_the_answers(qtbot, tmp_path):
    fg = tmp_path / "Fear & Greed (2025).csv"
    fg.write_text("when,fear_greed,classification\n1746748800,84,Extreme Greed\n1746662400,78,Greed\n")
    columns, numeric = series_columns(str(fg))
    assert columns == ["when", "fear_greed", "classification"]
    assert numeric == ["when", "fear_greed"]  # epoch seconds are numbers; the text column is not a value
    assert default_name(str(fg)) == "Fear_Greed_2025"
    dlg = SeriesDialog(str(fg), columns, numeric)
    qtbot.addWidget(dlg)
    assert dlg.time.currentData() == "when"  # no time-named column: the first
    dlg.time.setCurrentIndex(dlg.time.findData("when"))
    assert [dlg.values.item(i).text() for i in range(dlg.values.count())] == ["fear_greed"]
    dlg.name.setText("fear greed!")
    dlg.accept()
    assert dlg.result() != QDialog.DialogCode.Accepted
    assert dlg.problem.text().startswith("Series name 'fear greed!' is not allowed") and "\n" not in dlg.problem.text()
    dlg.name.setText("fear_greed")
    dlg.set_value_columns([])
    dlg.accept()
    assert dlg.problem.text() == "Check at least one value column"
    dlg.set_value_columns(["fear_greed"])
    dlg.unit.setCurrentText("index")
    dlg.accept()
    assert dlg.result() == QDialog.DialogCode.Accepted
    assert dlg.options() == {"name": "fear_greed", "time_column": "when", "value_columns": ["fear_greed"],
                             "unit": "index"}


def test_series_import_of_fear_and_greed_shows_in_a_pane(qtbot, window, tmp_path, monkeypatch):
    fg = tmp_path / "fng.csv"
    fg.write_text("date,value,value_classification\n2025-05-08,78,Greed\n2025-05-09,84,Extreme Greed\n")
    answer_series(monkeypatch, name="fear_greed", unit="index")
    with qtbot.waitSignal(window.loader.loaded, timeout=20_000):
        window.importer.import_as_series(str(fg))
        window.importer.thread.join(20)
    s = open_store().outside_series("fear_greed")
    assert list(s["value"]) == [78.0, 84.0] and set(s["unit"]) == {"index"}
    window.context_panes.set_on("series:fear_greed", True)
    window.state.update(start=T0, end=T0 + pd.Timedelta(days=1))
    window.state.flush()
    pane = window.context_panes.panes["series:fear_greed"]
    ts, values = pane.values["fear_greed"]
    assert 84.0 in list(values)


def test_a_bad_series_file_says_what_is_wrong_in_one_line(qtbot, window, tmp_path, monkeypatch, _isolated_data_dir):
    bad = tmp_path / "flows.csv"
    bad.write_text("Date,IBIT\n2025-05-08,500000000\n2025-05-09,abc\n")
    seen = []
    click(monkeypatch, "Close", seen)
    answer_series(monkeypatch, name="etf", value_columns=[], unit="USD")
    before = store_digest(_isolated_data_dir)
    # IBIT holds a word: it is not offered as a value column, so the dialog has none to import
    window.importer.import_as_series(str(bad))
    dlg = window.importer.series_dialog
    assert dlg.problem.text().startswith("No column other than the time column holds numbers")
    assert window.importer.thread is None or not window.importer.thread.is_alive()
    # named explicitly, the importer says which line and column is wrong, and stores nothing
    with qtbot.waitSignal(window.importer.worker.failed, timeout=20_000):
        window.importer.start_series([str(bad)], name="etf", time_column="Date", value_columns=["IBIT"],
                                     unit="USD").join(20)
    [(text, buttons)] = seen
    assert text == "flows.csv, line 3, column 'IBIT': 'abc' is not a number"
    assert "Import as series…" in buttons  # to change the answers
    assert window.importer.error_box.informativeText() == "Nothing was added: the store is unchanged."
    assert store_digest(_isolated_data_dir) == before and window.dataset.is_demo


def test_an_unreadable_file_is_one_line(qtbot, window, tmp_path, monkeypatch):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\x8f\xff not a csv \x00\x01" * 50)
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: warned.append(text))
    window.importer.import_as_series(str(garbage))
    assert warned == ["garbage.csv: binary data, not a CSV or Parquet file"]
