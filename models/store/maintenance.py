"""Background upkeep of a store's Delta tables: compaction, checkpoints, vacuum.

The recorder commits every few seconds; each commit adds a small file per touched partition and a log
entry per table. Left alone, thousands of them slow every read (a file listing replays the log, a read
opens every small file). :func:`maintain` per table:

* **compacts** the partitions holding at least ``min_files`` small files (Delta ``OPTIMIZE``, with a
  partition filter per partition, one commit each); the rows are the same, only the files change. The
  rollups of a compacted liquidation or candle partition are recomputed right after (a compaction
  changes the files their fingerprint names: until then they are stale, and figures read raw rows --
  exact, slower);
* writes a **checkpoint** once ``checkpoint_every`` versions followed the last one, so opening a table
  reads one Parquet checkpoint and a few JSON entries instead of the whole log;
* **vacuums** data files that left the table more than ``retention_hours`` ago (default 1 hour, so a
  reader that listed an older snapshot a moment ago still finds its files) and deletes log entries
  older than the table's log retention (Delta's default: 30 days).

:class:`Scheduler` runs it on a thread after every ``every_commits`` commits or ``every_seconds``,
whichever comes first, never on the committing thread; an error is logged and the next round tries
again. ``liqscope store compact`` runs it once.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

from deltalake.exceptions import CommitFailedError

from . import candle_rollups, delta_io, rollups
from .location import Location
from .tables import CANDLES, LIQ, ROLLUPS, TABLES

log = logging.getLogger(__name__)

SMALL_FILE_BYTES = 32 * 1024 * 1024  # a file below this is worth folding into others
MIN_FILES = 4                        # small files a partition needs before it is compacted
CHECKPOINT_EVERY = 50                # versions between checkpoints
RETENTION_HOURS = 1                  # vacuum keeps files removed less than this long ago


@dataclass
class TableReport:
    """What :func:`maintain` did to one table."""

    table: str
    version: int
    files_before: int
    files_after: int
    compacted: list[dict[str, str]] = field(default_factory=list)  # partitions rewritten
    checkpoint: int | None = None   # version checkpointed now
    vacuumed: int = 0               # data files deleted
    errors: list[str] = field(default_factory=list)


def _last_checkpoint(loc: Location, table: str) -> int:
    """Version of the table's latest checkpoint (-1: none)."""
    path = loc.fs_path(loc.table(table) + "/_delta_log/_last_checkpoint")
    try:
        with loc.filesystem.open_input_stream(path) as fh:
            return int(json.loads(fh.read().decode()).get("version", -1))
    except (OSError, ValueError, TypeError):
        return -1


def _small_partitions(data: list[delta_io.DataFile], spec, min_files: int, small: int) -> list[dict[str, str]]:
    counts: dict[tuple, int] = {}
    for f in data:
        if f.size < small:
            key = tuple(f.partition.get(p) for p in spec.partitions)
            counts[key] = counts.get(key, 0) + 1
    return [dict(zip(spec.partitions, key)) for key, n in sorted(counts.items(), key=lambda kv: str(kv[0]))
            if n >= min_files]


