"""Importers for users' own files: exchange dumps, vendor CSVs, anything mapped.

``import_files(paths, store=..., task=...)`` is the one call the CLI and the
GUI need; ``task`` is a :class:`liqscope.models.progress.Task` (progress in
bytes, cancel). Every failure is an :class:`InputError` whose message is one
line naming file, line and column; its subclasses :class:`UnknownColumnsError`
(map the columns), :class:`UnknownContractSizeError` (state a contract
size) and :class:`AmbiguousKindError` (state the format: a Tardis file whose
name says neither liquidations nor trades) say what would fix it. A cancel
raises :class:`ImportCancelled`, which is :class:`liqscope.models.progress.Cancelled`.
Formats are detected from the header: see :data:`FORMATS` and each module's
docstring for its documented columns and side convention.
"""
from .build import SIDE_CONVENTIONS, Options, Parsed
from .detect import FORMATS, detect
from .errors import AmbiguousKindError, ImportCancelled, InputError, UnknownColumnsError, UnknownContractSizeError
from .generic import parse_mapping
from .run import ImportReport, import_files, read_file
from .symbols import asset_from_symbol, known_asset

__all__ = ["FORMATS", "SIDE_CONVENTIONS", "AmbiguousKindError", "ImportCancelled", "ImportReport", "InputError",
           "Options", "Parsed", "UnknownColumnsError", "UnknownContractSizeError", "asset_from_symbol", "detect",
           "import_files", "known_asset", "parse_mapping", "read_file"]
