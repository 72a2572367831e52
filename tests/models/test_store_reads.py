"""Readers never wait on writers and never need to write: a paused import, a lock held by another
process, a commit stuck half applied or a read-only store with crash leftovers all still read --
the last committed state, at once."""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from liqscope.models.cli import main
from liqscope.models.progress import Task
from liqscope.models.store import Batch, StoreError, atomic, open_store
from store_testutil import liqs, tree_hash

WAIT = 60  # seconds a read may take before the test calls it blocked (it takes well under one)
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="store locks are POSIX flock here")


def bounded(fn, timeout: float = WAIT):
    """``fn()`` on a thread; fails the test if it is still running after ``timeout`` (it blocked)."""
    box: dict = {}

    def work():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            box["error"] = exc

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"the read was still waiting after {timeout} s: it blocked on the writer"
    if "error" in box:
        raise box["error"]
    return box["value"]


def cli(capsys, root, *argv, entry=main):
    code = bounded(lambda: entry(["--data-dir", str(root), *map(str, argv)]))
    out, err = capsys.readouterr()
    return code, out, err


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["ts", "exchange", "symbol", "side", "price", "qty", "notional_usd"]
    out = frame[cols].astype({"exchange": str, "symbol": str, "side": str})
    return out.sort_values(cols).reset_index(drop=True)


HOLD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from liqscope.models.store import atomic
    root, mode = Path(sys.argv[1]), sys.argv[2]
    with atomic.StoreLock(root):
        if mode == "import":  # an import in progress: its half-written staging folder
            (root / atomic.STAGING / "inprogress").mkdir(parents=True, exist_ok=True)
            (root / atomic.STAGING / "inprogress" / "0.parquet").write_bytes(b"PAR1 half written")
        if mode == "publish":  # a commit stuck while it renames (it holds the readers' lock too)
            atomic.snapshot(root, publish=True).__enter__()
        print("held", flush=True)
        sys.stdin.readline()
