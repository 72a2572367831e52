"""Replay recorded liquidations at N x speed through the live path (Qt-free).

* :func:`journal_events` -- the liquidations of raw journal files (``models/connectors/journal.py``
  format: a day file, an exchange's folder or the journal root), normalised as the recorder does.
* :func:`window_events` -- the single events of a stored window (a Dataset or a part of a large store).
* :class:`Replay` -- hands the events to a sink in time order, each batch when a :class:`Clock` says its
  market time has come: market time runs ``speed`` times faster than the clock from the first event.
  The clock is injected, so tests run a replay on a :class:`FakeClock` (``sleep`` only advances its time)
  and get the same batches every time. ``speed`` may change while it runs (``set_speed``); ``max_wait_s``
  skips quiet stretches (a journal with a night-long gap at 1x).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np
import pandas as pd

SPEEDS = (1.0, 10.0, 60.0, 600.0)
TICK_S = 0.25       # the longest a replay sleeps at once (a cancel or a speed change is seen this fast)
MIN_SLEEP_S = 0.05  # the shortest: events due within it go out together (at most ~20 batches a second)
MAX_BATCH = 5000    # events per batch at most (as fast as possible: a chart redraw per batch)


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Monotonic wall time; ``sleep`` wakes early when ``cancel`` is set."""

    def __init__(self, cancel: threading.Event | None = None):
        self.cancel = cancel or threading.Event()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.cancel.wait(seconds)


class FakeClock:
    """A clock for tests: ``sleep`` advances ``now`` at once and is recorded."""

    def __init__(self, start: float = 0.0):
        self.t = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)


@dataclass
class ReplayStats:
    events: int = 0
    batches: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    cancelled: bool = False


def parse_speed(text: str) -> float:
    """``60``, ``60x``, ``600×`` -> 60.0 ...; ``max`` -> inf (as fast as possible)."""
    t = str(text).strip().lower()
    if t in ("max", "inf", "0"):
        return math.inf
    t = t.rstrip("x×")
    value = float(t)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


