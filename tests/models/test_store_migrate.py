"""A schema-1 store (Parquet month files per exchange/symbol, written by Liqscope b141650) becomes Delta
tables on first use, or by ``liqscope store migrate``: the same rows, candles and gaps, verified before
anything is switched over; the old folders are kept in ``schema1/``; an interrupted or refused migration
leaves the old store as it was, and the next open completes it.

The fixture (tests/models/fixtures/store_v1, never regenerated) holds 485 liquidations -- binance 2025-04:
109 rows / 145,230.1495 USD, binance 2025-05: 216 / 287,852.84243 (with append segments), bybit 2025-05:
120 / 182,068.41134, okx 2025-05: 40 / 62,649.85008 --, 2000 binance BTCUSDT 1m candles, 48 bybit
ETHUSDT 1h candles and one recorder gap.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from liqscope.models.store import StoreError, delta_io, layout, migrate, open_store
from store_testutil import FIXTURES, run_cli, tree_hash

V1 = FIXTURES / "store_v1"
OLD = ("liquidations", "candles", "gaps")
TOTALS = {("binance", "2025-04"): (109, 145230.1495), ("binance", "2025-05"): (216, 287852.84243),
          ("bybit", "2025-05"): (120, 182068.41134), ("okx", "2025-05"): (40, 62649.85008)}
CANDLES = {("binance", "BTCUSDT", "1m"): 2000, ("bybit", "ETHUSDT", "1h"): 48}
COLS = ["ts", "exchange", "symbol", "asset", "side", "price", "qty", "notional_usd"]
REAL_SWAP = migrate._swap


@pytest.fixture
def root(tmp_path) -> Path:
    dest = tmp_path / "store"
    shutil.copytree(V1, dest)
    return dest


def old_hashes(root: Path) -> dict:
    """Every byte of the schema-1 store: its folders and store.json."""
    out = {name: tree_hash(root / name) for name in OLD}
    out["store.json"] = (root / "store.json").read_bytes()
    return out


def old_liquidations(root: Path) -> pd.DataFrame:
    """The schema-1 rows read straight from its Parquet files, times as Delta keeps them (microseconds)."""
    frames = [pq.read_table(f.path).to_pandas() for f in layout.scan(root, layout.LIQ)]
    return _plain(pd.concat(frames, ignore_index=True))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[COLS].astype({c: str for c in ("exchange", "symbol", "asset", "side")})
    out["ts"] = pd.to_datetime(out["ts"], utc=True).dt.floor("us").dt.as_unit("ns")
    return out.sort_values(COLS).reset_index(drop=True)


def totals(frame: pd.DataFrame) -> dict:
    month = frame["ts"].dt.strftime("%Y-%m")
    g = frame.groupby([frame["exchange"].astype(str), month])["notional_usd"].agg(["size", "sum"])
    return {k: (int(r["size"]), round(float(r["sum"]), 5)) for k, r in g.iterrows()}


def test_the_fixture_is_a_schema_1_store():
    assert json.loads((V1 / "store.json").read_text())["schema_version"] == 1
    assert totals(old_liquidations(V1)) == TOTALS


def test_first_use_migrates_to_delta_tables_with_the_same_rows(root):
    before = old_hashes(root)
    expected = old_liquidations(root)
    store = open_store(root)
    assert store.schema_version == 1 and store.needs_migration and store.has_data()
    frame = store.liquidations(counted=False).frame  # the first read converts
    meta = json.loads((root / "store.json").read_text())
    assert meta["schema_version"] == 2 and meta["migrated_from"] == 1 and meta["format"] == "liqscope-store"
    assert store.schema_version == 2 and not store.needs_migration
    for table in ("liquidations", "candles", "gaps", "coverage", "rollups"):
        assert (root / table / "_delta_log").is_dir(), table
    assert not (root / migrate.WORK).exists()
    # the old folders are kept, byte for byte, in schema1/
    backup = root / migrate.BACKUP
    assert {name: tree_hash(backup / name) for name in OLD} == {k: v for k, v in before.items() if k in OLD}
    assert (backup / "store.json").read_bytes() == before["store.json"]
    # the same rows, and the same totals per exchange and month
    assert totals(frame) == TOTALS
    pd.testing.assert_frame_equal(_plain(frame), expected)
    assert set(frame["source"].astype(str)) == {"migrated"}  # a schema-1 store never recorded sources
    assert len(store.liquidations()) == 485  # one source: every row counted


def test_candles_and_gaps_are_equal(root):
    store = open_store(root)
    assert {(e, s, i): len(store.candles(e, s, i)) for e, s, i, _a in store.candle_series()} == CANDLES
    old = {}  # the schema-1 candles, read straight from the fixture's files
    for f in layout.scan(V1, layout.CANDLES):
        old.setdefault((f.exchange, f.symbol, f.interval), []).append(pq.read_table(f.path).to_pandas())
    for (exchange, symbol, interval), parts in old.items():
        want = pd.concat(parts).set_index("ts").sort_index()[["open", "high", "low", "close", "volume"]]
        got = store.candles(exchange, symbol, interval)
        pd.testing.assert_frame_equal(got, want, check_freq=False, check_names=False)
    assert sorted(a for *_k, a in store.candle_series()) == ["BTC", "ETH"]
    gaps = store.gaps()
    want = pq.read_table(V1 / layout.GAPS_FILE).to_pandas()
    pd.testing.assert_frame_equal(gaps.reset_index(drop=True), want[["exchange", "start", "end", "reason"]])


def test_migrated_figures_are_exact(root):
    from liqscope.models.store import figures

    store = open_store(root)
    window = (pd.Timestamp("2025-04-03T05:00Z"), pd.Timestamp("2025-05-03T19:00Z"))
    raw = store.load_window(*window).summary(*window)
    got = figures.summary(store, *window)
    assert got["count"] == raw["count"] and got["total_usd"] == pytest.approx(raw["total_usd"], rel=1e-12)
    assert store.rebuild_rollups() == 0  # built by the migration


def test_store_migrate_command(root, capsys):
    code, out, err = run_cli(capsys, "--data-dir", root, "store", "migrate")
    assert code == 0, err
    assert "migrated" in out and str(root / migrate.BACKUP) in out
    assert json.loads((root / "store.json").read_text())["schema_version"] == 2
    code, out, err = run_cli(capsys, "--data-dir", root, "store", "migrate")
    assert code == 0 and "nothing to migrate" in out
    code, out, err = run_cli(capsys, "--data-dir", root, "store", "info")
    assert code == 0 and "migrated" in out and "okx" in out


def test_any_command_migrates_an_old_store(root, capsys):
    code, out, err = run_cli(capsys, "--data-dir", root, "summary", "--json", "--start", "2025-05-01",
                             "--end", "2025-05-04")
    assert code == 0, err
    result = json.loads(out)
    assert result["count"] == 216 + 120 + 40
    assert result["total_usd"] == pytest.approx(287852.84243 + 182068.41134 + 62649.85008)


@pytest.mark.parametrize("step", ["_verify", "_build"])
def test_an_interrupted_build_leaves_the_old_store_untouched_and_the_next_open_completes_it(root, monkeypatch, step):
    before = old_hashes(root)
    real = getattr(migrate, step)

    def crash(*a, **k):
        if step == "_build":
            real(*a, **k)  # everything built and verified, then the power goes
        raise OSError(5, "Input/output error (injected)")
    monkeypatch.setattr(migrate, step, crash)
    with pytest.raises(StoreError) as info:
        open_store(root).liquidations()
    assert "\n" not in str(info.value)
    assert old_hashes(root) == before  # the schema-1 store is whole: an older Liqscope still reads it
    assert json.loads((root / "store.json").read_text())["schema_version"] == 1
    assert not (root / migrate.BACKUP).exists() and not (root / "coverage").exists()
    assert not (root / migrate.WORK).exists()  # no half-built copy left behind
    monkeypatch.undo()
    store = open_store(root)
    assert store.needs_migration
    assert totals(store.liquidations(counted=False).frame) == TOTALS
    assert json.loads((root / "store.json").read_text())["schema_version"] == 2


def test_a_crash_before_the_switch_resumes_from_the_verified_build(root, monkeypatch):
    before = old_hashes(root)
    built = []
    real_build = migrate._build

    def build(*a, **k):
        built.append(1)
        return real_build(*a, **k)
    monkeypatch.setattr(migrate, "_build", build)

    def crash(root_, work):
        raise OSError(5, "Input/output error (injected)")
    monkeypatch.setattr(migrate, "_swap", crash)
    with pytest.raises(StoreError):
        open_store(root).liquidations()
    assert old_hashes(root) == before and (root / migrate.WORK / migrate.READY).exists()
    monkeypatch.setattr(migrate, "_swap", REAL_SWAP)
    store = open_store(root)
    assert totals(store.liquidations(counted=False).frame) == TOTALS
    assert built == [1]  # resumed: the verified tables were not built again
    assert not (root / migrate.WORK).exists()


def test_a_crash_in_the_middle_of_the_switch_completes_at_the_next_open(root, monkeypatch):
    """The switch is a few renames: a crash between two of them is finished by the next open."""
    expected = old_liquidations(root)
    renames = []
    real_rename = Path.rename

    def rename(self, target):
        renames.append(self.name)
        if len(renames) == 2:
            raise OSError(5, "Input/output error (injected)")
        return real_rename(self, target)
    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(StoreError):
        open_store(root).liquidations()
    monkeypatch.undo()
    assert json.loads((root / "store.json").read_text())["schema_version"] == 1  # not switched yet
    store = open_store(root)
    frame = store.liquidations(counted=False).frame
    assert totals(frame) == TOTALS
    pd.testing.assert_frame_equal(_plain(frame), expected)
    assert {name: tree_hash(root / migrate.BACKUP / name) for name in OLD} == {
        name: tree_hash(V1 / name) for name in OLD}


def test_a_verification_mismatch_refuses_in_one_line_and_changes_nothing(root, monkeypatch, capsys):
    before = old_hashes(root)
    real_append = delta_io.append

    def lossy(loc, spec, table, meta=None):
        if spec.name == "liquidations" and table.num_rows > 1:
            table = table.slice(1)  # a writer that loses a row
        return real_append(loc, spec, table, meta)
    monkeypatch.setattr(delta_io, "append", lossy)
    with pytest.raises(StoreError) as info:
        open_store(root).liquidations()
    text = str(info.value)
    assert "\n" not in text and "migration check failed" in text and "nothing was changed" in text
    code, out, err = run_cli(capsys, "--data-dir", root, "store", "migrate")
    errors = [ln for ln in err.splitlines() if not ln.startswith("liqscope: migrating")]  # progress lines
    assert code == 2 and len(errors) == 1 and "migration check failed" in errors[0], err
    assert old_hashes(root) == before
    assert sorted(p.name for p in root.iterdir()) == sorted([*OLD, "store.json", "README.md"])
    monkeypatch.undo()
    assert totals(open_store(root).liquidations(counted=False).frame) == TOTALS
