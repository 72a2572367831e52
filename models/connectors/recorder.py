"""Live liquidation recorder: public WebSockets → raw journal → store.

:class:`Recorder` runs an asyncio loop in its own thread (network I/O never
touches the caller's thread, e.g. the GUI thread). Each exchange has one
connection task that reconnects with exponential backoff and jitter,
resubscribes and sends the app-level pings its exchange needs. A frame is
handed at once to the *journal thread*, which

1. appends it to the journal and flushes it (fsync at most every
   ``flush_interval`` s) -- on receipt, whatever the store is doing, so nothing
   received is lost if the process is killed;
2. normalises it (:mod:`.parsers`), checks every event (:mod:`.validate`:
   what cannot be stored is quarantined -- counted, kept in the journal),
   drops events already seen (reconnect overlaps) and holds the rest for the
   store; calls ``on_events``.

A separate *store thread* writes what is held every ``store_interval`` s (a
store write may wait seconds for another process's lock: only this thread
waits), writing valid events one by one if the store refuses a batch, then
advances the journal checkpoint. If the store stays unavailable for more than
``hold_limit`` events, the held events are let go (they are in the journal)
and the store thread later catches up from the checkpoint instead, so memory
stays bounded.

Times the stream was not connected are recorded as gaps (journal and
``store.append_gaps``). On start, whatever the journal holds beyond its
checkpoint (a previous run killed before storing it) is normalised first; a
torn or corrupt journal never stops a start.

Callbacks run on the recorder's threads: a GUI must hand them over to its own
thread (e.g. emit a Qt signal, which queues across threads).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from .journal import (ROTATE_GRACE_MS, Dedup, Journal, gaps_frame, iter_lines, journal_files, journal_root,
                      journal_size, next_rotation_ms, normalize_lines, read_pos, replay, rotate, safe_frame,
                      write_pos)
from .netcause import network_cause
from ..store.provenance import LIVE as LIVE_SOURCE
from .parsers import EXCHANGES, Normalizer, events_frame
from .streams import DEFAULT_ENDPOINTS, SPECS, Endpoint, StreamSpec
from .validate import is_data_error, store_each

log = logging.getLogger(__name__)

CONNECTING, CONNECTED, RECONNECTING, STOPPED = "connecting", "connected", "reconnecting", "stopped"
# Not connected because this machine has no usable network (name resolution
# failed, no route): worth telling apart from an exchange that is down.
OFFLINE = "offline"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial * factor**n`` capped at ``maximum``, each
    multiplied by a random factor in ``[1 - jitter, 1]`` so clients that lost
    the same server do not reconnect in lockstep. The attempt count resets after
    a connection that delivered data (any frame), or that lasted ``reset_after``
    seconds: a server that closes every connection after a few seconds of data
    is retried after ``initial``, not after ever longer waits."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5
    reset_after: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt))
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class ExchangeStatus:
    """One exchange's recorder state, as the status bar shows it."""

    exchange: str
    state: str  # connecting | connected | reconnecting | offline | stopped
    gaps: int = 0  # gaps recorded since start()
    events_per_minute: float = 0.0  # events stored in the last 60 s
    events_total: int = 0
    reconnects: int = 0
    connected_since: pd.Timestamp | None = None
    last_event_at: pd.Timestamp | None = None
    last_error: str | None = None
    unconverted: int = 0  # events held back because a contract size was unknown
    quarantined: int = 0  # frames and events received but not storable (unreadable, invalid, refused by the store)
    oversize: int = 0  # frames over the size cap: dropped unread (the connection is closed and reopened)
    unstored: int = 0  # valid events waiting for the store (e.g. locked by an import); safe in the journal
    last_quarantined: str = ""  # why the latest quarantined frame or event was refused, in words
    note: str = ""  # limits of the source (e.g. Binance's 1 snapshot/s/symbol)
    reason: str = ""  # why it is not connected, in words ("name resolution failed"); "" when connected
    retry_at: pd.Timestamp | None = None  # when the next connection attempt is due (reconnecting/offline)


@dataclass
class _Live:
    """Mutable per-exchange bookkeeping (guarded by Recorder._lock)."""

    status: ExchangeStatus
    recent: deque = field(default_factory=deque)  # (monotonic time, n events)


