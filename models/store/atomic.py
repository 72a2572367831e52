"""Crash-safe replacement of store files: stage, journal, rename, recover.

A commit first writes every new partition file under ``staging/<txid>/``
(fsynced) and creates the folders its targets need, then writes
``journal.json`` listing the renames and the files they supersede -- that
write is the commit point -- then renames each staged file over its target,
removes the superseded files and deletes the journal. A crash or exception
before the journal exists leaves the store untouched (the staging folder is
removed); after it, :func:`recover` finishes the renames at the next open
(roll forward). Every rename is atomic, so a reader sees each partition either
old or new, never half written.

A store folder may come from anywhere (shared, synced, downloaded), so its
journal is data, never trusted: every path it names must be relative, inside
the store's data folders (``staging/`` for staged files; ``liquidations/``,
``candles/``, ``gaps/`` for targets and removals), free of ``..``, NUL and
control characters, with no symbolic link on the way. A journal that fails
this check is refused -- nothing in it is applied -- and renamed aside
(``journal.refused-<time>.json``, its staging folder with it), with one
warning line. Moves the file system can never make (a name it refuses) are
set aside the same way (``journal.failed-<time>.json``) once everything else
is in place; moves that may work later (disk full, read-only, I/O error) keep
the journal for the next open, which reads the store as it is meanwhile.
Store files, the journal and the locks are opened with ``O_NOFOLLOW`` where
the platform has it, and a symbolic link inside the store is refused, never
followed, when writing.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import shutil
import stat
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

JOURNAL = "journal.json"
STAGING = "staging"
LOCK = ".lock"
READ_LOCK = ".readlock"
DATA_DIRS = ("liquidations", "candles", "gaps")  # where a journal may move files to or remove them
MAX_JOURNAL_BYTES = 64 * 1024 * 1024
NAME_MAX = 255  # bytes per file or folder name on most file systems

log = logging.getLogger("liqscope.store")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# what opening a symbolic link with O_NOFOLLOW fails with (Linux: ELOOP; FreeBSD: EMLINK; NetBSD: EFTYPE)
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP)}
# a move failing with one of these can never succeed: it is set aside, not retried
_PERMANENT = {errno.ENAMETOOLONG, errno.EINVAL, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENOENT,
              errno.EEXIST, errno.ENOTEMPTY, errno.EXDEV, getattr(errno, "EILSEQ", errno.EINVAL)}


class Refused(Exception):
    """A path Liqscope will not write through: it leaves the store, or is a symbolic link inside it.

    Raised before anything is moved or removed; the message is one line."""


class Abandoned(Exception):
    """Part of a committed write can never be placed (the file system refuses a name); it was set aside."""


def _fault(step: str, path: Path) -> None:
    """Called just before each write step of a commit; does nothing (tests inject failures here).

    Steps: ``mkdir`` (a target folder, before the commit point), ``staging-fsync``,
    ``journal-write``, ``journal-fsync``, ``journal-rename`` (the commit point), then
    ``journal-dirsync``, ``delete``, ``dirsync`` and ``journal-remove``; the renames
    themselves go through :func:`_replace`."""


def _replace(src: Path, dst: Path) -> None:
    """``os.replace``; a module function so tests can inject a failure here."""
    os.replace(src, dst)


def _open_nofollow(path, flags: int) -> int:
    """``opener`` for :func:`open`: never through a symbolic link at ``path`` itself."""
    return os.open(path, flags | _NOFOLLOW | _CLOEXEC, 0o666)


def _open_new(path, flags: int) -> int:
    """``opener`` for :func:`open`: a file that did not exist (and is no link)."""
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)


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
    """Write ``data`` to ``path`` via a new temp file + fsync + rename, never through a link.

    A symbolic link at ``path`` is replaced, not followed; the folder of ``path`` is the caller's."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb", opener=_open_new) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def touch_nofollow(path: Path) -> None:
    """Create ``path`` if missing; refuse (OSError ELOOP) a symbolic link there."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666))


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
            self._fh = open(self.path, "a+b", opener=_open_nofollow)
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
    flags = (os.O_RDWR | os.O_CREAT) if publish else os.O_RDONLY
    try:
        fd = os.open(root / READ_LOCK, flags | _NOFOLLOW | _CLOEXEC, 0o666)
    except FileNotFoundError:  # nothing written yet (or a read-only store): nothing to guard
        yield
        return
    except OSError as exc:  # a symbolic link where the lock belongs: never followed; a reader goes on unguarded
        if publish or exc.errno not in _LINK_ERRNOS:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if publish else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


# -- what a journal may name ----------------------------------------------------------
def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_rel(rel: object, tops: Sequence[str]) -> list[str]:
    """The components of ``rel``, a store path from a journal; :class:`Refused` unless it is a
    plain relative path (``/``-separated) under one of ``tops``."""
    shown = _show(rel)
    if not isinstance(rel, str) or not rel:
        raise Refused(f"entry {shown} is not a path")
    if "\x00" in rel:
        raise Refused(f"path {shown} holds a NUL character")
    if rel.startswith("/") or "\\" in rel or rel[1:2] == ":":
        raise Refused(f"path {shown} is absolute or not a store path")
    parts = rel.split("/")
    if ".." in parts:
        raise Refused(f"path {shown} leaves the store")
    for part in parts:
        if part in ("", "."):
            raise Refused(f"path {shown} is not a plain store path")
        if any(ord(c) < 32 or ord(c) == 127 for c in part):
            raise Refused(f"path {shown} holds a control character")
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise Refused(f"path {shown} holds a name longer than {NAME_MAX} bytes")
    if parts[0] not in tops or len(parts) < 2:
        raise Refused(f"path {shown} is outside the store's {', '.join(t + '/' for t in tops)}")
    return parts


def check_no_links(root: Path, parts: Sequence[str]) -> None:
    """:class:`Refused` if any existing component of ``root/parts`` is a symbolic link (``root`` may be one)."""
    cur = root
    for i, part in enumerate(parts):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):
            return  # the rest does not exist (yet)
        if stat.S_ISLNK(st.st_mode):
            raise Refused(f"{'/'.join(parts[:i + 1])} is a symbolic link; Liqscope never follows links "
                          "inside a store: replace it by what it points to, or remove it")
        if not stat.S_ISDIR(st.st_mode):
            return  # a file on the way: the move fails (ENOTDIR) and says so


def check_entries(root: Path, moves: Sequence[Sequence[str]], deletes: Sequence[str]) -> None:
    """:class:`Refused` unless every move and removal stays inside ``root`` without following a link."""
    for staged, target in moves:
        sparts = check_rel(staged, (STAGING,))
        tparts = check_rel(target, DATA_DIRS)
        if not target.endswith(".parquet"):
            raise Refused(f"path {_show(target)} is no store data file")
        check_no_links(root, sparts)
        check_no_links(root, tparts)
        try:
            st = os.lstat(root / staged)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"staged {_show(staged)} is not a plain file")
    for rel in deletes:
        parts = check_rel(rel, DATA_DIRS)
        if not rel.endswith(".parquet"):
            raise Refused(f"path {_show(rel)} is no store data file")
        check_no_links(root, parts)


def read_journal(root: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The moves and removals of ``root/journal.json``; :class:`Refused` if it is not a journal
    Liqscope wrote or names anything outside the store; OSError if it cannot be read now."""
    path = root / JOURNAL
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"{JOURNAL} is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{JOURNAL} is not a plain file")
    if st.st_size > MAX_JOURNAL_BYTES:
        raise Refused(f"{JOURNAL} is larger than {MAX_JOURNAL_BYTES >> 20} MiB")
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused(f"{JOURNAL} is not a plain file")
        chunks, size = [], 0
        while size <= MAX_JOURNAL_BYTES:
            block = os.read(fd, 1 << 20)
            if not block:
                break
            chunks.append(block)
            size += len(block)
    finally:
        os.close(fd)
    if size > MAX_JOURNAL_BYTES:
        raise Refused(f"{JOURNAL} is larger than {MAX_JOURNAL_BYTES >> 20} MiB")
    try:
        record = json.loads(b"".join(chunks).decode("utf-8"))
    except (ValueError, RecursionError):  # a torn journal cannot exist (it is written atomically)
        raise Refused(f"{JOURNAL} is not a readable commit journal") from None
    ver = record.get("version") if isinstance(record, dict) else None
    if type(ver) is not int or ver != 1:
        raise Refused(f"{JOURNAL} is not a commit journal of this Liqscope (version {_show(ver)})")
    moves, deletes = record.get("moves"), record.get("deletes", [])
    if not isinstance(moves, list) or not all(isinstance(m, list) and len(m) == 2 for m in moves):
        raise Refused(f"{JOURNAL}: 'moves' is not a list of [staged, target] pairs")
    if not isinstance(deletes, list):
        raise Refused(f"{JOURNAL}: 'deletes' is not a list")
    check_entries(root, moves, deletes)
    return [(m[0], m[1]) for m in moves], list(deletes)


