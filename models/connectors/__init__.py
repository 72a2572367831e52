"""Exchange connectors (Qt-free): historical candles and the live liquidation recorder.

For a GUI:

* ``fetch_candles(exchange, symbol, interval, start, end=None, *, store=None,
  task=Task(on_progress, cancel))`` — blocking; run it in a worker thread. The
  task (:mod:`liqscope.models.progress`) gets a step after every page and a note
  with the reason on every failed request; persistent failures raise
  :class:`NetworkUnreachable` / :class:`ExchangeUnavailable` (both :class:`FetchError`).
* ``Recorder(exchanges, symbols=None, store=None, on_status=cb, on_events=cb)``
  with ``start()`` / ``stop()`` / ``status()`` — runs its own thread and
  asyncio loop; callbacks arrive on that thread (re-emit them as Qt signals).
  States: CONNECTING, CONNECTED, RECONNECTING, OFFLINE (no network or name
  resolution; ``ExchangeStatus.reason`` says so in words), STOPPED.
* ``replay(store, ...)`` — re-normalise the raw journal (after a parser fix), replacing what it covers.
"""
from .candles import (EXCHANGE_IDS, HISTORY_NOTES, ExchangeUnavailable, FetchError, FetchResult, NetworkUnreachable,
                      fetch_candles, intervals, list_symbols, make_client, missing_ranges, point_at)
from .journal import ReplayResult, journal_root, replay
from .netcause import NetworkCause, network_cause
from .parsers import EXCHANGES, ContractSpec, Normalizer, ParseError, parse_binance, parse_bybit, parse_okx
from .recorder import CONNECTED, CONNECTING, OFFLINE, RECONNECTING, STOPPED, Backoff, ExchangeStatus, Recorder
from .streams import DEFAULT_ENDPOINTS, NOTES, Endpoint

__all__ = [
    "EXCHANGES", "EXCHANGE_IDS", "HISTORY_NOTES", "NOTES", "DEFAULT_ENDPOINTS",
    "fetch_candles", "intervals", "list_symbols", "make_client", "missing_ranges", "point_at",
    "FetchError", "NetworkUnreachable", "ExchangeUnavailable", "FetchResult", "NetworkCause", "network_cause",
    "Recorder", "Backoff", "ExchangeStatus", "Endpoint", "CONNECTED", "CONNECTING", "RECONNECTING", "OFFLINE",
    "STOPPED",
    "replay", "ReplayResult", "journal_root",
    "Normalizer", "ContractSpec", "ParseError", "parse_binance", "parse_bybit", "parse_okx",
]
