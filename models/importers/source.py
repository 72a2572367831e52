"""Opening an input file: plain, gzip or zip, CSV or Parquet, sniffed from its bytes.

Compression and container are recognised by magic bytes, not by the name, so
``BTCUSDT-1m-2025-01.zip`` from data.binance.vision and a Tardis ``.csv.gz``
open directly. Binary garbage is refused here, before any parsing.
"""
from __future__ import annotations

import gzip
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

HEAD_BYTES = 64 * 1024
GZIP_MAGIC, ZIP_MAGIC, PARQUET_MAGIC = b"\x1f\x8b", b"PK\x03\x04", b"PAR1"


@dataclass
class Source:
    """One input file, with what sniffing learned about it."""

    path: Path
    display: str
    size: int
    compression: str | None = None  # None, "gzip" or "zip"
    member: str | None = None        # the CSV inside a zip
    container: str = "csv"           # "csv" or "parquet"
    head: bytes = b""                # first bytes of the decompressed content
    raw: BinaryIO | None = field(default=None, repr=False)

    @property
    def stem(self) -> str:
        """File name without .zip/.gz/.csv/.parquet (the member's name for a zip)."""
        name = Path(self.member or self.path.name).name
        return re.sub(r"(\.(csv|txt|parquet|gz|gzip|zip))+$", "", name, flags=re.I)

    def open(self) -> BinaryIO:
        """The decompressed content; ``position()`` reports raw bytes consumed."""
        self.raw = open(self.path, "rb")
        if self.compression == "gzip":
            return gzip.GzipFile(fileobj=self.raw, mode="rb")
        if self.compression == "zip":
            return zipfile.ZipFile(self.raw).open(self.member)
        return self.raw

    def position(self) -> int:
        try:
            return self.raw.tell() if self.raw is not None and not self.raw.closed else self.size
        except (OSError, ValueError):
            return self.size

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()

    def head_text(self) -> str:
        """The head as text, cut at the last complete line."""
        data = self.head
        if len(data) >= HEAD_BYTES and b"\n" in data:
            data = data[: data.rindex(b"\n") + 1]
        text = data.decode("utf-8-sig", errors="strict")
        return text


def open_source(path: str | Path) -> Source:
    """Sniff ``path``; raises :class:`InputError` for missing, empty or binary files."""
    p = Path(path)
    display = str(path)
    if not p.is_file():
        raise InputError(display, "no such file" if not p.exists() else "not a regular file")
    src = Source(p, display, p.stat().st_size)
    with open(p, "rb") as fh:
        magic = fh.read(4)
    try:
        if magic.startswith(GZIP_MAGIC):
            src.compression = "gzip"
        elif magic.startswith(ZIP_MAGIC):
            src.compression = "zip"
            with zipfile.ZipFile(p) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise InputError(display, f"zip holds {len(names)} files; expected exactly one CSV")
            src.member = names[0]
        with src.open() as fh:
            src.head = fh.read(HEAD_BYTES)
    except InputError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError) as exc:
        raise InputError(display, f"cannot open {src.compression or 'file'}: {exc}") from None
    finally:
        src.close()
    if src.head.startswith(PARQUET_MAGIC):
        src.container = "parquet"
        return src
    if not src.head.strip():
        raise InputError(display, "file is empty")
    if b"\x00" in src.head:
        raise InputError(display, "binary data, not a CSV text file", line=_line_of(src.head, src.head.index(b"\x00")))
    try:
        src.head_text()
    except UnicodeDecodeError as exc:
        raise InputError(display, "not UTF-8 text (binary data?)", line=_line_of(src.head, exc.start)) from None
    return src


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_all(src: Source) -> bytes:
    """Whole decompressed content (Parquet inside gzip/zip is read into memory)."""
    with src.open() as fh:
        data = fh.read()
    src.close()
    return data


def parquet_file(src: Source):
    """The source as a ``pyarrow.parquet.ParquetFile`` (``.schema_arrow``, ``.read(columns=...)``)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(str(src.path) if src.compression is None else io.BytesIO(read_all(src)))
