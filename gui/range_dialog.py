"""Custom range… : a start and an end picked in UTC (start inclusive, end exclusive)."""
from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDateTimeEdit, QDialog, QDialogButtonBox, QFormLayout, QWidget


def ask_range(parent: QWidget, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The window the user picked, or None (cancelled, or an end not after the start)."""
    dlg = QDialog(parent)
    dlg.setWindowTitle("Custom range (UTC)")
    form = QFormLayout(dlg)
    edits = []
    for label, ts in (("Start (inclusive)", start), ("End (exclusive)", end)):
        e = QDateTimeEdit(dlg)
        e.setTimeSpec(Qt.TimeSpec.UTC)
        e.setDisplayFormat("yyyy-MM-dd HH:mm")
        e.setCalendarPopup(True)
        e.setDateTime(ts.to_pydatetime())
        form.addRow(label, e)
        edits.append(e)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dlg.accept)
    buttons.rejected.connect(dlg.reject)
    form.addRow(buttons)
    if dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    a, b = (pd.Timestamp(e.dateTime().toSecsSinceEpoch(), unit="s", tz="UTC") for e in edits)
    return (a, b) if b > a else None
