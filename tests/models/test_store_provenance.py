"""Where each stored liquidation came from, and one count per event where sources overlap.

The issue's acceptance test: the same liquidation fed from the Binance ``forceOrder`` stream (``ap``,
``z``) and from a Tardis file (``price``, ``amount``) is one event. Both rows are stored (nothing is
thrown away); the precedence decides which is counted. And windowed figures -- daily rollups for whole
days plus raw rows for the edges -- equal the raw rows' figures exactly, whatever the window, sources and
precedence (a hypothesis property).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqscope.models.connectors.parsers import events_frame, parse_binance
from liqscope.models.importers import import_files
from liqscope.models.store import Batch, figures, open_store, rollups
from store_testutil import liqs

T_MS = 1568014460893  # 2019-09-09T07:34:20.893Z
# Binance's documented forceOrder example: filled 0.014 BTC at an average 9910
FRAME = {"e": "forceOrder", "E": T_MS + 7, "o": {
    "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910", "ap": "9910", "X": "FILLED",
    "l": "0.014", "z": "0.014", "T": T_MS}}
# The same liquidation in a Tardis.dev file: exchange timestamp in µs, the liquidation order's side
TARDIS_NAME = "binance-futures_liquidations_2019-09-09_PERPETUALS.csv"
TARDIS_CSV = ("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
              f"binance-futures,BTCUSDT,{T_MS * 1000},{T_MS * 1000 + 7123},,sell,9910,0.014\n")
DAY = (pd.Timestamp("2019-09-09", tz="UTC"), pd.Timestamp("2019-09-10", tz="UTC"))


def from_stream(store):
    df = events_frame(parse_binance(FRAME))
    assert len(df) == 1 and df["price"].iloc[0] == 9910 and df["qty"].iloc[0] == 0.014  # ap and z
    return store.append_liquidations(df, source="binance-ws")


def from_tardis(store, tmp_path: Path):
    f = tmp_path / TARDIS_NAME
    f.write_text(TARDIS_CSV)
    (report,) = import_files([f], store=store)
    return report


def sources(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["source"].astype(str))


@pytest.mark.parametrize("first", ["stream", "tardis"])
def test_the_same_liquidation_from_the_stream_and_a_tardis_file_is_one_event(tmp_path, first):
    store = open_store(tmp_path / "store")
    if first == "stream":
        assert from_stream(store).new == 1
        from_tardis(store, tmp_path)
    else:
        from_tardis(store, tmp_path)
        assert from_stream(store).new == 1
    every = store.liquidations(counted=False).frame
    assert len(every) == 2 and sources(every) == ["binance-ws", "tardis"]  # both kept
    a, b = every.iloc[0], every.iloc[1]
    for col in ("ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"):
        assert a[col] == b[col], col  # the two parsers agree on every field
    assert (a["side"], a["notional_usd"]) == ("long", pytest.approx(138.74))  # a SELL order closes a long

    counted = store.liquidations().frame
    assert len(counted) == 1 and sources(counted) == ["tardis"]  # a complete file outranks the stream
    assert len(store.load_window(*DAY).liquidations) == 1
    assert figures.summary(store, *DAY)["count"] == 1

    info = store.source_info().set_index("source")
    assert sorted(info.index) == ["binance-ws", "tardis"]
    assert (info.loc["tardis", "rows"], info.loc["tardis", "counted"]) == (1, 1)
    assert (info.loc["binance-ws", "rows"], info.loc["binance-ws", "counted"]) == (1, 0)
    assert info.loc["tardis", "rank"] < info.loc["binance-ws", "rank"]

    store.set_precedence(["binance-ws"])
    for s in (store, open_store(tmp_path / "store")):  # kept in store.json
        counted = s.liquidations().frame
        assert len(counted) == 1 and sources(counted) == ["binance-ws"]
        assert s.liquidations(counted=False).frame.shape[0] == 2
        info = s.source_info().set_index("source")
        assert (info.loc["binance-ws", "counted"], info.loc["tardis", "counted"]) == (1, 0)
    assert json.loads((tmp_path / "store" / "store.json").read_text())["precedence"] == ["binance-ws"]


def test_importing_the_tardis_file_again_adds_nothing(tmp_path):
    store = open_store(tmp_path / "store")
    from_stream(store)
    assert from_tardis(store, tmp_path).new == 1
    assert from_tardis(store, tmp_path).new == 0
    assert from_stream(store).new == 0
    assert len(store.liquidations(counted=False)) == 2 and len(store.liquidations()) == 1


def test_a_tardis_day_file_covers_its_whole_day(tmp_path):
    """A stream event of a day whose Tardis file does not hold it is not counted on top of the file: the
    file states its whole UTC day (complete there), so the stream counts only outside it."""
    store = open_store(tmp_path / "store")
    from_tardis(store, tmp_path)
    later = events_frame(parse_binance({**FRAME, "o": {**FRAME["o"], "T": T_MS + 3_600_000, "z": "0.02"}}))
    store.append_liquidations(later, source="binance-ws")
    next_day = events_frame(parse_binance({**FRAME, "o": {**FRAME["o"], "T": T_MS + 86_400_000}}))
    store.append_liquidations(next_day, source="binance-ws")
    assert sources(store.liquidations(*DAY).frame) == ["tardis"]
    assert sources(store.liquidations().frame) == ["binance-ws", "tardis"]  # the next day: only the stream


def test_a_replay_scoped_to_the_stream_never_deletes_tardis_rows(tmp_path):
    store = open_store(tmp_path / "store")
    from_tardis(store, tmp_path)
    from_stream(store)
    # what the recorder's journal replay does: replace the stream's rows of a span, and only those
    batch = Batch()
    batch.replace_liquidations(events_frame([]), exchanges=["binance"], start=DAY[0], end=DAY[1],
                               source="binance-ws", sources=["binance-ws"])
    (res,) = store.commit(batch)
    assert (res.removed, res.added) == (1, 0)
    assert sources(store.liquidations(counted=False).frame) == ["tardis"]
    # and putting it back
    res = store.replace_liquidations(events_frame(parse_binance(FRAME)), exchanges="binance", start=DAY[0],
                                     end=DAY[1], source="binance-ws", sources=["binance-ws"])
    assert (res.removed, res.added) == (0, 1)
    assert sources(store.liquidations(counted=False).frame) == ["binance-ws", "tardis"]
    # a replacement row of another source than the scope's is refused before anything is written
    from liqscope.models.schema import SchemaError
    with pytest.raises(SchemaError, match="outside"):
        store.replace_liquidations(events_frame(parse_binance(FRAME)), exchanges="binance", start=DAY[0],
                                   end=DAY[1], source="tardis", sources=["binance-ws"])


def test_deleting_the_tardis_rows_lets_the_stream_count_again(tmp_path, capsys):
    """Deleted rows no longer cover their time: once the Tardis day is deleted (`liqscope store delete`), the live
    row of the same liquidation is counted -- not hidden by a coverage claim with no rows behind it."""
    from store_testutil import run_cli

    store = open_store(tmp_path / "store")
    from_stream(store)
    from_tardis(store, tmp_path)
    assert sources(store.liquidations().frame) == ["tardis"]
    code, out, err = run_cli(capsys, "--data-dir", store.root, "store", "delete", "--exchange", "binance",
                             "--start", "2019-09-09T07:00", "--end", "2019-09-09T08:00", "--yes")
    assert code == 0, err
    store = open_store(store.root)
    assert sources(store.liquidations(counted=False).frame) == []  # the delete took both sources' rows
    from_stream(store)  # the recorder's row comes back (a replay, say)
    assert sources(store.liquidations().frame) == ["binance-ws"]  # counted: nothing covers it any more
    cov = store.coverage()
    # what is left of the Tardis day: its hours before and after the deleted one
    a, b = cov.spans[("tardis", "binance", "BTCUSDT")]
    assert [(pd.Timestamp(x, unit="us", tz="UTC"), pd.Timestamp(y, unit="us", tz="UTC")) for x, y in zip(a, b)] == [
        (DAY[0], pd.Timestamp("2019-09-09T07:00", tz="UTC")), (pd.Timestamp("2019-09-09T08:00", tz="UTC"), DAY[1])]


def test_the_recorders_journal_replay_keeps_the_tardis_row(tmp_path):
    from liqscope.models.connectors import journal as jr

    store = open_store(tmp_path / "store")
    from_tardis(store, tmp_path)
    root = tmp_path / "store" / "journal"
    j = jr.Journal(root)
    j.append("binance", [{"t": T_MS + 40, "k": "msg", "d": json.dumps(FRAME)}])
    j.close()
    for _ in range(2):  # a replay, and the same replay again
        jr.replay(store, root)
        every = store.liquidations(counted=False).frame
        assert sources(every) == ["binance-ws", "tardis"]
        assert sources(store.liquidations().frame) == ["tardis"]


# -- windowed figures are exact: a property over random windows of random stores ---------------------------
def _with_copies(df: pd.DataFrame, frac: float, seed: int) -> pd.DataFrame:
    """``df`` plus some of its own rows again (what a second source sees of the same events)."""
    return df.sample(frac=frac, random_state=seed)


def _store(root: Path, seed: int):
    """Two exchanges, two sources each, overlapping in time: a vendor file that states its days, a live
    stream that saw part of the same events plus others, across a month boundary; one store with a stale
    rollup partition, one that prefers the stream."""
    rng = np.random.default_rng(seed)
    store = open_store(root)
    vendor = liqs(int(rng.integers(200, 500)), start="2025-05-20", span="12D", seed=seed)
    live = pd.concat([_with_copies(vendor, 0.6, seed),
                      liqs(int(rng.integers(100, 300)), start="2025-05-15", span="25D", seed=seed + 1)],
                     ignore_index=True)
    bybit_file = liqs(int(rng.integers(50, 200)), start="2025-05-25", span="6D", seed=seed + 2, exchange="bybit",
                      symbols=("BTCUSDT",))
    bybit_live = pd.concat([_with_copies(bybit_file, 0.5, seed),
                            liqs(80, start="2025-05-18", span="20D", seed=seed + 3, exchange="bybit",
                                 symbols=("BTCUSDT", "SOLUSDT"))], ignore_index=True)
    batch = Batch()
    batch.add_liquidations(vendor, source="tardis", coverage_span=(pd.Timestamp("2025-05-20", tz="UTC"),
                                                                  pd.Timestamp("2025-06-01", tz="UTC")))
    batch.add_liquidations(bybit_file, source="file:bybit.csv")
    store.commit(batch)
    store.append_liquidations(live, source="binance-ws")
    store.append_liquidations(bybit_live, source="bybit-ws")
    if seed % 3 == 1:
        store.set_precedence(["binance-ws"])
    if seed % 3 == 2:  # a crash between a commit and its rollups: one partition's rollup is stale
        with pytest.MonkeyPatch.context() as m:
            m.setattr(rollups, "refresh", lambda loc, parts: 0)
            store.append_liquidations(liqs(40, start="2025-06-02", span="5D", seed=seed + 4), source="binance-ws")
    return store


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return [_store(tmp_path_factory.mktemp("prop") / f"s{seed}", seed) for seed in (0, 1, 2)]


FIELDS = ("count", "total_usd", "long_usd", "short_usd", "by_exchange", "by_asset")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2),
       start_min=st.integers(0, 30 * 24 * 60),
       length_min=st.integers(2 * 24 * 60 + 1, 28 * 24 * 60),
       exchange=st.sampled_from([None, "binance", "bybit"]),
       side=st.sampled_from([None, "long", "short"]))
def test_windowed_figures_equal_the_raw_rows(stores, which, start_min, length_min, exchange, side):
    store = stores[which]
    start = pd.Timestamp("2025-05-12", tz="UTC") + pd.Timedelta(minutes=start_min)
    end = start + pd.Timedelta(minutes=length_min)  # longer than two days: rollups for the whole days
    exchanges = None if exchange is None else [exchange]
    got = figures.summary(store, start, end, exchanges=exchanges, side=side)
    want = store.load_window(start, end, exchanges=exchanges).summary(start, end, exchanges=exchanges, side=side)
    assert got["count"] == want["count"]
    for key in ("total_usd", "long_usd", "short_usd"):
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-6), key
    for key in ("by_exchange", "by_asset"):
        assert set(got[key]) == set(want[key]) and got[key] == pytest.approx(want[key], rel=1e-12), key
    assert [r["notional_usd"] for r in got["largest"]] == pytest.approx([r["notional_usd"] for r in want["largest"]])


def test_the_property_stores_really_overlap(stores):
    """The stores the property runs on hold duplicated events from two sources, counted once, rollups in use."""
    for store in stores:
        every, counted = store.liquidations(counted=False), store.liquidations()
        assert len(counted) < len(every)
        parts = figures.split(store, pd.Timestamp("2025-05-12", tz="UTC"), pd.Timestamp("2025-06-12", tz="UTC"))
        assert parts.rows.num_rows > 0
    assert any(only for *_w, only in figures.split(stores[2], pd.Timestamp("2025-06-01", tz="UTC"),
                                                   pd.Timestamp("2025-06-12", tz="UTC")).raw)  # the stale one
