"""The raw journal: append-only, crash-tolerant, replayable after a parser fix."""
from __future__ import annotations

import json

from connector_fakes import MemoryStore, fixture, restamp
from liqscope.models.connectors import journal as jr
from liqscope.models.connectors import parsers

T0 = 1746792000000  # 2025-05-09T12:00Z


def _msg(t, raw):
    return {"t": t, "k": "msg", "d": raw}


def _doc(t, raw):
    """A documented example frame journaled at ``t``, its times moved to just before T0
    (an event stamped more than a day from when it was received is quarantined)."""
    return _msg(t, restamp(raw, T0))


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
    raw = fixture("binance", restamped=False)["frames"][0]["raw"]
    path = tmp_path / "binance" / "2025-05-09.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(json.dumps(_doc(T0, raw)).encode() + b"\n" + b'{"t": 17467920000, "k": "ms')  # killed mid-write
    assert len(list(jr.iter_lines(path))) == 1
    j = jr.Journal(tmp_path)
    j.append("binance", [_doc(T0 + 5, raw.replace("1568014460893", "1568014460999"))])
    j.close()
    lines = list(jr.iter_lines(path))
    assert len(lines) == 3 and lines[1][2] is None  # the cut line stays one unreadable line
    store = MemoryStore()
    res = jr.replay(store, tmp_path)
    assert res.events == 2 and res.errors == 1 and len(store.liquidations()) == 2


def _sides(store) -> list[tuple[str, str]]:
    liq = store.liquidations()
    return sorted(zip(liq["symbol"].astype(str), liq["side"].astype(str)))


def test_replay_after_a_parser_fix(tmp_path, monkeypatch):
    """Frames journaled while a parser was wrong are re-normalised by a replay."""
    bybit = fixture("bybit")
    j = jr.Journal(tmp_path)
    j.append("bybit", [_doc(T0 + i, f["raw"]) for i, f in enumerate(bybit["frames"])])
    j.close()
    # A buggy parser that read S as an order side (the classic mistake) ...
    monkeypatch.setattr(parsers, "_BYBIT_POSITION", {"buy": "short", "sell": "long"})
    wrong = MemoryStore()
    jr.replay(wrong, tmp_path)
    assert _sides(wrong) == [("BTCUSDT", "short"), ("BTCUSDT", "short"), ("ROSEUSDT", "long")]
    monkeypatch.undo()
    # ... is fixed: replaying the same journal gives the documented sides.
    fixed = MemoryStore()
    res = jr.replay(fixed, tmp_path)
    assert res.frames == len(bybit["frames"]) and res.events == 3
    assert _sides(fixed) == sorted((e["symbol"], e["side"]) for f in bybit["frames"] for e in f["expect"]) \
        == [("BTCUSDT", "long"), ("BTCUSDT", "long"), ("ROSEUSDT", "short")]


def test_pending_only_replays_after_checkpoint(tmp_path):
    raws = [f["raw"] for f in fixture("binance")["frames"] if f["expect"]]
    j = jr.Journal(tmp_path)
    ends = j.append("binance", [_doc(T0, raws[0])])
    for path, end in ends.items():
        jr.write_pos(path, end)
    j.append("binance", [_doc(T0 + 1, r) for r in raws[1:]])
    j.close()
    store = MemoryStore()
    res = jr.replay(store, tmp_path, pending_only=True)
    assert res.events == 4 and len(store.liquidations()) == 4  # not the checkpointed first frame
    assert jr.replay(MemoryStore(), tmp_path, pending_only=True).events == 0


def test_replay_restores_gaps_and_dedups(tmp_path):
    raw = fixture("binance")["frames"][0]["raw"]
    j = jr.Journal(tmp_path)
    j.append("binance", [_doc(T0, raw), {"t": T0 + 9, "k": "gap", "d": {"start": T0 + 1, "end": T0 + 8,
                                                                          "reason": "test"}}, _doc(T0 + 10, raw)])
    j.close()
    store = MemoryStore()
    res = jr.replay(store, tmp_path)
    assert (res.events, res.duplicates, res.gaps) == (1, 1, 1)
    assert store.gaps()["reason"].tolist() == ["test"]


def test_replay_with_a_symbol_filter(tmp_path):
    from liqscope.models.connectors.streams import SymbolFilter

    j = jr.Journal(tmp_path)
    j.append("binance", [_doc(T0 + i, f["raw"]) for i, f in enumerate(fixture("binance")["frames"])])
    j.close()
    store = MemoryStore()
    res = jr.replay(store, tmp_path, keep=SymbolFilter(["XRP", "BTCUSDT"]))
    assert res.events == 2 and sorted(store.liquidations()["symbol"]) == ["BTCUSDT", "XRPUSDC"]


