"""Every command says a user's problem in one line with exit status 2, never a traceback."""
from __future__ import annotations

import json

import pytest

from liqscope.gui.main import main as liqscope
from liqscope.models.dataset import load_demo
from liqscope.models.store import open_store

FIXTURE = "tests/models/fixtures/binance-futures_liquidations_2024-03-01_PERPETUALS.csv"


@pytest.fixture
def newer_store(tmp_path):
    """A store written by a future Liqscope (schema 7)."""
    root = tmp_path / "newer"
    open_store(root).append_liquidations(load_demo().liquidations.frame.iloc[:100])
    meta = json.loads((root / "store.json").read_text())
    (root / "store.json").write_text(json.dumps({**meta, "schema_version": 7}))
    return root


def run(capsys, *argv: str) -> tuple[int, str]:
    try:
        status = liqscope(list(argv))
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["summary"], ["store", "info"], ["export", "--asset", "BTC", "--csv", "{tmp}/x.csv", "--what", "liquidations"],
    ["import", FIXTURE], ["record", "--duration", "1"], ["--screenshot", "{tmp}/x.png"],
    ["fetch", "candles", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--start", "2025-01-01",
     "--api-base", "http://127.0.0.1:9"],
])
def test_a_newer_store_is_one_line_everywhere(newer_store, tmp_path, capsys, qapp, command):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    status, err = run(capsys, "--data-dir", str(newer_store), *argv)
    assert status == 2
    assert err.count("\n") == 1 and "store schema 7" in err and "update Liqscope" in err


@pytest.mark.parametrize("argv, words", [
    (["--demo", "--screenshot", "{tmp}/x.png", "--exchange", "kraken"], "no BTC candles from 'kraken'"),
    (["--demo", "--screenshot", "{tmp}/x.jpg"], "give a file name ending in .png"),
    (["record", "--duration", "-5"], "must be a number > 0"),
    (["record", "--duration", "0"], "must be a number > 0"),
    (["summary", "--demo", "--top", "-3"], "must be >= 0"),
])
def test_nonsense_options_are_refused_in_one_line(tmp_path, capsys, qapp, argv, words):
    status, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert status == 2 and err.count("\n") == 1 and words in err
    assert not list(tmp_path.glob("x.*"))
