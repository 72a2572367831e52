"""Raw journal of everything the live recorder receives.

Layout: ``<data_dir>/journal/<exchange>/<YYYY-MM-DD>.jsonl`` (UTC day of
receipt), append-only, one JSON object per line:

``{"t": <receive time, ms>, "k": "msg", "d": "<raw frame text>"}``
    a frame exactly as received (also pongs, acks and malformed frames);
``{"t": ..., "k": "meta", "d": {...}}``
    what parsing needs besides the frames (OKX contract specs); repeated at the
    top of every new day file so each file can be replayed on its own;
``{"t": ..., "k": "gap", "d": {"start": ms, "end": ms, "reason": "..."}}``
    a time the stream was not connected.

A day file that is over (its UTC day ended and no recorder writes it) is
compressed to ``<YYYY-MM-DD>.jsonl.zst`` (zstd, one frame) by :func:`rotate`,
atomically: ``.zst.part`` written and fsync'ed, renamed, then the plain file
removed, so a crash at any step leaves a readable plain or compressed file.
Every reader here (:func:`journal_files`, :func:`iter_lines`, :func:`replay`)
reads both transparently, streaming; when a day has both (a crash between
rename and removal, or a late line that brought a compressed day back), the
plain file is read: it holds everything the compressed one does. A writer
holds a shared ``flock`` on each file it has open; the compressor needs an
exclusive one, so a file still written (by this process or another) is left
alone. :func:`rotate` also applies a retention: compressed days older than
so many days are deleted (never through a symbolic link).

Frames are appended and flushed (and fsync'ed) *before* they are normalised
into the store. ``<file>.pos`` records the byte offset up to which a file has
been normalised, so after a crash :func:`replay` with ``pending_only=True``
normalises exactly what was journaled but not stored; a full replay
re-normalises everything (after a parser fix) and *replaces* what the store
holds for the time the journal covers, so a corrected row takes the wrong
one's place instead of being stored next to it (see :func:`replay`).
"""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..fsutil import write_bytes_atomic
from ..store.provenance import LIVE as LIVE_SOURCE, live_source
from .parsers import EXCHANGES, Normalizer, event_key, events_frame
from .validate import feed, store_each

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks (only one recorder per journal there)
    fcntl = None

log = logging.getLogger(__name__)

PLAIN = ".jsonl"
ZST = ".zst"  # appended to a plain day file's name when it is compressed
_DAY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl(\.zst)?$")

