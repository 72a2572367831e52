"""Streaming import (issue 12, item 8): files are read, converted and committed in batches, so memory
holds a batch, not the file -- and the store ends up exactly as if the file had been read whole.

Batches are made small here (``batch_rows`` and ``csvread.BLOCK``) so a file of a few hundred rows
crosses many batch boundaries: repeats, out-of-order rows, unknown sides, contract conversions and
unknown symbols on both sides of a boundary must read and count as in one batch. Memory is asserted
structurally (the most rows any one store commit holds does not grow with the file), never by timing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liqscope.models.importers import InputError, UnknownContractSizeError, csvread, import_files, read_file
from liqscope.models.store import Store, open_store
from store_testutil import FIXTURES

DAY = pd.Timestamp("2024-03-01", tz="UTC")
HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
# (tardis exchange, symbol, price): linear base units, OKX linear contracts (0.01 BTC), Bybit inverse
# (1 USD), and a symbol of no known scheme (its own asset, with a warning)
PAIRS = [("binance-futures", "BTCUSDT", 61000.0), ("binance-futures", "ETHUSDT", 3400.0),
         ("okex-swap", "BTC-USDT-SWAP", 61000.0), ("bybit", "BTCUSD", 61000.0),
         ("bybit", "ZZZ-QQQ", 2.5)]


def tardis_lines(n: int, seed: int = 1, *, day: pd.Timestamp = DAY) -> list[str]:
    """``n`` Tardis liquidation lines inside ``day``, mostly in time order, with what a real file holds:
    exact repeats (next to each other), a few rows out of order, 'unknown' sides, blank lines."""
    rng = np.random.default_rng(seed)
    t0 = day.value // 1000
    ts = np.sort(t0 + rng.integers(0, 86_400_000_000 - 1, n))
    lines = []
    for i in range(n):
        ex, sym, price = PAIRS[int(rng.integers(len(PAIRS)))]
        side = "unknown" if rng.random() < 0.02 else ("sell" if rng.random() < 0.6 else "buy")
        p = round(price * (1 + rng.normal(0, 0.01)), 2)
        amount = int(rng.integers(1, 500)) if sym in ("BTC-USDT-SWAP", "BTCUSD") else round(rng.uniform(0.001, 3), 4)
        t = int(ts[i])
        if rng.random() < 0.03:
            t -= int(rng.integers(1, 3600_000_000))  # out of order
            t = max(t, t0)
        line = f"{ex},{sym},{t},{t + 1500},,{side},{p},{amount}\n"
        lines.append(line)
        if rng.random() < 0.1:
            lines.append(line)  # an exact repeat, counted once
        if rng.random() < 0.01:
            lines.append("\n")
    return lines


def write_tardis(path, n: int, seed: int = 1, **kw):
    path.write_text(HEADER + "".join(tardis_lines(n, seed, **kw)))
    return path


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few lines, so small files cross many block and batch boundaries."""
    monkeypatch.setattr(csvread, "BLOCK", 256)


class Commits:
    """Every store commit an import makes, by the rows it offers."""

    def __init__(self, monkeypatch):
        self.rows: list[int] = []
        real = Store.commit

        def commit(store, batch, *, task=None, **kw):
            self.rows.append(sum(it.table.num_rows for it in batch.items))
            return real(store, batch, task=task, **kw)
        monkeypatch.setattr(Store, "commit", commit)


def contents(store, coverage: bool = True) -> tuple:
    """Every stored row (all sources) and the merged coverage, comparable."""
    f = store.liquidations(counted=False).frame
    rows = sorted(zip(pd.DatetimeIndex(f["ts"]).asi8.tolist(), f["exchange"].astype(str), f["symbol"].astype(str),
                      f["asset"].astype(str), f["side"].astype(str), f["price"].round(9), f["qty"].round(12),
                      f["notional_usd"].round(6), f["source"].astype(str)))
    if not coverage:
        return rows
    cov = {k: (a.tolist(), b.tolist()) for k, (a, b) in store.coverage().spans.items()}
    return rows, cov


