"""Toolbar controls bound two-way to the ViewState (signals blocked on write-back).

Bindings are declared, not hand-synced: :meth:`Controls.bind` ties a combo box to a
view field once (widget -> state on user change, state -> widget on every state
change), and :meth:`Controls.bind_toggle` does the same for a checkable action.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QSignalBlocker
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QToolBar, QToolButton

from liqscope.models.timeutil import BUCKETS

from .state import ViewState

PRESETS = {"1h": 3600, "4h": 4 * 3600, "12h": 12 * 3600, "24h": 86400, "7d": 7 * 86400, "All": None}
MIN_SIZES = {"any size": 0.0, "≥ $10K": 1e4, "≥ $100K": 1e5, "≥ $1M": 1e6}


def _combo(items: dict | list, name: str, tip: str) -> QComboBox:
    box = QComboBox()
    box.setObjectName(name)
    box.setToolTip(tip)
    for item in items:
        box.addItem(str(item), items[item] if isinstance(items, dict) else item)
    return box


def _select(box: QComboBox, data) -> None:
    i = box.findData(data)
    if i >= 0 and i != box.currentIndex():
        with QSignalBlocker(box):
            box.setCurrentIndex(i)


class Controls:
    """Builds the two toolbars and keeps them in sync with the state."""

    def __init__(self, window, state: ViewState, assets: list[str], exchanges: list[str]):
        self.state = state
        self.window = window
        nav = QToolBar("Navigate")
        nav.setObjectName("toolbar_nav")
        nav.addWidget(QLabel(" Asset "))
        self._bound: list[tuple[object, str, Callable]] = []  # (widget, field, write state -> widget)
        self.asset = self.bind(_combo(assets, "asset_combo", "Asset shown on the price pane"), "asset")
        nav.addWidget(self.asset)
        nav.addWidget(QLabel(" on "))
        self.exchange = self.bind(_combo([], "exchange_combo", "Exchange whose candles are shown"), "exchange")
        nav.addWidget(self.exchange)
        nav.addSeparator()
        self.preset_actions = {}
        for i, (label, secs) in enumerate(PRESETS.items(), start=1):
            act = QAction(label, window)
            act.setShortcut(f"Alt+{i}")
            act.setToolTip(f"Show {'all data' if secs is None else 'the last ' + label} (Alt+{i})")
            act.triggered.connect(lambda _=False, s=secs: window.apply_preset(s))
            nav.addAction(act)
            self.preset_actions[label] = act
        self.custom = QAction("Custom…", window)
        self.custom.setToolTip("Choose start and end (UTC)")
        self.custom.triggered.connect(window.choose_custom_range)
        nav.addAction(self.custom)
        self.reset = QAction("Reset view", window)
        self.reset.setShortcut("Ctrl+0")
        self.reset.setToolTip("Back to the busiest day (Ctrl+0)")
        self.reset.triggered.connect(window.reset_view)
        nav.addAction(self.reset)
        window.addToolBar(nav)
        window.addToolBarBreak()

        liq = QToolBar("Liquidations")
        liq.setObjectName("toolbar_liq")
        liq.addWidget(QLabel(" Liquidations: "))
        self.scope = self.bind(_combo({"all assets": "all", "selected asset": "asset"}, "scope_combo",
                                      "Headline and bars for all assets or just the selected one"), "liq_scope")
        liq.addWidget(self.scope)
        self.exch_button = QToolButton()
        self.exch_button.setObjectName("exchanges_button")
        self.exch_button.setText("Exchanges ▾")
        self.exch_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.exch_button.setMenu(QMenu(self.exch_button))
        self.exch_actions = {}
        self._fill_exchanges(exchanges)
        liq.addWidget(self.exch_button)
        self.side = self.bind(_combo({"longs + shorts": "both", "longs only": "long", "shorts only": "short"},
                                     "side_combo", "Which liquidated positions to count"), "side")
        liq.addWidget(self.side)
        self.min_size = self.bind(_combo(MIN_SIZES, "min_size_combo", "Ignore liquidations smaller than this"),
                                  "min_usd")
        liq.addWidget(self.min_size)
        buckets = {"auto bucket": None} | {k: v for k, v in BUCKETS.items()}
        self.bucket = self.bind(_combo(buckets, "bucket_combo", "Bar width; auto follows the zoom"), "bucket")
        liq.addWidget(self.bucket)
        self.layout = self.bind(_combo({"longs ▼ shorts ▲": False, "stacked": True}, "layout_combo",
                                       "Longs below zero and shorts above, or both stacked"), "stacked")
        liq.addWidget(self.layout)
        window.addToolBar(liq)
        self.view_menu_actions(window)
        state.changed.connect(self.sync)
        self.sync(None)

    def bind(self, box: QComboBox, field: str) -> QComboBox:
        """Tie ``box`` to view ``field`` both ways (item data = field value)."""
        def picked() -> None:
            if box.currentIndex() >= 0:
                self.state.update(**{field: box.currentData()})

        box.currentIndexChanged.connect(picked)
        self._bound.append((box, field, lambda value: _select(box, value)))
        return box

    def bind_toggle(self, act: QAction, field: str, to_view=bool, from_view=bool) -> QAction:
        """Tie checkable ``act`` to view ``field``; ``to_view``/``from_view`` map checked <-> value."""
        act.toggled.connect(lambda on: self.state.update(**{field: to_view(on)}))

        def write(value) -> None:
            with QSignalBlocker(act):
                act.setChecked(from_view(value))

        self._bound.append((act, field, write))
        return act

    def view_menu_actions(self, window) -> None:
        menu = window.menuBar().addMenu("&View")
        menu.setObjectName("view_menu")
        self.toggles = {}
        line = (lambda on: "line" if on else "candles", lambda style: style == "line")
        local = (lambda on: not on, lambda utc: not utc)
        for key, field, text, shortcut, (to_view, from_view) in (
                ("line", "price_style", "Close line instead of candles", "Ctrl+L", line),
                ("log_scale", "log_scale", "Logarithmic price scale", "Ctrl+G", (bool, bool)),
                ("markers", "markers", "Liquidation markers on price", "Ctrl+M", (bool, bool)),
                ("local", "utc", "Local time axis (default UTC)", "Ctrl+T", local)):
            act = QAction(text, window)
            act.setCheckable(True)
            act.setShortcut(shortcut)
            menu.addAction(act)
            self.toggles[key] = self.bind_toggle(act, field, to_view, from_view)
        menu.addSeparator()
        group = QActionGroup(window)
        self.theme_actions = {}
        for name in ("dark", "light"):
            act = QAction(f"{name.capitalize()} theme", window, checkable=True)
            act.triggered.connect(lambda _=False, n=name: self.state.update(theme=n))
            group.addAction(act)
            menu.addAction(act)
            self.theme_actions[name] = act
        menu.addSeparator()
        for act in list(self.preset_actions.values()) + [self.custom, self.reset]:
            menu.addAction(act)

    def _fill_exchanges(self, exchanges: list[str]) -> None:
        menu = self.exch_button.menu()
        menu.clear()
        self.exch_actions = {}
        for name in exchanges:
            act = menu.addAction(name)
            act.setCheckable(True)
            act.setChecked(True)
            act.toggled.connect(self._exchanges_toggled)
            self.exch_actions[name] = act

    def set_choices(self, assets: list[str], exchanges: list[str]) -> None:
        """New dataset: refill the asset list and the exchange filter."""
        with QSignalBlocker(self.asset):
            self.asset.clear()
            for a in assets:
                self.asset.addItem(a, a)
        if list(self.exch_actions) != list(exchanges):
            self._fill_exchanges(exchanges)
        self.sync(None)

    def _exchanges_toggled(self) -> None:
        on = frozenset(n for n, a in self.exch_actions.items() if a.isChecked())
        self.state.update(exchanges=None if len(on) == len(self.exch_actions) else on)

    def sync(self, names) -> None:
        """State -> widgets, without re-emitting (QSignalBlocker)."""
        v = self.state.view
        wanted = self.window.dataset.prices.exchanges_for(v.asset)
        current = [self.exchange.itemData(i) for i in range(self.exchange.count())]
        if current != wanted:
            with QSignalBlocker(self.exchange):
                self.exchange.clear()
                for name in wanted:
                    self.exchange.addItem(name, name)
        # no candles for this asset: nothing to choose (the price pane says how to get them)
        self.exchange.setEnabled(bool(wanted))
        for _widget, field, write in self._bound:
            write(getattr(v, field))
        for name, act in self.exch_actions.items():
            with QSignalBlocker(act):
                act.setChecked(v.exchanges is None or name in v.exchanges)
        with QSignalBlocker(self.theme_actions[v.theme]):
            self.theme_actions[v.theme].setChecked(True)
