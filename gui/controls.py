"""Toolbar controls bound two-way to the ViewState (signals blocked on write-back)."""
from __future__ import annotations

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
        self.asset = _combo(assets, "asset_combo", "Asset shown on the price pane")
        self.asset.currentIndexChanged.connect(lambda: state.update(asset=self.asset.currentData()))
        nav.addWidget(self.asset)
        nav.addWidget(QLabel(" on "))
        self.exchange = _combo([], "exchange_combo", "Exchange whose candles are shown")
        self.exchange.currentIndexChanged.connect(self._exchange_picked)
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
        self.scope = _combo({"all assets": "all", "selected asset": "asset"}, "scope_combo",
                            "Headline and bars for all assets or just the selected one")
        self.scope.currentIndexChanged.connect(lambda: state.update(liq_scope=self.scope.currentData()))
        liq.addWidget(self.scope)
        self.exch_button = QToolButton()
        self.exch_button.setObjectName("exchanges_button")
        self.exch_button.setText("Exchanges ▾")
        self.exch_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.exch_button.setMenu(QMenu(self.exch_button))
        self.exch_actions = {}
        self._fill_exchanges(exchanges)
        liq.addWidget(self.exch_button)
        self.side = _combo({"longs + shorts": "both", "longs only": "long", "shorts only": "short"},
                           "side_combo", "Which liquidated positions to count")
        self.side.currentIndexChanged.connect(lambda: state.update(side=self.side.currentData()))
        liq.addWidget(self.side)
        self.min_size = _combo(MIN_SIZES, "min_size_combo", "Ignore liquidations smaller than this")
        self.min_size.currentIndexChanged.connect(lambda: state.update(min_usd=self.min_size.currentData()))
        liq.addWidget(self.min_size)
        buckets = {"auto bucket": None} | {k: v for k, v in BUCKETS.items()}
        self.bucket = _combo(buckets, "bucket_combo", "Bar width; auto follows the zoom")
        self.bucket.currentIndexChanged.connect(lambda: state.update(bucket=self.bucket.currentData()))
        liq.addWidget(self.bucket)
        self.layout = _combo({"longs ▼ shorts ▲": False, "stacked": True}, "layout_combo",
                             "Longs below zero and shorts above, or both stacked")
        self.layout.currentIndexChanged.connect(lambda: state.update(stacked=self.layout.currentData()))
        liq.addWidget(self.layout)
        window.addToolBar(liq)
        self.view_menu_actions(window)
        state.changed.connect(self.sync)
        self.sync(None)

    def view_menu_actions(self, window) -> None:
        menu = window.menuBar().addMenu("&View")
        menu.setObjectName("view_menu")
        self.toggles = {}
        for key, text, shortcut in (("line", "Close line instead of candles", "Ctrl+L"),
                                    ("log_scale", "Logarithmic price scale", "Ctrl+G"),
                                    ("markers", "Liquidation markers on price", "Ctrl+M"),
                                    ("local", "Local time axis (default UTC)", "Ctrl+T")):
            act = QAction(text, window)
            act.setCheckable(True)
            act.setShortcut(shortcut)
            act.toggled.connect(lambda on, k=key: self._toggle(k, on))
            menu.addAction(act)
            self.toggles[key] = act
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

    def _toggle(self, key: str, on: bool) -> None:
        if key == "line":
            self.state.update(price_style="line" if on else "candles")
        elif key == "local":
            self.state.update(utc=not on)
        else:
            self.state.update(**{key: on})

    def _exchange_picked(self) -> None:
        if self.exchange.currentData():
            self.state.update(exchange=self.exchange.currentData())

    def _exchanges_toggled(self) -> None:
        on = frozenset(n for n, a in self.exch_actions.items() if a.isChecked())
        self.state.update(exchanges=None if len(on) == len(self.exch_actions) else on)

    def sync(self, names) -> None:
        """State -> widgets, without re-emitting (QSignalBlocker)."""
        v = self.state.view
        _select(self.asset, v.asset)
        wanted = self.window.dataset.prices.exchanges_for(v.asset)
        current = [self.exchange.itemData(i) for i in range(self.exchange.count())]
        if current != wanted:
            with QSignalBlocker(self.exchange):
                self.exchange.clear()
                for name in wanted:
                    self.exchange.addItem(name, name)
        _select(self.exchange, v.exchange)
        _select(self.scope, v.liq_scope)
        _select(self.side, v.side)
        _select(self.min_size, v.min_usd)
        _select(self.bucket, v.bucket)
        _select(self.layout, v.stacked)
        for name, act in self.exch_actions.items():
            with QSignalBlocker(act):
                act.setChecked(v.exchanges is None or name in v.exchanges)
        for key, on in (("line", v.price_style == "line"), ("log_scale", v.log_scale),
                        ("markers", v.markers), ("local", not v.utc)):
            with QSignalBlocker(self.toggles[key]):
                self.toggles[key].setChecked(on)
        with QSignalBlocker(self.theme_actions[v.theme]):
            self.theme_actions[v.theme].setChecked(True)
