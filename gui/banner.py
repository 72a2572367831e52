"""The first-run banner: says the window shows demo data and offers the ways to get real data.

Each button calls a main-window slot (``open_import_dialog``, ``open_fetch_dialog``,
``toggle_recording``). Those features are built separately; a button whose slot the
window does not have (yet) is disabled with a tooltip instead of promising something
that does nothing. Availability is checked again on show and at click time, so the
banner needs no change when a feature lands.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from .theme import BANNER

UNAVAILABLE_TIP = "Not available in this version of Liqscope yet."
STYLE = """
QFrame#banner {{ background: {background}; border-radius: 4px; }}
QFrame#banner QLabel {{ color: {text}; background: transparent; }}
QFrame#banner QPushButton {{ color: {text}; background: {button}; border: 1px solid {button_border};
    border-radius: 3px; padding: 2px 10px; }}
QFrame#banner QPushButton:hover {{ background: {button_hover}; }}
QFrame#banner QPushButton:disabled {{ color: {disabled_text}; background: transparent; border-color: {disabled_border}; }}
""".format(**BANNER)


@dataclass(frozen=True)
class Action:
    key: str  # object name of the button
    text: str
    slot: str  # name of the main-window method it calls
    tip: str


ACTIONS = (
    Action("importButton", "Import a file…", "open_import_dialog",
           "Import candles or liquidations from exchange or vendor files (CSV, Parquet)"),
    Action("fetchButton", "Fetch candles…", "open_fetch_dialog",
           "Download historical candles from an exchange's public API"),
    Action("recordButton", "Start recording", "toggle_recording",
           "Record live liquidations from the exchanges' public streams"),
)


class DemoBanner(QFrame):
    """Shown only while the window shows the bundled demo dataset."""

    def __init__(self, window: QWidget, dataset):
        # Parented from the start: showing a parentless frame would open it as its own window.
        super().__init__(window)
        self.setObjectName("banner")
        self.setStyleSheet(STYLE)
        self._window = window
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        lay.setSpacing(6)
        self.text = QLabel(dataset.label)
        self.text.setObjectName("bannerText")
        self.text.setWordWrap(True)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.text, 1)
        prompt = QLabel("Use your own data:")
        prompt.setObjectName("bannerPrompt")
        lay.addWidget(prompt)
        self.buttons: dict[str, QPushButton] = {}
        for action in ACTIONS:
            button = QPushButton(action.text)
            button.setObjectName(action.key)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _checked=False, a=action: self._run(a))
            lay.addWidget(button)
            self.buttons[action.slot] = button
        self.set_dataset(dataset)

    def set_dataset(self, dataset) -> None:
        """Follow the window's data: visible for the demo, hidden once real data shows."""
        self.text.setText(dataset.label)
        self.setVisible(bool(dataset.is_demo))
        self.refresh()

    def _follow_record_action(self) -> None:
        """Say "Stop recording" while recording: the window's checkable Data menu action knows."""
        action = getattr(self._window, "record_action", None)
        if action is None or not hasattr(action, "toggled") or getattr(self, "_record_action", None) is action:
            return
        self._record_action = action
        action.toggled.connect(self._recording_changed)
        self._recording_changed(action.isChecked())

    def _recording_changed(self, on: bool) -> None:
        self.buttons["toggle_recording"].setText("Stop recording" if on else "Start recording")

    def available(self, slot: str) -> bool:
        return callable(getattr(self._window, slot, None))

    def refresh(self) -> None:
        """Enable the buttons whose feature the window has; explain the others."""
        for action in ACTIONS:
            button = self.buttons[action.slot]
            ok = self.available(action.slot)
            button.setEnabled(ok)
            button.setToolTip(action.tip if ok else f"{action.tip}. {UNAVAILABLE_TIP}")
        self._follow_record_action()

    def showEvent(self, event) -> None:
        self.refresh()
        super().showEvent(event)

    def _run(self, action: Action) -> None:
        slot = getattr(self._window, action.slot, None)
        if not callable(slot):
            self.refresh()
            return
        slot()
