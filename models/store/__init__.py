"""The user's store of liquidations, candles and recorder gaps: Delta Lake tables in a folder or on S3.

``open_store()`` is the entry point; see :mod:`.core` for the API, :mod:`.tables` for the layout,
:mod:`.provenance` for sources and precedence, :mod:`.rollups`/:mod:`.figures` for windowed figures
and :mod:`.migrate` for converting a schema-1 store. ``Cancelled`` is
:class:`liqscope.models.progress.Cancelled`.
"""
from .core import (SCHEMA_VERSION, AppendResult, Batch, Cancelled, DamagedFile, ReplaceResult, Scope, Store,
                   StoreDamagedError, StoreError, StoreIOError, StoreVersionError, open_store)

__all__ = ["SCHEMA_VERSION", "AppendResult", "Batch", "Cancelled", "DamagedFile", "ReplaceResult", "Scope", "Store",
           "StoreDamagedError", "StoreError", "StoreIOError", "StoreVersionError", "open_store"]
