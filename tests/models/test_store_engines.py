"""Other engines read the store with no Liqscope code: it is plain Delta Lake tables.

For a window, deltalake → pyarrow (the snapshot's file list, read by pyarrow), Polars ``scan_delta`` and
DuckDB over the Arrow dataset each compute the total, long/short USD, count and per-exchange USD, and
must equal ``liqscope summary --json``. Candles and gaps read the same way must hold the rows
``store.info()`` reports. The SQL the README gives for "one row per event" is checked against the
store's own source precedence, and a parquet glob is shown not to be the table.

A subprocess that reads through all three engines and exits runs twenty times: pyarrow dataset scanners
that outlive interpreter teardown abort the process (apache/arrow#34314). DuckDB over
``DeltaTable.to_pyarrow_dataset()`` (a Python filesystem) does abort that way now and then, which is why
these reads hand pyarrow the snapshot's file list on its native filesystem instead.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest
from engine_readers import (arrow_dataset, arrow_totals, duckdb_over_arrow, duckdb_totals, offline_delta_extension,
                            polars_totals, window_bounds)
from store_testutil import candles, liqs, run_cli

from liqscope.models.store import Batch, open_store

SOURCE = "tardis"  # one source: every stored row is counted, so engines need no precedence
EXCHANGES = ("binance", "bybit")
WINDOWS = [
    ("2025-05-31T06:00:00Z", "2025-06-02T12:00:00Z"),  # across the month boundary, both exchanges
    ("2025-06-03T00:00:00Z", "2025-06-03T09:30:00Z"),  # inside one month
    ("2025-05-01T00:00:00Z", "2025-07-01T00:00:00Z"),  # everything
]

# One row per event with the default precedence, verbatim from the README ("Reading the store with other
# engines"): a row counts unless a source ranked higher covers its exchange, symbol and time in ``coverage``.
COUNTED_SQL = """
WITH cov AS (
  SELECT exchange, symbol, "start", "end",
         CASE WHEN source = 'tardis' THEN 0 WHEN source = 'binance-snapshot' THEN 1
              WHEN source LIKE 'file:%' THEN 2 WHEN source LIKE '%-ws' THEN 3
              WHEN source = 'migrated' THEN 4 ELSE 5 END AS rank
  FROM coverage)
SELECT l.* FROM liquidations AS l
WHERE NOT EXISTS (
  SELECT 1 FROM cov
  WHERE cov.exchange = l.exchange AND cov.symbol IN (l.symbol, '*')
    AND l.ts >= cov."start" AND l.ts < cov."end"
    AND cov.rank < CASE WHEN l.source = 'tardis' THEN 0 WHEN l.source = 'binance-snapshot' THEN 1
                        WHEN l.source LIKE 'file:%' THEN 2 WHEN l.source LIKE '%-ws' THEN 3
                        WHEN l.source = 'migrated' THEN 4 ELSE 5 END)
"""
# The README's Spark form: the same condition as an ANTI JOIN (Spark quotes with backticks, DuckDB with ").
COUNTED_SQL_ANTI_JOIN = """
WITH cov AS (
  SELECT exchange, symbol, `start`, `end`,
         CASE WHEN source = 'tardis' THEN 0 WHEN source = 'binance-snapshot' THEN 1
              WHEN source LIKE 'file:%' THEN 2 WHEN source LIKE '%-ws' THEN 3
              WHEN source = 'migrated' THEN 4 ELSE 5 END AS rank
  FROM coverage)
SELECT l.* FROM liquidations AS l
ANTI JOIN cov
  ON cov.exchange = l.exchange AND cov.symbol IN (l.symbol, '*')
 AND l.ts >= cov.`start` AND l.ts < cov.`end`
 AND cov.rank < CASE WHEN l.source = 'tardis' THEN 0 WHEN l.source = 'binance-snapshot' THEN 1
                     WHEN l.source LIKE 'file:%' THEN 2 WHEN l.source LIKE '%-ws' THEN 3
                     WHEN l.source = 'migrated' THEN 4 ELSE 5 END
""".replace("`", '"')


# -- the store ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Two exchanges x two months of one source's liquidations, a candle series per exchange, gaps."""
    path = tmp_path_factory.mktemp("engines") / "store"
    batch = Batch()
    for i, exchange in enumerate(EXCHANGES):
        for j, start in enumerate(("2025-05-29T08:00", "2025-06-01T04:00")):
            batch.add_liquidations(liqs(120, start=start, span="3D", exchange=exchange, seed=10 * i + j + 1),
                                   source=SOURCE)
        batch.add_candles(candles(90, start="2025-05-31T23:00", base=100.0 + i), exchange=exchange,
                          symbol="BTCUSDT", interval="1m", asset="BTC")
    batch.add_candles(candles(48, start="2025-05-30", freq="1h"), exchange="binance", symbol="ETHUSDT",
                      interval="1h", asset="ETH")
    batch.add_gaps(pd.DataFrame({
        "exchange": ["binance", "bybit", "binance"],
        "start": pd.to_datetime(["2025-05-31T22:00Z", "2025-06-01T01:00Z", "2025-06-02T03:00Z"]),
        "end": pd.to_datetime(["2025-05-31T22:05Z", "2025-06-01T01:30Z", "2025-06-02T03:01Z"]),
        "reason": ["disconnect", "stale", "disconnect"]}))
    open_store(path).commit(batch)
    return path


