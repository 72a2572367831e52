"""Cascade detection (models/cascades.py): quality on synthetic histories with injected cascades, the demo's
largest cascade, equality with ``liqscope summary``, the store path and the ``liqscope cascades`` command."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from liqscope.models import cascades as C
from liqscope.models.cascade_search import find_cascades
from liqscope.models.dataset import Dataset, load_demo
from liqscope.models.liquidations import LiquidationModel

START = pd.Timestamp("2024-03-01", tz="UTC")
EXCHANGES = ("binance", "bybit", "okx")
EX_SHARE = np.array([0.5, 0.3, 0.2])
# asset: price, median order USD, background events per minute (very different scales)
ASSETS = {
    "BTC": (65_000.0, 12_000.0, 4.0),
    "ETH": (3_500.0, 6_000.0, 2.0),
    "SOL": (140.0, 2_500.0, 0.8),
    "DOGE": (0.15, 800.0, 0.25),
    "PEPE": (0.000008, 300.0, 0.08),
}


@dataclass
class Injected:
    asset: str
    start: pd.Timestamp
    end: pd.Timestamp
    usd: float


def synthetic(seed: int, days: int = 21, n_single: int = 6, n_market: int = 4):
    """A history of Poisson background liquidations (daily seasonality, quiet and volatile regimes,
    heavy-tailed sizes) with cascades injected at known times: single-asset ones and market-wide ones
    hitting several assets at once. Returns (liquidations frame, list of Injected per asset)."""
    rng = np.random.default_rng(seed)
    n_min = days * 1440
    minute = np.arange(n_min)
    season = 1.0 + 0.6 * np.sin(2 * np.pi * (minute % 1440) / 1440.0 - 1.0)
    regime = np.ones(n_min)
    for k in range(days // 3):  # one volatile stretch of 6-36 hours per 3 days, rates x2-x3.5; quiet otherwise
        a = k * 3 * 1440 + int(rng.integers(0, 3 * 1440 - 2160))
        regime[a:a + rng.integers(360, 2160)] = rng.uniform(2.0, 3.5)
    frames = []
    truth: list[Injected] = []
    busy = np.zeros(n_min, dtype=bool)

    def free_slot(length):
        for _ in range(1000):
            a = int(rng.integers(180, n_min - length - 180))
            if not busy[a - 120:a + length + 120].any():
                busy[a:a + length] = True
                return a
        raise AssertionError("no slot")

    def events(asset, minute_idx, rate_scale, size_scale, short_p, lead=None):
        price, med, rate = ASSETS[asset]
        lam = rate * rate_scale * (season[minute_idx] * regime[minute_idx] if lead is None else 1.0)
        n = rng.poisson(np.broadcast_to(lam, minute_idx.shape))
        total = int(n.sum())
        if not total:
            return None
        t = np.repeat(minute_idx, n) * 60.0 + rng.uniform(0, 60, total)
        ex = rng.choice(len(EXCHANGES), total, p=EX_SHARE)
        if lead is not None:  # the leading exchange's events come first within the burst
            t = np.where(ex == lead, t - rng.uniform(0, 20, total), t)
            t = np.clip(t, minute_idx.min() * 60.0, (minute_idx.max() + 1) * 60.0 - 1e-3)
        size = med * size_scale * (rng.pareto(1.7, total) + 0.4)   # heavy tail (Lomax, alpha 1.7)
        side = np.where(rng.random(total) < short_p, "short", "long")
        drift = 1 + 0.002 * rng.standard_normal(total)
        px = price * drift
        return pd.DataFrame({"ts": START + pd.to_timedelta(t, unit="s"),
                             "exchange": np.asarray(EXCHANGES)[ex], "symbol": asset + "USDT", "asset": asset,
                             "side": side, "price": px, "qty": size / px, "notional_usd": size})

    for asset in ASSETS:
        frames.append(events(asset, minute, 1.0, 1.0, 0.5))

    def inject(assets, length, lead):
        a = free_slot(length)
        idx = np.arange(a, a + length)
        short_p = 0.9 if rng.random() < 0.5 else 0.1
        for asset in assets:  # 12-40x the background rate, and at least 4 liquidations a minute
            rate = ASSETS[asset][2]
            scale = max(rng.uniform(12, 40), 4.0 / rate)
            f = events(asset, idx, scale, rng.uniform(2, 5), short_p, lead)
            frames.append(f)
            truth.append(Injected(asset, START + pd.Timedelta(minutes=a), START + pd.Timedelta(minutes=a + length),
                                  float(f["notional_usd"].sum())))
    names = list(ASSETS)
    for _ in range(n_single):
        inject([names[rng.integers(len(names))]], int(rng.integers(3, 25)), int(rng.integers(len(EXCHANGES))))
    for _ in range(n_market):
        k = int(rng.integers(2, len(names) + 1))
        inject(list(rng.choice(names, k, replace=False)), int(rng.integers(4, 30)), int(rng.integers(len(EXCHANGES))))
    frame = pd.concat([f for f in frames if f is not None], ignore_index=True)
    return frame, truth


def score(found: list[C.Cascade], truth: list[Injected], tol=pd.Timedelta(minutes=2)):
    """Precision and recall of per-asset bursts against the injected (asset, window)s: a match starts and
    ends within ``tol`` of an injected cascade of the same asset."""
    parts = [(p.asset, p.start, p.end) for c in found for p in c.parts]

    def match(a, s, e, t):
        return a == t.asset and abs(s - t.start) <= tol and abs(e - t.end) <= tol
    tp_parts = sum(any(match(a, s, e, t) for t in truth) for a, s, e in parts)
    tp_truth = sum(any(match(a, s, e, t) for a, s, e in parts) for t in truth)
    precision = tp_parts / len(parts) if parts else 1.0
    recall = tp_truth / len(truth) if truth else 1.0
    return precision, recall


def _dataset(frame) -> Dataset:
    return Dataset(liquidations=LiquidationModel(frame), label="synthetic")


SEEDS = tuple(range(11, 19))


def test_synthetic_precision_recall():
    """Eight 21-day histories (fixed seeds), ~170 injected per-asset cascades in all: pooled precision and
    recall on timing (start and end within 2 minutes) at least 0.9."""
    tp_found = n_found = tp_truth = n_truth = 0
    for seed in SEEDS:
        frame, truth = synthetic(seed)
        found = find_cascades(_dataset(frame), details=False)
        precision, recall = score(found, truth)
        parts = sum(len(c.parts) for c in found)
        tp_found += round(precision * parts)
        n_found += parts
        tp_truth += round(recall * len(truth))
        n_truth += len(truth)
        print(f"seed {seed}: {len(truth)} injected, {parts} found, precision {precision:.3f} recall {recall:.3f}")
    precision, recall = tp_found / n_found, tp_truth / n_truth
    print(f"pooled: precision {precision:.3f} recall {recall:.3f} ({n_truth} injected)")
    assert precision >= 0.9 and recall >= 0.9


def test_thresholds_adapt_per_asset():
    """BTC and PEPE differ by ~40x in order size: each is compared with its own baseline."""
    frame, _ = synthetic(11, days=8, n_single=0, n_market=0)
    mins = C.minutes_from_frame(frame)
    base = C.baseline(mins)
    thr = {a: np.nanmedian(base.threshold[mins.asset == i]) for i, a in enumerate(mins.names)}
    assert thr["BTC"] - thr["PEPE"] > 1.0  # more than 10x apart, in log10 USD


def _summary_total(ds, c: C.Cascade) -> float:
    return ds.summary(c.start, c.end, assets=c.assets)["total_usd"]


@pytest.fixture(scope="module")
def demo():
    return load_demo()


@pytest.fixture(scope="module")
def demo_cascades(demo):
    return find_cascades(demo)


def test_demo_largest_cascade(demo_cascades):
    top = demo_cascades[0]
    assert top.start.strftime("%Y-%m-%d") == "2025-05-09"
    assert top.short_share > 0.8
    assert top.price is not None and top.price.close > top.price.open  # shorts liquidated into a rise
    assert top.detailed and top.leader is not None


def test_demo_largest_cascade_is_the_move_through_102k(demo_cascades):
    p = demo_cascades[0].price
    assert min(p.open, p.extreme) <= 102_000 <= max(p.open, p.extreme)


def test_demo_totals_equal_summary(demo, demo_cascades):
    for c in demo_cascades:
        assert c.total_usd == pytest.approx(_summary_total(demo, c), abs=0.01)
        assert c.count == demo.summary(c.start, c.end, assets=c.assets)["count"]
        assert c.long_usd + c.short_usd == pytest.approx(c.total_usd, abs=0.01)
        assert sum(c.by_exchange.values()) == pytest.approx(c.total_usd, abs=0.01)


def test_store_path_equals_dataset_path(tmp_path):
    """The same events in a store give the same cascades (windows, assets, totals) as in memory."""
    from liqscope.models.store import open_store

    frame, _ = synthetic(12, days=9, n_single=3, n_market=2)
    ds = _dataset(frame)
    store = open_store(tmp_path / "store")
    store.append_liquidations(ds.liquidations.frame, source="file:synthetic")
    mem = find_cascades(ds)
    disk = find_cascades(store)
    assert [(c.start, c.end, c.assets) for c in mem] == [(c.start, c.end, c.assets) for c in disk]
    for a, b in zip(mem, disk):
        assert a.total_usd == pytest.approx(b.total_usd, abs=0.01)
        assert a.by_exchange == pytest.approx(b.by_exchange, abs=0.01)
        assert a.leader == b.leader
        assert store_summary(store, b) == pytest.approx(b.total_usd, abs=0.01)


def store_summary(store, c):
    from liqscope.models.store.figures import summary

    return summary(store, c.start, c.end, assets=c.assets)["total_usd"]


def test_window_and_filters(demo, demo_cascades):
    day = find_cascades(demo, start="2025-05-08T00:00Z", end="2025-05-09T00:00Z")
    assert day and all(pd.Timestamp("2025-05-08", tz="UTC") <= c.start < pd.Timestamp("2025-05-09", tz="UTC")
                       for c in day)
    eth = find_cascades(demo, assets=["eth"])
    assert eth and all(c.assets == ["ETH"] for c in eth)
    big = find_cascades(demo, min_usd=5e6, limit=2)
    assert len(big) <= 2 and all(c.total_usd >= 5e6 for c in big)


def test_cli_cascades_json_and_table(capsys):
    from liqscope.models.cli import main

    assert main(["--demo", "cascades", "--json", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first["start"].startswith("2025-05-09") and first["short_share"] > 0.8
    # equality across surfaces: liqscope summary for the cascade's window and assets
    args = ["--demo", "summary", "--start", first["start"], "--end", first["end"], "--json"]
    for a in first["assets"]:
        args += ["--asset", a]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["total_usd"] == pytest.approx(first["total_usd"], abs=0.01)
    assert main(["cascades", "--demo", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "2025-05-09" in out and "BTC" in out


def test_cli_errors_are_one_line(capsys):
    from liqscope.models.cli import main

    assert main(["--demo", "cascades", "--start", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("liqscope: error:")
    assert main(["--demo", "cascades", "--start", "2025-05-10", "--end", "2025-05-09"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["--demo", "cascades", "--min-usd", "-5"])
    assert exc.value.code == 2
