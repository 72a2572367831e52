"""Every Tardis liquidations venue: each symbol counts under the asset it trades, in documented units.

Tardis' ``liquidations`` data type is built by the tardis-node mappers
(https://github.com/tardis-dev/tardis-node/tree/master/src/mappers, each
exchange's ``liquidations:`` entry): ``binance-futures``, ``binance-delivery``,
``bybit``, ``okex-futures``, ``okex-swap``, ``huobi-dm``, ``huobi-dm-swap``,
``huobi-dm-linear-swap``, ``bitmex``, ``deribit``, ``ftx``, ``cryptofacilities``
(Kraken Futures), ``bitfinex-derivatives``, ``dydx-v4``, ``bitget-futures``,
``aster-futures`` and ``lighter``. Phemex, Gate.io futures and Coinbase have no
liquidations mapper there (no Tardis liquidation files); their symbols still map.

``amount`` is "as provided by exchange" (docs.tardis.dev, normalized data
types), so each venue's unit is taken from its own documentation (sources in
liqscope.models.importers.contracts) or refused; the asset comes from the
venue's symbol scheme (liqscope.models.importers.symbols).
"""
from __future__ import annotations

import pytest

from liqscope.models.importers import UnknownContractSizeError, import_files, known_asset
from liqscope.models.importers.symbols import asset_from_symbol

HEAD = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
TS = 1709251205123000


def tardis_file(tmp_path, exchange: str, *rows: tuple[str, float, float]):
    """A Tardis liquidations file (named as Tardis names it) with rows (symbol, price, amount), sells."""
    p = tmp_path / f"{exchange}_liquidations_2024-03-01_X.csv"
    p.write_text(HEAD + "".join(f"{exchange},{sym},{TS + i},{TS + i},,sell,{price},{amount}\n"
                                for i, (sym, price, amount) in enumerate(rows)))
    return p