class Recorder:
    """Records liquidations from Binance, Bybit and OKX into the store.

    ``exchanges``: any of ``binance``, ``bybit``, ``okx``. ``symbols``: a list
    applied to every exchange, or ``{exchange: [...]}``; items are native
    symbols (``BTCUSDT``, ``BTC-USDT-SWAP``) or assets (``BTC``); None records
    everything (Bybit: every trading linear perpetual). ``endpoints`` overrides
    :data:`DEFAULT_ENDPOINTS` per exchange (an :class:`Endpoint` or a dict with
    ``ws``/``rest``). ``on_status(ExchangeStatus)`` and ``on_events(DataFrame)``
    (canonical liquidation frame) are called from the recorder's threads.
    ``max_frame_bytes`` overrides every exchange's frame size cap
    (:attr:`StreamSpec.max_frame_bytes`); ``hold_limit`` is how many events may
    wait in memory for an unavailable store before the store thread falls back
    to catching up from the journal. Journal day files are compressed once their
    UTC day is over (:func:`.journal.rotate`: at start, in the background
    :data:`.journal.ROTATE_GRACE_MS` after each midnight, and at stop);
    ``journal_retention`` (days, >= 1) then deletes older compressed days.
    """

    def __init__(
        self,
        exchanges: Iterable[str] = EXCHANGES,
        *,
        symbols=None,
        store=None,
        journal_dir: str | os.PathLike | None = None,
        endpoints: dict | None = None,
        backoff: Backoff = Backoff(),
        on_status: Callable[[ExchangeStatus], None] | None = None,
        on_events: Callable[[pd.DataFrame], None] | None = None,
        flush_interval: float = 0.25,
        store_interval: float = 2.0,
        ping_interval: float | None = None,
        idle_timeout: float | None = None,
        ws_ping_interval: float | None = 20.0,
        fsync: bool = True,
        recover: bool = True,
        rng: random.Random | None = None,
        max_frame_bytes: int | None = None,
        hold_limit: int = 50_000,
        journal_retention: int | None = None,
        compress_journal: bool = True,
        context_poll=False,
    ):
        self.exchanges = [e.lower() for e in exchanges]
        for e in self.exchanges:
            if e not in SPECS:
                raise ValueError(f"unknown exchange {e!r} (known: {', '.join(EXCHANGES)})")
        if not self.exchanges:
            raise ValueError("no exchange to record")
        self._store = store
        self.journal_dir = Path(journal_dir) if journal_dir else journal_root()
        self.backoff = backoff
        self.on_status = on_status
        self.on_events = on_events
        self.flush_interval = flush_interval
        self.store_interval = store_interval
        self.ws_ping_interval = ws_ping_interval
        self.fsync = fsync
        self.recover = recover
        self._rng = rng or random.Random()
        self.specs: dict[str, StreamSpec] = {}
        for e in self.exchanges:
            ep = _endpoint(e, (endpoints or {}).get(e))
            syms = symbols.get(e) if isinstance(symbols, dict) else symbols
            spec = SPECS[e](ep, syms)
            if ping_interval is not None and spec.ping_interval is not None:
                spec.ping_interval = ping_interval
            if idle_timeout is not None:
                spec.idle_timeout = idle_timeout
            if max_frame_bytes is not None:
                spec.max_frame_bytes = int(max_frame_bytes)
            self.specs[e] = spec
        self.hold_limit = hold_limit
        if journal_retention is not None and (isinstance(journal_retention, bool)
                                              or not isinstance(journal_retention, int) or journal_retention < 1):
            raise ValueError(f"journal retention must be a whole number of days >= 1, not {journal_retention!r}")
        self.journal_retention = journal_retention
        self.compress_journal = compress_journal
        self._rotate_thread: threading.Thread | None = None
        self._rotate_stop = threading.Event()  # set at stop: a background pass ends after at most a MiB more
        self._rotate_done = True  # the last background pass finished (was not cut short by a stop)
        self._rotate_due = 0  # ms: when the journal thread next starts a compression pass

        self._lock = threading.Lock()
        self._live = {e: _Live(ExchangeStatus(e, STOPPED, note=self.specs[e].note)) for e in self.exchanges}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_evt: asyncio.Event | None = None
        self._started = threading.Event()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # (exchange, line) from the loop to the journal thread
        self._writer = None
        self._journal: Journal | None = None
        self._journal_thread: threading.Thread | None = None
        self._store_thread: threading.Thread | None = None
        self._normalizers = {e: Normalizer(e) for e in self.exchanges}
        self._dedup = {e: Dedup() for e in self.exchanges}
        # Handed from the journal thread to the store thread (guarded by _held_lock):
        self._held_lock = threading.Lock()
        self._held: list[tuple[str, dict]] = []  # (exchange, event) normalised, valid, not yet stored
        self._held_gaps: list[pd.DataFrame] = []
        self._held_pos: dict[Path, int] = {}  # journal checkpoints to write once the held events are stored
        self._behind = False  # held events were let go (hold_limit): the store thread catches up from the journal
        self._behind_n: dict[str, int] = {}  # events let go per exchange, for the status
        self._journal_ends: dict[Path, int] = {}  # how far the journal thread has normalised each file
        self._store_wake = threading.Event()
        self._store_stop = False
        self._okx_retry: deque = deque()  # frames waiting for a contract size (bounded by OKX_RETRY_*)
        self._okx_retry_bytes = 0
        self._alive: dict[str, int] = {}
        self._state_saved = 0.0
        self.refresh_every = 6 * 3600.0  # OKX instrument list refresh period (s)
        self.error: BaseException | None = None  # what stopped the loop, if it crashed
        self.recovered = None  # ReplayResult of the start-up journal recovery
        # Compaction, checkpoints and vacuum of the store, on their own thread every so many commits.
        self.maintenance = None if getattr(store, "location", None) is None else _maintenance(store.location)
        # Open interest and funding kept current on their own thread (context_poller.py): ``context_poll``
        # True polls the recorded symbols through each exchange's REST endpoint, or pass a ContextPoller.
        self.context = context_poll if not isinstance(context_poll, bool) else (
            _context_poller(self.exchanges, symbols, store, self.specs) if context_poll and store is not None else None)

    # -- public API ----------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        """Start the worker thread. Returns once the journal and store are open
        (after replaying what a killed run left unstored); connection status
        then arrives by ``on_status``. Raises RuntimeError if it cannot start."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("recorder already running")
        self._started.clear()
        self.error = None
        self._thread = threading.Thread(target=self._thread_main, name="liqscope-recorder", daemon=True)
        self._thread.start()
        self._started.wait(timeout)
        if self.error is not None:
            self._thread.join(5)
            raise RuntimeError(f"recorder could not start: {self.error}") from self.error
        if self.context is not None:
            self.context.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Disconnect, record open gaps, flush the journal and the store; wait for the thread."""
        if self.context is not None:
            self.context.stop()
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stop_evt is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stop_evt.set)
            except RuntimeError:
                pass  # loop already finished
        thread.join(timeout)
        if thread.is_alive():
            log.warning("recorder thread did not stop within %.0f s", timeout)
        else:
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends; True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> dict[str, ExchangeStatus]:
        """Snapshot of every exchange's status (thread-safe)."""
        with self._lock:
            return {e: self._snapshot(e) for e in self.exchanges}

    # -- status bookkeeping --------------------------------------------------
    def _snapshot(self, exchange: str) -> ExchangeStatus:
        live = self._live[exchange]
        cutoff = time.monotonic() - 60.0
        while live.recent and live.recent[0][0] < cutoff:
            live.recent.popleft()
        return replace(live.status, events_per_minute=float(sum(n for _t, n in live.recent)))

    def _update(self, exchange: str, **changes) -> None:
        with self._lock:
            live = self._live[exchange]
            live.status = replace(live.status, **changes)
            snap = self._snapshot(exchange)
        if self.on_status is not None:
            try:
                self.on_status(snap)
            except Exception:  # a broken callback must not stop recording
                log.exception("on_status callback failed")

    def _add(self, exchange: str, reason: str | None = None, **increments) -> None:
        """Add to counters of one exchange's status (called from several threads)."""
        with self._lock:
            live = self._live[exchange]
            changes = {k: max(0, getattr(live.status, k) + v) for k, v in increments.items()}
            if reason:
                changes["last_quarantined"] = reason[:300]
            live.status = replace(live.status, **changes)
        self._update(exchange)

    # -- thread / loop -------------------------------------------------------
    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # keep it visible to the owner
            self.error = exc
            log.exception("recorder loop crashed")
            for e in self.exchanges:
                text = f"recorder stopped: {type(exc).__name__}: {exc}"[:300]
                self._update(e, state=STOPPED, last_error=text, reason=text, retry_at=None)
        finally:
            self._started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop_evt = asyncio.Event()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqscope-open")
        loop = asyncio.get_running_loop()
        self._journal_thread = self._store_thread = None
        self._inbox = queue.SimpleQueue()
        try:
            await loop.run_in_executor(self._writer, self._open_writer)
            self._store_stop = False
            self._journal_thread = threading.Thread(target=self._journal_main, name="liqscope-journal", daemon=True)
            self._store_thread = threading.Thread(target=self._store_main, name="liqscope-store", daemon=True)
            self._journal_thread.start()
            self._store_thread.start()
            for e in self.exchanges:
                self._update(e, state=CONNECTING)
            self._started.set()
            tasks = [asyncio.create_task(self._run_exchange(self.specs[e]), name=f"ws-{e}")
                     for e in self.exchanges]
            if "okx" in self.specs:
                tasks.append(asyncio.create_task(self._refresh_instruments(self.specs["okx"]), name="okx-ref"))
            tasks.append(asyncio.create_task(self._alive_loop(), name="alive"))
            await self._stop_evt.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # the connections journal their open gaps
        finally:
            await loop.run_in_executor(self._writer, self._close_writer)
            self._writer.shutdown(wait=True)
            for e in self.exchanges:
                self._update(e, state=STOPPED, reason="", retry_at=None)

    async def _alive_loop(self) -> None:
        """Remember when each exchange was last seen connected (the restart gap starts there)."""
        while True:
            await asyncio.sleep(self.flush_interval)
            now = _now_ms()
            for e in self.exchanges:
                if self._live[e].status.state == CONNECTED:
                    self._alive[e] = now

    def _push(self, exchange: str, line: dict) -> None:
        """Hand a line to the journal thread at once (never waits)."""
        self._inbox.put((exchange, line))

    # -- one exchange's connection -------------------------------------------
    async def _run_exchange(self, spec: StreamSpec) -> None:
        from websockets.asyncio.client import connect

        ex = spec.exchange
        started = _now_ms()
        down_since: int | None = None
        down_reason = ""
        attempt = 0
        first = True
        prev_alive = self._state_alive.get(ex)
        prepared = False
        # This session's symbol filter, journaled so replays apply the same one.
        self._push(ex, {"t": _now_ms(), "k": "meta", "d": {"symbols": spec.filter.items or None}})
        try:
            while True:
                connected_at = None
                session = _Session()
                try:
                    if not prepared:
                        meta = await spec.prepare()
                        prepared = True
                        if meta is not None:
                            self._push(ex, {"t": _now_ms(), "k": "meta", "d": meta})
                        if getattr(spec, "list_error", None):
                            self._update(ex, last_error=spec.list_error)
                    # max_size: a larger frame is refused unread and the connection closed (close code 1009);
                    # with max_queue frames buffered, one connection holds at most max_queue x max_size bytes.
                    async with connect(
                        spec.url(), open_timeout=10, close_timeout=1, max_size=spec.max_frame_bytes, max_queue=16,
                        ping_interval=self.ws_ping_interval, ping_timeout=self.ws_ping_interval,
                    ) as ws:
                        for msg in spec.subscribe_messages():
                            await ws.send(msg)
                        connected_at = _now_ms()
                        gap_start = down_since
                        if first and prev_alive is not None:
                            gap_start, down_reason = prev_alive, "recorder not running"
                        if gap_start is not None and connected_at > gap_start:
                            self._push_gap(ex, gap_start, connected_at, down_reason)
                        down_since, first = None, False
                        self._alive[ex] = connected_at
                        self._update(ex, state=CONNECTED, connected_since=_ts(connected_at), reason="",
                                     retry_at=None)
                        await self._receive(ws, spec, session)
                        reason = words = "server closed the connection"
                        state = RECONNECTING
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # network, handshake, protocol, REST prepare
                    reason = f"{type(exc).__name__}: {exc}"[:300]
                    state, words = _down(exc)
                    if _too_big(exc):
                        session.oversize = True
                        words = f"a frame over the {spec.max_frame_bytes:,}-byte limit was dropped"
                        self._add(ex, oversize=1)
                now = _now_ms()
                if down_since is None:
                    down_since = now if (connected_at is not None or not first) else started
                    down_reason = reason
                if connected_at is not None and (
                        (session.frames and not session.oversize)
                        or (now - connected_at) / 1000 >= self.backoff.reset_after):
                    attempt = 0  # it delivered data (or lasted): the next failure starts the backoff afresh
                delay = self.backoff.delay(attempt, self._rng)
                attempt += 1
                st = self._live[ex].status
                self._update(ex, state=state, reason=words, last_error=reason, connected_since=None,
                             retry_at=_ts(now + int(delay * 1000)),
                             reconnects=st.reconnects + (1 if connected_at is not None else 0))
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if down_since is not None:
                self._push_gap(ex, down_since, _now_ms(), down_reason + " (recorder stopped)")
            raise

    async def _refresh_instruments(self, spec: StreamSpec) -> None:
        """Reload OKX contract specs every ``refresh_every`` s, or within a minute of
        a liquidation naming an unknown contract (a new listing)."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(30.0, self.refresh_every))
            waiting = bool(self._okx_retry)
            age = time.monotonic() - last
            if not (age >= self.refresh_every or (waiting and age >= 60.0)):
                continue
            last = time.monotonic()
            try:
                meta = await spec.prepare()
            except Exception as exc:
                self._update(spec.exchange, last_error=f"instrument refresh failed: {exc}"[:300])
                continue
            if meta is not None:
                self._push(spec.exchange, {"t": _now_ms(), "k": "meta", "d": meta})

    async def _receive(self, ws, spec: StreamSpec, session: "_Session") -> None:
        ex = spec.exchange
        pinger = None
        if spec.ping_interval and spec.ping_message():
            pinger = asyncio.create_task(self._ping(ws, spec))
        try:
            while True:
                if spec.idle_timeout:
                    try:
                        frame = await asyncio.wait_for(ws.recv(), spec.idle_timeout)
                    except asyncio.TimeoutError:
                        raise ConnectionError(f"nothing received for {spec.idle_timeout:g} s") from None
                else:
                    frame = await ws.recv()
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                self._push(ex, {"t": _now_ms(), "k": "msg", "d": text})
                session.frames += 1
                err = spec.control_error(text)
                if err:
                    self._update(ex, last_error=err)
        finally:
            if pinger is not None:
                pinger.cancel()

    async def _ping(self, ws, spec: StreamSpec) -> None:
        while True:
            await asyncio.sleep(spec.ping_interval)
            await ws.send(spec.ping_message())

    def _push_gap(self, exchange: str, start: int, end: int, reason: str) -> None:
        self._push(exchange, {"t": _now_ms(), "k": "gap", "d": {"start": start, "end": end, "reason": reason}})

    # -- journal and store threads -----------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.journal_dir / "state.json"

    def _open_writer(self) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._state_alive = _read_alive(self._state_path, self.exchanges)
        if self._store is None:
            from ..store import open_store

            self._store = open_store()
        with self._held_lock:
            self._held, self._held_gaps, self._held_pos = [], [], {}
            self._behind, self._behind_n, self._journal_ends = False, {}, {}
        if self.recover:
            # Each session's own --symbols (journaled as meta) applies to its frames.
            try:
                self.recovered = replay(self._store, self.journal_dir, exchanges=self.exchanges,
                                        pending_only=True, dedup=self._dedup, on_events=self._emit_events)
            except Exception as exc:  # the store itself failed (not what the journal holds): catch up later
                log.exception("recovering the journal into the store failed")
                self._behind = True
                for e in self.exchanges:
                    self._update(e, last_error=f"store unavailable, will catch up from the journal: "
                                               f"{type(exc).__name__}: {exc}"[:300])
        self._journal = Journal(self.journal_dir, fsync=self.fsync)
        # Carry parsing state (OKX contract specs) over from the latest journal file.
        for e in self.exchanges:
            files = journal_files(self.journal_dir, e)
            metas = [o["d"] for _a, _b, o in iter_lines(files[-1])
                     if o and o.get("k") == "meta" and isinstance(o.get("d"), dict)] if files else []
            for meta in metas:
                try:
                    self._normalizers[e].set_meta(meta)
                except Exception as exc:  # a corrupt meta line: the next instrument list replaces it
                    log.warning("ignoring an unreadable %s meta line: %s", e, exc)
                    continue
                self._journal.remember_meta(e, meta)
        # Days that ended while no recorder ran (what this one writes is today's): compress them now.
        self._rotate_due = next_rotation_ms(_now_ms())
        self._start_rotation(_now_ms())

    def _close_writer(self) -> None:
        """After the connections ended: journal what they sent last, store it, close."""
        self._inbox.put((None, None))  # the journal thread's last item
        if self._journal_thread is not None:
            self._journal_thread.join()
        self._store_stop = True
        self._store_wake.set()
        if self._store_thread is not None:
            self._store_thread.join()
        if self.maintenance is not None:
            self.maintenance.stop()  # a running pass ends first: no delta-rs call in flight at exit
        if self._journal is not None:
            self._journal.close()
        self._save_state(dict(self._alive), force=True)
        # Everything is written and stored: a day file whose day is over can be compressed now,
        # unless a background pass had to be cut short (a backlog): the next start goes on with it.
        if self._rotate_thread is not None:
            self._rotate_stop.set()
            self._rotate_thread.join()
            self._rotate_stop.clear()
        if self._rotate_done:
            self._rotate(_now_ms(), background=False)

    def _start_rotation(self, before_ms: int) -> bool:
        """Compress ended days (and apply the retention) in the background; False if a pass still runs."""
        if not self.compress_journal or (self._rotate_thread is not None and self._rotate_thread.is_alive()):
            return False
        self._rotate_thread = threading.Thread(target=self._rotate, args=(before_ms,), name="liqscope-rotate",
                                               daemon=True)
        self._rotate_done = False
        self._rotate_thread.start()
        return True

    def _rotate(self, before_ms: int, background: bool = True) -> None:
        if not self.compress_journal:
            return
        try:
            res = rotate(self.journal_dir, before_ms=before_ms, retention_days=self.journal_retention,
                         should_stop=self._rotate_stop.is_set if background else None)
        except Exception:  # never stops recording: the plain files stay as they are
            log.exception("compressing the journal failed")
            self._rotate_done = True
            return
        self._rotate_done = not res.stopped
        if res.compressed or res.deleted:
            log.info("journal: %d day files compressed, %d past the retention deleted",
                     len(res.compressed), len(res.deleted))

    def _maybe_rotate(self) -> None:
        """Journal thread, after midnight + grace: close ended days' files, compress them in the background."""
        now = _now_ms()
        if not self.compress_journal or now < self._rotate_due or self._journal is None:
            return
        before = now - ROTATE_GRACE_MS
        self._journal.close_stale(before)
        if self._start_rotation(before):
            self._rotate_due = next_rotation_ms(now)
        else:
            self._rotate_due = now + 60_000  # the last pass still runs: try again in a minute

    _state_alive: dict[str, int] = {}

    def _save_state(self, alive: dict[str, int], force: bool = False) -> None:
        if not alive or (not force and time.monotonic() - self._state_saved < 5.0):
            return
        merged = dict(self._state_alive)
        merged.update(alive)
        try:  # a new temp file, never through a symbolic link (a store folder may come from anywhere)
            from ..fsutil import write_bytes_atomic

            write_bytes_atomic(self._state_path, json.dumps({"alive_ms": merged}).encode())
        except OSError as exc:
            log.warning("could not save %s: %s", self._state_path, exc)
        self._state_saved = time.monotonic()

    def _journal_main(self) -> None:
        """Journal thread: write every line on receipt, then normalise it and hold its events for the store."""
        unsynced: dict[Path, int] = {}  # ends flushed but not yet fsync'ed (only fsync'ed ends are checkpoints)
        synced_at = time.monotonic()
        done = False
        while not done:
            try:
                items = [self._inbox.get(timeout=self.flush_interval)]
            except queue.Empty:
                items = []
            while items and len(items) < 5000:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            if any(ex is None for ex, _line in items):
                done = True
                items = [(ex, line) for ex, line in items if ex is not None]
            try:
                if items:
                    unsynced.update(self._journal_batch(items))
                if unsynced and (done or not self.fsync or time.monotonic() - synced_at >= self.flush_interval):
                    if self.fsync:
                        self._journal.sync()
                    synced_at = time.monotonic()
                    with self._held_lock:
                        if not self._behind:
                            self._held_pos.update(unsynced)
                    unsynced = {}
                self._save_state(dict(self._alive))
                if not done:
                    self._maybe_rotate()
            except Exception:  # never let the journal thread die: the connections keep feeding it
                log.exception("journal thread")

    def _journal_batch(self, items: list[tuple[str, dict]]) -> dict[Path, int]:
        """Journal (flushed), normalise and hold one run of received lines; returns the journal ends."""
        by_ex: dict[str, list[dict]] = {}
        for ex, line in items:
            by_ex.setdefault(ex, []).append(line)
        all_ends: dict[Path, int] = {}
        for ex, lines in by_ex.items():
            try:
                ends = self._journal.append(ex, lines, sync=False)  # 1. journal first, flushed on receipt
            except Exception as exc:  # disk full...: still store what arrived, and say so
                log.exception("journaling %s lines failed", ex)
                self._journal.reset(ex)
                self._update(ex, last_error=f"journal failed: {type(exc).__name__}: {exc}"[:300])
                ends = {}
            all_ends.update(ends)
            try:
                self._normalize(ex, lines, ends)
            except Exception:  # a bug, not the data (normalize_lines never raises for that): replay it later
                log.exception("normalising %s lines failed; the store catches up from the journal", ex)
                with self._held_lock:
                    self._let_go()
        return all_ends

    def _normalize(self, ex: str, lines: list[dict], ends: dict[Path, int]) -> None:
        """2. normalise and check (quarantining what cannot be stored), hold for the store, emit."""
        norm = self._normalizers[ex]
        if ex == "okx":
            batch = self._normalize_okx(lines, norm)
        else:
            batch = normalize_lines(lines, norm, self._dedup[ex])  # the session's filter: meta
        if len(norm.missing_instruments) > 1000:  # named by frames: a hostile stream could name millions
            norm.missing_instruments.clear()
        quarantined = batch.quarantined + batch.unreadable
        with self._held_lock:
            for path in ends:  # a new day's file: forget the ends of this exchange's older files
                for old in [p for p in self._journal_ends if p.parent == path.parent and p.name < path.name]:
                    del self._journal_ends[old]
            self._journal_ends.update(ends)
            if self._behind:
                self._behind_n[ex] = self._behind_n.get(ex, 0) + len(batch.events)
            else:
                self._held += [(ex, ev) for ev in batch.events]
                if batch.gaps:
                    self._held_gaps.append(gaps_frame(ex, batch.gaps))
                if len(self._held) > self.hold_limit:
                    self._let_go()
        changes = {}
        if batch.gaps:
            changes["gaps"] = len(batch.gaps)
        if batch.events:
            changes["unstored"] = len(batch.events)
        if quarantined:
            changes["quarantined"] = quarantined
        if changes:
            self._add(ex, reason=batch.reason if quarantined else None, **changes)
        if ex == "okx" and self._live[ex].status.unconverted != len(self._okx_retry):
            self._update(ex, unconverted=len(self._okx_retry))
        if batch.events and self.on_events is not None:
            df, _refused = safe_frame(batch.events)  # refused ones are quarantined by the store thread
            self._emit_events(df)

    def _let_go(self) -> None:
        """Too much waits for the store: forget it (it is in the journal); the store thread
        catches up from the checkpoints when the store works again. Hold _held_lock."""
        for ex, _ev in self._held:
            self._behind_n[ex] = self._behind_n.get(ex, 0) + 1
        n = len(self._held)
        self._held, self._held_gaps, self._held_pos = [], [], {}
        self._behind = True
        log.warning("the store is unavailable: %d waiting events left to the journal, caught up later", n)

    def _store_main(self) -> None:
        """Store thread: write what the journal thread holds every ``store_interval`` s."""
        while True:
            self._store_wake.wait(self.store_interval)
            self._store_wake.clear()
            stopping = self._store_stop
            try:
                self._store_once()
            except Exception as exc:
                log.exception("store thread")
                for ex in self.exchanges:
                    self._update(ex, last_error=f"store append failed: {type(exc).__name__}: {exc}"[:300])
            if stopping:
                return

    def _store_once(self) -> None:
        """3. store what is held (each valid event on its own if the store refuses the batch),
        then 4. advance the journal checkpoints."""
        with self._held_lock:
            behind = self._behind
            if behind:
                # Lines up to these ends are caught up from the journal; later ones are held as usual.
                stop_at = {p: journal_size(p) for e in self.exchanges for p in journal_files(self.journal_dir, e)}
                stop_at.update(self._journal_ends)
                let_go, self._behind_n, self._behind = self._behind_n, {}, False
            items, self._held = self._held, []
            gaps, self._held_gaps = self._held_gaps, []
            pos, self._held_pos = self._held_pos, {}
        if behind:
            error = self._catch_up(stop_at, let_go)
            if error is not None:
                self._hold_back(items, gaps, pos, error)  # let go again: the next catch-up covers them
                return
        if items and not self._store_events(items, gaps, pos):
            return
        if gaps:
            try:
                self._store.append_gaps(pd.concat(gaps, ignore_index=True))
            except Exception as exc:
                if not is_data_error(exc):
                    self._hold_back([], gaps, pos, exc)
                    return
                log.warning("gaps the store refused were dropped (they are in the journal): %s", exc)
        for path, end in pos.items():
            if end > read_pos(path):  # a catch-up may have gone further already
                write_pos(path, end)
        if (items or gaps) and self.maintenance is not None:
            self.maintenance.committed()

    def _store_events(self, items, gaps, pos) -> bool:
        def write(part):
            self._store.append_liquidations(events_frame([ev for _ex, ev in part]), source=LIVE_SOURCE)

        written, refused, rest, error = store_each(write, items)
        for ex in self.exchanges:
            mine = [ev for e, ev in written if e == ex]
            if mine:
                self._count(ex, len(mine), _ts(max(int(ev["ts_ms"]) for ev in mine)))
            bad = [why for (e, _ev), why in refused if e == ex]
            if bad:
                self._add(ex, reason=f"the store refused it: {bad[-1]}", quarantined=len(bad), unstored=-len(bad))
        if error is not None:
            self._hold_back(rest, gaps, pos, error)
            return False
        return True

    def _hold_back(self, items, gaps, pos, error: BaseException) -> None:
        """The store itself failed: keep what was not written for the next round."""
        with self._held_lock:
            if self._behind:  # let go meanwhile: the catch-up will cover these too
                for ex, _ev in items:
                    self._behind_n[ex] = self._behind_n.get(ex, 0) + 1
            else:
                self._held[:0] = items
                self._held_gaps[:0] = gaps
                for path, end in pos.items():
                    self._held_pos.setdefault(path, end)
                if len(self._held) > self.hold_limit:
                    self._let_go()
        for ex in self.exchanges:
            self._update(ex, last_error=f"store append failed (kept, retried): {type(error).__name__}: {error}"[:300])

    def _catch_up(self, stop_at: dict[Path, int], let_go: dict[str, int]) -> BaseException | None:
        """Store what was let go, from the journal checkpoints up to ``stop_at``; the
        store's error if it failed (then everything waiting is let go again)."""
        new: dict[str, int] = {}
        try:
            for ex in self.exchanges:
                new[ex] = replay(self._store, self.journal_dir, exchanges=[ex], pending_only=True,
                                 stop_at=stop_at).new  # rows stored before the let-go are not counted twice
        except Exception as exc:
            with self._held_lock:
                for ex, n in let_go.items():
                    self._behind_n[ex] = self._behind_n.get(ex, 0) + n
                self._let_go()
            return exc
        for ex in self.exchanges:
            if new.get(ex):
                self._count(ex, new[ex], None, unstored=False)
            if let_go.get(ex):
                self._add(ex, unstored=-let_go[ex])
        return None

    def _normalize_okx(self, lines: list[dict], norm: Normalizer):
        """OKX frames naming a contract whose size is unknown wait (in memory; they
        are in the journal anyway) until a refreshed instrument list converts them."""
        dedup, keep = self._dedup["okx"], None
        batch = normalize_lines([], norm, dedup)
        for line in lines:
            before = norm.unconverted
            part = normalize_lines([line], norm, dedup, keep=keep)
            _merge(batch, part)
            if norm.unconverted > before:
                self._okx_wait(line)
            if line.get("k") == "meta" and self._okx_retry:
                waiting = list(self._okx_retry)
                self._okx_retry.clear()
                self._okx_retry_bytes = 0
                for old in waiting:  # counted (quarantined, unreadable) the first time already
                    before = norm.unconverted
                    batch.events += normalize_lines([old], norm, dedup, keep=keep).events
                    if norm.unconverted > before:
                        self._okx_wait(old)
        return batch

    def _okx_wait(self, line: dict) -> None:
        size = len(line.get("d") or "")
        self._okx_retry.append(line)
        self._okx_retry_bytes += size
        while len(self._okx_retry) > OKX_RETRY_FRAMES or self._okx_retry_bytes > OKX_RETRY_BYTES:
            self._okx_retry_bytes -= len(self._okx_retry.popleft().get("d") or "")

    def _emit_events(self, df: pd.DataFrame) -> None:
        if self.on_events is not None and len(df):
            try:
                self.on_events(df)
            except Exception:
                log.exception("on_events callback failed")

    def _count(self, ex: str, n: int, last_ts, unstored: bool = True) -> None:
        """``n`` events of ``ex`` were stored."""
        if ex not in self._live:
            return
        with self._lock:
            live = self._live[ex]
            live.recent.append((time.monotonic(), n))
            st = live.status
            live.status = replace(st, events_total=st.events_total + n,
                                  last_event_at=last_ts if last_ts is not None else st.last_event_at,
                                  unstored=max(0, st.unstored - n) if unstored else st.unstored)
        self._update(ex)


