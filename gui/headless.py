"""Render the main window off screen and export it: the engine behind ``liqscope export``.

Same window class, same drawing code and same export functions as File ▸ Export,
so a PNG or CSV from the command line equals the one the GUI would write for
that view. The window is never shown on screen (``WA_DontShowOnScreen``) and
uses a throw-away settings folder, so a headless export never changes the
view the desktop app restores next time.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from PySide6 import QtWidgets  # noqa: F401  (importing this module fails at once when Qt cannot load)

from liqscope.models.dataset import Dataset
from liqscope.models.export import ExportError
from liqscope.models.paths import CONFIG_DIR_ENV
from liqscope.models.progress import Task
from liqscope.models.view import View


@contextlib.contextmanager
def _throwaway_settings() -> Iterator[None]:
    old = os.environ.get(CONFIG_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="liqscope-export-") as folder:
        os.environ[CONFIG_DIR_ENV] = folder
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(CONFIG_DIR_ENV, None)
            else:
                os.environ[CONFIG_DIR_ENV] = old


def fit_central(window, width: int, height: int) -> None:
    """Resize the window until its central widget (what the PNG shows) is exactly ``width``×``height``."""
    from .app import settle

    window.resize(width, height)
    window.show()
    settle(window)
    for _ in range(4):
        c = window.centralWidget()
        dw, dh = width - c.width(), height - c.height()
        if not dw and not dh:
            break
        window.resize(window.width() + dw, window.height() + dh)
        settle(window)
    c = window.centralWidget()
    if (c.width(), c.height()) != (width, height):
        raise ExportError(f"cannot lay the view out at {width}x{height} (got {c.width()}x{c.height()}; "
                          "try a larger --size)")
    window.redraw(force=True)
    settle(window)


def export_view(dataset: Dataset, view: View, *, size: tuple[int, int], scale: float = 1.0,
                png: str | None = None, csv: str | None = None, what: str = "candles",
                task: Task | None = None, panes: list[str] | None = None) -> list[str]:
    """Build the main window off screen the way the app starts (placeholder, then the data and the
    view swapped in), write the PNG and/or CSV of ``view``.

    Returns one human line per file written. Raises ExportError for problems a
    user can fix (size too small, path not writable).
    """
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import Qt

    from .annotations import wait_for_annotations
    from .app import make_app
    from .export import export_csv, export_png
    from .main_window import MainWindow

    app = make_app()
    lines = []
    with _throwaway_settings():
        window = MainWindow(restore=False)
        try:
            window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
            window.set_dataset(dataset, view)
            if panes:
                window.context_panes.show_only(panes)
            wait_for_annotations(window)  # the store's annotations load on a worker: the image shows them
            fit_central(window, *size)
            if png:
                w, h = export_png(window.exports, png, scale)
                lines.append(f"wrote {png} ({w}x{h})")
            if csv:
                rows = export_csv(window.exports, csv, what, task)
                lines.append(f"wrote {csv} ({rows:,} rows of {what})")
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()
    return lines

