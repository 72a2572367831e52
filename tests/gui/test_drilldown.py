"""Drill-down panels opened through the real window's UI, their numbers checked against the models."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QPushButton

from liqscope.models.format import number
from liqscope.models.prices import resample
from liqscope.gui.app import settle

DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))


@pytest.fixture
def window_size():
    return 1500, 950


def click_chip(window, qtbot, name: str):
    chip = window.headline.chips_box.findChild(QPushButton, f"chip_{name}")
    assert chip is not None, f"no chip for {name}"
    qtbot.mouseClick(chip, Qt.MouseButton.LeftButton)
    settle(window)
    return window.drilldown.panels[("exchange", name)]


def menu_action(window, kind: str, name: str):
    window.drilldown.menu.aboutToShow.emit()  # what opening the menu does
    actions = window.drilldown.exchange_actions if kind == "exchange" else window.drilldown.asset_actions
    return actions[name]


def bar_heights(rects_item) -> tuple[float, float]:
    """(USD drawn above zero, USD drawn below zero) by a RectsItem."""
    r = rects_item.rects
    h = r[:, 3] - r[:, 2]
    return float(h[h > 0].sum()), float(-h[h < 0].sum())


# -- exchange panel -------------------------------------------------------------
def test_chip_click_opens_exchange_panel_with_model_numbers(window, qtbot, demo):
    from liqscope.gui.drilldown import ExchangePanel
    from liqscope.gui.table_model import RAW_ROLE

    panel = click_chip(window, qtbot, "binance")
    assert isinstance(panel, ExchangePanel) and panel.isVisible()
    assert window.dockWidgetArea(panel) == Qt.DockWidgetArea.RightDockWidgetArea
    sub = demo.liquidations.filter(*DAY, exchanges=["binance"])
    t = sub.totals()
    assert panel.totals.total_usd == pytest.approx(360e6, rel=0.005)
    assert panel.totals.total_usd == pytest.approx(t.total_usd)
    assert panel.totals.count == t.count
    assert f"${t.total_usd:,.0f}" in panel.heading.text() and f"{t.count:,} liquidations" in panel.heading.text()
    # per-asset breakdown equals the model's by_asset, largest first
    b = panel.breakdown_model.frame
    assert list(b["asset"]) == list(t.by_asset)
    assert dict(zip(b["asset"], b["total_usd"])) == pytest.approx(t.by_asset)
    m = panel.breakdown_model
    assert m.data(m.index(0, 0)) == "BTC" and m.data(m.index(0, 1), RAW_ROLE) == pytest.approx(t.by_asset["BTC"])
    # long/short split
    assert (panel.split.long_usd, panel.split.short_usd) == pytest.approx((t.long_usd, t.short_usd))
    assert panel.split.texts()[1] == "Shorts $295.2M (82%)"
    # largest orders: first row is largest(1), shown as the user reads it
    top = sub.largest(1).iloc[0]
    om = panel.orders_model
    first = om.row(0)
    assert (first["ts"], first["symbol"], first["notional_usd"]) == (top["ts"], top["symbol"], top["notional_usd"])
    cols = [om.headerData(i, Qt.Orientation.Horizontal) for i in range(om.columnCount())]
    assert cols == ["time (UTC)", "exchange", "symbol", "side", "notional", "price", "qty"]
    assert om.data(om.index(0, 0)) == top["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert om.data(om.index(0, 4)) == f"${top['notional_usd']:,.0f}"
    assert om.data(om.index(0, 4), RAW_ROLE) == top["notional_usd"]
    assert om.data(om.index(0, 5)) == number(top["price"]) and om.data(om.index(0, 6)) == number(top["qty"])
    assert om.rowCount() == min(1000, len(sub))
    # bars: shorts above zero, longs below, summing to the window's money
    up, down = bar_heights(panel.rects)
    assert up == pytest.approx(t.short_usd) and down == pytest.approx(t.long_usd)


def test_exchange_panel_follows_filters(window, qtbot, demo):
    panel = click_chip(window, qtbot, "okx")
    window.controls.side.setCurrentIndex(window.controls.side.findData("short"))
    settle(window)
    t = demo.liquidations.filter(*DAY, exchanges=["okx"], side="short").totals()
    assert panel.totals.long_usd == 0
    assert panel.totals.total_usd == pytest.approx(t.total_usd)
    assert set(panel.orders_model.frame["side"].astype(str)) == {"short"}


# -- asset panel --------------------------------------------------------------------
def test_panels_menu_opens_asset_panel(window, qtbot, demo):
    from liqscope.gui.drilldown import AssetPanel

    assert [a.text() for a in window.menuBar().actions()][-2:] == ["&Panels", "&Help"]
    menu_action(window, "asset", "BTC").trigger()
    settle(window)
    panel = window.drilldown.panels[("asset", "BTC")]
    assert isinstance(panel, AssetPanel)
    sub = demo.liquidations.filter(*DAY, assets=["BTC"])
    t = sub.totals()
    assert panel.totals.total_usd == pytest.approx(540e6, rel=0.005)
    assert panel.totals.total_usd == pytest.approx(t.total_usd)
    b = panel.breakdown_model.frame
    assert dict(zip(b["exchange"], b["total_usd"])) == pytest.approx(t.by_exchange)
    assert panel.orders_model.row(0)["notional_usd"] == sub.largest(1)["notional_usd"].iloc[0]
    # one close line per exchange, at the panel's level, equal to the model's candles
    assert list(panel.price_frames) == demo.prices.exchanges_for("BTC") == list(panel.lines)
    lvl = panel.level
    for ex, frame in panel.price_frames.items():
        src = resample(demo.prices.candles(demo.prices.find("BTC", ex)), lvl)
        src = src[(src.index >= DAY[0]) & (src.index < DAY[1])]
        np.testing.assert_array_equal(frame["close"].to_numpy(), src["close"].to_numpy())
        np.testing.assert_array_equal(panel.lines[ex].getData()[1], src["close"].to_numpy())
    # basis against the main view's exchange, in bps
    assert set(panel.basis) == {"okx", "bybit"}
    ref = panel.price_frames["binance"]["close"]
    okx = panel.price_frames["okx"]["close"]
    np.testing.assert_allclose(panel.basis["okx"].to_numpy(), ((okx / ref - 1) * 1e4).to_numpy())
    assert float(panel.basis["okx"].abs().max()) < 50  # a few bps, not a scale error
    # stacked bars: every exchange's money is drawn
    up, down = bar_heights(panel.rects)
    assert up == pytest.approx(t.short_usd) and down == pytest.approx(t.long_usd)


def test_asset_details_action_opens_selected_asset(window, qtbot, demo):
    window.controls.asset.setCurrentIndex(window.controls.asset.findData("SOL"))
    settle(window)
    assert window.drilldown.details_action in window.controls.asset.actions()  # combo's context menu
    window.drilldown.details_action.trigger()
    settle(window)
    panel = window.drilldown.panels[("asset", "SOL")]
    assert panel.totals.total_usd == pytest.approx(demo.liquidations.filter(*DAY, assets=["SOL"]).totals().total_usd)
    assert 100 < float(panel.price_frames["binance"]["close"].median()) < 300


def test_asset_without_candles(window, qtbot, demo):
    menu_action(window, "asset", "DOGE").trigger()
    settle(window)
    panel = window.drilldown.panels[("asset", "DOGE")]
    assert panel.price_frames == {} and panel.basis == {}
    assert panel.totals.total_usd == pytest.approx(demo.liquidations.filter(*DAY, assets=["DOGE"]).totals().total_usd)
    assert "no DOGE candles" in window.drilldown.panels[("asset", "DOGE")].titles[id(panel.price_plot)]


# -- docking -----------------------------------------------------------------------
def test_several_panels_dock_tab_float_and_close(window, qtbot):
    a = click_chip(window, qtbot, "binance")
    menu_action(window, "exchange", "bybit").trigger()
    b = window.drilldown.panels[("exchange", "bybit")]
    menu_action(window, "asset", "ETH").trigger()
    c = window.drilldown.panels[("asset", "ETH")]
    settle(window)
    assert set(window.tabifiedDockWidgets(a)) == {b, c}
    feats = a.features()
    for f in (QDockWidget.DockWidgetFeature.DockWidgetClosable, QDockWidget.DockWidgetFeature.DockWidgetMovable,
              QDockWidget.DockWidgetFeature.DockWidgetFloatable):
        assert feats & f
    # opening again raises the same panel
    assert window.drilldown.open_exchange("binance") is a
    b.setFloating(True)
    settle(window)
    assert b.isFloating() and b.totals.total_usd > 0
    c.close()
    qtbot.waitUntil(lambda: ("asset", "ETH") not in window.drilldown.panels)
    assert set(window.drilldown.panels) == {("exchange", "binance"), ("exchange", "bybit")}
    window.state.update(start=DAY[0] + pd.Timedelta(hours=1))  # closed panels no longer listen
    settle(window)


# -- tables ---------------------------------------------------------------------------
def test_orders_table_sorts_by_header(window, qtbot):
    panel = click_chip(window, qtbot, "binance")
    view, m = panel.orders_view, panel.orders_model
    header = view.horizontalHeader()
    price_col = m.column_index("price")
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=header.rect().topLeft() + pg_point(header.sectionViewportPosition(price_col) + 5, 5))
    prices = m.column_values("price")
    assert m.sort_column == price_col
    assert np.all(np.diff(prices) >= 0) or np.all(np.diff(prices) <= 0)
    m.sort(m.column_index("symbol"), Qt.SortOrder.AscendingOrder)
    syms = [str(s) for s in m.column_values("symbol")]
    assert syms == sorted(syms)
    m.sort(m.column_index("ts"), Qt.SortOrder.DescendingOrder)
    ts = m.column_values("ts")
    assert (np.diff(pd.DatetimeIndex(ts).asi8) <= 0).all()
    assert m.data(m.index(0, 0)) > m.data(m.index(m.rowCount() - 1, 0))  # ISO strings sort like times
    m.sort(m.column_index("notional_usd"), Qt.SortOrder.DescendingOrder)
    assert m.row(0)["notional_usd"] == m.frame["notional_usd"].max()


def pg_point(x, y):
    from PySide6.QtCore import QPoint

    return QPoint(int(x), int(y))


def test_table_model_sorts_100k_rows_quickly(qtbot):
    from liqscope.gui.table_model import RAW_ROLE, DataFrameModel

    n = 100_000
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "ts": pd.Timestamp("2025-05-09", tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400_000, n), unit="ms"),
        "symbol": pd.Categorical(rng.choice(["XRPUSDT", "BTCUSDT", "ETHUSDT"], n)),
        "notional_usd": rng.lognormal(9, 1.5, n),
    })
    m = DataFrameModel()
    m.set_frame(frame)
    assert (m.rowCount(), m.columnCount()) == (n, 3)
    for col, order in ((2, Qt.SortOrder.DescendingOrder), (0, Qt.SortOrder.AscendingOrder),
                       (1, Qt.SortOrder.AscendingOrder)):
        t0 = time.perf_counter()
        m.sort(col, order)
        assert time.perf_counter() - t0 < 1.0
    syms = m.column_values("symbol")
    assert list(pd.unique(syms)) == ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
    m.sort(2, Qt.SortOrder.DescendingOrder)
    assert m.data(m.index(0, 2), RAW_ROLE) == frame["notional_usd"].max()
    assert m.data(m.index(n - 1, 2), RAW_ROLE) == frame["notional_usd"].min()
    # set_frame keeps the sort the user chose
    m.set_frame(frame.iloc[:10])
    assert m.data(m.index(0, 2), RAW_ROLE) == frame["notional_usd"].iloc[:10].max()


# -- navigation ---------------------------------------------------------------------------
def test_double_click_order_centres_main_chart(window, qtbot):
    panel = click_chip(window, qtbot, "binance")
    window.state.update(start=pd.Timestamp("2025-05-09T11:00Z"), end=pd.Timestamp("2025-05-09T13:00Z"))
    settle(window)
    panel.orders_view.setFocus()
    panel.orders_model.sort(panel.orders_model.column_index("notional_usd"), Qt.SortOrder.DescendingOrder)
    index = panel.orders_model.index(2, 0)
    order = panel.orders_model.row(2)
    rect = panel.orders_view.visualRect(index)
    qtbot.mouseClick(panel.orders_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(panel.orders_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    settle(window)
    v = window.state.view
    assert v.end - v.start == pd.Timedelta(hours=2)  # span kept
    centre = v.start + (v.end - v.start) / 2
    assert abs(centre - order["ts"]) <= pd.Timedelta(milliseconds=1)
    x0, x1 = window.price.vb.viewRange()[0]
    assert (x0 + x1) / 2 + window.origin_s == pytest.approx(order["ts"].value / 1e9, abs=0.01)
    assert window.crosshair.vlines[0].value() == pytest.approx(order["ts"].value / 1e9 - window.origin_s, abs=0.01)
    assert order["ts"].strftime("%Y-%m-%d %H:%M:%S") in window.readout.text()


def test_linked_panel_follows_zoom_unlinked_keeps_its_window(window, qtbot, demo):
    linked = click_chip(window, qtbot, "binance")
    unlinked = click_chip(window, qtbot, "okx")
    unlinked.linked_box.click()
    assert not unlinked.linked and linked.linked
    okx_day = unlinked.totals.total_usd
    vb = window.price.vb
    x0, x1 = vb.viewRange()[0]
    centre = (x0 + x1) / 2
    vb.setXRange(centre - 1800, centre + 1800, padding=0)  # a wheel zoom to 1 h around noon
    settle(window)
    v = window.state.view
    assert (v.end - v.start).total_seconds() == pytest.approx(3600, abs=1)
    assert (linked.view.start, linked.view.end) == (v.start, v.end)
    assert linked.totals.total_usd == pytest.approx(
        demo.liquidations.filter(v.start, v.end, exchanges=["binance"]).totals().total_usd)
    assert linked.totals.total_usd < 0.2 * 360e6
    lx = linked.plot.getViewBox().viewRange()[0]
    assert lx[0] + window.origin_s == pytest.approx(v.start.value / 1e9, abs=1)
    assert (unlinked.view.start, unlinked.view.end) == DAY
    assert unlinked.totals.total_usd == okx_day
    # an unlinked panel navigates on its own without moving the main window
    unlinked.set_window(pd.Timestamp("2025-05-08", tz="UTC"), pd.Timestamp("2025-05-08T06:00Z"))
    settle(window)
    assert (window.state.view.start, window.state.view.end) == (v.start, v.end)
    assert unlinked.totals.total_usd == pytest.approx(demo.liquidations.filter(
        "2025-05-08", "2025-05-08T06:00Z", exchanges=["okx"]).totals().total_usd)
    # ticking Linked again snaps back to the main window
    unlinked.linked_box.click()
    settle(window)
    assert (unlinked.view.start, unlinked.view.end) == (v.start, v.end)


def test_panning_a_linked_panel_moves_the_main_chart(window, qtbot):
    panel = click_chip(window, qtbot, "binance")
    vb = panel.plot.getViewBox()
    x0, x1 = vb.viewRange()[0]
    vb.setXRange(x0 + 3600, x1 + 3600, padding=0)  # what a drag ends in
    settle(window)
    v = window.state.view
    assert (v.start, v.end) == (DAY[0] + pd.Timedelta(hours=1), DAY[1] + pd.Timedelta(hours=1))
    assert (panel.view.start, panel.view.end) == (v.start, v.end)


def test_theme_change_reaches_panels(window, qtbot):
    from liqscope.gui.theme import LIGHT

    panel = click_chip(window, qtbot, "binance")
    window.state.update(theme="light")
    settle(window)
    assert panel.graphics.backgroundBrush().color().name() == LIGHT.background
    assert panel.plot.titleLabel.opts["color"] == LIGHT.foreground


def test_dataset_swap_refreshes_open_panels_and_menu(window, qtbot, demo):
    """After an import or the background load, panels show the new data without reopening."""
    from liqscope.models.dataset import Dataset

    panel = click_chip(window, qtbot, "binance")
    assert panel.totals.total_usd == pytest.approx(360e6, rel=0.005)
    only_okx = Dataset(demo.prices, demo.liquidations.filter(exchanges=["okx", "binance"], side="long"),
                       label="test data")
    window.set_dataset(only_okx)
    settle(window)
    assert panel.totals.short_usd == 0
    assert panel.totals.total_usd == pytest.approx(
        demo.liquidations.filter(*DAY, exchanges=["binance"], side="long").totals().total_usd)
    window.drilldown.menu.aboutToShow.emit()
    assert set(window.drilldown.exchange_actions) == set(only_okx.exchanges)
