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


# -- inverse contracts: valued by their contract size, never as coins --------------------------------
def _coinm(symbol, q, ap, side="SELL"):
    return {"e": "forceOrder", "E": 1591154240950,
            "o": {"s": symbol, "ps": symbol.split("_")[0], "S": side, "o": "LIMIT", "f": "IOC", "q": q,
                  "p": ap, "ap": ap, "X": "FILLED", "l": q, "z": q, "T": 1591154240949}}


def test_binance_coinm_contracts_are_usd_not_coins():
    """Binance COIN-M "Liquidation Order Streams" (developers.binance.com, derivatives/coin-margined-futures,
    websocket-market-streams) has the USD-M shape -- ``"s":"BTCUSD_200925"``, ``"ps": "BTCUSD"``,
    ``"q":"1", // Original Quantity``, ``"ap":"9496.5"`` -- but its quantities are contracts: "the contract
    multiplier for BTC coin-margined contracts is 100 USD ... altcoin contracts have a multiplier of 10 USD"
    (Binance FAQ, Coin-Margined Futures Contract Specifications). 3 BTCUSD_PERP contracts are $300, not
    3 BTC ($28,058 at 9352.67); qty in BTC = USD / price."""
    [ev] = parse_binance(_coinm("BTCUSD_PERP", "3", "9352.67"))
    assert ev["notional_usd"] == 300.0 and ev["qty"] == pytest.approx(300.0 / 9352.67, rel=1e-12)
    assert (ev["asset"], ev["side"], ev["price"]) == ("BTC", "long", 9352.67)
    [doc] = parse_binance(_coinm("BTCUSD_200925", "1", "9496.5"))  # the documentation's example frame
    assert doc["notional_usd"] == 100.0 and doc["qty"] == pytest.approx(100.0 / 9496.5, rel=1e-12)
    [eth] = parse_binance(_coinm("ETHUSD_250627", "12", "2400", side="BUY"))
    assert (eth["notional_usd"], eth["asset"], eth["side"]) == (120.0, "ETH", "short")
    assert eth["qty"] == pytest.approx(0.05, rel=1e-12)
    [usdm] = parse_binance(_coinm("BTCUSDT", "3", "9352.67"))  # USDⓈ-M: 3 BTC, as before
    assert usdm["qty"] == 3.0 and usdm["notional_usd"] == pytest.approx(3 * 9352.67, rel=1e-12)


def test_binance_coinm_through_the_normalizer_and_journal_replay():
    """The recorder and journal replay both go through Normalizer: a COIN-M frame is valued the same way."""
    n = _normalizer("binance")
    [ev] = n.feed_text(json.dumps({"stream": "btcusd_perp@forceOrder", "data": _coinm("BTCUSD_PERP", "3", "9352.67")}))
    assert ev["notional_usd"] == 300.0 and n.errors == 0
    assert events_frame([ev])["notional_usd"].tolist() == [300.0]


def test_binance_plain_usd_symbol_is_refused_not_taken_as_coins():
    """A USD-quoted Binance symbol without COIN-M's ``_PERP``/``_YYMMDD`` is of no documented kind."""
    with pytest.raises(ParseError):
        parse_binance(_coinm("BTCUSD", "3", "9352.67"))


def _bybit(symbol, v, p, side="Buy"):
    return {"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": 1746792000600,
            "data": [{"T": 1746792000100, "s": symbol, "S": side, "v": v, "p": p}]}


def test_bybit_inverse_size_is_usd_contracts():
    """Bybit v5 "All Liquidation" covers "USDT contract / USDC contract / Inverse contract"; ``v`` is the
    "Executed size", which for inverse contracts is a count of USD contracts: inverse perpetual "Contract
    quantity quoted in USD", "1 USD per Contract" (Bybit help, Introduction to Inverse Perpetual Contract);
    inverse futures "Contract Size: 1 contract is worth 1 USD" (Introduction to Inverse Futures Contracts).
    So 15,500 BTCUSD at 62,000 is $15,500 = 0.25 BTC, not 15,500 BTC."""
    [ev] = parse_bybit(_bybit("BTCUSD", "15500", "62000"))
    assert (ev["notional_usd"], ev["qty"], ev["asset"], ev["side"]) == (15500.0, 0.25, "BTC", "long")
    [fut] = parse_bybit(_bybit("BTCUSDZ25", "5000", "100000", side="Sell"))
    assert (fut["notional_usd"], fut["qty"], fut["asset"], fut["side"]) == (5000.0, 0.05, "BTC", "short")
    [eth] = parse_bybit(_bybit("ETHUSD", "340", "3400"))
    assert (eth["notional_usd"], eth["qty"], eth["asset"]) == (340.0, 0.1, "ETH")
    [lin] = parse_bybit(_bybit("BTCUSDT", "0.25", "62000"))  # linear: v in BTC, as before
    assert (lin["qty"], lin["notional_usd"]) == (0.25, 15500.0)


def test_base_assets_follow_each_venues_symbols():
    """One reading of symbols for live and imported rows (liqscope.models.importers.symbols)."""
    assert base_asset("BTCUSD_PERP", "binance") == "BTC" and base_asset("BTCBUSD", "binance") == "BTC"
    assert base_asset("BTCUSDZ25", "bybit") == "BTC" and base_asset("BNBUSD", "bybit") == "BNB"
    assert base_asset("SHIB1000USDT", "bybit") == "1000SHIB"  # the same unit as Binance's 1000SHIBUSDT
