"""Which importer reads a file: decided from its header (or first row), not its name.

One exception: Tardis' ``trades`` and ``liquidations`` CSVs have the same
header, so a Tardis file's kind comes from the name Tardis gives it
(:func:`.tardis.kind_from_name`); a name that says neither raises
:class:`AmbiguousKindError` instead of assuming liquidations. An explicit
format (``--format tardis-liquidations``) does not come here.
"""
from __future__ import annotations

from types import ModuleType

from . import binance_klines, binance_liquidations, generic, tardis
from .csvread import header_fields, sniff_delimiter
from .errors import AmbiguousKindError, UnknownColumnsError
from .source import Source

FORMATS: dict[str, ModuleType] = {m.NAME: m for m in (binance_klines, binance_liquidations, tardis, generic)}
_ORDER = (tardis, binance_liquidations, binance_klines, generic)


def detect(src: Source, *, mapping: dict | None = None) -> str:
    """The format name for ``src``; a mapping or a Parquet file means 'generic'."""
    if src.container == "parquet" or mapping:
        return generic.NAME
    fields = header_fields(src, sniff_delimiter(src))
    for module in _ORDER:
        if module.sniff(fields):
            if module is tardis and tardis.kind_from_name(src) is None:
                raise AmbiguousKindError(src.display, "Tardis liquidations and trades files have the same columns "
                                         "and this file's name says neither (Tardis names them EXCHANGE_liquidations_"
                                         "DATE_SYMBOL.csv.gz); if it holds liquidations, import it with --format "
                                         f"{tardis.NAME}", line=1, formats=(tardis.NAME,))
            return module.NAME
    shown = ", ".join(fields[:12]) + (" ..." if len(fields) > 12 else "")
    raise UnknownColumnsError(src.display, f"unrecognised columns ({shown}); use --format generic --map ts=COLUMN,"
                                           "side=COLUMN,price=COLUMN,qty=COLUMN", columns=fields, line=1)
