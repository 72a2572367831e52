"""Raw journal of everything the live recorder receives.

Layout: ``<data_dir>/journal/<exchange>/<YYYY-MM-DD>.jsonl`` (UTC day of
receipt), append-only, one JSON object per line:

``{"t": <receive time, ms>, "k": "msg", "d": "<raw frame text>"}``
    a frame exactly as received (also pongs, acks and malformed frames);
``{"t": ..., "k": "meta", "d": {...}}``
    what parsing needs besides the frames (OKX contract specs); repeated at the
    top of every new day file so each file can be replayed on its own;
``{"t": ..., "k": "gap", "d": {"start": ms, "end": ms, "reason": "..."}}``
    a time the stream was not connected.

Frames are appended and flushed (and fsync'ed) *before* they are normalised
into the store. ``<file>.pos`` records the byte offset up to which a file has
been normalised, so after a crash :func:`replay` with ``pending_only=True``
normalises exactly what was journaled but not stored; a full replay
re-normalises everything (after a parser fix) and *replaces* what the store
holds for the time the journal covers, so a corrected row takes the wrong
one's place instead of being stored next to it (see :func:`replay`).
"""
from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd

from .parsers import EXCHANGES, Normalizer, event_key, events_frame


def journal_root(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from .. import paths

        data_dir = paths.data_dir()
    return Path(data_dir) / "journal"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def _pos_path(path: Path) -> Path:
    return path.with_name(path.name + ".pos")


def read_pos(path: Path) -> int:
    try:
        return int(_pos_path(path).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def write_pos(path: Path, offset: int) -> None:
    pos = _pos_path(path)
    tmp = pos.with_name(pos.name + ".tmp")
    tmp.write_text(str(int(offset)))
    os.replace(tmp, pos)


class Journal:
    """Appends journal lines; one open file per exchange, rolled per UTC day."""

    def __init__(self, root: Path, *, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync
        self._files: dict[str, tuple[str, object]] = {}
        self._meta: dict[str, dict] = {}

    def path_for(self, exchange: str, day: str) -> Path:
        return self.root / exchange / f"{day}.jsonl"

    def _open(self, exchange: str, day: str, t_ms: int, *, with_meta: bool = True):
        cur = self._files.get(exchange)
        if cur and cur[0] == day:
            return cur[1]
        if cur:
            cur[1].close()
        path = self.path_for(exchange, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "ab")
        if fh.tell() > 0:
            # A crash can leave a half-written last line: end it so it stays one
            # (malformed, skipped) line instead of swallowing the next one.
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    fh.write(b"\n")
        self._files[exchange] = (day, fh)
        if with_meta and exchange in self._meta:
            fh.write(_dump({"t": t_ms, "k": "meta", "d": self._meta[exchange]}))
        return fh

    def remember_meta(self, exchange: str, meta: dict) -> None:
        """Meta to repeat atop new day files without journaling it now (after a restart)."""
        self._meta[exchange] = {**self._meta.get(exchange, {}), **meta}

    def append(self, exchange: str, lines: list[dict]) -> dict[Path, int]:
        """Append, flush and fsync; returns the end offset reached in each file.
        ``meta`` lines are also remembered and repeated atop new day files."""
        ends: dict[Path, int] = {}
        touched = []
        for line in lines:
            t = int(line["t"])
            day = _day(t)
            is_meta = line.get("k") == "meta"
            fh = self._open(exchange, day, t, with_meta=not is_meta)
            fh.write(_dump(line))
            if is_meta:
                self.remember_meta(exchange, line["d"])
            if fh not in touched:
                touched.append(fh)
            ends[self.path_for(exchange, day)] = -1
        for fh in touched:
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        for path in ends:
            ends[path] = path.stat().st_size
        return ends

    def close(self) -> None:
        for _day_, fh in self._files.values():
            try:
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            finally:
                fh.close()
        self._files.clear()


def _dump(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def iter_lines(path: Path, start: int = 0) -> Iterator[tuple[int, int, dict | None]]:
    """(offset, end offset, decoded line or None if unreadable) from ``start``;
    a trailing line without its newline (a write cut short) is not yielded."""
    with open(path, "rb") as fh:
        fh.seek(start)
        offset = start
        for raw in fh:
            end = offset + len(raw)
            if not raw.endswith(b"\n"):
                return
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict) or "k" not in obj or "t" not in obj:
                    obj = None
            except ValueError:
                obj = None
            yield offset, end, obj
            offset = end


class Dedup:
    """Bounded memory of recently stored event keys (reconnect overlaps, replays)."""

    def __init__(self, size: int = 200_000):
        self._keys: set = set()
        self._order: deque = deque()
        self._size = size

    def add(self, key) -> bool:
        """True if ``key`` is new (and remembers it)."""
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self._size:
            self._keys.discard(self._order.popleft())
        return True


@dataclass
class Batch:
    """What a run of journal lines normalises to."""

    events: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    frames: int = 0
    duplicates: int = 0


def normalize_lines(lines, normalizer: Normalizer, dedup: Dedup | None, *, emit: bool = True,
                    keep=None) -> Batch:
    """Normalise decoded journal lines in order (``emit=False`` only updates state).
    ``keep(event) -> bool`` drops events outside a symbol filter; by default the
    filter the recording session journaled (a ``symbols`` meta line) applies."""
    out = Batch()
    for line in lines:
        if line is None:
            if emit:
                normalizer.errors += 1
            continue
        kind, data = line.get("k"), line.get("d")
        if kind == "meta" and isinstance(data, dict):
            normalizer.set_meta(data)
        elif not emit:
            continue
        elif kind == "msg" and isinstance(data, str):
            out.frames += 1
            flt = keep if keep is not None else normalizer.keep
            for ev in normalizer.feed_text(data):
                if flt is not None and not flt(ev):
                    continue
                if dedup is None or dedup.add(event_key(ev)):
                    out.events.append(ev)
                else:
                    out.duplicates += 1
        elif kind == "gap" and isinstance(data, dict):
            out.gaps.append(data)
    return out


def gaps_frame(exchange: str, gaps: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "exchange": [exchange] * len(gaps),
        "start": pd.to_datetime([int(g["start"]) for g in gaps], unit="ms", utc=True),
        "end": pd.to_datetime([int(g["end"]) for g in gaps], unit="ms", utc=True),
        "reason": [str(g.get("reason", "")) for g in gaps],
    })


@dataclass
class ReplayResult:
    files: int = 0
    frames: int = 0
    events: int = 0
    new: int = 0      # rows the store did not hold before
    removed: int = 0  # stored rows a full replay took out (a parser fix changed or dropped them)
    gaps: int = 0
    duplicates: int = 0
    errors: int = 0
    unconverted: int = 0
    last_error: str | None = None
    per_exchange: dict[str, int] = field(default_factory=dict)


def journal_files(root: Path, exchange: str, since: str | None = None, until: str | None = None) -> list[Path]:
    folder = Path(root) / exchange
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.glob("*.jsonl"))
    return [p for p in files if (since is None or p.stem >= since) and (until is None or p.stem <= until)]


def replay(store, root: Path | None = None, *, exchanges=None, since: str | None = None,
           until: str | None = None, pending_only: bool = False, gaps: bool = True,
           dedup: dict[str, Dedup] | None = None, on_events=None, keep=None) -> ReplayResult:
    """Normalise journal files into ``store``.

    ``pending_only``: only what follows each file's ``.pos`` checkpoint (crash
    recovery), appended (the store skips rows it already holds). Otherwise a
    full replay, after a parser fix: every line is re-normalised and, per
    exchange in one atomic commit, *replaces* the stored rows of the time the
    replayed lines cover -- within that span the journal is the source of truth
    for the exchange's rows (see :func:`_replace_from_journal` for the span).

    ``since``/``until`` are UTC days (YYYY-MM-DD, inclusive). ``keep``: a filter
    ``keep(event) -> bool`` deciding by exchange, symbol and asset (or a dict of
    them per exchange) overriding the ``--symbols`` each recording session
    journaled; a full replay replaces only the symbols it keeps. ``dedup``
    (recovery only) carries the live recorder's memory of stored events.
    """
    root = journal_root() if root is None else Path(root)
    result = ReplayResult()
    for exchange in exchanges or EXCHANGES:
        flt = keep.get(exchange) if isinstance(keep, dict) else keep
        if not pending_only:
            _replace_from_journal(store, root, exchange, since, until, flt, gaps, on_events, result)
            continue
        normalizer = Normalizer(exchange)
        seen = (dedup or {}).get(exchange) or Dedup()
        for path in journal_files(root, exchange, since, until):
            start = read_pos(path)
            size = path.stat().st_size
            if start >= size:
                # Still read its meta lines: later files may rely on them.
                normalize_lines((obj for _o, _e, obj in iter_lines(path)), normalizer, None, emit=False)
                continue
            head, tail, end = [], [], start
            for off, e, obj in iter_lines(path):
                (tail if off >= start else head).append(obj)
                end = e
            normalize_lines(head, normalizer, None, emit=False)
            errors_before = normalizer.errors
            batch = normalize_lines(tail, normalizer, seen, keep=flt)
            result.files += 1
            result.frames += batch.frames
            result.duplicates += batch.duplicates
            result.errors += normalizer.errors - errors_before
            if batch.events:
                df = events_frame(batch.events)
                res = store.append_liquidations(df)
                result.events += len(df)
                result.new += int(getattr(res, "new", len(df)))
                result.per_exchange[exchange] = result.per_exchange.get(exchange, 0) + len(df)
                if on_events is not None:
                    on_events(df)
            if gaps and batch.gaps:
                store.append_gaps(gaps_frame(exchange, batch.gaps))
                result.gaps += len(batch.gaps)
            write_pos(path, end)
        result.unconverted += normalizer.unconverted
        if normalizer.last_error:
            result.last_error = normalizer.last_error
    return result


SPAN_SLACK_MS = 60_000  # how far from its frame's receive time an event's own time still widens the span


def _keep_all(ev: dict) -> bool:
    return True


@dataclass
class _Stretch:
    """Frames of one unbroken stretch of a recording session: no gap, no restart, one file."""

    first: int  # receive time of the first and last frame, ms
    last: int
    keep: object  # the symbol filter in effect (``_keep_all``: every symbol)
    events: list[dict] = field(default_factory=list)

    def spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` ms the stretch covers: first to last frame received, widened
        to its events' exchange times (stamped a little before receipt) when within
        :data:`SPAN_SLACK_MS`; an event stamped further away covers its own ms only,
        so a stray time stamp cannot stretch the span over days of other data."""
        lo, hi, out = self.first, self.last + 1, []
        for ev in self.events:
            t = int(ev["ts_ms"])
            if self.first - SPAN_SLACK_MS <= t <= self.last + SPAN_SLACK_MS:
                lo, hi = min(lo, t), max(hi, t + 1)
            else:
                out.append((t, t + 1))
        return [(lo, hi), *out]


def _filter_key(keep) -> object:
    if keep is _keep_all:
        return None
    items = getattr(keep, "items", None)
    return ("symbols", tuple(sorted(items))) if isinstance(items, list) else ("id", id(keep))


def _symbol_scope(exchange: str, keep):
    """The store-side form of an event filter: ``(symbol, asset) -> bool`` or None (all)."""
    if keep is _keep_all:
        return None
    return lambda symbol, asset: bool(keep({"exchange": exchange, "symbol": symbol, "asset": asset}))


def _replace_from_journal(store, root: Path, exchange: str, since: str | None, until: str | None, keep,
                          gaps: bool, on_events, result: ReplayResult) -> None:
    """Re-normalise one exchange's journal files and replace what they cover, in one commit.

    The span replaced is where the journal is complete: per recording stretch --
    split at every journaled gap, every session start (its ``symbols`` meta line)
    and every file -- from its first to its last frame's receive time, widened to
    the events' own times (:meth:`_Stretch.spans`); and only the symbols that
    stretch keeps (``keep``, else the session's ``--symbols``). Outside those
    spans (before, after, during gaps or between sessions) nothing is touched.

    The store does not record where a row came from, so inside a span rows
    imported from files for the same exchange and symbols are replaced too; a
    ``source`` column would need a store schema change for this one case.
    Re-importing such files afterwards adds them back (imports skip rows held).
    Likewise a ``keep`` naming symbols a session never subscribed to (Bybit
    subscribes per symbol) finds no frames of them, so it clears them in the span.

    OKX frames naming a contract missing from the instrument list are retried
    after each later instrument list, as the live recorder does, so an event
    the recorder stored after a refresh is not dropped by the replay.
    """
    from ..store import Batch as StoreBatch

    normalizer = Normalizer(exchange)
    seen = Dedup()  # fresh: a replacement must hold every event, not only unseen ones
    stretches: list[_Stretch] = []
    waiting: list[tuple[dict, _Stretch]] = []  # (frame line, its stretch) with an unknown contract size
    gap_lines: list[dict] = []
    ends: dict[Path, int] = {}
    for path in journal_files(root, exchange, since, until):
        cur: _Stretch | None = None
        errors_before = normalizer.errors
        for _off, end, obj in iter_lines(path):
            ends[path] = end
            kind, data = (obj.get("k"), obj.get("d")) if obj else (None, None)
            if kind == "gap" or (kind == "meta" and isinstance(data, dict) and "symbols" in data):
                cur = None  # disconnected, or a new recording session
            if kind == "msg" and isinstance(data, str):
                try:
                    t = int(obj["t"])
                except (TypeError, ValueError):
                    obj = None  # counted as unreadable below
                else:
                    if cur is None:
                        cur = _Stretch(t, t, keep or normalizer.keep or _keep_all)
                        stretches.append(cur)
                    cur.first, cur.last = min(cur.first, t), max(cur.last, t)
            unconverted = normalizer.unconverted
            batch = normalize_lines([obj], normalizer, seen, keep=cur.keep if cur is not None else _keep_all)
            result.frames += batch.frames
            result.duplicates += batch.duplicates
            gap_lines += batch.gaps
            if obj is not None and kind == "msg" and cur is not None:
                cur.events += batch.events
                if normalizer.unconverted > unconverted:
                    waiting.append((obj, cur))
            if kind == "meta" and waiting and isinstance(data, dict) and "instruments" in data:
                retry, waiting = waiting, []
                for line, stretch in retry:
                    unconverted = normalizer.unconverted
                    stretch.events += normalize_lines([line], normalizer, seen, keep=stretch.keep).events
                    if normalizer.unconverted > unconverted:
                        waiting.append((line, stretch))
        result.files += 1
        result.errors += normalizer.errors - errors_before
    result.unconverted += len(waiting)
    if normalizer.last_error:
        result.last_error = normalizer.last_error
    if not ends:
        return
    groups: dict[object, list[_Stretch]] = {}
    for st in stretches:
        groups.setdefault(_filter_key(st.keep), []).append(st)
    batch = StoreBatch()
    frames = []
    for group in groups.values():
        df = events_frame(ev for st in group for ev in st.events)
        spans = [(pd.Timestamp(a, unit="ms", tz="UTC"), pd.Timestamp(b, unit="ms", tz="UTC"))
                 for st in group for a, b in st.spans()]
        batch.replace_liquidations(df, exchanges=[exchange], spans=spans,
                                   symbols=_symbol_scope(exchange, group[0].keep), trusted=True)
        frames.append(df)
    if gaps and gap_lines:
        batch.add_gaps(gaps_frame(exchange, gap_lines))
        result.gaps += len(gap_lines)
    for res, df in zip(store.commit(batch) if len(batch) else [], frames):
        result.events += len(df)
        result.new += res.added
        result.removed += res.removed
        if len(df):
            result.per_exchange[exchange] = result.per_exchange.get(exchange, 0) + len(df)
    for path, end in ends.items():
        write_pos(path, end)
    if on_events is not None and frames and sum(map(len, frames)):
        on_events(pd.concat([f for f in frames if len(f)], ignore_index=True))
