"""Column contracts for candles and liquidations.

Every importer, connector and the store produce frames that pass these
validators, so the rest of the code can trust them: UTC ``ts``, sorted, and a
liquidation ``side`` that always names the *position* that was liquidated.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import UserError

LONG, SHORT = "long", "short"
SIDES = (LONG, SHORT)

CANDLE_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
LIQ_COLUMNS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]

# Sane bounds for one liquidation (and one candle's prices): anything outside is a unit mix-up or
# a corrupt row, never a market event. They matter beyond that one row: totals are float sums, so
# a single 1e22 USD row (or inf/nan) silently wipes out or poisons every other figure it is summed
# with. Each is orders of magnitude beyond any real value:
MAX_PRICE_USD = 1e9       # USD per unit: BTC, the dearest asset, trades near 1e5
MAX_QTY = 1e12            # base units in one event: a trillion tokens of a meme coin at 1e-6 USD each is 1e6 USD
MAX_NOTIONAL_USD = 1e11   # USD in one event: the largest single liquidations reported are ~1e8-1e9 USD
BOUNDS = {"price": (MAX_PRICE_USD, "USD"), "qty": (MAX_QTY, "units"), "notional_usd": (MAX_NOTIONAL_USD, "USD")}


class SchemaError(UserError, ValueError):
    """A frame does not follow the column contract; the message (one line) says how."""


def to_utc(values) -> pd.Series | pd.DatetimeIndex:
    """Coerce timestamps to ``datetime64[ns, UTC]``; naive values are taken as UTC."""
    try:
        out = pd.to_datetime(values, utc=True)
    except ValueError:
        # pandas guesses one strptime format from the first string, so ISO strings that differ
        # in precision or offset ("...T11:00:00Z" then "...T10:00:00.123Z", as isoformat() and
        # many exports write them) fail; pandas' ISO-8601 parser takes each as it comes.
        try:
            out = pd.to_datetime(values, utc=True, format="ISO8601")
        except ValueError as exc:
            raise SchemaError(f"unparseable timestamps: {str(exc).splitlines()[0]}") from None
    if isinstance(out, pd.Series):
        return out.dt.as_unit("ns")
    return out.as_unit("ns")


def order_side_to_position(order_side: pd.Series) -> pd.Series:
    """Map an exchange *order* side to the liquidated *position* side.

    A liquidation closes the position with an opposite order: a SELL order
    liquidates a long, a BUY order liquidates a short.
    """
    s = order_side.astype(str).str.strip().str.lower()
    out = s.map({"sell": LONG, "buy": SHORT})
    bad = out.isna()
    if bad.any():
        first = s[bad].iloc[0]
        raise SchemaError(f"unknown order side {first!r} (expected buy/sell)")
    return out


def side_categorical(values) -> pd.Categorical:
    return pd.Categorical(values, categories=list(SIDES))


def _text_codes(values: pd.Series, col: str, transform=None) -> tuple[np.ndarray, np.ndarray]:
    """(codes, sorted distinct names) of a text column; ``transform`` runs on the distinct names only.

    String operations on millions of rows take seconds; on the handful of distinct exchange,
    symbol, asset and side names they are free. Missing values are rejected.
    """
    cat = values.array if isinstance(values.dtype, pd.CategoricalDtype) else pd.Categorical(values)
    codes = np.asarray(cat.codes)
    if codes.size and codes.min() < 0:
        raise SchemaError(f"column {col!r} has missing values")
    used = np.bincount(codes, minlength=len(cat.categories)) > 0  # unused categories are dropped
    names = pd.Index(cat.categories)[used].astype(str)
    if transform is not None:
        names = transform(names.str)
    uniq, inverse = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    lookup = np.full(len(used), -1, dtype=np.int32)
    lookup[used] = inverse.reshape(-1)
    return lookup[codes], uniq


def _text_categorical(values: pd.Series, col: str, transform=None) -> pd.Categorical:
    codes, names = _text_codes(values, col, transform)
    return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=str))


def _floats(values, col: str) -> np.ndarray:
    try:
        return pd.to_numeric(values).astype("float64").to_numpy()
    except (TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(f"column {col!r} must hold numbers ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None


def normalize_liquidations(df: pd.DataFrame) -> pd.DataFrame:
    """Validate and return a liquidation frame in canonical form (sorted by ts)."""
    missing = [c for c in LIQ_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"liquidations are missing columns: {', '.join(missing)}")
    side_codes, side_names = _text_codes(df["side"], "side", lambda s: s.lower())
    bad = [name for name in side_names if name not in SIDES]
    if bad:
        raise SchemaError(f"side must be 'long' or 'short', got {bad[0]!r}")
    side_map = np.array([SIDES.index(name) for name in side_names], dtype=np.int8)
    out = pd.DataFrame(
        {
            "ts": pd.Series(to_utc(df["ts"])).reset_index(drop=True),
            "exchange": _text_categorical(df["exchange"], "exchange", lambda s: s.lower()),
            "symbol": _text_categorical(df["symbol"], "symbol"),
            "asset": _text_categorical(df["asset"], "asset", lambda s: s.upper()),
            "side": pd.Categorical.from_codes(side_map[side_codes], categories=list(SIDES)),
            "price": _floats(df["price"], "price"),
            "qty": _floats(df["qty"], "qty"),
            "notional_usd": _floats(df["notional_usd"], "notional_usd"),
        }
    )
    if out["ts"].isna().any():
        raise SchemaError("column 'ts' has missing timestamps")
    check_liquidation_values(out)
    if not out["ts"].is_monotonic_increasing:
        out = out.sort_values("ts", kind="stable").reset_index(drop=True)
    return out


def normalize_candles(df: pd.DataFrame) -> pd.DataFrame:
    """Validate candles and return them indexed by UTC open time, sorted, unique."""
    frame = df.reset_index() if "ts" not in df.columns and df.index.name == "ts" else df
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"candles are missing columns: {', '.join(missing)}")
    out = pd.DataFrame(
        {c: _floats(frame[c], c) for c in CANDLE_COLUMNS[1:]},
        index=pd.DatetimeIndex(to_utc(frame["ts"]), name="ts"),
    )
    if out.index.isna().any():
        raise SchemaError("candles have missing open times")
    out = out[~out.index.duplicated(keep="last")].sort_index()
    check_candle_values(out)
    return out


def _outside(values: np.ndarray, high: float, *, allow_zero: bool = False) -> np.ndarray:
    """Rows not in (0, high] ([0, high] with ``allow_zero``); NaN and infinities are outside."""
    with np.errstate(invalid="ignore"):
        inside = (values >= 0 if allow_zero else values > 0) & (values <= high)
    return ~inside


def check_liquidation_values(frame: pd.DataFrame) -> None:
    """Refuse non-finite or absurd price, qty and notional (see ``BOUNDS``), naming the first bad row.

    Vectorised and cheap: the store runs it on every frame it is given, trusted or not.
    """
    for col, (high, unit) in BOUNDS.items():
        vals = np.asarray(frame[col].to_numpy(), dtype="float64")
        bad = _outside(vals, high)
        if bad.any():
            i = int(np.argmax(bad))
            row = frame.iloc[i]
            raise SchemaError(f"{col} {vals[i]:g} of {row['exchange']} {row['symbol']} at {_when(row['ts'])} is "
                              f"not in the sane range (0, {high:g}] {unit} ({_rows(bad.sum())} like it): a unit "
                              "error or a corrupt row")


def check_candle_values(frame: pd.DataFrame) -> None:
    """Finite prices in (0, MAX_PRICE_USD], high >= low, finite volume >= 0 (times in ``ts`` or the index)."""
    times = pd.DatetimeIndex(frame["ts"] if "ts" in frame.columns else frame.index)
    for col in ("open", "high", "low", "close", "volume"):
        vals = np.asarray(frame[col].to_numpy(), dtype="float64")
        bad = _outside(vals, np.inf if col == "volume" else MAX_PRICE_USD, allow_zero=col == "volume")
        bad |= ~np.isfinite(vals)
        if bad.any():
            i = int(np.argmax(bad))
            sane = "a finite number >= 0" if col == "volume" else f"in the sane range (0, {MAX_PRICE_USD:g}] USD"
            raise SchemaError(f"candle {col} {vals[i]:g} at {_when(times[i])} is not {sane} "
                              f"({_rows(bad.sum(), 'candle')} like it)")
    hi, lo = frame["high"].to_numpy(), frame["low"].to_numpy()
    if (hi < lo).any():
        i = int(np.argmax(hi < lo))
        raise SchemaError(f"candle at {_when(times[i])} has high < low ({hi[i]:g} < {lo[i]:g})")


def check_values(kind: str, frame: pd.DataFrame) -> None:
    """:func:`check_liquidation_values` or :func:`check_candle_values` for ``kind`` ('liquidations'/'candles')."""
    (check_liquidation_values if kind == "liquidations" else check_candle_values)(frame)


def _rows(n, noun: str = "row") -> str:
    return f"{int(n):,} {noun}{'' if n == 1 else 's'}"


def _when(ts) -> str:
    try:
        return pd.Timestamp(ts).isoformat()
    except (TypeError, ValueError):
        return str(ts)


def empty_liquidations() -> pd.DataFrame:
    return normalize_liquidations(pd.DataFrame({c: [] for c in LIQ_COLUMNS}).astype(
        {"ts": "datetime64[ns, UTC]", "price": float, "qty": float, "notional_usd": float}))


def ts_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds since the epoch (no copy when possible)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC")
    return idx.as_unit("ns").asi8
