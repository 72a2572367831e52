"""File → Import… and drag-and-drop: the user's files into the local store.

The importers run in a worker thread behind a cancellable progress dialog; a
cancel or a bad file leaves the store as it was (the store commits all files of
one import atomically). Afterwards the store is re-read off the GUI thread and
swapped into the window, so the data appears without a restart. A file whose
columns no format recognises gets a column-mapping dialog, or, when it is an
outside series (ETF flows, Fear & Greed, dominance...), Import as series…
(gui/series_dialog.py), which stores it with ``import_series`` as named series.
"""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QInputDialog, QLabel,
                               QLineEdit, QMessageBox, QProgressDialog)

from liqscope.models.importers import (SIDE_CONVENTIONS, AmbiguousKindError, ImportCancelled, InputError,
                                       UnknownColumnsError, UnknownContractSizeError, import_files)
from liqscope.models.importers.generic import CANDLE_FIELDS, LIQ_FIELDS
from liqscope.models.progress import Step
from liqscope.models.schema import SchemaError
from liqscope.models.series_import import SeriesInputError, import_series
from liqscope.models.store import StoreError, open_store

from .loader import close_progress, progress_dialog
from .series_dialog import SeriesDialog, series_columns
from .worker import Worker

FILE_FILTER = "Data files (*.csv *.csv.gz *.gz *.zip *.parquet *.txt);;All files (*)"
NOT_IN_FILE = "(not in file)"
KIND_WORDS = {"tardis-liquidations": "liquidations (Tardis)"}  # --format name -> what the user is asked


def file_columns(path: str) -> list[str]:
    """Column names of a CSV (plain, gzip or zip) or Parquet file, for the mapping dialog."""
    from liqscope.models.importers.csvread import header_fields, sniff_delimiter
    from liqscope.models.importers.source import open_source, parquet_file

    src = open_source(path)
    try:
        if src.container == "parquet":
            return list(parquet_file(src).schema_arrow.names)
        return header_fields(src, sniff_delimiter(src))
    finally:
        src.close()


