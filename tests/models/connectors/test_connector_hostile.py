"""The live recorder against hostile loopback servers and a hostile store: poisoned frames,
a store that refuses or is locked, a journal left torn by kill -9, oversize frames, servers
that drop every connection. Nothing here asserts a duration; waits are bounded waits for events."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pandas as pd
import pytest

from connector_fakes import NOW_MS, MemoryStore, WSReplay, wait_for
from liqscope.models import cli, connectors_cli
from liqscope.models.connectors import journal as jr
from liqscope.models.connectors.journal import iter_lines, journal_files, read_pos
from liqscope.models.connectors.recorder import CONNECTED, Backoff, Recorder
from liqscope.models.schema import SchemaError

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.5, reset_after=30)



def binance(symbol="BTCUSDT", price="100", qty="1", t: object = None, side="SELL", **over) -> str:
    """A Binance forceOrder frame (one liquidation), stamped now unless ``t`` is given."""
    o = {"s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": qty, "p": price, "ap": price, "X": "FILLED",
         "l": qty, "z": qty, "T": NOW_MS if t is None else t}
    o.update(over)
    return json.dumps({"e": "forceOrder", "E": NOW_MS, "o": o})


def valid(i: int) -> str:
    return binance(price=str(100 + i), t=NOW_MS - 1000 + i)


POISON = {
    "time out of range": binance(t=10**17),
    "overflowing price": binance(price="1", ap=int("9" * 400), p=int("9" * 400)),
    "boolean time": binance(t=True),
    "boolean price": binance(ap=True, p=True),
    "300-character symbol": binance(symbol="X" * 296 + "USDT"),
    "control character in the symbol": binance(symbol="BTC\x07USDT"),
    "NaN price": binance(price="1").replace('"ap": "1"', '"ap": NaN'),
    "deeply nested JSON": "[" * 100_000 + "]" * 100_000,
}


def make(exchange, url, store, tmp_path, **kw):
    kw.setdefault("backoff", FAST)
    symbols = kw.pop("symbols", None)
    return Recorder([exchange], symbols=symbols, store=store, journal_dir=tmp_path / "journal",
                    endpoints={exchange: {"ws": url, "rest": "http://127.0.0.1:9"}},
                    flush_interval=0.05, store_interval=0.1, fsync=False, **kw)


def journaled(tmp_path, exchange) -> list[str]:
    return [o["d"] for p in journal_files(tmp_path / "journal", exchange) for _a, _b, o in iter_lines(p)
            if o and o["k"] == "msg"]


# -- 6. poisoned frames -------------------------------------------------------------------------
def test_poisoned_frames_are_quarantined_alone(store, tmp_path):
    """Poisoned frames sent in the same burst as valid ones: every valid event is stored,
    each poisoned one is counted as quarantined (and kept in the journal), nothing else
    is lost. Before: one bad frame dropped its whole batch; a boolean time was stored as
    1970-01-01 and a boolean price as 1.0; deep nesting raised RecursionError."""
    script = []
    for i, poison in enumerate(POISON.values()):
        script += [valid(i), poison]
    ev_frames = []
    with WSReplay([script]) as ws:
        rec = make("binance", ws.url, store, tmp_path, on_events=ev_frames.append)
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == len(POISON), what="every valid event stored")
            wait_for(lambda: rec.status()["binance"].quarantined == len(POISON), what="every poison quarantined")
        finally:
            rec.stop()
    liq = store.liquidations()
    assert sorted(liq["price"]) == [100.0 + i for i in range(len(POISON))]
    assert (pd.to_datetime(liq["ts"]) > pd.Timestamp("2020-01-01", tz="UTC")).all()
    assert set(liq["symbol"]) == {"BTCUSDT"}
    st = rec.status()["binance"]
    assert st.events_total == len(POISON) and st.quarantined == len(POISON) and st.unstored == 0
    assert st.last_quarantined  # why, in words
    assert sum(len(f) for f in ev_frames) == len(POISON)  # the GUI got the valid ones only
    assert journaled(tmp_path, "binance") == script  # the journal keeps everything, raw


def test_one_bad_event_in_a_multi_event_frame_costs_only_itself(store, tmp_path):
    """A Bybit push of three liquidations, the middle one with a boolean price: two are stored."""
    rows = [{"T": NOW_MS - 300, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "100000"},
            {"T": NOW_MS - 200, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": True},
            {"T": NOW_MS - 100, "s": "BTCUSDT", "S": "Sell", "v": "0.25", "p": "99000"}]
    frame = json.dumps({"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": NOW_MS, "data": rows})
    with WSReplay([[("wait_subscribe",), frame]]) as ws:
        rec = make("bybit", ws.url, store, tmp_path, symbols=["BTCUSDT"])
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == 2 and rec.status()["bybit"].quarantined == 1,
                     what="two stored, one quarantined")
        finally:
            rec.stop()
    assert sorted(store.liquidations()["price"]) == [99000.0, 100000.0]
    assert "boolean" in rec.status()["bybit"].last_quarantined


class PickyStore(MemoryStore):
    """Refuses (as a SchemaError, like the real store's own checks) any frame holding REFUSEDUSDT."""

    def append_liquidations(self, df, source=None):
        if (df["symbol"].astype(str) == "REFUSEDUSDT").any():
            raise SchemaError("symbol REFUSEDUSDT is not allowed here")
        return super().append_liquidations(df, source)


def test_an_event_the_store_refuses_does_not_block_the_others(tmp_path):
    """The store refuses one event that passed every check: the batch is written without
    it, it is quarantined, and everything after it is stored too. Before: the batch was
    retried whole forever and no event was stored for the rest of the run."""
    store = PickyStore()
    first = [valid(1), binance(symbol="REFUSEDUSDT", t=NOW_MS - 500), valid(2)]
    with WSReplay([first + [("sleep", 0.4), valid(3)]]) as ws:
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == 3, what="the three storable events")
            wait_for(lambda: rec.status()["binance"].quarantined == 1, what="the refused one quarantined")
        finally:
            rec.stop()
    assert sorted(store.liquidations()["price"]) == [101.0, 102.0, 103.0]
    st = rec.status()["binance"]
    assert "store refused" in st.last_quarantined and "REFUSEDUSDT" in st.last_quarantined
    assert st.events_total == 3 and st.unstored == 0
    (path,) = journal_files(tmp_path / "journal", "binance")
    assert read_pos(path) == path.stat().st_size  # checkpointed past it: not retried at every start


