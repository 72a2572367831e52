"""Values that would poison every total (inf, NaN, 1e22 USD) never reach the store, by any path."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from liqscope.models import schema
from liqscope.models.errors import UserError
from liqscope.models.importers import InputError, import_files
from liqscope.models.schema import SchemaError, normalize_candles, normalize_liquidations
from liqscope.models.store import Batch, open_store
from store_testutil import run_cli as run, candles, liqs, tree_hash

HEADER = "ts,exchange,symbol,side,price,qty\n"
GOOD = "2025-01-02T00:00:00Z,okx,ETH-USDT-SWAP,long,2000.5,5.625\n"


def one_row(**over) -> pd.DataFrame:
    row = {"ts": [pd.Timestamp("2025-01-01", tz="UTC")], "exchange": ["binance"], "symbol": ["BTCUSDT"],
           "asset": ["BTC"], "side": ["long"], "price": [100.0], "qty": [2.0], "notional_usd": [200.0]}
    row.update({k: [v] for k, v in over.items()})
    return pd.DataFrame(row)


def test_bounds_are_defined_once_and_sane():
    assert (schema.MAX_PRICE_USD, schema.MAX_QTY, schema.MAX_NOTIONAL_USD) == (1e9, 1e12, 1e11)
    assert set(schema.BOUNDS) == {"price", "qty", "notional_usd"}


@pytest.mark.parametrize("col, value", [
    ("price", np.inf), ("price", np.nan), ("price", 0.0), ("price", -1.0), ("price", 2e9),
    ("qty", np.inf), ("qty", 0.0), ("qty", 1e13),
    ("notional_usd", np.inf), ("notional_usd", -np.inf), ("notional_usd", np.nan), ("notional_usd", 1e22),
])
def test_normalize_liquidations_refuses_non_finite_and_absurd_values(col, value):
    with pytest.raises(SchemaError, match=rf"^{col} .* of binance BTCUSDT at 2025-01-01.*sane range") as info:
        normalize_liquidations(one_row(**{col: value}))
    assert "\n" not in str(info.value) and isinstance(info.value, UserError)


def test_values_at_the_bounds_are_kept():
    frame = normalize_liquidations(one_row(price=1e9, qty=100.0, notional_usd=1e11))
    assert frame["notional_usd"].iloc[0] == 1e11


def test_the_store_refuses_them_even_from_a_trusted_frame(tmp_path):
    """Importers hand the store canonical frames marked trusted: the bounds are checked anyway."""
    frame = normalize_liquidations(liqs(10))
    frame.loc[3, "notional_usd"] = 1e22
    store = open_store(tmp_path / "store")
    with pytest.raises(SchemaError, match="notional_usd 1e\\+22"):
        Batch().add_liquidations(frame, trusted=True)
    with pytest.raises(SchemaError, match="notional_usd 1e\\+22"):
        Batch().replace_liquidations(frame, exchanges="binance", start="2025-01-01", end="2026-01-01", trusted=True)
    with pytest.raises(SchemaError):
        store.append_liquidations(frame)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("value", ["1e22", "inf", "nan", "0", "5e9"])
def test_import_refuses_them_with_one_line_naming_the_file(tmp_path, capsys, value):
    f = tmp_path / "big.csv"
    f.write_text(HEADER + f"2025-01-01T00:00:00Z,binance,BTCUSDT,long,{value},1\n" + GOOD)
    store = tmp_path / "store"
    code, out, err = run(capsys, "--data-dir", store, "import", f)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"liqscope: error: {f}")
    assert "price" in err
    assert not open_store(store).has_data()


def test_import_refuses_a_notional_that_overflows_from_sane_looking_columns(tmp_path):
    """price x qty computed by the importer: each column within bounds, the product not."""
    f = tmp_path / "prod.csv"
    f.write_text(HEADER + "2025-01-01T00:00:00Z,binance,BTCUSDT,long,900000000,900000000000\n")
    with pytest.raises(InputError, match=r"prod\.csv: notional_usd 8\.1e\+20 of binance BTCUSDT"):
        import_files([f], store=open_store(tmp_path / "store"))


@pytest.mark.parametrize("col, value", [("open", np.inf), ("high", 1e22), ("low", 0.0), ("close", np.nan),
                                        ("volume", np.inf), ("volume", -1.0)])
def test_candles_must_be_finite_positive_and_sane(tmp_path, col, value):
    c = candles(5)
    c.loc[2, col] = value
    with pytest.raises(SchemaError, match=rf"candle {col} .* at 2025-05-09T00:02:00"):
        normalize_candles(c)
    store = open_store(tmp_path / "store")
    with pytest.raises(SchemaError, match=rf"^binance BTCUSDT 1m: candle {col}"):
        store.append_candles(c, exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    assert not store.has_data()


def test_candles_refuse_high_below_low():
    c = candles(5)
    c.loc[1, "high"] = c.loc[1, "low"] - 1
    with pytest.raises(SchemaError, match="high < low"):
        normalize_candles(c)


def test_summary_json_stays_valid_and_exact_next_to_a_huge_stored_row(tmp_path, capsys):
    """A store written before the bounds: one 1e22 USD row must not zero out another exchange's day."""
    store = open_store(tmp_path / "store")
    store.append_liquidations(pd.concat([one_row(), one_row(
        ts=pd.Timestamp("2025-01-02", tz="UTC"), exchange="okx", symbol="ETH-USDT-SWAP", asset="ETH",
        price=2000.5, qty=5.625, notional_usd=11252.8125), one_row(
        ts=pd.Timestamp("2025-01-02T01:00", tz="UTC"), exchange="okx", symbol="ETH-USDT-SWAP", asset="ETH",
        price=2000.0, qty=0.00078125, notional_usd=1.5625)]))
    # the bad row as an older Liqscope, or another Delta writer, could have stored it (around the checks)
    import deltalake
    import pyarrow as pa

    from liqscope.models.store import tables
    bad = tables.liq_table(one_row(notional_usd=200.0), "unknown")
    bad = bad.set_column(bad.schema.get_field_index("notional_usd"), "notional_usd", pa.array([1e22]))
    deltalake.write_deltalake(str(store.root / "liquidations"), bad, mode="overwrite",
                              predicate="exchange = 'binance'", partition_by=["exchange", "month"])
    assert store.liquidations(exchanges=["binance"]).frame["notional_usd"].tolist() == [1e22]

    code, out, err = run(capsys, "--data-dir", store.root, "summary", "--json",
                         "--start", "2025-01-02", "--end", "2025-01-03")
    assert code == 0, err
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert result["total_usd"] == 11_254.375 and result["by_exchange"] == {"okx": 11_254.375}
    code, out, err = run(capsys, "--data-dir", store.root, "summary", "--json",
                         "--start", "2025-01-03", "--end", "2025-01-04")
    assert code == 0 and json.loads(out, parse_constant=lambda c: pytest.fail(c))["total_usd"] == 0.0