# -- creating folders, writing the journal, applying it -------------------------------
def make_dirs(root: Path, parts: Sequence[str], created: list[Path] | None = None, *,
              step: str | None = "mkdir") -> None:
    """Create ``root/parts...`` folder by folder, refusing a symbolic link or a file on the way;
    the folders made are appended to ``created``."""
    cur = root
    for part in parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if step:
                _fault(step, cur)
            try:
                os.mkdir(cur)
            except FileExistsError:
                st = os.lstat(cur)
            else:
                if created is not None:
                    created.append(cur)
                continue
        if stat.S_ISLNK(st.st_mode):
            raise Refused(f"{cur.relative_to(root).as_posix()} is a symbolic link; Liqscope never follows "
                          "links inside a store: replace it by what it points to, or remove it")
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "a file stands where the store needs a folder", str(cur))


class Transaction:
    """Files staged for one atomic commit. Use under :class:`StoreLock`."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / STAGING / uuid.uuid4().hex
        self.moves: list[tuple[str, str]] = []  # (staged, target), relative to root
        self.deletes: list[str] = []            # files folded into others, removed after the moves
        self.committed = False
        self._created: list[Path] = []          # target folders made before the commit point

    def stage(self, target: str) -> Path:
        """A fresh path to write the new content of ``target`` (relative, posix) to."""
        if not self.dir.is_dir():
            make_dirs(self.root, [STAGING, self.dir.name], step=None)
        staged = self.dir / f"{len(self.moves)}{Path(target).suffix}"
        self.moves.append((staged.relative_to(self.root).as_posix(), target))
        return staged

    def delete(self, target: str) -> None:
        """Remove ``target`` (relative, posix) as part of this commit, after the renames."""
        self.deletes.append(target)

    def abort(self) -> None:
        """Discard staged files and folders made; a no-op once the journal is written (recovery owns them)."""
        if self.committed:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        _remove_if_empty(self.root / STAGING)
        for d in reversed(self._created):
            _remove_if_empty(d)
        self._created.clear()

    def commit(self) -> None:
        """Check every path, make the target folders, journal the renames (the commit point), apply them."""
        if not self.moves and not self.deletes:
            self.abort()
            return
        check_entries(self.root, self.moves, self.deletes)
        for _, target in self.moves:  # a name the file system refuses, or no inode left: fails here, not later
            make_dirs(self.root, target.split("/")[:-1], self._created)
        if self.dir.exists():
            _fault("staging-fsync", self.dir)
            fsync_dir(self.dir)
        self._write_journal()
        # Committed: finish now (one retry); what may work later stays journaled for the next open.
        _complete(self.root, self.moves, self.deletes, attempts=2)

    def _write_journal(self) -> None:
        payload = json.dumps({"version": 1, "moves": self.moves, "deletes": self.deletes}, indent=1).encode()
        path = self.root / JOURNAL
        tmp = self.root / f".{JOURNAL}.{uuid.uuid4().hex}.tmp"
        try:
            _fault("journal-write", tmp)
            with open(tmp, "wb", opener=_open_new) as fh:
                fh.write(payload)
                fh.flush()
                _fault("journal-fsync", tmp)
                os.fsync(fh.fileno())
            _fault("journal-rename", path)
            os.replace(tmp, path)
            self.committed = True
        finally:
            tmp.unlink(missing_ok=True)


def _permanent(exc: BaseException) -> bool:
    return isinstance(exc, Refused) or (isinstance(exc, OSError) and exc.errno in _PERMANENT)


def _complete(root: Path, moves: Sequence[tuple[str, str]], deletes: Sequence[str], *, attempts: int) -> None:
    """Roll a journaled commit forward. Raises OSError when something that may work later failed
    (the journal stays) and :class:`Abandoned` when moves can never be made (set aside)."""
    last: BaseException | None = None
    for _ in range(attempts):
        try:
            failed = _roll_forward(root, moves, deletes)
        except OSError as exc:
            last = exc
            continue
        transient = [e for _, e in failed if not _permanent(e)]
        if transient:
            last = transient[0]
            continue
        if failed:
            raise _abandon(root, len(moves), failed)
        try:
            _finish(root)
            return
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


def _roll_forward(root: Path, moves: Sequence[tuple[str, str]],
                  deletes: Sequence[str]) -> list[tuple[str, BaseException]]:
    """Every move and removal that can be made now; returns those that failed (path, error).

    A removal in a folder where a move failed is held back: it would take rows the
    failed move was to carry. Moves already made by an earlier attempt are skipped."""
    _fault("journal-dirsync", root)
    fsync_dir(root)  # the journal is durable before anything moves
    failed: list[tuple[str, BaseException]] = []
    parents: dict[Path, str] = {}
    with snapshot(root, publish=True):
        for staged_rel, target_rel in moves:
            staged, target = root / staged_rel, root / target_rel
            try:
                if not os.path.lexists(staged):
                    if os.path.lexists(target):
                        continue  # renamed by an earlier attempt
                    raise FileNotFoundError(errno.ENOENT, "its staged file is missing", staged_rel)
                make_dirs(root, target_rel.split("/")[:-1])
                _replace(staged, target)
                parents[target.parent] = target_rel
            except (OSError, Refused) as exc:
                failed.append((target_rel, exc))
        held = {posixpath.dirname(t) for t, _ in failed}
        for rel in deletes:
            if posixpath.dirname(rel) in held:
                continue
            try:
                _fault("delete", root / rel)
                (root / rel).unlink(missing_ok=True)
                parents[(root / rel).parent] = rel
            except OSError as exc:
                failed.append((rel, exc))
        for folder, rel in parents.items():
            try:
                _fault("dirsync", folder)
                fsync_dir(folder)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append((rel, exc))
    return failed


def _finish(root: Path) -> None:
    _fault("journal-remove", root / JOURNAL)
    (root / JOURNAL).unlink(missing_ok=True)
    fsync_dir(root)
    _discard_staging(root)


def _discard_staging(root: Path) -> None:
    path = root / STAGING
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        path.unlink(missing_ok=True)  # the link itself, never what it points to
    else:
        shutil.rmtree(path, ignore_errors=True)  # never follows links inside


def _set_aside(root: Path, why: str) -> str:
    """Rename ``journal.json`` (and ``staging/``) to ``journal.<why>-<UTC time>.json``; returns that name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        tag = stamp if n == 0 else f"{stamp}-{n}"
        name, folder = f"journal.{why}-{tag}.json", f"{STAGING}.{why}-{tag}"
        if not os.path.lexists(root / name) and not os.path.lexists(root / folder):
            break
    os.replace(root / JOURNAL, root / name)  # the entry itself: a link stays a link, nothing outside moves
    if os.path.lexists(root / STAGING):
        try:
            os.replace(root / STAGING, root / folder)
        except OSError:
            pass  # discarded at the next open instead
    try:
        fsync_dir(root)
    except OSError:
        pass
    return name


