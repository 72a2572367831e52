"""Turn raw liquidation stream frames into canonical liquidation rows.

Pure functions, no I/O: the recorder, the journal replay and the tests all go
through :class:`Normalizer`, so a parser fix re-normalises old journals the same
way live data is normalised.

Side conventions (each taken from the exchange's own documentation):

* **Binance USDⓈ-M** ``forceOrder`` (``!forceOrder@arr``): ``o.S`` is the side of
  the *liquidation order*. A liquidation closes the position with an opposite
  order, so ``SELL`` liquidates a long and ``BUY`` a short.
  Doc: developers.binance.com, derivatives/usds-margined-futures,
  websocket-market-streams, "All Market Liquidation Order Streams".
  **Binance COIN-M** frames (``BTCUSD_PERP``, ``BTCUSD_200925``; same shape,
  derivatives/coin-margined-futures "Liquidation Order Streams") count ``q``/``z``
  in contracts of 100 USD (BTC) or 10 USD (other coins; Binance FAQ "Coin-Margined
  Futures Contract Specifications"): notional = contracts × USD per contract,
  qty = notional / price.
* **Bybit v5** ``allLiquidation.{symbol}``: ``S`` is documented as the
  *position* side: "Position side. Buy,Sell. When you receive a Buy update, this
  means that a long position has been liquidated". So ``Buy`` → long,
  ``Sell`` → short (the opposite of the order-side rule!). The stream covers
  "USDT contract / USDC contract / Inverse contract"; ``v`` ("Executed size") of
  an inverse contract (``BTCUSD``, ``BTCUSDZ25``) is a count of 1-USD contracts
  (Bybit help: inverse perpetual "1 USD per Contract", inverse futures "1
  contract is worth 1 USD"), so notional = v USD and qty = v / price.
  Doc: bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation.
* **OKX v5** ``liquidation-orders``: ``details[].posSide`` is "Position mode side:
  long: Hedge mode long, short: Hedge mode short, net: Net mode"; ``side`` is the
  "Order side, buy sell". Hedge mode gives the position directly; in net mode
  the order side is converted (sell liquidates a long). ``sz`` is "Quantity of
  liquidation ... For FUTURES/SWAP, the unit is contract", converted with the
  instrument's ``ctVal`` × ``ctMult`` from ``GET /api/v5/public/instruments``
  (linear: ``ctValCcy`` is the base coin; inverse: ``ctValCcy`` is USD, so the
  contracts are a USD notional and ``qty = notional / price``).
  Doc: okx.com/docs-v5/en, "WS / Liquidation orders channel" and
  "Get instruments".
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..importers.contracts import INVERSE, tardis_unit
from ..importers.symbols import asset_from_symbol, binance_coinm_usd
from ..schema import LONG, SHORT

EXCHANGES = ("binance", "bybit", "okx")

# Quote / settle suffixes stripped from native symbols to find the base asset.
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD", "PERP")
# Stablecoins counted 1:1 as USD for ``notional_usd`` (as the exchanges' own
# liquidation dashboards do); anything else is refused rather than guessed.
USD_LIKE = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD"})


class ParseError(ValueError):
    """A frame that should have held liquidations could not be read."""


@dataclass(frozen=True)
class ContractSpec:
    """What one contract of a derivatives instrument is worth (OKX)."""

    inst_id: str
    ct_val: float
    ct_mult: float
    ct_val_ccy: str
    ct_type: str  # "linear" | "inverse"
    settle_ccy: str = ""
    family: str = ""

    @property
    def base(self) -> str:
        return self.family.split("-")[0].upper()

    @classmethod
    def from_okx(cls, row: dict) -> "ContractSpec":
        inst = str(row["instId"])
        ct_val = _positive(row.get("ctVal"), f"{inst} ctVal")
        ct_mult = _positive(row.get("ctMult") or "1", f"{inst} ctMult")
        ctype = str(row.get("ctType") or "").lower()
        if ctype not in ("linear", "inverse"):
            raise ParseError(f"{inst}: unknown ctType {row.get('ctType')!r}")
        family = str(row.get("instFamily") or row.get("uly") or inst)
        return cls(inst, ct_val, ct_mult, str(row.get("ctValCcy") or "").upper(), ctype,
                   str(row.get("settleCcy") or "").upper(), family.upper())

    def to_json(self) -> dict:
        """The instrument fields this spec was read from (for journal ``meta`` lines)."""
        return {"instId": self.inst_id, "ctVal": repr(self.ct_val), "ctMult": repr(self.ct_mult),
                "ctValCcy": self.ct_val_ccy, "ctType": self.ct_type, "settleCcy": self.settle_ccy,
                "instFamily": self.family}

    def convert(self, contracts: float, price: float) -> tuple[float, float]:
        """(qty in base units, notional in USD) for ``contracts`` at ``price``."""
        size = contracts * self.ct_val * self.ct_mult
        if self.ct_type == "linear":
            # ctValCcy is the base coin: contracts × ctVal × ctMult base units.
            if self.ct_val_ccy and self.base and self.ct_val_ccy != self.base:
                raise ParseError(f"{self.inst_id}: linear contract valued in {self.ct_val_ccy}, "
                                 f"not its base {self.base}")
            parts = (self.family or self.inst_id).split("-")
            quote = parts[1].upper() if len(parts) > 1 else self.settle_ccy
            if quote not in USD_LIKE:
                raise ParseError(f"{self.inst_id}: quote {quote!r} is not a USD stablecoin")
            return size, size * price
        # inverse: each contract is ctVal units of ctValCcy (USD) settled in the coin.
        if self.ct_val_ccy not in USD_LIKE:
            raise ParseError(f"{self.inst_id}: inverse contract valued in {self.ct_val_ccy!r}, not USD")
        if price <= 0:
            raise ParseError(f"{self.inst_id}: non-positive price for an inverse contract")
        return size / price, size


def _num(value: Any, what: str, *, positive: bool = False) -> float:
    """A finite number, >= 0 (or > 0 with ``positive``); ParseError naming the field otherwise."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParseError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(out) or out < 0 or (positive and out == 0):
        raise ParseError(f"{what} must be {'positive' if positive else 'a finite non-negative number'}, "
                         f"got {value!r}")
    return out


