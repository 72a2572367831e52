"""PNG and CSV export from the main window, the panels and `liqscope export`: sizes, pixels, numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtGui import QImage

from liqscope.gui.main import main as cli_main
from liqscope.gui.app import settle

DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))
DAY_ARGS = ["--start", "2025-05-09T00:00:00Z", "--end", "2025-05-10T00:00:00Z"]


def colours(img: QImage, n: int = 60) -> int:
    """Distinct colours in a downscaled copy: a blank or one-colour image has 1-2."""
    small = img.scaled(n, n)
    return len({small.pixel(x, y) for x in range(n) for y in range(n)})


def ink_rows(img: QImage, background: int) -> float:
    """Share of sampled rows that contain something other than the background colour."""
    step = max(1, img.height() // 200)
    rows = range(0, img.height(), step)
    hit = sum(any(img.pixel(x, y) != background for x in range(0, img.width(), max(1, img.width() // 200)))
              for y in rows)
    return hit / len(rows)


# -- PNG ----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 2])
def test_main_view_png_has_requested_size_and_content(window, tmp_path, scale):
    from liqscope.gui.export import export_png

    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / f"main{scale}x.png"
    w, h = export_png(window.exports, out, scale)
    central = window.centralWidget()
    assert (w, h) == (central.width() * scale, central.height() * scale)
    img = QImage(str(out))
    assert (img.width(), img.height()) == (w, h)
    assert colours(img) > 40
    assert ink_rows(img, img.pixel(w - 2, h // 2)) > 0.5  # drawn top to bottom, not a blank canvas
    assert [p.name for p in folder.iterdir()] == [out.name]  # no temp files left behind


def gray(img: QImage) -> np.ndarray:
    """The image as a 2-D array of grey levels (for pixel-level comparisons)."""
    img = img.convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width()].astype(int)


def test_2x_png_is_rendered_not_upscaled(window):
    """At 2× text and lines are drawn at the higher resolution, not a 1× image blown up."""
    from liqscope.gui.export import render_widget

    central = window.centralWidget()
    one, two = gray(render_widget(central, 1)), gray(render_widget(central, 2))
    assert two.shape == (one.shape[0] * 2, one.shape[1] * 2)
    head = two[: 2 * central.height() // 5]  # headline figures, chips, top of the chart
    # a blown-up image repeats every pixel twice; a real 2× render has detail between them
    odd_even = np.mean(head[:, 0::2] != head[:, 1::2])
    assert odd_even > 0.02
    # and it is the same picture: averaged back down it matches the 1× render
    down = two.reshape(one.shape[0], 2, one.shape[1], 2).mean(axis=(1, 3))
    assert np.median(np.abs(down - one)) < 4
    assert np.mean(np.abs(down - one) > 64) < 0.05


def test_panel_png_1x_and_2x(window, qtbot, tmp_path):
    from liqscope.gui.export import export_png

    for panel in (window.drilldown.open_exchange("binance"), window.drilldown.open_asset("ETH")):
        panel.raise_()
        settle(window)
        size = panel.content.size()
        for scale in (1, 2):
            out = tmp_path / f"{panel.objectName()}_{scale}.png"
            assert export_png(panel, out, scale) == (size.width() * scale, size.height() * scale)
            img = QImage(str(out))
            assert (img.width(), img.height()) == (size.width() * scale, size.height() * scale)
            assert colours(img) > 30


def test_png_to_unwritable_path_raises_one_line(window, tmp_path):
    from liqscope.gui.export import export_png
    from liqscope.models.export import ExportError

    with pytest.raises(ExportError, match="does not exist"):
        export_png(window.exports, tmp_path / "nope" / "x.png")


# -- CSV from the window ----------------------------------------------------------
def test_main_csv_candles_are_the_drawn_candles(window, tmp_path):
    from liqscope.gui.export import export_csv

    window.state.update(start=pd.Timestamp("2025-05-09T06:00Z"), end=pd.Timestamp("2025-05-09T18:00Z"))
    settle(window)
    level = window.price.level
    assert level > 60  # a 12 h view draws merged candles
    out = tmp_path / "c.csv"
    rows = export_csv(window.exports, out, "candles")
    back = pd.read_csv(out)
    assert rows == len(back) == 12 * 3600 // level
    assert set(back["interval"]) == {f"{level // 60}m"} and set(back["exchange"]) == {"binance"}
    lod = window.price.lod(level)  # the level-of-detail pyramid the pane draws from
    lo, hi = np.searchsorted(lod.ts, [window.state.view.start.value, window.state.view.end.value])
    np.testing.assert_array_equal(pd.DatetimeIndex(pd.to_datetime(back["ts"], utc=True)).as_unit("ns").asi8,
                                  lod.ts[lo:hi])
    for col in ("open", "high", "low", "close"):
        np.testing.assert_allclose(back[col].to_numpy(), getattr(lod, col)[lo:hi], rtol=0, atol=1e-9)


def test_main_csv_buckets_and_events_follow_filters(window, tmp_path, demo):
    from liqscope.gui.export import export_csv

    window.controls.exch_actions["binance"].setChecked(False)
    window.controls.side.setCurrentIndex(window.controls.side.findData("short"))
    settle(window)
    out = tmp_path / "b.csv"
    export_csv(window.exports, out, "buckets")
    back = pd.read_csv(out)
    expected = demo.liquidations.filter(*DAY, exchanges=["okx", "bybit", "bitget", "gate"], side="short").totals()
    assert back["total_usd"].sum() == pytest.approx(expected.total_usd)
    assert back["total_usd"].sum() == pytest.approx(window.headline.figures["total_usd"])
    assert back["long_usd"].sum() == 0
    assert not any(c.startswith("binance") for c in back.columns)
    assert len(back) == 86400 // window.liq.bucket
    # the bars the pane draws inside the window hold the same money per bucket
    table = window.liq.table  # BucketSums: sums[side, exchange, bucket] over the window plus margins
    starts = table.starts_ns
    inside = table.sums.sum(axis=(0, 1))[(starts >= DAY[0].value) & (starts < DAY[1].value)]
    np.testing.assert_allclose(back["total_usd"].to_numpy(), inside, rtol=1e-9)
    out2 = tmp_path / "e.csv"
    n = export_csv(window.exports, out2, "liquidations")
    events = pd.read_csv(out2)
    assert n == len(events) == expected.count
    assert set(events["side"]) == {"short"} and "binance" not in set(events["exchange"])


def test_file_menu_export_uses_dialog_with_default_name(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    menu_texts = [a.text() for a in window.file_menu.actions()]
    assert menu_texts[-5:] == ["Cop&y image", "Export &PNG", "Export &CSV", "", "&Quit"]
    asked = []

    def fake_dialog(parent, caption, path, file_filter):
        asked.append((caption, path, file_filter))
        return str(tmp_path / pathlib_name(path)), file_filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    csv_action = next(a for a in window.exports.csv_menu.actions() if a.objectName() == "export_csv_candles")
    csv_action.trigger()
    png_action = next(a for a in window.exports.png_menu.actions() if a.objectName() == "export_png_2x")
    png_action.trigger()
    assert pathlib_name(asked[0][1]) == "BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.csv"
    assert pathlib_name(asked[1][1]) == "BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.png"
    csv = pd.read_csv(tmp_path / "BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.csv")
    assert csv["ts"].iloc[0] == "2025-05-09T00:00:00.000Z"
    img = QImage(str(tmp_path / "BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.png"))
    assert img.width() == 2 * window.centralWidget().width()
    assert "Wrote" in window.statusBar().currentMessage()
    # the next dialog opens in the folder used last
    assert window.settings.value("export/dir") == str(tmp_path)


def pathlib_name(path: str) -> str:
    from pathlib import Path

    return Path(path).name


def test_panel_export_button_csv(window, tmp_path, monkeypatch, demo, qtbot):
    from PySide6.QtWidgets import QFileDialog

    panel = window.drilldown.open_exchange("binance")
    settle(window)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda parent, caption, path, flt: (str(tmp_path / pathlib_name(path)), flt)))
    names = [a.objectName() for a in panel.export_button.menu().actions() if a.objectName()]
    assert names == ["export_png_1x", "export_png_2x", "export_csv_buckets", "export_csv_liquidations"]
    act = next(a for a in panel.export_button.menu().actions() if a.objectName() == "export_csv_buckets")
    act.trigger()
    out = tmp_path / "all-assets_binance_2025-05-09T00-00Z_2025-05-10T00-00Z_buckets.csv"
    qtbot.waitUntil(out.exists, timeout=20_000)  # written by a worker
    back = pd.read_csv(out)
    t = demo.liquidations.filter(*DAY, exchanges=["binance"]).totals()
    assert back["total_usd"].sum() == pytest.approx(t.total_usd)
    for asset, usd in t.by_asset.items():
        assert (back[f"{asset}_long_usd"] + back[f"{asset}_short_usd"]).sum() == pytest.approx(usd)
    assert len(back) == 86400 // panel.bucket


def test_asset_panel_candles_csv_has_every_exchange(window, tmp_path):
    from liqscope.gui.export import export_csv

    panel = window.drilldown.open_asset("BTC")
    settle(window)
    out = tmp_path / "btc.csv"
    export_csv(panel, out, "candles")
    back = pd.read_csv(out)
    assert list(back["exchange"].unique()) == ["binance", "bybit", "okx"]
    for ex, part in back.groupby("exchange"):
        np.testing.assert_array_equal(part["close"].to_numpy(), panel.price_frames[ex]["close"].to_numpy())


def test_long_exports_show_progress_and_cancel_leaves_no_file(window, tmp_path, qtbot, monkeypatch):
    import liqscope.gui.export as export

    monkeypatch.setattr(export, "PROGRESS_MIN_ROWS", 1000)
    dialogs = []
    real_dialog = export.progress_dialog
    monkeypatch.setattr(export, "progress_dialog", lambda *a: dialogs.append(real_dialog(*a)) or dialogs[-1])
    window.state.update(start=pd.Timestamp("2025-05-07", tz="UTC"), end=pd.Timestamp("2025-05-11", tz="UTC"))
    settle(window)
    out = tmp_path / "all.csv"
    worker = export.start_csv_export(window, window.exports, "liquidations", str(out))
    qtbot.waitUntil(lambda: "Wrote" in window.statusBar().currentMessage(), timeout=20_000)
    assert len(pd.read_csv(out)) > 20_000 and len(dialogs) == 1  # a dialog, for a long export only
    # cancelled before the first row is written: no file, a word in the status bar
    start = export.Worker.start
    monkeypatch.setattr(export.Worker, "start", lambda self, fn: start(self, lambda task: (task.cancel.set(),
                                                                                           fn(task))[1]))
    worker = export.start_csv_export(window, window.exports, "liquidations", str(tmp_path / "cancelled.csv"))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Export cancelled", timeout=20_000)
    assert worker is not None and not (tmp_path / "cancelled.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "config"]


# -- CLI ------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 2])
def test_cli_png_has_requested_size(tmp_path, qapp, capsys, scale):
    out = tmp_path / "view.png"
    assert cli_main(["--demo", "export", "--asset", "ETH", *DAY_ARGS, "--png", str(out), "--size", "1200x700",
                     "--scale", str(scale)]) == 0
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1200 * scale, 700 * scale)
    assert colours(img) > 40
    assert capsys.readouterr().out.strip() == f"wrote {out} ({1200 * scale}x{700 * scale})"


def test_cli_csv_equals_gui_export_of_the_same_view(tmp_path, qapp, capsys, demo, monkeypatch):
    """Same renderer, same data: the CLI file is byte-identical to File ▸ Export CSV for that view."""
    from liqscope.gui.export import MainViewExport, export_csv
    from liqscope.gui.headless import fit_central
    from liqscope.gui.main_window import MainWindow
    from liqscope.gui.state import View

    cli_out = tmp_path / "cli.csv"
    assert cli_main(["--demo", "export", "--asset", "BTC", "--exchange", "okx", *DAY_ARGS, "--csv", str(cli_out),
                     "--what", "buckets", "--size", "1300x800"]) == 0
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "cfg"))
    w = MainWindow(demo, View(start=DAY[0], end=DAY[1], asset="BTC", exchange="okx"), restore=False)
    try:
        fit_central(w, 1300, 800)
        gui_out = tmp_path / "gui.csv"
        export_csv(MainViewExport(w), gui_out, "buckets")
    finally:
        w.close()
        w.deleteLater()
    assert cli_out.read_bytes() == gui_out.read_bytes()
    back = pd.read_csv(cli_out)
    assert back["total_usd"].sum() == pytest.approx(demo.liquidations.filter(*DAY).totals().total_usd)


def test_cli_export_leaves_user_settings_alone(tmp_path, qapp, monkeypatch):
    cfg = tmp_path / "cfg"
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(cfg))
    assert cli_main(["--demo", "export", "--asset", "SOL", *DAY_ARGS, "--png", str(tmp_path / "x.png"),
                     "--csv", str(tmp_path / "x.csv")]) == 0
    assert not cfg.exists()  # the headless window used a throw-away settings folder
    import os

    assert os.environ["LIQSCOPE_CONFIG_DIR"] == str(cfg)


def test_cli_too_small_size_and_unwritable_png(tmp_path, qapp, capsys):
    status = cli_main(["--demo", "export", "--asset", "BTC", *DAY_ARGS, "--png", str(tmp_path / "x.png"),
                       "--size", "450x300"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "cannot lay the view out at 450x300" in err
    assert not (tmp_path / "x.png").exists()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os_access_write(ro):
            pytest.skip("running as root: a read-only folder is still writable")
        status = cli_main(["--demo", "export", "--asset", "BTC", "--png", str(ro / "x.png")])
        err = capsys.readouterr().err
        assert status == 2 and "permission denied" in err and err.count("\n") == 1
    finally:
        ro.chmod(0o700)


def os_access_write(path) -> bool:
    import os

    return os.access(path, os.W_OK)


def test_exported_image_is_share_ready(window, monkeypatch):
    """A title line says what the image shows; the banner, the readout and the crosshair stay out of it."""
    import liqscope.gui.export as export

    window.show_readout((DAY[0] + pd.Timedelta(hours=12)).value / 1e9 - window.origin_s)
    window.state.update(side="short", min_usd=1e5, exchanges=frozenset({"okx", "binance"}))
    settle(window)
    seen = {}
    real = export.render_widget

    def spy(widget, scale=1.0, background=None):
        seen.update(title=window.export_title.isVisible(), banner=window.banner.isVisible(),
                    readout=window.readout.isVisible(), lines=[ln.isVisible() for ln in window.crosshair.lines])
        return real(widget, scale, background)

    monkeypatch.setattr(export, "render_widget", spy)
    image = export.export_image(window.exports, 1.0)
    assert seen == {"title": True, "banner": False, "readout": False, "lines": [False, False, False]}
    central = window.centralWidget()
    assert (image.width(), image.height()) == (central.width(), central.height())  # the view's own size
    title = window.export_title.text()
    for words in ("BTC · Binance 5m candles", "2025-05-09 00:00 → 2025-05-10 00:00 UTC", "all assets",
                  "Binance, OKX", "shorts only", "≥ $100.0K", "synthetic demo data"):
        assert words in title, (words, title)
    # put back as it was
    assert window.banner.isVisible() and window.readout.isVisible() and not window.export_title.isVisible()
    assert window.crosshair.vlines[0].isVisible()


def test_copy_image_puts_the_exported_image_on_the_clipboard(window):
    from PySide6.QtWidgets import QApplication

    act = window.findChild(type(window.exports.png_menu.actions()[0]), "copy_image")
    act.trigger()
    image = QApplication.clipboard().image()
    central = window.centralWidget()
    assert (image.width(), image.height()) == (central.width(), central.height())
    assert "clipboard" in window.statusBar().currentMessage()


def test_a_window_of_several_days_names_each_day_on_the_axis(window):
    window.state.update(start=pd.Timestamp("2025-05-07", tz="UTC"), end=pd.Timestamp("2025-05-10", tz="UTC"))
    settle(window)
    axis = window.liq_axis
    x0, x1 = window.liq.vb.viewRange()[0]
    levels = axis.tickValues(x0, x1, axis.geometry().width())  # as pyqtgraph asks before labelling
    labels = {lab for spacing, values in levels for lab in axis.tickStrings(values, 1, spacing)}
    assert {"Thu 8 May", "Fri 9 May", "06:00"} <= labels
