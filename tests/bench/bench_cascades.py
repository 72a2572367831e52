"""Cascade detection benchmark (a script, not a test): prints one JSON object per line.

On the cached 100M-event, 5-year store of ``bench_scale.py`` (build it first with
``.venv/bin/python tests/bench/bench_scale.py``; a store cached before the per-minute rollups existed needs
``liqscope store rebuild-rollups --data-dir STORE`` once, or the run reads raw rows and says so):

* ``cli_cascades``: ``liqscope cascades --data-dir STORE --json`` (default --limit 20) as a whole process:
  wall seconds against the 10 s target, peak RSS of the child (GNU ``time`` when present);
* ``inproc_minutes`` / ``inproc_detect`` / ``inproc_details``: the phases in process (per-minute
  aggregation of every counted event, detection, details of the 20 largest), and the machine's load
  average, since other jobs on a 2-core machine slow every phase.

    .venv/bin/python tests/bench/bench_cascades.py [--store DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path.home() / ".cache/liqscope/bench_scale"
TARGET_S = 10.0


def default_store() -> Path | None:
    """The newest 100M-event store bench_scale.py cached (its folder name carries the generator's key)."""
    found = sorted(CACHE.glob("store-100000000-5y-*"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def emit(**rec) -> None:
    print(json.dumps(rec, default=str), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", type=Path, default=default_store())
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if args.store is None or not (args.store / "liquidations").exists():
        print(f"no benchmark store at {args.store}: run tests/bench/bench_scale.py first", file=sys.stderr)
        return 2
    exe = [sys.executable, "-m", "liqscope.models.cli"]
    gtime = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    for i in range(args.repeat):
        cmd = exe + ["cascades", "--data-dir", str(args.store), "--json"]
        if gtime:
            cmd = [gtime, "-f", "RSSKB=%M"] + cmd
        load = os.getloadavg()[0]
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        sec = time.perf_counter() - t
        rss = next((int(x.split("=")[1]) / 1024 for x in res.stderr.split() if x.startswith("RSSKB=")), None)
        lines = res.stdout.splitlines()
        top = json.loads(lines[0]) if lines else {}
        emit(case="cli_cascades", run=i + 1, seconds=round(sec, 2), target=TARGET_S, met=sec <= TARGET_S,
             exit=res.returncode, cascades=len(lines), peak_rss_mb=rss and round(rss),
             load_avg_1m=round(load, 2), largest={k: top.get(k) for k in ("start", "end", "assets", "total_usd")})
    from liqscope.models import cascades as C
    from liqscope.models.cascades_store import store_details, store_minutes
    from liqscope.models.store import open_store

    store = open_store(args.store)
    load = os.getloadavg()[0]
    t = time.perf_counter()
    mins = store_minutes(store)
    t1 = time.perf_counter()
    found = C.detect(mins)
    t2 = time.perf_counter()
    store_details(store, found[:20], C.Params())
    t3 = time.perf_counter()
    emit(case="inproc_minutes", seconds=round(t1 - t, 2), cells=len(mins), assets=len(mins.names), load_avg_1m=round(load, 2))
    emit(case="inproc_detect", seconds=round(t2 - t1, 2), cascades=len(found))
    emit(case="inproc_details", seconds=round(t3 - t2, 2), listed=min(20, len(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
