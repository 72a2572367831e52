"""models/context.py: the Context value and its windowed queries (no store, no network)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liqscope.models.context import (FUNDING_VIEW_COLUMNS, OI_COLUMNS, OI_TOTAL_COLUMNS, OUTSIDE_COLUMNS, Context,
                                     read_context_files)
from liqscope.models.dataset import Dataset, load_parquet_dataset

T0 = pd.Timestamp("2025-05-09T00:00Z")


def H(n) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=n)


def oi_rows(exchange, symbol, hours, usd, asset="BTC", period="1h", source="test"):
    return pd.DataFrame({"ts": [H(h) for h in hours], "exchange": exchange, "symbol": symbol, "asset": asset,
                         "period": period, "oi_base": [u / 100_000 for u in usd], "oi_usd": usd, "source": source})


def funding_rows(exchange, hours, rates, interval, asset="BTC", symbol="BTCUSDT"):
    return pd.DataFrame({"ts": [H(h) for h in hours], "exchange": exchange, "symbol": symbol, "asset": asset,
                         "rate": rates, "interval_hours": interval, "source": "test"})


@pytest.fixture
def ctx():
    oi = pd.concat([
        oi_rows("binance", "BTCUSDT", range(0, 6), [100.0, 110, 120, 130, 140, 150]),
        oi_rows("bybit", "BTCUSDT", [0, 1, 2, 5], [50.0, 55, 60, 75]),        # a gap at 3-4 h (stale after 2 h)
        oi_rows("okx", "BTC-USDT-SWAP", [2, 3, 4, 5], [30.0, 31, 32, 33]),    # arrives late
        oi_rows("binance", "ETHUSDT", range(0, 6), [9.0] * 6, asset="ETH"),
    ])
    funding = pd.concat([
        funding_rows("binance", [0, 8, 16], [0.0001, 0.0002, 0.0003], 8.0),
        funding_rows("bybit", [1, 2, 3, 4], [0.00001, 0.00002, 0.00003, 0.00004], 1.0),
    ])
    outside = pd.DataFrame({"name": ["fear_greed", "fear_greed", "etf_flows_IBIT"], "ts": [T0, H(24), T0],
                            "value": [84.0, 70.0, 8e8], "unit": ["index", "index", "USD"],
                            "source": "demo"})
    return Context.from_frames(oi.sample(frac=1, random_state=1), funding, outside)


def test_empty_context_has_typed_columns():
    c = Context()
    assert c.empty and c.names() == [] and c.assets() == []
    assert list(c.oi().columns) == OI_COLUMNS and str(c.oi()["ts"].dtype) == "datetime64[ns, UTC]"
    assert list(c.oi_total(T0, H(1)).columns) == OI_TOTAL_COLUMNS
    assert list(c.funding(T0, H(1)).columns) == FUNDING_VIEW_COLUMNS
    assert c.oi_change_pct(T0, H(1)) is None and c.funding_mean(T0, H(1)) is None
    assert list(Context.from_frames(outside=None).outside_frame.columns) == OUTSIDE_COLUMNS


def test_frames_sorted_and_typed(ctx):
    assert ctx.oi_frame["ts"].is_monotonic_increasing
    assert ctx.oi_frame["oi_usd"].dtype == np.float64
    assert ctx.names() == ["etf_flows_IBIT", "fear_greed"]
    assert ctx.assets() == ["BTC", "ETH"] and ctx.exchanges("BTC") == ["binance", "bybit", "okx"]
    assert ctx.unit("etf_flows_IBIT") == "USD" and ctx.unit("nope") == ""


def test_windows_are_exact(ctx):
    w = ctx.oi(H(1), H(3), exchanges="binance", asset="btc")
    assert list(w["ts"]) == [H(1), H(2)]  # H(3) = end: out
    assert len(ctx.oi(H(6), H(9))) == 0
    assert list(ctx.outside("fear_greed", T0, H(24))["value"]) == [84.0]
    assert list(ctx.outside("fear_greed", T0, H(24) + pd.Timedelta("1us"))["value"]) == [84.0, 70.0]
    assert len(ctx.outside("unknown")) == 0
    f = ctx.funding(T0, H(8))
    assert list(f["exchange"]) == ["binance", "bybit", "bybit", "bybit", "bybit"]
    win = ctx.window(H(1), H(2))
    assert set(win.oi_frame["ts"]) == {H(1)} and list(win.funding_frame["ts"]) == [H(1)]


def test_oi_total_latest_per_exchange_and_missing(ctx):
    tot = ctx.oi_total(T0, H(6), "BTC")
    got = {r.ts: (r.oi_usd, r.reporting, r.missing) for r in tot.itertuples()}
    assert got[H(0)] == (150.0, 2, "okx")
    assert got[H(2)] == (120 + 60 + 30.0, 3, "")
    assert got[H(3)] == (130 + 60 + 31.0, 3, "")     # bybit's 2 h value is still its latest (1 h old)
    assert got[H(4)] == (140 + 60 + 32.0, 3, "")     # 2 h old: still within STALE_PERIODS
    assert got[H(5)] == (150 + 75 + 33.0, 3, "")
    only = ctx.oi_total(T0, H(6), "BTC", exchanges=["binance"])
    assert list(only["oi_usd"]) == [100.0, 110, 120, 130, 140, 150]
    wide = ctx.oi_by_exchange(T0, H(6), "BTC")
    assert list(wide.columns) == ["binance", "bybit", "okx"] and math.isnan(wide.loc[H(0), "okx"])


def test_stale_value_is_missing_not_carried():
    c = Context.from_frames(pd.concat([oi_rows("binance", "BTCUSDT", range(6), [10.0] * 6),
                                       oi_rows("bybit", "BTCUSDT", [0], [5.0])]))
    tot = c.oi_total(T0, H(6), "BTC")
    assert list(tot["reporting"]) == [2, 2, 2, 1, 1, 1]
    assert list(tot["missing"]) == ["", "", "", "bybit", "bybit", "bybit"]


def test_oi_change_pct_over_exchanges_reporting_at_both_ends(ctx):
    # first time 0 h: binance 100, bybit 50 (okx missing); last 5 h: binance 150, bybit 75, okx 33
    assert ctx.oi_change_pct(T0, H(6), "BTC") == pytest.approx((225 / 150 - 1) * 100)
    assert ctx.oi_change_pct(H(2), H(4), "BTC") == pytest.approx(((130 + 60 + 31) / (120 + 60 + 30) - 1) * 100)
    assert ctx.oi_change_pct(H(2), H(3), "BTC") is None  # one time only
    assert ctx.oi_change_pct(H(7), H(9), "BTC") is None
    assert ctx.oi_change_pct(T0, H(6), "ETH") == 0.0


def test_funding_views_and_time_weighted_mean(ctx):
    f = ctx.funding(T0, H(24), exchanges=["bybit"])
    assert list(f["per_8h"]) == pytest.approx([r * 8 for r in [1e-5, 2e-5, 3e-5, 4e-5]])
    assert list(f["annualised"]) == pytest.approx([r * 24 * 365 for r in [1e-5, 2e-5, 3e-5, 4e-5]])
    b = ctx.funding(T0, H(24), exchanges="binance")
    assert list(b["annualised"]) == pytest.approx([1e-4 * 3 * 365, 2e-4 * 3 * 365, 3e-4 * 3 * 365])
    # time-weighted: sum of rates / sum of hours * 8
    total = (1e-4 + 2e-4 + 3e-4) + (1e-5 + 2e-5 + 3e-5 + 4e-5)
    assert ctx.funding_mean(T0, H(24), "BTC") == pytest.approx(total / (3 * 8 + 4 * 1) * 8)
    assert ctx.funding_mean(T0, H(24), "BTC", annualised=True) == pytest.approx(total / 28 * 24 * 365)
    assert ctx.funding_mean(T0, H(8), "BTC", exchanges="binance") == pytest.approx(1e-4)
    assert ctx.funding_mean(H(17), H(24), "BTC") is None


def test_unknown_interval_left_out_of_mean():
    c = Context.from_frames(funding=pd.concat([funding_rows("okx", [0], [0.5e-4], float("nan")),
                                               funding_rows("okx", [8], [1e-4], 8.0)]))
    assert math.isnan(c.funding(T0, H(9))["per_8h"].iloc[0])
    assert c.funding_mean(T0, H(9), "BTC") == pytest.approx(1e-4)


def test_dataset_holds_a_context(tmp_path, ctx):
    assert Dataset().context.empty
    folder = tmp_path / "demo"
    folder.mkdir()
    pd.DataFrame({"ts": [T0], "exchange": ["binance"], "symbol": ["BTCUSDT"], "asset": ["BTC"], "interval": ["1m"],
                  "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]}).to_parquet(
        folder / "candles.parquet")
    pd.DataFrame({"ts": [T0], "exchange": ["binance"], "symbol": ["BTCUSDT"], "asset": ["BTC"], "side": ["long"],
                  "price": [1.0], "qty": [1.0], "notional_usd": [1.0]}).to_parquet(folder / "liquidations.parquet")
    assert load_parquet_dataset(folder, "x").context.empty  # no context files: an empty context
    ctx.oi_frame.assign(ts=ctx.oi_frame["ts"].dt.as_unit("us")).to_parquet(folder / "open_interest.parquet")
    ctx.outside_frame.to_parquet(folder / "outside_series.parquet")
    got = load_parquet_dataset(folder, "x").context
    pd.testing.assert_frame_equal(got.oi_frame, ctx.oi_frame)
    assert got.names() == ctx.names() and len(got.funding_frame) == 0
    assert read_context_files(folder).oi_total(T0, H(6), "BTC").equals(ctx.oi_total(T0, H(6), "BTC"))
