"""Open interest and funding history (models/connectors/context.py) against a loopback server.

:class:`ContextHTTP` serves the markets documents of the candle tests' fixtures and the
open interest / funding endpoints of Binance, Bybit and OKX, each with the pagination rules its
documentation states (quoted in fixtures/context/*.json and below): Binance answers oldest first
within ``[startTime, endTime]``; Bybit and OKX answer the *newest* ``limit`` records of the window;
OKX bounds are exclusive. Tests put records (in each exchange's documented shape) into the server,
fetch, and check exact values and conversions.
"""
from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from connector_fakes import fixture
from liqscope.models.connectors.candles import ExchangeUnavailable, FetchError, NetworkUnreachable, make_client
from liqscope.models.connectors.context import (FUNDING_COLUMNS, OI_COLUMNS, HistoryNotice, HistoryUnavailable,
                                                MalformedResponse, fetch_funding, fetch_open_interest, oi_periods,
                                                served_from)
from liqscope.models.errors import UserError
from liqscope.models.progress import Task

DOCS = {name: json.loads((Path(__file__).parent / "fixtures" / "context" / f"{name}.json").read_text())
        for name in ("binance", "bybit", "okx")}
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def _ms(text) -> int:
    return int(pd.Timestamp(text).value // 1_000_000)


def _t(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


# ---------------------------------------------------------------------------
# the loopback exchange
# ---------------------------------------------------------------------------
class ContextHTTP:
    """Binance / Bybit / OKX open interest and funding endpoints on 127.0.0.1.

    ``records[path]`` maps a ms time to a record in the exchange's documented shape.
    ``script[path]`` lists what to do on successive requests to that path instead of
    answering: ``"drop"`` (close the connection without a response), ``"html"`` (HTTP 200
    with a non-JSON body), ``(status, body)`` (a str body is sent as HTML); ``None`` answers normally.
    """

    OI_PATHS = {"binance": "/futures/data/openInterestHist", "bybit": "/v5/market/open-interest",
                "okx": "/api/v5/rubik/stat/contracts/open-interest-history"}
    FUNDING_PATHS = {"binance": "/fapi/v1/fundingRate", "bybit": "/v5/market/funding/history",
                     "okx": "/api/v5/public/funding-rate-history"}
    MARK = "/v5/market/mark-price-kline"

    def __init__(self):
        self.requests: list[tuple[str, dict, float]] = []
        self.records: dict[str, dict[int, object]] = {}
        self.script: dict[str, list] = {}
        self.markets = {name: fixture(name)["rest"] for name in ("binance", "bybit", "okx")}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
                owner.requests.append((u.path, q, time.monotonic()))
                action = owner.next_action(u.path)
                if action == "drop":
                    self.close_connection = True
                    return  # no status line: the client sees the connection closed mid-request
                if action == "html":
                    status, data, ctype = 200, b"<html><body>Gateway busy</body></html>", "text/html"
                elif action is not None:
                    status, body = action
                    text = isinstance(body, str)
                    data = body.encode() if text else json.dumps(body).encode()
                    ctype = "text/html" if text else "application/json"
                else:
                    status, body = owner.route(u.path, q)
                    data, ctype = json.dumps(body).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def next_action(self, path):
        steps = self.script.get(path)
        return steps.pop(0) if steps else None

    def calls(self, path) -> list[dict]:
        return [q for p, q, _ in self.requests if p == path]

    def put(self, path, records: dict[int, object]) -> None:
        self.records.setdefault(path, {}).update(records)

    def _within(self, path, lo, hi) -> list:
        """Records with lo <= ts <= hi, oldest first."""
        return [rec for t, rec in sorted(self.records.get(path, {}).items()) if lo <= t <= hi]

    def route(self, path, q):
        m = self.markets
        if path == "/fapi/v1/exchangeInfo":
            return 200, m["binance"]["exchangeInfo"]
        if path == "/api/v5/public/instruments":
            return 200, m["okx"]["instruments"]
        if path == "/v5/market/instruments-info":
            return 200, m["bybit"]["instruments-info"]
        big = 2**62
        if path in (self.OI_PATHS["binance"], self.FUNDING_PATHS["binance"]):
            # oldest first from startTime; "larger than limit: return as startTime + limit"
            cap = 500 if path == self.OI_PATHS["binance"] else 1000
            limit = min(int(q.get("limit", 30 if cap == 500 else 100)), cap)
            return 200, self._within(path, int(q.get("startTime", 0)), int(q.get("endTime", big)))[:limit]
        if path in (self.OI_PATHS["bybit"], self.FUNDING_PATHS["bybit"], self.MARK):
            lo = int(q.get("startTime", q.get("start", 0)))
            hi = int(q.get("endTime", q.get("end", big)))
            cap = 1000 if path == self.MARK else 200
            limit = min(int(q.get("limit", 50 if path == self.OI_PATHS["bybit"] else 200)), cap)
            rows = self._within(path, lo, hi)[::-1][:limit]  # newest first
            result = {"symbol": q.get("symbol"), "category": q.get("category"), "list": rows}
            if path == self.OI_PATHS["bybit"]:
                result["nextPageCursor"] = ""
            return 200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 0}
        if path in (self.OI_PATHS["okx"], self.FUNDING_PATHS["okx"]):
            # both bounds exclusive; OI: begin (newer than) / end (earlier than); funding: before / after
            newer = int(q.get("begin" if path == self.OI_PATHS["okx"] else "before", -1))
            older = int(q.get("end" if path == self.OI_PATHS["okx"] else "after", big))
            limit = min(int(q.get("limit", 100)), 100)
            return 200, {"code": "0", "msg": "", "data": self._within(path, newer + 1, older - 1)[::-1][:limit]}
        return 404, {"code": 404, "msg": f"no route {path}"}


@pytest.fixture
def ex():
    with ContextHTTP() as srv:
        yield srv


# synthetic records in each exchange's documented shape --------------------------------
def binance_oi(t, i):
    return {"symbol": "BTCUSDT", "sumOpenInterest": f"{70000 + i}.12500000",
            "sumOpenInterestValue": f"{(70000 + i) * 100}.50000000", "CMCCirculatingSupply": "19800000.0",
            "timestamp": t}


def bybit_oi(t, i):
    return {"openInterest": f"{50000 + i}.25000000", "timestamp": str(t)}


def okx_oi(t, i):  # BTC-USDT-SWAP: ctVal 0.01 BTC
    return [str(t), f"{5_000_000 + i}", f"{(5_000_000 + i) / 100}", f"{(5_000_000 + i) * 950}"]


def binance_funding(t, i):
    return {"symbol": "BTCUSDT", "fundingRate": f"0.000{100 + i % 50}", "fundingTime": t, "markPrice": "60000.0"}


def bybit_funding(t, i):
    return {"symbol": "BTCUSDT", "fundingRate": f"0.000{100 + i % 50}", "fundingRateTimestamp": str(t)}


def okx_funding(t, i):
    return {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "formulaType": "withRate", "fundingRate": "0.00015",
            "realizedRate": f"0.000{100 + i % 50}", "fundingTime": str(t), "method": "current_period"}


OI_MAKERS = {"binance": binance_oi, "bybit": bybit_oi, "okx": okx_oi}
FUNDING_MAKERS = {"binance": binance_funding, "bybit": bybit_funding, "okx": okx_funding}
NATIVE = {"binance": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT-SWAP"}


def fill_oi(ex, exchange, start, n, step=HOUR, skip=()):
    recs = {start + i * step: OI_MAKERS[exchange](start + i * step, i) for i in range(n) if i not in skip}
    ex.put(ex.OI_PATHS[exchange], recs)
    if exchange == "bybit":  # mark price at every period start
        ex.put(ex.MARK, {start + i * step: [str(start + i * step), f"{60000 + i}.5", "0", "0", "0"]
                         for i in range(n)})
    return recs


def fill_funding(ex, exchange, start, n, step=8 * HOUR, skip=()):
    recs = {start + i * step: FUNDING_MAKERS[exchange](start + i * step, i) for i in range(n) if i not in skip}
    ex.put(ex.FUNDING_PATHS[exchange], recs)
    return recs


def _client(exchange, ex, symbol="BTC/USDT:USDT"):
    """A client for the loopback exchange without ccxt's throttle (the tests' requests cost nothing)."""
    client = make_client(exchange, symbol, api_base=ex.base)
    client.enableRateLimit = False
    return client


def oi(exchange, start, end, ex, **kw):
    kw.setdefault("now", "2025-06-01T00:00Z")
    return fetch_open_interest(exchange, "BTC/USDT:USDT", start, end, client=_client(exchange, ex), pace=0,
                               retry_delay=0.01, **kw)


def funding(exchange, start, end, ex, **kw):
    kw.setdefault("now", "2025-06-01T00:00Z")
    return fetch_funding(exchange, "BTC/USDT:USDT", start, end, client=_client(exchange, ex), pace=0,
                         retry_delay=0.01, **kw)


# ---------------------------------------------------------------------------
# documented responses, exact values
# ---------------------------------------------------------------------------
def test_binance_documented_open_interest(ex):
    """Binance openInterestHist: ``sumOpenInterest`` "total open interest" (base units, BTC for
    BTCUSDT), ``sumOpenInterestValue`` "total open interest value" (USDT); ``timestamp`` in ms,
    on the 5m grid. The documented example, served as it is."""
    doc = DOCS["binance"]["openInterestHist"]
    ex.put(ex.OI_PATHS["binance"], {int(r["timestamp"]): r for r in doc["example"]})
    res = oi("binance", _t(1583127900000), _t(1583128200000 + 5 * MIN), ex, period="5m",
             now=_t(1583128200000 + DAY))
    df = res.frame
    assert list(df.columns) == OI_COLUMNS
    assert list(df["ts"]) == [_t(1583127900000), _t(1583128200000)]
    assert list(df["oi_base"]) == [20403.637, 20401.367]
    assert list(df["oi_usd"]) == [150570784.07809979, 149940752.14464448]
    assert set(df["exchange"]) == {"binance"} and set(df["symbol"]) == {"BTCUSDT"} and set(df["asset"]) == {"BTC"}
    assert set(df["source"]) == {"binance-rest"}
    q = ex.calls(ex.OI_PATHS["binance"])[0]
    assert (q["symbol"], q["period"], q["limit"]) == ("BTCUSDT", "5m", "500")
    assert res.notices == [] and res.complete and not res.cancelled


def test_bybit_documented_open_interest_times_mark_price(ex):
    """Bybit open-interest: ``openInterest`` "Open interest. The value is the sum of both sides. The
    unit of value, e.g., BTCUSD(inverse) is USD, BTCUSDT(linear) is BTC" -> oi_base as it is for a
    linear contract. Bybit gives no value: oi_usd = openInterest × the mark price at ``timestamp``
    (open of the mark-price candle starting then); a time without a mark price stays NaN."""
    doc = DOCS["bybit"]["open-interest"]["example"]["result"]["list"]
    ex.put(ex.OI_PATHS["bybit"], {int(r["timestamp"]): r for r in doc})
    mark = DOCS["bybit"]["mark-price-kline"]["example"]["result"]["list"]
    ex.put(ex.MARK, {int(k[0]): k for k in mark[:1]})  # a price for 1669571400000 only
    res = oi("bybit", _t(1669571100000), _t(1669571400000 + 5 * MIN), ex, period="5m",
             now=_t(1669571400000 + DAY))
    df = res.frame
    assert list(df["ts"]) == [_t(1669571100000), _t(1669571400000)]
    assert list(df["oi_base"]) == [461134292.0, 461134384.0]
    assert math.isnan(df["oi_usd"].iloc[0])
    assert df["oi_usd"].iloc[1] == 461134384.0 * 16452.68
    q = ex.calls(ex.OI_PATHS["bybit"])[0]
    assert (q["category"], q["symbol"], q["intervalTime"], q["limit"]) == ("linear", "BTCUSDT", "5min", "200")
    k = ex.calls(ex.MARK)[0]
    assert (k["interval"], int(k["start"]), int(k["end"])) == ("5", 1669571100000, 1669571400000)
    assert set(df["source"]) == {"bybit-rest"}


@pytest.mark.parametrize("symbol,native,asset,base", [
    # linear BTC-USDT-SWAP: ctVal 0.01 BTC, ctMult 1 -> 2800476.45 contracts = 28004.7645 BTC
    ("BTC/USDT:USDT", "BTC-USDT-SWAP", "BTC", [2799812.00 * 0.01, 2800476.45 * 0.01]),
    # linear ETH-USDT-SWAP: ctVal 0.1 ETH, ctMult 10 -> one contract is 1 ETH
    ("ETH/USDT:USDT", "ETH-USDT-SWAP", "ETH", [2799812.00 * 0.1 * 10, 2800476.45 * 0.1 * 10]),
    # inverse BTC-USD-SWAP: ctVal 100 USD, so base is OKX's own oiCcy ("in the unit of crypto")
    ("BTC/USD:BTC", "BTC-USD-SWAP", "BTC", [27998.12, 28004.7645]),
])
def test_okx_documented_open_interest_contracts_to_base(ex, symbol, native, asset, base):
    """OKX contract open interest history, records ``[ts, oi, oiCcy, oiUsd]``: ``oi`` "Open interest
    in the unit of contracts", ``oiCcy`` "in the unit of crypto", ``oiUsd`` "in the unit of USD"."""
    data = DOCS["okx"]["open-interest-history"]["example"]["data"]
    ex.put(ex.OI_PATHS["okx"], {int(r[0]): r for r in data})
    res = fetch_open_interest("okx", symbol, _t(1701414000000), _t(1701417600000 + HOUR), period="1h",
                              client=_client("okx", ex, symbol), pace=0, now=_t(1701417600000 + HOUR))
    df = res.frame
    assert (res.symbol, res.asset) == (native, asset)
    assert list(df["ts"]) == [_t(1701414000000), _t(1701417600000)]
    assert list(df["oi_base"]) == base
    assert list(df["oi_usd"]) == [2359021002.50, 2360916466.88]
    q = ex.calls(ex.OI_PATHS["okx"])[0]
    assert (q["instId"], q["period"]) == (native, "1H")
    assert int(q["begin"]) == 1701414000000 - 1 and int(q["end"]) == 1701417600000 + HOUR  # exclusive bounds


def test_okx_daily_period_is_utc_aligned(ex):
    res = fetch_open_interest("okx", "BTC/USDT:USDT", "2025-05-01", "2025-05-03", period="1d", api_base=ex.base,
                              pace=0, now="2025-06-01")
    assert ex.calls(ex.OI_PATHS["okx"])[0]["period"] == "1Dutc" and res.rows == 0


def test_binance_documented_funding(ex):
    """Binance fundingRate: ``fundingRate`` per interval as a fraction, ``fundingTime`` the settlement;
    startTime/endTime inclusive, ascending. The two documented records are 8 h apart; the first has
    no earlier settlement, so it takes the spacing to the next."""
    doc = DOCS["binance"]["fundingRate"]["example"]
    ex.put(ex.FUNDING_PATHS["binance"], {r["fundingTime"]: r for r in doc})
    res = funding("binance", _t(1570608000000), _t(1570636800000 + 1), ex, now=_t(1570636800000 + DAY))
    df = res.frame
    assert list(df.columns) == FUNDING_COLUMNS
    assert list(df["ts"]) == [_t(1570608000000), _t(1570636800000)]
    assert list(df["rate"]) == [-0.0375, 0.0001]
    assert list(df["interval_hours"]) == [8.0, 8.0]
    assert set(df["source"]) == {"binance-rest"}
    calls = ex.calls(ex.FUNDING_PATHS["binance"])
    # the look-back for the settlement before start, then the window
    assert int(calls[0]["endTime"]) == 1570608000000 - 1
    assert int(calls[1]["startTime"]) == 1570608000000 and calls[1]["limit"] == "1000"


def test_bybit_documented_funding_single_record_takes_declared_interval(ex):
    """Bybit funding/history: ``fundingRate`` "Funding rate", ``fundingRateTimestamp`` "Funding rate
    timestamp (ms)". One record and nothing around it: its interval is the instrument's declared
    ``fundingInterval`` (480 minutes for BTCUSDT in instruments-info)."""
    rec = dict(DOCS["bybit"]["funding-history"]["example"]["result"]["list"][0], symbol="BTCUSDT")
    ex.put(ex.FUNDING_PATHS["bybit"], {int(rec["fundingRateTimestamp"]): rec})
    res = funding("bybit", "2022-12-26", "2022-12-27", ex, now="2023-01-01")
    assert list(res.frame["ts"]) == [_t(1672041600000)]
    assert list(res.frame["rate"]) == [0.0001] and list(res.frame["interval_hours"]) == [8.0]
    q = ex.calls(ex.FUNDING_PATHS["bybit"])[-1]
    assert (q["category"], q["symbol"], q["limit"]) == ("linear", "BTCUSDT", "200")


def test_okx_documented_funding_uses_the_actual_rate(ex):
    """OKX funding-rate-history: ``fundingRate`` "Predicted funding rate", ``realizedRate`` "Actual
    funding rate" -> rate is realizedRate (0.017, not 0.018). The settlement before start (8 h
    earlier) gives the interval."""
    doc = DOCS["okx"]["funding-rate-history"]["example"]["data"][0]
    t = int(doc["fundingTime"])
    earlier = dict(doc, fundingTime=str(t - 8 * HOUR), realizedRate="0.0001")
    ex.put(ex.FUNDING_PATHS["okx"], {t: doc, t - 8 * HOUR: earlier})
    res = funding("okx", _t(t), _t(t + 1), ex, now=_t(t + DAY))
    assert list(res.frame["ts"]) == [_t(t)]
    assert list(res.frame["rate"]) == [0.017] and list(res.frame["interval_hours"]) == [8.0]
    assert set(res.frame["source"]) == {"okx-rest"}


# ---------------------------------------------------------------------------
# pagination, empty pages, the window
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("exchange,per_page,period,step", [("binance", 500, "5m", 5 * MIN),
                                                             ("bybit", 200, "1h", HOUR), ("okx", 100, "1h", HOUR)])
def test_open_interest_pages_through_the_window(ex, exchange, per_page, period, step):
    """Several full pages, a gap longer than a page (empty pages) in the middle, a record exactly at
    ``end`` (excluded) and one a period before ``start`` (excluded)."""
    start = _ms("2025-05-01T00:00Z")
    n = 3 * per_page + 17
    gap = set(range(per_page + 5, 2 * per_page + 40))  # more than one whole window empty
    recs = fill_oi(ex, exchange, start - step, n + 2, step=step, skip={g + 1 for g in gap})
    end = start + n * step
    seen = []
    res = oi(exchange, _t(start), _t(end), ex, period=period, now=_t(end + DAY), task=Task(seen.append))
    df = res.frame
    expected = sorted(t for t in recs if start <= t < end)
    assert [int(x.value // 1_000_000) for x in df["ts"]] == expected
    assert df["ts"].is_unique and df["ts"].is_monotonic_increasing
    assert df["ts"].iloc[0] == _t(start) and df["ts"].iloc[-1] == _t(end - step)
    i = 7  # the record at start + 7 periods was made with index 8 (the data starts a period before start)
    row = df[df["ts"] == _t(start + i * step)].iloc[0]
    if exchange == "binance":
        assert (row.oi_base, row.oi_usd) == (70008.125, 7000800.5)
    elif exchange == "bybit":
        assert (row.oi_base, row.oi_usd) == (50008.25, 50008.25 * 60008.5)
    else:
        assert (row.oi_base, row.oi_usd) == (5_000_008 * 0.01, 5_000_008 * 950.0)
    windows = -(-n // per_page)
    assert res.requests >= windows
    assert [(s.done, s.total) for s in seen][0] == (0, n) and (seen[-1].done, seen[-1].total) == (n, n)
    assert res.complete and res.resume_from == _t(end)


@pytest.mark.parametrize("exchange,per_page", [("binance", 1000), ("bybit", 200), ("okx", 100)])
def test_funding_pages_through_the_window(ex, exchange, per_page):
    """Hourly settlements so that pages fill up; a 20-day outage (empty pages); the interval
    after the outage is the spacing the exchange reports (480 h), never a made-up 1 h."""
    start = _ms("2025-03-10T00:00Z")
    n = max(2 * per_page, per_page + 500) + 300
    gap = set(range(per_page + 10, per_page + 10 + 480))
    recs = fill_funding(ex, exchange, start - HOUR, n + 1, step=HOUR, skip={g + 1 for g in gap})
    end = start + n * HOUR
    res = funding(exchange, _t(start), _t(end), ex, now=_t(end + HOUR))
    df = res.frame
    expected = sorted(t for t in recs if start <= t < end)
    assert [int(x.value // 1_000_000) for x in df["ts"]] == expected
    assert df["ts"].iloc[0] == _t(start)
    hours = list(df["interval_hours"])
    assert hours[0] == 1.0  # the settlement an hour before start, found by the look-back
    assert sorted(set(hours)) == [1.0, 481.0]
    first_after = df["ts"] == _t(start + (per_page + 10 + 480) * HOUR)
    assert df.loc[first_after, "interval_hours"].iloc[0] == 481.0
    assert res.complete


def test_binance_funding_page_full_continues_within_window(ex):
    """More settlements than a page (1000) inside one window: the walk continues from the last one
    ("larger than limit: return as startTime + limit")."""
    start = _ms("2025-01-01T00:00Z")
    fill_funding(ex, "binance", start, 1500, step=30 * MIN)
    res = funding("binance", _t(start), _t(start + 750 * HOUR), ex)
    assert res.rows == 1500 and res.frame["ts"].is_unique
    assert set(res.frame["interval_hours"]) == {0.5}
    starts = [int(q["startTime"]) for q in ex.calls(ex.FUNDING_PATHS["binance"])][1:]
    assert starts[:2] == [start, start + 999 * 30 * MIN + 1]


def test_server_serving_smaller_pages_loses_nothing(ex, monkeypatch):
    """A newest-first server answering fewer records than asked (OKX lowering a cap): the rest of
    the window is asked for, not skipped."""
    real = ex.route

    def capped(path, q):
        status, body = real(path, q)
        if path == ex.OI_PATHS["okx"]:
            body["data"] = body["data"][:30]
        return status, body

    monkeypatch.setattr(ex, "route", capped)
    start = _ms("2025-05-20T00:00Z")
    fill_oi(ex, "okx", start, 250)
    res = oi("okx", _t(start), _t(start + 250 * HOUR), ex)
    assert res.rows == 250 and res.frame["ts"].is_unique


def test_empty_window_returns_empty_frame_with_columns(ex):
    res = oi("binance", "2025-05-20", "2025-05-21", ex)
    assert res.rows == 0 and list(res.frame.columns) == OI_COLUMNS and res.complete
    res = funding("okx", "2025-05-20", "2025-05-21", ex)
    assert res.rows == 0 and list(res.frame.columns) == FUNDING_COLUMNS and res.last_ts is None


def test_window_is_clamped_to_now_and_listing(ex):
    """Nothing after ``now`` is asked; nothing before the listing (Binance onboardDate 2019-09-25 08:00)."""
    res = funding("binance", "2010-01-01", "2030-01-01", ex, now="2019-09-26T00:00Z")
    assert res.start == pd.Timestamp("2019-09-25T08:00Z") and res.end == pd.Timestamp("2019-09-26T00:00Z")
    assert min(int(q["startTime"]) for q in ex.calls(ex.FUNDING_PATHS["binance"])) >= _ms("2019-09-24T08:00Z")


# ---------------------------------------------------------------------------
# history limits
# ---------------------------------------------------------------------------
def test_binance_serves_open_interest_for_30_days_only(ex):
    now = _ms("2025-06-01T00:00Z")
    fill_oi(ex, "binance", now - 29 * DAY, 29 * 24)
    res = oi("binance", "2025-04-01", "2025-06-01", ex, now=_t(now))
    # 30 days before now, less a minute for clock skew, on the period grid: the next hour
    floor = _t(now - 30 * DAY + HOUR)
    assert res.start == floor == pd.Timestamp("2025-05-02T01:00Z")
    assert len(res.notices) == 1
    notice = res.notices[0]
    assert isinstance(notice, HistoryNotice) and notice.served_from == floor
    assert str(notice) == ("Binance serves open interest history for the last 30 days only; BTCUSDT fetched from "
                           "2025-05-02 01:00 UTC, not from 2025-04-01 00:00 UTC as asked")
    assert res.rows == 29 * 24
    assert min(int(q["startTime"]) for q in ex.calls(ex.OI_PATHS["binance"])) >= now - 30 * DAY
    assert served_from("oi", "binance", _t(now)) == floor
    assert served_from("oi", "binance", _t(now), "5m") == _t(now - 30 * DAY + 5 * MIN)


def test_nothing_served_raises_a_user_error(ex):
    with pytest.raises(HistoryUnavailable) as info:
        oi("binance", "2025-01-01", "2025-02-01", ex, now="2025-06-01T00:00Z")
    err = info.value
    assert isinstance(err, UserError) and isinstance(err, FetchError)
    assert str(err) == ("Binance serves open interest history for the last 30 days only; nothing of BTCUSDT from "
                        "2025-01-01 00:00 UTC to 2025-02-01 00:00 UTC can be fetched (the oldest it serves is "
                        "2025-05-02 01:00 UTC)")
    assert "\n" not in str(err) and err.notice.served_from == pd.Timestamp("2025-05-02T01:00Z")
    assert ex.calls(ex.OI_PATHS["binance"]) == []


def test_okx_limits(ex):
    """OKX: open interest "can retrieve the latest 1,440 data entries" (of the period); funding
    "can retrieve data from the last 3 months"."""
    now = _t(_ms("2025-06-01T00:00Z"))
    res = oi("okx", "2025-01-01", "2025-06-01", ex, period="1h", now=now)
    assert res.start == now - pd.Timedelta(hours=1439)
    assert res.notices[0].message.startswith("OKX serves open interest history for its latest 1,440 records only;")
    res = funding("okx", "2025-01-01", "2025-03-05", ex, now=now)
    assert res.start == pd.Timestamp("2025-03-01T00:00Z")
    assert str(res.notices[0]) == ("OKX serves funding history for the last 3 months only; BTC-USDT-SWAP fetched "
                                   "from 2025-03-01 00:00 UTC, not from 2025-01-01 00:00 UTC as asked")
    # daily records exist from 2024-01-01 on
    assert served_from("oi", "okx", now, "1d") == pd.Timestamp("2024-01-01T00:00Z")
    # Bybit and Binance funding go back to listing: no notice
    assert funding("bybit", "2024-01-01", "2024-01-02", ex, now=now).notices == []


# ---------------------------------------------------------------------------
# errors, resume, cancel
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind,exchange", [("oi", "binance"), ("oi", "bybit"), ("oi", "okx"),
                                           ("funding", "binance"), ("funding", "bybit"), ("funding", "okx")])
def test_malformed_body_is_a_typed_one_line_error(ex, kind, exchange):
    path = (ex.OI_PATHS if kind == "oi" else ex.FUNDING_PATHS)[exchange]
    ex.script[path] = ["html"]
    fetch = oi if kind == "oi" else funding
    with pytest.raises(MalformedResponse) as info:
        fetch(exchange, "2025-05-20", "2025-05-21", ex)
    msg = str(info.value)
    assert "\n" not in msg and "malformed answer from the exchange (not JSON: '<html><body>Gateway busy" in msg
    assert msg.startswith(f"{exchange} BTC/USDT:USDT ")


def test_missing_field_is_named(ex):
    start = _ms("2025-05-20T00:00Z")
    ex.put(ex.OI_PATHS["binance"], {start: {"symbol": "BTCUSDT", "sumOpenInterest": "1.0", "timestamp": start}})
    with pytest.raises(MalformedResponse, match=r"field 'sumOpenInterestValue' missing"):
        oi("binance", _t(start), _t(start + HOUR), ex)
    ex.put(ex.OI_PATHS["okx"], {start: [str(start), "", "1", "2"]})
    with pytest.raises(MalformedResponse, match=r"expected a number, got ''"):
        oi("okx", _t(start), _t(start + HOUR), ex)


def test_exchange_error_and_http_errors(ex):
    ex.script[ex.OI_PATHS["binance"]] = [(400, DOCS["binance"]["error_example"])]
    with pytest.raises(FetchError, match="startTime' is not valid") as info:
        oi("binance", "2025-05-20", "2025-05-21", ex, retries=0)
    assert "\n" not in str(info.value)
    ex.script[ex.OI_PATHS["bybit"]] = [(200, DOCS["bybit"]["error_example"])]  # Bybit: HTTP 200, retCode != 0
    with pytest.raises(FetchError, match=r"bybit BTC/USDT:USDT open interest: BadRequest: .*intervalTime invalid"):
        oi("bybit", "2025-05-20", "2025-05-21", ex)
    ex.script[ex.FUNDING_PATHS["okx"]] = [(503, "<html><body>503 Service Temporarily Unavailable</body></html>")] * 3
    with pytest.raises(ExchangeUnavailable,
                       match=r"okx BTC/USDT:USDT funding: exchange unavailable: .* after 2 retries"):
        funding("okx", "2025-05-20", "2025-05-21", ex, retries=2)


def test_connection_dropped_mid_way_then_resumed(ex):
    """The connection drops on the third page and every retry: the error is typed and one line, it
    carries what was fetched before, and a second run from ``resume_from`` fetches the rest."""
    start = _ms("2025-05-05T00:00Z")
    fill_oi(ex, "bybit", start, 600)
    end = start + 600 * HOUR
    path = ex.OI_PATHS["bybit"]
    ex.script[path] = [None, None, "drop", "drop"]
    pages = []
    notes = []
    with pytest.raises(NetworkUnreachable) as info:
        oi("bybit", _t(start), _t(end), ex, retries=1, on_page=pages.append,
           task=Task(lambda s: s.message and notes.append(s.message)))
    err = info.value
    assert str(err) == "bybit BTC/USDT:USDT open interest: cannot reach the exchange (connection reset) after 1 retries"
    assert err.cause == "connection reset" and not err.offline
    assert notes == ["bybit BTC/USDT:USDT open interest: cannot reach the exchange (connection reset) — "
                     "retry 1 of 1 in 0.01 s"]
    partial = err.partial
    assert partial.rows == 400 and partial.resume_from == _t(start + 400 * HOUR) and not partial.complete
    assert sum(len(p) for p in pages) == 400
    rest = oi("bybit", _t(start), _t(end), ex, since=partial.resume_from)
    both = pd.concat([partial.frame, rest.frame], ignore_index=True)
    assert len(both) == 600 and both["ts"].is_unique and rest.complete
    assert int(ex.calls(path)[-1]["startTime"]) == start + 400 * HOUR


def test_a_dropped_connection_is_retried(ex):
    start = _ms("2025-05-20T00:00Z")
    fill_funding(ex, "okx", start, 3)
    ex.script[ex.FUNDING_PATHS["okx"]] = [None, "drop"]
    res = funding("okx", _t(start), _t(start + DAY), ex)
    assert res.rows == 3 and list(res.frame["rate"]) == [0.0001, 0.000101, 0.000102]


def test_offline(ex):
    with pytest.raises(NetworkUnreachable, match="name resolution failed: are you offline") as info:
        fetch_funding("bybit", "BTC/USDT:USDT", "2025-05-20", "2025-05-21", api_base="http://nonexistent.invalid",
                      retries=0, now="2025-06-01")
    assert info.value.offline


def test_cancel_between_pages_keeps_what_was_fetched(ex):
    start = _ms("2025-05-05T00:00Z")
    fill_oi(ex, "okx", start, 350)

    def progress(step):
        if step.done >= 200:
            task.cancel.set()
    task = Task(progress)
    res = oi("okx", _t(start), _t(start + 350 * HOUR), ex, task=task)
    assert res.cancelled and res.rows == 200 and res.resume_from == _t(start + 200 * HOUR)
    assert len(ex.calls(ex.OI_PATHS["okx"])) == 2


def test_pace_spaces_requests(ex):
    start = _ms("2025-05-01T00:00Z")
    fill_oi(ex, "okx", start, 300)
    fetch_open_interest("okx", "BTC/USDT:USDT", _t(start), _t(start + 300 * HOUR), api_base=ex.base, pace=0.15,
                        now="2025-06-01")
    times = [t for p, _q, t in ex.requests if p == ex.OI_PATHS["okx"]]
    assert len(times) == 3 and min(b - a for a, b in zip(times, times[1:])) >= 0.14


def test_bad_arguments_are_one_line(ex):
    with pytest.raises(FetchError,
                       match=r"Bybit has no open interest period '2h' \(available: 5m, 15m, 30m, 1h, 4h, 1d\)"):
        oi("bybit", "2025-05-20", "2025-05-21", ex, period="2h")
    with pytest.raises(FetchError, match="perpetual swaps only"):
        fetch_funding("binance", "BTC/USDT", "2025-05-20", "2025-05-21", api_base=ex.base, now="2025-06-01")
    with pytest.raises(FetchError, match="no market 'DOGE/EUR:EUR'"):
        fetch_funding("okx", "DOGE/EUR:EUR", "2025-05-20", "2025-05-21", api_base=ex.base, now="2025-06-01")
    with pytest.raises(ValueError, match="unknown exchange"):
        fetch_funding("kraken", "BTC/USDT:USDT", "2025-05-20")
    assert oi_periods("okx") == ["5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"]


def test_first_settlement_after_listing_waits_for_its_successor_across_windows(ex):
    """The first settlement there is (no earlier one, e.g. just after a listing) is the last of a
    page window: its interval comes from the next settlement, in the next window; a cancel in
    between leaves ``resume_from`` at that settlement, so a resume does not skip it."""
    start = _ms("2025-05-01T00:00Z")
    first = start + 199 * HOUR  # the last hour of Bybit's first 200 h window
    ex.put(ex.FUNDING_PATHS["bybit"], {first: bybit_funding(first, 0),
                                       first + 4 * HOUR: bybit_funding(first + 4 * HOUR, 1)})
    res = funding("bybit", _t(start), _t(start + 400 * HOUR), ex)
    assert list(res.frame["ts"]) == [_t(first), _t(first + 4 * HOUR)]
    assert list(res.frame["interval_hours"]) == [4.0, 4.0]

    def progress(step):
        if step.done >= 200:
            task.cancel.set()
    task = Task(progress)
    res = funding("bybit", _t(start), _t(start + 400 * HOUR), ex, task=task)
    assert res.cancelled and res.rows == 0 and res.resume_from == _t(first)
    rest = funding("bybit", _t(start), _t(start + 400 * HOUR), ex, since=res.resume_from)
    assert list(rest.frame["ts"]) == [_t(first), _t(first + 4 * HOUR)]
