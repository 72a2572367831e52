"""Panels ▸ Events on the demo, in a window started the production way: the cascades, jump-to, CSV, shading."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from liqscope.gui.events_panel import COLUMNS
from liqscope.models import cli
from liqscope.models.cascade_search import find_cascades

from conftest import DEMO_DAY


def open_panel(qtbot, window, scope: str):
    window.events.action.trigger()
    panel = window.events.panel
    panel.scope.setCurrentIndex(panel.scope.findData(scope))
    qtbot.waitUntil(lambda: panel.found_for == panel._key() and not panel.worker.running, timeout=30_000)
    panel.refresh()
    return panel


def summary_total(c, capsys) -> float:
    argv = ["--demo", "summary", "--start", c.start.isoformat(), "--end", c.end.isoformat(), "--json"]
    for a in c.assets:
        argv += ["--asset", a]
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)["total_usd"]


def test_events_panel_lists_the_demos_cascades(qtbot, window, demo, capsys):
    panel = open_panel(qtbot, window, "all")
    assert panel.worker.thread is not None  # found on the worker, not the GUI thread
    want = find_cascades(demo, limit=500)
    shown = panel.table_frame()
    assert len(shown) == len(want) > 0
    by_start = {c.start: c for c in want}
    for _i, row in shown.iterrows():
        c = by_start[pd.Timestamp(row["start"])]
        assert row["total_usd"] == pytest.approx(c.total_usd)
        assert row["assets"] == ",".join(c.assets)
        assert row["count"] == c.count and row["duration_s"] == c.duration_s
        assert row["short_share"] == pytest.approx(c.short_share)
    for c in want[:4]:  # their totals are `liqscope summary` for their windows and assets
        assert summary_total(c, capsys) == pytest.approx(c.total_usd)
    # sorted by total, largest first, by default; any column sorts
    assert list(shown["total_usd"]) == sorted(shown["total_usd"], reverse=True)

    panel.scope.setCurrentIndex(panel.scope.findData("view"))  # the demo day in view: those overlapping it
    in_day = [c for c in want if c.start < DEMO_DAY[1] and c.end > DEMO_DAY[0]]
    assert sorted(panel.table_frame()["start"]) == sorted(c.start for c in in_day)
    assert panel.status.text().startswith(f"{len(in_day)} cascade")
    # a view that opens in the middle of the largest cascade lists it: it is on the chart
    top = want[0]
    window.state.update(start=top.start + (top.end - top.start) / 2, end=top.end + pd.Timedelta(hours=1))
    window.state.flush()
    panel.refresh()
    assert top.start in list(panel.table_frame()["start"])


def test_jump_to_sets_the_view_around_the_cascade(qtbot, window):
    panel = open_panel(qtbot, window, "all")
    row = panel.model.row(0)
    start, end = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
    panel.table.doubleClicked.emit(panel.model.index(0, 0))
    v = window.state.view
    pad = max(end - start, pd.Timedelta(minutes=10))
    assert (v.start, v.end) == (start - pad, end + pad)
    assert v.asset == row["main_asset"]
    # the cascade in view is shaded on both main plots
    window.state.flush()
    assert len(panel.regions) >= 2
    spans = {tuple(round(x, 3) for x in r.getRegion()) for r in panel.regions}
    x0 = start.value / 1e9 - window.origin_s
    assert (round(x0, 3), round(x0 + (end - start).total_seconds(), 3)) in spans
    panel.shade_box.setChecked(False)
    assert panel.regions == []


def test_csv_export_equals_the_table(qtbot, window, tmp_path):
    panel = open_panel(qtbot, window, "all")
    panel.table.sortByColumn(panel.model_column("start"), panel.table.horizontalHeader().sortIndicatorOrder())
    path = tmp_path / panel.export_name()
    assert path.name.startswith("cascades_") and path.suffix == ".csv"
    n = panel.export_csv(path)
    got = pd.read_csv(path)
    assert n == len(got) == panel.model.rowCount()
    assert list(got.columns) == [c.key for c in COLUMNS]
    from liqscope.gui.table_model import RAW_ROLE

    for r in range(panel.model.rowCount()):
        raw = [panel.model.data(panel.model.index(r, c), RAW_ROLE) for c in range(panel.model.columnCount())]
        line = got.iloc[r]
        assert pd.Timestamp(line["start"]) == raw[0]
        assert line["assets"] == raw[2] and line["total_usd"] == pytest.approx(raw[3])
        assert line["short_share"] == pytest.approx(raw[4]) and line["count"] == raw[8]
    assert got["start"].iloc[0].endswith("Z") and "T" in got["start"].iloc[0]  # ISO-8601 UTC, as every export