# -- the symbol schemes ------------------------------------------------------------------------------
@pytest.mark.parametrize("exchange, symbol, asset", [
    # Kraken Futures (Tardis 'cryptofacilities'): PI_ inverse perpetual, PF_ linear perpetual, FI_/FF_ fixed
    # maturity; XBT is Kraken's name for BTC (Kraken Futures contract specifications). Was "PI"/"PF"/"FI".
    ("cryptofacilities", "PI_XBTUSD", "BTC"), ("cryptofacilities", "PF_ETHUSD", "ETH"),
    ("cryptofacilities", "FI_XBTUSD_250627", "BTC"), ("cryptofacilities", "FF_XBTUSD_250627", "BTC"),
    ("cryptofacilities", "PF_DOTUSD", "DOT"),
    # BitMEX: XBTUSD inverse, XBTUSDT linear, ETHUSD quanto, dated XBTZ25 / XBTM25 (month code + year)
    ("bitmex", "XBTUSD", "BTC"), ("bitmex", "ETHUSD", "ETH"), ("bitmex", "XBTUSDT", "BTC"),
    ("bitmex", "XBTZ25", "BTC"), ("bitmex", "XBTM25", "BTC"), ("bitmex", "ETHUSDZ25", "ETH"),
    # Deribit: BTC-PERPETUAL, ETH-27JUN25 (inverse), BTC_USDC-PERPETUAL (linear), options
    ("deribit", "BTC-PERPETUAL", "BTC"), ("deribit", "ETH-27JUN25", "ETH"), ("deribit", "BTC_USDC-PERPETUAL", "BTC"),
    ("deribit", "BTC-27JUN25-100000-C", "BTC"),
    # Huobi: coin-margined swaps BTC-USD, linear BTC-USDT, futures by alias BTC_CW/NW/CQ/NQ or contract code
    ("huobi-dm-swap", "BTC-USD", "BTC"), ("huobi-dm-linear-swap", "BTC-USDT", "BTC"), ("huobi-dm", "BTC_CW", "BTC"),
    ("huobi-dm", "BTC_NQ", "BTC"), ("huobi-dm", "BTC250627", "BTC"),
    # OKX: BTC-USD-SWAP, BTC-USDT-SWAP, futures BTC-USDT-250627 / BTC-USD-250627
    ("okex-swap", "BTC-USD-SWAP", "BTC"), ("okex-swap", "BTC-USDT-SWAP", "BTC"),
    ("okex-futures", "BTC-USDT-250627", "BTC"), ("okex-futures", "BTC-USD-250627", "BTC"),
    # Binance: COIN-M BTCUSD_PERP / BTCUSD_250627 (BNBUSD_PERP is BNB, not BN+BUSD), USDⓈ-M (also dated, BUSD)
    ("binance-delivery", "BTCUSD_PERP", "BTC"), ("binance-delivery", "BTCUSD_250627", "BTC"),
    ("binance-delivery", "BNBUSD_PERP", "BNB"), ("binance-futures", "BTCUSDT", "BTC"),
    ("binance-futures", "BTCUSDT_250627", "BTC"), ("binance-futures", "BTCBUSD", "BTC"),
    # Bybit: inverse BTCUSD, linear BTCUSDT, inverse futures BTCUSDZ25, USDC futures BTC-27JUN25 and BTCPERP
    ("bybit", "BTCUSD", "BTC"), ("bybit", "BTCUSDT", "BTC"), ("bybit", "BTCUSDZ25", "BTC"),
    ("bybit", "BTC-27JUN25", "BTC"), ("bybit", "BTCPERP", "BTC"), ("bybit", "DOTUSD", "DOT"),
    # the others Tardis records liquidations for
    ("ftx", "BTC-PERP", "BTC"), ("ftx", "BTC-0625", "BTC"), ("bitfinex-derivatives", "BTCF0:USTF0", "BTC"),
    ("dydx-v4", "BTC-USD", "BTC"), ("bitget-futures", "BTCUSDT", "BTC"), ("aster-futures", "ETHUSDT", "ETH"),
    # no Tardis liquidations, same schemes
    ("gate-io-futures", "BTC_USDT", "BTC"), ("phemex", "BTCUSD", "BTC"), ("coinbase-international", "BTC-PERP", "BTC"),
    ("kucoin-futures", "XBTUSDTM", "BTC"),
    # multiplier contracts: the asset is the unit the price is quoted in (1000 PEPE), see below
    ("binance-futures", "1000PEPEUSDT", "1000PEPE"), ("bybit", "SHIB1000USDT", "1000SHIB"),
])
def test_each_venue_symbol_scheme_gives_its_base_asset(exchange, symbol, asset):
    assert known_asset(symbol, exchange) == asset


@pytest.mark.parametrize("exchange, symbol", [("lighter", "1"), ("bybit", "WEIRD/"),
                                              ("deribit", "BTC-FS-27JUN25_PERP")])
def test_an_unknown_scheme_is_not_cut_into_an_invented_asset(exchange, symbol):
    """Lighter names markets by number; no scheme is known: the symbol stays whole (never "PI" from PI_…)."""
    assert known_asset(symbol, exchange) is None
    assert asset_from_symbol(symbol, exchange) == symbol.upper()


# -- a row or two per venue, imported --------------------------------------------------------------
INV, LIN = "inverse", "linear"