def _abandon(root: Path, total: int, failed: list[tuple[str, BaseException]]) -> Abandoned:
    rel, exc = failed[0]
    kept = _set_aside(root, "failed")  # OSError: the journal stays, retried at the next open
    why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    return Abandoned(f"{len(failed)} of {total} files of a committed write could not be placed ({why}: "
                     f"{_show(rel)}); everything else is in place; the journal is kept as {kept}")


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def needs_recovery(root: Path) -> bool:
    return os.path.lexists(root / JOURNAL) or os.path.lexists(root / STAGING)


def recover(root: Path) -> str | None:
    """Finish or discard an interrupted commit; returns what was done. Hold the lock.

    A refused journal is never applied: it is set aside and logged (one line). Moves the
    file system can never make are set aside once the rest is in place, also logged.
    Raises OSError when finishing may work later (disk full, read-only, I/O error; the
    journal stays) and :class:`Refused` when a refused journal cannot even be set aside."""
    if os.path.lexists(root / JOURNAL):
        try:
            moves, deletes = read_journal(root)
        except Refused as exc:
            try:
                kept = _set_aside(root, "refused")
            except OSError as err:
                raise Refused(f"refused its {JOURNAL} ({exc}) and could not set it aside "
                              f"({err.strerror or err}); nothing in it was applied") from None
            log.warning("liqscope: warning: the store at %s: refused its %s (%s); nothing in it was applied, "
                        "it is kept as %s", root, JOURNAL, exc, kept)
            return "refused"
        try:
            _complete(root, moves, deletes, attempts=1)
        except Abandoned as exc:
            log.warning("liqscope: warning: the store at %s: %s", root, exc)
            return "rolled forward in part"
        return "rolled forward"
    if os.path.lexists(root / STAGING):
        _discard_staging(root)
        return "rolled back"
    return None
