"""``liqscope summary --json`` reports ``oi_change_pct`` and ``funding_mean`` equal to the Context's
computations, for the summary's asset scope, and null without data."""
from __future__ import annotations

import json

import pytest

from liqscope.models import cli
from liqscope.models.dataset import load_demo

from test_context_cli import DAY, E, S, filled, run  # noqa: F401 - the fixture


@pytest.mark.parametrize("argv,asset", [([], "BTC"), (["--asset", "ETH"], "ETH"), (["--asset", "SOL"], "SOL"),
                                        (["--asset", "ETH", "--exchange", "bybit"], "ETH")])
def test_summary_fields_equal_the_context(capsys, argv, asset):
    rc, out, err = run(capsys, cli.main, "--demo", "summary", *DAY, "--json", *argv)
    assert rc == 0, err
    got = json.loads(out)
    ctx = load_demo().context
    ex = [argv[argv.index("--exchange") + 1]] if "--exchange" in argv else None
    assert got["context_asset"] == asset
    assert got["oi_change_pct"] == ctx.oi_change_pct(S, E, asset, ex)
    assert got["funding_mean"] == ctx.funding_mean(S, E, asset, ex)
    assert got["oi_change_pct"] is not None and got["funding_mean"] is not None


def test_summary_fields_from_the_store_and_null_without_data(filled, capsys):
    rc, out, err = run(capsys, cli.main, "summary", *DAY, "--json")
    got = json.loads(out)
    ctx = filled.context(S, E)
    assert got["oi_change_pct"] == ctx.oi_change_pct(S, E, "BTC")
    assert got["funding_mean"] == ctx.funding_mean(S, E, "BTC")
    rc, out, err = run(capsys, cli.main, "summary", "--start", "2025-05-09T00:01Z", "--end", "2025-05-09T00:06Z",
                       "--json")
    got = json.loads(out)
    assert got["oi_change_pct"] is None and got["funding_mean"] is None  # one OI snapshot, no settlement
    rc, out, err = run(capsys, cli.main, "--demo", "summary", *DAY, "--json", "--asset", "BTC", "--asset", "ETH")
    got = json.loads(out)
    assert got["context_asset"] is None and got["oi_change_pct"] is None and got["funding_mean"] is None
    rc, out, err = run(capsys, cli.main, "--demo", "summary", *DAY)
    assert "Context (BTC): open interest +" in out and "per 8h" in out