@pytest.mark.parametrize("exchange, symbol, price, amount, kind, size, asset, contract_size", [
    # documented units (liqscope.models.importers.contracts)
    ("binance-futures", "BTCUSDT_250627", 62000.0, 0.5, LIN, 1.0, "BTC", None),   # "one unit of its base asset"
    ("binance-delivery", "BTCUSD_PERP", 9352.67, 3, INV, 100.0, "BTC", None),      # COIN-M: BTC 100 USD
    ("binance-delivery", "BTCUSD_250627", 62000.0, 2, INV, 100.0, "BTC", None),
    ("bybit", "BTCUSD", 62000.0, 15500, INV, 1.0, "BTC", None),                    # "1 USD per Contract"
    ("bybit", "BTCUSDZ25", 100000.0, 5000, INV, 1.0, "BTC", None),                 # "1 contract is worth 1 USD"
    ("bybit", "BTC-27JUN25", 100000.0, 0.1, LIN, 1.0, "BTC", None),                # USDC futures: 1 BTC
    ("okex-swap", "BTC-USD-SWAP", 62010.0, 30, INV, 100.0, "BTC", None),           # "Contract Size 100USD"
    ("okex-futures", "BTC-USDT-250627", 62000.0, 25, LIN, 0.01, "BTC", None),      # "Contract Size 0.01BTC"
    ("okex-futures", "BTC-USD-250627", 62000.0, 4, INV, 100.0, "BTC", None),
    ("huobi-dm-swap", "BTC-USD", 62000.0, 7, INV, 100.0, "BTC", None),             # "liquidated volume(cont)"
    ("huobi-dm", "BTC_CW", 62000.0, 3, INV, 100.0, "BTC", None),                   # face value BTC 100 USD
    ("huobi-dm", "BTC250627", 62000.0, 2, INV, 100.0, "BTC", None),                # the same futures, by code
    ("bitmex", "XBTUSD", 62000.0, 5000, INV, 1.0, "BTC", None),                    # "USD Contract Value 1 USD"
    ("bitmex", "XBTZ25", 62000.0, 3000, INV, 1.0, "BTC", None),
    ("deribit", "BTC-PERPETUAL", 61000.0, 25000, INV, 1.0, "BTC", None),           # "amount is in USD units"
    ("deribit", "ETH-27JUN25", 3400.0, 1200, INV, 1.0, "ETH", None),
    ("deribit", "BTC_USDC-PERPETUAL", 61000.0, 0.5, LIN, 1.0, "BTC", None),        # linear: "base currency coin"
    ("cryptofacilities", "PI_XBTUSD", 62000.0, 2500, INV, 1.0, "BTC", None),       # "Contract Size ... 1 USD"
    ("cryptofacilities", "FI_XBTUSD_250627", 62000.0, 1000, INV, 1.0, "BTC", None),
    ("cryptofacilities", "PF_ETHUSD", 3400.0, 1.5, LIN, 1.0, "ETH", None),         # linear: "no multiplier"
    ("cryptofacilities", "FF_XBTUSD_250627", 62500.0, 0.02, LIN, 1.0, "BTC", None),
    # undocumented units: refused without a size (below); with the user's size, the asset is still right
    ("huobi-dm-linear-swap", "BTC-USDT", 62000.0, 5, LIN, 0.001, "BTC", "BTC-USDT=0.001"),
    ("bitmex", "XBTUSDT", 62000.0, 1000, LIN, 0.000001, "BTC", "XBTUSDT=0.000001"),
    ("ftx", "BTC-PERP", 40000.0, 0.3, LIN, 1.0, "BTC", "BTC-PERP=1"),
    ("bitfinex-derivatives", "BTCF0:USTF0", 62000.0, 0.2, LIN, 1.0, "BTC", {"BTCF0:USTF0": 1}),
    ("dydx-v4", "BTC-USD", 62000.0, 0.4, LIN, 1.0, "BTC", "BTC-USD=1"),
    ("bitget-futures", "BTCUSDT", 62000.0, 0.6, LIN, 1.0, "BTC", "BTCUSDT=1"),
    ("aster-futures", "ETHUSDT", 3400.0, 2, LIN, 1.0, "ETH", "ETHUSDT=1"),
])
def test_every_tardis_venue_imports_under_its_asset(store, tmp_path, exchange, symbol, price, amount, kind, size,
                                                    asset, contract_size):
    """Inverse: notional = contracts x USD per contract, qty = notional / price; linear: qty = contracts x
    size, notional = qty x price. The row counts under its coin."""
    p = tardis_file(tmp_path, exchange, (symbol, price, amount))
    [r] = import_files([p], store=store, contract_size=contract_size)
    f = store.liquidations().frame
    assert (r.rows, f["asset"].astype(str).tolist(), f["symbol"].astype(str).tolist()) == (1, [asset], [symbol])
    usd = amount * size if kind == INV else amount * size * price
    qty = usd / price if kind == INV else amount * size
    assert f["notional_usd"].tolist() == [pytest.approx(usd, rel=1e-12)]
    assert f["qty"].tolist() == [pytest.approx(qty, rel=1e-12)]
    assert f["side"].tolist() == ["long"]  # Tardis side is the order side: a sell liquidates a long


