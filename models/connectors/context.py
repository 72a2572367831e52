"""Open interest and funding rate history from the exchanges' public REST APIs (Qt-free).

``fetch_open_interest`` and ``fetch_funding`` page through a window ``start <= ts < end``
and return a :class:`ContextResult` whose ``frame`` holds one row per exchange record:

* open interest: ``ts, exchange, symbol, asset, oi_base, oi_usd, source``;
* funding: ``ts, exchange, symbol, asset, rate, interval_hours, source``.

The requests go through ccxt's *implicit* endpoint methods (``fapiDataGetOpenInterestHist``,
``publicGetV5MarketOpenInterest``...), not its unified ``fetchOpenInterestHistory`` /
``fetchFundingRateHistory``: those drop what a conversion needs (Bybit's unit depends on
linear/inverse, OKX's unified funding keeps one of two rates, ccxt fills gaps of its own
pagination differently per exchange). ccxt still sends every request, so its throttle,
error mapping (HTTP 429/5xx, exchange error codes) and :func:`~.candles.point_at` (which is how
tests serve the exchanges from loopback) apply unchanged.

What each exchange serves (documented; the sources are quoted in the tests):

================  ===================================================  =======================================
                  open interest                                        funding rate
================  ===================================================  =======================================
binance (USDⓈ-M)  ``/futures/data/openInterestHist``: latest 30 days   ``/fapi/v1/fundingRate``: since listing
                  only; 500 per request; ``sumOpenInterest`` (base),   1000 per request, ascending.
                  ``sumOpenInterestValue`` (quote, USDT/USDC).
bybit (linear)    ``/v5/market/open-interest``: since launch; 200 per  ``/v5/market/funding/history``: since
                  request; ``openInterest`` in base (BTCUSDT: BTC);    launch; 200 per request, newest first.
                  value = base × mark price (``mark-price-kline``).
okx (swaps)       ``/api/v5/rubik/stat/contracts/open-interest-        ``/api/v5/public/funding-rate-history``:
                  history``: latest 1,440 entries of the period;       last 3 months; 100 per request;
                  100 per request; ``[ts, oi (contracts), oiCcy,       ``realizedRate`` (actual rate).
                  oiUsd]``; linear base = contracts × ctVal × ctMult.
================  ===================================================  =======================================

When the asked start is older than what the exchange serves, the fetch returns what exists and a
:class:`HistoryNotice` in ``result.notices`` whose one-line ``message`` says so in words; when nothing
of the window can be served it raises :class:`HistoryUnavailable` (a :class:`FetchError`, hence a
``UserError``). Values are never guessed: ``oi_usd`` of a Bybit row without a mark price at its time
is NaN; USDT/USDC values are taken 1:1 as USD (the exchanges label them so: Binance
``sumOpenInterestValue``, OKX ``oiUsd``).

``interval_hours`` is the time since the previous settlement the exchange reports (OKX documents that
the interval is to be read from consecutive funding times; Binance and Bybit give only today's
interval). One extra request before ``start`` finds that previous settlement; the first settlement
after a listing takes the spacing to the next one.

Progress, cancel and errors follow :mod:`.candles`: ``task.progress(done, total)`` after every window
(units: periods for open interest, hours for funding), a note with the reason on every failed
request, a cancel between requests (or while waiting to retry) returns the rows so far with
``cancelled=True``; persistent failures raise :class:`NetworkUnreachable` / :class:`ExchangeUnavailable`,
a body that is not the documented shape raises :class:`MalformedResponse` — every one a
:class:`FetchError` with a one-line message and, as ``partial``, the :class:`ContextResult` fetched
before it. Resuming: pass ``since=result.resume_from`` (``on_page`` receives each window's rows as
they arrive, so a caller can store them before a failure).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ..progress import Cancelled, Task, quiet
from ..timeutil import from_ms, parse_time, to_ms
from .candles import FetchError, _retrying, client_with_market, is_spot, store_exchange_name

OI = "oi"
FUNDING = "funding"

OI_COLUMNS = ["ts", "exchange", "symbol", "asset", "oi_base", "oi_usd", "source"]
FUNDING_COLUMNS = ["ts", "exchange", "symbol", "asset", "rate", "interval_hours", "source"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Our period names -> each exchange's own (OKX: the "utc" bars open at UTC midnight, not UTC+8).
OI_PERIODS = {
    "binance": {p: p for p in ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")},
    "bybit": {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d"},
    "okx": {"5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H", "4h": "4H", "6h": "6Hutc",
            "12h": "12Hutc", "1d": "1Dutc"},
}
# Bybit mark-price-kline intervals for the OI periods (minutes, or D).
_BYBIT_KLINE = {"5m": "5", "15m": "15", "30m": "30", "1h": "60", "4h": "240", "1d": "D"}

# Records per request: the documented maximum of each endpoint.
PAGE_LIMIT = {
    (OI, "binance"): 500, (OI, "bybit"): 200, (OI, "okx"): 100,
    (FUNDING, "binance"): 1000, (FUNDING, "bybit"): 200, (FUNDING, "okx"): 100,
}

# Least seconds between two requests, from the documented IP limits (ccxt's own throttle is
# set per request weight, which for these endpoints is looser than the documented limit):
# Binance openInterestHist 1000 / 5 min, fundingRate 500 / 5 min (shared with fundingInfo);
# OKX 10 requests / 2 s per instrument for both. Bybit: ccxt's throttle is enough.
PACE = {(OI, "binance"): 0.3, (FUNDING, "binance"): 0.6, (OI, "okx"): 0.2, (FUNDING, "okx"): 0.2,
        (OI, "bybit"): 0.0, (FUNDING, "bybit"): 0.0}

NAMES = {"binance": "Binance", "bybit": "Bybit", "okx": "OKX"}

# What a user should know about each source's history (one line each).
HISTORY_NOTES = {
    (OI, "binance"): "Binance serves open interest history for the last 30 days only "
                     "(/futures/data/openInterestHist, 500 records per request).",
    (OI, "bybit"): "Bybit serves open interest history back to each contract's launch "
                   "(/v5/market/open-interest, 200 records per request); its value in USD is "
                   "open interest × mark price at that time.",
    (OI, "okx"): "OKX serves the latest 1,440 open interest records of each period "
                 "(/api/v5/rubik/stat/contracts/open-interest-history: 5 days of 5m, 60 days of 1h), "
                 "daily records from 2024-01-01 on.",
    (FUNDING, "binance"): "Binance serves funding history back to each contract's listing "
                          "(/fapi/v1/fundingRate, 1000 records per request).",
    (FUNDING, "bybit"): "Bybit serves funding history back to each contract's launch "
                        "(/v5/market/funding/history, 200 records per request).",
    (FUNDING, "okx"): "OKX serves funding history for the last 3 months only "
                      "(/api/v5/public/funding-rate-history, 100 records per request).",
}

_OKX_DAILY_FIRST_MS = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)


class MalformedResponse(FetchError):
    """The exchange answered, but not with the documented shape (not JSON, fields missing or not numbers)."""


class HistoryUnavailable(FetchError):
    """Nothing of the asked window is within the history the exchange serves; ``notice`` says what it serves."""

    def __init__(self, message: str, notice: "HistoryNotice"):
        super().__init__(message)
        self.notice = notice


@dataclass(frozen=True)
class HistoryNotice:
    """The exchange does not serve the older part of the asked window.

    ``served_from`` is the first time it serves; ``message`` says so in one line."""

    kind: str  # OI or FUNDING
    exchange: str
    symbol: str
    requested_start: pd.Timestamp
    served_from: pd.Timestamp
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class ContextResult:
    kind: str  # OI or FUNDING
    exchange: str  # store key: binance, bybit, okx
    symbol: str  # native id (BTCUSDT, BTC-USDT-SWAP)
    asset: str  # base currency
    start: pd.Timestamp  # the window fetched, after clamping to listing, history limit and now
    end: pd.Timestamp
    period: str | None = None  # OI only
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    notices: list[HistoryNotice] = field(default_factory=list)
    requests: int = 0
    cancelled: bool = False
    resume_from: pd.Timestamp | None = None  # pass as ``since`` to continue; == end when complete

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def last_ts(self) -> pd.Timestamp | None:
        return None if self.frame.empty else self.frame["ts"].iloc[-1]

    @property
    def complete(self) -> bool:
        return self.resume_from is not None and self.resume_from >= self.end


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def fetch_open_interest(exchange: str, symbol: str, start, end=None, *, period: str = "1h", since=None,
                        task: Task | None = None, on_page: Callable[[pd.DataFrame], None] | None = None,
                        api_base: str | None = None, client=None, markets=None, retries: int = 5,
                        retry_delay: float = 1.0, pace: float | None = None, now=None) -> ContextResult:
    """Open interest of ``symbol`` (ccxt unified, e.g. ``BTC/USDT:USDT``) every ``period``
    for ``start <= ts < end`` (``end`` defaults to now). Blocking: run it in a worker thread.

    ``ts`` is the exchange's time of each snapshot (on the period grid, UTC); ``oi_base`` is in
    the base currency, ``oi_usd`` in USD (USDT/USDC 1:1). ``since`` resumes a fetch (use a
    previous ``result.resume_from``); ``on_page`` receives each window's rows as they arrive."""
    return _fetch(OI, exchange, symbol, start, end, period=period, since=since, task=task, on_page=on_page,
                  api_base=api_base, client=client, markets=markets, retries=retries, retry_delay=retry_delay,
                  pace=pace, now=now)


