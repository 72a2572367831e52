"""Paginated, resumable candle fetching through ccxt against a loopback HTTP server."""
from __future__ import annotations

import threading

import pandas as pd
import pytest

from connector_fakes import synthetic_candle
from liqscope.models.connectors.candles import FetchError, fetch_candles, make_client, missing_ranges

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
                        page_limit=50, progress=seen.append)
    assert res.requests == 6 and res.rows == 300
    starts = [int(q["startTime"]) for _p, q in http.kline_requests()]
    assert starts == [_ms(START) + i * 50 * MIN for i in range(6)]
    assert seen[0].fraction == 0 and seen[-1].fraction == 1 and seen[-1].rows == 300


def test_resumes_after_interruption(http, store):
    """The server fails from the 4th page on: the 3 stored pages stay, and a
    second run fetches only the rest, without duplicates."""
    http.fail_after = 3
    with pytest.raises(FetchError, match="ExchangeNotAvailable|503|after 1 retries"):
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
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        retry_delay=0.01)
    assert res.rows == 300 and len(http.kline_requests()) == 2


def test_cancel_between_pages(http, store):
    cancel = threading.Event()

    def progress(p):
        if p.requests == 2:
            cancel.set()
    res = fetch_candles("binance", "BTC/USDT:USDT", "1m", START, END, store=store, api_base=http.base, now=NOW,
                        page_limit=50, progress=progress, cancel=cancel)
    assert res.cancelled and res.requests == 2 and len(store.candles[("binance", "BTCUSDT", "1m")]) == 100


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
