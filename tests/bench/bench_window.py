"""The window on a large store, off screen: frames while panning and zooming, and how long the exact part
takes to arrive once a gesture stops. Prints one JSON line per case.

``bench_scale.py --cases window`` runs it as a child on its cached 100M-event store (and measures the
launch of ``liqscope --screenshot`` itself); on its own:

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/bench_window.py --data-dir STORE --day 2023-06-15

A frame is one view change as a drag or wheel step makes it (``ViewState.update`` + ``flush``: the redraw
of both panes, markers and the status line; the headline redraw is throttled and timed too).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import pandas as pd


def emit(**kw) -> None:
    print(json.dumps(kw, default=str), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--day", required=True, help="a day with data, YYYY-MM-DD")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LIQSCOPE_DATA_DIR"] = args.data_dir
    from liqscope.gui.app import make_app, settle
    from liqscope.gui.loader import read_store
    from liqscope.gui.main_window import MainWindow
    from liqscope.models.view import View

    app = make_app()
    w = MainWindow(restore=False)
    w.resize(1600, 1000)
    w.show()
    day = pd.Timestamp(args.day, tz="UTC")
    t = time.perf_counter()
    ds = read_store(View(start=day, end=day + pd.Timedelta(days=1)))
    w.set_dataset(ds, View(start=day, end=day + pd.Timedelta(days=1)))
    settle(w)
    emit(case="window_first_frame_24h_in_process", seconds=round(time.perf_counter() - t, 3),
         held_rows=len(w.dataset.liquidations))

    def wait_served(limit: float = 120.0) -> float:
        t0 = time.perf_counter()
        while not (w.served and not w._part_timer.isActive() and not w.loader.worker.running):
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() - t0 > limit:
                break
        return time.perf_counter() - t0

    def gesture(name: str, steps) -> None:
        frames = []
        for start, end in steps:
            t0 = time.perf_counter()
            w.state.update(start=start, end=end)
            w.state.flush()
            app.processEvents()
            frames.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        w._headline_timer.stop()
        w.update_headline()
        headline_ms = (time.perf_counter() - t0) * 1000
        refine = wait_served()
        settle(w)
        emit(case=f"window_{name}", frames=len(frames), frame_median_ms=round(statistics.median(frames), 2),
             frame_max_ms=round(max(frames), 1), headline_ms=round(headline_ms, 1),
             refine_after_stop_ms=round(refine * 1000, 1), resolution_s=w.dataset.resolution_s,
             held_rows=len(w.dataset.liquidations),
             target={"frame_median_ms": 16, "frame_max_ms": 100, "refine_ms": 150})

    v = w.state.view
    span = v.end - v.start
    gesture("pan_24h", [(v.start + span * k / 50, v.end + span * k / 50) for k in range(1, 61)])
    v = w.state.view
    mid = v.start + (v.end - v.start) / 2
    r = w.dataset.time_range()
    zoom = []
    half = (v.end - v.start) / 2
    while mid - half > r[0] or mid + half < r[1]:
        half = half * 1.25
        zoom.append((max(mid - half, r[0]), min(mid + half, r[1])))
    gesture("zoom_out_to_years", zoom)
    gesture("pan_years", [(r[0] + pd.Timedelta(days=k), r[1] + pd.Timedelta(days=k)) for k in range(1, 31)])
    w.apply_preset(None)
    wait_served()
    settle(w)
    end = w.state.view.end
    zoom = []
    half = (end - w.state.view.start) / 2
    mid = w.state.view.start + half
    while half > pd.Timedelta(hours=12):
        half = half / 1.25
        zoom.append((mid - half, mid + half))
    gesture("zoom_in_to_a_day", zoom)
    import resource

    emit(case="window_peak_rss", peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
         target={"peak_rss_mb": 600})
    w.close()
    sys.stdout.flush()
    os._exit(0)  # Qt teardown is not what is measured


if __name__ == "__main__":
    main()
