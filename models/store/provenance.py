"""Where each stored liquidation came from, and which source is counted when several cover the same time.

Every row carries its ``source``: ``binance-ws``/``bybit-ws``/``okx-ws`` (the live recorder),
``tardis`` (Tardis.dev CSV), ``binance-snapshot`` (Binance's liquidationSnapshot dumps),
``file:<name>`` (a generic CSV/Parquet) or ``migrated`` (rows of a schema-1 store, whose origin was
never recorded). Each commit records the time span and symbols its rows cover per source and exchange
(the ``coverage`` table). The same liquidation seen by two sources is stored twice (nothing is ever
thrown away), and counted once: **a row is counted unless a source of higher precedence covers its
exchange, symbol and time**. The default precedence puts complete vendor files above the exchange's
own dumps, generic files, and finally the live stream (Binance's ``forceOrder`` stream sends at most one
liquidation per symbol per second, so a complete file is better wherever there is one). Users may
reorder it (``liqscope store prefer``).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

DEFAULT_PRECEDENCE = ("tardis", "binance-snapshot", "file:*", "*-ws", "migrated", "*")
LIVE = "{exchange}-ws"
MIGRATED = "migrated"


def live_source(exchange: str) -> str:
    return LIVE.format(exchange=exchange)


def file_source(name: str) -> str:
    return f"file:{name}"


def rank(source: str, order: tuple[str, ...] = DEFAULT_PRECEDENCE) -> int:
    """Position of ``source`` in ``order`` (patterns allowed); lower wins."""
    for i, pattern in enumerate(order):
        if fnmatch.fnmatchcase(source, pattern):
            return i
    return len(order)


@dataclass
class Coverage:
    """Merged covered spans per (source, exchange, symbol), as µs int64 arrays."""

    spans: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def from_table(cls, table: pa.Table | None) -> "Coverage":
        if table is None or not table.num_rows:
            return cls({})
        df = pd.DataFrame({"source": table.column("source").to_pylist(),
                           "exchange": table.column("exchange").to_pylist(),
                           "symbol": table.column("symbol").to_pylist(),
                           "start": table.column("start").cast(pa.int64()).to_numpy(),
                           "end": table.column("end").cast(pa.int64()).to_numpy()})
        # merged per key without a Python loop per key (one store may cover tens of thousands of symbols):
        # sorted by key and start, a row opens a new span where it starts after every earlier end of its key
        keys = ["source", "exchange", "symbol"]
        df = df.sort_values(keys + ["start"], kind="stable").reset_index(drop=True)
        gid = df.groupby(keys, sort=False).ngroup().to_numpy()
        reach = df.groupby(gid, sort=False)["end"].cummax().to_numpy()
        first = np.r_[True, gid[1:] != gid[:-1]]
        opens = first | (df["start"].to_numpy() > np.r_[0, reach[:-1]])
        starts = df["start"].to_numpy()[opens]
        ends = np.maximum.reduceat(df["end"].to_numpy(), np.flatnonzero(opens))
        owner = gid[opens]
        cut = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        names = df.loc[opens, keys].iloc[cut].itertuples(index=False, name=None)
        bounds = list(cut[1:]) + [len(owner)]
        return cls({key: (starts[a:b], ends[a:b]) for key, a, b in zip(names, cut, bounds)})

    def sources(self, exchange: str) -> set[str]:
        """Sources with coverage on ``exchange`` (indexed once: a store may cover tens of thousands of symbols)."""
        by_exchange = self.__dict__.get("_by_exchange")
        if by_exchange is None:
            by_exchange = {}
            for s, e, _y in self.spans:
                by_exchange.setdefault(e, set()).add(s)
            self.__dict__["_by_exchange"] = by_exchange
        return by_exchange.get(exchange, set())

    def covered(self, source: str, exchange: str, symbol: str, ts_us: np.ndarray) -> np.ndarray:
        """Whether ``source`` covers each time (for ``symbol``, or for all symbols via ``*``)."""
        out = np.zeros(len(ts_us), dtype=bool)
        for sym in (symbol, "*"):
            v = self.spans.get((source, exchange, sym))
            if v is not None:
                out |= _inside(v[0], v[1], ts_us)
        return out

    def overlap(self, source: str, exchange: str, symbol: str, lo: np.ndarray, hi: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Per bucket ``[lo, hi)``: (wholly covered, partly covered) by ``source``."""
        whole = np.zeros(len(lo), dtype=bool)
        part = np.zeros(len(lo), dtype=bool)
        for sym in (symbol, "*"):
            v = self.spans.get((source, exchange, sym))
            if v is None:
                continue
            a, b = v
            i = np.searchsorted(a, lo, side="right") - 1  # the span starting at or before lo
            ok = i >= 0
            ii = np.maximum(i, 0)
            whole |= ok & (b[ii] >= hi)
            j = np.searchsorted(a, hi, side="left")       # spans starting before hi
            k = np.searchsorted(b, lo, side="right")      # spans ending after lo (spans are disjoint, sorted)
            part |= j > k
        return whole, part & ~whole


