"""Help → About: version from the installed metadata, data sources, demo disclaimer, licence."""
from __future__ import annotations

from importlib.metadata import version

import pytest
from PySide6.QtGui import QAction

from liqscope.gui.about import AboutDialog, license_text
from liqscope.models.dataset import DEMO_LABEL, load_demo


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path / "config"))
    from liqscope.gui.main_window import MainWindow

    w = MainWindow(load_demo(), restore=False)
    qtbot.addWidget(w)
    return w


def test_dialog_shows_installed_version_sources_disclaimer_and_licence(qtbot):
    dlg = AboutDialog()
    qtbot.addWidget(dlg)
    assert dlg.version_label.text() == f"Version {version('liqscope')}"
    sources = dlg.sources_label.text()
    for fragment in ("Files you import", "Binance, OKX, Bybit", "No account or API key", "Demo data"):
        assert fragment in sources
    assert DEMO_LABEL in dlg.demo_label.text()
    assert "synthetic" in dlg.demo_label.text()
    assert "MIT" in dlg.license_label.text()


def test_licence_text_is_the_shipped_mit_licence(qtbot):
    text = license_text()
    assert text.startswith("MIT License")
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    dlg = AboutDialog()
    qtbot.addWidget(dlg)
    shown = dlg.show_license()
    assert shown.isVisible()
    assert dlg.license_view.toPlainText() == text


def test_help_menu_about_opens_the_dialog(window, qtbot):
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles[-1] == "&Help"  # Help stays last
    about = window.findChild(QAction, "action_about")
    assert about is not None and about in window.help_menu.actions()
    about.trigger()
    dlg = window.findChild(AboutDialog)
    assert dlg is not None and dlg.isVisible()
    assert version("liqscope") in dlg.version_label.text()
    dlg.close()
