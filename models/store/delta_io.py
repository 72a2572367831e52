"""Reading and writing one Delta table of a store (delta-rs writes, pyarrow reads).

Reads list the files of one table snapshot (``get_add_actions``: path, partition values and
per-file min/max statistics), prune them by partition and time, and read them with pyarrow
directly -- not through ``DeltaTable.to_pyarrow_dataset()``, whose scanner threads can outlive
interpreter teardown and abort the process at exit (apache/arrow#34314). Writes are delta-rs
commits: each is atomic, concurrent writers are serialised by Delta's optimistic concurrency, and a
commit that lost a race is retried on the new snapshot.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from .errors import DamagedFile, StoreDamagedError, first_line
from .location import Location
from .tables import TS, TableSpec

RETRIES = 12
# zstd: sorted timestamps, repeated symbols and prices compress to a few bytes per event.
# 128k-row groups: a few days of an exchange each (tables.liq_table sorts by day), so reading a day
# decodes ~1/10 of its month file instead of all of it (0.12 s instead of 1.8 s for a 2M-row month).
WRITER = WriterProperties(compression="ZSTD", compression_level=3, max_row_group_size=131_072)
TARGET_FILE_BYTES = 128 * 1024 * 1024


def open_table(loc: Location, spec: TableSpec, version: int | None = None) -> DeltaTable | None:
    """The table's latest (or ``version``) snapshot; None if it was never written."""
    uri = loc.table(spec.name)
    try:
        return DeltaTable(uri, version=version, storage_options=loc.storage_options)
    except TableNotFoundError:
        return None


@dataclass(frozen=True)
class DataFile:
    """One data file of a snapshot: where, its partition values and its time statistics (µs)."""

    uri: str
    partition: dict[str, str]
    rows: int
    ts_min: int | None
    ts_max: int | None
    size: int


def files(loc: Location, spec: TableSpec, dt: DeltaTable | None, ts_col: str = "ts") -> list[DataFile]:
    """Every data file of the snapshot ``dt`` (sorted by path)."""
    if dt is None:
        return []
    actions = pa.table(dt.get_add_actions(flatten=True))
    if not actions.num_rows:
        return []
    names = actions.column_names
    paths = actions.column("path").to_pylist()
    parts = {p: actions.column(f"partition.{p}").to_pylist() for p in spec.partitions if f"partition.{p}" in names}

    def stat(kind: str) -> list:
        col = f"{kind}.{ts_col}"
        if col not in names:
            return [None] * len(paths)
        return pc.cast(actions.column(col).cast(TS), pa.int64()).to_pylist()
    lo, hi = stat("min"), stat("max")
    rows = actions.column("num_records").to_pylist()
    sizes = actions.column("size_bytes").to_pylist()
    root = unquote(dt.table_uri.rstrip("/"))  # a URL: a space or an ü in the store path is percent-encoded
    out = []
    for i, p in enumerate(paths):
        uri = p if "://" in p or p.startswith("/") else f"{root}/{unquote(p)}"
        if uri.startswith("file://"):
            uri = uri[len("file://"):]
        out.append(DataFile(uri, {k: v[i] for k, v in parts.items()}, rows[i] or 0, lo[i], hi[i], sizes[i] or 0))
    return sorted(out, key=lambda f: f.uri)


def prune(data: list[DataFile], *, start_us: int | None = None, end_us: int | None = None,
          where: dict[str, Iterable[str]] | None = None) -> list[DataFile]:
    """Files that can hold rows with ``start <= ts < end`` and partition values in ``where``."""
    keep = []
    sets = {k: set(v) for k, v in (where or {}).items()}
    for f in data:
        if any(f.partition.get(k) not in v for k, v in sets.items()):
            continue
        if start_us is not None and f.ts_max is not None and f.ts_max < start_us:
            continue
        if end_us is not None and f.ts_min is not None and f.ts_min >= end_us:
            continue
        keep.append(f)
    return keep


