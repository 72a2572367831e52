"""OHLCV candles per (exchange, symbol, interval) with window and resample.

Candles are indexed by their UTC *open* time. A window ``[start, end)`` keeps
candles whose open time is in it, matching the liquidation window convention.
"""
from __future__ import annotations

from dataclasses import dataclass
import pandas as pd

from .schema import normalize_candles
from .timeutil import format_duration, parse_duration, parse_time


@dataclass(frozen=True)
class SeriesKey:
    exchange: str
    symbol: str
    interval: str  # e.g. "1m"


def window(candles: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Candles with ``start <= open time < end``; O(log n) on the sorted index."""
    idx = candles.index
    lo = 0 if start is None else idx.searchsorted(parse_time(start), "left")
    hi = len(idx) if end is None else idx.searchsorted(parse_time(end), "left")
    return candles.iloc[lo:hi]


def resample(candles: pd.DataFrame, interval: str | int) -> pd.DataFrame:
    """Aggregate to a coarser interval: open=first, high=max, low=min, close=last, volume=sum.

    Bins are aligned to the epoch (1h bins start on the hour); bins with no
    source candle are dropped rather than invented.
    """
    secs = parse_duration(interval) if isinstance(interval, str) else int(interval)
    if candles.empty:
        return candles.copy()
    agg = candles.resample(f"{secs}s", origin="epoch", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return agg.dropna(subset=["open"])


class PriceModel:
    """All candle series the app knows, each normalised and sorted."""

    def __init__(self):
        self._series: dict[SeriesKey, pd.DataFrame] = {}
        self._asset: dict[tuple[str, str], str] = {}

    def add(self, exchange: str, symbol: str, interval: str, candles: pd.DataFrame, asset: str) -> SeriesKey:
        key = SeriesKey(exchange.lower(), symbol, format_duration(parse_duration(interval)))
        frame = normalize_candles(candles)
        if key in self._series:
            frame = normalize_candles(pd.concat([self._series[key], frame]).reset_index())
        self._series[key] = frame
        self._asset[(key.exchange, symbol)] = asset.upper()
        return key

    @classmethod
    def from_long(cls, df: pd.DataFrame) -> "PriceModel":
        """Build from a long frame with columns exchange, symbol, asset, interval, ts, OHLCV."""
        model = cls()
        for (ex, sym, iv, asset), part in df.groupby(
            ["exchange", "symbol", "interval", "asset"], observed=True, sort=True
        ):
            model.add(str(ex), str(sym), str(iv), part, str(asset))
        return model

    def keys(self) -> list[SeriesKey]:
        return sorted(self._series, key=lambda k: (k.exchange, k.symbol, parse_duration(k.interval)))

    def asset_of(self, key: SeriesKey) -> str:
        return self._asset[(key.exchange, key.symbol)]

    @property
    def assets(self) -> list[str]:
        return sorted(set(self._asset.values()))

    def exchanges_for(self, asset: str) -> list[str]:
        return sorted({k.exchange for k in self._series if self.asset_of(k) == asset.upper()})

    def find(self, asset: str, exchange: str) -> SeriesKey | None:
        """Finest-interval series for this asset on this exchange."""
        matches = [k for k in self.keys() if k.exchange == exchange.lower() and self.asset_of(k) == asset.upper()]
        return min(matches, key=lambda k: parse_duration(k.interval)) if matches else None

    def candles(self, key: SeriesKey, start=None, end=None, interval: str | None = None) -> pd.DataFrame:
        """Candles with open time in ``[start, end)``; resampled to ``interval`` if given.

        Resampled bars are never partial: every coarse bar that overlaps the window is built
        from its whole bin, so an hourly bar asked for from 00:30 still opens at 00:00's price.
        """
        if interval and parse_duration(interval) != parse_duration(key.interval):
            size = pd.Timedelta(seconds=parse_duration(interval))
            lo = None if start is None else parse_time(start).floor(size)
            hi = None if end is None else parse_time(end).ceil(size)
            return resample(window(self._series[key], lo, hi), interval)
        return window(self._series[key], start, end)

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        frames = [f for f in self._series.values() if len(f)]  # a series may be empty
        if not frames:
            return None
        return min(f.index[0] for f in frames), max(f.index[-1] for f in frames)

    def to_long(self) -> pd.DataFrame:
        parts = []
        for key in self.keys():
            f = self._series[key].reset_index()
            f.insert(0, "interval", key.interval)
            f.insert(0, "asset", self.asset_of(key))
            f.insert(0, "symbol", key.symbol)
            f.insert(0, "exchange", key.exchange)
            parts.append(f)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def merged(self, other: "PriceModel") -> "PriceModel":
        out = PriceModel()
        for m in (self, other):
            for k in m.keys():
                out.add(k.exchange, k.symbol, k.interval, m._series[k], m.asset_of(k))
        return out

    def __len__(self) -> int:
        return len(self._series)

