"""The one error type importers raise: a single line naming file, line and column."""
from __future__ import annotations

# The one cancel type (liqscope.models.progress, also liqscope.models.store.Cancelled): the store is as before.
from ..progress import Cancelled as ImportCancelled

__all__ = ["InputError", "ImportCancelled"]


class InputError(ValueError):
    """Bad input file. ``str()`` is one line: ``FILE, line N, column 'c': what is wrong``."""

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
