"""Keeps open interest and funding current while the recorder runs (Qt-free).

:class:`ContextPoller` is one thread, off the recorder's hot path (its WebSocket loop, journal and store
threads never wait for it). Every :data:`OI_EVERY_S` (the 5-minute open interest period all three
exchanges serve: a new snapshot exists every 5 minutes) it fetches what the store lacks of each
recorded symbol's open interest over the last :data:`BACKFILL` (one day), and every
:data:`FUNDING_EVERY_S` (an hour: settlements come every 1, 2, 4 or 8 hours, on the hour) the same
for funding, through :func:`.context_fetch.fetch_context` -- resumable from the store's coverage, so a
round asks for the missing tail only. A failure (offline, rate limit, an exchange error, the store
refusing) is logged and kept in :attr:`ContextPoller.errors`; it never stops the poller or the
recording, and the next round tries again.

Symbols: the recorder's list (native ids such as ``BTCUSDT`` / ``BTC-USDT-SWAP``, or assets such as
``BTC``) mapped to each exchange's USDT perpetual; when the recorder records everything, the poller
polls :data:`DEFAULT_ASSETS` (BTC and ETH), not every listed contract.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable

import pandas as pd

from ..progress import Task

log = logging.getLogger(__name__)

OI_PERIOD = "5m"
OI_EVERY_S = 300.0
FUNDING_EVERY_S = 3600.0
BACKFILL = pd.Timedelta(days=1)
DEFAULT_ASSETS = ("BTC", "ETH")


class ContextPoller:
    """Polls ``oi`` and ``funding`` for ``symbols`` on ``exchanges`` into ``store`` (see the module doc).

    ``api_bases`` maps an exchange to a REST base URL (tests, mirrors); ``fetch`` is
    :func:`.context_fetch.fetch_context` (tests may wrap it). ``poll_once()`` runs one round of both
    kinds now, on the caller's thread."""

    def __init__(self, exchanges: Iterable[str], symbols, store, *, api_bases: dict | None = None,
                 oi_period: str = OI_PERIOD, oi_every: float = OI_EVERY_S, funding_every: float = FUNDING_EVERY_S,
                 backfill: pd.Timedelta = BACKFILL, fetch: Callable | None = None, retries: int = 2,
                 retry_delay: float = 1.0):
        from .context_fetch import fetch_context

        self.exchanges = [e.lower() for e in exchanges]
        self.symbols = symbols
        self.store = store
        self.api_bases = dict(api_bases or {})
        self.oi_period, self.oi_every, self.funding_every, self.backfill = oi_period, oi_every, funding_every, backfill
        self.fetch = fetch or fetch_context
        self.retries, self.retry_delay = retries, retry_delay
        self.errors: deque[str] = deque(maxlen=100)  # the latest failures, one line each
        self.skipped: list[str] = []  # "exchange: item" of symbols an exchange has no USDT perpetual for
        self.rounds = 0  # completed rounds (either kind)
        self.stored = 0  # rows new to the store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: dict[str, object] = {}
        self._resolved: dict[str, list[str]] = {}

    # -- thread --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name="liqscope-context", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("context poller did not stop within %.0f s", timeout)
            else:
                self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        due = {"oi": 0.0, "funding": 0.0}
        every = {"oi": self.oi_every, "funding": self.funding_every}
        while not self._stop.is_set():
            now = time.monotonic()
            for kind in ("oi", "funding"):
                if now >= due[kind] and not self._stop.is_set():
                    self._round(kind)
                    due[kind] = time.monotonic() + every[kind]
            wait = max(0.0, min(due.values()) - time.monotonic())
            self._stop.wait(wait)

    # -- rounds ----------------------------------------------------------------------------
    def poll_once(self) -> None:
        for kind in ("oi", "funding"):
            self._round(kind)

    def _round(self, kind: str) -> None:
        end = pd.Timestamp(time.time_ns(), tz="UTC")
        for exchange in self.exchanges:
            try:
                symbols = self._symbols(exchange)
            except Exception as exc:  # noqa: BLE001 - never stops the poller
                self._error(f"{exchange} markets: {_line(exc)}")
                continue
            for symbol in symbols:
                if self._stop.is_set():
                    return
                try:
                    res = self.fetch(kind, exchange, symbol, end - self.backfill, end, store=self.store,
                                     period=self.oi_period, client=self._clients[exchange],
                                     task=Task(cancel=self._stop), retries=self.retries,
                                     retry_delay=self.retry_delay)
                    self.stored += res.new
                except Exception as exc:  # noqa: BLE001 - logged, the next round tries again
                    self._error(f"{exchange} {symbol} {'open interest' if kind == 'oi' else 'funding'}: {_line(exc)}")
        self.rounds += 1

    def _error(self, text: str) -> None:
        self.errors.append(text)
        log.warning("context poll: %s", text)

    def _symbols(self, exchange: str) -> list[str]:
        """The unified perpetual symbols to poll on ``exchange`` (markets loaded once)."""
        if exchange in self._resolved:
            return self._resolved[exchange]
        from .candles import make_client

        client = self._clients.get(exchange)
        if client is None:
            client = self._clients[exchange] = make_client(exchange, "BTC/USDT:USDT",
                                                           api_base=self.api_bases.get(exchange))
        if not client.markets:
            client.load_markets()
        wanted = self.symbols.get(exchange) if isinstance(self.symbols, dict) else self.symbols
        wanted = list(wanted) if wanted else list(DEFAULT_ASSETS)
        by_id = {str(m.get("id")): s for s, m in client.markets.items() if m.get("swap") and m.get("linear")}
        out = []
        for item in wanted:
            item = str(item).strip()
            unified = (item if item in client.markets else by_id.get(item)
                       or (f"{item.upper()}/USDT:USDT" if f"{item.upper()}/USDT:USDT" in client.markets else None))
            if unified is None:  # e.g. another exchange's id in a list shared by all of them
                self.skipped.append(f"{exchange}: {item}")
                log.info("context poll: %s has no USDT perpetual for %r: not polled there", exchange, item)
                continue
            if unified not in out:
                out.append(unified)
        self._resolved[exchange] = out
        return out


def _line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
