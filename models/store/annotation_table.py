"""The store's ``annotations`` table: chart levels, event marks and ranges (:mod:`..annotations`).

One Delta table under the store root (a local folder or ``s3://``), partitioned by ``kind``, one row per
annotation id. Saving is an upsert on the id (:func:`.delta_io.upsert`, one commit): saving the same
annotation again changes nothing, an edited one replaces its row. Times are µs UTC like every table of
the store; a level's price/asset/exchange, an event's ``at`` and a range's ``range_start``/``range_end``
are null for the other kinds. (The columns are not named ``ts``/``start``: delta_io prunes by those.)
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa

from ..annotations import Annotation, AnnotationError
from . import delta_io
from .errors import store_errors
from .tables import TS, TableSpec

NAME = "annotations"
SCHEMA = pa.schema([
    ("id", pa.string()), ("kind", pa.string()), ("text", pa.string()), ("color", pa.string()),
    ("asset", pa.string()), ("price", pa.float64()), ("exchange", pa.string()),
    ("at", TS), ("range_start", TS), ("range_end", TS), ("created", TS), ("updated", TS),
])
SPEC = TableSpec(NAME, SCHEMA, ("kind",), ("id",))
_TIMES = {"at": "at", "range_start": "start", "range_end": "end", "created": "created", "updated": "updated"}


def _us(t: pd.Timestamp | None) -> int | None:
    return None if t is None else int(pd.Timestamp(t).as_unit("ns").value) // 1000


def to_table(items: list[Annotation]) -> pa.Table:
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for a in items:
        for name in ("id", "kind", "text", "color", "asset", "price", "exchange"):
            cols[name].append(getattr(a, name))
        for col, attr in _TIMES.items():
            cols[col].append(_us(getattr(a, attr)))
    arrays = {n: (pa.array(v, pa.int64()).cast(TS) if SCHEMA.field(n).type == TS else pa.array(v, SCHEMA.field(n).type))
              for n, v in cols.items()}
    return pa.table(arrays, schema=SCHEMA)


def from_table(table: pa.Table) -> list[Annotation]:
    out = []
    for row in table.to_pylist():
        d = {"id": row["id"], "kind": row["kind"], "text": row["text"] or "", "color": row["color"]}
        for name in ("asset", "price", "exchange"):
            if row[name] is not None:
                d[name] = row[name]
        for col, attr in _TIMES.items():
            if row[col] is not None:
                d[attr] = pd.Timestamp(row[col]).tz_convert("UTC") if pd.Timestamp(row[col]).tzinfo \
                    else pd.Timestamp(row[col], tz="UTC")
        try:
            out.append(Annotation.from_dict(d))
        except AnnotationError:
            continue  # a row another tool wrote wrongly: left out, never a crash
    return out


def load_annotations(store) -> list[Annotation]:
    """Every annotation of ``store`` (oldest first); none when the table was never written."""
    loc = store.location
    with store_errors(str(loc), "read"):
        dt = delta_io.open_table(loc, SPEC)
        if dt is None:
            return []
        table = delta_io.read(loc, SPEC, delta_io.files(loc, SPEC, dt, ts_col="created"))
    return sorted(from_table(table), key=lambda a: (a.created, a.id))


def save_annotation(store, a: Annotation) -> Annotation:
    """Insert ``a``, or replace the held annotation with its id (one commit; nothing if unchanged)."""
    if a.readonly:
        raise AnnotationError(f"annotation {a.id} belongs to the demo and is read-only")
    loc = store.location
    store._require_current()
    with store_errors(str(loc), "write to"):
        held = _held_kind(store, a.id)
        if held is not None and held != a.kind:
            raise AnnotationError(f"annotation {a.id} is a {held}, not a {a.kind}: delete it and add another")
        store._init_meta()
        delta_io.upsert(loc, SPEC, to_table([a]), {"liqscope.op": f"annotation {a.id}"})
    return a


def delete_annotation(store, annotation_id: str) -> None:
    """Remove the annotation ``annotation_id`` (one commit); a one-line AnnotationError if there is none."""
    loc = store.location
    with store_errors(str(loc), "write to"):
        removed = delta_io.delete_where(loc, SPEC, f"id = {delta_io.sql_literal(annotation_id)}",
                                        {"liqscope.op": f"delete annotation {annotation_id}"})
    if not removed:
        raise AnnotationError(f"no annotation with id {str(annotation_id)[:40]!r} in the store at {loc}")


def _held_kind(store, annotation_id: str) -> str | None:
    loc = store.location
    dt = delta_io.open_table(loc, SPEC)
    if dt is None:
        return None
    import pyarrow.compute as pc

    t = delta_io.read(loc, SPEC, delta_io.files(loc, SPEC, dt, ts_col="created"), columns=["id", "kind"],
                      row_filter=pc.field("id") == annotation_id)
    return t.column("kind")[0].as_py() if t.num_rows else None


__all__ = ["NAME", "SCHEMA", "SPEC", "delete_annotation", "load_annotations", "save_annotation"]
