"""Tardis ``amount`` per venue: base units pass through, contracts are converted, unknown sizes refused.

Tardis documents ``amount`` as "trade amount as provided by exchange"
(docs.tardis.dev, Tardis Machine output data types), so its unit is each
venue's. Every number below is checked exactly against the arithmetic the
convention prescribes: linear ``qty = contracts x size``, ``notional = qty x
price``; inverse ``notional = contracts x USD per contract``, ``qty = notional /
price``.
"""
from __future__ import annotations

import pytest

from liqscope.models.cli import main
from liqscope.models.importers import InputError, UnknownColumnsError, UnknownContractSizeError, import_files
from liqscope.models.importers.contracts import INVERSE, LINEAR, parse_contract_sizes, tardis_unit
from liqscope.models.store import open_store
from store_testutil import FIXTURES, tree_hash

OKX_BTC = FIXTURES / "okex-swap_liquidations_2024-03-01_BTC.csv"
OKX_ALL = FIXTURES / "okex-swap_liquidations_2024-03-01_PERPETUALS.csv"
BYBIT = FIXTURES / "bybit_liquidations_2024-03-01_PERPETUALS.csv"
HEAD = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"


def rows(store, symbol=None):
    f = store.liquidations().frame
    f = f if symbol is None else f[f["symbol"] == symbol]
    return f.reset_index(drop=True)


def tardis_file(tmp_path, name, *lines):
    p = tmp_path / name
    p.write_text(HEAD + "".join(line + "\n" for line in lines))
    return p


