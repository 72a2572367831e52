"""A failed, cancelled or killed write leaves the store readable: unchanged, or rolled forward."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from liqscope.models import paths
from liqscope.models.cli import main as cli_main
from liqscope.models.store import Batch, Cancelled, StoreError, atomic, core, open_store
from store_testutil import CancelAfter, candles, liqs, tree_hash


@pytest.fixture
def filled(tmp_path):
    """A store holding data in several partitions, plus a batch touching old and new ones."""
    store = open_store(tmp_path)
    store.append_liquidations(liqs(400, span="40D", seed=1))
    store.append_candles(candles(30), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    batch = Batch()
    batch.add_liquidations(liqs(300, span="70D", seed=2, symbols=("BTCUSDT", "SOLUSDT")))
    batch.add_candles(candles(30, start="2025-05-09 00:20"), exchange="binance", symbol="BTCUSDT",
                      interval="1m", asset="BTC")
    return store, batch


def test_exception_while_staging_leaves_every_byte_unchanged(filled, monkeypatch):
    store, batch = filled
    before, rows = tree_hash(store.root), len(store.liquidations())
    calls = []

    def failing_write(table, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full (injected)")
        core.tables.write_parquet(table, path)

    monkeypatch.setattr(core, "_write_partition", failing_write)
    with pytest.raises(OSError, match="injected"):
        store.commit(batch)
    assert len(calls) == 3
    assert tree_hash(store.root) == before
    assert len(open_store(store.root).liquidations()) == rows


def test_keyboard_interrupt_while_staging_leaves_store_unchanged(filled, monkeypatch):
    store, batch = filled
    before = tree_hash(store.root)

    def interrupted(table, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "_write_partition", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.commit(batch)
    assert tree_hash(store.root) == before


def test_cancel_before_the_commit_point_leaves_store_unchanged(filled):
    store, batch = filled
    before = tree_hash(store.root)
    task = CancelAfter(2)
    with pytest.raises(Cancelled):
        store.commit(batch, task=task)
    assert task.checks == 3
    assert tree_hash(store.root) == before


def test_store_cancel_is_the_shared_progress_convention(filled):
    from liqscope.models import progress

    assert Cancelled is progress.Cancelled  # one type for every caller to catch
    store, batch = filled
    before = tree_hash(store.root)
    task = progress.Task()
    task.cancel.set()
    with pytest.raises(progress.Cancelled):
        store.commit(batch, task=task)
    assert tree_hash(store.root) == before
    assert len(store.commit(batch, task=progress.quiet())) == len(batch)


def test_failure_during_renames_is_rolled_forward_on_next_open(filled, tmp_path_factory, monkeypatch):
    store, batch = filled
    # the same import done cleanly elsewhere is what the interrupted one must become
    ref_root = tmp_path_factory.mktemp("ref")
    ref = open_store(ref_root)
    ref.append_liquidations(liqs(400, span="40D", seed=1))
    ref.append_candles(candles(30), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    ref.commit(batch)

    done = []
    real = atomic._replace

    def crash_after_two(src, dst):
        if len(done) >= 2:
            raise OSError("power cut (injected)")
        done.append(dst)
        real(src, dst)

    monkeypatch.setattr(atomic, "_replace", crash_after_two)
    with pytest.raises(OSError, match="injected"):
        store.commit(batch)
    assert (store.root / atomic.JOURNAL).exists()  # committed, half applied
    monkeypatch.setattr(atomic, "_replace", real)

    reopened = open_store(store.root)
    assert not (store.root / atomic.JOURNAL).exists() and not (store.root / atomic.STAGING).exists()
    assert tree_hash(store.root) == tree_hash(ref_root)
    assert len(reopened.liquidations()) == len(ref.liquidations())


def test_staging_debris_without_journal_is_discarded(filled):
    store, _ = filled
    before = tree_hash(store.root)
    debris = store.root / atomic.STAGING / "deadbeef"
    debris.mkdir(parents=True)
    (debris / "0.parquet").write_bytes(b"PAR1 half written")
    open_store(store.root)
    assert tree_hash(store.root) == before


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


KILL = """
    import os, sys
    sys.path.insert(0, {testdir!r})
    from liqscope.models.store import Batch, atomic, core, open_store
    from store_testutil import candles, liqs
    store = open_store({root!r})
    batch = Batch()
    batch.add_liquidations(liqs(300, span="70D", seed=2, symbols=("BTCUSDT", "SOLUSDT")))
    n = [0]
    real_write, real_replace = core._write_partition, atomic._replace
    def write(table, path):
        n[0] += 1
        if {where!r} == "staging" and n[0] == 2:
            os._exit(9)  # killed: no finally, no cleanup
        real_write(table, path)
    def replace(src, dst):
        n[0] += 1
        if {where!r} == "renames" and n[0] > 100:
            os._exit(9)
        if {where!r} == "renames":
            n[0] = 101
        real_replace(src, dst)
    core._write_partition, atomic._replace = write, replace
    store.commit(batch)