def maintain(where, *, kinds: list[str] | None = None, min_files: int = MIN_FILES,
             small_file_bytes: int = SMALL_FILE_BYTES, checkpoint_every: int = CHECKPOINT_EVERY,
             retention_hours: int = RETENTION_HOURS, vacuum: bool = True,
             refresh_rollups: bool = True) -> list[TableReport]:
    """Compact, checkpoint and vacuum the tables ``kinds`` (default: all) of the store at ``where`` (a
    :class:`Location`, a path or an ``s3://`` URI). Returns one report per existing table. A table whose
    maintenance fails (a concurrent writer won every retry, a full disk) is reported with the error, the
    others still maintained; the store stays readable whatever step fails (each is one Delta commit, or
    the deletion of files no snapshot within the retention lists)."""
    if int(retention_hours) < 0:
        raise ValueError("retention_hours must be >= 0")
    loc = where if isinstance(where, Location) else Location.of(where)
    out = []
    for kind in kinds or list(TABLES):
        spec = TABLES[kind]
        dt = delta_io.open_table(loc, spec)
        if dt is None:
            continue
        ts_col = "bucket" if kind == ROLLUPS else ("start" if "start" in spec.schema.names else "ts")
        before = delta_io.files(loc, spec, dt, ts_col=ts_col)
        rep = TableReport(kind, dt.version(), len(before), len(before))
        for part in _small_partitions(before, spec, min_files, small_file_bytes):
            try:
                dt = delta_io.open_table(loc, spec)
                dt.optimize.compact(partition_filters=[(k, "=", v) for k, v in part.items()] or None,
                                    target_size=delta_io.TARGET_FILE_BYTES, writer_properties=delta_io.WRITER,
                                    commit_properties=delta_io._props({"liqscope.op": "compact"}))
                rep.compacted.append(part)
            except CommitFailedError as exc:  # a writer changed the partition meanwhile: next round
                rep.errors.append(f"compact {part}: {exc}")
            except Exception as exc:  # noqa: BLE001 - maintenance never breaks the store or its caller
                rep.errors.append(f"compact {part}: {type(exc).__name__}: {exc}")
        if rep.compacted and refresh_rollups:
            _refresh(loc, kind, rep)
        try:
            dt = delta_io.open_table(loc, spec)
            rep.version = dt.version()
            if rep.version - _last_checkpoint(loc, kind) >= checkpoint_every or (rep.compacted and rep.version > 0):
                dt.create_checkpoint()
                rep.checkpoint = rep.version
            if vacuum:
                rep.vacuumed = len(dt.vacuum(retention_hours=int(retention_hours), dry_run=False,
                                             enforce_retention_duration=False,
                                             commit_properties=delta_io._props({"liqscope.op": "vacuum"})))
                dt.cleanup_metadata()  # log entries past the log retention (and before a checkpoint)
            rep.files_after = len(delta_io.files(loc, spec, delta_io.open_table(loc, spec), ts_col=ts_col))
        except Exception as exc:  # noqa: BLE001
            rep.errors.append(f"checkpoint/vacuum: {type(exc).__name__}: {exc}")
        for e in rep.errors:
            log.warning("store maintenance of %s: %s", kind, e)
        out.append(rep)
    return out


def _refresh(loc: Location, kind: str, rep: TableReport) -> None:
    """Recompute the rollups of the partitions a compaction rewrote (their fingerprints changed)."""
    try:
        if kind == LIQ:
            rollups.refresh(loc, {(p["exchange"], p["month"]) for p in rep.compacted})
        elif kind == CANDLES:
            candle_rollups.refresh(loc, {(p["exchange"], p["interval"], p["month"]) for p in rep.compacted})
    except Exception as exc:  # noqa: BLE001 - stale rollups are only slower, never wrong
        rep.errors.append(f"rollups: {type(exc).__name__}: {exc}")


class Scheduler:
    """Runs :func:`maintain` on a background thread after every ``every_commits`` commits the owner
    reports (:meth:`committed`) or every ``every_seconds`` while commits happened, one run at a time.
    :meth:`stop` waits for a running pass (so no delta-rs call is in flight at interpreter exit)."""

    def __init__(self, where, *, every_commits: int = 200, every_seconds: float = 600.0, **options):
        self.where = where
        self.every_commits, self.every_seconds = every_commits, every_seconds
        self.options = options
        self.runs = 0
        self.last: list[TableReport] = []
        self._pending = 0
        self._last_run = time.monotonic()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def committed(self, n: int = 1) -> None:
        """The owner committed ``n`` times; starts a pass when one is due. Cheap: call it after every commit."""
        with self._lock:
            self._pending += n
            due = (self._pending >= self.every_commits
                   or (self._pending and time.monotonic() - self._last_run >= self.every_seconds))
            if due and not self._stop.is_set():
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._main, name="liqscope-store-maintenance",
                                                    daemon=True)
                    self._thread.start()
                self._wake.set()

    def run_now(self) -> list[TableReport]:
        """One pass on the calling thread."""
        with self._lock:
            self._pending, self._last_run = 0, time.monotonic()
        self.last = maintain(self.where, **self.options)
        self.runs += 1
        return self.last

    def _main(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(1.0):
                continue
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_now()
            except Exception:  # noqa: BLE001 - logged; recording goes on, the next round tries again
                log.exception("store maintenance")

    def stop(self, timeout: float | None = 120.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None
                self._stop.clear()  # a later committed() may start again