def test_a_300_character_symbol_does_not_block_the_real_store(tmp_path):
    """The reported case, with the real store (whose folder names cannot be 300 characters)."""
    from liqscope.models.store import open_store

    store = open_store(tmp_path / "store")
    script = [valid(1), binance(symbol="X" * 296 + "USDT", t=NOW_MS - 10), ("sleep", 0.3), valid(2), valid(3)]
    with WSReplay([script]) as ws:
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == 3, what="all valid events stored")
        finally:
            rec.stop()
    assert rec.status()["binance"].quarantined == 1


# -- 6. restart and replay after kill -9 --------------------------------------------------------
def _killed_journal(root, day_ms=NOW_MS):
    """A journal as a killed, poisoned run leaves it: poisoned frames past the checkpoint,
    a garbage region (a file system that zero-fills after a crash), a torn last line, and
    a corrupt checkpoint and state file."""
    j = jr.Journal(root)
    lines = [{"t": day_ms, "k": "meta", "d": {"symbols": None}}]
    lines += [{"t": day_ms + i, "k": "msg", "d": valid(i)} for i in range(3)]
    lines += [{"t": day_ms + 10 + i, "k": "msg", "d": p} for i, p in enumerate(POISON.values())]
    lines += [{"t": day_ms + 50, "k": "gap", "d": {"start": True, "end": "soon"}}]
    lines += [{"t": day_ms + 60, "k": "meta", "d": {"instruments": "not a dict"}}]
    j.append("binance", lines)
    j.close()
    (path,) = journal_files(root, "binance")
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 5000 + b"\n")
        fh.write(json.dumps({"t": day_ms + 70, "k": "msg", "d": valid(3)}).encode() + b"\n")
        fh.write(b"[" * 50_000 + b"\n")  # a corrupt line the JSON decoder would recurse into
        fh.write(b'{"t": %d, "k": "msg", "d": "{\\"e\\":\\"forceOr' % (day_ms + 80))  # cut mid-write
    (root / "binance" / (path.name + ".pos")).write_text("garbage")
    (root / "state.json").write_text("[1, 2")
    return path


