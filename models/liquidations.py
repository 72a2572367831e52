"""Liquidation events: filtering, time buckets and totals, vectorised.

Window convention everywhere in Liqscope: ``start`` is inclusive, ``end`` is
exclusive (``start <= ts < end``), so adjacent windows never double count.
Aggregation uses ``searchsorted`` on the sorted ``ts`` and ``np.bincount`` over
category codes: no Python loop per event, so millions of rows stay fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

import numpy as np
import pandas as pd

from .timeutil import parse_time
from .schema import LONG, SHORT, SIDES, empty_liquidations, normalize_liquidations, ts_ns


@dataclass(frozen=True)
class Totals:
    """Headline figures for one window (USD notional)."""

    total_usd: float
    long_usd: float
    short_usd: float
    count: int
    by_exchange: dict[str, float] = field(default_factory=dict)
    by_asset: dict[str, float] = field(default_factory=dict)

    @property
    def short_share(self) -> float:
        return self.short_usd / self.total_usd if self.total_usd else 0.0


def _ns(ts) -> int | None:
    return None if ts is None else int(parse_time(ts).as_unit("ns").value)


class LiquidationModel:
    """An immutable, ts-sorted set of liquidation events with fast queries."""

    def __init__(self, frame: pd.DataFrame | None = None, *, _trusted: bool = False):
        if frame is None:
            frame = empty_liquidations()
        self.frame = frame if _trusted else normalize_liquidations(frame)
        self._ts = ts_ns(self.frame["ts"]) if len(self.frame) else np.empty(0, "int64")

    # -- aggregate rows ----------------------------------------------------------
    # A wide view of a large store holds, for whole days, one row per (day, exchange, symbol, side,
    # source) standing for all its events (``count`` of them, ``aggregate`` True, no price or qty)
    # instead of the events themselves (models/window.py). Sums and counts stay exact; such a row is
    # never an order, so it is never among the largest, a marker or a raw export row.
    @property
    def has_aggregates(self) -> bool:
        return AGGREGATE in self.frame.columns

    @cached_property
    def counts(self) -> np.ndarray | None:
        """Events per row (None: one each, the usual case)."""
        return self.frame[COUNT].to_numpy(np.int64) if self.has_aggregates else None

    @cached_property
    def aggregate_mask(self) -> np.ndarray | None:
        return self.frame[AGGREGATE].to_numpy(bool) if self.has_aggregates else None

    def events_only(self) -> "LiquidationModel":
        """The rows that are single events (aggregate rows left out)."""
        if not self.has_aggregates:
            return self
        f = self.frame[~self.aggregate_mask].drop(columns=[COUNT, AGGREGATE]).reset_index(drop=True)
        return LiquidationModel(f, _trusted=True)

    # -- basic facts ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ts_ns(self) -> np.ndarray:
        return self._ts

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """Plain numpy columns for per-frame code paths (pandas indexing costs ~ms per call)."""
        f = self.frame
        return {"ts": self._ts, "price": f["price"].to_numpy(), "qty": f["qty"].to_numpy(),
                "notional_usd": f["notional_usd"].to_numpy(), "side": f["side"].cat.codes.to_numpy()}

    @cached_property
    def exchanges(self) -> list[str]:
        """Exchanges present (cached: the model is immutable)."""
        return sorted(self.frame["exchange"].unique().astype(str)) if len(self) else []

    @cached_property
    def assets(self) -> list[str]:
        return sorted(self.frame["asset"].unique().astype(str)) if len(self) else []

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        if not len(self):
            return None
        return self.frame["ts"].iloc[0], self.frame["ts"].iloc[-1]

    # -- selection -----------------------------------------------------------
    def window(self, start=None, end=None) -> "LiquidationModel":
        """Events with ``start <= ts < end`` (either bound may be None)."""
        lo = 0 if start is None else int(np.searchsorted(self._ts, _ns(start), "left"))
        hi = len(self._ts) if end is None else int(np.searchsorted(self._ts, _ns(end), "left"))
        return LiquidationModel(self.frame.iloc[lo:hi], _trusted=True)

    def filter(
        self,
        start=None,
        end=None,
        *,
        exchanges: Iterable[str] | None = None,
        assets: Iterable[str] | None = None,
        side: str | None = None,
        min_notional: float = 0.0,
    ) -> "LiquidationModel":
        """Window plus filters; ``side`` is 'long', 'short' or None/'both'."""
        sub = self.window(start, end)
        f = sub.frame
        mask = np.ones(len(f), dtype=bool)
        if exchanges is not None:
            mask &= f["exchange"].isin([e.lower() for e in exchanges]).to_numpy()
        if assets is not None:
            mask &= f["asset"].isin([a.upper() for a in assets]).to_numpy()
        if side not in (None, "both"):
            if side not in SIDES:
                raise ValueError(f"side must be long, short or both, not {side!r}")
            mask &= (f["side"] == side).to_numpy()
        if min_notional:
            mask &= f["notional_usd"].to_numpy() >= min_notional
        if mask.all():
            return sub
        return LiquidationModel(f[mask].reset_index(drop=True), _trusted=True)

    # -- aggregation ---------------------------------------------------------
    def totals(self) -> Totals:
        f = self.frame
        notional = f["notional_usd"].to_numpy()
        side_codes = f["side"].cat.codes.to_numpy()
        per_side = np.bincount(side_codes, weights=notional, minlength=2) if len(f) else np.zeros(2)
        return Totals(
            total_usd=float(notional.sum()),
            long_usd=float(per_side[SIDES.index(LONG)]),
            short_usd=float(per_side[SIDES.index(SHORT)]),
            count=len(f) if self.counts is None else int(self.counts.sum()),
            by_exchange=_sum_by(f, "exchange"),
            by_asset=_sum_by(f, "asset"),
        )

    def largest(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` largest single liquidations by notional, largest first (ties: earlier first)."""
        if self.has_aggregates:
            return self.events_only().largest(n)
        k = min(int(n), len(self))
        if k <= 0:  # a negative n must not slice "all but the last" out of argpartition
            return self.frame.iloc[:0].reset_index(drop=True)
        notional = self.frame["notional_usd"].to_numpy()
        kth = np.partition(notional, len(notional) - k)[len(notional) - k]  # k-th largest value
        above = np.flatnonzero(notional > kth)
        ties = np.flatnonzero(notional == kth)[: k - len(above)]  # earliest of the tied values
        idx = np.concatenate([above, ties])
        idx = idx[np.argsort(-notional[idx], kind="stable")]
        return self.frame.iloc[idx].reset_index(drop=True)

    def buckets(self, bucket_seconds: int, start=None, end=None, by: str = "exchange") -> pd.DataFrame:
        """USD per time bucket, split by ``by`` ('exchange' or 'asset') and side.

        Returns a frame indexed by bucket start (UTC) with MultiIndex columns
        ``(side, group)``. Buckets are aligned to multiples of the bucket size
        since the Unix epoch, so 1h buckets start on the hour.
        """
        if int(bucket_seconds) <= 0:
            raise ValueError(f"bucket_seconds must be positive, not {bucket_seconds!r}")
        size = int(bucket_seconds) * 1_000_000_000
        lo = _ns(start) if start is not None else (int(self._ts[0]) if len(self) else 0)
        hi = _ns(end) if end is not None else (int(self._ts[-1]) + 1 if len(self) else 0)
        first = (lo // size) * size
        nb = max(0, -(-(hi - first) // size))
        sub = self.window(pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC")).frame
        groups = list(self.frame[by].cat.categories.astype(str))
        index = pd.DatetimeIndex(first + np.arange(nb, dtype="int64") * size, tz="UTC", name="ts")
        cols = pd.MultiIndex.from_product([list(SIDES), groups], names=["side", by])
        if nb == 0 or not len(sub):
            return pd.DataFrame(0.0, index=index, columns=cols)
        b = (ts_ns(sub["ts"]) - first) // size
        g = sub[by].cat.codes.to_numpy().astype("int64")
        s = sub["side"].cat.codes.to_numpy().astype("int64")
        key = (s * len(groups) + g) * nb + b
        sums = np.bincount(key, weights=sub["notional_usd"].to_numpy(), minlength=2 * len(groups) * nb)
        data = sums.reshape(2 * len(groups), nb).T
        return pd.DataFrame(data, index=index, columns=cols)

    def daily_totals(self) -> pd.Series:
        """USD liquidated per UTC calendar day."""
        if not len(self):
            return pd.Series(dtype=float)
        b = self.buckets(86400)
        return b.sum(axis=1)

    @staticmethod
    def concat(models: Iterable["LiquidationModel"]) -> "LiquidationModel":
        """One model from several (categories unioned on their codes: no per-row strings)."""
        frames = [m.frame for m in models if len(m)]
        if not frames:
            return LiquidationModel()
        return LiquidationModel(_concat_frames(frames), _trusted=False)

    def appended(self, events: pd.DataFrame) -> tuple["LiquidationModel", int, bool]:
        """This model plus the ``events`` it does not hold yet: (model, rows added, kept_positions).

        Live data arrives in small batches at the end of the timeline, so only the
        tail from the batch's first timestamp is checked for duplicates, and when
        nothing lands before the last event the old rows keep their positions
        (which lets indexes extend instead of rebuilding).
        """
        new = LiquidationModel(events).frame
        if not len(new):
            return self, 0, True
        if self.has_aggregates:  # live events are single events
            new = new.assign(**{COUNT: np.ones(len(new), np.int64), AGGREGATE: np.zeros(len(new), bool)})
        if len(self):
            first = ts_ns(new["ts"])[0]
            tail = self.frame.iloc[int(np.searchsorted(self._ts, first, "left")):]
            if len(tail):
                seen = pd.MultiIndex.from_frame(tail[list(DEDUP_KEY)].astype({c: str for c in DEDUP_KEY[1:4]}))
                mine = pd.MultiIndex.from_frame(new[list(DEDUP_KEY)].astype({c: str for c in DEDUP_KEY[1:4]}))
                new = new[~mine.isin(seen)]
            if not len(new):
                return self, 0, True
        frame = _concat_frames([self.frame, new.drop_duplicates(list(DEDUP_KEY))])
        ts = ts_ns(frame["ts"])
        kept = not (len(ts) > 1 and (np.diff(ts) < 0).any())
        if not kept:
            frame = frame.iloc[np.argsort(ts, kind="stable")].reset_index(drop=True)
        return LiquidationModel(frame, _trusted=True), len(frame) - len(self), kept


# Columns of aggregate rows (see LiquidationModel.has_aggregates).
COUNT, AGGREGATE = "count", "aggregate"

# What makes two liquidation rows the same event (the store dedupes on the same key).
DEDUP_KEY = ("ts", "exchange", "symbol", "side", "price", "qty")


def _concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate canonical frames, unioning categoricals (codes are recoded, not stringified)."""
    from pandas.api.types import union_categoricals

    cols = {}
    # columns every frame has: a store frame carries ``source``, a live recorder's events do not
    for col in [c for c in frames[0].columns if all(c in f.columns for f in frames[1:])]:
        parts = [f[col] for f in frames]
        if col == "ts":
            cols[col] = pd.DatetimeIndex(np.concatenate([ts_ns(p) for p in parts]), tz="UTC")
        elif col == "side":  # fixed categories (long, short) everywhere
            cols[col] = pd.Categorical.from_codes(np.concatenate([p.cat.codes.to_numpy() for p in parts]),
                                                  dtype=parts[0].dtype)
        elif isinstance(parts[0].dtype, pd.CategoricalDtype):
            cols[col] = union_categoricals(parts, ignore_order=True)
        else:
            cols[col] = np.concatenate([p.to_numpy() for p in parts])
    return pd.DataFrame(cols)


def _sum_by(f: pd.DataFrame, col: str) -> dict[str, float]:
    if not len(f):
        return {}
    codes = f[col].cat.codes.to_numpy()
    cats = f[col].cat.categories.astype(str)
    sums = np.bincount(codes, weights=f["notional_usd"].to_numpy(), minlength=len(cats))
    pairs = [(cats[i], float(sums[i])) for i in np.argsort(-sums, kind="stable") if sums[i] > 0]
    return dict(pairs)
