"""Live recorder memory benchmark (a script, not a test): does memory level off?

A loopback WebSocket server streams Binance ``forceOrder`` frames (one
liquidation each, over ``--symbols`` symbols) at ``--rate`` events/s into a
:class:`Recorder` writing a real store and journal in a temporary folder.
Every ``--every`` seconds one JSON line gives the process's resident memory and
what the recorder did; no number here is asserted anywhere.

    .venv/bin/python tests/bench/bench_recorder.py [--seconds 120] [--rate 700] [--symbols 300]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from liqscope.models.connectors.recorder import Recorder
from liqscope.models.store import open_store


def rss_mb() -> float:
    """Current resident set size (Linux /proc), else the peak (getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


class Stream:
    """Loopback server sending ``rate`` forceOrder frames per second, in 10 ms ticks."""

    def __init__(self, rate: float, symbols: int):
        self.rate, self.symbols = rate, [f"B{i:04d}USDT" for i in range(symbols)]
        self.sent = 0
        self.port = None
        self._ready = threading.Event()
        self._stop = None
        self.loop = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def frame(self, i: int) -> str:
        now = time.time_ns() // 1_000_000
        sym = self.symbols[i % len(self.symbols)]
        price = f"{100 + (i % 1000) / 10:.1f}"
        qty = f"{1 + i % 7}"
        return json.dumps({"e": "forceOrder", "E": now, "o": {
            "s": sym, "S": "SELL" if i % 2 else "BUY", "o": "LIMIT", "f": "IOC", "q": qty, "p": price, "ap": price,
            "X": "FILLED", "l": qty, "z": qty, "T": now}}, separators=(",", ":"))

    async def _handler(self, ws):
        from websockets.exceptions import ConnectionClosed

        start, tick, first = time.monotonic(), 0, self.sent
        try:
            while True:
                tick += 1
                due = first + int(self.rate * tick / 100)
                while self.sent < due:
                    await ws.send(self.frame(self.sent))
                    self.sent += 1
                await asyncio.sleep(max(0.0, start + tick / 100 - time.monotonic()))
        except ConnectionClosed:
            pass  # the recorder stopped

    def _run(self):
        from websockets.asyncio.server import serve

        async def main():
            self._stop = asyncio.Event()
            async with serve(self._handler, "127.0.0.1", 0, ping_interval=None) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                self._ready.set()
                await self._stop.wait()

        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(main())

    def __enter__(self):
        self.thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(5)


def emit(**rec) -> None:
    print(json.dumps(rec), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="how long to record (default 120)")
    ap.add_argument("--rate", type=float, default=700.0, help="events per second (default 700)")
    ap.add_argument("--symbols", type=int, default=300, help="distinct symbols (default 300)")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between reports (default 10)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liqscope-bench-recorder-"))
    try:
        with Stream(args.rate, args.symbols) as stream:
            rec = Recorder(["binance"], store=open_store(tmp / "store"), journal_dir=tmp / "journal",
                           endpoints={"binance": {"ws": f"ws://127.0.0.1:{stream.port}", "rest": "http://127.0.0.1:9"}})
            emit(phase="start", rss_mb=round(rss_mb(), 1), rate=args.rate, seconds=args.seconds,
                 symbols=args.symbols)
            t0 = time.monotonic()
            rec.start()
            try:
                next_report = args.every
                while True:
                    elapsed = time.monotonic() - t0
                    if elapsed >= next_report or elapsed >= args.seconds:
                        st = rec.status()["binance"]
                        journal = sum(p.stat().st_size for p in (tmp / "journal").rglob("*.jsonl"))
                        emit(t=round(elapsed), rss_mb=round(rss_mb(), 1), sent=stream.sent, stored=st.events_total,
                             unstored=st.unstored, per_minute=round(st.events_per_minute),
                             quarantined=st.quarantined, journal_mb=round(journal / 2**20, 1), state=st.state)
                        next_report += args.every
                    if elapsed >= args.seconds:
                        break
                    time.sleep(min(0.5, max(0.0, next_report - elapsed)))
            finally:
                rec.stop()
            st = rec.status()["binance"]
            emit(phase="stopped", rss_mb=round(rss_mb(), 1), sent=stream.sent, stored=st.events_total,
                 unstored=st.unstored, quarantined=st.quarantined)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