def test_restart_after_kill_9_with_a_torn_poisoned_journal(tmp_path):
    """The next start stores every valid event the journal holds and counts the rest;
    a full --replay-journal does the same. Before: both raised (3/3) until the journal
    was edited by hand."""
    path = _killed_journal(tmp_path / "journal")
    store = MemoryStore()
    with WSReplay([[]]) as ws:
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        try:
            res = rec.recovered
            assert len(store.liquidations()) == 4 and res.events == 4
            # Six invalid events; two unreadable frames (NaN, deep nesting) and three unreadable lines
            # (the bad gap, the zero-filled region, the deeply nested line). The torn line is not a line.
            assert res.quarantined == 6 and res.errors == 5
            wait_for(lambda: rec.status()["binance"].state == CONNECTED, what="connected after the restart")
        finally:
            rec.stop()
    assert read_pos(path) == path.stat().st_size
    # The half-written line was ended, so it did not swallow what this run journaled after it.
    assert [o for _a, _b, o in iter_lines(path)][-1] is not None

    full = MemoryStore()
    res = jr.replay(full, tmp_path / "journal")
    assert res.events == 4 and res.quarantined == 6 and len(full.liquidations()) == 4


def test_replay_journal_command_survives_a_torn_poisoned_journal(tmp_path, monkeypatch, capsys):
    from liqscope.models.connectors.journal import journal_root

    _killed_journal(journal_root())
    mem = MemoryStore()
    monkeypatch.setattr(connectors_cli, "_open_store", lambda: mem)
    assert cli.main(["record", "--replay-journal", "--exchange", "binance"]) == 0
    out = capsys.readouterr().out
    assert "4 liquidations" in out and "6 quarantined events" in out
    assert len(mem.liquidations()) == 4


