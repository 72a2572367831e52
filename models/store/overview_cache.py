"""Whole-store facts kept on disk between runs, keyed by the exact table versions they were computed
from: the overview every window and command starts from (USD and events per day, the assets with
liquidations) and the daily rollup rows of all history a wide view is cut from.

Computing them reads every daily rollup of the store (seconds for years of history); the store changes
far less often than it is opened. Each cached value is a pure function of the versions of the tables it
depends on (liquidations, rollups, coverage) and of the source precedence, so it is never a second
truth: any commit changes a version and the value is computed again. One small file per store and
value, in the user's cache folder (platformdirs; ``LIQSCOPE_CACHE_DIR``), replaced on each computation;
a file that cannot be read or written is simply computed around.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..paths import cache_dir
from .tables import COVERAGE, LIQ, ROLLUPS

FORMAT = 2


def key(store) -> str:
    """What a cached value depends on: the store and its tables' versions, and the precedence."""
    snaps = store._snapshots
    return json.dumps([FORMAT, str(store.location), snaps.version(LIQ), snaps.version(ROLLUPS),
                       snaps.version(COVERAGE), list(store.precedence)])


def _path(store, what: str) -> Path:
    name = hashlib.sha1(str(store.location).encode()).hexdigest()[:20]
    return cache_dir() / "overview" / f"{name}-{what}.parquet"


def cached(store, what: str, compute: Callable[[], tuple[pa.Table, dict]]) -> tuple[pa.Table, dict]:
    """``(table, extra)`` for ``what``: from the cache when it was computed from the same table versions,
    else ``compute()`` (then cached; ``extra`` must be JSON)."""
    wanted, path = key(store), _path(store, what)
    try:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if meta.get(b"liqscope.key", b"").decode() == wanted:
            return table.replace_schema_metadata(None), json.loads(meta[b"liqscope.extra"])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        pass
    table, extra = compute()
    if wanted != key(store):  # a commit landed meanwhile: what was computed may mix versions, keep it out
        return table, extra
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{id(table)}.tmp")
        pq.write_table(table.replace_schema_metadata({"liqscope.key": wanted, "liqscope.extra": json.dumps(extra)}), tmp)
        tmp.replace(path)
    except (OSError, pa.ArrowException):
        pass
    return table, extra


def facts(store, compute: Callable[[], tuple[pd.DataFrame, list[str]]]) -> tuple[pd.DataFrame, list[str]]:
    """``(daily, assets)``: ``usd`` and ``count`` per UTC day indexed by day, and the assets with
    liquidations (see :func:`cached`)."""
    def table() -> tuple[pa.Table, dict]:
        daily, assets = compute()
        return pa.Table.from_pandas(daily.reset_index(), preserve_index=False), {"assets": assets}
    t, extra = cached(store, "facts", table)
    frame = t.to_pandas()
    frame.index = pd.DatetimeIndex(frame.pop("day"), name="day").tz_convert("UTC").as_unit("ns")
    return frame, list(extra["assets"])
