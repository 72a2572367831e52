"""Crash safety of the Delta store: a failure, a kill -9 or interpreter exit never leaves it unreadable,
half a commit, or wrong figures.

Each item of a batch is one Delta commit (the plain liquidation appends of a batch together are one);
rollups are a later commit, trusted only when their fingerprint matches the raw files they were computed
from. So (a) a failure at any write step leaves the last committed snapshot readable and every item
committed before it whole, and figures exact; (b) a process killed at any moment leaves no partial
batch; (c) a process that appends, merges, replaces, compacts and checkpoints exits with status 0 (an
abort at exit -- ``terminate called without an active exception`` -- was once seen with delta-rs and
pyarrow threads).
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqscope.models.store import Batch, StoreError, delta_io, figures, open_store, rollups
from store_testutil import candles, liqs

HERE = Path(__file__).parent
WINDOW = (pd.Timestamp("2025-05-08T07:00Z"), pd.Timestamp("2025-06-20T05:00Z"))  # many whole days, ragged edges


def _flip(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["side"] = out["side"].map({"long": "short", "short": "long"})
    return out


BASE = liqs(300, span="20D", seed=1)                       # binance May
JUNE = liqs(120, start="2025-06-02", span="10D", seed=2)    # binance June
BYBIT = liqs(80, span="20D", seed=3, exchange="bybit")      # bybit May
FIX = (pd.Timestamp("2025-05-12", tz="UTC"), pd.Timestamp("2025-05-15", tz="UTC"))


def _in_fix(df):
    return (df["ts"] >= FIX[0]) & (df["ts"] < FIX[1]) & (df["exchange"] == "binance")


def _base(root: Path):
    store = open_store(root)
    store.append_liquidations(_flip(BASE))  # stored with wrong sides: the batch's replace fixes three days
    store.append_candles(candles(30), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    store.append_gaps(pd.DataFrame({"exchange": ["binance"], "start": ["2025-05-09T00:00Z"],
                                    "end": ["2025-05-09T00:02Z"], "reason": ["ws closed"]}))
    return store


def _items() -> list:
    """The batch, item by item: two appends (one commit), candles, gaps, a replacement."""
    return [
        lambda b: b.add_liquidations(JUNE),
        lambda b: b.add_liquidations(BYBIT),
        lambda b: b.add_candles(candles(30, start="2025-05-09 00:20"), exchange="binance", symbol="BTCUSDT",
                                interval="1m", asset="BTC"),
        lambda b: b.add_gaps(pd.DataFrame({"exchange": ["okx"], "start": ["2025-05-10T00:00Z"],
                                           "end": ["2025-05-10T00:05Z"], "reason": ["timeout"]})),
        lambda b: b.replace_liquidations(BASE[_in_fix(BASE)], exchanges="binance", start=FIX[0], end=FIX[1]),
    ]


def _batch(items) -> Batch:
    batch = Batch()
    for add in items:
        add(batch)
    return batch


def state(store) -> tuple[str, str, str]:
    """What a reader sees: every stored liquidation, the candles, the gaps (digests)."""
    def digest(frame: pd.DataFrame) -> str:
        return hashlib.sha256(frame.to_csv(index=True).encode()).hexdigest()[:16]
    liq = store.liquidations(counted=False).frame
    liq = liq.astype({c: str for c in ("exchange", "symbol", "asset", "side", "source")})
    liq = liq.sort_values(["ts", "exchange", "symbol", "side", "price", "qty"]).reset_index(drop=True)
    return (digest(liq), digest(store.candles("binance", "BTCUSDT", "1m")), digest(store.gaps()))


@pytest.fixture(scope="module")
def prefixes(tmp_path_factory):
    """The base store, and what a reader must see after each whole commit of the batch, in order:
    [nothing, the appends, + candles, + gaps, + the replacement]."""
    root = tmp_path_factory.mktemp("crash") / "base"
    _base(root)
    ref = tmp_path_factory.mktemp("crash") / "ref"
    shutil.copytree(root, ref)
    store = open_store(ref)
    items = _items()
    out = [state(store)]
    for group in (items[:2], items[2:3], items[3:4], items[4:5]):
        store.commit(_batch(group))
        out.append(state(store))
    return root, out


class Faults:
    """Counts calls of the store's write steps; raises at call number ``at`` (None: never)."""

    STEPS = [(delta_io, "append"), (delta_io, "insert_new"), (delta_io, "upsert"), (delta_io, "replace_where"),
             (delta_io, "retrying"), (rollups, "refresh")]

    def __init__(self, monkeypatch, at: int | None):
        self.at, self.calls = at, []
        for module, name in self.STEPS:
            monkeypatch.setattr(module, name, self._wrap(name, getattr(module, name)))

    def _wrap(self, name, fn):
        def step(*a, **k):
            self.calls.append(name)
            if self.at is not None and len(self.calls) - 1 == self.at:
                raise OSError(errno.EIO, f"injected failure at step {self.at} ({name})")
            return fn(*a, **k)
        return step


