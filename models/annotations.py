"""Chart annotations (Qt-free): horizontal price levels, event marks and shaded time ranges.

An :class:`Annotation` is one of three kinds:

* ``level``: a price of an asset (optionally on one exchange's price pane), e.g. "$110K resistance";
* ``event``: a moment with a note, e.g. "BTC clears $102K";
* ``range``: a ``[start, end)`` span with a note, e.g. a cascade.

Each has an id (stable: saving it again replaces it), a text, a colour *role* (a name such as
``resistance``; the GUI's theme turns roles into colours, so no colour value lives in the data) and
created/updated times (UTC). :func:`make` builds and checks one; every problem is one line
(:class:`AnnotationError`, a :class:`~.errors.UserError`). The store keeps them in its ``annotations``
table (:mod:`.store.annotation_table`); the demo ships its own, read-only (:func:`demo_annotations`).
"""
from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from .errors import UserError
from .timeutil import TimeParseError, format_time, parse_time

KINDS = ("level", "event", "range")
# colour roles (meaning, not colour): the GUI theme maps each to a colour
ROLES = ("note", "resistance", "support", "info", "muted")
DEFAULT_ROLE = {"level": "resistance", "event": "note", "range": "note"}
MAX_TEXT = 200
ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
ASSET = re.compile(r"^[A-Z0-9]{1,20}$")
EXCHANGE = re.compile(r"^[a-z0-9_.-]{1,40}$")
DEMO_FILE = "annotations.json"


class AnnotationError(UserError):
    """An annotation that cannot be: one line naming the field and what is allowed."""


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("ms")