def read(loc: Location, spec: TableSpec, data: list[DataFile], *, columns: list[str] | None = None,
         row_filter=None, kind: str | None = None, on_damage: Callable[[DamagedFile], None] | None = None,
         dictionary: tuple[str, ...] = ()) -> pa.Table:
    """The rows of ``data`` (files of one snapshot) in ``spec.schema`` (or ``columns`` of it), partition
    columns restored from the file listing. A file that cannot be read is a one-line
    :class:`StoreDamagedError` naming it, or, with ``on_damage``, handed there and left out."""
    want = columns or spec.schema.names
    physical = [c for c in want if c not in spec.partitions]
    file_schema = pa.schema([spec.schema.field(c).with_type(pa.dictionary(pa.int32(), pa.string()))
                             if c in dictionary else spec.schema.field(c)
                             for c in spec.schema.names if c not in spec.partitions])
    pieces = []
    groups: dict[tuple, list[DataFile]] = {}
    for f in data:
        groups.setdefault(tuple(f.partition.get(p) for p in spec.partitions), []).append(f)
    for key, group in groups.items():
        try:
            table = _read_group(loc, group, file_schema, physical, row_filter)
        except (OSError, pa.ArrowException) as exc:
            table = _read_each(loc, group, file_schema, physical, row_filter, kind or spec.name, on_damage, exc)
        for p, value in zip(spec.partitions, key):
            if p in want:
                table = table.append_column(spec.schema.field(p), pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
        pieces.append(table.select(want))
    if not pieces:
        return pa.schema([spec.schema.field(c) for c in want]).empty_table()
    return pa.concat_tables(pieces)


def _read_group(loc: Location, group: list[DataFile], schema: pa.Schema, columns: list[str], row_filter):
    dictionary = {f.name for f in schema if pa.types.is_dictionary(f.type)}  # read as codes: no string per row
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary)) \
        if dictionary else "parquet"
    dataset = ds.dataset([loc.fs_path(f.uri) for f in group], schema=schema, format=fmt,
                         filesystem=loc.filesystem)
    for fragment in dataset.get_fragments():  # footers the scan reads anyway (cached in the fragment)
        missing = [c for c in schema.names if c not in fragment.physical_schema.names]
        if missing:  # pyarrow would read a foreign file's rows as nulls, silently: it is damaged
            raise pa.ArrowInvalid(f"wrong schema: no column {missing[0]!r}")
    try:
        return dataset.to_table(columns=columns, filter=row_filter, use_threads=True)
    except pa.ArrowNotImplementedError:
        if row_filter is None:
            raise
        # delta-rs MERGE writes string columns as string_view, and pyarrow cannot compare their
        # statistics with a string filter ("no kernel matching input types (string, string_view)"):
        # read those files whole and filter in memory.
        return dataset.to_table(use_threads=True).filter(row_filter).select(columns)


def _read_each(loc, group, schema, columns, row_filter, kind, on_damage, first_exc):
    """Read a group file by file to name the one that fails."""
    out = []
    for f in group:
        try:
            out.append(_read_group(loc, [f], schema, columns, row_filter))
        except (OSError, pa.ArrowException) as exc:
            reason = first_line(exc)
            if on_damage is None:
                raise StoreDamagedError(f.uri, reason) from None
            on_damage(DamagedFile(f.uri, reason, kind, f.partition.get("exchange"), None,
                                  f.partition.get("interval"), f.partition.get("month")))
    if not out:
        return schema.empty_table().select(columns)
    return pa.concat_tables(out)


def window_filter(start_us: int | None, end_us: int | None, col: str = "ts", also=None):
    """``start <= col < end`` (either bound None: open) as a pyarrow filter, ANDed with ``also``; None if
    nothing is filtered."""
    flt = also
    for cond in ((pc.field(col) >= pa.scalar(start_us, TS)) if start_us is not None else None,
                 (pc.field(col) < pa.scalar(end_us, TS)) if end_us is not None else None):
        if cond is not None:
            flt = cond if flt is None else flt & cond
    return flt


def verify(loc: Location, f: DataFile) -> str | None:
    """What is wrong with one data file, read in full with page checksums (None: nothing)."""
    try:
        with loc.filesystem.open_input_file(loc.fs_path(f.uri)) as fh:
            table = pq.read_table(fh, page_checksum_verification=True)
        if table.num_rows != f.rows:
            return f"holds {table.num_rows} rows, the table log says {f.rows}"
    except (OSError, pa.ArrowException) as exc:
        return first_line(exc)
    return None


# -- writing -------------------------------------------------------------------------
def _props(meta: dict | None) -> CommitProperties:
    return CommitProperties(custom_metadata={"liqscope": "1", **(meta or {})}, max_commit_retries=RETRIES)


def retrying(fn: Callable[[], object], attempts: int = RETRIES):
    """``fn()`` again (on a fresh snapshot) when a concurrent commit won the race."""
    for i in range(attempts):
        try:
            return fn()
        except CommitFailedError:
            if i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1) + np.random.default_rng().uniform(0, 0.05))


def append(loc: Location, spec: TableSpec, table: pa.Table, meta: dict | None = None) -> None:
    """Add rows as one commit (creating the table on first write)."""
    retrying(lambda: write_deltalake(loc.table(spec.name), table, mode="append",
                                     partition_by=list(spec.partitions) or None,
                                     storage_options=loc.storage_options, writer_properties=WRITER,
                                     target_file_size=TARGET_FILE_BYTES, commit_properties=_props(meta)))


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def partition_predicate(spec: TableSpec, table: pa.Table, alias: str | None = None) -> str:
    """``exchange IN (...) AND month IN (...)`` for the partitions ``table``'s rows fall in."""
    terms = []
    for p in spec.partitions:
        values = sorted(set(table.column(p).to_pylist()))
        col = f"{alias}.{p}" if alias else p
        terms.append(f"{col} IN ({', '.join(sql_literal(v) for v in values)})")
    return " AND ".join(terms)


