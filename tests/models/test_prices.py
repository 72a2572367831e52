"""Candles: normalisation, windows (open time in [start, end)), resampling, the PriceModel."""
from __future__ import annotations

import pandas as pd
import pytest

from liqscope.models.prices import PriceModel, SeriesKey, resample, window
from liqscope.models.schema import CANDLE_COLUMNS, SchemaError, normalize_candles

T0 = pd.Timestamp("2025-05-09T00:00:00Z")


def at(minute: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minute)


# minute -> (open, high, low, close, volume). 00:05-00:09 missing (a gap), then an hour later.
ROWS = {
    0: (100, 105, 99, 104, 1),
    1: (104, 110, 103, 108, 2),
    2: (108, 109, 95, 96, 3),      # lowest low of 00:00-00:05
    3: (96, 112, 96, 111, 4),      # highest high of 00:00-00:05
    4: (111, 111, 100, 101, 5),
    10: (120, 125, 118, 119, 6),
    11: (119, 121, 90, 92, 7),     # lowest low of the 00:00 hour
    60: (200, 210, 190, 205, 10),
    61: (205, 206, 204, 205.5, 1),
}


def raw(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame([(at(m), *v) for m, v in rows.items()], columns=CANDLE_COLUMNS)


@pytest.fixture
def one_minute() -> pd.DataFrame:
    return normalize_candles(raw())


def ohlcv(frame: pd.DataFrame) -> dict:
    return {ts: tuple(float(x) for x in row) for ts, row in zip(frame.index, frame.to_numpy())}


# -- resample -------------------------------------------------------------------------------------
def test_resample_to_5m(one_minute):
    out = resample(one_minute, "5m")
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert ohlcv(out) == {
        at(0): (100, 112, 95, 101, 15),
        # 00:05 has no candle: dropped, not invented
        at(10): (120, 125, 90, 92, 13),
        at(60): (200, 210, 190, 205.5, 11),
    }


def test_resample_to_1h(one_minute):
    out = resample(one_minute, "1h")
    assert ohlcv(out) == {
        at(0): (100, 125, 90, 92, 28),
        at(60): (200, 210, 190, 205.5, 11),
    }


def test_resample_accepts_seconds_and_keeps_utc(one_minute):
    pd.testing.assert_frame_equal(resample(one_minute, 300), resample(one_minute, "5m"))
    assert str(resample(one_minute, "1h").index.tz) == "UTC"


def test_resample_gaps_are_dropped_not_filled(one_minute):
    out = resample(one_minute, "1m")
    pd.testing.assert_frame_equal(out, one_minute, check_freq=False)
    out = resample(one_minute, "15m")
    assert list(out.index) == [at(0), at(60)]  # 00:15 ... 00:45 have no candles
    assert not out.isna().any().any()


def test_resample_bins_align_to_the_epoch_not_to_the_first_candle():
    rows = {m: (10 + m, 20 + m, m, 11 + m, 1) for m in range(3, 8)}  # 00:03 .. 00:07
    out = resample(normalize_candles(raw(rows)), "5m")
    assert ohlcv(out) == {at(0): (13, 24, 3, 15, 2), at(5): (15, 27, 5, 18, 3)}

    rows = {m: (1, 2, 0.5, 1.5, 1) for m in range(30, 90)}  # 00:30 .. 01:29
    out = resample(normalize_candles(raw(rows)), "1h")
    assert list(out.index) == [at(0), at(60)]
    assert out["volume"].tolist() == [30, 30]
    assert all(t.minute == 0 and t.second == 0 for t in out.index)


def test_resample_empty():
    empty = normalize_candles(raw({}))
    assert resample(empty, "5m").empty


# -- window ---------------------------------------------------------------------------------------
def test_window_start_inclusive_end_exclusive(one_minute):
    assert list(window(one_minute, at(1), at(4)).index) == [at(1), at(2), at(3)]
    assert list(window(one_minute, at(4), at(10)).index) == [at(4)]
    assert list(window(one_minute, at(4), at(11)).index) == [at(4), at(10)]
    assert len(window(one_minute)) == len(one_minute)
    assert list(window(one_minute, None, at(1)).index) == [at(0)]
    assert list(window(one_minute, at(61), None).index) == [at(61)]
    assert window(one_minute, at(5), at(10)).empty


def test_window_accepts_iso_strings(one_minute):
    assert list(window(one_minute, "2025-05-09T00:01Z", "2025-05-09 00:03").index) == [at(1), at(2)]
    assert list(window(one_minute, "2025-05-09T03:01:00+02:00", None).index) == [at(61)]


# -- normalize_candles ----------------------------------------------------------------------------
def test_normalize_sorts_and_drops_duplicates_keeping_the_last():
    df = raw()
    dup = df.iloc[[1]].assign(close=107.5)
    shuffled = pd.concat([df.iloc[::-1], dup], ignore_index=True)
    out = normalize_candles(shuffled)
    assert out.index.is_monotonic_increasing and out.index.is_unique
    assert len(out) == len(ROWS)
    assert out.loc[at(1), "close"] == 107.5
    assert out.index.name == "ts"
    assert str(out.index.dtype) == "datetime64[ns, UTC]"
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]


