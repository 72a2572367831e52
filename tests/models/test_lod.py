"""Level of detail must be truthful: a merged candle is exactly its minutes' OHLCV."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqscope.models.lod import Candles, CandlePyramid, merge
from liqscope.models.prices import resample

LADDER = [60, 300, 900, 3600, 14400, 86400]


def minutes(n: int, seed: int = 0, gaps: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2025-05-09 00:00", periods=n, freq="1min", tz="UTC")
    if gaps:
        idx = idx[rng.random(n) > 0.2]
    close = 100 + np.cumsum(rng.normal(0, 0.5, len(idx)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spike = rng.random(len(idx)) < 0.01  # rare long wicks that row-skipping would hide
    high = np.maximum(open_, close) + rng.random(len(idx)) + spike * 25
    low = np.minimum(open_, close) - rng.random(len(idx)) - spike * 25
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.random(len(idx)) * 10}, index=idx.as_unit("ns").rename("ts"))


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("level", [300, 900, 3600, 86400])
def test_merged_candles_equal_their_minutes(level, gaps):
    frame = minutes(3 * 1440 + 17, seed=level, gaps=gaps)
    merged = merge(Candles.from_frame(frame), level).to_frame()
    pd.testing.assert_frame_equal(merged, resample(frame, level), check_freq=False)
    # spot-check one merged candle by hand
    t = merged.index[len(merged) // 2]
    part = frame[(frame.index >= t) & (frame.index < t + pd.Timedelta(seconds=level))]
    row = merged.loc[t]
    assert (row.open, row.close) == (part.open.iloc[0], part.close.iloc[-1])
    assert (row.high, row.low) == (part.high.max(), part.low.min())
    assert row.volume == pytest.approx(part.volume.sum())


def test_pyramid_levels_built_from_coarser_parents_match_direct_merge():
    frame = minutes(2 * 1440)
    base = Candles.from_frame(frame)
    pyr = CandlePyramid(base, 60, LADDER)
    pyr.build_all()
    for level in LADDER[1:]:
        direct = merge(base, level)
        got = pyr.level(level)
        for name in ("ts", "open", "high", "low", "close"):
            np.testing.assert_array_equal(getattr(got, name), getattr(direct, name))
        np.testing.assert_allclose(got.volume, direct.volume)
    assert pyr.level(86400).high.max() == frame.high.max()  # no wick lost at the top level


def test_pick_caps_candles_by_pixels_and_slice_is_half_open():
    pyr = CandlePyramid(Candles.from_frame(minutes(1440)), 60, LADDER)
    assert pyr.pick(3600, 400) == 60
    assert pyr.pick(86400, 400) == 300     # 288 five-minute candles fit in 400
    assert pyr.pick(86400, 100) == 900
    assert pyr.pick(10 * 365 * 86400, 400) == 86400
    base = pyr.level(60)
    part = base.slice(base.ts[10], base.ts[20])
    assert len(part) == 10 and part.ts[0] == base.ts[10]


def test_window_of_an_unbuilt_level_equals_the_built_level():
    frame = minutes(3 * 1440, seed=5, gaps=True)
    base = Candles.from_frame(frame)
    lazy = CandlePyramid(base, 60, LADDER)
    full = CandlePyramid(base, 60, LADDER)
    full.build_all()
    lo, hi = int(base.ts[100]) + 17 * 10**9, int(base.ts[2500])
    for level in (300, 900, 3600):
        got, want = lazy.window(level, lo, hi), full.level(level).slice(lo, hi)
        assert not lazy.built(level)  # merged for the window only
        for name in ("ts", "open", "high", "low", "close"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        np.testing.assert_allclose(got.volume, want.volume)
    # a window too big to merge per frame builds (and caches) the level
    lazy.window(86400, int(base.ts[0]), int(base.ts[-1]) + 1, max_merge=1000)
    assert lazy.built(86400)


def test_build_all_stops_when_cancelled():
    from liqscope.models.progress import Cancelled, Task

    pyr = CandlePyramid(Candles.from_frame(minutes(3 * 1440)), 60, LADDER)
    task = Task()
    task.cancel.set()
    with pytest.raises(Cancelled):
        pyr.build_all(task)
    assert [lv for lv in LADDER if pyr.built(lv)] == [60]  # stopped before merging anything


def test_reading_levels_while_a_builder_thread_builds_them():
    """The GUI thread reads windows while the builder publishes levels: no race, exact results."""
    import threading

    frame = minutes(60 * 1440, seed=3)
    base = Candles.from_frame(frame)
    pyr = CandlePyramid(base, 60, LADDER)
    errors: list[BaseException] = []

    def build():
        try:
            pyr.build_all()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=build)
    t.start()
    lo, hi = int(frame.index[1000].value), int(frame.index[80_000].value)
    while t.is_alive():
        for level in LADDER[1:]:
            got = pyr.window(level, lo, hi)
            np.testing.assert_array_equal(got.high, merge(base, level).slice(lo, hi).high)
    t.join()
    assert not errors and all(pyr.built(lv) for lv in LADDER)
