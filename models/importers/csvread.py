"""Fast CSV reading with pyarrow, and exact line numbers when something is wrong.

The fast path reads the file here, in blocks of whole lines (about ``BLOCK``
bytes), and has pyarrow parse each block into typed columns; after each block
the task (:mod:`liqscope.models.progress`) gets a step, in raw bytes of the file
read so far, and may cancel. Empty lines are kept as rows, so row *i* is
physical line ``first_line + i`` and any later check can name the line. Only
when pyarrow refuses the file does a slower second pass find the offending line
and column.

:func:`iter_csv` hands the blocks on as batches of about ``BATCH_ROWS`` rows (a
streaming import converts and commits one batch at a time, so memory does not
grow with the file); :func:`read_csv` is the same reading, whole.

Blocks are read on the calling thread, never by pyarrow's background reader:
that thread calls back into Python (the decompressing stream) and, still
reading ahead when an error ended the import, could abort the process at exit
(SIGABRT). A line longer than ``MAX_LINE`` is refused with its number, so a file
without line ends never buffers more than that.
"""
from __future__ import annotations

import csv
import re
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..progress import Task
from .errors import InputError
from .rows import Rows
from .source import Source

BLOCK = 1 << 22      # bytes read and handed to pyarrow at a time (cut at a line end)
BATCH_ROWS = 1 << 19  # rows read, converted and committed at a time by an import: 10M rows peak < 1 GB RSS
MAX_LINE = 1 << 20   # longest line read: a longer one is refused with its number, never buffered on
INT64 = (-(1 << 63), (1 << 63) - 1)


def header_fields(src: Source, delimiter: str = ",") -> list[str]:
    """The first line split as CSV, names stripped."""
    first = src.head_text().splitlines()[0] if src.head_text() else ""
    return [f.strip() for f in next(csv.reader([first], delimiter=delimiter), [])]


def sniff_delimiter(src: Source) -> str:
    first = src.head_text().splitlines()[0] if src.head_text() else ""
    if "," in first:
        return ","
    for d in (";", "\t", "|"):
        if d in first:
            return d
    return ","


def read_csv(src: Source, *, names: list[str], header: bool, types: dict[str, pa.DataType],
             include: list[str] | None = None, delimiter: str = ",",
             task: Task | None = None) -> Rows:
    """Read ``src`` with the given column ``names`` (the header line, if any, is skipped), whole.

    ``task.progress(raw bytes read, file size)`` after every block; raises
    :class:`~liqscope.models.progress.Cancelled` there if the caller cancelled.
    """
    include = include or names
    parts = list(iter_csv(src, names=names, header=header, types=types, include=include, delimiter=delimiter,
                          task=task, batch_rows=None))
    if not parts:
        table = pa.table({n: pa.array([], types.get(n, pa.string())) for n in include})
        return Rows(src.display, table, np.zeros(0, dtype=np.int64))
    if len(parts) == 1:
        return parts[0]
    return Rows(src.display, pa.concat_tables([p.table for p in parts]), np.concatenate([p.lines for p in parts]))


def iter_csv(src: Source, *, names: list[str], header: bool, types: dict[str, pa.DataType],
             include: list[str] | None = None, delimiter: str = ",", task: Task | None = None,
             batch_rows: int | None = BATCH_ROWS) -> Iterator[Rows]:
    """``src`` as :class:`Rows` of about ``batch_rows`` rows each (None: one batch, the whole file), in file
    order, blank lines dropped: memory holds one batch, not the file. Errors are the ones
    :func:`read_csv` raises, for the first bad line of the file (found by a second pass, as there), raised
    when the reading reaches the block that holds it; batches before it have been yielded by then.

    ``task.progress(raw bytes read, file size)`` after every block; raises
    :class:`~liqscope.models.progress.Cancelled` there if the caller cancelled.
    """
    include = include or names
    # pyarrow splits each block again for its threads; a row must fit in one of its blocks
    read = pacsv.ReadOptions(column_names=names, block_size=MAX_LINE + (64 << 10))
    parse = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)
    col_types = {k: v for k, v in types.items() if k in include}
    first_line = 2 if header else 1
    tables: list[pa.Table] = []
    held = 0      # rows in ``tables``
    n_rows = 0    # rows parsed before ``tables``
    try:
        with src.open() as stream:
            for block in _line_blocks(stream, header, lambda: first_line + n_rows + held):
                conv = pacsv.ConvertOptions(column_types=col_types, include_columns=include,
                                            strings_can_be_null=False, quoted_strings_can_be_null=False)
                table = pacsv.read_csv(pa.BufferReader(block), read_options=read, parse_options=parse,
                                       convert_options=conv)
                if not n_rows and not tables:  # later blocks get the first block's types, never inferred afresh
                    col_types = {f.name: f.type for f in table.schema}
                tables.append(table)
                held += table.num_rows
                if task is not None:
                    task.progress(min(src.position(), src.size), src.size)
                if batch_rows is not None and held >= batch_rows:
                    batch = _batch(src, tables, first_line + n_rows)
                    n_rows, tables, held = n_rows + held, [], 0
                    if len(batch):
                        yield batch
            if tables:
                batch = _batch(src, tables, first_line + n_rows)
                n_rows, tables, held = n_rows + held, [], 0
                if len(batch):
                    yield batch
    except pa.ArrowInvalid as exc:
        raise _diagnose(src, exc, names=names, header=header, types=types, delimiter=delimiter) from None
    except LineTooLong as exc:
        raise _too_long(src, exc.line) from None
    finally:
        src.close()


