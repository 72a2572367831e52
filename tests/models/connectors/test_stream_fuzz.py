"""Hypothesis-generated WebSocket streams for the live recorder, per exchange (binance, bybit, okx).

A stream mixes *clean* frames (documented shapes, random valid values, some sent
twice or re-wrapped, as a reconnect overlap does) with *hostile* ones: mangled
JSON, wrong types, booleans, huge numbers, NaN/inf, deep nesting, unicode and
control characters in symbols, times far from now, oversize frames, frames that
are no liquidation at all. For each stream:

* nothing crashes (no exception, nothing logged at ERROR by the recorder, its
  store never let go of events);
* every clean event is stored exactly once, with the documented side, price and
  quantity; a frame that must be refused stores nothing and is counted as
  quarantined; the recorder's counters add up (stored = events_total, nothing
  left unstored);
* the raw journal holds every received frame, in order, as received;
* whatever the store holds satisfies the contracts (finite positive numbers in
  ``schema.BOUNDS``, UTC times, sides long/short, printable symbols).

Most streams go through the recorder's frame handling directly
(``Recorder._journal_batch``: journal, normalise, validate, hold; then
``_store_once``: the store thread's write) into a real store --
the same code the journal and store threads run, without sockets. A few go
through a real loopback WebSocket server to the running recorder. Counts go to
the ``fuzz_tally`` (tests/models/conftest.py).
"""
from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_fakes import NOW_MS, FakeExchangeHTTP, WSReplay, fixture, wait_for as _wait
from liqscope.models.connectors.journal import iter_lines, journal_files
from liqscope.models.connectors.recorder import Backoff, Recorder
from liqscope.models.connectors.validate import MAX_DEPTH, MAX_FRAME_BYTES, MAX_SYMBOL
from liqscope.models.schema import BOUNDS, SIDES
from liqscope.models.store import open_store

EXCHANGES = ("binance", "bybit", "okx")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# OKX contract sizes, as the recorder journals them (a meta line) after GET /api/v5/public/instruments.
OKX_ROWS = {r["instId"]: r for r in fixture("okx")["rest"]["instruments"]["data"] if r["instType"] == "SWAP"}
OKX_META = {"instruments": OKX_ROWS}

# symbol -> (asset, USD per contract if amounts are inverse contracts, else None): documented units
SYMBOLS = {
    "binance": {"BTCUSDT": ("BTC", None), "ETHUSDT": ("ETH", None), "1000PEPEUSDT": ("1000PEPE", None),
                "SOLUSDC": ("SOL", None), "BTCUSD_PERP": ("BTC", 100.0), "ETHUSD_PERP": ("ETH", 10.0)},
    "bybit": {"BTCUSDT": ("BTC", None), "ETHUSDT": ("ETH", None), "ROSEUSDT": ("ROSE", None),
              "BTCUSD": ("BTC", 1.0)},
    "okx": {"BTC-USDT-SWAP": ("BTC", None), "ETH-USDT-SWAP": ("ETH", None), "BTC-USD-SWAP": ("BTC", 100.0)},
}

# Unique times: clean events count down from a second before the session's "now", hostile ones from an
# hour before it (never the same key as a clean event), all well inside the recorder's 24 h window. Steps
# of 10 ms: a frame's own time (Binance E, Bybit ts: a few ms later, and used when the event's is missing)
# never equals another event's.
_CLEAN_T = itertools.count(0, 10)
_HOSTILE_T = itertools.count(0, 10)


def clean_ts() -> int:
    return NOW_MS - 1000 - next(_CLEAN_T)


def hostile_ts() -> int:
    return NOW_MS - 3_600_000 - next(_HOSTILE_T)


# -- events and frames ------------------------------------------------------------------------------
@dataclass
class Event:
    """One liquidation as a frame states it, and what the store must hold for it."""

    exchange: str
    symbol: str
    ts: int
    side: str        # the liquidated position: long/short
    price: str
    amount: str      # as the frame states it (base units or contracts)
    style: int = 0   # which of the documented spellings of the side (order side, position side, net mode)

    def expected(self) -> tuple[float, float, float]:
        """(price, qty in base units, notional USD), from the documented units."""
        price, amount = float(self.price), float(self.amount)
        if self.exchange == "okx":
            row = OKX_ROWS[self.symbol]
            contracts = amount * float(row["ctVal"]) * float(row["ctMult"])
            if row["ctType"] == "inverse":
                return price, contracts / price, contracts
            return price, contracts, contracts * price
        usd = SYMBOLS[self.exchange][self.symbol][1]
        if usd is not None:
            return price, amount * usd / price, amount * usd
        return price, amount, amount * price


