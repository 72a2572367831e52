"""Context in the commands (Qt-free): ``liqscope export --what oi|funding|series:NAME`` and the
``oi_change_pct`` / ``funding_mean`` fields of ``liqscope summary``.

Exports write exactly the window ``start <= ts < end`` (default: the busiest day, as every export) with
the CSV conventions of :mod:`.export` (one header row, ISO-8601 UTC times with milliseconds, plain
numbers; a window without rows gives the header alone and a note on stderr):

* ``oi``: ``ts, exchange, symbol, asset, period, oi_base, oi_usd, source``;
* ``funding``: ``ts, exchange, symbol, asset, rate, interval_hours, per_8h, annualised, source``;
* ``series:NAME``: ``ts, name, value, unit, source``.

``--asset`` and ``--exchange`` filter the open interest and funding rows (default: every asset and
exchange); they do not apply to outside series.

Summary fields (:func:`summary_fields`), for the summary's asset scope: the one ``--asset`` given,
else (all assets) the view's asset -- BTC when the data has it, else its first asset, as the window's
default -- with the ``--exchange`` filter; ``context_asset`` names it. Several ``--asset``: no single
asset, both fields null. ``oi_change_pct`` is :meth:`Context.oi_change_pct` (percent, first vs last
snapshot over the exchanges reporting at both), ``funding_mean`` :meth:`Context.funding_mean`
(time-weighted, a fraction per 8 hours); null when the window holds no such data.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from .context import OI_COLUMNS, Context
from .errors import UserError
from .timeutil import format_time

CONTEXT_WHATS = ("oi", "funding")


class ContextCommandError(UserError):
    """Bad arguments or input of a context command: one line, exit status 2 (as ``ContextCommandError``)."""

SERIES_PREFIX = "series:"
FUNDING_EXPORT_COLUMNS = ["ts", "exchange", "symbol", "asset", "rate", "interval_hours", "per_8h", "annualised",
                          "source"]
SERIES_EXPORT_COLUMNS = ["ts", "name", "value", "unit", "source"]


def is_context_what(what: str | None) -> bool:
    return bool(what) and (what in CONTEXT_WHATS or what.startswith(SERIES_PREFIX))


def what_type(chart_whats):
    """An argparse ``type`` for ``--what``: the chart exports (``chart_whats``), ``oi``, ``funding`` or
    ``series:NAME``."""
    def check(text: str) -> str:
        if text in chart_whats or text in CONTEXT_WHATS or (text.startswith(SERIES_PREFIX) and text[len(SERIES_PREFIX):]):
            return text
        raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose {', '.join(chart_whats)}, oi, funding "
                                         f"or series:NAME)")
    check.__name__ = "what"
    return check


# -- frames ------------------------------------------------------------------------------
def context_frame(ctx: Context, what: str, start, end, *, asset: str | None = None,
                  exchanges=None) -> pd.DataFrame:
    """The rows of ``what`` with ``start <= ts < end``, in the export's columns."""
    if what == "oi":
        return ctx.oi(start, end, exchanges=exchanges, asset=asset)[OI_COLUMNS]
    if what == "funding":
        return ctx.funding(start, end, exchanges=exchanges, asset=asset)[FUNDING_EXPORT_COLUMNS]
    name = what[len(SERIES_PREFIX):]
    df = ctx.outside(name, start, end)
    return df.assign(name=name)[SERIES_EXPORT_COLUMNS]


def _label(what: str) -> str:
    return {"oi": "open interest", "funding": "funding"}.get(what, f"series {what[len(SERIES_PREFIX):]}")


def _context_source(args):
    """The store when it has data (or context), else None (the demo or an empty dataset)."""
    from .store import StoreError, open_store
    from .store.context_tables import KINDS

    if getattr(args, "demo", False):
        return None
    try:
        store = open_store()
        if store.schema_version is not None and (store.has_data() or any(store._files(k) for k in KINDS)):
            return store
    except StoreError as exc:
        raise ContextCommandError(str(exc)) from None
    return None


def _dataset(args, store):
    """What the default window is picked from: the store's overview, else the demo (``--demo`` or no data)."""
    from .sources import load_dataset
    from .store.figures import Overview

    if store is not None and store.has_data():
        return Overview(store)
    return load_dataset(prefer_demo=True) if getattr(args, "demo", False) or store is None else load_dataset()