def _batch(src: Source, tables: list[pa.Table], first: int) -> Rows:
    """Blocks parsed in a row as one :class:`Rows`; row *i* is line ``first + i``, blank lines then dropped."""
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return Rows(src.display, table, first + np.arange(table.num_rows, dtype=np.int64)).drop_blank()


def _line_end(data: bytearray, start: int, eof: bool) -> int:
    """Length of the longest prefix of ``data`` ending with a line end, searching from ``start`` (0: none).

    A final ``\\r`` does not count before the end of the file: it may be half of ``\\r\\n``.
    """
    if eof:
        return len(data)
    nl = data.rfind(b"\n", start)
    cr = data.rfind(b"\r", start, len(data) - 1)
    return max(nl, cr) + 1


_EOL = re.compile(rb"\r\n|\r(?!\n)|\n")


def _first_line_end(data: bytearray, start: int, eof: bool) -> int | None:
    """Where the first line's end (\\n, \\r\\n or \\r) stops, or None if it is not in ``data`` yet
    (``start``: no line end before it)."""
    m = _EOL.search(data, start)
    if m is None:
        return len(data) if eof else None
    if m.group() == b"\r" and m.end() == len(data) and not eof:
        return None  # perhaps \r\n split between reads
    return m.end()


def _line_blocks(stream, header: bool, line_now):
    """Blocks of whole lines, about ``BLOCK`` bytes each, without the header line when ``header``.

    ``line_now()`` is the number of the next line to parse; a line longer than ``MAX_LINE``
    raises :class:`LineTooLong` with its number.
    """
    pending, searched, skip = bytearray(), 0, header
    while True:
        data = stream.read(BLOCK)
        eof = not data
        pending += data
        if skip:
            end = _first_line_end(pending, searched, eof)
            if end is None:
                if len(pending) > MAX_LINE:
                    raise LineTooLong(1)
                searched = max(0, len(pending) - 1)
                continue
            del pending[:end]
            skip, searched = False, 0
        cut = _line_end(pending, searched, eof)
        if cut:
            yield bytes(pending[:cut])
            del pending[:cut]
            searched = 0
        else:
            searched = max(0, len(pending) - 1)
        if len(pending) > MAX_LINE:
            raise LineTooLong(line_now())
        if eof:
            return


def _too_long(src: Source, line: int) -> InputError:
    return InputError(src.display, f"line longer than {MAX_LINE >> 20} MiB: not a CSV file, or a CSV with no "
                                   "line ends?", line=line)


_COUNT = re.compile(r"Expected (\d+) columns?, got (\d+)")
_CONV = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", re.S)


def _diagnose(src: Source, exc: Exception, *, names, header, types, delimiter) -> InputError:
    """Turn pyarrow's complaint into an InputError naming line and column where possible."""
    try:
        return _locate(src, exc, names=names, header=header, types=types, delimiter=delimiter)
    except InputError as found:  # the second pass found the cause itself (a line too long, a bomb)
        return found
    except Exception as again:  # the second pass met something worse: still one clean line
        return InputError(src.display, f"cannot read CSV: {exc} ({again})")


