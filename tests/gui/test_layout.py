"""One place for colours (gui/theme.py) and layout constants (gui/layout.py), and the panes follow them."""
from __future__ import annotations

import re
from pathlib import Path

from liqscope.gui import layout

GUI = Path(__file__).resolve().parents[2] / "gui"
HEX = re.compile(r"""["']#[0-9A-Fa-f]{3,8}\b""")
NOT_YET: set[str] = set()  # every gui module takes its colours from theme.py


def test_colour_literals_live_in_theme():
    stray = {}
    for path in sorted(GUI.glob("*.py")):
        if path.name in NOT_YET | {"theme.py"}:
            continue
        hits = HEX.findall(path.read_text())
        if hits:
            stray[path.name] = hits
    assert not stray, f"colour literals outside gui/theme.py: {stray}"


def test_main_panes_and_panels_share_one_axis_width(window, qtbot):
    """Price over liquidations, panel plot over panel plot: the value axes line up at AXIS_WIDTH."""
    from liqscope.gui.app import settle

    widths = {"price": window.price.plot.getAxis("right").width(),
              "liquidations": window.liq.plot.getAxis("right").width()}
    window.drilldown.open_exchange("binance")
    window.drilldown.open_asset("BTC")
    settle(window)
    for (kind, name), panel in window.drilldown.panels.items():
        for i, plot in enumerate(panel.plots()):
            widths[f"{kind} {name} plot {i}"] = plot.getAxis("right").width()
    assert set(widths.values()) == {layout.AXIS_WIDTH}, widths


def test_bucket_floors_are_the_shared_one(window):
    """The main pane and the panels pick their buckets with the same bar-width floor."""
    from liqscope.gui import drill_panel, liq_pane, price_pane

    assert liq_pane.MIN_BAR_PX is drill_panel.MIN_BAR_PX is price_pane.MIN_BAR_PX is layout.MIN_BAR_PX
    px = max(window.liq.vb.width(), 200)
    span = (window.state.view.end - window.state.view.start).total_seconds()
    assert span / window.liq.bucket <= px / layout.MIN_BAR_PX + 1
