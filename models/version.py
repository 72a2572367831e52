"""The installed Liqscope version: one answer for ``--version``, the About box and store metadata."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def app_version() -> str:
    try:
        return version("liqscope")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
