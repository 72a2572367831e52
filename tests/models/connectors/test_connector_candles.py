"""Paginated, resumable candle fetching through ccxt against a loopback HTTP server."""
from __future__ import annotations

import socket
import urllib.error

import ccxt
import pandas as pd
import pytest

from connector_fakes import synthetic_candle
from liqscope.models.connectors.candles import (ExchangeUnavailable, FetchError, NetworkUnreachable, fetch_candles,
                                                make_client, missing_ranges)
from liqscope.models.connectors.netcause import NAME_RESOLUTION, REFUSED, TIMED_OUT, network_cause
from liqscope.models.progress import Task

START, END = "2025-05-09T00:00Z", "2025-05-09T05:00Z"  # 300 one-minute candles
NOW = "2025-06-01T00:00Z"
MIN = 60_000


def _ms(text):
    return int(pd.Timestamp(text).value // 1_000_000)


@pytest.mark.parametrize("exchange,native,pages", [("binance", "BTCUSDT", 1), ("okx", "BTC-USDT-SWAP", 3),
                                                   ("bybit", "BTCUSDT", 1)])
def test_fetch_each_exchange(http, store, exchange, native, pages):
    res = fetch_candles(exchange, "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW)
    assert (res.exchange, res.symbol, res.asset, res.rows, res.new) == (exchange, native, "BTC", 300, 300)
    assert res.requests == pages == len(http.kline_requests())
    df = store.candles[(exchange, native, "1m")]
    assert len(df) == 300 and df["ts"].is_monotonic_increasing and df["ts"].is_unique
    assert df["ts"].iloc[0] == pd.Timestamp(START) and df["ts"].iloc[-1] == pd.Timestamp(END) - pd.Timedelta("1min")
    row = df.iloc[7]
    assert tuple(row[["open", "high", "low", "close", "volume"]]) == synthetic_candle(_ms(START) + 7 * MIN)
    assert store.assets[(exchange, native, "1m")] == "BTC"


def test_paginates_with_small_pages(http, store):
    seen = []
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        page_limit=50, task=Task(seen.append))
    assert res.requests == 6 and res.rows == 300
    starts = [int(q["startTime"]) for _p, q in http.kline_requests()]
    assert starts == [_ms(START) + i * 50 * MIN for i in range(6)]
    # one step before the first page and one after each, counted in candles
    assert [(s.done, s.total) for s in seen] == [(i * 50, 300) for i in range(7)]
    assert all(s.message == "" for s in seen)  # nothing to say when nothing fails


def test_resumes_after_interruption(http, store):
    """The server fails from the 4th page on: the 3 stored pages stay, and a
    second run fetches only the rest, without duplicates."""
    http.fail_after = 3
    with pytest.raises(ExchangeUnavailable, match="exchange unavailable: .*503.* after 1 retries"):
        fetch_candles("bybit", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                      page_limit=50, retries=1, retry_delay=0.01)
    assert len(store.candles[("bybit", "BTCUSDT", "1m")]) == 150
    http.fail_after = None
    http.requests.clear()
    res = fetch_candles("bybit", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        page_limit=50)
    assert res.missing == [(pd.Timestamp(START) + pd.Timedelta("150min"), pd.Timestamp(END))]
    assert res.requests == 3 and res.rows == 150 and res.new == 150
    first = http.kline_requests()[0][1]
    assert int(first["start"]) == _ms(START) + 150 * MIN
    df = store.candles[("bybit", "BTCUSDT", "1m")]
    assert len(df) == 300 and df["ts"].is_unique
    # A third run has nothing to do and sends no kline request.
    http.requests.clear()
    res = fetch_candles("bybit", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW)
    assert res.missing == [] and res.requests == 0 and http.kline_requests() == []


def test_fetches_only_holes(http, store):
    fetch_candles("okx", "BTC/USDT:USDT", "1m", "2025-05-09T01:00Z", "2025-05-09T02:00Z", store=store,
                  api_base=http.base, now=NOW)
    http.requests.clear()
    res = fetch_candles("okx", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW)
    assert [(a.hour, b.hour) for a, b in res.missing] == [(0, 1), (2, 5)]
    assert res.rows == 240 and len(store.candles[("okx", "BTC-USDT-SWAP", "1m")]) == 300


def test_server_serving_smaller_pages_loses_nothing(http, store):
    """OKX history-candles answers with the newest rows of the window; if it serves
    fewer than asked (its documented cap was 100, later 300), the older rows of the
    window must not be skipped."""
    http.okx_history_cap = 40
    res = fetch_candles("okx", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW)
    df = store.candles[("okx", "BTC-USDT-SWAP", "1m")]
    assert len(df) == 300 and df["ts"].is_unique and res.rows >= 300


def test_rate_limit_is_retried(http, store):
    http.rate_limit_once = True
    notes = []
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        retry_delay=0.01, task=Task(lambda s: s.message and notes.append(s.message)))
    assert res.rows == 300 and len(http.kline_requests()) == 2
    assert notes == ["binance BTC/USDT:USDT 1m: rate limited by the exchange — retry 1 of 5 in 0.01 s"]