def _locate(src: Source, exc: Exception, *, names, header, types, delimiter) -> InputError:
    msg = str(exc)
    first_line = 2 if header else 1
    m = _CONV.search(msg)
    if m:
        col = names[int(m.group(1))] if int(m.group(1)) < len(names) else None
        if col is not None:
            return _locate_value(src, col, types.get(col), names, header, delimiter, first_line)
    if _COUNT.search(msg) or "CSV parse error" in msg or "straddl" in msg:  # straddling: a row > BLOCK
        found = _scan_lines(src, len(names), delimiter)
        if found:
            return found
    if "UTF8" in msg or "UTF-8" in msg:
        found = _scan_lines(src, len(names), delimiter)
        if found:
            return found
        return InputError(src.display, "not UTF-8 text (binary data?)")
    return InputError(src.display, f"cannot read CSV: {msg}")


def _locate_value(src, col, typ, names, header, delimiter, first_line) -> InputError:
    """Re-read one column as text and find the first value that is not a ``typ``."""
    try:
        rows = read_csv(src, names=names, header=header, types={col: pa.string()}, include=[col],
                        delimiter=delimiter)
    except InputError as inner:
        return inner
    text = rows.table.column(col).to_numpy(zero_copy_only=False).astype(object)
    kind = "an integer" if typ is not None and pa.types.is_integer(typ) else "a number"
    pattern = r"^\s*[+-]?\d+\s*$" if kind == "an integer" else None
    for i, v in enumerate(text):
        v = "" if v is None else str(v)
        if v.strip() == "":
            continue
        ok = bool(re.match(pattern, v)) if pattern else _is_float(v)
        if not ok:
            return InputError(src.display, f"cannot read {_short(v)} as {kind}", line=int(rows.lines[i]),
                              column=col)
        if pattern and not INT64[0] <= int(v) <= INT64[1]:
            return InputError(src.display, f"{_short(v)} is beyond the 64-bit integer range (a time in the wrong "
                                           "unit, or a corrupt value?)", line=int(rows.lines[i]), column=col)
    return InputError(src.display, f"invalid value in column {col!r}")


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


class LineTooLong(Exception):
    """A line longer than :data:`MAX_LINE` bytes; ``line`` is its number."""

    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


def _physical_lines(stream, chunk: int = 1 << 20, max_line: int | None = None):
    """Raw lines split like pyarrow splits rows: at \\r\\n, \\r or \\n.

    Raises :class:`LineTooLong` for a line longer than ``max_line`` (default :data:`MAX_LINE`),
    so a file with no line ends costs one line's worth of memory, not the whole file.
    """
    max_line = MAX_LINE if max_line is None else max_line
    carry, n = b"", 0
    while True:
        block = stream.read(chunk)
        if not block:
            break
        data = carry + block
        parts = re.split(rb"\r\n|\r|\n", data)
        carry = parts.pop()
        if data.endswith(b"\r"):  # maybe the first half of \r\n
            carry = parts.pop() + b"\r" if parts else b"\r"
        n += len(parts)
        if max(map(len, parts), default=0) > max_line:
            raise LineTooLong(n - len(parts) + 1 + next(i for i, p in enumerate(parts) if len(p) > max_line))
        if len(carry) > max_line:
            raise LineTooLong(n + 1)
        yield from parts
    if carry:  # one line, perhaps with a trailing \r
        yield carry[:-1] if carry.endswith(b"\r") else carry


def _scan_lines(src: Source, expected: int, delimiter: str) -> InputError | None:
    """Walk the raw lines for the first that is not UTF-8 or has the wrong field count."""
    try:
        with src.open() as stream:
            for n, raw in _numbered(_physical_lines(stream), src):
                try:
                    text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError:
                    return InputError(src.display, "not UTF-8 text (binary data?)", line=n)
                if not text.strip():
                    continue
                try:
                    fields = next(csv.reader([text], delimiter=delimiter), [])
                except csv.Error as exc:
                    return InputError(src.display, f"malformed CSV line ({exc})", line=n)
                if len(fields) != expected:
                    return InputError(src.display, f"expected {expected} fields, found {len(fields)}", line=n)
    finally:
        src.close()
    return None


def _numbered(lines, src: Source):
    """``enumerate(lines, 1)``, a too-long line turned into a one-line InputError naming it."""
    try:
        for n, raw in enumerate(lines, 1):
            yield n, raw
    except LineTooLong as exc:
        raise _too_long(src, exc.line) from None


def _short(v: str, n: int = 40) -> str:
    v = v if len(v) <= n else v[: n - 1] + "…"
    return repr(v)
