"""Load datasets off the GUI thread so the window paints first and never freezes.

One :class:`DatasetLoader` per window does every (re)load: the start-up load,
and the re-read of the store after an import or a fetch. It runs on the one
worker type (:class:`~.worker.Worker`) and hands the result to the window's
``set_dataset``, which announces the swap once through the data hub.
"""
from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from liqscope.models.dataset import Dataset
from liqscope.models.progress import Task

from .worker import Worker


def prepare(dataset: Dataset) -> Dataset:
    """Everything slow that the first frames need: index and default window."""
    dataset.index()
    dataset.busiest_day()
    return dataset


def read_store(view=None) -> Dataset:
    """The store (or the part of it serving ``view``'s window, for a store larger than the memory budget)."""
    from liqscope.models.sources import read_store as read

    if view is None or not view.has_window:
        return read()
    return read(None, view.start, view.end, view.liq_filter())


class DatasetLoader(QObject):
    """Loads a dataset on a worker and shows it in the window; a newer load supersedes an older one."""

    loaded = Signal(object)   # the Dataset, after the window shows it
    failed = Signal(object)   # the exception

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.worker = Worker(self, name="liqscope-loader")
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.on_loaded: Callable[[Dataset], None] | None = None  # replaces the default hand-over once

    def load(self, read: Callable[[], Dataset], on_loaded: Callable[[Dataset], None] | None = None) -> threading.Thread:
        self.on_loaded = on_loaded
        return self.worker.start(lambda task: prepare(read()))

    def reload_store(self) -> threading.Thread:
        """Re-read the store and show it (after an import, a fetch, or when recording takes over), for the
        window shown now."""
        view = self.window.state.view
        return self.load(lambda: read_store(view))

    def load_part(self, view) -> threading.Thread:
        """The part of the shown store that serves ``view`` (a view the dataset held cannot answer exactly),
        shown with the view as it is then (a newer gesture may have moved it: it asks again)."""
        held = self.window.dataset
        windows = held.part.windows
        return self.load(lambda: windows.load(view.start, view.end, view.liq_filter(), held=held),
                         on_loaded=lambda ds: self.window.set_dataset(ds, self.window.state.view))

    def _finished(self, dataset: Dataset) -> None:
        handler, self.on_loaded = self.on_loaded, None
        if handler is not None:
            handler(dataset)
        else:
            self.window.set_dataset(dataset)
        notes = dataset.notes
        if notes:  # e.g. a damaged store file left out: say so until the next message
            more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
            self.window.statusBar().showMessage(notes[0] + more)
        self.loaded.emit(dataset)

    def _failed(self, exc: Exception) -> None:
        self.window.statusBar().clearMessage()
        QMessageBox.critical(self.window, "Liqscope", f"Could not load data: {exc}")
        self.failed.emit(exc)


def progress_dialog(parent: QWidget, title: str, text: str,
                    cancel: threading.Event | Callable[[], None] | Task) -> QProgressDialog:
    """A window-modal 0..1000 progress dialog whose Cancel cancels the work (event, task or callable)."""
    dialog = QProgressDialog(text, "Cancel", 0, 1000, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(300)
    if isinstance(cancel, Task):
        cancel = cancel.cancel
    dialog.canceled.connect(cancel.set if isinstance(cancel, threading.Event) else cancel)
    return dialog


def close_progress(dialog: QProgressDialog | None) -> None:
    """Close without it reporting a cancel (``reset`` would emit ``canceled``)."""
    if dialog is not None:
        dialog.canceled.disconnect()
        dialog.reset()
        dialog.deleteLater()


class ProgressDialogJob:
    """For a controller whose job shows a :func:`progress_dialog` (``self.dialog``; its text when a step says
    nothing: ``self._label``): the bar and the step's message (a retry and its reason) follow the worker."""

    dialog: QProgressDialog | None = None
    _label: str = ""

    def _on_progress(self, step) -> None:
        if self.dialog is not None:
            self.dialog.setLabelText(step.message or self._label)
            self.dialog.setValue(int(1000 * step.fraction))

    def _close(self) -> None:
        close_progress(self.dialog)
        self.dialog = None