def test_cancel_between_pages(http, store):
    def progress(step):
        if step.done == 100:  # after the second page
            task.cancel.set()
    task = Task(progress)
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        page_limit=50, task=task)
    assert res.cancelled and res.requests == 2 and len(store.candles[("binance", "BTCUSDT", "1m")]) == 100


def test_cancel_while_waiting_to_retry(http, store):
    """A cancel during the backoff wait ends the fetch at once, keeping the stored pages."""
    http.fail_after = 1

    def progress(step):
        if "retry 1 of" in step.message:
            task.cancel.set()
    task = Task(progress)
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        page_limit=50, retry_delay=60, task=task)
    assert res.cancelled and len(store.candles[("binance", "BTCUSDT", "1m")]) == 50
    assert len(http.kline_requests()) == 2  # no retry was sent


class Recording:
    """Attempts (requests sent by ccxt) and the task's notes, in the order they happened."""

    def __init__(self, client):
        self.log: list[tuple[str, str]] = []
        real = client.fetch

        def fetch(url, *args, **kwargs):
            self.log.append(("attempt", url))
            return real(url, *args, **kwargs)

        client.fetch = fetch
        self.task = Task(lambda step: step.message and self.log.append(("note", step.message)))

    def kinds(self):
        return [kind for kind, _ in self.log]

    def notes(self):
        return [text for kind, text in self.log if kind == "note"]


def test_offline_says_why_at_the_first_failure(store):
    """No name resolves (an offline machine): the first failed request is reported at
    once, in words, before the second attempt; every retry is reported; the final
    error is typed and keeps the cause."""
    client = make_client("binance", "BTC/USDT:USDT", api_base="http://nonexistent.invalid")
    rec = Recording(client)
    with pytest.raises(NetworkUnreachable) as info:
        fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, client=client, now=NOW,
                      retries=2, retry_delay=0.01, task=rec.task)
    assert rec.kinds() == ["attempt", "note", "attempt", "note", "attempt"]
    why = "binance markets: cannot reach the exchange (name resolution failed: are you offline?)"
    assert rec.notes() == [f"{why} — retry 1 of 2 in 0.01 s", f"{why} — retry 2 of 2 in 0.02 s"]
    err = info.value
    assert err.offline and err.cause == "name resolution failed: are you offline?"
    assert str(err) == f"{why} after 2 retries"
    assert isinstance(err, FetchError) and isinstance(err.__cause__, ccxt.NetworkError)


def test_refused_port_is_unreachable_not_offline(store, closed_port):
    client = make_client("bybit", "BTC/USDT:USDT", api_base=f"http://127.0.0.1:{closed_port}")
    rec = Recording(client)
    with pytest.raises(NetworkUnreachable) as info:
        fetch_candles("bybit", "BTC/USDT:USDT", "1m", START, END, store=store, client=client, now=NOW,
                      retries=1, retry_delay=0.01, task=rec.task)
    assert rec.kinds() == ["attempt", "note", "attempt"]
    assert "cannot reach the exchange (connection refused) — retry 1 of 1" in rec.notes()[0]
    assert info.value.cause == "connection refused" and not info.value.offline


def test_dns_failure_wrapped_by_the_client_mid_fetch(http, store):
    """A client raising ccxt.NetworkError chained from socket.gaierror between pages: the
    pages already stored stay, the note names the reason."""
    client = make_client("binance", "BTC/USDT:USDT", api_base=http.base)
    real, calls = client.fetch_ohlcv, []

    def fetch_ohlcv(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            try:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            except socket.gaierror as exc:
                raise ccxt.NetworkError("binance GET https://fapi.binance.com/fapi/v1/klines") from exc
        return real(*args, **kwargs)

    client.fetch_ohlcv = fetch_ohlcv
    notes = []
    with pytest.raises(NetworkUnreachable, match="name resolution failed") as info:
        fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, client=client, now=NOW,
                      page_limit=50, retries=1, retry_delay=0.01,
                      task=Task(lambda s: s.message and notes.append(s.message)))
    assert info.value.offline and len(notes) == 1 and "name resolution failed" in notes[0]
    assert len(store.candles[("binance", "BTCUSDT", "1m")]) == 50


