"""``liqscope fetch`` and ``liqscope record``: exchange data from the terminal.

Registered by models/cli.py (``register(subparsers)``). Errors are one line,
exit status 2 (``UsageError``).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .cli import UsageError, positive_float
from .timeutil import TimeParseError, parse_time

EXCHANGES = ("binance", "bybit", "okx")


def register(sub) -> None:
    f = sub.add_parser("fetch", help="download historical data from an exchange's public API")
    fsub = f.add_subparsers(dest="what", metavar="WHAT")
    c = fsub.add_parser("candles", help="OHLCV candles into the store (fetches only what it lacks)")
    c.add_argument("--exchange", required=True, choices=["binance", "okx", "bybit"],
                   help="binance (USD-M futures), okx (swaps) or bybit (linear/inverse perpetuals); spot by symbol")
    c.add_argument("--symbol", required=True,
                   help="ccxt unified symbol: BTC/USDT:USDT (USDT perpetual), BTC/USD:BTC (inverse), BTC/USDT (spot)")
    c.add_argument("--interval", default="1m", help="candle interval the exchange offers: 1m, 5m, 1h, 1d... (default 1m)")
    c.add_argument("--start", required=True, help="ISO-8601 UTC start (inclusive)")
    c.add_argument("--end", help="ISO-8601 UTC end (exclusive; default: now, closed candles only)")
    c.add_argument("--api-base", help="send REST requests to this base URL instead (mirrors, tests)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    c.set_defaults(func=cmd_fetch_candles)
    for what, helptext in (("oi", "open interest history (USD and base units per period) into the store"),
                           ("funding", "funding rate history (per settlement) into the store")):
        o = fsub.add_parser(what, help=helptext + " (fetches only what it lacks)",
                            description=f"Fetch {helptext} for start <= ts < end from the exchange's public REST API. "
                                        "Resumable: what the store holds is skipped, every page is stored as it "
                                        "arrives. History older than the exchange serves is said in a note.")
        o.add_argument("--exchange", required=True, choices=list(EXCHANGES),
                       help="binance (USD-M), bybit (linear perpetuals) or okx (swaps)")
        o.add_argument("--symbol", required=True, help="ccxt unified perpetual symbol, e.g. BTC/USDT:USDT")
        o.add_argument("--start", required=True, help="ISO-8601 UTC start (inclusive)")
        o.add_argument("--end", help="ISO-8601 UTC end (exclusive; default: now)")
        if what == "oi":
            o.add_argument("--period", default="1h", help="snapshot period: 5m, 15m, 30m, 1h, 4h, 1d... (default 1h)")
        o.add_argument("--api-base", help="send REST requests to this base URL instead (mirrors, tests)")
        o.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        o.set_defaults(func=cmd_fetch_context)
    f.set_defaults(func=lambda args: _need_what(f))

    r = sub.add_parser("record", help="record live liquidations from public WebSocket streams until Ctrl-C")
    r.add_argument("--exchange", action="append", dest="exchanges", metavar="X", choices=list(EXCHANGES),
                   help="binance, bybit or okx (repeatable; default all three)")
    r.add_argument("--symbols", help="comma-separated native symbols (BTCUSDT, BTC-USDT-SWAP) or assets (BTC); "
                                     "default: everything (Bybit: every linear perpetual)")
    r.add_argument("--endpoint", action="append", default=[], metavar="X.ws=URL",
                   help="override an endpoint, e.g. okx.ws=wss://... or okx.rest=https://... (repeatable)")
    r.add_argument("--duration", type=positive_float, help="stop after this many seconds (default: until Ctrl-C)")
    r.add_argument("--replay-journal", action="store_true",
                   help="instead of recording, re-normalise the raw journal (after a parser fix): it replaces "
                        "what the store holds for the times the journal covers")
    r.add_argument("--since", help="with --replay-journal: first UTC day (YYYY-MM-DD)")
    r.add_argument("--until", help="with --replay-journal: last UTC day (YYYY-MM-DD)")
    r.add_argument("--journal-retention", type=retention_days, metavar="DAYS",
                   help="delete the raw journal's compressed days older than DAYS days (>= 1: today and "
                        "yesterday always stay); default: keep everything")
    r.add_argument("--context", action="store_true",
                   help="also keep open interest (5m) and funding of the recorded symbols current in the store, "
                        "polled from the exchanges' REST APIs every 5 minutes / every hour (all symbols recorded: "
                        "BTC and ETH); failures are logged and never stop recording")
    r.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    r.set_defaults(func=cmd_record)


def retention_days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: keep at least 1 day (ended days are kept compressed; "
                                         "leave the option out to keep everything)")
    return value


def _need_what(parser) -> int:
    raise UsageError("fetch needs what to fetch: `liqscope fetch candles|oi|funding ...`")


def _time(text: str, flag: str):
    try:
        return parse_time(text)
    except TimeParseError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def cmd_fetch_candles(args) -> int:
    from .connectors.candles import ExchangeUnavailable, FetchError, NetworkUnreachable, fetch_candles
    from .progress import terminal_task

    start = _time(args.start, "--start")
    end = _time(args.end, "--end") if args.end else None
    if end is not None and end <= start:
        raise UsageError(f"--end ({end.isoformat()}) must be after --start ({start.isoformat()})")
    store = _open_store()
    # Retries and their reasons print even with --no-progress: they are why nothing moves.
    task = terminal_task(f"{args.exchange} {args.symbol} {args.interval}", unit=" candles",
                         enabled=False if args.no_progress else None)
    try:
        result = fetch_candles(args.exchange, args.symbol, args.interval, start, end, store=store,
                               api_base=args.api_base, task=task)
    except NetworkUnreachable as exc:
        hint = "check the connection, then" if exc.offline else "when the exchange is reachable,"
        raise UsageError(f"{exc}; {hint} run the same command to resume (what was fetched is stored)") from None
    except ExchangeUnavailable as exc:
        raise UsageError(f"{exc}; try again later: the same command resumes (what was fetched is stored)") from None
    except (FetchError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("interrupted: what was fetched is stored; run the same command to resume", file=sys.stderr)
        return 130
    if not result.missing:
        print(f"{result.exchange} {result.symbol} {result.interval}: already complete from "
              f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC")
    else:
        print(f"{result.exchange} {result.symbol} {result.interval}: {result.rows:,} candles fetched "
              f"({result.new:,} new) in {result.requests:,} requests, {result.start:%Y-%m-%d %H:%M} to "
              f"{result.end:%Y-%m-%d %H:%M} UTC")
    return 0


def cmd_fetch_context(args) -> int:
    """``liqscope fetch oi|funding``: as ``fetch candles`` (errors one line, what was fetched is kept)."""
    from .connectors.candles import ExchangeUnavailable, FetchError, NetworkUnreachable
    from .connectors.context_fetch import fetch_context
    from .progress import terminal_task

    start = _time(args.start, "--start")
    end = _time(args.end, "--end") if args.end else None
    if end is not None and end <= start:
        raise UsageError(f"--end ({end.isoformat()}) must be after --start ({start.isoformat()})")
    period = getattr(args, "period", "1h")
    store = _open_store()
    label = "open interest " + period if args.what == "oi" else "funding"
    task = terminal_task(f"{args.exchange} {args.symbol} {label}", unit=" periods" if args.what == "oi" else " h",
                         enabled=False if args.no_progress else None)
    kept = "what was fetched is stored"
    try:
        result = fetch_context(args.what, args.exchange, args.symbol, start, end, store=store, period=period,
                               api_base=args.api_base, task=task)
    except NetworkUnreachable as exc:
        hint = "check the connection, then" if exc.offline else "when the exchange is reachable,"
        raise UsageError(f"{exc}; {hint} run the same command to resume ({kept})") from None
    except ExchangeUnavailable as exc:
        raise UsageError(f"{exc}; try again later: the same command resumes ({kept})") from None
    except FetchError as exc:
        got = getattr(exc, "fetched", None)
        more = f"; the {got.rows:,} rows fetched before it are stored" if got is not None and got.rows else ""
        raise UsageError(" ".join(str(exc).split()) + more) from None
    except ValueError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    except KeyboardInterrupt:
        print(f"interrupted: {kept}; run the same command to resume", file=sys.stderr)
        return 130
    for notice in dict.fromkeys(n.message for n in result.notices):
        print(f"liqscope: note: {notice}", file=sys.stderr)
    span = f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC"
    head = f"{result.exchange} {result.symbol} {result.what}"
    if not result.missing:
        print(f"{head}: already complete from {span}")
    else:
        print(f"{head}: {result.rows:,} rows fetched ({result.new:,} new) in {result.requests:,} requests, {span}"
              + (" (cancelled)" if result.cancelled else ""))
    return 0


def _state_line(st) -> str:
    """``offline (name resolution failed), retrying``: a recorder state and why, in words."""
    from .connectors.recorder import OFFLINE, RECONNECTING

    line = st.state + (f" ({st.reason})" if st.reason else "")
    return line + (", retrying" if st.state in (OFFLINE, RECONNECTING) else "")


def _open_store():
    try:
        from .store import open_store
    except ImportError as exc:
        raise UsageError(f"the local store is not available: {exc}") from None
    return open_store()


def _endpoints(items: list[str]) -> dict:
    out: dict[str, dict] = {}
    for item in items:
        key, sep, url = item.partition("=")
        ex, dot, kind = key.partition(".")
        if not sep or not dot or ex not in EXCHANGES or kind not in ("ws", "rest") or not url:
            raise UsageError(f"--endpoint {item!r}: expected EXCHANGE.ws=URL or EXCHANGE.rest=URL")
        out.setdefault(ex, {})[kind] = url
    return out


def cmd_record(args) -> int:
    from .connectors.journal import journal_root, replay

    exchanges = list(dict.fromkeys(args.exchanges or EXCHANGES))
    if args.replay_journal:
        for flag, day in (("--since", args.since), ("--until", args.until)):
            if day is not None:
                try:
                    time.strptime(day, "%Y-%m-%d")
                except ValueError:
                    raise UsageError(f"{flag} {day!r}: expected a UTC day like 2025-05-09") from None
        if args.journal_retention is not None:
            raise UsageError("--journal-retention applies when recording, not with --replay-journal")
        if args.context:
            raise UsageError("--context applies when recording, not with --replay-journal")
        root = journal_root()
        if not root.is_dir():
            raise UsageError(f"no journal at {root}")
        from .connectors.streams import SymbolFilter

        keep = SymbolFilter(args.symbols.split(",")) if args.symbols else None
        res = replay(_open_store(), root, exchanges=exchanges, since=args.since, until=args.until, keep=keep)
        print(f"replayed {res.files} journal files: {res.frames:,} frames, {res.events:,} liquidations "
              f"({res.new:,} new, {res.removed:,} stored rows replaced), {res.gaps} gaps, "
              f"{res.errors} unreadable frames"
              + (f", {res.quarantined:,} quarantined events (invalid or refused by the store; kept in the journal)"
                 if res.quarantined else "")
              + (f", {res.unconverted} frames with unknown contract sizes" if res.unconverted else ""))
        return 0
    if args.since or args.until:
        raise UsageError("--since/--until only apply with --replay-journal")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    endpoints = _endpoints(args.endpoint)
    from .connectors.recorder import Recorder

    # Ctrl-C and SIGTERM (what `systemctl stop` sends) stop cleanly: connections closed, open gaps
    # journaled, journal and store flushed, exit status 0. Caught before the store opens, so a
    # signal during start-up (the journal recovery) stops it the same way once it is up.
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        store = _open_store()
        printer = None if args.quiet else _StatusPrinter()
        rec = Recorder(exchanges, symbols=symbols, store=store, endpoints=endpoints,
                       on_status=printer, on_events=printer.events if printer else None,
                       journal_retention=args.journal_retention, context_poll=args.context)
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        raise
    try:
        try:
            rec.start()
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
        if printer:
            print(f"recording {', '.join(exchanges)} into the store; Ctrl-C stops", file=sys.stderr)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set() and rec.running:
            timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            if stop.wait(timeout) or (deadline is not None and time.monotonic() >= deadline):
                break
    finally:
        rec.stop()
        for s, h in old.items():
            signal.signal(s, h)
    if rec.error is not None:
        raise UsageError(f"recorder stopped: {rec.error}")
    if printer:
        printer.summary(rec.status())
    return 0


class _StatusPrinter:
    """State changes (with their reason) and the latest events on stderr: one line per change, not per retry.

    Quarantined and oversize frames get a line when their count grows: at once the
    first time, then at most every ``quiet`` seconds per exchange and kind (a
    poisoned stream must not flood the terminal); the summary has the totals."""

    def __init__(self, stream=None, *, quiet: float = 10.0, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self._last: dict[str, tuple[str, str]] = {}
        self._counts: dict[tuple[str, str], int] = {}  # (exchange, kind) -> count last printed
        self._said_at: dict[tuple[str, str], float] = {}
        self.quiet = quiet
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self, st) -> None:
        with self._lock:
            seen = (st.state, st.reason)
            if self._last.get(st.exchange) != seen:
                self._last[st.exchange] = seen
                print(f"{time.strftime('%H:%M:%S')} {st.exchange}: {_state_line(st)}", file=self.stream, flush=True)
            now = self._clock()
            for kind in ("quarantined", "oversize"):
                key, count = (st.exchange, kind), getattr(st, kind, 0)
                if count > self._counts.get(key, 0) and (key not in self._said_at
                                                          or now - self._said_at[key] >= self.quiet):
                    self._counts[key], self._said_at[key] = count, now
                    print(f"{time.strftime('%H:%M:%S')} {st.exchange}: {_rejected_line(st, kind)}",
                          file=self.stream, flush=True)

    def events(self, df) -> None:
        with self._lock:
            for _i, row in df.tail(5).iterrows():
                print(f"{row['ts']:%H:%M:%S} {row['exchange']:<8}{row['symbol']:<16}{row['side']:<6}"
                      f"{row['notional_usd']:>14,.0f} USD", file=self.stream, flush=True)

    def summary(self, status: dict) -> None:
        for st in status.values():
            extra = ""
            if st.quarantined:
                extra += f", {st.quarantined:,} quarantined (kept in the journal)"
            if st.oversize:
                extra += f", {st.oversize:,} oversize frames dropped"
            if st.unstored:
                extra += f", {st.unstored:,} not yet stored (in the journal: stored at the next start)"
            print(f"{st.exchange}: {st.events_total:,} liquidations, {st.gaps} gaps, "
                  f"{st.reconnects} reconnects{extra}", file=self.stream)


def _rejected_line(st, kind: str) -> str:
    """``3 quarantined so far, kept in the journal (latest: why)`` or ``1 oversize frame dropped so far (...)``."""
    if kind == "quarantined":
        why = f" (latest: {st.last_quarantined})" if st.last_quarantined else ""
        return f"{st.quarantined:,} quarantined so far, kept in the journal{why}"
    return (f"{st.oversize:,} oversize frame{'s' if st.oversize != 1 else ''} dropped so far "
            "(over the frame size limit; reconnected)")
