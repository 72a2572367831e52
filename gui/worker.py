"""The GUI's one worker type: run a function off the GUI thread, with progress, cancel, result, error.

Every long job the window starts (loading the store, importing, fetching,
building coarse candle levels) is a :class:`Worker`. The function receives a
:class:`~liqscope.models.progress.Task` (the models' progress and cancel
convention) and returns a result; the worker re-emits its steps, its result or
its exception as Qt signals, which queue onto the GUI thread. Errors travel as
exception objects, so callers branch on their type, never on message text.
Like napari's ``_qt/qthreading`` worker, but one small class.
"""
from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from liqscope.models.progress import Cancelled, Step, Task


class Worker(QObject):
    """Runs ``fn(task)`` on a daemon thread; at most one run at a time per worker.

    Signals (delivered on the GUI thread): ``progressed(Step)``, ``finished(result)``,
    ``failed(exception)``, ``cancelled()`` (the function raised ``Cancelled``; one that
    returns after a cancel, e.g. a fetch keeping the pages it stored, finishes with that
    result). A run replaced by a newer :meth:`start` emits nothing: its outcome is stale.
    """

    progressed = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None, name: str = "liqscope-worker"):
        super().__init__(parent)
        self.name = name
        self.thread: threading.Thread | None = None
        self.task: Task | None = None
        self._generation = 0

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, fn: Callable[[Task], Any]) -> threading.Thread:
        """Run ``fn`` with a fresh task; a run still going is cancelled and its outcome dropped."""
        self.cancel()
        self._generation += 1
        generation = self._generation
        task = self.task = Task(on_progress=lambda step: self._emit_if_current(generation, self.progressed, step))

        def work() -> None:
            try:
                result = fn(task)
            except Cancelled:
                self._emit_if_current(generation, self.cancelled, None)
            except Exception as exc:  # handed to the GUI as an object, never swallowed
                if task.cancelled:  # failing because it was told to stop is stopping
                    self._emit_if_current(generation, self.cancelled, None)
                else:
                    traceback.print_exc()
                    self._emit_if_current(generation, self.failed, exc)
            else:  # the function decides what a cancel means: raise Cancelled, or return what it has
                self._emit_if_current(generation, self.finished, result)

        self.thread = threading.Thread(target=work, name=self.name, daemon=True)
        self.thread.start()
        return self.thread

    def cancel(self) -> None:
        """Ask the running function to stop (it sees ``task.cancelled`` / ``Cancelled`` at its next step)."""
        if self.task is not None:
            self.task.cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ends (tests, shutdown); True if it did."""
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _emit_if_current(self, generation: int, signal, value) -> None:
        if generation != self._generation:
            return  # a newer run replaced this one: its outcome is stale
        try:
            signal.emit() if value is None and signal is self.cancelled else signal.emit(value)
        except RuntimeError:  # the QObject was deleted while the thread ran (window closed)
            pass


__all__ = ["Worker", "Step", "Task", "Cancelled"]


class WorkerSignals:
    """For a controller that runs its jobs on ``self.worker``: the worker's ``finished`` and ``failed``
    signals and its ``thread``, under the names callers and tests know."""

    worker: Worker

    @property
    def finished(self):
        return self.worker.finished

    @property
    def failed(self):
        return self.worker.failed

    @property
    def thread(self) -> threading.Thread | None:
        return self.worker.thread
