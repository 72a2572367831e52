"""Tardis.dev normalised ``liquidations`` CSV (downloadable CSV datasets).

Documented columns: ``exchange, symbol, timestamp, local_timestamp, id, side,
price, amount``; times are microseconds since the epoch, UTC; ``timestamp`` is
the exchange's time (``local_timestamp``, Tardis' arrival time, is used when it
is empty). ``side`` is the liquidation ORDER side: a ``sell`` order liquidates
a long position, a ``buy`` order a short; ``unknown`` rows are skipped.

``amount`` is "as provided by exchange" (Tardis' normalized data types), so its
unit is each venue's own: base units, linear contracts of N base units, or
inverse contracts of N USD. :mod:`.contracts` holds what each venue documents,
with the sources; a symbol whose unit or contract size is not documented is
refused with one line asking for ``--contract-size`` (``Options.contract_size``)
-- never guessed. Inverse rows: ``notional_usd = contracts x USD per contract``,
``qty = notional / price``; linear: ``qty = contracts x size``.

The ``trades`` dataset has the same columns, so the header cannot tell the two
apart: the file's name does. Tardis names its files
``<exchange>_<data type>_<YYYY-MM-DD>_<symbol>.csv.gz`` (the default file name
of its download clients, tardis-dev for Python and Node:
https://docs.tardis.dev/downloadable-csv-files and
https://github.com/tardis-dev/tardis-node/blob/master/src/downloaddatasets.ts,
``getFilenameDefault``); its nested example
``<exchange>/<data type>/<YYYY-MM-DD>_<symbol>.csv.gz`` and the datasets URL
``…/<exchange>/<data type>/<YYYY>/<MM>/<DD>/<symbol>.csv.gz`` name the type in a
folder. :func:`kind_from_name` reads all three. A file named as another data
type (``…_trades_…``) is refused; a file whose name says no type is refused
when the format is detected (:class:`~.errors.AmbiguousKindError`, see
:mod:`.detect`) -- ``--format tardis-liquidations`` reads it as liquidations.

Assets come from each venue's symbol scheme (:mod:`.symbols`): ``PI_XBTUSD``
is BTC on Kraken Futures, not "PI".
"""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..progress import Task
from .build import ORDER, Options, Parsed, Streamed, Tally, liq_frame, per_value, positions, whole
from .contracts import resolve, tardis_unit
from .csvread import BATCH_ROWS, header_fields, iter_csv
from .errors import InputError, UnknownColumnsError, UnknownContractSizeError
from .rows import Rows
from .source import Source
from .symbols import asset_from_symbol, known_asset, tardis_exchange, unknown_asset_note

NAME = "tardis-liquidations"
COLUMNS = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
DICT = pa.dictionary(pa.int32(), pa.string())


# Tardis' downloadable data types (https://docs.tardis.dev/downloadable-csv-files, "Data types")
DATA_TYPES = ("trades", "incremental_book_L2", "quotes", "derivative_ticker", "options_chain", "book_snapshot_25",
              "book_snapshot_5", "book_ticker", "liquidations")
_TYPE = "|".join(sorted(DATA_TYPES, key=len, reverse=True))
_DATE = r"\d{4}-\d{2}-\d{2}"
_FLAT = re.compile(rf"^[a-z0-9-]+_(?P<type>{_TYPE})_{_DATE}_.+$", re.I)       # binance-futures_liquidations_2024-…
_NESTED = re.compile(rf"^{_DATE}_.+$")                                             # <type>/2024-03-01_BTCUSDT
_DAY = re.compile(r"^\d{2}$")


def sniff(fields: list[str]) -> bool:
    return {"exchange", "symbol", "timestamp", "local_timestamp", "side", "price", "amount"} <= \
        {f.lower() for f in fields}


def kind_from_name(src: Source) -> str | None:
    """The Tardis data type the file's name (or folder) gives, in lower case; None if it names none."""
    m = _FLAT.match(src.stem)
    if m:
        return m.group("type").lower()
    parts = [*src.path.parent.parts, *(PurePath(src.member).parent.parts if src.member else ())]
    types = {t.lower() for t in DATA_TYPES}
    if _NESTED.match(src.stem) and parts and parts[-1].lower() in types:
        return parts[-1].lower()
    # the datasets URL: <data type>/<YYYY>/<MM>/<DD>/<symbol>.csv.gz
    if len(parts) >= 4 and parts[-4].lower() in types and re.fullmatch(r"\d{4}", parts[-3]) \
            and _DAY.match(parts[-2]) and _DAY.match(parts[-1]):
        return parts[-4].lower()
    return None


