"""Per-frame and per-event checks between the raw stream and the store.

The parsers (:mod:`.parsers`) read the documented fields of a frame; this module
decides what may go on to the store, so that one hostile or corrupt frame or
event is set aside alone and never takes its neighbours (the rest of its frame,
its batch, the rest of the run) with it:

* :func:`frame_problem` -- a frame larger than :data:`MAX_FRAME_BYTES` or
  nested deeper than :data:`MAX_DEPTH` is not decoded at all (the JSON decoder
  recurses, so a deeply nested frame would otherwise raise ``RecursionError``).
* :func:`feed` splits a liquidation frame into one message per event and
  parses each on its own, so a bad event costs only itself; a boolean where a
  number or time is expected is refused (``float(True)`` is 1.0 and
  ``int(True)`` 1 ms after 1970); each parsed event is then checked by
  :func:`event_problem`.
* :func:`event_problem` -- types, finite numbers inside the store's sane
  bounds, a time within :data:`TIME_WINDOW_MS` of when the frame was received,
  and a printable symbol of at most :data:`MAX_SYMBOL` characters.

What is refused is *quarantined*: it stays in the raw journal (a later parser
fix can still replay it) and is counted, never stored.
"""
from __future__ import annotations

import errno
import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..schema import SIDES
from ..store.layout import name_problem

# Frames: every liquidation frame of the three exchanges is a few hundred bytes to a few KB and at
# most 5 levels deep (OKX: object > data array > item > details array > detail).
MAX_FRAME_BYTES = 1 << 20  # 1 MiB: see streams.StreamSpec.max_frame_bytes
MAX_DEPTH = 32

# Events.
MAX_SYMBOL = 64  # the longest real symbols (BTC-USDT-250627-SWAP, 1000000BABYDOGEUSDT) are ~25 chars
TIME_WINDOW_MS = 24 * 3600 * 1000  # an event's own time vs when its frame was received, either way
try:  # the store's own bounds (models/schema.py), so nothing passed here is refused there
    from ..schema import BOUNDS as _SCHEMA_BOUNDS
except ImportError:  # pragma: no cover - older schema module
    _SCHEMA_BOUNDS = {}
BOUNDS: dict[str, float] = {
    "price": 1e9, "qty": 1e12, "notional_usd": 1e11,
    **{k: float(v[0]) for k, v in _SCHEMA_BOUNDS.items()},
}

# The fields each parser reads as a number or a millisecond time (see parsers.py); a boolean in
# any of them is refused. Other fields are not looked at, so a new boolean field an exchange adds
# elsewhere in a frame changes nothing.
_NUMERIC_FIELDS = {
    "binance": (("E",), ("o", "z"), ("o", "q"), ("o", "ap"), ("o", "p"), ("o", "T")),
    "bybit": (("ts",), ("data", 0, "T"), ("data", 0, "v"), ("data", 0, "p")),
    "okx": (("data", 0, "details", 0, "bkPx"), ("data", 0, "details", 0, "sz"), ("data", 0, "details", 0, "ts")),
}


class Rejected(ValueError):
    """A frame that is not decoded (too large, too deep, not JSON)."""


def frame_problem(text: str) -> str | None:
    """Why ``text`` must not be decoded (too large, nested too deeply), or None."""
    size = len(text)
    if size > MAX_FRAME_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        return f"frame of {len(text.encode('utf-8', 'surrogatepass')):,} bytes is over the {MAX_FRAME_BYTES:,}-byte limit"
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None  # cannot be deeper than it has openers
    depth = json_depth(text)
    if depth > MAX_DEPTH:
        return f"frame nested {depth} levels deep (limit {MAX_DEPTH})"
    return None


