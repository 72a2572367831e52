"""The raw journal's ended days compressed to .zst (atomically), read like plain ones, and pruned."""
from __future__ import annotations

import os
import shutil
import time

import pandas as pd
import pytest

from connector_fakes import MemoryStore, WSReplay, fixture, restamp
from liqscope.models.connectors import journal as jr
from liqscope.models.connectors.recorder import Recorder

DAY = 86_400_000
T0 = 1746792000000  # 2025-05-09T12:00Z
AFTER = T0 + 2 * DAY  # 2025-05-11: both journaled days are over


def _lines(exchange: str, t: int) -> list[dict]:
    """The exchange's documented frames journaled from ``t`` on, a meta line first, a gap among them."""
    raws = [f["raw"] for f in fixture(exchange, restamped=False)["frames"]]
    out = [{"t": t, "k": "meta", "d": {"symbols": None}}]
    out += [{"t": t + 10 + i, "k": "msg", "d": restamp(raw, t)} for i, raw in enumerate(raws)]
    out.append({"t": t + 500, "k": "gap", "d": {"start": t + 100, "end": t + 400, "reason": "test"}})
    return out


def _journal(root, days=(T0 - DAY, T0), exchanges=("binance", "bybit")) -> None:
    j = jr.Journal(root, fsync=False)
    for t in days:
        for ex in exchanges:
            j.append(ex, _lines(ex, t))
    j.close()


def _names(folder, pos: bool = True) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if pos or not p.name.endswith(".pos"))


def _replayed(root, **kw):
    store = MemoryStore()
    res = jr.replay(store, root, **kw)
    liq = store.liquidations().sort_values(["ts", "exchange", "symbol", "side"]).reset_index(drop=True)
    counts = (res.files, res.frames, res.events, res.gaps, res.errors, res.duplicates, res.quarantined)
    return liq, counts, store.gaps().reset_index(drop=True)


def _same(a, b) -> None:
    assert a[1] == b[1]
    assert a[0].equals(b[0]) and a[2].equals(b[2])


def test_an_ended_day_is_compressed_and_replays_like_the_plain_file(tmp_path):
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    _journal(plain)
    shutil.copytree(plain, packed)
    res = jr.rotate(packed, now_ms=AFTER)
    assert sorted(p.name for p in res.compressed) == ["2025-05-08.jsonl.zst"] * 2 + ["2025-05-09.jsonl.zst"] * 2
    assert _names(packed / "binance") == ["2025-05-08.jsonl.zst", "2025-05-09.jsonl.zst"]
    for a, b in zip(jr.journal_files(plain, "bybit"), jr.journal_files(packed, "bybit")):
        assert list(jr.iter_lines(a)) == list(jr.iter_lines(b))  # same lines at the same offsets
        assert jr.journal_size(b) == a.stat().st_size > b.stat().st_size
    full = _replayed(plain)
    assert full[1][2] > 0
    _same(_replayed(packed), full)
    _same(_replayed(packed, since="2025-05-09"), _replayed(plain, since="2025-05-09"))


def test_recovery_after_a_checkpoint_reads_the_compressed_day(tmp_path):
    """What a killed recorder left unstored is stored from the .zst at the next start, once."""
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    j = jr.Journal(plain, fsync=False)
    lines = _lines("binance", T0)
    ends = j.append("binance", lines[:3])
    for path, end in ends.items():
        jr.write_pos(path, end)  # stored up to here, then killed
    j.append("binance", lines[3:])
    j.close()
    shutil.copytree(plain, packed)
    jr.rotate(packed, now_ms=AFTER)
    (path,) = jr.journal_files(packed, "binance")
    assert jr.is_compressed(path) and jr.read_pos(path) == jr.read_pos(jr.journal_files(plain, "binance")[0]) > 0
    pending = _replayed(plain, pending_only=True)
    assert pending[1][2] > 0
    _same(_replayed(packed, pending_only=True), pending)
    assert jr.read_pos(path) == jr.journal_size(path)
    assert jr.replay(MemoryStore(), packed, pending_only=True).events == 0  # nothing twice


