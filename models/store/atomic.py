"""Crash-safe replacement of store files: stage, journal, rename, recover.

A commit first writes every new partition file under ``staging/<txid>/``
(fsynced), then writes ``journal.json`` listing the renames and the files they
supersede -- that write is the commit point -- then renames each staged file
over its target, removes the superseded files and deletes the journal. A crash or exception before the journal exists leaves the store
untouched (the staging folder is removed); after it, :func:`recover` finishes
the renames at the next open (roll forward). Every rename is atomic, so a
reader sees each partition either old or new, never half written.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

JOURNAL = "journal.json"
STAGING = "staging"
LOCK = ".lock"
READ_LOCK = ".readlock"


def _replace(src: Path, dst: Path) -> None:
    """``os.replace``; a module function so tests can inject a failure here."""
    os.replace(src, dst)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (no-op where unsupported)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()


class StoreLock:
    """Exclusive writer lock: a thread lock plus an OS file lock on ``.lock``.

    Serialises commits between threads (GUI import vs. live recorder) and
    between processes sharing the same data folder.
    """

    def __init__(self, root: Path):
        self.path = root / LOCK
        with _thread_locks_guard:
            self._tlock = _thread_locks.setdefault(str(root.resolve()), threading.RLock())
        self._fh = None

    def __enter__(self) -> "StoreLock":
        self._tlock.acquire()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+b")
            _os_lock(self._fh)
        except BaseException:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self._tlock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._fh is not None:
                _os_unlock(self._fh)
                self._fh.close()
        finally:
            self._fh = None
            self._tlock.release()


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt
    import time

    def _os_lock(fh) -> None:
        while True:
            try:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                time.sleep(0.05)

    def _os_unlock(fh) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _os_lock(fh) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)

    def _os_unlock(fh) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def snapshot(root: Path, *, publish: bool = False):
    """Readers hold this shared while they list and read files; a commit holds it
    exclusively only while it renames and removes files (milliseconds), so a reader
    sees a commit entirely or not at all. POSIX only; elsewhere a no-op."""
    if os.name == "nt":
        yield
        return
    try:
        fd = os.open(root / READ_LOCK, (os.O_RDWR | os.O_CREAT) if publish else os.O_RDONLY)
    except FileNotFoundError:  # nothing written yet (or a read-only store): nothing to guard
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if publish else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class Transaction:
    """Files staged for one atomic commit. Use under :class:`StoreLock`."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STAGING / uuid.uuid4().hex
        self.moves: list[tuple[str, str]] = []  # (staged, target), relative to root
        self.deletes: list[str] = []            # files folded into others, removed after the moves
        self.committed = False

    def stage(self, target: str) -> Path:
        """A fresh path to write the new content of ``target`` (relative, posix) to."""
        self.dir.mkdir(parents=True, exist_ok=True)
        staged = self.dir / f"{len(self.moves)}{Path(target).suffix}"
        self.moves.append((staged.relative_to(self.root).as_posix(), target))
        return staged

    def delete(self, target: str) -> None:
        """Remove ``target`` (relative, posix) as part of this commit, after the renames."""
        self.deletes.append(target)

    def abort(self) -> None:
        """Discard staged files; a no-op once the journal is written (recovery owns them)."""
        if self.committed:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        _remove_if_empty(self.root / STAGING)

    def commit(self) -> None:
        """Journal the renames (the commit point), apply them, clean up."""
        if not self.moves and not self.deletes:
            self.abort()
            return
        if self.dir.exists():
            fsync_dir(self.dir)
        payload = json.dumps({"version": 1, "moves": self.moves, "deletes": self.deletes}, indent=1).encode()
        write_bytes_atomic(self.root / JOURNAL, payload)
        self.committed = True
        try:
            _apply(self.root, self.moves, self.deletes)
        except Exception:
            # Committed but not fully applied: try once more; if that fails too, the journal
            # stays and the next open (or commit) rolls forward. Ctrl-C is never swallowed.
            _apply(self.root, self.moves, self.deletes)
        _finish(self.root)


def _apply(root: Path, moves: list[tuple[str, str]], deletes: list[str] = ()) -> None:
    with snapshot(root, publish=True):
        _apply_unlocked(root, moves, deletes)


def _apply_unlocked(root: Path, moves: list[tuple[str, str]], deletes: list[str]) -> None:
    parents: set[Path] = set()
    for staged_rel, target_rel in moves:
        staged, target = root / staged_rel, root / target_rel
        if not staged.exists():  # already renamed by an earlier attempt
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _replace(staged, target)
        parents.add(target.parent)
    for rel in deletes:
        (root / rel).unlink(missing_ok=True)
        parents.add((root / rel).parent)
    for p in parents:
        fsync_dir(p)


def _finish(root: Path) -> None:
    (root / JOURNAL).unlink(missing_ok=True)
    fsync_dir(root)
    shutil.rmtree(root / STAGING, ignore_errors=True)


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def needs_recovery(root: Path) -> bool:
    return (root / JOURNAL).exists() or (root / STAGING).exists()


def recover(root: Path) -> str | None:
    """Finish or discard an interrupted commit; returns what was done. Hold the lock."""
    journal = root / JOURNAL
    if journal.exists():
        try:
            record = json.loads(journal.read_text())
            moves = [tuple(m) for m in record["moves"]]
            deletes = list(record.get("deletes", []))
        except (ValueError, KeyError, TypeError):
            # A torn journal cannot exist (it is written atomically); refuse to guess.
            raise OSError(f"unreadable commit journal {journal}") from None
        _apply(root, moves, deletes)  # type: ignore[arg-type]
        _finish(root)
        return "rolled forward"
    if (root / STAGING).exists():
        shutil.rmtree(root / STAGING, ignore_errors=True)
        return "rolled back"
    return None
