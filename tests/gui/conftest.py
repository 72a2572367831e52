"""Shared GUI fixtures: the demo dataset, and the real main window on the demo day."""
from __future__ import annotations

import pandas as pd
import pytest

from liqscope.models.dataset import load_demo

DEMO_DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))


@pytest.fixture(scope="session")
def demo():
    return load_demo()


@pytest.fixture
def window_size() -> tuple[int, int]:
    """Override in a module for another size."""
    return 1400, 900


@pytest.fixture
def window(qtbot, demo, tmp_path, monkeypatch, window_size):
    """The real main window on 2025-05-09, shown off screen and settled; settings in a tmp dir."""
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "config"))
    from liqscope.gui.app import settle
    from liqscope.gui.main_window import MainWindow
    from liqscope.gui.state import View

    w = MainWindow(demo, View(start=DEMO_DAY[0], end=DEMO_DAY[1]), restore=False)
    qtbot.addWidget(w)
    w.resize(*window_size)
    w.show()
    qtbot.waitExposed(w)
    settle(w)
    return w
