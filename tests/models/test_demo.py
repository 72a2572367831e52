"""The demo generator: deterministic (same seed, same bytes), matches the bundled files, small; calibrated
(the day's totals, the move through $102K, liquidation prices inside each venue's candles, the context
series)."""
from __future__ import annotations

import pandas as pd
import pytest

from liqscope.models import demo, paths
from liqscope.models.liquidations import LiquidationModel
from liqscope.models.prices import PriceModel

FILES = ("candles.parquet", "liquidations.parquet", "open_interest.parquet", "funding.parquet",
         "outside_series.parquet")
DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generator run twice, into two separate folders."""
    a, b = tmp_path_factory.mktemp("demo-a"), tmp_path_factory.mktemp("demo-b")
    written_a, written_b = demo.write(a), demo.write(b)
    assert [p.name for p in written_a] == list(FILES) == [p.name for p in written_b]
    return a, b


@pytest.fixture(scope="module")
def frames():
    """(candles, liquidations) straight from the generator, in memory."""
    return demo.generate()


@pytest.mark.parametrize("name", FILES)
def test_same_seed_same_bytes(generated, name):
    a, b = generated
    data = (a / name).read_bytes()
    assert len(data) > 2_000
    assert data == (b / name).read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_regenerated_data_equals_the_bundled_files(generated, name):
    bundled = paths.demo_dir() / name
    assert bundled.is_file()
    # exact equality of every value and dtype (bytes may differ across library versions)
    pd.testing.assert_frame_equal(pd.read_parquet(generated[0] / name), pd.read_parquet(bundled), check_exact=True)


def test_bundled_files_are_small():
    sizes = {name: (paths.demo_dir() / name).stat().st_size for name in FILES}
    assert sum(sizes.values()) < 5 * 1024 * 1024, sizes


def test_generate_in_memory_matches_and_other_seeds_differ(generated, frames):
    candles, liqs = frames
    pd.testing.assert_frame_equal(
        liqs.reset_index(drop=True),
        pd.read_parquet(generated[0] / "liquidations.parquet").astype(liqs.dtypes.to_dict()),
        check_exact=True,
    )
    _, other = demo.generate(seed=demo.SEED + 1)
    assert len(other) != len(liqs) or not other["notional_usd"].equals(liqs["notional_usd"])


def test_generated_frames_follow_the_schema(frames):
    candles, liqs = frames
    model = LiquidationModel(liqs)  # validates sides, numbers, columns
    assert len(model) == len(liqs)
    assert liqs["ts"].is_monotonic_increasing
    assert set(liqs["side"]) == {"long", "short"}
    # notional = price x qty (rounded to the cent), qty in exchange-like steps
    assert ((liqs["price"] * liqs["qty"] - liqs["notional_usd"]).abs() <= 0.006).all()
    assert (liqs["qty"] > 0).all()
    # symbols are each exchange's own spelling
    okx = liqs[liqs["exchange"] == "okx"]["symbol"].unique()
    assert set(okx) == {f"{a}-USDT-SWAP" for a in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE")}
    prices = PriceModel.from_long(candles)
    assert len(prices) == 15
    assert candles["interval"].unique().tolist() == ["1m"]


def test_symbol_spelling():
    assert demo.symbol_for("binance", "BTC") == "BTCUSDT"
    assert demo.symbol_for("bybit", "ETH") == "ETHUSDT"
    assert demo.symbol_for("okx", "SOL") == "SOL-USDT-SWAP"
    assert demo.symbol_for("gate", "XRP") == "XRP_USDT"


def test_calibrated_day_totals(frames):
    _, liqs = frames
    day = liqs[(liqs["ts"] >= DAY[0]) & (liqs["ts"] < DAY[1])]
    total = day["notional_usd"].sum()
    assert total == pytest.approx(860e6, rel=0.001)
    assert day.loc[day["side"] == "short", "notional_usd"].sum() / total == pytest.approx(0.82, abs=0.001)
    by_ex = day.groupby(day["exchange"].astype(str))["notional_usd"].sum()
    for ex, usd in {"binance": 360e6, "okx": 180e6, "bybit": 120e6}.items():
        assert by_ex[ex] == pytest.approx(usd, rel=0.001)
    by_asset = day.groupby(day["asset"].astype(str))["notional_usd"].sum()
    assert by_asset["ETH"] == pytest.approx(120e6, rel=0.001)
    assert by_asset.drop(["BTC", "ETH"]).sum() == pytest.approx(200e6, rel=0.001)


def test_liquidation_prices_inside_the_venues_candle(frames):
    """Every liquidation on an exchange and asset with candles is priced within that minute's high-low."""
    candles, liqs = frames
    ev = liqs.assign(exchange=liqs["exchange"].astype(str), asset=liqs["asset"].astype(str),
                     minute=liqs["ts"].dt.floor("1min").dt.as_unit("ns"))
    c = candles.assign(exchange=candles["exchange"].astype(str), asset=candles["asset"].astype(str),
                       minute=candles["ts"].dt.as_unit("ns"))[["exchange", "asset", "minute", "low", "high"]]
    venues = set(zip(c["exchange"], c["asset"]))
    covered = ev[[v in venues for v in zip(ev["exchange"], ev["asset"])]]
    m = covered.merge(c, on=["exchange", "asset", "minute"], how="left", validate="many_to_one")
    assert len(m) == len(covered) > 10_000
    assert m["low"].notna().all()  # every covered event has its venue's candle
    outside = m[(m["price"] < m["low"]) | (m["price"] > m["high"])]
    assert outside.empty, outside.head()


