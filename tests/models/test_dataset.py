"""Dataset: the bundled demo reproduces the figures reported for 2025-05-09; summary() contract."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqscope.models.dataset import DEMO_LABEL, Dataset, load_demo
from liqscope.models.liquidations import LiquidationModel
from liqscope.models.prices import PriceModel

DAY = pd.Timestamp("2025-05-09", tz="UTC")
NEXT = DAY + pd.Timedelta(days=1)
M = 1e6


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_demo()


@pytest.fixture(scope="module")
def day_totals(demo):
    return demo.liquidations.window(DAY, NEXT).totals()


def within(value: float, target: float, rel: float = 0.005) -> bool:
    return abs(value - target) <= rel * target


# -- calibration (news figures for the 24 h of 2025-05-09 UTC) ------------------------------------
def test_demo_is_labelled_synthetic(demo):
    assert demo.is_demo
    assert demo.label == DEMO_LABEL
    assert "synthetic" in demo.label.lower()


def test_demo_total_and_short_share(day_totals):
    assert within(day_totals.total_usd, 860 * M)
    assert abs(day_totals.short_share - 0.82) <= 0.005
    assert day_totals.long_usd + day_totals.short_usd == pytest.approx(day_totals.total_usd)


@pytest.mark.parametrize(("exchange", "usd"), [("binance", 360 * M), ("okx", 180 * M), ("bybit", 120 * M)])
def test_demo_by_exchange(day_totals, exchange, usd):
    assert within(day_totals.by_exchange[exchange], usd)


def test_demo_other_exchanges_are_the_rest(day_totals):
    others = {k: v for k, v in day_totals.by_exchange.items() if k not in ("binance", "okx", "bybit")}
    assert others  # e.g. bitget, gate
    assert within(sum(others.values()), 200 * M)
    assert list(day_totals.by_exchange)[0] == "binance"


def test_demo_by_asset(day_totals):
    by = day_totals.by_asset
    assert within(by["BTC"], 540 * M)
    assert within(by["ETH"], 120 * M)
    alts = sum(by[a] for a in ("SOL", "XRP", "ADA", "DOGE"))
    assert within(alts, 200 * M)
    assert set(by) == {"BTC", "ETH", "SOL", "XRP", "ADA", "DOGE"}


def test_busiest_day_is_2025_05_09(demo):
    assert demo.busiest_day() == (DAY, NEXT)
    daily = demo.liquidations.daily_totals()
    assert list(daily.index) == [DAY - pd.Timedelta(days=2), DAY - pd.Timedelta(days=1), DAY, NEXT]
    assert daily.idxmax() == DAY
    assert (daily.drop(DAY) < daily[DAY] / 1.5).all()


def test_btc_crosses_102000_on_binance_that_day(demo):
    key = demo.prices.find("BTC", "binance")
    c = demo.prices.candles(key, DAY, NEXT)
    assert len(c) == 1440
    assert c["open"].iloc[0] < 102_000 < c["close"].iloc[-1]
    assert c["low"].min() < 102_000 < c["high"].max()
    # crossed during the day, not at midnight
    first_above = c.index[(c["close"] > 102_000).argmax()]
    assert DAY + pd.Timedelta(hours=1) < first_above < NEXT - pd.Timedelta(hours=1)
    # realistic intraday noise: not a straight line
    r = np.log(c["close"]).diff().dropna()
    assert (r < 0).sum() > 300 and (r > 0).sum() > 300
    assert (c["high"] >= c[["open", "close"]].max(axis=1)).all()
    assert (c["low"] <= c[["open", "close"]].min(axis=1)).all()


@pytest.mark.parametrize("exchange", ["binance", "okx", "bybit"])
@pytest.mark.parametrize("asset", ["BTC", "ETH", "SOL", "XRP", "ADA"])
def test_one_minute_candles_for_every_asset_and_exchange(demo, asset, exchange):
    key = demo.prices.find(asset, exchange)
    assert key is not None and key.interval == "1m"
    c = demo.prices.candles(key)
    assert c.index[0] == pd.Timestamp("2025-05-07T00:00Z")
    assert c.index[-1] == pd.Timestamp("2025-05-10T23:59Z")  # up to 2025-05-11 00:00, exclusive
    assert len(c) == 4 * 1440
    assert (np.diff(c.index.asi8) == 60 * 1_000_000_000).all()
    assert (c["volume"] > 0).all()


def test_liquidations_are_heavy_tailed(demo):
    day = demo.liquidations.window(DAY, NEXT).frame["notional_usd"]
    assert (day > 1 * M).sum() >= 3
    assert day.median() < 50_000
    assert day.max() > 3 * M


def test_short_liquidations_cluster_on_fast_up_moves(demo):
    key = demo.prices.find("BTC", "binance")
    c = demo.prices.candles(key, DAY, NEXT, interval="15m")
    up = np.log(c["close"] / c["open"]).clip(lower=0)
    shorts = demo.liquidations.filter(DAY, NEXT, assets=["BTC"], side="short").buckets(900, DAY, NEXT)
    per_bucket = shorts["short"].sum(axis=1).reindex(c.index)
    assert np.corrcoef(up, per_bucket)[0, 1] > 0.5


def test_demo_assets_exchanges_and_range(demo):
    assert demo.assets == ["ADA", "BTC", "DOGE", "ETH", "SOL", "XRP"]
    assert {"binance", "okx", "bybit"} <= set(demo.exchanges)
    start, end = demo.time_range()
    assert start >= pd.Timestamp("2025-05-07T00:00Z") and end < pd.Timestamp("2025-05-11T00:00Z")


# -- summary() and busiest_day() on small datasets -----------------------------------------------
def _small() -> Dataset:
    rows = [
        ("2025-05-08T23:59:59.5Z", "okx", "BTC", "long", 50_000.0, 0.1),
        ("2025-05-09T10:00:00.123Z", "binance", "ETH", "short", 2_000.0, 3.0),
        ("2025-05-09T11:00:00Z", "binance", "BTC", "short", 100_000.0, 2.0),
    ]
    df = pd.DataFrame(rows, columns=["ts", "exchange", "asset", "side", "price", "qty"])
    df["symbol"] = df["asset"] + "USDT"
    df["notional_usd"] = df["price"] * df["qty"]
    return Dataset(PriceModel(), LiquidationModel(df), label="unit test")


def test_summary_contract():
    ds = _small()
    assert ds.busiest_day() == (DAY, NEXT)
    s = ds.summary(DAY, NEXT, largest=5)
    assert set(s) >= {"start", "end", "total_usd", "long_usd", "short_usd", "short_share",
                      "by_exchange", "by_asset", "largest"}
    assert s["start"] == "2025-05-09T00:00:00Z" and s["end"] == "2025-05-10T00:00:00Z"
    assert (s["total_usd"], s["long_usd"], s["short_usd"], s["short_share"]) == (206_000, 0, 206_000, 1.0)
    assert s["count"] == 2
    assert s["by_exchange"] == {"binance": 206_000}
    assert s["by_asset"] == {"BTC": 200_000, "ETH": 6_000}
    assert s["source"] == "unit test"
    assert s["largest"] == [
        {"ts": "2025-05-09T11:00:00Z", "exchange": "binance", "symbol": "BTCUSDT", "side": "short",
         "price": 100_000.0, "qty": 2.0, "notional_usd": 200_000.0},
        {"ts": "2025-05-09T10:00:00.123Z", "exchange": "binance", "symbol": "ETHUSDT", "side": "short",
         "price": 2_000.0, "qty": 3.0, "notional_usd": 6_000.0},
    ]


def test_summary_filters():
    ds = _small()
    everything = (DAY - pd.Timedelta(days=1), NEXT)
    assert ds.summary(*everything)["total_usd"] == 211_000
    assert ds.summary(*everything, side="long")["total_usd"] == 5_000
    assert ds.summary(*everything, exchanges=["okx"])["by_asset"] == {"BTC": 5_000}
    assert ds.summary(*everything, assets=["eth"])["total_usd"] == 6_000
    assert ds.summary(*everything, min_notional=6_000)["count"] == 2
    assert ds.summary(*everything, largest=1)["largest"][0]["notional_usd"] == 200_000


def test_busiest_day_without_liquidations_falls_back_to_the_last_price_day():
    assert Dataset().busiest_day() is None
    assert Dataset().time_range() is None
    pm = PriceModel()
    idx = pd.date_range("2025-05-07T22:00Z", periods=4, freq="1h")
    pm.add("binance", "BTCUSDT", "1h", pd.DataFrame({"ts": idx, "open": 1.0, "high": 1.0, "low": 1.0,
                                                     "close": 1.0, "volume": 1.0}), "BTC")
    assert Dataset(prices=pm).busiest_day() == (pd.Timestamp("2025-05-08", tz="UTC"),
                                                pd.Timestamp("2025-05-09", tz="UTC"))


def test_live_events_extend_a_dataset_loaded_from_the_store(tmp_path):
    """A store's rows carry their ``source``; a live recorder's events do not: appending them still works
    (before: KeyError 'source', so the window's live tape stopped on any store with data)."""
    from store_testutil import liqs

    from liqscope.models.store import open_store

    store = open_store(tmp_path)
    store.append_liquidations(liqs(20), source="tardis")
    ds = store.load_dataset()
    assert "source" in ds.liquidations.frame.columns
    live = liqs(5, start="2025-05-12", seed=7)
    assert ds.append_liquidations(live) == 5 and len(ds.liquidations) == 25
