"""``liqscope export --what oi|funding|series:NAME`` writes exactly the window, as CSV with the export
conventions, without Qt."""
from __future__ import annotations

import sys

import pandas as pd
import pytest

from liqscope.gui.main import main as liqscope
from liqscope.models.context_cli import context_frame
from liqscope.models.dataset import load_demo
from liqscope.models.store import open_store

DAY = ["--start", "2025-05-09T00:00Z", "--end", "2025-05-10T00:00Z"]
S, E = pd.Timestamp("2025-05-09T00:00Z"), pd.Timestamp("2025-05-10T00:00Z")


def run(capsys, fn, *argv):
    try:
        rc = fn(list(argv))
    except SystemExit as exc:  # argparse's own refusals (one line, status 2)
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def filled():
    """A store with liquidations, open interest, funding and a series around the demo day."""
    store = open_store()
    demo = load_demo()
    store.append_liquidations(demo.liquidations.filter(S, E).frame.head(500), source="file:x.csv")
    c = demo.context
    store.append_open_interest(c.oi_frame)
    store.append_funding(c.funding_frame)
    store.append_outside_series(c.outside_frame)
    return store


@pytest.mark.parametrize("what", ["oi", "funding", "series:fear_greed", "series:etf_flows_IBIT"])
def test_export_is_exactly_the_window(filled, tmp_path, capsys, what):
    out_csv = tmp_path / "c.csv"
    start, end = "2025-05-09T06:00Z", "2025-05-09T18:05Z"
    rc, out, err = run(capsys, liqscope, "export", "--what", what, "--start", start, "--end", end,
                       "--csv", str(out_csv))
    assert rc == 0, err
    got = pd.read_csv(out_csv)
    want = context_frame(filled.context(), what, pd.Timestamp(start), pd.Timestamp(end))
    assert len(got) == len(want) and list(got.columns) == list(want.columns)
    ts = pd.to_datetime(got["ts"], utc=True)
    if len(got):
        assert ts.min() >= pd.Timestamp(start) and ts.max() < pd.Timestamp(end)
        assert got["ts"].iloc[0].endswith("Z") and len(got["ts"].iloc[0]) == len("2025-05-09T00:00:00.000Z")
    num = [c for c in want.columns if c not in ("ts", "exchange", "symbol", "asset", "period", "source", "name",
                                                "unit")]
    assert (got[num].to_numpy() == want[num].to_numpy()).all()
    assert f"rows of {'open interest' if what == 'oi' else what.replace(':', ' ') if what != 'funding' else 'funding'}" \
        in out


def test_export_filters_and_empty_window(filled, tmp_path, capsys):
    out_csv = tmp_path / "eth.csv"
    rc, out, err = run(capsys, liqscope, "export", "--what", "oi", "--asset", "eth", "--exchange", "okx", *DAY,
                       "--csv", str(out_csv))
    assert rc == 0, err
    got = pd.read_csv(out_csv)
    assert set(got["asset"]) == {"ETH"} and set(got["exchange"]) == {"okx"} and len(got) == 288
    empty = tmp_path / "none.csv"
    rc, out, err = run(capsys, liqscope, "export", "--what", "funding", "--start", "2030-01-01", "--end",
                       "2030-01-02", "--csv", str(empty))
    assert rc == 0 and empty.read_text() == ("ts,exchange,symbol,asset,rate,interval_hours,per_8h,annualised,"
                                             "source\n")
    assert err.startswith("liqscope: note: no funding from 2030-01-01") and err.count("\n") == 1


def test_export_defaults_to_the_busiest_day_and_runs_on_the_demo(tmp_path, capsys):
    out_csv = tmp_path / "fg.csv"
    rc, out, err = run(capsys, liqscope, "--demo", "export", "--what", "series:fear_greed", "--csv", str(out_csv))
    assert rc == 0, err
    got = pd.read_csv(out_csv)
    want = load_demo().context.outside("fear_greed", S, E)
    assert list(got["value"]) == list(want["value"]) and set(got["name"]) == {"fear_greed"}


@pytest.mark.parametrize("argv,message", [
    (["--what", "series:nope", "--csv", "{tmp}/x.csv"], "unknown series 'nope' (known: btc_dominance"),
    (["--what", "oi", "--asset", "DOGE", "--csv", "{tmp}/x.csv"], "unknown asset 'DOGE' for open interest"),
    (["--what", "oi", "--exchange", "kraken", "--csv", "{tmp}/x.csv"], "unknown exchange 'kraken'"),
    (["--what", "oi", "--png", "{tmp}/x.png"], "writes a CSV only"),
    (["--what", "oi"], "nothing to export: give --csv FILE"),
    (["--what", "funding", "--csv", "{tmp}/no/such/x.csv"], "folder"),
    (["--what", "bogus", "--csv", "{tmp}/x.csv"], "invalid choice 'bogus'"),
    (["--what", "series:", "--csv", "{tmp}/x.csv"], "invalid choice 'series:'"),
])
def test_export_errors_are_one_line(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, out, err = run(capsys, liqscope, "--demo", "export", *DAY, *argv)
    assert rc == 2 and err.count("\n") == 1 and message in err, err


def test_context_commands_never_load_qt(tmp_path):
    """The context exports and summaries run without Qt (a server): nothing under PySide6 is imported."""
    import subprocess

    code = ("import sys; from liqscope.gui.main import main; "
            f"rc = main(['--demo', 'export', '--what', 'oi', '--start', '2025-05-09', '--end', '2025-05-10', "
            f"'--csv', {str(tmp_path / 'o.csv')!r}]); "
            "assert rc == 0; assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
