"""``liqscope export``: a view of a time window to PNG and/or CSV, without opening a window.

The PNG (and the candle/bucket CSVs, whose level of detail depends on the
chart's width) come from the real main window rendered off screen, so they
equal what File ▸ Export writes in the GUI. A raw-liquidations CSV on its own
needs no renderer and never imports Qt. Qt is imported lazily, inside the
command, so ``liqscope.models`` stays importable without a display.
"""
from __future__ import annotations

import argparse
import sys
from typing import TextIO

from . import cli
from .export import (WHATS, ExportCancelled, ExportError, check_writable, main_view_selection, selection_frame,
                     write_csv)
from .timeutil import BUCKETS

PROGRESS_MIN_ROWS = 50_000
DEFAULT_SIZE = "1600x900"


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write the view of a time window to PNG and/or CSV (no window shown)",
        description="Render the main view of a time window off screen to PNG, and/or write the data behind "
                    "it as CSV (ISO-8601 UTC times, plain numbers). Windows are start <= ts < end, UTC.")
    p.add_argument("--asset", help="asset shown on the price pane, e.g. BTC (required)")
    p.add_argument("--exchange", help="exchange whose candles are shown (default: binance if it lists the asset)")
    cli._add_window_args(p)
    p.add_argument("--png", metavar="FILE", help="write the chart (headline, prices, liquidations) as PNG")
    p.add_argument("--csv", metavar="FILE", help="write the data behind the view as CSV")
    p.add_argument("--what", choices=WHATS, default="candles",
                   help="CSV content: candles (as drawn), liquidation buckets (as drawn) or raw liquidations")
    p.add_argument("--size", default=DEFAULT_SIZE, help=f"PNG size in screen pixels, WxH (default {DEFAULT_SIZE})")
    p.add_argument("--scale", type=int, choices=[1, 2], default=1, help="1: screen pixels, 2: double resolution")
    p.add_argument("--bucket", choices=list(BUCKETS), help="liquidation bar width (default: follows the zoom)")
    p.add_argument("--side", choices=["long", "short", "both"], default="both", help="liquidated positions to count")
    p.add_argument("--min-usd", type=float, default=0.0, help="ignore liquidations smaller than this")
    p.add_argument("--scope", choices=["all", "asset"], default="all",
                   help="liquidations of all assets (default) or only --asset")
    p.add_argument("--theme", choices=["dark", "light"], default="dark", help="PNG colours")
    p.set_defaults(func=cmd_export)
    p.error = _one_line_error  # argparse would print the usage block too


def _one_line_error(message: str) -> None:
    print(f"liqscope: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise cli.UsageError(f"invalid --size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x900") from None
    if w < 400 or h < 300 or w > 10_000 or h > 10_000:
        raise cli.UsageError(f"--size {text} is out of range (400x300 to 10000x10000)")
    return w, h


class TerminalProgress:
    """A one-line progress bar on a terminal's stderr, for exports of many rows."""

    def __init__(self, stream: TextIO = sys.stderr, min_rows: int = PROGRESS_MIN_ROWS, width: int = 30):
        self.stream, self.min_rows, self.width = stream, min_rows, width
        self.active = False

    def __call__(self, done: int, total: int) -> bool:
        if total < self.min_rows or not getattr(self.stream, "isatty", lambda: False)():
            return True
        filled = int(self.width * done / total)
        self.stream.write(f"\rwriting CSV [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done / total:4.0%} {done:,}/{total:,} rows")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
        self.active = done < total
        return True


def cmd_export(args) -> int:
    ds = cli._load(args)
    if not args.asset:
        raise cli.UsageError("--asset is required, e.g. --asset BTC")
    if not args.png and not args.csv:
        raise cli.UsageError("nothing to export: give --png FILE and/or --csv FILE")
    asset = args.asset.upper()
    needs_candles = bool(args.png) or args.what == "candles"
    known = ds.prices.assets if needs_candles else ds.assets
    if asset not in known:
        raise cli.UsageError(f"unknown asset {args.asset!r} (known: {', '.join(known)})")
    sources = ds.prices.exchanges_for(asset)
    if args.exchange:
        exchange = args.exchange.lower()
        if sources and exchange not in sources:
            raise cli.UsageError(f"no {asset} candles from {args.exchange!r} (known: {', '.join(sources)})")
    else:
        exchange = "binance" if "binance" in sources or not sources else sources[0]
    start, end = cli._window(ds, args.start, args.end)
    size = parse_size(args.size)
    for path in (args.png, args.csv):
        if path:
            try:
                check_writable(path)
            except ExportError as exc:
                raise cli.UsageError(str(exc)) from None
    fields = {"start": start, "end": end, "asset": asset, "exchange": exchange, "side": args.side,
              "min_usd": args.min_usd, "liq_scope": args.scope, "theme": args.theme,
              "bucket": BUCKETS[args.bucket] if args.bucket else None}
    progress = TerminalProgress(sys.stderr)
    try:
        if args.png or args.what != "liquidations":
            lines = _render(ds, fields, size, args, progress)
        else:  # raw events do not depend on the chart: no renderer, no Qt
            sel = main_view_selection(start=start, end=end, asset=asset, exchange=exchange, liq_scope=args.scope,
                                      side=args.side, min_usd=args.min_usd)
            rows = write_csv(selection_frame(ds.prices, ds.liquidations, sel, "liquidations"), args.csv, progress)
            lines = [f"wrote {args.csv} ({rows:,} rows of liquidations)"]
    except ExportCancelled:
        raise cli.UsageError("export cancelled") from None
    except ExportError as exc:
        raise cli.UsageError(str(exc)) from None
    for line in lines:
        print(line)
    return 0


def _render(ds, fields: dict, size: tuple[int, int], args: argparse.Namespace, progress) -> list[str]:
    try:  # the renderer lives in gui/; importing it fails here, in one line, when Qt's libraries are missing
        from liqscope.gui.headless import export_view
    except ImportError as exc:
        raise cli.UsageError(f"cannot render without Qt ({exc}); --what liquidations --csv works without it") from None

    return export_view(ds, fields, size=size, scale=args.scale, png=args.png, csv=args.csv, what=args.what,
                       progress=progress)
