"""Import as series…: a file of outside data (ETF flows, Fear & Greed, BTC dominance, your own indicator)
as named series in the store, the GUI side of ``liqscope import FILE --series NAME``.

The dialog asks the series name, the time column, the value columns (a checkable list of the columns
whose cells are all numbers, read with the importer's own rules) and the unit; the import itself is
``models/series_import.py`` ``import_series``, run by the import controller on its worker.
"""
from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem)

from liqscope.models.series_import import TIME_NAMES

UNITS = ("", "USD", "index", "%", "BTC")
PROBE_MAX_BYTES = 64 * 1024 * 1024  # larger files: the header only, every column offered


def series_columns(path: str, header_only=None) -> tuple[list[str], list[str]]:
    """The file's columns, and those whose cells are all numbers (or empty, not all), as ``import_series``
    reads them (CSV plain/gz/zip or Parquet). A file over ``PROBE_MAX_BYTES`` is not read through:
    ``header_only(path)`` gives its columns, every one offered. Raises ``SeriesInputError`` (one line)
    for a file it cannot read."""
    from liqscope.models import series_import as si

    p = Path(path)
    if header_only is not None and p.is_file() and p.stat().st_size > PROBE_MAX_BYTES:
        header = list(header_only(path))
        return header, header
    header, cols, _where, typed = si._cells(p)
    numeric = []
    for c in header:
        _values, present, bad = si._numbers(cols[c], typed)
        if bad is None and present.any():
            numeric.append(c)
    return header, numeric


def default_name(path: str) -> str:
    """A series name from the file name: ``ETF flows (2025).csv`` -> ``ETF_flows_2025``."""
    stem = Path(path).name
    for ext in (".gz", ".zip", ".csv", ".txt", ".parquet"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem).strip("_.-")
    return name[:100] or "series"


class SeriesDialog(QDialog):
    """Name, time column, value columns and unit for ``import_series``."""

    def __init__(self, path: str, columns: list[str], numeric: list[str], parent=None, previous: dict | None = None):
        super().__init__(parent)
        previous = previous or {}
        self.setWindowTitle("Import as series")
        self.setMinimumWidth(460)
        self.columns, self.numeric = list(columns), list(numeric)
        form = QFormLayout(self)
        intro = QLabel(f"<b>{Path(path).name}</b>: import as a named outside series (ETF flows, Fear &amp; "
                       "Greed, dominance, your own indicator), shown in View ▸ Context panes.")
        intro.setWordWrap(True)
        form.addRow(intro)
        self.name = QLineEdit(previous.get("name") or default_name(path))
        self.name.setObjectName("series_name")
        self.name.setToolTip("Letters, digits, '_', '.' and '-'; several value columns are stored as NAME_<column>")
        form.addRow("Series name", self.name)
        self.time = QComboBox()
        self.time.setObjectName("series_time_column")
        for c in self.columns:
            self.time.addItem(c, c)
        guess = previous.get("time_column") or next((c for c in self.columns if c.lower() in TIME_NAMES), None)
        if guess in self.columns:
            self.time.setCurrentIndex(self.time.findData(guess))
        form.addRow("Time column", self.time)
        self.values = QListWidget()
        self.values.setObjectName("series_value_columns")
        self.values.setToolTip("The columns whose cells are numbers; each checked one becomes a series")
        self._checked = set(previous.get("value_columns") or [])
        self._fill_values(first=not self._checked)
        self.time.currentIndexChanged.connect(lambda _i: self._fill_values())
        self.values.setMaximumHeight(160)
        form.addRow("Value columns", self.values)
        several = QLabel("Several value columns are stored as one series each, named NAME_<column>.")
        several.setWordWrap(True)
        several.setProperty("role", "caption")
        form.addRow(several)
        self.unit = QComboBox()
        self.unit.setObjectName("series_unit")
        self.unit.setEditable(True)
        self.unit.addItems(list(UNITS))
        self.unit.setCurrentText(previous.get("unit") or "")
        self.unit.setToolTip("USD values are drawn as bars (flows), others as a line; e.g. USD, index, %")
        form.addRow("Unit", self.unit)
        self.problem = QLabel()
        self.problem.setObjectName("series_problem")
        self.problem.setWordWrap(True)
        self.problem.hide()
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _fill_values(self, first: bool = False) -> None:
        if not first:
            self._checked = set(self.value_columns()) if self.values.count() else self._checked
        self.values.clear()
        time = self.time.currentData()
        for c in self.numeric:
            if c == time:
                continue
            item = QListWidgetItem(c)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if first or c in self._checked else Qt.CheckState.Unchecked)
            self.values.addItem(item)

    def value_columns(self) -> list[str]:
        return [self.values.item(i).text() for i in range(self.values.count())
                if self.values.item(i).checkState() == Qt.CheckState.Checked]

    def set_value_columns(self, columns: list[str]) -> None:
        for i in range(self.values.count()):
            item = self.values.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in columns else Qt.CheckState.Unchecked)

    def problem_text(self) -> str:
        """Why these answers cannot be imported, in one line ('' when they can)."""
        from liqscope.models.store.context_tables import series_name_problem

        name = self.name.text().strip()
        if not name:
            return "Give the series a name, e.g. etf_flows"
        problem = series_name_problem(name)
        if problem:
            return problem[0].upper() + problem[1:]
        if self.time.currentData() is None:
            return "The file has no columns"
        if not self.value_columns():
            return ("Check at least one value column" if self.values.count()
                    else "No column other than the time column holds numbers: this file has no values to import")
        return ""

    def accept(self) -> None:
        problem = self.problem_text()
        if problem:
            self.problem.setText(problem)
            self.problem.show()
            return
        super().accept()

    def options(self) -> dict:
        """Keyword arguments for ``import_series`` (besides paths and store)."""
        return {"name": self.name.text().strip(), "time_column": self.time.currentData(),
                "value_columns": self.value_columns(), "unit": self.unit.currentText().strip() or None}


__all__ = ["SeriesDialog", "series_columns", "default_name"]
