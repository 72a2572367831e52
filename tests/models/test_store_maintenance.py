"""Keeping a store fast under the recorder's many small commits.

(a) Rollups are refreshed incrementally: an append merges the rollup of the added files into the held one,
a replacement recomputes only the days its files touch, anything else (a compaction, a rollup this process
did not write) recomputes the partition -- and after every one of them the rollup equals a full recompute
from the raw rows. (b) Background maintenance compacts small files, checkpoints and vacuums with a safe
retention: fewer files, the same rows and totals, a reader holding an older snapshot still reads; and a
process that merges, compacts, checkpoints and reads always exits 0.
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from liqscope.models.store import Batch, delta_io, figures, open_store, rollups
from liqscope.models.store.tables import LIQ, ROLLUPS, TABLES
from store_testutil import liqs

WINDOW = (pd.Timestamp("2025-05-01", tz="UTC"), pd.Timestamp("2025-07-01", tz="UTC"))
FULL_COMPUTE = rollups.compute  # the spies below wrap the module's
KEYS = ["level", "exchange", "month", "bucket", "symbol", "asset", "side", "source"]


def assert_rollups_exact(store) -> None:
    """Every rollup partition is current and equals the rollup computed from its raw rows."""
    by_part: dict = {}
    for f in store._files(LIQ):
        by_part.setdefault((f.partition["exchange"], f.partition["month"]), []).append(f)
    fps = {k: rollups.fingerprint(v) for k, v in by_part.items()}
    held = delta_io.read(store.location, TABLES[ROLLUPS], store._files(ROLLUPS))
    good, missing = rollups.valid_rows(held, fps)
    assert not missing
    for (exchange, month), files in by_part.items():
        raw = delta_io.read(store.location, TABLES[LIQ], files,
                            columns=["ts", "symbol", "asset", "side", "source", "notional_usd"])
        want = FULL_COMPUTE(raw, exchange, month, "", "").to_pandas().sort_values(KEYS).reset_index(drop=True)
        mine = good.filter(pa.compute.and_(pa.compute.equal(good.column("exchange"), exchange),
                                           pa.compute.equal(good.column("month"), month)))
        got = mine.to_pandas().sort_values(KEYS).reset_index(drop=True)
        assert len(got) == len(want)
        for c in KEYS:
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c
        assert got["count"].tolist() == want["count"].tolist()
        assert got["max_usd"].tolist() == want["max_usd"].tolist()
        assert got["notional_usd"].to_numpy() == pytest.approx(want["notional_usd"].to_numpy(), rel=1e-12)


class Spy:
    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in ("_added", "_incremental", "compute"):
            real = getattr(rollups, name)
            monkeypatch.setattr(rollups, name, self._wrap(name, real))

    def _wrap(self, name, fn):
        def call(*a, **k):
            self.calls.append(name)
            return fn(*a, **k)
        return call

    def take(self) -> list[str]:
        out, self.calls = self.calls, []
        return out


def test_recorder_appends_merge_into_the_rollup(tmp_path, monkeypatch):
    store = open_store(tmp_path)
    store.append_liquidations(liqs(400, start="2025-05-20", span="10D", seed=1), source="binance-ws")
    spy = Spy(monkeypatch)
    for i in range(6):  # a recorder: small batches, some across midnight and into June
        store.append_liquidations(liqs(30, start=pd.Timestamp("2025-05-31T23:59:58") + pd.Timedelta(seconds=i),
                                       span="3s", seed=10 + i), source="binance-ws")
        assert "_added" in spy.take()
        assert_rollups_exact(store)
    got = figures.summary(store, *WINDOW)
    raw = store.load_window(*WINDOW).summary(*WINDOW)
    assert got["count"] == raw["count"] == 400 + 180
    assert got["total_usd"] == pytest.approx(raw["total_usd"], rel=1e-12)


def test_a_replacement_recomputes_only_the_days_it_touches(tmp_path, monkeypatch):
    store = open_store(tmp_path)
    for i in range(10):  # a file per day, as a recorder's commits make them
        store.append_liquidations(liqs(40, start=f"2025-05-1{i}", span="1D", seed=i), source="binance-ws")
    spy = Spy(monkeypatch)
    day = store.liquidations("2025-05-12", "2025-05-13").frame
    keep = day.iloc[::2].drop(columns=["source"])
    store.replace_liquidations(keep, exchanges="binance", start="2025-05-12", end="2025-05-13",
                               source="binance-ws", sources=["binance-ws"])
    assert spy.take() == ["_incremental", "compute"]  # the rewritten files' days only
    assert_rollups_exact(store)
    assert len(store.liquidations()) == 400 - (len(day) - len(keep))


def test_a_compaction_or_a_foreign_rollup_recomputes_the_partition(tmp_path, monkeypatch):
    import deltalake

    store = open_store(tmp_path)
    for i in range(10):  # ten days: more than an incremental refresh recomputes
        store.append_liquidations(liqs(50, start=f"2025-05-1{i}", span="1D", seed=i), source="binance-ws")
    deltalake.DeltaTable(str(tmp_path / LIQ)).optimize.compact()
    spy = Spy(monkeypatch)
    assert store.rebuild_rollups() == 1
    assert spy.take() == ["compute"]  # the whole month: the compaction rewrote every file
    assert_rollups_exact(store)
    monkeypatch.setattr(rollups, "_LISTINGS", type(rollups._LISTINGS)())  # another process wrote the rollup
    store.append_liquidations(liqs(20, start="2025-05-20", span="1D", seed=9), source="binance-ws")
    assert spy.take() == ["compute"]
    assert_rollups_exact(store)


def test_a_crash_before_the_rollup_then_appends_stay_exact(tmp_path, monkeypatch):
    store = open_store(tmp_path)
    store.append_liquidations(liqs(200, start="2025-05-10", span="5D", seed=1), source="binance-ws")
    with monkeypatch.context() as m:
        m.setattr(rollups, "refresh", lambda loc, parts: 0)
        store.append_liquidations(liqs(20, start="2025-05-12", span="1D", seed=2), source="binance-ws")
    batch = Batch()
    batch.add_liquidations(liqs(20, start="2025-05-13", span="1D", seed=3), source="tardis")
    store.commit(batch)
    assert_rollups_exact(store)
