"""The store's per-minute liquidation table (minute_rollups.py) and cascades read through it: the same
per-minute figures as the counted raw rows, after appends, replacements, stale partitions and with
several sources on one exchange."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqscope.models import cascades as C
from liqscope.models.cascade_search import find_cascades
from liqscope.models.cascades_store import store_minutes
from liqscope.models.store import Batch, open_store
from liqscope.models.store.tables import LIQ, MINUTES

from store_testutil import liqs


def _events(n: int, start: str, seed: int, exchange: str = "binance") -> pd.DataFrame:
    return liqs(n, start=start, seed=seed, exchange=exchange)


def _same(got: C.Minutes, want: C.Minutes) -> None:
    assert got.names == want.names
    assert np.array_equal(got.asset, want.asset)
    assert np.array_equal(got.minute, want.minute)
    assert np.array_equal(got.count, want.count)  # events exactly
    # USD per minute is stored as float32: within its precision
    assert np.allclose(got.usd, want.usd, rtol=1e-6, atol=1e-6)


def _counted_minutes(store) -> C.Minutes:
    return C.minutes_from_frame(store.liquidations().frame)


def _partitions(store) -> dict[tuple[str, str], set[tuple[str, str]]]:
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for f in store._files(MINUTES):
        p = f.partition
        out.setdefault((p["exchange"], p["month"]), set()).add((p["liq_files"], p["writer"]))
    return out


def _fresh(store) -> bool:
    """Every liquidation partition has minute rows of its current fingerprint, and only those."""
    from liqscope.models.store import rollups

    by_part: dict[tuple[str, str], list] = {}
    for f in store._files(LIQ):
        by_part.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    held = _partitions(store)
    return all({fp for fp, _w in held.get(k, set())} == {rollups.fingerprint(v)} for k, v in by_part.items())


def test_kept_current_through_appends_and_replacements(tmp_path):
    store = open_store(tmp_path / "s")
    store.append_liquidations(pd.concat([_events(400, "2025-05-09", 1), _events(300, "2025-05-09", 2, "okx"),
                                         _events(200, "2025-06-02", 3)]), source="file:a.csv")
    assert _fresh(store)
    _same(store_minutes(store), _counted_minutes(store))
    # an append into the same month (the recorder's case: the old rows plus the added file's)
    store.append_liquidations(_events(150, "2025-05-09T05:00", 4), source="binance-ws")
    assert _fresh(store)
    _same(store_minutes(store), _counted_minutes(store))
    # a replacement of part of a day (rewrites files: only the touched days are recomputed)
    repl = _events(50, "2025-05-09T02:00", 5)
    repl = repl[repl["ts"] < pd.Timestamp("2025-05-09T03:00Z")]
    assert len(repl)
    store.replace_liquidations(repl, exchanges="binance", start="2025-05-09T02:00Z", end="2025-05-09T03:00Z")
    assert _fresh(store)
    _same(store_minutes(store), _counted_minutes(store))
    assert all(len(v) == 1 for v in _partitions(store).values())  # one fingerprint, one writer each


def test_stale_or_missing_minutes_read_raw(tmp_path):
    """Minutes a commit left behind (deferred, or a store from before the table) are never used: the
    raw rows are read for those months, and `store rebuild-rollups` brings them back."""
    store = open_store(tmp_path / "s")
    store.append_liquidations(_events(300, "2025-05-09", 1), source="file:a.csv")
    batch = Batch()
    batch.add_liquidations(_events(200, "2025-05-09T06:00", 2), source="file:b.csv")
    store.commit(batch, defer_rollups=True)
    assert not _fresh(store)
    _same(store_minutes(store), _counted_minutes(store))
    store.refresh_deferred()
    assert _fresh(store)
    _same(store_minutes(store), _counted_minutes(store))


def test_end_inside_a_minute_counts_only_events_before_it(tmp_path):
    store = open_store(tmp_path / "s")
    frame = _events(600, "2025-05-09", 1)
    store.append_liquidations(frame, source="file:a.csv")
    end = pd.Timestamp("2025-05-09T00:04:30Z")
    counted = store.liquidations().frame
    want = C.minutes_from_frame(counted[counted["ts"] < end])
    _same(store_minutes(store, end=end), want)


def test_a_higher_precedence_source_counts_once(tmp_path):
    """Tardis and the recorder hold the same events: minutes count each once (the minute rows of an
    exchange where one source outranks another are not used; its raw rows are counted)."""
    store = open_store(tmp_path / "s")
    frame = _events(400, "2025-05-09", 1)
    store.append_liquidations(frame, source="binance-ws")
    store.append_liquidations(frame, source="tardis")
    got = store_minutes(store)
    assert int(got.count.sum()) == 400
    _same(got, _counted_minutes(store))


def test_assets_and_warmup_window(tmp_path):
    store = open_store(tmp_path / "s")
    store.append_liquidations(pd.concat([_events(300, "2025-03-01", 1), _events(300, "2025-05-09", 2)]),
                              source="file:a.csv")
    asset = str(store.liquidations().frame["asset"].iloc[0])
    got = store_minutes(store, assets=[asset], warmup_from="2025-05-09")
    counted = store.liquidations().frame
    keep = (counted["asset"].astype(str) == asset) & (counted["ts"] >= pd.Timestamp("2025-05-02T00:00Z"))
    _same(got, C.minutes_from_frame(counted[keep]))


@pytest.mark.parametrize("exchange", ["binance"])
def test_find_cascades_on_store_uses_the_minutes(tmp_path, exchange):
    """Cascades found over the minute table equal those found over the events in memory."""
    from test_cascades import _dataset, synthetic

    frame, _ = synthetic(12, days=9, n_single=3, n_market=2)
    ds = _dataset(frame)
    store = open_store(tmp_path / "store")
    store.append_liquidations(ds.liquidations.frame, source="file:synthetic")
    assert _fresh(store)
    mem = find_cascades(ds)
    disk = find_cascades(store)
    assert mem and [(c.start, c.end, c.assets) for c in mem] == [(c.start, c.end, c.assets) for c in disk]
    for a, b in zip(mem, disk):
        assert a.total_usd == pytest.approx(b.total_usd, abs=0.01)
        assert a.count == b.count


def test_a_source_outranked_on_some_days_only(tmp_path):
    """The recorder holds three days, Tardis the middle one: the minutes Tardis covers are counted from the
    raw rows (once), the others from the minute rows."""
    store = open_store(tmp_path / "s")
    ws = pd.concat([_events(300, day, i) for i, day in enumerate(["2025-05-08", "2025-05-09", "2025-05-10"])])
    store.append_liquidations(ws, source="binance-ws")
    mid = ws[(ws["ts"] >= pd.Timestamp("2025-05-09T00:00Z")) & (ws["ts"] < pd.Timestamp("2025-05-10T00:00Z"))]
    batch = Batch()
    batch.add_liquidations(mid, source="tardis",
                           coverage_span=(pd.Timestamp("2025-05-09T00:00Z"), pd.Timestamp("2025-05-10T00:00Z")))
    store.commit(batch)
    got = store_minutes(store)
    assert int(got.count.sum()) == len(ws)
    _same(got, _counted_minutes(store))


def test_cli_says_when_minutes_are_missing(tmp_path, capsys):
    """A store written before the per-minute table (or whose refresh was deferred and never run) still gives
    the right cascades, slower, and `liqscope cascades` says so and what builds the table."""
    from store_testutil import run_cli

    store = open_store(tmp_path / "s")
    batch = Batch()
    batch.add_liquidations(_events(300, "2025-05-09", 1), source="file:a.csv")
    store.commit(batch, defer_rollups=True)
    code, _out, err = run_cli(capsys, "--data-dir", store.root, "cascades")
    assert code == 0, err
    assert "no current per-minute table" in err and "liqscope store rebuild-rollups" in err
    code, _out, err = run_cli(capsys, "--data-dir", store.root, "store", "rebuild-rollups")
    assert code == 0, err
    code, _out, err = run_cli(capsys, "--data-dir", store.root, "cascades")
    assert code == 0 and "per-minute" not in err


def test_a_cascade_is_the_same_whatever_window_asks_for_it(tmp_path):
    """The Events panel asks for the cascades of the view; the CLI for --start/--end: a cascade starting in
    the window is found whole, with the figures all history gives it, even when the window ends inside it."""
    from test_cascades import _dataset, synthetic

    frame, _ = synthetic(12, days=9, n_single=3, n_market=2)
    store = open_store(tmp_path / "store")
    store.append_liquidations(_dataset(frame).liquidations.frame, source="file:synthetic")
    everything = find_cascades(store)
    for c in everything[:3]:
        got = find_cascades(store, start=c.start - pd.Timedelta(hours=1), end=c.start + pd.Timedelta(minutes=1))
        same = [g for g in got if g.start == c.start]
        assert same and (same[0].end, same[0].assets, same[0].count) == (c.end, c.assets, c.count)
        assert same[0].total_usd == pytest.approx(c.total_usd, abs=0.01)