@pytest.mark.parametrize("make_exc,kind", [
    (lambda: _chained(ccxt.ExchangeNotAvailable("okx GET url"), socket.gaierror(-2, "Name or service not known")),
     NAME_RESOLUTION),  # ccxt's asyncio client files DNS failures as ExchangeNotAvailable
    (lambda: urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")), NAME_RESOLUTION),
    (lambda: OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 1), "
                     "[Errno 111] Connect call failed ('::1', 1)"), REFUSED),  # asyncio joins them as text
    (lambda: ccxt.RequestTimeout("binance GET url"), TIMED_OUT),
    (lambda: _chained(ccxt.NetworkError("x"), OSError(101, "Network is unreachable")), "network-unreachable"),
])
def test_network_cause_reads_the_chain(make_exc, kind):
    assert network_cause(make_exc()).kind == kind


def test_not_a_network_cause():
    assert network_cause(ValueError("bad json")) is None
    assert network_cause(ccxt.ExchangeNotAvailable("binance GET url 503 Service Unavailable")) is None


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def test_only_closed_candles_and_listing_date(http, store):
    """The still-forming candle is never stored; nothing is asked before listing."""
    http.listed = (_ms("2025-05-09T01:00Z"), 2**62)
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", "2019-01-01", None, store=store, api_base=http.base,
                        now="2025-05-09T02:00:30Z")
    df = store.candles[("binance", "BTCUSDT", "1m")]
    assert df["ts"].iloc[-1] == pd.Timestamp("2025-05-09T01:59Z")
    # Listing date from exchangeInfo (onboardDate 1569398400000) bounds the first request...
    assert res.start == pd.Timestamp("2019-09-25T08:00Z")
    # ...and the years without candles before the fake's own first candle are skipped by
    # bisection, not walked page by page (2.9 million minutes would be ~2900 pages).
    assert len(df) == 60 and res.requests < 30


def test_spot_is_stored_apart(http, store):
    client = make_client("binance", "BTC/USDT")
    assert client.options["fetchMarkets"]["types"] == ["spot"]
    from liqscope.models.connectors.candles import store_exchange_name
    assert store_exchange_name("binance", "BTC/USDT") == "binance-spot"
    assert store_exchange_name("binance", "BTC/USDT:USDT") == "binance"


def test_errors_are_one_line(http, store):
    with pytest.raises(FetchError, match="no market 'DOGE/EUR:EUR'"):
        fetch_candles("binance", "DOGE/EUR:EUR", "1m", START, END, store=store, api_base=http.base, now=NOW)
    with pytest.raises(FetchError, match="no interval '7m'"):
        fetch_candles("binance", "BTC/USDT:USDT", "7m", START, END, store=store, api_base=http.base, now=NOW)
    with pytest.raises(ValueError, match="unknown exchange"):
        fetch_candles("kraken", "BTC/USDT:USDT", "1m", START, END, store=store)


def test_missing_ranges():
    step = MIN
    cov = [(pd.Timestamp("2025-01-01T00:10Z"), pd.Timestamp("2025-01-01T00:20Z")),
           (pd.Timestamp("2025-01-01T00:30Z"), pd.Timestamp("2025-01-01T00:40Z"))]
    a, b = _ms("2025-01-01T00:00Z"), _ms("2025-01-01T01:00Z")
    got = missing_ranges(cov, a, b, step)
    assert [((x - a) // MIN, (y - a) // MIN) for x, y in got] == [(0, 10), (20, 30), (40, 60)]
    assert missing_ranges([], a, b, step) == [(a, b)]
    assert missing_ranges([(pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC"))],
                          a, b, step) == []


def test_symbol_and_interval_lists(http):
    from liqscope.models.connectors import intervals, list_symbols

    assert list_symbols("binance", api_base=http.base) == ["BTC/USDT:USDT"]
    assert list_symbols("okx", api_base=http.base, quote="USDT") == ["BTC/USDT:USDT", "ETH/USDT:USDT",
                                                                     "IOST/USDT:USDT"]
    assert list_symbols("bybit", api_base=http.base) == ["BTC/USDT:USDT", "ROSE/USDT:USDT"]
    assert {"1m", "5m", "1h", "1d"} <= set(intervals("okx"))
    assert http.kline_requests() == []
