"""Load data off the GUI thread so the window paints first and never freezes."""
from __future__ import annotations

import threading
import traceback
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget


class BackgroundLoader(QObject):
    """Runs ``fn()`` in a worker thread; ``loaded``/``failed`` arrive on the GUI thread (queued)."""

    loaded = Signal(object)
    failed = Signal(str)

    def start(self, fn: Callable[[], object]) -> threading.Thread:
        def work():
            try:
                result = fn()
            except Exception as exc:  # reported to the user, not swallowed
                traceback.print_exc()
                self.failed.emit(f"{type(exc).__name__}: {exc}")
            else:
                self.loaded.emit(result)

        thread = threading.Thread(target=work, name="liqscope-loader", daemon=True)
        thread.start()
        return thread


def prepare(dataset):
    """Everything slow that the first frames need: index and default window."""
    dataset.index()
    dataset.busiest_day()
    return dataset


def progress_dialog(parent: QWidget, title: str, text: str, cancel: threading.Event) -> QProgressDialog:
    """A window-modal 0..1000 progress dialog whose Cancel sets ``cancel`` (read by the worker)."""
    dialog = QProgressDialog(text, "Cancel", 0, 1000, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(300)
    dialog.canceled.connect(cancel.set)
    return dialog


def close_progress(dialog: QProgressDialog | None) -> None:
    """Close without it reporting a cancel (``reset`` would emit ``canceled``)."""
    if dialog is not None:
        dialog.canceled.disconnect()
        dialog.reset()
        dialog.deleteLater()
