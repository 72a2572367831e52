"""Start the GUI, or render it off screen for ``--screenshot``."""
from __future__ import annotations

import os
import sys
import time
from liqscope.models import cli
from liqscope.models.view import View, ViewError, check_view, requested_window

from .display import display_problem


_T0 = time.perf_counter()


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


def requested_view(args, dataset) -> View | None:
    """The View asked for on the command line, checked against the dataset (None if none asked for).

    The same strict rules as ``liqscope export``: unknown names are errors, the
    window is honoured exactly (even where it holds no data).
    """
    if not any(getattr(args, k, None) for k in ("asset", "exchange", "start", "end")):
        return None
    start, end = requested_window(args.start, args.end)
    view = View(start=start, end=end, asset=args.asset or "BTC", exchange=args.exchange or "binance")
    return check_view(dataset, view, asset_given=bool(args.asset), exchange_given=bool(args.exchange))


def run(args) -> int:
    """``liqscope`` with no command: the window (or ``--screenshot``: the window rendered to a PNG)."""
    if args.screenshot:
        cli.check_png_path(args.screenshot, "--screenshot")
        size = cli.parse_size(args.size)
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        dataset = cli.load(args)  # deterministic: load first, then render once
        view = requested_view(args, dataset)
        if view is not None and view.start is not None:
            dataset = dataset.for_view(view)  # a large store: the part that shows this view exactly
            cli.check_damage(dataset, view.start, view.end)
        make_app()
        from .main_window import MainWindow

        window = MainWindow(restore=False)  # as the app starts: placeholder, then the data swapped in
        window.set_dataset(dataset, view)
        if getattr(args, "theme", None):
            window.state.update(theme=args.theme)
            window.state.flush()
        if getattr(args, "panes", None):
            try:
                window.context_panes.show_only(args.panes)
            except ValueError as exc:
                raise cli.UsageError(str(exc)) from None
        return screenshot(window, args.screenshot, size)

    problem = display_problem()
    if problem:
        raise cli.UsageError(problem)
    app = make_app()
    from liqscope.models.sources import load_dataset

    from .main_window import MainWindow
    from .settings import load_view

    prefer_demo = getattr(args, "demo", False)
    # paint the window at once; the data arrives from a worker thread
    window = MainWindow(restore=True)
    window.show()
    window.statusBar().showMessage("Loading data…")

    def loaded(dataset):
        window.statusBar().clearMessage()  # "Loading data…" would otherwise stay up for good
        try:
            view = requested_view(args, dataset)
        except ViewError as exc:
            window.statusBar().showMessage(f"Ignored command-line view: {exc}", 10_000)
            view = None
        window.set_dataset(dataset, view, restore=view is None)
        _timing("data shown")

    # a store larger than the memory budget opens as the part showing the window asked for, or the saved one
    asked = requested_window(args.start, args.end) if (args.start or args.end) else None
    saved = load_view(window.settings)
    start, end = asked or (saved.get("start"), saved.get("end"))
    window.loader.load(lambda: load_dataset(prefer_demo=prefer_demo, start=start, end=end), on_loaded=loaded)
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
    from .annotations import wait_for_annotations

    window.resize(*size)
    window.show()
    wait_for_annotations(window)  # the store's annotations load on a worker: the image shows them
    settle(window)
    window.redraw(force=True)
    settle(window)
    image = window.grab()
    if not image.save(path, "PNG"):
        raise cli.UsageError(f"cannot write {path}")
    print(f"wrote {path} ({image.width()}x{image.height()})")
    return 0