def test_the_move_through_102k_is_the_largest_burst(frames):
    """2025-05-09 16:41-16:46 UTC: Binance BTC crosses $102K; the burst holds >= $25M, mostly shorts, on every
    exchange, Binance first, tens of events a minute -- and no other 5-minute window comes close."""
    candles, liqs = frames
    t0, t1 = pd.Timestamp("2025-05-09 16:41", tz="UTC"), pd.Timestamp("2025-05-09 16:46", tz="UTC")
    btc = candles[(candles["exchange"] == "binance") & (candles["asset"] == "BTC")].set_index("ts")
    move = btc.loc[t0:t1 - pd.Timedelta(minutes=1)]
    assert move["open"].iloc[0] < 102_000 < move["high"].max()
    assert (btc.loc[:t0 - pd.Timedelta(minutes=1), "high"] < 102_000).all()  # the first time through $102K
    burst = liqs[(liqs["ts"] >= t0) & (liqs["ts"] < t1)]
    total = burst["notional_usd"].sum()
    assert total >= 25e6
    assert burst.loc[burst["side"] == "short", "notional_usd"].sum() / total >= 0.9
    # Binance first: the time each exchange's running USD in the burst reaches 10% of its total there
    onset = {}
    for ex, mine in burst.groupby(burst["exchange"].astype(str)):
        running = mine["notional_usd"].cumsum()
        onset[ex] = mine["ts"][running >= 0.1 * running.iloc[-1]].iloc[0]
    assert set(onset) == set(demo.BY_EXCHANGE)
    assert min(onset, key=onset.get) == "binance"
    assert sorted(onset.values())[1] - onset["binance"] >= pd.Timedelta(seconds=10)
    # tens of BTC liquidations a minute at its height
    per_minute = burst[burst["asset"] == "BTC"].groupby(burst["ts"].dt.floor("1min")).size()
    assert len(per_minute) == 5 and 30 <= per_minute.max() <= 80 and per_minute.nlargest(3).min() >= 30
    # every 5-minute window of the demo (minute-aligned): the burst's is the largest, by far
    usd = liqs.groupby(liqs["ts"].dt.floor("1min"))["notional_usd"].sum()
    usd = usd.reindex(pd.date_range(demo.START, demo.END, freq="1min", inclusive="left"), fill_value=0.0)
    rolling = usd.rolling(5).sum()
    assert rolling.idxmax() == t1 - pd.Timedelta(minutes=1)
    far = rolling[(rolling.index < t0 - pd.Timedelta(minutes=10)) | (rolling.index > t1 + pd.Timedelta(minutes=10))]
    assert far.max() < 0.6 * rolling.max()


# -- context series -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled():
    return {name: pd.read_parquet(paths.demo_dir() / f"{name}.parquet")
            for name in ("open_interest", "funding", "outside_series")}


def _utc(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) and str(series.dtype.tz) == "UTC"


