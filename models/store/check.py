"""``liqscope store check``: read every store file in full; move damaged ones aside.

:func:`check` opens each data file of the last committed state, checks its
footer and schema and reads every row group with its page checksums verified
(files are written with them), so a truncated, empty, foreign, wrongly shaped or
bit-flipped file is found and named with what is wrong. :func:`quarantine`
moves the damaged ones, under the writer lock, to
``<store>/quarantine/<UTC time>/<their path in the store>`` -- inside the store,
never deleted -- after which the store reads again without them. Where the live
recorder's raw journal still holds a quarantined month, ``liqscope store check``
(models/store_cli.py) says how to replay it, or does.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic, tables
from .core import DamagedFile, Store, _damage_errors, os_errors
from .layout import CANDLES, GAPS, LIQ

QUARANTINE = "quarantine"
SCHEMAS = {LIQ: tables.LIQ_SCHEMA, CANDLES: tables.CANDLE_SCHEMA, GAPS: tables.GAP_SCHEMA}


@dataclass
class CheckResult:
    checked: int = 0
    damaged: list[DamagedFile] = field(default_factory=list)
    moved: list[tuple[DamagedFile, Path]] = field(default_factory=list)  # (file, where it is now)
    folder: Path | None = None  # the quarantine folder of this run


def _targets(store: Store) -> list[tuple[DamagedFile, object]]:
    """Every data file (as an undamaged placeholder) and its schema, listed in one committed state."""
    def read(keep):
        out = [(DamagedFile(f.path, "", f.kind, f.exchange, f.symbol, f.interval, f.month), SCHEMAS[kind])
               for kind in (LIQ, CANDLES) for f in store._listing(kind)]
        gaps = store._gaps_path()
        if gaps is not None:
            out.append((DamagedFile(gaps, "", GAPS), SCHEMAS[GAPS]))
        return out
    return store._consistent(read)


def _verify(path: Path, schema) -> str | None:
    """What is wrong with ``path`` (None: nothing); raises FileNotFoundError if it is gone."""
    try:
        tables.verify(path, schema)
    except tables.Damaged as exc:
        return exc.reason
    except FileNotFoundError:
        raise
    except OSError as exc:  # the OS cannot read it (I/O error, permission): it cannot be read either
        return f"cannot be read: {exc.strerror or exc}"
    return None


def _still_damaged(d: DamagedFile) -> bool:
    try:
        return _verify(d.path, SCHEMAS[d.kind]) is not None
    except FileNotFoundError:
        return False


def check(store: Store) -> CheckResult:
    """Read every file in full; the damaged ones, with what is wrong. Takes no lock for long: files
    are listed under a reader snapshot, then read one by one (one a commit removed meanwhile is skipped)."""
    result = CheckResult()
    for placeholder, schema in _targets(store):
        try:
            reason = _verify(placeholder.path, schema)
        except FileNotFoundError:
            continue  # folded into another file by a commit since the listing
        result.checked += 1
        if reason is not None:
            result.damaged.append(DamagedFile(placeholder.path, reason, placeholder.kind, placeholder.exchange,
                                              placeholder.symbol, placeholder.interval, placeholder.month))
    return result


def quarantine(store: Store) -> CheckResult:
    """:func:`check`, then move every damaged file to ``quarantine/<UTC time>/`` (same relative path),
    under the writer lock (a commit never sees a file vanish); nothing is deleted."""
    result = check(store)
    if not result.damaged:
        return result
    root = store.root
    with _damage_errors(), os_errors(root, "move damaged files aside in"), atomic.StoreLock(root):
        finished = atomic.recover(root) is not None
        if finished or not all(os.path.lexists(d.path) for d in result.damaged):
            result = check(store)  # a commit was finished since (a staged file is now its target): look again
        else:  # still damaged? (writes refuse to read them, but a commit may have removed a segment)
            result.damaged = [d for d in result.damaged if _still_damaged(d)]
        if not result.damaged:
            return result
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = next(n for n in (stamp if i == 0 else f"{stamp}-{i}" for i in range(1000))
                    if not os.path.lexists(root / QUARANTINE / n))
        result.folder = root / QUARANTINE / name
        parents = set()
        with atomic.snapshot(root, publish=True):  # readers see each file there or gone, never half
            for d in result.damaged:
                rel = d.path.relative_to(root).as_posix().split("/")
                atomic.make_dirs(root, [QUARANTINE, name, *rel[:-1]], step=None)  # never through a link
                dest = result.folder.joinpath(*rel)
                os.replace(d.path, dest)
                result.moved.append((d, dest))
                parents.update((d.path.parent, dest.parent))
            for p in parents:
                atomic.fsync_dir(p)
    return result
