"""Tardis.dev normalised ``liquidations`` CSV (downloadable CSV datasets).

Documented columns: ``exchange, symbol, timestamp, local_timestamp, id, side,
price, amount``; times are microseconds since the epoch, UTC; ``timestamp`` is
the exchange's time (``local_timestamp``, Tardis' arrival time, is used when it
is empty). ``side`` is the liquidation ORDER side: a ``sell`` order liquidates
a long position, a ``buy`` order a short; ``unknown`` rows are skipped.
``amount`` is as the exchange reports it: base units, except inverse contracts
whose size Liqscope knows (Binance COIN-M, Deribit inverse, BitMEX XBTUSD; see
:mod:`.symbols`), which are converted to USD notional.

The ``trades`` dataset has the same columns, so a file named like Tardis'
``*_trades_*`` is refused rather than read as liquidations.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .build import ORDER, Options, Parsed, liq_frame, per_value, positions
from .csvread import header_fields, read_csv
from .errors import InputError
from .rows import Rows
from .source import Source
from .symbols import asset_from_symbol, inverse_usd_per_unit, tardis_exchange

NAME = "tardis-liquidations"
COLUMNS = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
DICT = pa.dictionary(pa.int32(), pa.string())


def sniff(fields: list[str]) -> bool:
    return {"exchange", "symbol", "timestamp", "local_timestamp", "side", "price", "amount"} <= \
        {f.lower() for f in fields}


def parse(src: Source, opts: Options, progress=None, cancelled=None) -> Parsed:
    if "_trades_" in src.stem.lower() or src.stem.lower().startswith("trades"):
        raise InputError(src.display, "this is a Tardis trades file, not liquidations")
    names = [f.lower() for f in header_fields(src)]
    if len(set(names)) != len(names):
        raise InputError(src.display, "repeated column names in the header", line=1)
    include = ["exchange", "symbol", "timestamp", "local_timestamp", "side", "price", "amount"]
    types = {"exchange": DICT, "symbol": DICT, "side": DICT, "timestamp": pa.int64(),
             "local_timestamp": pa.int64(), "price": pa.float64(), "amount": pa.float64()}
    rows = read_csv(src, names=names, header=True, types=types, include=include,
                    progress=progress, cancelled=cancelled)
    warnings: list[str] = []
    skipped = 0
    side_words = rows.categorical("side")
    unknown = np.isin(side_words.codes, np.flatnonzero(side_words.categories.str.lower() == "unknown"))
    if unknown.any():
        skipped = int(unknown.sum())
        warnings.append(f"{skipped} rows with side 'unknown' skipped")
        rows, side_words = rows.take(~unknown), side_words[~unknown]
    when = pc.coalesce(rows.raw("timestamp"), rows.raw("local_timestamp"))
    ts = Rows(rows.display, pa.table({"timestamp": when}), rows.lines).times("timestamp")
    side = positions(rows, "side", side_words, ORDER)
    price = rows.numbers("price")
    amount = rows.numbers("amount")
    ex_ids = rows.categorical("exchange")
    symbol = rows.categorical("symbol")
    usd_unit = _per_pair(ex_ids, symbol, lambda e, s: inverse_usd_per_unit(e, s) or np.nan)
    inverse = ~np.isnan(usd_unit)
    notional = np.where(inverse, amount * np.nan_to_num(usd_unit), amount * price)
    qty = np.where(inverse, notional / price, amount)
    if inverse.any():
        warnings.append(f"{int(inverse.sum())} inverse-contract rows converted from contracts/USD to base units")
    exchange = opts.exchange.lower() if opts.exchange else per_value(ex_ids, tardis_exchange)
    frame = liq_frame(rows, ts, exchange=exchange, symbol=symbol, asset=per_value(symbol, asset_from_symbol),
                      side=side, price=price, qty=qty, notional=notional, warnings=warnings)
    return Parsed("liquidations", frame, NAME, skipped=skipped, warnings=warnings)


def _per_pair(a: pd.Categorical, b: pd.Categorical, func) -> np.ndarray:
    """``func(a, b)`` once per distinct (a, b) pair, as float64 per row."""
    if not len(a):
        return np.empty(0)
    width = len(b.categories)
    key = a.codes.astype(np.int64) * width + b.codes
    values = np.full(len(a.categories) * width, np.nan)
    for k in np.flatnonzero(np.bincount(key, minlength=len(values))):
        values[k] = func(str(a.categories[k // width]), str(b.categories[k % width]))
    return values[key]