# -- a full replay replaces what the journal covers (the real store) ------------------------
def _bybit_frame(t_ms: int, side: str, qty: str, price: str, symbol: str = "BTCUSDT") -> str:
    """A Bybit allLiquidation push of one event stamped 200 ms before the frame."""
    return json.dumps({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": t_ms,
                       "data": [{"T": t_ms - 200, "s": symbol, "S": side, "v": qty, "p": price}]})


H = 3_600_000  # one hour, ms
PONG = '{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}'


def _bybit_journal(root):
    """Two stretches of one session around a disconnection, plus a restart.

    12:00-12:01 frames, gap 12:02-13:00, 13:00-13:10 frames; the recorder not
    running 13:10-15:00; a new session 15:00-15:01.
    """
    j = jr.Journal(root)
    j.append("bybit", [
        {"t": T0 - 1000, "k": "meta", "d": {"symbols": None}},
        _msg(T0 + 600, _bybit_frame(T0 + 600, "Buy", "0.500", "100000.00")),  # long liquidated, 50,000 USD
        _msg(T0 + 60_000, PONG),
        {"t": T0 + H, "k": "gap", "d": {"start": T0 + 120_000, "end": T0 + H, "reason": "test"}},
        _msg(T0 + H + 5_000, _bybit_frame(T0 + H + 5_000, "Sell", "1.000", "99000.00")),  # short, 99,000 USD
        _msg(T0 + H + 600_000, PONG),
        {"t": T0 + 3 * H, "k": "meta", "d": {"symbols": None}},
        {"t": T0 + 3 * H + 10, "k": "gap", "d": {"start": T0 + H + 600_000, "end": T0 + 3 * H + 10,
                                                 "reason": "recorder not running"}},
        _msg(T0 + 3 * H + 20_000, _bybit_frame(T0 + 3 * H + 20_000, "Buy", "0.250", "98000.00")),  # long 24,500
        _msg(T0 + 3 * H + 60_000, PONG),
    ])
    j.close()


def _imported(ts_ms: int, exchange: str = "bybit", side: str = "long", qty: float = 2.0):
    import pandas as pd

    return pd.DataFrame({"ts": [pd.Timestamp(ts_ms, unit="ms", tz="UTC")], "exchange": [exchange],
                         "symbol": ["BTCUSDT"], "asset": ["BTC"], "side": [side], "price": [90000.0],
                         "qty": [qty], "notional_usd": [90000.0 * qty], "source": ["file:import.csv"]})