def refuse_other_kind(src: Source) -> None:
    """A file Tardis named as another data type (trades: same columns) is never read as liquidations."""
    kind = kind_from_name(src)
    if kind not in (None, "liquidations"):
        raise InputError(src.display, f"this is a Tardis {kind} file (so its name says), not liquidations; "
                                      f"download the 'liquidations' data type")


def parse(src: Source, opts: Options, task: Task | None = None) -> Parsed:
    """The whole file as one :class:`Parsed` (see :func:`read`)."""
    return whole(read(src, opts, task=task, batch_rows=None))


def read(src: Source, opts: Options, task: Task | None = None, batch_rows: int | None = BATCH_ROWS) -> Streamed:
    """The file's liquidations, a batch of about ``batch_rows`` rows at a time (None: all at once).

    The header is checked here; rows as the frames are iterated. Every batch is converted the same way
    and checked as the whole file would be: the first bad row met raises its one-line error.
    """
    refuse_other_kind(src)
    fields = header_fields(src)
    names = [f.lower() for f in fields]
    if len(set(names)) != len(names):
        raise InputError(src.display, "repeated column names in the header", line=1)
    include = ["exchange", "symbol", "timestamp", "local_timestamp", "side", "price", "amount"]
    missing = [c for c in include if c not in names]
    if missing:  # a forced --format on another file: say which Tardis columns it lacks
        raise UnknownColumnsError(src.display, f"missing Tardis liquidation columns: {', '.join(missing)}",
                                  columns=fields, line=1)
    types = {"exchange": DICT, "symbol": DICT, "side": DICT, "timestamp": pa.int64(),
             "local_timestamp": pa.int64(), "price": pa.float64(), "amount": pa.float64()}
    batches = iter_csv(src, names=names, header=True, types=types, include=include, task=task,
                       batch_rows=batch_rows)
    tally = Tally()
    return Streamed(NAME, _frames(batches, opts, tally), tally)


def _frames(batches: Iterator[Rows], opts: Options, tally: Tally) -> Iterator[pd.DataFrame]:
    pairs = _Pairs(opts, tally)
    for rows in batches:
        side_words = rows.categorical("side")
        unknown = np.isin(side_words.codes, np.flatnonzero(side_words.categories.str.lower() == "unknown"))
        if unknown.any():
            tally.skipped += int(unknown.sum())
            rows, side_words = rows.take(~unknown), side_words[~unknown]
        when = pc.coalesce(rows.raw("timestamp"), rows.raw("local_timestamp"))
        ts = Rows(rows.display, pa.table({"timestamp": when}), rows.lines).times("timestamp")
        side = positions(rows, "side", side_words, ORDER)
        price = rows.numbers("price")
        amount = rows.numbers("amount")
        ex_ids = rows.categorical("exchange")
        symbol = rows.categorical("symbol")
        inverse, size, asset = pairs.per_row(rows, ex_ids, symbol, batches)
        notional = np.where(inverse, amount * size, amount * size * price)
        qty = np.where(inverse, notional / price, amount * size)
        exchange = opts.exchange.lower() if opts.exchange else per_value(ex_ids, tardis_exchange)
        yield liq_frame(rows, ts, exchange=exchange, symbol=symbol, asset=asset,
                        side=side, price=price, qty=qty, notional=notional, warnings=tally)
    warnings = [f"{tally.skipped} rows with side 'unknown' skipped"] if tally.skipped else []
    tally.warnings = warnings + pairs.warnings() + tally.order_warning()


