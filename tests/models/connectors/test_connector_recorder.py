"""The live recorder against loopback WebSocket servers replaying documented frames."""
from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest

from connector_fakes import MemoryStore, WSReplay, fixture, wait_for
from liqscope.models.connectors.journal import iter_lines, journal_files, read_pos
from liqscope.models.connectors.recorder import CONNECTED, OFFLINE, RECONNECTING, STOPPED, Backoff, Recorder
from liqscope.models.connectors.streams import Endpoint

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.5, reset_after=30)


def frames(exchange, *, expect=None):
    out = [f for f in fixture(exchange)["frames"]]
    return [f["raw"] for f in out if expect is None or bool(f["expect"]) == expect]


def expected_count(exchange) -> int:
    return sum(len(f["expect"]) for f in fixture(exchange)["frames"])


def sent(ws, connection: int = 0) -> list[str]:
    """What the client sent on a connection so far ([] before it connected)."""
    return list(ws.received[connection]) if len(ws.received) > connection else []



class Events:
    def __init__(self):
        self.lock = threading.Lock()
        self.frames: list[pd.DataFrame] = []
        self.statuses = []

    def on_events(self, df):
        with self.lock:
            self.frames.append(df)

    def on_status(self, st):
        with self.lock:
            self.statuses.append(st)

    def count(self):
        with self.lock:
            return sum(len(f) for f in self.frames)

    def states(self, exchange):
        with self.lock:
            return [s.state for s in self.statuses if s.exchange == exchange]

    def last(self, exchange, state):
        with self.lock:
            return next(s for s in reversed(self.statuses) if s.exchange == exchange and s.state == state)


def make(exchange, url, store, tmp_path, events=None, http=None, **kw):
    endpoints = {exchange: {"ws": url, "rest": http.base if http else "http://127.0.0.1:9"}}
    symbols = kw.pop("symbols", ["BTCUSDT", "ROSEUSDT"] if exchange == "bybit" else None)
    return Recorder([exchange], symbols=symbols, store=store, journal_dir=tmp_path / "journal", endpoints=endpoints,
                    backoff=FAST, flush_interval=0.05, store_interval=0.1, fsync=False,
                    on_events=events.on_events if events else None, on_status=events.on_status if events else None,
                    **kw)


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
def test_records_each_exchange(exchange, store, tmp_path, http):
    """Every documented frame of the fixture goes through the journal into the store,
    pings/acks/malformed frames included in the journal but not in the store."""
    script = [("wait_subscribe",)] if exchange != "binance" else []
    script += frames(exchange)
    ev = Events()
    with WSReplay([script]) as ws:
        rec = make(exchange, ws.url, store, tmp_path, ev, http=http)
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == expected_count(exchange), what="events stored")
            # on_events runs on the reader thread, which may still be handing over when the store thread is done
            wait_for(lambda: ev.count() >= expected_count(exchange), what="events announced")
            assert ev.count() == expected_count(exchange)
            st = rec.status()[exchange]
            assert st.state == CONNECTED and st.events_total == expected_count(exchange)
            assert st.events_per_minute == expected_count(exchange)
            assert st.note
        finally:
            rec.stop()
        sent = ws.received[0]
    liq = store.liquidations()
    assert set(liq["exchange"]) == {exchange}
    if exchange == "bybit":
        assert json.loads(sent[0]) == {"op": "subscribe", "args": ["allLiquidation.BTCUSDT", "allLiquidation.ROSEUSDT"]}
    if exchange == "okx":
        assert json.loads(sent[0]) == {"op": "subscribe",
                                       "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}
        assert ("/api/v5/public/instruments", {"instType": "SWAP"}) in http.requests
        assert rec.status()["okx"].unconverted == 1  # NEW-USDT-SWAP is not in the instrument list
    # The journal holds every frame, raw, and its checkpoint covers the whole file.
    (path,) = journal_files(tmp_path / "journal", exchange)
    lines = [o for _a, _b, o in iter_lines(path)]
    raws = [o["d"] for o in lines if o["k"] == "msg"]
    assert raws == frames(exchange)
    assert read_pos(path) == path.stat().st_size
    assert rec.status()[exchange].state == STOPPED


def test_app_level_pings(store, tmp_path, http):
    """Bybit: {"op":"ping"} on a timer; OKX: the text "ping" (answered "pong")."""
    with WSReplay([[("wait_subscribe",)]]) as bybit_ws, WSReplay([[("wait_subscribe",)]]) as okx_ws:
        recs = [make("bybit", bybit_ws.url, store, tmp_path / "b", ping_interval=0.1),
                make("okx", okx_ws.url, store, tmp_path / "o", http=http, ping_interval=0.1)]
        for r in recs:
            r.start()
        try:
            wait_for(lambda: sum(json.loads(m).get("op") == "ping" for m in sent(bybit_ws)) >= 2
                     and sent(okx_ws).count("ping") >= 2, what="pings")
        finally:
            for r in recs:
                r.stop()
    # The pongs were journaled like every other frame.
    lines = [o for _a, _b, o in iter_lines(journal_files(tmp_path / "o" / "journal", "okx")[0])]
    assert "pong" in [o["d"] for o in lines if o["k"] == "msg"]


def test_reconnect_after_drop_no_loss_no_duplicates(store, tmp_path):
    """The server drops the connection mid-stream; on reconnect it replays the last
    frames it sent before (as a snapshot stream may) plus new ones. Every event is
    stored once, and the disconnected time is recorded as a gap."""
    f = frames("binance", expect=True)  # 4 frames, 5 events
    first = [f[0], f[1], ("sleep", 0.05), ("drop",)]
    second = [("sleep", 0.05), f[1], f[2], f[3]]
    ev = Events()
    with WSReplay([first, second]) as ws:
        rec = make("binance", ws.url, store, tmp_path, ev)
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == 5 and len(store.gaps()) == 1, what="5 events and a gap")
            wait_for(lambda: rec.status()["binance"].state == CONNECTED, what="reconnected")
            time.sleep(0.2)
        finally:
            rec.stop()
        assert ws.connections == 2
    liq = store.liquidations()
    assert len(liq) == 5 and not liq.duplicated(["ts", "symbol", "side", "price", "qty"]).any()
    assert ev.count() == 5  # the replayed frame was not re-emitted either
    gaps = store.gaps()
    assert list(gaps["exchange"]) == ["binance"] and (gaps["end"] > gaps["start"]).all()
    assert "closed" in gaps["reason"].iloc[0] or "Connection" in gaps["reason"].iloc[0]
    st = rec.status()["binance"]
    assert st.gaps == 1 and st.reconnects == 1
    assert RECONNECTING in ev.states("binance")


