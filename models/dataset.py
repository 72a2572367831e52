"""The dataset the GUI and CLI look at: prices plus liquidations plus provenance.

A ``Dataset`` answers "what is in this window" in one place so the headline
strip, the CLI summary and the exports can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .context import Context, read_context_files
from .liq_index import LiquidationIndex
from .liquidations import LiquidationModel
from .paths import demo_dir
from .prices import PriceModel
from .timeutil import format_time

if TYPE_CHECKING:
    from .window import Part

DEMO_LABEL = "Demo data — synthetic, calibrated to figures reported for 2025-05-09"


@dataclass
class Dataset:
    prices: PriceModel = field(default_factory=PriceModel)
    liquidations: LiquidationModel = field(default_factory=LiquidationModel)
    label: str = ""
    is_demo: bool = False
    notes: list[str] = field(default_factory=list)  # one-line remarks on the load (a damaged store file left out)
    damaged: list = field(default_factory=list)     # store files left out (store.DamagedFile), see damaged_in
    # A part of a larger store (models/window.py): what the whole store holds, which part is here,
    # and how to load another part. All None/0 for a dataset that is complete (the demo, a small store).
    part: "Part | None" = None
    context: Context = field(default_factory=Context)  # open interest, funding, outside series (models/context.py)
    _indexes: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def index(self, min_notional: float = 0.0) -> LiquidationIndex:
        """Prefix-sum index for fast window queries, built once per size threshold."""
        key = float(min_notional)
        if key not in self._indexes:
            self._indexes[key] = LiquidationIndex(self.liquidations, key)
        return self._indexes[key]

    def damaged_in(self, start, end, *, exchanges=None, kinds=("liquidations", "candles")) -> list:
        """The damaged store files left out of this dataset that could hold data of ``start <= ts < end``
        (of ``exchanges``, None: any; of ``kinds``): a window needing one must not be shown as complete."""
        names = None if exchanges is None else {str(e).lower() for e in exchanges}
        return [d for d in self.damaged if d.kind in kinds and d.overlaps(start, end)
                and (names is None or d.exchange is None or d.exchange in names)]

    @property
    def resolution_s(self) -> int:
        """Seconds per liquidation row held: 0 for single events, 86400 when whole days are totals."""
        return self.part.resolution_s if self.part is not None else 0

    @property
    def complete(self) -> bool:
        """Holds every row of its data (not a window of a larger store)."""
        return self.part is None

    def serves(self, start, end, liq_filter: dict | None = None) -> bool:
        """Whether figures, bars and orders of ``[start, end)`` (with ``liq_filter``) are exact from what is
        held; when not, the window asks the store for the part that is (``part.windows.load``)."""
        return self.part is None or self.part.serves(start, end, liq_filter or {})

    def for_view(self, view) -> "Dataset":
        """This dataset if it serves ``view`` (a :class:`~liqscope.models.view.View`) exactly, else the part
        of its store that does (read now: for commands and exports, which need the exact view at once)."""
        if self.serves(view.start, view.end, view.liq_filter()):
            return self
        return self.part.windows.load(view.start, view.end, view.liq_filter())

    def events(self, start, end) -> LiquidationModel:
        """The single events of ``[start, end)`` (raw exports): held ones, or read from the store."""
        if self.part is None or self.part.holds_events(start, end):
            return self.liquidations.events_only()
        return self.part.windows.events(start, end)

    def largest(self, start, end, n: int = 10, *, min_notional: float = 0.0, exchanges=None, assets=None,
                side=None) -> pd.DataFrame:
        """The ``n`` largest orders of a window, largest first (ties: earlier first)."""
        filters = {"exchanges": exchanges, "assets": assets, "side": side}
        top = self.index(min_notional).largest(start, end, n, **filters)
        extra = self.part.top_events if self.part is not None else None
        if extra is None or not len(extra):
            return top
        more = extra.filter(start, end, min_notional=min_notional, **filters).frame
        both = pd.concat([top.astype({c: object for c in ("exchange", "symbol", "asset")}),
                          more.astype({c: object for c in ("exchange", "symbol", "asset")})], ignore_index=True)
        keys = ["ts", "exchange", "symbol", "side", "price", "qty"]
        both = both.drop_duplicates(keys).sort_values(["notional_usd", "ts"], ascending=[False, True], kind="stable")
        return both.head(n).reset_index(drop=True)

    def append_liquidations(self, events: pd.DataFrame) -> int:
        """Merge new (live) events; returns how many were new.

        Cheap when events only append (the live case): no re-sort of what is
        held, and the cached indexes extend instead of rebuilding.
        """
        if events is None or not len(events):
            return 0
        old = self.liquidations
        merged, added, kept_positions = old.appended(events)
        if not added:
            return 0
        self.liquidations = merged
        if kept_positions:
            self._indexes = {k: idx.extended(merged, len(old)) for k, idx in self._indexes.items()}
        else:
            self._indexes.clear()
        return added

    @property
    def assets(self) -> list[str]:
        whole = set(self.part.assets) if self.part is not None else set()
        return sorted(whole | set(self.prices.assets) | set(self.liquidations.assets))

    @property
    def exchanges(self) -> list[str]:
        whole = set(self.part.exchanges) if self.part is not None else set()
        return sorted(whole | {k.exchange for k in self.prices.keys()} | set(self.liquidations.exchanges))

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last time of the data (of the whole store, for a part of one)."""
        ranges = [r for r in (self.prices.time_range(), self.liquidations.time_range()) if r]
        if self.part is not None and self.part.extent is not None:
            ranges.append(self.part.extent)
        if not ranges:
            return None
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def busiest_day(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The UTC calendar day with the most liquidated USD (the default window)."""
        daily = self.part.daily if self.part is not None else self.liquidations.daily_totals()
        return busiest_day(daily, self.time_range)

    def view_summary(self, view, largest: int = 10) -> dict:
        """The figures of a :class:`~liqscope.models.view.View` (its window, and the liquidations it shows)."""
        return self.summary(view.start, view.end, **view.liq_filter(), largest=largest)

    def summary(self, start, end, *, exchanges=None, assets=None, side=None,
                min_notional: float = 0.0, largest: int = 10) -> dict:
        """The figures shown in the headline strip and ``liqscope summary --json``."""
        idx = self.index(min_notional)
        filters = {"exchanges": exchanges, "assets": assets, "side": side}
        t = idx.totals(start, end, **filters)
        top = self.largest(start, end, largest, min_notional=min_notional, **filters)
        return {
            "source": self.label,
            "start": format_time(start),
            "end": format_time(end),
            "total_usd": t.total_usd,
            "long_usd": t.long_usd,
            "short_usd": t.short_usd,
            "short_share": t.short_share,
            "count": t.count,
            "by_exchange": t.by_exchange,
            "by_asset": t.by_asset,
            "largest": [
                {
                    "ts": format_time(r.ts),
                    "exchange": str(r.exchange),
                    "symbol": str(r.symbol),
                    "side": str(r.side),
                    "price": float(r.price),
                    "qty": float(r.qty),
                    "notional_usd": float(r.notional_usd),
                }
                for r in top.itertuples(index=False)
            ],
        }


def busiest_day(daily: pd.Series, time_range) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The day of ``daily`` (USD per UTC day) with the most USD; with none, the last day of ``time_range()``."""
    if daily.empty:
        r = time_range()
        if r is None:
            return None
        day = r[1].floor("D")
    else:
        day = daily.idxmax()
    return day, day + pd.Timedelta(days=1)


def load_parquet_dataset(folder: Path, label: str, is_demo: bool = False) -> Dataset:
    candles = pd.read_parquet(folder / "candles.parquet")
    liqs = pd.read_parquet(folder / "liquidations.parquet")
    return Dataset(PriceModel.from_long(candles), LiquidationModel(liqs), label=label, is_demo=is_demo,
                   context=read_context_files(folder))


def load_demo() -> Dataset:
    return load_parquet_dataset(demo_dir(), DEMO_LABEL, is_demo=True)
