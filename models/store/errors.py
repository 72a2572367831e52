"""The store's typed errors: each is one line for the user (``UserError``), never matched by text."""
from __future__ import annotations

import errno
import re
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from ..errors import UserError


class StoreError(UserError):
    """The store cannot be opened, read or written; the message is one line for the user."""

    committed = False


class StoreIOError(StoreError, OSError):
    """The operating system or object store refused a store file (disk full, read-only, permission...)."""


class StoreVersionError(StoreError):
    """The store was written by a newer Liqscope with a schema this one cannot read."""


def damage_message(path: str, reason: str) -> str:
    return f"{path} is damaged ({reason}): run `liqscope store check --quarantine` to move it aside"


class StoreDamagedError(StoreError):
    """A data file a read needs cannot be read (truncated, not Parquet, wrong schema, gone): one line naming
    it and what to do. Reads that do not need it are unaffected."""

    def __init__(self, path: str, reason: str):
        super().__init__(damage_message(path, reason))
        self.path, self.reason = str(path), reason


@dataclass(frozen=True)
class DamagedFile:
    """A damaged data file a whole-store read left out: where, what is wrong, which partition."""

    path: str
    reason: str
    kind: str
    exchange: str | None = None
    symbol: str | None = None
    interval: str | None = None
    month: str | None = None

    @property
    def message(self) -> str:
        return damage_message(self.path, self.reason)

    def overlaps(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
        """Whether the file can hold rows with ``start <= ts < end`` (None: unbounded)."""
        try:
            lo = pd.Timestamp(f"{self.month}-01", tz="UTC")
        except (TypeError, ValueError):
            return True
        hi = lo + pd.offsets.MonthBegin(1)
        return (end is None or lo < end) and (start is None or start < hi)


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or use another --data-dir",
    errno.EDQUOT: "the disk quota is used up: free some space or use another --data-dir",
    errno.EROFS: "the store is on a read-only file system: use another --data-dir",
    errno.EACCES: "permission denied: make the store folder writable or use another --data-dir",
    errno.EPERM: "permission denied: make the store folder writable or use another --data-dir",
    errno.EISDIR: "a folder stands where the store keeps a file: remove it",
    errno.ENOTDIR: "a file stands where the store needs a folder: is --data-dir a file?",
    errno.EEXIST: "a file stands where the store needs a folder: is --data-dir a file?",
    errno.ENAMETOOLONG: "a file name is too long for this file system",
    errno.EMFILE: "too many open files: close some programs or raise the limit (ulimit -n)",
    errno.EIO: "input/output error: a failing disk or a disconnected drive?",
}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def os_hint(exc: OSError) -> str:
    hint = _OS_HINTS.get(exc.errno or 0, exc.strerror or first_line(exc))
    return hint + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")


def _delta_errno(text: str) -> int | None:
    """The OS error a delta-rs message reports as text (``... (os error 28)``, or its words)."""
    m = re.search(r"os error (\d+)", text)
    if m:
        return int(m.group(1))
    low = text.lower()
    for needle, err in (("no space left", errno.ENOSPC), ("read-only file system", errno.EROFS),
                        ("permission denied", errno.EACCES), ("not a directory", errno.ENOTDIR),
                        ("input/output error", errno.EIO), ("quota", errno.EDQUOT)):
        if needle in low:
            return err
    return None


def _delta_hint(text: str) -> str:
    """delta-rs reports OS errors as text inside its own exceptions: name the common ones in words."""
    err = _delta_errno(text)
    return _OS_HINTS.get(err, text) if err is not None else text


@contextmanager
def store_errors(where: str, doing: str):
    """An OSError or a delta-rs/arrow I/O failure as a one-line :class:`StoreError` naming the store;
    a delta-rs error that reports an OS error (disk full, read-only...) is a :class:`StoreIOError` with
    its ``errno``, as an OSError would be."""
    from deltalake.exceptions import DeltaError

    try:
        yield
    except StoreError:
        raise
    except OSError as exc:
        err = StoreIOError(f"cannot {doing} the store at {where}: {os_hint(exc)}")
        err.errno = exc.errno
        raise err from None
    except DeltaError as exc:
        text = first_line(exc)
        code = _delta_errno(text)
        message = f"cannot {doing} the store at {where}: {_delta_hint(text)}"
        if code is None:
            raise StoreError(message) from None
        err = StoreIOError(message)
        err.errno = code
        raise err from None