def test_unreachable_then_up_records_gap(store, tmp_path, closed_port):
    """Connection refused at first: the recorder keeps retrying with backoff, and the
    time until it connects is a gap. A refusing server is not "offline"."""
    ev = Events()
    rec = make("binance", f"ws://127.0.0.1:{closed_port}", store, tmp_path, ev)
    rec.start()
    try:
        wait_for(lambda: ev.states("binance").count(RECONNECTING) >= 2, what="retries")
    finally:
        rec.stop()
    gaps = store.gaps()
    assert len(gaps) == 1 and "stopped" in gaps["reason"].iloc[0]
    assert OFFLINE not in ev.states("binance")
    down = ev.last("binance", RECONNECTING)
    assert down.reason == "connection refused" and down.retry_at is not None
    st = rec.status()["binance"]
    assert st.state == STOPPED and st.reason == "" and st.retry_at is None


def test_offline_until_the_network_is_back(store, tmp_path):
    """A host name that does not resolve (what an offline machine sees): OFFLINE with
    the reason in words, retried with backoff; CONNECTED again once a connection
    succeeds, with the reason cleared."""
    ev = Events()
    with WSReplay([[]]) as ws:
        rec = make("binance", "ws://nonexistent.invalid:1/", store, tmp_path, ev)
        rec.start()
        try:
            wait_for(lambda: ev.states("binance").count(OFFLINE) >= 2, what="offline, retried")
            st = rec.status()["binance"]
            assert st.state == OFFLINE and st.reason == "name resolution failed"
            assert st.retry_at is not None and "gaierror" in st.last_error
            assert RECONNECTING not in ev.states("binance")
            rec.specs["binance"].endpoint = Endpoint(ws.url, "http://127.0.0.1:9")  # the network is back
            wait_for(lambda: rec.status()["binance"].state == CONNECTED, what="connected again")
            st = rec.status()["binance"]
            assert st.reason == "" and st.retry_at is None
        finally:
            rec.stop()
    assert len(store.gaps()) == 1  # the offline time


