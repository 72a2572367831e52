"""Replay (models/replay.py): the clock, journal and stored-window sources; ``liqscope record --alert``."""
from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from liqscope.models import cli, connectors_cli
from liqscope.models.connectors import recorder as recorder_module
from liqscope.models.dataset import load_demo
from liqscope.models.replay import (FakeClock, Replay, ReplayError, history_before, journal_events, parse_speed,
                                    window_events)

sys.path.insert(0, str(Path(__file__).parent / "connectors"))

T0 = pd.Timestamp("2025-05-09T12:00:00Z")


def events(seconds) -> pd.DataFrame:
    return pd.DataFrame({"ts": [T0 + pd.Timedelta(seconds=s) for s in seconds], "exchange": "binance",
                         "symbol": "BTCUSDT", "asset": "BTC", "side": "long", "price": 100.0, "qty": 1.0,
                         "notional_usd": 100.0})


def test_events_go_out_in_time_order_when_their_market_time_comes():
    clock = FakeClock(1000.0)
    got = []
    ev = events([30, 0, 10, 10.02, 600])  # unsorted on purpose
    stats = Replay(ev, speed=60, clock=clock).run(lambda b: got.append((clock.now() - 1000.0, list(b["ts"]))))
    assert stats.events == 5 and stats.batches == 4
    assert [round(t, 6) for t, _ in got] == [0.0, round(10 / 60, 6), 0.5, 10.0]
    assert [len(b) for _, b in got] == [1, 2, 1, 1]  # events due within the shortest sleep go together
    assert [t for _, b in got for t in b] == sorted(ev["ts"])
    assert max(clock.sleeps) <= 0.25  # never asleep longer than a tick: a cancel is seen at once


def test_speed_changes_and_quiet_stretches_and_cancel():
    clock = FakeClock()
    r = Replay(events([0, 3600, 3601]), speed=1, clock=clock, max_wait_s=2)
    seen = []
    r.run(lambda b: seen.append(clock.now()))
    assert seen[1] == pytest.approx(2.0) and seen[2] == pytest.approx(3.0)  # an hour's gap waits 2 s

    clock = FakeClock()
    r = Replay(events([0, 100, 200]), speed=10, clock=clock)
    seen = []

    def sink(b):
        seen.append(clock.now())
        if len(seen) == 2:
            r.set_speed(100)  # from the second event on: 100 market seconds per second
    r.run(sink)
    assert seen == pytest.approx([0.0, 10.0, 11.0])

    cancel = threading.Event()
    r = Replay(events(range(0, 1000, 10)), speed=1, clock=FakeClock())
    stats = r.run(lambda b: cancel.set(), cancel=cancel)
    assert stats.cancelled and stats.events == 1

    clock = FakeClock()
    stats = Replay(events(range(0, 86400, 5)), speed=math.inf, clock=clock).run(lambda b: None)
    assert stats.events == 17280 and clock.sleeps == []  # as fast as possible: no waiting at all


def test_parse_speed():
    assert parse_speed("60") == 60 and parse_speed("600x") == 600 and parse_speed("10×") == 10
    assert parse_speed("max") == math.inf
    for bad in ("-1", "fast", "nan"):
        with pytest.raises(ValueError):
            parse_speed(bad)


def _journal(root: Path) -> Path:
    """A Binance journal day file with the documented example frames (times near now)."""
    from connector_fakes import fixture

    frames = fixture("binance")["frames"]
    t = int(frames[1]["expect"][0]["ts_ms"])
    day = pd.Timestamp(t, unit="ms", tz="UTC").strftime("%Y-%m-%d")
    path = root / "journal" / "binance" / f"{day}.jsonl"
    path.parent.mkdir(parents=True)
    with open(path, "w") as fh:
        for i, f in enumerate(frames):
            fh.write(json.dumps({"t": t + i, "k": "msg", "d": f["raw"]}) + "\n")
    return path


def test_journal_events_normalise_like_the_recorder(tmp_path):
    from connector_fakes import fixture

    path = _journal(tmp_path)
    want = sorted(int(e["ts_ms"]) for f in fixture("binance")["frames"] for e in f.get("expect", [])
                  if abs(int(e["ts_ms"]) - int(fixture("binance")["frames"][1]["expect"][0]["ts_ms"])) < 86_400_000)
    for where in (path, path.parent, tmp_path / "journal"):
        got = journal_events([where])
        assert list(got["ts"].astype("int64") // 1_000_000) == want
        assert set(got.columns) >= {"ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"}
    with pytest.raises(ReplayError):
        journal_events([tmp_path / "nowhere"])
    stray = tmp_path / "x" / "2025-05-09.jsonl"
    stray.parent.mkdir()
    stray.write_text("")
    with pytest.raises(ReplayError, match="folder named after its exchange"):
        journal_events([stray])


def test_replay_cli_plays_a_journal(tmp_path, capsys):
    path = _journal(tmp_path)
    rc = cli.main(["replay", str(path), "--speed", "max", "--alert", "single>=25k", "--tape", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = out.splitlines()
    alerts = [line for line in lines if " ALERT " in line]
    assert len(alerts) == 1 and "[single>=25k] binance ETHUSDT short liquidated $30.0K" in alerts[0]
    assert len(lines) - len(alerts) == len(journal_events([path]))
    assert "replayed" in err and "1 alert" in err


def test_window_events_of_the_demo_and_history_before():
    ds = load_demo()
    s, e = pd.Timestamp("2025-05-09T20:00Z"), pd.Timestamp("2025-05-09T21:00Z")
    ev = window_events(ds, s, e)
    f = ds.liquidations.frame
    assert len(ev) == int(((f["ts"] >= s) & (f["ts"] < e)).sum())
    assert ev["ts"].is_monotonic_increasing and ev["ts"].min() >= s and ev["ts"].max() < e
    h = history_before(ds, s, 1)
    assert h["ts"].max() < s and h["ts"].min() >= s - pd.Timedelta(days=1)


def test_record_alert_prints_alerts_from_the_loopback_stream(monkeypatch, capsys):
    """``liqscope record --alert``: the recorder's events reach the alert monitor; recording itself is unchanged
    (same stored events, same status lines) and the recorder class is restored afterwards."""
    from connector_fakes import MemoryStore, WSReplay, fixture

    store = MemoryStore()
    monkeypatch.setattr(connectors_cli, "_open_store", lambda: store)
    raws = [f["raw"] for f in fixture("binance")["frames"]]
    before = recorder_module.Recorder
    with WSReplay([raws]) as ws:
        rc = cli.main(["record", "--exchange", "binance", "--endpoint", f"binance.ws={ws.url}", "--duration", "1",
                       "--alert", "single>=25k", "--alert", "minute>=30k"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert recorder_module.Recorder is before
    assert "binance: 5 liquidations, 0 gaps" in err and "alerts: single>=25k, minute>=30k" in err
    alerts = [line for line in out.splitlines() if " ALERT " in line]
    assert any("[single>=25k] binance ETHUSDT short liquidated $30.0K" in line for line in alerts), out
    assert any("[minute>=30k]" in line for line in alerts), out
    assert len(store.liquidations()) == 5


def test_record_alert_is_refused_with_replay_journal(capsys):
    assert cli.main(["record", "--replay-journal", "--alert", "cascade"]) == 2
    assert "--alert applies when recording" in capsys.readouterr().err
