"""Arrow schemas of the store's Parquet files and the merge/dedupe rules.

Merging is vectorised with ``np.lexsort``: rows from the existing partition
come first (tag -1), then each appended part in order, so "new" means "first
seen", and a re-import finds nothing new and rewrites nothing.

Files are written with Parquet page checksums (CRC32 per page) and every read
verifies them and the file's schema: a truncated, empty, foreign or bit-flipped
file raises :class:`Damaged` naming it, instead of a bare pyarrow error or
silently different numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals

from ..schema import SIDES, side_categorical

TS = pa.timestamp("ns", tz="UTC")
DICT = pa.dictionary(pa.int32(), pa.string())

LIQ_SCHEMA = pa.schema([
    ("ts", TS), ("exchange", DICT), ("symbol", DICT), ("asset", DICT), ("side", DICT),
    ("price", pa.float64()), ("qty", pa.float64()), ("notional_usd", pa.float64()),
])
CANDLE_SCHEMA = pa.schema([
    ("ts", TS), ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()),
    ("close", pa.float64()), ("volume", pa.float64()),
    ("exchange", DICT), ("symbol", DICT), ("interval", DICT), ("asset", DICT),
])
GAP_SCHEMA = pa.schema([("exchange", pa.string()), ("start", TS), ("end", TS), ("reason", pa.string())])
OHLCV = ["open", "high", "low", "close", "volume"]


def _dict_array(values: pd.Series) -> pa.Array:
    """Dictionary-encoded strings straight from a Categorical's codes (no per-row strings)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array.remove_unused_categories()
        return pa.DictionaryArray.from_arrays(pa.array(np.asarray(cat.codes, dtype=np.int32)),
                                              pa.array(np.asarray(cat.categories.astype(str), dtype=object),
                                                       pa.string()))
    return pa.array(values.astype(str).to_numpy(dtype=object), pa.string()).dictionary_encode().cast(DICT)


def _ts_array(values: pd.Series) -> pa.Array:
    ns = pd.DatetimeIndex(values).as_unit("ns").asi8
    return pa.array(ns, pa.int64()).cast(TS)


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A frame with the schema's columns as an Arrow table of exactly that schema."""
    arrays = []
    for f in schema:
        col = frame[f.name]
        if f.type == TS:
            arrays.append(_ts_array(col))
        elif f.type == DICT:
            arrays.append(_dict_array(col))
        else:
            arrays.append(pa.array(col.to_numpy(), f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write and fsync one Parquet file (zstd; row groups sized for time pruning; page checksums)."""
    import os

    with open(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", row_group_size=65_536, write_page_checksum=True)
        fh.flush()
        os.fsync(fh.fileno())


# -- reading, checked ------------------------------------------------------------
class Damaged(Exception):
    """A store file that cannot be read as what it must hold; ``reason`` says what is wrong, in a few words."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


# Page checksums are verified wherever a page is read (pages written without one are read as they are).
CHECKED = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True))
# What pyarrow raises for a file that is not the Parquet it should be (a bad footer, thrift, page,
# compression, checksum or size); an OSError with an errno is the OS refusing, not damage.
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError, IndexError, MemoryError)


def _damage(path: Path, exc: BaseException) -> BaseException:
    """``exc`` as :class:`Damaged` -- unless it is the OS refusing (missing file, permission, I/O error)."""
    if isinstance(exc, Damaged) or (isinstance(exc, OSError) and exc.errno is not None):
        return exc
    return Damaged(path, _reason(path, exc))


