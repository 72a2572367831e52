"""LiquidationModel and the liquidation schema, on small hand-built frames with known answers.

Window convention under test: ``start <= ts < end`` (start inclusive, end exclusive).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqscope.models.liquidations import LiquidationModel, Totals
from liqscope.models.schema import (
    LIQ_COLUMNS,
    SchemaError,
    normalize_liquidations,
    order_side_to_position,
)

T0 = pd.Timestamp("2025-05-09T00:00:00Z")
H = pd.Timedelta(hours=1)


def ev(ts, exchange, asset, side, usd, price=100.0):
    return {
        "ts": pd.Timestamp(ts), "exchange": exchange, "symbol": f"{asset}USDT", "asset": asset,
        "side": side, "price": price, "qty": usd / price, "notional_usd": float(usd),
    }


# Seven events around the 00:00-01:00 hour of 2025-05-09 (given out of order on purpose).
EVENTS = [
    ev(T0 + pd.Timedelta(minutes=90), "binance", "BTC", "short", 250_000),       # e5
    ev(T0, "binance", "BTC", "short", 100_000),                                   # e1: exactly at start
    ev(T0 + pd.Timedelta(minutes=10), "okx", "ETH", "long", 20_000),              # e2
    ev(T0 + H - pd.Timedelta(milliseconds=1), "bybit", "BTC", "short", 5_000),    # e3: last ms inside
    ev(T0 + H, "binance", "SOL", "long", 1_000_000),                              # e4: exactly at end
    ev(T0 - pd.Timedelta(seconds=1), "okx", "BTC", "long", 3_000),                # e6: just before start
    ev(T0 + pd.Timedelta(minutes=135), "bybit", "ETH", "short", 40_000),          # e7
]
ALL_USD = 1_418_000.0


@pytest.fixture
def model() -> LiquidationModel:
    return LiquidationModel(pd.DataFrame(EVENTS))


def usd(m: LiquidationModel) -> float:
    return m.totals().total_usd


# -- construction ---------------------------------------------------------------------------------
def test_model_sorts_events_and_keeps_every_column(model):
    f = model.frame
    assert list(f.columns) == LIQ_COLUMNS
    assert len(model) == 7
    assert f["ts"].is_monotonic_increasing
    assert str(f["ts"].dtype) == "datetime64[ns, UTC]"
    assert f["notional_usd"].tolist() == [3_000, 100_000, 20_000, 5_000, 1_000_000, 250_000, 40_000]
    assert model.exchanges == ["binance", "bybit", "okx"]
    assert model.assets == ["BTC", "ETH", "SOL"]
    assert model.time_range() == (T0 - pd.Timedelta(seconds=1), T0 + pd.Timedelta(minutes=135))


# -- window edges ---------------------------------------------------------------------------------
def test_window_includes_event_exactly_at_start(model):
    w = model.window(T0, T0 + H)
    assert T0 in set(w.frame["ts"])
    assert w.frame["notional_usd"].tolist() == [100_000, 20_000, 5_000]
    assert usd(w) == 125_000


def test_window_excludes_event_exactly_at_end(model):
    w = model.window(T0, T0 + H)
    assert (T0 + H) not in set(w.frame["ts"])
    # ... and the next window starts with it: adjacent windows never double count.
    nxt = model.window(T0 + H, T0 + 2 * H)
    assert nxt.frame["notional_usd"].tolist() == [1_000_000, 250_000]
    before = model.window(None, T0)
    after = model.window(T0 + 2 * H, None)
    assert usd(before) + usd(w) + usd(nxt) + usd(after) == ALL_USD
    assert len(before) + len(w) + len(nxt) + len(after) == 7


def test_window_one_nanosecond_wide(model):
    assert model.window(T0, T0 + pd.Timedelta(1, "ns")).frame["notional_usd"].tolist() == [100_000]
    assert len(model.window(T0 + pd.Timedelta(1, "ns"), T0 + H - pd.Timedelta(milliseconds=1))) == 1  # e2


def test_window_accepts_iso_strings_naive_as_utc_and_offsets(model):
    expected = model.window(T0, T0 + H).frame["notional_usd"].tolist()
    assert model.window("2025-05-09T00:00:00Z", "2025-05-09T01:00:00Z").frame["notional_usd"].tolist() == expected
    assert model.window("2025-05-09 00:00", "2025-05-09 01:00").frame["notional_usd"].tolist() == expected
    assert model.window("2025-05-09T02:00:00+02:00", "2025-05-09T03:00:00+02:00").frame[
        "notional_usd"].tolist() == expected


def test_window_open_ends_and_empty_window(model):
    assert len(model.window()) == 7
    assert usd(model.window(None, T0)) == 3_000
    assert usd(model.window(T0 + 2 * H, None)) == 40_000
    assert len(model.window(T0 + H, T0 + H)) == 0
    assert len(model.window(T0 + H, T0)) == 0  # end before start: nothing, not an error


# -- filters --------------------------------------------------------------------------------------
def test_filter_exchanges_case_insensitive(model):
    assert usd(model.filter(exchanges=["Binance"])) == 1_350_000
    assert usd(model.filter(exchanges=["okx", "BYBIT"])) == 68_000
    assert len(model.filter(exchanges=[])) == 0


def test_filter_assets_case_insensitive(model):
    assert usd(model.filter(assets=["btc"])) == 358_000
    assert usd(model.filter(assets=["ETH", "sol"])) == 1_060_000


@pytest.mark.parametrize(
    ("side", "expected_usd", "count"),
    [("long", 1_023_000, 3), ("short", 395_000, 4), ("both", ALL_USD, 7), (None, ALL_USD, 7)],
)
def test_filter_side(model, side, expected_usd, count):
    sub = model.filter(side=side)
    assert usd(sub) == expected_usd
    assert len(sub) == count
    if side in ("long", "short"):
        assert set(sub.frame["side"].astype(str)) == {side}


def test_filter_side_rejects_order_sides(model):
    with pytest.raises(ValueError):
        model.filter(side="buy")


def test_filter_min_notional_is_inclusive(model):
    assert model.filter(min_notional=100_000).frame["notional_usd"].tolist() == [100_000, 1_000_000, 250_000]
    assert len(model.filter(min_notional=100_000.01)) == 2
    assert len(model.filter(min_notional=0)) == 7


def test_filter_combines_window_and_every_filter(model):
    sub = model.filter(T0, T0 + 2 * H, exchanges=["binance", "okx"], side="short")
    assert sub.frame["notional_usd"].tolist() == [100_000, 250_000]
    sub = model.filter(T0, T0 + 2 * H, assets=["BTC"], side="short", min_notional=10_000)
    assert sub.frame["notional_usd"].tolist() == [100_000, 250_000]
    assert len(model.filter(T0, T0 + H, exchanges=["okx"], side="short")) == 0


# -- totals ---------------------------------------------------------------------------------------
def test_totals_whole_set(model):
    t = model.totals()
    assert isinstance(t, Totals)
    assert t.total_usd == ALL_USD
    assert t.long_usd == 1_023_000
    assert t.short_usd == 395_000
    assert t.count == 7
    assert t.short_share == pytest.approx(395_000 / ALL_USD)
    assert t.by_exchange == {"binance": 1_350_000, "bybit": 45_000, "okx": 23_000}
    assert list(t.by_exchange) == ["binance", "bybit", "okx"]  # largest first
    assert t.by_asset == {"SOL": 1_000_000, "BTC": 358_000, "ETH": 60_000}
    assert list(t.by_asset) == ["SOL", "BTC", "ETH"]


def test_totals_of_a_window_omit_groups_with_nothing(model):
    t = model.window(T0, T0 + H).totals()
    assert (t.total_usd, t.long_usd, t.short_usd, t.count) == (125_000, 20_000, 105_000, 3)
    assert t.short_share == pytest.approx(0.84)
    assert t.by_exchange == {"binance": 100_000, "okx": 20_000, "bybit": 5_000}
    assert t.by_asset == {"BTC": 105_000, "ETH": 20_000}


def test_totals_long_plus_short_is_total(model):
    for sub in (model, model.window(T0, T0 + H), model.filter(assets=["BTC"])):
        t = sub.totals()
        assert t.long_usd + t.short_usd == pytest.approx(t.total_usd)
        assert sum(t.by_exchange.values()) == pytest.approx(t.total_usd)
        assert sum(t.by_asset.values()) == pytest.approx(t.total_usd)


# -- largest --------------------------------------------------------------------------------------
def test_largest_orders_descending(model):
    top = model.largest(3)
    assert top["notional_usd"].tolist() == [1_000_000, 250_000, 100_000]
    assert top["exchange"].astype(str).tolist() == ["binance", "binance", "binance"]
    assert top["asset"].astype(str).tolist() == ["SOL", "BTC", "BTC"]
    assert top["ts"].tolist() == [T0 + H, T0 + pd.Timedelta(minutes=90), T0]
    assert list(top.columns) == LIQ_COLUMNS


def test_largest_more_than_available_returns_all_sorted(model):
    top = model.largest(100)
    assert top["notional_usd"].tolist() == sorted((e["notional_usd"] for e in EVENTS), reverse=True)


def test_largest_zero_or_negative_is_empty(model):
    assert len(model.largest(0)) == 0
    assert len(model.largest(-1)) == 0


def test_largest_ties_keep_time_order():
    events = [ev(T0 + pd.Timedelta(seconds=i), "binance", "BTC", "long", 500 if i % 3 else 900)
              for i in range(40)]
    top = LiquidationModel(pd.DataFrame(events)).largest(5)
    assert top["notional_usd"].tolist() == [900] * 5
    assert top["ts"].tolist() == [T0 + pd.Timedelta(seconds=s) for s in (0, 3, 6, 9, 12)]


# -- buckets --------------------------------------------------------------------------------------
def test_buckets_hourly_sums_per_side_and_exchange(model):
    b = model.buckets(3600)
    assert list(b.index) == [T0 - H, T0, T0 + H, T0 + 2 * H]
    assert str(b.index.tz) == "UTC"
    assert list(b.columns) == [(s, e) for s in ("long", "short") for e in ("binance", "bybit", "okx")]
    expected = pd.DataFrame(
        [
            # long: binance bybit okx   short: binance bybit okx
            [0, 0, 3_000, 0, 0, 0],                 # 23:00 (e6)
            [0, 0, 20_000, 100_000, 5_000, 0],      # 00:00 (e1 e2 e3)
            [1_000_000, 0, 0, 250_000, 0, 0],       # 01:00 (e4 at exactly 01:00, e5)
            [0, 0, 0, 0, 40_000, 0],                # 02:00 (e7)
        ],
        index=b.index, columns=b.columns, dtype=float,
    )
    pd.testing.assert_frame_equal(b, expected)


def test_buckets_by_asset(model):
    b = model.buckets(3600, by="asset")
    assert list(b.columns.get_level_values("asset").unique()) == ["BTC", "ETH", "SOL"]
    assert b.loc[T0, ("short", "BTC")] == 105_000
    assert b.loc[T0, ("long", "ETH")] == 20_000
    assert b.loc[T0 + H, ("long", "SOL")] == 1_000_000
    assert b.loc[T0 + 2 * H, ("short", "ETH")] == 40_000
    assert b.to_numpy().sum() == ALL_USD


def test_buckets_window_is_start_inclusive_end_exclusive_and_epoch_aligned(model):
    # start in the middle of an hour: the first bucket is still on the hour, but holds only
    # events at or after start; the event exactly at `end` is not counted.
    b = model.buckets(3600, start=T0 + pd.Timedelta(minutes=30), end=T0 + H)
    assert list(b.index) == [T0]
    assert b.loc[T0].to_dict() == {("long", "binance"): 0.0, ("long", "bybit"): 0.0, ("long", "okx"): 0.0,
                                   ("short", "binance"): 0.0, ("short", "bybit"): 5_000.0,
                                   ("short", "okx"): 0.0}
    b = model.buckets(3600, start=T0, end=T0 + 2 * H)
    assert list(b.index) == [T0, T0 + H]
    assert b.to_numpy().sum() == 1_375_000  # e1 e2 e3 e4 e5


@pytest.mark.parametrize("seconds", [60, 300, 900, 3600, 14400, 86400, 420])
def test_buckets_align_to_the_epoch(model, seconds):
    b = model.buckets(seconds)
    assert len(b) > 0
    assert (b.index.asi8 % (seconds * 1_000_000_000) == 0).all()
    assert (np.diff(b.index.asi8) == seconds * 1_000_000_000).all()
    assert b.index[0] <= model.frame["ts"].iloc[0] < b.index[0] + pd.Timedelta(seconds=seconds)
    assert b.index[-1] <= model.frame["ts"].iloc[-1] < b.index[-1] + pd.Timedelta(seconds=seconds)


def test_one_hour_buckets_start_on_the_hour():
    events = [ev("2025-05-09T10:17:03Z", "okx", "BTC", "long", 10), ev("2025-05-09T12:59:59Z", "okx", "BTC", "long", 20)]
    b = LiquidationModel(pd.DataFrame(events)).buckets(3600)
    assert [t.strftime("%H:%M:%S") for t in b.index] == ["10:00:00", "11:00:00", "12:00:00"]
    assert b[("long", "okx")].tolist() == [10, 0, 20]


@pytest.mark.parametrize("seconds", [60, 300, 3600, 86400])
def test_buckets_sum_equals_totals(model, seconds):
    for start, end in [(None, None), (T0, T0 + H), (T0 - pd.Timedelta(minutes=7), T0 + pd.Timedelta(minutes=95))]:
        b = model.buckets(seconds, start, end)
        t = model.window(start, end).totals()
        assert b.to_numpy().sum() == pytest.approx(t.total_usd)
        assert b["long"].to_numpy().sum() == pytest.approx(t.long_usd)
        assert b["short"].to_numpy().sum() == pytest.approx(t.short_usd)
        per_exchange = b.T.groupby(level="exchange").sum().sum(axis=1)
        assert {k: v for k, v in per_exchange.items() if v} == pytest.approx(t.by_exchange)


def test_buckets_random_events_match_a_groupby():
    rng = np.random.default_rng(7)
    n = 5_000
    ts = T0 + pd.to_timedelta(rng.integers(0, 86_400_000, n), unit="ms")
    df = pd.DataFrame({
        "ts": ts, "exchange": rng.choice(["binance", "okx", "bybit", "gate"], n),
        "asset": rng.choice(["BTC", "ETH"], n), "side": rng.choice(["long", "short"], n),
        "price": 1.0, "qty": 1.0, "notional_usd": np.round(rng.pareto(1.3, n) * 1000, 2),
    })
    df["symbol"] = df["asset"] + "USDT"
    m = LiquidationModel(df)
    b = m.buckets(900)
    ref = df.assign(bucket=df["ts"].dt.floor("900s")).pivot_table(
        index="bucket", columns=["side", "exchange"], values="notional_usd", aggfunc="sum", fill_value=0.0)
    ref = ref.reindex(index=b.index, columns=b.columns, fill_value=0.0)
    assert b.index[0] == T0 and len(b) == 96
    np.testing.assert_allclose(b.to_numpy(), ref.to_numpy(), rtol=1e-12)


# -- daily totals & concat ------------------------------------------------------------------------
def test_daily_totals_and_concat(model):
    daily = model.daily_totals()
    assert daily.to_dict() == {pd.Timestamp("2025-05-08", tz="UTC"): 3_000,
                               pd.Timestamp("2025-05-09", tz="UTC"): ALL_USD - 3_000}
    both = LiquidationModel.concat([model.window(None, T0 + H), model.window(T0 + H, None)])
    assert len(both) == 7
    assert both.totals() == model.totals()


# -- empty inputs ---------------------------------------------------------------------------------
def test_empty_model_answers_with_zeros():
    m = LiquidationModel()
    assert len(m) == 0
    assert m.exchanges == [] and m.assets == []
    assert m.time_range() is None
    t = m.totals()
    assert (t.total_usd, t.long_usd, t.short_usd, t.count, t.short_share) == (0, 0, 0, 0, 0.0)
    assert t.by_exchange == {} and t.by_asset == {}
    assert len(m.largest(10)) == 0 and list(m.largest(10).columns) == LIQ_COLUMNS
    assert len(m.window(T0, T0 + H)) == 0
    assert len(m.filter(T0, T0 + H, exchanges=["okx"], side="long", min_notional=5)) == 0
    assert m.daily_totals().empty
    assert m.buckets(60).empty
    b = m.buckets(60, T0, T0 + pd.Timedelta(minutes=3))
    assert list(b.index) == [T0 + pd.Timedelta(minutes=i) for i in range(3)]
    assert b.to_numpy().sum() == 0


def test_empty_frame_with_the_columns_is_accepted():
    m = LiquidationModel(pd.DataFrame({c: [] for c in LIQ_COLUMNS}))
    assert len(m) == 0 and m.totals().total_usd == 0


def test_window_with_nothing_in_it_keeps_bucket_columns(model):
    b = model.buckets(3600, T0 + 5 * H, T0 + 7 * H)
    assert list(b.index) == [T0 + 5 * H, T0 + 6 * H]
    assert b.shape == (2, 6)
    assert b.to_numpy().sum() == 0
    t = model.window(T0 + 5 * H, T0 + 7 * H).totals()
    assert t.total_usd == 0 and t.short_share == 0.0


# -- schema ---------------------------------------------------------------------------------------
def test_normalize_canonicalises_names_times_and_sides():
    df = pd.DataFrame([ev("2025-05-09 02:00", "Binance", "btc", "SHORT", 10),
                       ev("2025-05-09T03:00:00+02:00", "OKX", "eth", "Long", 20)])
    out = normalize_liquidations(df)
    assert out["exchange"].astype(str).tolist() == ["okx", "binance"]
    assert out["asset"].astype(str).tolist() == ["ETH", "BTC"]
    assert out["side"].astype(str).tolist() == ["long", "short"]
    assert out["ts"].tolist() == [pd.Timestamp("2025-05-09T01:00Z"), pd.Timestamp("2025-05-09T02:00Z")]
    assert list(out["side"].cat.categories) == ["long", "short"]


@pytest.mark.parametrize("bad", ["buy", "sell", "", "both", None])
def test_normalize_rejects_bad_sides(bad):
    df = pd.DataFrame([ev(T0, "okx", "BTC", "long", 10), ev(T0, "okx", "BTC", "long", 10)])
    df.loc[1, "side"] = bad
    with pytest.raises(SchemaError, match="side"):
        normalize_liquidations(df)


@pytest.mark.parametrize("col", ["qty", "price", "notional_usd"])
def test_normalize_rejects_negative_or_missing_numbers(col):
    df = pd.DataFrame([ev(T0, "okx", "BTC", "long", 10)])
    df.loc[0, col] = -1.0
    with pytest.raises(SchemaError, match=col):
        normalize_liquidations(df)
    df.loc[0, col] = np.nan
    with pytest.raises(SchemaError, match=col):
        normalize_liquidations(df)


@pytest.mark.parametrize("col", LIQ_COLUMNS)
def test_normalize_rejects_missing_columns(col):
    df = pd.DataFrame([ev(T0, "okx", "BTC", "long", 10)]).drop(columns=[col])
    with pytest.raises(SchemaError, match=f"missing columns: {col}"):
        normalize_liquidations(df)
    with pytest.raises(SchemaError):
        LiquidationModel(df)


def test_schema_error_is_a_value_error():
    assert issubclass(SchemaError, ValueError)


def test_order_side_to_position():
    out = order_side_to_position(pd.Series(["SELL", "buy", " Sell ", "BUY"]))
    assert out.tolist() == ["long", "short", "long", "short"]
    with pytest.raises(SchemaError, match="hold"):
        order_side_to_position(pd.Series(["sell", "hold"]))


def test_normalize_parses_iso_strings_of_mixed_precision_and_offsets():
    # isoformat() drops the fraction when it is zero; exports mix "Z" and "+02:00".
    df = pd.DataFrame([ev(T0, "okx", "BTC", "long", 10)] * 4)
    df["ts"] = ["2025-05-09T11:00:00Z", "2025-05-09T10:00:00.123Z", "2025-05-09T13:00:00+02:00",
                "2025-05-09 09:00"]
    out = normalize_liquidations(df)
    assert out["ts"].tolist() == [pd.Timestamp("2025-05-09T09:00Z"), pd.Timestamp("2025-05-09T10:00:00.123Z"),
                                  pd.Timestamp("2025-05-09T11:00Z"), pd.Timestamp("2025-05-09T11:00Z")]


def test_normalize_rejects_unparseable_timestamps():
    df = pd.DataFrame([ev(T0, "okx", "BTC", "long", 10)] * 2)
    df["ts"] = ["2025-05-09T11:00:00Z", "yesterday-ish"]
    with pytest.raises(SchemaError, match="timestamp"):
        normalize_liquidations(df)


def test_normalize_categorical_input_collapses_case_and_drops_unused_names():
    df = pd.DataFrame([ev(T0 + pd.Timedelta(seconds=i), "x", "btc", "long", 10 + i) for i in range(5)])
    df["exchange"] = pd.Categorical(["Binance", "binance", "OKX", "okx", "gate"],
                                    categories=["Binance", "binance", "OKX", "okx", "gate", "mtgox"])
    df["side"] = pd.Categorical(["LONG", "short", "Short", "long", "long"])
    out = normalize_liquidations(df)
    assert out["exchange"].astype(str).tolist() == ["binance", "binance", "okx", "okx", "gate"]
    assert list(out["exchange"].cat.categories) == ["binance", "gate", "okx"]
    assert out["side"].astype(str).tolist() == ["long", "short", "short", "long", "long"]
    assert list(out["side"].cat.categories) == ["long", "short"]
    m = LiquidationModel(df)
    assert list(m.buckets(3600).columns.get_level_values("exchange").unique()) == ["binance", "gate", "okx"]
    assert m.totals().by_exchange == {"gate": 14, "okx": 25, "binance": 21}


@pytest.mark.parametrize("col", ["exchange", "symbol", "asset"])
def test_normalize_rejects_missing_names(col):
    df = pd.DataFrame([ev(T0, "okx", "BTC", "long", 10), ev(T0, "okx", "BTC", "long", 10)])
    df.loc[1, col] = None
    with pytest.raises(SchemaError, match=col):
        normalize_liquidations(df)


@pytest.mark.parametrize("seconds", [0, -60])
def test_buckets_reject_non_positive_sizes(model, seconds):
    with pytest.raises(ValueError, match="positive"):
        model.buckets(seconds)
