"""Annotations in the window (started the production way): the demo's seed events, adding levels,
events and ranges from the dialog and with the mouse, the panel (jump to, edit, delete), the store
behind them, and exported images that show them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest

from liqscope.gui.annotations import role_color
from liqscope.gui.theme import THEMES
from liqscope.models import annotations as an
from liqscope.models.store import open_store
from liqscope.models.store.annotation_table import load_annotations

UTC = "UTC"


def stored() -> dict:
    return {a.id: a for a in load_annotations(open_store())}


def settled(ctl, qtbot) -> None:
    qtbot.waitUntil(lambda: not ctl.busy, timeout=20_000)


def viewport_pos(window, plot: str, x: float, y: float) -> QPoint:
    vb = window.price.vb if plot == "price" else window.liq.vb
    scene = vb.mapViewToScene(QPointF(x, y))
    return window.graphics.mapFromScene(scene)


def x_of(window, ts) -> float:
    return pd.Timestamp(ts).value / 1e9 - window.origin_s


def on_scene(items) -> bool:
    return bool(items) and all(i.scene() is not None and i.isVisible() for i in items)


def test_demo_shows_the_seed_events_read_only(window, qtbot):
    ctl = window.annotations
    settled(ctl, qtbot)
    ids = [a.id for a in ctl.listed()]
    assert {"demo-cross-102k", "demo-resistance-110k", "demo-cascade-2024-04"} <= set(ids)
    assert on_scene(ctl.layer.items_of("demo-cross-102k"))  # the $102K cross on the demo day
    tag = ctl.layer.edges["demo-resistance-110k"]  # $110K is above the day's prices: named at the top edge
    assert tag.isVisible() and "$110K resistance" in tag.toPlainText() and tag.toPlainText().startswith("▲")
    panel = ctl.open_panel()
    kinds = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    assert kinds.count("event (demo)") == 4 and "level (demo)" in kinds
    assert not ctl.delete("demo-cross-102k") and not ctl.edit("demo-cross-102k", text="x")
    assert "read-only" in window.statusBar().currentMessage()
    settled(ctl, qtbot)
    assert stored() == {}  # shown, never stored


def _dialog_ok(dialog, **fields) -> None:
    for name, value in fields.items():
        widget = getattr(dialog, name)
        widget.setCurrentText(value) if hasattr(widget, "setCurrentText") else widget.setText(value)
    dialog.accept()


def test_add_each_kind_from_the_dialog(window, qtbot):
    ctl = window.annotations
    d = ctl.open_dialog("level")
    assert d.asset.currentText() == "BTC" and float(d.price.text()) > 0  # the view's asset at its last price
    _dialog_ok(d, price="101000", text="pivot", color="support")
    d = ctl.open_dialog("event")
    _dialog_ok(d, at="2025-05-09T12:00Z", text="noon")
    d = ctl.open_dialog("range")
    _dialog_ok(d, start="2025-05-09T03:00Z", end="2025-05-09T04:30Z", text="quiet")
    settled(ctl, qtbot)
    held = {a.text: a for a in stored().values()}
    assert held["pivot"].kind == "level" and held["pivot"].price == 101000 and held["pivot"].color == "support"
    assert held["noon"].at == pd.Timestamp("2025-05-09 12:00", tz=UTC)
    assert (held["quiet"].start, held["quiet"].end) == (pd.Timestamp("2025-05-09 03:00", tz=UTC),
                                                        pd.Timestamp("2025-05-09 04:30", tz=UTC))
    for a in held.values():
        assert on_scene(ctl.layer.items_of(a.id))
    assert len(ctl.layer.items_of(held["noon"].id)) == 2  # on the price and the liquidation pane


def test_dialog_refuses_bad_input_in_one_line(window, qtbot):
    ctl = window.annotations
    d = ctl.open_dialog("range")
    _dialog_ok(d, start="2025-05-09T05:00Z", end="2025-05-09T04:00Z")
    assert d.isVisible() and d.annotation is None
    assert "is not after its start" in d.error.text() and "\n" not in d.error.text()
    d.price.setText("-5")
    d.kind.setCurrentIndex(0)
    d.accept()
    assert d.isVisible() and "must be a number > 0" in d.error.text()
    d.reject()
    settled(ctl, qtbot)
    assert stored() == {}


def test_add_by_mouse(window, qtbot):
    ctl = window.annotations
    viewport = window.graphics.viewport()
    (x0, x1), (y0, y1) = window.price.vb.viewRange()
    # a level: Annotate ▸ Level, then a click on the price chart
    window.findChild(type(ctl.mode_actions["level"]), "annotate_level").trigger()
    assert ctl.mode == "level"
    y = y0 + (y1 - y0) * 0.4
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=viewport_pos(window, "price", (x0 + x1) / 2, y))
    d = ctl.dialog
    assert d is not None and ctl.mode is None and d.kind_name == "level"
    assert float(d.price.text()) == pytest.approx(y, rel=2e-3)
    _dialog_ok(d, text="clicked level")
    # an event: a click on the liquidation chart
    ctl.set_mode("event")
    at = pd.Timestamp("2025-05-09 15:00", tz=UTC)
    ly = np.mean(window.liq.vb.viewRange()[1])
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=viewport_pos(window, "liq", x_of(window, at), ly))
    d = ctl.dialog
    assert d.kind_name == "event" and abs(pd.Timestamp(d.at.text()) - at) < pd.Timedelta(minutes=3)
    _dialog_ok(d, text="clicked event")
    # a range: a drag across the price chart
    ctl.set_mode("range")
    a, b = pd.Timestamp("2025-05-09 02:00", tz=UTC), pd.Timestamp("2025-05-09 05:00", tz=UTC)
    pa, pb = (viewport_pos(window, "price", x_of(window, t), y) for t in (a, b))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=pa)
    QTest.mouseMove(viewport, pos=QPoint((pa.x() + pb.x()) // 2, pa.y()))
    assert ctl._preview and ctl._preview[0].isVisible()  # the band follows the drag
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=pb)
    d = ctl.dialog
    assert d.kind_name == "range" and not ctl._preview
    assert abs(pd.Timestamp(d.start.text()) - a) < pd.Timedelta(minutes=3)
    assert abs(pd.Timestamp(d.end.text()) - b) < pd.Timedelta(minutes=3)
    _dialog_ok(d, text="dragged range")
    # a range by two clicks, and Esc cancels a mode
    ctl.set_mode("range")
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pb)
    assert ctl.dialog is None and ctl.mode == "range"
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton,
                     pos=viewport_pos(window, "price", x_of(window, pd.Timestamp("2025-05-09 07:00", tz=UTC)), y))
    _dialog_ok(ctl.dialog, text="clicked range")
    ctl.set_mode("event")
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert ctl.mode is None
    settled(ctl, qtbot)
    texts = {a.text: a for a in stored().values()}
    assert set(texts) == {"clicked level", "clicked event", "dragged range", "clicked range"}
    assert texts["clicked range"].start < texts["clicked range"].end
    for a in texts.values():
        assert on_scene(ctl.layer.items_of(a.id))


def test_panel_lists_jumps_edits_and_deletes(window, qtbot):
    ctl = window.annotations
    ev = ctl.add(an.event("2025-05-08T12:31Z", "ETH squeeze"))
    rg = ctl.add(an.time_range("2025-05-10T14:00Z", "2025-05-10T16:00Z", "flush"))
    lv = ctl.add(an.level("ETH", 2000, "ETH 2K"))
    settled(ctl, qtbot)
    panel = ctl.open_panel()
    assert panel.ids[:3] == [ev.id, rg.id, lv.id]
    # jump to: the view's window around it
    panel.table.selectRow(1)
    panel.buttons["jump"].click()
    v = window.state.view
    assert (v.start, v.end) == (pd.Timestamp("2025-05-10 13:00", tz=UTC), pd.Timestamp("2025-05-10 17:00", tz=UTC))
    panel.jump(0)  # what a double-click does
    v = window.state.view
    assert v.start < ev.at < v.end and (v.end - v.start) == pd.Timedelta(hours=1)
    assert on_scene(ctl.layer.items_of(ev.id))
    assert ctl.layer.items_of(lv.id) == []  # an ETH level is not drawn on BTC's chart
    panel.jump(2)
    assert window.state.view.asset == "ETH" and on_scene(ctl.layer.items_of(lv.id))
    # edit the text in place
    panel.table.item(0, 2).setText("ETH-led squeeze")
    settled(ctl, qtbot)
    assert stored()[ev.id].text == "ETH-led squeeze"
    assert ctl.layer.items_of(ev.id)[0].label.format == "ETH-led squeeze"
    # delete: gone from the charts and the store
    drawn = ctl.layer.items_of(ev.id)
    panel.table.selectRow(0)
    panel.buttons["delete"].click()
    settled(ctl, qtbot)
    assert ev.id not in stored() and set(stored()) == {rg.id, lv.id}
    assert ctl.layer.items_of(ev.id) == [] and all(i.scene() is None for i in drawn)
    assert ev.id not in panel.ids


def test_annotations_come_back_after_a_restart(start_window, demo, qtbot):
    from liqscope.models.store.annotation_table import save_annotation

    a = save_annotation(open_store(), an.event("2025-05-09T10:00Z", "from the CLI"))
    w = start_window(demo)
    settled(w.annotations, qtbot)
    assert a.id in w.annotations.items and on_scene(w.annotations.layer.items_of(a.id))


def _rows_of(image, color: str, tol: int = 40) -> np.ndarray:
    """How many pixels of each row of ``image`` are close to ``color``."""
    img = image.convertToFormat(image.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(bytes(img.constBits()), dtype=np.uint8)
    arr = arr.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).astype(int)
    c = QColor(color)
    near = (np.abs(arr - np.array([c.red(), c.green(), c.blue()])).max(axis=2) <= tol)
    return near.sum(axis=1)


def test_exported_png_has_them_drawn(window, qtbot):
    ctl = window.annotations
    ctl.set_visible(False)  # the demo's own levels out of the way
    (x0, x1), (y0, y1) = window.price.vb.viewRange()
    color = role_color("resistance", THEMES[window.state.view.theme])
    before = _rows_of(window.exports.export_image(1.0), color)
    ctl.set_visible(True)
    lv = ctl.add(an.level("BTC", round(y0 + (y1 - y0) * 0.3), "line in the picture"))
    ev = ctl.add(an.event("2025-05-09T08:00Z", "mark in the picture"))
    settled(ctl, qtbot)
    line = ctl.layer.items_of(lv.id)[0]
    assert line.isVisible() and line.label.isVisible()
    image = window.exports.export_image(1.0)
    rows = _rows_of(image, color)
    width = image.width()
    assert before.max() < width * 0.2  # no long orange line before
    assert rows.max() > width * 0.5, rows.max()  # the level: an orange line across the price pane
    assert ctl.layer.items_of(ev.id)[0].scene() is window.graphics.scene()
