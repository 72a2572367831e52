"""Rollups for windowed loading: hourly/daily candles (``Store.coarse_candles``) and counted hourly
liquidations (``Store.hourly_liquidations``).

Coarse candles equal :func:`liqscope.models.prices.resample` of the raw candles for any window (a
hypothesis property), are refreshed by the commit that appends candles, and are right even when the rollup
is stale (its fingerprint no longer matches the candle files) or missing (a store written before the table
existed). Hourly liquidations sum, over any whole hours, to exactly the counted raw rows.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqscope.models.prices import PriceModel, resample
from liqscope.models.store import Batch, candle_rollups, delta_io, open_store, rollups
from liqscope.models.store.tables import CANDLE_ROLLUPS, CANDLES, TABLES
from store_testutil import liqs

T0 = pd.Timestamp("2025-05-30", tz="UTC")
SERIES = [("binance", "BTCUSDT", "1m", "BTC"), ("binance", "ETHUSDT", "1m", "ETH"), ("bybit", "BTCUSDT", "5m", "BTC"),
          ("okx", "SOLUSDT", "1h", "SOL")]


def random_candles(n: int, start: pd.Timestamp, freq: str, seed: int) -> pd.DataFrame:
    """``n`` candles at ``freq`` from ``start`` with random holes (a recorder that missed some)."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(freq)
    idx = np.sort(rng.choice(np.arange(n * 2), n, replace=False))
    ts = start + idx * step
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    close = np.abs(close) + 1
    opn = close * rng.uniform(0.98, 1.02, n)
    return pd.DataFrame({"ts": ts, "open": opn, "high": np.maximum(opn, close) * 1.01,
                         "low": np.minimum(opn, close) * 0.99, "close": close,
                         "volume": np.round(rng.uniform(0, 50, n), 3)})


def fill(store, seed: int = 0) -> None:
    """Four series over a month boundary (about a week of 1-minute candles)."""
    batch = Batch()
    for k, (exchange, symbol, interval, asset) in enumerate(SERIES):
        n = {"1m": 6000, "5m": 1500, "1h": 150}[interval]
        df = random_candles(n, T0 - pd.Timedelta(hours=3 * k), interval.replace("m", "min"), seed + k)
        batch.add_candles(df, exchange=exchange, symbol=symbol, interval=interval, asset=asset)
    store.commit(batch)


def expected(store, level: str, start=None, end=None) -> pd.DataFrame:
    """What ``resample`` makes of every stored series, bars with ``start <= ts < end``."""
    frames = []
    for exchange, symbol, interval, asset in SERIES:
        bars = resample(store.candles(exchange, symbol, interval), level)
        if start is not None:
            bars = bars[bars.index >= start]
        if end is not None:
            bars = bars[bars.index < end]
        frames.append(bars.reset_index().assign(exchange=exchange, symbol=symbol, asset=asset, interval=level))
    out = pd.concat(frames, ignore_index=True)[candle_rollups.COLUMNS]
    return out.sort_values(["exchange", "symbol", "ts"]).reset_index(drop=True)


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.sort_values(["exchange", "symbol", "ts"]).reset_index(drop=True)
    assert list(got.columns) == candle_rollups.COLUMNS
    for c in ("exchange", "symbol", "asset", "interval"):
        assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c
    assert (got["ts"].dt.as_unit("ns").to_numpy() == want["ts"].dt.as_unit("ns").to_numpy()).all()
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-12, err_msg=c)


def stale_parts(store) -> set:
    """Candle partitions whose rollup does not match the candle files."""
    fps = {p: rollups.fingerprint(fs) for p, fs in candle_rollups.by_partition(store._files(CANDLES)).items()
           if candle_rollups._interval_us(p[1]) <= rollups.DAY_US}
    data = store._files(CANDLE_ROLLUPS)
    rows = delta_io.read(store.location, TABLES[CANDLE_ROLLUPS], data)
    _good, missing = rollups.valid_by(rows, fps, ("exchange", "interval", "month"), "candle_files")
    return missing


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("candles") / "store")
    fill(store)
    return store


