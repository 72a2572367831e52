"""The prefix-sum index must give exactly what a plain filter + scan gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqscope.models.liq_index import BLOCK, LiquidationIndex
from liqscope.models.liquidations import LiquidationModel

T0 = pd.Timestamp("2025-05-09", tz="UTC")
EXCHANGES = ["binance", "okx", "bybit"]
ASSETS = ["BTC", "ETH", "SOL"]


def random_model(seed: int, n: int) -> LiquidationModel:
    rng = np.random.default_rng(seed)
    ts = T0 + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000, n)), unit="ms")
    return LiquidationModel(pd.DataFrame({
        "ts": ts, "exchange": rng.choice(EXCHANGES, n), "symbol": "X", "asset": rng.choice(ASSETS, n),
        # distinct quantities: two random events never share the dedup key (ts, exchange, symbol, side,
        # price, qty), as two real liquidations in one millisecond would not
        "side": rng.choice(["long", "short"], n), "price": 100.0, "qty": 1.0 + np.arange(n),
        "notional_usd": np.round(rng.pareto(1.3, n) * 1000 + 10, 2),
    }))


filters = st.fixed_dictionaries({
    "exchanges": st.none() | st.lists(st.sampled_from(EXCHANGES + ["nope"]), unique=True),
    "assets": st.none() | st.lists(st.sampled_from(ASSETS), unique=True, min_size=1),
    "side": st.sampled_from([None, "both", "long", "short"]),
})


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 6000), a=st.integers(-60, 1500), span=st.integers(0, 1500),
       f=filters, min_usd=st.sampled_from([0.0, 500.0, 5000.0]))
def test_totals_and_largest_equal_a_scan(seed, n, a, span, f, min_usd):
    model = random_model(seed, n)
    idx = LiquidationIndex(model, min_usd)
    start, end = T0 + pd.Timedelta(minutes=a), T0 + pd.Timedelta(minutes=a + span)
    got = idx.totals(start, end, **f)
    want = model.filter(start, end, min_notional=min_usd, **f).totals()
    assert got.count == want.count
    assert got.total_usd == pytest.approx(want.total_usd, abs=1e-6)
    assert got.long_usd == pytest.approx(want.long_usd, abs=1e-6)
    assert got.by_exchange == pytest.approx(want.by_exchange, abs=1e-6)
    assert got.by_asset == pytest.approx(want.by_asset, abs=1e-6)
    top = idx.largest(start, end, 7, **f)
    ref = model.filter(start, end, min_notional=min_usd, **f).largest(7)
    assert top["notional_usd"].tolist() == ref["notional_usd"].tolist()


def test_largest_prunes_with_block_maxima_and_stays_exact():
    model = random_model(7, 40 * BLOCK)
    idx = LiquidationIndex(model)
    start, end = T0 + pd.Timedelta(minutes=3), T0 + pd.Timedelta(hours=23)
    got = idx.largest(start, end, 25)
    want = model.filter(start, end).largest(25)
    assert got["notional_usd"].tolist() == want["notional_usd"].tolist()
    assert got["ts"].tolist() == want["ts"].tolist()


@pytest.mark.parametrize("bucket", [60, 300, 3600])
def test_buckets_equal_model_buckets(bucket):
    model = random_model(3, 5000)
    idx = LiquidationIndex(model)
    start, end = T0 + pd.Timedelta(minutes=7, seconds=30), T0 + pd.Timedelta(hours=9, minutes=2)
    for f in ({}, {"exchanges": ["okx"], "side": "long"}, {"assets": ["ETH"]}):
        got = idx.buckets(bucket, start, end, **f)
        want = model.filter(**f).buckets(bucket, start, end)
        assert got.index.equals(want.index)
        assert list(got.columns) == list(want.columns)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-6)
        # re-binned bars hold exactly the money of the raw events in the window
        assert got.to_numpy().sum() == pytest.approx(model.filter(start, end, **f).totals().total_usd)


def test_empty_model():
    idx = LiquidationIndex(LiquidationModel())
    t = idx.totals(T0, T0 + pd.Timedelta(days=1))
    assert (t.total_usd, t.count, t.by_exchange) == (0.0, 0, {})
    assert idx.largest(T0, T0 + pd.Timedelta(days=1)).empty


def _batch(seed: int, n: int, start_min: int, exchanges=EXCHANGES) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = T0 + pd.Timedelta(minutes=start_min) + pd.to_timedelta(np.sort(rng.integers(0, 600_000, n)), unit="ms")
    return pd.DataFrame({"ts": ts, "exchange": rng.choice(exchanges, n), "symbol": "X",
                         "asset": rng.choice(ASSETS, n), "side": rng.choice(["long", "short"], n),
                         "price": 100.0, "qty": rng.integers(1, 50, n).astype(float),
                         "notional_usd": np.round(rng.pareto(1.3, n) * 1000 + 10, 2)})


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), batches=st.lists(st.tuples(st.integers(1, 300), st.integers(-200, 2000)),
                                                   min_size=1, max_size=4),
       min_usd=st.sampled_from([0.0, 2000.0]))
def test_live_appends_keep_cached_indexes_equal_to_a_fresh_build(seed, batches, min_usd):
    from liqscope.models.dataset import Dataset

    ds = Dataset(liquidations=random_model(seed, 3000))
    ds.index(min_usd)
    expected = ds.liquidations.frame
    for i, (n, start_min) in enumerate(batches):
        batch = _batch(seed + i, n, start_min)
        batch = pd.concat([batch, batch.iloc[: n // 3]])  # duplicates inside the batch
        added = ds.append_liquidations(batch)
        expected = pd.concat([expected, batch.astype({"exchange": str, "asset": str, "symbol": str, "side": str})])
        assert added >= 0
    want = LiquidationModel(expected.astype({"exchange": str, "asset": str, "symbol": str, "side": str})
                            .drop_duplicates(["ts", "exchange", "symbol", "side", "price", "qty"]))
    assert len(ds.liquidations) == len(want)
    fresh = LiquidationIndex(ds.liquidations, min_usd)
    got = ds.index(min_usd)
    for name in ("rows", "ts", "notional", "offsets", "block_max"):
        np.testing.assert_array_equal(getattr(got, name), getattr(fresh, name))
    start, end = T0, T0 + pd.Timedelta(days=2)
    assert got.totals(start, end).total_usd == pytest.approx(want.filter(start, end, min_notional=min_usd).totals().total_usd)


def test_append_with_a_new_exchange_and_out_of_order_events():
    from liqscope.models.dataset import Dataset

    ds = Dataset(liquidations=random_model(1, 500))
    ds.index()
    late = _batch(2, 10, 60, exchanges=["hyperliquid"])  # new category, and earlier than the last event
    assert ds.append_liquidations(late) == 10
    assert ds.append_liquidations(late) == 0  # already held
    assert "hyperliquid" in ds.liquidations.exchanges
    assert (np.diff(ds.liquidations.ts_ns) >= 0).all()
    t = ds.index().totals(T0, T0 + pd.Timedelta(days=1), exchanges=["hyperliquid"])
    assert t.total_usd == pytest.approx(late["notional_usd"].sum()) and t.count == 10


def _poisoned_model() -> LiquidationModel:
    """A store written before the sane bounds: one 1e22 USD row on binance/BTC, then okx/ETH a day later."""
    frame = LiquidationModel(pd.DataFrame({
        "ts": [T0, T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=1, hours=2)],
        "exchange": ["binance", "binance", "okx", "okx"], "symbol": ["BTCUSDT", "BTCUSDT", "ETH-USDT-SWAP",
                                                                    "ETH-USDT-SWAP"],
        "asset": ["BTC", "BTC", "ETH", "ETH"], "side": ["long", "long", "long", "long"],
        "price": [100.0, 100.0, 2000.5, 2000.0], "qty": [1.0, 2.0, 5.625, 0.001],
        "notional_usd": [1.0, 2.0, 11252.8125, 1.5625],
    })).frame.copy()
    frame.loc[0, "notional_usd"] = 1e22  # what the store may already hold: loaded as trusted
    return LiquidationModel(frame, _trusted=True)


def test_a_huge_value_in_one_cell_leaves_every_other_cell_exact():
    model = _poisoned_model()
    idx = LiquidationIndex(model)
    day2 = (T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2))
    t = idx.totals(*day2)
    assert (t.total_usd, t.count, t.by_exchange) == (11_254.375, 2, {"okx": 11_254.375})
    assert idx.totals(*day2, exchanges=["okx"], assets=["ETH"]).total_usd == 11_254.375
    assert idx.totals(T0, T0 + pd.Timedelta(minutes=30)).total_usd == 1e22  # the bad row itself is not hidden
    names, usd, count = idx.group_sums(*day2)
    assert usd[0, names.index("okx")] == 11_254.375 and usd[0, names.index("binance")] == 0.0
    bars = idx.bucket_sums(3600, *day2)
    assert bars.sums[0, bars.groups.index("okx")].sum() == 11_254.375
    assert bars.sums[0, bars.groups.index("okx"), 0] == 11_252.8125


def test_live_appends_after_a_huge_value_stay_exact():
    from liqscope.models.dataset import Dataset

    ds = Dataset(liquidations=_poisoned_model())
    ds.index()
    later = pd.DataFrame({"ts": [T0 + pd.Timedelta(days=1, hours=3)], "exchange": ["okx"],
                          "symbol": ["ETH-USDT-SWAP"], "asset": ["ETH"], "side": ["long"], "price": [2000.0],
                          "qty": [0.25], "notional_usd": [500.0]})
    assert ds.append_liquidations(later) == 1
    t = ds.index().totals(T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2))
    assert t.total_usd == 11_754.375 and t.count == 3


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_stored_non_finite_value_shows_only_in_windows_that_hold_it(bad):
    """An older store may hold inf/NaN (refused now): the rest of its cell's windows stay exact."""
    frame = _poisoned_model().frame.copy()
    frame.loc[0, "notional_usd"] = bad
    idx = LiquidationIndex(LiquidationModel(frame, _trusted=True))
    after = (T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(hours=2))
    assert idx.totals(*after).total_usd == 2.0  # same cell, later window: was NaN (inf - inf)
    assert idx.totals(T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2)).total_usd == 11_254.375
    held = idx.totals(T0, T0 + pd.Timedelta(minutes=30)).total_usd
    assert held == np.inf if bad == np.inf else np.isnan(held)
    bars = idx.bucket_sums(3600, T0, T0 + pd.Timedelta(hours=2))
    row = bars.sums[0, bars.groups.index("binance")]
    assert row[1] == 2.0 and (row[0] == np.inf if bad == np.inf else np.isnan(row[0]))
    names, usd, _ = idx.group_sums(*after)
    assert usd[0, names.index("binance")] == 2.0
