"""Store.replace_liquidations: take stored rows back out (a parser fix), atomically: one Delta MERGE."""
from __future__ import annotations

import deltalake
import numpy as np
import pandas as pd
import pytest
from deltalake.exceptions import DeltaError

from liqscope.models.schema import SchemaError
from liqscope.models.store import Batch, Cancelled, ReplaceResult, open_store
from store_testutil import failing_merges, CancelAfter, liqs, tree_hash

START, END = pd.Timestamp("2025-05-20", tz="UTC"), pd.Timestamp("2025-06-05", tz="UTC")  # spans two months
KEY = ["ts", "exchange", "symbol", "side", "price", "qty"]
COLS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]


def _frame(store) -> pd.DataFrame:
    """Stored rows as plain columns in a fixed order, comparable with ``==``."""
    f = store.liquidations().frame[COLS]
    f = f.astype({c: str for c in ("exchange", "symbol", "asset", "side")})
    return f.sort_values(KEY).reset_index(drop=True)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    out = df.astype({c: str for c in ("exchange", "symbol", "asset", "side")})
    out["ts"] = pd.to_datetime(out["ts"], utc=True).dt.floor("us").dt.as_unit("ns")  # Delta keeps microseconds
    return out[COLS].sort_values(KEY).reset_index(drop=True)


def _version(store) -> int:
    return deltalake.DeltaTable(str(store.root / "liquidations")).version()


def _live_files(store, exchange: str, month: str) -> list[str]:
    """The data files the table's current snapshot lists for one partition."""
    actions = deltalake.DeltaTable(str(store.root / "liquidations")).get_add_actions(flatten=True)
    ex, mo, path = (actions.column(c).to_pylist() for c in ("partition.exchange", "partition.month", "path"))
    return [p for e, m, p in zip(ex, mo, path) if (e, m) == (exchange, month)]


def _flip(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["side"] = out["side"].map({"long": "short", "short": "long"})
    return out


def _inside(df, start=START, end=END, exchange="binance"):
    return (df["ts"] >= start) & (df["ts"] < end) & (df["exchange"] == exchange)


@pytest.fixture
def filled(tmp_path):
    """Binance and Bybit rows over two months; Binance's were stored with flipped sides."""
    binance, bybit = liqs(400, span="40D", seed=1), liqs(150, span="40D", seed=2, exchange="bybit")
    store = open_store(tmp_path)
    store.append_liquidations(_flip(binance))
    store.append_liquidations(bybit)
    return store, binance, bybit


def test_replace_swaps_exactly_the_rows_in_range(filled):
    store, binance, bybit = filled
    before = _frame(store)
    fixed = binance[_inside(binance)]
    res = store.replace_liquidations(fixed, exchanges=["binance"], start=START, end=END)
    assert res == ReplaceResult(removed=len(fixed), added=len(fixed))  # every side was wrong
    after = _frame(store)
    assert len(after) == len(before)  # replaced, not added next to the wrong rows
    in_range = _inside(after)
    pd.testing.assert_frame_equal(after[in_range].reset_index(drop=True), _plain(fixed))
    pd.testing.assert_frame_equal(after[~in_range].reset_index(drop=True),
                                  before[~_inside(before)].reset_index(drop=True))  # outside, Bybit: untouched
    # The money numbers: long/short totals in the range are the corrected ones.
    got = after[in_range].groupby("side")["notional_usd"].sum()
    want = fixed.groupby("side")["notional_usd"].sum()
    assert np.allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy())


def test_replacing_again_changes_and_rewrites_nothing(filled):
    store, binance, _ = filled
    fixed = binance[_inside(binance)]
    store.replace_liquidations(fixed, exchanges="binance", start=START, end=END)
    before, rows = _version(store), _frame(store)
    assert store.replace_liquidations(fixed, exchanges="binance", start=START, end=END) == ReplaceResult(0, 0)
    pd.testing.assert_frame_equal(_frame(store), rows)
    assert _version(store) <= before + 1  # at most an empty MERGE commit: no row moved


