"""Drive the real main window on the demo data and check what it shows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from liqscope.gui.main import main as cli_main
from liqscope.models.dataset import load_demo
from liqscope.models.format import number
from liqscope.gui.app import settle

DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))


def test_headline_matches_summary_json(window, capsys):
    assert cli_main(["--demo", "summary", "--start", "2025-05-09T00:00:00Z", "--end", "2025-05-10T00:00:00Z", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    shown = window.headline.figures
    assert shown["total_usd"] == pytest.approx(expected["total_usd"])
    assert shown["short_share"] == pytest.approx(expected["short_share"])
    assert shown["by_exchange"] == pytest.approx(expected["by_exchange"])
    # and the labels a user reads
    assert window.headline.total.text() == "$860.0M"
    assert window.headline.shorts.text() == "$705.2M (82%)"
    from PySide6.QtWidgets import QPushButton

    texts = " ".join(b.text() for b in window.headline.chips_box.findChildren(QPushButton))
    for fragment in ("Binance $360.0M", "OKX $180.0M", "Bybit $120.0M"):
        assert fragment in texts


def test_switching_asset_changes_plotted_candles(window, qtbot):
    btc_close = window.price.candles.data[4].copy()
    assert 99_000 < np.median(btc_close) < 104_500
    combo = window.controls.asset
    combo.setCurrentIndex(combo.findData("ETH"))
    settle(window)
    assert window.state.view.asset == "ETH"
    eth_close = window.price.candles.data[4]
    assert 1_500 < np.median(eth_close) < 3_000
    # price markers follow the asset, and their y values are ETH prices
    ys = np.concatenate([m.getData()[1] for m in window.price.markers.values()])
    assert len(ys) and 1_500 < np.median(ys) < 3_000


def test_zoom_changes_bucket_and_headline(window, qtbot):
    day_bucket = window.liq.bucket
    day_total = window.headline.figures["total_usd"]
    vb = window.price.vb
    x0, x1 = vb.viewRange()[0]
    centre = (x0 + x1) / 2
    vb.setXRange(centre - 1800, centre + 1800, padding=0)  # what a wheel zoom ends in: 1 h around noon
    settle(window)
    v = window.state.view
    assert (v.end - v.start).total_seconds() == pytest.approx(3600, abs=1)
    assert window.liq.bucket < day_bucket
    assert window.liq.bucket == 60
    expected = window.dataset.liquidations.filter(v.start, v.end).totals().total_usd
    assert window.headline.figures["total_usd"] == pytest.approx(expected)
    assert window.headline.figures["total_usd"] < day_total
    # bars drawn for the visible window sum to the same money as the raw events
    table = window.liq.table
    starts = table.starts_ns
    vis = (starts >= v.start.value) & (starts < v.end.value)
    first, last = (pd.Timestamp(int(t), tz="UTC") for t in (starts[vis][0], starts[vis][-1]))
    inner = window.dataset.liquidations.filter(first, last + pd.Timedelta(minutes=1))
    assert table.sums[:, :, vis].sum() == pytest.approx(inner.totals().total_usd)


def test_presets_and_reset(window):
    window.controls.preset_actions["4h"].trigger()
    settle(window)
    v = window.state.view
    assert v.end - v.start == pd.Timedelta(hours=4)
    assert v.end == DAY[1]
    window.controls.reset.trigger()
    settle(window)
    assert (window.state.view.start, window.state.view.end) == DAY
    window.controls.preset_actions["All"].trigger()
    settle(window)
    assert window.state.view.start <= pd.Timestamp("2025-05-07", tz="UTC")
    assert window.liq.bucket >= 900  # four days never draw 1-minute bars


def test_crosshair_readout_at_known_point(window):
    window.state.update(start=pd.Timestamp("2025-05-09T12:00Z"), end=pd.Timestamp("2025-05-09T13:00Z"))
    settle(window)
    assert window.price.level == 60
    t = pd.Timestamp("2025-05-09T12:30:20Z")
    text = window.show_readout(t.value / 1e9 - window.origin_s)
    key = window.dataset.prices.find("BTC", "binance")
    candle = window.dataset.prices.candles(key).loc[pd.Timestamp("2025-05-09T12:30Z")]
    assert "2025-05-09 12:30:20 UTC" in text
    for k in ("open", "high", "low", "close"):
        assert number(candle[k]) in text
    bucket = window.dataset.liquidations.filter(pd.Timestamp("2025-05-09T12:30Z"), pd.Timestamp("2025-05-09T12:31Z")).totals()
    from liqscope.models.format import usd

    assert f"longs {usd(bucket.long_usd)}" in text
    assert f"shorts {usd(bucket.short_usd)}" in text


def test_side_and_size_filters_update_headline(window):
    window.controls.side.setCurrentIndex(window.controls.side.findData("short"))
    settle(window)
    assert window.headline.figures["long_usd"] == 0
    assert window.headline.figures["total_usd"] == pytest.approx(705.2e6, rel=0.005)
    window.controls.min_size.setCurrentIndex(window.controls.min_size.findData(1e6))
    settle(window)
    expected = window.dataset.liquidations.filter(*DAY, side="short", min_notional=1e6).totals()
    assert window.headline.figures["total_usd"] == pytest.approx(expected.total_usd)
    assert window.headline.figures["count"] == expected.count


def test_exchange_filter_menu(window):
    window.controls.exch_actions["binance"].setChecked(False)
    settle(window)
    assert window.state.view.exchanges == frozenset({"okx", "bybit", "bitget", "gate"})
    assert "binance" not in window.headline.figures["by_exchange"]
    assert window.headline.figures["total_usd"] == pytest.approx(500e6, rel=0.005)


def test_state_to_widgets_binding_has_no_feedback_loop(window, qtbot):
    emitted = []
    window.state.changed.connect(lambda names: emitted.append(names))
    window.state.update(asset="SOL", theme="light")
    settle(window)
    assert window.controls.asset.currentData() == "SOL"
    assert window.controls.theme_actions["light"].isChecked()
    assert len(emitted) == 1  # one coalesced emission, no echo from the widgets


def test_settings_persist_across_runs(qtbot, demo, tmp_path, monkeypatch):
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "cfg"))
    from liqscope.gui.main_window import MainWindow

    first = MainWindow(demo, restore=True)
    qtbot.addWidget(first)
    first.state.update(asset="XRP", exchange="okx", theme="light",
                       start=pd.Timestamp("2025-05-08T06:00Z"), end=pd.Timestamp("2025-05-08T10:00Z"))
    first.state.flush()
    first.show()
    first.resize(760, 560)  # within the offscreen platform's 800x600 screen
    qtbot.waitExposed(first)
    first.close()
    second = MainWindow(demo, restore=True)
    qtbot.addWidget(second)
    v = second.state.view
    assert (v.asset, v.exchange, v.theme) == ("XRP", "okx", "light")
    assert (v.start, v.end) == (pd.Timestamp("2025-05-08T06:00Z"), pd.Timestamp("2025-05-08T10:00Z"))
    assert (second.width(), second.height()) == (760, 560)


def test_screenshot_cli_writes_png(tmp_path, monkeypatch, qapp):
    from PySide6.QtGui import QImage

    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "cfg"))
    out = tmp_path / "shot.png"
    assert cli_main(["--demo", "--screenshot", str(out), "--asset", "ETH", "--size", "1200x800",
                     "--start", "2025-05-09T00:00Z", "--end", "2025-05-10T00:00Z"]) == 0
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1200, 800)
    small = img.scaled(60, 40)
    colours = {small.pixel(x, y) for x in range(60) for y in range(40)}
    assert len(colours) > 20  # not blank


def test_screenshot_cli_rejects_bad_args(tmp_path, capsys, qapp):
    assert cli_main(["--demo", "--screenshot", str(tmp_path / "x.png"), "--asset", "NOPE"]) == 2
    assert "unknown asset" in capsys.readouterr().err
    assert cli_main(["--demo", "--screenshot", str(tmp_path / "x.png"), "--size", "big"]) == 2


def test_window_paints_empty_then_shows_data_loaded_in_background(qtbot, demo, tmp_path, monkeypatch):
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "cfg"))
    from liqscope.gui.main_window import MainWindow

    w = MainWindow(restore=False)  # the placeholder, as `liqscope` paints it first
    qtbot.addWidget(w)
    w.show()
    settle(w)
    assert w.headline.figures == {}  # nothing to show yet, and no crash
    with qtbot.waitSignal(w.loader.loaded, timeout=10_000):
        thread = w.loader.load(load_demo)
    thread.join()
    settle(w)
    assert w.dataset.is_demo
    assert (w.state.view.start, w.state.view.end) == DAY
    assert w.headline.total.text() == "$860.0M"
    # every asset with data: DOGE has liquidations but no candles (the price pane then says so)
    assert [w.controls.asset.itemData(i) for i in range(w.controls.asset.count())] == demo.assets
    assert len(w.price.candles.data[0]) > 0


def test_loader_reports_failures_as_error_objects(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from liqscope.gui.main_window import MainWindow

    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "cfg"))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    w = MainWindow(restore=False)
    qtbot.addWidget(w)

    def boom():
        raise ValueError("store is corrupt: bad magic")

    with qtbot.waitSignal(w.loader.failed, timeout=5000) as sig:
        w.loader.load(boom)
    assert isinstance(sig.args[0], ValueError)
    assert shown == ["Could not load data: store is corrupt: bad magic"]
    assert w.dataset.label.startswith("Loading")  # nothing was swapped in


def test_screenshot_does_not_overwrite_saved_settings(qtbot, demo, tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "cfg"))
    from liqscope.gui.settings import load_view, open_settings

    s = open_settings()
    s.setValue("view/asset", "SOL")
    s.sync()
    assert cli_main(["--demo", "--screenshot", str(tmp_path / "x.png"), "--asset", "ETH", "--size", "800x600"]) == 0
    assert load_view(open_settings())["asset"] == "SOL"


def test_theme_switch_recolours_legends(window):
    from liqscope.gui.theme import LIGHT

    window.state.update(theme="light")
    settle(window)
    for legend in (window.liq.legend, window.price.legend):
        assert legend.items
        for _sample, label in legend.items:
            assert label.opts["color"] == LIGHT.foreground


def test_mouse_wheel_zooms_and_drag_pans_through_real_events(window, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    view = window.graphics
    vb = window.price.vb
    centre = view.mapFromScene(vb.sceneBoundingRect().center())
    before = window.state.view
    wheel = QWheelEvent(QPointF(centre), QPointF(view.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 480),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    settle(window)
    zoomed = window.state.view
    assert (zoomed.end - zoomed.start) < (before.end - before.start) * 0.8  # zoomed in
    assert window.headline.figures["total_usd"] < 860e6
    # drag to the right: the window moves back in time by the dragged fraction
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent

    vp = view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(kind, dx, button, buttons):
        p = QPointF(centre + QPoint(dx, 0))
        QApplication.sendEvent(vp, QMouseEvent(kind, p, QPointF(vp.mapToGlobal(p.toPoint())), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, 0, left, left)
    for dx in range(10, 210, 20):  # QTest's mouseMove drops the held button, so send real move events
        send(QEvent.Type.MouseMove, dx, none, left)
    send(QEvent.Type.MouseButtonRelease, 200, left, none)
    settle(window)
    panned = window.state.view
    assert panned.start < zoomed.start
    assert (panned.end - panned.start) == pytest.approx(zoomed.end - zoomed.start, abs=pd.Timedelta(seconds=1))


def test_price_context_in_the_headline_and_on_the_axes(window, demo):
    """Last price and the window's change, high and low (from the 1m candles, exact); a last-price tag;
    the crosshair's price and time as tags."""
    key = demo.prices.find("BTC", "binance")
    c = demo.prices.candles(key)
    day = c[(c.index >= DAY[0]) & (c.index < DAY[1])]
    first, last = day["open"].iloc[0], day["close"].iloc[-1]
    h = window.headline
    assert h.price_box.isVisible() and h.range_box.isVisible()
    assert h.price.text() == f"{number(last, 6)} ({(last / first - 1) * 100:+.2f}%)"
    assert h.range.text() == f"{number(day['high'].max(), 6)} / {number(day['low'].min(), 6)}"
    assert window.price.last_line.isVisible() and window.price.last_line.value() == pytest.approx(last)
    x = (DAY[0] + pd.Timedelta(hours=14)).value / 1e9 - window.origin_s
    window.show_readout(x, 101_500.0)
    assert window.crosshair.hline.label.format == "101,500"
    assert window.crosshair.vlines[1].label.format == "2025-05-09 14:00 UTC"
    window.state.update(asset="DOGE")  # liquidations but no candles: no price figures
    settle(window)
    assert not h.price_box.isVisible() and not window.price.last_line.isVisible()
