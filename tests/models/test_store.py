"""The local store: appends, dedupe, queries, info, coverage, gaps, schema version (Delta tables)."""
from __future__ import annotations

import json

import deltalake
import pandas as pd
import pytest

from liqscope.models import paths
from liqscope.models.schema import SchemaError, normalize_liquidations
from liqscope.models.sources import load_dataset
from liqscope.models.store import SCHEMA_VERSION, StoreError, StoreVersionError, open_store
from store_testutil import candles, liqs, tree_hash


def us(ts):
    """Times as the store keeps them: Delta timestamps are microseconds."""
    return ts.dt.floor("us") if isinstance(ts, pd.Series) else ts.floor("us")


def rows_in_log(table_path) -> int:
    """Rows the Delta log lists for a table: what any Delta reader (Spark, DuckDB, Polars) sees."""
    actions = deltalake.DeltaTable(str(table_path)).get_add_actions(flatten=True)
    return int(sum(actions.column("num_records").to_pylist()))


def test_new_store_is_empty_and_not_created_until_written(tmp_path):
    root = tmp_path / "store"
    store = open_store(root)
    assert not store.has_data()
    assert len(store.liquidations()) == 0
    assert store.info().empty and list(store.info().columns) == ["kind", "exchange", "symbol", "interval",
                                                                  "rows", "first", "last"]
    assert not root.exists()