def test_context_files_columns(bundled):
    oi, funding, outside = bundled["open_interest"], bundled["funding"], bundled["outside_series"]
    assert list(oi.columns) == ["ts", "exchange", "symbol", "asset", "period", "oi_base", "oi_usd", "source"]
    assert list(funding.columns) == ["ts", "exchange", "symbol", "asset", "rate", "interval_hours", "source"]
    assert list(outside.columns) == ["name", "ts", "value", "unit", "source"]
    for frame in bundled.values():
        assert _utc(frame["ts"]) and len(frame)
        assert set(frame["source"]) == {"demo"}
        assert (frame["ts"] >= demo.START).all() and (frame["ts"] < demo.END).all()
    for frame in (oi, funding):
        assert set(frame["exchange"].astype(str)) == {"binance", "okx", "bybit"}
        assert (frame["symbol"].astype(str) == [demo.symbol_for(e, a) for e, a in
                                                zip(frame["exchange"].astype(str), frame["asset"].astype(str))]).all()
    assert set(oi["period"]) == {"5m"}
    assert (oi["ts"].dt.minute % 5 == 0).all()
    for col in ("oi_base", "oi_usd"):
        assert oi[col].dtype == "float64" and (oi[col] > 0).all()
    assert funding["rate"].dtype == "float64" and set(funding["interval_hours"]) == {8.0}
    assert set(funding["ts"].dt.strftime("%H:%M")) == {"00:00", "08:00", "16:00"}
    assert outside["value"].dtype == "float64"


def _oi_sum(oi, asset):
    mine = oi[oi["asset"] == asset]
    return mine.groupby("ts")["oi_usd"].sum()


def test_open_interest_calibration(bundled):
    oi = bundled["open_interest"]
    eth = _oi_sum(oi, "ETH")
    change = eth[demo.MOVE_END] / eth[demo.MOVE_START] - 1
    assert change * 100 == pytest.approx(34, abs=1)
    btc = _oi_sum(oi, "BTC")
    assert len(btc) == 4 * 288
    assert 10e9 < btc.min() and btc.max() < 60e9  # tens of $B over the three venues
    before = pd.Timestamp("2025-05-09 16:40", tz="UTC")  # the last snapshot before the burst
    assert btc[before] > 1.08 * btc[demo.START]      # rising into the squeeze ...
    assert btc[before] > btc[: before - pd.Timedelta(minutes=5)].max() * 0.995
    after = btc[before + pd.Timedelta(minutes=5): before + pd.Timedelta(minutes=15)]
    assert after.max() < btc[before] and after.min() < 0.985 * btc[before]  # ... dropping in the burst


def test_funding_elevated_then_negative(bundled):
    f = bundled["funding"]
    assert len(f) == 12 * 3 * 5  # every settlement of the demo's four days, per exchange and asset
    day, after = f[(f["ts"] >= DAY[0]) & (f["ts"] < DAY[1])], f[f["ts"] >= DAY[1]]
    first_day = f[f["ts"] < demo.START + pd.Timedelta(days=1)]
    assert (day["rate"] > 0.0002).all()           # elevated: 0.02% per 8 h and more into the move
    assert day["rate"].mean() > 3 * first_day["rate"].mean() > 0
    assert len(after) and (after["rate"] < 0).all()  # negative after it
    # the highest: the last settlement before the move through $102K
    assert f.groupby("ts")["rate"].mean().idxmax() == pd.Timestamp("2025-05-09 16:00", tz="UTC")


def test_outside_series_calibration(bundled):
    s = bundled["outside_series"]

    def value(name, ts="2025-05-09"):
        got = s[(s["name"] == name) & (s["ts"] == pd.Timestamp(ts, tz="UTC"))]["value"]
        assert len(got) == 1, name
        return float(got.iloc[0])

    assert value("etf_flows_IBIT") == 800e6
    assert value("etf_flows_total") == 1.4e9
    funds = s[s["name"].str.startswith("etf_flows_") & (s["name"] != "etf_flows_total")]
    assert funds.groupby("ts")["value"].sum().to_dict() == s[s["name"] == "etf_flows_total"].set_index("ts")[
        "value"].to_dict()
    assert set(s.loc[s["name"].str.startswith("etf_flows_"), "unit"]) == {"USD"}
    assert value("fear_greed") == 84
    dom = s[s["name"] == "btc_dominance"].set_index("ts")["value"]
    assert set(s.loc[s["name"] == "btc_dominance", "unit"]) == {"%"}
    assert dom[DAY[0]:DAY[1] - pd.Timedelta(hours=1)].mean() == pytest.approx(58, abs=0.05)
    assert dom.between(55, 62).all()
    days = pd.date_range(demo.START, demo.END, freq="1D", inclusive="left")
    for name in ("fear_greed", "btc_dominance"):  # cover the demo's whole range
        covered = s.loc[s["name"] == name, "ts"].dt.floor("1D").unique()
        assert set(covered) == set(days), name
    assert s[s["name"] == "fear_greed"]["value"].between(0, 100).all()
