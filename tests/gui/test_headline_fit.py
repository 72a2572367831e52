"""The headline's price context in a narrow window: short forms, then nothing -- never a number cut off."""
from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtWidgets import QLabel

from liqscope.gui.headline import FittingLabel, HeadlineStrip


def shown(label: QLabel) -> str:
    return QLabel.text(label)


def fits(label: QLabel) -> bool:
    return label.fontMetrics().horizontalAdvance(shown(label)) <= label.contentsRect().width()


def test_price_context_shortens_instead_of_clipping(qtbot):
    strip = HeadlineStrip()
    qtbot.addWidget(strip)
    strip.set_figures({"total_usd": 860e6, "count": 1000, "long_usd": 154.8e6, "short_usd": 705.2e6,
                       "short_share": 0.82, "by_exchange": {"binance": 360e6}, "largest": []}, "all assets")
    stats = SimpleNamespace(last=103050.0, change_pct=3.2, open=99850.0, high=103833.0, low=99384.7)
    strip.set_price("BTC", "binance", stats)
    strip.resize(1600, strip.sizeHint().height())
    strip.show()
    qtbot.waitExposed(strip)
    assert shown(strip.price) == "103,050 (+3.20%)" == strip.price.text()
    assert shown(strip.price_box.caption) == "BTC last (window change)"
    seen = []
    for width in range(1600, 500, -20):
        strip.resize(width, strip.height())
        qtbot.wait(1)
        for label in (strip.price, strip.range, strip.price_box.caption, strip.range_box.caption):
            assert fits(label), (width, shown(label))
        state = (strip.range_box.isVisible(), shown(strip.price) if strip.price_box.isVisible() else None)
        if state[0]:  # the high/low only beside the whole price, never a caption over nothing
            assert state[1] == "103,050 (+3.20%)" and shown(strip.range) == "103,833 / 99,384.7"
        if state[1] is not None:
            assert state[1] in ("103,050 (+3.20%)", "103,050")
        if not seen or seen[-1] != state:
            seen.append(state)
        assert strip.price.text() == "103,050 (+3.20%)"  # the full form, whatever is shown
    # narrowing: the high/low goes first, then the price's change, then the price
    assert seen == [(True, "103,050 (+3.20%)"), (False, "103,050 (+3.20%)"), (False, "103,050"), (False, None)]


def test_fitting_label_prefers_the_longest_that_fits(qtbot):
    label = FittingLabel("a long form of it", "short", "")
    qtbot.addWidget(label)
    label.show()
    qtbot.waitExposed(label)
    label.resize(label.fontMetrics().horizontalAdvance("short") + 4, 20)
    assert shown(label) == "short" and label.text() == "a long form of it"
    label.resize(2, 20)
    assert shown(label) == ""