def test_append_and_read_back_liquidations(tmp_path):
    store = open_store(tmp_path)
    df = liqs(500, span="40D")  # crosses a month boundary: two partitions per symbol
    res = store.append_liquidations(df)
    assert (res.rows, res.new) == (500, 500)
    model = store.liquidations()
    expected = normalize_liquidations(df)
    assert len(model) == 500
    assert model.totals().total_usd == pytest.approx(expected["notional_usd"].sum())
    assert list(model.frame["side"].cat.categories) == ["long", "short"]
    assert model.frame["ts"].is_monotonic_increasing
    assert (model.frame["ts"].to_numpy() == us(expected["ts"]).to_numpy()).all()  # kept to the microsecond
    # a Delta table partitioned by exchange and month (symbol is a column): May and June
    months = sorted(p.name for p in (tmp_path / "liquidations" / "exchange=binance").iterdir())
    assert months == ["month=2025-05", "month=2025-06"]
    assert (tmp_path / "liquidations" / "_delta_log").is_dir() and rows_in_log(tmp_path / "liquidations") == 500
    meta = json.loads((tmp_path / "store.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION == 2 and meta["format"] == "liqscope-store"


def test_reappending_adds_nothing_and_rewrites_nothing(tmp_path):
    store = open_store(tmp_path)
    df = liqs(300)
    store.append_liquidations(df)
    before, version = tree_hash(tmp_path), deltalake.DeltaTable(str(tmp_path / "liquidations")).version()
    res = store.append_liquidations(df.sample(frac=1, random_state=3))  # same rows, shuffled
    assert (res.rows, res.new) == (300, 0)
    assert tree_hash(tmp_path) == before  # no commit, no file, no rollup refresh
    assert deltalake.DeltaTable(str(tmp_path / "liquidations")).version() == version


def test_dedupe_key_is_ts_exchange_symbol_side_price_qty_and_source(tmp_path):
    store = open_store(tmp_path)
    df = liqs(3)
    store.append_liquidations(df)
    twin = df.copy()
    twin["qty"] = twin["qty"] + 1  # a different event at the same instant
    twin["notional_usd"] = twin["price"] * twin["qty"]
    assert store.append_liquidations(twin).new == 3
    other = df.copy()
    other["exchange"] = "okx"
    assert store.append_liquidations(other).new == 3
    assert len(store.liquidations()) == 9
    # the same events from two sources are both kept, and counted once (the higher-precedence source)
    assert store.append_liquidations(df, source="file:a.csv").new == 3
    assert store.append_liquidations(df, source="binance-ws").new == 3
    assert store.append_liquidations(df, source="binance-ws").new == 0
    assert len(store.liquidations(counted=False)) == 15
    counted = store.liquidations(exchanges=["okx"]).frame
    assert len(counted) == 3
    # a file covers its first to last row per symbol: there, rows of lower-precedence sources (the stream,
    # and rows of no stated source) are not counted
    binance = store.liquidations(exchanges=["binance"]).frame
    assert len(binance) == 3 and set(binance["source"].astype(str)) == {"file:a.csv"}


def test_window_query_is_start_inclusive_end_exclusive(tmp_path):
    store = open_store(tmp_path)
    df = liqs(200, span="60D")
    store.append_liquidations(df)
    t = us(normalize_liquidations(df)["ts"])
    start, end = t.iloc[50], t.iloc[150]
    got = store.liquidations(start, end)
    assert len(got) == ((t >= start) & (t < end)).sum()
    assert got.frame["ts"].min() == start and got.frame["ts"].max() < end
    assert len(store.liquidations("2030-01-01", "2030-02-01")) == 0


def test_candles_append_query_and_newer_values_win(tmp_path):
    store = open_store(tmp_path)
    c = candles(10)
    assert store.append_candles(c, exchange="Binance", symbol="BTCUSDT", interval="1m", asset="btc").new == 10
    fixed = c.iloc[5:8].copy()
    fixed["close"] += 0.25
    res = store.append_candles(fixed, exchange="binance", symbol="BTCUSDT", interval="60s", asset="BTC")
    assert (res.rows, res.new) == (3, 0)
    got = store.candles("binance", "BTCUSDT", "1m")
    assert len(got) == 10 and got.index.name == "ts"
    assert got["close"].iloc[6] == c["close"].iloc[6] + 0.25
    part = store.candles("binance", "BTCUSDT", "1m", start=c["ts"].iloc[2], end=c["ts"].iloc[4])
    assert list(part.index) == list(c["ts"].iloc[2:4])
    assert store.candles("binance", "ETHUSDT", "1m").empty


def test_candle_coverage_lists_contiguous_ranges(tmp_path):
    store = open_store(tmp_path)
    a = candles(5, start="2025-05-09 00:00")
    b = candles(3, start="2025-05-09 01:00")
    for part in (a, b):
        store.append_candles(part, exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    cov = store.candle_coverage("binance", "BTCUSDT", "1m")
    ts = pd.Timestamp
    assert cov == [(ts("2025-05-09 00:00", tz="UTC"), ts("2025-05-09 00:05", tz="UTC")),
                   (ts("2025-05-09 01:00", tz="UTC"), ts("2025-05-09 01:03", tz="UTC"))]
    assert store.candle_coverage("binance", "BTCUSDT", "5m") == []


def test_gaps_round_trip_and_dedupe(tmp_path):
    store = open_store(tmp_path)
    g = pd.DataFrame({"exchange": ["Binance", "okx"], "start": ["2025-05-09T00:00Z", "2025-05-09T01:00Z"],
                      "end": ["2025-05-09T00:02Z", "2025-05-09T01:30Z"], "reason": ["ws closed", "timeout"]})
    assert store.append_gaps(g).new == 2
    assert store.append_gaps(g).new == 0
    got = store.gaps()
    assert list(got.columns) == ["exchange", "start", "end", "reason"]
    assert list(got["exchange"]) == ["binance", "okx"]
    assert str(got["start"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(SchemaError):
        store.append_gaps(g.assign(end="2025-05-08T00:00Z"))


def test_info_summarises_each_series(tmp_path):
    store = open_store(tmp_path)
    df = liqs(100, symbols=("BTCUSDT",), span="45D")
    store.append_liquidations(df)
    store.append_candles(candles(7), exchange="okx", symbol="BTC-USDT-SWAP", interval="1m", asset="BTC")
    info = store.info().set_index(["kind", "exchange", "symbol"])
    liq = info.loc[("liquidations", "binance", "BTCUSDT")]
    ts = us(normalize_liquidations(df)["ts"])
    assert (liq["rows"], liq["first"], liq["last"]) == (100, ts.min(), ts.max())
    c = info.loc[("candles", "okx", "BTC-USDT-SWAP")]
    assert c["rows"] == 7 and c["interval"] == "1m"


def test_symbols_with_path_characters_are_safe(tmp_path):
    store = open_store(tmp_path)
    df = liqs(5, symbols=("BTC/USDT:USDT", ".."))
    store.append_liquidations(df)
    assert sorted(store.info()["symbol"]) == ["..", "BTC/USDT:USDT"]
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))


def test_invalid_frames_are_refused_before_touching_disk(tmp_path):
    store = open_store(tmp_path)
    bad = liqs(5)
    bad.loc[2, "side"] = "sideways"
    with pytest.raises(SchemaError):
        store.append_liquidations(bad)
    assert not tmp_path.joinpath("liquidations").exists()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    open_store(tmp_path).append_liquidations(liqs(3))
    meta = json.loads((tmp_path / "store.json").read_text())
    meta.update(schema_version=SCHEMA_VERSION + 1, written_by="liqscope 9.0")
    (tmp_path / "store.json").write_text(json.dumps(meta))
    before = tree_hash(tmp_path)
    with pytest.raises(StoreVersionError, match=r"written by liqscope 9\.0 .*update Liqscope") as info:
        open_store(tmp_path)
    assert "\n" not in str(info.value) and f"schema {SCHEMA_VERSION + 1}" in str(info.value)
    assert tree_hash(tmp_path) == before  # never migrated "down" nor touched


def test_foreign_store_json_is_refused(tmp_path):
    (tmp_path / "store.json").write_text("{not json")
    with pytest.raises(StoreError, match="unreadable"):
        open_store(tmp_path)


def test_open_store_defaults_to_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "env"))
    assert open_store().root == tmp_path / "env"
    paths.set_data_dir(tmp_path / "flag")
    try:
        assert open_store().root == tmp_path / "flag"
    finally:
        paths.set_data_dir(None)


def test_sources_prefer_the_store_when_it_has_data(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    assert load_dataset().is_demo
    store = open_store()
    store.append_liquidations(liqs(20))
    store.append_candles(candles(5), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    ds = load_dataset()
    assert not ds.is_demo and ds.label == f"Local store: {tmp_path}"
    assert len(ds.liquidations) == 20 and ds.prices.find("BTC", "binance") is not None
    assert load_dataset(prefer_demo=True).is_demo


def test_store_and_importers_never_import_qt():
    import subprocess
    import sys

    code = ("import sys, liqscope.models.store, liqscope.models.importers, liqscope.models.store_cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_small_appends_are_new_files_and_never_rewrite_held_ones(tmp_path):
    """A live recorder appends every few seconds: each append is one commit adding a file; the files
    already held are immutable (no month is rewritten), and rows held are never added again."""
    store = open_store(tmp_path)
    store.append_liquidations(liqs(400, symbols=("BTCUSDT",), span="5D", start="2025-05-01"))
    part = tmp_path / "liquidations" / "exchange=binance" / "month=2025-05"
    first = {p.name: p.read_bytes() for p in part.glob("*.parquet")}
    table = deltalake.DeltaTable(str(tmp_path / "liquidations"))
    v0, total = table.version(), 400
    for i in range(12):
        small = liqs(5, symbols=("BTCUSDT",), span="1h", start=f"2025-05-10 {i:02d}:00", seed=100 + i)
        assert store.append_liquidations(small).new == 5
        total += 5
        assert all(part.joinpath(name).read_bytes() == data for name, data in first.items())
        assert len(store.liquidations()) == total
    table.update_incremental()
    assert table.version() == v0 + 12  # one liquidation commit per append
    again = store.liquidations().frame.sample(50, random_state=1)
    assert store.append_liquidations(again).new == 0
    f = store.liquidations().frame
    assert not f.duplicated(["ts", "exchange", "symbol", "side", "price", "qty"]).any()
    assert store.info().set_index("symbol").loc["BTCUSDT", "rows"] == total == rows_in_log(tmp_path / "liquidations")


def test_compaction_by_any_delta_tool_keeps_rows_and_figures(tmp_path):
    """Small files are folded by Delta's own OPTIMIZE (delta-rs, Spark...): the rows stay, the rollups
    of the rewritten files go stale and are ignored (figures stay exact) until rebuilt."""
    from liqscope.models.store import figures

    store = open_store(tmp_path)
    store.append_liquidations(liqs(300, symbols=("BTCUSDT",), span="6D", start="2025-05-01"))
    for i in range(6):
        store.append_liquidations(liqs(7, symbols=("BTCUSDT",), span="1D", start=f"2025-05-0{i + 1}", seed=40 + i))
    start, end = pd.Timestamp("2025-05-01T06:00Z"), pd.Timestamp("2025-05-06T18:00Z")
    before_rows = store.liquidations().frame
    before = figures.summary(store, start, end)
    metrics = deltalake.DeltaTable(str(tmp_path / "liquidations")).optimize.compact()
    assert metrics["numFilesRemoved"] > 1
    reopened = open_store(tmp_path)
    pd.testing.assert_frame_equal(reopened.liquidations().frame, before_rows)
    after = figures.summary(reopened, start, end)
    assert after["count"] == before["count"] and after["by_exchange"] == pytest.approx(before["by_exchange"], rel=1e-12)
    assert after["total_usd"] == pytest.approx(before["total_usd"], rel=1e-12)
    assert reopened.rebuild_rollups() >= 1  # stale after the compaction: recomputed
    assert reopened.rebuild_rollups() == 0
    assert figures.summary(reopened, start, end)["total_usd"] == pytest.approx(before["total_usd"], rel=1e-12)


def test_candle_series_are_listed_without_reading_candles(tmp_path):
    """The overview names every candle series from the small ``series`` table (listed before the candles are
    committed); a store written before that table existed is read the long way, and rebuild_rollups lists it."""
    store = open_store(tmp_path)
    store.append_candles(candles(5), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    store.append_candles(candles(5), exchange="bybit", symbol="ETHUSDT", interval="1h", asset="ETH")
    store.append_candles(candles(5, start="2025-06-01"), exchange="binance", symbol="BTCUSDT", interval="1m",
                         asset="BTC")
    want = [("binance", "BTCUSDT", "1m", "BTC"), ("bybit", "ETHUSDT", "1h", "ETH")]
    series = deltalake.DeltaTable(str(tmp_path / "series")).to_pyarrow_table()
    assert series.num_rows == 2 and store.candle_series() == want
    import shutil

    shutil.rmtree(tmp_path / "series")  # as a store written before the table existed
    older = open_store(tmp_path)
    assert older.candle_series() == want
    older.rebuild_rollups()
    assert (tmp_path / "series").is_dir() and open_store(tmp_path).candle_series() == want