def binance_obj(e: Event) -> dict:
    side = {"long": "SELL", "short": "BUY"}[e.side]  # the liquidation ORDER's side
    return {"e": "forceOrder", "E": e.ts + 3, "o": {"s": e.symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": e.amount,
                                                     "p": e.price, "ap": e.price, "X": "FILLED", "l": e.amount,
                                                     "z": e.amount, "T": e.ts}}


def bybit_row(e: Event) -> dict:
    side = {"long": "Buy", "short": "Sell"}[e.side]  # documented as the POSITION's side
    return {"T": e.ts, "s": e.symbol, "S": side if e.style == 0 else side.upper(), "v": e.amount, "p": e.price}


def okx_detail(e: Event) -> dict:
    if e.style == 0:  # hedge mode: posSide names the position
        pos, side = e.side, {"long": "sell", "short": "buy"}[e.side]
    else:  # net mode: the order side does
        pos, side = "net", {"long": "sell", "short": "buy"}[e.side]
    return {"bkLoss": "0", "bkPx": e.price, "ccy": "", "posSide": pos, "side": side, "sz": e.amount, "ts": str(e.ts)}


def okx_item(symbol: str, events: list[Event]) -> dict:
    row = OKX_ROWS[symbol]
    return {"details": [okx_detail(e) for e in events], "instFamily": row["instFamily"], "instId": symbol,
            "instType": "SWAP", "uly": row["instFamily"]}


def frame_obj(exchange: str, events: list[Event], wrap: int = 0):
    """A documented frame holding ``events`` (binance: one per frame unless wrapped in a list)."""
    if exchange == "binance":
        objs = [binance_obj(e) for e in events]
        obj = objs[0] if len(objs) == 1 and wrap != 2 else objs
        return {"stream": "!forceOrder@arr", "data": obj} if wrap == 1 else obj
    if exchange == "bybit":
        sym = events[0].symbol
        return {"topic": f"allLiquidation.{sym}", "type": "snapshot", "ts": events[-1].ts + 5,
                "data": [bybit_row(e) for e in events]}
    by_sym: dict[str, list[Event]] = {}
    for e in events:
        by_sym.setdefault(e.symbol, []).append(e)
    return {"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "data": [okx_item(s, evs) for s, evs in by_sym.items()]}


PRICE = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("200000"), places=4, allow_nan=False)
AMOUNT = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50000"), places=3, allow_nan=False)


@st.composite
def events(draw, exchange: str, ts, n=st.integers(1, 3)) -> list[Event]:
    """Events one frame may hold (bybit: one symbol per frame, as its topic says)."""
    count = draw(n)
    syms = sorted(SYMBOLS[exchange])
    first = draw(st.sampled_from(syms))
    out = []
    for _ in range(count):
        sym = first if exchange == "bybit" else draw(st.sampled_from(syms))
        out.append(Event(exchange, sym, ts(), draw(st.sampled_from(SIDES)), str(draw(PRICE).normalize()),
                         str(draw(AMOUNT).normalize()), draw(st.integers(0, 1))))
    return out


