"""The time axis names the zone it shows: "time (UTC)", or the local zone and its UTC offset."""
from __future__ import annotations

import time

import pandas as pd
import pytest


@pytest.fixture
def berlin(monkeypatch):
    """The machine's local zone is Europe/Berlin for the test (Qt and Python both read TZ)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


KEEP: list = []


@pytest.fixture(autouse=True)
def _release_widgets():
    yield
    KEEP.clear()


def make_time_axis(qtbot, utc: bool, start: str, end: str):
    import pyqtgraph as pg

    from liqscope.gui.axis import OriginDateAxis

    origin = pd.Timestamp(start, tz="UTC").value / 1e9
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    axis = OriginDateAxis(origin, utc=utc, orientation="bottom")
    plot = widget.addPlot(axisItems={"bottom": axis})
    plot.getViewBox().setXRange(0, (pd.Timestamp(end, tz="UTC").value / 1e9) - origin, padding=0)
    KEEP.append(widget)  # qtbot closes it at the end of the test; the axis lives as long as its widget
    return axis


def test_utc_axis_says_utc(qtbot, berlin):
    axis = make_time_axis(qtbot, True, "2025-05-09", "2025-05-10")
    assert axis.zone_label() == "time (UTC)"
    assert axis.labelText == "time (UTC)" and axis.label.isVisible()


def test_local_axis_names_zone_and_offset(qtbot, berlin):
    axis = make_time_axis(qtbot, True, "2025-05-09", "2025-05-10")
    axis.set_utc(False)
    assert axis.zone_label() == "time (Europe/Berlin, UTC+02:00)"  # summer time in May
    assert axis.labelText == axis.zone_label() and axis.label.isVisible()
    axis.set_utc(True)
    assert axis.labelText == "time (UTC)"


def test_local_axis_offset_follows_the_shown_dates(qtbot, berlin):
    from PySide6.QtWidgets import QApplication

    winter = make_time_axis(qtbot, False, "2025-01-09", "2025-01-10")
    assert winter.zone_label() == "time (Europe/Berlin, UTC+01:00)"
    # a window across the switch to summer time (2025-03-30) names both offsets
    across = make_time_axis(qtbot, False, "2025-03-29", "2025-03-31")
    assert across.zone_label() == "time (Europe/Berlin, UTC+01:00/+02:00)"
    # panning into summer updates the label
    vb = winter.linkedView()
    vb.setXRange(*(x + 120 * 86400 for x in vb.viewRange()[0]), padding=0)
    QApplication.processEvents()
    assert winter.labelText == "time (Europe/Berlin, UTC+02:00)"


def test_local_axis_with_a_posix_zone_names_its_abbreviation(qtbot, monkeypatch):
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    time.tzset()
    try:
        axis = make_time_axis(qtbot, False, "2025-01-09", "2025-01-10")
        assert axis.zone_label() == "time (EST, UTC-05:00)"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_axis_without_values_gets_no_zone_label(qtbot, berlin):
    """The price pane's time axis shows no values (the liquidation pane's below it does)."""
    axis = make_time_axis(qtbot, True, "2025-05-09", "2025-05-10")
    axis.setStyle(showValues=False)
    axis.set_utc(False)
    assert not axis.label.isVisible()


@pytest.mark.parametrize("days", [20, 68, 200])
def test_finer_ticks_never_print_over_coarser_ones(window, days):
    """A day tick two days after a month tick printed "MarMon 3 Mar": finer ticks keep their distance."""
    from liqscope.gui.layout import MIN_LABEL_GAP_PX

    axis = window.liq_axis
    size = 1300
    x0 = 3 * 86400.0
    levels = axis.tickValues(x0, x0 + days * 86400.0, size)
    seen: list[float] = []
    for _spacing, values in levels:
        for v in values:
            assert all(abs(v - u) * size / (days * 86400.0) >= MIN_LABEL_GAP_PX for u in seen)
        seen += values
    assert len(seen) >= 3
