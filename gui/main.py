"""The installed ``liqscope`` command: the headless commands of ``models.cli`` plus the window.

This is the one module allowed to see both layers: it adds the window's
options and ``liqscope export`` (whose renderer is the window) to the Qt-free
parser. Nothing here imports Qt at module level, so ``liqscope summary`` runs
on a server with no display and no Qt libraries.
"""
from __future__ import annotations

import argparse
import sys

from liqscope.models import cli

from . import export_cli


def add_window_options(parser: argparse.ArgumentParser, _sub) -> None:
    gui = parser.add_argument_group("window options (no command)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="render the main window off screen to a PNG and exit")
    gui.add_argument("--asset", help="asset to show, e.g. BTC")
    gui.add_argument("--exchange", help="exchange for the price pane, e.g. binance")
    gui.add_argument("--size", default="1600x1000", metavar="WxH",
                     help="window size for --screenshot (default 1600x1000)")
    gui.add_argument("--panes", metavar="LIST", type=cli.pane_list,
                     help="context panes under the bars, in order: oi, funding, series:NAME (comma-separated)")
    gui.add_argument("--theme", choices=["dark", "light"], help="colours (default: the saved choice, else dark)")
    cli.add_window_args(gui)


def run_window(args: argparse.Namespace) -> int:
    try:
        from .app import run
    except ImportError as exc:  # Qt's libraries cannot load on this machine
        raise cli.UsageError(f"cannot start the window: {exc}") from None
    return run(args)


EXTENSIONS = (add_window_options, export_cli.register)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(EXTENSIONS)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, EXTENSIONS, default=run_window)


if __name__ == "__main__":
    sys.exit(main())
