"""Crash-safe writes of small local files (the recorder's journal index, store.json on a local disk)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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
