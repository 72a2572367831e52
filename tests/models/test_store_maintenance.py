"""Keeping a store fast under the recorder's many small commits.

(a) Rollups are refreshed incrementally: an append merges the rollup of the added files into the held one,
a replacement recomputes only the days its files touch, anything else (a compaction, a rollup this process
did not write) recomputes the partition -- and after every one of them the rollup equals a full recompute
from the raw rows. (b) Background maintenance compacts small files, checkpoints and vacuums with a safe
retention: fewer files, the same rows and totals, a reader holding an older snapshot still reads; and a
process that merges, compacts, checkpoints and reads always exits 0.
"""
from __future__ import annotations

import textwrap

import pandas as pd
import pyarrow as pa
import pytest

from liqscope.models.store import Batch, delta_io, figures, listings, maintenance, open_store, rollups
from liqscope.models.store.tables import LIQ, ROLLUPS, TABLES
from store_testutil import candles, liqs

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
    monkeypatch.setattr(listings, "_LISTINGS", type(listings._LISTINGS)())  # another process wrote the rollup
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


# -- (b) compaction, checkpoints, vacuum ---------------------------------------------------------------------
def _many_commits(root, n: int = 30):
    store = open_store(root)
    for i in range(n):  # a recorder's small commits over two months
        store.append_liquidations(liqs(20, start=pd.Timestamp("2025-05-25") + pd.Timedelta(hours=9 * i), span="1h",
                                       seed=i), source="binance-ws")
    for i in range(6):
        store.append_candles(candles(30, start=str(pd.Timestamp("2025-05-30") + pd.Timedelta(hours=i))),
                             exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    return store


def _state(store):
    frame = store.liquidations(counted=False).frame.sort_values(["ts", "symbol", "price"]).reset_index(drop=True)
    return frame, figures.summary(store, *WINDOW), store.candles("binance", "BTCUSDT", "1m")


def test_maintenance_folds_small_files_keeps_rows_and_checkpoints(tmp_path):
    import deltalake

    store = _many_commits(tmp_path)
    rows, summary, bars = _state(store)
    old_version = deltalake.DeltaTable(str(tmp_path / LIQ)).version()
    before = {k: len(store._files(k)) for k in (LIQ, "candles")}
    reports = {r.table: r for r in maintenance.maintain(store.location)}
    liq = reports[LIQ]
    assert not any(r.errors for r in reports.values())
    assert liq.files_before == before[LIQ] >= 30 and liq.files_after == 2  # one per (exchange, month)
    assert reports["candles"].files_after < before["candles"]
    assert liq.checkpoint == liq.version
    assert list((tmp_path / LIQ / "_delta_log").glob(f"{liq.version:020d}.checkpoint.parquet"))
    reopened = open_store(tmp_path)
    got_rows, got_summary, got_bars = _state(reopened)
    pd.testing.assert_frame_equal(got_rows, rows)
    pd.testing.assert_frame_equal(got_bars, bars)
    assert got_summary["count"] == summary["count"]
    assert got_summary["total_usd"] == pytest.approx(summary["total_usd"], rel=1e-12)
    assert_rollups_exact(reopened)  # the compacted partitions' rollups were recomputed, not left stale
    assert not figures.split(reopened, *WINDOW).raw or all(only is None for *_w, only in figures.split(
        reopened, *WINDOW).raw)
    # a reader that listed the older snapshot before the maintenance still reads it: vacuum kept its files
    old = deltalake.DeltaTable(str(tmp_path / LIQ), version=old_version)
    data = delta_io.files(reopened.location, TABLES[LIQ], old)
    assert len(data) == before[LIQ] and delta_io.read(reopened.location, TABLES[LIQ], data).num_rows == len(rows)
    assert liq.vacuumed == 0
    again = {r.table: r for r in maintenance.maintain(store.location)}
    assert not again[LIQ].compacted and again[LIQ].files_after == 2  # nothing left to do


def test_vacuum_past_the_retention_deletes_the_replaced_files(tmp_path):
    store = _many_commits(tmp_path, 12)
    rows, summary, _ = _state(store)
    maintenance.maintain(store.location)
    reports = {r.table: r for r in maintenance.maintain(store.location, retention_hours=0)}
    assert reports[LIQ].vacuumed >= 12
    on_disk = list((tmp_path / LIQ).rglob("*.parquet"))
    assert len([p for p in on_disk if "_delta_log" not in p.parts]) == reports[LIQ].files_after
    pd.testing.assert_frame_equal(_state(open_store(tmp_path))[0], rows)


def test_the_scheduler_runs_off_the_committing_thread(tmp_path):
    import threading
    import time

    store = _many_commits(tmp_path, 8)
    seen = []
    real = maintenance.maintain

    def spy(*a, **k):
        seen.append(threading.current_thread().name)
        return real(*a, **k)
    sched = maintenance.Scheduler(store.location, every_commits=5, every_seconds=3600)
    try:
        maintenance.maintain = spy
        for _ in range(4):
            sched.committed()
        assert sched.runs == 0 and not seen  # not due yet
        sched.committed()
        deadline = time.monotonic() + 120
        while sched.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sched.stop()
        maintenance.maintain = real
    assert sched.runs == 1 and seen == ["liqscope-store-maintenance"]
    assert {r.table: r for r in sched.last}[LIQ].files_after == 1  # eight files of May folded into one


def test_a_failing_pass_is_reported_and_the_next_one_runs(tmp_path, monkeypatch):
    store = _many_commits(tmp_path, 8)
    rows = _state(store)[0]
    with monkeypatch.context() as m:
        def broken(self, *a, **k):
            raise OSError("disk on fire (injected)")
        m.setattr(type(delta_io.open_table(store.location, TABLES[LIQ]).optimize), "compact", broken)
        reports = {r.table: r for r in maintenance.maintain(store.location)}
    assert reports[LIQ].errors and "disk on fire" in reports[LIQ].errors[0] and not reports[LIQ].compacted
    pd.testing.assert_frame_equal(_state(open_store(tmp_path))[0], rows)
    again = {r.table: r for r in maintenance.maintain(store.location)}
    assert not again[LIQ].errors and again[LIQ].files_after == 1


def test_store_compact_command(tmp_path, capsys):
    from store_testutil import run_cli

    _many_commits(tmp_path, 10)
    code, out, err = run_cli(capsys, "--data-dir", tmp_path, "store", "compact")
    assert code == 0, err
    assert "liquidations: " in out and "checkpointed" in out
    code, out, err = run_cli(capsys, "--data-dir", tmp_path, "store", "rebuild-rollups")
    assert code == 0 and "rebuilt 0" in out, (out, err)


EXIT_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import pandas as pd
    from store_testutil import liqs
    from liqscope.models.store import open_store, maintenance
    store = open_store({root!r})
    for i in range(4):
        store.append_liquidations(liqs(50, start="2025-05-1" + str(i), span="1D", seed=i), source="binance-ws")
    keep = store.liquidations("2025-05-11", "2025-05-12").frame.iloc[::2].drop(columns=["source"])
    store.replace_liquidations(keep, exchanges="binance", start="2025-05-11", end="2025-05-12",
                               source="binance-ws", sources=["binance-ws"])  # a MERGE
    reports = maintenance.maintain(store.location, min_files=2, checkpoint_every=1)
    assert all(not r.errors for r in reports), reports
    print(len(open_store({root!r}).load_window("2025-05-01", "2025-06-01").liquidations))
""")


def test_merge_compact_checkpoint_read_always_exits_cleanly(tmp_path):
    """delta-rs and pyarrow threads once aborted the interpreter at exit ('terminate called without an active
    exception'): ten processes that merge, compact, checkpoint and read all exit 0."""
    import subprocess
    import sys
    from pathlib import Path

    tests = str(Path(__file__).parent)
    for i in range(10):
        root = tmp_path / f"s{i}"
        proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT.format(tests=tests, root=str(root))],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (i, proc.returncode, proc.stderr[-2000:])
        assert "terminate called" not in proc.stderr
        assert int(proc.stdout.split()[-1]) > 150
