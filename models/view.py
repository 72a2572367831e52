"""The one Qt-free description of a view, and its validation against a dataset.

The window, every drill-down panel, the headless export, ``--screenshot`` and
``liqscope summary`` all describe what they show as a :class:`View`, and ask
it which liquidations that is (:meth:`View.liq_filter`). Validation lives here
too, in two flavours:

* :func:`check_view` — strict, for a view somebody asked for (command line,
  dialogs): an unknown asset or exchange is a :class:`ViewError` naming the
  known ones. Windows are honoured exactly; an empty window is a valid view.
* :func:`fit_view` — lenient, for views the app carries over (saved settings,
  a dataset swap, picking an asset): whatever does not exist in the dataset
  falls back to a sensible default, so the state never holds an impossible
  combination (e.g. an exchange that does not list the asset).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Iterable

import pandas as pd

from .errors import UserError
from .timeutil import BUCKETS, TimeParseError, format_time, parse_time

if TYPE_CHECKING:
    from .dataset import Dataset

SIDE_CHOICES = ("both", "long", "short")
SCOPES = ("all", "asset")
THEME_NAMES = ("dark", "light")
PRICE_STYLES = ("candles", "line")
DEFAULT_ASSET = "BTC"
DEFAULT_EXCHANGE = "binance"


class ViewError(UserError, ValueError):
    """A requested view names something the dataset does not have, or is inconsistent; one line."""


@dataclass(frozen=True)
class View:
    start: pd.Timestamp | None = None      # visible window, UTC, start inclusive
    end: pd.Timestamp | None = None        # end exclusive
    asset: str = DEFAULT_ASSET
    exchange: str = DEFAULT_EXCHANGE       # price source for the price pane
    exchanges: frozenset[str] | None = None  # liquidation filter; None = all
    side: str = "both"                     # long | short | both
    min_usd: float = 0.0
    bucket: int | None = None              # seconds; None = follow zoom
    liq_scope: str = "all"                 # all assets, or only the selected asset
    stacked: bool = False                  # False: longs below zero, shorts above
    theme: str = "dark"
    price_style: str = "candles"           # candles | line
    log_scale: bool = False
    markers: bool = True
    utc: bool = True
    extra: dict = field(default_factory=dict, compare=False)

    # -- which liquidations this view shows (the one place that says it) ------
    def liq_filter(self) -> dict:
        """Keyword arguments for ``LiquidationIndex``/``LiquidationModel`` queries matching this view."""
        return {
            "exchanges": sorted(self.exchanges) if self.exchanges is not None else None,
            "assets": [self.asset] if self.liq_scope == "asset" else None,
            "side": self.side,
            "min_notional": self.min_usd,
        }

    def for_exchange(self, exchange: str) -> "View":
        """The view of a per-exchange panel: that exchange's liquidations of every asset."""
        return replace(self, exchanges=frozenset({exchange.lower()}), liq_scope="all")

    def for_asset(self, asset: str) -> "View":
        """The view of a per-asset panel (and the price markers): that asset on the view's exchanges."""
        return replace(self, asset=asset.upper(), liq_scope="asset")

    @property
    def has_window(self) -> bool:
        return self.start is not None and self.end is not None

    def window_text(self) -> str:
        if not self.has_window:
            return "no window"
        return f"{format_time(self.start, 'minute')} → {format_time(self.end, 'minute')} UTC"


FIELDS = tuple(f.name for f in fields(View) if f.name != "extra")


# -- validation -----------------------------------------------------------------
def price_exchanges(dataset: "Dataset", asset: str) -> list[str]:
    return dataset.prices.exchanges_for(asset)


def default_exchange(dataset: "Dataset", asset: str, preferred: str | None = None) -> str:
    """The price source for ``asset``: ``preferred`` if it lists it, else Binance, else the first."""
    listed = price_exchanges(dataset, asset)
    for choice in (preferred, DEFAULT_EXCHANGE):
        if choice in listed:
            return choice
    if listed:
        return listed[0]
    return preferred or DEFAULT_EXCHANGE  # no candles for the asset: the price pane says so


def default_window(dataset: "Dataset") -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    return dataset.busiest_day() or (None, None)


def _complete_window(dataset: "Dataset", start, end):
    """Both ends given: as is. One given: a day's span from it. None: the busiest day."""
    if start is not None and end is not None:
        return start, end
    day = dataset.busiest_day()
    span = (day[1] - day[0]) if day else pd.Timedelta(days=1)
    if start is None and end is None:
        return day or (None, None)
    if start is None:
        return end - span, end
    return start, start + span


