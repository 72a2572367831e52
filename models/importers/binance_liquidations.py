"""Binance ``liquidationSnapshot`` CSVs (data.binance.vision, withdrawn in 2024-25).

Columns, as in the files' header and the ``forceOrder`` stream they snapshot:
``time, side, order_type, time_in_force, original_quantity, price,
average_price, order_status, last_fill_quantity, accumulated_fill_quantity``
(a ``symbol`` column is accepted too; otherwise the symbol comes from the file
name ``BTCUSDT-liquidationSnapshot-2023-07-31.csv`` or ``--symbol``).

``side`` is the side of the liquidation ORDER: SELL closes (liquidates) a long
position, BUY a short. Each event is stored with the filled quantity
(``accumulated_fill_quantity``) at the average fill price (``average_price``,
or ``price`` when that is 0); rows with nothing filled are skipped. COIN-M
quantities (``BTCUSD_PERP``, ``ETHUSD_240628``) are contracts: USD notional =
contracts x contract size (100 USD for BTC, 10 USD for others; see
:mod:`.symbols`), base quantity = notional / price.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ..progress import Task
from .build import (ORDER, Options, Parsed, Streamed, Tally, assets, file_pattern, is_number, liq_frame, per_value,
                    positions, whole)
from .csvread import BATCH_ROWS, header_fields, iter_csv
from .errors import InputError, UnknownColumnsError
from .rows import Rows
from .source import Source
from .symbols import binance_coinm_usd, unknown_asset_note

NAME = "binance-liquidations"
COLUMNS = ["time", "side", "order_type", "time_in_force", "original_quantity", "price", "average_price",
           "order_status", "last_fill_quantity", "accumulated_fill_quantity"]
REQUIRED = ["time", "side", "price", "average_price", "accumulated_fill_quantity"]
FILE_NAME = r"^(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-liquidationSnapshot-\d{4}-\d{2}(?:-\d{2})?$"
SIDES = ("BUY", "SELL")


def sniff(fields: list[str]) -> bool:
    names = {f.lower() for f in fields}
    if {"time", "side", "order_type", "original_quantity", "average_price", "accumulated_fill_quantity"} <= names:
        return True
    if len(fields) == 10 and is_number(fields[0]) and fields[1].upper() in SIDES:
        return True
    return len(fields) == 11 and is_number(fields[0]) and fields[2].upper() in SIDES


def parse(src: Source, opts: Options, task: Task | None = None) -> Parsed:
    """The whole file as one :class:`Parsed` (see :func:`read`)."""
    return whole(read(src, opts, task=task, batch_rows=None))


def read(src: Source, opts: Options, task: Task | None = None, batch_rows: int | None = BATCH_ROWS) -> Streamed:
    """The file's liquidations, a batch of about ``batch_rows`` rows at a time (None: all at once)."""
    fields = header_fields(src)
    header = not is_number(fields[0] if fields else "")
    if header:
        names = [f.lower() for f in fields]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise UnknownColumnsError(src.display, f"missing columns: {', '.join(missing)}", columns=fields, line=1)
        if len(set(names)) != len(names):
            raise InputError(src.display, "repeated column names in the header", line=1)
    else:
        names = COLUMNS if len(fields) == 10 else COLUMNS[:1] + ["symbol"] + COLUMNS[1:]
        if len(fields) != len(names):
            raise InputError(src.display, f"expected {len(names)} fields, found {len(fields)}", line=1)
    include = REQUIRED + (["symbol"] if "symbol" in names else [])
    types = {"time": pa.int64(), "side": pa.string(), "symbol": pa.string(),
             **{c: pa.float64() for c in ("price", "average_price", "accumulated_fill_quantity")}}
    batches = iter_csv(src, names=names, header=header, types=types, include=include, task=task,
                       batch_rows=batch_rows)
    tally = Tally()
    return Streamed(NAME, _frames(src, batches, opts, "symbol" in names, tally), tally)


def _file_symbol(src: Source, opts: Options) -> str:
    m = file_pattern(src.stem, FILE_NAME)
    one = opts.symbol or (m.group("symbol").upper() if m else None)
    if not one:
        raise InputError(src.display, "cannot tell the symbol from the file name; pass --symbol")
    return one


def _frames(src: Source, batches: Iterator[Rows], opts: Options, has_symbol: bool,
            tally: Tally) -> Iterator[pd.DataFrame]:
    coinm_seen = False
    seen = False
    for rows in batches:
        seen = True
        filled = rows.numbers("accumulated_fill_quantity", allow_zero=True)
        keep = filled > 0
        if not keep.all():
            tally.skipped += int((~keep).sum())
            rows, filled = rows.take(keep), filled[keep]
        ts = rows.times("time")
        avg = rows.numbers("average_price", allow_zero=True)
        limit = rows.numbers("price", allow_zero=True)
        price = np.where(avg > 0, avg, limit)
        rows.fail_first(price <= 0, "average_price", "no price (average_price and price are 0)")
        side = positions(rows, "side", rows.text("side"), ORDER)

        if rows.has("symbol"):
            symbol = rows.text("symbol")
            if opts.symbol:
                symbol = np.full(len(rows), opts.symbol, dtype=object)
        else:
            symbol = np.full(len(rows), _file_symbol(src, opts), dtype=object)
        usd_per_contract = per_value(symbol, lambda s: binance_coinm_usd(s) or np.nan, "float64")
        coinm = ~np.isnan(usd_per_contract)
        notional = np.where(coinm, filled * np.nan_to_num(usd_per_contract), filled * price)
        qty = np.where(coinm, notional / price, filled)
        coinm_seen |= bool(coinm.any())
        asset, unknown = assets(symbol, "binance", len(rows))  # Binance's symbol scheme, whatever --exchange says
        tally.name("unknown assets", unknown)
        yield liq_frame(rows, ts, exchange=(opts.exchange or "binance"), symbol=symbol, asset=asset, side=side,
                        price=price, qty=qty, notional=notional, warnings=tally)
    if not seen and not has_symbol:
        _file_symbol(src, opts)  # an empty file still needs a symbol, as a whole one did
    warnings = [f"{tally.skipped} rows with nothing filled skipped"] if tally.skipped else []
    if coinm_seen:
        warnings.append("COIN-M quantities are contracts: converted with 100 USD (BTC) / 10 USD per contract")
    if note := unknown_asset_note(tally.named("unknown assets")):
        warnings.append(note)
    tally.warnings = warnings + tally.order_warning()