def test_normalize_accepts_ts_index_and_naive_times():
    df = raw()
    out = normalize_candles(df.set_index("ts"))
    assert list(out.index) == list(normalize_candles(df).index)
    naive = df.assign(ts=df["ts"].dt.tz_localize(None))
    assert list(normalize_candles(naive).index) == list(out.index)


def test_normalize_rejects_high_below_low():
    df = raw()
    df.loc[3, "high"] = 90.0  # low is 96
    with pytest.raises(SchemaError, match="high < low"):
        normalize_candles(df)


def test_normalize_rejects_missing_columns():
    with pytest.raises(SchemaError, match="volume"):
        normalize_candles(raw().drop(columns=["volume"]))


# -- PriceModel -----------------------------------------------------------------------------------
@pytest.fixture
def prices() -> PriceModel:
    pm = PriceModel()
    pm.add("Binance", "BTCUSDT", "1m", raw(), "btc")
    pm.add("binance", "BTCUSDT", "5m", resample(normalize_candles(raw()), "5m").reset_index(), "BTC")
    pm.add("okx", "BTC-USDT-SWAP", "60s", raw(), "BTC")
    pm.add("okx", "ETH-USDT-SWAP", "1h", raw({0: (1, 2, 0.5, 1.5, 3)}), "eth")
    return pm


def test_price_model_keys_and_lookup(prices):
    assert len(prices) == 4
    assert prices.keys() == [
        SeriesKey("binance", "BTCUSDT", "1m"), SeriesKey("binance", "BTCUSDT", "5m"),
        SeriesKey("okx", "BTC-USDT-SWAP", "1m"), SeriesKey("okx", "ETH-USDT-SWAP", "1h"),
    ]
    assert prices.assets == ["BTC", "ETH"]
    assert prices.exchanges_for("btc") == ["binance", "okx"]
    assert prices.exchanges_for("ETH") == ["okx"]
    assert prices.exchanges_for("DOGE") == []
    assert prices.find("btc", "BINANCE") == SeriesKey("binance", "BTCUSDT", "1m")  # the finest interval
    assert prices.find("ETH", "okx") == SeriesKey("okx", "ETH-USDT-SWAP", "1h")
    assert prices.find("ETH", "binance") is None
    assert prices.asset_of(SeriesKey("okx", "BTC-USDT-SWAP", "1m")) == "BTC"
    assert prices.time_range() == (at(0), at(61))


def test_price_model_candles_window_and_resample(prices):
    key = prices.find("BTC", "binance")
    assert list(prices.candles(key, at(1), at(4)).index) == [at(1), at(2), at(3)]
    assert ohlcv(prices.candles(key, interval="5m")) == ohlcv(resample(normalize_candles(raw()), "5m"))
    assert ohlcv(prices.candles(key, at(0), at(60), interval="1h")) == {at(0): (100, 125, 90, 92, 28)}
    assert len(prices.candles(key, interval="1m")) == len(ROWS)


def test_price_model_add_merges_newer_rows_win(prices):
    key = prices.add("binance", "BTCUSDT", "1m", raw({1: (104, 110, 103, 109, 2), 2000: (1, 1, 1, 1, 1)}), "BTC")
    c = prices.candles(key)
    assert len(c) == len(ROWS) + 1
    assert c.loc[at(1), "close"] == 109
    assert c.index.is_monotonic_increasing


def test_price_model_long_round_trip(prices):
    long = prices.to_long()
    assert {"exchange", "symbol", "asset", "interval", *CANDLE_COLUMNS} <= set(long.columns)
    back = PriceModel.from_long(long)
    assert back.keys() == prices.keys()
    for k in prices.keys():
        pd.testing.assert_frame_equal(back.candles(k), prices.candles(k))
        assert back.asset_of(k) == prices.asset_of(k)


def test_empty_price_model():
    pm = PriceModel()
    assert len(pm) == 0 and pm.keys() == [] and pm.assets == []
    assert pm.time_range() is None
    assert pm.find("BTC", "binance") is None
    assert pm.to_long().empty


def test_time_range_ignores_empty_series():
    pm = PriceModel()
    pm.add("binance", "BTCUSDT", "1m", raw({}), "BTC")
    assert pm.time_range() is None
    pm.add("okx", "BTC-USDT-SWAP", "1m", raw({3: (1, 2, 0.5, 1.5, 1), 7: (1, 2, 0.5, 1.5, 1)}), "BTC")
    assert pm.time_range() == (at(3), at(7))


def test_resampled_candles_are_whole_bars_even_for_misaligned_windows(prices):
    key = prices.find("BTC", "binance")
    # 00:02-00:12 asks for part of two 5m bars and part of one 1h bar: each comes back complete
    assert ohlcv(prices.candles(key, at(2), at(12), interval="5m")) == {
        at(0): (100, 112, 95, 101, 15), at(10): (120, 125, 90, 92, 13)}
    assert ohlcv(prices.candles(key, at(30), at(61), interval="1h")) == {
        at(0): (100, 125, 90, 92, 28), at(60): (200, 210, 190, 205.5, 11)}
    # aligned windows are unchanged: open time in [start, end)
    assert list(prices.candles(key, at(0), at(60), interval="1h").index) == [at(0)]
    assert list(prices.candles(key, at(60), None, interval="1h").index) == [at(60)]
