"""``liqscope cascades``: liquidation cascades ranked by size (models/cascades.py)."""
from __future__ import annotations

import json
import sys

from .cli import UsageError, finite_only, non_negative_float, non_negative_int
from .format import number, usd
from .timeutil import format_time

DEFAULT_LIMIT = 20


def register(sub) -> None:
    from .cli import add_window_args

    p = sub.add_parser(
        "cascades", help="liquidation cascades: bursts well above each asset's own baseline, largest first",
        description="Find liquidation cascades (bursts of liquidations across exchanges well above each asset's "
                    "own recent per-minute baseline) and list them ranked by total USD: window, assets, long/short "
                    "split, USD per exchange, which exchange went first, price move, peak minute, events. "
                    "--start/--end keep cascades starting in the window (the baseline still uses the days before).")
    add_window_args(p)
    p.add_argument("--asset", action="append", dest="assets", metavar="A", help="only this asset (repeatable)")
    p.add_argument("--min-usd", type=non_negative_float, default=0.0, metavar="USD",
                   help="only cascades of at least this total")
    p.add_argument("--limit", type=non_negative_int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"how many to list (default {DEFAULT_LIMIT}; 0: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object per line (JSON lines)")
    p.set_defaults(func=cmd_cascades)


def _source(args):
    """The store (all history, never loaded whole) when it has data and --demo is not given, else the dataset."""
    from .cli import load
    from .store import StoreError, open_store

    if not getattr(args, "demo", False):
        try:
            store = open_store()
            if store.has_data():
                return store
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    return load(args)


def cmd_cascades(args) -> int:
    from .cascade_search import find_cascades
    from .store import StoreError
    from .view import requested_window

    start, end = requested_window(args.start, args.end)
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--end {format_time(end)} is not after --start {format_time(start)}")
    source = _source(args)
    try:
        found = find_cascades(source, start=start, end=end, assets=args.assets, min_usd=args.min_usd,
                              limit=args.limit or None)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        for c in found:
            clean, _ = finite_only(c.to_dict())
            print(json.dumps(clean, allow_nan=False))
    else:
        print(format_table(found))
    if not found:
        print("liqscope: note: no cascades found" + (" in this window" if start or end else ""), file=sys.stderr)
    for note in source.notes:  # read after the search: a store notes what it read
        print(f"liqscope: note: {note}", file=sys.stderr)
    return 0


def format_table(found) -> str:
    head = (f"{'#':>3} {'start (UTC)':<17} {'min':>4} {'assets':<18} {'total':>9} {'shorts':>7} {'events':>7} "
            f"{'leader':<14} {'price move (main venue)':<40}")
    lines = [head]
    for i, c in enumerate(found, 1):
        assets = ",".join(c.assets)
        if len(assets) > 18:
            assets = assets[:17] + "…"
        lead = f"{c.leader} +{c.lead_s:.0f}s" if c.leader and c.lead_s is not None else (c.leader or "-")
        move = "-"
        if c.price is not None:
            p = c.price
            move = (f"{p.asset}@{p.exchange} {number(p.open, 6)}→{number(p.extreme, 6)}→{number(p.close, 6)} "
                    f"({p.close_pct:+.2%})")
        lines.append(f"{i:>3} {c.start.strftime('%Y-%m-%d %H:%M'):<17} "
                     f"{c.duration_s / 60:>4.0f} {assets:<18} {usd(c.total_usd):>9} {c.short_share:>7.0%} "
                     f"{c.count:>7,} {lead:<14} {move:<40}")
    return "\n".join(lines)
