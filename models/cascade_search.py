"""Finding cascades in what the user has: a dataset in memory (the demo, a window) or a store (all history).

The one entry point of the CLI, the Events panel and scripts: detection (:mod:`.cascades`) over the source's
per-minute table, then the details of the cascades listed from their events.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from .cascades import Cascade, Params, add_details, detect, minutes_from_frame
from .cascades_store import store_details, store_minutes
from .timeutil import parse_time


def find_cascades(source, *, start=None, end=None, assets: Sequence[str] | None = None, min_usd: float = 0.0,
                  limit: int | None = None, params: Params = Params(), details: bool = True) -> list[Cascade]:
    """Cascades of a :class:`~liqscope.models.dataset.Dataset` or a :class:`~liqscope.models.store.Store`,
    largest first: those starting in ``[start, end)`` (None: all history; the baseline always uses the
    history before ``start`` as well), of ``assets`` only (None: all), at least ``min_usd`` in total,
    at most ``limit`` (None or 0: all). ``details``: also the split, exchanges, onsets and price move
    (reads the events of each cascade listed)."""
    assets = None if not assets else [str(a).upper() for a in assets]
    if _is_store(source):
        # read past ``end``: a day's baseline uses the whole day, and a cascade starting before ``end`` may
        # run past it -- the same cascade whatever window asks for it
        read_end = None if end is None else parse_time(end).ceil("D") + pd.Timedelta(days=1)
        mins = store_minutes(source, end=read_end, assets=assets, warmup_from=start, params=params)
    else:
        mins = minutes_from_frame(source.liquidations.frame, assets)
    found = detect(mins, params, start=start, end=end, limit=limit or None, min_usd=min_usd)
    if details and found:
        if _is_store(source):
            store_details(source, found, params)
        else:
            _dataset_details(source, found, params)
        found = [c for c in found if c.total_usd >= min_usd]
        found.sort(key=lambda c: (-c.total_usd, c.start))
    return found


def _is_store(source) -> bool:
    return hasattr(source, "_liq_read") and hasattr(source, "_files")


def _dataset_details(ds, found: list[Cascade], params: Params) -> None:
    liq = ds.liquidations.events_only() if ds.liquidations.has_aggregates else ds.liquidations

    def candles(asset, exchange, s, e):
        ex = exchange or next(iter(ds.prices.exchanges_for(asset)), None)
        key = ds.prices.find(asset, ex) if ex else None
        if key is None:
            return None
        return key.exchange, ds.prices.candles(key, s, e)
    for c in found:
        f = liq.window(c.start, c.end).frame
        f = f[f["asset"].astype(str).isin(c.assets)]
        add_details(c, f, candles, params)