def cmd_export_context(args) -> int:
    """``liqscope export --what oi|funding|series:NAME --csv FILE`` (no renderer, no Qt)."""
    from .export import ExportError, check_writable, write_csv
    from .view import View, ViewError, check_view, requested_window

    if args.png:
        raise ContextCommandError(f"--what {args.what} writes a CSV only: export the PNG with another command")
    if not args.csv:
        raise ContextCommandError(f"nothing to export: give --csv FILE (--what {args.what} is a CSV)")
    start, end = requested_window(args.start, args.end)
    store = _context_source(args)
    ds = None
    if start is None or end is None:  # the default window, as every export: the busiest day
        ds = _dataset(args, store)
        try:
            view = check_view(ds, View(start=start, end=end), asset_given=False)
        except ViewError as exc:
            raise ContextCommandError(str(exc)) from None
        start, end = view.start, view.end
        if start is None:
            raise ContextCommandError("the dataset is empty: give --start and --end")
    if end <= start:
        raise ContextCommandError(f"--end ({format_time(end)}) must be after --start ({format_time(start)})")
    whole = store.context() if store is not None else (ds if ds is not None else _dataset(args, None)).context
    asset = args.asset.upper() if args.asset else None
    exchanges = [args.exchange.lower()] if args.exchange else None
    if args.what in CONTEXT_WHATS:
        frame = whole.oi_frame if args.what == "oi" else whole.funding_frame
        if asset is not None and asset not in set(frame["asset"]):
            raise ContextCommandError(f"unknown asset {args.asset!r} for {_label(args.what)} "
                                 f"(known: {', '.join(sorted(set(frame['asset']))) or 'none in this dataset'})")
        if exchanges is not None and exchanges[0] not in set(frame["exchange"]):
            raise ContextCommandError(f"unknown exchange {args.exchange!r} for {_label(args.what)} "
                                 f"(known: {', '.join(sorted(set(frame['exchange']))) or 'none in this dataset'})")
    else:
        name = args.what[len(SERIES_PREFIX):]
        if name not in whole.names():
            raise ContextCommandError(f"unknown series {name!r} (known: {', '.join(whole.names()) or 'none in this dataset'})")
    frame = context_frame(whole, args.what, start, end, asset=asset, exchanges=exchanges)
    try:
        check_writable(args.csv)
        rows = write_csv(frame, args.csv)
    except ExportError as exc:
        raise ContextCommandError(str(exc)) from None
    print(f"wrote {args.csv} ({rows:,} rows of {_label(args.what)})")
    if not rows:
        full = context_frame(whole, args.what, None, None, asset=asset, exchanges=exchanges)
        covers = (f"the data covers {format_time(full['ts'].iloc[0], 'minute')} → "
                  f"{format_time(full['ts'].iloc[-1], 'minute')} UTC" if len(full) else "the dataset holds none")
        print(f"liqscope: note: no {_label(args.what)} from {format_time(start)} to {format_time(end)} ({covers})",
              file=sys.stderr)
    return 0


# -- summary -------------------------------------------------------------------------------
def summary_asset(assets: list[str] | None, view_asset: str | None) -> str | None:
    """The asset the summary's context figures are for (module doc)."""
    if assets:
        return assets[0].upper() if len(assets) == 1 else None
    return view_asset.upper() if view_asset else None


def summary_context(ds, start, end) -> Context:
    """The context of a summary's window: from the store behind an overview, else the dataset's."""
    store = getattr(ds, "store", None)
    if store is not None:
        return store.context(start, end)
    return getattr(ds, "context", None) or Context()


def summary_fields(ds, start, end, *, assets=None, exchanges=None, view_asset: str | None = "BTC") -> dict:
    """``context_asset``, ``oi_change_pct`` and ``funding_mean`` of a summary window (module doc)."""
    asset = summary_asset(assets, view_asset)
    out = {"context_asset": asset, "oi_change_pct": None, "funding_mean": None}
    if asset is None:
        return out
    ctx = summary_context(ds, start, end)
    out["oi_change_pct"] = ctx.oi_change_pct(start, end, asset, exchanges)
    out["funding_mean"] = ctx.funding_mean(start, end, asset, exchanges)
    return out


def summary_lines(fields: dict) -> list[str]:
    """Text lines for ``liqscope summary`` (none when neither figure exists)."""
    if fields["oi_change_pct"] is None and fields["funding_mean"] is None:
        return []
    oi = "n/a" if fields["oi_change_pct"] is None else f"{fields['oi_change_pct']:+.2f}%"
    fm = fields["funding_mean"]
    funding = "n/a" if fm is None else f"{fm * 100:+.4f}% per 8h ({fm * 3 * 365 * 100:+.1f}% annualised)"
    return ["", f"Context ({fields['context_asset']}): open interest {oi} over the window; mean funding {funding}"]
