"""Historical candles from exchanges' public REST APIs, through ccxt.

``fetch_candles`` asks the store what it already holds
(``candle_coverage``), fetches only the missing ranges page by page with
ccxt's ``fetch_ohlcv`` (ccxt throttles to each exchange's rate limit; rate-limit
and network errors are retried with exponential backoff), and appends each page
to the store as it arrives. An interrupted fetch therefore resumes where it
stopped. Only closed candles are stored (the end is clamped to the current,
still-forming candle's open time).

Progress and cancel follow :mod:`liqscope.models.progress`: pages are reported
as ``task.progress(candles done, candles to fetch)``, and every failed request
is reported at once with its reason in words (``task.note``), so an offline
machine says so on the first failure rather than after the last retry. Final
errors are typed (:class:`NetworkUnreachable`, :class:`ExchangeUnavailable`,
both :class:`FetchError`) so callers branch on the type, not the message.

Every request goes to ``exchange.urls['api']``; ``api_base`` rewrites those
URLs' scheme and host (keeping the paths), which is how tests serve the
exchange from a loopback HTTP server. ``markets`` (ccxt's unified market
structures) skips the markets download.

Store keys: ``exchange`` is ``binance``/``okx``/``bybit`` for derivatives and
``binance-spot``/``okx-spot``/``bybit-spot`` for spot markets (Binance and
Bybit give spot and perpetual the same id, and the price pane picks a series by
asset and exchange); ``symbol`` is the exchange's native id (``BTCUSDT``,
``BTC-USDT-SWAP``); ``asset`` the base currency.
"""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field

import pandas as pd

from ..errors import UserError
from ..progress import Cancelled, Task, quiet
from ..timeutil import from_ms, parse_time, to_ms
from .netcause import network_cause

EXCHANGE_IDS = ("binance", "okx", "bybit")

# Largest page each endpoint serves (ccxt caps Binance at 1000; OKX
# history-candles serves 100 per request; Bybit kline 1000).
PAGE_LIMIT = {"binance": 1000, "okx": 100, "bybit": 1000}

# What a user should know about each source's history (README has the details).
HISTORY_NOTES = {
    "binance": "USDⓈ-M klines (/fapi/v1/klines) go back to each contract's listing "
               "(BTCUSDT: September 2019); 1000 candles per request.",
    "okx": "history-candles (/api/v5/market/history-candles) go back to each swap's listing; "
           "100 candles per request, so 1-minute history is slow to fetch.",
    "bybit": "v5 kline (/v5/market/kline) goes back to each contract's launch "
             "(BTCUSDT: March 2020); 1000 candles per request.",
}


class FetchError(UserError, RuntimeError):
    """The exchange could not serve the request (after retries); one-line message.

    ``cause`` says why in words (empty when the message says it all)."""

    def __init__(self, message: str, cause: str = ""):
        super().__init__(message)
        self.cause = cause


class NetworkUnreachable(FetchError):
    """No answer from the exchange through every retry (offline, name resolution,
    refused, timed out). ``offline`` is True when the machine has no usable network."""

    def __init__(self, message: str, cause: str, *, offline: bool = False):
        super().__init__(message, cause)
        self.offline = offline


class ExchangeUnavailable(FetchError):
    """The exchange answered but kept refusing through every retry (rate limit, maintenance, HTTP 5xx)."""


@dataclass
class FetchResult:
    exchange: str  # store key (binance, okx-spot...)
    symbol: str  # native id
    interval: str
    asset: str
    start: pd.Timestamp
    end: pd.Timestamp
    missing: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    rows: int = 0
    new: int = 0
    requests: int = 0
    cancelled: bool = False


def point_at(client, api_base: str) -> None:
    """Send every API URL of a ccxt client to ``api_base`` (scheme://host[:port]),
    keeping the paths."""
    base = urllib.parse.urlsplit(api_base)
    if not base.scheme or not base.netloc:
        raise ValueError(f"api base must look like http://host:port, not {api_base!r}")

    def swap(value):
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, str) and "://" in value:
            u = urllib.parse.urlsplit(value)
            path = base.path.rstrip("/") + u.path
            return urllib.parse.urlunsplit((base.scheme, base.netloc, path, u.query, u.fragment))
        return value

    client.urls["api"] = swap(client.urls["api"])