def covered_within(batched, whole) -> None:
    """A file committed in batches covers, per symbol, the span of each batch's rows: every stored row is
    covered, and nothing beyond what the whole file covers (only the gaps between batches are not)."""
    spans, outer = batched.coverage().spans, whole.coverage().spans
    assert spans.keys() == outer.keys()
    f = batched.liquidations(counted=False).frame
    for (source, ex, sym), (a, b) in spans.items():
        [lo], [hi] = outer[(source, ex, sym)]
        assert lo <= a.min() and b.max() <= hi
        ts = pd.DatetimeIndex(f["ts"][(f["exchange"] == ex) & (f["symbol"] == sym)]).asi8 // 1000
        i = np.searchsorted(a, ts, side="right") - 1
        assert (i >= 0).all() and (ts < b[i]).all()


def report_tuple(r) -> tuple:
    return r.format, r.kind, r.rows, r.new, r.skipped, r.repeated, r.warnings, r.first, r.last


def test_small_batches_store_what_one_batch_stores(tmp_path, small_blocks, monkeypatch):
    f = write_tardis(tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", 600)
    [whole] = import_files([f], store=open_store(tmp_path / "whole"), contract_size={"ZZZ-QQQ": 1})
    commits = Commits(monkeypatch)
    [batched] = import_files([f], store=open_store(tmp_path / "batched"), contract_size={"ZZZ-QQQ": 1},
                             batch_rows=25)
    assert len(commits.rows) > 10  # really in batches
    assert report_tuple(batched) == report_tuple(whole)
    assert contents(open_store(tmp_path / "batched")) == contents(open_store(tmp_path / "whole"))
    # the warnings a whole read gives, summed over the batches
    assert any("rows with side 'unknown' skipped" in w for w in whole.warnings)
    assert any(w.startswith("amount converted from contracts: ") for w in whole.warnings)
    assert any("no known symbol scheme for ZZZ-QQQ" in w for w in whole.warnings)
    assert any("out of time order" in w for w in whole.warnings)
    assert whole.repeated > 0


def test_read_file_and_import_agree_on_the_file(tmp_path, small_blocks):
    f = write_tardis(tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", 300, seed=3)
    with open(f, "a") as fh:  # a second symbol of unknown size, only in the file's last line
        fh.write("okex-swap,ABC-USDT-SWAP,1709294000000000,1709294000001000,,sell,1.5,3\n")
    with pytest.raises(UnknownContractSizeError) as refused:  # no known unit: refused in both, the same way
        read_file(f)
    with pytest.raises(UnknownContractSizeError) as streamed:
        import_files([f], store=open_store(tmp_path / "s"), batch_rows=10)
    assert str(streamed.value) == str(refused.value)
    assert "also unknown: ABC-USDT-SWAP" in str(refused.value)
    assert streamed.value.symbols == refused.value.symbols == ["ZZZ-QQQ", "ABC-USDT-SWAP"]
    assert not (tmp_path / "s").exists() or not open_store(tmp_path / "s").has_data()


def test_a_tardis_day_file_in_batches_covers_its_day(tmp_path, small_blocks):
    f = write_tardis(tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", 400, seed=5)
    import_files([f], store=(s := open_store(tmp_path / "s")), contract_size={"ZZZ-QQQ": 1}, batch_rows=20)
    spans = s.coverage().spans
    day = (DAY.value // 1000, (DAY + pd.Timedelta(days=1)).value // 1000)
    assert spans and all((a.tolist(), b.tolist()) == ([day[0]], [day[1]]) for a, b in spans.values())
    assert {k[0] for k in spans} == {"tardis"}


def test_the_most_rows_a_commit_holds_does_not_grow_with_the_file(tmp_path, small_blocks, monkeypatch):
    """Memory is bounded by the batch: a file 8x longer makes 8x the commits, none of them larger."""
    batch = 40
    biggest = {}
    counts = {}
    for n in (250, 2000):
        (tmp_path / str(n)).mkdir()
        f = write_tardis(tmp_path / str(n) / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", n, seed=n)
        commits = Commits(monkeypatch)
        [r] = import_files([f], store=open_store(tmp_path / f"s{n}"), contract_size={"ZZZ-QQQ": 1}, batch_rows=batch)
        assert r.new == r.rows > 0.8 * n
        biggest[n], counts[n] = max(commits.rows), len(commits.rows)
        monkeypatch.undo()
        monkeypatch.setattr(csvread, "BLOCK", 256)
    # a batch is cut at the first block past ``batch`` rows (a block is a few lines here)
    bound = batch + 8
    assert biggest[250] <= bound and biggest[2000] <= bound
    assert counts[2000] >= 6 * counts[250]


def test_reimport_in_batches_adds_nothing(tmp_path, small_blocks):
    f = write_tardis(tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", 500, seed=7)
    s = open_store(tmp_path / "s")
    [first] = import_files([f], store=s, contract_size={"ZZZ-QQQ": 1}, batch_rows=30)
    before = contents(open_store(tmp_path / "s"))
    [again] = import_files([f], store=open_store(tmp_path / "s"), contract_size={"ZZZ-QQQ": 1}, batch_rows=30)
    assert (again.rows, again.new) == (first.rows, 0)
    assert contents(open_store(tmp_path / "s")) == before


def test_a_bad_row_late_in_a_long_file_keeps_the_batches_before_it_and_a_retry_completes(tmp_path, small_blocks):
    """Validated as it streams: the error is the one-line error of a whole read (same line, column and
    words), saying what was already stored; the same import after the fix adds exactly the rest."""
    lines = tardis_lines(400, seed=11)
    good = tmp_path / "good" / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
    good.parent.mkdir()
    good.write_text(HEADER + "".join(lines))
    bad_at = 350
    broken = list(lines)
    broken[bad_at] = broken[bad_at].replace(",sell,", ",sideways,").replace(",buy,", ",sideways,")
    if ",sideways," not in broken[bad_at]:  # an 'unknown' or blank line: break the next one
        bad_at += 1
        broken[bad_at] = broken[bad_at].replace(",sell,", ",sideways,").replace(",buy,", ",sideways,")
    f = tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
    f.write_text(HEADER + "".join(broken))
    with pytest.raises(InputError) as whole:
        read_file(f)
    s = open_store(tmp_path / "s")
    with pytest.raises(InputError) as streamed:
        import_files([f], store=s, contract_size={"ZZZ-QQQ": 1}, batch_rows=30)
    line = bad_at + 2  # the header is line 1
    assert f"line {line}, column 'side': unknown side 'sideways'" in str(whole.value)
    assert str(streamed.value).startswith(str(whole.value) + " (partly imported: ")
    assert streamed.value.committed > 0 and "\n" not in str(streamed.value)
    kept = open_store(tmp_path / "s").liquidations(counted=False).frame
    assert 0 < len(kept) < 400
    assert len(kept) <= bad_at  # only rows of lines before the bad one
    # fixed: the same import completes it, adding only what was missing
    f.write_text(HEADER + "".join(lines))
    [done] = import_files([f], store=open_store(tmp_path / "s"), contract_size={"ZZZ-QQQ": 1}, batch_rows=30)
    assert done.new == done.rows - len(kept)
    [ref] = import_files([f], store=open_store(tmp_path / "ref"), contract_size={"ZZZ-QQQ": 1})
    assert contents(open_store(tmp_path / "s")) == contents(open_store(tmp_path / "ref"))
    assert ref.new == done.rows


def test_a_bad_row_in_an_import_of_less_than_a_batch_leaves_the_store_unchanged(tmp_path, small_blocks):
    lines = tardis_lines(100, seed=13)
    i = next(k for k, x in enumerate(lines) if ",sell," in x and k > 60)
    lines[i] = lines[i].replace(",sell,", ",sideways,")
    f = write_tardis(tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", 1)
    f.write_text(HEADER + "".join(lines))
    with pytest.raises(InputError) as info:
        import_files([FIXTURES / "BTCUSDT-liquidationSnapshot-2023-07-31.csv", f],
                     store=open_store(tmp_path / "s"), contract_size={"ZZZ-QQQ": 1})
    assert info.value.committed == 0 and "partly" not in str(info.value)
    assert not open_store(tmp_path / "s").has_data()


def test_generic_csv_and_parquet_in_batches_match_one_batch(tmp_path, small_blocks, monkeypatch):
    from liqscope.models.importers import source
    monkeypatch.setattr(source, "PARQUET_BATCH", 16)
    rng = np.random.default_rng(2)
    n = 300
    ts = np.sort(pd.Timestamp("2024-05-01", tz="UTC").value // 10**6 + rng.integers(0, 86_400_000, n))
    ts[::37] -= 1000  # some out of order
    frame = pd.DataFrame({"time": ts, "sym": rng.choice(["BTCUSDT", "ETHUSDT", "QQQXYZ"], n),
                          "dir": rng.choice(["long", "short"], n), "px": rng.uniform(100, 200, n).round(2),
                          "size": rng.uniform(0.1, 5, n).round(3)})
    frame = pd.concat([frame, frame.iloc[[10, 11, 200]]]).sort_values("time", kind="stable")  # repeats
    csv = tmp_path / "bybit-liqs.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "bybit-liqs.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=50)
    kw = dict(exchange="bybit", mapping="ts=time,symbol=sym,side=dir,price=px,qty=size",
              contract_size="ETHUSDT=0.1")
    for path in (csv, parquet):
        one, many = open_store(tmp_path / f"w-{path.suffix}"), open_store(tmp_path / f"b-{path.suffix}")
        [whole] = import_files([path], store=one, **kw)
        [batched] = import_files([path], store=many, batch_rows=20, **kw)
        assert report_tuple(batched) == report_tuple(whole), path
        assert contents(open_store(many.root), False) == contents(open_store(one.root), False)
        covered_within(open_store(many.root), open_store(one.root))
        assert whole.repeated == 3
        assert any(w.startswith("qty converted from contracts: ETHUSDT") for w in whole.warnings)
        assert {k[0] for k in open_store(many.root).coverage().spans} == {f"file:{path.name}"}


def test_binance_snapshots_in_batches_count_each_repeat_once(tmp_path, small_blocks):
    src = FIXTURES / "BTCUSDT-liquidationSnapshot-2023-07-31.csv"
    lines = src.read_text().splitlines(keepends=True)
    f = tmp_path / src.name
    f.write_text(lines[0] + "".join(line + line for line in lines[1:]))  # every order listed twice
    [whole] = import_files([f], store=open_store(tmp_path / "w"))
    [batched] = import_files([f], store=open_store(tmp_path / "b"), batch_rows=1)
    assert report_tuple(batched) == report_tuple(whole)
    assert contents(open_store(tmp_path / "b"), False) == contents(open_store(tmp_path / "w"), False)
    covered_within(open_store(tmp_path / "b"), open_store(tmp_path / "w"))
    assert whole.repeated == 5


def test_several_files_of_less_than_a_batch_are_one_commit(tmp_path, monkeypatch):
    commits = Commits(monkeypatch)
    files = [FIXTURES / n for n in ("BTCUSDT-liquidationSnapshot-2023-07-31.csv",
                                    "binance-futures_liquidations_2024-03-01_PERPETUALS.csv", "BTCUSDT-1m-2025-01.csv")]
    import_files(files, store=open_store(tmp_path / "s"))
    assert len(commits.rows) == 1


def test_a_batched_import_refreshes_rollups_once_at_the_end(tmp_path, monkeypatch):
    """Batches defer their rollups; the end of the import refreshes each touched month once, and the
    rollups then answer for the raw rows (liqscope summary over whole days equals the raw rows)."""
    from liqscope.models.importers import import_files
    from liqscope.models.store import figures, open_store, rollups

    calls = []
    real = rollups.refresh
    monkeypatch.setattr(rollups, "refresh", lambda loc, parts, *a, **k: calls.append(set(parts)) or real(loc, parts, *a, **k))
    path = tmp_path / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
    ts0 = 1709251200000000
    rows = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    for i in range(3000):
        rows.append(f"binance-futures,BTCUSDT,{ts0 + i * 20_000_000},{ts0 + i * 20_000_000},{i},"
                    f"{'sell' if i % 3 else 'buy'},{60000 + i % 50},{0.01 + (i % 7) / 100:.3f}")
    path.write_text("\n".join(rows) + "\n")
    store = open_store(tmp_path / "s")
    import_files([str(path)], store=store, batch_rows=500)
    assert calls == [{("binance", "2024-03")}]
    day = pd.Timestamp("2024-03-01", tz="UTC")
    parts = figures.split(store, day, day + pd.Timedelta(days=1))
    assert parts.rows.num_rows and not parts.raw  # valid rollups answer the whole day
    raw = store.liquidations(day, day + pd.Timedelta(days=1)).totals()
    got = figures.summary(store, day - pd.Timedelta(days=2), day + pd.Timedelta(days=3))
    assert got["count"] == raw.count == 3000
    assert round(got["total_usd"], 2) == round(raw.total_usd, 2)
