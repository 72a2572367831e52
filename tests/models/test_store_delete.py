"""``liqscope store delete``: a preview first, then an atomic delete only when confirmed."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from liqscope.models.cli import main
from liqscope.models.store import Scope, open_store
from store_testutil import failing_merges, liqs, tree_hash

RANGE = ["--start", "2025-05-09", "--end", "2025-05-10"]


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "store")
    s.append_liquidations(liqs(200, seed=3))  # binance BTCUSDT + ETHUSDT over 2025-05-09..10
    s.append_liquidations(liqs(50, seed=4, exchange="okx", symbols=("BTC-USDT-SWAP",)))
    return s


def run(capsys, store, *argv):
    try:
        code = main(["--data-dir", str(store.root), "store", "delete", *map(str, argv)])
    except SystemExit as exc:  # argparse: one line, status 2
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def in_range(frame: pd.DataFrame, exchange: str, symbol: str | None = None) -> pd.DataFrame:
    t = frame["ts"]
    keep = (frame["exchange"] == exchange) & (t >= pd.Timestamp("2025-05-09", tz="UTC")) & \
           (t < pd.Timestamp("2025-05-10", tz="UTC"))
    if symbol:
        keep &= frame["symbol"] == symbol
    return frame[keep]


def test_without_yes_it_only_previews_rows_and_usd_per_exchange_and_symbol(store, capsys):
    before = tree_hash(store.root)
    frame = store.liquidations().frame
    code, out, err = run(capsys, store, "--exchange", "binance", *RANGE)
    assert code == 0
    assert "nothing deleted (pass --yes to delete)" in err
    assert tree_hash(store.root) == before
    doomed = in_range(frame, "binance")
    for sym in ("BTCUSDT", "ETHUSDT"):
        part = doomed[doomed["symbol"] == sym]
        line = next(ln for ln in out.splitlines() if ln.startswith("binance") and sym in ln)
        assert f"{len(part):,}" in line.split() and f"{part['notional_usd'].sum():,.2f}" in line.split()
    total = next(ln for ln in out.splitlines() if ln.startswith("total")).split()
    assert total[1:] == [f"{len(doomed):,}", f"{doomed['notional_usd'].sum():,.2f}"]
    assert "okx" not in out


def test_yes_deletes_exactly_the_previewed_rows(store, capsys):
    frame = store.liquidations().frame
    doomed = in_range(frame, "binance", "ETHUSDT")
    code, out, err = run(capsys, store, "--exchange", "Binance", "--symbol", "ETHUSDT", *RANGE, "--yes")
    assert code == 0, err
    assert out.splitlines()[-1] == f"deleted {len(doomed):,} rows"
    after = store.liquidations().frame
    assert len(after) == len(frame) - len(doomed)
    assert in_range(after, "binance", "ETHUSDT").empty
    assert len(in_range(after, "binance", "BTCUSDT")) == len(in_range(frame, "binance", "BTCUSDT"))
    assert len(after[after["exchange"] == "okx"]) == len(frame[frame["exchange"] == "okx"])
    code, out, _ = run(capsys, store, "--exchange", "binance", "--symbol", "ETHUSDT", *RANGE, "--yes")
    assert code == 0 and "nothing to delete" in out


def test_a_terminal_asks_and_only_y_deletes(store, capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    before = tree_hash(store.root)
    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    code, out, err = run(capsys, store, "--exchange", "okx", *RANGE)
    assert code == 0 and "nothing deleted" in err and tree_hash(store.root) == before
    monkeypatch.setattr("sys.stdin", Tty(""))  # Ctrl-D: no
    assert run(capsys, store, "--exchange", "okx", *RANGE)[0] == 0 and tree_hash(store.root) == before
    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    code, out, err = run(capsys, store, "--exchange", "okx", *RANGE)
    assert code == 0 and "deleted" in out.splitlines()[-1]
    assert in_range(store.liquidations().frame, "okx").empty


def test_the_delete_is_the_atomic_replace(store, capsys, monkeypatch):
    """The delete is one Delta MERGE (replace_liquidations with no rows): when it fails, one line, exit 2,
    and every byte and row stays."""
    from deltalake.exceptions import DeltaError

    before, rows = tree_hash(store.root), len(store.liquidations())

    class Failing:
        def __init__(self, *a, **k):
            raise DeltaError("Generic LocalFileSystem error: Unable to open file: Permission denied (os error 13)")

    failing_merges(monkeypatch, Failing)
    code, out, err = run(capsys, store, "--exchange", "binance", "--start", "2025-05-09T12:00", "--end", "2025-05-10",
                         "--yes")
    assert code == 2 and err.count("\n") == 1 and "permission denied" in err and "deleted" not in out
    monkeypatch.undo()
    assert tree_hash(store.root) == before and len(open_store(store.root).liquidations()) == rows


def test_the_delete_is_one_commit(store, capsys):
    import deltalake

    table = str(store.root / "liquidations")
    version = deltalake.DeltaTable(table).version()
    code, out, err = run(capsys, store, "--exchange", "binance", *RANGE, "--yes")
    assert code == 0, err
    assert deltalake.DeltaTable(table).version() == version + 1
    assert in_range(store.liquidations().frame, "binance").empty


def test_the_preview_names_the_range(store, capsys):
    code, out, err = run(capsys, store, "--exchange", "binance", *RANGE)
    assert code == 0 and "from 2025-05-09T00:00:00.000Z to 2025-05-10T00:00:00.000Z" in out.splitlines()[0]


@pytest.mark.parametrize("args, message", [
    (["--exchange", "binance", "--start", "2025-05-10", "--end", "2025-05-09"], "must end after it starts"),
    (["--exchange", "binance", "--start", "2300-01-01", "--end", "2301-01-01"], "outside the range"),
    (["--exchange", "binance", "--start", "yesterday-ish", "--end", "2025-05-09"], "invalid time"),
    (["--exchange", "binance", "--start", "2025-05-09"], "required: --end"),
])
def test_bad_arguments_are_one_line_exit_2(store, capsys, args, message):
    before = tree_hash(store.root)
    code, out, err = run(capsys, store, *args)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert tree_hash(store.root) == before


def test_covered_liquidations_reads_what_a_replace_would_remove(store):
    scope = Scope("binance", [("2025-05-09T06:00", "2025-05-09T18:00")], ["BTCUSDT"])
    got = store.covered_liquidations(scope)
    frame = store.liquidations().frame
    want = frame[scope.mask(frame)]
    assert len(got) == len(want) > 0
    assert got["notional_usd"].sum() == pytest.approx(want["notional_usd"].sum())
