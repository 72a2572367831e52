"""Open interest and funding history into the store, resumable (Qt-free; ``liqscope fetch oi|funding``,
the GUI's Data menu and the recorder's poller use it).

:func:`fetch_context` asks the store what it already holds of the series (open interest: contiguous
snapshots of ``period``; funding: contiguous settlements), fetches only the missing ranges through
:mod:`.context` and stores every page as it arrives (``on_page``), so a fetch that fails or is
cancelled keeps what it got and the same call later resumes. Open interest rows are stored with
their ``period``. Progress is reported over all missing ranges together (units: periods for open
interest, hours for funding); the history limits of each exchange come back as
:class:`~.context.HistoryNotice` in ``result.notices`` (a range entirely older than what the exchange
serves is a notice too, unless nothing at all can be fetched: then :class:`~.context.HistoryUnavailable`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from ..progress import Step, Task, quiet
from ..timeutil import from_ms, parse_time, to_ms
from .candles import FetchError, _retrying, is_spot, make_client, missing_ranges, store_exchange_name
from .context import (FUNDING, HOUR_MS, OI, HistoryNotice, HistoryUnavailable, _step_ms, fetch_funding,
                      fetch_open_interest)

WHAT = {OI: "open interest", FUNDING: "funding"}


@dataclass
class ContextFetch:
    kind: str  # OI or FUNDING
    exchange: str  # store key
    symbol: str  # native id
    asset: str
    period: str | None
    start: pd.Timestamp  # the window asked for (end clamped to now)
    end: pd.Timestamp
    missing: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    rows: int = 0  # rows fetched
    new: int = 0  # rows the store did not hold
    requests: int = 0
    notices: list[HistoryNotice] = field(default_factory=list)
    cancelled: bool = False

    @property
    def what(self) -> str:
        return WHAT[self.kind] + (f" {self.period}" if self.kind == OI else "")


def fetch_context(kind: str, exchange: str, symbol: str, start, end=None, *, store, period: str = "1h",
                  api_base: str | None = None, client=None, task: Task | None = None, retries: int = 5,
                  retry_delay: float = 1.0, pace: float | None = None, now=None) -> ContextFetch:
    """Fetch ``kind`` (``"oi"`` or ``"funding"``) of ``symbol`` (ccxt unified, e.g. ``BTC/USDT:USDT``) for
    ``start <= ts < end`` (``end``: now) into ``store``, skipping what it holds. Blocking; errors are
    :class:`~.candles.FetchError` (one line) with what was fetched before them already stored."""
    if kind not in WHAT:
        raise ValueError(f"unknown context kind {kind!r} (oi or funding)")
    task = task or quiet()
    ex = exchange.lower()
    if is_spot(symbol):
        raise FetchError(f"{ex} {symbol}: open interest and funding exist for perpetual swaps only, "
                         f"not the spot pair {symbol!r} (e.g. BTC/USDT:USDT)")
    if client is None:
        client = make_client(ex, symbol, api_base=api_base)
    if not client.markets:
        _retrying(client.load_markets, retries=retries, delay=retry_delay, task=task, what=f"{ex} markets")
    if symbol not in client.markets:
        raise FetchError(f"{ex} has no market {symbol!r} (use ccxt's unified form, e.g. BTC/USDT:USDT)")
    market = client.market(symbol)
    name, native = store_exchange_name(ex, symbol), str(market["id"])
    asset = str(market.get("base") or native).upper()
    step = _step_ms(period) if kind == OI else HOUR_MS
    now_ts = parse_time(now) if now is not None else pd.Timestamp(time.time_ns(), tz="UTC")
    s = parse_time(start)
    e = min(parse_time(end), now_ts) if end is not None else now_ts
    out = ContextFetch(kind, name, native, asset, period if kind == OI else None, s, max(s, e))
    if e <= s:
        return out
    from ..store.context_tables import funding_coverage, oi_coverage

    held = oi_coverage(store, name, native, period) if kind == OI else funding_coverage(store, name, native)
    ranges = missing_ranges(held, to_ms(s), to_ms(e), step if kind == OI else 1)
    out.missing = [(from_ms(a), from_ms(b)) for a, b in ranges]
    sizes = [-(-(b - a) // step) for a, b in ranges]
    total = sum(sizes)

    def store_page(df: pd.DataFrame) -> None:
        if kind == OI:
            res = store.append_open_interest(df.assign(period=period))
        else:
            res = store.append_funding(df)
        out.rows += res.rows
        out.new += res.new

    unavailable: HistoryUnavailable | None = None
    served = 0  # ranges the exchange served (possibly empty)
    offset = 0
    for (a, b), size in zip(ranges, sizes):
        def forward(step_: Step, base=offset) -> None:
            task.progress(min(total, base + step_.done), total, step_.message)
        sub = Task(forward, task.cancel)
        kw = dict(client=client, task=sub, on_page=store_page, retries=retries, retry_delay=retry_delay, pace=pace,
                  now=now_ts)
        try:
            if kind == OI:
                res = fetch_open_interest(ex, symbol, from_ms(a), from_ms(b), period=period, **kw)
            else:
                res = fetch_funding(ex, symbol, from_ms(a), from_ms(b), **kw)
        except HistoryUnavailable as exc:  # this range is older than served; a later one may not be
            unavailable = exc
            out.notices.append(exc.notice)
            offset += size
            continue
        except FetchError as exc:
            partial = getattr(exc, "partial", None)
            out.requests += partial.requests if partial is not None else 0
            exc.fetched = out
            raise
        served += 1
        out.requests += res.requests
        out.notices += res.notices
        offset += size
        if res.cancelled:
            out.cancelled = True
            break
    if unavailable is not None and not served:  # nothing of the window can be fetched
        raise unavailable
    return out


