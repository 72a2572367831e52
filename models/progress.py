"""One progress-and-cancel convention for every long operation in ``models`` (import, export, fetch).

A caller hands a :class:`Task` to the operation. The operation calls
``task.progress(done, total, message)`` at natural steps (blocks of a file,
pages of a download, chunks of a CSV); that reports the :class:`Step` and
raises :class:`Cancelled` if the caller asked to stop. Operations never poll
callables of their own shape, so the GUI's worker, the CLI's progress bar and
tests all drive every operation the same way.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable, TextIO


class Cancelled(Exception):
    """The caller cancelled; the operation left stored data and output files as they were."""


@dataclass(frozen=True)
class Step:
    """How far an operation is: ``done`` of ``total`` units (bytes, rows, pages), and what it is doing."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


class Task:
    """Where an operation reports progress, and whether it should stop.

    ``on_progress`` receives each :class:`Step` (on the operation's thread);
    ``cancel`` is an event any thread may set.
    """

    def __init__(self, on_progress: Callable[[Step], None] | None = None,
                 cancel: threading.Event | None = None):
        self.on_progress = on_progress
        self.cancel = cancel if cancel is not None else threading.Event()
        self.last: Step | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the caller asked to stop."""
        if self.cancel.is_set():
            raise Cancelled("cancelled")

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Report a step, then stop here (raise :class:`Cancelled`) if asked to."""
        self.last = Step(int(done), int(total), message)
        if self.on_progress is not None:
            self.on_progress(self.last)
        self.check()

    def note(self, message: str) -> None:
        """Report what is happening without moving the bar (e.g. a retry and its reason)."""
        last = self.last or Step(0, 0)
        self.progress(last.done, last.total, message)


def quiet() -> Task:
    """A task nobody watches: no reports, never cancelled."""
    return Task()


def terminal_task(description: str, *, unit: str = "", stream: TextIO | None = None,
                  enabled: bool | None = None, min_total: int = 0) -> Task:
    """A task shown as a tqdm progress bar on ``stream`` (stderr) when it is a terminal.

    ``unit='B'`` shows bytes with binary prefixes. Messages (retries, reasons)
    print on their own line above the bar, so they stay readable.
    """
    stream = stream or sys.stderr
    show = enabled if enabled is not None else bool(getattr(stream, "isatty", lambda: False)())
    state: dict = {"bar": None, "message": "", "finished": False}

    def on_progress(step: Step) -> None:
        bar = state["bar"]
        if step.message and step.message != state["message"]:
            state["message"] = step.message
            line = f"liqscope: {step.message}"
            if bar is not None:
                bar.write(line, file=stream)  # above the bar, which is redrawn below it
            else:
                print(line, file=stream, flush=True)
        if not show or step.total < max(min_total, 1) or (state["finished"] and step.done >= step.total):
            return
        if bar is None:
            from tqdm import tqdm

            bar = state["bar"] = tqdm(total=step.total, desc=description, file=stream, leave=False,
                                      unit=unit or "it", unit_scale=bool(unit), dynamic_ncols=True, mininterval=0.1,
                                      unit_divisor=1024 if unit == "B" else 1000)
            state["finished"] = False
        if step.total != bar.total:
            bar.total = step.total
        bar.n = step.done
        if step.done >= step.total:
            bar.refresh()
            bar.close()
            state["bar"], state["finished"] = None, True
        else:
            bar.update(0)

    return Task(on_progress)