@pytest.fixture(scope="module")
def info(root) -> pd.DataFrame:
    return open_store(root).info()


def summary(capsys, root: Path, start: str, end: str) -> dict:
    code, out, err = run_cli(capsys, "summary", "--data-dir", root, "--json", "--start", start, "--end", end,
                             "--top", "0")
    assert code == 0, err
    return json.loads(out)


def assert_same(got: dict, want: dict, engine: str) -> None:
    for key in ("total_usd", "long_usd", "short_usd"):
        assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), f"{engine}: {key}"
    assert got["count"] == want["count"], f"{engine}: count"
    got_ex = {k: v for k, v in got["by_exchange"].items() if v}
    assert got_ex == pytest.approx(want["by_exchange"], rel=1e-6), f"{engine}: by_exchange"


# -- liquidations: every engine's totals are `liqscope summary`'s -------------------------------------------
def test_the_store_is_single_source_so_counted_is_stored(root):
    store = open_store(root)
    assert len(store.liquidations(counted=True)) == len(store.liquidations(counted=False)) == 480


@pytest.mark.parametrize("window", WINDOWS, ids=["month-boundary", "one-month", "everything"])
def test_engines_match_liqscope_summary(root, capsys, window):
    start, end = window
    want = summary(capsys, root, start, end)
    assert want["count"] > 0 and want["long_usd"] > 0 and want["short_usd"] > 0
    assert_same(arrow_totals(root / "liquidations", start, end), want, "deltalake+pyarrow")
    assert_same(polars_totals(root / "liquidations", start, end), want, "polars")
    assert_same(duckdb_totals(duckdb_over_arrow(root, "liquidations"), start, end), want, "duckdb/arrow")


def test_the_month_boundary_window_reads_both_exchanges_and_months(root):
    start, end = WINDOWS[0]
    got = polars_totals(root / "liquidations", start, end)
    assert set(got["by_exchange"]) == set(EXCHANGES)
    months = (pl.scan_delta(str(root / "liquidations"))
              .filter(pl.col("ts").is_between(*window_bounds(start, end), closed="left"))
              .select(pl.col("month").unique().sort()).collect()["month"].to_list())
    assert months == ["2025-05", "2025-06"]


def test_duckdb_delta_scan_when_the_extension_is_installed(root, capsys):
    con = offline_delta_extension()
    if con is None:
        pytest.skip("DuckDB's delta extension is not installed here (the test never downloads it)")
    con.execute(f"CREATE VIEW liquidations AS SELECT * FROM delta_scan('{(root / 'liquidations').as_uri()}')")
    start, end = WINDOWS[0]
    assert_same(duckdb_totals(con, start, end), summary(capsys, root, start, end), "duckdb/delta_scan")


# -- candles and gaps: every engine sees the rows store.info() reports --------------------------------------
def _info_rows(info: pd.DataFrame, kind: str, keys: list[str]) -> dict:
    part = info[info["kind"] == kind]
    return {tuple(r[k] for k in keys): int(r["rows"]) for _, r in part.iterrows()}


@pytest.mark.parametrize("kind,keys", [("candles", ["exchange", "symbol", "interval"]),
                                       ("gaps", ["exchange"]),
                                       ("liquidations", ["exchange", "symbol"])])
def test_engines_read_every_table_with_info_row_counts(root, info, kind, keys):
    want = _info_rows(info, kind, keys)
    assert want and sum(want.values()) > 0
    path = root / kind

    t = arrow_dataset(path).to_table()
    g = t.group_by(keys).aggregate([([], "count_all")])
    arrow = {tuple(r[k] for k in keys): r["count_all"] for r in g.to_pylist()}

    g = pl.scan_delta(str(path)).group_by(keys).agg(pl.len()).collect()
    polars = {tuple(r[k] for k in keys): r["len"] for r in g.iter_rows(named=True)}

    con = duckdb_over_arrow(root, kind)
    cols = ", ".join(keys)
    rows = con.execute(f"SELECT {cols}, count(*) FROM {kind} GROUP BY {cols}").fetchall()
    duck = {tuple(r[:-1]): r[-1] for r in rows}

    assert arrow == want
    assert polars == want
    assert duck == want