def _run_failing_at(root: Path, target: Path, monkeypatch, at: int | None) -> list[str]:
    shutil.copytree(root, target)
    store = open_store(target)
    with monkeypatch.context() as m:
        faults = Faults(m, at)
        if at is None:
            store.commit(_batch(_items()))
        else:
            with pytest.raises(StoreError, match="input/output error") as info:
                store.commit(_batch(_items()))
            assert "\n" not in str(info.value)
    return faults.calls


def test_a_failure_at_each_write_step_leaves_whole_commits_only(prefixes, tmp_path, monkeypatch):
    root, states = prefixes
    steps = _run_failing_at(root, tmp_path / "clean", monkeypatch, None)
    assert state(open_store(tmp_path / "clean")) == states[-1]
    assert len(steps) >= 8 and "refresh" in steps
    reached = []
    for at in range(len(steps)):
        target = tmp_path / f"fail-{at}"
        _run_failing_at(root, target, monkeypatch, at)
        store = open_store(target)  # always opens and reads
        seen = state(store)
        assert seen in states, f"a failure at step {at} ({steps[at]}) left a state no whole commit makes"
        reached.append(states.index(seen))
        # the figures are exact whatever the rollups hold
        raw = store.load_window(*WINDOW).summary(*WINDOW)
        got = figures.summary(store, *WINDOW)
        assert got["count"] == raw["count"] and got["total_usd"] == pytest.approx(raw["total_usd"], rel=1e-12)
        # the same batch again completes it: the store the clean run made
        store.commit(_batch(_items()))
        assert state(store) == states[-1]
        shutil.rmtree(target)
    assert reached == sorted(reached)  # a later failure never leaves less
    assert reached[0] == 0 and reached[-1] == len(states) - 1  # from nothing to everything but the rollups


def test_a_crash_between_the_commit_and_the_rollups_keeps_figures_exact(tmp_path, monkeypatch):
    store = _base(tmp_path)
    store.append_liquidations(JUNE)
    full = figures.split(store, *WINDOW)
    assert full.rows.num_rows and not any(only for *_w, only in full.raw)  # rollups in use, none stale

    def crash(loc, partitions):
        raise OSError(errno.EIO, "killed between the two commits (injected)")
    monkeypatch.setattr(rollups, "refresh", crash)
    with pytest.raises(StoreError) as info:
        store.append_liquidations(liqs(60, start="2025-05-10", span="15D", seed=9))  # into binance May
    assert info.value.committed
    monkeypatch.undo()
    store = open_store(tmp_path)
    raw = store.load_window(*WINDOW).summary(*WINDOW)
    got = figures.summary(store, *WINDOW)
    assert got["count"] == raw["count"] == 300 + 120 + 60
    assert got["total_usd"] == pytest.approx(raw["total_usd"], rel=1e-12)
    assert got["by_exchange"] == pytest.approx(raw["by_exchange"], rel=1e-12)
    stale = [only for *_w, only in figures.split(store, *WINDOW).raw if only]
    assert stale == [frozenset({"binance"})]  # May's rollup no longer matches its files: read raw
    assert store.rebuild_rollups() == 1
    parts = figures.split(store, *WINDOW)
    assert not [only for *_w, only in parts.raw if only]
    again = figures.summary(store, *WINDOW)
    assert again["count"] == raw["count"] and again["total_usd"] == pytest.approx(raw["total_usd"], rel=1e-12)
    assert store.rebuild_rollups() == 0


