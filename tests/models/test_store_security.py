"""A store folder never makes Liqscope write, move or delete anything outside it.

Stores get shared, synced and downloaded, so every test here crafts a store folder the way an
attacker would (a journal naming ``../x`` or ``/abs/path``, symbolic links inside the store) next
to a sibling folder, and checks that the sibling is byte-for-byte untouched, that the crafted
journal is refused in one line and kept aside, and that the store still reads.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from liqscope.models.store import Batch, StoreError, atomic, open_store
from store_testutil import candles, liqs, tree_hash

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")


@pytest.fixture
def shared(tmp_path):
    """(store holding data, a sibling folder the crafted store aims at)."""
    sibling = tmp_path / "sibling"
    (sibling / "sub").mkdir(parents=True)
    (sibling / "victim.txt").write_text("precious")
    (sibling / "other.txt").write_text("also precious")
    (sibling / "sub" / "2025-05.parquet").write_bytes(b"not the store's")
    store = open_store(tmp_path / "store")
    store.append_liquidations(liqs(200, span="3D"))
    return store, sibling


def snapshot(folder):
    """Every file and folder under ``folder`` (links too, not followed), with file hashes."""
    entries = {p.relative_to(folder).as_posix(): ("link" if p.is_symlink() else "dir" if p.is_dir() else "file")
               for p in folder.rglob("*")}
    return entries, tree_hash(folder)


def craft(root, moves, deletes=(), staged=()):
    for rel in staged:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"PAR1 crafted")
    (root / atomic.JOURNAL).write_text(json.dumps({"version": 1, "moves": moves, "deletes": list(deletes)}))


def refusals(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "liqscope.store" and "refused" in r.getMessage()]


def check_refused(store, sibling, before, rows, caplog, words):
    """Open the store as any command does: the journal is refused (one line), kept aside, nothing
    outside changes and the store reads what it held."""
    with caplog.at_level(logging.WARNING, logger="liqscope.store"):
        reopened = open_store(store.root)
    assert snapshot(sibling) == before
    assert len(reopened.liquidations()) == rows
    assert not os.path.lexists(store.root / atomic.JOURNAL)
    kept = sorted(p.name for p in store.root.glob("journal.refused-*.json"))
    assert len(kept) == 1, kept
    lines = refusals(caplog)
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert words in lines[0] and kept[0] in lines[0] and str(store.root) in lines[0], lines[0]
    assert "nothing in it was applied" in lines[0]
    caplog.clear()
    assert len(open_store(store.root).liquidations()) == rows and not refusals(caplog)  # refused once, not again
    # and the store still takes writes
    open_store(store.root).append_liquidations(liqs(10, seed=7, start="2025-06-01"))
    assert len(open_store(store.root).liquidations()) == rows + 10
    assert snapshot(sibling) == before


TARGET = "liquidations/binance/BTCUSDT/2025-05.parquet"
STAGED = "staging/t/0.parquet"


@pytest.mark.parametrize("moves, deletes, staged, words", [
    ([[STAGED, "../sibling/victim.txt"]], [], [STAGED], "leaves the store"),
    ([[STAGED, "liquidations/../../sibling/sub/2025-05.parquet"]], [], [STAGED], "leaves the store"),
    ([], ["liquidations/../../sibling/sub/2025-05.parquet"], [], "leaves the store"),
    ([], ["../sibling/other.txt"], [], "leaves the store"),
    ([["../sibling/victim.txt", TARGET]], [], [], "leaves the store"),  # would move a file out of the sibling
    ([[STAGED, "{sibling}/sub/2025-05.parquet"]], [], [STAGED], "absolute"),
    ([], ["{sibling}/victim.txt"], [], "absolute"),
    ([["{sibling}/victim.txt", TARGET]], [], [], "absolute"),
    ([], ["liquidations/x\x00/../../../sibling/victim.txt"], [], "NUL"),
    ([], ["liquidations\\..\\..\\sibling\\victim.txt"], [], "absolute or not a store path"),
    ([], ["liquidations/a\x1b[2J/2025-05.parquet"], [], "control character"),
    ([[STAGED, "store.json"]], [], [STAGED], "outside the store's"),
    ([[STAGED, "liquidations/binance/BTCUSDT/victim.txt"]], [], [STAGED], "no store data file"),
    ([], [".lock"], [], "outside the store's"),
], ids=["move-dotdot", "move-dotdot-inside", "delete-dotdot-inside", "delete-dotdot", "staged-dotdot",
        "move-absolute", "delete-absolute", "staged-absolute", "nul", "backslashes", "control-char",
        "move-store-json", "move-non-data-file", "delete-lock"])
def test_a_journal_naming_paths_outside_the_store_is_refused(shared, caplog, moves, deletes, staged, words):
    store, sibling = shared
    fill = lambda s: s.replace("{sibling}", str(sibling))  # noqa: E731
    moves = [[fill(a), fill(b)] for a, b in moves]
    deletes = [fill(d) for d in deletes]
    before, rows = snapshot(sibling), len(store.liquidations())
    craft(store.root, moves, deletes, staged)
    check_refused(store, sibling, before, rows, caplog, words)


@POSIX
def test_a_symbolic_link_to_a_folder_outside_is_never_written_through(shared, caplog):
    store, sibling = shared
    before, rows = snapshot(sibling), len(store.liquidations())
    (store.root / "candles").mkdir()
    (store.root / "candles" / "evil").symlink_to(sibling, target_is_directory=True)
    craft(store.root, [[STAGED, "candles/evil/sub/2025-05.parquet"]], ["candles/evil/sub/2025-05.parquet"], [STAGED])
    check_refused(store, sibling, before, rows, caplog, "candles/evil is a symbolic link")
    assert (store.root / "candles" / "evil").is_symlink()  # left alone: not the writer's to remove


@POSIX
def test_a_staged_file_that_is_a_symbolic_link_is_refused(shared, caplog):
    store, sibling = shared
    before, rows = snapshot(sibling), len(store.liquidations())
    (store.root / "staging" / "t").mkdir(parents=True)
    (store.root / STAGED).symlink_to(sibling / "victim.txt")
    craft(store.root, [[STAGED, TARGET]])
    check_refused(store, sibling, before, rows, caplog, "staging/t/0.parquet is a symbolic link")
    assert not any(p.is_symlink() for p in (store.root / "liquidations").rglob("*"))


@POSIX
def test_a_staging_folder_that_is_a_symbolic_link_is_refused(shared, caplog):
    store, sibling = shared
    before, rows = snapshot(sibling), len(store.liquidations())
    (store.root / "staging").symlink_to(sibling, target_is_directory=True)
    craft(store.root, [["staging/sub/2025-05.parquet", TARGET]])  # would move the sibling's file into the store
    check_refused(store, sibling, before, rows, caplog, "staging is a symbolic link")


@POSIX
def test_a_journal_that_is_a_symbolic_link_is_refused_and_its_target_kept(shared, caplog):
    store, sibling = shared
    evil = sibling / "journal.json"
    evil.write_text(json.dumps({"version": 1, "moves": [], "deletes": [f"{sibling}/victim.txt"]}))
    before, rows = snapshot(sibling), len(store.liquidations())
    (store.root / atomic.JOURNAL).symlink_to(evil)
    check_refused(store, sibling, before, rows, caplog, "journal.json is a symbolic link")


@pytest.mark.parametrize("text, words", [
    ("{ not json", "not a readable commit journal"),
    ("[" * 100_000 + "]" * 100_000, "not a readable commit journal"),
    ('["moves"]', "not a commit journal"),
    ('{"version": 2, "moves": []}', "not a commit journal"),
    ('{"version": true, "moves": []}', "not a commit journal"),
    ('{"version": 1, "moves": [["a"]]}', "'moves' is not a list"),
    ('{"version": 1, "moves": [[1, 2]]}', "is not a path"),
    ('{"version": 1, "moves": [], "deletes": "../x"}', "'deletes' is not a list"),
], ids=["torn", "deep", "list", "newer", "bool-version", "short-move", "numbers", "deletes-string"])
def test_a_journal_that_is_no_journal_is_refused_and_the_store_reads(shared, caplog, text, words):
    store, sibling = shared
    before, rows = snapshot(sibling), len(store.liquidations())
    (store.root / atomic.JOURNAL).write_text(text)
    check_refused(store, sibling, before, rows, caplog, words)


def test_the_refused_journal_and_its_staging_are_kept_aside_unchanged(shared, caplog):
    store, sibling = shared
    craft(store.root, [[STAGED, "../sibling/victim.txt"]], [], [STAGED])
    text = (store.root / atomic.JOURNAL).read_text()
    open_store(store.root)
    kept = next(store.root.glob("journal.refused-*.json"))
    assert kept.read_text() == text
    folder = store.root / kept.name.replace("journal.", "staging.").replace(".json", "")
    assert (folder / "t" / "0.parquet").read_bytes() == b"PAR1 crafted"
    assert not (store.root / atomic.STAGING).exists()


def test_a_refused_journal_is_one_line_on_the_command_line_and_the_store_reads(shared):
    store, sibling = shared
    before = snapshot(sibling)
    craft(store.root, [[STAGED, "../sibling/victim.txt"]], [f"{sibling}/other.txt"], [STAGED])
    run = [sys.executable, "-m", "liqscope.models.cli", "--data-dir", str(store.root)]
    proc = subprocess.run([*run, "summary", "--json", "--start", "2025-05-09", "--end", "2025-05-13"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["count"] == 200
    assert proc.stderr.count("\n") == 1 and "refused its journal.json" in proc.stderr
    assert "'../sibling/victim.txt' leaves the store" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(sibling) == before
    proc = subprocess.run([*run, "store", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "" and "binance" in proc.stdout


def test_a_refused_journal_that_cannot_be_set_aside_is_never_applied(shared, caplog, monkeypatch):
    store, sibling = shared
    before, rows = snapshot(sibling), len(store.liquidations())
    craft(store.root, [], ["../sibling/other.txt"])

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(atomic, "_set_aside", read_only)
    with caplog.at_level(logging.WARNING, logger="liqscope.store"):
        for _ in range(2):  # every open reads, none applies it
            assert len(open_store(store.root).liquidations()) == rows
    lines = refusals(caplog)
    assert len(lines) == 2 and "could not set it aside" in lines[0] and "nothing in it was applied" in lines[0]
    with pytest.raises(StoreError, match="refused its journal.json .*leaves the store") as info:
        open_store(store.root).append_liquidations(liqs(5, seed=3))
    assert "\n" not in str(info.value) and not info.value.committed
    assert snapshot(sibling) == before and (store.root / atomic.JOURNAL).exists()


# -- writes never follow a link inside the store ----------------------------------------------------------
@POSIX
@pytest.mark.parametrize("name", [atomic.LOCK, atomic.READ_LOCK])
@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_lock_file_that_is_a_symbolic_link_is_refused(shared, name, dangling):
    store, sibling = shared
    link = store.root / name
    link.unlink()
    link.symlink_to(sibling / ("new.txt" if dangling else "victim.txt"))
    before, inside = snapshot(sibling), tree_hash(store.root)
    with pytest.raises(StoreError, match="symbolic link") as info:
        store.append_liquidations(liqs(10, seed=5, start="2025-06-01"))
    assert "\n" not in str(info.value) and not info.value.committed and name in str(info.value)
    assert snapshot(sibling) == before and tree_hash(store.root) == inside
    assert len(open_store(store.root).liquidations()) == 200


@POSIX
@pytest.mark.parametrize("link, write", [
    ("liquidations/binance", "liqs"),
    ("liquidations", "liqs"),
    ("candles/binance/BTCUSDT", "candles"),
    ("candles", "candles"),
    ("gaps", "gaps"),
])
def test_a_data_folder_that_is_a_symbolic_link_is_never_written_through(shared, link, write):
    store, sibling = shared
    target = sibling / "elsewhere"
    target.mkdir()
    path = store.root / link
    if path.exists():
        os.replace(path, target / "moved")  # a user 'moving it to another disk' or an attacker: same thing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=True)
    before, inside = snapshot(sibling), tree_hash(store.root)
    batch = Batch()
    if write == "liqs":
        batch.add_liquidations(liqs(20, seed=4, start="2025-06-01"))
    elif write == "candles":
        batch.add_candles(candles(5), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    else:
        import pandas as pd
        batch.add_gaps(pd.DataFrame({"exchange": ["binance"], "start": ["2025-05-09"], "end": ["2025-05-10"]}))
    with pytest.raises(StoreError, match="is a symbolic link; Liqscope never follows links inside a store") as info:
        store.commit(batch)
    assert "\n" not in str(info.value) and not info.value.committed
    assert snapshot(sibling) == before and tree_hash(store.root) == inside
    assert not (store.root / atomic.JOURNAL).exists() and not (store.root / atomic.STAGING).exists()


@POSIX
def test_a_staging_link_left_in_the_store_is_removed_not_followed(shared):
    store, sibling = shared
    before = snapshot(sibling)
    (store.root / atomic.STAGING).symlink_to(sibling, target_is_directory=True)
    store.append_liquidations(liqs(20, seed=4, start="2025-06-01"))  # its recovery drops the link, then stages
    assert snapshot(sibling) == before
    assert not os.path.lexists(store.root / atomic.STAGING)
    assert len(open_store(store.root).liquidations()) == 220


@POSIX
def test_store_json_and_journal_temp_files_are_never_written_through_links(shared, monkeypatch):
    store, sibling = shared
    before = snapshot(sibling)
    # a fresh store: store.json is written via a new temp file and a rename, never into a link's target
    fresh = store.root.parent / "fresh"
    fresh.mkdir()
    (fresh / "store.json").symlink_to(sibling / "new.txt")
    open_store(fresh).append_liquidations(liqs(5))
    assert not (fresh / "store.json").is_symlink() and snapshot(sibling) == before
    # a temp file name that already exists (a link planted for it) is never opened
    planted = store.root / ".journal.json.fixed.tmp"
    planted.symlink_to(sibling / "victim.txt")
    monkeypatch.setattr(atomic.uuid, "uuid4", lambda: type("U", (), {"hex": "fixed"})())
    with pytest.raises(StoreError, match="cannot write to the store"):
        store.append_liquidations(liqs(5, seed=9, start="2025-06-01"))
    assert snapshot(sibling) == before


@POSIX
def test_the_recorder_state_file_is_never_written_through_a_link(tmp_path):
    from liqscope.models.connectors.recorder import Recorder

    sibling = tmp_path / "sibling"
    sibling.mkdir()
    (sibling / "victim.txt").write_text("precious")
    journal = tmp_path / "store" / "journal"
    journal.mkdir(parents=True)
    (journal / "state.tmp").symlink_to(sibling / "victim.txt")  # the old fixed temp name
    (journal / "state.json").symlink_to(sibling / "other.txt")
    before = snapshot(sibling)
    rec = Recorder(["binance"], journal_dir=journal, store=object())
    rec._save_state({"binance": 1_700_000_000_000}, force=True)
    assert snapshot(sibling) == before
    assert not (journal / "state.json").is_symlink()
    assert json.loads((journal / "state.json").read_text()) == {"alive_ms": {"binance": 1_700_000_000_000}}
