"""Rendering benchmark: Liqscope's window vs finplot on the same candles.

    .venv/bin/pip install --no-deps finplot      # optional, benchmark only
    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/bench/bench_render.py [--quick]

Each case runs in its own subprocess (clean peak RSS) and prints one JSON line:
time to first painted frame, median/p95 frame time over a scripted sequence of
50 pans and 50 zooms (request -> coalesced recompute -> synchronous repaint of
the window, offscreen, 1600x900), peak RSS, and for finplot the same figures
on the same candles. Data is built in memory before timing starts.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd

W, H = 1600, 900
T0 = pd.Timestamp("2006-01-02", tz="UTC")
EXCHANGES = ["binance", "okx", "bybit", "bitget", "gate"]
ASSETS = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE"]


def make_candles(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.DatetimeIndex(T0.value + np.arange(n, dtype=np.int64) * 60_000_000_000, tz="UTC", name="ts")
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0006, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, n)) * close
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + wick,
                         "low": np.minimum(open_, close) - wick, "close": close,
                         "volume": rng.lognormal(1, 0.5, n)}, index=idx)


def make_liquidations(n: int, span_minutes: int, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = T0.value + np.sort(rng.integers(0, span_minutes * 60_000_000_000, n))
    price = 30_000 * np.exp(rng.normal(0, 0.3, n))
    notional = np.minimum(2_000 * (1 - rng.random(n)) ** (-1 / 1.25), 1e7)
    cat = lambda values, k: pd.Categorical.from_codes(rng.integers(0, len(values), n), categories=values)  # noqa: E731
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(ts, tz="UTC"), "exchange": cat(EXCHANGES, n), "symbol": cat([a + "USDT" for a in ASSETS], n),
        "asset": cat(ASSETS, n), "side": pd.Categorical.from_codes(rng.integers(0, 2, n), categories=["long", "short"]),
        "price": price, "qty": notional / price, "notional_usd": notional,
    })


def build_dataset(n_candles: int, n_liqs: int):
    from liqscope.models.dataset import Dataset
    from liqscope.models.liquidations import LiquidationModel
    from liqscope.models.prices import PriceModel, SeriesKey

    prices = PriceModel()
    # data "already in memory": register the frame as-is (it is valid by construction)
    key = SeriesKey("binance", "BTCUSDT", "1m")
    prices._series[key] = make_candles(n_candles)
    prices._asset[("binance", "BTCUSDT")] = "BTC"
    liqs = LiquidationModel(make_liquidations(n_liqs, n_candles), _trusted=True) if n_liqs else LiquidationModel()
    return Dataset(prices, liqs, label="benchmark")


def frame_sequence(t_first: pd.Timestamp, t_last: pd.Timestamp, n: int = 50, seed: int = 3):
    """50 pans then 50 zooms, over all zoom levels (1 h to the whole range)."""
    rng = np.random.default_rng(seed)
    total = (t_last - t_first).total_seconds()
    windows = []
    span = 6 * 3600.0
    centre = t_first.value / 1e9 + total / 2
    for i in range(n):  # drag pans of ~10% of the view
        centre += span * 0.1 * (1 if i % 10 < 5 else -1)
        windows.append((centre - span / 2, centre + span / 2))
    spans = np.geomspace(3600, total, n // 2)
    spans = np.concatenate([spans[::-1], spans])[:n]  # zoom in, then out again
    for s in spans:
        c = t_first.value / 1e9 + rng.uniform(s / 2, max(s / 2, total - s / 2))
        windows.append((c - s / 2, c + s / 2))
    return windows


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stats(times: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "max_ms": round(ms[-1], 2)}


def run_ours(n_candles: int, n_liqs: int, extras: bool) -> dict:
    from liqscope.gui.app import make_app, settle
    from liqscope.gui.main_window import MainWindow
    from liqscope.gui.state import View

    t = time.perf_counter()
    ds = build_dataset(n_candles, n_liqs)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    ds.index()
    index_s = time.perf_counter() - t
    app = make_app()
    # a real session has imported and styled the window classes before its data arrives
    warm = MainWindow(build_dataset(1000, 100), restore=False)
    warm.show()
    app.processEvents()
    warm.close()
    key_frame = ds.prices._series[next(iter(ds.prices._series))]
    first, last = key_frame.index[0], key_frame.index[-1]
    start = last - pd.Timedelta(days=1)
    os.environ["LIQSCOPE_CONFIG_DIR"] = os.environ.get("TMPDIR", "/tmp") + "/liqscope-bench-cfg"
    # The app paints its window at once and swaps the data in when loaded (gui/app.py), so the
    # first frame with data = set_dataset() + layout + paint. Also timed: building the window on
    # the data directly (constructor + first paint).
    t = time.perf_counter()
    direct = MainWindow(ds, View(start=start, end=last), restore=False)
    direct.resize(W, H)
    direct.show()
    app.processEvents()
    direct.repaint()
    ctor_paint = time.perf_counter() - t
    direct.close()
    from liqscope.models.dataset import Dataset

    win = MainWindow(Dataset(label="Loading data…"), restore=False)
    win.resize(W, H)
    win.show()
    app.processEvents()
    t = time.perf_counter()
    win.set_dataset(ds, View(start=start, end=last))
    win.update_headline()
    app.processEvents()
    win.repaint()
    first_paint = time.perf_counter() - t
    settle(win)
    vb = win.price.vb
    times, pans, zooms, lod_steps = [], [], [], []
    origin = win.origin_s
    for i, (a, b) in enumerate(frame_sequence(first, last)):
        level_before = win.price.level
        t = time.perf_counter()
        vb.setXRange(a - origin, b - origin, padding=0)  # what a drag/wheel event requests
        win.state.flush()                                # the coalesced recompute
        win.update_headline()
        win.repaint()                                    # synchronous repaint, offscreen
        dt = time.perf_counter() - t
        times.append(dt)
        (pans if i < 50 else zooms).append(dt)
        if win.price.level != level_before:
            lod_steps.append(dt)
    out = {"impl": "liqscope", "candles": n_candles, "liquidations": n_liqs, "build_s": round(build_s, 2),
           "index_build_s": round(index_s, 3), "first_paint_ms": round(first_paint * 1000, 1),
           "window_ctor_and_paint_ms": round(ctor_paint * 1000, 1),
           "frames": stats(times), "pans": stats(pans), "zooms": stats(zooms),
           "level_change_frames": stats(lod_steps) if lod_steps else None,
           "markers_drawn_max": int(sum(len(m.data) for m in win.price.markers.values())),
           "marker_size_buckets": 6, "peak_rss_mb": round(rss_mb())}
    if extras and n_liqs:
        # headline recompute over the whole range (all events in the window)
        hs = []
        for _ in range(20):
            t = time.perf_counter()
            ds.summary(first, last + pd.Timedelta(minutes=1), largest=1)
            hs.append(time.perf_counter() - t)
        out["headline_full_range"] = stats(hs)
        # PNG export at physical resolution (2x device pixel ratio), with the app's exporter
        from liqscope.gui.export import render_widget, save_image
        from liqscope.models.export import liquidations_table, write_csv
        from liqscope.models.liquidations import LiquidationModel

        tmp = os.environ.get("TMPDIR", "/tmp")
        t = time.perf_counter()
        img = render_widget(win.centralWidget(), 2.0)  # File ▸ Export PNG 2× renders the view
        save_image(img, os.path.join(tmp, "liqscope-bench.png"))
        out["png_export_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out["png_size"] = [img.width(), img.height()]
        # CSV export of 1M raw events (ISO UTC timestamps, plain numbers), with the app's exporter
        rows = LiquidationModel(ds.liquidations.frame.iloc[:1_000_000], _trusted=True)
        t = time.perf_counter()
        n = write_csv(liquidations_table(rows), os.path.join(tmp, "liqscope-bench.csv"))
        out["csv_export_1M_s"] = round(time.perf_counter() - t, 2)
        out["csv_rows"] = n
    win.close()
    app.processEvents()
    return out


def run_finplot(n_candles: int) -> dict:
    import finplot as fplt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    df = make_candles(n_candles)
    data = pd.DataFrame({"time": df.index.tz_localize(None), "open": df.open.values, "close": df.close.values,
                         "high": df.high.values, "low": df.low.values})
    first, last = df.index[0], df.index[-1]
    t = time.perf_counter()
    ax = fplt.create_plot("finplot", init_zoom_periods=1440)
    fplt.candlestick_ochl(data, ax=ax)
    fplt.show(qt_exec=False)
    win = fplt.windows[0]
    win.resize(W, H)
    app.processEvents()
    win.repaint()
    first_paint = time.perf_counter() - t
    times, pans, zooms = [], [], []
    for i, (a, b) in enumerate(frame_sequence(first, last)):
        t = time.perf_counter()
        fplt.set_x_pos(pd.Timestamp(a, unit="s"), pd.Timestamp(b, unit="s"), ax=ax)
        app.processEvents()
        win.repaint()
        dt = time.perf_counter() - t
        times.append(dt)
        (pans if i < 50 else zooms).append(dt)
    return {"impl": "finplot", "candles": n_candles, "first_paint_ms": round(first_paint * 1000, 1),
            "frames": stats(times), "pans": stats(pans), "zooms": stats(zooms), "peak_rss_mb": round(rss_mb())}


CASES = [
    ("liqscope", 100_000, 0), ("finplot", 100_000, 0),
    ("liqscope", 1_000_000, 0), ("finplot", 1_000_000, 0),
    ("liqscope", 10_000_000, 0), ("finplot", 10_000_000, 0),
    ("liqscope", 1_000_000, 1_000_000),
    ("liqscope", 10_000_000, 5_000_000),
    ("liqscope", 10_000_000, 10_000_000),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", nargs=3, metavar=("IMPL", "CANDLES", "LIQS"), help="run one case (internal)")
    p.add_argument("--quick", action="store_true", help="only the 100k and 1M cases")
    p.add_argument("--timeout", type=int, default=240, help="seconds per case")
    args = p.parse_args()
    if args.case:
        impl, n, m = args.case[0], int(args.case[1]), int(args.case[2])
        result = run_finplot(n) if impl == "finplot" else run_ours(n, m, extras=m > 0)
        print(json.dumps(result), flush=True)
        return 0
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for impl, n, m in CASES:
        if args.quick and n > 1_000_000:
            continue
        if impl == "finplot":
            try:
                import finplot  # noqa: F401
            except ImportError:
                print(json.dumps({"impl": "finplot", "candles": n, "skipped": "pip install --no-deps finplot"}))
                continue
        try:
            res = subprocess.run([sys.executable, __file__, "--case", impl, str(n), str(m)], env=env,
                                 capture_output=True, text=True, timeout=args.timeout)
            lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            print(lines[-1] if lines else json.dumps({"impl": impl, "candles": n, "liquidations": m,
                                                      "error": res.stderr.strip().splitlines()[-1:]}), flush=True)
        except subprocess.TimeoutExpired:
            print(json.dumps({"impl": impl, "candles": n, "liquidations": m, "error": f"timeout {args.timeout}s"}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
