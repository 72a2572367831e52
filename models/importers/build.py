"""What an importer returns, and the shared steps that turn checked columns into it.

Side conventions live here, once: a liquidation is stored with the side of the
*position* that was liquidated. Exchanges that publish the liquidation *order*
side are converted: the exchange closes a long with a SELL order and a short
with a BUY order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd

from ..schema import LONG, SHORT, SIDES, side_categorical
from ..store.layout import name_problem
from .contracts import ContractSizes
from .errors import InputError
from .rows import Rows
from .symbols import asset_from_symbol, known_asset

POSITION, ORDER = "position", "order"
SIDE_CONVENTIONS = (POSITION, ORDER)


@dataclass
class Options:
    """What the user told us; importers fill in the rest from the file."""

    exchange: str | None = None
    symbol: str | None = None
    interval: str | None = None
    mapping: dict[str, str] | None = None
    side_convention: str | None = None
    contract_size: ContractSizes | None = None   # --contract-size: sizes of amounts given in contracts


@dataclass
class Parsed:
    kind: str                      # "liquidations" or "candles"
    frame: pd.DataFrame
    format: str
    exchange: str | None = None    # candles only: the series key
    symbol: str | None = None
    interval: str | None = None
    asset: str | None = None
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    repeated: int = 0              # rows repeated exactly in the file, counted once (see drop_repeats)


class Tally:
    """What a file read in batches reports once, for the whole file: counts summed over its batches,
    names gathered, notes said once, and rows out of time order counted across batch boundaries too
    (so the warnings read exactly as if the file had been read whole)."""

    def __init__(self) -> None:
        self.counts: dict[object, int] = {}
        self.names: dict[str, dict[object, None]] = {}
        self.back = 0                    # rows earlier than the row before them, in file order
        self.last_ts: int | None = None  # the last time of the batch before (file order)
        self.skipped = 0
        self.warnings: list[str] = []    # set when the last batch is done

    def add(self, key, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(n)

    def name(self, key: str, names) -> None:
        self.names.setdefault(key, {}).update(dict.fromkeys(names))

    def named(self, key: str) -> list:
        return list(self.names.get(key, {}))

    def order(self, ts: np.ndarray) -> int:
        """Count the rows of this batch (file order) that come before the row preceding them."""
        if not len(ts):
            return 0
        n = int((np.diff(ts) < 0).sum()) + int(self.last_ts is not None and ts[0] < self.last_ts)
        self.back += n
        self.last_ts = int(ts[-1])
        return n

    def order_warning(self) -> list[str]:
        return [f"{self.back} rows were out of time order; sorted"] if self.back else []


@dataclass
class Streamed:
    """A liquidation file read in batches: ``frames`` yields canonical frames (each sorted by time, as
    :func:`liq_frame` makes them), one batch of the file at a time; once it is exhausted, ``tally`` holds
    the file's ``skipped`` rows and ``warnings``. Nothing is read before ``frames`` is iterated."""

    format: str
    frames: Iterator[pd.DataFrame]
    tally: Tally
    kind: str = "liquidations"