def test_only_changed_rows_count(filled):
    """A row equal in every column stays; a corrected notional is one removed plus one added row."""
    store, binance, _ = filled
    stored = _flip(binance)[_inside(binance)].reset_index(drop=True)
    new = stored.copy()
    new.loc[0, "notional_usd"] += 1.0
    new = new.drop(index=[1, 2])
    res = store.replace_liquidations(new, exchanges=["binance"], start=START, end=END)
    assert res == ReplaceResult(removed=3, added=1)
    assert len(_frame(store)) == 400 + 150 - 2
    after = _frame(store)
    assert after.loc[_inside(after), "notional_usd"].sum() == pytest.approx(new["notional_usd"].sum())


def test_symbols_limit_what_is_replaced(filled):
    store, binance, _ = filled
    before = _frame(store)
    eth = binance[_inside(binance) & (binance["symbol"] == "ETHUSDT")]
    res = store.replace_liquidations(eth, exchanges=["binance"], start=START, end=END, symbols=["ETHUSDT"])
    assert res == ReplaceResult(len(eth), len(eth))
    after = _frame(store)
    btc_before = before[_inside(before) & (before["symbol"] == "BTCUSDT")].reset_index(drop=True)
    btc_after = after[_inside(after) & (after["symbol"] == "BTCUSDT")].reset_index(drop=True)
    pd.testing.assert_frame_equal(btc_after, btc_before)  # still the old (flipped) BTC rows
    # A predicate on (symbol, asset), as the recorder's asset filters need.
    btc = binance[_inside(binance) & (binance["symbol"] == "BTCUSDT")]
    res = store.replace_liquidations(btc, exchanges=["binance"], start=START, end=END,
                                     symbols=lambda symbol, asset: asset == "BTC")
    assert res == ReplaceResult(len(btc), len(btc))
    after = _frame(store)
    pd.testing.assert_frame_equal(after[_inside(after)].reset_index(drop=True), _plain(binance[_inside(binance)]))


def test_replacing_by_nothing_removes_and_drops_empty_files(filled):
    store, binance, _ = filled
    may = (pd.Timestamp("2025-05-01", tz="UTC"), pd.Timestamp("2025-06-01", tz="UTC"))
    res = store.replace_liquidations(binance.iloc[:0], exchanges=["binance"], start=may[0], end=may[1])
    assert res.added == 0 and res.removed == int(_inside(binance, *may).sum()) > 0
    assert not _live_files(store, "binance", "2025-05")  # the month's files are gone from the snapshot
    assert _live_files(store, "binance", "2025-06") and _live_files(store, "bybit", "2025-05")
    after = _frame(store)
    assert not _inside(after, *may).any() and len(after) == 550 - res.removed


