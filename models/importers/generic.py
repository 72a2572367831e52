"""Any CSV or Parquet file, with a column mapping and a side convention.

The mapping names, for each Liqscope field, the file's column
(``ts=time,side=dir,price=px,qty=size``); fields not mapped are looked up under
their own name. Liquidations need ``ts``, ``side`` and two of ``price``, ``qty``,
``notional_usd`` (USD); candles need ``ts, open, high, low, close``
(``volume`` optional). ``exchange`` and ``symbol`` come from columns or from
``--exchange``/``--symbol``.

``qty`` must be in base units (BTC, not contracts). A file whose quantities are
contracts states their size with ``--contract-size`` (``Options.contract_size``):
``SYMBOL=N`` multiplies that symbol's ``qty`` by N base units per contract,
``SYMBOL=Nusd`` reads it as inverse contracts of N USD (``notional_usd = qty x
N``, base ``qty = notional / price``); a bare ``N`` applies to every symbol.
Nothing is converted without it -- the file cannot tell.

Side convention: ``position`` means the side names the liquidated position
(``long``/``short``; also Bybit's ``Buy`` = a long was liquidated); ``order``
means it names the liquidation order (``sell`` liquidates a long). A file whose
sides read ``buy``/``sell`` must say which -- guessing would flip every bar.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ..progress import Task
from ..store.core import MAX_INTERVAL_S
from ..timeutil import format_duration, parse_duration
from .build import (POSITION, Options, Parsed, Streamed, Tally, assets, candle_frame, infer_interval, is_number,
                    liq_frame, per_value, positions, whole)
from .contracts import ContractSizes
from .csvread import BATCH_ROWS, header_fields, iter_csv, read_csv, sniff_delimiter
from .errors import InputError, UnknownColumnsError
from .rows import Rows
from .source import Source, parquet_file
from .symbols import asset_from_symbol, unknown_asset_note

NAME = "generic"
LIQ_FIELDS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]
CANDLE_FIELDS = ["ts", "open", "high", "low", "close", "volume", "exchange", "symbol", "asset"]
FIELDS = list(dict.fromkeys(LIQ_FIELDS + CANDLE_FIELDS))
NUMERIC = {"price", "qty", "notional_usd", "open", "high", "low", "close", "volume"}


def parse_mapping(specs: str | list[str] | dict | None) -> dict[str, str]:
    """``"ts=time,side=dir"`` (or several such strings) to ``{"ts": "time", "side": "dir"}``."""
    if not specs:
        return {}
    if isinstance(specs, dict):
        items = list(specs.items())
    else:
        items = []
        for spec in [specs] if isinstance(specs, str) else specs:
            for part in str(spec).split(","):
                if not part.strip():
                    continue
                if "=" not in part:
                    raise ValueError(f"bad --map entry {part.strip()!r}: expected FIELD=COLUMN")
                k, v = part.split("=", 1)
                items.append((k.strip(), v.strip()))
    out = {}
    for k, v in items:
        if k not in FIELDS:
            raise ValueError(f"unknown field {k!r} in --map (fields: {', '.join(FIELDS)})")
        if not v:
            raise ValueError(f"--map {k}= needs a column name")
        out[k] = v
    return out


def sniff(fields: list[str]) -> bool:
    names = set(fields)
    return "ts" in names and ("side" in names or {"open", "high", "low", "close"} <= names)


def _resolve(display: str, mapping: dict[str, str], names: list[str]) -> dict[str, str]:
    cols = set(names)
    for field, col in mapping.items():
        if col not in cols:
            raise UnknownColumnsError(display, f"column {col!r} (mapped to {field}) is not in the file; "
                                               f"columns: {', '.join(names)}", columns=names, line=1)
    return {**{f: f for f in FIELDS if f in cols}, **mapping}


def parse(src: Source, opts: Options, task: Task | None = None) -> Parsed:
    """The whole file as one :class:`Parsed` (see :func:`read`)."""
    return whole(read(src, opts, task=task, batch_rows=None))


def read(src: Source, opts: Options, task: Task | None = None,
         batch_rows: int | None = BATCH_ROWS) -> Parsed | Streamed:
    """Liquidations a batch of about ``batch_rows`` rows at a time (None: all at once); candles whole (one
    series, checked for repeated open times across the file)."""
    mapping = parse_mapping(opts.mapping)
    if src.container == "parquet":
        pf = parquet_file(src)
        names = list(pf.schema_arrow.names)
        m = _resolve(src.display, mapping, names)
        kind = _kind(src.display, m, names)
        batches = _parquet_rows(src, pf, sorted(set(m.values())), batch_rows if kind == "liquidations" else None)
    else:
        delimiter = sniff_delimiter(src)
        names = header_fields(src, delimiter)
        if not names or all(is_number(n) for n in names):
            raise InputError(src.display, "a generic CSV needs a header line naming its columns", line=1)
        if len(set(names)) != len(names):
            raise InputError(src.display, "repeated column names in the header", line=1)
        m = _resolve(src.display, mapping, names)
        kind = _kind(src.display, m, names)
        types = {}
        for field, col in m.items():
            types[col] = pa.float64() if field in NUMERIC else pa.string()
        include = sorted(set(m.values()), key=names.index)
        if kind == "candles":
            rows = read_csv(src, names=names, header=True, types=types, include=include, delimiter=delimiter,
                            task=task)
            return _candles(rows, m, opts, names)
        batches = iter_csv(src, names=names, header=True, types=types, include=include, delimiter=delimiter,
                           task=task, batch_rows=batch_rows)
    if kind == "candles":
        return _candles(next(batches, None) or _no_rows(src, m), m, opts, names)
    tally = Tally()
    return Streamed(NAME, _frames(batches, m, opts, names, tally), tally)


def _parquet_rows(src: Source, pf, columns: list[str], batch_rows: int | None) -> Iterator[Rows]:
    """A Parquet file's ``columns`` as :class:`Rows` numbered by row (1 = the first)."""
    first = 1
    for table in pf.iter_read(columns, batch_rows):
        yield Rows(src.display, table, first + np.arange(table.num_rows, dtype=np.int64), unit="row")
        first += table.num_rows


