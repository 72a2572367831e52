"""First-run banner: shown on demo data only, buttons enabled exactly when the feature exists."""
from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from liqscope.gui.banner import ACTIONS, UNAVAILABLE_TIP, DemoBanner
from liqscope.models.dataset import DEMO_LABEL, Dataset

DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))


class FakeWindow(QWidget):
    """A window that has only the import feature so far."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def open_import_dialog(self):
        self.calls.append("import")


def test_banner_text_and_visibility_follow_the_dataset(qtbot, demo):
    host = FakeWindow()
    qtbot.addWidget(host)
    banner = DemoBanner(host, demo)
    assert banner.text.text() == DEMO_LABEL == "Demo data — synthetic, calibrated to figures reported for 2025-05-09"
    assert not banner.isHidden()
    banner.set_dataset(Dataset(label="Local store: 2 exchanges", is_demo=False))
    assert banner.isHidden()
    banner.set_dataset(demo)
    assert not banner.isHidden()


def test_buttons_enabled_only_for_features_the_window_has(qtbot, demo):
    host = FakeWindow()
    qtbot.addWidget(host)
    banner = DemoBanner(host, demo)
    buttons = banner.buttons
    assert set(buttons) == {"open_import_dialog", "open_fetch_dialog", "toggle_recording"}
    assert buttons["open_import_dialog"].isEnabled()
    assert UNAVAILABLE_TIP not in buttons["open_import_dialog"].toolTip()
    for slot in ("open_fetch_dialog", "toggle_recording"):
        assert not buttons[slot].isEnabled()
        assert UNAVAILABLE_TIP in buttons[slot].toolTip()

    qtbot.mouseClick(buttons["open_import_dialog"], Qt.MouseButton.LeftButton)
    assert host.calls == ["import"]

    # a feature that lands later (here: on the instance) is picked up on refresh/show
    host.open_fetch_dialog = lambda: host.calls.append("fetch")
    banner.refresh()
    assert buttons["open_fetch_dialog"].isEnabled()
    qtbot.mouseClick(buttons["open_fetch_dialog"], Qt.MouseButton.LeftButton)
    assert host.calls == ["import", "fetch"]


def test_click_rechecks_and_disables_a_vanished_feature(qtbot, demo):
    host = FakeWindow()
    qtbot.addWidget(host)
    host.toggle_recording = lambda: host.calls.append("record")
    banner = DemoBanner(host, demo)
    assert banner.buttons["toggle_recording"].isEnabled()
    del host.toggle_recording
    banner.buttons["toggle_recording"].click()
    assert host.calls == []
    assert not banner.buttons["toggle_recording"].isEnabled()


def test_main_window_shows_the_banner_on_demo_data(window):
    banner = window.banner
    assert isinstance(banner, DemoBanner)
    assert banner.isVisible()
    # at the top: above the headline strip
    assert banner.geometry().bottom() <= window.headline.geometry().top()
    for action in ACTIONS:
        button = banner.buttons[action.slot]
        assert button.isVisible()
        assert button.isEnabled() == callable(getattr(window, action.slot, None)), action.slot


def test_main_window_hides_the_banner_once_real_data_is_shown(window, demo):
    user_data = Dataset(demo.prices, demo.liquidations, label="Local store", is_demo=False)
    window.set_dataset(user_data)
    assert not window.banner.isVisible()
    window.set_dataset(demo)
    assert window.banner.isVisible()


def test_record_button_follows_the_windows_record_action(qtbot, demo):
    from PySide6.QtGui import QAction

    host = FakeWindow()
    qtbot.addWidget(host)
    host.record_action = QAction("Record", host)
    host.record_action.setCheckable(True)
    host.toggle_recording = lambda: host.record_action.toggle()
    banner = DemoBanner(host, demo)
    button = banner.buttons["toggle_recording"]
    assert button.text() == "Start recording"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert host.record_action.isChecked() and button.text() == "Stop recording"
    host.record_action.setChecked(False)  # stopped from the Data menu
    assert button.text() == "Start recording"
