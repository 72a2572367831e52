"""The ``liqscope`` command: GUI by default, subcommands for headless work.

Qt is imported only when a command needs it, so ``summary`` and friends run on
servers without a display.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from importlib.metadata import PackageNotFoundError, version

from . import paths
from .format import number, usd
from .timeutil import TimeParseError, parse_time


# Modules under liqscope.models that contribute subcommands (absent ones are skipped).
_COMMAND_MODULES = ("store_cli", "connectors_cli", "export_cli")


class UsageError(Exception):
    """Bad arguments or input: printed as one line, exit status 2."""


def _version() -> str:
    try:
        return version("liqscope")
    except PackageNotFoundError:
        return "0+unknown"


def _add_window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", metavar="TIME", help="window start, ISO-8601 UTC (inclusive)")
    p.add_argument("--end", metavar="TIME", help="window end, ISO-8601 UTC (exclusive)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqscope",
        description="Explore crypto prices and futures liquidations per exchange and asset. "
                    "With no command, opens the desktop window.",
        epilog="Run `liqscope COMMAND --help` for a command's options. Times are ISO-8601, UTC; "
               "windows are start <= ts < end.",
    )
    parser.add_argument("--version", action="version", version=f"liqscope {_version()}",
                        help="print the version and exit")
    parser.add_argument("--data-dir", metavar="DIR", help="local store folder (default: per-user data dir; "
                                           f"env {paths.DATA_DIR_ENV})")
    parser.add_argument("--demo", action="store_true", help="use the bundled demo dataset even if the store has data")
    gui = parser.add_argument_group("window options (no command)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="render the main window off screen to a PNG and exit")
    gui.add_argument("--asset", help="asset to show, e.g. BTC")
    gui.add_argument("--exchange", help="exchange for the price pane, e.g. binance")
    gui.add_argument("--size", default="1600x1000", metavar="WxH",
                     help="window size for --screenshot (default 1600x1000)")
    _add_window_args(gui)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    s = sub.add_parser("summary", help="headline liquidation figures for a time window",
                       description="Totals, long/short split, per-exchange and per-asset shares and the "
                                   "largest liquidations of a time window (default: the busiest UTC day).")
    _add_window_args(s)
    s.add_argument("--exchange", action="append", dest="exchanges", metavar="X", help="only this exchange (repeatable)")
    s.add_argument("--asset", action="append", dest="assets", metavar="A", help="only this asset (repeatable)")
    s.add_argument("--side", choices=["long", "short", "both"], default="both",
                   help="liquidated positions to count (default both)")
    s.add_argument("--min-usd", type=float, default=0.0, metavar="USD", help="ignore liquidations smaller than this")
    s.add_argument("--top", type=int, default=10, metavar="N", help="how many of the largest orders to list")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_summary)

    d = sub.add_parser("demo", help="where the bundled demo dataset is; rebuild it",
                       description="The demo dataset is synthetic, generated from a fixed seed and "
                                   "calibrated to the totals reported for 2025-05-09.")
    d.add_argument("--regenerate", action="store_true", help="rebuild the demo Parquet files from the seed")
    d.add_argument("--out", metavar="DIR", help="folder to write to (default: the package's resources/demo)")
    d.set_defaults(func=cmd_demo)

    # Feature modules add their own subcommands: register(subparsers) in each.
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"liqscope.models.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"liqscope.models.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _window(ds, start: str | None, end: str | None):
    try:
        s = parse_time(start) if start else None
        e = parse_time(end) if end else None
    except TimeParseError as exc:
        raise UsageError(str(exc)) from None
    if s is None or e is None:
        day = ds.busiest_day()
        if day is None:
            raise UsageError("the dataset is empty")
        if s is None and e is None:
            s, e = day
        elif s is None:
            s = e - (day[1] - day[0])
        else:
            e = s + (day[1] - day[0])
    if e <= s:
        raise UsageError(f"--end ({e.isoformat()}) must be after --start ({s.isoformat()})")
    return s, e


def _check_names(kind: str, given: list[str] | None, known: list[str], norm) -> list[str] | None:
    if not given:
        return None
    out = []
    for name in given:
        if norm(name) not in known:
            raise UsageError(f"unknown {kind} {name!r} (known: {', '.join(known)})")
        out.append(norm(name))
    return out


def _load(args):
    from .sources import load_dataset
    from .store import StoreError

    try:
        return load_dataset(prefer_demo=getattr(args, "demo", False))
    except StoreError as exc:  # e.g. a store written by a newer Liqscope
        raise UsageError(str(exc)) from None


def cmd_summary(args) -> int:
    ds = _load(args)
    start, end = _window(ds, args.start, args.end)
    exchanges = _check_names("exchange", args.exchanges, ds.exchanges, str.lower)
    assets = _check_names("asset", args.assets, ds.assets, str.upper)
    result = ds.summary(start, end, exchanges=exchanges, assets=assets, side=args.side,
                        min_notional=args.min_usd, largest=args.top)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_summary(result))
    return 0


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


def cmd_gui(args) -> int:
    try:
        from liqscope.gui.app import run
    except ImportError as exc:  # Qt libraries missing on this machine
        raise UsageError(f"cannot start the window: {exc}") from None
    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        paths.set_data_dir(args.data_dir)
    func = getattr(args, "func", None) or cmd_gui
    try:
        return func(args)
    except UsageError as exc:
        print(f"liqscope: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `liqscope summary | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
