"""How readers see the store: the last committed state, at once, without writing.

A reader never waits on a writer and never needs to write:

* :func:`read_snapshot` takes the readers' shared lock (:func:`atomic.snapshot`)
  but gives up after :data:`READ_WAIT` seconds when a commit is stuck renaming
  (a stopped process, a hung disk); the read then goes on without it.
* :func:`pending` is a commit past its commit point (its journal written) whose
  renames are not all done -- a crash, a writer renaming right now, or a store
  that cannot be written to finish it. Readers list files *through* it: a
  staged file stands in for the target it will replace and the files the
  commit removes are left out, so they see that commit entirely, never half,
  without moving a byte. ``staging/`` itself is never read.
* :func:`lock_if_free` is the writer lock when nobody holds it, without waiting:
  an open finishes an interrupted commit only then (recovery moves files, so it
  needs the lock); a writer at work owns its staging folder and journal.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import atomic

READ_WAIT = 2.0  # seconds a reader waits for a commit's renames (milliseconds, normally) before it reads anyway


@dataclass(frozen=True)
class Pending:
    """A journaled commit as readers apply it in their heads."""

    staged: dict[str, Path]   # target (relative, posix) -> its staged file, still waiting to be renamed over it
    deletes: frozenset[str]   # targets the commit removes


def pending(root: Path) -> Pending | None:
    """The commit ``journal.json`` stands for, or None without one (or once it is finished).

    Raises :class:`atomic.Refused` for a journal Liqscope will never apply (nothing in it
    counts, so the files as they are are the store) and OSError when it cannot be read now.
    """
    try:
        if not os.path.lexists(root / atomic.JOURNAL):
            return None
        moves, deletes = atomic.read_journal(root)
    except FileNotFoundError:  # finished between the look and the read
        return None
    return Pending({t: root / s for s, t in moves if os.path.lexists(root / s)}, frozenset(deletes))


@contextmanager
def read_snapshot(root: Path, wait: float | None = None):
    """:func:`atomic.snapshot` for a reader that does not wait long: yields True holding the shared
    lock, or False when a commit still held it after ``wait`` seconds (:data:`READ_WAIT`; also
    when the lock file cannot be opened). Reading through :func:`pending` sees that commit done
    either way; without the lock a file may vanish under the reader (retry on FileNotFoundError)."""
    if os.name == "nt":
        yield True
        return
    import fcntl

    try:
        fd = os.open(root / atomic.READ_LOCK, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:  # nothing committed yet
        yield True
        return
    except OSError:  # a link where the lock belongs, or no permission: never followed, read unguarded
        yield False
        return
    try:
        deadline = time.monotonic() + (READ_WAIT if wait is None else wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held = False
                    break
                time.sleep(0.005)
        yield held
    finally:
        os.close(fd)


@contextmanager
def lock_if_free(root: Path):
    """The writer lock (:class:`atomic.StoreLock`) only if nobody holds it: yields True holding it,
    False when another thread or process does. OSError when the lock file cannot be opened
    (a read-only store, no permission)."""
    lock = atomic.StoreLock(root)
    if not lock._tlock.acquire(blocking=False):
        yield False
        return
    try:
        fh = open(lock.path, "a+b", opener=_open_nofollow)
        try:
            got = _try_lock(fh)
            try:
                yield got
            finally:
                if got:
                    atomic._os_unlock(fh)
        finally:
            fh.close()
    finally:
        lock._tlock.release()


def _open_nofollow(path, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
else:
    import fcntl as _fcntl

    def _try_lock(fh) -> bool:
        try:
            _fcntl.flock(fh.fileno(), _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
