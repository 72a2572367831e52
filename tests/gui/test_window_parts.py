"""A store larger than the memory budget in the real window: it opens on a part, and every pan or zoom
that leaves what the part answers exactly reads the part that does, so the headline, the panels and the
CSV export of the view equal ``liqscope summary`` for it (models/store/window.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from liqscope.gui.app import settle
from liqscope.gui.loader import read_store
from liqscope.models.store import figures, open_store

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from store_testutil import candles, liqs  # noqa: E402

T0 = pd.Timestamp("2025-03-01", tz="UTC")
CENT = 0.005  # the same rows summed in another order differ by float noise, far below a cent
TARDIS = Path(__file__).parents[1] / "models" / "fixtures" / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"


@pytest.fixture
def big_store(_isolated_data_dir, monkeypatch):
    monkeypatch.setenv("LIQSCOPE_RAW_BUDGET", "3000")
    store = open_store(_isolated_data_dir)
    store.append_liquidations(liqs(20000, span="60D", start="2025-03-01"), source="file:a.csv")
    store.append_liquidations(liqs(5000, span="60D", start="2025-03-01", exchange="okx", seed=3), source="okx-ws")
    store.append_candles(candles(60 * 24 * 30, start="2025-03-01"), exchange="binance", symbol="BTCUSDT",
                         interval="1m", asset="BTC")
    return store


def wait_served(qtbot, w):
    qtbot.waitUntil(lambda: w.served and not w._part_timer.isActive(), timeout=20_000)
    settle(w)


def assert_headline_is_summary(w, store):
    v = w.state.view
    want = figures.summary(store, v.start, v.end, **{k: v for k, v in v.liq_filter().items() if k != "min_notional"},
                           min_notional=v.min_usd, largest=1)
    got = w.headline.figures
    assert not w.headline.pending
    assert got["count"] == want["count"]
    assert got["total_usd"] == pytest.approx(want["total_usd"], abs=CENT)
    assert got["short_usd"] == pytest.approx(want["short_usd"], abs=CENT)
    assert got["by_exchange"].keys() == want["by_exchange"].keys()
    for k, x in want["by_exchange"].items():
        assert got["by_exchange"][k] == pytest.approx(x, abs=CENT)
    assert got["largest"][0]["notional_usd"] == want["largest"][0]["notional_usd"]
    return want


def test_large_store_opens_on_a_part_and_follows_the_view(qtbot, start_window, big_store, tmp_path, monkeypatch):
    store = big_store
    w = start_window(read_store())  # production: placeholder, store read on the loader, swapped in
    assert w.dataset.part is not None and w.dataset.resolution_s == 0
    assert len(w.dataset.liquidations) <= 3000
    day = figures.Overview(store).busiest_day()
    assert (w.state.view.start, w.state.view.end) == day
    assert_headline_is_summary(w, store)

    # "All": too many events for the budget -> whole days as totals, exact for the view
    w.apply_preset(None)
    wait_served(qtbot, w)
    assert w.dataset.resolution_s == 86400
    assert w.liq.bucket >= 86400
    assert_headline_is_summary(w, store)
    # the last-price tag is the window's last close, as the headline's (not the drawn day's, which may
    # run past the window's end)
    v = w.state.view
    assert w.price.last_line.value() == pytest.approx(w.price.window_stats(v.start, v.end).last)
    panel = w.drilldown.open_exchange("okx")
    settle(w)
    panel.refresh()
    want = figures.summary(store, w.state.view.start, w.state.view.end, exchanges=["okx"])
    assert panel.totals.count == want["count"]
    assert panel.totals.total_usd == pytest.approx(want["total_usd"], abs=CENT)

    # the raw CSV of a view held as days is read from the store: every event, once
    import liqscope.gui.export as export

    path = tmp_path / "all.csv"
    monkeypatch.setattr(export, "ask_path", lambda *a, **k: str(path))
    next(a for a in w.exports.csv_menu.actions() if a.objectName() == "export_csv_liquidations").trigger()
    qtbot.waitUntil(path.exists, timeout=20_000)
    qtbot.wait(200)
    rows = pd.read_csv(path)
    everything = figures.summary(store, w.state.view.start, w.state.view.end)
    assert len(rows) == everything["count"] == 25000
    assert rows["notional_usd"].sum() == pytest.approx(everything["total_usd"], abs=CENT)

    # zoom in to six hours: events again, read once the gesture stops; the headline dims meanwhile
    start = T0 + pd.Timedelta("20D3h")
    w.state.update(start=start, end=start + pd.Timedelta(hours=6))
    w.state.flush()
    w._headline_timer.stop()
    w.update_headline()
    assert w.headline.pending
    wait_served(qtbot, w)
    assert w.dataset.resolution_s == 0
    assert_headline_is_summary(w, store)
    # pans inside the held events need no read
    held = w.dataset
    w.state.update(start=start + pd.Timedelta(hours=1), end=start + pd.Timedelta(hours=7))
    w.state.flush()
    assert w.served and w.dataset is held


def test_import_into_a_large_store_keeps_the_view(qtbot, start_window, big_store):
    w = start_window(read_store())
    w.apply_preset(None)
    wait_served(qtbot, w)
    view = w.state.view
    with qtbot.waitSignal(w.loader.loaded, timeout=30_000):
        w.importer.start([str(TARDIS)]).join(30)
    wait_served(qtbot, w)
    assert w.state.view.start <= view.start  # the data now starts earlier: "All" may grow, never jump
    assert w.dataset.part is not None
    assert_headline_is_summary(w, big_store)