def test_kill_9_of_a_poisoned_recording_then_restart(tmp_path):
    """`liqscope record` (real store) fed poisoned frames is SIGKILLed; the journal's last line
    is then cut as a kill mid-write leaves it. The next run starts, stores every valid event once."""
    store_mod = pytest.importorskip("liqscope.models.store")
    data = tmp_path / "data"
    script = [x for i, p in enumerate(POISON.values()) for x in (valid(i), p, ("sleep", 0.02))]
    with WSReplay([script, []]) as ws:
        proc = subprocess.Popen(
            [sys.executable, "-m", "liqscope.models.cli", "--data-dir", str(data), "record", "--exchange", "binance",
             "--endpoint", f"binance.ws={ws.url}", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 20
            while len(journaled(data, "binance")) < len(POISON) * 2:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the recorder never journaled the frames"
                time.sleep(0.05)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
        (path,) = journal_files(data / "journal", "binance")
        with open(path, "ab") as fh:
            fh.write(b'{"t": 1, "k": "msg", "d": "{\\"e\\":')
        store = store_mod.open_store(data)
        rec = make("binance", ws.url, store, data)
        rec.start()
        rec.stop()
    got = store.liquidations().frame
    assert sorted(got["price"]) == [100.0 + i for i in range(len(POISON))]


# -- 7. journal first, while another process holds the store lock ---------------------------------
def test_journal_is_written_while_the_store_is_locked(tmp_path):
    """With the store's writer lock held (as an import in another process holds it), frames
    keep reaching the journal file on receipt; they are stored once the lock is released.
    Before: the writer thread waited on the lock and later frames waited in memory."""
    from liqscope.models.store import open_store
    store = open_store(tmp_path / "store")
    script = [valid(0), ("sleep", 0.3)] + [valid(i) for i in range(1, 6)]
    with WSReplay([[("sleep", 0.3)] + script]) as ws:
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        try:
            with store_busy(store):  # e.g. a slow commit to object storage
                wait_for(lambda: len(journaled(tmp_path, "binance")) == 6, what="all frames journaled under the lock")
                assert len(store.liquidations()) == 0
                wait_for(lambda: rec.status()["binance"].unstored == 6, what="six events waiting for the store")
            wait_for(lambda: len(store.liquidations()) == 6, what="stored after the lock is released")
        finally:
            rec.stop()
    assert rec.status()["binance"].unstored == 0


@contextmanager
def store_busy(store):
    """The store takes no writes until the block ends: every append waits (a slow or stalled commit)."""
    gate = threading.Event()
    real = store.append_liquidations

    def waiting(*a, **kw):
        gate.wait(30)
        return real(*a, **kw)
    store.append_liquidations = waiting
    try:
        yield
    finally:
        gate.set()


def test_waiting_events_are_bounded_and_caught_up_from_the_journal(tmp_path):
    """While the store is locked, at most ``hold_limit`` events wait in memory; the rest are
    left to the journal and stored from it once the store is free again, each once."""
    from liqscope.models.store import open_store
    store = open_store(tmp_path / "store")
    frames = [valid(i) for i in range(12)]
    with WSReplay([[("sleep", 0.3)] + [x for f in frames for x in (f, ("sleep", 0.02))]]) as ws:
        rec = make("binance", ws.url, store, tmp_path, hold_limit=3)
        rec.start()
        try:
            with store_busy(store):
                wait_for(lambda: len(journaled(tmp_path, "binance")) == 12, what="journaled")
                wait_for(lambda: rec.status()["binance"].unstored == 12, what="counted as waiting")
                with rec._held_lock:
                    assert len(rec._held) <= 3
            wait_for(lambda: len(store.liquidations()) == 12, what="caught up from the journal")
            wait_for(lambda: rec.status()["binance"].unstored == 0, what="nothing waiting")
        finally:
            rec.stop()
    got = store.liquidations().frame
    assert not got.duplicated().any() and rec.status()["binance"].events_total == 12


# -- 8. what a server can make us keep -----------------------------------------------------------
def test_oversize_frames_are_dropped_and_counted(store, tmp_path):
    """A 2 MiB junk frame (over the 1 MiB cap) is refused unread: the connection is closed
    and reopened, the frame is counted, and the journal does not grow by it. Before: frames
    up to 16 MiB were journaled (10 MB junk frames: +242 MB in 2 minutes)."""
    junk = "x" * (2 << 20)
    with WSReplay([[valid(1), ("sleep", 0.2), junk, valid(9)], [valid(2)]]) as ws:
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == 2 and ws.connections >= 2, what="both valid events")
        finally:
            rec.stop()
    st = rec.status()["binance"]
    assert st.oversize >= 1 and st.reconnects >= 1
    assert max(len(d) for d in journaled(tmp_path, "binance")) < 1 << 20
    (path,) = journal_files(tmp_path / "journal", "binance")
    assert path.stat().st_size < 1 << 20


@dataclass(frozen=True)
class RecordingBackoff(Backoff):
    """Records the attempt number of every delay asked for (no timing involved)."""

    attempts: list = field(default_factory=list, compare=False)

    def delay(self, attempt, rng):
        self.attempts.append(attempt)
        return super().delay(attempt, rng)


def test_backoff_resets_after_a_connection_that_delivered_data(store, tmp_path):
    """A server that sends a frame and then closes every connection: each reconnect waits
    the initial backoff (attempt 0), not a grown one. Before: it only reset after 30 s
    connected, so such a server left the recorder disconnected most of the time."""
    backoff = RecordingBackoff(initial=0.02, maximum=5.0, jitter=0.0, reset_after=30)
    with WSReplay([[valid(1), ("sleep", 0.05), ("drop",)]]) as ws:
        rec = make("binance", ws.url, store, tmp_path, backoff=backoff)
        rec.start()
        try:
            wait_for(lambda: ws.connections >= 4, what="four connections")
        finally:
            rec.stop()
    assert backoff.attempts[:3] == [0, 0, 0]
    assert rec.status()["binance"].reconnects >= 3


def test_backoff_still_grows_when_connections_deliver_nothing(store, tmp_path):
    backoff = RecordingBackoff(initial=0.01, maximum=5.0, jitter=0.0, reset_after=30)
    with WSReplay([[("drop",)]]) as ws:
        rec = make("binance", ws.url, store, tmp_path, backoff=backoff)
        rec.start()
        try:
            wait_for(lambda: len(backoff.attempts) >= 4, what="four retries")
        finally:
            rec.stop()
    assert backoff.attempts[:4] == [0, 1, 2, 3]


def test_oversize_frames_do_not_reset_the_backoff(store, tmp_path):
    backoff = RecordingBackoff(initial=0.01, maximum=5.0, jitter=0.0, reset_after=30)
    with WSReplay([[valid(1), "y" * 5000]]) as ws:
        rec = make("binance", ws.url, store, tmp_path, backoff=backoff, max_frame_bytes=4096)
        rec.start()
        try:
            wait_for(lambda: len(backoff.attempts) >= 3, what="three retries")
        finally:
            rec.stop()
    assert backoff.attempts[:3] == [0, 1, 2]
    assert rec.status()["binance"].oversize >= 3


def test_okx_frames_waiting_for_a_contract_size_are_bounded(tmp_path):
    """Frames naming unknown OKX contracts wait in memory for an instrument list: at most
    OKX_RETRY_BYTES of them (a stream naming new contracts cannot grow it for ever)."""
    from liqscope.models.connectors import recorder

    rec = Recorder(["okx"], store=MemoryStore(), journal_dir=tmp_path)
    for i in range(100):
        rec._okx_wait({"t": NOW_MS, "k": "msg", "d": "z" * (recorder.OKX_RETRY_BYTES // 10)})
    assert rec._okx_retry_bytes <= recorder.OKX_RETRY_BYTES and len(rec._okx_retry) <= 10
