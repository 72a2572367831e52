"""Each documented format imports with exact totals; sides follow each source's documented meaning."""
from __future__ import annotations

import gzip
import shutil
import zipfile

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from liqscope.models.importers import FORMATS, ImportCancelled, InputError, asset_from_symbol, import_files
from liqscope.models.importers.source import open_source
from liqscope.models.importers.detect import detect
from liqscope.models.progress import Cancelled, Step
from liqscope.models.store import open_store
from store_testutil import FIXTURES, CancelAfter, tree_hash

T = pd.Timestamp
BYBIT_MAP = "ts=time,symbol=sym,side=dir,price=px,qty=size"


def usd(model, side=None):
    f = model.frame if side is None else model.frame[model.frame["side"] == side]
    return round(float(f["notional_usd"].sum()), 6)


@pytest.mark.parametrize("name, fmt", [
    ("BTCUSDT-1m-2025-01.csv", "binance-klines"),
    ("BTCUSDT-1h-2025-02.csv", "binance-klines"),
    ("ETHUSDT-5m-2024-12-31.csv", "binance-klines"),
    ("BTCUSDT-liquidationSnapshot-2023-07-31.csv", "binance-liquidations"),
    ("ETHUSD_PERP-liquidationSnapshot-2023-07-31.csv", "binance-liquidations"),
    ("binance-futures_liquidations_2024-03-01_PERPETUALS.csv", "tardis-liquidations"),
    ("generic-candles.csv", "generic"),
])
def test_format_is_detected_from_the_header(name, fmt):
    assert detect(open_source(FIXTURES / name)) == fmt
    assert fmt in FORMATS


# -- Binance klines ------------------------------------------------------------------
def test_usdm_futures_klines_with_header_in_ms(store):
    [r] = import_files([FIXTURES / "BTCUSDT-1m-2025-01.csv"], store=store)
    assert (r.format, r.kind, r.rows, r.new) == ("binance-klines", "candles", 5, 5)
    c = store.candles("binance", "BTCUSDT", "1m")
    assert list(c.index) == list(pd.date_range("2025-01-01", periods=5, freq="1min", tz="UTC"))
    assert c["volume"].sum() == pytest.approx(648.402)
    assert (c["open"].iloc[0], c["close"].iloc[-1]) == (93576.0, 93688.8)


def test_spot_klines_without_header_in_microseconds(store):
    """Spot files have no header and, from 2025-01-01, microsecond times: stored as binance-spot."""
    [r] = import_files([FIXTURES / "BTCUSDT-1h-2025-02.csv"], store=store)
    assert r.rows == 3 and not r.warnings
    c = store.candles("binance-spot", "BTCUSDT", "1h")
    assert list(c.index) == list(pd.date_range("2025-02-01", periods=3, freq="1h", tz="UTC"))
    assert c["high"].max() == 102783.71


def test_headerless_ms_klines_use_the_folder_to_tell_spot(store, tmp_path):
    [r] = import_files([FIXTURES / "ETHUSDT-5m-2024-12-31.csv"], store=store)
    assert r.warnings and "spot" in r.warnings[0]  # ambiguous: stored as futures, with a warning
    assert len(store.candles("binance", "ETHUSDT", "5m")) == 2
    spot_dir = tmp_path / "data" / "spot" / "daily" / "klines" / "ETHUSDT" / "5m"
    spot_dir.mkdir(parents=True)
    shutil.copy(FIXTURES / "ETHUSDT-5m-2024-12-31.csv", spot_dir)
    [r] = import_files([spot_dir / "ETHUSDT-5m-2024-12-31.csv"], store=store)
    assert not r.warnings and store.candles("binance-spot", "ETHUSDT", "5m").index[0] == T("2024-12-31", tz="UTC")


def test_zip_from_binance_vision_opens_directly(store, tmp_path):
    z = tmp_path / "BTCUSDT-1m-2025-01.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FIXTURES / "BTCUSDT-1m-2025-01.csv", "BTCUSDT-1m-2025-01.csv")
    [r] = import_files([z], store=store)
    assert (r.rows, r.new) == (5, 5)
    assert store.candles("binance", "BTCUSDT", "1m")["volume"].sum() == pytest.approx(648.402)


