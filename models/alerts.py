"""Alerts on live liquidations (recording or replaying): rules, their evaluation, the fired-alert log.

Qt-free. The window, ``liqscope record --alert`` and ``liqscope replay --alert`` all evaluate rules here,
in the recorder's or the replay's path, never on a GUI thread:

* :class:`Rule` -- ``single>=1M`` (one liquidation of at least $1M), ``single>=p99.5`` (at least the
  asset's own 99.5th percentile of its recent sizes), ``minute>=5M`` (the liquidations of one UTC minute
  add up to at least $5M), ``cascade`` (a cascade starts); any of them ``@ASSET`` for one asset only.
* :class:`AlertEngine` -- evaluates the rules on batches of events in time order (``feed``), after
  ``seed`` with the history before them (baselines and percentiles need it). Deterministic: the same
  events in the same batches fire the same alerts.
* :class:`AlertMonitor` -- the engine behind a queue on its own thread: ``submit`` never blocks (the
  recorder's journal thread and a replay only put a frame on a queue), fired alerts go to ``on_alert``
  and to a bounded log; nothing is dropped while a consumer (a busy window) is slow.
* :func:`load_settings` / :func:`save_settings` -- the rules and notification choices, as JSON in
  ``<config dir>/alerts.json``.

**Cascade starting** is a streaming version of :mod:`.cascades` (same :class:`~.cascades.Params`): per
asset, a baseline from its trailing ``baseline_days`` of per-minute USD (median and MAD of log10 USD of
active minutes, events per active minute, events per minute), refreshed every ``REBASELINE_MIN`` minutes
of market time; the current minute is *warm*/*hot* by the same thresholds as in batch detection, warm
minutes at most ``gap_minutes`` apart make a run, and a run with a hot minute, ``min_events`` events and
``rate_ratio`` times its expected events is a burst. The first burst that does not overlap (within
``gap_minutes``) a cascade already announced fires ``cascade``; later bursts of other assets join it.
Unlike batch detection, the baseline never sees the rest of the day (it cannot), so a start can differ
by a minute or two from ``liqscope cascades`` for the same history.
"""
from __future__ import annotations

import bisect
import json
import math
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .cascades import DAY_MIN, Params
from .errors import UserError
from .format import usd
from .timeutil import format_time

KINDS = ("single", "minute", "cascade")
RULE_SYNTAX = "single>=SIZE, single>=pNN (the asset's percentile), minute>=SIZE or cascade, each optionally @ASSET"
SIZE_WINDOW = 2000          # recent sizes per asset a percentile rule compares with
MIN_SIZE_SAMPLES = 200      # a percentile rule needs this many sizes of the asset first
REBASELINE_MIN = 60         # cascade baselines are recomputed every so many minutes of market time
LOG_SIZE = 5000             # fired alerts kept in memory
_MIN_NS = 60_000_000_000
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9}
_RULE_RE = re.compile(r"^\s*(single|minute|cascade)\s*(?:>=\s*([^@\s]+))?\s*(?:@\s*([A-Za-z0-9._-]+))?\s*$", re.I)


class RuleError(UserError, ValueError):
    """A rule that does not parse; one line that shows the syntax."""


def parse_size(text: str) -> float:
    """``1000000``, ``1e6``, ``1M``, ``$2.5M``, ``750k`` -> USD."""
    t = text.strip().replace(",", "").replace("_", "").lstrip("$").lower()
    mult = _SUFFIX.get(t[-1:], None) if t and t[-1:].isalpha() else 1.0
    if mult is None:
        raise ValueError(text)
    if t[-1:].isalpha():
        t = t[:-1]
    value = float(t) * mult
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


def _size_text(x: float) -> str:
    for suffix, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div and (x / div) == round(x / div, 3):
            return f"{x / div:g}{suffix}"
    return f"{x:g}"


