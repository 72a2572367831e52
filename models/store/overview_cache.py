"""The whole-store facts every window and command starts from (USD and events per day, the assets with
liquidations), kept on disk between runs, keyed by the exact table versions they were computed from.

Computing them reads every daily rollup of the store (a second or more for years of history); the store
changes far less often than it is opened. The cache is a pure function of the versions of the tables the
facts depend on (liquidations, rollups, coverage) and of the source precedence, so it is never a second
truth: any commit changes a version and the facts are computed again. One small file per store, in the
user's cache folder (platformdirs), replaced on each computation; a file that cannot be read or written
is simply computed around.
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

FORMAT = 1


def _key(store) -> str:
    snaps = store._snapshots
    return json.dumps([FORMAT, str(store.location), snaps.version(LIQ), snaps.version(ROLLUPS),
                       snaps.version(COVERAGE), list(store.precedence)])


def _path(store) -> Path:
    name = hashlib.sha1(str(store.location).encode()).hexdigest()[:20]
    return cache_dir() / "overview" / f"{name}.parquet"


def facts(store, compute: Callable[[], tuple[pd.DataFrame, list[str]]]) -> tuple[pd.DataFrame, list[str]]:
    """``(daily, assets)`` of ``store``: from the cache when it was computed from the same table versions,
    else ``compute()`` (then cached). ``daily``: ``usd`` and ``count`` per UTC day, indexed by day."""
    key, path = _key(store), _path(store)
    try:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if meta.get(b"liqscope.key", b"").decode() == key:
            frame = table.to_pandas()
            frame.index = pd.DatetimeIndex(frame.pop("day"), name="day").tz_convert("UTC").as_unit("ns")
            return frame, json.loads(meta[b"liqscope.assets"])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        pass
    daily, assets = compute()
    if key != _key(store):  # a commit landed meanwhile: what was computed may mix versions, keep it out
        return daily, assets
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(daily.reset_index(), preserve_index=False)
        table = table.replace_schema_metadata({"liqscope.key": key, "liqscope.assets": json.dumps(assets)})
        tmp = path.with_suffix(f".{id(table)}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
    except OSError:
        pass
    return daily, assets