# -- hostile frames ---------------------------------------------------------------------------------
CONTROL = ["\x00", "\x07", "\x1b[31m", "\n", "\r", "\t", "\u200b", "\u202e", "\ud7ff", "\x7f", "\x85"]
HOSTILE_SYMBOLS = st.one_of(
    st.sampled_from(["", " ", " BTCUSDT", "BTCUSDT ", "X" * (MAX_SYMBOL + 1) + "USDT", "X" * 300 + "USDT",
                     "BTC\x07USDT", "BTC\x00USDT", "\u202eTDSUCTB", "BTC\nUSDT", "BTC\u200bUSDT",
                     # printable, but no store folder can be named after them
                     "BTC\\USDT", "\u00fc" * 40 + "USDT", "+" * 50 + "USDT"]),
    st.builds(lambda a, c, b: a + c + b + "USDT", st.text(max_size=4), st.sampled_from(CONTROL), st.text(max_size=4)),
)
# Values that may land anywhere a field is read: the type or the value is wrong.
WRONG = st.one_of(
    st.booleans(), st.none(), st.just([]), st.just({}), st.just([1, 2]), st.just({"v": 1}),
    st.sampled_from(["", "abc", "1,5", "0x1F", "NaN", "Infinity", "-1", "0", "-0", "1e400", "9" * 400, " 1 ",
                     "١٢٣"]),
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
# Raw number literals JSON allows but no exchange sends (json.loads: 5000 digits is a ValueError, 1e400 inf).
LITERALS = ["9" * 400, "9" * 5000, "-" + "9" * 30, "1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity",
            "0.0000000000000000000001", "true", "false", "null"]


@dataclass
class Frame:
    text: str
    clean: list[Event] = field(default_factory=list)  # events that must be stored (once)
    refused: list[int] = field(default_factory=list)  # template times that must not be stored
    counted: int = 0  # at least this many quarantined/unreadable
    kind: str = "clean"


def _fields(exchange: str) -> list[str]:
    return {"binance": ["price", "amount", "ts", "side", "symbol", "o", "e", "E"],
            "bybit": ["price", "amount", "ts", "side", "symbol", "data", "topic", "ts_frame"],
            "okx": ["price", "amount", "ts", "side", "symbol", "details", "data", "arg", "posSide"]}[exchange]


def _set(exchange: str, obj, name: str, value):
    """``obj`` (a one-event frame) with the field ``name`` set to ``value``."""
    if exchange == "binance":
        o = obj["o"]
        where = {"price": (o, ("ap", "p")), "amount": (o, ("z", "q")), "ts": (o, ("T",)), "side": (o, ("S",)),
                 "symbol": (o, ("s",)), "o": (obj, ("o",)), "e": (obj, ("e",)), "E": (obj, ("E",))}[name]
    elif exchange == "bybit":
        d = obj["data"][0]
        if name == "symbol" and isinstance(value, str):  # a row without "s" takes the topic's symbol
            obj["topic"] = f"allLiquidation.{value}"
        where = {"price": (d, ("p",)), "amount": (d, ("v",)), "ts": (d, ("T",)), "side": (d, ("S",)),
                 "symbol": (d, ("s",)), "data": (obj, ("data",)), "topic": (obj, ("topic",)),
                 "ts_frame": (obj, ("ts",))}[name]
    else:
        item = obj["data"][0]
        d = item["details"][0]
        where = {"price": (d, ("bkPx",)), "amount": (d, ("sz",)), "ts": (d, ("ts",)), "side": (d, ("side",)),
                 "posSide": (d, ("posSide",)), "symbol": (item, ("instId",)), "details": (item, ("details",)),
                 "data": (obj, ("data",)), "arg": (obj, ("arg",))}[name]
    target, keys = where
    for k in keys:
        target[k] = value
    return obj


MARK = "@@MARK@@"  # replaced by a raw literal after dumping (ASCII: json.dumps keeps it as is)


@st.composite
def hostile_frame(draw, exchange: str) -> Frame:
    (ev,) = draw(events(exchange, hostile_ts, n=st.just(1)))
    obj = frame_obj(exchange, [ev])
    text = json.dumps(obj, separators=(",", ":"))
    kind = draw(st.sampled_from(["truncated", "garbled", "wrong", "wrong", "wrong", "literal", "boolean", "symbol",
                                 "nested", "nested-field", "time", "control", "scalar", "oversize", "nan"]))
    must = dict(refused=[ev.ts], counted=1, kind=kind)
    if kind == "truncated":  # any proper prefix of a JSON object is malformed
        return Frame(text[: draw(st.integers(1, len(text) - 1))], **must)
    if kind == "garbled":  # one character replaced, inserted or removed: anything may come of it
        k = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        ch = draw(st.characters(exclude_categories=("Cs",)))
        text = {"replace": text[:k] + ch + text[k + 1:], "insert": text[:k] + ch + text[k:],
                "delete": text[:k] + text[k + 1:]}[op]
        return Frame(text, kind=kind)
    if kind == "wrong":  # a field the parser reads holds the wrong type or value: anything may come of it
        name = draw(st.sampled_from(_fields(exchange)))
        return Frame(json.dumps(_set(exchange, obj, name, draw(WRONG)), allow_nan=True), kind=kind)
    if kind == "literal":  # a number JSON allows but no exchange sends
        lit = draw(st.sampled_from(LITERALS))
        name = draw(st.sampled_from(["price", "amount", "ts"]))
        text = json.dumps(_set(exchange, obj, name, MARK)).replace(f'"{MARK}"', lit)
        sure = name in ("price", "amount") and lit not in ("0.0000000000000000000001",)
        return Frame(text, **must) if sure else Frame(text, kind=kind)
    if kind == "boolean":  # float(True) is 1.0 and int(True) 1 ms after 1970: refused, not stored as such
        name = draw(st.sampled_from(["price", "amount", "ts"]))
        return Frame(json.dumps(_set(exchange, obj, name, draw(st.booleans()))), **must)
    if kind == "nan":
        name = draw(st.sampled_from(["price", "amount"]))
        value = draw(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300]))
        return Frame(json.dumps(_set(exchange, obj, name, value), allow_nan=True), **must)
    if kind == "symbol":  # unprintable, blank-edged, or too long
        sym = draw(HOSTILE_SYMBOLS)
        text = json.dumps(_set(exchange, obj, "symbol", sym), ensure_ascii=draw(st.booleans()))
        if exchange == "okx":  # an instId with no known contract size waits for the next instrument list
            return Frame(text, refused=[ev.ts], kind=kind)  # (Recorder._okx_retry): not stored, not quarantined
        return Frame(text, **must)
    if kind == "nested":  # deeper than the decoder may go: not decoded at all
        depth = draw(st.sampled_from([MAX_DEPTH + 1, 1000, 100_000]))
        opener = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        return Frame(opener * depth + "1" + closer * depth, **must)
    if kind == "nested-field":  # inside the frame's own object: deeper than MAX_DEPTH in all
        depth = draw(st.sampled_from([MAX_DEPTH, 5000]))
        name = draw(st.sampled_from(_fields(exchange)))
        return Frame(json.dumps(_set(exchange, obj, name, MARK)).replace(f'"{MARK}"', "[" * depth + "]" * depth),
                     **must)
    if kind == "time":  # days from when it was received, or out of any range
        when = draw(st.sampled_from([NOW_MS - 3 * 86_400_000, NOW_MS + 2 * 86_400_000, 1, -5, 10**17, 2**63, 0]))
        text = json.dumps(_set(exchange, obj, "ts", when if exchange != "okx" else str(when)))
        if when == 0 and exchange != "okx":  # no time: Binance and Bybit document the frame's own (E, ts)
            return Frame(text, kind=kind)
        return Frame(text, **must)
    if kind == "control":  # subscription acks, pongs, other topics: nothing to store, nothing wrong
        return Frame(draw(st.sampled_from(CONTROL_FRAMES[exchange] + ["pong", "ping", "", "  "])), kind=kind)
    if kind == "scalar":  # valid JSON, not an object
        return Frame(draw(st.sampled_from(["null", "[]", "{}", "123", '"text"', "true", "[null]", "[[]]", "1e999"])),
                     kind=kind)
    if kind == "oversize":  # over the frame cap: not decoded
        pad = "x" * (MAX_FRAME_BYTES + 16)
        return Frame(json.dumps(_set(exchange, obj, "symbol", ev.symbol)).replace("{", '{"pad":"' + pad + '",', 1),
                     **must)
    raise AssertionError(kind)


