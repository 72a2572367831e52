"""The raw journal: append-only, crash-tolerant, replayable after a parser fix."""
from __future__ import annotations

import json

from connector_fakes import MemoryStore, fixture
from liqscope.models.connectors import journal as jr
from liqscope.models.connectors import parsers

T0 = 1746792000000  # 2025-05-09T12:00Z


def _msg(t, raw):
    return {"t": t, "k": "msg", "d": raw}


def test_day_files_meta_and_offsets(tmp_path):
    j = jr.Journal(tmp_path, fsync=True)
    meta = {"instruments": {"BTC-USDT-SWAP": {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1",
                                              "ctValCcy": "BTC", "ctType": "linear", "instFamily": "BTC-USDT"}}}
    ends = j.append("okx", [{"t": T0, "k": "meta", "d": {"symbols": ["BTC"]}}, {"t": T0, "k": "meta", "d": meta},
                            _msg(T0 + 1, "pong")])
    next_day = T0 + 86_400_000
    ends2 = j.append("okx", [_msg(next_day, "pong")])
    j.close()
    files = jr.journal_files(tmp_path, "okx")
    assert [p.name for p in files] == ["2025-05-09.jsonl", "2025-05-10.jsonl"]
    assert ends == {files[0]: files[0].stat().st_size}
    assert ends2 == {files[1]: files[1].stat().st_size}
    # The new day's file starts with the meta line, so it replays on its own.
    first = [o for _a, _b, o in jr.iter_lines(files[1])]
    assert first[0]["k"] == "meta" and first[0]["d"] == {"symbols": ["BTC"], **meta} and first[1]["d"] == "pong"


def test_half_written_line_is_skipped_and_sealed(tmp_path):
    raw = fixture("binance")["frames"][0]["raw"]
    path = tmp_path / "binance" / "2025-05-09.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json.dumps(_msg(T0, raw)).encode() + b"\n" + b'{"t": 17467920000, "k": "ms')  # killed mid-write
    assert len(list(jr.iter_lines(path))) == 1
    j = jr.Journal(tmp_path)
    j.append("binance", [_msg(T0 + 5, raw.replace("1568014460893", "1568014460999"))])
    j.close()
    lines = list(jr.iter_lines(path))
    assert len(lines) == 3 and lines[1][2] is None  # the cut line stays one unreadable line
    store = MemoryStore()
    res = jr.replay(store, tmp_path)
    assert res.events == 2 and res.errors == 1 and len(store.liquidations()) == 2


def test_replay_after_a_parser_fix(tmp_path, monkeypatch):
    """Frames journaled while a parser was wrong are re-normalised by a replay."""
    bybit = fixture("bybit")
    j = jr.Journal(tmp_path)
    j.append("bybit", [_msg(T0 + i, f["raw"]) for i, f in enumerate(bybit["frames"])])
    j.close()
    # A buggy parser that read S as an order side (the classic mistake) ...
    monkeypatch.setattr(parsers, "_BYBIT_POSITION", {"buy": "short", "sell": "long"})
    wrong = MemoryStore()
    jr.replay(wrong, tmp_path)
    assert list(wrong.liquidations()["side"]) == ["long", "short", "short"]
    monkeypatch.undo()
    # ... is fixed: replaying the same journal gives the documented sides.
    fixed = MemoryStore()
    res = jr.replay(fixed, tmp_path)
    assert res.frames == len(bybit["frames"]) and res.events == 3
    assert list(fixed.liquidations()["side"]) == [e["side"] for f in bybit["frames"] for e in f["expect"]] \
        == ["short", "long", "long"]


def test_pending_only_replays_after_checkpoint(tmp_path):
    raws = [f["raw"] for f in fixture("binance")["frames"] if f["expect"]]
    j = jr.Journal(tmp_path)
    ends = j.append("binance", [_msg(T0, raws[0])])
    for path, end in ends.items():
        jr.write_pos(path, end)
    j.append("binance", [_msg(T0 + 1, r) for r in raws[1:]])
    j.close()
    store = MemoryStore()
    res = jr.replay(store, tmp_path, pending_only=True)
    assert res.events == 4 and len(store.liquidations()) == 4  # not the checkpointed first frame
    assert jr.replay(MemoryStore(), tmp_path, pending_only=True).events == 0


def test_replay_restores_gaps_and_dedups(tmp_path):
    raw = fixture("binance")["frames"][0]["raw"]
    j = jr.Journal(tmp_path)
    j.append("binance", [_msg(T0, raw), {"t": T0 + 9, "k": "gap", "d": {"start": T0 + 1, "end": T0 + 8,
                                                                          "reason": "test"}}, _msg(T0 + 10, raw)])
    j.close()
    store = MemoryStore()
    res = jr.replay(store, tmp_path)
    assert (res.events, res.duplicates, res.gaps) == (1, 1, 1)
    assert store.gaps()["reason"].tolist() == ["test"]


def test_replay_with_a_symbol_filter(tmp_path):
    from liqscope.models.connectors.streams import SymbolFilter

    j = jr.Journal(tmp_path)
    j.append("binance", [_msg(T0 + i, f["raw"]) for i, f in enumerate(fixture("binance")["frames"])])
    j.close()
    store = MemoryStore()
    res = jr.replay(store, tmp_path, keep=SymbolFilter(["XRP", "BTCUSDT"]))
    assert res.events == 2 and sorted(store.liquidations()["symbol"]) == ["BTCUSDT", "XRPUSDC"]
