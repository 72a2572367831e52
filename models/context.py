"""Context under the price: open interest, funding and outside series, with windowed queries (Qt-free).

A :class:`Context` holds three frames, sorted by time and typed (times ``datetime64[ns, UTC]``):

* ``oi_frame``: ``ts`` (period start), ``exchange``, ``symbol``, ``asset``, ``period`` ("1h"), ``oi_base``
  (base units), ``oi_usd`` (USD; NaN where the exchange gave none), ``source``;
* ``funding_frame``: ``ts`` (settlement), ``exchange``, ``symbol``, ``asset``, ``rate`` (fraction paid per
  interval, positive: longs pay shorts), ``interval_hours`` (hours since the previous settlement), ``source``;
* ``outside_frame``: ``name`` ("etf_flows_IBIT", "fear_greed"), ``ts``, ``value``, ``unit`` ("USD", "index",
  "%"), ``source``.

Every query takes a window ``start <= ts < end`` (either bound None: open) and honours it exactly: a row
at ``end`` is never in it, and an empty window gives an empty frame (with its columns) or None, never the
nearest data.

Definitions (the headline, ``liqscope summary --json`` and the exports use these, so they agree):

* **Total open interest** (:meth:`Context.oi_total`): at every snapshot time in the window, the sum over
  exchanges of each exchange's *latest* USD value at or before that time (the sum over its symbols of
  the asset), a value counting as latest for at most two of its periods (:data:`STALE_PERIODS`). An
  exchange with no such value (not yet fetched, a gap, or no USD value: Bybit without a mark price) is
  *missing* at that time: left out of the sum, counted in ``reporting`` and named in ``missing``.
* **OI change** (:meth:`Context.oi_change_pct`): percent change from the first to the last snapshot time
  of the window, over the exchanges reporting at *both* times (so an exchange coming or going never
  shows up as a change); None when fewer than two times or no exchange reports at both.
* **Funding views** (:meth:`Context.funding`): ``per_8h = rate * 8 / interval_hours`` and
  ``annualised = rate * 24 / interval_hours * 365`` (fractions; NaN when the interval is unknown).
* **Mean funding** (:meth:`Context.funding_mean`): *time-weighted*: the sum of the rates settled in the
  window divided by the hours they cover, times 8 -- the average funding per 8 hours a position paid
  over the window (settlements of every selected exchange pooled, so an exchange settling every hour
  weighs as much per hour as one settling every 8 hours, not 8 times more). Settlements with an unknown
  interval are left out. None when nothing is settled in the window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

OI_COLUMNS = ["ts", "exchange", "symbol", "asset", "period", "oi_base", "oi_usd", "source"]
FUNDING_COLUMNS = ["ts", "exchange", "symbol", "asset", "rate", "interval_hours", "source"]
OUTSIDE_COLUMNS = ["name", "ts", "value", "unit", "source"]
OI_TOTAL_COLUMNS = ["ts", "oi_usd", "reporting", "missing"]
FUNDING_VIEW_COLUMNS = [*FUNDING_COLUMNS, "per_8h", "annualised"]

STALE_PERIODS = 2  # a snapshot is an exchange's latest value for at most this many of its periods
_TEXT = {"exchange", "symbol", "asset", "period", "source", "name", "unit"}


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c == "ts" else
                                      object if c in _TEXT else "float64") for c in columns})


def _typed(frame: pd.DataFrame | None, columns: list[str], sort: list[str], what: str) -> pd.DataFrame:
    """``frame`` with exactly ``columns``, times as ns UTC, text as str, numbers as float64, sorted."""
    if frame is None or not len(frame):
        return _empty(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} rows lack the column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=range(len(frame)))
    for c in columns:
        values = frame[c].reset_index(drop=True)
        if c == "ts":
            ts = pd.to_datetime(values, utc=True)
            out[c] = ts.dt.as_unit("ns") if hasattr(ts, "dt") else ts
        elif c in _TEXT:
            out[c] = values.astype(str).astype(object)
        else:
            out[c] = pd.to_numeric(values, errors="raise").astype("float64")
    return out.sort_values(sort, kind="stable").reset_index(drop=True)


def _ts(value) -> pd.Timestamp | None:
    if value is None:
        return None
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _window(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    """Rows with ``start <= ts < end`` (frames sorted by ts first: binary search)."""
    ts = frame["ts"]
    lo, hi = 0, len(frame)
    s, e = _ts(start), _ts(end)
    if s is not None:
        lo = int(ts.searchsorted(s, side="left"))
    if e is not None:
        hi = int(ts.searchsorted(e, side="left"))
    return frame.iloc[lo:max(lo, hi)]


def _names(values: Iterable[str] | str | None, norm) -> set[str] | None:
    if values is None:
        return None
    values = [values] if isinstance(values, str) else list(values)
    return {norm(str(v)) for v in values}


def _matching(df: pd.DataFrame, exchanges, asset: str | None) -> np.ndarray:
    """Rows of ``exchanges`` (None: any) and ``asset`` (None: any)."""
    mask = np.ones(len(df), dtype=bool)
    ex = _names(exchanges, str.lower)
    if ex is not None:
        mask &= df["exchange"].isin(ex).to_numpy()
    if asset is not None:
        mask &= (df["asset"] == asset.upper()).to_numpy()
    return mask


def _period_ns(period: str) -> int:
    try:
        n, unit = int(period[:-1]), period[-1]
        return n * {"m": 60, "h": 3600, "d": 86400}[unit] * 1_000_000_000
    except (ValueError, KeyError, IndexError):
        return 3600 * 1_000_000_000  # an unknown period name: an hour


@dataclass(eq=False)
class Context:
    """Open interest, funding and outside series (see the module doc). Build with :meth:`from_frames`
    (types and sorts), or ``Context()`` for an empty one; treat as immutable."""

    oi_frame: pd.DataFrame = field(default_factory=lambda: _empty(OI_COLUMNS))
    funding_frame: pd.DataFrame = field(default_factory=lambda: _empty(FUNDING_COLUMNS))
    outside_frame: pd.DataFrame = field(default_factory=lambda: _empty(OUTSIDE_COLUMNS))

    @classmethod
    def from_frames(cls, oi: pd.DataFrame | None = None, funding: pd.DataFrame | None = None,
                    outside: pd.DataFrame | None = None) -> "Context":
        """A context from frames with (at least) the columns above; extra columns are dropped. OI and
        funding rows are sorted by (ts, exchange, symbol), outside rows by (ts, name)."""
        return cls(_typed(oi, OI_COLUMNS, ["ts", "exchange", "symbol", "period"], "open interest"),
                   _typed(funding, FUNDING_COLUMNS, ["ts", "exchange", "symbol"], "funding"),
                   _typed(outside, OUTSIDE_COLUMNS, ["ts", "name"], "outside series"))

    # -- what it holds ------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return not (len(self.oi_frame) or len(self.funding_frame) or len(self.outside_frame))

    def names(self) -> list[str]:
        """Names of the outside series held, sorted."""
        return sorted(set(self.outside_frame["name"]))

    def unit(self, name: str) -> str:
        """The unit of outside series ``name`` ("" when unknown or not held)."""
        units = self.outside_frame.loc[self.outside_frame["name"] == name, "unit"]
        return str(units.iloc[-1]) if len(units) else ""

    def assets(self) -> list[str]:
        """Assets with open interest or funding, sorted."""
        return sorted(set(self.oi_frame["asset"]) | set(self.funding_frame["asset"]))

    def exchanges(self, asset: str | None = None) -> list[str]:
        """Exchanges with open interest or funding (of ``asset``), sorted."""
        frames = [self.oi_frame, self.funding_frame]
        if asset is not None:
            frames = [f[f["asset"] == asset.upper()] for f in frames]
        return sorted(set(frames[0]["exchange"]) | set(frames[1]["exchange"]))

    def window(self, start=None, end=None) -> "Context":
        """The rows of every frame with ``start <= ts < end``."""
        return Context(_window(self.oi_frame, start, end).reset_index(drop=True),
                       _window(self.funding_frame, start, end).reset_index(drop=True),
                       _window(self.outside_frame, start, end).reset_index(drop=True))

    # -- open interest ------------------------------------------------------------
    def oi(self, start=None, end=None, exchanges: Iterable[str] | str | None = None, asset: str | None = None,
           period: str | None = None) -> pd.DataFrame:
        """Open interest rows (``OI_COLUMNS``) with ``start <= ts < end``, of ``exchanges``/``asset``/``period``
        (None: all), sorted by time."""
        df = _window(self.oi_frame, start, end)
        mask = _matching(df, exchanges, asset)
        if period is not None:
            mask &= (df["period"] == period).to_numpy()
        return df[mask].reset_index(drop=True)

    def oi_by_exchange(self, start=None, end=None, asset: str = "BTC",
                       exchanges: Iterable[str] | str | None = None) -> pd.DataFrame:
        """Each exchange's open interest of ``asset`` in USD at every snapshot time of the window: one column
        per exchange (sorted), indexed by ``ts``; NaN where the exchange is missing at that time (see the
        module doc: the latest value within :data:`STALE_PERIODS` periods, summed over its symbols)."""
        asset = asset.upper()
        ex = _names(exchanges, str.lower)
        rows = self.oi_frame[self.oi_frame["asset"] == asset]
        if ex is not None:
            rows = rows[rows["exchange"].isin(ex)]
        considered = sorted(ex) if ex is not None else sorted(set(rows["exchange"]))
        grid = pd.DatetimeIndex(_window(rows, start, end)["ts"].unique(), name="ts")
        out = pd.DataFrame(index=grid, columns=considered, dtype="float64")
        if not len(grid):
            return out
        # One row per (exchange, symbol, ts): the finest period where several were fetched.
        rows = rows.assign(_step=[_period_ns(p) for p in rows["period"]])
        rows = rows.sort_values(["exchange", "symbol", "ts", "_step"], kind="stable").drop_duplicates(
            ["exchange", "symbol", "ts"], keep="first")
        left = pd.DataFrame({"ts": grid.as_unit("ns")})
        for exchange in considered:
            part = rows[rows["exchange"] == exchange]
            total = None
            for _symbol, series in part.groupby("symbol", sort=True):
                series = series.sort_values("ts", kind="stable")
                right = pd.DataFrame({"_at": series["ts"].dt.as_unit("ns").to_numpy(),
                                      "ts": series["ts"].dt.as_unit("ns").to_numpy(),
                                      "v": series["oi_usd"].to_numpy(), "_step": series["_step"].to_numpy()})
                hit = pd.merge_asof(left, right, on="ts", direction="backward")
                age = (hit["ts"] - hit["_at"]).dt.total_seconds().to_numpy() * 1e9
                v = hit["v"].to_numpy(dtype="float64").copy()
                v[~(age <= STALE_PERIODS * hit["_step"].to_numpy(dtype="float64"))] = np.nan
                total = v if total is None else np.where(np.isnan(total), v, np.where(np.isnan(v), total, total + v))
            if total is not None:
                out[exchange] = total
        return out

    def oi_total(self, start=None, end=None, asset: str = "BTC",
                 exchanges: Iterable[str] | str | None = None) -> pd.DataFrame:
        """Total open interest of ``asset`` in USD over exchanges at every snapshot time of the window:
        ``ts, oi_usd, reporting`` (how many exchanges are in the sum) ``, missing`` (the exchanges left out,
        comma-separated; "" when none). Exchanges considered: ``exchanges``, else every exchange with open
        interest of ``asset`` in this context. Times where none reports are left out."""
        wide = self.oi_by_exchange(start, end, asset, exchanges)
        if not len(wide) or not len(wide.columns):
            return _empty(OI_TOTAL_COLUMNS).astype({"reporting": "int64"})
        have = wide.notna().to_numpy()
        cols = np.array(wide.columns, dtype=object)
        out = pd.DataFrame({"ts": wide.index, "oi_usd": wide.sum(axis=1, min_count=1).to_numpy(),
                            "reporting": have.sum(axis=1).astype("int64"),
                            "missing": [",".join(cols[~row]) for row in have]})
        return out[out["reporting"] > 0].reset_index(drop=True)

    def oi_change_pct(self, start, end, asset: str = "BTC",
                      exchanges: Iterable[str] | str | None = None) -> float | None:
        """Percent change of total open interest from the first to the last snapshot time of the window,
        over the exchanges reporting at both (module doc); None without two such times."""
        wide = self.oi_by_exchange(start, end, asset, exchanges).dropna(how="all")
        if len(wide) < 2:
            return None
        first, last = wide.iloc[0], wide.iloc[-1]
        both = first.notna() & last.notna()
        a, b = float(first[both].sum()), float(last[both].sum())
        if not both.any() or not a > 0:
            return None
        return (b / a - 1.0) * 100.0

    # -- funding ------------------------------------------------------------------
    def funding(self, start=None, end=None, exchanges: Iterable[str] | str | None = None,
                asset: str | None = None) -> pd.DataFrame:
        """Settlements with ``start <= ts < end`` (``FUNDING_VIEW_COLUMNS``): the stored rate per interval plus
        ``per_8h`` and ``annualised`` (fractions; module doc)."""
        df = _window(self.funding_frame, start, end)
        df = df[_matching(df, exchanges, asset)].reset_index(drop=True)
        hours = df["interval_hours"].to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = hours > 0
            per_8h = np.where(ok, df["rate"].to_numpy(dtype="float64") * 8.0 / np.where(ok, hours, 1.0), np.nan)
            annual = np.where(ok, df["rate"].to_numpy(dtype="float64") * 24.0 / np.where(ok, hours, 1.0) * 365.0,
                              np.nan)
        return df.assign(per_8h=per_8h, annualised=annual)[FUNDING_VIEW_COLUMNS]

    def funding_mean(self, start, end, asset: str = "BTC", exchanges: Iterable[str] | str | None = None,
                     annualised: bool = False) -> float | None:
        """Time-weighted mean funding of ``asset`` in the window, per 8 hours (or per year with
        ``annualised``), as a fraction: sum of rates / sum of their interval hours * 8 (module doc).
        None when no settlement with a known interval lies in the window."""
        df = self.funding(start, end, exchanges, asset)
        hours = df["interval_hours"].to_numpy(dtype="float64")
        ok = np.isfinite(hours) & (hours > 0) & np.isfinite(df["rate"].to_numpy(dtype="float64"))
        if not ok.any():
            return None
        per_hour = float(df["rate"].to_numpy()[ok].sum() / hours[ok].sum())
        return per_hour * (24.0 * 365.0 if annualised else 8.0)

    # -- outside series -------------------------------------------------------------
    def outside(self, name: str, start=None, end=None) -> pd.DataFrame:
        """Series ``name`` with ``start <= ts < end``: ``ts, value, unit, source``, sorted by time (empty when
        the series is not held)."""
        df = _window(self.outside_frame, start, end)
        return df[df["name"] == name][["ts", "value", "unit", "source"]].reset_index(drop=True)


def read_context_files(folder) -> Context:
    """The context of a dataset folder (the demo's): ``open_interest.parquet``, ``funding.parquet`` and
    ``outside_series.parquet``, each only when present."""
    from pathlib import Path

    folder = Path(folder)

    def part(name: str):
        path = folder / name
        return pd.read_parquet(path) if path.is_file() else None
    return Context.from_frames(part("open_interest.parquet"), part("funding.parquet"),
                               part("outside_series.parquet"))
