"""The models' one progress-and-cancel convention, and its terminal bar."""
from __future__ import annotations

import io

import pytest

from liqscope.models.progress import Cancelled, Step, Task, terminal_task


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_task_reports_steps_and_stops_when_cancelled():
    seen = []
    task = Task(seen.append)
    task.progress(1, 4, "reading a.csv")
    task.note("retry 1 of 5 in 1 s: name resolution failed")
    assert seen == [Step(1, 4, "reading a.csv"), Step(1, 4, "retry 1 of 5 in 1 s: name resolution failed")]
    assert seen[0].fraction == 0.25 and Step(0, 0).fraction == 0.0
    task.cancel.set()
    with pytest.raises(Cancelled):
        task.progress(2, 4)
    assert seen[-1] == Step(2, 4)  # reported, then stopped


def test_terminal_bar_only_on_a_terminal_and_messages_always():
    quiet = io.StringIO()
    task = terminal_task("writing CSV", stream=quiet)
    task.progress(50, 100)
    task.progress(100, 100, "done soon")
    assert quiet.getvalue() == "liqscope: done soon\n"  # no bar off a terminal, but the words are there
    tty = Tty()
    task = terminal_task("writing CSV", unit="rows", stream=tty)
    task.progress(50, 100)
    task.progress(60, 100, "retrying: name resolution failed")
    task.progress(100, 100)
    text = tty.getvalue()
    assert "writing CSV" in text and "50%" in text
    assert "liqscope: retrying: name resolution failed\n" in text
    small = Tty()
    terminal_task("x", stream=small, min_total=1000).progress(10, 10)
    assert small.getvalue() == ""