def journal_root(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from .. import paths

        data_dir = paths.data_dir()
    return Path(data_dir) / "journal"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def is_compressed(path: Path) -> bool:
    return Path(path).name.endswith(PLAIN + ZST)


def plain_path(path: Path) -> Path:
    """The plain day file a (possibly compressed) day file stands for."""
    path = Path(path)
    return path.with_name(path.name[:-len(ZST)]) if is_compressed(path) else path


def compressed_path(path: Path) -> Path:
    path = plain_path(path)
    return path.with_name(path.name + ZST)


def _pos_path(path: Path) -> Path:
    # One checkpoint per day, whether the day is plain or compressed: offsets count
    # uncompressed bytes, so a checkpoint stays right when its file is compressed.
    path = plain_path(path)
    return path.with_name(path.name + ".pos")


def read_pos(path: Path) -> int:
    try:
        return int(_pos_path(path).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def write_pos(path: Path, offset: int) -> None:
    """The checkpoint, via a new temp file and a rename: a link planted at its name is replaced, never written through."""
    write_bytes_atomic(_pos_path(path), str(int(offset)).encode())


class Journal:
    """Appends journal lines; one open file per exchange, rolled per UTC day."""

    def __init__(self, root: Path, *, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync
        self._files: dict[str, tuple[str, object]] = {}
        self._meta: dict[str, dict] = {}

    def path_for(self, exchange: str, day: str) -> Path:
        return self.root / exchange / f"{day}.jsonl"

    def _open(self, exchange: str, day: str, t_ms: int, *, with_meta: bool = True):
        cur = self._files.get(exchange)
        if cur and cur[0] == day:
            return cur[1]
        if cur:
            del self._files[exchange]
            self._close(cur[1])
        path = self.path_for(exchange, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open_for_append(path)
        if fh.tell() > 0:
            # A crash can leave a half-written last line: end it so it stays one
            # (malformed, skipped) line instead of swallowing the next one.
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    fh.write(b"\n")
        self._files[exchange] = (day, fh)
        if with_meta and exchange in self._meta:
            fh.write(_dump({"t": t_ms, "k": "meta", "d": self._meta[exchange]}))
        return fh

    def remember_meta(self, exchange: str, meta: dict) -> None:
        """Meta to repeat atop new day files without journaling it now (after a restart)."""
        self._meta[exchange] = {**self._meta.get(exchange, {}), **meta}

    def append(self, exchange: str, lines: list[dict], *, sync: bool | None = None) -> dict[Path, int]:
        """Append and flush (to the OS: a killed process loses nothing written);
        fsync too if ``sync`` (default: the journal's ``fsync``). Returns the end
        offset reached in each file. ``meta`` lines are also remembered and
        repeated atop new day files."""
        ends: dict[Path, int] = {}
        touched = []
        for line in lines:
            t = int(line["t"])
            day = _day(t)
            is_meta = line.get("k") == "meta"
            fh = self._open(exchange, day, t, with_meta=not is_meta)
            fh.write(_dump(line))
            if is_meta and isinstance(line.get("d"), dict):
                self.remember_meta(exchange, line["d"])
            if fh not in touched:
                touched.append(fh)
            ends[self.path_for(exchange, day)] = -1
        for fh in touched:
            if not fh.closed:  # a file closed at midnight was flushed (and synced) then
                fh.flush()
                if self.fsync if sync is None else sync:
                    os.fsync(fh.fileno())
        for path in ends:
            ends[path] = path.stat().st_size
        return ends

    def reset(self, exchange: str) -> None:
        """Close an exchange's file after a failed write: reopening it ends a
        half-written line first, so it cannot swallow the next one."""
        cur = self._files.pop(exchange, None)
        if cur is not None:
            try:
                cur[1].close()
            except OSError:
                pass

    def sync(self) -> None:
        """fsync every open file (what :meth:`append` flushed without syncing)."""
        if self.fsync:
            for _day_, fh in self._files.values():
                fh.flush()
                os.fsync(fh.fileno())

    def _close(self, fh) -> None:
        try:
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        finally:
            fh.close()

    def close(self) -> None:
        for _day_, fh in self._files.values():
            self._close(fh)
        self._files.clear()

    def close_stale(self, before_ms: int) -> None:
        """Close the files of days that ended by ``before_ms``, so :func:`rotate` can
        compress them (a quiet exchange may not write today's file for a while).
        A late line for such a day opens its file again."""
        for exchange, (day, fh) in list(self._files.items()):
            end = _day_end_ms(day)
            if end is not None and end <= before_ms:
                del self._files[exchange]
                self._close(fh)


def open_for_append(path: Path):
    """Open a plain day file to append to, holding a shared ``flock`` on it while it
    is open (:func:`compress_day` leaves a locked file alone). A day compressed
    meanwhile is first brought back as a plain file (:func:`_restore`), so a late
    line never starts a new plain file that would hide what the compressed one holds."""
    path = Path(path)
    for _attempt in range(100):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | _NOFOLLOW)  # never append through a link
        except FileNotFoundError:
            if compressed_path(path).exists():
                _restore(path)
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | _NOFOLLOW, 0o666)
            except FileExistsError:
                continue
        fh = os.fdopen(fd, "ab")
        if fcntl is None:
            return fh
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while this (ended) day is being compressed
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                return fh
            fh.close()
            raise
        if os.fstat(fd).st_nlink > 0:
            return fh
        fh.close()  # compressed and removed while we waited for the lock: bring it back, open that
    raise OSError(errno.EAGAIN, "the journal file keeps being replaced; not appending to it", str(path))


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)  # a file system without flock


def _restore(path: Path) -> None:
    """Decompress a day's ``.zst`` back into its plain file (which must not exist). The
    compressed file stays: the plain one holds all of it, is read instead, and is
    compressed again (replacing it) once the day is over again."""
    src = compressed_path(path)
    tmp = path.with_name(f"{path.name}.restore-{os.getpid()}-{threading.get_ident()}")
    try:
        try:
            with open_journal(src) as zf, open(tmp, "wb") as out:
                while chunk := zf.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except FileNotFoundError:
            return  # deleted meanwhile (retention): the late line starts a new file
        log.warning("journal: a line arrived for %s, already compressed: decompressed it to append", path.name)
        try:
            os.link(tmp, path)  # never over a plain file another writer brought back first
        except FileExistsError:
            pass
        except OSError as exc:  # a file system without hard links
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            if not path.exists():
                os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        _unlink_quiet(tmp)


def _unlink_quiet(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder
        pass
    finally:
        os.close(fd)


def _dump(obj: dict) -> bytes:
    try:
        return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, so the line stays valid JSON and UTF-8
        return (json.dumps(obj, separators=(",", ":")) + "\n").encode("ascii")


LINE_LIMIT = 64 << 20  # a longer line (corruption: no newline for 64 MiB) is skipped unread


def _line(raw: bytes) -> dict | None:
    """A decoded journal line, or None if it is not one (torn, corrupt, hostile)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("k"), str):
        return None
    t = obj.get("t")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < 2**53:
        return None
    return obj


def _zstd():
    import zstandard

    return zstandard


class _ZstRaw(io.RawIOBase):
    """A ``.zst`` file's decompressed bytes, streamed; corrupt data reads as the end."""

    def __init__(self, raw):
        self._reader = _zstd().ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        self.broken = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.broken:
            return 0
        try:
            return self._reader.readinto(buf)
        except _zstd().ZstdError:
            self.broken = True  # what follows cannot be read: as if the file ended here
            return 0

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


def open_journal(path: Path):
    """A day file opened for reading: its journal lines as bytes, compressed or not
    (streaming: memory stays bounded). A plain file compressed since it was listed
    is read from its ``.zst``, which holds the same lines."""
    path = Path(path)
    if not is_compressed(path):
        try:
            return open(path, "rb")
        except FileNotFoundError:
            if not compressed_path(path).exists():
                raise
            path = compressed_path(path)
    raw = open(path, "rb")
    try:
        return io.BufferedReader(_ZstRaw(raw), 1 << 20)
    except BaseException:
        raw.close()
        raise


def journal_size(path: Path) -> int:
    """Bytes of journal lines a day file holds (uncompressed): what offsets and
    checkpoints count. A ``.zst`` says it in its frame header (as :func:`compress_day`
    writes it, one frame); otherwise it is counted by reading."""
    path = Path(path)
    if not is_compressed(path):
        try:
            return path.stat().st_size
        except FileNotFoundError:
            if not compressed_path(path).exists():
                raise
            path = compressed_path(path)
    zstd = _zstd()
    with open(path, "rb") as fh:
        head = fh.read(18)
    try:
        n = zstd.frame_content_size(head)
    except zstd.ZstdError:
        n = -1
    if n >= 0:
        return n
    total = 0
    with open_journal(path) as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
    return total


def _skip(fh, offset: int) -> None:
    if fh.seekable():
        fh.seek(offset)
        return
    while offset > 0 and (chunk := fh.read(min(offset, 1 << 20))):
        offset -= len(chunk)


def iter_lines(path: Path, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, int, dict | None]]:
    """(offset, end offset, decoded line or None if unreadable) from ``start`` (up
    to ``stop``); a trailing line without its newline (a write cut short) is not
    yielded. Plain and compressed day files alike (offsets count uncompressed
    bytes). Never raises for what the file holds."""
    with open_journal(path) as fh:
        _skip(fh, start)
        offset = start
        while stop is None or offset < stop:
            raw = fh.readline(LINE_LIMIT)
            if not raw:
                return
            end = offset + len(raw)
            if not raw.endswith(b"\n"):
                if len(raw) < LINE_LIMIT:
                    return  # the last line, cut short
                while raw and not raw.endswith(b"\n"):  # far too long: skip to its end
                    raw = fh.readline(LINE_LIMIT)
                    end += len(raw)
                if not raw:
                    return
                yield offset, end, None
            else:
                yield offset, end, _line(raw)
            offset = end


# -- compression of ended days, retention -----------------------------------------------

COMPRESS_LEVEL = 9  # zstd: a good ratio for JSON text at tens of MB/s; a day compresses in the background
ROTATE_GRACE_MS = 15 * 60_000  # a running recorder compresses a day this long after it ended (late lines)
_LEFTOVER_AGE_S = 3600.0  # a .zst.part or .restore-* file this old belongs to no running compressor


class _Changed(Exception):
    """The file grew while it was being compressed (a writer that takes no lock)."""


class _Stopped(Exception):
    """Asked to stop (the recorder stops): the plain file stays, a later pass compresses it."""


def compress_day(path: Path, *, should_stop=None) -> Path | None:
    """Compress one plain day file to ``<day>.jsonl.zst``, atomically: write
    ``<day>.jsonl.zst.part``, fsync, rename over ``.zst``, fsync the folder, then
    remove the plain file. A crash at any step leaves the plain file, or both
    (readers then take the plain one, and the next pass compresses it again), or
    the compressed one: never neither. Returns the compressed path, or None if
    there is nothing to do: gone, a symbolic link or not a regular file (never
    followed), still open for writing here or in another process (its
    writer's ``flock``), or ``should_stop()`` became true on the way (checked
    every MiB: a recorder's stop does not wait for a large day)."""
    plain = plain_path(path)
    dst = compressed_path(plain)
    part = dst.with_name(dst.name + ".part")
    try:
        fd = os.open(plain, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None  # a symbolic link
        raise
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # still written (this recorder or another one): a later pass
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    raise
        try:
            now = os.stat(plain, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or os.fstat(fd).st_nlink == 0:
            return None  # compressed (and maybe brought back) by someone else meanwhile
        size = os.fstat(fd).st_size
        zstd = _zstd()
        try:
            out_fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
                             | getattr(os, "O_NOFOLLOW", 0), stat.S_IMODE(st.st_mode))
            with os.fdopen(out_fd, "wb") as out:
                try:
                    writer = zstd.ZstdCompressor(level=COMPRESS_LEVEL).stream_writer(out, size=size, closefd=False)
                    while chunk := src.read(1 << 20):
                        if should_stop is not None and should_stop():
                            raise _Stopped
                        writer.write(chunk)
                    writer.flush(zstd.FLUSH_FRAME)
                except zstd.ZstdError as exc:
                    raise _Changed(str(exc)) from exc
                if os.fstat(fd).st_size != size:
                    raise _Changed("size changed")
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, dst)
        except _Changed:
            _unlink_quiet(part)
            log.warning("journal: %s changed while it was compressed; left as it is", plain)
            return None
        except _Stopped:
            _unlink_quiet(part)
            return None
        except BaseException:
            _unlink_quiet(part)
            raise
        _fsync_dir(plain.parent)  # the compressed file is there for good before the plain one goes
        os.unlink(plain)
        _fsync_dir(plain.parent)
    return dst


def next_rotation_ms(now_ms: int) -> int:
    """When a running recorder next compresses: :data:`ROTATE_GRACE_MS` after ``now_ms``'s UTC day ends."""
    return (int(now_ms) // 86_400_000 + 1) * 86_400_000 + ROTATE_GRACE_MS


@dataclass
class RotateResult:
    compressed: list[Path] = field(default_factory=list)
    deleted: list[Path] = field(default_factory=list)  # compressed days past the retention
    unstored: list[Path] = field(default_factory=list)  # past the retention but not all stored yet: kept
    errors: list[str] = field(default_factory=list)
    stopped: bool = False  # should_stop() ended the pass before it was done


def _exchange_dirs(root: Path) -> list[Path]:
    """The journal's exchange folders: real folders only (a symbolic link is not followed)."""
    try:
        with os.scandir(root) as it:
            return sorted(Path(e.path) for e in it if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _last_line_end(path: Path) -> int:
    end = 0
    for _off, end, _obj in iter_lines(path):
        pass
    return end


def rotate(root: Path | None = None, *, before_ms: int | None = None, retention_days: int | None = None,
           now_ms: int | None = None, should_stop=None) -> RotateResult:
    """Compress every plain day file whose UTC day ended by ``before_ms`` (default:
    now) and that nobody writes (:func:`compress_day`), in every exchange folder of
    the journal; then, with ``retention_days`` (>= 1), delete the compressed days
    more than that many days before today (``now_ms``'s UTC day): with 1, today and
    yesterday are kept. Plain day files are never deleted, nor is a compressed day
    whose lines are not all stored yet (its checkpoint is short of its end), nor
    anything that is not a regular file directly in an exchange folder: symbolic
    links are neither followed nor deleted. Never raises for what the folder holds:
    what failed is in ``errors`` (and logged). ``should_stop()`` true ends the pass
    early (``stopped``): what is left is done by a later one."""
    if retention_days is not None and (isinstance(retention_days, bool) or not isinstance(retention_days, int)
                                       or retention_days < 1):
        raise ValueError(f"journal retention must be a whole number of days >= 1, not {retention_days!r}")
    root = journal_root() if root is None else Path(root)
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else int(now_ms)
    before_ms = now_ms if before_ms is None else int(before_ms)
    result = RotateResult()

    def failed(what: str, exc: BaseException) -> None:
        result.errors.append(f"{what}: {type(exc).__name__}: {exc}"[:300])
        log.warning("journal: %s", result.errors[-1])

    for folder in _exchange_dirs(root):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            failed(f"cannot list {folder}", exc)
            continue
        for e in entries:
            if should_stop is not None and should_stop():
                result.stopped = True
                return result
            m = _DAY_NAME.match(e.name)
            try:
                if m and not m.group(2) and e.is_file(follow_symlinks=False):
                    end = _day_end_ms(m.group(1))
                    if end is not None and end <= before_ms:
                        done = compress_day(Path(e.path), should_stop=should_stop)
                        if done is not None:
                            result.compressed.append(done)
                elif (e.name.endswith(PLAIN + ZST + ".part") or (PLAIN + ".restore-") in e.name) \
                        and e.is_file(follow_symlinks=False):
                    # Left by a crash. A .part next to its plain file is rewritten by the next compression.
                    owner = folder / e.name.split(PLAIN, 1)[0]
                    age = time.time() - e.stat(follow_symlinks=False).st_mtime
                    if age > _LEFTOVER_AGE_S and not owner.with_name(owner.name + PLAIN).exists():
                        _unlink_quiet(Path(e.path))
            except FileNotFoundError:
                pass  # gone meanwhile (a .part renamed by the compression just done)
            except OSError as exc:
                failed(f"cannot compress {e.path}", exc)
    if should_stop is not None and should_stop():
        result.stopped = True  # (the last file may have been cut short)
        return result
    if retention_days is not None:
        today = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).date()
        cutoff = (today - timedelta(days=retention_days)).isoformat()
        for folder in _exchange_dirs(root):
            try:
                _prune(folder, cutoff, result)
            except OSError as exc:
                failed(f"cannot apply the retention in {folder}", exc)
    return result


def _prune(folder: Path, cutoff: str, result: RotateResult) -> None:
    """Delete ``folder``'s compressed days before ``cutoff`` (YYYY-MM-DD), through a
    folder descriptor opened without following links: only names directly in it."""
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.scandir(dfd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            m = _DAY_NAME.match(e.name)
            if not m or not m.group(2) or m.group(1) >= cutoff:
                continue
            if not e.is_file(follow_symlinks=False):
                continue  # a symbolic link (or anything else): never followed, never deleted
            path = folder / e.name
            try:
                size, pos = journal_size(path), read_pos(path)
                if pos < size and pos < _last_line_end(path):
                    result.unstored.append(path)
                    log.warning("journal: %s is past the retention but not all stored yet; kept", path)
                    continue
                os.unlink(e.name, dir_fd=dfd)
                result.deleted.append(path)
                plain = m.group(1) + PLAIN
                try:
                    os.stat(plain, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:  # no plain copy of the day left: its checkpoint goes too
                    try:
                        os.unlink(plain + ".pos", dir_fd=dfd)
                    except FileNotFoundError:
                        pass
            except OSError as exc:
                result.errors.append(f"cannot delete {path}: {type(exc).__name__}: {exc}"[:300])
                log.warning("journal: %s", result.errors[-1])
    finally:
        os.close(dfd)


class Dedup:
    """Bounded memory of recently stored event keys (reconnect overlaps, replays).

    Keeps the keys' 64-bit hashes, not the keys (about 70 bytes per event
    instead of 300): a hash collision between two of the last ``size`` events
    of one exchange is about as likely as 1 in 10^9."""

    def __init__(self, size: int = 200_000):
        self._keys: set[int] = set()
        self._order: deque = deque()
        self._size = size

    def add(self, key) -> bool:
        """True if ``key`` is new (and remembers it)."""
        h = hash(key)
        if h in self._keys:
            return False
        self._keys.add(h)
        self._order.append(h)
        if len(self._order) > self._size:
            self._keys.discard(self._order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._order)


@dataclass
class Batch:
    """What a run of journal lines normalises to."""

    events: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    frames: int = 0
    duplicates: int = 0
    quarantined: int = 0  # events refused by validate.event_problem (they stay in the journal)
    unreadable: int = 0  # lines and frames that could not be read
    reason: str | None = None  # why the last one was refused, in words


def _received(line: dict) -> int | None:
    t = line.get("t")
    return int(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None


def gap_problem(gap) -> str | None:
    """Why a journaled gap cannot be stored, or None."""
    if not isinstance(gap, dict):
        return "gap is not an object"
    start, end = gap.get("start"), gap.get("end")
    for v in (start, end):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 2**53:
            return f"gap time {v!r} is not a millisecond timestamp"
    if end < start:
        return "gap ends before it starts"
    return None


def normalize_lines(lines, normalizer: Normalizer, dedup: Dedup | None, *, emit: bool = True,
                    keep=None) -> Batch:
    """Normalise decoded journal lines in order (``emit=False`` only updates state).
    ``keep(event) -> bool`` drops events outside a symbol filter; by default the
    filter the recording session journaled (a ``symbols`` meta line) applies.

    Never raises for what the lines hold: unreadable lines and frames are counted
    (``normalizer.errors``, ``Batch.unreadable``), events that cannot be stored
    are quarantined alone (:func:`validate.feed`)."""
    out = Batch()
    for line in lines:
        if line is None:
            if emit:
                normalizer.errors += 1
                out.unreadable += 1
                out.reason = "unreadable journal line"
            continue
        kind, data = line.get("k"), line.get("d")
        if kind == "meta" and isinstance(data, dict):
            try:
                normalizer.set_meta(data)
            except Exception as exc:  # a corrupt meta line: keep the state read so far
                normalizer.last_error = f"unreadable meta line ({type(exc).__name__}: {exc})"[:200]
                if emit:
                    normalizer.errors += 1
                    out.unreadable += 1
                    out.reason = normalizer.last_error
        elif not emit:
            continue
        elif kind == "msg" and isinstance(data, str):
            out.frames += 1
            flt = keep if keep is not None else normalizer.keep
            fed = feed(normalizer, data, _received(line))
            if fed.unreadable:
                out.unreadable += 1
                out.reason = fed.unreadable
            if fed.quarantined:
                out.quarantined += len(fed.quarantined)
                out.reason = fed.quarantined[-1]
            for ev in fed.events:
                if flt is not None and not flt(ev):
                    continue
                if dedup is None or dedup.add(event_key(ev)):
                    out.events.append(ev)
                else:
                    out.duplicates += 1
        elif kind == "gap":
            problem = gap_problem(data)
            if problem is None:
                out.gaps.append(data)
            else:
                normalizer.errors += 1
                out.unreadable += 1
                out.reason = problem
    return out


def gaps_frame(exchange: str, gaps: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "exchange": [exchange] * len(gaps),
        "start": pd.to_datetime([int(g["start"]) for g in gaps], unit="ms", utc=True),
        "end": pd.to_datetime([int(g["end"]) for g in gaps], unit="ms", utc=True),
        "reason": [str(g.get("reason", ""))[:500] for g in gaps],
    })


def store_events(store, events: list[dict]) -> tuple[list, list[tuple[dict, str]], int]:
    """Append ``events`` to ``store`` so that one it refuses does not take the others
    with it (:func:`validate.store_each`). Returns ``(frames stored, [(event,
    reason)] refused, new rows)``; a failure of the store itself is raised."""
    frames, new = [], [0]

    def write(part):
        df = events_frame(part)
        res = store.append_liquidations(df, source=LIVE_SOURCE)
        frames.append(df)
        new[0] += int(getattr(res, "new", len(df)))

    _written, refused, _rest, error = store_each(write, events)
    if error is not None:
        raise error
    return frames, refused, new[0]


def safe_frame(events: list[dict]) -> tuple[pd.DataFrame, list[tuple[dict, str]]]:
    """:func:`events_frame` of every event it accepts, and the ones it refuses with why."""
    good, refused, _rest, error = store_each(events_frame, events)
    if error is not None:
        raise error
    return events_frame(good), refused


@dataclass
class ReplayResult:
    files: int = 0
    frames: int = 0
    events: int = 0
    new: int = 0      # rows the store did not hold before
    removed: int = 0  # stored rows a full replay took out (a parser fix changed or dropped them)
    gaps: int = 0
    duplicates: int = 0
    errors: int = 0
    unconverted: int = 0
    quarantined: int = 0  # events that cannot be stored (invalid, or refused by the store); still in the journal
    last_error: str | None = None
    per_exchange: dict[str, int] = field(default_factory=dict)


def day_name(path: Path) -> str:
    """``2025-05-09`` for ``2025-05-09.jsonl`` and ``2025-05-09.jsonl.zst``."""
    name = plain_path(path).name
    return name[:-len(PLAIN)] if name.endswith(PLAIN) else Path(name).stem


def journal_files(root: Path, exchange: str, since: str | None = None, until: str | None = None) -> list[Path]:
    """An exchange's day files in day order, one per day: the plain file if there is
    one (it holds everything its ``.zst`` does), else the compressed one."""
    folder = Path(root) / exchange
    if not folder.is_dir():
        return []
    found = {p.name: p for p in folder.glob("*" + PLAIN)}
    for p in folder.glob("*" + PLAIN + ZST):
        found.setdefault(p.name[:-len(ZST)], p)
    days = sorted(found)
    return [found[n] for n in days
            if (since is None or n[:-len(PLAIN)] >= since) and (until is None or n[:-len(PLAIN)] <= until)]


def _stop_for(stop_at: dict[Path, int] | None, path: Path) -> int | None:
    if not stop_at:
        return None
    for key in (path, plain_path(path), compressed_path(path)):
        if key in stop_at:
            return stop_at[key]
    return None


def replay(store, root: Path | None = None, *, exchanges=None, since: str | None = None,
           until: str | None = None, pending_only: bool = False, gaps: bool = True,
           dedup: dict[str, Dedup] | None = None, on_events=None, keep=None,
           stop_at: dict[Path, int] | None = None) -> ReplayResult:
    """Normalise journal files into ``store``.

    ``pending_only``: only what follows each file's ``.pos`` checkpoint (crash
    recovery), appended (the store skips rows it already holds). Otherwise a
    full replay, after a parser fix: every line is re-normalised and, per
    exchange in one atomic commit, *replaces* the stored rows of the time the
    replayed lines cover -- within that span the journal is the source of truth
    for the exchange's rows (see :func:`_replace_from_journal` for the span).

    ``since``/``until`` are UTC days (YYYY-MM-DD, inclusive). ``keep``: a filter
    ``keep(event) -> bool`` deciding by exchange, symbol and asset (or a dict of
    them per exchange) overriding the ``--symbols`` each recording session
    journaled; a full replay replaces only the symbols it keeps. ``dedup``
    (recovery only) carries the live recorder's memory of stored events;
    ``stop_at`` (recovery only) ends the named files at those offsets.

    Never raises for what the journal holds (torn or corrupt lines, poisoned
    frames, events the store refuses): what cannot be read is counted in
    ``errors``, what cannot be stored in ``quarantined``. Failures of the store
    itself (locked, full) are raised, the checkpoints left where they were.
    """
    root = journal_root() if root is None else Path(root)
    result = ReplayResult()
    for exchange in exchanges or EXCHANGES:
        flt = keep.get(exchange) if isinstance(keep, dict) else keep
        if not pending_only:
            _replace_from_journal(store, root, exchange, since, until, flt, gaps, on_events, result)
            continue
        normalizer = Normalizer(exchange)
        seen = (dedup or {}).get(exchange) or Dedup()
        for path in journal_files(root, exchange, since, until):
            size = journal_size(path)
            start = read_pos(path)
            if start > size:
                start = 0  # the file is shorter than its checkpoint (replaced or cut): all of it again
            stop = _stop_for(stop_at, path)
            if start >= size or (stop is not None and start >= stop):
                # Still read its meta lines: later files may rely on them.
                normalize_lines((obj for _o, _e, obj in iter_lines(path)), normalizer, None, emit=False)
                continue
            head, tail, end = [], [], start
            for off, e, obj in iter_lines(path, stop=stop):
                (tail if off >= start else head).append(obj)
                end = e
            normalize_lines(head, normalizer, None, emit=False)
            errors_before = normalizer.errors
            batch = normalize_lines(tail, normalizer, seen, keep=flt)
            result.files += 1
            result.frames += batch.frames
            result.duplicates += batch.duplicates
            result.errors += normalizer.errors - errors_before
            result.quarantined += batch.quarantined
            if batch.reason:
                result.last_error = batch.reason
            if batch.events:
                frames, refused, new = store_events(store, batch.events)
                stored = sum(map(len, frames))
                result.events += stored
                result.new += new
                result.quarantined += len(refused)
                if refused:
                    result.last_error = f"the store refused an event: {refused[-1][1]}"
                if stored:
                    result.per_exchange[exchange] = result.per_exchange.get(exchange, 0) + stored
                if on_events is not None and stored:
                    on_events(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
            if gaps and batch.gaps:
                store.append_gaps(gaps_frame(exchange, batch.gaps))
                result.gaps += len(batch.gaps)
            write_pos(path, end)
        result.unconverted += normalizer.unconverted
        if normalizer.last_error and not result.last_error:
            result.last_error = normalizer.last_error
    return result


SPAN_SLACK_MS = 60_000  # how far from its frame's receive time an event's own time still widens the span


def _day_start_ms(day: str) -> int | None:
    try:
        return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000)
    except ValueError:
        return None


def _day_end_ms(day: str) -> int | None:
    start = _day_start_ms(day)
    return None if start is None else start + 86_400_000


def _in_day(path: Path, t: int) -> bool:
    """Whether receive time ``t`` (ms) is within the UTC day the file is named after."""
    day = _day_start_ms(day_name(path))
    if day is None:
        return True
    return day <= t < day + 86_400_000


def _keep_all(ev: dict) -> bool:
    return True


@dataclass
class _Stretch:
    """Frames of one unbroken stretch of a recording session: no gap, no restart, one file."""

    first: int  # receive time of the first and last frame, ms
    last: int
    keep: object  # the symbol filter in effect (``_keep_all``: every symbol)
    events: list[dict] = field(default_factory=list)

    def spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` ms the stretch covers: first to last frame received, widened
        to its events' exchange times (stamped a little before receipt) when within
        :data:`SPAN_SLACK_MS`; an event stamped further away covers its own ms only,
        so a stray time stamp cannot stretch the span over days of other data."""
        lo, hi, out = self.first, self.last + 1, []
        for ev in self.events:
            t = int(ev["ts_ms"])
            if self.first - SPAN_SLACK_MS <= t <= self.last + SPAN_SLACK_MS:
                lo, hi = min(lo, t), max(hi, t + 1)
            else:
                out.append((t, t + 1))
        return [(lo, hi), *out]


def _filter_key(keep) -> object:
    if keep is _keep_all:
        return None
    items = getattr(keep, "items", None)
    return ("symbols", tuple(sorted(items))) if isinstance(items, list) else ("id", id(keep))


def _symbol_scope(exchange: str, keep):
    """The store-side form of an event filter: ``(symbol, asset) -> bool`` or None (all)."""
    if keep is _keep_all:
        return None
    return lambda symbol, asset: bool(keep({"exchange": exchange, "symbol": symbol, "asset": asset}))


def _replace_from_journal(store, root: Path, exchange: str, since: str | None, until: str | None, keep,
                          gaps: bool, on_events, result: ReplayResult) -> None:
    """Re-normalise one exchange's journal files and replace what they cover, in one commit.

    The span replaced is where the journal is complete: per recording stretch --
    split at every journaled gap, every session start (its ``symbols`` meta line)
    and every file -- from its first to its last frame's receive time, widened to
    the events' own times (:meth:`_Stretch.spans`); and only the symbols that
    stretch keeps (``keep``, else the session's ``--symbols``). Outside those
    spans (before, after, during gaps or between sessions) nothing is touched.

    The store does not record where a row came from, so inside a span rows
    imported from files for the same exchange and symbols are replaced too; a
    ``source`` column would need a store schema change for this one case.
    Re-importing such files afterwards adds them back (imports skip rows held).
    Likewise a ``keep`` naming symbols a session never subscribed to (Bybit
    subscribes per symbol) finds no frames of them, so it clears them in the span.

    OKX frames naming a contract missing from the instrument list are retried
    after each later instrument list, as the live recorder does, so an event
    the recorder stored after a refresh is not dropped by the replay.
    """
    from ..store import Batch as StoreBatch

    normalizer = Normalizer(exchange)
    seen = Dedup()  # fresh: a replacement must hold every event, not only unseen ones
    stretches: list[_Stretch] = []
    waiting: list[tuple[dict, _Stretch]] = []  # (frame line, its stretch) with an unknown contract size
    gap_lines: list[dict] = []
    ends: dict[Path, int] = {}
    for path in journal_files(root, exchange, since, until):
        cur: _Stretch | None = None
        errors_before = normalizer.errors
        for _off, end, obj in iter_lines(path):
            ends[path] = end
            kind, data = (obj.get("k"), obj.get("d")) if obj else (None, None)
            if kind == "gap" or (kind == "meta" and isinstance(data, dict) and "symbols" in data):
                cur = None  # disconnected, or a new recording session
            if kind == "msg" and isinstance(data, str):
                t = int(obj["t"])
                if not _in_day(path, t):
                    # Lines go to the file of their UTC day: this one is corrupt, and its time
                    # must not stretch the replaced span over days of other data.
                    obj = None  # counted as unreadable below
                else:
                    if cur is None:
                        cur = _Stretch(t, t, keep or normalizer.keep or _keep_all)
                        stretches.append(cur)
                    cur.first, cur.last = min(cur.first, t), max(cur.last, t)
            unconverted = normalizer.unconverted
            batch = normalize_lines([obj], normalizer, seen, keep=cur.keep if cur is not None else _keep_all)
            result.frames += batch.frames
            result.duplicates += batch.duplicates
            result.quarantined += batch.quarantined
            if batch.reason:
                result.last_error = batch.reason
            gap_lines += batch.gaps
            if obj is not None and kind == "msg" and cur is not None:
                cur.events += batch.events
                if normalizer.unconverted > unconverted:
                    waiting.append((obj, cur))
            if kind == "meta" and waiting and isinstance(data, dict) and "instruments" in data:
                retry, waiting = waiting, []
                for line, stretch in retry:
                    unconverted = normalizer.unconverted
                    stretch.events += normalize_lines([line], normalizer, seen, keep=stretch.keep).events
                    if normalizer.unconverted > unconverted:
                        waiting.append((line, stretch))
        result.files += 1
        result.errors += normalizer.errors - errors_before
    result.unconverted += len(waiting)
    if normalizer.last_error and not result.last_error:
        result.last_error = normalizer.last_error
    if not ends:
        return
    groups: dict[object, list[_Stretch]] = {}
    for st in stretches:
        groups.setdefault(_filter_key(st.keep), []).append(st)
    batch = StoreBatch()
    frames = []
    for group in groups.values():
        df, refused = safe_frame([ev for st in group for ev in st.events])
        result.quarantined += len(refused)
        if refused:
            result.last_error = f"an event cannot be stored: {refused[-1][1]}"
        spans = [(pd.Timestamp(a, unit="ms", tz="UTC"), pd.Timestamp(b, unit="ms", tz="UTC"))
                 for st in group for a, b in st.spans()]
        live = live_source(exchange)  # a replay replaces what the recorder stored, never rows from files
        batch.replace_liquidations(df, exchanges=[exchange], spans=spans,
                                   symbols=_symbol_scope(exchange, group[0].keep), trusted=True,
                                   source=live, sources=[live])
        frames.append(df)
    if gaps and gap_lines:
        batch.add_gaps(gaps_frame(exchange, gap_lines))
        result.gaps += len(gap_lines)
    for res, df in zip(store.commit(batch) if len(batch) else [], frames):
        result.events += len(df)
        result.new += res.added
        result.removed += res.removed
        if len(df):
            result.per_exchange[exchange] = result.per_exchange.get(exchange, 0) + len(df)
    for path, end in ends.items():
        write_pos(path, end)
    if on_events is not None and frames and sum(map(len, frames)):
        on_events(pd.concat([f for f in frames if len(f)], ignore_index=True))
