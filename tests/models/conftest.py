"""Shared by the model tests: a tally of what the fuzz tests threw at the importers and the recorder.

The fuzz tests (test_import_fuzz.py, connectors/test_stream_fuzz.py) take the
session-scoped ``fuzz_tally`` fixture and record every generated case; the
terminal summary prints one line per kind, e.g.::

    fuzz: 612 cases, 401 refused in one line, 211 imported, 0 crashes, 0 store changes on refusal
    stream fuzz: 1412 frames in 222 streams (3 exchanges), 930 events stored once, 520 quarantined or unreadable,
    0 crashes

so the closing note of a run says how much was thrown, not just that nothing failed.
"""
from __future__ import annotations

from collections import Counter

import pytest


class FuzzTally:
    """Counts by outcome: ``imports`` for import cases, ``stream`` for recorder frames."""

    def __init__(self):
        # refused, imported, crash, changed (the store changed on refusal)
        self.imports: Counter = Counter()
        self.stream: Counter = Counter()   # streams, frames, stored, quarantined (or unreadable), crash
        self.exchanges: set[str] = set()

    def imported(self, outcome: str, *, changed: bool = False) -> None:
        """One import case: ``outcome`` is refused, imported or crash;
        ``changed``: the store changed although the import was refused."""
        self.imports["cases"] += 1
        self.imports[outcome] += 1
        self.imports["changed"] += bool(changed)

    def lines(self) -> list[str]:
        out = []
        i = self.imports
        if i["cases"]:
            out.append(f"fuzz: {i['cases']} cases, {i['refused']} refused in one line, {i['imported']} imported, "
                       f"{i['crash']} crashes, {i['changed']} store changes on refusal")
        s = self.stream
        if s["frames"]:
            out.append(f"stream fuzz: {s['frames']} frames in {s['streams']} streams ({len(self.exchanges)} "
                       f"exchanges), {s['stored']} events stored once, {s['quarantined']} quarantined or unreadable, "
                       f"{s['crash']} crashes")
        return out


_TALLY = FuzzTally()


@pytest.fixture(scope="session")
def fuzz_tally() -> FuzzTally:
    """The session's :class:`FuzzTally` (session-scoped, so hypothesis tests may take it)."""
    return _TALLY


def pytest_terminal_summary(terminalreporter):
    for line in _TALLY.lines():
        terminalreporter.write_line(line)


@pytest.fixture
def store(tmp_path):
    """A new, empty store in the test's own folder (a module may define its own ``store`` instead)."""
    from liqscope.models.store import open_store

    return open_store(tmp_path / "store")