def fetch_funding(exchange: str, symbol: str, start, end=None, *, since=None, task: Task | None = None,
                  on_page: Callable[[pd.DataFrame], None] | None = None, api_base: str | None = None,
                  client=None, markets=None, retries: int = 5, retry_delay: float = 1.0,
                  pace: float | None = None, now=None) -> ContextResult:
    """Funding rates of ``symbol`` settled at ``start <= ts < end`` (``end`` defaults to now).

    ``rate`` is the rate paid per funding interval as a fraction (0.0001 = 0.01 %), positive when
    longs pay shorts; ``interval_hours`` the hours since the previous settlement; ``ts`` the
    settlement time. Same blocking, resume, progress and error conventions as
    :func:`fetch_open_interest`."""
    return _fetch(FUNDING, exchange, symbol, start, end, period=None, since=since, task=task, on_page=on_page,
                  api_base=api_base, client=client, markets=markets, retries=retries, retry_delay=retry_delay,
                  pace=pace, now=now)


def oi_periods(exchange: str) -> list[str]:
    """Open interest periods ``exchange`` serves (no network)."""
    return list(OI_PERIODS[_exchange(exchange)])


def served_from(kind: str, exchange: str, now, period: str = "1h") -> pd.Timestamp | None:
    """First time the exchange serves ``kind`` history at ``now``, or None when it serves back to listing."""
    ms = _floor_ms(kind, _exchange(exchange), to_ms(parse_time(now)), _step_ms(period) if kind == OI else HOUR_MS,
                   period)
    return None if ms is None else from_ms(ms)


