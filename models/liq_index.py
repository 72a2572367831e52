"""Prefix-sum index over liquidations, for per-frame queries on millions of events.

Events are regrouped into cells, one per (exchange, asset, side), each sorted by
time, with a running sum of notional that restarts at every cell. The USD in any
window for any cell is then two binary searches and a subtraction, so headline
totals and re-binned bars cost O(cells × log n) instead of a scan per frame.
Restarting per cell keeps the cells independent: one running sum over all cells
concatenated let a huge value in one cell cancel every later cell's figures to
0.0 in floating point (the subtraction of two huge, nearly equal sums). A NaN or
infinite notional (which the store refuses now, but an older store may hold) is
kept out of the sums and counted instead, so only windows that hold it show it
(inf or NaN); every other window of its cell stays exact.
Block maxima answer "largest order in this window" without a scan either.
Results equal ``LiquidationModel.filter(...).totals()`` (tests check it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from .liquidations import LiquidationModel, Totals, _ns
from .schema import SIDES

BLOCK = 512  # events per block for range-maximum queries


class LiquidationIndex:
    def __init__(self, model: LiquidationModel, min_notional: float = 0.0):
        f = model.frame
        self.model = model
        self.min_notional = float(min_notional)
        self.exchanges = list(f["exchange"].cat.categories.astype(str))
        self.assets = list(f["asset"].cat.categories.astype(str))
        n_ex, n_as = max(len(self.exchanges), 1), max(len(self.assets), 1)
        self.n_cells = n_ex * n_as * 2
        notional = f["notional_usd"].to_numpy()
        rows = np.arange(len(f), dtype=np.int64)
        cell = ((f["exchange"].cat.codes.to_numpy().astype(np.int64) * n_as
                 + f["asset"].cat.codes.to_numpy()) * 2 + f["side"].cat.codes.to_numpy())
        ts = model.ts_ns
        if min_notional > 0:
            keep = notional >= min_notional
            rows, cell, ts, notional = rows[keep], cell[keep], ts[keep], notional[keep]
        order = np.argsort(cell, kind="stable")  # stable: time order kept inside each cell
        self.rows = rows[order]
        self.ts = ts[order]
        self.notional = notional[order]
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=self.n_cells))])
        self.cum, self.n_inf, self.n_nan = _cell_prefix_sums(self.notional, self.offsets)
        self._weigh(model)
        self.cell_exchange = np.repeat(np.arange(n_ex), n_as * 2)
        self.cell_asset = np.tile(np.repeat(np.arange(n_as), 2), n_ex)
        self.cell_side = np.tile(np.arange(2), n_ex * n_as)

    def extended(self, model: LiquidationModel, n_old: int) -> "LiquidationIndex":
        """The index of ``model``, whose first ``n_old`` rows are this index's model unchanged.

        Live batches only append: each new event goes at the end of its cell, so
        the arrays grow by one ``np.insert`` and the running sums are recomputed,
        instead of re-sorting millions of events per batch. Falls back to a full
        build when the batch brings an exchange or asset the index has no cell for.
        """
        f = model.frame
        same = (list(f["exchange"].cat.categories.astype(str)) == self.exchanges
                and list(f["asset"].cat.categories.astype(str)) == self.assets)
        if not same or n_old != len(self.model) or model.has_aggregates:
            return LiquidationIndex(model, self.min_notional)
        out = object.__new__(LiquidationIndex)
        out.__dict__.update(self.__dict__)
        out.model = model
        n_as = max(len(self.assets), 1)
        new = f.iloc[n_old:]
        notional = new["notional_usd"].to_numpy()
        rows = np.arange(n_old, len(f), dtype=np.int64)
        cell = ((new["exchange"].cat.codes.to_numpy().astype(np.int64) * n_as
                 + new["asset"].cat.codes.to_numpy()) * 2 + new["side"].cat.codes.to_numpy())
        ts = model.ts_ns[n_old:]
        if self.min_notional > 0:
            keep = notional >= self.min_notional
            rows, cell, ts, notional = rows[keep], cell[keep], ts[keep], notional[keep]
        order = np.argsort(cell, kind="stable")
        rows, cell, ts, notional = rows[order], cell[order], ts[order], notional[order]
        at = self.offsets[cell + 1]  # end of each event's cell: appended events are the newest in it
        out.rows = np.insert(self.rows, at, rows)
        out.ts = np.insert(self.ts, at, ts)
        out.notional = np.insert(self.notional, at, notional)
        out.offsets = self.offsets + np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=self.n_cells))])
        out.cum, out.n_inf, out.n_nan = _cell_prefix_sums(out.notional, out.offsets)
        out._weigh(model)
        return out

    def _weigh(self, model: LiquidationModel) -> None:
        """Event counts and order ranking: aggregate rows count their events and are never orders."""
        counts, agg = model.counts, model.aggregate_mask
        self.ccum = None if counts is None else _per_cell(counts[self.rows], self.offsets, np.int64)
        # what "largest" ranks: the notional, with aggregate rows below every order
        self.rank = self.notional if agg is None else np.where(agg[self.rows], -np.inf, self.notional)
        n = len(self.rank)
        self.block_max = np.maximum.reduceat(self.rank, np.arange(0, n, BLOCK)) if n else np.empty(0)
        # Window bounds for every cell in one search: cells are laid out one after another, each sorted by
        # time, so ``cell * span + (ts - t0)`` is sorted over the whole array. Used when it fits in int64
        # (a part of a store, or years at a few hundred cells); else a search per cell.
        self.keys = None
        if n:
            self.t0 = int(self.ts.min())
            self.span = int(self.ts.max()) - self.t0 + 1
            if self.n_cells * self.span < 2 ** 62:
                cell_of = np.repeat(np.arange(self.n_cells, dtype=np.int64), np.diff(self.offsets))
                self.keys = cell_of * self.span + (self.ts - self.t0)

    def _key_bound(self, cells: np.ndarray, t_ns: int | None, which: str) -> np.ndarray:
        """For each cell, the first position with ts >= ``t_ns`` (None: the cell's start or end)."""
        if t_ns is None:
            return self.offsets[cells + (1 if which == "end" else 0)].astype(np.int64)
        rel = min(max(int(t_ns) - self.t0, 0), self.span)  # clipped: a key never reaches the next cell's
        return np.searchsorted(self.keys, cells.astype(np.int64) * self.span + rel, "left")

    def _count(self, cells: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Events in positions [a, b) of each cell (aggregate rows count theirs)."""
        if self.ccum is None:
            return b - a
        return self.ccum[b + cells] - self.ccum[a + cells]

    # -- selection ------------------------------------------------------------
    def cells(self, exchanges: Iterable[str] | None = None, assets: Iterable[str] | None = None,
              side: str | None = None) -> np.ndarray:
        """Cell ids matching the filters (unknown names simply match nothing)."""
        mask = np.ones(self.n_cells, dtype=bool)
        if exchanges is not None:
            wanted = {e.lower() for e in exchanges}
            mask &= np.isin(self.cell_exchange, [i for i, e in enumerate(self.exchanges) if e in wanted])
        if assets is not None:
            wanted = {a.upper() for a in assets}
            mask &= np.isin(self.cell_asset, [i for i, a in enumerate(self.assets) if a in wanted])
        if side not in (None, "both"):
            mask &= self.cell_side == SIDES.index(side)
        return np.flatnonzero(mask & (np.diff(self.offsets) > 0))

    def _bounds(self, cells: np.ndarray, start_ns: int | None, end_ns: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Positions [a, b) of each cell's events with start <= ts < end."""
        if self.keys is not None:  # one vectorised search over all cells (see _weigh)
            return self._key_bound(cells, start_ns, "start"), self._key_bound(cells, end_ns, "end")
        a = np.empty(len(cells), dtype=np.int64)
        b = np.empty(len(cells), dtype=np.int64)
        for i, c in enumerate(cells):
            lo, hi = self.offsets[c], self.offsets[c + 1]
            seg = self.ts[lo:hi]
            a[i] = lo + (0 if start_ns is None else np.searchsorted(seg, start_ns, "left"))
            b[i] = lo + (hi - lo if end_ns is None else np.searchsorted(seg, end_ns, "left"))
        return a, b

    def _usd(self, cells: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """USD of positions [a, b) of each cell (cell c's prefix sums start at ``offsets[c] + c``)."""
        return self._diff(a + cells, b + cells)

    def _diff(self, lo, hi) -> np.ndarray:
        """``cum[hi] - cum[lo]``, inf or NaN where the events between are (see the module doc)."""
        usd = self.cum[hi] - self.cum[lo]
        if self.n_inf is not None:
            usd = np.where(self.n_inf[hi] > self.n_inf[lo], np.inf, usd)
        if self.n_nan is not None:
            usd = np.where(self.n_nan[hi] > self.n_nan[lo], np.nan, usd)
        return usd

    # -- queries --------------------------------------------------------------
    def totals(self, start=None, end=None, *, exchanges=None, assets=None, side=None) -> Totals:
        cells = self.cells(exchanges, assets, side)
        a, b = self._bounds(cells, _ns(start), _ns(end))
        usd = self._usd(cells, a, b)
        by_side = np.bincount(self.cell_side[cells], weights=usd, minlength=2)
        return Totals(
            total_usd=float(usd.sum()),
            long_usd=float(by_side[0]),
            short_usd=float(by_side[1]),
            count=int(self._count(cells, a, b).sum()),
            by_exchange=_ranked(self.exchanges, self.cell_exchange[cells], usd),
            by_asset=_ranked(self.assets, self.cell_asset[cells], usd),
        )

    def group_sums(self, start=None, end=None, *, by: str = "exchange", exchanges=None, assets=None,
                   side=None) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Per ``by`` group (exchange or asset): names, USD as ``[side, group]`` and event counts."""
        cells = self.cells(exchanges, assets, side)
        a, b = self._bounds(cells, _ns(start), _ns(end))
        names = self.exchanges if by == "exchange" else self.assets
        group = (self.cell_exchange if by == "exchange" else self.cell_asset)[cells]
        n = len(names)
        usd = np.zeros((2, n))
        np.add.at(usd, (self.cell_side[cells], group), self._usd(cells, a, b))
        count = (np.bincount(group, weights=self._count(cells, a, b), minlength=n).astype(np.int64) if len(cells)
                 else np.zeros(n, np.int64))
        return list(names), usd, count

    def largest(self, start=None, end=None, n: int = 10, *, exchanges=None, assets=None,
                side=None) -> pd.DataFrame:
        """The ``n`` largest events in the window, largest first, as frame rows."""
        rows = self.largest_rows(start, end, n, exchanges=exchanges, assets=assets, side=side)
        return self.model.frame.iloc[rows].reset_index(drop=True)

    def largest_rows(self, start=None, end=None, n: int = 10, *, exchanges=None, assets=None,
                     side=None) -> np.ndarray:
        """Row numbers (into the model's frame) of the ``n`` largest events, largest first."""
        if n <= 0:
            return np.empty(0, dtype=np.int64)
        cells = self.cells(exchanges, assets, side)
        a, b = self._bounds(cells, _ns(start), _ns(end))
        candidates = [self._top_positions(lo, hi, n) for lo, hi in zip(a, b) if hi > lo]
        if not candidates:
            return np.empty(0, dtype=np.int64)
        pos = np.concatenate(candidates)
        pos = pos[self.rank[pos] > -np.inf]  # aggregate rows are not orders
        if not len(pos):
            return np.empty(0, dtype=np.int64)
        vals = self.notional[pos]
        k = min(n, len(pos))
        top = np.argpartition(-vals, k - 1)[:k]
        top = top[np.lexsort((self.rows[pos[top]], -vals[top]))]
        return self.rows[pos[top]]

    def _top_positions(self, lo: int, hi: int, n: int) -> np.ndarray:
        """Positions that certainly include the n largest in [lo, hi) (block maxima prune)."""
        if hi - lo <= 8 * BLOCK:
            return np.arange(lo, hi)
        first_full = -(-lo // BLOCK)
        last_full = hi // BLOCK  # exclusive
        edges = np.concatenate([np.arange(lo, first_full * BLOCK), np.arange(last_full * BLOCK, hi)])
        blocks = np.arange(first_full, last_full)
        if len(blocks) > n:
            blocks = blocks[np.argpartition(-self.block_max[blocks], n - 1)[:n]]
        inner = (blocks[:, None] * BLOCK + np.arange(BLOCK)[None, :]).ravel()
        return np.concatenate([edges, inner])

    def buckets(self, bucket_seconds: int, start, end, *, by: str = "exchange", exchanges=None,
                assets=None, side=None) -> pd.DataFrame:
        """Same table as ``LiquidationModel.buckets`` (USD per bucket × (side, group)), from prefix sums."""
        t = self.bucket_sums(bucket_seconds, start, end, by=by, exchanges=exchanges, assets=assets, side=side)
        index = pd.DatetimeIndex(t.first_ns + np.arange(t.n, dtype=np.int64) * t.size_ns, tz="UTC", name="ts")
        cols = pd.MultiIndex.from_product([list(SIDES), t.groups], names=["side", by])
        return pd.DataFrame(t.sums.reshape(2 * len(t.groups), t.n).T, index=index, columns=cols)

    def bucket_sums(self, bucket_seconds: int, start, end, *, by: str = "exchange", exchanges=None,
                    assets=None, side=None) -> "BucketSums":
        """USD per (side, group, bucket) as a plain array: the per-frame path, no pandas."""
        size = int(bucket_seconds) * 1_000_000_000
        lo, hi = _ns(start), _ns(end)
        first = (lo // size) * size
        nb = max(0, -(-(hi - first) // size))
        edges = first + np.arange(nb + 1, dtype=np.int64) * size
        edges[0], edges[-1] = max(edges[0], lo), min(edges[-1], hi) if nb else edges[-1]
        groups = self.exchanges if by == "exchange" else self.assets
        group_of = self.cell_exchange if by == "exchange" else self.cell_asset
        out = np.zeros((2 * len(groups), nb))
        # a search per cell here: with hundreds of edges, small per-cell arrays beat one search of the whole
        # key array (11.6 vs 19.3 ms for 360 cells x 864 edges over 0.5M events, measured)
        for c in self.cells(exchanges, assets, side):
            s, e = self.offsets[c], self.offsets[c + 1]
            pos = s + np.searchsorted(self.ts[s:e], edges, "left")
            idx = pos + c
            out[self.cell_side[c] * len(groups) + group_of[c]] += self._diff(idx[:-1], idx[1:])
        return BucketSums(first, size, list(groups), out.reshape(2, len(groups), nb))


@dataclass(frozen=True)
class BucketSums:
    """Bars for a view: ``sums[side, group, i]`` is the USD in bucket i (side 0=long, 1=short)."""

    first_ns: int
    size_ns: int
    groups: list[str]
    sums: np.ndarray

    @property
    def n(self) -> int:
        return self.sums.shape[2]

    @property
    def starts_ns(self) -> np.ndarray:
        return self.first_ns + np.arange(self.n, dtype=np.int64) * self.size_ns


def _cell_prefix_sums(notional: np.ndarray, offsets: np.ndarray):
    """Running sums restarted per cell: cell c's are ``out[offsets[c] + c : offsets[c + 1] + c + 1]``,
    a 0.0 followed by the cumulative USD of its events, so no cell's sums carry another cell's values.

    Non-finite values are left out of the sums; running counts of infinities and NaNs (same layout)
    say which windows hold them. Both counts are None when there are none (the usual case).
    """
    finite = np.isfinite(notional)
    clean = notional if finite.all() else np.where(finite, notional, 0.0)
    out = _per_cell(clean, offsets, np.float64)
    if finite.all():
        return out, None, None
    isnan = np.isnan(notional)
    n_inf = _per_cell((~finite & ~isnan).astype(np.int64), offsets, np.int64) if (~finite & ~isnan).any() else None
    n_nan = _per_cell(isnan.astype(np.int64), offsets, np.int64) if isnan.any() else None
    return out, n_inf, n_nan


def _per_cell(values: np.ndarray, offsets: np.ndarray, dtype) -> np.ndarray:
    out = np.zeros(len(values) + len(offsets) - 1, dtype=dtype)
    for c in np.flatnonzero(np.diff(offsets)):
        lo, hi = int(offsets[c]), int(offsets[c + 1])
        np.cumsum(values[lo:hi], out=out[lo + c + 1: hi + c + 1])
    return out


def _ranked(names: list[str], codes: np.ndarray, usd: np.ndarray) -> dict[str, float]:
    sums = np.bincount(codes, weights=usd, minlength=len(names))
    return {names[i]: float(sums[i]) for i in np.argsort(-sums, kind="stable") if sums[i] > 0}
