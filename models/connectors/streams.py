"""Per-exchange WebSocket details: URL, subscription, pings, symbol choice.

Endpoints (documented public, no API key):

* Binance USDⓈ-M: ``wss://fstream.binance.com/ws/!forceOrder@arr`` — the stream
  is chosen by the URL path, no subscribe message. The server pings every few
  minutes (the websockets library answers), and drops connections after 24 h.
* Bybit v5 linear (USDT/USDC perpetuals and USDC futures):
  ``wss://stream.bybit.com/v5/public/linear``, ``{"op": "subscribe", "args":
  ["allLiquidation.BTCUSDT", ...]}`` (one topic per symbol, sent 10 at a
  time); app-level ``{"op": "ping"}`` every 20 s as the docs recommend.
* OKX v5: ``wss://ws.okx.com:8443/ws/v5/public``, ``{"op": "subscribe", "args":
  [{"channel": "liquidation-orders", "instType": "SWAP"}]}`` (every swap at
  once); the text ``ping`` is sent every 20 s (OKX closes connections idle for
  30 s and answers ``pong``). Contract sizes come from ``GET
  {rest}/api/v5/public/instruments?instType=SWAP``.
"""
from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .parsers import ContractSpec, SymbolFilter, _is_asset, okx_specs_from_instruments


@dataclass(frozen=True)
class Endpoint:
    """Where one exchange is reached; tests point these at loopback servers."""

    ws: str
    rest: str


DEFAULT_ENDPOINTS: dict[str, Endpoint] = {
    "binance": Endpoint("wss://fstream.binance.com/ws/!forceOrder@arr", "https://fapi.binance.com"),
    "bybit": Endpoint("wss://stream.bybit.com/v5/public/linear", "https://api.bybit.com"),
    "okx": Endpoint("wss://ws.okx.com:8443/ws/v5/public", "https://www.okx.com"),
}

# What the status bar should say about each source's completeness.
NOTES = {
    "binance": "Binance pushes at most one liquidation per symbol per 1000 ms (a snapshot): "
               "busy symbols are under-counted.",
    "bybit": "Bybit allLiquidation pushes every liquidation, batched every 500 ms.",
    "okx": "OKX shows at most one liquidation order per contract per second; not the total.",
}

# Used when Bybit's symbol list cannot be fetched and none was given.
BYBIT_FALLBACK_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT",
                          "BNBUSDT", "LINKUSDT", "AVAXUSDT", "SUIUSDT", "LTCUSDT", "TRXUSDT")


MAX_REST_BYTES = 32 << 20  # instrument lists are ~0.2 MB (OKX swaps) to ~1 MB (a Bybit page of 1000)


