"""A store that cannot be written or read is one line and exit status 2, never a traceback.

The tests run as root, whom a read-only chmod does not stop: the failures are injected where the store
meets the disk -- delta-rs's ``write_deltalake`` (each data commit), the MERGE of a replacement, and the
atomic write of ``store.json`` -- with the errors delta-rs and the OS really raise there
(``DeltaError('... No space left on device (os error 28)')``, ``OSError(ENOSPC)``).
"""
from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest
from deltalake.exceptions import DeltaError

from liqscope.models.store import StoreError, StoreIOError, delta_io, location, open_store, rollups
from store_testutil import failing_merges, run_cli as run, FIXTURES, liqs, tree_hash

TARDIS = FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
DELTA_TEXT = {  # how delta-rs words an OS error inside its own exception
    errno.ENOSPC: "Failed to parse parquet: External: Generic LocalFileSystem error: Unable to copy data to file: "
                  "No space left on device (os error 28)",
    errno.EROFS: "Generic LocalFileSystem error: Unable to open file {path}: Read-only file system (os error 30)",
    errno.EACCES: "Generic LocalFileSystem error: Unable to open file {path}: Permission denied (os error 13)",
}
WORDS = {errno.ENOSPC: "the disk is full", errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


def failing(code: int, *, delta: bool):
    """A stand-in for a delta-rs write that fails as the disk would (delta-rs's error, or a plain OSError)."""
    def write(table_or_uri, *a, **k):
        if delta:
            raise DeltaError(DELTA_TEXT[code].format(path=table_or_uri))
        raise OSError(code, errno.errorcode[code], str(table_or_uri))
    return write


@pytest.fixture
def filled(tmp_path):
    store = open_store(tmp_path / "store")
    store.append_liquidations(liqs(30))
    return store


@pytest.mark.parametrize("delta", [True, False], ids=["delta-error", "oserror"])
def test_disk_full_while_writing_a_partition(filled, capsys, monkeypatch, delta):
    before = tree_hash(filled.root)
    monkeypatch.setattr(delta_io, "write_deltalake", failing(errno.ENOSPC, delta=delta))
    code, out, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "the disk is full" in err and str(filled.root) in err and err.rstrip().endswith("(store unchanged)")
    assert "os error" not in err  # worded, not delta-rs's text
    monkeypatch.undo()
    assert tree_hash(filled.root) == before
    assert len(open_store(filled.root).liquidations()) == 30


@pytest.mark.parametrize("code_", [errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("delta", [True, False], ids=["delta-error", "oserror"])
def test_read_only_or_permission_denied_store(filled, capsys, monkeypatch, code_, delta):
    before = tree_hash(filled.root)
    monkeypatch.setattr(delta_io, "write_deltalake", failing(code_, delta=delta))
    code, out, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1 and WORDS[code_] in err and "(store unchanged)" in err
    monkeypatch.undo()
    assert tree_hash(filled.root) == before
    # reads need no write: a read-only store still answers
    code, out, err = run(capsys, "--data-dir", filled.root, "store", "info")
    assert code == 0 and "binance" in out and err == ""


def test_a_replacement_merge_that_fails_is_one_line(filled, monkeypatch):
    """A replace is one Delta MERGE (not write_deltalake): its failure is worded too, nothing changes."""
    before, rows = tree_hash(filled.root), len(filled.liquidations())

    class Refusing:
        def __init__(self, *a, **k):
            raise DeltaError(DELTA_TEXT[errno.EROFS].format(path=filled.root))


    failing_merges(monkeypatch, Refusing)
    with pytest.raises(StoreIOError, match="read-only file system") as info:
        filled.replace_liquidations(liqs(30).iloc[:0], exchanges="binance", start="2025-05-01", end="2025-06-01")
    assert "\n" not in str(info.value) and not info.value.committed and info.value.errno == errno.EROFS
    monkeypatch.undo()
    assert tree_hash(filled.root) == before and len(open_store(filled.root).liquidations()) == rows


def test_a_new_store_on_a_read_only_disk(tmp_path, capsys, monkeypatch):
    def refuse(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(location, "write_bytes_atomic", refuse)  # store.json: the first thing written
    code, _, err = run(capsys, "--data-dir", tmp_path / "new", "import", TARDIS)
    assert code == 2 and err.count("\n") == 1 and "read-only" in err and "(store unchanged)" in err
    assert not (tmp_path / "new" / "liquidations").exists()


@pytest.mark.parametrize("delta", [True, False], ids=["delta-error", "oserror"])
def test_full_disk_from_the_api_is_a_store_error(filled, monkeypatch, delta):
    monkeypatch.setattr(delta_io, "write_deltalake", failing(errno.ENOSPC, delta=delta))
    with pytest.raises(StoreError, match="disk is full") as info:
        filled.append_liquidations(liqs(10, seed=9))
    assert not info.value.committed and "\n" not in str(info.value)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC  # callers that retry on OSError


def test_store_json_that_is_a_folder(filled, capsys):
    meta = filled.root / "store.json"
    meta.unlink()
    meta.mkdir()
    before = tree_hash(filled.root)
    for command in (["store", "info"], ["import", TARDIS]):
        code, out, err = run(capsys, "--data-dir", filled.root, *command)
        assert code == 2 and err.count("\n") == 1 and "store.json" in err and "unreadable" in err, err
    assert tree_hash(filled.root) == before
    with pytest.raises(StoreError):
        open_store(filled.root)


def test_data_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run(capsys, "--data-dir", f, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1 and "store" in err
    assert f.read_text() == "x"


def test_store_json_records_the_schema_version(filled):
    meta = json.loads((filled.root / "store.json").read_text())
    assert meta["format"] == "liqscope-store" and meta["schema_version"] == 2
    assert set(meta["tables"]) >= {"liquidations", "candles", "gaps"}


@pytest.mark.parametrize("version", ["1e999", "-1e999", "1.5", "0", "true", '"1"', '"2"', "null", "[1]"])
def test_schema_version_that_is_no_whole_number(filled, capsys, version):
    meta = filled.root / "store.json"
    meta.write_text(meta.read_text().replace('"schema_version": 2', f'"schema_version": {version}'))
    assert version in meta.read_text()
    before = tree_hash(filled.root)
    for command in (["store", "info"], ["summary"], ["import", TARDIS]):
        code, out, err = run(capsys, "--data-dir", filled.root, *command)
        assert code == 2 and err.count("\n") == 1 and "schema_version" in err, (command, err)
    with pytest.raises(StoreError):
        open_store(filled.root)
    assert tree_hash(filled.root) == before


def test_store_json_nested_too_deep(filled, capsys):
    (filled.root / "store.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "--data-dir", filled.root, "store", "info")
    assert code == 2 and err.count("\n") == 1 and "unreadable" in err


def test_a_failure_after_the_commit_point_does_not_say_unchanged(filled, capsys, monkeypatch):
    """The rows are one Delta commit, their rollups the next: a failure between the two says so (never
    'unchanged'); the rows are in, the figures exact, and the same import again brings the rollups."""
    from liqscope.models.store import figures

    def fail(loc, partitions):
        raise OSError(errno.EIO, "Input/output error", str(loc))
    monkeypatch.setattr(rollups, "refresh", fail)
    code, _, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1, err
    assert "input/output error" in err and "partly committed" in err and "unchanged" not in err
    monkeypatch.undo()
    store = open_store(filled.root)
    assert len(store.liquidations("2024-03-01", "2024-03-02")) > 0  # the Tardis rows are in
    raw = store.load_window("2024-02-25", "2024-03-05").summary("2024-02-25", "2024-03-05")
    got = figures.summary(store, pd_ts("2024-02-25"), pd_ts("2024-03-05"))
    assert (got["count"], got["total_usd"]) == (raw["count"], pytest.approx(raw["total_usd"]))
    code, out, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 0, err
    assert store.rebuild_rollups() == 0  # the second import refreshed what the first could not


def test_a_real_full_disk(tmp_path):
    """On a real 1 MB file system (tmpfs; skipped where mounting is not allowed): delta-rs's own error is
    worded, an OSError with ENOSPC, and the store still reads what it held."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if sys.platform != "linux" or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                                 capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        store = open_store(mnt / "store")
        store.append_liquidations(liqs(200, seed=1))
        with pytest.raises(StoreIOError) as info:
            for i in range(400):
                store.append_liquidations(liqs(3000, seed=10 + i, start="2025-06-01", span="20D"))
        assert info.value.errno == errno.ENOSPC and "the disk is full" in str(info.value)
        assert "\n" not in str(info.value)
        reopened = open_store(mnt / "store")
        assert len(reopened.liquidations("2025-05-01", "2025-06-01")) == 200
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def pd_ts(text):
    import pandas as pd

    return pd.Timestamp(text, tz="UTC")
