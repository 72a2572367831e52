"""Live liquidation recorder: public WebSockets → raw journal → store.

:class:`Recorder` runs an asyncio loop in its own thread (network I/O never
touches the caller's thread, e.g. the GUI thread). Each exchange has one
connection task that reconnects with exponential backoff and jitter,
resubscribes and sends the app-level pings its exchange needs. Frames are
batched every ``flush_interval`` seconds and handed, in order, to a single
writer thread which

1. appends them to the journal (flush + fsync) — *first*, so nothing received
   is lost if the process dies;
2. normalises them (:mod:`.parsers`), drops events already seen (reconnect
   overlaps) and appends the rest to the store;
3. advances the journal checkpoint and calls ``on_events``.

Times the stream was not connected are recorded as gaps (journal and
``store.append_gaps``). On start, whatever the journal holds beyond its
checkpoint (a previous run killed between steps 1 and 2) is normalised first.

Callbacks run on the recorder's threads: a GUI must hand them over to its own
thread (e.g. emit a Qt signal, which queues across threads).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from .journal import (Dedup, Journal, gaps_frame, iter_lines, journal_files, journal_root, normalize_lines,
                      replay, write_pos)
from .netcause import network_cause
from .parsers import EXCHANGES, Normalizer, events_frame
from .streams import DEFAULT_ENDPOINTS, SPECS, Endpoint, StreamSpec

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
    the same server do not reconnect in lockstep. The attempt count resets once
    a connection has lasted ``reset_after`` seconds."""

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
            self.specs[e] = spec

        self._lock = threading.Lock()
        self._live = {e: _Live(ExchangeStatus(e, STOPPED, note=self.specs[e].note)) for e in self.exchanges}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_evt: asyncio.Event | None = None
        self._started = threading.Event()
        self._pending: list[tuple[str, dict]] = []
        self._writer = None
        self._journal: Journal | None = None
        self._normalizers = {e: Normalizer(e) for e in self.exchanges}
        self._dedup = {e: Dedup() for e in self.exchanges}
        self._retry: list[pd.DataFrame] = []  # events the store refused, retried next batch
        self._retry_gaps: list[pd.DataFrame] = []
        self._stored_at = 0.0
        self._held_pos: dict[Path, int] = {}
        self._okx_retry: deque = deque(maxlen=5000)  # frames waiting for a contract size
        self._alive: dict[str, int] = {}
        self._state_saved = 0.0
        self.refresh_every = 6 * 3600.0  # OKX instrument list refresh period (s)
        self.error: BaseException | None = None  # what stopped the loop, if it crashed
        self.recovered = None  # ReplayResult of the start-up journal recovery

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

    def stop(self, timeout: float = 15.0) -> None:
        """Disconnect, record open gaps, flush the journal and the store; wait for the thread."""
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
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqscope-journal")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._open_writer)
            for e in self.exchanges:
                self._update(e, state=CONNECTING)
            self._started.set()
            tasks = [asyncio.create_task(self._run_exchange(self.specs[e]), name=f"ws-{e}")
                     for e in self.exchanges]
            if "okx" in self.specs:
                tasks.append(asyncio.create_task(self._refresh_instruments(self.specs["okx"]), name="okx-ref"))
            flusher = asyncio.create_task(self._flush_loop(), name="flush")
            await self._stop_evt.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._flush(force=True)
        finally:
            await loop.run_in_executor(self._writer, self._close_writer)
            self._writer.shutdown(wait=True)
            for e in self.exchanges:
                self._update(e, state=STOPPED, reason="", retry_at=None)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            now = _now_ms()
            for e in self.exchanges:
                if self._live[e].status.state == CONNECTED:
                    self._alive[e] = now
            await self._flush()

    async def _flush(self, force: bool = False) -> None:
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._write, batch, dict(self._alive), force)

    def _push(self, exchange: str, line: dict) -> None:
        self._pending.append((exchange, line))

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
                try:
                    if not prepared:
                        meta = await spec.prepare()
                        prepared = True
                        if meta is not None:
                            self._push(ex, {"t": _now_ms(), "k": "meta", "d": meta})
                        if getattr(spec, "list_error", None):
                            self._update(ex, last_error=spec.list_error)
                    async with connect(
                        spec.url(), open_timeout=10, close_timeout=1, max_size=2 ** 24,
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
                        await self._receive(ws, spec)
                        reason = words = "server closed the connection"
                        state = RECONNECTING
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # network, handshake, protocol, REST prepare
                    reason = f"{type(exc).__name__}: {exc}"[:300]
                    state, words = _down(exc)
                now = _now_ms()
                if down_since is None:
                    down_since = now if (connected_at is not None or not first) else started
                    down_reason = reason
                if connected_at is not None and (now - connected_at) / 1000 >= self.backoff.reset_after:
                    attempt = 0
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

    async def _receive(self, ws, spec: StreamSpec) -> None:
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

    # -- writer thread ---------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.journal_dir / "state.json"

    def _open_writer(self) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        try:
            state = json.loads(self._state_path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        self._state_alive = {e: int(v) for e, v in (state.get("alive_ms") or {}).items()
                             if e in self.exchanges and isinstance(v, (int, float))}
        if self._store is None:
            from ..store import open_store

            self._store = open_store()
        if self.recover:
            # Each session's own --symbols (journaled as meta) applies to its frames.
            self.recovered = replay(self._store, self.journal_dir, exchanges=self.exchanges,
                                    pending_only=True, dedup=self._dedup, on_events=self._emit_events)
        self._journal = Journal(self.journal_dir, fsync=self.fsync)
        # Carry parsing state (OKX contract specs) over from the latest journal file.
        for e in self.exchanges:
            files = journal_files(self.journal_dir, e)
            metas = [o["d"] for _a, _b, o in iter_lines(files[-1]) if o and o.get("k") == "meta"] if files else []
            for meta in metas:
                self._normalizers[e].set_meta(meta)
                self._journal.remember_meta(e, meta)

    def _close_writer(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self._save_state(dict(self._alive), force=True)

    _state_alive: dict[str, int] = {}

    def _save_state(self, alive: dict[str, int], force: bool = False) -> None:
        if not alive or (not force and time.monotonic() - self._state_saved < 5.0):
            return
        merged = dict(self._state_alive)
        merged.update(alive)
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"alive_ms": merged}))
        os.replace(tmp, self._state_path)
        self._state_saved = time.monotonic()

    def _write(self, batch: list[tuple[str, dict]], alive: dict[str, int], force: bool = False) -> None:
        by_ex: dict[str, list[dict]] = {}
        for ex, line in batch:
            by_ex.setdefault(ex, []).append(line)
        for ex, lines in by_ex.items():
            try:
                self._journal_and_normalize(ex, lines)
            except Exception as exc:  # journal failure: report, keep recording
                log.exception("journaling %s batch failed", ex)
                self._update(ex, last_error=f"journal failed: {type(exc).__name__}: {exc}"[:300])
        if force or time.monotonic() - self._stored_at >= self.store_interval:
            try:
                self._store_pending()
            except Exception as exc:  # store failure: kept in memory and journal, retried
                log.exception("store append failed")
                for ex in self.exchanges:
                    self._update(ex, last_error=f"store append failed: {type(exc).__name__}: {exc}"[:300])
        self._save_state(alive, force=force)

    def _journal_and_normalize(self, ex: str, lines: list[dict]) -> None:
        ends = self._journal.append(ex, lines)  # 1. journal first (flushed, fsync'ed)
        self._held_pos.update(ends)
        norm = self._normalizers[ex]
        if ex == "okx":
            batch = self._normalize_okx(lines, norm)
        else:
            batch = normalize_lines(lines, norm, self._dedup[ex])  # 2. normalise (session's filter: meta)
        changes = {}
        if batch.gaps:
            self._retry_gaps.append(gaps_frame(ex, batch.gaps))
            changes["gaps"] = self._live[ex].status.gaps + len(batch.gaps)
        if ex == "okx" and self._live[ex].status.unconverted != len(self._okx_retry):
            changes["unconverted"] = len(self._okx_retry)
        if changes:
            self._update(ex, **changes)
        if batch.events:
            df = events_frame(batch.events)
            self._retry.append(df)
            self._emit_events(df)
            self._count(ex, len(df), df["ts"].iloc[-1])

    def _store_pending(self) -> None:
        """3. store what was normalised since the last store write, then 4. checkpoint."""
        self._stored_at = time.monotonic()
        if self._retry:
            df = pd.concat(self._retry, ignore_index=True) if len(self._retry) > 1 else self._retry[0]
            self._store.append_liquidations(df)
            self._retry = []
        if self._retry_gaps:
            self._store.append_gaps(pd.concat(self._retry_gaps, ignore_index=True))
            self._retry_gaps = []
        for path, end in self._held_pos.items():
            write_pos(path, end)
        self._held_pos = {}

    def _normalize_okx(self, lines: list[dict], norm: Normalizer):
        """OKX frames naming a contract whose size is unknown wait (in memory; they
        are in the journal anyway) until a refreshed instrument list converts them."""
        dedup, keep = self._dedup["okx"], None
        batch = normalize_lines([], norm, dedup)
        for line in lines:
            before = norm.unconverted
            part = normalize_lines([line], norm, dedup, keep=keep)
            batch.events += part.events
            batch.gaps += part.gaps
            batch.frames += part.frames
            if norm.unconverted > before:
                self._okx_retry.append(line)
            if line.get("k") == "meta" and self._okx_retry:
                waiting = list(self._okx_retry)
                self._okx_retry.clear()
                for old in waiting:
                    before = norm.unconverted
                    batch.events += normalize_lines([old], norm, dedup, keep=keep).events
                    if norm.unconverted > before:
                        self._okx_retry.append(old)
        return batch

    def _emit_events(self, df: pd.DataFrame) -> None:
        if self.on_events is not None and len(df):
            try:
                self.on_events(df)
            except Exception:
                log.exception("on_events callback failed")

    def _count(self, ex: str, n: int, last_ts) -> None:
        if ex not in self._live:
            return
        with self._lock:
            live = self._live[ex]
            live.recent.append((time.monotonic(), n))
            live.status = replace(live.status, events_total=live.status.events_total + n, last_event_at=last_ts)
        self._update(ex)


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
