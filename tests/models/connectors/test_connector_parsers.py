"""Wire formats → canonical liquidations, from fixtures written from each exchange's docs."""
from __future__ import annotations

import json

import pytest

from connector_fakes import fixture
from liqscope.models.connectors.parsers import (ContractSpec, Normalizer, ParseError, base_asset, events_frame,
                                                okx_specs_from_instruments, parse_binance, parse_bybit, parse_okx)


def _normalizer(exchange: str) -> Normalizer:
    n = Normalizer(exchange)
    if exchange == "okx":
        n.specs = okx_specs_from_instruments(fixture("okx")["rest"]["instruments"])
    return n


def _cases():
    for exchange in ("binance", "bybit", "okx"):
        for frame in fixture(exchange)["frames"]:
            yield pytest.param(exchange, frame, id=f"{exchange}: {frame['name'][:60]}")


@pytest.mark.parametrize("exchange,frame", list(_cases()))
def test_fixture_frames(exchange, frame):
    """Every documented frame (and each edge case) gives exactly the expected events."""
    n = _normalizer(exchange)
    got = n.feed_text(frame["raw"])
    assert len(got) == len(frame["expect"])
    for ev, exp in zip(got, frame["expect"]):
        assert ev["exchange"] == exchange
        for key, value in exp.items():
            if isinstance(value, float):
                assert ev[key] == pytest.approx(value, rel=1e-12), key
            else:
                assert ev[key] == value, key
    assert (n.errors == 1) == bool(frame.get("error")), n.last_error
    assert (n.unconverted == 1) == bool(frame.get("unconverted"))
    if got:
        df = events_frame(got)  # passes the canonical schema validator
        assert list(df["side"].astype(str)) == [e["side"] for e in frame["expect"]]


def test_binance_order_side_is_converted():
    """Binance USDⓈ-M "Liquidation Order Streams": ``o.S`` is the *order* side
    ("S": "SELL", // Side). A liquidation closes a position with the opposite
    order: SELL liquidates a long, BUY liquidates a short."""
    def frame(side):
        return {"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT", "S": side, "q": "1", "p": "100", "ap": "100",
                                                  "X": "FILLED", "l": "1", "z": "1", "T": 1746792000000}}
    assert parse_binance(frame("SELL"))[0]["side"] == "long"
    assert parse_binance(frame("BUY"))[0]["side"] == "short"


def test_bybit_position_side_is_not_an_order_side():
    """Bybit v5 "All Liquidation" (allLiquidation.{symbol}): "S — Position side.
    Buy,Sell. When you receive a Buy update, this means that a long position has
    been liquidated." So Buy → long and Sell → short: the *opposite* of the
    order-side rule, and converting it as an order side would flip every event."""
    def frame(side):
        return {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": 2,
                "data": [{"T": 1746792000000, "s": "BTCUSDT", "S": side, "v": "1", "p": "100"}]}
    assert parse_bybit(frame("Buy"))[0]["side"] == "long"
    assert parse_bybit(frame("Sell"))[0]["side"] == "short"


def test_okx_position_side_and_net_mode():
    """OKX v5 "Liquidation orders channel": "posSide — Position mode side:
    long: Hedge mode long, short: Hedge mode short, net: Net mode"; "side — Order
    side, buy sell". Hedge mode names the position; net mode converts the order
    side (sell liquidates a long)."""
    specs = okx_specs_from_instruments(fixture("okx")["rest"]["instruments"])

    def frame(pos, side):
        return {"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                "data": [{"instId": "BTC-USDT-SWAP", "instType": "SWAP", "instFamily": "BTC-USDT",
                          "details": [{"bkPx": "100", "posSide": pos, "side": side, "sz": "1",
                                       "ts": "1746792000000"}]}]}
    assert parse_okx(frame("long", "sell"), specs)[0]["side"] == "long"
    assert parse_okx(frame("short", "buy"), specs)[0]["side"] == "short"
    assert parse_okx(frame("net", "sell"), specs)[0]["side"] == "long"
    assert parse_okx(frame("net", "buy"), specs)[0]["side"] == "short"


def test_okx_contract_sizes():
    """OKX "sz — For FUTURES/SWAP, the unit is contract": base qty = sz × ctVal ×
    ctMult (linear, ctValCcy = base coin); inverse contracts are ctVal USD each,
    so notional = sz × ctVal × ctMult USD and qty = notional / price."""
    linear = ContractSpec.from_okx({"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1",
                                    "ctValCcy": "BTC", "ctType": "linear", "instFamily": "BTC-USDT"})
    assert linear.convert(250, 60_000) == pytest.approx((2.5, 150_000.0))
    mult = ContractSpec.from_okx({"instId": "ETH-USDT-SWAP", "ctVal": "0.1", "ctMult": "10",
                                  "ctValCcy": "ETH", "ctType": "linear", "instFamily": "ETH-USDT"})
    assert mult.convert(3, 2500) == pytest.approx((3.0, 7500.0))
    inverse = ContractSpec.from_okx({"instId": "BTC-USD-SWAP", "ctVal": "100", "ctMult": "1",
                                     "ctValCcy": "USD", "ctType": "inverse", "instFamily": "BTC-USD",
                                     "settleCcy": "BTC"})
    assert inverse.convert(30, 50_000) == pytest.approx((0.06, 3000.0))


def test_okx_never_guesses_a_contract_size():
    """An instrument missing from the instrument list yields no event (the raw
    frame stays in the journal), and bad specs are refused, not defaulted."""
    n = _normalizer("okx")
    unknown = next(f for f in fixture("okx")["frames"] if f.get("unconverted"))
    assert n.feed_text(unknown["raw"]) == []
    assert n.unconverted == 1 and n.missing_instruments == {"NEW-USDT-SWAP"}
    for bad in ({"ctVal": "", "ctType": "linear"}, {"ctVal": "0", "ctType": "linear"},
                {"ctVal": "1", "ctType": "weird"}):
        with pytest.raises(ParseError):
            ContractSpec.from_okx({"instId": "X-USDT-SWAP", "ctMult": "1", "ctValCcy": "X", **bad})
    odd = ContractSpec.from_okx({"instId": "BTC-USDT-SWAP", "ctVal": "1", "ctMult": "1", "ctValCcy": "ETH",
                                 "ctType": "linear", "instFamily": "BTC-USDT"})
    with pytest.raises(ParseError):
        odd.convert(1, 1)


def test_okx_mixed_batch_keeps_known_rows():
    """A frame naming a known and an unknown instrument keeps the known rows."""
    n = _normalizer("okx")
    msg = json.loads(fixture("okx")["frames"][1]["raw"])
    unknown = json.loads(next(f for f in fixture("okx")["frames"] if f.get("unconverted"))["raw"])
    msg["data"] += unknown["data"]
    got = n.feed_text(json.dumps(msg))
    assert [e["symbol"] for e in got] == ["BTC-USDT-SWAP"]
    assert n.unconverted == 1


def test_base_assets():
    assert [base_asset(s) for s in ("BTCUSDT", "1000PEPEUSDT", "BTCUSDT_250627", "BTC-USDT-SWAP", "ETHPERP",
                                    "BTC-27JUN25", "XRPUSDC")] == \
        ["BTC", "1000PEPE", "BTC", "BTC", "ETH", "BTC", "XRP"]


def test_binance_refuses_non_usd_quote():
    with pytest.raises(ParseError):
        parse_binance({"e": "forceOrder", "E": 1, "o": {"s": "BTCEUR", "S": "SELL", "q": "1", "p": "1", "ap": "1",
                                                         "z": "1", "T": 1746792000000}})