def refused(store, path, **kw) -> str:
    """Import fails with one line starting with the file; the store keeps every byte."""
    before = tree_hash(store.root)
    with pytest.raises(InputError) as info:
        import_files([path], store=store, **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    assert tree_hash(store.root) == before
    return msg


# -- base units ----------------------------------------------------------------------
def test_bybit_linear_amount_is_base_units(store):
    """Bybit USDT perpetuals: "Contracts quoted in base currency such as BTC, ETH" (Bybit help,
    Introduction to USDT Perpetual Contract); the all-liquidation stream's ``v`` is the "Executed
    size". So ``amount`` passes through as qty."""
    import_files([BYBIT], store=store, contract_size=None)
    btc, eth = rows(store, "BTCUSDT"), rows(store, "ETHUSDT")
    assert btc["qty"].tolist() == [0.75] and btc["notional_usd"].tolist() == [0.75 * 61990.5]
    assert eth["qty"].tolist() == [2.5] and eth["notional_usd"].tolist() == [2.5 * 3401.25]
    assert btc["side"].tolist() == ["long"] and set(btc["exchange"]) == {"bybit"}


def test_binance_usdm_amount_is_base_units_unchanged(store):
    """Binance USDⓈ-M: "BTC/USDT, ETH/USDT, and BCH/USDT Futures contracts represent only one unit of
    its respective base asset" (Binance FAQ, USDⓈ-Margined Futures Contract Specifications)."""
    [r] = import_files([FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"], store=store)
    f = rows(store)
    assert sorted(f["qty"]) == [0.012, 0.1, 0.5, 1.5]
    assert (f["notional_usd"] == f["qty"] * f["price"]).all()
    assert not any("contracts" in w for w in r.warnings)


# -- known contract sizes ------------------------------------------------------------------
def test_okx_linear_swap_converts_with_documented_size(store):
    """OKX ``sz``: "For FUTURES/SWAP, the unit is contract" (OKX API v5, liquidation-orders);
    BTCUSDT-PERP "Contract Size 0.01BTC" (OKX help, Perpetual swaps)."""
    [r] = import_files([OKX_BTC], store=store)
    f = rows(store, "BTC-USDT-SWAP").sort_values("ts").reset_index(drop=True)
    assert f["qty"].tolist() == [25 * 0.01, 4 * 0.01]
    assert f["qty"].tolist() == pytest.approx([0.25, 0.04], rel=1e-15)
    assert f["notional_usd"].tolist() == [25 * 0.01 * 62000.5, 4 * 0.01 * 62100.0]
    assert f["price"].tolist() == [62000.5, 62100.0] and f["side"].tolist() == ["long", "short"]
    assert set(f["exchange"]) == {"okx"} and set(f["asset"]) == {"BTC"}
    assert any("BTC-USDT-SWAP (2 rows, 0.01 BTC per contract)" in w for w in r.warnings)


# -- inverse contracts -------------------------------------------------------------------------
def test_okx_inverse_swap_is_usd_notional(store):
    """BTCUSD-PERP (BTC-USD-SWAP): "a contract size of 100USD" (OKX help, Perpetual swaps): 30
    contracts are 3,000 USD, qty = 3,000 / price."""
    import_files([OKX_BTC], store=store)
    f = rows(store, "BTC-USD-SWAP")
    assert f["notional_usd"].tolist() == [3000.0]
    assert f["qty"].tolist() == [3000.0 / 62010.0]
    assert f["side"].tolist() == ["short"]


def test_bybit_inverse_perpetual_is_one_usd_per_contract(store):
    """Bybit inverse perpetuals: "Contract quantity quoted in USD", "1 USD per Contract" (Bybit help,
    Introduction to Inverse Perpetual Contract)."""
    import_files([BYBIT], store=store)
    f = rows(store, "BTCUSD")
    assert f["notional_usd"].tolist() == [15500.0] and f["qty"].tolist() == [15500.0 / 62000.0]


@pytest.mark.parametrize("exchange, symbol, price, amount, usd", [
    ("huobi-dm-swap", "BTC-USD", 62000.0, 7, 700.0),        # Huobi: volume "liquidated volume(cont)"; BTC 100 USD
    ("huobi-dm-swap", "ETH-USD", 3400.0, 7, 70.0),          # ETH 10 USD (Coin-margined Swaps Specifications)
    ("huobi-dm", "BTC_CQ", 62000.0, 3, 300.0),
    ("bitmex", "XBTZ24", 62000.0, 5000, 5000.0),            # BitMEX inverse futures: "USD Contract Value 1 USD"
    ("cryptofacilities", "PI_XBTUSD", 62000.0, 2500, 2500.0),  # Kraken: "Contract Size & Minimum Order 1 USD"
    ("deribit", "ETH-29MAR24", 3400.0, 1200, 1200.0),       # Deribit: "inverse futures ... in USD units"
    ("binance-delivery", "ETHUSD_PERP", 3400.0, 9, 90.0),   # Binance COIN-M: altcoins 10 USD
])
def test_inverse_venues_convert_to_usd(store, tmp_path, exchange, symbol, price, amount, usd):
    """Documented inverse contract sizes: notional = contracts x USD per contract, qty = notional / price."""
    p = tardis_file(tmp_path, f"{exchange}_liquidations_2024-03-01_X.csv",
                    f"{exchange},{symbol},1709251205123000,1709251205130000,,sell,{price},{amount}")
    import_files([p], store=store)
    f = rows(store)
    assert f["notional_usd"].tolist() == [usd] and f["qty"].tolist() == [usd / price]


def test_kraken_linear_and_deribit_linear_are_base_units(store, tmp_path):
    """Kraken linear: "minimum lot expressed in units of the base currency. These contracts do not
    currently have any multiplier"; Deribit: "For options and linear futures it is the underlying
    base currency coin"."""
    p = tardis_file(tmp_path, "mixed_liquidations_2024-03-01_X.csv",
                    "cryptofacilities,PF_SOLUSD,1709251205123000,1709251205130000,,sell,130.5,12.5",
                    "deribit,SOL_USDC-PERPETUAL,1709251206123000,1709251206130000,,buy,130.25,40")
    import_files([p], store=store)
    f = rows(store).set_index("symbol")
    assert f.loc["PF_SOLUSD", "qty"] == 12.5 and f.loc["PF_SOLUSD", "notional_usd"] == 12.5 * 130.5
    assert f.loc["SOL_USDC-PERPETUAL", "qty"] == 40.0


# -- unknown sizes: refused, never guessed ----------------------------------------------------
def test_okx_unknown_contract_size_is_refused_naming_file_line_symbol(store):
    """ETH-USDT-SWAP is in contracts (OKX ``sz``) but Liqscope has no documented size for it: one line
    naming the file, the first row of that symbol and the symbol, saying what to pass; nothing stored."""
    msg = refused(store, OKX_ALL)
    assert msg.startswith(f"{OKX_ALL}, line 4, column 'amount': okex-swap symbol ETH-USDT-SWAP: ")
    assert "--contract-size ETH-USDT-SWAP=N, N = ETH per contract" in msg
    assert "contract_size=" in msg


def test_inverse_of_unknown_usd_value_asks_for_usd_per_contract(store, tmp_path):
    p = tardis_file(tmp_path, "okex-swap_liquidations_2024-03-01_XRP-USD-SWAP.csv",
                    "okex-swap,XRP-USD-SWAP,1709251205123000,1709251205130000,,sell,0.625,8")
    msg = refused(store, p)
    assert "line 2, column 'amount': okex-swap symbol XRP-USD-SWAP" in msg
    assert "--contract-size XRP-USD-SWAP=Nusd, N = USD per contract" in msg


def test_with_contract_size_the_file_imports_with_exact_numbers(store):
    """``contract_size`` states what the documentation does not: ETH-USDT-SWAP 0.1 ETH per contract,
    XRP-USD-SWAP 10 USD per contract; documented symbols keep their documented sizes."""
    [r] = import_files([OKX_ALL], store=store, contract_size="ETH-USDT-SWAP=0.1,XRP-USD-SWAP=10usd")
    assert (r.rows, r.new) == (5, 5)
    eth, xrp, btc = rows(store, "ETH-USDT-SWAP"), rows(store, "XRP-USD-SWAP"), rows(store, "BTC-USDT-SWAP")
    assert eth["qty"].tolist() == [12 * 0.1] and eth["notional_usd"].tolist() == [12 * 0.1 * 3400.5]
    assert xrp["notional_usd"].tolist() == [80.0] and xrp["qty"].tolist() == [80.0 / 0.625] == [128.0]
    assert sorted(btc["qty"]) == [4 * 0.01, 25 * 0.01]


def test_single_contract_size_fills_only_unknown_sizes(store, tmp_path):
    """A value without SYMBOL= applies to every symbol whose size is unknown, not to documented ones."""
    p = tardis_file(tmp_path, "okex-swap_liquidations_2024-03-01_X.csv",
                    "okex-swap,BTC-USDT-SWAP,1709251205123000,1709251205130000,,sell,62000.5,25",
                    "okex-swap,SOL-USDT-SWAP,1709251206123000,1709251206130000,,sell,130.5,7")
    import_files([p], store=store, contract_size=1)
    assert rows(store, "BTC-USDT-SWAP")["qty"].tolist() == [25 * 0.01]
    assert rows(store, "SOL-USDT-SWAP")["qty"].tolist() == [7.0]


def test_named_contract_size_overrides_documented_one_with_a_warning(store):
    [r] = import_files([OKX_BTC], store=store, contract_size={"btc-usdt-swap": 0.001})
    assert sorted(rows(store, "BTC-USDT-SWAP")["qty"]) == [4 * 0.001, 25 * 0.001]
    assert "BTC-USDT-SWAP: contract size 0.001 given, documented 0.01" in r.warnings


def test_contract_size_must_match_the_contract_kind(store, tmp_path):
    """Units are stated, not guessed: an inverse contract needs USD per contract (Nusd), a linear one
    base units per contract."""
    msg = refused(store, OKX_ALL, contract_size="ETH-USDT-SWAP=0.1,XRP-USD-SWAP=10")
    assert "line 5, column 'amount': okex-swap XRP-USD-SWAP is an inverse contract" in msg
    assert "--contract-size XRP-USD-SWAP=10usd" in msg
    msg = refused(store, OKX_ALL, contract_size="ETH-USDT-SWAP=0.1usd,XRP-USD-SWAP=10usd")
    assert "line 4" in msg and "ETH-USDT-SWAP is a linear contract" in msg and "(ETH) per contract" in msg


@pytest.mark.parametrize("spec, match", [
    ("ETH-USDT-SWAP=abc", "bad contract size 'abc'"),
    ("ETH-USDT-SWAP=0", "must be a positive finite number"),
    ("=3", "needs a symbol"),
    ("1,2", "more than one contract size without a symbol"),
])
def test_bad_contract_size_option(store, spec, match):
    before = tree_hash(store.root)
    with pytest.raises(InputError, match=match) as info:
        import_files([OKX_ALL], store=store, contract_size=spec)
    assert str(info.value).startswith("--contract-size: ") and "\n" not in str(info.value)
    assert tree_hash(store.root) == before


@pytest.mark.parametrize("exchange, symbol, match", [
    ("dydx-v4", "BTC-USD", "the unit of amount is not documented"),
    ("bitfinex-derivatives", "BTCF0:USTF0", "the unit of amount is not documented"),
    ("gate-io-futures", "BTC_USDT", "no documented meaning of amount for exchange 'gate-io-futures'"),
    ("bitmex", "ETHUSD", "no documented contract size for bitmex symbol ETHUSD"),
    ("huobi-dm-linear-swap", "BTC-USDT", "contracts of a size Liqscope does not know"),
    ("okex-swap", "XRP-USD-SWAP", "inverse contracts of a USD value Liqscope does not know"),
])
def test_undocumented_venues_are_refused(store, tmp_path, exchange, symbol, match):
    """Where the unit of ``amount`` could not be established from documentation, Liqscope refuses
    rather than take it as base units; ``--contract-size SYMBOL=1`` asserts base units."""
    p = tardis_file(tmp_path, f"{exchange}_liquidations_2024-03-01_X.csv",
                    f"{exchange},{symbol},1709251205123000,1709251205130000,,sell,62000,3")
    msg = refused(store, p)
    assert f"line 2, column 'amount': {exchange} symbol {symbol}" in msg and match in msg
    assert f"--contract-size {symbol}=" in msg


def test_prices_not_in_usd_are_refused_even_with_a_contract_size(store, tmp_path):
    """Deribit option prices are in the coin, Binance BTC-margined ETHBTC in BTC: no contract size
    makes notional_usd right."""
    p = tardis_file(tmp_path, "deribit_liquidations_2024-03-01_OPTIONS.csv",
                    "deribit,BTC-29MAR24-60000-C,1709251205123000,1709251205130000,,sell,0.05,1")
    assert "is an option: its price is quoted in the coin" in refused(store, p, contract_size=1)
    p = tardis_file(tmp_path, "binance-futures_liquidations_2024-03-01_ETHBTC.csv",
                    "binance-futures,ETHBTC,1709251205123000,1709251205130000,,sell,0.055,1")
    assert "ETHBTC is not a USDⓈ-M symbol" in refused(store, p)


def test_classification_table():
    """Each venue class in :mod:`contracts`, with the kind and size its documentation gives."""
    expect = {
        ("binance-futures", "BTCUSDT"): (LINEAR, 1.0), ("bybit", "BTCPERP"): (LINEAR, 1.0),
        ("okex-futures", "BTC-USDT-240329"): (LINEAR, 0.01), ("okex-futures", "BTC-USD-240329"): (INVERSE, 100.0),
        ("deribit", "BTC-PERPETUAL"): (INVERSE, 1.0), ("bitmex", "XBTUSD"): (INVERSE, 1.0),
        ("binance-delivery", "BTCUSD_240329"): (INVERSE, 100.0), ("okex-swap", "ETH-USDT-SWAP"): (LINEAR, None),
        ("kraken-futures", "FI_XBTUSD_240329"): (INVERSE, 1.0), ("huobi-dm", "ETH_NW"): (INVERSE, 10.0),
    }
    for (ex, sym), want in expect.items():
        u = tardis_unit(ex, sym)
        assert (u.kind, u.size) == want, (ex, sym)
        assert u.source
    sizes = parse_contract_sizes(["eth-usdt-swap=0.1", "XRP-USD-SWAP = 10 USD", "2"])
    assert sizes.get("ETH-USDT-SWAP")[0].value == 0.1 and sizes.get("xrp-usd-swap")[0].inverse
    assert sizes.get("OTHER") == (sizes.default, False) and sizes.default.value == 2.0


# -- generic files ---------------------------------------------------------------------------------
GENERIC = "time,sym,dir,px,size\n2025-05-09T10:00:00Z,ETH-USDT-SWAP,long,2000,30\n" \
          "2025-05-09T10:00:01Z,XRP-USD-SWAP,short,0.5,7\n2025-05-09T10:00:02Z,BTCUSDT,short,100000,0.5\n"
GMAP = "ts=time,symbol=sym,side=dir,price=px,qty=size"


def test_generic_qty_is_base_units_unless_a_contract_size_is_stated(store, tmp_path):
    """The generic importer documents qty as base units; ``contract_size`` converts only the symbols
    it names (or all, for a bare value)."""
    p = tmp_path / "okx.csv"
    p.write_text(GENERIC)
    kw = {"fmt": "generic", "mapping": GMAP, "exchange": "okx", "side_convention": "position"}
    import_files([p], store=store, contract_size="ETH-USDT-SWAP=0.1,XRP-USD-SWAP=10usd", **kw)
    f = rows(store).set_index("symbol")
    assert f.loc["ETH-USDT-SWAP", "qty"] == 30 * 0.1 and f.loc["ETH-USDT-SWAP", "notional_usd"] == 30 * 0.1 * 2000
    assert f.loc["XRP-USD-SWAP", "notional_usd"] == 70.0 and f.loc["XRP-USD-SWAP", "qty"] == 140.0
    assert f.loc["BTCUSDT", "qty"] == 0.5 and f.loc["BTCUSDT", "notional_usd"] == 50000.0


def test_generic_contract_size_needs_qty_and_price(store, tmp_path):
    p = tmp_path / "okx.csv"
    p.write_text(GENERIC)
    kw = {"fmt": "generic", "exchange": "okx", "side_convention": "position"}
    msg = refused(store, p, mapping="ts=time,symbol=sym,side=dir,price=px,notional_usd=size",
                  contract_size="0.1", **kw)
    assert "no qty column is mapped" in msg
    msg = refused(store, p, mapping="ts=time,symbol=sym,side=dir,qty=size,notional_usd=px",
                  contract_size="XRP-USD-SWAP=10usd", **kw)
    assert "line 3, column 'size': an inverse contract size (Nusd) needs a price column" in msg


# -- command line ---------------------------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_unknown_contract_size_exits_2_with_one_line(tmp_path, capsys):
    run(capsys, "--data-dir", tmp_path / "s", "import", OKX_BTC)
    before = tree_hash(tmp_path / "s")
    code, out, err = run(capsys, "--data-dir", tmp_path / "s", "import", OKX_ALL)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"liqscope: error: {OKX_ALL}, line 4, column 'amount': okex-swap symbol ETH-USDT-SWAP:")
    assert "--contract-size ETH-USDT-SWAP=N" in err and "store unchanged" in err
    assert tree_hash(tmp_path / "s") == before


def test_cli_contract_size_imports(tmp_path, capsys):
    code, out, err = run(capsys, "--data-dir", tmp_path, "import", OKX_ALL,
                         "--contract-size", "ETH-USDT-SWAP=0.1", "--contract-size", "XRP-USD-SWAP=10usd")
    assert (code, out.strip()) == (0, f"imported 5 rows (5 new) from {OKX_ALL}")
    assert "amount converted from contracts: " in err and "ETH-USDT-SWAP (1 rows, 0.1 ETH per contract)" in err
    eth = rows(open_store(tmp_path), "ETH-USDT-SWAP")
    assert eth["qty"].tolist() == [12 * 0.1]
    code, _, err = run(capsys, "--data-dir", tmp_path, "import", OKX_ALL, "--contract-size", "ETH-USDT-SWAP=x")
    assert code == 2 and err.startswith("liqscope: error: --contract-size: bad contract size 'x'")


def test_contract_size_on_a_format_with_documented_units_is_reported_unused(store):
    [r] = import_files([FIXTURES / "BTCUSD_PERP-liquidationSnapshot-2023-07-31.csv"], store=store, contract_size="2")
    assert "--contract-size not used: only Tardis and generic liquidation files read it" in r.warnings


def test_unknown_contract_size_is_its_own_type_naming_the_symbols(store, tmp_path):
    """What a caller branches on (e.g. to ask for sizes): the type, the file and every symbol needing a size."""
    with pytest.raises(UnknownContractSizeError) as info:
        import_files([OKX_ALL], store=store)
    err = info.value
    assert isinstance(err, InputError) and (err.file, err.line, err.column) == (str(OKX_ALL), 4, "amount")
    assert err.symbols == ["ETH-USDT-SWAP", "XRP-USD-SWAP"]
    with pytest.raises(UnknownContractSizeError) as info:  # a size of the wrong kind: that symbol needs another
        import_files([OKX_ALL], store=store, contract_size="ETH-USDT-SWAP=0.1,XRP-USD-SWAP=10")
    assert info.value.symbols == ["XRP-USD-SWAP"] and "--contract-size XRP-USD-SWAP=10usd" in str(info.value)
    p = tardis_file(tmp_path, "dydx-v4_liquidations_2024-03-01_X.csv",
                    "dydx-v4,BTC-USD,1709251205123000,1709251205130000,,sell,62000,3")
    with pytest.raises(UnknownContractSizeError) as info:
        import_files([p], store=store)
    assert info.value.symbols == ["BTC-USD"] and info.value.file == str(p)


def test_no_contract_size_helps_so_no_contract_size_error(store, tmp_path):
    """Prices not in USD, a malformed --contract-size, a generic file without a qty column: other remedies."""
    p = tardis_file(tmp_path, "binance-futures_liquidations_2024-03-01_ETHBTC.csv",
                    "binance-futures,ETHBTC,1709251205123000,1709251205130000,,sell,0.055,1")
    with pytest.raises(InputError) as info:
        import_files([p], store=store)
    assert type(info.value) is InputError and "ETHBTC is not a USDⓈ-M symbol" in str(info.value)
    with pytest.raises(InputError) as info:
        import_files([OKX_ALL], store=store, contract_size="ETH-USDT-SWAP=abc")
    assert type(info.value) is InputError
    g = tmp_path / "okx.csv"
    g.write_text(GENERIC)
    with pytest.raises(UnknownColumnsError, match="no qty column is mapped"):
        import_files([g], store=store, fmt="generic", exchange="okx", side_convention="position",
                     mapping="ts=time,symbol=sym,side=dir,price=px,notional_usd=size", contract_size="0.1")


def test_every_unknown_contract_size_is_named_in_the_one_error(tmp_path):
    """The first unknown symbol gives the line; the others are listed, so one answer can cover all."""
    store = open_store(tmp_path / "store")
    with pytest.raises(InputError) as err:
        import_files([FIXTURES / "okex-swap_liquidations_2024-03-01_PERPETUALS.csv"], store=store)
    text = str(err.value)
    assert "line 4" in text and "ETH-USDT-SWAP" in text and "also unknown: XRP-USD-SWAP" in text
    assert "\n" not in text
    reports = import_files([FIXTURES / "okex-swap_liquidations_2024-03-01_PERPETUALS.csv"], store=store,
                           contract_size="ETH-USDT-SWAP=0.1,XRP-USD-SWAP=10usd")
    assert reports[0].rows == 5
