"""Opening an input file: plain, gzip or zip, CSV or Parquet, sniffed from its bytes.

Compression and container are recognised by magic bytes, not by the name, so
``BTCUSDT-1m-2025-01.zip`` from data.binance.vision and a Tardis ``.csv.gz``
open directly. Binary garbage is refused here, before any parsing.

Compressed input is bounded: honest CSV and Parquet files expand 3-20x (very
repetitive ones perhaps 100x), a "compression bomb" 1000x, so a 1 MiB file could
fill gigabytes of memory. Content is counted as it streams and refused, in one
line, past :func:`expansion_limit` (``MAX_RATIO`` x the file's size, at least
``MIN_LIMIT``); a zip's declared size and a Parquet file's footer (row count,
uncompressed sizes) are checked before anything is decompressed, and Parquet is
decoded in batches that count against the same limit.
"""
from __future__ import annotations

import gzip
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

HEAD_BYTES = 64 * 1024
GZIP_MAGIC, ZIP_MAGIC, PARQUET_MAGIC = b"\x1f\x8b", b"PK\x03\x04", b"PAR1"
MAX_RATIO = 200          # content bytes per file byte that an import accepts (see the module doc)
MIN_LIMIT = 64 << 20     # ... but any file may expand to this much: small files are never refused
PARQUET_BATCH = 65_536   # rows decoded at a time


def expansion_limit(size: int) -> int:
    """Most bytes of content (decompressed CSV, decoded Parquet) a file of ``size`` bytes may yield."""
    return max(MAX_RATIO * size, MIN_LIMIT)


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class TooLargeError(InputError):
    """The content would be larger than :func:`expansion_limit` allows (a compression bomb?)."""


def too_large(display: str, size: int, what: str = "decompresses to", fix: str = "unpack it first") -> TooLargeError:
    """``FILE: decompresses to more than 200 MiB, the limit for a 1.0 MiB file (...); ... unpack it first``."""
    return TooLargeError(display, f"{what} more than {size_text(expansion_limit(size))}, the limit for a "
                                  f"{size_text(size)} file ({MAX_RATIO}x its size, at least {size_text(MIN_LIMIT)}); "
                                  f"a compression bomb? If it is genuine, {fix}")


class _Limited(io.RawIOBase):
    """A decompressing stream that raises :class:`TooLargeError` once it has yielded more than ``limit`` bytes."""

    def __init__(self, inner: BinaryIO, src: "Source"):
        super().__init__()
        self._inner, self._src = inner, src
        self._limit, self.count = expansion_limit(src.size), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:  # everything, a block at a time: the limit trips before memory runs out
            chunks = []
            while chunk := self.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        data = self._inner.read(min(n, self._limit + 1 - self.count))  # never more than one byte past it
        self.count += len(data)
        if self.count > self._limit:
            raise too_large(self._src.display, self._src.size)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


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
            return _Limited(gzip.GzipFile(fileobj=self.raw, mode="rb"), self)
        if self.compression == "zip":
            return _Limited(zipfile.ZipFile(self.raw).open(self.member), self)
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
                infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) != 1:
                raise InputError(display, f"zip holds {len(infos)} files; expected exactly one CSV")
            if infos[0].flag_bits & 0x1:
                raise InputError(display, f"{infos[0].filename} in the zip is encrypted (password-protected): "
                                          "unpack it first")
            if infos[0].file_size > expansion_limit(src.size):
                raise too_large(display, src.size, f"unpacks to {size_text(infos[0].file_size)},")
            src.member = infos[0].filename
        with src.open() as fh:
            src.head = fh.read(HEAD_BYTES)
    except InputError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError,
            RuntimeError, zlib.error, struct.error) as exc:
        raise InputError(display, f"cannot open {src.compression or 'file'}: {_one_line(exc)}") from None
    finally:
        src.close()
    if src.head.startswith(PARQUET_MAGIC):
        src.container = "parquet"
        return src
    if not src.head.removeprefix(b"\xef\xbb\xbf").strip():  # a UTF-8 byte-order mark alone is still empty
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_all(src: Source) -> bytes:
    """Whole decompressed content (Parquet inside gzip/zip is read into memory), within the limit."""
    try:
        with src.open() as fh:
            return fh.read()
    finally:
        src.close()


class ParquetSource:
    """A Parquet input, checked before it is decoded: unique column names, and a footer (rows,
    uncompressed sizes) that fits :func:`expansion_limit`; read in batches that count against it."""

    def __init__(self, src: Source):
        import pyarrow.parquet as pq

        self.src = src
        self.file = pq.ParquetFile(str(src.path) if src.compression is None else io.BytesIO(read_all(src)))
        self.schema_arrow = self.file.schema_arrow
        self.metadata = self.file.metadata
        names = list(self.schema_arrow.names)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(src.display, f"repeated column names: {', '.join(map(repr, repeated))}")
        self.limit = expansion_limit(src.size)

    def _check_footer(self, columns: list[str]) -> None:
        """Refuse before decoding what the footer says cannot fit: 8+ bytes per value, or the pages' sizes."""
        md, wanted = self.metadata, set(columns)
        pages = sum(md.row_group(g).column(c).total_uncompressed_size
                    for g in range(md.num_row_groups) for c in range(md.num_columns)
                    if md.row_group(g).column(c).path_in_schema.split(".")[0] in wanted)
        if md.num_rows * 8 * len(columns) > self.limit or pages > self.limit:
            least = max(pages, md.num_rows * 8 * len(columns))
            raise too_large(self.src.display, self.src.size, f"holds {md.num_rows:,} rows that decode to at least "
                            f"{size_text(least)},", "convert it to plain CSV first")

    def read(self, columns: list[str] | None = None):
        """The ``columns`` (default all) as one ``pyarrow.Table``, decoded a batch at a time."""
        import pyarrow as pa

        columns = list(self.schema_arrow.names) if columns is None else list(columns)
        tables = list(self.iter_read(columns, None))
        if not tables:
            return self.schema_arrow.empty_table().select(columns)
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def iter_read(self, columns: list[str] | None = None, batch_rows: int | None = None):
        """The ``columns`` (default all) as ``pyarrow.Table`` s of about ``batch_rows`` rows (None: one table,
        the whole file), decoded :data:`PARQUET_BATCH` rows at a time, counting against the limit."""
        import pyarrow as pa

        columns = list(self.schema_arrow.names) if columns is None else list(columns)
        self._check_footer(columns)
        batches, decoded, held = [], 0, 0
        for batch in self.file.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
            decoded += batch.nbytes
            if decoded > self.limit:
                raise too_large(self.src.display, self.src.size, "decodes to", "convert it to plain CSV first")
            batches.append(batch)
            held += batch.num_rows
            if batch_rows is not None and held >= batch_rows:
                yield pa.Table.from_batches(batches, schema=batches[0].schema)
                batches, held = [], 0
        if batches:
            yield pa.Table.from_batches(batches, schema=batches[0].schema)


def parquet_file(src: Source) -> ParquetSource:
    """The source as a checked :class:`ParquetSource` (``.schema_arrow``, ``.read(columns=...)``)."""
    return ParquetSource(src)
