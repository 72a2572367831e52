"""``liqscope import`` / ``store info`` / ``summary`` against a store in tmp_path."""
from __future__ import annotations

import json

import pytest

from liqscope.models import paths
from store_testutil import run_cli as run, FIXTURES, tree_hash

KLINES = FIXTURES / "BTCUSDT-1m-2025-01.csv"
TARDIS = FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"


def test_import_prints_rows_and_new_per_file(tmp_path, capsys):
    code, out, err = run(capsys, "--data-dir", tmp_path, "import", KLINES, TARDIS)
    assert code == 0
    assert out.splitlines() == [f"imported 5 rows (5 new) from {KLINES}", f"imported 4 rows (4 new) from {TARDIS}"]
    assert err == ""  # no terminal: no progress bar
    code, out, _ = run(capsys, "--data-dir", tmp_path, "import", TARDIS)
    assert (code, out.strip()) == (0, f"imported 4 rows (0 new) from {TARDIS}")


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    code, out, err = run(capsys, "--data-dir", tmp_path, "import", "--progress", "always", KLINES, TARDIS)
    assert code == 0 and "importing:" in err and "100%" in err and "importing" not in out
    assert f"liqscope: reading {KLINES.name}\n" in err and f"liqscope: reading {TARDIS.name}\n" in err
    assert out.splitlines() == [f"imported 5 rows (5 new) from {KLINES}", f"imported 4 rows (4 new) from {TARDIS}"]


def test_progress_never_prints_nothing_but_results(tmp_path, capsys):
    code, out, err = run(capsys, "--data-dir", tmp_path, "import", "--progress", "never", KLINES, TARDIS)
    assert code == 0 and err == "" and out.count("imported") == 2


def test_an_error_mid_bar_starts_its_own_line(tmp_path, capsys):
    bad = tmp_path / "binance-futures_liquidations_2024-03-01_BAD.csv"
    bad.write_text(TARDIS.read_text().replace("0.5\n", "-0.5\n"))
    code, out, err = run(capsys, "--data-dir", tmp_path / "s", "import", "--progress", "always", bad, KLINES)
    assert code == 2 and out == ""
    assert "importing:" in err
    assert any(line.startswith(f"liqscope: error: {bad}, line 4, column 'amount'") for line in err.split("\n"))


def test_bad_file_exits_2_with_one_line_and_store_unchanged(tmp_path, capsys):
    run(capsys, "--data-dir", tmp_path / "s", "import", KLINES)
    before = tree_hash(tmp_path / "s")
    bad = tmp_path / "binance-futures_liquidations_2024-03-01_BAD.csv"
    bad.write_text(TARDIS.read_text().replace("0.5\n", "-0.5\n"))
    code, out, err = run(capsys, "--data-dir", tmp_path / "s", "import", bad)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"liqscope: error: {bad}, line 4, column 'amount': -0.5 is not positive")
    assert "store unchanged" in err
    assert tree_hash(tmp_path / "s") == before


def test_generic_import_with_map_and_side_convention(tmp_path, capsys):
    f = FIXTURES / "generic-bybit-liquidations.csv"
    code, out, err = run(capsys, "--data-dir", tmp_path, "import", f, "--exchange", "bybit",
                         "--map", "ts=time,symbol=sym", "--map", "side=dir,price=px,qty=size",
                         "--side-convention", "position")
    assert (code, out.strip()) == (0, f"imported 3 rows (3 new) from {f}")
    code, _, err = run(capsys, "--data-dir", tmp_path, "import", f, "--map", "ts")
    assert code == 2 and "expected FIELD=COLUMN" in err


def test_warnings_go_to_stderr(tmp_path, capsys):
    f = FIXTURES / "BTCUSDT-liquidationSnapshot-2023-07-31.csv"
    code, out, err = run(capsys, "--data-dir", tmp_path, "import", f)
    assert code == 0 and out.strip().startswith(f"imported 3 rows (3 new) from {f}")
    assert "liqscope: warning:" in err and "nothing filled" in err


def test_import_prints_rows_the_file_repeats(tmp_path, capsys):
    """README: exactly repeated rows are merged with a note. Binance's liquidationSnapshot dumps list each
    order twice (binance-public-data issue #259): ``liqscope import`` counts the repeats once and says so
    on the file's one summary line."""
    twice = tmp_path / "BTCUSDT-liquidationSnapshot-2023-07-31.csv"
    lines = (FIXTURES / twice.name).read_text().splitlines(keepends=True)
    twice.write_text(lines[0] + "".join(line + line for line in lines[1:]))
    code, out, err = run(capsys, "--data-dir", tmp_path / "s", "import", twice)
    assert code == 0
    assert out.splitlines() == [f"imported 3 rows (3 new) from {twice}; 5 rows repeated in the file were "
                                "counted once"]


def test_store_info_lists_series(tmp_path, capsys):
    code, out, _ = run(capsys, "--data-dir", tmp_path, "store", "info")
    assert code == 0 and "empty" in out
    run(capsys, "--data-dir", tmp_path, "import", KLINES, TARDIS)
    code, out, _ = run(capsys, "--data-dir", tmp_path, "store", "info")
    lines = out.splitlines()
    assert lines[0] == f"Store: {tmp_path} (schema 2)"
    assert any(l.split()[:5] == ["candles", "binance", "BTCUSDT", "1m", "5"] for l in lines)
    assert any(l.split()[:5] == ["liquidations", "binance", "BTCUSDT", "-", "3"] for l in lines)
    code, out, _ = run(capsys, "--data-dir", tmp_path, "store", "info", "--json")
    recs = [json.loads(l) for l in out.splitlines()]
    assert {"kind": "candles", "exchange": "binance", "symbol": "BTCUSDT", "interval": "1m", "rows": 5,
            "first": "2025-01-01T00:00:00.000Z", "last": "2025-01-01T00:04:00.000Z"} in recs
    code, _, err = run(capsys, "--data-dir", tmp_path, "store")
    assert code == 2 and "info" in err


def test_summary_says_it_shows_the_store(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "empty"))
    code, out, _ = run(capsys, "summary")
    assert code == 0 and out.startswith("Source:   Demo data")
    run(capsys, "--data-dir", tmp_path, "import", TARDIS)
    code, out, _ = run(capsys, "--data-dir", tmp_path, "summary", "--json")
    r = json.loads(out)
    assert r["source"] == f"Local store: {tmp_path}" and r["count"] == 4
    assert r["long_usd"] == pytest.approx(0.012 * 61250.5 + 0.1 * 61100.0)


def test_summary_refuses_a_newer_store(tmp_path, capsys):
    run(capsys, "--data-dir", tmp_path, "import", TARDIS)
    meta = json.loads((tmp_path / "store.json").read_text())
    (tmp_path / "store.json").write_text(json.dumps({**meta, "schema_version": 99}))
    for argv in (["summary"], ["store", "info"], ["import", KLINES]):
        code, _, err = run(capsys, "--data-dir", tmp_path, *argv)
        assert code == 2 and "store schema 99" in err and err.count("\n") == 1
