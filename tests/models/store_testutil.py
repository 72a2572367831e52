"""Helpers shared by the store and importer tests."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from liqscope.models.progress import Step, Task

FIXTURES = Path(__file__).parent / "fixtures"


class CancelAfter(Task):
    """A task whose caller cancels after ``checks`` cancel checks (each ``progress`` step checks once).

    ``checks`` counts how often the operation looked; ``steps`` keeps every reported :class:`Step`.
    """

    def __init__(self, after: int | None = None):
        self.steps: list[Step] = []
        super().__init__(on_progress=self.steps.append)
        self.after, self.checks = after, 0

    def check(self) -> None:
        self.checks += 1
        if self.after is not None and self.checks > self.after:
            self.cancel.set()
        super().check()


def tree_hash(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256): 'byte-for-byte unchanged' made testable."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def liqs(n: int = 100, *, start: str = "2025-05-09", seed: int = 1, exchange: str = "binance",
         symbols=("BTCUSDT", "ETHUSDT"), span: str = "2D") -> pd.DataFrame:
    """Canonical liquidation rows (schema.LIQ_COLUMNS) spread over ``span``."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    ts = t0 + pd.to_timedelta(np.sort(rng.integers(0, pd.Timedelta(span).value, n)), unit="ns")
    sym = rng.choice(list(symbols), n)
    price = np.round(rng.uniform(100, 1000, n), 2)
    qty = np.round(rng.uniform(0.01, 5, n), 3)
    return pd.DataFrame({"ts": ts, "exchange": exchange, "symbol": sym,
                         "asset": [s.replace("USDT", "") for s in sym],
                         "side": rng.choice(["long", "short"], n), "price": price, "qty": qty,
                         "notional_usd": price * qty})


def candles(n: int = 10, *, start: str = "2025-05-09", freq: str = "1min", base: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = base + np.arange(n, dtype=float)
    return pd.DataFrame({"ts": ts, "open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
                         "volume": np.full(n, 2.0)})


def run_cli(capsys, *argv):
    """``liqscope`` (headless commands) with ``argv``: (exit status, stdout, stderr)."""
    from liqscope.models.cli import main

    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def failing_merges(monkeypatch, merge_cls) -> None:
    """Every liquidation-table MERGE the store starts is ``merge_cls(...)`` (whose construction raises, e.g. a
    delta-rs error as a full or read-only disk reports it): a replacement that fails at its commit."""
    from liqscope.models.store import delta_io

    real = delta_io.open_table

    def open_table(loc, spec, version=None):
        dt = real(loc, spec, version)
        if dt is not None and spec.name == "liquidations":
            monkeypatch.setattr(dt, "merge", merge_cls, raising=False)
        return dt
    monkeypatch.setattr(delta_io, "open_table", open_table)