"""


@pytest.mark.parametrize("where", ["staging", "renames"])
def test_process_killed_mid_import(filled, where, tmp_path_factory):
    store, batch = filled
    before = tree_hash(store.root)
    rows = len(store.liquidations())
    proc = _run(KILL.format(root=str(store.root), where=where, testdir=str(__import__("pathlib").Path(__file__).parent)))
    assert proc.returncode == 9, proc.stderr
    reopened = open_store(store.root)
    if where == "staging":
        assert tree_hash(store.root) == before
        assert len(reopened.liquidations()) == rows
    else:
        new = liqs(300, span="70D", seed=2, symbols=("BTCUSDT", "SOLUSDT"))
        assert len(reopened.liquidations()) == rows + len(new)  # rolled forward, all of it
        assert not (store.root / atomic.JOURNAL).exists()


def test_concurrent_writers_do_not_lose_rows(tmp_path):
    store = open_store(tmp_path)
    frames = [liqs(200, seed=s, span="3D") for s in range(6)]
    errors = []

    def work(df):
        try:
            open_store(tmp_path).append_liquidations(df)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.liquidations()) == 1200


@pytest.mark.skipif(sys.platform == "win32", reason="reader snapshots use POSIX flock")
def test_readers_see_whole_commits_while_a_writer_compacts(tmp_path, monkeypatch):
    monkeypatch.setattr(core, "MAX_SEGMENTS", 2)  # merge and fold often
    real = atomic._replace

    def slow_replace(src, dst):  # widen the window between a rename and the removals
        real(src, dst)
        time.sleep(0.02)

    monkeypatch.setattr(atomic, "_replace", slow_replace)
    store = open_store(tmp_path)
    store.append_liquidations(liqs(50, symbols=("BTCUSDT",), span="1D", start="2025-05-01"))
    stop, seen, errors = threading.Event(), [], []
    view = open_store(tmp_path)  # a long-lived reader, like the window

    def reader():
        while not stop.is_set():
            try:
                f = view.liquidations().frame
                assert not f.duplicated(["ts", "side", "price", "qty"]).any(), "duplicates seen"
                seen.append(len(f))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(40):
            store.append_liquidations(liqs(4, symbols=("BTCUSDT",), span="1h", start="2025-05-03", seed=200 + i))
    finally:
        stop.set()
        t.join()
    assert not errors, errors[0]
    assert seen == sorted(seen) and len(store.liquidations()) == 50 + 40 * 4


# -- fault injection: the OS refuses one write step of a commit ------------------------------------------------
# Before the commit point (the journal's rename) a failure must leave every byte and folder as it was; after
# it, the change must complete at the next open. Either way the caller gets one line (a StoreError), never a
# traceback, and a store that opens and reads -- even while the fault lasts.
BEFORE_COMMIT = ["stage-write", "stage-fsync", "staging-fsync", "mkdir", "journal-write", "journal-fsync",
                 "journal-rename"]
AFTER_COMMIT = ["journal-dirsync", "rename-first", "rename-middle", "rename-last", "delete", "dirsync",
                "journal-remove"]
ERRNOS = {"ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS, "EIO": errno.EIO}


def _segmented(root):
    """A store whose next batch rewrites months (removing their segments), adds a new symbol's folder
    and merges candles: every write step of a commit happens."""
    store = open_store(root)
    store.append_liquidations(liqs(400, span="40D", seed=1))
    store.append_liquidations(liqs(12, span="40D", seed=5))  # small: written as segments
    store.append_candles(candles(30), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    return store


def _fault_batch():
    batch = Batch()
    batch.add_liquidations(liqs(300, span="70D", seed=2, symbols=("BTCUSDT", "SOLUSDT")))
    batch.add_candles(candles(30, start="2025-05-09 00:20"), exchange="binance", symbol="BTCUSDT",
                      interval="1m", asset="BTC")
    return batch


@pytest.fixture(scope="module")
def fault_reference(tmp_path_factory):
    """The store after the batch, committed without a fault; and how many renames that took."""
    ref = _segmented(tmp_path_factory.mktemp("fault-ref"))
    seen = []
    real = atomic._replace
    atomic._replace = lambda src, dst: (seen.append(dst), real(src, dst))
    try:
        ref.commit(_fault_batch())
    finally:
        atomic._replace = real
    return ref, len(seen)


def _state(root):
    """Files (with hashes) and folders: 'nothing changed' includes no stray folder."""
    return tree_hash(root), sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_dir())


class _Fault:
    """From the ``nth`` time ``step`` runs on, the OS refuses it with ``code`` (until undone): a disk that
    filled up, a file system remounted read-only, a failing drive."""

    def __init__(self, monkeypatch, step: str, code: int, renames: int):
        self.step, self.code, self.calls, self.fired = step, code, 0, 0
        self.nth = {"rename-first": 1, "rename-middle": renames // 2 + 1, "rename-last": renames}.get(step, 1)
        real_write, real_replace, real_fault = core._write_partition, atomic._replace, atomic._fault

        def hit(path) -> None:
            self.calls += 1
            if self.calls >= self.nth:
                self.fired += 1
                raise OSError(code, os.strerror(code), str(path))

        def write(table, path):
            if step == "stage-write":
                hit(path)
            if step != "stage-fsync":
                return real_write(table, path)
            real_fsync = os.fsync

            def fsync(fd):
                hit(path)
                real_fsync(fd)
            os.fsync = fsync
            try:
                return real_write(table, path)
            finally:
                os.fsync = real_fsync

        def replace(src, dst):
            if step.startswith("rename-"):
                hit(dst)
            real_replace(src, dst)

        def fault(name, path):
            if name == step:
                hit(path)
            real_fault(name, path)

        monkeypatch.setattr(core, "_write_partition", write)
        monkeypatch.setattr(atomic, "_replace", replace)
        monkeypatch.setattr(atomic, "_fault", fault)


@pytest.fixture
def _cli_data_dir():
    yield
    paths.set_data_dir(None)  # --data-dir is process-wide


@pytest.mark.parametrize("code", list(ERRNOS))
@pytest.mark.parametrize("step", BEFORE_COMMIT + AFTER_COMMIT)
def test_an_os_error_at_any_write_step_leaves_no_half_state(tmp_path, fault_reference, monkeypatch, capsys, step,
                                                          code, _cli_data_dir):
    ref, renames = fault_reference
    store = _segmented(tmp_path / "store")
    before, rows = _state(store.root), len(store.liquidations())
    fault = _Fault(monkeypatch, step, ERRNOS[code], renames)
    with pytest.raises(StoreError) as info:
        store.commit(_fault_batch())
    assert fault.fired, f"the {step} step never ran"
    text = str(info.value)
    assert "\n" not in text and str(store.root) in text
    if step in BEFORE_COMMIT:  # nothing changed, and the message says so by not saying 'committed'
        assert not info.value.committed and "committed" not in text
        assert _state(store.root) == before
    else:
        assert info.value.committed and "completes when the store is next opened" in text
    # while the fault lasts, the store still opens and reads, and commands answer without a traceback
    assert len(open_store(store.root).liquidations()) in (rows, len(ref.liquidations()))
    for command in (["store", "info"], ["summary", "--start", "2025-05-09", "--end", "2025-05-13"]):
        code_, out, err = cli_main(["--data-dir", str(store.root), *command]), *capsys.readouterr()
        assert code_ == 0 and "binance" in out and "Traceback" not in err, (command, err)
    if step in BEFORE_COMMIT:
        assert _state(store.root) == before
    monkeypatch.undo()
    reopened = open_store(store.root)
    if step in BEFORE_COMMIT:
        assert _state(store.root) == before and len(reopened.liquidations()) == rows
        reopened.commit(_fault_batch())  # and the same commit, done again, lands whole
    assert not (store.root / atomic.JOURNAL).exists() and not (store.root / atomic.STAGING).exists()
    assert tree_hash(store.root) == tree_hash(ref.root)
    assert len(open_store(store.root).liquidations()) == len(ref.liquidations())
