"""Historical candles from exchanges' public REST APIs, through ccxt.

``fetch_candles`` asks the store what it already holds
(``candle_coverage``), fetches only the missing ranges page by page with
ccxt's ``fetch_ohlcv`` (ccxt throttles to each exchange's rate limit; rate-limit
and network errors are retried with exponential backoff), and appends each page
to the store as it arrives. An interrupted fetch therefore resumes where it
stopped. Only closed candles are stored (the end is clamped to the current,
still-forming candle's open time).

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

import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ..timeutil import parse_time

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


class FetchError(RuntimeError):
    """The exchange could not serve the request (after retries); one-line message."""


@dataclass
class FetchProgress:
    done_ms: int
    total_ms: int
    rows: int
    requests: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.total_ms <= 0 else min(1.0, self.done_ms / self.total_ms)


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


def list_symbols(exchange: str, *, spot: bool = False, api_base: str | None = None, quote: str | None = None,
                 retries: int = 3) -> list[str]:
    """Active unified symbols (e.g. ``BTC/USDT:USDT``): perpetual swaps, or spot
    pairs with ``spot=True``; one markets download (blocking)."""
    client = make_client(exchange, "BTC/USDT" if spot else "BTC/USDT:USDT", api_base=api_base)
    _retrying(client.load_markets, retries=retries, delay=1.0, cancel=None, what=f"{exchange} markets")
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
        a_ms, b_ms = _ms(a), _ms(b)
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


def _ms(value) -> int:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return int(ts.value // 1_000_000)


def _retrying(call, *, retries: int, delay: float, cancel: threading.Event | None, what: str):
    import ccxt

    attempt = 0
    while True:
        try:
            return call()
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.RequestTimeout,
                ccxt.ExchangeNotAvailable, ccxt.NetworkError) as exc:
            attempt += 1
            if attempt > retries:
                raise FetchError(f"{what}: {type(exc).__name__} after {retries} retries: {_short(exc)}") from exc
            wait = delay * 2 ** (attempt - 1)
            if cancel is not None and cancel.wait(wait):
                return None
            if cancel is None:
                time.sleep(wait)
        except ccxt.BadSymbol as exc:
            raise FetchError(f"{what}: unknown symbol: {_short(exc)}") from exc
        except ccxt.BaseError as exc:
            raise FetchError(f"{what}: {type(exc).__name__}: {_short(exc)}") from exc


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
    progress: Callable[[FetchProgress], None] | None = None,
    cancel: threading.Event | None = None,
    page_limit: int | None = None,
    retries: int = 5,
    retry_delay: float = 1.0,
    now=None,
) -> FetchResult:
    """Fetch ``symbol`` (ccxt unified, e.g. ``BTC/USDT:USDT``) candles of
    ``interval`` for ``[start, end)`` into ``store``, skipping what it holds.

    Blocking: run it in a worker thread from a GUI. ``cancel`` (a
    ``threading.Event``) stops it between pages (what was stored stays);
    ``progress`` is called after every page.
    """
    exchange = exchange.lower()
    if client is None:
        client = make_client(exchange, symbol, api_base=api_base)
    if markets is not None:
        client.set_markets(list(markets.values()) if isinstance(markets, dict) else list(markets))
    elif not client.markets:
        _retrying(client.load_markets, retries=retries, delay=retry_delay, cancel=cancel,
                  what=f"{exchange} markets")
    if symbol not in client.markets:
        raise FetchError(f"{exchange} has no market {symbol!r} (use ccxt's unified form, e.g. BTC/USDT:USDT)")
    market = client.market(symbol)
    if interval not in client.timeframes:
        raise FetchError(f"{exchange} has no interval {interval!r} (available: {', '.join(client.timeframes)})")
    step = int(client.parse_timeframe(interval)) * 1000
    now_ms = _ms(parse_time(now)) if now is not None else int(time.time() * 1000)
    start_ms = -(-_ms(parse_time(start)) // step) * step
    last_closed_end = (now_ms // step) * step
    end_ms = min(_ms(parse_time(end)), last_closed_end) if end is not None else last_closed_end
    listed = market.get("created")
    if listed:
        start_ms = max(start_ms, (int(listed) // step) * step)
    name = store_exchange_name(exchange, symbol)
    native = str(market["id"])
    asset = str(market.get("base") or native).upper()
    if store is None:
        from ..store import open_store

        store = open_store()
    result = FetchResult(name, native, interval, asset, _ts(start_ms), _ts(max(start_ms, end_ms)))
    if end_ms <= start_ms:
        return result
    ranges = missing_ranges(store.candle_coverage(name, native, interval), start_ms, end_ms, step)
    result.missing = [(_ts(a), _ts(b)) for a, b in ranges]
    total = sum(b - a for a, b in ranges)
    done = 0
    limit = page_limit or PAGE_LIMIT.get(exchange, 500)

    def report():
        if progress is not None:
            progress(FetchProgress(done, total, result.rows, result.requests))

    report()
    what = f"{exchange} {symbol} {interval}"

    def request(since: int, until: int, n: int):
        rows = _retrying(lambda: client.fetch_ohlcv(symbol, interval, since=since, limit=n, params={"until": until}),
                         retries=retries, delay=retry_delay, cancel=cancel, what=what)
        result.requests += 1
        if rows is None:
            return None
        return sorted((r for r in rows if r and since <= int(r[0]) <= until), key=lambda r: r[0])

    def next_open(lo: int, hi: int):
        """First candle open time in [lo, hi] by bisection with 1-candle probes
        (skips years before a listing or a long outage in ~log2 requests);
        None if there is none, False if cancelled."""
        found = request(lo, hi, 1)
        if found is None:
            return False
        if not found:
            return None
        while hi - lo > limit * step:
            mid = lo + ((hi - lo) // 2 // step) * step
            found = request(lo, mid, 1)
            if found is None:
                return False
            if found:
                hi = mid
            else:
                lo = mid + step
        return lo

    for a, b in ranges:
        cursor = a
        while cursor < b:
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                return result
            until = min(b, cursor + limit * step) - 1
            rows = request(cursor, until, limit)
            if rows is None:  # cancelled while waiting to retry
                result.cancelled = True
                return result
            first = int(rows[0][0]) if rows else None
            if rows and first > cursor and len(rows) < (until - cursor) // step + 1:
                # OKX and Bybit answer with the *newest* rows of a window: a server
                # serving fewer rows than asked would silently skip older candles.
                older = request(cursor, first - 1, 1)
                if older is None:
                    result.cancelled = True
                    return result
                if older:
                    limit = max(1, len(rows))  # page size the server actually serves
                    continue
            if rows:
                df = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
                df = df.drop_duplicates("ts", keep="last")
                df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True)
                df["volume"] = df["volume"].fillna(0.0)
                res = store.append_candles(df, exchange=name, symbol=native, interval=interval, asset=asset)
                result.rows += len(df)
                result.new += int(getattr(res, "new", len(df)))
                nxt = int(rows[-1][0]) + step
            elif until + 1 >= b:
                nxt = b
            else:  # nothing in this window: jump to the next candle there is
                found = next_open(until + 1, b - 1)
                if found is False:
                    result.cancelled = True
                    return result
                nxt = b if found is None else found
            nxt = max(nxt, cursor + step)
            done += min(nxt, b) - cursor
            cursor = nxt
            report()
    return result


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")
