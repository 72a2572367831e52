"""Cascades over a store: the per-minute table of years of history, and the events of the cascades listed.

Per-minute totals come from the store's minute rollups (:mod:`.store.minute_rollups`) wherever they are
current and every row of the minute counts; raw rows are read, and counted by source precedence, for the
rest: partitions whose minutes are stale or missing, minutes a higher-precedence source covers in part
(minute rows name no symbol), and the partial minute before ``end``. Either way the table is the same:
one count per counted event. Five years of 100M events take about 5 s and 2.5 GB (bench_cascades.py).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .cascades import MINUTE_US, Cascade, Events, Minutes, Params, add_details
from .timeutil import parse_time


def store_minutes(store, *, end=None, assets: Sequence[str] | None = None, warmup_from=None,
                  params: Params = Params(), threads: int = 2) -> Minutes:
    """The per-minute table of a store's counted liquidations (one count per event, by source precedence),
    up to ``end``; from ``warmup_from - baseline_days`` when given (the baseline needs the days before).
    The partitions are read in ``threads`` threads, then each asset's exchanges summed per minute
    (:func:`_per_asset`)."""
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

    def partition_pieces(key: tuple[str, str]) -> list:
        """One (exchange, month)'s (names, asset codes, minute, usd, count) pieces (in a worker thread:
        Arrow's reads release the GIL)."""
        exchange, month = key
        files = fresh.get(key)
        if files is None:  # no current minutes here: the raw rows, counted
            pieces = [raw(exchange, month, s_us, e_us)]
        else:
            pieces = minutes(exchange, month, files)
            if e_whole is not None and e_whole < e_us:  # the minute ``end`` cuts: its raw rows before end
                pieces.append(raw(exchange, month, max(e_whole, s_us or e_whole), e_us))
        return [p for p in pieces if p is not None and len(p[2])]

    stale = len(wanted) - len(fresh)
    if stale * 10 > len(wanted):  # worth a word: reading raw rows is ~10x slower
        store._note(f"{stale} of {len(wanted)} exchange-months have no current per-minute table, so their raw "
                    "rows were read (slower); `liqscope store rebuild-rollups` builds it once")
    # each exchange's months in order: an asset's minute rows of one exchange then form one sorted run
    keys = sorted(wanted, key=lambda k: (k[1], k[0]))
    with store_errors(str(store.location), "read"), ThreadPoolExecutor(max(1, threads)) as pool:
        months: dict[str, list] = {}
        for key, got in zip(keys, pool.map(partition_pieces, keys)):
            months.setdefault(key[1], []).extend(got)
        return _per_asset(list(months.values()), pool)


def _per_asset(months: list[list], pool) -> Minutes:
    """One table, sorted by asset then minute, from each month's pieces of rows (names, codes, minute, usd,
    count): the rows of one minute from several exchanges, or minute rows that each stand for ``count``
    events, are summed. Per asset (in ``pool``'s threads) and month, one dense sum over the month's minutes
    -- arrays of a month fit the CPU's cache; no sort."""
    names = sorted({n for pieces in months for p in pieces for n in p[0]})
    where = {n: i for i, n in enumerate(names)}
    held = []
    for pieces in months:
        month = []
        for p_names, codes, minute, usd, count in pieces:
            code = np.array([where[n] for n in p_names] or [0], np.int32)[codes]
            if len(code) > 1 and bool((code[1:] < code[:-1]).any()):  # raw rows come by day and symbol
                o = np.argsort(code, kind="stable")
                code, minute, usd, count = code[o], minute[o], usd[o], count[o]
            month.append((np.searchsorted(code, np.arange(len(names) + 1, dtype=np.int32)), minute, usd, count))
        held.append(month)

    def one(k: int):
        out_m, out_u, out_c = [], [], []
        for month in held:
            sl = [(b[k], b[k + 1], m, u, c) for b, m, u, c in month if b[k + 1] > b[k]]
            if not sl:
                continue
            m = np.concatenate([m[lo:hi] for lo, hi, m, _u, _c in sl]) if len(sl) > 1 else sl[0][2][sl[0][0]:sl[0][1]]
            u = np.concatenate([u[lo:hi] for lo, hi, _m, u, _c in sl]) if len(sl) > 1 else sl[0][3][sl[0][0]:sl[0][1]]
            c = np.concatenate([c[lo:hi] for lo, hi, _m, _u, c in sl]) if len(sl) > 1 else sl[0][4][sl[0][0]:sl[0][1]]
            m0 = int(m.min())
            at = m - m0
            total = np.bincount(at, weights=u)
            events = np.bincount(at, weights=c)  # integers, exact in float64
            hit = np.zeros(len(events), bool)
            hit[at] = True
            cells = np.flatnonzero(hit)
            out_m.append(cells + m0), out_u.append(total[cells]), out_c.append(events[cells].astype(np.int64))
        return out_m, out_u, out_c
    got = list(pool.map(one, range(len(names))))
    kept = [(names[k], r) for k, r in enumerate(got) if r[0]]  # a dictionary may name assets a filter left out
    if not kept:
        return Minutes.empty()
    sizes = [sum(len(x) for x in r[0]) for _n, r in kept]
    asset = np.repeat(np.arange(len(kept), dtype=np.int32), sizes)
    return Minutes([n for n, _r in kept], asset, *(np.concatenate([x for _n, r in kept for x in r[i]], dtype=dt)
                                                   for i, dt in ((0, np.int64), (1, np.float64), (2, np.int64))))


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


_EVENT_COLS = ["ts", "exchange", "asset", "side", "price", "notional_usd", "source"]
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

    def events(c: Cascade) -> Events:
        flt = pc.field("asset").isin(sorted(c.assets))
        t = store._liq_read(c.start, c.end, columns=_EVENT_COLS, dictionary=_CODED, extra_filter=flt)
        if store._may_be_outranked(t):  # some rows may not count: their symbols decide
            t = store._counted(store._liq_read(c.start, c.end, columns=[*_EVENT_COLS, "symbol"], dictionary=_CODED,
                                               extra_filter=flt))
        return _events(t)

    def detail(c: Cascade) -> None:
        add_details(c, events(c), candles, params)

    with ThreadPoolExecutor(max(1, threads)) as pool:  # the store's snapshot cache is locked
        list(pool.map(detail, found))


def _events(t: pa.Table) -> Events:
    """A read's events for :func:`add_details`, sorted by time, text columns as their dictionary codes (no
    pandas frame: a market-wide cascade holds millions of events)."""
    if any(col.num_chunks != 1 for col in t.columns):
        t = t.unify_dictionaries().combine_chunks()
    ts = t.column("ts").cast(pa.int64()).to_numpy() * 1000 if t.num_rows else np.empty(0, np.int64)
    o = np.argsort(ts, kind="stable")

    def coded(name: str) -> tuple[np.ndarray, list[str]]:
        col = t.column(name).combine_chunks() if t.num_rows else pa.array([], pa.string())
        if not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        return col.indices.to_numpy(zero_copy_only=False).astype(np.int64)[o], [str(n) for n in col.dictionary.to_pylist()]
    cols = [t.column(n).to_numpy()[o] if t.num_rows else np.empty(0) for n in ("notional_usd", "price")]
    return Events(ts[o], cols[0], cols[1], coded("side"), coded("exchange"), coded("asset"))
