"""UTC time parsing and bucket sizes shared by the CLI, the store and the GUI."""
from __future__ import annotations

import re

import pandas as pd

# Bucket ladder for liquidation bars and candle levels of detail (seconds).
BUCKETS: dict[str, int] = {
    "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400,
}


class TimeParseError(ValueError):
    pass


def parse_time(text: str | pd.Timestamp) -> pd.Timestamp:
    """Parse an ISO-8601 time; naive input is UTC; the result is tz-aware UTC."""
    if isinstance(text, pd.Timestamp):
        ts = text
    else:
        try:
            ts = pd.Timestamp(str(text).strip())
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            raise TimeParseError(f"time {str(text)[:40]!r} is outside the range Liqscope can hold "
                                 f"({pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d})") from None
        except (ValueError, TypeError) as exc:
            raise TimeParseError(f"invalid time {text!r}: expected ISO-8601 like 2025-05-09T00:00Z") from exc
        if ts is pd.NaT:
            raise TimeParseError(f"invalid time {text!r}")
    try:
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.as_unit("ns") if ts.unit != "ns" else ts
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise TimeParseError(f"time {str(text)[:40]!r} is outside the range Liqscope can hold "
                             f"({pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d})") from None


_DUR = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """'5m' -> 300 seconds. Used for buckets and intervals."""
    m = _DUR.match(text)
    if not m or int(m.group(1)) == 0:
        raise TimeParseError(f"invalid duration {text!r}: expected e.g. 1m, 15m, 4h, 1d")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def format_duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNIT_S[unit] == 0 and seconds >= _UNIT_S[unit]:
            return f"{seconds // _UNIT_S[unit]}{unit}"
    return f"{seconds}s"


def pick_bucket(span_seconds: float, max_buckets: int) -> int:
    """Smallest ladder bucket that keeps the span within ``max_buckets`` bars."""
    for secs in BUCKETS.values():
        if span_seconds / secs <= max_buckets:
            return secs
    return list(BUCKETS.values())[-1]


# How a time is written, by purpose: the one formatter every surface uses (CLI, JSON, CSV, window).
TIME_FORMATS = {
    "iso": "%Y-%m-%dT%H:%M:%SZ",        # JSON and messages; milliseconds added when there are any
    "iso_ms": "%Y-%m-%dT%H:%M:%S.{ms}Z",  # CSV cells and order tables: always milliseconds
    "second": "%Y-%m-%d %H:%M:%S",      # the crosshair readout
    "minute": "%Y-%m-%d %H:%M",         # window captions, status bar, notes
    "clock": "%H:%M",                   # a bucket inside a day that is already named
    "file": "%Y-%m-%dT%H-%MZ",          # file names: no colons (Windows, macOS)
}


def format_time(ts, style: str = "iso") -> str:
    """``ts`` (any tz, or naive = UTC) in UTC, written for ``style`` (a key of :data:`TIME_FORMATS`)."""
    t = parse_time(ts)
    if style == "iso" and (t.microsecond or t.nanosecond):
        style = "iso_ms"
    return t.strftime(TIME_FORMATS[style].replace("{ms}", f"{t.microsecond // 1000:03d}"))


def iso_z(ts: pd.Timestamp) -> str:
    return format_time(ts, "iso")


def to_ms(value) -> int:
    """Epoch milliseconds of a time (naive: UTC), as exchanges' REST APIs take them."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return int(ts.value // 1_000_000)


def from_ms(ms: int) -> pd.Timestamp:
    """The UTC time of epoch milliseconds (exchange timestamps)."""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")