class Replay:
    """Events (a canonical liquidation frame) handed out in market-time order at ``speed`` x the clock."""

    def __init__(self, events: pd.DataFrame, speed: float = 60.0, *, clock: Clock | None = None,
                 tick_s: float = TICK_S, min_sleep_s: float = MIN_SLEEP_S, max_wait_s: float | None = None,
                 start=None):
        frame = events.reset_index(drop=True)
        ts = frame["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64) if len(frame) else np.empty(0, np.int64)
        order = np.argsort(ts, kind="stable")
        self.events = frame.iloc[order].reset_index(drop=True)
        self.ts = ts[order]
        self.clock = clock or SystemClock()
        self.tick_s = tick_s
        self.min_sleep_s = min_sleep_s
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._speed = float(speed)
        first = int(self.ts[0]) if len(self.ts) else 0
        self._start_ns = first if start is None else min(first, int(pd.Timestamp(start).value))
        self._anchor: tuple[float, int] | None = None  # (clock time, market ns) of the last (re)anchor
        self.done = 0

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (any thread): market time carries on from where it is."""
        with self._lock:
            if self._anchor is not None:
                self._anchor = (self.clock.now(), self._market_ns(self.clock.now()))
            self._speed = float(speed)

    def _market_ns(self, now: float) -> int:
        t0, m0 = self._anchor
        if math.isinf(self._speed):
            return int(self.ts[min(self.done + MAX_BATCH, len(self.ts)) - 1]) if len(self.ts) else m0
        return m0 + int((now - t0) * self._speed * 1e9)

    @property
    def position(self) -> pd.Timestamp | None:
        """Market time now (where the replay has got to)."""
        if self._anchor is None:
            return None
        with self._lock:
            return pd.Timestamp(min(self._market_ns(self.clock.now()), int(self.ts[-1]) if len(self.ts) else 0),
                                tz="UTC")

    def run(self, sink: Callable[[pd.DataFrame], None], *, cancel: threading.Event | None = None,
            progress: Callable[[int, int, pd.Timestamp], None] | None = None) -> ReplayStats:
        """Hand every event to ``sink`` in batches as their market time comes; returns when all are out or
        ``cancel`` is set (then ``stats.cancelled``)."""
        stats = ReplayStats()
        n = len(self.ts)
        with self._lock:
            self._anchor = (self.clock.now(), self._start_ns)
        i = 0
        while i < n:
            if cancel is not None and cancel.is_set():
                stats.cancelled = True
                break
            with self._lock:
                now = self.clock.now()
                market = self._market_ns(now)
            j = int(np.searchsorted(self.ts, market, "right"))
            if j > i and not math.isinf(self._speed):  # those due within the shortest sleep go along
                j = int(np.searchsorted(self.ts, market + int(self.min_sleep_s * self._speed * 1e9), "right"))
            j = min(j, i + MAX_BATCH)
            if j > i:
                batch = self.events.iloc[i:j]
                sink(batch)
                stats.events += j - i
                stats.batches += 1
                stats.first = stats.first or pd.Timestamp(int(self.ts[i]), tz="UTC")
                stats.last = pd.Timestamp(int(self.ts[j - 1]), tz="UTC")
                i = self.done = j
                if progress is not None:
                    progress(i, n, stats.last)
                continue
            with self._lock:
                wait = (int(self.ts[i]) - market) / 1e9 / self._speed
                if self.max_wait_s is not None and wait > self.max_wait_s:  # skip a quiet stretch
                    self._anchor = (now, int(self.ts[i]) - int(self.max_wait_s * self._speed * 1e9))
                    wait = self.max_wait_s
            self.clock.sleep(min(max(wait, 0.0), self.tick_s))
        return stats


# -- what to replay -----------------------------------------------------------------------------------
class ReplayError(ValueError):
    """Nothing to replay at the path or window given (one line)."""


def _journal_day_files(path: Path) -> list[tuple[str, Path]]:
    from .connectors.journal import journal_files
    from .connectors.parsers import EXCHANGES

    if path.is_file():
        ex = path.parent.name.lower()
        if ex not in EXCHANGES:
            raise ReplayError(f"{path}: a journal day file lives in a folder named after its exchange "
                              f"({', '.join(EXCHANGES)}), e.g. journal/binance/2025-05-09.jsonl")
        return [(ex, path)]
    if not path.is_dir():
        raise ReplayError(f"{path}: no such journal file or folder")
    if path.name.lower() in EXCHANGES:
        return [(path.name.lower(), p) for p in journal_files(path.parent, path.name)]
    return [(ex, p) for ex in EXCHANGES for p in journal_files(path, ex)]


def journal_events(paths: Iterable[str | Path], *, since: str | None = None, until: str | None = None,
                   keep=None) -> pd.DataFrame:
    """The liquidations the journal files at ``paths`` hold (files, exchange folders or journal roots),
    normalised and validated as the recorder does (duplicates of a reconnect dropped), in time order."""
    from .connectors.journal import Dedup, day_name, iter_lines, normalize_lines, safe_frame
    from .connectors.parsers import Normalizer, events_frame

    files: list[tuple[str, Path]] = []
    for p in paths:
        files += _journal_day_files(Path(p).expanduser())
    files = [(ex, f) for ex, f in files
             if (since is None or day_name(f) >= since) and (until is None or day_name(f) <= until)]
    if not files:
        raise ReplayError("no journal day files to replay" + (" in those days" if since or until else ""))
    frames = []
    by_ex: dict[str, tuple[Normalizer, Dedup]] = {}
    for ex, f in sorted(files, key=lambda x: (x[0], day_name(x[1]))):
        norm, dedup = by_ex.setdefault(ex, (Normalizer(ex), Dedup()))
        batch = normalize_lines((line for _o, _e, line in iter_lines(f)), norm, dedup, keep=keep)
        if batch.events:
            frame, _refused = safe_frame(batch.events)
            frames.append(frame)
    if not frames:
        return events_frame([])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def window_events(dataset, start, end) -> pd.DataFrame:
    """The single liquidations of ``[start, end)`` of a Dataset (a part of a large store reads them)."""
    return dataset.events(start, end).window(start, end).frame.reset_index(drop=True)


def history_before(dataset, start, days: int) -> pd.DataFrame:
    """Single events of the ``days`` before ``start`` that the dataset holds (alert baselines)."""
    liq = dataset.liquidations.events_only() if dataset.liquidations.has_aggregates else dataset.liquidations
    return liq.window(pd.Timestamp(start) - pd.Timedelta(days=days), start).frame


__all__ = ["Clock", "FakeClock", "Replay", "ReplayError", "ReplayStats", "SPEEDS", "SystemClock",
           "history_before", "journal_events", "parse_speed", "window_events"]