CONTROL_FRAMES = {
    "binance": ['{"result":null,"id":1}', '{"e":"markPriceUpdate","E":1,"s":"BTCUSDT"}',
                '{"code":-1121,"msg":"Invalid symbol."}'],
    "bybit": ['{"success":true,"ret_msg":"","conn_id":"c","req_id":"","op":"subscribe"}',
              '{"success":false,"ret_msg":"error:handler not found","op":"subscribe"}',
              '{"success":true,"ret_msg":"pong","conn_id":"t","op":"ping"}',
              '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{}}'],
    "okx": ['{"event":"subscribe","arg":{"channel":"liquidation-orders","instType":"SWAP"},"connId":"a"}',
            '{"event":"error","code":"60012","msg":"Invalid request","connId":"a"}',
            '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[]}'],
}


@st.composite
def clean_frames(draw, exchange: str) -> list[Frame]:
    """A clean frame, sometimes followed by its repeat (a reconnect overlap) or by the same events re-wrapped."""
    evs = draw(events(exchange, clean_ts))
    wrap = draw(st.integers(0, 2)) if exchange == "binance" else 0
    if exchange == "binance" and len(evs) > 1:
        wrap = 2  # several forceOrders: a list (or a list in the combined-stream wrapper)
    out = [Frame(json.dumps(frame_obj(exchange, evs, wrap), separators=(",", ":")), clean=evs)]
    again = draw(st.sampled_from([None, None, "same", "rewrapped"]))
    if again == "same":
        out.append(Frame(out[0].text, clean=evs, kind="repeat"))
    elif again == "rewrapped":
        out.append(Frame(json.dumps(frame_obj(exchange, evs, 2 if exchange == "binance" else 0), indent=1),
                         clean=evs, kind="repeat"))
    return out