def http_get_json(url: str, timeout: float = 15.0) -> dict:
    req = urllib.request.Request(url, headers={"User-Agent": "liqscope", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured https URL)
        body = resp.read(MAX_REST_BYTES + 1)
    if len(body) > MAX_REST_BYTES:
        raise ValueError(f"{url}: response over {MAX_REST_BYTES:,} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{url}: response nested too deeply") from None


class StreamSpec:
    """Base: one public liquidation stream."""

    exchange = ""
    ping_interval: float | None = None  # app-level ping period (s)
    idle_timeout: float | None = None  # reconnect if nothing at all arrives for this long (s)
    # Largest frame accepted (the websockets client's ``max_size``): a larger one is refused
    # unread, the connection closed (code 1009) and reopened. None of the three exchanges
    # documents a maximum frame size for these public streams; their liquidation frames are a
    # few hundred bytes (Binance: one order per frame) to a few KB (a Bybit 500 ms batch, an OKX
    # data array), so a conservative 1 MiB (also the websockets default) leaves a margin of
    # hundreds of times while bounding what a misbehaving server can make us read and journal.
    max_frame_bytes: int = 1 << 20

    def __init__(self, endpoint: Endpoint, symbols=None):
        self.endpoint = endpoint
        self.filter = SymbolFilter(symbols)
        self.requested = list(symbols or [])

    @property
    def note(self) -> str:
        return NOTES[self.exchange]

    async def prepare(self) -> dict | None:
        """Fetch what subscribing/parsing needs; returns journal ``meta`` or None."""
        return None

    def url(self) -> str:
        return self.endpoint.ws

    def subscribe_messages(self) -> list[str]:
        return []

    def ping_message(self) -> str | None:
        return None

    def control_error(self, text: str) -> str | None:
        """An error the server reported in a control frame (failed subscribe...)."""
        return None


class BinanceSpec(StreamSpec):
    exchange = "binance"


class BybitSpec(StreamSpec):
    exchange = "bybit"
    ping_interval = 20.0
    idle_timeout = 60.0

    def __init__(self, endpoint: Endpoint, symbols=None):
        super().__init__(endpoint, symbols)
        self.topics_symbols: list[str] = []
        self.list_error: str | None = None

    async def prepare(self) -> dict | None:
        wanted = [s.upper() for s in self.requested]
        natives = [s for s in wanted if not _is_asset(s)]
        assets = [s for s in wanted if _is_asset(s)]
        if wanted and not assets:
            self.topics_symbols = natives
            return None
        try:
            listed = await asyncio.to_thread(self._list_linear)
        except Exception as exc:  # network or format: fall back, but say so
            self.list_error = f"bybit symbol list unavailable ({exc}); using a fixed list"
            listed = list(BYBIT_FALLBACK_SYMBOLS)
        if assets:
            from .parsers import base_asset

            picked = [s for s in listed if base_asset(s) in assets] or [f"{a}USDT" for a in assets]
            self.topics_symbols = sorted(set(natives + picked))
        else:
            self.topics_symbols = listed
        return None

    def _list_linear(self) -> list[str]:
        out, cursor = [], ""
        for _ in range(20):
            q = {"category": "linear", "limit": "1000"}
            if cursor:
                q["cursor"] = cursor
            data = http_get_json(f"{self.endpoint.rest}/v5/market/instruments-info?{urllib.parse.urlencode(q)}")
            if data.get("retCode") != 0:
                raise ValueError(f"retCode {data.get('retCode')}: {data.get('retMsg')}")
            result = data.get("result") or {}
            for row in result.get("list") or []:
                if row.get("status") == "Trading" and row.get("contractType") == "LinearPerpetual":
                    out.append(str(row["symbol"]))
            cursor = result.get("nextPageCursor") or ""
            if not cursor:
                break
        if not out:
            raise ValueError("no trading linear perpetuals listed")
        return sorted(set(out))

    def subscribe_messages(self) -> list[str]:
        topics = [f"allLiquidation.{s}" for s in self.topics_symbols]
        return [json.dumps({"op": "subscribe", "args": topics[i:i + 10]}) for i in range(0, len(topics), 10)]

    def ping_message(self) -> str | None:
        return json.dumps({"op": "ping"})

    def control_error(self, text: str) -> str | None:
        if '"success"' not in text:
            return None
        try:
            msg = json.loads(text)
        except ValueError:
            return None
        if isinstance(msg, dict) and msg.get("success") is False:
            return f"bybit {msg.get('op')}: {msg.get('ret_msg')}"
        return None


class OkxSpec(StreamSpec):
    exchange = "okx"
    ping_interval = 20.0
    idle_timeout = 60.0

    def __init__(self, endpoint: Endpoint, symbols=None):
        super().__init__(endpoint, symbols)
        self.specs: dict[str, ContractSpec] = {}

    async def prepare(self) -> dict | None:
        payload = await asyncio.to_thread(
            http_get_json, f"{self.endpoint.rest}/api/v5/public/instruments?instType=SWAP")
        specs = okx_specs_from_instruments(payload)
        if not specs:
            raise ValueError("okx instruments: no swap contract specs")
        self.specs = specs
        return {"instruments": {k: v.to_json() for k, v in sorted(specs.items())}}

    def subscribe_messages(self) -> list[str]:
        return [json.dumps({"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]})]

    def ping_message(self) -> str | None:
        return "ping"

    def control_error(self, text: str) -> str | None:
        if '"event"' not in text:
            return None
        try:
            msg = json.loads(text)
        except ValueError:
            return None
        if isinstance(msg, dict) and msg.get("event") == "error":
            return f"okx error {msg.get('code')}: {msg.get('msg')}"
        return None


SPECS = {"binance": BinanceSpec, "bybit": BybitSpec, "okx": OkxSpec}
