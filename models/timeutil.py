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
        except (ValueError, TypeError) as exc:
            raise TimeParseError(f"invalid time {text!r}: expected ISO-8601 like 2025-05-09T00:00Z") from exc
        if ts is pd.NaT:
            raise TimeParseError(f"invalid time {text!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


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


def iso_z(ts: pd.Timestamp) -> str:
    return parse_time(ts).strftime("%Y-%m-%dT%H:%M:%SZ")