@dataclass(frozen=True)
class Rule:
    kind: str                      # single | minute | cascade
    usd: float | None = None       # single / minute: at least this many USD
    percentile: float | None = None  # single: at least the asset's own percentile of recent sizes
    asset: str | None = None       # None: every asset (minute: the total of every asset)
    enabled: bool = True

    @property
    def text(self) -> str:
        out = self.kind
        if self.percentile is not None:
            out += f">=p{self.percentile:g}"
        elif self.usd is not None:
            out += f">={_size_text(self.usd)}"
        return out + (f"@{self.asset}" if self.asset else "")

    def describe(self) -> str:
        who = self.asset or ("all assets" if self.kind == "minute" else "any asset")
        if self.kind == "single":
            size = (f"the asset's {self.percentile:g}th percentile of its last {SIZE_WINDOW:,} sizes"
                    if self.percentile is not None else usd(self.usd))
            return f"a single liquidation of at least {size} ({who})"
        if self.kind == "minute":
            return f"liquidations of one UTC minute adding up to at least {usd(self.usd)} ({who})"
        return f"a liquidation cascade starting ({who})"


def parse_rule(text: str, enabled: bool = True) -> Rule:
    m = _RULE_RE.match(text or "")
    if not m:
        raise RuleError(f"alert rule {text!r}: expected {RULE_SYNTAX}")
    kind, size, asset = m.group(1).lower(), m.group(2), m.group(3)
    asset = asset.upper() if asset else None
    if kind == "cascade":
        if size:
            raise RuleError(f"alert rule {text!r}: cascade takes no size (it adapts to each asset's baseline)")
        return Rule("cascade", asset=asset, enabled=enabled)
    if not size:
        raise RuleError(f"alert rule {text!r}: {kind} needs a size, e.g. {kind}>=1M")
    if size.lower().startswith("p"):
        if kind != "single":
            raise RuleError(f"alert rule {text!r}: a percentile applies to single liquidations only")
        try:
            p = float(size[1:])
        except ValueError:
            raise RuleError(f"alert rule {text!r}: percentile {size!r} is not a number like p99.5") from None
        if not 0 < p < 100:
            raise RuleError(f"alert rule {text!r}: the percentile must be between 0 and 100")
        return Rule("single", percentile=p, asset=asset, enabled=enabled)
    try:
        value = parse_size(size)
    except ValueError:
        raise RuleError(f"alert rule {text!r}: size {size!r} is not a positive amount like 1000000, 1e6 or 1M") from None
    return Rule(kind, usd=value, asset=asset, enabled=enabled)


@dataclass(frozen=True)
class Alert:
    """One fired alert. ``ts`` is market time (the event's or the minute's), ``fired_at`` wall-clock time."""

    rule: str
    kind: str
    ts: pd.Timestamp
    asset: str
    usd: float
    message: str
    exchange: str = ""
    side: str = ""
    fired_at: float = 0.0
    details: dict = field(default_factory=dict, compare=False)

    def line(self) -> str:
        """One terminal line: market time, rule, what happened."""
        return f"{format_time(self.ts, 'iso')} ALERT [{self.rule}] {self.message}"

    def to_dict(self) -> dict:
        return {"ts": format_time(self.ts, "iso"), "rule": self.rule, "kind": self.kind, "asset": self.asset,
                "exchange": self.exchange, "side": self.side, "usd": self.usd, "message": self.message,
                **({"details": self.details} if self.details else {})}


# -- percentiles of recent sizes ------------------------------------------------------------------------
class _SizeWindow:
    """The last ``size`` values, kept sorted (bisect): exact percentiles per event, batch-independent."""

    def __init__(self, size: int = SIZE_WINDOW):
        self.size = size
        self.order: deque = deque()
        self.sorted: list[float] = []

    def add(self, x: float) -> None:
        self.order.append(x)
        bisect.insort(self.sorted, x)
        if len(self.order) > self.size:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def percentile(self, p: float) -> float:
        """The lower ``p``-th percentile (a value that occurs)."""
        n = len(self.sorted)
        return self.sorted[min(n - 1, max(0, int(math.floor(p / 100.0 * (n - 1)))))]