@st.composite
def streams(draw, exchange: str, max_frames: int = 10, oversize: bool = True) -> list[Frame]:
    frames: list[Frame] = []
    for _ in range(draw(st.integers(1, max_frames))):
        if draw(st.booleans()):
            frames += draw(clean_frames(exchange))
        else:
            f = draw(hostile_frame(exchange))
            if f.kind == "oversize" and not oversize:
                continue
            frames.append(f)
    return frames


# -- checks -----------------------------------------------------------------------------------------
class Errors(logging.Handler):
    """Collects what the recorder logs at ERROR (it logs, and carries on, where a bug would crash it)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        logging.getLogger("liqscope").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("liqscope").removeHandler(self)


def check_contracts(frame: pd.DataFrame, exchange: str) -> None:
    """What the store holds: UTC times, long/short, finite numbers in (0, bound], printable short symbols."""
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]" and frame["ts"].notna().all()
    assert set(frame["side"].astype(str)) <= set(SIDES)
    for col, (high, _unit) in BOUNDS.items():
        v = frame[col].to_numpy(dtype="float64")
        assert np.isfinite(v).all() and (v > 0).all() and (v <= high).all(), col
    assert set(frame["exchange"].astype(str)) <= {exchange}
    for col in ("symbol", "asset"):
        for name in frame[col].astype(str).unique():
            assert name and len(name) <= MAX_SYMBOL and name.isprintable() and name == name.strip(), (col, name)


def journaled(journal_dir: Path, exchange: str) -> list[str]:
    return [o["d"] for p in journal_files(journal_dir, exchange) for _a, _b, o in iter_lines(p)
            if o and o.get("k") == "msg"]


def check_outcome(rec: Recorder, store, exchange: str, frames: list[Frame], rows_before: int, on_events: list,
                  tally, sent: list[str] | None = None) -> None:
    """The properties above, once the recorder has handled ``frames`` (``sent``: what reached it)."""
    st_ = rec.status()[exchange]
    liq = store.liquidations().frame
    check_contracts(liq, exchange)
    assert journaled(rec.journal_dir, exchange) == (sent if sent is not None else [f.text for f in frames])
    # every clean event exactly once, as documented
    times = (liq["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[ms]").astype(np.int64)).tolist()
    rows: dict[tuple, list] = {}
    for t, sym, side, asset, price, qty, notional in zip(
            times, liq["symbol"].astype(str), liq["side"].astype(str), liq["asset"].astype(str),
            liq["price"].tolist(), liq["qty"].tolist(), liq["notional_usd"].tolist()):
        rows.setdefault((sym, t), []).append((side, asset, price, qty, notional))
    clean = {(e.symbol, e.ts): e for f in frames for e in f.clean}
    for (sym, ts), e in clean.items():
        got = rows.get((sym, ts), [])
        assert len(got) == 1, f"{exchange} {sym} at {ts}: stored {len(got)} times"
        side, asset, price, qty, notional = got[0]
        want = e.expected()
        assert side == e.side and asset == SYMBOLS[exchange][sym][0], (side, asset, e)
        assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip((price, qty, notional), want)), (got, want)
    # what must be refused is not stored, and is counted
    refused = {t for f in frames for t in f.refused}
    assert not set(times) & refused, "a frame that must be refused was stored"
    must_count = sum(f.counted for f in frames)
    assert st_.quarantined >= must_count, (st_.quarantined, must_count, st_.last_quarantined)
    if all(f.kind in ("clean", "repeat", "control") for f in frames):
        assert st_.quarantined == 0, st_.last_quarantined
    # the counters add up: each stored event once, none waiting
    new = len(liq) - rows_before
    assert st_.events_total == new >= len(clean), (st_.events_total, new, len(clean))
    assert st_.unstored == 0 and not rec._held and not rec._behind
    assert sum(len(df) for df in on_events) == new  # the GUI saw each stored event once
    tally.stream["streams"] += 1
    tally.stream["frames"] += len(frames)
    tally.stream["stored"] += new
    tally.stream["quarantined"] += st_.quarantined
    tally.exchanges.add(exchange)


# -- 1. many streams, through the recorder's frame handling ------------------------------------------
_RUN = itertools.count()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A fresh real store (and a folder for the journal) for each stream: small stores keep the run quick."""
    root = tmp_path_factory.mktemp("stream-fuzz")

    def get(exchange: str):
        folder = root / f"{exchange}-{next(_RUN)}"
        return open_store(folder / "store"), folder

    return get


