"""Loopback stand-ins for the exchanges and the store, used by the connector tests.

* :class:`FakeExchangeHTTP` — a stdlib HTTP server on 127.0.0.1 (port 0) serving
  the markets/instruments documents from the fixtures and synthetic klines in
  each exchange's documented response shape and pagination rules.
* :class:`WSReplay` — a ``websockets`` server on 127.0.0.1 (port 0) that
  replays scripted frames per connection, answers app-level pings, and can drop
  a connection mid-stream.
* :class:`MemoryStore` — the store API the connectors code against
  (``append_liquidations``, ``append_candles``, ``candle_coverage``,
  ``append_gaps``, ``gaps``, ``commit`` of a store ``Batch`` with
  replacements), in memory, de-duplicating like a store should.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures"


NOW_MS = time.time_ns() // 1_000_000  # this test session's "now"
_MS_TIME = re.compile(r"(?<![0-9])1[0-9]{12}(?![0-9])")


def _moved(t: int, base_ms: int) -> int:
    if base_ms - 60_000 <= t < base_ms:
        return t  # moved already
    return base_ms - 60_000 + t % 60_000


def restamp(raw: str, base_ms: int = NOW_MS) -> str:
    """``raw`` with every millisecond time moved into the minute before ``base_ms``
    (keeping its position within a minute), so documented example frames from
    years ago pass the recorder's check that an event is stamped near when it is
    received. The same frame always gives the same text (duplicates stay
    duplicates), and restamping twice changes nothing more."""
    return _MS_TIME.sub(lambda m: str(_moved(int(m.group()), base_ms)), raw)


def fixture(name: str, *, restamped: bool = True) -> dict:
    """A fixture file. Its example ``frames`` are restamped (:func:`restamp`: raw text
    and expected ``ts_ms`` alike) into the minute before this session's start, since
    a recorder quarantines an event stamped more than a day from when it arrived;
    ``restamped=False`` gives the documents' own times."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    if restamped:
        for frame in data.get("frames", []):
            frame["raw"] = restamp(frame["raw"])
            for ev in frame.get("expect", []):
                ev["ts_ms"] = _moved(int(ev["ts_ms"]), NOW_MS)
    return data


# ---------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------
@dataclass
class AppendResult:
    rows: int
    new: int


class MemoryStore:
    def __init__(self):
        self.lock = threading.Lock()
        self.liq = pd.DataFrame()
        self.candles: dict[tuple, pd.DataFrame] = {}
        self.assets: dict[tuple, str] = {}
        self._gaps = pd.DataFrame(columns=["exchange", "start", "end", "reason"])
        self.liq_calls = 0

    def append_liquidations(self, df: pd.DataFrame, source: str | None = None) -> AppendResult:
        with self.lock:
            self.liq_calls += 1
            df = df.astype({c: str for c in ("exchange", "symbol", "asset", "side")})
            both = pd.concat([self.liq, df], ignore_index=True)
            before = len(self.liq)
            both = both.drop_duplicates(subset=["ts", "exchange", "symbol", "side", "price", "qty"])
            self.liq = both.sort_values("ts", kind="stable").reset_index(drop=True)
            return AppendResult(len(df), len(self.liq) - before)

    def liquidations(self) -> pd.DataFrame:
        with self.lock:
            return self.liq.copy()

    def commit(self, batch):
        """A store ``Batch`` as the real store applies it: replacements first remove
        every stored row their scope covers, then every item's rows are added."""
        from liqscope.models.store import ReplaceResult
        from liqscope.models.store.tables import GAPS, liq_frame

        cols = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]

        def rows(df):
            return set(df[cols].astype({c: str for c in ("exchange", "symbol", "asset", "side")})
                       .itertuples(index=False, name=None)) if len(df) else set()

        with self.lock:
            old = self.liq
            covered = pd.Series(False, index=old.index)
            for scope in batch.scopes.values():
                if len(old):
                    covered |= scope.mask(old)
            before = rows(old[covered]) if len(old) else set()
            self.liq = old[~covered].reset_index(drop=True) if len(old) else old
        frames = [it.table.to_pandas() if it.kind == GAPS else liq_frame(it.table).drop(columns=["source"])
                  for it in batch.items]
        replacing = set().union(*(rows(frames[t]) for t in batch.scopes))
        results, first = [], True
        for tag, (kind, frame) in enumerate((it.kind, f) for it, f in zip(batch.items, frames)):
            if kind == GAPS:
                self.append_gaps(frame)
                results.append(AppendResult(len(frame), len(frame)))
            elif tag in batch.scopes:
                self.append_liquidations(frame)
                removed = len(before - replacing) if first else 0  # counted by the first replacement
                results.append(ReplaceResult(removed=removed, added=len(rows(frame) - before)))
                first = False
            else:
                results.append(self.append_liquidations(frame))
        return results

    def append_candles(self, df, *, exchange, symbol, interval, asset) -> AppendResult:
        key = (exchange, symbol, interval)
        with self.lock:
            old = self.candles.get(key, pd.DataFrame(columns=df.columns))
            both = pd.concat([old, df], ignore_index=True).drop_duplicates("ts", keep="last")
            self.candles[key] = both.sort_values("ts").reset_index(drop=True)
            self.assets[key] = asset
            return AppendResult(len(df), len(self.candles[key]) - len(old))

    def candle_coverage(self, exchange, symbol, interval):
        """Contiguous runs as (first open, last open + interval) — end exclusive."""
        key = (exchange, symbol, interval)
        with self.lock:
            df = self.candles.get(key)
            if df is None or df.empty:
                return []
            ts = pd.DatetimeIndex(df["ts"])
        step = pd.Timedelta(_step_seconds(interval), "s")
        out, a, prev = [], ts[0], ts[0]
        for t in ts[1:]:
            if t - prev > step:
                out.append((a, prev + step))
                a = t
            prev = t
        out.append((a, prev + step))
        return out

    def append_gaps(self, df: pd.DataFrame) -> None:
        with self.lock:
            self._gaps = pd.concat([self._gaps, df], ignore_index=True).drop_duplicates(
                subset=["exchange", "start", "end"]).reset_index(drop=True)

    def gaps(self) -> pd.DataFrame:
        with self.lock:
            return self._gaps.copy()


