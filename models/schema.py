"""Column contracts for candles and liquidations.

Every importer, connector and the store produce frames that pass these
validators, so the rest of the code can trust them: UTC ``ts``, sorted, and a
liquidation ``side`` that always names the *position* that was liquidated.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LONG, SHORT = "long", "short"
SIDES = (LONG, SHORT)

CANDLE_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
LIQ_COLUMNS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]


class SchemaError(ValueError):
    """A frame does not follow the column contract; the message says how."""


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
            "price": pd.to_numeric(df["price"]).astype("float64").to_numpy(),
            "qty": pd.to_numeric(df["qty"]).astype("float64").to_numpy(),
            "notional_usd": pd.to_numeric(df["notional_usd"]).astype("float64").to_numpy(),
        }
    )
    for col in ("price", "qty", "notional_usd"):
        vals = out[col].to_numpy()
        if not np.isfinite(vals).all() or (vals < 0).any():
            raise SchemaError(f"column {col!r} must hold finite non-negative numbers")
    if out["ts"].isna().any():
        raise SchemaError("column 'ts' has missing timestamps")
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
        {c: pd.to_numeric(frame[c]).astype("float64").to_numpy() for c in CANDLE_COLUMNS[1:]},
        index=pd.DatetimeIndex(to_utc(frame["ts"]), name="ts"),
    )
    out = out[~out.index.duplicated(keep="last")].sort_index()
    hi, lo = out["high"].to_numpy(), out["low"].to_numpy()
    if (hi < lo).any():
        raise SchemaError("candles have high < low")
    return out


def empty_liquidations() -> pd.DataFrame:
    return normalize_liquidations(pd.DataFrame({c: [] for c in LIQ_COLUMNS}).astype(
        {"ts": "datetime64[ns, UTC]", "price": float, "qty": float, "notional_usd": float}))


def ts_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds since the epoch (no copy when possible)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC")
    return idx.as_unit("ns").asi8
