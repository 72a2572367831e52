"""A store larger than the memory budget is held in parts (models/store/window.py): every figure a part
says it serves equals the figure of the whole store loaded at once, and of ``liqscope summary``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqscope.models.export import Selection, dataset_frame
from liqscope.models.store import figures, open_store
from liqscope.models.store.window import StoreWindows
from liqscope.models.view import View

from store_testutil import candles, liqs

T0 = pd.Timestamp("2025-03-01", tz="UTC")
BUDGET = 3000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """60 days, two exchanges from two sources, 25k events; 30 days of 1-minute candles."""
    store = open_store(tmp_path_factory.mktemp("window") / "store")
    store.append_liquidations(liqs(20000, span="60D", start="2025-03-01"), source="file:a.csv")
    store.append_liquidations(liqs(5000, span="60D", start="2025-03-01", exchange="okx", seed=3), source="okx-ws")
    store.append_candles(candles(60 * 24 * 30, start="2025-03-01"), exchange="binance", symbol="BTCUSDT",
                         interval="1m", asset="BTC")
    return store, store.load_window()


CENT = 0.005  # sums of the same rows in another order differ by float noise, far below a cent


def same_money(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=CENT), k


def same_figures(a: dict, b: dict) -> None:
    assert a["count"] == b["count"]
    assert a["total_usd"] == pytest.approx(b["total_usd"], abs=CENT)
    assert a["long_usd"] == pytest.approx(b["long_usd"], abs=CENT)
    same_money(a["by_exchange"], b["by_exchange"])
    same_money(a["by_asset"], b["by_asset"])
    assert [(r["ts"], r["notional_usd"]) for r in a["largest"]] == [(r["ts"], r["notional_usd"]) for r in b["largest"]]


FILTERS = st.fixed_dictionaries({
    "side": st.sampled_from([None, "long", "short"]),
    "exchanges": st.sampled_from([None, ["okx"], ["binance", "okx"]]),
    "assets": st.sampled_from([None, ["ETH"]]),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start_min=st.integers(0, 59 * 1440), span_min=st.integers(5, 58 * 1440), filt=FILTERS)
def test_a_part_serves_its_view_with_the_whole_store_s_figures(big, start_min, span_min, filt):
    store, full = big
    start = T0 + pd.Timedelta(minutes=start_min) + pd.Timedelta(milliseconds=start_min % 997)
    end = start + pd.Timedelta(minutes=span_min)
    windows = StoreWindows(store, budget=BUDGET)
    flt = {"min_notional": 0.0, **filt}
    part = windows.load(start, end, flt)
    assert part.serves(start, end, flt)
    assert part.part.resolution_s in (0, 86400)
    if part.part.resolution_s == 0:
        assert len(part.liquidations) <= BUDGET
    args = dict(exchanges=filt["exchanges"], assets=filt["assets"], side=filt["side"], largest=5)
    same_figures(part.summary(start, end, **args), full.summary(start, end, **args))
    # liqscope summary (rollups + raw edges) says the same
    same_figures(figures.summary(store, start, end, **args), full.summary(start, end, **args))


def test_small_store_is_held_whole(big):
    store, full = big
    ds = StoreWindows(store, budget=10**9).first()
    assert ds.part is None and ds.complete and len(ds.liquidations) == len(full.liquidations)


def test_large_store_opens_on_its_busiest_day_with_whole_store_facts(big):
    store, full = big
    ds = StoreWindows(store, budget=BUDGET).first()
    assert ds.part is not None and ds.part.resolution_s == 0
    assert len(ds.liquidations) < len(full.liquidations)
    assert ds.busiest_day() == full.busiest_day()
    # from the table log's file statistics, which Delta keeps to the millisecond
    assert all(abs(a - b) < pd.Timedelta("1ms") for a, b in zip(ds.time_range(), full.time_range()))
    assert ds.assets == full.assets and ds.exchanges == full.exchanges
    day = full.busiest_day()
    assert ds.serves(*day, {})
    assert ds.part.loaded[0] <= day[0] and day[1] <= ds.part.loaded[1]


def test_a_wide_view_holds_days_and_reads_a_new_part_when_moved(big):
    store, full = big
    windows = StoreWindows(store, budget=BUDGET)
    start, end = T0 + pd.Timedelta("3D5h17min"), T0 + pd.Timedelta("50D2h")
    ds = windows.load(start, end)
    assert ds.part.resolution_s == 86400
    agg = ds.liquidations.aggregate_mask
    assert agg.any() and (~agg).any()  # whole days as totals, the view's edge days as events
    assert int(ds.liquidations.counts.sum()) == full.index().totals(*ds.part.loaded).count
    assert ds.serves(start, end, {})
    assert not ds.serves(start + pd.Timedelta(hours=1), end, {})        # panned: figures would be off
    assert not ds.serves(start, end, {"side": "long"})                  # filtered: its largest orders differ
    assert not ds.serves(start, start + pd.Timedelta(hours=6), {})      # zoomed in: days are too coarse
    # whole-day bars equal the events' bars
    a = ds.index().buckets(86400, start.floor("D"), end.ceil("D"))
    b = full.index().buckets(86400, start.floor("D"), end.ceil("D"))
    pd.testing.assert_frame_equal(a, b[a.columns], check_exact=False, atol=CENT, rtol=0)
    # aggregate rows are never orders: not among the largest, not in a raw export
    assert not ds.largest(start, end, 50)["price"].isna().any()
    view = View(start=start, end=end)
    rows = dataset_frame(ds, Selection(view=view, price_exchanges=("binance",)), "liquidations")
    assert len(rows) == full.index().totals(start, end).count
    assert rows["notional_usd"].sum() == pytest.approx(full.index().totals(start, end).total_usd, abs=CENT)


def test_a_size_filter_on_a_wide_view_holds_only_large_events(big):
    store, full = big
    windows = StoreWindows(store, budget=BUDGET)
    start, end = T0 + pd.Timedelta("1D"), T0 + pd.Timedelta("55D")
    flt = {"min_notional": 3000.0}
    ds = windows.load(start, end, flt)
    assert ds.part.resolution_s == 0 and ds.part.min_notional == 3000.0
    assert ds.serves(start, end, flt) and not ds.serves(start, end, {"min_notional": 0.0})
    same_figures(ds.summary(start, end, min_notional=3000.0), full.summary(start, end, min_notional=3000.0))


def test_for_view_reads_the_part_a_command_needs(big):
    store, full = big
    ds = StoreWindows(store, budget=BUDGET).first()
    view = View(start=T0 + pd.Timedelta("40D"), end=T0 + pd.Timedelta("41D"))
    assert not ds.serves(view.start, view.end, view.liq_filter())
    other = ds.for_view(view)
    assert other is not ds and other.serves(view.start, view.end, view.liq_filter())
    assert other.for_view(view) is other
    same_figures(other.view_summary(view), full.view_summary(view))


def test_candles_follow_the_span(big):
    store, full = big
    windows = StoreWindows(store, budget=BUDGET)
    day = windows.load(T0 + pd.Timedelta("2D"), T0 + pd.Timedelta("3D"))
    wide = windows.load(T0, T0 + pd.Timedelta("59D"))
    key = day.prices.find("BTC", "binance")
    assert key.interval == "1m" and day.part.candle_s == 60
    wkey = wide.prices.find("BTC", "binance")
    assert wide.part.candle_s == 3600 and wkey.interval == "1h"
    hourly = full.prices.candles(full.prices.find("BTC", "binance"), T0, T0 + pd.Timedelta("59D"), interval="1h")
    got = wide.prices.candles(wkey)
    assert len(got) == len(hourly)
    np.testing.assert_allclose(got[["open", "high", "low", "close", "volume"]].to_numpy(),
                               hourly[["open", "high", "low", "close", "volume"]].to_numpy())


def test_live_events_extend_a_part(big):
    store, _full = big
    ds = StoreWindows(store, budget=BUDGET).load(T0 + pd.Timedelta("59D20h"), T0 + pd.Timedelta("60D"))
    new = liqs(3, start="2025-04-29T23:59:59", span="1s", seed=9)
    before = ds.index().totals().count
    assert ds.append_liquidations(new) == 3
    assert ds.index().totals().count == before + 3


def test_whole_store_facts_are_cached_per_table_versions(tmp_path, monkeypatch):
    """The overview (USD and events per day, assets) is read from the cache when the tables have not
    changed, and computed again after any commit."""
    store = open_store(tmp_path / "s")
    store.append_liquidations(liqs(500, span="10D", start="2025-03-01"), source="file:a.csv")
    first = figures.Overview(store).daily_table()
    calls = []
    real = figures.daily_table
    monkeypatch.setattr(figures, "daily_table", lambda s: calls.append(1) or real(s))
    again = figures.Overview(open_store(tmp_path / "s"))
    pd.testing.assert_frame_equal(again.daily_table(), first)
    assert again.assets == ["BTC", "ETH"] and calls == []
    store.append_liquidations(liqs(50, span="1D", start="2025-03-20", seed=5, symbols=("SOLUSDT",)),
                              source="file:b.csv")
    later = figures.Overview(open_store(tmp_path / "s"))
    assert later.daily_table()["count"].sum() == 550 and calls == [1]
    assert later.assets == ["BTC", "ETH", "SOL"]


def test_a_pan_reads_only_what_came_into_view(big, monkeypatch):
    """Events the shown part holds are kept; only the span that came into view is read, and the result
    equals a part read from scratch."""
    store, full = big
    windows = StoreWindows(store, budget=BUDGET)
    start = T0 + pd.Timedelta("10D")
    held = windows.load(start, start + pd.Timedelta("1D"))
    reads = []
    real = store._liq_read
    monkeypatch.setattr(store, "_liq_read", lambda a, b, **kw: reads.append((a, b)) or real(a, b, **kw))
    later = start + pd.Timedelta("1D12h")
    moved = windows.load(later, later + pd.Timedelta("1D"), held=held)
    assert reads == [(held.part.loaded[1], later + pd.Timedelta("2D"))]
    monkeypatch.setattr(store, "_liq_read", real)
    fresh = windows.load(later, later + pd.Timedelta("1D"))
    assert moved.part.loaded == fresh.part.loaded
    cols = ["ts", "exchange", "symbol", "side", "price", "qty", "notional_usd"]
    pd.testing.assert_frame_equal(moved.liquidations.frame[cols].astype({c: str for c in ("exchange", "symbol", "side")}),
                                  fresh.liquidations.frame[cols].astype({c: str for c in ("exchange", "symbol", "side")}))
    key = fresh.prices.find("BTC", "binance")
    pd.testing.assert_frame_equal(moved.prices.candles(key), fresh.prices.candles(key))
    same_figures(moved.summary(later, later + pd.Timedelta("1D")), full.summary(later, later + pd.Timedelta("1D")))
