"""Linked drill-down panels at scale: the cost of one refresh, and how often a drag triggers one.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/bench_panels.py [--events 2000000]

Builds 2M synthetic liquidations over ~3 days (bench_render's generator), shows a
window holding ~600k of them, opens a linked exchange panel and a linked asset
panel, then prints one JSON line: the median/p95 time of one panel refresh, and how
many refreshes a burst of 30 window changes (a drag) causes before the throttle fires.
Runs against whatever Liqscope is installed, so the same script measures old and new code.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

import pandas as pd  # noqa: E402

from bench_render import T0, build_dataset  # noqa: E402


def make_window(ds, start, end):
    from liqscope.gui.main_window import MainWindow
    try:
        from liqscope.models.view import View
    except ImportError:  # code from before the one-view change
        from liqscope.gui.state import View
    try:
        w = MainWindow(restore=False)  # placeholder, then the data swapped in (as the app starts)
        w.set_dataset(ds, View(start=start, end=end))
    except TypeError:
        w = MainWindow(ds, View(start=start, end=end), restore=False)
    return w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    from liqscope.gui.app import make_app, settle

    make_app()
    minutes = 3 * 1440
    ds = build_dataset(minutes, args.events)
    ds.index()
    start, end = T0 + pd.Timedelta(hours=12), T0 + pd.Timedelta(hours=12 + 21.6)  # ~30% of the events
    w = make_window(ds, start, end)
    w.resize(1600, 1000)
    w.show()
    settle(w)
    in_view = ds.index().totals(start, end).count
    out = {"events": args.events, "in_view": in_view}
    for kind, open_panel in (("exchange", lambda: w.drilldown.open_exchange("binance")),
                             ("asset", lambda: w.drilldown.open_asset("BTC"))):
        panel = open_panel()
        settle(w)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            panel.refresh()
            times.append((time.perf_counter() - t) * 1000)
        out[f"{kind}_refresh_ms"] = {"median": round(statistics.median(times), 1),
                                     "p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 1)}
        calls = []
        real = type(panel).refresh
        type(panel).refresh = lambda self, _r=real: (calls.append(1), _r(self))[1]
        v = w.state.view
        for i in range(30):  # a drag: 30 window changes, each flushed as the 15 ms coalescing timer would
            w.state.update(start=v.start + pd.Timedelta(minutes=i), end=v.end + pd.Timedelta(minutes=i))
            w.state.flush()
        out[f"{kind}_refreshes_during_30_changes"] = len(calls)
        type(panel).refresh = real
        panel.close()
        settle(w)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