def absent(loc: Location, spec: TableSpec, table: pa.Table) -> np.ndarray:
    """Which rows of ``table`` have a key the table does not hold: an anti-join against only the files
    that can hold them (partition and time statistics), reading key columns only."""
    dt = open_table(loc, spec)
    if dt is None or not table.num_rows:
        return np.ones(table.num_rows, dtype=bool)
    ts_col = next((c for c in ("ts", "start") if c in spec.schema.names), None)
    lo = hi = None
    if ts_col is not None:  # the time the rows span prunes files by their statistics
        ts = table.column(ts_col).cast(pa.int64()).to_numpy()
        lo, hi = int(ts.min()), int(ts.max()) + 1
    where = {p: set(table.column(p).to_pylist()) for p in spec.partitions}
    data = prune(files(loc, spec, dt, ts_col=ts_col or "ts"), start_us=lo, end_us=hi, where=where)
    if not data:
        return np.ones(table.num_rows, dtype=bool)
    keys = list(spec.key)
    held = read(loc, spec, data, columns=keys, row_filter=window_filter(lo, hi, ts_col) if ts_col else None)
    if not held.num_rows:
        return np.ones(table.num_rows, dtype=bool)
    probe = table.select(keys).append_column("_row", pa.array(np.arange(table.num_rows)))
    hit = probe.join(held.append_column("_held", pa.array(np.ones(held.num_rows, dtype=np.int8))),
                     keys=keys, join_type="inner", use_threads=True)
    out = np.ones(table.num_rows, dtype=bool)
    out[hit.column("_row").to_numpy()] = False
    return out


def insert_new(loc: Location, spec: TableSpec, table: pa.Table, meta: dict | None = None) -> int:
    """Insert the rows of ``table`` whose key the table does not hold yet (one commit; none if nothing is
    new): an idempotent append. Returns how many rows were inserted. (An anti-join then a blind append:
    one scan of the files concerned, where a MERGE would scan them twice; two processes importing the
    very same rows at the same instant could both add them.)"""
    if not table.num_rows:
        return 0
    fresh = absent(loc, spec, table)
    if fresh.any():
        append(loc, spec, table.filter(pa.array(fresh)), meta)
    return int(fresh.sum())


def upsert(loc: Location, spec: TableSpec, table: pa.Table, meta: dict | None = None) -> tuple[int, int]:
    """Insert new keys, overwrite the values of held ones: (inserted, updated)."""
    if not table.num_rows:
        return 0, 0
    if open_table(loc, spec) is None:
        return insert_new(loc, spec, table, meta), 0
    same = TableSpec(spec.name, spec.schema, spec.partitions, tuple(spec.schema.names))
    changed = absent(loc, same, table)  # rows held with the very same values: nothing to write
    if not changed.any():
        return 0, 0
    table = table.filter(pa.array(changed))
    on = partition_predicate(spec, table, "t") + " AND " + " AND ".join(f"t.{k} = s.{k}" for k in spec.key)

    def run():
        target = open_table(loc, spec)
        res = (target.merge(table, predicate=on, source_alias="s", target_alias="t", writer_properties=WRITER,
                            commit_properties=_props(meta))
               .when_matched_update_all().when_not_matched_insert_all().execute())
        return int(res.get("num_target_rows_inserted", 0)), int(res.get("num_target_rows_updated", 0))
    return retrying(run)


def replace_where(loc: Location, spec: TableSpec, table: pa.Table, predicate: str, meta: dict | None = None) -> None:
    """Atomically swap the rows matching ``predicate`` for ``table`` (one commit)."""
    retrying(lambda: write_deltalake(loc.table(spec.name), table, mode="overwrite", predicate=predicate,
                                     partition_by=list(spec.partitions) or None,
                                     storage_options=loc.storage_options, writer_properties=WRITER,
                                     target_file_size=TARGET_FILE_BYTES, commit_properties=_props(meta)))


def delete_where(loc: Location, spec: TableSpec, predicate: str, meta: dict | None = None) -> int:
    dt = open_table(loc, spec)
    if dt is None:
        return 0

    def run():
        target = open_table(loc, spec)
        return int(target.delete(predicate, writer_properties=WRITER,
                                 commit_properties=_props(meta)).get("num_deleted_rows", 0))
    return retrying(run)


def new_writer_id() -> str:
    return uuid.uuid4().hex[:12]
