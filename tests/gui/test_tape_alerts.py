"""Live tape, alerts and replay in a window started the production way; replays run on a FakeClock."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from liqscope.models.alerts import AlertEngine, load_settings
from liqscope.models.format import usd
from liqscope.models.replay import FakeClock

from liqscope.models.cascade_search import find_cascades

_SPAN: list = []


def span(demo) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Around the demo day's largest cascade: 10 minutes before it to 15 after."""
    if not _SPAN:
        day = pd.Timestamp("2025-05-09", tz="UTC")
        c = find_cascades(demo, start=day, end=day + pd.Timedelta(days=1), limit=1)[0]
        _SPAN.extend([c.start - pd.Timedelta(minutes=10), c.end + pd.Timedelta(minutes=15)])
    return _SPAN[0], _SPAN[1]


@pytest.fixture
def window_size():
    return 1200, 800


def replay_window(qtbot, window, demo, speed=600.0):
    """Replay the span of the demo through the window on a fake clock; wait until it is all in."""
    ctl = window.replay
    ctl.clock_factory = lambda cancel: FakeClock()
    with qtbot.waitSignal(ctl.stopped, timeout=60_000) as blocker:
        ctl.start_window(speed, *span(demo))
    stats = blocker.args[0]
    assert stats is not None and not stats.cancelled
    # the live controller merges what arrived (every MERGE_MS): wait until the window holds it all
    qtbot.waitUntil(lambda: window.dataset.liquidations.time_range()[1] == stats.last, timeout=10_000)
    return stats


def demo_events(demo):
    start, end = span(demo)
    f = demo.liquidations.frame
    return f[(f["ts"] >= start) & (f["ts"] < end)]


def test_replay_feeds_the_tape_newest_first_and_the_charts_follow(qtbot, window, demo):
    tape = window.tape.open()
    assert tape.objectName() == "panel_tape"
    stats = replay_window(qtbot, window, demo)
    events = demo_events(demo)
    assert stats.events == len(events) and stats.batches > 1
    # the window showed the data before the start, then the replayed events arrived through the live path
    assert window.dataset.label.startswith("Replay at 600×")
    assert len(window.dataset.liquidations.window(*span(demo))) == len(events)
    window.state.flush()
    v = window.state.view
    assert v.start <= stats.last < v.end  # the view followed the live edge
    # the tape: events of at least $10K (the default), newest first
    big = events[events["notional_usd"] >= 10_000]
    assert tape.model.rowCount() == min(len(big), 2000) > 0
    ts = [r[0] for r in tape.model.rows]
    assert ts == sorted(ts, reverse=True)
    assert ts[0] == big["ts"].max().value
    from PySide6.QtCore import Qt

    cell = tape.model.index(0, 4).data()
    assert cell == usd(tape.model.rows[0][4])  # compact; exact in the tooltip
    assert f"${tape.model.rows[0][4]:,.2f}" in tape.model.index(0, 4).data(Qt.ItemDataRole.ToolTipRole)
    assert tape.model.index(0, 0).data() == pd.Timestamp(tape.model.rows[0][0], tz="UTC").strftime("%H:%M:%S")
    # colour by side
    from liqscope.gui.theme import LONG_COLOR, SHORT_COLOR
    colors = {tape.model.rows[r][3]: tape.model.index(r, 0).data(Qt.ItemDataRole.ForegroundRole).name().upper()
              for r in range(tape.model.rowCount())}
    assert colors.get("short", SHORT_COLOR) == SHORT_COLOR and colors.get("long", LONG_COLOR) == LONG_COLOR
    # the size filter
    tape.size.setCurrentText("$100K")
    sizes = np.array([r[4] for r in tape.model.rows])
    assert len(sizes) == int((big["notional_usd"] >= 100_000).sum()) and (sizes >= 100_000).all()
    assert "listed of" in tape.count.text()
    # End replay brings back the data shown before
    window.replay.end()
    window.state.flush()
    assert window.dataset is demo


def expected_alerts(demo, rules):
    f = demo.liquidations.frame
    engine = AlertEngine(rules)
    start = span(demo)[0]
    engine.seed(f[(f["ts"] < start) & (f["ts"] >= start - pd.Timedelta(days=8))])
    return [a.line() for a in engine.feed(demo_events(demo))]


def test_alert_rules_fire_on_replayed_data_exactly_as_expected(qtbot, window, demo):
    rules = ["single>=1M", "minute>=2M", "cascade"]
    dock = window.alerts.open()
    for r in rules:
        dock.edit.setText(r)
        assert dock.add_from_edit()
    dock.edit.setText("single>=lots")
    assert not dock.add_from_edit() and "single>=lots" in dock.error.text()
    assert [r.text for r in load_settings().rules] == rules  # persisted (JSON in the config dir)
    want = expected_alerts(demo, rules)
    assert want
    ctl = window.alerts.controller
    replay_window(qtbot, window, demo)
    assert ctl.monitor.flush(30)
    qtbot.waitUntil(lambda: ctl.log.rowCount() == len(want), timeout=10_000)
    assert [a.line() for a in reversed(ctl.log.alerts)] == want  # the log: newest first
    assert dock.log_view.model().rowCount() == len(want)
    last = ctl.log.alerts[0]
    assert ctl.notice.isVisible() and last.message in ctl.notice.text()  # the in-app notice


def test_replay_is_never_blocked_by_the_alert_evaluation(qtbot, window, demo):
    """The evaluation thread is held; the replay still runs to its end, and every alert arrives later."""
    ctl = window.alerts.controller
    ctl.set_rules(["single>=1M"])
    gate = threading.Event()
    ctl.monitor.call(lambda _engine: gate.wait(60))
    replay_window(qtbot, window, demo)  # finished while no rule was evaluated
    assert ctl.log.rowCount() == 0 and ctl.monitor.pending > 0
    gate.set()
    want = expected_alerts(demo, ["single>=1M"])
    qtbot.waitUntil(lambda: ctl.log.rowCount() == len(want), timeout=20_000)


def test_the_recorders_events_go_to_the_alert_monitor(window):
    """While recording, the recorder's own thread hands its events to the monitor (wrapped factory)."""
    made = {}

    def factory(exchanges, **kw):
        made.update(kw)
        return object()

    window.live.recorder_factory = factory
    window.alerts.controller.hook(window.live)
    window.live.recorder_factory(["binance"], on_events=lambda f: made.setdefault("direct", len(f)))
    ctl = window.alerts.controller
    ctl.set_rules(["single>=1"])
    frame = window.dataset.liquidations.frame.head(3)
    made["on_events"](frame)  # what the recorder's journal thread calls
    assert made["direct"] == 3
    assert ctl.monitor.flush(10) and ctl.monitor.fired == 3