def _names(kind: str, given: Iterable[str], known: list[str], norm) -> list[str]:
    out = []
    for name in given:
        if norm(name) not in known:
            listed = ", ".join(known) if known else "none in this dataset"
            raise ViewError(f"unknown {kind} {name!r} (known: {listed})")
        out.append(norm(name))
    return out


def check_view(dataset: "Dataset", view: View, *, asset_given: bool = True,
               exchange_given: bool = False) -> View:
    """A requested view, checked strictly: names must exist, values must make sense; window kept exactly.

    ``asset_given``/``exchange_given`` say whether the caller named them (an
    exchange left to its default is chosen, not checked).
    """
    asset = view.asset.upper()
    if asset_given:
        _names("asset", [asset], dataset.assets, str.upper)
    elif asset not in dataset.assets and dataset.assets:
        asset = DEFAULT_ASSET if DEFAULT_ASSET in dataset.assets else dataset.assets[0]
    exchange = view.exchange.lower()
    listed = price_exchanges(dataset, asset)
    if exchange_given:
        if listed and exchange not in listed:
            raise ViewError(f"no {asset} candles from {view.exchange!r} (known: {', '.join(listed)})")
        if not listed:
            _names("exchange", [exchange], dataset.exchanges, str.lower)
    else:
        exchange = default_exchange(dataset, asset, exchange)
    exchanges = view.exchanges
    if exchanges is not None:
        exchanges = frozenset(_names("exchange", sorted(exchanges), dataset.exchanges, str.lower))
    start, end = _complete_window(dataset, view.start, view.end)
    if start is not None and end is not None and end <= start:
        raise ViewError(f"--end ({format_time(end)}) must be after --start ({format_time(start)})")
    _check_values(view)
    return replace(view, asset=asset, exchange=exchange, exchanges=exchanges, start=start, end=end)


def _check_values(view: View) -> None:
    if view.side not in SIDE_CHOICES:
        raise ViewError(f"invalid side {view.side!r} (choose {', '.join(SIDE_CHOICES)})")
    if not (math.isfinite(view.min_usd) and view.min_usd >= 0):
        raise ViewError(f"invalid minimum size {view.min_usd!r}: must be a number >= 0")
    if view.bucket is not None and view.bucket not in BUCKETS.values():
        raise ViewError(f"invalid bucket {view.bucket!r} s (choose {', '.join(BUCKETS)})")
    if view.liq_scope not in SCOPES:
        raise ViewError(f"invalid scope {view.liq_scope!r} (choose {', '.join(SCOPES)})")
    if view.theme not in THEME_NAMES:
        raise ViewError(f"invalid theme {view.theme!r} (choose {', '.join(THEME_NAMES)})")
    if view.price_style not in PRICE_STYLES:
        raise ViewError(f"invalid price style {view.price_style!r}")


def fit_view(dataset: "Dataset", view: View, *, keep_window: bool = True) -> View:
    """A carried-over view made valid for ``dataset``: unknown names fall back to defaults.

    ``keep_window=False`` also replaces a window that does not touch the data
    (saved settings from another dataset) with the busiest day; a window the
    user is looking at is kept as is, even if empty.
    """
    assets = dataset.assets
    asset = view.asset if view.asset in assets or not assets else (
        DEFAULT_ASSET if DEFAULT_ASSET in assets else assets[0])
    exchange = default_exchange(dataset, asset, view.exchange)
    exchanges = view.exchanges
    if exchanges is not None:
        exchanges = frozenset(e for e in exchanges if e in dataset.exchanges) or None
    start, end = view.start, view.end
    r = dataset.time_range()
    outside = r is not None and start is not None and end is not None and (end < r[0] or start > r[1])
    if start is None or end is None or end <= start or (outside and not keep_window):
        start, end = default_window(dataset)
    defaults = View()
    safe = {
        "side": view.side if view.side in SIDE_CHOICES else defaults.side,
        "min_usd": view.min_usd if isinstance(view.min_usd, (int, float)) and math.isfinite(view.min_usd)
        and view.min_usd >= 0 else 0.0,
        "bucket": view.bucket if view.bucket is None or view.bucket in BUCKETS.values() else None,
        "liq_scope": view.liq_scope if view.liq_scope in SCOPES else defaults.liq_scope,
        "theme": view.theme if view.theme in THEME_NAMES else defaults.theme,
        "price_style": view.price_style if view.price_style in PRICE_STYLES else defaults.price_style,
    }
    return replace(view, asset=asset, exchange=exchange, exchanges=exchanges, start=start, end=end, **safe)


def requested_window(start: str | None, end: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``--start``/``--end`` text as UTC timestamps (either may be missing); ViewError if unparseable."""
    try:
        return (parse_time(start) if start else None, parse_time(end) if end else None)
    except TimeParseError as exc:
        raise ViewError(str(exc)) from None
