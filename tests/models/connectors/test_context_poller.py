"""The recorder's open interest / funding poller (models/connectors/context_poller.py) against the
loopback exchanges of test_connector_context.py: rows land in the real store, failures are logged and
never stop it or the recording. No timing asserts: waits poll a condition under a generous deadline."""
from __future__ import annotations

import time

import pandas as pd

from connector_fakes import WSReplay, fixture
from test_connector_context import DAY, HOUR, MIN, ContextHTTP, fill_funding, fill_oi
from liqscope.models.connectors.context_poller import ContextPoller
from liqscope.models.connectors.recorder import Backoff, Recorder
from liqscope.models.store import open_store


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _serve_last_day(ex, exchange):
    """5-minute open interest and 8-hourly funding over the last two days, on the exchange's grid."""
    now = _now_ms()
    start = (now - 2 * DAY) // (5 * MIN) * (5 * MIN)
    fill_oi(ex, exchange, start, int((now - start) // (5 * MIN)) - 1, step=5 * MIN)
    fstart = (now - 2 * DAY) // (8 * HOUR) * (8 * HOUR)
    fill_funding(ex, exchange, fstart, int((now - fstart) // (8 * HOUR)))


def _until(cond, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_poll_once_stores_open_interest_and_funding(tmp_path):
    store = open_store(tmp_path / "store")
    with ContextHTTP() as ex:
        _serve_last_day(ex, "binance")
        _serve_last_day(ex, "okx")
        poller = ContextPoller(["binance", "okx"], ["BTCUSDT", "BTC-USDT-SWAP"], store,
                               api_bases={"binance": ex.base, "okx": ex.base}, retries=0)
        for c in ("binance", "okx"):
            poller._symbols(c)
            poller._clients[c].enableRateLimit = False
        poller.poll_once()
        assert list(poller.errors) == []
        assert poller.skipped == ["binance: BTC-USDT-SWAP", "okx: BTCUSDT"]
        oi = store.open_interest()
        assert set(oi["exchange"]) == {"binance", "okx"} and set(oi["period"]) == {"5m"}
        now = pd.Timestamp(_now_ms(), unit="ms", tz="UTC")
        assert oi["ts"].min() >= now - pd.Timedelta(days=1, minutes=5)  # the last day only (backfill)
        per = oi.groupby("exchange").size()
        assert (per >= 280).all()  # ~288 snapshots a day
        f = store.funding()
        assert set(f["exchange"]) == {"binance", "okx"} and set(f["interval_hours"]) == {8.0}
        n = len(ex.requests)
        poller.poll_once()  # the store holds it: a round asks for the missing tail only
        new_oi = [q for p, q, _ in ex.requests[n:] if p == ex.OI_PATHS["binance"]]
        assert new_oi and all(int(q["startTime"]) >= int(oi["ts"].max().value // 1_000_000) for q in new_oi)
        assert len(store.open_interest()) == len(oi)


def test_failures_are_logged_and_never_stop_it(tmp_path, caplog):
    store = open_store(tmp_path / "store")
    with ContextHTTP() as ex:
        _serve_last_day(ex, "binance")
        ex.script[ex.FUNDING_PATHS["binance"]] = [(400, {"code": -1121, "msg": "Invalid symbol."})] * 3
        poller = ContextPoller(["binance", "okx"], ["BTC", "NOPE"], store,
                               api_bases={"binance": ex.base, "okx": "http://127.0.0.1:9"}, retries=0)
        poller._symbols("binance")
        poller._clients["binance"].enableRateLimit = False
        with caplog.at_level("WARNING"):
            poller.poll_once()
        errors = list(poller.errors)
        assert poller.skipped == ["binance: NOPE"]
        assert any(e.startswith("binance BTC/USDT:USDT funding:") for e in errors)
        assert any(e.startswith("okx markets:") for e in errors)
        assert "context poll:" in caplog.text
        assert len(store.open_interest()) > 0  # binance OI went through all the same
        assert poller.rounds == 2


def test_recorder_polls_while_recording(tmp_path):
    store = open_store(tmp_path / "store")
    raws = [f["raw"] for f in fixture("binance")["frames"]]
    with ContextHTTP() as ex, WSReplay([raws]) as ws:
        _serve_last_day(ex, "binance")
        poller = ContextPoller(["binance"], ["BTCUSDT"], store, api_bases={"binance": ex.base}, retries=0)
        rec = Recorder(["binance"], store=store, journal_dir=tmp_path / "journal",
                       endpoints={"binance": {"ws": ws.url, "rest": ex.base}}, backoff=Backoff(0.05, 0.2),
                       flush_interval=0.05, store_interval=0.1, fsync=False, context_poll=poller)
        rec.start()
        try:
            assert _until(lambda: poller.rounds >= 2 and len(store.liquidations()) == 5)
            assert poller.running and rec.running
        finally:
            rec.stop()
        assert not poller.running
    assert len(store.open_interest()) > 0 and len(store.funding()) > 0
    assert len(store.liquidations()) == 5


def test_recorder_builds_its_poller_from_its_endpoints(tmp_path):
    store = open_store(tmp_path / "store")
    rec = Recorder(["binance", "okx"], symbols=["BTC"], store=store, journal_dir=tmp_path / "j",
                   endpoints={"okx": {"ws": "ws://127.0.0.1:9", "rest": "http://127.0.0.1:9"}}, context_poll=True)
    assert isinstance(rec.context, ContextPoller)
    assert rec.context.api_bases == {"okx": "http://127.0.0.1:9"} and rec.context.symbols == ["BTC"]
    assert Recorder(["binance"], store=store, journal_dir=tmp_path / "j").context is None
