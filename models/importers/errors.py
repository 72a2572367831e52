"""The error types importers raise: a single line naming file, line and column.

:class:`InputError` is every bad input. Three subclasses say what would fix it,
so callers branch on the type, never on the message text:
:class:`UnknownColumnsError` (a column mapping: ``--format generic --map``),
:class:`UnknownContractSizeError` (a stated contract size: ``--contract-size``)
and :class:`AmbiguousKindError` (a stated format: ``--format``).
"""
from __future__ import annotations

from collections.abc import Iterable

# The one cancel type (liqscope.models.progress, also liqscope.models.store.Cancelled): the store is as before.
from ..errors import UserError
from ..progress import Cancelled as ImportCancelled

__all__ = ["AmbiguousKindError", "ImportCancelled", "InputError", "UnknownColumnsError", "UnknownContractSizeError"]


class InputError(UserError, ValueError):
    """Bad input file. ``str()`` is one line: ``FILE, line N, column 'c': what is wrong``.

    ``committed``: rows an import had stored in earlier batch commits before it met this (0: the store
    is unchanged; see :mod:`.run`)."""

    committed = 0

    def __init__(self, file: str, message: str, *, line: int | None = None, column: str | None = None,
                 unit: str = "line"):
        self.file, self.line, self.column, self.reason = file, line, column, message
        where = [file]
        if line is not None:
            where.append(f"{unit} {line}")
        if column is not None:
            where.append(f"column {column!r}")
        first = str(message).strip().splitlines()[0] if str(message).strip() else "invalid input"
        super().__init__(f"{', '.join(where)}: {first}")


class UnknownColumnsError(InputError):
    """The file's columns match no format, or a column the import needs is absent or not mapped.

    ``columns`` is the file's header (its column names, in order): what a
    mapping (``--map FIELD=COLUMN``) can choose from.
    """

    def __init__(self, file: str, message: str, *, columns: Iterable[str] = (), line: int | None = None,
                 column: str | None = None, unit: str = "line"):
        super().__init__(file, message, line=line, column=column, unit=unit)
        self.columns = [str(c) for c in columns]


class UnknownContractSizeError(InputError):
    """Amounts are contracts of a size Liqscope does not know (or the stated size is of the wrong kind).

    ``symbols`` are the symbols that need a size (``--contract-size SYMBOL=N``
    or ``SYMBOL=Nusd``), the one the message names first.
    """

    def __init__(self, file: str, message: str, *, symbols: Iterable[str] = (), line: int | None = None,
                 column: str | None = None, unit: str = "line"):
        super().__init__(file, message, line=line, column=column, unit=unit)
        self.symbols = [str(s) for s in symbols]


class AmbiguousKindError(InputError):
    """The file's columns fit more than one kind of data and its name does not say which.

    A Tardis ``trades`` CSV has exactly the columns of a ``liquidations`` CSV;
    Tardis names its files ``EXCHANGE_liquidations_DATE_SYMBOL.csv.gz``, so a
    file named otherwise could be either. ``file`` is the file; ``formats`` the
    format names (``--format``) that would read it if the user says it is that.
    """

    def __init__(self, file: str, message: str, *, formats: Iterable[str] = (), line: int | None = None,
                 column: str | None = None, unit: str = "line"):
        super().__init__(file, message, line=line, column=column, unit=unit)
        self.formats = [str(f) for f in formats]