@dataclass(frozen=True)
class Annotation:
    id: str
    kind: str
    text: str = ""
    color: str = "note"
    asset: str | None = None       # level
    price: float | None = None     # level
    exchange: str | None = None    # level: only on this exchange's price pane (None: any)
    at: pd.Timestamp | None = None     # event
    start: pd.Timestamp | None = None  # range
    end: pd.Timestamp | None = None    # range
    created: pd.Timestamp = field(default_factory=now)
    updated: pd.Timestamp = field(default_factory=now)
    readonly: bool = field(default=False, compare=False)  # the demo's: shown, never stored

    # -- where it is --------------------------------------------------------------
    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The time it covers (an event: one instant); None for a level."""
        if self.kind == "event":
            return self.at, self.at
        if self.kind == "range":
            return self.start, self.end
        return None

    def where(self) -> str:
        """Where it is, in words: ``BTC 110,000 (binance)``, ``2025-05-09T16:43Z``, ``A to B``."""
        if self.kind == "level":
            return f"{self.asset} {self.price:,.8g}" + (f" ({self.exchange})" if self.exchange else "")
        if self.kind == "event":
            return format_time(self.at)
        return f"{format_time(self.start)} to {format_time(self.end)}"

    def edited(self, **changes) -> "Annotation":
        """A checked copy with ``changes`` (text, color, price...) and a new ``updated`` time."""
        if "id" in changes or "kind" in changes:
            raise AnnotationError("an annotation's id and kind cannot change: delete it and add another")
        return check(replace(self, **changes, updated=max(now(), self.created)))

    # -- plain values (JSON, table rows) --------------------------------------------
    def to_dict(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "text": self.text, "color": self.color}
        if self.kind == "level":
            out.update(asset=self.asset, price=self.price, exchange=self.exchange)
        elif self.kind == "event":
            out["at"] = format_time(self.at)
        else:
            out.update(start=format_time(self.start), end=format_time(self.end))
        out.update(created=format_time(self.created), updated=format_time(self.updated))
        if self.readonly:
            out["readonly"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict, *, readonly: bool = False) -> "Annotation":
        if not isinstance(d, dict):
            raise AnnotationError(f"an annotation is an object with a kind, not {type(d).__name__}")
        kind = d.get("kind")
        known = {"id", "kind", "text", "color", "asset", "price", "exchange", "at", "start", "end", "created",
                 "updated", "readonly"}
        extra = sorted(set(d) - known)
        if extra:
            raise AnnotationError(f"annotation: unknown field {extra[0]!r} (fields: {', '.join(sorted(known))})")
        fields = {k: d.get(k) for k in ("asset", "price", "exchange", "at", "start", "end", "created", "updated")
                  if d.get(k) is not None}
        return make(kind, d.get("text", ""), id=d.get("id"), color=d.get("color"), readonly=readonly, **fields)


# -- building and checking ------------------------------------------------------
def _time(name: str, value) -> pd.Timestamp:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise AnnotationError(f"{name}: a time is needed (ISO-8601 UTC, e.g. 2025-05-09T16:43Z)")
    try:
        t = parse_time(value)
    except TimeParseError as exc:
        raise AnnotationError(f"{name}: {exc}") from None
    return t.floor("ms")


def _price(value) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"price {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(p) or p <= 0:
        raise AnnotationError(f"price {str(value)[:40]!r} must be a number > 0")
    return p


def check(a: Annotation) -> Annotation:
    """``a`` if it is a valid annotation (normalised names), else a one-line AnnotationError."""
    if a.kind not in KINDS:
        raise AnnotationError(f"kind {str(a.kind)[:40]!r} is not one of {', '.join(KINDS)}")
    if not isinstance(a.id, str) or not ID.match(a.id):
        raise AnnotationError(f"id {str(a.id)[:40]!r} is not allowed: 1-40 letters, digits, '_' or '-'")
    text = a.text if isinstance(a.text, str) else ("" if a.text is None else str(a.text))
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise AnnotationError(f"text is {len(text)} characters long; at most {MAX_TEXT}")
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise AnnotationError("text must be one line without control characters")
    if a.color not in ROLES:
        raise AnnotationError(f"colour {str(a.color)[:40]!r} is not one of {', '.join(ROLES)}")
    changes: dict = {"text": text}
    if a.kind == "level":
        asset = str(a.asset or "").strip().upper()
        if not ASSET.match(asset):
            raise AnnotationError(f"asset {str(a.asset or '')[:40]!r} is not an asset name like BTC "
                                  "(a level needs --asset)")
        changes.update(asset=asset, price=_price(a.price))
        if a.exchange not in (None, ""):
            ex = str(a.exchange).strip().lower()
            if not EXCHANGE.match(ex):
                raise AnnotationError(f"exchange {str(a.exchange)[:40]!r} is not an exchange name like binance")
            changes["exchange"] = ex
        else:
            changes["exchange"] = None
        changes.update(at=None, start=None, end=None)
    elif a.kind == "event":
        changes.update(at=_time("at", a.at), asset=None, price=None, exchange=None, start=None, end=None)
    else:
        start, end = _time("start", a.start), _time("end", a.end)
        if end <= start:
            raise AnnotationError(f"range end {format_time(end)} is not after its start {format_time(start)}")
        changes.update(start=start, end=end, asset=None, price=None, exchange=None, at=None)
    created, updated = _time("created", a.created), _time("updated", a.updated)
    changes.update(created=created, updated=max(updated, created))
    return replace(a, **changes)


def make(kind: str, text: str = "", *, id: str | None = None, color: str | None = None,
         readonly: bool = False, **where) -> Annotation:
    """A checked annotation: ``make("level", "resistance", asset="BTC", price=110000)``,
    ``make("event", "cross", at="2025-05-09T16:43Z")``, ``make("range", "", start=..., end=...)``."""
    if kind not in KINDS:
        raise AnnotationError(f"kind {str(kind)[:40]!r} is not one of {', '.join(KINDS)}")
    allowed = {"level": {"asset", "price", "exchange"}, "event": {"at"}, "range": {"start", "end"}}[kind]
    allowed |= {"created", "updated"}
    extra = sorted(k for k, v in where.items() if k not in allowed and v is not None)
    if extra:
        raise AnnotationError(f"a {kind} has no {extra[0]} (it takes {', '.join(sorted(allowed - {'created', 'updated'}))})")
    stamp = now()
    where.setdefault("created", stamp)
    where.setdefault("updated", where["created"])
    return check(Annotation(id=id or new_id(), kind=kind, text=text, color=color or DEFAULT_ROLE[kind],
                            readonly=readonly, **where))


def level(asset: str, price: float, text: str = "", *, exchange: str | None = None, **kw) -> Annotation:
    return make("level", text, asset=asset, price=price, exchange=exchange, **kw)


def event(at, text: str = "", **kw) -> Annotation:
    return make("event", text, at=at, **kw)


def time_range(start, end, text: str = "", **kw) -> Annotation:
    return make("range", text, start=start, end=end, **kw)


# -- which ones a view shows ------------------------------------------------------
def in_window(items, start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[Annotation]:
    """Events and ranges touching ``[start, end)`` (levels have no time: all of them)."""
    out = []
    for a in items:
        span = a.span
        if span is None or start is None or end is None or (span[1] >= start and span[0] < end):
            out.append(a)
    return out


def window_around(a: Annotation, *, pad_fraction: float = 0.5,
                  min_pad: pd.Timedelta = pd.Timedelta(minutes=30)) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """A view window that shows ``a`` with room either side (half its length, at least 30 min); None for a
    level (it has no time)."""
    span = a.span
    if span is None:
        return None
    pad = max((span[1] - span[0]) * pad_fraction, min_pad)
    return (span[0] - pad).floor("min"), (span[1] + pad).ceil("min")


# -- JSON files (the demo's, exports) -----------------------------------------------
def read_json(path: str | Path, *, readonly: bool = False) -> list[Annotation]:
    """Annotations from a JSON file (a list of objects, or ``{"annotations": [...]}``); one-line errors."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnnotationError(f"cannot read {p}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise AnnotationError(f"{p} is not JSON: {' '.join(str(exc).split())[:120]}") from None
    stamp = None
    if isinstance(data, dict):  # {"annotations": [...], "created": TIME for entries that give none}
        data, stamp = data.get("annotations"), data.get("created")
    if not isinstance(data, list):
        raise AnnotationError(f"{p}: expected a list of annotations")
    out = []
    for i, d in enumerate(data, 1):
        try:
            if stamp is not None and isinstance(d, dict) and "created" not in d:
                d = {**d, "created": stamp}
            out.append(Annotation.from_dict(d, readonly=readonly))
        except AnnotationError as exc:
            raise AnnotationError(f"{p}: annotation {i}: {exc}") from None
    return out


def demo_annotations() -> list[Annotation]:
    """The seed's events shipped with the demo (``resources/demo/annotations.json``), read-only;
    none if the file is absent."""
    from .paths import demo_dir

    p = demo_dir() / DEMO_FILE
    return read_json(p, readonly=True) if p.exists() else []


__all__ = ["Annotation", "AnnotationError", "DEFAULT_ROLE", "KINDS", "ROLES", "check", "demo_annotations",
           "event", "in_window", "level", "make", "new_id", "read_json", "time_range", "window_around"]
