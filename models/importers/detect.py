"""Which importer reads a file: decided from its header (or first row), not its name."""
from __future__ import annotations

from types import ModuleType

from . import binance_klines, binance_liquidations, generic, tardis
from .csvread import header_fields, sniff_delimiter
from .errors import UnknownColumnsError
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
            return module.NAME
    shown = ", ".join(fields[:12]) + (" ..." if len(fields) > 12 else "")
    raise UnknownColumnsError(src.display, f"unrecognised columns ({shown}); use --format generic --map ts=COLUMN,"
                                           "side=COLUMN,price=COLUMN,qty=COLUMN", columns=fields, line=1)
