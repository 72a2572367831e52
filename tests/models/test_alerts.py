"""Alert rules (models/alerts.py): parsing, evaluation on replayed data, the queue, persistence, the CLI."""
from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from liqscope.models import cli
from liqscope.models.alerts import (AlertEngine, AlertMonitor, AlertSettings, RuleError, load_settings, parse_rule,
                                    parse_size, save_settings)
from liqscope.models.cascade_search import find_cascades
from liqscope.models.dataset import load_demo
from liqscope.models.replay import FakeClock, Replay

T0 = pd.Timestamp("2025-05-09T12:00:00Z")


def frame(rows) -> pd.DataFrame:
    """rows: (seconds after T0, asset, usd[, side, exchange])."""
    out = []
    for r in rows:
        sec, asset, usd = r[:3]
        side = r[3] if len(r) > 3 else "long"
        ex = r[4] if len(r) > 4 else "binance"
        out.append({"ts": T0 + pd.Timedelta(seconds=sec), "exchange": ex, "symbol": f"{asset}USDT", "asset": asset,
                    "side": side, "price": 100.0, "qty": usd / 100.0, "notional_usd": float(usd)})
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def demo():
    return load_demo()


def test_rule_syntax_round_trips():
    assert parse_rule("single>=1000000").usd == 1e6
    assert parse_rule("single >= 1M").text == "single>=1M"
    assert parse_rule("minute>=$2.5M@eth").text == "minute>=2.5M@ETH"
    assert parse_rule("single>=p99.5").percentile == 99.5
    assert parse_rule("cascade@btc").asset == "BTC"
    assert parse_size("750k") == 750_000 and parse_size("1e6") == 1e6 and parse_size("1,000,000") == 1e6
    for bad in ("single", "single>=0", "single>=-5", "minute>=p99", "cascade>=1M", "burst>=1M", "single>=p100",
                "single>=lots"):
        with pytest.raises(RuleError):
            parse_rule(bad)


def test_single_and_minute_rules_fire_exactly_when_expected_on_a_replay_with_a_fake_clock():
    events = frame([(1, "BTC", 400_000), (20, "BTC", 1_200_000), (30, "ETH", 900_000),
                    (61, "ETH", 300_000), (62, "BTC", 2_000_000), (70, "BTC", 100_000), (130, "ETH", 5_000)])
    clock = FakeClock()
    engine = AlertEngine(["single>=1M", "minute>=2M", "minute>=2M@ETH"], clock=clock.now)
    fired, batches = [], []

    def sink(batch):
        batches.append((clock.now(), len(batch)))
        fired.append((clock.now(), engine.feed(batch)))

    stats = Replay(events, speed=10, clock=clock).run(sink)
    assert stats.events == len(events) and not stats.cancelled
    # every event is handed over when its market time comes: 10x faster than the clock from the first event
    assert [t for t, _n in batches] == pytest.approx([0.0, 1.9, 2.9, 6.0, 6.1, 6.9, 12.9])
    alerts = [(t, a.rule, a.ts) for t, got in fired for a in got]
    assert alerts == [
        (pytest.approx(1.9), "single>=1M", T0 + pd.Timedelta(seconds=20)),
        (pytest.approx(2.9), "minute>=2M", T0),                            # 0.4 + 1.2 + 0.9M in 12:00
        (pytest.approx(6.1), "single>=1M", T0 + pd.Timedelta(seconds=62)),
        (pytest.approx(6.1), "minute>=2M", T0 + pd.Timedelta(seconds=60)),  # 0.3 + 2.0M in 12:01
    ]  # ETH never has 2M in a minute


def test_minute_rule_fires_once_when_the_total_crosses():
    events = frame([(1, "BTC", 900_000), (20, "BTC", 900_000), (30, "ETH", 900_000), (40, "BTC", 900_000)])
    engine = AlertEngine(["minute>=2M", "minute>=1M@ETH", "minute>=1M@BTC"])
    got = [[(a.rule, a.usd) for a in engine.feed(events.iloc[i:i + 1])] for i in range(len(events))]
    assert got == [[], [("minute>=1M@BTC", 1_800_000)], [("minute>=2M", 2_700_000)], []]


def test_percentile_rule_uses_the_assets_own_recent_sizes():
    rng = np.random.default_rng(1)
    small = [(i, "DOGE", float(x)) for i, x in enumerate(rng.uniform(1_000, 2_000, 300))]
    big = [(i, "BTC", float(x)) for i, x in enumerate(rng.uniform(100_000, 200_000, 300))]
    engine = AlertEngine(["single>=p99"])
    engine.seed(frame(small + big))
    out = engine.feed(frame([(400, "DOGE", 5_000), (401, "BTC", 5_000), (402, "BTC", 250_000)]))
    assert [(a.asset, a.usd) for a in out] == [("DOGE", 5_000), ("BTC", 250_000)]  # never one USD figure for both
    assert AlertEngine(["single>=p99"]).feed(frame([(1, "BTC", 1e9)])) == []  # no history: no percentile yet