class _Pairs:
    """Per (exchange, symbol): is ``amount`` inverse (USD) contracts, the size of one ``amount`` unit, and
    the asset -- classified once per distinct pair of the file (files hold millions of rows and a handful
    of symbols), remembered across its batches.

    A pair that cannot be converted raises for its first line, after the rest of the file has been read
    for the other such pairs (named all at once, not one per attempt). It is an
    :class:`UnknownContractSizeError` (with every symbol a ``--contract-size`` could fix) unless that first
    pair is one no size can make right (prices not in USD). The asset follows the venue's symbol scheme
    (:func:`.symbols.known_asset`); a symbol of no known scheme is its own asset, with a warning.
    """

    def __init__(self, opts: Options, tally: Tally):
        self.opts, self.tally = opts, tally
        self.known: dict[tuple[str, str], tuple] = {}  # (exchange id, symbol) -> (inverse, size, asset) or reason

    def _classify(self, ex: str, sym: str) -> tuple:
        known = known_asset(sym, ex)
        asset = known or asset_from_symbol(sym, ex)
        if known is None:
            self.tally.name("unknown assets", [sym])
        unit = tardis_unit(ex, sym)
        got = resolve(unit, ex, sym, self.opts.contract_size)
        if isinstance(got, str):
            return (got, bool(unit.refuse))
        inverse, size, note = got
        if note:
            self.tally.name("notes", [(ex, sym, note)])
        return (bool(inverse), float(size), asset)

    def per_row(self, rows: Rows, ex_ids: pd.Categorical, symbol: pd.Categorical,
                rest: Iterator[Rows]) -> tuple[np.ndarray, np.ndarray, pd.Categorical]:
        width = max(len(symbol.categories), 1)
        key = ex_ids.codes.astype(np.int64) * width + symbol.codes
        counts = np.bincount(key, minlength=len(ex_ids.categories) * width)
        inverse, size = np.zeros(len(counts), dtype=bool), np.ones(len(counts))
        assets = np.full(len(counts), "", dtype=object)
        refused: dict[int, tuple[str, bool]] = {}
        for k in np.flatnonzero(counts):
            pair = (str(ex_ids.categories[k // width]), str(symbol.categories[k % width]))
            got = self.known.get(pair)
            if got is None:
                got = self.known[pair] = self._classify(*pair)
            if len(got) == 2:
                refused[int(k)] = got
                continue
            inverse[k], size[k], assets[k] = got
            if inverse[k] or size[k] != 1.0:
                self.tally.add(("converted", *pair), counts[k])
        if refused:
            self._refuse(rows, key, width, symbol, refused, rest)
        names, codes = np.unique(assets[np.flatnonzero(counts)].astype(str), return_inverse=True)
        pair_code = np.zeros(len(counts), dtype=np.int64)
        pair_code[np.flatnonzero(counts)] = codes
        return inverse[key], size[key], pd.Categorical.from_codes(pair_code[key], categories=names)

    def _refuse(self, rows: Rows, key: np.ndarray, width: int, symbol: pd.Categorical,
                refused: dict[int, tuple[str, bool]], rest: Iterator[Rows]) -> None:
        first = {k: int(np.argmax(key == k)) for k in refused}
        k = min(first, key=first.get)
        reason, hopeless = refused[k]
        others = {(str(symbol.categories[j % width]), refused[j][1]) for j in refused if j != k}
        mine = {p for p, got in self.known.items() if len(got) == 2}
        for more in rest:  # the rest of the file: every other symbol that needs a size, named at once
            ex_ids, sym = more.categorical("exchange"), more.categorical("symbol")
            w = max(len(sym.categories), 1)
            held = np.flatnonzero(np.bincount(ex_ids.codes.astype(np.int64) * w + sym.codes,
                                              minlength=len(ex_ids.categories) * w)) if len(more) else []
            for e, s in ((str(ex_ids.categories[x // w]), str(sym.categories[x % w])) for x in held):
                if (e, s) not in self.known:
                    self.known[(e, s)] = self._classify(e, s)
                if len(self.known[(e, s)]) == 2 and (e, s) not in mine:
                    others.add((s, self.known[(e, s)][1]))
        also = f"; also unknown: {', '.join(sorted(s for s, _h in others))}" if others else ""
        if hopeless:
            raise rows.error(first[k], "amount", reason + also)
        need = [str(symbol.categories[k % width])] + sorted(s for s, h in others if not h)
        raise rows.error(first[k], "amount", reason + also, kind=UnknownContractSizeError,
                         symbols=list(dict.fromkeys(need)))

    def warnings(self) -> list[str]:
        out = [note for _e, _s, note in sorted(self.tally.named("notes"))]
        converted = sorted((key[1], key[2], n) for key, n in self.tally.counts.items()
                           if isinstance(key, tuple) and key[0] == "converted")
        if converted:
            parts = []
            for ex, sym, n in converted:
                inverse, size, asset = self.known[(ex, sym)]
                unit = f"{size:g} USD" if inverse else f"{size:g} {asset}"
                parts.append(f"{sym} ({n} rows, {unit} per contract)")
            out.append("amount converted from contracts: " + ", ".join(parts))
        if note := unknown_asset_note(self.tally.named("unknown assets")):
            out.append(note)
        return out