def test_a_day_still_written_or_not_over_is_left_alone(tmp_path):
    j = jr.Journal(tmp_path, fsync=False)
    j.append("okx", _lines("okx", T0 - DAY))
    j.append("okx", _lines("okx", T0))  # closes yesterday's file, keeps today's open
    assert [p.name for p in jr.rotate(tmp_path, now_ms=T0).compressed] == ["2025-05-08.jsonl.zst"]
    assert jr.rotate(tmp_path, now_ms=AFTER).compressed == []  # 2025-05-09 is over, but its writer holds it
    j.close_stale(T0)
    assert jr.rotate(tmp_path, now_ms=AFTER).compressed == []  # still open: it ends later than T0
    j.close_stale(AFTER)
    assert [p.name for p in jr.rotate(tmp_path, now_ms=AFTER).compressed] == ["2025-05-09.jsonl.zst"]
    j.close()
    assert _names(tmp_path / "okx") == ["2025-05-08.jsonl.zst", "2025-05-09.jsonl.zst"]


def test_a_late_line_for_a_compressed_day_keeps_everything(tmp_path):
    _journal(tmp_path, days=(T0,), exchanges=("binance",))
    before = _replayed(tmp_path)
    jr.rotate(tmp_path, now_ms=AFTER)
    j = jr.Journal(tmp_path, fsync=False)
    j.append("binance", [{"t": T0 + 9_000, "k": "msg", "d": "late pong"}])
    j.close()
    assert _names(tmp_path / "binance", pos=False) == ["2025-05-09.jsonl", "2025-05-09.jsonl.zst"]
    (path,) = jr.journal_files(tmp_path, "binance")
    assert not jr.is_compressed(path)  # the plain file holds the old lines and the late one
    assert [o["d"] for _a, _b, o in jr.iter_lines(path)][-1] == "late pong"
    got = _replayed(tmp_path)
    assert got[1][1] == before[1][1] + 1 and got[0].equals(before[0])
    jr.rotate(tmp_path, now_ms=AFTER)
    assert _names(tmp_path / "binance", pos=False) == ["2025-05-09.jsonl.zst"]
    assert _replayed(tmp_path)[1] == got[1]