def _positive(value: Any, what: str) -> float:
    return _num(value, what, positive=True)


def _ms(value: Any, what: str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ParseError(f"{what} is not a millisecond timestamp: {value!r}") from None
    if out <= 0:
        raise ParseError(f"{what} must be positive, got {value!r}")
    return out


def base_asset(symbol: str, exchange: str | None = None) -> str:
    """Base asset of a native symbol: BTCUSDT → BTC, BTCUSDT_250627 → BTC, BTCUSD_PERP → BTC,
    BTC-27JUN25 → BTC, BTCPERP → BTC, BTC-USDT-SWAP → BTC, 1000PEPEUSDT → 1000PEPE (the importers'
    one reading of each venue's symbols, :func:`liqscope.models.importers.symbols.asset_from_symbol`)."""
    return asset_from_symbol(symbol, exchange)


def _inverse(venue: str, symbol: str, contracts: float, price: float) -> tuple[float, float]:
    """(qty in base units, notional USD) of ``contracts`` inverse contracts, sized as documented."""
    unit = tardis_unit(venue, symbol)  # the documented sizes, with their sources: importers/contracts.py
    if unit.size is None:
        raise ParseError(f"{symbol}: inverse contract of a USD value Liqscope does not know")
    if price <= 0:
        raise ParseError(f"{symbol}: non-positive price for an inverse contract")
    notional = contracts * unit.size
    return notional / price, notional


def _quote_of(symbol: str) -> str:
    s = symbol.upper().split("_")[0]
    for q in _QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return "USDC" if q == "PERP" else q  # Bybit's BTCPERP is the USDC perpetual
    return ""


def _event(ts_ms: int, exchange: str, symbol: str, asset: str, side: str,
           price: float, qty: float, notional: float) -> dict:
    return {"ts_ms": ts_ms, "exchange": exchange, "symbol": symbol, "asset": asset, "side": side,
            "price": price, "qty": qty, "notional_usd": notional}


def order_side_to_position_one(order_side: str) -> str:
    s = str(order_side).strip().lower()
    if s == "sell":
        return LONG
    if s == "buy":
        return SHORT
    raise ParseError(f"unknown order side {order_side!r} (expected buy/sell)")


# ---------------------------------------------------------------------------
# Binance USDⓈ-M futures: !forceOrder@arr
# ---------------------------------------------------------------------------
def parse_binance(msg: Any) -> list[dict]:
    """Events in one decoded Binance frame (raw or combined-stream wrapped).

    ``!forceOrder@arr`` pushes one ``forceOrder`` object per frame; a list or a
    ``{"stream":..., "data":...}`` wrapper is accepted too. Quantity is the
    filled accumulated quantity ``z`` (falling back to the original ``q``),
    price the average fill price ``ap`` (falling back to ``p``).
    """
    if isinstance(msg, dict) and "data" in msg and "stream" in msg:
        msg = msg["data"]
    items = msg if isinstance(msg, list) else [msg]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ParseError(f"binance: expected an object, got {type(item).__name__}")
        if item.get("e") != "forceOrder":
            continue  # subscription replies ({"result": null, "id": 1}) and other events
        o = item.get("o")
        if not isinstance(o, dict):
            raise ParseError("binance: forceOrder without an 'o' object")
        symbol = str(o.get("s") or "")
        if not symbol:
            raise ParseError("binance: forceOrder without a symbol")
        side = order_side_to_position_one(o.get("S"))
        qty = _num(o.get("z"), "binance z") if o.get("z") not in (None, "", "0") else 0.0
        if qty <= 0:
            qty = _num(o.get("q"), "binance q")
        price = _num(o.get("ap"), "binance ap") if o.get("ap") not in (None, "") else 0.0
        if price <= 0:
            price = _num(o.get("p"), "binance p")
        ts = _ms(o.get("T") or item.get("E"), "binance T")
        if binance_coinm_usd(symbol) is not None:  # COIN-M: qty counts USD contracts, not coins
            base, usd = _inverse("binance-delivery", symbol, qty, price)
            out.append(_event(ts, "binance", symbol, base_asset(symbol, "binance"), side, price, base, usd))
            continue
        quote = _quote_of(symbol)
        if quote not in USD_LIKE or quote == "USD":  # plain USD is COIN-M's, handled above
            raise ParseError(f"binance: {symbol} is not quoted in a USD stablecoin")
        out.append(_event(ts, "binance", symbol, base_asset(symbol, "binance"), side, price, qty, price * qty))
    return out


# ---------------------------------------------------------------------------
# Bybit v5 public linear: allLiquidation.{symbol}
# ---------------------------------------------------------------------------
_BYBIT_POSITION = {"buy": LONG, "sell": SHORT}  # documented: S is the *position* side


def parse_bybit(msg: Any) -> list[dict]:
    """Events in one decoded Bybit frame.

    ``S`` is the liquidated *position's* side per the v5 docs ("When you receive
    a Buy update, this means that a long position has been liquidated"); ``v``
    is the executed size in base coin for linear contracts, ``p`` the
    bankruptcy price.
    """
    if not isinstance(msg, dict):
        raise ParseError(f"bybit: expected an object, got {type(msg).__name__}")
    topic = str(msg.get("topic") or "")
    if not topic.startswith("allLiquidation."):
        return []  # op replies (subscribe/pong) and other topics
    data = msg.get("data")
    rows = data if isinstance(data, list) else [data]
    out = []
    for d in rows:
        if not isinstance(d, dict):
            raise ParseError("bybit: allLiquidation data item is not an object")
        symbol = str(d.get("s") or topic.split(".", 1)[1])
        raw_side = str(d.get("S") or "").strip().lower()
        if raw_side not in _BYBIT_POSITION:
            raise ParseError(f"bybit: unknown position side {d.get('S')!r}")
        qty = _num(d.get("v"), "bybit v")
        price = _num(d.get("p"), "bybit p")
        ts = _ms(d.get("T") or msg.get("ts"), "bybit T")
        if tardis_unit("bybit", symbol).kind == INVERSE:  # BTCUSD, BTCUSDZ25: v counts 1-USD contracts
            base, usd = _inverse("bybit", symbol, qty, price)
            out.append(_event(ts, "bybit", symbol, base_asset(symbol, "bybit"), _BYBIT_POSITION[raw_side],
                              price, base, usd))
            continue
        quote = _quote_of(symbol) if "-" not in symbol else "USDC"  # BTC-27JUN25: USDC futures
        if quote not in USD_LIKE:
            raise ParseError(f"bybit: {symbol} is not a linear USD(T/C) contract")
        out.append(_event(ts, "bybit", symbol, base_asset(symbol, "bybit"), _BYBIT_POSITION[raw_side],
                          price, qty, price * qty))
    return out


# ---------------------------------------------------------------------------
# OKX v5 public: liquidation-orders (instType SWAP)
# ---------------------------------------------------------------------------
class UnknownInstrument(ParseError):
    """An OKX instrument whose contract size is not known (never guessed)."""


def parse_okx(msg: Any, specs: dict[str, ContractSpec]) -> list[dict]:
    """Events in one decoded OKX frame; ``specs`` maps instId → contract spec."""
    if not isinstance(msg, dict):
        raise ParseError(f"okx: expected an object, got {type(msg).__name__}")
    arg = msg.get("arg") or {}
    if "event" in msg or arg.get("channel") != "liquidation-orders":
        return []  # subscribe acks, errors and other channels
    data = msg.get("data")
    if not isinstance(data, list):
        raise ParseError("okx: liquidation-orders without a data array")
    out = []
    missing = []
    for item in data:
        if not isinstance(item, dict):
            raise ParseError("okx: data item is not an object")
        inst = str(item.get("instId") or "")
        inst_type = str(item.get("instType") or arg.get("instType") or "")
        if inst_type and inst_type not in ("SWAP", "FUTURES"):
            continue  # MARGIN/OPTION are not recorded
        spec = specs.get(inst)
        details = item.get("details") or []
        if not isinstance(details, list):
            raise ParseError("okx: details is not an array")
        if spec is None:
            if details:
                missing.append(inst)
            continue
        for d in details:
            if not isinstance(d, dict):
                raise ParseError("okx: details item is not an object")
            pos = str(d.get("posSide") or "").strip().lower()
            if pos in (LONG, SHORT):
                side = pos
            elif pos in ("net", ""):
                side = order_side_to_position_one(d.get("side"))
            else:
                raise ParseError(f"okx: unknown posSide {d.get('posSide')!r}")
            price = _num(d.get("bkPx"), "okx bkPx")
            contracts = _num(d.get("sz"), "okx sz")
            qty, notional = spec.convert(contracts, price)
            ts = _ms(d.get("ts"), "okx ts")
            out.append(_event(ts, "okx", inst, spec.base or base_asset(inst), side, price, qty, notional))
    if missing:
        # Raised after collecting the convertible rows would lose them: callers that want partial
        # results use Normalizer, which keeps both.
        err = UnknownInstrument(f"okx: no contract size known for {', '.join(sorted(set(missing)))}")
        err.events = out  # type: ignore[attr-defined]
        err.instruments = sorted(set(missing))  # type: ignore[attr-defined]
        raise err
    return out


def okx_specs_from_instruments(payload: dict) -> dict[str, ContractSpec]:
    """Contract specs from a ``GET /api/v5/public/instruments`` response."""
    if str(payload.get("code", "0")) != "0":
        raise ParseError(f"okx instruments: error {payload.get('code')}: {payload.get('msg')}")
    out = {}
    for row in payload.get("data") or []:
        if row.get("instType") not in ("SWAP", "FUTURES"):
            continue
        try:
            spec = ContractSpec.from_okx(row)
        except (ParseError, KeyError):
            continue
        out[spec.inst_id] = spec
    return out


def _is_asset(item: str) -> bool:
    """'BTC' is an asset filter; 'BTCUSDT' / 'BTC-USDT-SWAP' are native symbols."""
    s = item.upper()
    return "-" not in s and not any(s.endswith(q) and len(s) > len(q) for q in (*USD_LIKE, "PERP"))


class SymbolFilter:
    """Matches events by native symbol or by asset ('BTC' keeps every BTC contract)."""

    def __init__(self, items):
        items = [i.strip() for i in (items or []) if i and i.strip()]
        self.items = items
        self.assets = {i.upper() for i in items if _is_asset(i)}
        self.symbols = {i.upper() for i in items if not _is_asset(i)}
        self.empty = not items

    def __call__(self, ev: dict) -> bool:
        return self.empty or ev["symbol"].upper() in self.symbols or ev["asset"].upper() in self.assets


# ---------------------------------------------------------------------------
# Normaliser: journal lines → events, with per-exchange state
# ---------------------------------------------------------------------------
@dataclass
class Normalizer:
    """Feeds raw frames of one exchange and returns canonical events.

    Keeps the state parsing needs (OKX contract specs, taken from ``meta``
    journal lines) and counts what it could not use, so nothing is dropped
    silently.
    """

    exchange: str
    specs: dict[str, ContractSpec] = field(default_factory=dict)
    errors: int = 0
    unconverted: int = 0
    last_error: str | None = None
    missing_instruments: set[str] = field(default_factory=set)
    keep: SymbolFilter | None = None  # the recording session's --symbols, from a meta line

    def set_meta(self, meta: dict) -> None:
        if self.exchange == "okx" and "instruments" in meta:
            self.specs = {k: ContractSpec.from_okx(v) for k, v in meta["instruments"].items()}
        if "symbols" in meta:
            self.keep = SymbolFilter(meta["symbols"]) if meta["symbols"] else None

    def feed_text(self, text: str) -> list[dict]:
        """Events in one raw frame; pings, acks and malformed frames give none."""
        if text in ("pong", "ping") or not text.strip():
            return []
        try:
            msg = json.loads(text)
        except ValueError:
            return self._fail(f"{self.exchange}: malformed frame {text[:60]!r}")
        try:
            if self.exchange == "binance":
                return parse_binance(msg)
            if self.exchange == "bybit":
                return parse_bybit(msg)
            if self.exchange == "okx":
                return parse_okx(msg, self.specs)
        except UnknownInstrument as exc:
            self.unconverted += 1
            self.missing_instruments.update(exc.instruments)  # type: ignore[attr-defined]
            self.last_error = str(exc)
            return list(exc.events)  # type: ignore[attr-defined]
        except ParseError as exc:
            return self._fail(str(exc))
        raise ValueError(f"unknown exchange {self.exchange!r}")

    def _fail(self, message: str) -> list[dict]:
        self.errors += 1
        self.last_error = message
        return []


def event_key(ev: dict) -> tuple:
    """Identity of an event for de-duplication across reconnects and replays."""
    return (ev["exchange"], ev["symbol"], int(ev["ts_ms"]), ev["side"],
            round(float(ev["price"]), 10), round(float(ev["qty"]), 12))


def events_frame(events: Iterable[dict]):
    """Canonical liquidation frame (models/schema.py) from event dicts."""
    import pandas as pd

    from ..schema import LIQ_COLUMNS, empty_liquidations, normalize_liquidations

    events = list(events)
    if not events:
        return empty_liquidations()
    df = pd.DataFrame(events)
    df["ts"] = pd.to_datetime(df.pop("ts_ms"), unit="ms", utc=True)
    return normalize_liquidations(df[LIQ_COLUMNS])
