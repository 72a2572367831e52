"""Cascades over a store: the per-minute table of years of history, and the events of the cascades listed.

Per-minute totals come from the store's minute rollups (:mod:`.store.minute_rollups`) wherever they are
current and every row of the minute counts; raw rows are read, and counted by source precedence, for the
rest: partitions whose minutes are stale or missing, minutes a higher-precedence source covers in part
(minute rows name no symbol), and the partial minute before ``end``. Either way the table is the same:
one count per counted event. Five years of 100M events take about 5 s and 2 GB (bench_cascades.py).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .cascades import MINUTE_US, Cascade, Minutes, Params, add_details
from .timeutil import parse_time


def store_minutes(store, *, end=None, assets: Sequence[str] | None = None, warmup_from=None,
                  params: Params = Params(), threads: int = 2) -> Minutes:
    """The per-minute table of a store's counted liquidations (one count per event, by source precedence),
    up to ``end``; from ``warmup_from - baseline_days`` when given (the baseline needs the days before).
    One month at a time in ``threads`` threads: each month's exchanges are summed per (asset, minute), then
    each asset's slice of every month is copied into place (:func:`_by_asset`)."""
    from .store import delta_io, minute_rollups, provenance, rollups
    from .store.errors import store_errors
    from .store.tables import LIQ, MINUTES, TABLES

    store._require_current()
    s_us = None
    if warmup_from is not None:
        s_us = int((parse_time(warmup_from).floor("D") - pd.Timedelta(days=params.baseline_days)).value // 1000)
    e_us = None if end is None else int(parse_time(end).value // 1000)
    e_whole = None if e_us is None else e_us - e_us % MINUTE_US  # minutes wholly before end
    all_raw = store._files(LIQ)
    by_part: dict[tuple[str, str], list] = {}
    for f in all_raw:
        by_part.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    wanted = {(f.partition["exchange"], f.partition["month"]) for f in
              delta_io.prune(all_raw, start_us=s_us, end_us=e_us)}
    with store_errors(str(store.location), "read"):
        fresh = minute_rollups.current(store._files(MINUTES),
                                       {k: rollups.fingerprint(by_part[k]) for k in wanted})
    cov, order = store.coverage(), store.precedence
    outranked: dict[tuple[str, str], bool] = {}

    def needs_check(exchange: str, source: str) -> bool:
        """Whether a higher-precedence source covers some of ``exchange`` (rows of ``source`` may not count)."""
        key = (exchange, source)
        if key not in outranked:
            mine = provenance.rank(source, order)
            outranked[key] = any(provenance.rank(o, order) < mine for o in cov.sources(exchange))
        return outranked[key]

    asset_filter = None
    if assets is not None:
        import pyarrow.compute as pc
        asset_filter = pc.field("asset").isin(list(assets))
    spec, mspec = TABLES[LIQ], TABLES[MINUTES]

    def above(exchange: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Merged time spans (µs) some source outranking ``source`` covers on ``exchange``."""
        mine = provenance.rank(source, order)
        starts, ends = [], []
        for (s, e, _sym), (a, b) in cov.spans.items():
            if e == exchange and provenance.rank(s, order) < mine:
                starts.append(np.atleast_1d(a)), ends.append(np.atleast_1d(b))
        if not starts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return provenance.merge_spans(np.concatenate(starts), np.concatenate(ends))

    def raw(exchange: str, month: str, lo: int | None, hi: int | None, only: np.ndarray | None = None):
        """(asset names, codes, minute, usd, count) of the counted raw rows with lo <= ts < hi (and, if
        given, in the minutes ``only``)."""
        files = delta_io.prune(by_part[(exchange, month)], start_us=lo, end_us=hi)
        if not files:
            return None
        t = delta_io.read(store.location, spec, files, columns=["ts", "notional_usd", "asset", "source", "symbol"],
                          row_filter=delta_io.window_filter(lo, hi, also=asset_filter),
                          dictionary=("asset", "source", "symbol"))
        if only is not None and t.num_rows:
            t = t.filter(pa.array(np.isin(t.column("ts").cast(pa.int64()).to_numpy() // MINUTE_US, only)))
        if not t.num_rows:
            return None
        t = t.unify_dictionaries().combine_chunks() if any(c.num_chunks != 1 for c in t.columns) else t
        ts = t.column("ts").chunk(0).cast("int64").to_numpy()
        usd = t.column("notional_usd").chunk(0).to_numpy()
        acol = t.column("asset").chunk(0)
        if any(needs_check(exchange, s) for s in t.column("source").chunk(0).dictionary.to_pylist()):
            keep = _counted_mask(exchange, t, ts, cov, order)
            if keep is not None:
                ts, usd, acol = ts[keep], usd[keep], acol.filter(keep)
        return (acol.dictionary.to_pylist(), acol.indices.to_numpy(zero_copy_only=False),
                (ts // MINUTE_US).astype(np.int32), usd, np.ones(len(ts), np.int32))

    def minutes(exchange: str, month: str, files) -> list:
        """The same from current minute rows. Minutes where a row's source is outranked by a source covering
        some of that minute come from the raw rows instead, counted (minute rows name no symbol)."""
        files = delta_io.prune(files, start_us=s_us, end_us=e_whole)
        if not files:
            return []
        t = delta_io.read(store.location, mspec, files, columns=["ts", "asset", "source", "count", "notional_usd"],
                          row_filter=delta_io.window_filter(s_us, e_whole, also=asset_filter),
                          dictionary=("asset", "source"))
        if not t.num_rows:
            return []
        t = t.unify_dictionaries().combine_chunks() if any(c.num_chunks != 1 for c in t.columns) else t
        minute = t.column("ts").chunk(0).cast("int64").to_numpy() // MINUTE_US
        src = t.column("source").chunk(0)
        src_codes = src.indices.to_numpy(zero_copy_only=False)
        doubtful = np.zeros(len(minute), bool)
        for code, name in enumerate(src.dictionary.to_pylist()):
            if needs_check(exchange, name):
                lo, hi = above(exchange, name)
                rows = np.flatnonzero(src_codes == code)
                i = np.searchsorted(hi, minute[rows] * MINUTE_US, "right")  # first span ending after the minute starts
                hit = i < len(lo)
                hit[hit] = lo[i[hit]] < (minute[rows][hit] + 1) * MINUTE_US
                doubtful[rows[hit]] = True
        pieces = []
        if doubtful.any():
            only = np.unique(minute[doubtful])
            pieces.append(raw(exchange, month, int(only[0]) * MINUTE_US, (int(only[-1]) + 1) * MINUTE_US, only))
            keep = ~np.isin(minute, only)
            t, minute = t.filter(pa.array(keep)), minute[keep]
        acol = t.column("asset").combine_chunks()
        pieces.append((acol.dictionary.to_pylist(), acol.indices.to_numpy(zero_copy_only=False),
                       minute.astype(np.int32), t.column("notional_usd").to_numpy(), t.column("count").to_numpy()))
        return [p for p in pieces if p is not None and len(p[2])]

    def month_pieces(month: str) -> list:
        """The month's (names, asset codes, minute, usd, count) pieces, one or two per exchange (in a worker
        thread: Arrow's reads release the GIL)."""
        pieces = []
        for exchange in sorted(e for e, m in wanted if m == month):
            files = fresh.get((exchange, month))
            if files is None:  # no current minutes here: the raw rows, counted
                pieces.append(raw(exchange, month, s_us, e_us))
                continue
            pieces += minutes(exchange, month, files)
            if e_whole is not None and e_whole < e_us:  # the minute ``end`` cuts: its raw rows before end
                pieces.append(raw(exchange, month, max(e_whole, s_us or e_whole), e_us))
        return [p for p in pieces if p is not None and len(p[2])]

    def month_cells(month: str):
        """The month's cells (names, asset code, minute, usd, count), summed over its exchanges."""
        pieces = month_pieces(month)
        if not pieces:
            return None
        local = sorted({n for p in pieces for n in p[0]})
        where = {n: i for i, n in enumerate(local)}
        codes = [np.array([where[n] for n in p[0]] or [0], np.int32)[p[1]] for p in pieces]
        return (local, *_cells(np.concatenate(codes), np.concatenate([p[2] for p in pieces]),
                               np.concatenate([p[3] for p in pieces]), np.concatenate([p[4] for p in pieces])))

    stale = len(wanted) - len(fresh)
    if stale * 10 > len(wanted):  # worth a word: reading raw rows is ~10x slower
        store._note(f"{stale} of {len(wanted)} exchange-months have no current per-minute table, so their raw "
                    "rows were read (slower); `liqscope store rebuild-rollups` builds it once")
    names: dict[str, int] = {}
    blocks = []
    months = sorted({m for _e, m in wanted})
    with store_errors(str(store.location), "read"), ThreadPoolExecutor(max(1, threads)) as pool:
        for got in pool.map(month_cells, months):
            if got is not None:
                local, a, m, u, c = got
                blocks.append((np.array([names.setdefault(n, len(names)) for n in local], np.int32)[a], m, u, c))
    return _by_asset(names, blocks)


def _cells(asset: np.ndarray, minute: np.ndarray, usd: np.ndarray, count: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """USD and events summed per (asset code, minute) -- rows of several exchanges, or minute rows that each
    stand for ``count`` events -- sorted by asset, then minute. The pieces arrive as a few sorted runs
    (an exchange's minute rows are sorted by asset and minute), which a stable sort merges in linear time."""
    if not len(minute):
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    minute = minute.astype(np.int64)
    m0 = int(minute.min())
    span = int(minute.max()) - m0 + 1
    key = asset.astype(np.int64) * span + (minute - m0)
    o = np.argsort(key, kind="stable")
    key = key[o]
    new = np.r_[True, key[1:] != key[:-1]]
    cell = np.cumsum(new) - 1
    total = np.bincount(cell, weights=usd[o])
    events = np.bincount(cell, weights=count[o])
    a, m = np.divmod(key[new], span)
    return a.astype(np.int32), m + m0, total, np.rint(events).astype(np.int64)


def _by_asset(names: dict[str, int], blocks: list) -> Minutes:
    """One table from per-month blocks (time order; each sorted by asset, then minute): each asset's slice
    of each block is copied to its place -- a counting sort, no sort or gather of the whole table."""
    if not blocks:
        return Minutes.empty()
    n = len(names)
    counts = np.array([np.bincount(b[0], minlength=n) for b in blocks])  # blocks x assets
    present = counts.sum(axis=0) > 0  # a dictionary may name assets a filter left out
    ordered = sorted(k for k, i in names.items() if present[i])
    code = np.zeros(n, np.int32)
    for i, k in enumerate(ordered):
        code[names[k]] = i
    old = np.array([names[k] for k in ordered], np.int64)  # new code -> old code
    per = counts[:, old]
    start = np.r_[0, np.cumsum(per.sum(axis=0))][:-1][None, :] + np.cumsum(per, axis=0) - per
    total = int(per.sum())
    out_m, out_u, out_c = np.empty(total, np.int64), np.empty(total), np.empty(total, np.int64)
    for bi, (a, m, u, c) in enumerate(blocks):
        bounds = np.searchsorted(code[a], np.arange(len(ordered) + 1))  # the block is sorted by new code too
        for j in np.flatnonzero(per[bi]):
            lo, hi, at = bounds[j], bounds[j + 1], start[bi, j]
            out_m[at:at + hi - lo], out_u[at:at + hi - lo], out_c[at:at + hi - lo] = m[lo:hi], u[lo:hi], c[lo:hi]
    asset = np.repeat(np.arange(len(ordered), dtype=np.int32), per.sum(axis=0))
    return Minutes(ordered, asset, out_m, out_u, out_c)


def _counted_mask(exchange: str, t, ts: np.ndarray, cov, order) -> np.ndarray | None:
    """Rows of one exchange's read that count (None: all), by the store's source precedence: only rows of
    a source that a higher-ranked source covers somewhere at their time are checked row by row
    (:func:`provenance.counted`, the rule ``Store._counted`` applies)."""
    from .store import provenance

    src = t.column("source").chunk(0)
    src_names = src.dictionary.to_pylist()
    src_codes = src.indices.to_numpy(zero_copy_only=False)
    keep = np.ones(len(ts), dtype=bool)
    touched = False
    for code, name in enumerate(src_names):
        mine_rank = provenance.rank(name, order)
        above = [o for o in cov.sources(exchange) if provenance.rank(o, order) < mine_rank]
        if not above:
            continue
        starts, ends = [], []
        for (s, e, _sym), (a, b) in cov.spans.items():
            if e == exchange and s in above:
                starts.append(a), ends.append(b)
        if not starts:
            continue
        us, ue = provenance.merge_spans(np.concatenate(starts), np.concatenate(ends))
        rows = np.flatnonzero(src_codes == code)
        if not len(rows):
            continue
        inside = rows[provenance._inside(us, ue, ts[rows])]
        if not len(inside):
            continue
        sym = t.column("symbol").chunk(0)
        sym_names = np.asarray(sym.dictionary.to_pylist(), dtype=object)
        sym_codes = sym.indices.to_numpy(zero_copy_only=False)
        frame_like = {"exchange": np.full(len(inside), exchange, dtype=object),
                      "symbol": sym_names[sym_codes[inside]],
                      "source": np.full(len(inside), name, dtype=object),
                      "ts": ts[inside]}
        keep[inside] = provenance.counted(frame_like, cov, order)
        touched = True
    return keep if touched and not keep.all() else None


_EVENT_COLS = ["ts", "exchange", "symbol", "asset", "side", "price", "notional_usd", "source"]
_CODED = ("symbol", "asset", "side", "source")  # read as dictionary codes: no Python string per event


def store_details(store, found: list[Cascade], params: Params = Params(), threads: int = 2) -> None:
    """Events of each cascade's window -- its own assets and time only, so a day's row groups are read, not
    its month -- counted by source precedence, and candles. A market-wide cascade holds millions of events:
    they are read as dictionary codes, two cascades at a time, and sorted by time with numpy."""
    import pyarrow.compute as pc

    series = None

    def candles(asset, exchange, s, e):
        nonlocal series
        if series is None:
            series = store.candle_series()
        opts = [(ex, sym, iv) for ex, sym, iv, a in series if a == asset and (exchange is None or ex == exchange)]
        opts = [o for o in opts if o[2] == "1m"] or opts
        for ex, sym, iv in sorted(opts):
            frame = store.candles(ex, sym, iv, s, e)
            if len(frame):
                return ex, frame
        return None

    def events(c: Cascade) -> pd.DataFrame:
        t = store._liq_read(c.start, c.end, columns=_EVENT_COLS, dictionary=_CODED,
                            extra_filter=pc.field("asset").isin(sorted(c.assets)))
        return _events_frame(store._counted(t))

    def detail(c: Cascade) -> None:
        add_details(c, events(c), candles, params)

    with ThreadPoolExecutor(max(1, threads)) as pool:  # the store's snapshot cache is locked
        list(pool.map(detail, found))


def _events_frame(t: pa.Table) -> pd.DataFrame:
    """The columns :func:`add_details` reads, sorted by time: text columns as categoricals of their codes."""
    if any(col.num_chunks != 1 for col in t.columns):
        t = t.unify_dictionaries().combine_chunks()
    ts = t.column("ts").cast(pa.int64()).to_numpy() if t.num_rows else np.empty(0, np.int64)
    o = np.argsort(ts, kind="stable")
    cols: dict[str, object] = {"ts": pd.DatetimeIndex(ts[o] * 1000, tz="UTC")}
    for name in ("exchange", "asset", "side"):
        col = t.column(name).combine_chunks() if t.num_rows else pa.array([], pa.string())
        if not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        codes = col.indices.to_numpy(zero_copy_only=False)[o].astype(np.int32)
        cols[name] = pd.Categorical.from_codes(codes, categories=pd.Index(col.dictionary.to_pylist(), dtype=object))
    for name in ("price", "notional_usd"):
        cols[name] = t.column(name).to_numpy()[o] if t.num_rows else np.empty(0)
    return pd.DataFrame(cols)