def whole(result: "Parsed | Streamed") -> Parsed:
    """A streamed file read to its end as one :class:`Parsed` (sorted); a Parsed as it is."""
    if isinstance(result, Parsed):
        return result
    frames = [f for f in result.frames]
    tally = result.tally
    if not frames:
        frame = _empty_liq()
    elif len(frames) == 1:
        frame = frames[0]
    else:
        frame = concat_frames(frames)
        ts = pd.DatetimeIndex(frame["ts"]).asi8
        if (ts[1:] < ts[:-1]).any():
            frame = frame.iloc[np.argsort(ts, kind="stable")].reset_index(drop=True)
    return Parsed(result.kind, frame, result.format, skipped=tally.skipped, warnings=list(tally.warnings))


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Canonical frames one after the other; categorical columns keep their categories (unioned)."""
    from pandas.api.types import union_categoricals

    cols = {}
    for c in frames[0].columns:
        if isinstance(frames[0][c].dtype, pd.CategoricalDtype) and c != "side":
            parts = [f[c].array for f in frames]  # categories of one dtype (object or str: pandas varies)
            cols[c] = union_categoricals([pd.Categorical.from_codes(p.codes, categories=p.categories.astype(str))
                                          for p in parts], ignore_order=True)
        else:
            cols[c] = pd.concat([f[c] for f in frames], ignore_index=True)
    return pd.DataFrame(cols)


def _empty_liq() -> pd.DataFrame:
    from ..schema import empty_liquidations
    return empty_liquidations()


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def file_pattern(stem: str, pattern: str) -> re.Match | None:
    return re.match(pattern, stem, flags=re.I)


# -- sides -----------------------------------------------------------------------
ORDER_TO_POSITION = {"sell": LONG, "buy": SHORT}
POSITION_WORDS = {"long": LONG, "short": SHORT, "buy": LONG, "sell": SHORT}


def positions(rows: Rows, column: str, values, convention: str) -> pd.Categorical:
    """Side words to 'long'/'short' under ``convention`` ('order' or 'position')."""
    cats = values if isinstance(values, pd.Categorical) else pd.Categorical(values)
    table = ORDER_TO_POSITION if convention == ORDER else POSITION_WORDS
    words = [str(c).strip().lower() for c in cats.categories]
    mapped = np.array([SIDES.index(table[w]) if w in table else -1 for w in words] + [-1], dtype=np.int8)
    codes = mapped[cats.codes]  # code -1 (missing) picks the trailing -1
    bad = codes < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        word = "" if cats.codes[i] < 0 else str(cats.categories[cats.codes[i]])
        if convention == ORDER and word.strip().lower() in ("long", "short"):
            hint = "a position side in a column read as order sides"
        else:
            hint = f"expected {' or '.join(sorted(set(table)))}"
        raise rows.error(i, column, f"unknown side {word!r} ({hint})")
    return pd.Categorical.from_codes(codes, categories=list(SIDES))


# -- frames ----------------------------------------------------------------------
def _cat(values, n: int) -> pd.Categorical:
    if isinstance(values, str):
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[values])
    if isinstance(values, pd.Categorical):
        return values.remove_unused_categories()
    return pd.Categorical(values)


def liq_frame(rows: Rows, ts: np.ndarray, *, exchange, symbol, asset, side,
              price: np.ndarray, qty: np.ndarray, notional: np.ndarray, warnings: list[str] | Tally) -> pd.DataFrame:
    """Canonical liquidation frame (schema.LIQ_COLUMNS), sorted by time. ``warnings``: the list the
    out-of-order warning goes to, or the :class:`Tally` of a file read in batches (counted there)."""
    n = len(ts)
    frame = pd.DataFrame({
        "ts": pd.DatetimeIndex(ts.astype("datetime64[ns]")).tz_localize("UTC"),
        "exchange": _cat(exchange.lower() if isinstance(exchange, str) else exchange, n),
        "symbol": _cat(symbol, n),
        "asset": _cat(asset.upper() if isinstance(asset, str) else asset, n),
        "side": side if isinstance(side, pd.Categorical) else side_categorical(side),
        "price": price.astype("float64"),
        "qty": qty.astype("float64"),
        "notional_usd": notional.astype("float64"),
    })
    _check_names(rows, frame)
    return _sorted(frame, ts, warnings)


def _check_names(rows: Rows, frame: pd.DataFrame) -> None:
    """Refuse, naming the file and line, an exchange or symbol the store could not keep (layout.name_problem):
    caught here, the user learns which row to fix, instead of a store error without a place."""
    for column, slash in (("exchange", False), ("symbol", True)):
        values = frame[column].array
        for code, name in enumerate(values.categories):
            problem = name_problem(column, name, slash=slash)
            if problem is not None:
                i = int(np.flatnonzero(np.asarray(values.codes) == code)[0])
                raise rows.error(i, column, problem)


def _sorted(frame: pd.DataFrame, ts: np.ndarray, warnings: list[str] | Tally) -> pd.DataFrame:
    if isinstance(warnings, Tally):
        warnings.order(ts)
        back = bool(len(ts)) and bool((np.diff(ts) < 0).any())
    elif n_back := int((np.diff(ts) < 0).sum()):
        warnings.append(f"{n_back} rows were out of time order; sorted")
        back = True
    else:
        back = False
    if back:
        order = np.argsort(ts, kind="stable")
        return frame.iloc[order].reset_index(drop=True)
    return frame


def candle_frame(rows: Rows, ts: np.ndarray, ohlcv: dict[str, np.ndarray], warnings: list[str]) -> pd.DataFrame:
    """Checked, sorted candles; repeated open times must repeat the same values (kept: see drop_repeats)."""
    o, h, lo, c = (ohlcv[k] for k in ("open", "high", "low", "close"))
    rows.fail_first(h < lo, "high", lambda i: f"high {h[i]:g} is below low {lo[i]:g}")
    rows.fail_first((h < np.maximum(o, c)) | (lo > np.minimum(o, c)), "high",
                    lambda i: f"open/close outside high-low range ({o[i]:g}, {c[i]:g} vs {lo[i]:g}-{h[i]:g})")
    frame = pd.DataFrame({"ts": pd.DatetimeIndex(ts.astype("datetime64[ns]")).tz_localize("UTC"), **ohlcv})
    frame["_line"] = rows.lines
    frame = _sorted(frame, ts, warnings)
    dup = frame["ts"].duplicated(keep=False).to_numpy()
    if dup.any():
        cols = ["open", "high", "low", "close", "volume"]
        groups = frame[dup].groupby("ts", sort=True)
        for _, g in groups:
            if (g[cols].nunique() > 1).any():
                first, second = int(g["_line"].iloc[0]), int(g["_line"].iloc[1])
                raise InputError(rows.display, f"second candle for open time {g['ts'].iloc[0]} with "
                                 f"different values (first on {rows.unit} {first})", line=second, unit=rows.unit)
    return frame.drop(columns="_line")


# The identity of a row: the store's de-duplication key (models/store/tables.py), so a row the file
# repeats is exactly a row the store would hold once.
EVENT_KEY = {"liquidations": ["ts", "exchange", "symbol", "side", "price", "qty"], "candles": ["ts"]}


def drop_repeats(parsed: Parsed) -> Parsed:
    """Keep the first of rows the file repeats exactly (same :data:`EVENT_KEY`) and count the others.

    Binance's liquidationSnapshot files list every order twice (binance-public-data
    issue #259); the count goes to ``parsed.repeated`` and the report's summary.
    Candles with one open time are already known to be equal (:func:`candle_frame`).
    Only rows sharing a time are compared, so this costs one pass over the times.
    """
    frame = parsed.frame
    if len(frame) < 2:
        return parsed
    ts = pd.DatetimeIndex(frame["ts"]).asi8
    if (ts[1:] >= ts[:-1]).all():  # sorted (every importer sorts): equal times are neighbours
        same = ts[1:] == ts[:-1]
        same_time = np.r_[same, False] | np.r_[False, same]
    else:
        same_time = frame["ts"].duplicated(keep=False).to_numpy()
    if not same_time.any():
        return parsed
    rows = np.flatnonzero(same_time)
    repeat = np.zeros(len(frame), dtype=bool)
    repeat[rows] = frame.iloc[rows][EVENT_KEY[parsed.kind]].duplicated(keep="first").to_numpy()
    if n := int(repeat.sum()):
        parsed.frame = frame[~repeat].reset_index(drop=True)
        parsed.repeated += n
    return parsed


def per_value(values, func, dtype=object):
    """``func`` applied once per distinct value (symbols repeat millions of times).

    Text results come back as a Categorical, numbers as an ndarray of ``dtype``.
    """
    cats = values if isinstance(values, pd.Categorical) else pd.Categorical(values)
    mapped = [func(c) for c in cats.categories]
    if dtype is object:
        names, inverse = np.unique(np.array(mapped, dtype=object).astype(str), return_inverse=True) \
            if mapped else (np.array([], dtype=str), np.array([], dtype=np.int64))
        codes = np.where(cats.codes >= 0, inverse[np.maximum(cats.codes, 0)] if len(inverse) else -1, -1)
        return pd.Categorical.from_codes(codes, categories=names)
    arr = np.array(mapped, dtype=dtype)
    return arr[cats.codes] if len(arr) else np.empty(len(values), dtype=dtype)


def assets(symbol, exchange, n: int) -> tuple[pd.Categorical, list[str]]:
    """Each row's asset, read from its (exchange, symbol) by :func:`.symbols.known_asset`.

    ``symbol`` and ``exchange`` are one value for every row (str) or per-row
    Categoricals; each distinct pair is read once. Also returns the symbols of
    no known scheme (stored as their own asset; the caller warns).
    """
    sym = _cat(symbol, n)
    ex = _cat(exchange.lower() if isinstance(exchange, str) else exchange, n)
    width = max(len(sym.categories), 1)
    key = np.asarray(ex.codes, dtype=np.int64) * width + np.asarray(sym.codes, dtype=np.int64)
    pairs = np.flatnonzero(np.bincount(key, minlength=len(ex.categories) * width)) if n else np.zeros(0, np.int64)
    names, unknown = [], []
    for k in pairs:
        e, s = str(ex.categories[k // width]), str(sym.categories[k % width])
        known = known_asset(s, e)
        if known is None:
            unknown.append(s)
        names.append(known or asset_from_symbol(s, e))
    cats, codes = np.unique(np.array(names, dtype=str), return_inverse=True) if names else (np.array([], str), [])
    lookup = np.zeros(len(ex.categories) * width, dtype=np.int64)
    lookup[pairs] = codes
    return pd.Categorical.from_codes(lookup[key], categories=cats), unknown


def infer_interval(ts: np.ndarray) -> int | None:
    """Most common positive spacing of open times, in seconds."""
    d = np.diff(np.unique(ts))
    if not len(d):
        return None
    vals, counts = np.unique(d, return_counts=True)
    return int(round(vals[np.argmax(counts)] / 1e9)) or None