# ---------------------------------------------------------------------------
# the walk
# ---------------------------------------------------------------------------
def _fetch(kind, exchange, symbol, start, end, *, period, since, task, on_page, api_base, client, markets,
           retries, retry_delay, pace, now) -> ContextResult:
    task = task or quiet()
    exchange = _exchange(exchange)
    if is_spot(symbol):
        raise FetchError(f"{exchange} {symbol}: open interest and funding exist for perpetual swaps only, "
                         f"not the spot pair {symbol!r} (e.g. BTC/USDT:USDT)")
    if kind == OI:
        if period not in OI_PERIODS[exchange]:
            raise FetchError(f"{NAMES[exchange]} has no open interest period {period!r} "
                             f"(available: {', '.join(OI_PERIODS[exchange])})")
    what0 = f"{exchange} {symbol}"
    client, market = client_with_market(exchange, symbol, client=client, markets=markets, api_base=api_base,
                                        retries=retries, retry_delay=retry_delay, task=task)
    if not (market.get("swap") or market.get("future")):
        raise FetchError(f"{what0}: open interest and funding exist for perpetual swaps only, not {symbol!r}")
    if not market.get("swap"):
        raise FetchError(f"{what0}: only perpetual swaps are supported yet, not the dated future {symbol!r}")
    if market.get("inverse") and exchange != "okx":
        raise FetchError(f"{what0}: inverse contracts on {NAMES[exchange]} are not supported yet "
                         f"(linear ones such as BTC/USDT:USDT are)")

    step = _step_ms(period) if kind == OI else HOUR_MS  # OI grid / funding walking unit
    now_ms = to_ms(parse_time(now)) if now is not None else int(time.time() * 1000)
    asked_ms = to_ms(parse_time(start))
    end_ms = min(to_ms(parse_time(end)), now_ms) if end is not None else now_ms
    start_ms = asked_ms
    if kind == OI:
        start_ms = -(-start_ms // step) * step  # first snapshot on the grid at or after start
    listed = market.get("created")
    if listed:
        first = int(listed) if kind == FUNDING else -(-int(listed) // step) * step
        start_ms = max(start_ms, first)
    native = str(market["id"])
    asset = str(market.get("base") or native).upper()
    result = ContextResult(kind, store_exchange_name(exchange, symbol), native, asset, from_ms(start_ms),
                           from_ms(max(start_ms, end_ms)), period=period, frame=_empty(kind))

    floor = _floor_ms(kind, exchange, now_ms, step, period)
    if floor is not None and start_ms < floor and start_ms < end_ms:
        notice = _notice(kind, exchange, native, from_ms(start_ms), from_ms(floor), from_ms(end_ms))
        if floor >= end_ms:
            raise HistoryUnavailable(notice.message, notice)
        result.notices.append(notice)
        start_ms = floor
        result.start = from_ms(start_ms)
    if since is not None:
        start_ms = max(start_ms, to_ms(parse_time(since)))
        if kind == OI:
            start_ms = -(-start_ms // step) * step
    result.resume_from = from_ms(min(start_ms, end_ms))
    if start_ms >= end_ms:
        result.resume_from = result.end
        return result

    source = _SOURCES[(kind, exchange)](client, market, period)
    walker = _Walker(kind, exchange, source, step, PAGE_LIMIT[(kind, exchange)], result, task, on_page,
                     pace=PACE[(kind, exchange)] if pace is None else pace,
                     retrying=lambda call, what: _retrying(call, retries=retries, delay=retry_delay, task=task,
                                                           what=what),
                     what=f"{what0} {'open interest' if kind == OI else 'funding'}")
    try:
        walker.run(start_ms, end_ms)
    except Cancelled:
        result.cancelled = True
    except FetchError as exc:
        exc.partial = result
        raise
    return result


class _Walker:
    """Walks ``[a, b)`` window by window (each at most ``limit`` units long, so one request
    usually covers it), in ascending time, emitting each window's rows at once.

    Inside a window, a full page (``limit`` rows), or on the OI grid a page that leaves room for
    an older (newest-first endpoints) or newer (oldest-first) snapshot, is followed by a request
    for the rest of the window; an empty page ends the window."""

    def __init__(self, kind, exchange, source, step, limit, result, task, on_page, *, pace, retrying, what):
        self.kind, self.exchange, self.source, self.step, self.limit = kind, exchange, source, step, limit
        self.result, self.task, self.on_page, self.pace, self.retrying, self.what = (
            result, task, on_page, pace, retrying, what)
        self.last_request = 0.0
        self.prev_ts: int | None = None  # funding: the settlement before the current row
        self.pending: dict | None = None  # funding: the last row, waiting for its successor when it had no predecessor

    # -- requests ------------------------------------------------------------------
    def request(self, lo: int, hi: int, limit: int) -> list[dict]:
        """Rows with ``lo <= ts <= hi`` (one request, paced and retried)."""
        if self.pace > 0:
            wait = self.last_request + self.pace - time.monotonic()
            if wait > 0 and self.task.cancel.wait(wait):
                raise Cancelled("cancelled")
        self.task.check()
        try:
            raw = self.retrying(lambda: self.source.call(lo, hi, limit), self.what)
        finally:
            self.last_request = time.monotonic()
            self.result.requests += 1
        try:
            rows = self.source.parse(raw)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{self.what}: malformed answer from the exchange ({_why(exc, raw)})") from exc
        if self.source.extra is not None and rows:
            rows = self.source.extra(self, rows, lo, hi)
        return [r for r in rows if lo <= r["ts"] <= hi]

    # -- the walk --------------------------------------------------------------------
    def run(self, a: int, b: int) -> None:
        unit = self.step
        width = self.limit * unit
        total = -(-(b - a) // unit)
        done = 0
        self.task.progress(0, total)
        if self.kind == FUNDING:
            before = self.request(max(0, a - DAY_MS), a - 1, self.limit)
            self.prev_ts = max((r["ts"] for r in before), default=None)
        cursor = a
        while cursor < b:
            hi = min(b, cursor + width)  # window [cursor, hi)
            rows = self.window(cursor, hi - 1)
            self.emit(rows, final=hi >= b)
            done += -(-(hi - cursor) // unit)
            cursor = hi
            # a settlement held back for its successor is not done yet: a resume starts at it
            self.result.resume_from = from_ms(cursor if self.pending is None else min(cursor, self.pending["ts"]))
            self.task.progress(min(done, total), total)
        if self.pending is not None:
            self.emit([], final=True)

    def window(self, lo: int, hi: int) -> list[dict]:
        seen: dict[int, dict] = {}
        while lo <= hi:
            rows = self.request(lo, hi, self.limit)
            new = [r for r in rows if r["ts"] not in seen]
            if not new:
                break
            for r in new:
                seen[r["ts"]] = r
            ts = [r["ts"] for r in rows]
            grid = self.kind == OI
            if self.source.newest_first:
                oldest = min(ts)
                if not (len(rows) >= self.limit or (grid and oldest - self.step >= lo)):
                    break
                hi = oldest - 1
            else:
                newest = max(ts)
                if not (len(rows) >= self.limit or (grid and newest + self.step <= hi)):
                    break
                lo = newest + 1
            self.task.check()
        return [seen[t] for t in sorted(seen)]

    def emit(self, rows: list[dict], *, final: bool) -> None:
        if self.kind == FUNDING:
            rows = self.intervals(rows, final=final)
        if not rows:
            return
        r = self.result
        df = pd.DataFrame(rows)
        df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True)
        df["exchange"], df["symbol"], df["asset"], df["source"] = r.exchange, r.symbol, r.asset, self.source.name
        df = df[OI_COLUMNS if self.kind == OI else FUNDING_COLUMNS]
        df = df.astype({c: "float64" for c in df.columns if c not in ("ts", "exchange", "symbol", "asset", "source")})
        r.frame = df.reset_index(drop=True) if r.frame.empty else pd.concat([r.frame, df], ignore_index=True)
        if self.on_page is not None:
            self.on_page(df)

    def intervals(self, rows: list[dict], *, final: bool) -> list[dict]:
        """``interval_hours`` of each settlement: the spacing to the previous one; a settlement
        with none before it (the first after listing) takes the spacing to the next one."""
        out = []
        if self.pending is not None:
            rows = [self.pending, *rows]
            self.pending = None
        for i, row in enumerate(rows):
            if self.prev_ts is not None:
                row["interval_hours"] = _hours(row["ts"] - self.prev_ts)
            elif i + 1 < len(rows):
                row["interval_hours"] = _hours(rows[i + 1]["ts"] - row["ts"])
            elif not final:
                self.pending = row  # its successor is in the next window
                continue
            else:
                row["interval_hours"] = self.source.declared_interval_hours()
            self.prev_ts = row["ts"]
            out.append(row)
        return out


def _hours(ms: int) -> float:
    return round(ms / 60_000) / 60  # settlement times carry a few ms of jitter: whole minutes


# ---------------------------------------------------------------------------
# the exchanges
# ---------------------------------------------------------------------------
class _Source:
    name = ""
    newest_first = False
    extra = None  # (walker, rows, lo, hi) -> rows: a second request completing rows (Bybit prices)

    def __init__(self, client, market, period):
        self.client, self.market, self.period = client, market, period
        self.info = market.get("info") or {}

    def call(self, lo: int, hi: int, limit: int):
        raise NotImplementedError

    def parse(self, raw) -> list[dict]:
        raise NotImplementedError

    def declared_interval_hours(self) -> float:
        return math.nan


def _json(raw, shape):
    """``raw`` as the documented JSON ``shape`` (list or dict), else a ValueError saying what came."""
    if isinstance(raw, (bytes, str)):
        raise ValueError(f"not JSON: {_clip(raw)}")
    if not isinstance(raw, shape):
        raise ValueError(f"expected a JSON {'list' if shape is list else 'object'}, got {_clip(json.dumps(raw))}")
    return raw


def _num(value) -> float:
    """A documented decimal string (or number) as float; empty or missing is not a number."""
    if value is None or value == "" or isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    out = float(value)
    if math.isnan(out) or math.isinf(out):
        raise ValueError(f"expected a finite number, got {value!r}")
    return out


def _int(value) -> int:
    if value is None or value == "" or isinstance(value, bool):
        raise ValueError(f"expected a time in ms, got {value!r}")
    return int(str(value))


class _BinanceOI(_Source):
    """GET /futures/data/openInterestHist (symbol, period, limit <= 500, startTime, endTime), oldest first.

    Binance: ``sumOpenInterest`` "total open interest" (in base units: BTC for BTCUSDT),
    ``sumOpenInterestValue`` "total open interest value" (in the quote asset, USDT)."""

    name = "binance-rest"

    def call(self, lo, hi, limit):
        return self.client.fapiDataGetOpenInterestHist({"symbol": self.market["id"], "period": self.period,
                                                        "startTime": lo, "endTime": hi, "limit": limit})

    def parse(self, raw):
        return [{"ts": _int(r["timestamp"]), "oi_base": _num(r["sumOpenInterest"]),
                 "oi_usd": _num(r["sumOpenInterestValue"])} for r in _json(raw, list)]


class _BinanceFunding(_Source):
    """GET /fapi/v1/fundingRate (symbol, startTime, endTime inclusive, limit <= 1000), oldest first."""

    name = "binance-rest"

    def call(self, lo, hi, limit):
        return self.client.fapiPublicGetFundingRate({"symbol": self.market["id"], "startTime": lo, "endTime": hi,
                                                     "limit": limit})

    def parse(self, raw):
        return [{"ts": _int(r["fundingTime"]), "rate": _num(r["fundingRate"])} for r in _json(raw, list)]


def _bybit_list(raw) -> list:
    doc = _json(raw, dict)
    items = doc["result"]["list"]
    if not isinstance(items, list):
        raise ValueError(f"expected result.list to be a list, got {_clip(json.dumps(items))}")
    return items


class _BybitOI(_Source):
    """GET /v5/market/open-interest (category, symbol, intervalTime, startTime, endTime, limit <= 200),
    newest first. Bybit: ``openInterest`` "Open interest. The value is the sum of both sides. The unit
    of value, e.g., BTCUSD(inverse) is USD, BTCUSDT(linear) is BTC". No value in USD: that is
    ``openInterest`` × the mark price at ``timestamp`` (the open of the mark-price candle starting then,
    GET /v5/market/mark-price-kline)."""

    name = "bybit-rest"
    newest_first = True

    def call(self, lo, hi, limit):
        return self.client.publicGetV5MarketOpenInterest({
            "category": "linear", "symbol": self.market["id"], "intervalTime": OI_PERIODS["bybit"][self.period],
            "startTime": lo, "endTime": hi, "limit": limit})

    def parse(self, raw):
        return [{"ts": _int(r["timestamp"]), "oi_base": _num(r["openInterest"]), "oi_usd": math.nan}
                for r in _bybit_list(raw)]

    @staticmethod
    def extra(walker, rows, lo, hi):
        src = walker.source
        first, last = min(r["ts"] for r in rows), max(r["ts"] for r in rows)
        raw = walker.retrying(lambda: src.client.publicGetV5MarketMarkPriceKline({
            "category": "linear", "symbol": src.market["id"], "interval": _BYBIT_KLINE[src.period],
            "start": first, "end": last, "limit": 1000}), f"{walker.what} (mark price)")
        walker.result.requests += 1
        try:
            prices = {_int(k[0]): _num(k[1]) for k in _bybit_list(raw)}  # [startTime, open, high, low, close]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{walker.what} (mark price): malformed answer from the exchange "
                                    f"({_why(exc, raw)})") from exc
        for r in rows:
            price = prices.get(r["ts"])
            r["oi_usd"] = r["oi_base"] * price if price is not None else math.nan
        return rows


class _BybitFunding(_Source):
    """GET /v5/market/funding/history (category, symbol, startTime, endTime, limit <= 200), newest first:
    ``fundingRate``, ``fundingRateTimestamp`` (ms)."""

    name = "bybit-rest"
    newest_first = True

    def call(self, lo, hi, limit):
        return self.client.publicGetV5MarketFundingHistory({"category": "linear", "symbol": self.market["id"],
                                                             "startTime": lo, "endTime": hi, "limit": limit})

    def parse(self, raw):
        return [{"ts": _int(r["fundingRateTimestamp"]), "rate": _num(r["fundingRate"])} for r in _bybit_list(raw)]

    def declared_interval_hours(self):
        minutes = self.info.get("fundingInterval")  # instruments-info: minutes
        return float(minutes) / 60 if minutes not in (None, "") else math.nan


def _okx_data(raw) -> list:
    doc = _json(raw, dict)
    data = doc["data"]
    if not isinstance(data, list):
        raise ValueError(f"expected data to be a list, got {_clip(json.dumps(data))}")
    return data


class _OkxOI(_Source):
    """GET /api/v5/rubik/stat/contracts/open-interest-history (instId, period, begin, end, limit <= 100),
    newest first; both bounds exclusive. Each record is ``[ts, oi, oiCcy, oiUsd]``: OKX ``oi`` "Open
    interest in the unit of contracts", ``oiCcy`` "in the unit of crypto", ``oiUsd`` "in the unit of
    USD". Linear swaps: base = contracts × ``ctVal`` × ``ctMult`` (``ctValCcy`` is the base); inverse
    swaps (``ctValCcy`` USD): base = ``oiCcy``."""

    name = "okx-rest"
    newest_first = True

    def __init__(self, client, market, period):
        super().__init__(client, market, period)
        info = self.info
        self.linear = bool(market.get("linear"))
        if self.linear:
            if str(info.get("ctValCcy", "")).upper() != str(market.get("base", "")).upper():
                raise FetchError(f"okx {market['id']}: contract value is in {info.get('ctValCcy')!r}, not the "
                                 f"base currency; open interest cannot be converted")
            self.per_contract = _num(info["ctVal"]) * _num(info.get("ctMult") or 1)

    def call(self, lo, hi, limit):
        return self.client.publicGetRubikStatContractsOpenInterestHistory({
            "instId": self.market["id"], "period": OI_PERIODS["okx"][self.period], "begin": lo - 1, "end": hi + 1,
            "limit": limit})

    def parse(self, raw):
        out = []
        for rec in _okx_data(raw):
            ts, contracts, ccy, usd = rec[0], rec[1], rec[2], rec[3]
            base = _num(contracts) * self.per_contract if self.linear else _num(ccy)
            out.append({"ts": _int(ts), "oi_base": base, "oi_usd": _num(usd)})
        return out


class _OkxFunding(_Source):
    """GET /api/v5/public/funding-rate-history (instId, before = newer than, after = older than,
    limit <= 100), newest first. OKX: ``fundingRate`` "Predicted funding rate", ``realizedRate``
    "Actual funding rate", ``fundingTime`` "Settlement time". The rate paid is ``realizedRate``."""

    name = "okx-rest"
    newest_first = True

    def call(self, lo, hi, limit):
        return self.client.publicGetPublicFundingRateHistory({"instId": self.market["id"], "before": lo - 1,
                                                              "after": hi + 1, "limit": limit})

    def parse(self, raw):
        return [{"ts": _int(r["fundingTime"]), "rate": _num(r["realizedRate"])} for r in _okx_data(raw)]


_SOURCES = {(OI, "binance"): _BinanceOI, (FUNDING, "binance"): _BinanceFunding, (OI, "bybit"): _BybitOI,
            (FUNDING, "bybit"): _BybitFunding, (OI, "okx"): _OkxOI, (FUNDING, "okx"): _OkxFunding}


# ---------------------------------------------------------------------------
# history limits
# ---------------------------------------------------------------------------
def _floor_ms(kind: str, exchange: str, now_ms: int, step: int, period: str | None) -> int | None:
    """First time ``exchange`` serves ``kind`` history at ``now_ms`` (None: back to listing)."""
    if kind == OI and exchange == "binance":  # "Only the data of the latest 1 month is available."
        # 30 days, plus a minute for a clock behind Binance's: a startTime older than it serves is refused
        return -(-(now_ms - 30 * DAY_MS + 60_000) // step) * step
    if kind == OI and exchange == "okx":  # "This endpoint can retrieve the latest 1,440 data entries."
        floor = (now_ms // step - 1439) * step
        if period == "1d":  # "For period=1D, the data time range is up to January 1, 2024"
            floor = max(floor, _OKX_DAILY_FIRST_MS)
        return floor
    if kind == FUNDING and exchange == "okx":  # "This endpoint can retrieve data from the last 3 months."
        return to_ms(from_ms(now_ms) - pd.DateOffset(months=3))
    return None


def _notice(kind, exchange, symbol, asked: pd.Timestamp, floor: pd.Timestamp, end: pd.Timestamp) -> HistoryNotice:
    what = "open interest" if kind == OI else "funding"
    limit = {(OI, "binance"): "for the last 30 days only", (OI, "okx"): "for its latest 1,440 records only",
             (FUNDING, "okx"): "for the last 3 months only"}[(kind, exchange)]
    head = f"{NAMES[exchange]} serves {what} history {limit}"
    if floor >= end:
        msg = (f"{head}; nothing of {symbol} from {_fmt(asked)} to {_fmt(end)} can be fetched "
               f"(the oldest it serves is {_fmt(floor)})")
    else:
        msg = f"{head}; {symbol} fetched from {_fmt(floor)}, not from {_fmt(asked)} as asked"
    return HistoryNotice(kind, exchange, symbol, asked, floor, msg)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _exchange(exchange: str) -> str:
    exchange = exchange.lower()
    if exchange not in NAMES:
        raise ValueError(f"unknown exchange {exchange!r} (known: {', '.join(NAMES)})")
    return exchange


def _step_ms(period: str) -> int:
    try:
        n, unit = int(period[:-1]), period[-1]
        return n * {"m": 60_000, "h": HOUR_MS, "d": DAY_MS}[unit]
    except (ValueError, KeyError, IndexError):
        raise FetchError(f"invalid period {period!r}: expected e.g. 5m, 1h, 1d") from None


def _empty(kind: str) -> pd.DataFrame:
    cols = OI_COLUMNS if kind == OI else FUNDING_COLUMNS
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    df["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in ("exchange", "symbol", "asset", "source"):
        df[c] = pd.Series(dtype="object")
    return df


def _fmt(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def _clip(text, n: int = 80) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[:n] + "…")


def _why(exc: BaseException, raw) -> str:
    if isinstance(exc, KeyError):
        return f"field {exc.args[0]!r} missing in {_clip(raw if isinstance(raw, (str, bytes)) else json.dumps(raw))}"
    return " ".join(str(exc).split())[:160] or type(exc).__name__
