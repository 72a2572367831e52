"""Where each partition lives on disk and what ``store.json`` says.

``liquidations/<exchange>/<symbol>/<YYYY-MM>.parquet`` (plus small append
segments ``<YYYY-MM>.sNNNN.parquet``, folded in by compaction),
``candles/<exchange>/<symbol>/<interval>/<YYYY-MM>.parquet`` and
``gaps/gaps.parquet``. Names are percent-encoded so any exchange symbol
(``BTC/USDT:USDT``) is a safe folder name. Month files keep rewrites small
and let a time window skip whole files without opening them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

LIQ, CANDLES, GAPS = "liquidations", "candles", "gaps"
STORE_FILE = "store.json"
GAPS_FILE = f"{GAPS}/gaps.parquet"


MAX_NAME_BYTES = 140  # an encoded folder name: eCryptfs allows 143 bytes, most file systems 255


def encode(name: str) -> str:
    text = quote(str(name), safe="-_")
    return text.replace(".", "%2E")


def name_problem(what: str, value: object, *, slash: bool = False) -> str | None:
    """Why ``value`` (an exchange, symbol or interval) cannot name a store folder, in one line; None if it can.

    Printable text only (no NUL or control characters), no backslash, and unless ``slash``
    no ``/`` and not ``.`` or ``..`` (symbols may: ccxt's ``BTC/USDT:USDT`` holds one, and
    :func:`encode` makes every character a safe folder name), at most :data:`MAX_NAME_BYTES` bytes once encoded
    (UTF-8 bytes count, three per byte outside ASCII), so the file system never refuses
    the name after a commit."""
    text = str(value)
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    if not text.strip():
        return f"{what} {shown} is empty"
    bad = next((c for c in text if not c.isprintable()), None)
    if bad is not None:
        return f"{what} {shown} holds a control or non-printable character ({bad!r})"
    if "\\" in text:
        return f"{what} {shown} holds a backslash"
    if not slash and "/" in text:
        return f"{what} {shown} holds a slash"
    if not slash and text in (".", ".."):
        return f"{what} {shown} is not a name"
    size = len(encode(text))
    if size > MAX_NAME_BYTES:
        return (f"{what} {shown} is too long to store: {len(text.encode())} bytes in UTF-8, {size} as a folder name "
                f"(at most {MAX_NAME_BYTES})")
    return None


def decode(name: str) -> str:
    return unquote(name)


def month_keys(ts: pd.Series) -> pd.Categorical:
    """'YYYY-MM' per timestamp (UTC), as a Categorical (cheap for millions of rows)."""
    months = pd.DatetimeIndex(ts).tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[M]")
    uniq, inverse = np.unique(months, return_inverse=True)
    return pd.Categorical.from_codes(inverse.reshape(-1), categories=[str(u) for u in uniq])


def month_of(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m")


def liq_target(exchange: str, symbol: str, month: str) -> str:
    return f"{LIQ}/{encode(exchange)}/{encode(symbol)}/{month}.parquet"


def candle_target(exchange: str, symbol: str, interval: str, month: str) -> str:
    return f"{CANDLES}/{encode(exchange)}/{encode(symbol)}/{encode(interval)}/{month}.parquet"


_SEGMENT = re.compile(r"^(\d{4}-\d{2})\.s(\d+)$")


def segment_target(base_target: str, seq: int) -> str:
    """``.../2025-05.parquet`` -> ``.../2025-05.s0003.parquet``."""
    return f"{base_target[: -len('.parquet')]}.s{seq:04d}.parquet"


def partition_files(root: Path, base_target: str) -> tuple[Path, list[tuple[int, Path]]]:
    """The base file of a month partition and its append segments (by sequence number)."""
    base = root / base_target
    segs = []
    if base.parent.is_dir():
        for p in base.parent.glob(f"{base.stem}.s*.parquet"):
            m = _SEGMENT.match(p.stem)
            if m and m.group(1) == base.stem:
                segs.append((int(m.group(2)), p))
    return base, sorted(segs)


@dataclass(frozen=True)
class PartFile:
    """One data file and the partition keys read back from its path."""

    kind: str
    exchange: str
    symbol: str
    interval: str | None
    month: str
    path: Path


def scan(root: Path, kind: str) -> list[PartFile]:
    """Every partition file of ``kind``, sorted by series then month."""
    base = root / kind
    if not base.is_dir():
        return []
    depth = 3 if kind == LIQ else 4
    out = []
    for p in base.glob("/".join(["*"] * (depth - 1)) + "/*.parquet"):
        parts = p.relative_to(base).parts
        if len(parts) != depth or p.name.startswith("."):
            continue
        out.append(PartFile(kind, decode(parts[0]), decode(parts[1]),
                            decode(parts[2]) if kind == CANDLES else None, p.stem.split(".")[0], p))
    return sorted(out, key=lambda f: (f.exchange, f.symbol, f.interval or "", f.month))


def in_months(files: list[PartFile], start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[PartFile]:
    """Files whose month can hold ``start <= ts < end``."""
    lo = month_of(start) if start is not None else None
    hi = month_of(end - pd.Timedelta(1, "ns")) if end is not None else None
    return [f for f in files if (lo is None or f.month >= lo) and (hi is None or f.month <= hi)]