# -- streaming cascade detection -------------------------------------------------------------------------
@dataclass
class _Base:
    hot_x: float
    warm_x: float
    median_x: float
    hot_n: float
    warm_n: float
    rate: float  # events per minute (active and quiet minutes alike)


@dataclass
class _Run:
    start: int      # first warm minute
    last: int       # last warm minute
    hot: bool = False
    burst: bool = False


class _CascadeWatch:
    """Per-asset minute cells, baselines and warm runs; announces market-wide cascades as they start."""

    def __init__(self, params: Params):
        self.p = params
        self.cells: dict[str, dict[int, list]] = {}   # asset -> minute -> [usd, count]
        self.base: dict[str, _Base | None] = {}
        self.based_at: int | None = None
        self.runs: dict[str, _Run] = {}
        self.cascade_until: int | None = None  # last warm minute of the cascade announced last
        self.cascade_assets: set[str] = set()
        self.first_minute: int | None = None

    def add(self, asset: str, minute: int, usd_: float, count: int = 1) -> None:
        cells = self.cells.setdefault(asset, {})
        c = cells.get(minute)
        if c is None:
            cells[minute] = [usd_, count]
        else:
            c[0] += usd_
            c[1] += count
        if self.first_minute is None or minute < self.first_minute:
            self.first_minute = minute

    def rebaseline(self, now_min: int) -> None:
        w = max(1, int(self.p.baseline_days)) * DAY_MIN
        lo = now_min - w
        for asset, cells in self.cells.items():
            old = [m for m in cells if m < lo - self.p.gap_minutes - 2]
            for m in old:
                del cells[m]
            ms = [m for m in cells if lo <= m < now_min]
            if len(ms) < self.p.min_samples:
                self.base[asset] = None
                continue
            arr = np.array([cells[m] for m in ms], dtype=float)
            x = np.log10(np.maximum(arr[:, 0], 1e-300))
            med = float(np.median(x))
            sigma = max(1.4826 * float(np.median(np.abs(x - med))), self.p.min_sigma)
            events = float(arr[:, 1].sum())
            span = min(w, now_min - min(self.first_minute or lo, now_min - 1))
            per_active = events / len(ms)
            self.base[asset] = _Base(
                hot_x=med + max(self.p.k_hot * sigma, math.log10(self.p.hot_ratio)),
                warm_x=med + self.p.k_warm * sigma, median_x=med,
                hot_n=max(self.p.hot_min_events, self.p.hot_count_ratio * per_active),
                warm_n=max(self.p.warm_min_events, self.p.warm_count_ratio * per_active),
                rate=events / max(span, 1))
        self.based_at = now_min

    def check(self, asset: str, minute: int) -> dict | None:
        """After events of ``asset`` in ``minute`` arrived: a cascade's first burst, or None."""
        if self.based_at is None or minute - self.based_at >= REBASELINE_MIN or minute < self.based_at:
            self.rebaseline(minute)
        b = self.base.get(asset)
        if b is None:
            return None
        usd_, count = self.cells[asset][minute]
        x = math.log10(max(usd_, 1e-300))
        hot = x >= b.hot_x and count >= b.hot_n
        warm = hot or (x >= b.warm_x and count >= b.warm_n)
        if not warm:
            return None
        run = self.runs.get(asset)
        if run is None or minute - run.last > self.p.gap_minutes + 1 or minute < run.start:
            run = self.runs[asset] = _Run(minute, minute)
        run.last = max(run.last, minute)
        run.hot = run.hot or hot
        if run.burst or not run.hot:
            return None
        cells = self.cells[asset]
        total_usd = sum(cells[m][0] for m in range(run.start, run.last + 1) if m in cells)
        events = sum(cells[m][1] for m in range(run.start, run.last + 1) if m in cells)
        length = run.last + 1 - run.start
        if events < self.p.min_events or events < self.p.rate_ratio * b.rate * length:
            return None
        run.burst = True
        joins = self.cascade_until is not None and run.start <= self.cascade_until + self.p.gap_minutes
        self.cascade_until = max(self.cascade_until or run.last, run.last)
        if joins:
            self.cascade_assets.add(asset)
            return None
        self.cascade_assets = {asset}
        return {"asset": asset, "start": run.start, "usd": total_usd, "events": int(events),
                "minutes": length, "baseline_usd": 10 ** b.median_x}

    def extend(self, asset: str, minute: int) -> None:
        """Keep the announced cascade open while any of its assets' runs go on."""
        run = self.runs.get(asset)
        if run is not None and run.burst and self.cascade_until is not None and run.last > self.cascade_until:
            self.cascade_until = run.last