@pytest.mark.parametrize("exchange", EXCHANGES)
@settings(max_examples=70, **SETTINGS)
@given(data=st.data())
def test_hostile_stream_through_the_recorder(exchange, data, stores, fuzz_tally):
    store, root = stores(exchange)
    frames = data.draw(streams(exchange), label="stream")
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(frames) - 1)), max_size=2), label="batches")))
    store_after = data.draw(st.lists(st.booleans(), min_size=3, max_size=3), label="store after batch")
    seen: list[pd.DataFrame] = []
    rec = Recorder([exchange], store=store, journal_dir=root / "journal", fsync=False, on_events=seen.append)
    rows_before = len(store.liquidations().frame)
    lines = [{"t": NOW_MS, "k": "msg", "d": f.text} for f in frames]
    if exchange == "okx":  # the contract sizes its prepare() journals before any frame
        lines.insert(0, {"t": NOW_MS, "k": "meta", "d": OKX_META})
    with Errors() as errors:
        try:
            rec._open_writer()
            bounds = [0, *[c + (exchange == "okx") for c in cuts], len(lines)]
            for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
                rec._journal_batch([(exchange, line) for line in lines[a:b]])
                if store_after[k % 3]:
                    rec._store_once()
            rec._store_once()
        except Exception:
            fuzz_tally.stream["crash"] += 1
            raise
        finally:
            if rec._journal is not None:
                rec._journal.close()
    if errors.records:
        fuzz_tally.stream["crash"] += 1
    assert not errors.records, [r.getMessage() for r in errors.records]
    check_outcome(rec, store, exchange, frames, rows_before, seen, fuzz_tally)


def test_a_time_of_400_digits_is_quarantined_and_the_recorder_keeps_storing(tmp_path, fuzz_tally):
    """Found by the fuzz above: a frame whose time was a 400-digit integer made validate.event_problem raise
    OverflowError (while wording how many days off it was); the recorder let its events go, and every catch-up
    from the journal (and every restart's recovery) raised again: nothing was stored any more."""
    store = open_store(tmp_path / "store")
    poison = hostile_frame_text("binance", "9" * 400)
    good = [Frame(json.dumps(frame_obj("binance", [e])), clean=[e])
            for e in [Event("binance", "BTCUSDT", clean_ts(), "long", "100", "1") for _ in range(3)]]
    for attempt in range(2):  # and after a restart on the same journal
        seen: list[pd.DataFrame] = []
        rec = Recorder(["binance"], store=store, journal_dir=tmp_path / "journal", fsync=False, on_events=seen.append)
        rows_before = len(store.liquidations().frame)
        frames = [poison, *good] if attempt == 0 else good[:0]
        with Errors() as errors:
            rec._open_writer()
            rec._journal_batch([("binance", {"t": NOW_MS, "k": "msg", "d": f.text}) for f in frames])
            rec._store_once()
            rec._journal.close()
        assert not errors.records, [r.getMessage() for r in errors.records]
        if attempt == 0:
            check_outcome(rec, store, "binance", frames, rows_before, seen, fuzz_tally, sent=[f.text for f in frames])
            assert rec.status()["binance"].last_quarantined.startswith("binance BTCUSDT: time 9999")
        assert len(store.liquidations().frame) == 3 and not rec._behind


