"""One view, one dataset: what the window shows, exports and summarises is the same thing.

Regression tests for the defects of the "one view, one dataset" issue. Every window
here starts the way ``liqscope`` starts it: placeholder first, then the dataset
loaded on the window's loader and swapped in (``start_like_production``).
"""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqscope.gui.app import settle
from liqscope.gui.main import main as liqscope
from liqscope.models.dataset import Dataset
from liqscope.models.liquidations import LiquidationModel
from liqscope.models.prices import PriceModel
from liqscope.models.view import View

DEMO_DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))
DAY_ARGS = ["--start", "2025-05-09T00:00:00Z", "--end", "2025-05-10T00:00:00Z"]
EMPTY_ARGS = ["--start", "2030-01-01", "--end", "2030-01-02"]


def summary_json(*args: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert liqscope(["--demo", "summary", "--json", *args]) == 0
    return json.loads(out.getvalue())


def export_through_menu(qtbot, window, what: str, path: Path, monkeypatch) -> pd.DataFrame:
    """File ▸ Export CSV ▸ <what>, the file dialog answered with ``path``; waits for the worker."""
    import liqscope.gui.export as export

    monkeypatch.setattr(export, "ask_path", lambda *a, **k: str(path))
    action = next(a for a in window.exports.csv_menu.actions() if a.objectName() == f"export_csv_{what}")
    action.trigger()
    qtbot.waitUntil(path.exists, timeout=20_000)
    return pd.read_csv(path)


# -- 1. File ▸ Export CSV after a normal start --------------------------------
def test_menu_csv_after_production_start_equals_summary(window, qtbot, tmp_path, monkeypatch):
    """The raw-liquidations CSV of the demo day holds its events (it held 0 rows: the export kept the
    placeholder dataset), and its rows and totals equal `liqscope summary` for the same view."""
    frame = export_through_menu(qtbot, window, "liquidations", tmp_path / "day.csv", monkeypatch)
    expected = summary_json(*DAY_ARGS)
    assert len(frame) == expected["count"] > 30_000
    assert frame["notional_usd"].sum() == pytest.approx(expected["total_usd"], rel=1e-9)
    assert window.headline.figures["total_usd"] == pytest.approx(expected["total_usd"], rel=1e-12)
    short = frame.loc[frame["side"] == "short", "notional_usd"].sum()
    assert short == pytest.approx(expected["short_usd"], rel=1e-9)
    for ex, usd in expected["by_exchange"].items():
        assert frame.loc[frame["exchange"] == ex, "notional_usd"].sum() == pytest.approx(usd, rel=1e-9)


def test_menu_csv_follows_filters_and_a_second_swap(window, qtbot, tmp_path, monkeypatch, demo):
    window.state.update(side="short", min_usd=1e5, exchanges=frozenset({"okx", "bybit"}))
    settle(window)
    frame = export_through_menu(qtbot, window, "liquidations", tmp_path / "f.csv", monkeypatch)
    expected = summary_json(*DAY_ARGS, "--side", "short", "--min-usd", "100000", "--exchange", "okx",
                            "--exchange", "bybit")
    assert len(frame) == expected["count"] > 0
    assert frame["notional_usd"].sum() == pytest.approx(expected["total_usd"], rel=1e-9)
    # swapped again (as after an import): the export reads the new dataset, not a copy of the old
    later = shifted(demo, days=30)
    window.set_dataset(later)
    settle(window)
    v = window.state.view
    assert v.start >= later.time_range()[0] - pd.Timedelta(days=1)
    frame2 = export_through_menu(qtbot, window, "liquidations", tmp_path / "g.csv", monkeypatch)
    assert len(frame2) == later.summary(v.start, v.end, **v.liq_filter())["count"] > 0
    assert pd.to_datetime(frame2["ts"]).min() >= v.start


def shifted(ds: Dataset, days: int) -> Dataset:
    """The same data ``days`` later (another dataset with another time origin)."""
    dt = pd.Timedelta(days=days)
    candles = ds.prices.to_long()
    candles["ts"] = candles["ts"] + dt
    liqs = ds.liquidations.frame.copy()
    liqs["ts"] = liqs["ts"] + dt
    return Dataset(PriceModel.from_long(candles), LiquidationModel(liqs), label="shifted")


# -- 2. a window without data is honoured, never replaced by the busiest day ---
def test_cli_export_of_an_empty_window_is_empty_not_another_day(tmp_path, capsys, qapp):
    csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    assert liqscope(["--demo", "export", "--asset", "BTC", *EMPTY_ARGS, "--what", "liquidations",
                     "--csv", str(csv), "--png", str(png), "--size", "800x500"]) == 0
    err = capsys.readouterr().err
    assert "no liquidations in 2030-01-01 00:00 → 2030-01-02 00:00 UTC" in err
    frame = pd.read_csv(csv)
    assert len(frame) == 0 and "notional_usd" in frame.columns  # the header, no rows
    assert summary_json(*EMPTY_ARGS)["total_usd"] == 0
    assert png.stat().st_size > 0


def test_window_headline_of_an_empty_window_is_zero(start_window, demo):
    empty = View(start=pd.Timestamp("2030-01-01", tz="UTC"), end=pd.Timestamp("2030-01-02", tz="UTC"))
    w = start_window(demo, empty)
    v = w.state.view
    assert (v.start, v.end) == (empty.start, empty.end)
    assert w.headline.figures["total_usd"] == 0 and w.headline.figures["count"] == 0
    assert w.headline.total.text() == "$0"
    assert "No liquidations in this window" in w.liq.note.text
    assert "No BTC candles from Binance in this window" in w.price.note.text


def test_screenshot_of_an_empty_window_is_honoured(tmp_path, capsys, qapp, monkeypatch):
    from liqscope.gui import main_window

    seen = []
    real = main_window.MainWindow.update_headline

    def spy(self):
        real(self)
        seen.append(dict(self.headline.figures))

    monkeypatch.setattr(main_window.MainWindow, "update_headline", spy)
    assert liqscope(["--demo", "--screenshot", str(tmp_path / "s.png"), "--asset", "BTC", *EMPTY_ARGS,
                     "--size", "800x600"]) == 0
    assert seen and seen[-1]["start"] == "2030-01-01T00:00:00Z" and seen[-1]["total_usd"] == 0


# -- 3. markers, readout, labels describe the current view ---------------------
def test_markers_follow_a_zoom_that_keeps_the_bucket(window, qtbot):
    """4h preset, then zoom in without changing the bar bucket: the markers are the largest events
    of the new window (they were the old window's: 17 drawn where 264 were in view)."""
    v = window.state.view
    window.state.update(bucket=60)  # a fixed bucket: zooming can never re-bin
    window.state.update(start=v.end - pd.Timedelta(hours=4), end=v.end)
    settle(window)
    end = v.end - pd.Timedelta(hours=1, minutes=40)
    window.state.update(start=end - pd.Timedelta(minutes=30), end=end)
    settle(window)
    drawn = window.price.markers["long"].data["x"].size + window.price.markers["short"].data["x"].size
    v = window.state.view
    in_view = window.dataset.index().totals(v.start, v.end, assets=["BTC"]).count
    limit = max(40, int(window.price.vb.width() / 8))
    assert in_view > 0 and drawn == min(in_view, limit)
    xs = np.concatenate([window.price.markers[s].data["x"] for s in ("long", "short")])
    x0, x1 = (t.value / 1e9 - window.origin_s for t in (v.start, v.end))
    assert ((xs >= x0) & (xs < x1)).all()


def test_readout_and_labels_follow_the_view(window, qtbot):
    v = window.state.view
    x = (v.start + pd.Timedelta(hours=12)).value / 1e9 - window.origin_s
    before = window.show_readout(x)
    window.state.update(bucket=900)
    settle(window)
    assert window.readout.text() != before and "15m bucket" in window.readout.text()
    assert "bars 15m" in window.view_info.text()
    assert "per 15m bucket" in window.liq.label.textItem.toPlainText()
    window.state.update(start=v.start - pd.Timedelta(days=3), end=v.start - pd.Timedelta(days=2))  # crosshair out
    settle(window)
    assert window.readout.text() == " "


def test_docking_a_panel_refits_the_main_pane(window, qtbot):
    """Docking a panel narrows the charts without resizing the window: bars, label and status follow."""
    before = window.liq.bucket
    window.drilldown.open_exchange("binance")
    qtbot.wait(150)
    settle(window)
    assert window.liq.label.pos().x() == pytest.approx(window.liq.vb.width(), abs=1)
    assert f"bars {_dur(window.liq.bucket)}" in window.view_info.text()
    assert window.liq.bucket >= before


def _dur(seconds: int) -> str:
    from liqscope.models.timeutil import format_duration

    return format_duration(seconds)


# -- 4. open panels follow a dataset swap --------------------------------------
def test_open_panel_axis_follows_a_dataset_swap(window, qtbot, demo):
    panel = window.drilldown.open_exchange("okx")
    settle(window)
    later = shifted(demo, days=30)
    window.set_dataset(later)
    qtbot.wait(120)
    settle(window)
    axis = panel.plot.getAxis("bottom")
    assert axis.origin_s == window.price_axis.origin_s == window.origin_s
    v = window.state.view
    x = (v.start + pd.Timedelta(hours=6)).value / 1e9 - window.origin_s
    assert axis.tickStrings([x], 1, 3600) == window.liq_axis.tickStrings([x], 1, 3600)
    assert panel.view.start == v.start


# -- 5. the view is validated in one place --------------------------------------
def test_asset_not_listed_by_the_selected_exchange(start_window, demo):
    """ETH has candles only from OKX: picking ETH while Binance is selected shows OKX's candles."""
    candles = demo.prices.to_long()
    keep = (candles["asset"] != "ETH") | (candles["exchange"] == "okx")
    ds = Dataset(PriceModel.from_long(candles[keep]), demo.liquidations, label="eth on okx only")
    w = start_window(ds, View(start=DEMO_DAY[0], end=DEMO_DAY[1], asset="BTC", exchange="binance"))
    w.controls.asset.setCurrentIndex(w.controls.asset.findData("ETH"))
    settle(w)
    assert w.state.view.exchange == "okx" == w.controls.exchange.currentData()
    assert w.price.pyramid is not None and len(w.price.visible) > 0


# -- 7. liquidations alone are a valid dataset ----------------------------------
def liquidations_only(demo) -> Dataset:
    return Dataset(PriceModel(), demo.liquidations, label="liquidations only")


def test_liquidations_only_dataset_in_the_window(start_window, demo):
    w = start_window(liquidations_only(demo))
    assert [w.controls.asset.itemData(i) for i in range(w.controls.asset.count())] == demo.liquidations.assets
    assert not w.controls.exchange.isEnabled()
    assert w.headline.figures["total_usd"] == pytest.approx(860e6, rel=0.001)
    assert "No BTC candles in this dataset" in w.price.note.text and "Fetch candles" in w.price.note.text
    assert "no candles" in w.view_info.text() and not w.price.plot.getAxis("right").style["showValues"]
    assert w.liq.table is not None and w.liq.table.sums.sum() > 0
    panel = w.drilldown.open_asset("BTC")
    settle(w)
    assert panel.totals.total_usd > 0


def test_liquidations_only_store_exports_png(tmp_path, capsys, qapp, demo):
    from liqscope.models.store import open_store

    store = open_store(tmp_path / "store")
    store.append_liquidations(demo.liquidations.frame)
    png = tmp_path / "btc.png"
    assert liqscope(["--data-dir", str(tmp_path / "store"), "export", "--png", str(png), "--asset", "BTC",
                     *DAY_ARGS, "--size", "800x500"]) == 0, capsys.readouterr().err
    assert png.stat().st_size > 0


# -- 8. linked panels go through the index, behind their throttle --------------
def test_linked_panels_never_scan_the_events(window, qtbot, monkeypatch):
    panel = window.drilldown.open_exchange("binance")
    asset = window.drilldown.open_asset("ETH")
    settle(window)

    def scan(*_a, **_k):
        raise AssertionError("a panel scanned the events")

    monkeypatch.setattr(LiquidationModel, "filter", scan)
    refreshes = []
    monkeypatch.setattr(type(panel), "refresh", lambda self: refreshes.append(self))
    v = window.state.view
    for i in range(10):  # a drag: ten window changes in a burst
        window.state.update(start=v.start + pd.Timedelta(minutes=i), end=v.end + pd.Timedelta(minutes=i))
        window.state.flush()
    assert refreshes == [] and panel._refresh_timer.isActive()  # throttled, not run per change
    monkeypatch.undo()
    monkeypatch.setattr(LiquidationModel, "filter", scan)
    settle(window)
    assert panel.totals.total_usd == pytest.approx(window.dataset.index().totals(
        window.state.view.start, window.state.view.end, exchanges=["binance"]).total_usd)
    assert asset.totals.count > 0


def test_a_new_price_series_cancels_the_previous_lod_build(window):
    """The coarse-level builder of the old series is told to stop; the new series gets its own run."""
    old = window.price.lod_worker.task
    window.state.update(asset="ETH")
    settle(window)
    assert old is not None and old.cancelled
    assert window.price.lod_worker.task is not old and not window.price.lod_worker.task.cancelled


@pytest.mark.parametrize("changes", [{"side": "long", "min_usd": 1e5, "bucket": 3600}, {"stacked": True}])
def test_bars_never_cover_the_liquidation_legend_and_caption(window, changes):
    """Longs only (bars hang down from zero) or stacked (bars rise to the top): the caption band stays free."""
    from liqscope.gui.layout import CAPTION_BAND_PX

    window.state.update(**changes)
    settle(window)
    vb = window.liq.vb
    (_, _), (y0, y1) = vb.viewRange()
    highest = max(float(window.liq._tops.max(initial=0.0)), 0.0)
    free_px = (y1 - highest) / (y1 - y0) * vb.height()
    assert free_px >= CAPTION_BAND_PX - 0.5
