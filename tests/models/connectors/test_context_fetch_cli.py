"""``liqscope fetch oi|funding`` into a real store, against the loopback exchanges of
test_connector_context.py (documented endpoints, pagination and history limits); no internet."""
from __future__ import annotations

import functools

import pandas as pd
import pytest

from test_connector_context import DAY, HOUR, ContextHTTP, fill_funding, fill_oi
from liqscope.models import cli
from liqscope.models.connectors import context_fetch
from liqscope.models.store import open_store

NOW = pd.Timestamp("2025-06-01T00:00Z")
NOW_MS = int(NOW.value // 1_000_000)


@pytest.fixture
def ex():
    with ContextHTTP() as srv:
        yield srv


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    """The exchanges' history limits count back from now: pin it (and no pacing, no retry waits)."""
    monkeypatch.setattr(context_fetch, "fetch_context", functools.partial(
        context_fetch.fetch_context, now=NOW, pace=0, retries=0, retry_delay=0.01))


def run(capsys, *argv):
    rc = cli.main(["fetch", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def t(ms) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()


def test_fetch_oi_stores_and_resumes(ex, capsys):
    start = NOW_MS - 10 * DAY
    fill_oi(ex, "bybit", start, 10 * 24)
    argv = ["oi", "--exchange", "bybit", "--symbol", "BTC/USDT:USDT", "--start", t(start), "--end",
            t(start + 5 * DAY), "--api-base", ex.base, "--no-progress"]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    assert "bybit BTCUSDT open interest 1h: 120 rows fetched (120 new)" in out and err == ""
    stored = open_store().open_interest()
    assert len(stored) == 120 and set(stored["period"]) == {"1h"} and set(stored["source"]) == {"bybit-rest"}
    assert stored["ts"].min() == pd.Timestamp(t(start)) and stored["ts"].max() == pd.Timestamp(t(start + 119 * HOUR))
    assert stored["oi_usd"].iloc[3] == 50003.25 * 60003.5  # openInterest × mark price
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and "already complete" in out
    # a longer window fetches only the new part
    before = len(ex.calls(ex.OI_PATHS["bybit"]))
    argv[argv.index("--end") + 1] = t(start + 8 * DAY)
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and "72 rows fetched (72 new)" in out
    asked = [int(q["startTime"]) for q in ex.calls(ex.OI_PATHS["bybit"])[before:]]
    assert min(asked) >= start + 5 * DAY
    assert len(open_store().open_interest()) == 192


def test_fetch_funding_with_interval(ex, capsys):
    start = NOW_MS - 20 * DAY
    fill_funding(ex, "okx", start - 8 * HOUR, 31)
    rc, out, err = run(capsys, "funding", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--start", t(start),
                       "--end", t(start + 10 * DAY), "--api-base", ex.base, "--no-progress")
    assert rc == 0, err
    assert "okx BTC-USDT-SWAP funding: 30 rows fetched (30 new)" in out
    f = open_store().funding()
    assert len(f) == 30 and set(f["interval_hours"]) == {8.0} and set(f["source"]) == {"okx-rest"}
    ctx = open_store().context()
    assert ctx.funding_mean(None, None, "BTC") == pytest.approx(f["rate"].sum() / (30 * 8) * 8)


def test_history_limit_is_a_note_and_all_too_old_is_an_error(ex, capsys):
    fill_oi(ex, "binance", NOW_MS - 29 * DAY, 29 * 24)
    rc, out, err = run(capsys, "oi", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--start",
                       t(NOW_MS - 40 * DAY), "--end", t(NOW_MS - 28 * DAY), "--api-base", ex.base, "--no-progress")
    assert rc == 0, err
    assert err.startswith("liqscope: note: Binance serves open interest history for the last 30 days only;")
    assert err.count("\n") == 1
    assert "rows fetched" in out and len(open_store().open_interest()) > 0
    rc, out, err = run(capsys, "oi", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--start",
                       t(NOW_MS - 60 * DAY), "--end", t(NOW_MS - 45 * DAY), "--api-base", ex.base)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("liqscope: error: Binance serves open interest history for the last 30 days only; "
                          "nothing of BTCUSDT")


def test_failure_keeps_the_pages_fetched_and_resumes(ex, capsys):
    start = NOW_MS - 25 * DAY
    fill_oi(ex, "binance", start, 600)
    path = ex.OI_PATHS["binance"]
    ex.script[path] = [None, None, (400, {"code": -1, "msg": "busy"})]
    argv = ["oi", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--start", t(start), "--end",
            t(start + 600 * HOUR), "--api-base", ex.base, "--no-progress"]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and err.count("\n") == 1 and "the 500 rows fetched before it are stored" in err, err
    held = len(open_store().open_interest())
    assert held == 500  # the first window (500 periods) is kept
    before = len(ex.calls(path))
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and "100 rows fetched (100 new)" in out
    assert min(int(q["startTime"]) for q in ex.calls(path)[before:]) >= start + 500 * HOUR
    assert len(open_store().open_interest()) == 600


@pytest.mark.parametrize("argv,message", [
    (["oi", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--start", "2025-05-20", "--period", "7m"],
     "OKX has no open interest period '7m'"),
    (["funding", "--exchange", "okx", "--symbol", "BTC/USDT", "--start", "2025-05-20"],
     "perpetual swaps only"),
    (["oi", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--start", "2025-05-20", "--end", "2025-05-19"],
     "must be after --start"),
    (["oi", "--exchange", "okx", "--symbol", "NOPE/USDT:USDT", "--start", "2025-05-20"], "okx has no market"),
])
def test_bad_arguments_are_one_line(ex, capsys, argv, message):
    rc, out, err = run(capsys, *argv, "--api-base", ex.base)
    assert rc == 2 and err.count("\n") == 1 and message in err, err
