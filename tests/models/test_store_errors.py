"""A store that cannot be written or read is one line and exit status 2, never a traceback."""
from __future__ import annotations

import errno
import json

import pytest

from liqscope.models.store import StoreError, atomic, open_store, tables
from store_testutil import run_cli as run, FIXTURES, liqs, tree_hash

TARDIS = FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"


class _FullDisk:
    """A file whose writes fail as on a full disk (after the first few bytes: a half-written file)."""

    def __init__(self, path, mode="rb", *a, **k):
        self._fh = open(path, mode, *a, **k)
        self.name = str(path)

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", self.name)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _refuse(code: int):
    def fake_open(path, *a, **k):
        raise OSError(code, {errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied"}[code], str(path))
    return fake_open


@pytest.fixture
def filled(tmp_path):
    store = open_store(tmp_path / "store")
    store.append_liquidations(liqs(30))
    return store


def test_disk_full_while_writing_a_partition(filled, capsys, monkeypatch):
    before = tree_hash(filled.root)
    monkeypatch.setattr(tables, "open", _FullDisk, raising=False)  # tables.write_parquet's open()
    code, out, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "the disk is full" in err and str(filled.root) in err and err.rstrip().endswith("(store unchanged)")
    monkeypatch.undo()
    assert tree_hash(filled.root) == before


@pytest.mark.parametrize("code_, words", [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")])
def test_read_only_or_permission_denied_store(filled, capsys, monkeypatch, code_, words):
    before = tree_hash(filled.root)
    monkeypatch.setattr(atomic, "open", _refuse(code_), raising=False)  # the lock file, store.json, journal
    code, out, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1 and words in err and "(store unchanged)" in err
    monkeypatch.undo()
    assert tree_hash(filled.root) == before


def test_a_new_store_on_a_read_only_disk(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(atomic, "open", _refuse(errno.EROFS), raising=False)
    code, _, err = run(capsys, "--data-dir", tmp_path / "new", "import", TARDIS)
    assert code == 2 and err.count("\n") == 1 and "read-only" in err


def test_full_disk_from_the_api_is_a_store_error(filled, monkeypatch):
    monkeypatch.setattr(tables, "open", _FullDisk, raising=False)
    with pytest.raises(StoreError, match="disk is full") as info:
        filled.append_liquidations(liqs(10, seed=9))
    assert not info.value.committed
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC  # callers that retry on OSError


def test_lock_path_that_is_a_directory(filled, capsys):
    (filled.root / atomic.LOCK).unlink()
    (filled.root / atomic.LOCK).mkdir()
    before = tree_hash(filled.root)
    code, out, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1
    assert "a folder stands where the store keeps a file" in err and ".lock" in err
    assert tree_hash(filled.root) == before
    with pytest.raises(StoreError):
        filled.append_liquidations(liqs(10, seed=9))


def test_data_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run(capsys, "--data-dir", f, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1 and "store" in err


@pytest.mark.parametrize("version", ["1e999", "-1e999", "1.5", "0", "true", '"1"', "null", "[1]"])
def test_schema_version_that_is_no_whole_number(filled, capsys, version):
    meta = filled.root / "store.json"
    meta.write_text(meta.read_text().replace('"schema_version": 1', f'"schema_version": {version}'))
    assert version in meta.read_text()
    for command in (["store", "info"], ["summary"], ["import", TARDIS]):
        code, out, err = run(capsys, "--data-dir", filled.root, *command)
        assert code == 2 and err.count("\n") == 1 and "schema_version" in err, (command, err)
    with pytest.raises(StoreError):
        open_store(filled.root)


def test_store_json_nested_too_deep(filled, capsys):
    (filled.root / "store.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "--data-dir", filled.root, "store", "info")
    assert code == 2 and err.count("\n") == 1 and "unreadable" in err


def test_a_failure_after_the_commit_point_does_not_say_unchanged(filled, capsys, monkeypatch):
    def fail(src, dst):
        raise OSError(errno.EIO, "Input/output error", str(dst))
    monkeypatch.setattr(atomic, "_replace", fail)
    code, _, err = run(capsys, "--data-dir", filled.root, "import", TARDIS)
    assert code == 2 and err.count("\n") == 1
    assert "completes when the store is next opened" in err and "unchanged" not in err
    monkeypatch.undo()
    assert json.loads((filled.root / "store.json").read_text())["schema_version"] == 1
    assert open_store(filled.root).liquidations().frame["exchange"].astype(str).str.contains("binance").any()
    assert not (filled.root / atomic.JOURNAL).exists()  # rolled forward at that open
