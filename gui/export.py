"""Export what a view shows: PNG at 1× or 2×, CSV of the rows behind it (via models.export).

PNG: ``QWidget.render`` into a ``QImage`` whose device pixel ratio is the scale,
so at 2× Qt paints text, lines and pyqtgraph items at twice the resolution
instead of upscaling a screen grab (``QWidget.grab`` only gives the screen's own
ratio; pyqtgraph's ImageExporter covers one plot, not the headline or tables).

Every exporter (main window, each panel) is an :class:`ExportTarget`, so the
File menu, the panels' Export buttons and ``liqscope export`` share one path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QPoint
from PySide6.QtGui import QAction, QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox, QWidget

from liqscope.models.dataset import Dataset
from liqscope.models.export import (ExportError, Selection, atomic_file, check_writable,
                                    main_view_name, dataset_frame, write_csv)
from liqscope.models.format import usd
from liqscope.models.progress import Step, Task
from liqscope.models.timeutil import format_duration

from .loader import close_progress, progress_dialog
from .theme import THEMES, display_name
from .worker import Worker

WHAT_LABELS = {"candles": "Candles (OHLCV)…", "buckets": "Liquidation buckets…",
               "liquidations": "Raw liquidations…"}
PROGRESS_MIN_ROWS = 50_000  # smaller exports finish before a dialog could be read


class ExportTarget(Protocol):
    """Anything that can be exported: the main window's view or a drill-down panel.

    ``export_image(scale)`` is optional: a target that composes its image (the main
    view adds a title line and leaves out the on-screen helpers) provides it; others
    are rendered from ``export_widget()`` as they are.

    ``dataset`` is read at export time (a property onto the window's data hub):
    a target never keeps the dataset it was built with.
    """

    export_whats: tuple[str, ...]

    @property
    def dataset(self) -> Dataset: ...

    def export_widget(self) -> QWidget: ...

    def export_selection(self) -> Selection: ...

    def export_name(self, what: str | None, ext: str) -> str: ...


# -- PNG ---------------------------------------------------------------------
def render_widget(widget: QWidget, scale: float = 1.0, background: str | None = None) -> QImage:
    """The widget as an image of ``scale`` × its logical size, painted at that resolution."""
    w, h = widget.width(), widget.height()
    # opaque RGB: the views paint a solid background, and 3 channels encode ~25% faster than ARGB
    image = QImage(max(1, round(w * scale)), max(1, round(h * scale)), QImage.Format.Format_RGB888)
    image.setDevicePixelRatio(scale)
    image.fill(QColor(background) if background else widget.palette().window().color())
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    widget.render(painter, QPoint(0, 0))
    painter.end()
    return image


PNG_QUALITY = 80


def save_image(image: QImage, path: str | os.PathLike) -> Path:
    """Write a PNG atomically (temp file + rename); ExportError in one line on failure."""
    with atomic_file(path) as tmp:
        # quality 80 = zlib level ~1: ~1.5x faster than the default for a ~35% larger file
        if not image.save(str(tmp), "PNG", PNG_QUALITY):
            raise ExportError(f"cannot write {path}")
    p = Path(path).expanduser()
    return p


def export_image(target: ExportTarget, scale: float = 1.0) -> QImage:
    """What ``target`` exports as an image (File ▸ Export PNG, Copy image, ``liqscope export --png``)."""
    compose = getattr(target, "export_image", None)
    if compose is not None:
        return compose(scale)
    view = getattr(getattr(target, "state", None), "view", None)
    bg = THEMES[view.theme].background if view is not None else None
    return render_widget(target.export_widget(), scale, bg)


def export_png(target: ExportTarget, path: str | os.PathLike, scale: float = 1.0) -> tuple[int, int]:
    """Render ``target`` to ``path``; returns the PNG's pixel size."""
    check_writable(path)
    image = export_image(target, scale)
    save_image(image, path)
    return image.width(), image.height()


def copy_image(parent: QWidget, target: ExportTarget) -> QImage:
    """The exported image (1×) to the clipboard, ready to paste into a post or a chat."""
    image = export_image(target, 1.0)
    QApplication.clipboard().setImage(image)
    _report(parent, f"Copied the image ({image.width()}×{image.height()}) to the clipboard")
    return image


# -- CSV ---------------------------------------------------------------------
def export_csv(target: ExportTarget, path: str | os.PathLike, what: str, task: Task | None = None) -> int:
    """Write the rows behind ``target``'s view; returns the number of data rows."""
    check_writable(path)
    frame = dataset_frame(target.dataset, target.export_selection(), what)
    return write_csv(frame, path, task)


# -- interactive (dialogs) ---------------------------------------------------
def _settings(parent: QWidget):
    window = parent.window()
    return getattr(window, "settings", None)


def ask_path(parent: QWidget, caption: str, name: str, file_filter: str) -> str | None:
    """A save dialog starting in the last export folder; None when cancelled."""
    settings = _settings(parent)
    folder = settings.value("export/dir") if settings is not None else None
    folder = folder if folder and Path(str(folder)).is_dir() else str(Path.home())
    path, _ = QFileDialog.getSaveFileName(parent, caption, str(Path(folder) / name), file_filter)
    if not path:
        return None
    if settings is not None:
        settings.setValue("export/dir", str(Path(path).parent))
    return path


def _report(parent: QWidget, text: str) -> None:
    window = parent.window()
    bar = window.statusBar() if hasattr(window, "statusBar") else None
    if bar is not None:
        bar.showMessage(text, 8000)


def interactive_png(parent: QWidget, target: ExportTarget, scale: float) -> str | None:
    """File dialog, then PNG; errors go to a message box, not a traceback."""
    path = ask_path(parent, "Export PNG", target.export_name(None, "png"), "PNG images (*.png)")
    if path is None:
        return None
    try:
        w, h = export_png(target, path, scale)
    except ExportError as exc:
        QMessageBox.warning(parent, "Export PNG", str(exc))
        return None
    _report(parent, f"Wrote {path} ({w}×{h})")
    return path


def interactive_csv(parent: QWidget, target: ExportTarget, what: str) -> Worker | None:
    """File dialog, then the CSV written by a worker, with a cancellable progress dialog for long exports.

    The selection (the view, the drawn levels) is taken now, on the GUI thread; the
    rows are gathered and written off it. Returns the worker (tests wait on it).
    """
    path = ask_path(parent, "Export CSV", target.export_name(what, "csv"), "CSV files (*.csv)")
    if path is None:
        return None
    return start_csv_export(parent, target, what, path)


def start_csv_export(parent: QWidget, target: ExportTarget, what: str, path: str) -> Worker:
    dataset, selection = target.dataset, target.export_selection()
    worker = Worker(parent, name="liqscope-export")
    dialog: list = []  # the progress dialog, once the export proves long

    def progressed(step: Step) -> None:
        if step.total < PROGRESS_MIN_ROWS:
            return
        if not dialog:
            dialog.append(progress_dialog(parent, "Exporting", f"Writing {Path(path).name}…", worker.cancel))
        dialog[0].setValue(int(1000 * step.fraction))

    def done(message: str | None = None, error: str | None = None) -> None:
        for d in dialog:
            close_progress(d)
        if error:
            QMessageBox.warning(parent, "Export CSV", error)
        elif message:
            _report(parent, message)
        worker.deleteLater()

    def failed(exc: Exception) -> None:
        done(error=str(exc) if isinstance(exc, (ExportError, OSError)) else f"{type(exc).__name__}: {exc}")

    def write(task: Task) -> int:
        check_writable(path)
        return write_csv(dataset_frame(dataset, selection, what), path, task)

    worker.progressed.connect(progressed)
    worker.finished.connect(lambda rows: done(f"Wrote {path} ({rows:,} rows)"))
    worker.failed.connect(failed)
    worker.cancelled.connect(lambda: done("Export cancelled"))
    worker.start(write)
    return worker


def export_menu(parent: QWidget, target: ExportTarget, title: str = "Export") -> QMenu:
    """PNG 1×/2× and one CSV entry per kind of data the target has (panels' Export button)."""
    menu = QMenu(title, parent)
    for scale, text in ((1, "PNG, screen scale (1×)…"), (2, "PNG, double scale (2×)…")):
        act = menu.addAction(text)
        act.setObjectName(f"export_png_{scale}x")
        act.triggered.connect(lambda _=False, s=scale: interactive_png(parent, target, s))
    menu.addSeparator()
    for what in target.export_whats:
        act = menu.addAction(f"CSV: {WHAT_LABELS[what]}")
        act.setObjectName(f"export_csv_{what}")
        act.triggered.connect(lambda _=False, w=what: interactive_csv(parent, target, w))
    return menu


# -- the main window as a target ---------------------------------------------
class MainViewExport(QObject):
    """The main window's view (headline + charts, no toolbars) as an export target.

    Holds no data of its own: the dataset and the view are read from the window
    when an export runs, so it always exports what the window shows now.
    """

    export_whats = ("candles", "buckets", "liquidations")

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.state = window.state

    @property
    def dataset(self) -> Dataset:
        return self.window.dataset

    def export_widget(self) -> QWidget:
        return self.window.centralWidget()

    def export_image(self, scale: float = 1.0) -> QImage:
        """The view as a share-ready image: a title line on top; no banner, crosshair or readout.

        The window is laid out for the image (title shown, helpers hidden), rendered at
        its exact size, and put back, so the image has the size the view has on screen.
        """
        w = self.window
        helpers = [widget for widget in (w.banner, w.readout) if widget.isVisible()]
        lines = [line for line in w.crosshair.lines if line.isVisible()]
        crosshair_at, w.crosshair.at = w.crosshair.at, None  # a redraw must not bring it back meanwhile
        w.export_title.setText(main_view_title(w))
        try:
            for widget in helpers:
                widget.hide()
            for line in lines:
                line.hide()
            w.export_title.show()
            QApplication.processEvents()  # lay the charts out in the space the helpers left
            w.redraw()  # taller panes: y ranges and labels re-fit (same width: bars and markers stand)
            return render_widget(w.centralWidget(), scale, THEMES[self.state.view.theme].background)
        finally:
            w.export_title.hide()
            for widget in helpers:
                widget.show()
            for line in lines:
                line.show()
            w.crosshair.at = crosshair_at
            QApplication.processEvents()
            w.redraw()

    def export_selection(self) -> Selection:
        """The view and the drawn levels (candle interval, bar bucket)."""
        v = self.state.view
        return Selection(view=v, price_exchanges=(v.exchange,), candle_interval=self.window.price.level,
                         bucket=self.window.liq.bucket, by="exchange")

    def export_name(self, what: str | None, ext: str) -> str:
        return main_view_name(self.state.view, what=what, ext=ext)


def main_view_title(window) -> str:
    """One line saying what the image shows: asset and candles, the UTC window, whose liquidations, the data."""
    v = window.state.view
    candles = (f"{v.asset} · {display_name(v.exchange)} {format_duration(window.price.level)} candles"
               if window.price.pyramid is not None else f"{v.asset} · no candles")
    scope = f"{v.asset} only" if v.liq_scope == "asset" else "all assets"
    exchanges = "all exchanges" if v.exchanges is None else ", ".join(display_name(e) for e in sorted(v.exchanges))
    sides = {"both": "longs + shorts", "long": "longs only", "short": "shorts only"}[v.side]
    size = f" · ≥ {usd(v.min_usd)}" if v.min_usd else ""
    source = "synthetic demo data" if window.dataset.is_demo else window.dataset.label
    return (f"<b>{candles}</b> · {v.window_text()} · liquidations: {scope}, {exchanges}, {sides}{size}, "
            f"{format_duration(window.liq.bucket)} bars · {source}")


def install_export_menu(window) -> MainViewExport:
    """File ▸ Export PNG / Export CSV, just above Quit (after whatever else the File menu holds)."""
    target = MainViewExport(window)
    menu = window.file_menu
    actions = menu.actions()
    quit_at = next((i for i, a in enumerate(actions) if a.text().replace("&", "") == "Quit"), None)
    if quit_at is None:
        first = None  # no Quit entry: append at the end
    else:  # just above Quit, and above the separator that sets Quit apart
        first = actions[quit_at - 1] if quit_at and actions[quit_at - 1].isSeparator() else actions[quit_at]
    png = QMenu("Export &PNG", window)
    png.setObjectName("export_png_menu")
    for scale, text in ((1, "Screen scale (1×)…"), (2, "Double scale (2×)…")):
        act = QAction(text, window)
        act.setObjectName(f"export_png_{scale}x")
        if scale == 1:
            act.setShortcut("Ctrl+Shift+P")
        act.triggered.connect(lambda _=False, s=scale: interactive_png(window, target, s))
        png.addAction(act)
    csv = QMenu("Export &CSV", window)
    csv.setObjectName("export_csv_menu")
    for what in target.export_whats:
        act = QAction(WHAT_LABELS[what], window)
        act.setObjectName(f"export_csv_{what}")
        act.triggered.connect(lambda _=False, w=what: interactive_csv(window, target, w))
        csv.addAction(act)
    copy = QAction("Cop&y image", window)
    copy.setObjectName("copy_image")
    copy.setShortcut("Ctrl+Shift+C")
    copy.setToolTip("The exported image of the view, on the clipboard")
    copy.triggered.connect(lambda: copy_image(window, target))
    if first is not None:
        menu.insertAction(first, copy)
    else:
        menu.addAction(copy)
    for sub in (png, csv):
        if first is not None:
            menu.insertMenu(first, sub)
        else:
            menu.addMenu(sub)
    if first is not None and not first.isSeparator():
        menu.insertSeparator(first)
    target.png_menu, target.csv_menu = png, csv
    return target
