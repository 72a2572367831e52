"""Fast CSV reading with pyarrow, and exact line numbers when something is wrong.

The fast path reads typed columns with ``pyarrow.csv.open_csv`` in blocks;
after each block the task (:mod:`liqscope.models.progress`) gets a step, in
raw bytes of the file read so far, and may cancel. Empty lines are kept as
rows, so row *i* is physical line ``first_line + i`` and any later check can
name the line. Only when pyarrow refuses the file does a slower second pass
find the offending line and column.
"""
from __future__ import annotations

import csv
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..progress import Task
from .errors import InputError
from .rows import Rows
from .source import Source

BLOCK = 1 << 22


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
    """Read ``src`` with the given column ``names`` (the header line, if any, is skipped).

    ``task.progress(raw bytes read, file size)`` after every block; raises
    :class:`~liqscope.models.progress.Cancelled` there if the caller cancelled.
    """
    include = include or names
    read = pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0, block_size=BLOCK)
    parse = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)
    conv = pacsv.ConvertOptions(column_types={k: v for k, v in types.items() if k in include},
                                include_columns=include, strings_can_be_null=False,
                                quoted_strings_can_be_null=False)
    if header and _only_header(src):
        empty = pa.table({n: pa.array([], types.get(n, pa.string())) for n in include})
        return Rows(src.display, empty, np.zeros(0, dtype=np.int64))
    batches = []
    try:
        with src.open() as stream:
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=conv)
            for batch in reader:
                batches.append(batch)
                if task is not None:
                    task.progress(min(src.position(), src.size), src.size)
            schema = reader.schema
    except pa.ArrowInvalid as exc:
        raise _diagnose(src, exc, names=names, header=header, types=types, delimiter=delimiter) from None
    finally:
        src.close()
    table = pa.Table.from_batches(batches, schema=schema)
    first_line = 2 if header else 1
    rows = Rows(src.display, table, first_line + np.arange(table.num_rows, dtype=np.int64))
    return rows.drop_blank()


def _only_header(src: Source) -> bool:
    """True when the whole file is one line (pyarrow cannot skip a header with no line end)."""
    from .source import HEAD_BYTES

    if len(src.head) >= HEAD_BYTES:
        return False
    return len([ln for ln in re.split(rb"\r\n|\r|\n", src.head) if ln.strip()]) <= 1


_COUNT = re.compile(r"Expected (\d+) columns?, got (\d+)")
_CONV = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", re.S)


def _diagnose(src: Source, exc: Exception, *, names, header, types, delimiter) -> InputError:
    """Turn pyarrow's complaint into an InputError naming line and column where possible."""
    try:
        return _locate(src, exc, names=names, header=header, types=types, delimiter=delimiter)
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
    if _COUNT.search(msg) or "CSV parse error" in msg:
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
    return InputError(src.display, f"invalid value in column {col!r}")


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _physical_lines(stream, chunk: int = 1 << 20):
    """Raw lines split like pyarrow splits rows: at \\r\\n, \\r or \\n."""
    carry = b""
    while True:
        block = stream.read(chunk)
        if not block:
            break
        data = carry + block
        parts = re.split(rb"\r\n|\r|\n", data)
        carry = parts.pop()
        if data.endswith(b"\r"):  # maybe the first half of \r\n
            carry = parts.pop() + b"\r" if parts else b"\r"
        yield from parts
    if carry:  # one line, perhaps with a trailing \r
        yield carry[:-1] if carry.endswith(b"\r") else carry


def _scan_lines(src: Source, expected: int, delimiter: str) -> InputError | None:
    """Walk the raw lines for the first that is not UTF-8 or has the wrong field count."""
    try:
        with src.open() as stream:
            for n, raw in enumerate(_physical_lines(stream), 1):
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


def _short(v: str, n: int = 40) -> str:
    v = v if len(v) <= n else v[: n - 1] + "…"
    return repr(v)
