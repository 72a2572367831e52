"""``liqscope export``: a view of a time window to PNG and/or CSV, without opening a window.

The PNG (and the candle/bucket CSVs, whose level of detail depends on the
chart's width) come from the real main window rendered off screen, so they
equal what File ▸ Export writes in the GUI. A raw-liquidations CSV on its own
needs no renderer and never imports Qt: this module imports Qt only inside
:func:`_render`, so ``liqscope export --what liquidations --csv`` works on a
server without Qt's libraries.
"""
from __future__ import annotations

import sys

from liqscope.models import cli
from liqscope.models.context_cli import cmd_export_context, is_context_what, what_type
from liqscope.models.export import WHATS, ExportError, Selection, check_writable, dataset_frame, write_csv
from liqscope.models.progress import terminal_task
from liqscope.models.timeutil import BUCKETS
from liqscope.models.view import View, check_view, requested_window

PROGRESS_MIN_ROWS = 50_000
DEFAULT_SIZE = "1600x900"


def register(parser, sub) -> None:
    p = sub.add_parser(
        "export", help="write the view of a time window to PNG and/or CSV (no window shown)",
        description="Render the main view of a time window off screen to PNG, and/or write the data behind "
                    "it as CSV (ISO-8601 UTC times, plain numbers). Windows are start <= ts < end, UTC, "
                    "honoured exactly: a window without data gives zero figures and an empty CSV with its header.")
    p.add_argument("--asset", help="asset shown on the price pane, e.g. BTC (required)")
    p.add_argument("--exchange", help="exchange whose candles are shown (default: binance if it lists the asset)")
    cli.add_window_args(p)
    p.add_argument("--png", metavar="FILE", help="write the chart (headline, prices, liquidations) as PNG")
    p.add_argument("--csv", metavar="FILE", help="write the data behind the view as CSV")
    p.add_argument("--what", type=what_type(WHATS), default="candles",
                   help="CSV content: candles (as drawn), liquidation buckets (as drawn), raw liquidations, or the "
                        "context series oi, funding or series:NAME (CSV only; --asset/--exchange filter them)")
    p.add_argument("--size", default=DEFAULT_SIZE, help=f"PNG size in screen pixels, WxH (default {DEFAULT_SIZE})")
    p.add_argument("--scale", type=int, choices=[1, 2], default=1, help="1: screen pixels, 2: double resolution")
    p.add_argument("--bucket", choices=list(BUCKETS), help="liquidation bar width (default: follows the zoom)")
    p.add_argument("--side", choices=["long", "short", "both"], default="both", help="liquidated positions to count")
    p.add_argument("--min-usd", type=cli.non_negative_float, default=0.0, help="ignore liquidations smaller than this")
    p.add_argument("--scope", choices=["all", "asset"], default="all",
                   help="liquidations of all assets (default) or only --asset")
    p.add_argument("--theme", choices=["dark", "light"], default="dark", help="PNG colours")
    p.add_argument("--panes", metavar="LIST", type=cli.pane_list,
                   help="context panes under the bars, in order: oi, funding, series:NAME (comma-separated)")
    p.set_defaults(func=cmd_export)


def export_view_of(ds, args) -> View:
    """The View the options ask for, checked against the dataset (the same rules as the window's)."""
    if not args.asset:
        raise cli.UsageError("--asset is required, e.g. --asset BTC")
    start, end = requested_window(args.start, args.end)
    view = View(start=start, end=end, asset=args.asset, exchange=args.exchange or "binance",
                side=args.side, min_usd=args.min_usd, liq_scope=args.scope, theme=args.theme,
                bucket=BUCKETS[args.bucket] if args.bucket else None)
    return check_view(ds, view, asset_given=True, exchange_given=bool(args.exchange))


def cmd_export(args) -> int:
    if is_context_what(args.what):  # open interest, funding, outside series: no renderer, no Qt
        return cmd_export_context(args)
    if not args.asset:
        raise cli.UsageError("--asset is required, e.g. --asset BTC")
    ds = cli.load(args)
    if not args.png and not args.csv:
        raise cli.UsageError("nothing to export: give --png FILE and/or --csv FILE")
    view = export_view_of(ds, args)
    if view.start is None:
        raise cli.UsageError("the dataset is empty: nothing to export")
    ds = ds.for_view(view)  # a large store: the part that shows this view exactly
    cli.check_damage(ds, view.start, view.end)
    size = cli.parse_size(args.size)
    for path in (args.png, args.csv):
        if path:
            try:
                check_writable(path)
            except ExportError as exc:
                raise cli.UsageError(str(exc)) from None
    if args.png:
        cli.check_png_path(args.png)
    task = terminal_task("writing CSV", unit="rows", min_total=PROGRESS_MIN_ROWS)
    try:
        if args.png or args.what != "liquidations":
            lines = _render(ds, view, size, args, task)
        else:  # raw events do not depend on the chart: no renderer, no Qt
            sel = Selection(view=view, price_exchanges=(view.exchange,))
            rows = write_csv(dataset_frame(ds, sel, "liquidations"), args.csv, task)
            lines = [f"wrote {args.csv} ({rows:,} rows of liquidations)"]
    except ExportError as exc:
        raise cli.UsageError(str(exc)) from None
    for line in lines:
        print(line)
    note = cli.coverage_note(ds, view)
    if note:
        print(f"liqscope: note: {note}", file=sys.stderr)
    cli.print_notes(ds)
    return 0


def _render(ds, view: View, size: tuple[int, int], args, task) -> list[str]:
    try:  # importing the renderer fails here, in one line, when Qt's libraries are missing
        from .headless import export_view
    except ImportError as exc:
        raise cli.UsageError(f"cannot render without Qt ({exc}); --what liquidations --csv works without it") from None

    try:
        return export_view(ds, view, size=size, scale=args.scale, png=args.png, csv=args.csv, what=args.what,
                           task=task, panes=args.panes)
    except ValueError as exc:  # a --panes name the data does not hold
        raise cli.UsageError(str(exc)) from None
