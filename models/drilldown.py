"""Figures for the drill-down panels (one exchange, or one asset across exchanges), Qt-free.

Kept out of the GUI so tests and scripts can check a panel's numbers against
the same functions the panel calls, without a window.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .liq_index import LiquidationIndex
from .liquidations import LiquidationModel
from .schema import LONG

BREAKDOWN_COLUMNS = ["total_usd", "long_usd", "short_usd", "count", "share"]


def _breakdown_frame(by: str, names, long_: np.ndarray, short: np.ndarray, count: np.ndarray) -> pd.DataFrame:
    """The breakdown table from per-group sums: groups without events left out, largest first."""
    if not count.sum():
        return pd.DataFrame({by: pd.Series(dtype=str),
                             **{c: pd.Series(dtype="int64" if c == "count" else float) for c in BREAKDOWN_COLUMNS}})
    total = long_ + short
    out = pd.DataFrame({by: np.asarray(names, dtype=object), "total_usd": total, "long_usd": long_,
                        "short_usd": short, "count": count.astype("int64")})
    out = out[out["count"] > 0]
    grand = float(total.sum())
    out["share"] = out["total_usd"] / grand if grand else 0.0
    return out.sort_values("total_usd", ascending=False, kind="stable").reset_index(drop=True)


def breakdown(liq: LiquidationModel, by: str) -> pd.DataFrame:
    """USD and counts per ``by`` group ('asset' or 'exchange'), largest first.

    Columns: the group name, then total_usd, long_usd, short_usd, count and share
    (of the total). Groups with no events are left out, matching ``Totals.by_*``.
    """
    f = liq.frame
    if not len(f):
        return _breakdown_frame(by, [], np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    codes = f[by].cat.codes.to_numpy()
    names = f[by].cat.categories.astype(str)
    n = len(names)
    usd = f["notional_usd"].to_numpy()
    is_long = (f["side"] == LONG).to_numpy()
    long_ = np.bincount(codes[is_long], weights=usd[is_long], minlength=n).astype(float)
    short = np.bincount(codes[~is_long], weights=usd[~is_long], minlength=n).astype(float)
    return _breakdown_frame(by, names, long_, short, np.bincount(codes, minlength=n))


def index_breakdown(index: LiquidationIndex, start, end, by: str, *, exchanges=None, assets=None,
                    side=None) -> pd.DataFrame:
    """:func:`breakdown` of a window through the prefix-sum index: no scan of the events.

    Panels refresh on every zoom and pan; at millions of events a scan costs tens
    of ms, the index a few (tests check both give the same frame).
    """
    names, usd, count = index.group_sums(start, end, by=by, exchanges=exchanges, assets=assets, side=side)
    return _breakdown_frame(by, names, usd[0], usd[1], count)


def basis_bps(closes: dict[str, pd.Series], reference: str) -> dict[str, pd.Series]:
    """Each exchange's close vs the reference exchange's, in basis points, on shared timestamps.

    Overlaid price lines of the same asset sit within a hair of each other; the
    difference is what a user looking for basis wants to read.
    """
    if reference not in closes:
        return {}
    ref = closes[reference]
    out = {}
    for ex, s in closes.items():
        if ex == reference:
            continue
        a, b = s.align(ref, join="inner")
        out[ex] = (a / b - 1.0) * 1e4
    return out