""")


@contextmanager
def held_by_another_process(root: Path, mode: str = "import"):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=WAIT)


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "store")
    s.append_liquidations(liqs(400, span="4D", seed=1))
    return s


class Paused(Task):
    """An import that stops mid-way (a paused job, a debugger) holding the writer lock, staging on disk."""

    def __init__(self):
        super().__init__()
        self.paused, self.resume, self.n = threading.Event(), threading.Event(), 0

    def check(self) -> None:
        self.n += 1
        if self.n == 2:
            self.paused.set()
            self.resume.wait(WAIT)
        super().check()


@POSIX
def test_summary_and_window_load_do_not_wait_for_a_paused_import(store, capsys):
    before = rows(store.liquidations().frame)
    batch = Batch()
    batch.add_liquidations(liqs(300, span="40D", seed=2, symbols=("BTCUSDT", "SOLUSDT")))
    task = Paused()
    importer = threading.Thread(target=lambda: open_store(store.root).commit(batch, task=task))
    importer.start()
    try:
        assert task.paused.wait(WAIT)
        assert (store.root / atomic.STAGING).exists()
        code, out, err = cli(capsys, store.root, "summary", "--json", "--start", "2025-05-09", "--end", "2025-05-13")
        assert code == 0, err
        assert json.loads(out)["count"] == len(before) and err == ""
        ds = bounded(lambda: open_store(store.root).load_dataset())  # what the window's loader does
        assert rows(ds.liquidations.frame).equals(before)
        code, out, err = cli(capsys, store.root, "store", "info")
        assert code == 0 and "binance" in out
    finally:
        task.resume.set()
        importer.join(WAIT)
    assert len(open_store(store.root).liquidations()) == 700


@POSIX
def test_info_and_export_do_not_wait_for_another_process_writing(store, capsys, tmp_path):
    from liqscope.gui.main import main as liqscope_main  # `liqscope export` (no Qt for a liquidations CSV)

    with held_by_another_process(store.root, "import"):
        code, out, err = cli(capsys, store.root, "store", "info", "--json")
        assert code == 0 and sum(json.loads(line)["rows"] for line in out.splitlines()) == 400
        csv = tmp_path / "out.csv"
        code, out, err = cli(capsys, store.root, "export", "--asset", "BTC", "--what", "liquidations", "--csv", csv,
                             "--start", "2025-05-09", "--end", "2025-05-13", entry=liqscope_main)
        assert code == 0, err
        assert len(pd.read_csv(csv)) == len(store.liquidations())  # the window holds every stored row
        assert (store.root / atomic.STAGING / "inprogress").exists()  # the writer's, left alone


def _half_applied_commit(tmp_path_factory, root: Path):
    """A store whose last commit crashed after its commit point with one of two renames done: the
    compacted BTCUSDT month is in place but its old segment is not yet removed, the new ETHUSDT
    segment still waits in staging/. Returns the rows that commit stands for (a clean copy's)."""
    def fill(s):
        s.append_liquidations(liqs(400, span="4D", seed=1))
        s.append_liquidations(liqs(20, span="4D", seed=2, symbols=("BTCUSDT",)))  # a small segment
        return s
    batch = Batch()
    batch.add_liquidations(liqs(300, span="4D", seed=3, symbols=("BTCUSDT",)))  # folds the segment in
    batch.add_liquidations(liqs(10, span="4D", seed=4, symbols=("ETHUSDT",)))   # a new segment
    ref = fill(open_store(tmp_path_factory.mktemp("ref")))
    ref.commit(batch)

    store = fill(open_store(root))
    real = atomic._replace

    def power_cut(src, dst):
        if "ETHUSDT" in str(dst):
            raise OSError(errno.EIO, "power cut (injected)", str(dst))
        real(src, dst)

    atomic._replace = power_cut
    try:
        with pytest.raises(StoreError) as info:
            store.commit(batch)
    finally:
        atomic._replace = real
    assert info.value.committed and (root / atomic.JOURNAL).exists()
    return rows(ref.liquidations().frame)


@POSIX
@pytest.mark.parametrize("mode", ["import", "publish"])
def test_a_pending_commit_behind_a_held_lock_reads_as_committed(tmp_path, tmp_path_factory, capsys, mode):
    root = tmp_path / "store"
    committed = _half_applied_commit(tmp_path_factory, root)
    with held_by_another_process(root, mode):
        got = bounded(lambda: open_store(root).liquidations().frame)
        assert rows(got).equals(committed)  # every row of the commit, none twice
        code, out, err = cli(capsys, root, "summary", "--json", "--start", "2025-05-09", "--end", "2025-05-13")
        assert code == 0 and json.loads(out)["count"] == len(committed), err
        assert (root / atomic.JOURNAL).exists()  # recovery is the writer's job; the reader only read
    reopened = open_store(root)  # lock free, store writable: the open finishes the commit as before
    assert not (root / atomic.JOURNAL).exists() and not (root / atomic.STAGING).exists()
    assert rows(reopened.liquidations().frame).equals(committed)


@contextmanager
def read_only(monkeypatch, root: Path):
    """``root`` as on a read-only file system (tests run as root, so chmod would not stop a write):
    every call that would create, change, rename or remove something under it fails with EROFS."""
    root = str(root)

    def under(path) -> bool:
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(root)
        except TypeError:
            return False

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))

    real_open, real_os_open = io.open, os.open

    def fake_open(file, mode="r", *a, **k):
        if isinstance(file, (str, bytes, os.PathLike)) and under(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *a, **k)

    def fake_os_open(path, flags, *a, **k):
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            refuse(path)
        return real_os_open(path, flags, *a, **k)

    def guard(real, n=1):
        def fake(*args, **kwargs):
            for p in args[:n]:
                if isinstance(p, (str, bytes, os.PathLike)) and under(p):
                    refuse(p)
            return real(*args, **kwargs)
        return fake

    import builtins

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    for name, n in (("replace", 2), ("rename", 2), ("unlink", 1), ("remove", 1), ("rmdir", 1), ("mkdir", 1)):
        monkeypatch.setattr(os, name, guard(getattr(os, name), n))
    monkeypatch.setattr(shutil, "rmtree", guard(shutil.rmtree))
    yield
    monkeypatch.undo()