@pytest.mark.parametrize("step", ["rename", "remove"])
def test_a_crash_between_steps_leaves_the_day_readable_once(tmp_path, monkeypatch, step):
    _journal(tmp_path, days=(T0,), exchanges=("bybit",))
    (path,) = jr.journal_files(tmp_path, "bybit")
    jr.write_pos(path, path.stat().st_size)  # all of it stored
    before = _replayed(tmp_path)
    real_replace, real_unlink = os.replace, os.unlink

    def replace(src, dst, *a, **kw):
        if str(dst).endswith(".zst") and step == "rename":
            raise OSError("simulated crash before the rename")
        return real_replace(src, dst, *a, **kw)

    def unlink(p, *a, **kw):
        if str(p).endswith(".jsonl") and step == "remove":
            raise OSError("simulated crash before the plain file is removed")
        return real_unlink(p, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    res = jr.rotate(tmp_path, now_ms=AFTER)
    monkeypatch.undo()
    assert res.compressed == [] and "simulated crash" in res.errors[0]
    left = _names(tmp_path / "bybit")
    if step == "rename":
        assert left == ["2025-05-09.jsonl", "2025-05-09.jsonl.pos"]  # the .part is gone, the plain file whole
    else:
        assert left == ["2025-05-09.jsonl", "2025-05-09.jsonl.pos", "2025-05-09.jsonl.zst"]
    assert jr.journal_files(tmp_path, "bybit") == [path]  # one file per day: no line read twice
    _same(_replayed(tmp_path), before)
    assert jr.replay(MemoryStore(), tmp_path, pending_only=True).events == 0  # the restart stores nothing again
    # The next pass finishes the job.
    assert [p.name for p in jr.rotate(tmp_path, now_ms=AFTER).compressed] == ["2025-05-09.jsonl.zst"]
    assert _names(tmp_path / "bybit") == ["2025-05-09.jsonl.pos", "2025-05-09.jsonl.zst"]
    _same(_replayed(tmp_path), before)


def test_a_stop_cuts_a_pass_short_and_leaves_the_day_plain(tmp_path):
    _journal(tmp_path, days=(T0,), exchanges=("binance", "okx"))
    before = _replayed(tmp_path)
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 1  # stop inside the first file

    res = jr.rotate(tmp_path, now_ms=AFTER, retention_days=1, should_stop=should_stop)
    assert res.stopped and res.compressed == [] and res.deleted == []
    for ex in ("binance", "okx"):
        assert _names(tmp_path / ex, pos=False) == ["2025-05-09.jsonl"]  # no .part left behind
    _same(_replayed(tmp_path), before)
    assert len(jr.rotate(tmp_path, now_ms=AFTER).compressed) == 2


def test_a_half_written_part_file_is_never_read(tmp_path):
    _journal(tmp_path, days=(T0,), exchanges=("binance",))
    before = _replayed(tmp_path)
    part = tmp_path / "binance" / "2025-05-09.jsonl.zst.part"
    part.write_bytes(b"\x28\xb5\x2f\xfd half a frame")  # killed while compressing
    _same(_replayed(tmp_path), before)
    jr.rotate(tmp_path, now_ms=AFTER)
    assert _names(tmp_path / "binance", pos=False) == ["2025-05-09.jsonl.zst"]
    _same(_replayed(tmp_path), before)


def test_a_corrupt_compressed_day_reads_as_far_as_it_can(tmp_path):
    _journal(tmp_path, days=(T0,), exchanges=("binance",))
    jr.rotate(tmp_path, now_ms=AFTER)
    (path,) = jr.journal_files(tmp_path, "binance")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\0garbage" * 50)
    list(jr.iter_lines(path))  # no exception
    jr.replay(MemoryStore(), tmp_path)
    path.write_bytes(b"not zstd at all\n")
    assert list(jr.iter_lines(path)) == [] and jr.journal_size(path) == 0


def _day(root, exchange, day, *, compressed=True, stored=True):
    folder = root / exchange
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / f"{day}.jsonl"
    plain.write_bytes(b'{"t":1,"k":"msg","d":"pong"}\n')
    jr.write_pos(plain, plain.stat().st_size if stored else 0)
    if compressed:
        assert jr.compress_day(plain) is not None
        return jr.compressed_path(plain)
    return plain


def test_retention_deletes_only_old_compressed_days(tmp_path):
    now = T0  # 2025-05-09: with 2 days, the 7th and later are kept
    old = _day(tmp_path, "binance", "2025-05-06")
    kept = [_day(tmp_path, "binance", d) for d in ("2025-05-07", "2025-05-08")]
    old_plain = _day(tmp_path, "okx", "2025-05-01", compressed=False)  # plain: never deleted (compressed first)
    unstored = _day(tmp_path, "bybit", "2025-05-02", stored=False)  # its lines never reached the store
    other = tmp_path / "bybit" / "notes-2025-05-01.jsonl.zst"
    other.write_bytes(b"x")
    res = jr.rotate(tmp_path, now_ms=now, before_ms=0, retention_days=2)
    assert res.deleted == [old] and res.unstored == [unstored] and res.errors == []
    assert not old.exists() and not (tmp_path / "binance" / "2025-05-06.jsonl.pos").exists()
    assert all(p.exists() for p in (*kept, old_plain, unstored, other))
    with pytest.raises(ValueError):
        jr.rotate(tmp_path, retention_days=0)
    with pytest.raises(ValueError):
        Recorder(["binance"], journal_retention=0)


def test_retention_never_follows_a_symbolic_link(tmp_path):
    root, outside = tmp_path / "journal", tmp_path / "elsewhere"
    target = _day(outside, "binance", "2020-01-01")  # an old compressed day outside the journal
    plain_target = _day(outside, "binance", "2020-01-02", compressed=False)
    _day(outside, "okx", "2020-01-03")
    (root / "binance").mkdir(parents=True)
    (root / "binance" / "2020-01-01.jsonl.zst").symlink_to(target)
    (root / "binance" / "2020-01-02.jsonl").symlink_to(plain_target)
    (root / "okx").symlink_to(outside / "okx", target_is_directory=True)
    res = jr.rotate(root, now_ms=T0, retention_days=1)
    assert res.deleted == [] and res.compressed == [] and res.errors == []
    assert (root / "binance" / "2020-01-01.jsonl.zst").is_symlink() and target.exists()
    assert (root / "binance" / "2020-01-02.jsonl").is_symlink() and plain_target.exists()
    assert _names(outside / "okx") == ["2020-01-03.jsonl.pos", "2020-01-03.jsonl.zst"]
    assert _names(outside / "binance") == ["2020-01-01.jsonl.pos", "2020-01-01.jsonl.zst", "2020-01-02.jsonl",
                                           "2020-01-02.jsonl.pos"]


def test_the_recorder_compresses_ended_days_and_recovers_from_them(tmp_path):
    """Start: what a killed run left unstored in an ended day is stored (from the plain
    file, or from its .zst), and ended days are compressed; stop: the same, today's stays."""
    root = tmp_path / "journal"
    j = jr.Journal(root, fsync=False)
    j.append("binance", _lines("binance", T0))  # never stored (no checkpoint)
    j.append("binance", _lines("binance", T0 + DAY))
    j.close()
    jr.compress_day(root / "binance" / "2025-05-09.jsonl")
    shutil.copytree(root, tmp_path / "copy")
    expected = _replayed(tmp_path / "copy")[0]  # (a replay moves the checkpoints)
    store = MemoryStore()
    raws = [f["raw"] for f in fixture("binance")["frames"][:1]]
    with WSReplay([raws]) as ws:
        rec = Recorder(["binance"], store=store, journal_dir=root, endpoints={"binance": {"ws": ws.url}},
                       fsync=False, journal_retention=3650)
        rec.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (rec._rotate_thread is None or rec._rotate_thread.is_alive()):
            time.sleep(0.02)
        rec.stop()
    names = _names(root / "binance")
    assert "2025-05-09.jsonl.zst" in names and "2025-05-10.jsonl.zst" in names
    assert not {"2025-05-09.jsonl", "2025-05-10.jsonl"} & set(names)
    today = [n for n in names if n.endswith(".jsonl")]
    assert today == [time.strftime("%Y-%m-%d", time.gmtime()) + ".jsonl"]  # today's file stays plain
    got = store.liquidations()
    old = got[got["ts"] < pd.Timestamp(T0 + 3 * DAY, unit="ms", tz="UTC")]
    key = ["ts", "exchange", "symbol", "side"]
    assert old.sort_values(key).reset_index(drop=True).equals(expected)


def test_journal_day_files_and_checkpoints_are_never_written_through_links(tmp_path):
    """A link planted in the journal folder (a shared or downloaded store) never makes the recorder
    append to, or overwrite, a file outside it."""
    import errno
    import os

    from liqscope.models.connectors.journal import Journal, write_pos

    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    root = tmp_path / "journal"
    (root / "binance").mkdir(parents=True)
    day = "2025-05-09"
    (root / "binance" / f"{day}.jsonl").symlink_to(outside)
    j = Journal(root, fsync=False)
    t_ms = int(pd.Timestamp(day, tz="UTC").value // 1_000_000) + 1000
    with pytest.raises(OSError) as err:
        j.append("binance", [{"t": t_ms, "m": "{}"}])
    assert err.value.errno == errno.ELOOP
    assert outside.read_text() == "keep me\n"
    pos_link = root / "binance" / f"{day}.jsonl.pos"
    pos_link.symlink_to(outside)
    write_pos(root / "binance" / f"{day}.jsonl", 42)
    assert outside.read_text() == "keep me\n" and not pos_link.is_symlink() and pos_link.read_text() == "42"
    assert not os.path.islink(pos_link)