def test_kill_and_restart_recovers_from_journal(tmp_path):
    """A run dies after journaling but before storing (simulated by a store that
    fails); the next start normalises exactly the unstored part of the journal."""
    class DeadStore(MemoryStore):
        def append_liquidations(self, df, source=None):
            raise OSError("disk on fire")

    dead = DeadStore()
    with WSReplay([frames("bybit", expect=True)]) as ws:
        rec = make("bybit", ws.url, dead, tmp_path, symbols=["BTCUSDT", "ROSEUSDT"])
        rec.start()
        wait_for(lambda: any(o and o["k"] == "msg" for p in journal_files(tmp_path / "journal", "bybit")
                             for _a, _b, o in iter_lines(p)) and "store" in (rec.status()["bybit"].last_error or ""),
                 what="journaled, store failing")
        # "kill": abandon the recorder without the final flush reaching a store.
        rec.stop()
    (path,) = journal_files(tmp_path / "journal", "bybit")
    assert read_pos(path) < path.stat().st_size
    good = MemoryStore()
    with WSReplay([[]]) as ws:
        # Restarted with other symbols: the killed session's own filter applies to its frames.
        rec2 = make("bybit", ws.url, good, tmp_path, symbols=["BTCUSDT"])
        rec2.start()
        try:
            assert rec2.recovered.events == expected_count("bybit")
            assert len(good.liquidations()) == expected_count("bybit")
        finally:
            rec2.stop()
    assert read_pos(path) == path.stat().st_size


def test_restart_gap_and_state(store, tmp_path):
    """Time between two recording sessions is a gap ("recorder not running")."""
    with WSReplay([[]]) as ws:
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        wait_for(lambda: rec.status()["binance"].state == CONNECTED, what="connected")
        rec.stop()
        assert len(store.gaps()) == 0
        time.sleep(0.1)
        rec = make("binance", ws.url, store, tmp_path)
        rec.start()
        try:
            wait_for(lambda: len(store.gaps()) == 1, what="restart gap")
        finally:
            rec.stop()
    assert store.gaps()["reason"].iloc[0] == "recorder not running"


def test_okx_new_listing_is_converted_after_refresh(store, tmp_path, http):
    """A liquidation of an instrument missing from the list waits; once a refreshed
    instrument list knows it, it is stored (never converted with a guessed size)."""
    unknown = next(f for f in fixture("okx")["frames"] if f.get("unconverted"))["raw"]
    with WSReplay([[("wait_subscribe",), unknown]]) as ws:
        rec = make("okx", ws.url, store, tmp_path, http=http)
        rec.refresh_every = 0.2
        rec.start()
        try:
            wait_for(lambda: rec.status()["okx"].unconverted == 1, what="held back")
            assert len(store.liquidations()) == 0
            listing = dict(fixture("okx")["rest"]["instruments"]["data"][0], instId="NEW-USDT-SWAP",
                           instFamily="NEW-USDT", uly="NEW-USDT", ctVal="10", ctValCcy="NEW")
            http.fixtures["okx"]["rest"]["instruments"]["data"].append(listing)
            wait_for(lambda: len(store.liquidations()) == 1, timeout=10, what="converted after refresh")
        finally:
            rec.stop()
    row = store.liquidations().iloc[0]
    assert (row["symbol"], row["qty"], row["notional_usd"]) == ("NEW-USDT-SWAP", 1000.0, 1500.0)
    assert rec.status()["okx"].unconverted == 0


def test_recorder_rejects_unknown_exchange(store, tmp_path):
    with pytest.raises(ValueError, match="unknown exchange"):
        Recorder(["kraken"], store=store, journal_dir=tmp_path)


def test_start_failure_is_reported(tmp_path):
    rec = Recorder(["binance"], store=None, journal_dir=tmp_path / "j")
    rec._open_writer = lambda: (_ for _ in ()).throw(OSError("journal folder is read-only"))
    with pytest.raises(RuntimeError, match="read-only"):
        rec.start()
    assert not rec.running


def test_symbol_filter_on_all_symbol_streams(store, tmp_path):
    """Binance and OKX stream every symbol: --symbols keeps assets (ETH) or native ids
    (SOLUSDT); the journal still keeps every raw frame."""
    with WSReplay([frames("binance")]) as ws:
        rec = make("binance", ws.url, store, tmp_path, symbols=["ETH", "SOLUSDT"])
        rec.start()
        try:
            wait_for(lambda: len(store.liquidations()) == 2, what="filtered events")
            time.sleep(0.2)
        finally:
            rec.stop()
    assert sorted(store.liquidations()["symbol"]) == ["ETHUSDT", "SOLUSDT"]
    (path,) = journal_files(tmp_path / "journal", "binance")
    assert sum(1 for _a, _b, o in iter_lines(path) if o["k"] == "msg") == len(frames("binance"))
