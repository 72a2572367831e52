"""The one base class of problems a user can fix: every command prints them as one line, exit status 2.

Typed, so callers branch on the class (``except UserError``), never on message text.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input, arguments or environment, said in one line that names what to do."""
