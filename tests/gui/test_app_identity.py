"""Window icon and title: what the task bar and window switcher show."""
from __future__ import annotations

from PySide6.QtWidgets import QApplication

from liqscope.gui.app import make_app
from liqscope.gui.icon import ICON_SIZES, app_icon, icon_path


def test_app_icon_holds_every_shipped_size():
    make_app()
    icon = app_icon()
    assert not icon.isNull()
    assert sorted(s.width() for s in icon.availableSizes()) == sorted(ICON_SIZES)
    for size in ICON_SIZES:
        assert icon_path(size).is_file()


def test_make_app_sets_window_icon_names_and_desktop_id(qtbot):
    app = make_app()
    assert app is QApplication.instance()
    assert not app.windowIcon().isNull()
    assert app.windowIcon().availableSizes()  # the PNGs, not an empty placeholder
    assert app.applicationName() == "Liqscope"
    assert app.desktopFileName() == "liqscope"  # matches packaging/liqscope.desktop


def test_main_window_title_and_icon(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "config"))
    make_app()
    from liqscope.gui.main_window import MainWindow
    from liqscope.models.dataset import load_demo

    w = MainWindow(load_demo(), restore=False)
    qtbot.addWidget(w)
    assert w.windowTitle() == "Liqscope"
    assert not w.windowIcon().isNull()  # inherited from the application
    pixmap = w.windowIcon().pixmap(32, 32).toImage()
    assert pixmap.width() == 32
