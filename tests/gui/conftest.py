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


def start_like_production(qtbot, dataset, view=None, size=(1400, 900)):
    """The main window as ``liqscope`` starts it: an empty placeholder painted first, then the
    dataset loaded on the window's loader (a worker thread) and swapped in with the view."""
    from liqscope.gui.app import settle
    from liqscope.gui.main_window import MainWindow

    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    assert w.dataset.label.startswith("Loading")  # the placeholder, as in production
    with qtbot.waitSignal(w.loader.loaded, timeout=20_000):
        w.loader.load(lambda: dataset, on_loaded=lambda ds: w.set_dataset(ds, view))
    settle(w)
    return w


@pytest.fixture
def start_window(qtbot, tmp_path, monkeypatch):
    """``start_window(dataset, view=None, size=...)``: a main window started the production way."""
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "config"))
    return lambda dataset, view=None, size=(1400, 900): start_like_production(qtbot, dataset, view, size)


@pytest.fixture
def window(qtbot, demo, tmp_path, monkeypatch, window_size):
    """The real main window on 2025-05-09, started the production way, shown off screen and settled;
    settings in a tmp dir."""
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "config"))
    from liqscope.models.view import View

    return start_like_production(qtbot, demo, View(start=DEMO_DAY[0], end=DEMO_DAY[1]), window_size)
