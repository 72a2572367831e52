"""Fingerprints of a partition's raw files, and the listings behind the fingerprints this process computed.

Every derived table (hourly/daily rollups, per-minute rollups) is stamped with the fingerprint of the raw
liquidation files it came from, and refreshed incrementally from the difference between the listing its
fingerprint stands for and the current one.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from . import delta_io, provenance

DAY_US = 86_400_000_000


def fingerprint(data: list[delta_io.DataFile]) -> str:
    """Identifies a partition's raw content: Delta data files are immutable and uniquely named."""
    names = sorted(f.uri.rsplit("/", 1)[-1] for f in data)
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


# Incremental refresh. A partition's rollup computed from the file set F_old is right for F_new on every day
# no file of the symmetric difference F_old ^ F_new holds rows of (files are immutable; their time statistics
# bound their rows): those days' raw rows are the same in both snapshots. So a refresh recomputes only the
# days the difference touches -- a recorder commit touches one -- and carries the other days' rows, restamped
# with the new fingerprint, in the same single commit. F_old is known only as a fingerprint in the table; the
# file sets behind the fingerprints this process computed are remembered here (fingerprints name file sets
# exactly: Delta data files are uniquely named), so any other case falls back to a whole recompute.
INCREMENTAL_MAX_DAYS = 7  # more days touched than this: recompute the partition whole
_LISTINGS: OrderedDict[tuple[str, str, str, str], tuple[tuple[str, int | None, int | None], ...]] = OrderedDict()
_LISTINGS_MAX = 512
_LISTINGS_LOCK = threading.Lock()


def remember(table_uri: str, key: tuple[str, str], fp: str, part: list[delta_io.DataFile]) -> None:
    with _LISTINGS_LOCK:
        _LISTINGS[(table_uri, *key, fp)] = tuple((f.uri, f.ts_min, f.ts_max) for f in part)
        _LISTINGS.move_to_end((table_uri, *key, fp))
        while len(_LISTINGS) > _LISTINGS_MAX:
            _LISTINGS.popitem(last=False)


def recall(table_uri: str, key: tuple[str, str], fp: str):
    with _LISTINGS_LOCK:
        return _LISTINGS.get((table_uri, *key, fp))


def touched_days(old: tuple[tuple[str, int | None, int | None], ...], new: list[delta_io.DataFile]) -> set[int] | None:
    """Day starts (µs) the files of one listing but not the other hold rows of; None if a file has no time
    statistics."""
    a = {u: (lo, hi) for u, lo, hi in old}
    b = {f.uri: (f.ts_min, f.ts_max) for f in new}
    days: set[int] = set()
    for uri in a.keys() ^ b.keys():
        lo, hi = a.get(uri) or b[uri]
        if lo is None or hi is None:
            return None
        first, last = lo - lo % DAY_US, hi - hi % DAY_US
        if (last - first) // DAY_US >= INCREMENTAL_MAX_DAYS:
            return None
        days.update(range(first, last + DAY_US, DAY_US))
    return days


def day_files(part: list[delta_io.DataFile], days: set[int]):
    """The files of ``part`` that hold rows of ``days`` (day starts, µs), and the row filter for those days:
    what a refresh rereads for the days :func:`touched_days` found."""
    starts, ends = provenance.merge_spans(np.array(sorted(days), dtype=np.int64),
                                          np.array(sorted(days), dtype=np.int64) + DAY_US)
    flt, data = None, []
    for a, b in zip(starts.tolist(), ends.tolist()):
        cond = delta_io.window_filter(a, b)
        flt = cond if flt is None else flt | cond
        data += [f for f in delta_io.prune(part, start_us=a, end_us=b) if f not in data]
    return data, flt
