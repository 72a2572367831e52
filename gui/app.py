"""Start the GUI, or render it off screen for ``--screenshot``."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from liqscope.models.cli import UsageError
from liqscope.models.timeutil import TimeParseError, parse_time


_T0 = time.perf_counter()


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"invalid --size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x1000") from None
    if w < 400 or h < 300:
        raise UsageError(f"--size {text} is too small (minimum 400x300)")
    return w, h


def _quiet_offscreen_warnings() -> None:
    """The offscreen platform warns about window size hints on every resize; noise for users."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message):
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)


def make_app(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    _quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("Liqscope")
    app.setOrganizationName("Liqscope")
    # Wayland matches windows to packaging/liqscope.desktop by this id (its icon, its name).
    app.setDesktopFileName("liqscope")
    from .icon import app_icon

    app.setWindowIcon(app_icon())
    return app


def requested_view(args, dataset):
    """A View from command-line options, validated against the dataset (None if none given)."""

    fields = {}
    if getattr(args, "asset", None):
        asset = args.asset.upper()
        if asset not in dataset.prices.assets:
            raise UsageError(f"unknown asset {args.asset!r} (known: {', '.join(dataset.prices.assets)})")
        fields["asset"] = asset
    if getattr(args, "exchange", None):
        fields["exchange"] = args.exchange.lower()
    try:
        if args.start:
            fields["start"] = parse_time(args.start)
        if args.end:
            fields["end"] = parse_time(args.end)
    except TimeParseError as exc:
        raise UsageError(str(exc)) from None
    if ("start" in fields) != ("end" in fields):
        day = dataset.busiest_day()
        span = day[1] - day[0]
        fields.setdefault("end", fields.get("start", day[0]) + span)
        fields.setdefault("start", fields["end"] - span)
    if "start" in fields and fields["end"] <= fields["start"]:
        raise UsageError("--end must be after --start")
    return fields or None


def run(args) -> int:
    if args.screenshot and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    size = _parse_size(args.size) if args.screenshot else None
    from liqscope.models.sources import load_dataset

    prefer_demo = getattr(args, "demo", False)
    if args.screenshot:  # deterministic: load first, then render once
        dataset = load_dataset(prefer_demo=prefer_demo)
        view = _view_for(args, dataset)
        make_app()
        from .main_window import MainWindow

        return screenshot(MainWindow(dataset, view, restore=False), args.screenshot, size)

    app = make_app()
    from liqscope.models.dataset import Dataset

    from .loader import BackgroundLoader, prepare
    from .main_window import MainWindow

    # paint the window at once; the data arrives from a worker thread
    window = MainWindow(Dataset(label="Loading data…"), restore=True)
    window.show()
    window.statusBar().showMessage("Loading data…")
    loader = BackgroundLoader(window)

    def loaded(dataset):
        window.statusBar().clearMessage()  # "Loading data…" would otherwise stay up for good
        try:
            view = _view_for(args, dataset)
        except UsageError as exc:
            window.statusBar().showMessage(f"Ignored command-line view: {exc}", 10_000)
            view = None
        window.set_dataset(dataset, view, restore=view is None)
        _timing("data shown")

    def failed(message):
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(window, "Liqscope", f"Could not load data: {message}")

    loader.loaded.connect(loaded)
    loader.failed.connect(failed)
    loader.start(lambda: prepare(load_dataset(prefer_demo=prefer_demo)))
    if os.environ.get("LIQSCOPE_TIMING"):
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: _timing("window painted"))
    return app.exec()


def _timing(what: str) -> None:
    """LIQSCOPE_TIMING=<launch epoch seconds> (e.g. $(date +%s.%N)) prints time since launch."""
    value = os.environ.get("LIQSCOPE_TIMING")
    if not value:
        return
    try:
        since = time.time() - float(value)
    except ValueError:
        since = time.perf_counter() - _T0
    print(f"{what} {since:.3f} s after launch", file=sys.stderr)


def _view_for(args, dataset):
    """The View asked for on the command line, or None to use defaults/saved settings."""
    from .state import View

    fields = requested_view(args, dataset)
    if not fields:
        return None
    start, end = dataset.busiest_day() or (None, None)
    return replace(View(start=start, end=end), **fields)


def settle(window) -> None:
    """Let layout, coalesced state and repaints finish (the first grab can clip axis labels)."""
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
        window.state.flush()
        window._headline_timer.stop()
        window.update_headline()
        for panel in list(getattr(getattr(window, "drilldown", None), "panels", {}).values()):
            for timer, run in ((panel._refresh_timer, panel.refresh), (panel._redraw_timer, panel.redraw)):
                if timer.isActive():
                    run()  # do now what the panel's coalescing timer would do
        QApplication.processEvents()


def screenshot(window, path: str, size: tuple[int, int]) -> int:
    window.resize(*size)
    window.show()
    settle(window)
    window.redraw(force=True)
    settle(window)
    image = window.grab()
    if not image.save(path, "PNG"):
        raise UsageError(f"cannot write {path}")
    print(f"wrote {path} ({image.width()}x{image.height()})")
    return 0