def test_a_read_only_store_with_leftover_staging_reads(store, capsys, monkeypatch):
    debris = store.root / atomic.STAGING / "deadbeef"
    debris.mkdir(parents=True)
    (debris / "0.parquet").write_bytes(b"PAR1 half written")
    before, frame = tree_hash(store.root), rows(store.liquidations().frame)
    with read_only(monkeypatch, store.root):
        assert rows(open_store(store.root).liquidations().frame).equals(frame)
        code, out, err = cli(capsys, store.root, "summary", "--json", "--start", "2025-05-09", "--end", "2025-05-13")
        assert code == 0 and json.loads(out)["count"] == len(frame) and err == "", err
        code, out, err = cli(capsys, store.root, "store", "info")
        assert code == 0 and "binance" in out, err
    assert tree_hash(store.root) == before


def test_a_read_only_store_with_a_pending_journal_reads_what_was_committed(tmp_path, tmp_path_factory, capsys,
                                                                            monkeypatch):
    root = tmp_path / "store"
    committed = _half_applied_commit(tmp_path_factory, root)
    before = tree_hash(root)
    with read_only(monkeypatch, root):
        assert rows(open_store(root).liquidations().frame).equals(committed)
        code, out, err = cli(capsys, root, "summary", "--json", "--start", "2025-05-09", "--end", "2025-05-13")
        assert code == 0 and json.loads(out)["count"] == len(committed), err
        # a write still says why it cannot, in one line
        code, out, err = cli(capsys, root, "store", "delete", "--exchange", "binance", "--start", "2025-05-09",
                             "--end", "2025-05-10", "--yes")
        assert code == 2 and err.count("\n") == 1 and "read-only" in err
    assert tree_hash(root) == before


def test_a_journal_that_cannot_be_read_now_reads_the_files_as_they_are_with_a_note(store, capsys, monkeypatch):
    (store.root / atomic.JOURNAL).write_text('{"version": 1, "moves": [], "deletes": []}')
    frame = rows(store.liquidations().frame)

    def failing(root):
        raise OSError(errno.EIO, "Input/output error", str(root / atomic.JOURNAL))

    with read_only(monkeypatch, store.root):
        monkeypatch.setattr(atomic, "read_journal", failing)
        s = open_store(store.root)
        assert rows(s.liquidations().frame).equals(frame)
        assert len(s.notes) == 1 and "may be behind" in s.notes[0]
        code, out, err = cli(capsys, store.root, "summary", "--json", "--start", "2025-05-09", "--end", "2025-05-13")
        assert code == 0 and json.loads(out)["count"] == len(frame)
        notes = [ln for ln in err.splitlines() if "journal" in ln]
        assert len(notes) == 1 and "may be behind" in notes[0] and str(store.root) in notes[0], err


RO_BIND = "mount --bind {0} {0} && mount -o remount,bind,ro {0}"


def _ro_bind_works(folder: Path) -> bool:
    if sys.platform != "linux" or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", RO_BIND.format(folder) + f" && ! touch {folder}/probe"],
                           capture_output=True, timeout=WAIT)
    return probe.returncode == 0 and not (folder / "probe").exists()


def test_a_really_read_only_store_with_leftovers_reads(tmp_path, tmp_path_factory):
    """The same on a read-only bind mount (in a private mount namespace: nothing outside sees it)."""
    root = tmp_path / "store"
    committed = _half_applied_commit(tmp_path_factory, root)
    debris = root / atomic.STAGING / "deadbeef"
    debris.mkdir(parents=True)
    (debris / "0.parquet").write_bytes(b"PAR1 half written")
    if not _ro_bind_works(root):
        pytest.skip("needs unshare and a read-only bind mount")
    before = tree_hash(root)
    code = textwrap.dedent(f"""
        import json, sys
        from liqscope.models.cli import main
        try:
            open({str(root / 'probe')!r}, 'w')
            sys.exit('the bind mount is writable')
        except OSError:
            pass
        sys.exit(main(['--data-dir', {str(root)!r}, 'summary', '--json', '--start', '2025-05-09',
                       '--end', '2025-05-13']))
    """)
    script = RO_BIND.format(root) + ' && exec "$0" -c "$1"'
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script, sys.executable, code], capture_output=True,
                          text=True, timeout=WAIT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["count"] == len(committed)
    assert tree_hash(root) == before
