"""``liqscope replay`` and ``liqscope record --alert``: replays and alerts on a terminal (Qt-free).

``liqscope replay JOURNAL...`` plays raw journal files, ``liqscope replay --start --end`` a stored window
(the store, or the demo with ``--demo``), at ``--speed`` x; ``--alert RULE`` (repeatable) prints the
alerts the rules fire, ``--tape USD`` the liquidations of at least that size. ``--alert`` is also added
to ``liqscope record`` (registered after models/connectors_cli.py, which owns ``record``): the recorder's
events then go to an :class:`~liqscope.models.alerts.AlertMonitor` too, whose thread evaluates them, so
recording is never held up by a rule.
"""
from __future__ import annotations

import argparse
import math
import sys
import threading

from .cli import UsageError, add_window_args, non_negative_float

ALERT_HELP = ("alert rule (repeatable): single>=SIZE (one liquidation of at least SIZE USD, e.g. 1M), "
              "single>=p99.5 (the asset's own percentile), minute>=SIZE (one UTC minute's total), cascade "
              "(a cascade starts); add @ASSET for one asset, e.g. single>=500k@ETH")


def _rule(text: str):
    from .alerts import RuleError, parse_rule

    try:
        return parse_rule(text)
    except RuleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _speed(text: str) -> float:
    from .replay import parse_speed

    try:
        return parse_speed(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a speed like 1, 10, 60, 600 or max") from None


def register(sub) -> None:
    p = sub.add_parser(
        "replay", help="play a recorded journal or a stored window at N x speed, printing alerts",
        description="Replay liquidations in time order at --speed x real time, through the same alert "
                    "evaluation as live recording: raw journal files (JOURNAL: a day file, an exchange's "
                    "journal folder or the journal root), or else the store's (or --demo's) window "
                    "--start/--end (default: the busiest day). Prints the alerts --alert rules fire and, "
                    "with --tape, the liquidations of at least that size.")
    p.add_argument("journal", nargs="*", metavar="JOURNAL",
                   help="journal day files (.jsonl or .jsonl.zst) or folders; none: a stored window")
    add_window_args(p)
    p.add_argument("--speed", type=_speed, default=60.0, metavar="N",
                   help="market seconds per real second: 1, 10, 60 (default), 600 ... or max (no waiting)")
    p.add_argument("--alert", action="append", type=_rule, default=[], metavar="RULE", help=ALERT_HELP)
    p.add_argument("--tape", type=non_negative_float, metavar="USD",
                   help="also print every liquidation of at least USD as it is replayed")
    p.add_argument("--max-wait", type=non_negative_float, default=5.0, metavar="S",
                   help="wait at most S real seconds between two events (skips quiet stretches; default 5)")
    p.set_defaults(func=cmd_replay)

    record = sub.choices.get("record")
    if record is not None:  # models/connectors_cli.py registers it first (COMMAND_MODULES order)
        record.add_argument("--alert", action="append", type=_rule, default=[], metavar="RULE", help=ALERT_HELP)
        plain = record.get_default("func")
        record.set_defaults(func=lambda args: cmd_record_alerts(args, plain))


class _Printer:
    """Alerts (and tape lines) on stdout, one line each, from any thread."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.count = 0

    def alert(self, alert) -> None:
        with self.lock:
            self.count += 1
            print(alert.line(), file=self.stream, flush=True)

    def tape(self, frame, min_usd: float) -> None:
        rows = frame[frame["notional_usd"].to_numpy(float) >= min_usd]
        if not len(rows):
            return
        with self.lock:
            for ts, ex, sym, side, price, amount in zip(rows["ts"], rows["exchange"].astype(str),
                                                         rows["symbol"].astype(str), rows["side"].astype(str),
                                                         rows["price"], rows["notional_usd"]):
                print(f"{ts:%Y-%m-%d %H:%M:%S} {ex:<8} {sym:<16} {side:<5} {amount:>14,.0f} USD @ {price:,.6g}",
                      file=self.stream, flush=True)


def _monitor(rules, printer: _Printer):
    from .alerts import AlertEngine, AlertMonitor

    return AlertMonitor(AlertEngine(rules), on_alert=printer.alert)


def _seed_from_store(monitor, start) -> None:
    """Cascade baselines from the store's days before ``start`` (when it has any)."""
    from .cascades_store import store_minutes
    from .store import StoreError, open_store

    try:
        store = open_store()
        if not store.has_data():
            return
        mins = store_minutes(store, end=start, warmup_from=start)
    except (StoreError, OSError, ValueError):
        return
    if len(mins):
        monitor.call(lambda eng: eng.seed_minutes(mins.names, mins.asset, mins.minute, mins.usd, mins.count))


def cmd_replay(args) -> int:
    from .cascades import Params
    from .replay import Replay, ReplayError, SystemClock, history_before, journal_events, window_events
    from .timeutil import format_time
    from .view import default_window, requested_window

    start, end = requested_window(args.start, args.end)
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--end {format_time(end)} is not after --start {format_time(start)}")
    printer = _Printer()
    monitor = _monitor(args.alert, printer) if args.alert else None
    if args.journal:
        try:
            events = journal_events(args.journal)
        except ReplayError as exc:
            raise UsageError(str(exc)) from None
        if start is not None:
            events = events[events["ts"] >= start]
        if end is not None:
            events = events[events["ts"] < end]
        what = f"{len(args.journal)} journal path{'s' if len(args.journal) != 1 else ''}"
        if monitor is not None and len(events):
            _seed_from_store(monitor, events["ts"].iloc[0])
    else:
        from .cli import load

        ds = load(args)
        if start is None or end is None:
            busiest = default_window(ds)
            start, end = start or busiest[0], end or busiest[1]
        events = window_events(ds, start, end)
        what = f"{format_time(start, 'minute')} → {format_time(end, 'minute')} UTC of {ds.label or 'the store'}"
        if monitor is not None:
            seed = history_before(ds, start, Params().baseline_days + 1)
            monitor.call(lambda eng: eng.seed(seed))
    if not len(events):
        print(f"liqscope: note: nothing to replay in {what}", file=sys.stderr)
        return 0
    cancel = threading.Event()
    replay = Replay(events, args.speed, clock=SystemClock(cancel),
                    max_wait_s=args.max_wait if args.max_wait else None)

    def sink(batch) -> None:
        if monitor is not None:
            monitor.submit(batch)  # never waits for the evaluation
        if args.tape is not None:
            printer.tape(batch, args.tape)

    speed = "as fast as possible" if math.isinf(args.speed) else f"at {args.speed:g}x"
    print(f"replaying {len(events):,} liquidations of {what} {speed}; Ctrl-C stops", file=sys.stderr)
    try:
        stats = replay.run(sink, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        stats = None
    if monitor is not None:
        monitor.flush()
        monitor.stop()
    done = stats.events if stats is not None else replay.done
    rules = f", {printer.count} alert{'s' if printer.count != 1 else ''}" if monitor is not None else ""
    print(f"replayed {done:,} of {len(events):,} liquidations{rules}", file=sys.stderr)
    return 0 if stats is not None else 130


def cmd_record_alerts(args, plain) -> int:
    """``liqscope record`` with ``--alert``: the recorder's events also go to an alert monitor."""
    rules = getattr(args, "alert", None) or []
    if not rules or getattr(args, "replay_journal", False):
        if rules:
            raise UsageError("--alert applies when recording (use `liqscope replay JOURNAL --alert ...` "
                             "to test rules on a journal)")
        return plain(args)
    import pandas as pd

    from .connectors import recorder as recorder_module

    printer = _Printer()
    monitor = _monitor(rules, printer)
    _seed_from_store(monitor, pd.Timestamp.now(tz="UTC"))
    base = recorder_module.Recorder

    class AlertingRecorder(base):
        """The recorder, with its events also queued for the alert monitor (on the journal thread: a put)."""

        def __init__(self, *a, on_events=None, **kw):
            def both(df):
                monitor.submit(df)
                if on_events is not None:
                    on_events(df)
            super().__init__(*a, on_events=both, **kw)

    # connectors_cli.cmd_record builds its Recorder from the module at call time: this run gets ours
    recorder_module.Recorder = AlertingRecorder
    try:
        print(f"alerts: {', '.join(r.text for r in rules)}", file=sys.stderr)
        return plain(args)
    finally:
        recorder_module.Recorder = base
        monitor.flush(10)
        monitor.stop()