def _reason(path: Path, exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        size, head = None, b""
    if size == 0:
        return "empty: 0 bytes"
    if "magic bytes not found" in text.lower() or "size is" in text.lower():
        if head == b"PAR1":
            return f"truncated: {size:,} bytes, the end of the file is missing"
        return f"not a Parquet file: {size:,} bytes of something else"
    if "checksum" in text.lower() or "crc" in text.lower():
        return "page checksum mismatch: bytes changed on disk"
    return f"unreadable: {text[:160]}"


def schema_of(path: Path) -> pa.Schema | None:
    """The schema a store file must have, from where it lives (``gaps/``, ``candles/``, ``liquidations/``)."""
    parts = Path(path).parts
    if len(parts) >= 2 and parts[-2] == "gaps":
        return GAP_SCHEMA
    if len(parts) >= 5 and parts[-5] == "candles":
        return CANDLE_SCHEMA
    if len(parts) >= 4 and parts[-4] == "liquidations":
        return LIQ_SCHEMA
    return None


def check_schema(path: Path, got: pa.Schema, want: pa.Schema) -> None:
    """:class:`Damaged` unless ``got`` has every column of ``want``, of the same type."""
    missing = [f.name for f in want if got.get_field_index(f.name) < 0]
    if missing:
        found = ", ".join(got.names[:6]) + (", ..." if len(got.names) > 6 else "")
        raise Damaged(path, f"wrong schema: no column {', '.join(missing)} (it has {found or 'no columns'})")
    for f in want:
        t = got.field(f.name).type
        if t != f.type:
            raise Damaged(path, f"wrong schema: column {f.name} is {t}, not {f.type}")


def footer(path: Path, schema: pa.Schema) -> pq.FileMetaData:
    """The file's footer, once it is known to be a readable Parquet file of ``schema``."""
    try:
        md = pq.read_metadata(path)
        got = md.schema.to_arrow_schema()
    except _READ_ERRORS as exc:
        raise _damage(path, exc) from None
    check_schema(path, got, schema)
    return md


def _scan(paths: list[Path], schema: pa.Schema, columns, flt) -> pa.Table:
    return ds.dataset([str(p) for p in paths], schema=schema, format=CHECKED).to_table(columns=columns, filter=flt)


def read(paths: list[Path], schema: pa.Schema, columns: list[str] | None = None, flt=None,
         on_damage=None) -> pa.Table:
    """The rows of ``paths`` matching ``flt`` in one dataset scan, every file's footer and schema
    checked first and every page read verified against its checksum.

    A damaged file raises :class:`Damaged` naming it; with ``on_damage`` it is passed there
    instead and left out, and the rest is read.
    """
    good = []
    for p in paths:
        try:
            footer(p, schema)
        except Damaged as exc:
            if on_damage is None:
                raise
            on_damage(exc)
            continue
        good.append(p)
    if not good:
        return schema.empty_table().select(columns or schema.names)
    try:
        return _scan(good, schema, columns, flt)
    except _READ_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        if len(good) == 1:
            err = _damage(good[0], exc)
            if on_damage is None or not isinstance(err, Damaged):
                raise err from None
            on_damage(err)
            return schema.empty_table().select(columns or schema.names)
    parts = []  # a page failed somewhere: find which file, one by one
    for p in good:
        try:
            parts.append(_scan([p], schema, columns, flt))
        except _READ_ERRORS as exc:
            err = _damage(p, exc)
            if on_damage is None or not isinstance(err, Damaged):
                raise err from None
            on_damage(err)
    return pa.concat_tables(parts) if parts else schema.empty_table().select(columns or schema.names)


def verify(path: Path, schema: pa.Schema) -> int:
    """Read all of ``path`` -- footer, schema, every row group, every page checksum -- and return its
    row count; :class:`Damaged` naming what is wrong otherwise."""
    try:
        with pq.ParquetFile(path, page_checksum_verification=True) as pf:
            check_schema(path, pf.schema_arrow, schema)
            rows = 0
            for i in range(pf.metadata.num_row_groups):
                table = pf.read_row_group(i, columns=schema.names)
                rows += table.num_rows
                for f in schema:
                    if f.type == TS and table.column(f.name).null_count:
                        raise Damaged(path, f"rows without a time in column {f.name}")
            if rows != pf.metadata.num_rows:
                raise Damaged(path, f"holds {rows:,} rows where its footer says {pf.metadata.num_rows:,}")
            return rows
    except _READ_ERRORS as exc:
        raise _damage(path, exc) from None


def read_frame(path: Path, schema: pa.Schema | None = None) -> pd.DataFrame:
    """One whole store file as a frame, its schema (``schema``, or the one its folder implies) and
    page checksums checked: a damaged file raises :class:`Damaged`."""
    schema = schema if schema is not None else schema_of(path)
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except _READ_ERRORS as exc:
        raise _damage(path, exc) from None
    if schema is not None:
        check_schema(path, table.schema, schema)
    return table.to_pandas()


def liq_frame_from_table(table: pa.Table) -> pd.DataFrame:
    """Store rows to the canonical liquidation frame (categoricals, side order)."""
    frame = table.to_pandas()
    for col in ("exchange", "symbol", "asset"):
        if not isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype("category")
    frame["side"] = side_categorical(frame["side"].astype(str))
    return frame


# -- merging -------------------------------------------------------------------
def _side_codes(side: pd.Series) -> np.ndarray:
    if isinstance(side.dtype, pd.CategoricalDtype):
        return np.asarray(side.cat.set_categories(list(SIDES)).cat.codes, dtype=np.int8)
    return pd.Categorical(side.astype(str), categories=list(SIDES)).codes.astype(np.int8)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat`` that keeps categorical columns categorical when their categories differ."""
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    cols = {}
    for c in frames[0].columns:
        parts = [f[c] for f in frames]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            cols[c] = union_categoricals([p.array for p in parts], ignore_order=True)
        else:
            cols[c] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(cols)


def merge_liquidations(existing: pd.DataFrame | None, parts: list[tuple[int, pd.DataFrame]]):
    """Union of one partition's rows, deduplicated on (ts, side, price, qty).

    Exchange and symbol are constant within a partition. Returns the merged
    frame (sorted), rows first seen per tag, whether anything changed, and a
    mask of the merged rows that are new.
    """
    df, tags = _stack(existing, parts)
    ts = pd.DatetimeIndex(df["ts"]).as_unit("ns").asi8
    side = _side_codes(df["side"])
    price, qty = df["price"].to_numpy(), df["qty"].to_numpy()
    order = np.lexsort((tags, qty, price, side, ts))
    ts, side, price, qty, tags = ts[order], side[order], price[order], qty[order], tags[order]
    first = np.ones(len(ts), dtype=bool)
    first[1:] = (ts[1:] != ts[:-1]) | (side[1:] != side[:-1]) | (price[1:] != price[:-1]) | (qty[1:] != qty[:-1])
    new = _count_new(tags[first], [t for t, _ in parts])
    changed = any(new.values())
    merged = df.iloc[order[first]].reset_index(drop=True)
    return merged, new, changed, tags[first] >= 0


def _stack(existing: pd.DataFrame | None, parts: list[tuple[int, pd.DataFrame]]):
    """All rows in one frame, with each row's tag (-1 for rows already stored)."""
    frames = ([existing] if existing is not None else []) + [p for _, p in parts]
    tags = np.concatenate(
        ([np.full(len(existing), -1)] if existing is not None else [])
        + [np.full(len(p), t) for t, p in parts]
    )
    return concat(frames), tags


def sort_liquidations(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in the store's order: ts, then side, price, qty (deterministic files)."""
    ts = pd.DatetimeIndex(df["ts"]).as_unit("ns").asi8
    order = np.lexsort((df["qty"].to_numpy(), df["price"].to_numpy(), _side_codes(df["side"]), ts))
    return df.iloc[order].reset_index(drop=True)


def merge_candles(existing: pd.DataFrame | None, parts: list[tuple[int, pd.DataFrame]]):
    """Union of one series partition keyed by open time; later parts win on values."""
    df, tags = _stack(existing, parts)
    ts = pd.DatetimeIndex(df["ts"]).as_unit("ns").asi8
    order = np.lexsort((tags, ts))
    ts_sorted = ts[order]
    first = np.ones(len(ts), dtype=bool)
    first[1:] = ts_sorted[1:] != ts_sorted[:-1]
    last = np.ones(len(ts), dtype=bool)
    last[:-1] = ts_sorted[1:] != ts_sorted[:-1]
    new = _count_new(tags[order][first], [t for t, _ in parts])
    merged = df.iloc[order[last]].reset_index(drop=True)
    changed = existing is None or len(merged) != len(existing) or not np.array_equal(
        merged[OHLCV].to_numpy(), existing[OHLCV].to_numpy())
    return merged, new, changed


def merge_gaps(existing: pd.DataFrame | None, parts: list[tuple[int, pd.DataFrame]]):
    """Disconnected periods, deduplicated on (exchange, start, end)."""
    frames = ([existing.assign(_tag=-1)] if existing is not None else []) + [p.assign(_tag=t) for t, p in parts]
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["start", "exchange", "end", "_tag"], kind="stable")
    df = df[~df.duplicated(["exchange", "start", "end"], keep="first")]
    new = _count_new(df["_tag"].to_numpy(), [t for t, _ in parts])
    return df.drop(columns="_tag").reset_index(drop=True), new, any(new.values())


def _count_new(first_tags: np.ndarray, tags: list[int]) -> dict[int, int]:
    counts = pd.Series(first_tags).value_counts()
    return {t: int(counts.get(t, 0)) for t in tags}


def diff_replacement(old: pd.DataFrame | None, parts: list[tuple[int, pd.DataFrame]]):
    """Compare the stored rows a replacement covers (``old``) with the rows replacing them.

    Rows equal in every column (ts, side, price, qty, asset, notional; exchange and
    symbol are constant in a partition) are unchanged; anything else is removed or
    added, so a corrected notional counts as one removed plus one added row, and
    replaying the same rows again changes nothing. Returns the replacement rows
    (duplicates dropped), rows added per tag, and a mask of the ``old`` rows removed.
    """
    n_old = 0 if old is None else len(old)
    parts = [(t, p) for t, p in parts if len(p)]
    if not parts:
        return None, {}, np.ones(n_old, dtype=bool)
    df, tags = _stack(old if n_old else None, parts)
    ts = pd.DatetimeIndex(df["ts"]).as_unit("ns").asi8
    side = _side_codes(df["side"])
    price, qty, notional = df["price"].to_numpy(), df["qty"].to_numpy(), df["notional_usd"].to_numpy()
    asset = pd.factorize(df["asset"].astype(str))[0] if not isinstance(df["asset"].dtype, pd.CategoricalDtype) \
        else np.asarray(df["asset"].cat.codes)
    order = np.lexsort((tags, notional, asset, qty, price, side, ts))
    keys = [k[order] for k in (ts, side, price, qty, asset, notional)]
    t = tags[order]
    start = np.ones(len(t), dtype=bool)
    start[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    starts = np.flatnonzero(start)
    group = np.cumsum(start) - 1
    n_old_in = np.add.reduceat((t < 0).astype(np.int64), starts)
    has_new = t[np.append(starts[1:], len(t)) - 1] >= 0  # tags ascend within a group: last is newest
    first_new = (starts + n_old_in)[has_new]
    removed = np.zeros(n_old, dtype=bool)
    removed[order[(t < 0) & ~has_new[group]]] = True
    added = _count_new(t[(starts + n_old_in)[has_new & (n_old_in == 0)]], [tag for tag, _ in parts])
    return df.iloc[order[first_new]].reset_index(drop=True), added, removed