def _step_seconds(interval: str) -> int:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[interval[-1]]
    return int(interval[:-1]) * unit


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
def synthetic_candle(ts_ms: int) -> tuple[float, float, float, float, float]:
    """Deterministic OHLCV for an open time, so tests can check values."""
    base = 50_000 + (ts_ms // 60_000) % 1000
    return float(base), float(base + 10), float(base - 10), float(base + 5), float(1 + (ts_ms // 60_000) % 7)


class FakeExchangeHTTP:
    """Serves the documented REST endpoints the connectors use.

    ``listed`` bounds the klines the fake exchange has (ms, [start, end)).
    ``fail_after`` makes kline requests after that many fail with HTTP 500
    (ccxt: ExchangeNotAvailable) to interrupt a fetch; ``rate_limit_once``
    answers the first kline request with HTTP 429.
    """

    def __init__(self, listed=(0, 2**62), step_ms=60_000):
        self.requests: list[tuple[str, dict]] = []
        self.listed = listed
        self.step = step_ms
        self.fail_after: int | None = None
        self.rate_limit_once = False
        self.okx_history_cap = 100
        self.kline_calls = 0
        self.fixtures = {name: fixture(name) for name in ("binance", "bybit", "okx")}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
                owner.requests.append((u.path, q))
                status, body = owner.route(u.path, q)
                text = isinstance(body, str)
                data = body.encode() if text else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def kline_requests(self):
        return [(p, q) for p, q in self.requests if "kline" in p.lower() or "candles" in p]

    # -- routing --------------------------------------------------------------
    def route(self, path: str, q: dict):
        if path == "/fapi/v1/exchangeInfo":
            return 200, self.fixtures["binance"]["rest"]["exchangeInfo"]
        if path == "/api/v5/public/instruments":
            return 200, self.fixtures["okx"]["rest"]["instruments"]
        if path == "/v5/market/instruments-info":
            return 200, self.fixtures["bybit"]["rest"]["instruments-info"]
        if path in ("/fapi/v1/klines", "/api/v5/market/candles", "/api/v5/market/history-candles",
                    "/v5/market/kline"):
            self.kline_calls += 1
            if self.rate_limit_once:
                self.rate_limit_once = False
                return 429, {"code": -1003, "msg": "Too many requests"}
            if self.fail_after is not None and self.kline_calls > self.fail_after:
                return 503, "<html><body>503 Service Temporarily Unavailable</body></html>"
            self._set_step(q)
            return 200, getattr(self, "_" + path.strip("/").replace("/", "_").replace("-", "_"))(q)
        return 404, {"code": 404, "msg": f"no route {path}"}

    def _opens(self, lo: int, hi: int) -> list[int]:
        """Open times in [lo, hi] (inclusive) the fake exchange has."""
        lo = max(lo, self.listed[0])
        hi = min(hi, self.listed[1] - 1)
        first = -(-lo // self.step) * self.step
        return list(range(first, hi + 1, self.step)) if first <= hi else []

    def _set_step(self, q) -> None:
        """Candle size from the request: Binance interval=5m, OKX bar=5m, Bybit interval=5 (minutes)/D."""
        iv = q.get("bar") or q.get("interval") or "1m"
        iv = iv.replace("utc", "")
        if iv.isdigit():
            self.step = int(iv) * 60_000
        elif iv in ("D", "W"):
            self.step = {"D": 86_400_000, "W": 604_800_000}[iv]
        else:
            n, unit = int(iv[:-1]), iv[-1].lower()
            self.step = n * {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}[unit]

    def _fapi_v1_klines(self, q):  # Binance: ascending from startTime, at most limit, <= endTime
        start, end, limit = int(q.get("startTime", 0)), int(q.get("endTime", 2**62)), int(q.get("limit", 500))
        opens = self._opens(start, end)[: min(limit, 1500)]
        return [[t, *map(str, synthetic_candle(t)[:4]), str(synthetic_candle(t)[4]), t + self.step - 1,
                 "0", 10, "0", "0", "0"] for t in opens]

    def _okx_rows(self, q, cap):
        # OKX: after = records earlier than ts, before = newer than ts; newest first.
        after = int(q.get("after", 2**62))
        before = int(q.get("before", -1))
        limit = min(int(q.get("limit", 100)), cap)
        opens = self._opens(before + 1, after - 1)[::-1][:limit]
        # [ts, o, h, l, c, vol (contracts), volCcy (base), volCcyQuote, confirm]
        data = [[str(t), *map(str, synthetic_candle(t)[:4]), str(synthetic_candle(t)[4] * 100),
                 str(synthetic_candle(t)[4]), "0", "1"] for t in opens]
        return {"code": "0", "msg": "", "data": data}

    def _api_v5_market_candles(self, q):
        return self._okx_rows(q, 300)

    def _api_v5_market_history_candles(self, q):
        return self._okx_rows(q, self.okx_history_cap)

    def _v5_market_kline(self, q):  # Bybit: newest first, the latest `limit` in [start, end]
        start, end, limit = int(q.get("start", 0)), int(q.get("end", 2**62)), int(q.get("limit", 200))
        opens = self._opens(start, end)[::-1][: min(limit, 1000)]
        rows = [[str(t), *map(str, synthetic_candle(t)[:4]), str(synthetic_candle(t)[4]), "0"] for t in opens]
        return {"retCode": 0, "retMsg": "OK", "result": {"category": q.get("category"), "symbol": q.get("symbol"),
                                                          "list": rows}, "retExtInfo": {}, "time": 0}


# ---------------------------------------------------------------------------
# WebSocket
# ---------------------------------------------------------------------------
class WSReplay:
    """Replays ``script[i]`` on the i-th connection (the last script repeats).

    A script is a list of steps: a str frame to send, ``("sleep", s)``,
    ``("drop",)`` to close abruptly (no close frame handshake reason), or
    ``("wait_subscribe",)`` to wait for the client's subscribe message(s).
    App-level pings are answered the way each exchange documents: OKX
    ``ping`` → ``pong``; Bybit ``{"op":"ping"}`` → ``{"success":true,
    "ret_msg":"pong",...}``. After the script, the connection stays open.
    """

    def __init__(self, scripts: list[list]):
        self.scripts = scripts
        self.connections = 0
        self.received: list[list[str]] = []
        self.server = None
        self.loop = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._stop = None
        self.port = None

    def _run(self):
        from websockets.asyncio.server import serve

        async def main():
            self._stop = asyncio.Event()
            async with serve(self._handler, "127.0.0.1", 0, ping_interval=None) as server:
                self.server = server
                self.port = next(iter(server.sockets)).getsockname()[1]
                self._ready.set()
                await self._stop.wait()
                server.close()

        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(main())
        self.loop.close()

    async def _handler(self, ws):
        idx = self.connections
        self.connections += 1
        got: list[str] = []
        self.received.append(got)
        script = self.scripts[min(idx, len(self.scripts) - 1)]
        subscribed = asyncio.Event()

        async def reader():
            try:
                async for msg in ws:
                    got.append(msg)
                    if msg == "ping":
                        await ws.send("pong")
                    elif msg.startswith("{") and '"op"' in msg:
                        data = json.loads(msg)
                        if data.get("op") == "ping":
                            await ws.send(json.dumps({"success": True, "ret_msg": "pong", "conn_id": "t",
                                                      "op": "ping"}))
                        else:
                            subscribed.set()
            except Exception:
                pass

        task = asyncio.create_task(reader())
        try:
            for step in script:
                if isinstance(step, str):
                    await ws.send(step)
                elif step[0] == "sleep":
                    await asyncio.sleep(step[1])
                elif step[0] == "wait_subscribe":
                    await asyncio.wait_for(subscribed.wait(), 5)
                elif step[0] == "drop":
                    ws.transport.abort() if hasattr(ws, "transport") else await ws.close()
                    return
            await ws.wait_closed()
        finally:
            task.cancel()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        assert self._ready.wait(5), "websocket server did not start"
        return self

    def __exit__(self, *exc):
        if self.loop and self._stop:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(5)


def wait_for(cond, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; a bounded wait for an event (generous for a loaded machine), not a timing check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
