"""Binance public data klines (data.binance.vision), USD-M/COIN-M futures and spot.

Documented columns (binance-public-data README; the futures files' header row):
``open_time, open, high, low, close, volume, close_time, quote_volume, count,
taker_buy_volume, taker_buy_quote_volume, ignore``. Futures files carry that
header; spot files have none. Times are epoch milliseconds, except spot files
from 2025-01-01 on, which use microseconds; the unit is detected per row. Spot
or futures: the path (``/spot/``, ``/futures/``) when it says, else the header
(futures only), a COIN-M symbol (futures), or microseconds in *every* row (spot);
one odd row never turns a futures file into spot. The
symbol and interval come from the file name (``BTCUSDT-1m-2025-01.csv``) or
``--symbol``; the interval is also measured from open/close times.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..progress import Task
from ..timeutil import format_duration, parse_duration
from .build import Options, Parsed, candle_frame, file_pattern, is_number
from .csvread import header_fields, read_csv
from .errors import InputError
from .source import Source
from .symbols import asset_from_symbol, binance_coinm_usd

NAME = "binance-klines"
COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
           "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
FILE_NAME = r"^(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-(?P<interval>\d+[smhdw]|1mo|1M)-\d{4}-\d{2}(?:-\d{2})?$"


def sniff(fields: list[str]) -> bool:
    names = [f.lower() for f in fields]
    if names[:1] == ["open_time"] and {"open", "high", "low", "close", "close_time"} <= set(names):
        return True
    return len(fields) == 12 and all(is_number(f) for f in fields) and float(fields[0]) > 1e11


def _market(src: Source, symbol: str, micro: bool, header: bool) -> tuple[str, str | None]:
    """('spot'|'futures', warning) from the path, the header, the symbol, then the time unit.

    ``micro`` is True only when every row's times are microseconds (as only spot files have).
    """
    path = str(src.path).replace("\\", "/").lower()
    if "/spot/" in path:
        return "spot", None
    if "/futures/" in path or header or binance_coinm_usd(symbol):
        return "futures", None
    if micro:
        return "spot", None
    return "futures", ("could not tell spot from futures klines; stored as exchange 'binance' "
                       "(futures). Use --exchange binance-spot for spot klines")


def read(src: Source, opts: Options, task: Task | None = None, batch_rows: int | None = None) -> Parsed:
    """The whole file (a candle series is checked across the file: repeated open times, the interval)."""
    return parse(src, opts, task)


def parse(src: Source, opts: Options, task: Task | None = None) -> Parsed:
    fields = header_fields(src)
    header = not is_number(fields[0] if fields else "")
    if len(fields) < 7:
        raise InputError(src.display, f"klines need at least 7 columns, found {len(fields)}", line=1)
    names = (COLUMNS + [f"extra_{i}" for i in range(12, len(fields))])[: len(fields)]
    types = {"open_time": pa.int64(), "close_time": pa.int64(),
             **{c: pa.float64() for c in ("open", "high", "low", "close", "volume")}}
    rows = read_csv(src, names=names, header=header, types=types, include=names[:7], task=task)
    m = file_pattern(src.stem, FILE_NAME)
    symbol = opts.symbol or (m.group("symbol").upper() if m else None)
    if not symbol:
        raise InputError(src.display, "cannot tell the symbol from the file name; pass --symbol")
    named_iv = m.group("interval") if m else None
    if named_iv in ("1mo", "1M"):
        raise InputError(src.display, "monthly (1mo) klines are not supported; use 1w or shorter")

    warnings: list[str] = []
    ts = rows.times("open_time")
    close = rows.times("close_time")
    rows.fail_first(close <= ts, "close_time", "close time is not after open time")
    spans = np.round((close - ts) / 1e9).astype("int64")  # close = open + interval - 1 unit
    interval = opts.interval or named_iv
    if len(spans):
        common = int(np.bincount(spans - spans.min()).argmax() + spans.min())
        if interval is None:
            interval = format_duration(common)
        want = parse_duration(format_duration(parse_duration(interval)))
        rows.fail_first(spans != want, "close_time",
                        lambda i: f"candle spans {spans[i]} s but the interval is {interval}")
    interval = format_duration(parse_duration(interval or "1m"))

    raw_open = rows.raw("open_time").to_numpy(zero_copy_only=False)
    n_micro = int((raw_open >= 1e14).sum())
    micro = bool(len(raw_open)) and n_micro == len(raw_open)  # every row: one odd row decides nothing
    if 0 < n_micro < len(raw_open):
        warnings.append(f"{n_micro} of {len(raw_open)} rows have open times in microseconds, the rest in "
                        "milliseconds")
    market, note = _market(src, symbol, micro, header)
    exchange = opts.exchange or ("binance-spot" if market == "spot" else "binance")
    if note and not opts.exchange:
        warnings.append(note)
    ohlcv = {c: rows.numbers(c) for c in ("open", "high", "low", "close")}
    ohlcv["volume"] = rows.numbers("volume", allow_zero=True)
    frame = candle_frame(rows, ts, ohlcv, warnings)
    return Parsed("candles", frame, NAME, exchange=exchange.lower(), symbol=symbol, interval=interval,
                  asset=asset_from_symbol(symbol, "binance"), warnings=warnings)