def test_several_spans_and_the_month_boundary(filled):
    store, binance, _ = filled
    spans = [("2025-05-10", "2025-05-12"), ("2025-05-31T23:00Z", "2025-06-01T01:00Z"), ("2025-06-10", "2025-06-11")]
    covered = np.zeros(len(binance), dtype=bool)
    for a, b in spans:
        covered |= _inside(binance, pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC")).to_numpy()
    res = store.replace_liquidations(binance[covered], exchanges=["binance"], spans=spans)
    assert res == ReplaceResult(int(covered.sum()), int(covered.sum()))
    after = _frame(store)
    assert len(after) == 550
    assert (after[after["exchange"] == "binance"].merge(_plain(binance[covered]), how="inner").shape[0]
            == covered.sum())


def test_rows_outside_the_replaced_range_are_refused(filled):
    store, binance, _ = filled
    before = tree_hash(store.root)
    with pytest.raises(SchemaError, match="outside the replaced"):
        store.replace_liquidations(binance, exchanges=["binance"], start=START, end=END)
    with pytest.raises(SchemaError, match="outside the replaced"):
        store.replace_liquidations(binance[_inside(binance)], exchanges=["bybit"], start=START, end=END)
    with pytest.raises(SchemaError, match="must end after it starts"):
        store.replace_liquidations(binance.iloc[:0], exchanges=["binance"], start=END, end=START)
    assert tree_hash(store.root) == before


def test_replace_across_many_small_appends(tmp_path):
    """Rows appended by many small commits (a recorder) are replaced wherever they live, in one commit."""
    store = open_store(tmp_path)
    base = liqs(400, span="5D", seed=1, symbols=("BTCUSDT",))
    store.append_liquidations(base)
    late = [liqs(3, start="2025-05-10", span="1h", seed=10 + i, symbols=("BTCUSDT",)) for i in range(3)]
    for df in late:
        store.append_liquidations(_flip(df))
    assert len(_live_files(store, "binance", "2025-05")) == 4
    window = (pd.Timestamp("2025-05-10", tz="UTC"), pd.Timestamp("2025-05-10T01:00Z"))
    fixed = pd.concat([base[_inside(base, *window)], *late], ignore_index=True)
    version = _version(store)
    res = store.replace_liquidations(fixed, exchanges=["binance"], start=window[0], end=window[1])
    assert res == ReplaceResult(9, 9)
    assert _version(store) == version + 1  # one MERGE
    assert len(_frame(store)) == 409 and len(open_store(tmp_path).liquidations()) == 409
    pd.testing.assert_frame_equal(_frame(store)[_inside(_frame(store), *window)].reset_index(drop=True),
                                  _plain(fixed))


def test_a_batch_removes_first_then_adds(filled):
    """Replacements and appends in one batch: removal applies to what was stored,
    appends add after it, and overlapping scopes do not remove each other's rows."""
    store, binance, bybit = filled
    fixed = binance[_inside(binance)]
    half = len(fixed) // 2
    extra = liqs(5, start="2025-07-01", seed=9)
    batch = Batch()
    a = batch.replace_liquidations(fixed.iloc[:half], exchanges=["binance"], start=START, end=END)
    b = batch.replace_liquidations(fixed.iloc[half:], exchanges=["binance"], start=START, end=END)
    c = batch.add_liquidations(extra)
    results = store.commit(batch)
    assert results[a].removed == len(fixed) and results[b].removed == 0  # a covered first
    assert results[a].added + results[b].added == len(fixed)
    assert results[c].new == 5
    after = _frame(store)
    pd.testing.assert_frame_equal(after[_inside(after)].reset_index(drop=True), _plain(fixed))
    assert len(after) == 555


# -- crash safety: a replace is one commit, or nothing ------------------------------------------------------
def test_exception_mid_replace_leaves_the_store_as_it_was(filled, monkeypatch):
    """The MERGE fails while writing (disk full): no commit, the same snapshot, every row as it was."""
    store, binance, _ = filled
    before, rows, version = tree_hash(store.root), _frame(store), _version(store)

    class Failing:
        def __init__(self, *a, **k):
            raise DeltaError("Generic LocalFileSystem error: Unable to copy data to file: "
                             "No space left on device (os error 28)")

    failing_merges(monkeypatch, Failing)
    from liqscope.models.store import StoreError

    with pytest.raises(StoreError, match="disk is full") as info:
        store.replace_liquidations(binance[_inside(binance)], exchanges=["binance"], start=START, end=END)
    assert not info.value.committed
    monkeypatch.undo()
    assert tree_hash(store.root) == before and _version(store) == version
    pd.testing.assert_frame_equal(_frame(open_store(store.root)), rows)


def test_removal_only_replace_cancelled_before_the_commit(filled):
    store, binance, _ = filled
    before = tree_hash(store.root)
    batch = Batch()
    batch.replace_liquidations(binance.iloc[:0], exchanges=["binance"], start=START, end=END)
    task = CancelAfter(0)
    with pytest.raises(Cancelled):
        store.commit(batch, task=task)
    assert task.checks == 1
    assert tree_hash(store.root) == before


def test_a_replace_is_one_commit_readers_see_before_or_after(filled):
    """A reader holding the snapshot before the MERGE still reads the old rows; the new snapshot has
    all the corrected ones: never a mix."""
    store, binance, _ = filled
    old_version = _version(store)
    old = _frame(store)
    fixed = binance[_inside(binance)]
    store.replace_liquidations(fixed, exchanges=["binance"], start=START, end=END)
    assert _version(store) == old_version + 1
    table = deltalake.DeltaTable(str(store.root / "liquidations"), version=old_version)
    assert table.get_add_actions(flatten=True).column("num_records").to_pylist()  # time travel still reads
    assert int(sum(table.get_add_actions(flatten=True).column("num_records").to_pylist())) == len(old)