# -- Binance liquidationSnapshot -------------------------------------------------------
def test_liquidation_snapshot_usdm_totals_and_order_side(store):
    """Binance's ``side`` is the liquidation ORDER's side: SELL closes a long, BUY closes a short.

    The file repeats one event exactly (as Binance's files did, binance-public-data issue #259): it is
    counted once and reported; one order filled nothing, which is not a liquidation and is skipped.
    """
    [r] = import_files([FIXTURES / "BTCUSDT-liquidationSnapshot-2023-07-31.csv"], store=store)
    assert (r.rows, r.new, r.skipped, r.repeated) == (3, 3, 1, 1)
    m = store.liquidations()
    assert len(m) == 3
    assert usd(m, "long") == pytest.approx(0.5 * 29180.0 + 1.2 * 29010.5)  # the two SELL orders
    assert usd(m, "short") == pytest.approx(0.25 * 29420.0)                 # the BUY order
    assert set(m.frame["exchange"]) == {"binance"} and set(m.frame["asset"]) == {"BTC"}
    assert m.frame["ts"].iloc[0] == T("2023-07-31T00:01:01.123Z")


def test_liquidation_snapshot_coinm_contracts_to_usd(store):
    """COIN-M quantities are contracts: 100 USD each for BTC, 10 USD for other coins (Binance FAQ)."""
    reports = import_files([FIXTURES / "BTCUSD_PERP-liquidationSnapshot-2023-07-31.csv",
                            FIXTURES / "ETHUSD_PERP-liquidationSnapshot-2023-07-31.csv"], store=store)
    assert [(r.rows, r.new) for r in reports] == [(2, 2), (1, 1)]
    f = store.liquidations().frame.set_index("symbol")
    btc = f.loc["BTCUSD_PERP"].set_index("side")
    assert btc.loc["long", "notional_usd"] == 50 * 100.0
    assert btc.loc["long", "qty"] == pytest.approx(5000 / 29120.0)
    assert btc.loc["short", "notional_usd"] == 12 * 100.0
    eth = f.loc[["ETHUSD_PERP"]]
    assert eth["notional_usd"].tolist() == [30 * 10.0] and eth["side"].tolist() == ["long"]
    assert eth["asset"].tolist() == ["ETH"]


# -- Tardis ----------------------------------------------------------------------------
def test_tardis_liquidations_totals_and_order_side(store, tmp_path):
    """Tardis ``side`` is the liquidation order side (docs.tardis.dev, liquidations): a ``sell``
    liquidates a long, a ``buy`` a short. Times are microseconds since the epoch, UTC."""
    gz = tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv.gz"
    gz.write_bytes(gzip.compress((FIXTURES / gz.name.removesuffix(".gz")).read_bytes()))
    [r] = import_files([gz], store=store)
    assert (r.format, r.rows, r.new) == ("tardis-liquidations", 4, 4)
    m = store.liquidations()
    assert usd(m, "long") == pytest.approx(0.012 * 61250.5 + 0.1 * 61100.0)
    assert usd(m, "short") == pytest.approx(1.5 * 3380.25 + 0.5 * 61400.0)
    assert set(m.frame["exchange"]) == {"binance"}
    assert m.frame["ts"].iloc[0] == T("2024-03-01T00:00:05.123Z")
    assert m.frame["ts"].iloc[-1] == T("2024-03-01T00:03:20Z")  # empty timestamp: local_timestamp used


def test_tardis_deribit_inverse_amount_is_usd(store):
    [r] = import_files([FIXTURES / "deribit_liquidations_2024-03-01_BTC-PERPETUAL.csv"], store=store)
    f = store.liquidations().frame.set_index("side")
    assert f.loc["long", "notional_usd"] == 25000.0 and f.loc["short", "notional_usd"] == 10000.0
    assert f.loc["long", "qty"] == pytest.approx(25000 / 61000.0)
    assert r.warnings


# -- generic --------------------------------------------------------------------------
def test_generic_position_convention_bybit(store):
    """Bybit reports the position side: "When you receive a 'Buy' update, this means that a long
    position has been liquidated" (Bybit v5 all-liquidation stream docs)."""
    [r] = import_files([FIXTURES / "generic-bybit-liquidations.csv"], store=store, fmt="generic",
                       mapping=BYBIT_MAP, exchange="bybit", side_convention="position")
    assert (r.rows, r.new) == (3, 3)
    m = store.liquidations()
    assert usd(m, "long") == pytest.approx(0.2 * 103000.5)
    assert usd(m, "short") == pytest.approx(3 * 2350.0 + 0.1 * 103500.0)
    assert m.frame["ts"].iloc[0] == T("2025-05-09T10:00:00.120Z")