def _strs(col: pd.Series) -> np.ndarray:
    """A text column as an object array of str (categoricals by their categories: no per-row str())."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = np.asarray([str(c) for c in col.cat.categories] + [""], dtype=object)
        return cats[col.cat.codes.to_numpy()]
    return col.astype(str).to_numpy()


# -- the engine ----------------------------------------------------------------------------------------
class AlertEngine:
    """Evaluates rules on events in time order. Not thread-safe: one thread feeds it (see AlertMonitor)."""

    def __init__(self, rules: Iterable[Rule | str] = (), params: Params = Params(), *,
                 clock: Callable[[], float] = time.time, size_window: int = SIZE_WINDOW,
                 min_size_samples: int = MIN_SIZE_SAMPLES):
        self.params = params
        self.clock = clock
        self.size_window = size_window
        self.min_size_samples = min_size_samples
        self.set_rules(rules)
        self.reset()

    def set_rules(self, rules: Iterable[Rule | str]) -> None:
        self.rules = [parse_rule(r) if isinstance(r, str) else r for r in rules]

    def reset(self) -> None:
        """Forget the history (a new recording or replay starts)."""
        self._sizes: dict[str, _SizeWindow] = {}
        self._minute: dict[tuple[str, int], float] = {}  # (asset or "*", minute) -> USD so far
        self._fired: set[tuple[str, str, int]] = set()     # (rule text, scope, minute) of minute alerts
        self._watch = _CascadeWatch(self.params)

    @property
    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def seed(self, frame: pd.DataFrame | None) -> None:
        """History before the events to come (no alerts): cascade baselines and recent sizes per asset."""
        if frame is None or not len(frame):
            return
        if "count" in frame.columns:  # aggregated rows (a whole-day part of a store) are no events
            frame = frame[frame["count"].isna()] if frame["count"].isna().any() else frame.iloc[0:0]
        ts = frame["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        order = np.argsort(ts, kind="stable")
        assets = frame["asset"].astype(str).to_numpy()[order]
        usd_ = frame["notional_usd"].to_numpy(float)[order]
        minute = ts[order] // _MIN_NS
        keep_from = int(minute[-1]) - (self.params.baseline_days + 1) * DAY_MIN if len(minute) else 0
        sel = minute >= keep_from
        key = pd.DataFrame({"a": assets[sel], "m": minute[sel], "u": usd_[sel]})
        agg = key.groupby(["a", "m"], sort=False)["u"].agg(["sum", "count"])
        for (a, m), (u, c) in zip(agg.index, agg.to_numpy()):
            self._watch.add(str(a), int(m), float(u), int(c))
        tail = pd.DataFrame({"a": assets, "u": usd_}).groupby("a", sort=False).tail(self.size_window)
        for a, u in zip(tail["a"].to_numpy(), tail["u"].to_numpy()):
            self._size(a).add(float(u))

    def seed_minutes(self, names, asset_codes, minutes, usd_, counts) -> None:
        """History as a per-minute table (``cascades_store.store_minutes``): cascade baselines only."""
        for a, m, u, c in zip(asset_codes, minutes, usd_, counts):
            self._watch.add(str(names[int(a)]), int(m), float(u), int(c))

    def _size(self, asset: str) -> _SizeWindow:
        w = self._sizes.get(asset)
        if w is None:
            w = self._sizes[asset] = _SizeWindow(self.size_window)
        return w

    def feed(self, frame: pd.DataFrame) -> list[Alert]:
        """Evaluate the rules on ``frame`` (canonical liquidations, in time order) and remember it."""
        if frame is None or not len(frame):
            return []
        rules = self.active
        ts = frame["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        asset = _strs(frame["asset"])[order]
        ex = _strs(frame["exchange"])[order]
        side = _strs(frame["side"])[order]
        sym = _strs(frame["symbol"])[order] if "symbol" in frame.columns else asset
        usd_ = frame["notional_usd"].to_numpy(float)[order]
        price = frame["price"].to_numpy(float)[order] if "price" in frame.columns else np.full(len(ts), np.nan)
        singles = [r for r in rules if r.kind == "single"]
        minutes = [r for r in rules if r.kind == "minute"]
        cascades = [r for r in rules if r.kind == "cascade"]
        out: list[Alert] = []
        now = self.clock()
        for i in range(len(ts)):
            a, u, m = asset[i], float(usd_[i]), int(ts[i] // _MIN_NS)
            t = pd.Timestamp(int(ts[i]), tz="UTC")
            for r in singles:
                if r.asset and r.asset != a:
                    continue
                if r.percentile is not None:
                    w = self._sizes.get(a)
                    if w is None or len(w.sorted) < self.min_size_samples:
                        continue
                    thr = w.percentile(r.percentile)
                    if u < thr:
                        continue
                    why = f" (≥ p{r.percentile:g} of {a}: {usd(thr)})"
                elif u < r.usd:
                    continue
                else:
                    why = ""
                out.append(Alert(r.text, "single", t, a, u, f"{ex[i]} {sym[i]} {side[i]} liquidated {usd(u)}"
                                 + (f" at {price[i]:,.6g}" if math.isfinite(price[i]) else "") + why,
                                 exchange=ex[i], side=side[i], fired_at=now))
            self._size(a).add(u)
            for scope in (a, "*"):
                k = (scope, m)
                self._minute[k] = self._minute.get(k, 0.0) + u
            for r in minutes:
                scope = r.asset or "*"
                if r.asset and r.asset != a:
                    continue
                total = self._minute[(scope, m)]
                key = (r.text, scope, m)
                if total >= r.usd and key not in self._fired:
                    self._fired.add(key)
                    who = r.asset or "all assets"
                    out.append(Alert(r.text, "minute", pd.Timestamp(m * _MIN_NS, tz="UTC"), r.asset or "",
                                     total, f"{usd(total)} liquidated in the minute from "
                                     f"{format_time(pd.Timestamp(m * _MIN_NS, tz='UTC'), 'minute')} UTC ({who})",
                                     fired_at=now))
            self._watch.add(a, m, u, 1)
            started = self._watch.check(a, m)
            self._watch.extend(a, m)
            if started is not None:
                for r in cascades:
                    if r.asset and r.asset != started["asset"]:
                        continue
                    st = pd.Timestamp(started["start"] * _MIN_NS, tz="UTC")
                    out.append(Alert(r.text, "cascade", st, started["asset"], started["usd"],
                                     f"cascade starting: {started['asset']} {usd(started['usd'])} in "
                                     f"{started['events']:,} liquidations over {started['minutes']} min since "
                                     f"{format_time(st, 'minute')} UTC (its usual minute: "
                                     f"{usd(started['baseline_usd'])})",
                                     fired_at=now, details={"events": started["events"],
                                                            "minutes": started["minutes"],
                                                            "seen_at": format_time(t, "iso")}))
        self._prune(int(ts[-1] // _MIN_NS))
        return out

    def _prune(self, now_min: int) -> None:
        if len(self._minute) > 4096:
            self._minute = {k: v for k, v in self._minute.items() if k[1] >= now_min - 5}
            self._fired = {k for k in self._fired if k[2] >= now_min - 5}


# -- the queue and its thread --------------------------------------------------------------------------
class AlertMonitor:
    """An :class:`AlertEngine` on its own thread behind a queue.

    ``submit(frame)`` only puts the frame on an unbounded queue: the recorder and a replay are never held
    up by evaluation, and the evaluation never drops a batch. Fired alerts go to ``on_alert(alert)`` (called
    on the monitor's thread: a GUI re-emits it as a queued signal) and to ``log`` (the latest ``log_size``).
    """

    def __init__(self, engine: AlertEngine | None = None, on_alert: Callable[[Alert], None] | None = None,
                 *, log_size: int = LOG_SIZE, name: str = "liqscope-alerts"):
        self.engine = engine or AlertEngine()
        self.on_alert = on_alert
        self.log: deque[Alert] = deque(maxlen=log_size)
        self.fired = 0
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._name = name
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _ensure(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, frame: pd.DataFrame) -> None:
        """Queue events for evaluation; returns at once."""
        if frame is not None and len(frame):
            self._q.put(("feed", frame))
            self._ensure()

    def call(self, fn: Callable[[AlertEngine], None]) -> None:
        """Run ``fn(engine)`` on the monitor's thread, in order with the queued events (rules, seed, reset)."""
        self._q.put(("call", fn))
        self._ensure()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is evaluated (tests, the end of a replay)."""
        done = threading.Event()
        self._q.put(("mark", done))
        self._ensure()
        return done.wait(timeout)

    def stop(self) -> None:
        self._q.put(("stop", None))

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def _main(self) -> None:
        while True:
            what, item = self._q.get()
            if what == "stop":
                return
            if what == "mark":
                item.set()
                continue
            try:
                if what == "call":
                    item(self.engine)
                    continue
                fired = self.engine.feed(item)
            except Exception as exc:  # a bad frame must not end the monitor
                self.error = exc
                continue
            for alert in fired:
                self.log.append(alert)
                self.fired += 1
                if self.on_alert is not None:
                    try:
                        self.on_alert(alert)
                    except Exception as exc:
                        self.error = exc


# -- persistence --------------------------------------------------------------------------------------
@dataclass
class AlertSettings:
    rules: list[Rule] = field(default_factory=list)
    desktop: bool = True   # a desktop (system tray) notification
    sound: bool = False

    def to_dict(self) -> dict:
        return {"rules": [{"rule": r.text, "enabled": r.enabled} for r in self.rules],
                "desktop": self.desktop, "sound": self.sound}


def settings_path() -> Path:
    from .paths import config_dir

    return config_dir() / "alerts.json"


def load_settings(path: Path | None = None) -> AlertSettings:
    """The saved rules and choices; a missing or unreadable file gives the defaults (no rules)."""
    p = Path(path) if path is not None else settings_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return AlertSettings()
    out = AlertSettings(desktop=bool(data.get("desktop", True)), sound=bool(data.get("sound", False)))
    for item in data.get("rules", []) if isinstance(data, dict) else []:
        try:
            out.rules.append(parse_rule(str(item.get("rule", "")), enabled=bool(item.get("enabled", True))))
        except (RuleError, AttributeError):
            continue
    return out


def save_settings(settings: AlertSettings, path: Path | None = None) -> Path:
    from .fsutil import write_bytes_atomic

    p = Path(path) if path is not None else settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(p, (json.dumps(settings.to_dict(), indent=2) + "\n").encode("utf-8"))
    return p


__all__ = ["Alert", "AlertEngine", "AlertMonitor", "AlertSettings", "Rule", "RuleError", "RULE_SYNTAX",
           "load_settings", "parse_rule", "parse_size", "save_settings"]
