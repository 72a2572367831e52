"""The application icon, loaded from the PNGs shipped in liqscope.resources/icons.

PNGs rather than the SVG: they need no image plugin, so the icon shows the same in a
pip install, a PyInstaller bundle, and under the offscreen platform used by tests.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

from liqscope.models.paths import resources_dir

ICON_SIZES = (16, 32, 48, 64, 128, 256)


def icon_path(size: int) -> Path:
    return resources_dir() / "icons" / f"liqscope-{size}.png"


def app_icon() -> QIcon:
    """One QIcon holding every size, so each place (title bar, task switcher) gets a sharp one."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_path(size)
        if path.is_file():
            icon.addFile(str(path))
    return icon