def _rows(store) -> list[tuple]:
    f = store.liquidations().frame
    return [(int(r.ts.value // 1_000_000), str(r.exchange), str(r.side), float(r.notional_usd))
            for r in f.itertuples()]


def _totals(store, exchange="bybit") -> dict[str, float]:
    f = store.liquidations().frame
    f = f[f["exchange"] == exchange]
    return {str(k): float(v) for k, v in f.groupby("side", observed=True)["notional_usd"].sum().items()}


def _hashes(root) -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _flipped_bybit(monkeypatch):
    """The classic bug: Bybit's S read as an order side."""
    monkeypatch.setattr(parsers, "_BYBIT_POSITION", {"buy": "short", "sell": "long"})


def test_replay_after_a_parser_fix_replaces_the_wrong_rows(tmp_path, monkeypatch):
    from liqscope.models.store import open_store

    _bybit_journal(tmp_path / "journal")
    store = open_store(tmp_path / "store")
    _flipped_bybit(monkeypatch)
    first = jr.replay(store, tmp_path / "journal", pending_only=True)  # what the recorder stored, wrongly
    assert (first.events, first.new) == (3, 3)
    assert _totals(store) == {"long": 99_000.0, "short": 74_500.0}
    monkeypatch.undo()

    res = jr.replay(store, tmp_path / "journal", exchanges=["bybit"])
    assert (res.events, res.new, res.removed, res.gaps) == (3, 3, 3, 2)
    assert _rows(store) == [(T0 + 400, "bybit", "long", 50_000.0), (T0 + H + 4_800, "bybit", "short", 99_000.0),
                            (T0 + 3 * H + 19_800, "bybit", "long", 24_500.0)]  # the correct rows only
    assert _totals(store) == {"long": 74_500.0, "short": 99_000.0}
    assert len(store.gaps()) == 2

    # Replaying again changes nothing, down to the bytes.
    before = _hashes(store.root)
    again = jr.replay(store, tmp_path / "journal", exchanges=["bybit"])
    assert (again.events, again.new, again.removed) == (3, 0, 0)
    assert _hashes(store.root) == before


def test_replay_replaces_only_the_span_the_journal_covers(tmp_path, monkeypatch):
    """Imported rows before, after, in a journaled gap and between sessions stay; so do
    other exchanges'. Inside a stretch the journal is the source of truth for what the recorder
    stored (source bybit-ws) -- and rows imported from files stay: a replay replaces only its own."""
    from liqscope.models.store import open_store

    _bybit_journal(tmp_path / "journal")
    store = open_store(tmp_path / "store")
    keep = [T0 - H, T0 + 30 * 60_000, T0 + 2 * H, T0 + 4 * H]  # before, in the gap, not running, after
    for t in keep:
        store.append_liquidations(_imported(t))
    store.append_liquidations(_imported(T0 + 30_000, exchange="binance"))  # another exchange, inside
    store.append_liquidations(_imported(T0 + H + 60_000))  # same exchange, inside a stretch, from a file
    _flipped_bybit(monkeypatch)
    jr.replay(store, tmp_path / "journal", pending_only=True)
    monkeypatch.undo()
    res = jr.replay(store, tmp_path / "journal")
    assert res.removed == 3 and res.new == 3  # the recorder's three flipped rows, and only those
    got = _rows(store)
    assert [r for r in got if r[1] == "bybit" and r[0] in keep] == [(t, "bybit", "long", 180_000.0) for t in keep]
    assert (T0 + 30_000, "binance", "long", 180_000.0) in got
    assert [r for r in got if r[0] == T0 + H + 60_000]  # the imported row stays
    assert len(got) == len(keep) + 1 + 1 + 3


def test_replay_with_symbols_replaces_only_those_symbols(tmp_path):
    from liqscope.models.connectors.streams import SymbolFilter
    from liqscope.models.store import open_store

    frames = [
        _bybit_frame(T0 + 600, "Buy", "0.500", "100000.00"),
        _bybit_frame(T0 + 700, "Sell", "100", "2500.00", symbol="ETHUSDT"),
    ]
    j = jr.Journal(tmp_path / "journal")
    j.append("bybit", [_msg(T0 + 600, frames[0]), _msg(T0 + 700, frames[1])])
    j.close()
    store = open_store(tmp_path / "store")
    eth_import = _imported(T0 + 650).assign(symbol="ETHUSDT", asset="ETH")
    store.append_liquidations(eth_import)  # e.g. imported from a file
    res = jr.replay(store, tmp_path / "journal", keep=SymbolFilter(["BTC"]))
    assert (res.events, res.removed) == (1, 0)
    syms = sorted(str(s) for s in store.liquidations().frame["symbol"])
    assert syms == ["BTCUSDT", "ETHUSDT"]  # the imported ETH row is not the replay's business
    # The session's own --symbols (a meta line) limits the replace the same way.
    j = jr.Journal(tmp_path / "journal2")
    j.append("bybit", [{"t": T0, "k": "meta", "d": {"symbols": ["BTCUSDT"]}},
                       _msg(T0 + 600, frames[0]), _msg(T0 + 700, frames[1])])
    j.close()
    res = jr.replay(store, tmp_path / "journal2")
    assert (res.events, res.removed, res.new) == (1, 0, 0)
    assert sorted(str(s) for s in store.liquidations().frame["symbol"]) == ["BTCUSDT", "ETHUSDT"]


def test_okx_event_converted_after_a_refresh_survives_the_replay(tmp_path):
    """The recorder stores a new listing's liquidation once a refreshed instrument
    list knows its contract size; the replay retries it the same way, so the
    replace does not take that row out."""
    from liqscope.models.store import open_store

    okx = fixture("okx", restamped=False)  # the documented times: the imported row matches them
    known = {r["instId"]: r for r in okx["rest"]["instruments"]["data"]}
    listing = dict(okx["rest"]["instruments"]["data"][0], instId="NEW-USDT-SWAP", instFamily="NEW-USDT",
                   uly="NEW-USDT", ctVal="10", ctValCcy="NEW")
    unknown = next(f for f in okx["frames"] if f.get("unconverted"))["raw"]
    j = jr.Journal(tmp_path / "journal")
    j.append("okx", [{"t": T0, "k": "meta", "d": {"instruments": known}}, _msg(T0 + 1000, "pong"),
                     _msg(T0 + 2100, unknown),
                     {"t": T0 + 30_000, "k": "meta", "d": {"instruments": {**known, "NEW-USDT-SWAP": listing}}},
                     _msg(T0 + 40_000, "pong")])
    j.close()
    store = open_store(tmp_path / "store")
    store.append_liquidations(_imported(T0 + 2000).assign(exchange="okx", symbol="NEW-USDT-SWAP", asset="NEW",
                                                          price=1.5, qty=1000.0, notional_usd=1500.0))
    res = jr.replay(store, tmp_path / "journal")
    assert (res.events, res.new, res.removed, res.unconverted) == (1, 1, 0, 0)  # stored as okx-ws too
    got = store.liquidations().frame
    assert (got["symbol"] == "NEW-USDT-SWAP").sum() == 1  # counted once: the file's row wins
    assert len(store.liquidations(counted=False)) == 2


def test_a_crash_mid_replay_leaves_the_store_unchanged(tmp_path, monkeypatch):
    from liqscope.models.store import core, open_store

    _bybit_journal(tmp_path / "journal")
    store = open_store(tmp_path / "store")
    _flipped_bybit(monkeypatch)
    jr.replay(store, tmp_path / "journal", pending_only=True)
    monkeypatch.undo()
    before = _hashes(store.root)
    pos_before = {p.name: p.read_text() for p in (tmp_path / "journal").rglob("*.pos")}

    def failing_write(*_a, **_kw):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(core.Store, "_replace", failing_write)
    try:
        jr.replay(store, tmp_path / "journal")
    except Exception as exc:  # the OSError itself, or the store's one-line StoreError naming it
        assert "injected" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("the injected failure did not surface")
    assert _hashes(store.root) == before
    assert {p.name: p.read_text() for p in (tmp_path / "journal").rglob("*.pos")} == pos_before
    assert _totals(open_store(store.root)) == {"long": 99_000.0, "short": 74_500.0}  # still the old rows


# -- a journal left torn or corrupt never stops a replay ------------------------------------
def test_a_batch_across_midnight_is_journaled_whole(tmp_path):
    """Lines of two UTC days in one append: each in its day's file (the first file was
    closed mid-append; flushing it again used to raise and lose the batch)."""
    j = jr.Journal(tmp_path)
    ends = j.append("okx", [_msg(T0, "pong"), _msg(T0 + 86_400_000, "pong"), _msg(T0 + 86_400_001, "pong")])
    j.close()
    files = jr.journal_files(tmp_path, "okx")
    assert len(files) == 2 and set(ends) == set(files)
    assert [len(list(jr.iter_lines(p))) for p in files] == [1, 2]


def test_iter_lines_skips_what_is_not_a_line(tmp_path, monkeypatch):
    monkeypatch.setattr(jr, "LINE_LIMIT", 1000)
    path = tmp_path / "2025-05-09.jsonl"
    good = json.dumps(_msg(T0, "pong")).encode() + b"\n"
    path.write_bytes(good + b"\x00" * 300 + b"\n" + b"[" * 900 + b"\n" + b"x" * 5000 + b"\n"
                     + b'{"t": true, "k": "msg", "d": "pong"}\n' + b'{"t": 1, "k": 7}\n' + b"\xff\xfe\n"
                     + good + b'{"t": 1, "k": "ms')
    lines = list(jr.iter_lines(path))
    assert [o is not None for _a, _b, o in lines] == [True, False, False, False, False, False, False, True]
    assert lines[-1][1] == path.stat().st_size - len(b'{"t": 1, "k": "ms')  # the torn tail is not a line
    assert [o for _a, _b, o in jr.iter_lines(path, stop=len(good))] == [_msg(T0, "pong")]


def test_a_checkpoint_beyond_the_end_replays_the_whole_file(tmp_path):
    raw = fixture("binance")["frames"][1]["raw"]
    j = jr.Journal(tmp_path)
    j.append("binance", [_doc(T0, raw)])
    j.close()
    (path,) = jr.journal_files(tmp_path, "binance")
    jr.write_pos(path, 10**9)  # the file was replaced or cut after its checkpoint was written
    store = MemoryStore()
    assert jr.replay(store, tmp_path, pending_only=True).events == 1 and len(store.liquidations()) == 1


def test_a_line_filed_under_the_wrong_day_does_not_widen_the_replaced_span(tmp_path):
    """A corrupt receive time (1970, in the 2025-05-09 file) must not make a full replay
    replace every stored row of the exchange between 1970 and now."""
    from liqscope.models.store import open_store

    j = jr.Journal(tmp_path / "journal")
    j.append("bybit", [_msg(T0 + 600, _bybit_frame(T0 + 600, "Buy", "0.500", "100000.00"))])
    j.close()
    (path,) = jr.journal_files(tmp_path / "journal", "bybit")
    with open(path, "ab") as fh:
        fh.write(json.dumps(_msg(5, _bybit_frame(T0 + 700, "Buy", "1", "1"))).encode() + b"\n")
    store = open_store(tmp_path / "store")
    store.append_liquidations(_imported(T0 - 30 * 86_400_000))  # a month before: not the replay's business
    res = jr.replay(store, tmp_path / "journal")
    assert res.events == 1 and res.removed == 0 and res.errors == 1
    assert len(store.liquidations().frame) == 2