@pytest.mark.parametrize("exchange, symbol", [
    ("huobi-dm-linear-swap", "BTC-USDT"), ("bitmex", "XBTUSDT"), ("bitmex", "ETHUSD"), ("ftx", "BTC-PERP"),
    ("bitfinex-derivatives", "BTCF0:USTF0"), ("dydx-v4", "BTC-USD"), ("bitget-futures", "BTCUSDT"),
    ("aster-futures", "ETHUSDT"), ("lighter", "1"),
])
def test_undocumented_units_are_still_refused(store, tmp_path, exchange, symbol):
    p = tardis_file(tmp_path, exchange, (symbol, 62000.0, 3))
    with pytest.raises(UnknownContractSizeError) as info:
        import_files([p], store=store)
    assert info.value.symbols == [symbol] and "\n" not in str(info.value)
    assert not store.has_data()


def test_kraken_futures_usd_counts_in_btc_and_eth_totals(store, tmp_path):
    """The reported defect: PI_XBTUSD, PF_ETHUSD, FI_XBTUSD_250627 were assets "PI", "PF", "FI", so their
    USD was missing from the BTC and ETH totals."""
    p = tardis_file(tmp_path, "cryptofacilities", ("PI_XBTUSD", 62000.0, 2500), ("PF_ETHUSD", 3400.0, 1.5),
                    ("FI_XBTUSD_250627", 62100.0, 1000), ("FF_XBTUSD_250627", 62500.0, 0.02))
    import_files([p], store=store)
    totals = store.liquidations().frame.groupby("asset", observed=True)["notional_usd"].sum().to_dict()
    assert totals == {"BTC": pytest.approx(2500 + 1000 + 0.02 * 62500), "ETH": pytest.approx(1.5 * 3400)}
    assert set(store.liquidations().frame["exchange"].astype(str)) == {"kraken"}


def test_a_multiplier_symbol_keeps_price_and_qty_in_the_same_unit(store, tmp_path):
    """Binance 1000PEPEUSDT is priced per 1000 PEPE (USDⓈ-M contracts are "one unit of" the symbol's
    base, here 1000PEPE). Stored as asset 1000PEPE with price and qty as quoted, so qty is in base units of
    that asset and price x qty is the USD; calling it PEPE would put 1000-PEPE units under PEPE."""
    p = tardis_file(tmp_path, "binance-futures", ("1000PEPEUSDT", 0.0125, 100000))
    import_files([p], store=store)
    f = store.liquidations().frame
    assert (f["asset"].astype(str).tolist(), f["price"].tolist(), f["qty"].tolist()) == (["1000PEPE"], [0.0125],
                                                                                        [100000.0])
    assert f["notional_usd"].tolist() == [1250.0]


def test_an_unknown_symbol_scheme_is_stored_under_its_own_name_with_a_warning(store, tmp_path):
    """Lighter's market ids (``1``) follow no symbol scheme: with a stated size the row imports, under the
    symbol itself as its asset, and the import says so instead of inventing a coin."""
    p = tardis_file(tmp_path, "lighter", ("1", 62000.0, 0.1))
    [r] = import_files([p], store=store, contract_size="1=1")
    assert store.liquidations().frame["asset"].astype(str).tolist() == ["1"]
    assert any("no known symbol scheme for 1" in w for w in r.warnings)