def test_store_info_json_never_prints_nan_or_infinity(tmp_path, capsys, monkeypatch):
    from liqscope.models.store import Store

    store = open_store(tmp_path / "store")
    store.append_liquidations(liqs(5))
    real = Store.info

    def with_gaps(self):
        out = real(self)
        out.loc[len(out)] = ["gaps", "okx", float("nan"), None, 0, pd.NaT, pd.NaT]
        return out
    monkeypatch.setattr(Store, "info", with_gaps)
    code, out, err = run(capsys, "--data-dir", store.root, "store", "info", "--json")
    assert code == 0, err
    records = [json.loads(line, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
               for line in out.splitlines()]
    assert records[-1] == {"kind": "gaps", "exchange": "okx", "symbol": None, "interval": None, "rows": 0,
                           "first": None, "last": None}


def test_a_rejected_import_leaves_the_store_unchanged(tmp_path):
    store = open_store(tmp_path / "store")
    store.append_liquidations(liqs(20))
    before = tree_hash(store.root)
    f = tmp_path / "x.csv"
    f.write_text(HEADER + GOOD + "2025-01-03T00:00:00Z,okx,ETH-USDT-SWAP,long,1e300,1\n")
    with pytest.raises(InputError):
        import_files([f], store=store)
    assert tree_hash(store.root) == before
