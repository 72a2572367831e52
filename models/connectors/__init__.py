"""Exchange connectors (Qt-free): historical candles and the live liquidation recorder.

For a GUI:

* ``fetch_candles(exchange, symbol, interval, start, end=None, *, store=None,
  progress=cb, cancel=threading.Event())`` — blocking; run it in a worker
  thread. ``progress`` receives :class:`FetchProgress` after every page.
* ``Recorder(exchanges, symbols=None, store=None, on_status=cb, on_events=cb)``
  with ``start()`` / ``stop()`` / ``status()`` — runs its own thread and
  asyncio loop; callbacks arrive on that thread (re-emit them as Qt signals).
* ``replay(store, ...)`` — re-normalise the raw journal (after a parser fix), replacing what it covers.
"""
from .candles import (EXCHANGE_IDS, HISTORY_NOTES, FetchError, FetchProgress, FetchResult, fetch_candles,
                      intervals, list_symbols, make_client, missing_ranges, point_at)
from .journal import ReplayResult, journal_root, replay
from .parsers import EXCHANGES, ContractSpec, Normalizer, ParseError, parse_binance, parse_bybit, parse_okx
from .recorder import CONNECTED, CONNECTING, RECONNECTING, STOPPED, Backoff, ExchangeStatus, Recorder
from .streams import DEFAULT_ENDPOINTS, NOTES, Endpoint

__all__ = [
    "EXCHANGES", "EXCHANGE_IDS", "HISTORY_NOTES", "NOTES", "DEFAULT_ENDPOINTS",
    "fetch_candles", "intervals", "list_symbols", "make_client", "missing_ranges", "point_at", "FetchError", "FetchProgress", "FetchResult",
    "Recorder", "Backoff", "ExchangeStatus", "Endpoint", "CONNECTED", "CONNECTING", "RECONNECTING", "STOPPED",
    "replay", "ReplayResult", "journal_root",
    "Normalizer", "ContractSpec", "ParseError", "parse_binance", "parse_bybit", "parse_okx",
]
