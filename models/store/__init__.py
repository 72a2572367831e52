"""Local on-disk store of the user's liquidations, candles and recorder gaps.

``open_store()`` is the entry point; see :mod:`.core` for the API and
:mod:`.atomic` for how a commit stays crash-safe. ``Cancelled`` is
:class:`liqscope.models.progress.Cancelled`, raised by a commit whose task was
cancelled (the store is unchanged).
"""
from .core import (SCHEMA_VERSION, AppendResult, Batch, Cancelled, DamagedFile, ReplaceResult, Scope, Store,
                   StoreDamagedError, StoreError, StoreIOError, StoreVersionError, open_store)

__all__ = ["SCHEMA_VERSION", "AppendResult", "Batch", "Cancelled", "DamagedFile", "ReplaceResult", "Scope", "Store",
           "StoreDamagedError", "StoreError", "StoreIOError", "StoreVersionError", "open_store"]