OKX_RETRY_FRAMES = 5000  # OKX frames waiting for a contract size, at most...
OKX_RETRY_BYTES = 8 << 20  # ...and at most this many bytes of them (the oldest go first; all are in the journal)


def _merge(batch, part) -> None:
    batch.events += part.events
    batch.gaps += part.gaps
    batch.frames += part.frames
    batch.quarantined += part.quarantined
    batch.unreadable += part.unreadable
    batch.reason = part.reason or batch.reason


def _read_alive(path: Path, exchanges) -> dict[str, int]:
    """When each exchange was last seen connected, from state.json (whatever it holds)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    alive = state.get("alive_ms") if isinstance(state, dict) else None
    if not isinstance(alive, dict):
        return {}
    return {e: int(v) for e, v in alive.items()
            if e in exchanges and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 2**53}


@dataclass
class _Session:
    """One connection attempt: what it delivered (for the backoff)."""

    frames: int = 0
    oversize: bool = False


def _too_big(exc: BaseException) -> bool:
    """Whether a connection ended because a frame exceeded ``max_size`` (we closed it with 1009)."""
    from websockets.exceptions import ConnectionClosed, PayloadTooBig

    if isinstance(exc, PayloadTooBig) or isinstance(exc.__cause__, PayloadTooBig):
        return True
    sent = getattr(exc, "sent", None) if isinstance(exc, ConnectionClosed) else None
    return sent is not None and sent.code == 1009


def _down(exc: BaseException) -> tuple[str, str]:
    """State and reason in words for a failed connection: OFFLINE when the network itself is missing."""
    cause = network_cause(exc)
    if cause is not None:
        return (OFFLINE, cause.short) if cause.offline else (RECONNECTING, cause.text)
    return RECONNECTING, (" ".join(str(exc).split()) or type(exc).__name__)[:200]


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def _endpoint(exchange: str, given) -> Endpoint:
    default = DEFAULT_ENDPOINTS[exchange]
    if given is None:
        return default
    if isinstance(given, Endpoint):
        return given
    if isinstance(given, dict):
        return Endpoint(given.get("ws", default.ws), given.get("rest", default.rest))
    raise TypeError(f"endpoint for {exchange} must be an Endpoint or a dict with ws/rest")


def _maintenance(location):
    from ..store.maintenance import Scheduler

    return Scheduler(location)


def _context_poller(exchanges, symbols, store, specs):
    from .context_poller import ContextPoller

    bases = {e: spec.endpoint.rest for e, spec in specs.items()
             if getattr(spec, "endpoint", None) is not None and spec.endpoint.rest != DEFAULT_ENDPOINTS[e].rest}
    return ContextPoller(exchanges, symbols, store, api_bases=bases)