@pytest.mark.parametrize("symbol", ["BTC\\USDT", "\u00fc" * 40 + "USDT", "+" * 50 + "USDT"],
                         ids=["backslash", "non-ascii", "punctuation"])
def test_a_symbol_the_store_cannot_name_does_not_block_the_recorder(tmp_path, symbol):
    store = open_store(tmp_path / "store")
    good = [Event("binance", "BTCUSDT", clean_ts(), "long", "100", "1") for _ in range(2)]
    bad = Event("binance", symbol, hostile_ts(), "short", "100", "1")
    frames = [json.dumps(frame_obj("binance", [e])) for e in (good[0], bad, good[1])]
    rec = Recorder(["binance"], store=store, journal_dir=tmp_path / "journal", fsync=False)
    rec._open_writer()
    rec._journal_batch([("binance", {"t": NOW_MS, "k": "msg", "d": f}) for f in frames])
    rec._store_once()
    rec._journal.close()
    st_ = rec.status()["binance"]
    assert len(store.liquidations().frame) == 2 and st_.quarantined == 1 and not rec._held, st_.last_error


def hostile_frame_text(exchange: str, literal: str) -> Frame:
    """A one-event frame whose time is the raw JSON ``literal``."""
    ev = Event(exchange, "BTCUSDT", hostile_ts(), "short", "100", "1")
    text = json.dumps(_set(exchange, frame_obj(exchange, [ev]), "ts", MARK)).replace(f'"{MARK}"', literal)
    return Frame(text, refused=[ev.ts], counted=1, kind="literal")


# -- 2. a few streams through a real loopback WebSocket server ---------------------------------------
@pytest.fixture(scope="module")
def okx_rest():
    with FakeExchangeHTTP() as srv:
        yield srv


CAP = 64 * 1024  # the recorder's frame cap for these runs: an oversize frame costs 64 KiB, not 1 MiB



@pytest.mark.parametrize("exchange", EXCHANGES)
@settings(max_examples=4, **SETTINGS)
@given(data=st.data())
def test_hostile_stream_from_a_loopback_server(exchange, data, stores, okx_rest, fuzz_tally):
    """The same streams, sent by a WebSocket server to the running recorder; an oversize frame (over the
    connection's cap) ends the stream: the connection is closed unread, counted, and reopened."""
    store, root = stores(exchange)
    frames = [f for f in data.draw(streams(exchange, max_frames=8, oversize=False), label="stream")
              if len(f.text.encode()) <= CAP]  # larger ones end the connection (tested by ``big``)
    big = data.draw(st.booleans(), label="oversize at the end")
    # Bybit and OKX send nothing before the client subscribes (Binance's stream URL needs no subscription)
    script = ([("wait_subscribe",)] if exchange != "binance" else []) + [f.text for f in frames]
    if big:
        script.append(json.dumps({"pad": "x" * CAP}))
    seen: list[pd.DataFrame] = []
    rows_before = len(store.liquidations().frame)
    with Errors() as errors, WSReplay([script, []]) as ws:
        rec = Recorder([exchange], store=store, journal_dir=root / "journal",
                       symbols=sorted(SYMBOLS["bybit"]) if exchange == "bybit" else None,
                       endpoints={exchange: {"ws": ws.url, "rest": okx_rest.base}},
                       backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.5), flush_interval=0.05,
                       store_interval=0.1, fsync=False, max_frame_bytes=CAP, on_events=seen.append)
        rec.start()
        try:
            _wait(lambda: len(journaled(rec.journal_dir, exchange)) >= len(frames), what="every frame journaled")
            if big:
                _wait(lambda: rec.status()[exchange].oversize == 1 and ws.connections >= 2,
                      what="the oversize frame dropped and the connection reopened")
        finally:
            rec.stop()
    if errors.records or rec.error is not None:
        fuzz_tally.stream["crash"] += 1
    assert rec.error is None and not errors.records, [r.getMessage() for r in errors.records]
    check_outcome(rec, store, exchange, frames, rows_before, seen, fuzz_tally, sent=[f.text for f in frames])