class MappingDialog(QDialog):
    """Which column holds which field, and what the side column means."""

    def __init__(self, path: str, columns: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Map columns")
        form = QFormLayout(self)
        form.addRow(QLabel(f"<b>{Path(path).name}</b>: Liqscope does not recognise these columns.<br>"
                           "Say which column holds each field."))
        self.kind = QComboBox()
        self.kind.addItem("Liquidations", LIQ_FIELDS)
        self.kind.addItem("Candles (OHLCV)", CANDLE_FIELDS)
        self.kind.currentIndexChanged.connect(self._fill)
        form.addRow("File holds", self.kind)
        self.columns = columns
        self.combos: dict[str, QComboBox] = {}
        self._form = form
        self.side = QComboBox()
        self.side.setObjectName("side_convention")
        for conv in SIDE_CONVENTIONS:
            label = {"position": "position side (long/short = the position liquidated)",
                     "order": "order side (a SELL order liquidates a long)"}.get(conv, conv)
            self.side.addItem(label, conv)
        self.exchange = QLineEdit()
        self.exchange.setPlaceholderText("if the file has no exchange column, e.g. binance")
        self.symbol = QLineEdit()
        self.symbol.setPlaceholderText("if the file has no symbol column, e.g. BTCUSDT")
        self._fill()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._buttons = buttons
        form.addRow(buttons)

    def _fill(self) -> None:
        for combo in self.combos.values():
            self._form.removeRow(combo)
        for w in (self.side, self.exchange, self.symbol):
            if w.parent() is not None:
                self._form.takeRow(w)
        self.combos = {}
        insert_at = 2
        for field in self.kind.currentData():
            box = QComboBox()
            box.setObjectName(f"map_{field}")
            box.addItem(NOT_IN_FILE, None)
            for col in self.columns:
                box.addItem(col, col)
            guess = next((c for c in self.columns if c.lower() == field.lower()), None)
            if guess:
                box.setCurrentIndex(box.findData(guess))
            self._form.insertRow(insert_at, field, box)
            insert_at += 1
            self.combos[field] = box
        if self.kind.currentIndex() == 0:
            self._form.insertRow(insert_at, "Side means", self.side)
            insert_at += 1
        self._form.insertRow(insert_at, "Exchange", self.exchange)
        self._form.insertRow(insert_at + 1, "Symbol", self.symbol)

    def options(self) -> dict:
        """Keyword arguments for ``import_files``."""
        mapping = {f: b.currentData() for f, b in self.combos.items() if b.currentData()}
        opts = {"fmt": "generic", "mapping": mapping}
        if self.kind.currentIndex() == 0:
            opts["side_convention"] = self.side.currentData()
        if self.exchange.text().strip():
            opts["exchange"] = self.exchange.text().strip().lower()
        if self.symbol.text().strip():
            opts["symbol"] = self.symbol.text().strip()
        return opts


class ImportController(QObject):
    """Runs imports for one main window on the one worker type; the store is re-read afterwards."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.dialog: QProgressDialog | None = None
        self._paths: list[str] = []
        self._options: dict = {}
        self._series: dict | None = None  # the last Import as series… answers (path and options)
        self.last_reports = None
        self.last_error: Exception | None = None
        self._stored_before_stop = 0  # rows a cancelled long import had stored (batches commit as they go)
        self.worker = Worker(self, name="liqscope-import")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)

    @property
    def thread(self) -> threading.Thread | None:
        return self.worker.thread

    def ask_and_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Import files into the local store", "", FILE_FILTER)
        if paths:
            self.start(paths)

    def start(self, paths: list[str], **options) -> threading.Thread | None:
        """Import ``paths`` in a worker; returns the thread (tests join it)."""
        if self.worker.running:
            QMessageBox.information(self.window, "Import", "An import is already running.")
            return None
        self._paths = [str(p) for p in paths]
        self._options = dict(options)
        self._series = None
        self.dialog = progress_dialog(self.window, "Import", f"Importing {len(paths)} file(s)…", self.worker.cancel)
        files = list(self._paths)
        self._stored_before_stop = 0

        def run(task):
            try:
                return import_files(files, store=open_store(), task=task, **options)
            except ImportCancelled as exc:  # a long import may have stored batches before the cancel
                self._stored_before_stop = getattr(exc, "committed", 0) or 0
                raise
        return self.worker.start(run)

    def start_series(self, paths: list[str], *, name: str, time_column: str | None = None,
                     value_columns: list[str] | None = None, unit: str | None = None) -> threading.Thread | None:
        """Import ``paths`` as the outside series ``name`` (``import_series``: every series of every file
        in one commit) in the worker; returns the thread (tests join it)."""
        if self.worker.running:
            QMessageBox.information(self.window, "Import", "An import is already running.")
            return None
        files = [str(p) for p in paths]
        opts = {"name": name, "time_column": time_column, "value_columns": list(value_columns or []) or None,
                "unit": unit}
        self._paths, self._options = files, {}
        self._series = {"path": files[0], **opts}
        self._stored_before_stop = 0
        self.dialog = progress_dialog(self.window, "Import", f"Importing {len(files)} file(s) as series {name}…",
                                      self.worker.cancel)

        def run(task):
            task.check()  # one commit: a cancel before it leaves the store as it was
            return import_series(files, store=open_store(), **opts)
        return self.worker.start(run)

    def cancel(self) -> None:
        self.worker.cancel()

    # -- results (GUI thread) --------------------------------------------------
    def _on_progress(self, step: Step) -> None:
        if self.dialog is not None:
            self.dialog.setValue(int(1000 * step.fraction))
            if step.message:
                self.dialog.setLabelText(step.message)

    def _close_dialog(self) -> None:
        close_progress(self.dialog)
        self.dialog = None

    def _on_finished(self, reports) -> None:
        self._close_dialog()
        lines = [r.summary() for r in reports]
        if self._series is not None:  # say where the new series are, and what was fixed on the way
            lines += [f"{Path(r.path).name}: {w}" for r in reports for w in getattr(r, "warnings", [])]
            lines.append("View ▸ Context panes shows them")
        self.window.statusBar().showMessage("; ".join(lines), 15_000)
        self.last_reports = reports
        self.reload_store()

    def reload_store(self) -> None:
        """Re-read the store off the GUI thread and show it (after an import or a fetch)."""
        self.window.loader.reload_store()

    def _on_cancelled(self) -> None:
        self._close_dialog()
        stored = self._stored_before_stop
        self.window.statusBar().showMessage(
            f"Import cancelled: {stored:,} rows were stored before it; importing the same files again adds the rest."
            if stored else "Import cancelled: the store is unchanged.", 10_000)
        if stored:
            self.reload_store()

    def _on_failed(self, exc: Exception) -> None:
        self._close_dialog()
        self.last_error = exc
        if isinstance(exc, (InputError, SeriesInputError, SchemaError, StoreError, ValueError, OSError)):
            self._explain(exc)
            return
        QMessageBox.critical(self.window, "Import failed", f"{type(exc).__name__}: {exc}\n\nThe store is unchanged.")

    def _explain(self, exc: Exception) -> None:
        """One-line error; offer column mapping or a contract size when that is what the file needs."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Import failed", str(exc), parent=self.window)
        box.setInformativeText("Importing the same files again after a fix adds the rest, never a row twice."
                               if getattr(exc, "committed", 0) else "Nothing was added: the store is unchanged.")
        box.setObjectName("import_error")
        map_button = size_button = series_button = None
        kind_buttons = {}
        if isinstance(exc, AmbiguousKindError):  # the file's name does not say what it holds: the user does
            for fmt in exc.formats:
                kind_buttons[box.addButton(f"It holds {KIND_WORDS.get(fmt, fmt)}", QMessageBox.ButtonRole.ActionRole)] = fmt
        if isinstance(exc, UnknownColumnsError) and getattr(exc, "file", None):
            map_button = box.addButton("Map columns…", QMessageBox.ButtonRole.ActionRole)
        if (isinstance(exc, UnknownColumnsError) and getattr(exc, "file", None)) or (
                isinstance(exc, (SeriesInputError, SchemaError)) and self._series is not None):
            # an outside series (ETF flows, Fear & Greed...): a time column and values, no liquidation fields
            series_button = box.addButton("Import as series…", QMessageBox.ButtonRole.ActionRole)
        if isinstance(exc, UnknownContractSizeError):
            size_button = box.addButton("Set contract size…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        self.error_box = box
        box.exec()
        if map_button is not None and box.clickedButton() is map_button:
            self.map_and_import(self._failed_path(exc))
        elif series_button is not None and box.clickedButton() is series_button:
            if self._series is not None:  # the series import failed: ask again, with the answers given
                self.import_as_series(self._series["path"], previous=self._series)
            else:
                self.import_as_series(self._failed_path(exc))
        elif size_button is not None and box.clickedButton() is size_button:
            self.ask_contract_size(str(exc))
        elif box.clickedButton() in kind_buttons:
            self.start(self._paths, **{**self._options, "fmt": kind_buttons[box.clickedButton()]})

    def _failed_path(self, exc: Exception) -> str:
        file = getattr(exc, "file", None) or ""
        return next((p for p in self._paths if Path(p).name == Path(file).name or p == file), self._paths[0])

    def import_as_series(self, path: str, previous: dict | None = None) -> None:
        """Ask name, time column, value columns and unit, then import ``path`` as outside series."""
        try:
            columns, numeric = series_columns(path, header_only=file_columns)
        except Exception as exc:  # one line, naming the file once
            text = str(exc) if isinstance(exc, SeriesInputError) else f"{Path(path).name}: cannot read columns: {exc}"
            QMessageBox.warning(self.window, "Import failed", " ".join(text.split()))
            return
        dlg = SeriesDialog(path, columns, numeric, self.window, previous=previous)
        self.series_dialog = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.start_series([path], **dlg.options())

    def ask_contract_size(self, reason: str) -> None:
        """The file is in contracts of a size Liqscope does not know: the user states it, never a guess."""
        from liqscope.models.importers.contracts import HELP

        text, ok = QInputDialog.getText(self.window, "Contract size", f"{reason}\n\n{HELP}\n\nSYMBOL=N[usd], …:")
        if ok and text.strip():
            stated = [v for v in (self._options.get("contract_size"), text.strip()) if v]  # keep earlier answers
            self.start(self._paths, **{**self._options, "contract_size": ",".join(map(str, stated))})

    def map_and_import(self, path: str) -> None:
        try:
            columns = file_columns(path)
        except Exception as exc:
            QMessageBox.warning(self.window, "Import failed", f"{path}: cannot read columns: {exc}")
            return
        dlg = MappingDialog(path, columns, self.window)
        self.mapping_dialog = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.start([path], **dlg.options())


def accept_drop(event) -> list[str]:
    """Local file paths in a drag-and-drop event (empty if it carries none)."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and Path(u.toLocalFile()).is_file()]