def json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, in one vectorised pass
    (no recursion, no backtracking, linear in the frame size)."""
    b = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    if not len(b):
        return 0
    bs = b == 0x5C  # backslash
    # Length of the run of backslashes ending at each position.
    run_total = np.cumsum(bs)
    reset = np.maximum.accumulate(np.where(bs, 0, run_total))
    runs = run_total - reset
    prev_runs = np.concatenate(([0], runs[:-1]))
    quote = (b == 0x22) & (prev_runs % 2 == 0)  # a quote not escaped by an odd run of backslashes
    inside = (np.cumsum(quote) - quote) % 2 == 1  # within a string (the opening quote itself is not)
    delta = ((b == 0x5B) | (b == 0x7B)).astype(np.int64) - ((b == 0x5D) | (b == 0x7D))
    delta[inside] = 0
    return int(np.cumsum(delta).max(initial=0))


def decode(text: str):
    """``json.loads`` behind :func:`frame_problem`; :class:`Rejected` says why not."""
    problem = frame_problem(text)
    if problem:
        raise Rejected(problem)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Rejected(f"malformed frame ({str(exc).splitlines()[0][:80]})") from None


def split(exchange: str, msg) -> list | None:
    """One message per event of a liquidation frame (each still in the exchange's
    own shape, so its parser reads it as it reads the whole frame), or None if
    ``msg`` is not a liquidation frame with several events."""
    if exchange == "binance":
        if isinstance(msg, dict) and "data" in msg and "stream" in msg:
            msg = msg["data"]
        if isinstance(msg, list):
            return list(msg)
        return [msg] if isinstance(msg, dict) and msg.get("e") == "forceOrder" else None
    if not isinstance(msg, dict):
        return None
    if exchange == "bybit":
        if not str(msg.get("topic") or "").startswith("allLiquidation."):
            return None
        data = msg.get("data")
        rows = data if isinstance(data, list) else [data]
        return [{**msg, "data": [row]} for row in rows]
    if exchange == "okx":
        arg = msg.get("arg")
        if "event" in msg or not isinstance(arg, dict) or arg.get("channel") != "liquidation-orders":
            return None
        data = msg.get("data")
        if not isinstance(data, list):
            return None
        out = []
        for item in data:
            details = item.get("details") if isinstance(item, dict) else None
            if isinstance(details, list) and len(details) > 1:
                out += [{**msg, "data": [{**item, "details": [d]}]} for d in details]
            else:
                out.append({**msg, "data": [item]})
        return out
    return None


def boolean_field(exchange: str, msg) -> str | None:
    """The first numeric/time field of a one-event message holding a boolean, or None."""
    for path in _NUMERIC_FIELDS.get(exchange, ()):
        node = msg
        for key in path:
            if isinstance(key, int):
                node = node[key] if isinstance(node, list) and len(node) > key else None
            else:
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, bool):
            return ".".join(str(k) for k in path if not isinstance(k, int))
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def text_problem(value, what: str) -> str | None:
    """Why ``value`` cannot be a symbol/asset name: not text, empty, too long, not printable."""
    if not isinstance(value, str) or not value:
        return f"{what} is missing"
    if len(value) > MAX_SYMBOL:
        return f"{what} is {len(value)} characters long (at most {MAX_SYMBOL})"
    if not value.isprintable() or value != value.strip():
        bad = next((c for c in value if not c.isprintable()), " ")
        return f"{what} {value[:20]!r} holds a control or blank character ({bad!r})"
    if what == "symbol":  # the store's own rule for what can name its folders (one rule, not a copy)
        return name_problem(what, value, slash=True)
    return None


def event_problem(ev: dict, received_ms: int | None = None) -> str | None:
    """Why one parsed event cannot be stored, in words, or None if it can.

    ``received_ms``: when its frame arrived; the event's own time must be within
    :data:`TIME_WINDOW_MS` of it (a liquidation is pushed within seconds).
    """
    ts = ev.get("ts_ms")
    if not _is_number(ts) or isinstance(ts, (float, np.floating)) and not math.isfinite(ts):
        return f"time {ts!r} is not a millisecond timestamp"
    if received_ms is not None and _is_number(received_ms) and abs(int(ts) - int(received_ms)) > TIME_WINDOW_MS:
        return (f"time {int(ts)} ms is {min(abs(int(ts) - int(received_ms)), 2**63) / 86_400_000:,.1f} days from "
                f"when it was received (at most {TIME_WINDOW_MS // 3_600_000} h)")
    if not 0 < int(ts) < 2**53:
        return f"time {ts!r} is out of range"
    for key in ("symbol", "asset"):
        problem = text_problem(ev.get(key), key)
        if problem:
            return problem
    if ev.get("side") not in SIDES:
        return f"side {ev.get('side')!r} is not long or short"
    for key, high in BOUNDS.items():
        value = ev.get(key)
        if not _is_number(value):
            return f"{key} {value!r} is not a number"
        if not (math.isfinite(value) and 0 < value <= high):
            return f"{key} {value!r} is outside the sane range (0, {high:g}]"
    return None


@dataclass
class Fed:
    """What one raw frame gave: events to store, and reasons for what was set aside."""

    events: list[dict] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # one reason per refused event
    unreadable: str | None = None  # why (part of) the frame could not be read


def feed(normalizer, text: str, received_ms: int | None = None) -> Fed:
    """Parse one raw frame with ``normalizer`` event by event, keeping only valid events.

    Never raises for what a frame holds: a frame that cannot be decoded is
    ``unreadable`` (and counted in ``normalizer.errors`` once), an event that
    fails to parse or to validate is quarantined alone.
    """
    out = Fed()
    if not isinstance(text, str):
        out.unreadable = "frame is not text"
        normalizer.errors += 1
        return out
    if text in ("pong", "ping") or not text.strip():
        return out
    try:
        msg = decode(text)
    except Rejected as exc:
        out.unreadable = f"{normalizer.exchange}: {exc}"
        normalizer.errors += 1
        normalizer.last_error = out.unreadable
        return out
    parts = split(normalizer.exchange, msg)
    errors, unconverted = normalizer.errors, normalizer.unconverted
    if parts is None:
        out.events = _parse(normalizer, text, out)
    else:
        for part in parts:
            name = boolean_field(normalizer.exchange, part)
            if name:
                out.quarantined.append(f"{normalizer.exchange}: {name} is a boolean where a number is expected")
                continue
            try:
                dumped = json.dumps(part, separators=(",", ":"), allow_nan=True)
            except (ValueError, TypeError, RecursionError, OverflowError) as exc:
                out.quarantined.append(f"{normalizer.exchange}: unreadable event ({exc})")
                continue
            out.events += _parse(normalizer, dumped, out)
    if normalizer.errors > errors:
        out.unreadable = normalizer.last_error
        normalizer.errors = errors + 1  # one unreadable frame, however many of its events were
    if normalizer.unconverted > unconverted:
        normalizer.unconverted = unconverted + 1  # one frame waiting for contract sizes
    keep = []
    for ev in out.events:
        try:
            problem = event_problem(ev, received_ms)
        except Exception as exc:  # a check that cannot even word its verdict: the event is refused, alone
            problem = f"cannot be checked ({type(exc).__name__})"
        if problem:
            out.quarantined.append(f"{normalizer.exchange} {str(ev.get('symbol'))[:24]}: {problem}")
        else:
            keep.append(ev)
    out.events = keep
    return out


def _parse(normalizer, text: str, out: Fed) -> list[dict]:
    try:
        return normalizer.feed_text(text)
    except RecursionError:
        normalizer.errors += 1
        normalizer.last_error = f"{normalizer.exchange}: frame nested too deeply"
    except Exception as exc:  # e.g. OverflowError for a 400-digit price: that event alone is refused
        out.quarantined.append(f"{normalizer.exchange}: unreadable event ({type(exc).__name__}: {exc})"[:200])
    return []


# -- the store refusing what passed the checks above ------------------------------------------
_DATA_ERRNOS = {errno.ENAMETOOLONG, errno.EINVAL, getattr(errno, "EILSEQ", -1)}


def is_data_error(exc: BaseException) -> bool:
    """Whether a failed store write is about the rows written (retrying them alone
    finds the bad ones) rather than the store itself (locked, full, read-only: keep
    the rows and retry later)."""
    for _ in range(8):  # the store may wrap the OSError in a one-line error of its own
        if exc is None:
            return False
        if isinstance(exc, OSError):
            return exc.errno in _DATA_ERRNOS
        if isinstance(exc, (ValueError, TypeError, OverflowError, KeyError, IndexError, UnicodeError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def store_each(write, items: list, words=lambda exc: f"{type(exc).__name__}: {exc}"):
    """``write(items)``; if it fails because of the data, write halves, down to single
    items, so every writable item is written and only the others are refused.

    Returns ``(written, refused, unwritten, error)``: items written, ``(item,
    reason)`` refused, and, if the store itself failed (:func:`is_data_error` is
    false), the items not yet written and that error (the caller keeps them)."""
    written: list = []
    refused: list = []
    stack = [items] if items else []
    while stack:
        part = stack.pop()
        try:
            write(part)
        except Exception as exc:
            if not is_data_error(exc):
                rest = [x for p in reversed(stack) for x in p]
                return written, refused, part + rest, exc
            if len(part) == 1:
                refused.append((part[0], words(exc)[:300]))
                continue
            mid = len(part) // 2
            stack += [part[mid:], part[:mid]]
        else:
            written += part
    return written, refused, [], None
