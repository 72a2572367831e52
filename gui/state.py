"""The single view-state object every pane observes.

Setting fields never redraws directly: changes are collected and emitted once
per burst (a short single-shot timer), so a drag that fires 60 range events
costs one recompute. Setters ignore no-op changes, which also breaks two-way
binding loops (widget -> state -> widget stops when nothing changes).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import pandas as pd
from PySide6.QtCore import QObject, QTimer, Signal


@dataclass(frozen=True)
class View:
    start: pd.Timestamp | None = None      # visible window, UTC, start inclusive
    end: pd.Timestamp | None = None        # end exclusive
    asset: str = "BTC"
    exchange: str = "binance"              # price source for the price pane
    exchanges: frozenset[str] | None = None  # liquidation filter; None = all
    side: str = "both"                     # long | short | both
    min_usd: float = 0.0
    bucket: int | None = None              # seconds; None = follow zoom
    liq_scope: str = "all"                 # all assets, or only the selected asset
    stacked: bool = False                  # False: longs below zero, shorts above
    theme: str = "dark"
    price_style: str = "candles"           # candles | line
    log_scale: bool = False
    markers: bool = True
    utc: bool = True
    extra: dict = field(default_factory=dict, compare=False)

    def liq_filter(self) -> dict:
        """Keyword arguments for ``LiquidationModel.filter`` matching this view."""
        return {
            "exchanges": sorted(self.exchanges) if self.exchanges is not None else None,
            "assets": [self.asset] if self.liq_scope == "asset" else None,
            "side": self.side,
            "min_notional": self.min_usd,
        }


FIELDS = tuple(f.name for f in fields(View) if f.name != "extra")


class ViewState(QObject):
    """Holds the current ``View`` and announces coalesced changes."""

    changed = Signal(object)  # frozenset of changed field names

    def __init__(self, view: View | None = None, delay_ms: int = 15, parent=None):
        super().__init__(parent)
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
        self._view = replace(self._view, **diff)
        self._pending |= set(diff)
        self._timer.start()
        return True

    def flush(self) -> None:
        """Emit pending changes now (tests and screenshots call this)."""
        self._timer.stop()
        if self._pending:
            names, self._pending = frozenset(self._pending), set()
            self.changed.emit(names)
