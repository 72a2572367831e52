"""``liqscope fetch candles`` and ``liqscope record`` (loopback servers only)."""
from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from connector_fakes import MemoryStore, WSReplay, fixture
from liqscope.models import cli, connectors_cli
from liqscope.models.connectors import candles
from liqscope.models.connectors.journal import iter_lines, journal_files
from liqscope.models.connectors.recorder import CONNECTED, CONNECTING, OFFLINE, STOPPED, ExchangeStatus


@pytest.fixture
def mem(monkeypatch):
    store = MemoryStore()
    monkeypatch.setattr(connectors_cli, "_open_store", lambda: store)
    return store


def test_fetch_candles(http, mem, capsys):
    rc = cli.main(["fetch", "candles", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--interval", "5m",
                   "--start", "2025-05-09T00:00Z", "--end", "2025-05-09T10:00Z", "--api-base", http.base])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "binance BTCUSDT 5m: 120 candles fetched (120 new) in 1 requests" in out
    assert err == ""  # stderr is not a terminal: no bar, and nothing failed to report
    assert len(mem.candles[("binance", "BTCUSDT", "5m")]) == 120
    rc = cli.main(["fetch", "candles", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--interval", "5m",
                   "--start", "2025-05-09T00:00Z", "--end", "2025-05-09T10:00Z", "--api-base", http.base,
                   "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0 and "already complete" in out and err == ""


def test_fetch_offline_says_why_at_once(mem, capsys, monkeypatch):
    """Offline: each failed attempt prints its reason as it happens (not one error after
    all the retries), and the final error keeps the cause in words."""
    monkeypatch.setattr(candles, "fetch_candles", functools.partial(candles.fetch_candles, retries=2,
                                                                    retry_delay=0.01))
    rc = cli.main(["fetch", "candles", "--exchange", "binance", "--symbol", "BTC/USDT:USDT",
                   "--start", "2025-05-09T00:00Z", "--end", "2025-05-09T01:00Z",
                   "--api-base", "http://nonexistent.invalid", "--no-progress"])
    out, err = capsys.readouterr()
    why = "binance markets: cannot reach the exchange (name resolution failed: are you offline?)"
    assert rc == 2 and out == ""
    assert err.splitlines() == [
        f"liqscope: {why} — retry 1 of 2 in 0.01 s",
        f"liqscope: {why} — retry 2 of 2 in 0.02 s",
        f"liqscope: error: {why} after 2 retries; check the connection, then run the same command to resume "
        "(what was fetched is stored)",
    ]


def test_fetch_refused_is_not_called_offline(mem, capsys, monkeypatch, closed_port):
    monkeypatch.setattr(candles, "fetch_candles", functools.partial(candles.fetch_candles, retries=0))
    rc = cli.main(["fetch", "candles", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--start", "2025-05-09",
                   "--api-base", f"http://127.0.0.1:{closed_port}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "cannot reach the exchange (connection refused) (no retries); when the exchange is reachable," in err


@pytest.mark.parametrize("argv,message", [
    (["fetch"], "fetch needs what to fetch"),
    (["fetch", "candles", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--start", "yesterday-ish"],
     "--start: invalid time"),
    (["fetch", "candles", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--start", "2025-05-09",
      "--end", "2025-05-08"], "must be after --start"),
    (["fetch", "candles", "--exchange", "okx", "--symbol", "NOPE/USDT:USDT", "--start", "2025-05-09"],
     "okx has no market 'NOPE/USDT:USDT'"),
    (["record", "--endpoint", "okx=ws://x"], "expected EXCHANGE.ws=URL"),
    (["record", "--since", "2025-05-09"], "only apply with --replay-journal"),
    (["record", "--replay-journal", "--since", "May 9"], "expected a UTC day"),
])
def test_usage_errors_are_one_line(argv, message, http, mem, capsys):
    if "--symbol" in argv:
        argv = argv + ["--api-base", http.base]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("liqscope: error: ") and message in err and err.count("\n") == 1


def test_record_for_a_while_then_replay(mem, capsys, tmp_path):
    raws = [f["raw"] for f in fixture("binance")["frames"]]
    with WSReplay([raws]) as ws:
        rc = cli.main(["record", "--exchange", "binance", "--endpoint", f"binance.ws={ws.url}", "--duration", "1"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "binance: connected" in err and "binance: 5 liquidations, 0 gaps" in err
    assert len(mem.liquidations()) == 5
    mem.liq = mem.liq.iloc[0:0]
    assert cli.main(["record", "--replay-journal", "--exchange", "binance"]) == 0
    out = capsys.readouterr().out
    assert ("replayed 1 journal files: 8 frames, 5 liquidations (5 new, 0 stored rows replaced), 0 gaps, "
            "2 unreadable frames") in out
    assert len(mem.liquidations()) == 5


def test_record_offline_says_so_once(mem, capsys):
    """`liqscope record` offline: one line saying offline and why, not one per retry."""
    rc = cli.main(["record", "--exchange", "binance", "--endpoint", "binance.ws=ws://nonexistent.invalid:1/",
                   "--duration", "1.5"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("binance: offline (name resolution failed), retrying") == 1
    assert "binance: stopped" in err


def test_status_lines_only_on_change():
    stream = io.StringIO()
    printer = connectors_cli._StatusPrinter(stream)
    for state, reason in [(CONNECTING, ""), (OFFLINE, "name resolution failed"), (OFFLINE, "name resolution failed"),
                          (OFFLINE, "name resolution failed"), (CONNECTED, ""), (CONNECTED, ""), (STOPPED, "")]:
        printer(ExchangeStatus("okx", state, reason=reason))
    lines = [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == ["okx: connecting", "okx: offline (name resolution failed), retrying", "okx: connected",
                     "okx: stopped"]


def test_kill_minus_9_then_restart_loses_nothing(tmp_path):
    """A headless recorder is SIGKILLed mid-stream (no clean shutdown); the next
    start recovers everything the journal received, into the real store, once."""
    store_mod = pytest.importorskip("liqscope.models.store")
    from liqscope.models.connectors.recorder import Recorder

    frames = [f["raw"] for f in fixture("bybit")["frames"] if f["expect"]]
    script = [("wait_subscribe",)] + [x for raw in frames for x in (raw, ("sleep", 0.05))]
    data = tmp_path / "data"
    with WSReplay([script, []]) as ws:
        proc = subprocess.Popen(
            [sys.executable, "-m", "liqscope.models.cli", "--data-dir", str(data), "record", "--exchange", "bybit",
             "--symbols", "BTCUSDT,ROSEUSDT", "--endpoint", f"bybit.ws={ws.url}", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                files = journal_files(data / "journal", "bybit")
                n = sum(1 for p in files for _a, _b, o in iter_lines(p) if o and '"allLiquidation.' in o["d"])
                if n == len(frames):
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            else:
                raise AssertionError("the recorder never journaled the frames")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
        store = store_mod.open_store(data)
        rec = Recorder(["bybit"], symbols=["BTCUSDT"], store=store, journal_dir=data / "journal",
                       endpoints={"bybit": {"ws": ws.url}})
        rec.start()
        rec.stop()
    got = store.liquidations().frame
    assert len(got) == sum(len(f["expect"]) for f in fixture("bybit")["frames"])
    assert sorted(zip(got["symbol"].astype(str), got["side"].astype(str))) == [
        ("BTCUSDT", "long"), ("BTCUSDT", "long"), ("ROSEUSDT", "short")]
    assert not got.duplicated().any()


def test_ctrl_c_shuts_down_cleanly(tmp_path):
    """SIGINT (Ctrl-C) stops `liqscope record`: exit 0, everything stored, journal
    checkpoint at the end of the file."""
    store_mod = pytest.importorskip("liqscope.models.store")
    from liqscope.models.connectors.journal import read_pos

    raws = [f["raw"] for f in fixture("binance")["frames"]]
    data = tmp_path / "data"
    with WSReplay([raws]) as ws:
        proc = subprocess.Popen(
            [sys.executable, "-m", "liqscope.models.cli", "--data-dir", str(data), "record", "--exchange",
             "binance", "--endpoint", f"binance.ws={ws.url}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            files = journal_files(data / "journal", "binance")
            if sum(1 for p in files for _a, _b, o in iter_lines(p) if o and o["k"] == "msg") == len(raws):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "binance: 5 liquidations, 0 gaps" in err and "Traceback" not in err
    assert len(store_mod.open_store(data).liquidations()) == 5
    (path,) = journal_files(data / "journal", "binance")
    assert read_pos(path) == path.stat().st_size


def test_status_lines_say_what_was_quarantined_or_dropped():
    """Quarantined and oversize frames get a status line when their count grows (at once,
    then at most every `quiet` seconds), and the summary has the totals."""
    stream, now = io.StringIO(), [0.0]
    printer = connectors_cli._StatusPrinter(stream, quiet=10, clock=lambda: now[0])
    why = "binance BTCUSDT: time 1 ms is 20,000.0 days from when it was received (at most 24 h)"
    printer(ExchangeStatus("binance", CONNECTED))
    printer(ExchangeStatus("binance", CONNECTED, quarantined=1, last_quarantined=why))
    printer(ExchangeStatus("binance", CONNECTED, quarantined=2, last_quarantined=why))  # within 10 s: quiet
    now[0] = 11.0
    printer(ExchangeStatus("binance", CONNECTED, quarantined=3, oversize=1, last_quarantined=why))
    printer.summary({"binance": ExchangeStatus("binance", STOPPED, events_total=5, quarantined=3, oversize=1)})
    lines = [line.split(" ", 1)[1] if line[:2].isdigit() else line for line in stream.getvalue().splitlines()]
    assert lines == [
        "binance: connected",
        f"binance: 1 quarantined so far, kept in the journal (latest: {why})",
        f"binance: 3 quarantined so far, kept in the journal (latest: {why})",
        "binance: 1 oversize frame dropped so far (over the frame size limit; reconnected)",
        "binance: 5 liquidations, 0 gaps, 0 reconnects, 3 quarantined (kept in the journal), "
        "1 oversize frames dropped",
    ]


def test_record_reports_quarantine_and_oversize(mem, capsys):
    """`liqscope record` against a server sending a poisoned and an oversize frame."""
    good = [f["raw"] for f in fixture("binance")["frames"] if f["expect"]][:2]
    poison = good[0].replace('"T":', '"T":true,"x":')  # a boolean time
    with WSReplay([[good[0], poison, good[1], ("sleep", 0.1), "j" * (2 << 20)], []]) as ws:
        rc = cli.main(["record", "--exchange", "binance", "--endpoint", f"binance.ws={ws.url}", "--duration", "4"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "binance: 1 quarantined so far, kept in the journal (latest: binance: o.T is a boolean" in err
    assert "binance: 1 oversize frame dropped so far (over the frame size limit; reconnected)" in err
    assert "1 quarantined (kept in the journal), 1 oversize frames dropped" in err