def _no_rows(src: Source, m: dict[str, str]) -> Rows:
    """An empty Parquet file's rows (its columns, no rows)."""
    pf = parquet_file(src)
    table = pf.schema_arrow.empty_table().select(sorted(set(m.values())))
    return Rows(src.display, table, np.zeros(0, dtype=np.int64), unit="row")


def _kind(display: str, m: dict[str, str], names: list[str]) -> str:
    """'candles' or 'liquidations'; :class:`UnknownColumnsError` when a needed field has no column."""
    if {"open", "high", "low", "close"} <= set(m):
        if "ts" not in m:
            raise UnknownColumnsError(display, "no time column: map one with --map ts=COLUMN", columns=names, line=1)
        return "candles"
    missing = [f for f in ("ts", "side") if f not in m]
    if missing:
        raise UnknownColumnsError(display, f"no {' or '.join(missing)} column: map with --map "
                                           f"{','.join(f + '=COLUMN' for f in missing)} (or open/high/low/close for "
                                           "candles)", columns=names, line=1)
    if sum(f in m for f in ("price", "qty", "notional_usd")) < 2:
        raise UnknownColumnsError(display, "liquidations need two of price, qty, notional_usd: map them with --map",
                                  columns=names, line=1)
    return "liquidations"


def _one(rows: Rows, m: dict[str, str], field: str, given: str | None, names: list[str]) -> str:
    """A single exchange/symbol for a candle series: the option, or a constant column."""
    if given:
        return given
    if field in m and len(rows):
        cats = rows.categorical(m[field])
        if len(cats.categories) != 1:
            raise rows.error(None, m[field], f"candles must be one series; found {len(cats.categories)} {field}s")
        return str(cats.categories[0])
    raise UnknownColumnsError(rows.display, f"no {field} column: pass --{field}", columns=names)


def _side_convention(rows: Rows, col: str, cats, chosen: str | None) -> str:
    words = {str(c).strip().lower() for c in cats.categories}
    if chosen:
        return chosen
    if words <= {"long", "short"}:
        return POSITION
    raise rows.error(None, col, "side holds buy/sell: pass --side-convention order (the liquidation order: "
                                "SELL liquidates a long, as Binance/OKX/Tardis report) or position (the "
                                "liquidated position: Bybit's Buy means a long was liquidated)")


def _frames(batches: Iterator[Rows], m: dict[str, str], opts: Options, names: list[str],
            tally: Tally) -> Iterator[pd.DataFrame]:
    for rows in batches:
        yield _liquidations(rows, m, opts, names, tally)
    warnings = []
    if opts.contract_size:
        used = tally.named("contract sizes")
        warnings.append("qty converted from contracts: " + ", ".join(f"{c} ({s})" for c, s in sorted(used)) if used
                        else "no symbol in this file has a --contract-size: qty taken as base units")
    if note := unknown_asset_note(tally.named("unknown assets"), "map an asset column: --map asset=COLUMN"):
        warnings.append(note)
    tally.warnings = warnings + tally.order_warning()