def test_engines_read_candle_values_and_gap_times(root):
    store = open_store(root)
    want = store.candles("binance", "BTCUSDT", "1m")
    got = (pl.scan_delta(str(root / "candles"))
           .filter((pl.col("exchange") == "binance") & (pl.col("symbol") == "BTCUSDT") & (pl.col("interval") == "1m"))
           .sort("ts").collect())
    assert got["close"].to_list() == want["close"].tolist()
    assert [t.isoformat() for t in got["ts"].to_list()] == [t.isoformat() for t in want.index.to_pydatetime()]
    gaps = duckdb_over_arrow(root, "gaps").execute(
        'SELECT exchange, "start", "end", reason FROM gaps ORDER BY "start"').fetchall()
    assert len(gaps) == 3
    assert gaps == [(r.exchange, r.start.to_pydatetime(), r.end.to_pydatetime(), r.reason)
                    for r in store.gaps().itertuples()]


# -- several sources: the README's precedence SQL counts what Liqscope counts -------------------------------
@pytest.mark.parametrize("sql", [COUNTED_SQL, COUNTED_SQL_ANTI_JOIN], ids=["not-exists", "anti-join"])
def test_readme_precedence_sql_counts_one_row_per_event(tmp_path, capsys, sql):
    root = tmp_path / "store"
    store = open_store(root)
    store.append_liquidations(liqs(80, start="2025-05-30", span="2D", exchange="binance", seed=5), source="tardis")
    # the live stream overlaps tardis's second day and runs on past it; bybit has only the stream
    store.append_liquidations(liqs(80, start="2025-05-31", span="2D", exchange="binance", seed=6),
                              source="binance-ws")
    store.append_liquidations(liqs(40, start="2025-05-31", span="1D", exchange="bybit", seed=7), source="bybit-ws")
    stored = len(store.liquidations(counted=False))
    counted = store.liquidations(counted=True).frame
    assert stored == 200 and 120 < len(counted) < stored  # some stream rows are shadowed, not all

    con = duckdb_over_arrow(root, "liquidations", "coverage")
    con.execute(f"CREATE VIEW counted AS {sql}")
    n, usd, sources = con.execute("SELECT count(*), sum(notional_usd), count(DISTINCT source) FROM counted").fetchone()
    assert n == len(counted)
    assert usd == pytest.approx(float(counted["notional_usd"].sum()), rel=1e-9)
    assert sources == 3

    start, end = "2025-05-30T00:00:00Z", "2025-06-03T00:00:00Z"
    want = summary(capsys, root, start, end)
    n, usd = con.execute("SELECT count(*), sum(notional_usd) FROM counted "
                         "WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ", [start, end]).fetchone()
    assert (n, usd) == (want["count"], pytest.approx(want["total_usd"], rel=1e-6))
    assert duckdb_totals(con, start, end)["count"] == stored > want["count"]  # the raw table holds every source


def test_a_parquet_glob_is_not_the_table(tmp_path):
    """Replaced rows stay on disk until a vacuum: only the Delta log says which files are the table."""
    root = tmp_path / "store"
    store = open_store(root)
    frame = liqs(50, start="2025-05-09", exchange="binance")
    store.append_liquidations(frame, source=SOURCE)
    store.replace_liquidations(frame.iloc[:20], exchanges="binance", start="2025-05-09", end="2025-05-12",
                               source=SOURCE)
    path = root / "liquidations"
    glob = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}/**/*.parquet')").fetchall()[0][0]
    assert glob > 20
    assert arrow_dataset(path).count_rows() == 20
    assert pl.scan_delta(str(path)).select(pl.len()).collect().item() == 20
    assert len(store.liquidations(counted=False)) == 20


# -- exiting after reading never aborts -------------------------------------------------------------------
EXIT_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    from pathlib import Path
    import polars as pl
    from liqscope.models.store import open_store
    import engine_readers as engines

    root = Path({root!r})
    store = open_store(root)
    n = len(store.liquidations({start!r}, {end!r}))
    store.load_window({start!r}, {end!r})
    a = engines.arrow_totals(root / "liquidations", {start!r}, {end!r})
    p = engines.polars_totals(root / "liquidations", {start!r}, {end!r})
    con = engines.duckdb_over_arrow(root, "liquidations", "candles", "gaps")
    d = engines.duckdb_totals(con, {start!r}, {end!r})
    con.execute("SELECT * FROM liquidations LIMIT 1").fetchall()  # a scan left unfinished
    con.execute("SELECT * FROM candles LIMIT 1").fetchall()
    pl.scan_delta(str(root / "gaps")).head(1).collect()
    assert n == a["count"] == p["count"] == d["count"], (n, a["count"], p["count"], d["count"])
    print(n)
""")


def test_a_process_that_reads_through_every_engine_exits_cleanly_20_times(root):
    start, end = WINDOWS[0]
    script = EXIT_SCRIPT.format(here=str(Path(__file__).parent), root=str(root), start=start, end=end)
    want = str(len(open_store(root).liquidations(start, end)))

    def run(_):
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
        results = list(pool.map(run, range(20)))
    failures = [(i, r.returncode, r.stderr.strip().splitlines()[-3:]) for i, r in enumerate(results)
                if r.returncode != 0]
    assert not failures, f"{len(failures)}/20 runs failed (exit code, stderr tail): {failures}"
    assert {r.stdout.strip() for r in results} == {want}
