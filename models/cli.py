"""The headless half of the ``liqscope`` command: parser, shared options, ``summary`` and ``demo``.

This module never imports Qt or ``liqscope.gui`` (``lint-imports`` checks it).
The installed ``liqscope`` command is :func:`liqscope.gui.main.main`, which
adds the window and the off-screen renderer to this parser; scripts and
servers can call :func:`main` here for the Qt-free commands.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Callable, Iterable

from . import paths
from .errors import UserError
from .format import number, usd
from .progress import Cancelled
from .timeutil import format_time
from .version import app_version
from .view import View, ViewError, check_view, requested_window

# Modules under liqscope.models that contribute subcommands: register(subparsers) in each.
COMMAND_MODULES = ("store_cli", "connectors_cli", "cascades_cli", "replay_cli", "annotations_cli")

# Adds options/commands to the parser: extension(parser, subparsers). The GUI layer passes its own.
Extension = Callable[[argparse.ArgumentParser, argparse._SubParsersAction], None]


class UsageError(UserError):
    """Bad arguments or input: printed as one line, exit status 2."""


# -- argument types: refuse nonsense at the door, in one line ------------------
def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number {'>' if positive else '>='} 0")
    return value


def non_negative_float(text: str) -> float:
    return _number(text, positive=False)


def positive_float(text: str) -> float:
    return _number(text, positive=True)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def parse_size(text: str, *, minimum: tuple[int, int] = (400, 300)) -> tuple[int, int]:
    """``1600x900`` -> (1600, 900); one-line UsageError when malformed or out of range."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"invalid --size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x900") from None
    if w < minimum[0] or h < minimum[1] or w > 10_000 or h > 10_000:
        raise UsageError(f"--size {text} is out of range ({minimum[0]}x{minimum[1]} to 10000x10000)")
    return w, h


def check_png_path(path: str, flag: str = "--png") -> None:
    """Liqscope writes PNG only: a .jpg name would get PNG bytes under a lying extension."""
    if Path(path).suffix.lower() != ".png":
        raise UsageError(f"{flag} writes PNG images: give a file name ending in .png (got {path!r})")


def pane_list(text: str) -> list[str]:
    """``--panes oi,funding,series:NAME``: context panes in order (names checked against the data later)."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    for k in keys:
        if k not in ("oi", "funding") and not (k.startswith("series:") and len(k) > len("series:")):
            raise argparse.ArgumentTypeError(f"unknown pane {k!r} (oi, funding or series:NAME)")
    return keys


def add_window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", metavar="TIME", help="window start, ISO-8601 UTC (inclusive)")
    p.add_argument("--end", metavar="TIME", help="window end, ISO-8601 UTC (exclusive)")


def _add_global_args(p: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--data-dir and --demo, accepted before the command and after it (``summary --data-dir X``)."""
    default = argparse.SUPPRESS if after_command else None
    p.add_argument("--data-dir", metavar="DIR", default=default,
                   help=f"local store folder (default: per-user data dir; env {paths.DATA_DIR_ENV})")
    p.add_argument("--demo", action="store_true", default=argparse.SUPPRESS if after_command else False,
                   help="use the bundled demo dataset even if the store has data")