def test_cascade_alerts_on_the_replayed_demo_day_match_detection(demo):
    """Replaying the demo day (history before it seeds the baselines) announces most cascades find_cascades
    lists for that day (the streaming baseline cannot see the rest of the day), within two minutes of their
    start and while they unfold -- the largest one always."""
    f = demo.liquidations.frame
    day = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))
    engine = AlertEngine(["cascade"])
    engine.seed(f[f["ts"] < day[0]])
    events = f[(f["ts"] >= day[0]) & (f["ts"] < day[1])]
    fired = []
    Replay(events, speed=600, clock=FakeClock()).run(lambda b: fired.extend(engine.feed(b)))
    found = find_cascades(demo, start=day[0], end=day[1])
    announced = 0
    for c in found:
        near = [a for a in fired if abs((a.ts - c.start).total_seconds()) <= 120]
        if near and pd.Timestamp(near[0].details["seen_at"]) < c.end:  # announced while it unfolds
            announced += 1
    assert announced >= 0.75 * len(found), (announced, len(found))
    top = find_cascades(demo, start=day[0], end=day[1], limit=1)[0]
    first = next(a for a in fired if abs((a.ts - top.start).total_seconds()) <= 120)
    assert first.asset in top.assets and first.message.startswith(f"cascade starting: {first.asset} $")


def test_the_monitor_never_blocks_the_feeder_and_loses_nothing():
    """A slow evaluation (here: held on an event) does not hold up the replay; every alert arrives."""
    gate = threading.Event()
    received = []
    monitor = AlertMonitor(AlertEngine(["single>=1M"]), on_alert=received.append)
    monitor.call(lambda _eng: gate.wait(30))  # the evaluation thread is busy until the gate opens
    events = frame([(i, "BTC", 2_000_000) for i in range(50)])
    stats = Replay(events, speed=1, clock=FakeClock()).run(monitor.submit)
    assert stats.events == 50  # the replay finished while nothing was evaluated
    assert received == [] and monitor.pending >= 50
    gate.set()
    assert monitor.flush(30)
    assert len(received) == 50 == len(monitor.log) == monitor.fired
    assert [a.ts for a in received] == list(events["ts"])


def test_settings_persist_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQSCOPE_CONFIG_DIR", str(tmp_path))
    assert load_settings().rules == []
    s = AlertSettings([parse_rule("single>=1M"), parse_rule("cascade", enabled=False)], desktop=False, sound=True)
    path = save_settings(s)
    assert path == tmp_path / "alerts.json"
    back = load_settings()
    assert [(r.text, r.enabled) for r in back.rules] == [("single>=1M", True), ("cascade", False)]
    assert (back.desktop, back.sound) == (False, True)
    path.write_text(json.dumps({"rules": [{"rule": "nonsense"}, {"rule": "minute>=5M"}]}))
    assert [r.text for r in load_settings().rules] == ["minute>=5M"]  # a bad rule is left out, not fatal
    path.write_text("{not json")
    assert load_settings().rules == []


def test_replay_cli_prints_the_alerts_of_a_stored_window(capsys, demo):
    """``liqscope replay`` prints what the engine fires on the window's events (seeded with the days before)
    and the tape of the large ones, in market-time order."""
    start, end = pd.Timestamp("2025-05-09T20:00Z"), pd.Timestamp("2025-05-09T20:30Z")
    rules = ["cascade", "minute>=5M", "single>=1M"]
    rc = cli.main(["--demo", "replay", "--start", "2025-05-09T20:00Z", "--end", "2025-05-09T20:30Z",
                   "--speed", "max", *[x for r in rules for x in ("--alert", r)], "--tape", "1e6"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    f = demo.liquidations.frame
    events = f[(f["ts"] >= start) & (f["ts"] < end)]
    engine = AlertEngine(rules)
    engine.seed(f[(f["ts"] < start) & (f["ts"] >= start - pd.Timedelta(days=8))])
    expected = [a.line() for a in engine.feed(events)]
    assert expected  # the window holds alerts
    lines = out.splitlines()
    assert [line for line in lines if " ALERT [" in line] == expected
    tape = [line for line in lines if " ALERT [" not in line]
    big = events[events["notional_usd"] >= 1e6]
    assert len(tape) == len(big) and tape[0].startswith(f"{big['ts'].iloc[0]:%Y-%m-%d %H:%M:%S} ")
    assert f"replayed {len(events):,} of {len(events):,} liquidations, {len(expected)} alerts" in err


def test_replay_cli_refuses_bad_arguments_in_one_line(capsys, tmp_path):
    for argv in (["replay", "--alert", "single>=lots"], ["replay", "--speed", "fast"],
                 ["replay", str(tmp_path / "missing.jsonl")],
                 ["--demo", "replay", "--start", "2025-05-10", "--end", "2025-05-09"]):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse's own checks
            rc = exc.code
        assert rc == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("liqscope: error: ") and err.count("\n") == 1, err
