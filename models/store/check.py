"""``liqscope store check``: read every data file of every table in full; move damaged ones aside.

:func:`check` reads each file the tables' current snapshots list, with page checksums verified, so a
truncated, foreign or bit-flipped file is found and named. :func:`quarantine` moves the damaged ones
to ``<store>/quarantine/<UTC time>/`` (never deleted) and runs Delta's ``repair`` (FSCK), which drops
the references to missing files in one commit -- after which every table reads again, without the
rows those files held (the recorder's journal can replay them: ``--rebuild``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import delta_io
from .core import Store
from .errors import DamagedFile, StoreError, store_errors
from .tables import TABLES

QUARANTINE = "quarantine"


@dataclass
class CheckResult:
    checked: int = 0
    damaged: list[DamagedFile] = field(default_factory=list)
    moved: list[tuple[DamagedFile, Path]] = field(default_factory=list)
    folder: Path | None = None


def check(store: Store) -> CheckResult:
    store._require_current()
    out = CheckResult()
    for kind in TABLES:
        for f in store._files(kind):
            out.checked += 1
            reason = delta_io.verify(store.location, f)
            if reason is not None:
                out.damaged.append(DamagedFile(f.uri, reason, kind, f.partition.get("exchange"), None,
                                               f.partition.get("interval"), f.partition.get("month")))
    return out


def quarantine(store: Store) -> CheckResult:
    if not store.location.is_local:
        raise StoreError("store check --quarantine works on a local store; on object storage, repair the "
                         "Delta tables with your object store's tools")
    result = check(store)
    if not result.damaged:
        return result
    folder = store.location.path / QUARANTINE / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with store_errors(str(store.location), "repair"):
        kinds = set()
        for d in result.damaged:
            src = Path(d.path)
            dest = folder / src.relative_to(store.location.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dest)
            result.moved.append((d, dest))
            kinds.add(d.kind)
        for kind in kinds:
            dt = delta_io.open_table(store.location, TABLES[kind])
            if dt is not None:
                dt.repair(dry_run=False)
        store.rebuild_rollups()
    result.folder = folder
    return result
