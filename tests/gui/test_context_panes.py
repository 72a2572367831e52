"""Context panes on the demo: open interest and funding under the bars, values equal to the stored series,
the headline's OI change and mean funding equal to ``liqscope summary --json`` (issue 13)."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest

from liqscope.gui.app import settle
from liqscope.gui.main import main as liqscope

DAY_ARGS = ["--start", "2025-05-09T00:00:00Z", "--end", "2025-05-10T00:00:00Z"]


def summary_json(*args: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert liqscope(["--demo", "summary", "--json", *args]) == 0
    return json.loads(out.getvalue())


def menu_action(window, name: str):
    return next(a for a in window.context_panes.menu.actions() if a.objectName() == f"context_{name}")


def test_oi_and_funding_panes_draw_the_stored_series(window, demo):
    if demo.context.oi_frame.empty or demo.context.funding_frame.empty:
        pytest.skip("the demo has no open interest or funding")
    menu_action(window, "oi").trigger()
    menu_action(window, "funding").trigger()
    settle(window)
    assert window.context_panes.shown() == ["oi", "funding"]
    v = window.state.view
    span = v.end - v.start
    lo, hi = v.start - span, v.end + span
    ctx = demo.context
    oi = window.context_panes.panes["oi"]
    total = ctx.oi_total(lo, hi, v.asset)
    ts, values = oi.values["total"]
    np.testing.assert_array_equal(ts, pd.DatetimeIndex(total["ts"]).as_unit("ns").asi8)
    np.testing.assert_allclose(values, total["oi_usd"].to_numpy())
    wide = ctx.oi_by_exchange(lo, hi, v.asset)
    for exchange in wide.columns:
        np.testing.assert_allclose(oi.values[exchange][1], wide[exchange].to_numpy())
    funding = window.context_panes.panes["funding"]
    rows = ctx.funding(lo, hi, asset=v.asset)
    for exchange, part in rows.groupby("exchange"):
        np.testing.assert_allclose(funding.values[exchange][1], part["per_8h"].to_numpy() * 100.0)
    # only the lowest pane labels the time axis
    assert funding.plot.getAxis("bottom").style["showValues"]
    assert not window.liq.plot.getAxis("bottom").style["showValues"]


def test_headline_context_equals_summary_json(window, demo):
    want = summary_json(*DAY_ARGS)
    got = window.headline.context_values
    for key in ("oi_change_pct", "funding_mean"):
        if want[key] is None:
            assert got[key] is None
        else:
            assert got[key] == pytest.approx(want[key], rel=1e-12)
    if want["oi_change_pct"] is not None:
        assert f"{want['oi_change_pct']:+.1f}%" in window.headline.context.text()


def test_panes_reorder_and_persist(qtbot, demo, tmp_path, monkeypatch):
    """On/off and order are saved and come back in a new window (settings in a tmp config dir)."""
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "config"))
    from liqscope.gui.main_window import MainWindow
    from liqscope.models.view import View

    names = demo.context.names()
    if not names:
        pytest.skip("the demo has no outside series")
    w = MainWindow(restore=True)
    qtbot.addWidget(w)
    w.set_dataset(demo, View(start=pd.Timestamp("2025-05-09", tz="UTC"), end=pd.Timestamp("2025-05-10", tz="UTC")))
    settle(w)
    for key in ("funding", f"series:{names[0]}", "oi"):
        w.context_panes.set_on(key, True)
    w.context_panes.move("oi", -2)
    assert w.context_panes.shown() == ["oi", "funding", f"series:{names[0]}"]
    rows = {key: w.graphics.ci.layout.itemAt(2 + i, 0) for i, key in enumerate(w.context_panes.shown())}
    assert rows["oi"] is w.context_panes.panes["oi"].plot
    w.context_panes.set_on("funding", False)
    w.settings.sync()
    w.close()
    again = MainWindow(restore=True)
    qtbot.addWidget(again)
    again.set_dataset(demo)
    settle(again)
    assert again.context_panes.shown() == ["oi", f"series:{names[0]}"]


def test_cli_png_with_panes_and_an_unknown_pane(tmp_path, capsys, qapp):
    """``liqscope export --panes`` draws the panes asked for; a pane the data lacks is one line, exit 2."""
    png = tmp_path / "ctx.png"
    assert liqscope(["--demo", "export", "--asset", "BTC", *DAY_ARGS, "--png", str(png),
                     "--panes", "oi,funding"]) == 0
    assert png.stat().st_size > 10_000
    capsys.readouterr()
    assert liqscope(["--demo", "export", "--asset", "BTC", *DAY_ARGS, "--png", str(tmp_path / "x.png"),
                     "--panes", "series:nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no nope pane in this data" in err[0]


def test_asset_panel_shows_oi_and_funding_per_exchange(window, demo):
    if demo.context.oi_frame.empty:
        pytest.skip("the demo has no open interest")
    panel = window.drilldown.open_asset("BTC")
    settle(window)
    panel.refresh()
    v = panel.view
    wide = demo.context.oi_by_exchange(v.start, v.end, "BTC")
    assert set(panel.context_values["oi"]) == {e for e in wide.columns if wide[e].notna().any()}
    for exchange, (_ts, values) in panel.context_values["oi"].items():
        np.testing.assert_allclose(values, wide[exchange].to_numpy())
    rows = demo.context.funding(v.start, v.end, asset="BTC")
    for exchange, (_ts, values) in panel.context_values["funding"].items():
        np.testing.assert_allclose(values, rows[rows["exchange"] == exchange]["per_8h"].to_numpy() * 100.0)
    assert panel.oi_plot.isVisible() and panel.funding_plot.isVisible()


def test_asset_panel_hides_context_plots_without_data(window, demo):
    """An asset with no open interest or funding shows no empty context plots."""
    assets = [a for a in demo.assets if a not in demo.context.assets()]
    if not assets:
        pytest.skip("every demo asset has context")
    panel = window.drilldown.open_asset(assets[0])
    settle(window)
    panel.refresh()
    assert not panel.oi_plot.isVisible() and not panel.funding_plot.isVisible()