def merge_spans(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[start, end)`` spans sorted and merged where they overlap or touch."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    out_s, out_e = [], []
    for a, b in zip(s.tolist(), e.tolist()):
        if out_e and a <= out_e[-1]:
            out_e[-1] = max(out_e[-1], b)
        else:
            out_s.append(a)
            out_e.append(b)
    return np.array(out_s, dtype=np.int64), np.array(out_e, dtype=np.int64)


def subtract(span: tuple[int, int], starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """What is left of ``[a, b)`` once the (sorted, disjoint) spans ``[starts, ends)`` are cut out of it."""
    a, b = span
    out = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        if e <= a or s >= b:
            continue
        if s > a:
            out.append((a, s))
        a = max(a, e)
        if a >= b:
            break
    if a < b:
        out.append((a, b))
    return out


def _inside(a: np.ndarray, b: np.ndarray, ts: np.ndarray) -> np.ndarray:
    i = np.searchsorted(a, ts, side="right") - 1
    return (i >= 0) & (ts < b[np.maximum(i, 0)])


def counted(frame_like: dict[str, np.ndarray], coverage: Coverage, order: tuple[str, ...]) -> np.ndarray:
    """Which rows count: those no source of higher precedence covers. ``frame_like`` holds arrays
    ``exchange``, ``symbol``, ``source`` (objects) and ``ts`` (µs int64)."""
    n = len(frame_like["ts"])
    keep = np.ones(n, dtype=bool)
    if not coverage.spans or not n:
        return keep
    keys = pd.DataFrame({"e": frame_like["exchange"], "y": frame_like["symbol"], "s": frame_like["source"]})
    for (ex, src), part in keys.groupby(["e", "s"], sort=False):
        mine = rank(src, order)
        above = [o for o in coverage.sources(ex) if rank(o, order) < mine]
        if not above:  # nothing outranks this source on this exchange: all its rows count
            continue
        for sym, idx in part.groupby("y", sort=False).indices.items():
            rows = part.index.to_numpy()[idx]
            for other in above:
                keep[rows] &= ~coverage.covered(other, ex, sym, frame_like["ts"][rows])
    return keep


def bucket_status(rows: dict[str, np.ndarray], width_us: int, coverage: Coverage, order: tuple[str, ...]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """For rollup rows (``exchange``, ``symbol``, ``source``, ``bucket`` µs): (counted wholly, mixed).

    A bucket partly covered by a higher-precedence source is *mixed*: its figures must come from raw rows."""
    n = len(rows["bucket"])
    whole_out = np.zeros(n, dtype=bool)
    mixed = np.zeros(n, dtype=bool)
    if not coverage.spans or not n:
        return ~whole_out, mixed
    keys = pd.DataFrame({"e": rows["exchange"], "y": rows["symbol"], "s": rows["source"]})
    for (ex, src), part in keys.groupby(["e", "s"], sort=False):
        mine = rank(src, order)
        above = [o for o in coverage.sources(ex) if rank(o, order) < mine]
        if not above:
            continue
        for sym, idx in part.groupby("y", sort=False).indices.items():
            sel = part.index.to_numpy()[idx]
            lo = rows["bucket"][sel]
            hi = lo + width_us
            for other in above:
                w, p = coverage.overlap(other, ex, sym, lo, hi)
                whole_out[sel] |= w
                mixed[sel] |= p
    mixed &= ~whole_out
    return ~whole_out & ~mixed, mixed