def is_spot(symbol: str) -> bool:
    return ":" not in symbol


def make_client(exchange: str, symbol: str, *, api_base: str | None = None, timeout_ms: int = 20_000):
    """A ccxt client for ``exchange`` loading only the market kind ``symbol`` needs."""
    import ccxt

    exchange = exchange.lower()
    if exchange not in EXCHANGE_IDS:
        raise ValueError(f"unknown exchange {exchange!r} (known: {', '.join(EXCHANGE_IDS)})")
    spot = is_spot(symbol)
    pair, _, settle_part = symbol.partition(":")
    quote = pair.split("/")[-1]
    inverse = not spot and settle_part.split("-")[0] != quote
    dated = "-" in settle_part  # BTC/USDT:USDT-250627 is a delivery future
    if spot:
        types = ["spot"]
    elif exchange == "okx":
        types = ["future"] if dated else ["swap"]
    else:
        types = ["inverse" if inverse else "linear"]
    client = getattr(ccxt, exchange)({
        "enableRateLimit": True,
        "timeout": timeout_ms,
        "options": {"defaultType": "spot" if spot else "swap", "fetchMarkets": {"types": types},
                    "fetchCurrencies": False, "adjustForTimeDifference": False},
    })
    if api_base:
        point_at(client, api_base)
    return client


def intervals(exchange: str, symbol: str = "BTC/USDT:USDT") -> list[str]:
    """Candle intervals the exchange serves for this kind of market (no network)."""
    return list(make_client(exchange, symbol).timeframes)


def client_with_market(exchange: str, symbol: str, *, client=None, markets=None, api_base: str | None = None,
                       retries: int = 3, retry_delay: float = 1.0, task: Task | None = None):
    """A ccxt client (``client``, else a new one) with its markets (``markets``, else downloaded once) and
    the market of ``symbol``; FetchError in words when the exchange has no such market."""
    if client is None:
        client = make_client(exchange, symbol, api_base=api_base)
    if markets is not None:
        client.set_markets(list(markets.values()) if isinstance(markets, dict) else list(markets))
    elif not client.markets:
        _retrying(client.load_markets, retries=retries, delay=retry_delay, task=task, what=f"{exchange} markets")
    if symbol not in client.markets:
        raise FetchError(f"{exchange} has no market {symbol!r} (use ccxt's unified form, e.g. BTC/USDT:USDT)")
    return client, client.market(symbol)


def list_symbols(exchange: str, *, spot: bool = False, api_base: str | None = None, quote: str | None = None,
                 retries: int = 3, task: Task | None = None) -> list[str]:
    """Active unified symbols (e.g. ``BTC/USDT:USDT``): perpetual swaps, or spot
    pairs with ``spot=True``; one markets download (blocking)."""
    client = make_client(exchange, "BTC/USDT" if spot else "BTC/USDT:USDT", api_base=api_base)
    _retrying(client.load_markets, retries=retries, delay=1.0, task=task or quiet(), what=f"{exchange} markets")
    out = []
    for sym, m in client.markets.items():
        if m.get("active") is False or (quote and m.get("quote") != quote):
            continue
        if (spot and m.get("spot")) or (not spot and m.get("swap")):
            out.append(sym)
    return sorted(out)