# -- (b) kill -9 at random moments ------------------------------------------------------------------------
APPENDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from store_testutil import liqs
    from liqscope.models.store import open_store

    store = open_store(sys.argv[1])
    run = int(sys.argv[2])
    print("ready", flush=True)
    for i in range(10_000):
        # {n} distinct rows per batch, spread over two exchanges and two months (several partitions)
        a = liqs({half}, start="2025-05-25", span="10D", seed=run * 10_000 + i)
        b = liqs({half}, start="2025-05-25", span="10D", seed=run * 10_000 + i, exchange="okx")
        store.append_liquidations(__import__("pandas").concat([a, b], ignore_index=True))
        print("committed", i, flush=True)
""")
N = 40


def test_kill_9_at_random_moments_never_leaves_a_partial_batch(tmp_path):
    root = tmp_path / "store"
    script = tmp_path / "appender.py"
    script.write_text(APPENDER.format(tests=str(HERE), n=N, half=N // 2))
    rng = np.random.default_rng(20251201)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kills, committed_total = 0, 0
    for run in range(12):
        proc = subprocess.Popen([sys.executable, str(script), str(root), str(run)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 1.5)))  # somewhere inside a commit, or between two
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        kills += 1
        committed_total += out.count("committed")
        store = open_store(root)
        frame = store.liquidations(counted=False).frame
        assert len(frame) % N == 0, f"run {run}: {len(frame)} rows is not a whole number of {N}-row batches"
        assert len(frame) >= committed_total * N  # every batch that said 'committed' is there
        assert not frame.duplicated(["ts", "exchange", "symbol", "side", "price", "qty"]).any()
        # figures stay exact whatever the kill left of the rollups
        window = (pd.Timestamp("2025-05-25T03:00Z"), pd.Timestamp("2025-06-04T21:00Z"))
        raw = store.load_window(*window).summary(*window)
        got = figures.summary(store, *window)
        assert got["count"] == raw["count"] and got["total_usd"] == pytest.approx(raw["total_usd"], rel=1e-12)
        # and the store takes the next append
        extra = liqs(N, start="2025-07-01", span="1D", seed=900_000 + run)
        assert store.append_liquidations(extra).new == N
        assert len(store.liquidations(counted=False)) == len(frame) + N
        committed_total += 1
    assert kills >= 10 and committed_total > kills  # the kills did land between real commits


# -- (c) every process exits cleanly ----------------------------------------------------------------------
WORKOUT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import deltalake
    import pandas as pd
    from store_testutil import candles, liqs
    from liqscope.models.store import figures, open_store

    root, seed = sys.argv[1], int(sys.argv[2])
    store = open_store(root)
    df = liqs(400, span="20D", seed=seed)
    store.append_liquidations(df)                                        # append
    store.append_liquidations(df)                                        # merge (nothing new)
    store.append_candles(candles(50), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    store.append_candles(candles(50), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")  # MERGE
    store.replace_liquidations(df.iloc[:0], exchanges="binance", start="2025-05-12", end="2025-05-14")  # replace
    table = deltalake.DeltaTable(root + "/liquidations")
    table.optimize.compact()                                             # compact
    table.create_checkpoint()                                            # checkpoint
    store = open_store(root)                                             # read
    n = len(store.liquidations())
    window = (pd.Timestamp("2025-05-09T05:00Z"), pd.Timestamp("2025-05-27T01:00Z"))
    s, raw = figures.summary(store, *window), store.load_window(*window).summary(*window)
    assert s["count"] == raw["count"] > 0, (s["count"], raw["count"])
    assert len(store.candles("binance", "BTCUSDT", "1m")) == 50
    store.info()
    print("done", n, flush=True)
""")


def test_the_process_always_exits_cleanly(tmp_path):
    script = tmp_path / "workout.py"
    script.write_text(WORKOUT.format(tests=str(HERE)))
    results = []
    for wave in range(4):  # 20 runs, five at a time
        procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"s{wave}-{i}"), str(wave * 5 + i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(5)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            results.append((p.returncode, out, err))
    assert len(results) == 20
    for code, out, err in results:
        assert code == 0 and out.startswith("done"), (code, out, err[-2000:])
        assert "terminate called" not in err and "panicked" not in err, err[-2000:]
