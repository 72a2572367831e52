"""Drill-down panels per exchange and per asset, and how the main window opens them.

Entry points: a click on a headline exchange chip, the Panels menu (Exchange ▸ …,
Asset ▸ …), and the asset selector's Details action (toolbar button and the
combo's context menu). Opening a panel that is already open raises it.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolBar

from .asset_panel import AssetPanel
from .drill_panel import DrillPanel
from .exchange_panel import ExchangePanel
from .theme import display_name

DOCK_WIDTH = 640  # room for the orders table without a horizontal scroll bar

__all__ = ["AssetPanel", "Drilldown", "DrillPanel", "ExchangePanel", "install_drilldown"]


class Drilldown:
    """Opens panels from the headline chips, the Panels menu and the asset selector; tracks them."""

    def __init__(self, window):
        self.window = window
        self.panels: dict[tuple[str, str], DrillPanel] = {}
        self.menu = self._build_menu()
        # open panels hear of a new dataset themselves (the hub); the menu re-lists what it holds
        window.hub.dataset_changed.connect(lambda _ds: self.populate_menu())
        window.hub.data_appended.connect(self.populate_menu)
        window.headline.exchange_clicked.connect(self.open_exchange)
        self.details_action = QAction("Details…", window)
        self.details_action.setObjectName("asset_details")
        self.details_action.setToolTip("Open a panel for the selected asset across exchanges")
        self.details_action.triggered.connect(lambda: self.open_asset(window.state.view.asset))
        combo = window.controls.asset
        combo.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        combo.addAction(self.details_action)
        self._add_to_toolbar(combo)

    def _build_menu(self) -> QMenu:
        """Panels ▸ Exchange ▸ … / Asset ▸ …, just before Help; filled from the current dataset."""
        w = self.window
        menu = QMenu("&Panels", w)
        menu.setObjectName("panels_menu")
        self.exchange_menu = menu.addMenu("&Exchange")
        self.asset_menu = menu.addMenu("&Asset")
        self.exchange_actions: dict[str, QAction] = {}
        self.asset_actions: dict[str, QAction] = {}
        self.populate_menu()
        menu.aboutToShow.connect(self.populate_menu)  # the dataset may arrive after start-up
        bar = w.menuBar()
        help_menu = getattr(w, "help_menu", None)
        if help_menu is not None and help_menu.menuAction() in bar.actions():
            bar.insertMenu(help_menu.menuAction(), menu)
        else:
            bar.addMenu(menu)
        return menu

    def populate_menu(self) -> None:
        ds = self.window.dataset
        if list(self.exchange_actions) == ds.exchanges and list(self.asset_actions) == ds.assets:
            return
        self.exchange_menu.clear()
        self.asset_menu.clear()
        self.exchange_actions, self.asset_actions = {}, {}
        for name in ds.exchanges:
            act = self.exchange_menu.addAction(display_name(name))
            act.setObjectName(f"panel_exchange_{name}")
            act.triggered.connect(lambda _=False, n=name: self.open_exchange(n))
            self.exchange_actions[name] = act
        for name in ds.assets:
            act = self.asset_menu.addAction(name)
            act.setObjectName(f"panel_asset_{name}")
            act.triggered.connect(lambda _=False, n=name: self.open_asset(n))
            self.asset_actions[name] = act
        self.exchange_menu.setEnabled(bool(ds.exchanges))
        self.asset_menu.setEnabled(bool(ds.assets))

    def _add_to_toolbar(self, combo) -> None:
        """A Details button right after the asset/exchange selectors of the Navigate toolbar."""
        toolbar = self.window.findChild(QToolBar, "toolbar_nav")
        if toolbar is None:
            return
        actions = toolbar.actions()
        exchange_combo = self.window.controls.exchange
        at = next((i for i, a in enumerate(actions) if toolbar.widgetForAction(a) is exchange_combo), None)
        before = actions[at + 1] if at is not None and at + 1 < len(actions) else None
        if before is not None:
            toolbar.insertAction(before, self.details_action)
        else:
            toolbar.addAction(self.details_action)

    def open_exchange(self, name: str) -> ExchangePanel:
        return self._open(("exchange", name.lower()), lambda: ExchangePanel(self.window, name))

    def open_asset(self, name: str) -> AssetPanel:
        return self._open(("asset", name.upper()), lambda: AssetPanel(self.window, name))

    def _open(self, key: tuple[str, str], make) -> DrillPanel:
        panel = self.panels.get(key)
        if panel is None:
            panel = make()
            others = [p for p in self.panels.values() if not p.isFloating() and p.isVisible()]
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, panel)
            if others:
                self.window.tabifyDockWidget(others[-1], panel)
            else:
                self.window.resizeDocks([panel], [max(DOCK_WIDTH, self.window.width() // 3)],
                                        Qt.Orientation.Horizontal)
            self.panels[key] = panel
            panel.destroyed.connect(lambda _=None, k=key: self.panels.pop(k, None))
        panel.show()
        panel.raise_()
        return panel


def install_drilldown(window) -> Drilldown:
    """Hook the panels into a main window (Panels menu, chips, asset Details)."""
    return Drilldown(window)