def _subcommand_parsers(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _subcommand_parsers(sub)


def _one_line_error(message: str) -> None:
    print(f"liqscope: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def build_parser(extensions: Iterable[Extension] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqscope",
        description="Explore crypto prices and futures liquidations per exchange and asset. "
                    "With no command, opens the desktop window.",
        epilog="Run `liqscope COMMAND --help` for a command's options. Times are ISO-8601, UTC; "
               "windows are start <= ts < end. --data-dir and --demo may also follow the command.",
    )
    parser.add_argument("--version", action="version", version=f"liqscope {app_version()}",
                        help="print the version and exit")
    _add_global_args(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    s = sub.add_parser("summary", help="headline liquidation figures for a time window",
                       description="Totals, long/short split, per-exchange and per-asset shares and the "
                                   "largest liquidations of a time window (default: the busiest UTC day). "
                                   "The window is honoured exactly, even where it holds no data.")
    add_window_args(s)
    s.add_argument("--exchange", action="append", dest="exchanges", metavar="X", help="only this exchange (repeatable)")
    s.add_argument("--asset", action="append", dest="assets", metavar="A", help="only this asset (repeatable)")
    s.add_argument("--side", choices=["long", "short", "both"], default="both",
                   help="liquidated positions to count (default both)")
    s.add_argument("--min-usd", type=non_negative_float, default=0.0, metavar="USD",
                   help="ignore liquidations smaller than this")
    s.add_argument("--top", type=non_negative_int, default=10, metavar="N",
                   help="how many of the largest orders to list")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_summary)

    d = sub.add_parser("demo", help="where the bundled demo dataset is; rebuild it",
                       description="The demo dataset is synthetic, generated from a fixed seed and "
                                   "calibrated to the totals reported for 2025-05-09.")
    d.add_argument("--regenerate", action="store_true", help="rebuild the demo Parquet files from the seed")
    d.add_argument("--out", metavar="DIR", help="folder to write to (default: the package's resources/demo)")
    d.set_defaults(func=cmd_demo)

    for name in COMMAND_MODULES:
        importlib.import_module(f"liqscope.models.{name}").register(sub)
    for extend in extensions:
        extend(parser, sub)
    for p in _subcommand_parsers(parser):
        _add_global_args(p, after_command=True)
        p.error = _one_line_error  # argparse would print the usage block too
    return parser


# -- shared by the commands ----------------------------------------------------
def load(args):
    """The dataset the command works on: the store if it has data (or --demo), as one-line errors."""
    from .sources import load_dataset
    from .store import StoreError

    start = end = None
    if getattr(args, "start", None) and getattr(args, "end", None):  # a large store: open on the part asked for
        try:
            start, end = requested_window(args.start, args.end)
        except ViewError:
            pass  # said in words where the command checks its view
    try:
        return load_dataset(prefer_demo=getattr(args, "demo", False), start=start, end=end)
    except StoreError as exc:  # e.g. a store written by a newer Liqscope
        raise UsageError(str(exc)) from None


def coverage_note(ds, view: View, count: int | None = None) -> str | None:
    """Say so when a window holds no data at all (the figures are zero, not another day's)."""
    if count is None:
        count = ds.index().totals(view.start, view.end).count
    if count:
        return None
    r = ds.time_range()
    covers = (f"the data covers {format_time(r[0], 'minute')} → {format_time(r[1], 'minute')} UTC" if r
              else "the dataset is empty")
    return f"no liquidations in {view.window_text()} ({covers})"


def check_damage(ds, start, end, *, exchanges=None, kinds=("liquidations", "candles")) -> None:
    """A window that needs a damaged store file the load left out is one line naming the file
    (its figures would be wrong without it); damaged files elsewhere do not matter to it."""
    hit = ds.damaged_in(start, end, exchanges=exchanges, kinds=kinds)
    if hit:
        more = f" ({len(hit) - 1} more damaged files in this window)" if len(hit) > 1 else ""
        raise UsageError(hit[0].message + more)


def print_notes(ds) -> None:
    """What the load could not see (a damaged file left out, a journal it could not read), one line each."""
    for note in ds.notes:
        print(f"liqscope: note: {note}", file=sys.stderr)


def summary_view(ds, args) -> View:
    start, end = requested_window(args.start, args.end)
    return check_view(ds, View(start=start, end=end, side=args.side, min_usd=args.min_usd), asset_given=False)


def load_overview(args):
    """For commands that need one window's figures: the store's :class:`~liqscope.models.store.figures.Overview`
    (reads table logs and rollups, never the whole store), or the demo/empty dataset."""
    from .store import StoreError, open_store
    from .store.figures import Overview

    if not getattr(args, "demo", False):
        try:
            store = open_store()
            if store.has_data():
                return Overview(store)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    return load(args)


def cmd_summary(args) -> int:
    ds = load_overview(args)
    view = summary_view(ds, args)
    if view.start is None:
        raise UsageError("the dataset is empty: nothing to summarise (liqscope import FILE, or --demo)")
    exchanges = _names(args.exchanges, ds.exchanges, str.lower, "exchange")
    assets = _names(args.assets, ds.assets, str.upper, "asset")
    check_damage(ds, view.start, view.end, exchanges=exchanges, kinds=("liquidations",))  # summaries read no candles
    result = ds.summary(view.start, view.end, exchanges=exchanges, assets=assets, side=view.side,
                        min_notional=view.min_usd, largest=args.top)
    from .context_cli import summary_fields  # open interest change and mean funding (null without data)
    result.update(summary_fields(ds, view.start, view.end, assets=assets, exchanges=exchanges, view_asset=view.asset))
    note = coverage_note(ds, view, result["count"])
    clean, poisoned = finite_only(result)
    if args.json:
        print(json.dumps(clean, allow_nan=False))
    else:
        print(format_summary(result))
    if note:
        print(f"liqscope: note: {note}", file=sys.stderr)
    print_notes(ds)
    if poisoned:
        print("liqscope: warning: this window holds stored values that are not finite numbers (shown as null); "
              "`liqscope store delete` removes the rows", file=sys.stderr)
    return 0


def finite_only(value):
    """``value`` with every non-finite float replaced by None (JSON has no NaN or Infinity), and whether any was."""
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (None, True)
    if isinstance(value, dict):
        pairs = [(k, finite_only(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, any(bad for _, (_, bad) in pairs)
    if isinstance(value, list):
        pairs = [finite_only(v) for v in value]
        return [v for v, _ in pairs], any(bad for _, bad in pairs)
    return value, False


def _names(given: list[str] | None, known: list[str], norm, kind: str) -> list[str] | None:
    if not given:
        return None
    missing = [g for g in given if norm(g) not in known]
    if missing:
        raise ViewError(f"unknown {kind} {missing[0]!r} (known: {', '.join(known) or 'none in this dataset'})")
    return [norm(g) for g in given]


def format_summary(r: dict) -> str:
    lines = [
        f"Source:   {r['source']}",
        f"Window:   {r['start']} to {r['end']} (UTC, end exclusive)",
        f"Total:    {usd(r['total_usd'])} in {r['count']:,} liquidations",
        f"Longs:    {usd(r['long_usd'])}   Shorts: {usd(r['short_usd'])} ({r['short_share']:.0%} shorts)",
        "",
        f"{'Exchange':<12}{'USD':>12}{'share':>8}",
    ]
    total = r["total_usd"] or 1.0
    lines += [f"{k:<12}{usd(v):>12}{v / total:>8.0%}" for k, v in r["by_exchange"].items()]
    lines += ["", f"{'Asset':<12}{'USD':>12}{'share':>8}"]
    lines += [f"{k:<12}{usd(v):>12}{v / total:>8.0%}" for k, v in r["by_asset"].items()]
    if r["largest"]:
        lines += ["", "Largest liquidations:",
                  f"{'time (UTC)':<26}{'exchange':<10}{'symbol':<16}{'side':<7}{'price':>12}{'qty':>14}{'USD':>10}"]
        lines += [f"{o['ts']:<26}{o['exchange']:<10}{o['symbol']:<16}{o['side']:<7}"
                  f"{number(o['price']):>12}{number(o['qty']):>14}{usd(o['notional_usd']):>10}" for o in r["largest"]]
    if "oi_change_pct" in r:
        from .context_cli import summary_lines
        lines += summary_lines(r)
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from pathlib import Path

    from . import demo

    if not args.regenerate:
        print(f"demo dataset: {paths.demo_dir()} (synthetic; `liqscope demo --regenerate` rebuilds it)")
        return 0
    if not args.out and getattr(sys, "frozen", False):  # never write inside the app bundle
        raise UsageError("the bundled demo data is read-only; pass --out DIR")
    folder = Path(args.out) if args.out else paths.demo_dir()
    for p in demo.write(folder):
        print(f"wrote {p} ({p.stat().st_size:,} bytes)")
    return 0


def _no_command(args) -> int:
    raise UsageError("no command given (summary, export, import, fetch, record, store, demo); "
                     "the window opens from the `liqscope` command")


def main(argv: list[str] | None = None, extensions: Iterable[Extension] = (),
         default: Callable[[argparse.Namespace], int] | None = None) -> int:
    """Parse, run the command, map user errors to one line and exit status 2."""
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    if args.data_dir:
        paths.set_data_dir(args.data_dir)
    func = getattr(args, "func", None) or default or _no_command
    try:
        return func(args)
    except UserError as exc:  # usage, view, store, input, export and fetch problems alike
        print(f"liqscope: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("liqscope: cancelled; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `liqscope summary | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