def test_generic_order_convention_flips_sides(store):
    """Order convention: the side is the liquidation order's; a SELL order liquidates a long."""
    import_files([FIXTURES / "generic-bybit-liquidations.csv"], store=store, mapping=BYBIT_MAP,
                 exchange="bybit", side_convention="order")
    m = store.liquidations()
    assert usd(m, "long") == pytest.approx(3 * 2350.0 + 0.1 * 103500.0)
    assert usd(m, "short") == pytest.approx(0.2 * 103000.5)


def test_generic_buy_sell_without_convention_is_refused(store):
    with pytest.raises(InputError, match="--side-convention"):
        import_files([FIXTURES / "generic-bybit-liquidations.csv"], store=store, mapping=BYBIT_MAP,
                     exchange="bybit")
    assert not store.has_data()


def test_generic_long_short_needs_no_convention(store, tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("ts,exchange,symbol,side,price,notional_usd\n"
                 "1746784800,OKX,BTC-USDT-SWAP,short,103000,51500\n"
                 "1746784860,okx,BTC-USDT-SWAP,long,102900,10290\n")
    [r] = import_files([p], store=store)
    f = store.liquidations().frame
    assert r.format == "generic" and list(f["exchange"]) == ["okx", "okx"] and list(f["asset"]) == ["BTC", "BTC"]
    assert f["qty"].tolist() == pytest.approx([0.5, 0.1])
    assert f["ts"].iloc[0] == T("2025-05-09T10:00:00Z")  # epoch seconds


def test_generic_parquet_with_mapping(store, tmp_path):
    table = pacsv.read_csv(FIXTURES / "generic-bybit-liquidations.csv")
    pq.write_table(table, tmp_path / "liqs.parquet")
    [r] = import_files([tmp_path / "liqs.parquet"], store=store, mapping=BYBIT_MAP, exchange="bybit",
                       side_convention="position")
    assert (r.format, r.rows) == ("generic", 3)
    assert usd(store.liquidations()) == pytest.approx(0.2 * 103000.5 + 3 * 2350.0 + 0.1 * 103500.0)


def test_generic_candles_semicolon_separated(store):
    with pytest.raises(InputError, match="--exchange"):
        import_files([FIXTURES / "generic-candles.csv"], store=store)
    [r] = import_files([FIXTURES / "generic-candles.csv"], store=store, exchange="bybit", symbol="BTCUSDT")
    assert (r.kind, r.rows) == ("candles", 3)
    c = store.candles("bybit", "BTCUSDT", "15m")  # interval measured from the open times
    assert c["close"].tolist() == [103050.0, 103180.0, 102990.0]


def test_timestamps_with_offsets_normalise_to_utc(store, tmp_path):
    p = tmp_path / "tz.csv"
    p.write_text("ts,exchange,symbol,side,price,qty\n"
                 "2025-05-09T12:00:00+02:00,bybit,BTCUSDT,long,100,1\n"
                 "2025-05-09T10:30:00Z,bybit,BTCUSDT,short,100,1\n")
    import_files([p], store=store)
    assert store.liquidations().frame["ts"].tolist() == [T("2025-05-09T10:00Z"), T("2025-05-09T10:30Z")]


# -- behaviour across formats ---------------------------------------------------------
ALL = [
    (["BTCUSDT-1m-2025-01.csv"], {}),
    (["BTCUSDT-1h-2025-02.csv"], {}),
    (["BTCUSDT-liquidationSnapshot-2023-07-31.csv", "BTCUSD_PERP-liquidationSnapshot-2023-07-31.csv"], {}),
    (["binance-futures_liquidations_2024-03-01_PERPETUALS.csv"], {}),
    (["generic-bybit-liquidations.csv"], dict(mapping=BYBIT_MAP, exchange="bybit", side_convention="position")),
]


@pytest.mark.parametrize("names, kw", ALL)
def test_reimport_adds_nothing_and_changes_no_byte(store, names, kw):
    files = [FIXTURES / n for n in names]
    first = import_files(files, store=store, **kw)
    assert sum(r.new for r in first) > 0
    before = tree_hash(store.root)
    again = import_files(files, store=store, **kw)
    assert [r.new for r in again] == [0] * len(files)
    assert tree_hash(store.root) == before


def test_progress_reaches_total_and_cancel_leaves_store_unchanged(store):
    import_files([FIXTURES / "BTCUSDT-1m-2025-01.csv"], store=store)
    before = tree_hash(store.root)
    files = [FIXTURES / n for n in ("BTCUSDT-liquidationSnapshot-2023-07-31.csv",
                                    "binance-futures_liquidations_2024-03-01_PERPETUALS.csv")]
    watched = CancelAfter()
    import_files(files, store=open_store(store.root.parent / "other"), task=watched)
    total = sum(f.stat().st_size for f in files)
    steps = watched.steps
    assert (steps[-1].done, steps[-1].total) == (total, total) and {s.total for s in steps} == {total}
    assert [s.done for s in steps] == sorted(s.done for s in steps)
    assert list(dict.fromkeys(s.message for s in steps)) == [  # file by file, then the commit
        f"reading {files[0].name}", f"reading {files[1].name}", "adding 7 rows to the store"]
    first = files[0].stat().st_size
    assert all(s.done <= first for s in steps if s.message == f"reading {files[0].name}")
    assert watched.checks > 6  # each file: before, between blocks, after; then the commit's partitions
    for stop_after in range(watched.checks):  # a cancel at every point the import looks
        task = CancelAfter(stop_after)
        with pytest.raises(ImportCancelled):
            import_files(files, store=store, task=task)
        assert task.checks == stop_after + 1
        assert tree_hash(store.root) == before


def test_cancel_between_blocks_of_one_file(store, tmp_path, monkeypatch):
    from liqscope.models import progress
    from liqscope.models.importers import csvread

    monkeypatch.setattr(csvread, "BLOCK", 256)  # many blocks from a small file
    lines = (FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv").read_text().splitlines()
    big = tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
    big.write_text("\n".join([lines[0]] + lines[1:4] * 300) + "\n")
    watched = CancelAfter()
    [r] = import_files([big], store=open_store(tmp_path / "other"), task=watched)
    assert (r.rows, r.repeated) == (3, 897)  # the same three rows 300 times: counted once each
    reading = [s for s in watched.steps if s.message == f"reading {big.name}"]
    assert len({s.done for s in reading}) > 3  # steps inside the file
    assert reading[-1].done == reading[-1].total == big.stat().st_size
    before = tree_hash(store.root)
    task = CancelAfter(2)  # the file's start, its first block, then stop
    with pytest.raises(progress.Cancelled):
        import_files([big], store=store, task=task)
    assert 0 < task.steps[-1].done < big.stat().st_size
    assert tree_hash(store.root) == before


def test_read_file_reports_bytes_of_its_file():
    from liqscope.models.importers import read_file

    f = FIXTURES / "BTCUSDT-liquidationSnapshot-2023-07-31.csv"
    task = CancelAfter()
    parsed = read_file(f, task=task)
    assert (len(parsed.frame), parsed.repeated) == (3, 1)
    assert task.steps[-1] == Step(f.stat().st_size, f.stat().st_size, f"reading {f.name}")
    assert ImportCancelled is Cancelled  # one cancel type for every caller


def test_a_bad_file_among_good_ones_imports_nothing(store, tmp_path):
    bad = tmp_path / "binance-futures_liquidations_2024-03-01_BAD.csv"
    bad.write_text((FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv").read_text()
                   .replace("61400.0", "sixty-one"))
    with pytest.raises(InputError, match=r"_BAD\.csv, line 4, column 'price'"):
        import_files([FIXTURES / "BTCUSDT-1m-2025-01.csv", bad], store=store)
    assert not store.has_data()


@pytest.mark.parametrize("symbol, asset", [
    ("BTCUSDT", "BTC"), ("BTC-USDT-SWAP", "BTC"), ("BTCUSD_PERP", "BTC"), ("ETHUSD_240628", "ETH"),
    ("BTC-PERPETUAL", "BTC"), ("XBTUSD", "BTC"), ("SOL_USDT", "SOL"),
    ("BTC/USDT:USDT", "BTC"), ("1INCHUSDT", "1INCH"), ("ETHBTC", "ETH"),
    # a multiplier contract's asset is its unit: Binance prices 1000PEPEUSDT per 1000 PEPE, so qty
    # (in those units) x price is the USD notional (see liqscope.models.importers.symbols)
    ("1000PEPEUSDT", "1000PEPE"),
])
def test_asset_from_symbol(symbol, asset):
    assert asset_from_symbol(symbol) == asset