def _liquidations(rows: Rows, m: dict[str, str], opts: Options, names: list[str], tally: Tally) -> pd.DataFrame:
    """One batch of rows as a canonical frame; what the file's warnings say is gathered in ``tally``."""
    ts = rows.times(m["ts"])
    if opts.exchange:
        exchange = opts.exchange.lower()
    elif "exchange" in m:
        ex = rows.categorical(m["exchange"])
        exchange = per_value(ex, lambda e: str(e).lower())
    else:
        raise UnknownColumnsError(rows.display, "no exchange column: pass --exchange or map one with --map "
                                                "exchange=COLUMN", columns=names)
    if opts.symbol:
        symbol = opts.symbol
    elif "symbol" in m:
        symbol = rows.categorical(m["symbol"])
    else:
        raise UnknownColumnsError(rows.display, "no symbol column: pass --symbol or map one with --map "
                                                "symbol=COLUMN", columns=names)
    num = {f: rows.numbers(m[f]) for f in ("price", "qty", "notional_usd") if f in m}
    inverse = _contract_qty(rows, m, num, symbol, opts.contract_size, tally, names) if opts.contract_size \
        else None
    price = num["price"] if "price" in num else num["notional_usd"] / num["qty"]
    qty = num["qty"] if "qty" in num else num["notional_usd"] / price
    notional = num["notional_usd"] if "notional_usd" in num else price * qty
    if inverse is not None and inverse.any():  # qty holds USD of inverse contracts: notional first
        notional = np.where(inverse, qty, notional)
        qty = np.where(inverse, notional / price, qty)
    side_cats = rows.categorical(m["side"])
    side = positions(rows, m["side"], side_cats, _side_convention(rows, m["side"], side_cats, opts.side_convention))
    if "asset" in m:
        asset = per_value(rows.categorical(m["asset"]), lambda a: str(a).upper())
    else:
        asset, unknown = assets(symbol, exchange, len(rows))
        tally.name("unknown assets", unknown)
    return liq_frame(rows, ts, exchange=exchange, symbol=symbol, asset=asset, side=side,
                     price=price, qty=qty, notional=notional, warnings=tally)


def _contract_qty(rows: Rows, m: dict[str, str], num: dict[str, np.ndarray], symbol, sizes: ContractSizes,
                  tally: Tally, names: list[str]) -> np.ndarray:
    """Scale ``num["qty"]`` (contracts) by each symbol's stated size; True where it is now USD (inverse).

    Only symbols with a stated size are touched: the documented unit of ``qty``
    stays base units, so the user says which symbols are contracts.
    """
    if "qty" not in num:
        raise UnknownColumnsError(rows.display, "--contract-size converts qty from contracts, but no qty column is "
                                                "mapped (--map qty=COLUMN)", columns=names, line=1)
    cats = pd.Categorical.from_codes(np.zeros(len(rows), dtype=np.int8), categories=[symbol]) \
        if isinstance(symbol, str) else symbol
    stated = [sizes.get(str(c))[0] for c in cats.categories]
    if not any(stated):  # the file's warning says so if no batch has one (see _frames)
        return np.zeros(len(rows), dtype=bool)
    table = np.array([s.value if s else 1.0 for s in stated] + [1.0])
    inv = np.array([bool(s and s.inverse) for s in stated] + [False])
    size, inverse = table[cats.codes], inv[cats.codes]
    if inverse.any():
        if "price" not in num:
            raise rows.error(int(np.argmax(inverse)), m["qty"], "an inverse contract size (Nusd) needs a price "
                             "column to turn USD into base units (--map price=COLUMN)", kind=UnknownColumnsError,
                             columns=names)
        if "notional_usd" in num:
            raise rows.error(int(np.argmax(inverse)), m["notional_usd"], "notional_usd is mapped and an inverse "
                             "contract size (Nusd) would replace it: map one or the other")
    num["qty"] = num["qty"] * size
    tally.name("contract sizes", [(str(c), str(s)) for c, s in zip(cats.categories, stated) if s])
    return inverse


def _candles(rows: Rows, m: dict[str, str], opts: Options, names: list[str]) -> Parsed:
    warnings: list[str] = []
    exchange = _one(rows, m, "exchange", opts.exchange, names).lower()
    symbol = _one(rows, m, "symbol", opts.symbol, names)
    ts = rows.times(m["ts"])
    ohlcv = {f: rows.numbers(m[f]) for f in ("open", "high", "low", "close")}
    if "volume" in m:
        ohlcv["volume"] = rows.numbers(m["volume"], allow_zero=True)
    else:
        ohlcv["volume"] = np.zeros(len(rows))
        warnings.append("no volume column; volume stored as 0")
    if opts.interval:
        secs = parse_duration(opts.interval)
    else:
        secs = infer_interval(ts)
        if secs is None:
            raise InputError(rows.display, "cannot tell the candle interval from one row: pass --interval")
    if secs > MAX_INTERVAL_S:  # the store's limit, refused here where the file can be named
        shown = str(opts.interval) if opts.interval else format_duration(secs)
        shown = shown if len(shown) <= 40 else shown[:40] + "…"
        how = "" if opts.interval else " (the spacing of its open times: pass --interval)"
        raise InputError(rows.display, f"interval {shown!r} is longer than a year (366d): not a candle interval{how}")
    interval = format_duration(secs)
    frame = candle_frame(rows, ts, ohlcv, warnings)
    asset = str(rows.categorical(m["asset"]).categories[0]).upper() if "asset" in m and len(rows) \
        else asset_from_symbol(symbol, exchange)
    return Parsed("candles", frame, NAME, exchange=exchange, symbol=symbol, interval=interval, asset=asset,
                  warnings=warnings)
