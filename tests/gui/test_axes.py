"""The price axis on a log scale: at least four readable labels at nice prices, at every zoom."""
from __future__ import annotations

import math

import numpy as np
import pytest

BTC = 100_000.0
# visible price spans around BTC, from a quiet minute (~0.1 %) to several times over
SPANS = [(BTC * (1 - f / 2), BTC * (1 + f / 2)) for f in (0.001, 0.004, 0.01, 0.03, 0.1, 0.3)]
SPANS += [(60_000, 110_000), (30_000, 150_000), (20_000, 120_000), (10_000, 100_000), (100, 100_000)]
SMALL = [(0.2, 0.2004), (0.19, 0.23), (0.05, 0.5), (2_400, 2_600), (1.0e-5, 1.2e-5)]


def drawn_label_rects(axis) -> list[tuple[str, object]]:
    """(text, rect) of the tick labels the axis actually paints, bottom to top on screen."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(200, 200, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)  # pyqtgraph leaves out crowded and clipped labels here
    finally:
        painter.end()
    assert specs is not None, "the axis has no size yet"
    return [(text, rect) for rect, _flags, text in sorted(specs[2], key=lambda s: -s[0].center().y())]


def drawn_labels(axis) -> list[str]:
    return [text for text, _rect in drawn_label_rects(axis)]


def mantissa(x: float) -> float:
    """1.5 for 0.015, 1500 or 1.5e8."""
    return round(x / 10 ** math.floor(math.log10(x) + 1e-9), 6)


def parse(label: str) -> float:
    return float(label.replace(",", ""))


@pytest.fixture
def price_plot(qtbot):
    """A bare plot with the app's price axis on the right, in log mode, on screen."""
    import pyqtgraph as pg

    from liqscope.gui.layout import AXIS_WIDTH
    from liqscope.gui.price_pane import PriceAxis

    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    axis = PriceAxis("right")
    plot = widget.addPlot(axisItems={"right": axis})
    plot.hideAxis("left")
    plot.showAxis("right")
    axis.setWidth(AXIS_WIDTH)
    axis.setLogMode(False, True)
    widget.resize(600, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget, plot, axis


def show_prices(widget, plot, lo: float, hi: float, height: int = 400, log: bool = True) -> None:
    from PySide6.QtWidgets import QApplication

    widget.resize(600, height)
    plot.getViewBox().setYRange(*((math.log10(lo), math.log10(hi)) if log else (lo, hi)), padding=0)
    for _ in range(3):
        QApplication.processEvents()


@pytest.mark.parametrize("lo,hi", SPANS + SMALL)
@pytest.mark.parametrize("height", [220, 400, 800])
def test_log_axis_draws_at_least_four_readable_labels(price_plot, lo, hi, height):
    widget, plot, axis = price_plot
    show_prices(widget, plot, lo, hi, height)
    drawn = drawn_label_rects(axis)
    labels = [text for text, _rect in drawn]
    values = [parse(s) for s in labels]
    assert len(set(labels)) >= 4, f"{lo}..{hi} at {height}px: {labels}"
    assert len(labels) <= 10, labels
    assert values == sorted(values) and len(set(values)) == len(values), labels
    assert all(lo <= v <= hi for v in values), (lo, hi, labels)
    for text, v in zip(labels, values):
        if v >= 1000:
            assert "," in text, text  # thousands separators
        assert "e" not in text and "10" + "⁰" not in text, text  # no 1e+05 or 10ⁿ labels
    # readable: no two labels overlap on screen
    rects = [rect for _text, rect in drawn]
    for below, above in zip(rects, rects[1:]):
        assert above.bottom() <= below.top(), labels


@pytest.mark.parametrize("lo,hi", SPANS + SMALL)
@pytest.mark.parametrize("size", [150, 300, 600, 1200])
def test_log_ticks_are_nice_prices_spaced_apart(lo, hi, size):
    from liqscope.gui.layout import PRICE_LABEL_GAP_PX
    from liqscope.gui.price_axis import log_price_ticks, price_labels

    ticks = log_price_ticks(math.log10(lo), math.log10(hi), size)
    assert 4 <= len(ticks) <= 10, (lo, hi, size, ticks)
    assert np.all(np.diff(ticks) > 0) and lo <= ticks[0] and ticks[-1] <= hi
    # "nice": even steps of 1, 2, 2.5 or 5 x 10^k, or (wider views) each 1, 1.5, 2, 3 ... 9 x 10^k
    steps = np.diff(ticks)
    if np.allclose(steps, steps[0], rtol=1e-6):
        assert mantissa(steps[0]) in (1, 2, 2.5, 5), ticks
        assert np.allclose(ticks / steps[0], np.round(ticks / steps[0]), rtol=0, atol=1e-6), ticks
    else:
        assert all(mantissa(t) in (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9) for t in ticks), ticks
    labels = price_labels(ticks)
    assert len(set(labels)) == len(labels), labels
    px = np.diff(np.log10(ticks)) * size / (math.log10(hi) - math.log10(lo))
    if size >= 300:  # an axis of 150 px cannot hold four labels a line apart over every span
        assert px.min() >= PRICE_LABEL_GAP_PX, (labels, px)


def test_price_labels_keep_separators_and_exact_decimals():
    from liqscope.gui.price_axis import price_labels

    assert price_labels([99_980, 100_000, 100_020]) == ["99,980", "100,000", "100,020"]
    assert price_labels([99_999.8, 100_000.0, 100_000.2]) == ["99,999.8", "100,000.0", "100,000.2"]
    assert price_labels([0.202, 0.204]) == ["0.202", "0.204"]
    assert price_labels([0.001, 0.1, 10, 1000]) == ["0.001", "0.1", "10", "1,000"]
    # float dust from 10 ** log10(price) does not leak into the label
    assert price_labels(10 ** np.log10([99_960.0, 100_040.0])) == ["99,960", "100,040"]


def test_linear_axis_is_unchanged(price_plot):
    widget, plot, axis = price_plot
    axis.setLogMode(False, False)
    show_prices(widget, plot, 99_000, 101_000, log=False)
    labels = drawn_labels(axis)
    assert len(labels) >= 4 and all("," in s for s in labels), labels


@pytest.mark.parametrize("window_range", ["day", "all"])
def test_window_log_scale_labels_the_price_axis(window, demo, window_range):
    """The reported case: Ctrl+G on the demo (BTC, 2025-05-09 or everything) showed one label."""
    from liqscope.gui.app import settle

    if window_range == "all":
        window.apply_preset(None)
    window.state.update(log_scale=True)
    settle(window)
    axis = window.price.plot.getAxis("right")
    assert axis.logMode
    lo, hi = (10 ** v for v in window.price.vb.viewRange()[1])
    labels = drawn_labels(axis)
    values = [parse(s) for s in labels]
    assert len(set(labels)) >= 4, labels
    assert values == sorted(values) and all(lo <= v <= hi for v in values), (lo, hi, labels)