def missing_ranges(coverage, start_ms: int, end_ms: int, step_ms: int) -> list[tuple[int, int]]:
    """Parts of ``[start_ms, end_ms)`` not covered. Each covered ``(a, b)`` is
    taken as the candles opening in ``[a, b)``; a store whose ``b`` is the last
    candle's open time then costs one re-fetched candle, never a hole."""
    spans = []
    for a, b in coverage or []:
        a_ms, b_ms = to_ms(a), to_ms(b)
        if b_ms > a_ms:
            spans.append((a_ms, b_ms))
    spans.sort()
    out, cursor = [], start_ms
    for a, b in spans:
        if b <= cursor:
            continue
        if a >= end_ms:
            break
        if a > cursor:
            out.append((cursor, min(a, end_ms)))
        cursor = max(cursor, b)
    if cursor < end_ms:
        out.append((cursor, end_ms))
    # align starts to candle boundaries
    aligned = []
    for a, b in out:
        a = -(-a // step_ms) * step_ms
        if a < b:
            aligned.append((a, b))
    return aligned


def _retrying(call, *, retries: int, delay: float, task: Task, what: str):
    """``call()``, retrying network errors and rate limits with exponential backoff.

    Each failure is reported at once (``task.note``) with its reason and the
    retry to come; a cancel while waiting raises :class:`Cancelled`."""
    import ccxt

    attempt = 0
    while True:
        task.check()
        try:
            return call()
        except ccxt.NetworkError as exc:  # also rate limits, timeouts and 5xx answers
            attempt += 1
            problem, error = _problem(exc)
            if attempt > retries:
                tries = f"after {retries} retries" if retries else "(no retries)"
                raise error(f"{what}: {problem} {tries}") from exc
            wait = delay * 2 ** (attempt - 1)
            task.note(f"{what}: {problem} — retry {attempt} of {retries} in {wait:g} s")
            if task.cancel.wait(wait):
                raise Cancelled("cancelled") from None
        except ccxt.BadSymbol as exc:
            raise FetchError(f"{what}: unknown symbol: {_short(exc)}") from exc
        except ccxt.BaseError as exc:
            raise FetchError(f"{what}: {type(exc).__name__}: {_short(exc)}") from exc


def _problem(exc: BaseException):
    """What went wrong in words, and a factory for the error to raise if it persists."""
    import ccxt

    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        cause = "rate limited by the exchange"
        return cause, lambda msg: ExchangeUnavailable(msg, cause)
    net = network_cause(exc)  # before ExchangeNotAvailable: ccxt's asyncio client files DNS failures there
    if net is not None:
        return (f"cannot reach the exchange ({net.text})",
                lambda msg: NetworkUnreachable(msg, net.text, offline=net.offline))
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        cause = f"exchange unavailable: {_innermost(exc)}"
        return cause, lambda msg: ExchangeUnavailable(msg, cause)
    cause = f"network error: {_innermost(exc)}"
    return f"cannot reach the exchange ({cause})", lambda msg: NetworkUnreachable(msg, cause)


def _innermost(exc: BaseException) -> str:
    """The deepest non-empty message of the chain (ccxt's own is just ``exchange GET url``)."""
    text, seen = _short(exc), set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if str(exc).strip():
            text = _short(exc)
        exc = exc.__cause__ or exc.__context__
    return text


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def store_exchange_name(exchange: str, symbol: str) -> str:
    return f"{exchange}-spot" if is_spot(symbol) else exchange


def fetch_candles(
    exchange: str,
    symbol: str,
    interval: str,
    start,
    end=None,
    *,
    store=None,
    api_base: str | None = None,
    markets=None,
    client=None,
    task: Task | None = None,
    page_limit: int | None = None,
    retries: int = 5,
    retry_delay: float = 1.0,
    now=None,
) -> FetchResult:
    """Fetch ``symbol`` (ccxt unified, e.g. ``BTC/USDT:USDT``) candles of
    ``interval`` for ``[start, end)`` into ``store``, skipping what it holds.

    Blocking: run it in a worker thread from a GUI. ``task`` receives a step
    after every page (candles done of candles to fetch) and a note on every
    failed request; cancelling it stops the fetch between pages (or while
    waiting to retry), keeping what was stored, and returns the result with
    ``cancelled=True``. A cancel during the markets download, before anything
    is stored, raises :class:`~liqscope.models.progress.Cancelled`.
    """
    task = task or quiet()
    exchange = exchange.lower()
    client, market = client_with_market(exchange, symbol, client=client, markets=markets, api_base=api_base,
                                        retries=retries, retry_delay=retry_delay, task=task)
    if interval not in client.timeframes:
        raise FetchError(f"{exchange} has no interval {interval!r} (available: {', '.join(client.timeframes)})")
    step = int(client.parse_timeframe(interval)) * 1000
    now_ms = to_ms(parse_time(now)) if now is not None else int(time.time() * 1000)
    start_ms = -(-to_ms(parse_time(start)) // step) * step
    last_closed_end = (now_ms // step) * step
    end_ms = min(to_ms(parse_time(end)), last_closed_end) if end is not None else last_closed_end
    listed = market.get("created")
    if listed:
        start_ms = max(start_ms, (int(listed) // step) * step)
    name = store_exchange_name(exchange, symbol)
    native = str(market["id"])
    asset = str(market.get("base") or native).upper()
    if store is None:
        from ..store import open_store

        store = open_store()
    result = FetchResult(name, native, interval, asset, from_ms(start_ms), from_ms(max(start_ms, end_ms)))
    if end_ms <= start_ms:
        return result
    ranges = missing_ranges(store.candle_coverage(name, native, interval), start_ms, end_ms, step)
    result.missing = [(from_ms(a), from_ms(b)) for a, b in ranges]
    pager = _Pager(client, symbol, interval, step, page_limit or PAGE_LIMIT.get(exchange, 500), store, result,
                   task, lambda call: _retrying(call, retries=retries, delay=retry_delay, task=task,
                                                what=f"{exchange} {symbol} {interval}"))
    try:
        pager.run(ranges)
    except Cancelled:
        result.cancelled = True
    return result


class _Pager:
    """Walks missing ranges page by page into the store, counting into ``result``."""

    def __init__(self, client, symbol: str, interval: str, step: int, limit: int, store, result: FetchResult,
                 task: Task, retrying):
        self.client, self.symbol, self.interval, self.step, self.limit = client, symbol, interval, step, limit
        self.store, self.result, self.task, self.retrying = store, result, task, retrying
        self.done = self.total = 0

    def run(self, ranges: list[tuple[int, int]]) -> None:
        self.total = sum(b - a for a, b in ranges)
        self.report()
        for a, b in ranges:
            cursor = a
            while cursor < b:
                self.task.check()
                nxt = self.page(cursor, b)
                if nxt is None:
                    continue  # the page size shrank: same cursor again
                nxt = max(nxt, cursor + self.step)
                self.done += min(nxt, b) - cursor
                cursor = nxt
                self.report()

    def report(self) -> None:
        """Progress in candles (not milliseconds), so a terminal bar reads naturally."""
        self.task.progress(self.done // self.step, self.total // self.step)

    def page(self, cursor: int, b: int) -> int | None:
        """Fetch and store the page at ``cursor``; the next cursor, or None to retry with a smaller page."""
        step = self.step
        until = min(b, cursor + self.limit * step) - 1
        rows = self.request(cursor, until, self.limit)
        first = int(rows[0][0]) if rows else None
        if rows and first > cursor and len(rows) < (until - cursor) // step + 1:
            # OKX and Bybit answer with the *newest* rows of a window: a server
            # serving fewer rows than asked would silently skip older candles.
            if self.request(cursor, first - 1, 1):
                self.limit = max(1, len(rows))  # page size the server actually serves
                return None
        if rows:
            self.store_rows(rows)
            return int(rows[-1][0]) + step
        if until + 1 >= b:
            return b
        found = self.next_open(until + 1, b - 1)  # nothing in this window: jump to the next candle there is
        return b if found is None else found

    def request(self, since: int, until: int, n: int) -> list:
        rows = self.retrying(lambda: self.client.fetch_ohlcv(self.symbol, self.interval, since=since, limit=n,
                                                             params={"until": until}))
        self.result.requests += 1
        return sorted((r for r in rows if r and since <= int(r[0]) <= until), key=lambda r: r[0])

    def next_open(self, lo: int, hi: int) -> int | None:
        """First candle open time in [lo, hi] by bisection with 1-candle probes
        (skips years before a listing or a long outage in ~log2 requests); None if there is none."""
        if not self.request(lo, hi, 1):
            return None
        while hi - lo > self.limit * self.step:
            mid = lo + ((hi - lo) // 2 // self.step) * self.step
            if self.request(lo, mid, 1):
                hi = mid
            else:
                lo = mid + self.step
        return lo

    def store_rows(self, rows: list) -> None:
        r = self.result
        df = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
        df = df.drop_duplicates("ts", keep="last")
        df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True)
        df["volume"] = df["volume"].fillna(0.0)
        res = self.store.append_candles(df, exchange=r.exchange, symbol=r.symbol, interval=r.interval, asset=r.asset)
        r.rows += len(df)
        r.new += int(getattr(res, "new", len(df)))


