"""The single view-state object every pane observes (the ``View`` itself is Qt-free: models.view).

Setting fields never redraws directly: changes are collected and emitted once
per burst (a short single-shot timer), so a drag that fires 60 range events
costs one recompute. Setters ignore no-op changes, which also breaks two-way
binding loops (widget -> state -> widget stops when nothing changes).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from liqscope.models.view import FIELDS, View

# Changes to these fields can make a view impossible (an exchange that does not list the asset):
# the state's ``fit`` runs on them. Window moves (60 a second while panning) skip it.
FITTED = frozenset(FIELDS) - {"start", "end"}


class ViewState(QObject):
    """Holds the current ``View`` and announces coalesced changes."""

    changed = Signal(object)  # frozenset of changed field names

    def __init__(self, view: View | None = None, delay_ms: int = 15, parent=None,
                 fit: Callable[[View], View] | None = None):
        super().__init__(parent)
        self.fit = fit  # makes a view valid for the current dataset (models.view.fit_view); one place
        self._view = view or View()
        self._pending: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)

    @property
    def view(self) -> View:
        return self._view

    def update(self, **changes) -> bool:
        """Apply changes; schedule one ``changed`` emission. Returns True if anything changed."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise AttributeError(f"unknown view fields: {sorted(unknown)}")
        diff = {k: v for k, v in changes.items() if getattr(self._view, k) != v}
        if not diff:
            return False
        new = replace(self._view, **diff)
        if self.fit is not None and FITTED & set(diff):
            new = self.fit(new)
        diff = {k: getattr(new, k) for k in FIELDS if getattr(new, k) != getattr(self._view, k)}
        if not diff:
            return False
        self._view = new
        self._pending |= set(diff)
        self._timer.start()
        return True

    def flush(self) -> None:
        """Emit pending changes now (tests and screenshots call this)."""
        self._timer.stop()
        if self._pending:
            names, self._pending = frozenset(self._pending), set()
            self.changed.emit(names)