def test_the_commit_writes_the_candle_rollups(filled):
    assert not stale_parts(filled)
    months = {f.partition["month"] for f in filled._files(CANDLE_ROLLUPS)}
    levels = {f.partition["level"] for f in filled._files(CANDLE_ROLLUPS)}
    assert months == {"2025-05", "2025-06"} and levels == {"1h", "1d"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(level=st.sampled_from(["1h", "1d"]),
       start_min=st.one_of(st.none(), st.integers(-2 * 24 * 60, 10 * 24 * 60)),
       length_min=st.one_of(st.none(), st.integers(0, 10 * 24 * 60)))
def test_coarse_candles_equal_resample_of_the_raw_candles(filled, level, start_min, length_min):
    start = None if start_min is None else T0 + pd.Timedelta(minutes=start_min)
    end = None if length_min is None else (start or T0) + pd.Timedelta(minutes=length_min)
    same(filled.coarse_candles(level, start, end), expected(filled, level, start, end))


def test_coarse_candles_make_a_price_model(filled):
    frame = filled.coarse_candles("1h", T0, T0 + pd.Timedelta(days=2))
    model = PriceModel.from_long(frame)
    assert {(k.exchange, k.symbol, k.interval) for k in model.keys()} == {
        (e, s, "1h") for e, s, *_r in SERIES}


def test_appending_candles_refreshes_the_rollup(tmp_path):
    store = open_store(tmp_path)
    fill(store)
    more = random_candles(500, T0 + pd.Timedelta(days=1, minutes=7), "1min", 99)
    store.append_candles(more, exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    assert not stale_parts(store)
    same(store.coarse_candles("1h"), expected(store, "1h"))
    same(store.coarse_candles("1d"), expected(store, "1d"))


def test_a_stale_rollup_falls_back_to_the_raw_candles(tmp_path, monkeypatch):
    store = open_store(tmp_path)
    fill(store)
    before = store.coarse_candles("1h")
    with monkeypatch.context() as m:  # a crash between the candle commit and its rollup
        m.setattr(candle_rollups, "refresh", lambda *a, **k: 0)
        changed = random_candles(3000, T0, "1min", 7)  # overwrites held candles, adds others
        store.append_candles(changed, exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    assert stale_parts(store) == {("binance", "1m", "2025-05"), ("binance", "1m", "2025-06")}
    want = expected(store, "1h")
    got = store.coarse_candles("1h")
    same(got, want)
    assert not before.reset_index(drop=True)[["open", "close"]].equals(got[["open", "close"]])  # it did change
    same(store.coarse_candles("1d", T0, T0 + pd.Timedelta(days=3)), expected(store, "1d", T0, T0 + pd.Timedelta(days=3)))
    store.rebuild_rollups()
    assert not stale_parts(store)
    same(store.coarse_candles("1h"), want)


def test_a_store_written_before_the_table_existed(tmp_path):
    store = open_store(tmp_path)
    fill(store)
    shutil.rmtree(tmp_path / CANDLE_ROLLUPS)
    older = open_store(tmp_path)
    same(older.coarse_candles("1d"), expected(older, "1d"))  # computed on demand
    older.append_candles(random_candles(10, T0 + pd.Timedelta(days=20), "1h", 3), exchange="okx", symbol="SOLUSDT",
                         interval="1h", asset="SOL")
    assert not stale_parts(older)  # the first write rebuilt them all
    same(older.coarse_candles("1h"), expected(older, "1h"))


def test_a_series_at_two_intervals_takes_each_bar_from_the_finer(tmp_path):
    store = open_store(tmp_path)
    fine = random_candles(120, T0, "1min", 1)
    coarse = random_candles(48, T0 - pd.Timedelta(days=1), "1h", 2)
    store.append_candles(fine, exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    store.append_candles(coarse, exchange="binance", symbol="BTCUSDT", interval="1h", asset="BTC")
    got = store.coarse_candles("1h").set_index("ts")
    from_fine = resample(store.candles("binance", "BTCUSDT", "1m"), "1h")
    from_coarse = resample(store.candles("binance", "BTCUSDT", "1h"), "1h")
    assert got.index.is_unique and set(got.index) == set(from_fine.index) | set(from_coarse.index)
    for ts, row in from_fine.iterrows():
        assert got.loc[ts, "close"] == row["close"]
    assert store.coarse_candles("1d").shape[0] >= 1 and store.coarse_candles("1h", T0, T0).empty


def test_a_bad_level_is_refused(filled):
    with pytest.raises(ValueError, match="level"):
        filled.coarse_candles("4h")


# -- hourly liquidations: the sum over any whole hours equals the counted raw rows --------------------------
def _liq_store(root, seed: int):
    """Two exchanges, two sources each, overlapping (a vendor file stating its days, a live stream with part
    of the same events, a generic file whose coverage ends mid-hour), across a month boundary; one store with
    a stale partition, one that prefers the stream."""
    rng = np.random.default_rng(seed)
    store = open_store(root)
    vendor = liqs(int(rng.integers(200, 400)), start="2025-05-28", span="6D", seed=seed)
    live = pd.concat([vendor.sample(frac=0.6, random_state=seed),
                      liqs(int(rng.integers(100, 300)), start="2025-05-27", span="8D", seed=seed + 1)],
                     ignore_index=True)
    bybit_file = liqs(int(rng.integers(50, 200)), start="2025-05-29T05:17", span="3D", seed=seed + 2,
                      exchange="bybit", symbols=("BTCUSDT",))
    bybit_live = pd.concat([bybit_file.sample(frac=0.5, random_state=seed),
                            liqs(80, start="2025-05-28", span="6D", seed=seed + 3, exchange="bybit",
                                 symbols=("BTCUSDT", "SOLUSDT"))], ignore_index=True)
    batch = Batch()
    batch.add_liquidations(vendor, source="tardis", coverage_span=(pd.Timestamp("2025-05-28", tz="UTC"),
                                                                  pd.Timestamp("2025-06-03", tz="UTC")))
    batch.add_liquidations(bybit_file, source="file:bybit.csv")
    store.commit(batch)
    store.append_liquidations(live, source="binance-ws")
    store.append_liquidations(bybit_live, source="bybit-ws")
    if seed % 3 == 1:
        store.set_precedence(["binance-ws"])
    if seed % 3 == 2:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(rollups, "refresh", lambda loc, parts: 0)
            store.append_liquidations(liqs(40, start="2025-06-01", span="3D", seed=seed + 4), source="binance-ws")
    return store


@pytest.fixture(scope="module")
def liq_stores(tmp_path_factory):
    return [_liq_store(tmp_path_factory.mktemp("hourly") / f"s{seed}", seed) for seed in (0, 1, 2)]


def _per_hour(frame: pd.DataFrame, usd: str = "notional_usd", count: str | None = None) -> pd.DataFrame:
    keys = [pd.to_datetime(frame["ts"], utc=True).dt.floor("h").rename("hour"),
            frame["exchange"].astype(str).rename("exchange"), frame["side"].astype(str).rename("side")]
    g = frame.groupby(keys)
    out = pd.DataFrame({"usd": g[usd].sum(), "n": g[count].sum() if count else g[usd].size()})
    return out.sort_index()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), start_h=st.integers(-24, 8 * 24), length_h=st.integers(1, 8 * 24),
       offset_min=st.integers(0, 59))
def test_hourly_liquidations_sum_to_the_counted_raw_rows(liq_stores, which, start_h, length_h, offset_min):
    store = liq_stores[which]
    start = pd.Timestamp("2025-05-27", tz="UTC") + pd.Timedelta(hours=start_h, minutes=offset_min)
    end = start + pd.Timedelta(hours=length_h)
    got = store.hourly_liquidations(start, end)
    assert list(got.columns) == rollups.HOURLY_COLUMNS
    lo, hi = start.ceil("h"), end.ceil("h")  # the hours that start inside the window
    assert got.empty or (got["ts"].min() >= lo and got["ts"].max() < hi)
    raw = store.liquidations(lo, hi).frame
    want = _per_hour(raw)
    have = _per_hour(got, count="count")
    assert list(have.index) == list(want.index)
    assert have["n"].tolist() == want["n"].tolist()
    np.testing.assert_allclose(have["usd"].to_numpy(), want["usd"].to_numpy(), rtol=1e-12)
    if len(raw):
        assert got["max_usd"].max() == raw["notional_usd"].max()


def test_hourly_liquidations_of_all_history(liq_stores):
    for store in liq_stores:
        got = store.hourly_liquidations()
        raw = store.liquidations().frame
        assert int(got["count"].sum()) == len(raw) < len(store.liquidations(counted=False))
        assert got["notional_usd"].sum() == pytest.approx(raw["notional_usd"].sum(), rel=1e-12)
        assert str(got["ts"].dtype) == "datetime64[ns, UTC]" and (got["ts"] == got["ts"].dt.floor("h")).all()


def test_the_hourly_property_meets_mixed_hours_and_stale_partitions(liq_stores):
    """The stores hold hours a higher source covers in part (the bybit file starts at 05:17) and a stale
    partition, so both raw paths are exercised."""
    from liqscope.models.store import provenance

    store = liq_stores[0]
    rows = delta_io.read(store.location, TABLES["rollups"], delta_io.prune(store._files("rollups"),
                                                                          where={"level": ["1h"]}))
    arrays = {c: np.asarray(rows.column(c).to_pylist(), dtype=object) for c in ("exchange", "symbol", "source")}
    arrays["bucket"] = rows.column("bucket").cast("int64").to_numpy()
    _counted, mixed = provenance.bucket_status(arrays, rollups.HOUR_US, store.coverage(), store.precedence)
    assert mixed.any()
    fps = {}
    for f in liq_stores[2]._files("liquidations"):
        fps.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    cur = rollups.current_fingerprints(liq_stores[2].location)
    assert any(cur.get(k) != {rollups.fingerprint(v)} for k, v in fps.items())
    empty = store.hourly_liquidations("2025-05-28T10:00Z", "2025-05-28T10:00Z")
    assert empty.empty and list(empty.columns) == rollups.HOURLY_COLUMNS
