"""`liqscope summary` / `liqscope demo` through cli.main(), plus the installed console script."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from liqscope.models import cli, paths

M = 1e6
REQUIRED = {"start", "end", "total_usd", "long_usd", "short_usd", "short_share", "by_exchange", "by_asset",
            "largest"}
EXTRAS = {"source", "count", "context_asset", "oi_change_pct", "funding_mean"}  # context: test_context_summary.py
ORDER_KEYS = {"ts", "exchange", "symbol", "side", "price", "qty", "notional_usd"}
DAY = ["--start", "2025-05-09T00:00:00Z", "--end", "2025-05-10T00:00:00Z"]


@pytest.fixture
def run(tmp_path, capsys):
    """Run the CLI on an empty local store (so it shows the demo); return (status, stdout, stderr)."""
    def _run(*args: str):
        status = cli.main(["--data-dir", str(tmp_path), *args])
        out, err = capsys.readouterr()
        return status, out, err
    return _run


def summary_json(run, *args: str) -> dict:
    status, out, err = run("summary", "--json", *args)
    assert status == 0, err
    assert err == ""
    assert out.count("\n") == 1  # one object, one line
    return json.loads(out)


def within(value: float, target: float, rel: float = 0.005) -> bool:
    return abs(value - target) <= rel * target


def test_summary_json_reproduces_the_calibration(run):
    r = summary_json(run, *DAY)
    assert REQUIRED <= set(r) <= REQUIRED | EXTRAS
    assert r["start"] == "2025-05-09T00:00:00Z" and r["end"] == "2025-05-10T00:00:00Z"
    assert within(r["total_usd"], 860 * M)
    assert abs(r["short_share"] - 0.82) <= 0.005
    assert r["long_usd"] + r["short_usd"] == pytest.approx(r["total_usd"])
    assert r["short_share"] == pytest.approx(r["short_usd"] / r["total_usd"])
    ex = r["by_exchange"]
    assert within(ex["binance"], 360 * M) and within(ex["okx"], 180 * M) and within(ex["bybit"], 120 * M)
    assert within(sum(ex.values()), 860 * M)
    a = r["by_asset"]
    assert within(a["BTC"], 540 * M) and within(a["ETH"], 120 * M)
    assert within(a["SOL"] + a["XRP"] + a["ADA"] + a["DOGE"], 200 * M)
    assert "synthetic" in r["source"].lower()


def test_summary_json_largest_orders(run):
    r = summary_json(run, *DAY)
    top = r["largest"]
    assert len(top) == 10
    for o in top:
        assert set(o) == ORDER_KEYS
        assert o["side"] in ("long", "short")
        assert o["ts"].startswith("2025-05-09T") and o["ts"].endswith("Z")
        assert o["notional_usd"] == pytest.approx(o["price"] * o["qty"], abs=0.01)
    sizes = [o["notional_usd"] for o in top]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > 1 * M
    assert len(summary_json(run, *DAY, "--top", "3")["largest"]) == 3
    assert summary_json(run, *DAY, "--top", "0")["largest"] == []



@pytest.mark.parametrize("option, value", [("--top", "-1"), ("--min-usd", "-5"), ("--min-usd", "nan"),
                                           ("--min-usd", "inf")])
def test_summary_rejects_negative_and_non_finite_numbers(run, capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        run("summary", *DAY, option, value)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"liqscope: error: argument {option}:")


def test_global_options_work_after_the_command_too(tmp_path, capsys):
    assert cli.main(["summary", "--data-dir", str(tmp_path), "--json", *DAY]) == 0
    after = json.loads(capsys.readouterr().out)
    assert cli.main(["--data-dir", str(tmp_path), "summary", "--json", *DAY]) == 0
    assert json.loads(capsys.readouterr().out) == after
    assert cli.main(["summary", "--demo", "--json", *DAY]) == 0
    assert json.loads(capsys.readouterr().out)["total_usd"] == after["total_usd"]


def test_summary_of_an_empty_window_is_zero_with_a_note(run):
    status, out, err = run("summary", "--json", "--start", "2030-01-01", "--end", "2030-01-02")
    assert status == 0
    r = json.loads(out)
    assert (r["start"], r["end"], r["total_usd"], r["count"]) == ("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z", 0, 0)
    assert "no liquidations in 2030-01-01 00:00 → 2030-01-02 00:00 UTC (the data covers 2025-05-0" in err


def test_default_window_is_the_busiest_day(run):
    default = summary_json(run)
    assert (default["start"], default["end"]) == ("2025-05-09T00:00:00Z", "2025-05-10T00:00:00Z")
    assert default == summary_json(run, *DAY)


def test_one_sided_windows_span_one_day(run):
    r = summary_json(run, "--start", "2025-05-08T12:00Z")
    assert (r["start"], r["end"]) == ("2025-05-08T12:00:00Z", "2025-05-09T12:00:00Z")
    r = summary_json(run, "--end", "2025-05-09T12:00:00+02:00")
    assert (r["start"], r["end"]) == ("2025-05-08T10:00:00Z", "2025-05-09T10:00:00Z")


def test_adjacent_windows_add_up(run):
    whole = summary_json(run, *DAY)["total_usd"]
    am = summary_json(run, "--start", "2025-05-09", "--end", "2025-05-09T12:00")["total_usd"]
    pm = summary_json(run, "--start", "2025-05-09T12:00", "--end", "2025-05-10")["total_usd"]
    assert am + pm == pytest.approx(whole)


def test_summary_filters(run):
    r = summary_json(run, *DAY, "--exchange", "Binance", "--asset", "btc")
    assert list(r["by_exchange"]) == ["binance"] and list(r["by_asset"]) == ["BTC"]
    assert r["total_usd"] == pytest.approx(540 * 360 / 860 * M, rel=0.01)
    assert {o["exchange"] for o in r["largest"]} == {"binance"}
    r = summary_json(run, *DAY, "--exchange", "okx", "--exchange", "bybit")
    assert set(r["by_exchange"]) == {"okx", "bybit"}
    assert within(r["total_usd"], 300 * M)
    r = summary_json(run, *DAY, "--side", "long")
    assert r["short_usd"] == 0 and r["short_share"] == 0
    assert within(r["total_usd"], 0.18 * 860 * M, rel=0.03)
    r = summary_json(run, *DAY, "--min-usd", "1000000")
    assert all(o["notional_usd"] >= 1e6 for o in r["largest"]) and r["count"] >= 3


@pytest.mark.parametrize("bad", ["2025-13-01", "yesterday", "2025-02-30T00:00Z", "9"])
def test_invalid_date_exits_2_with_one_line(run, bad):
    status, out, err = run("summary", "--start", bad)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("liqscope: error:") and bad in err


@pytest.mark.parametrize(("flag", "name"), [("--exchange", "mtgox"), ("--asset", "LUNA")])
def test_unknown_exchange_or_asset_exits_2(run, flag, name):
    status, out, err = run("summary", *DAY, flag, name)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and name in err and "unknown" in err


@pytest.mark.parametrize("end", ["2025-05-08T00:00Z", "2025-05-09T00:00Z"])
def test_end_not_after_start_exits_2(run, end):
    status, out, err = run("summary", "--start", "2025-05-09T00:00Z", "--end", end)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and "--end" in err


def test_bad_option_value_is_an_argparse_usage_error(run):
    with pytest.raises(SystemExit) as exc:
        run("summary", "--side", "sideways")
    assert exc.value.code == 2


def test_plain_output_is_a_readable_table(run):
    status, out, err = run("summary", *DAY)
    assert status == 0 and err == ""
    assert "$860.0M" in out
    assert "82%" in out
    assert "synthetic" in out.lower()
    for word in ("binance", "okx", "bybit", "BTC", "ETH", "Largest liquidations"):
        assert word in out
    assert "$360.0M" in out and "$540.0M" in out


def test_data_dir_option_redirects_the_data_dir(run, tmp_path):
    run("summary", "--json", *DAY)
    assert paths.data_dir() == tmp_path


def test_environment_data_dir_is_used_without_the_option(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "env"))
    assert paths.data_dir() == tmp_path / "env"
    paths.set_data_dir(tmp_path / "opt")
    assert paths.data_dir() == tmp_path / "opt"  # --data-dir wins over the environment


def test_demo_regenerate_to_a_folder(run, tmp_path):
    out_dir = tmp_path / "regen"
    status, out, err = run("demo", "--regenerate", "--out", str(out_dir))
    assert status == 0, err
    names = ["candles.parquet", "funding.parquet", "liquidations.parquet", "open_interest.parquet",
             "outside_series.parquet"]
    assert sorted(p.name for p in out_dir.iterdir()) == names
    assert out.count("wrote ") == len(names)
    for name in names:  # same data as bundled (bytes: see test_demo)
        assert pd.read_parquet(out_dir / name).equals(pd.read_parquet(paths.demo_dir() / name))


def test_demo_without_regenerate_only_reports(run):
    status, out, _ = run("demo")
    assert status == 0 and "synthetic" in out


def _console_script() -> Path:
    exe = Path(sys.executable).parent / ("liqscope.exe" if sys.platform == "win32" else "liqscope")
    assert exe.exists(), f"console script missing: {exe}"
    return exe


def test_console_script_version():
    res = subprocess.run([str(_console_script()), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("liqscope ")
    assert res.stdout.strip().split()[1][0].isdigit()


def test_console_script_summary_json(tmp_path):
    res = subprocess.run([str(_console_script()), "--data-dir", str(tmp_path), "summary", "--json", *DAY],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert within(json.loads(res.stdout)["total_usd"], 860 * M)


def test_json_is_valid_even_when_a_window_holds_non_finite_stored_values(capsys):
    """An older store may hold an inf/NaN row: JSON says null (never Infinity/NaN) and a warning says why."""
    from liqscope.models.cli import finite_only

    clean, bad = finite_only({"total_usd": float("inf"), "by_exchange": {"okx": float("nan"), "bybit": 2.0},
                              "largest": [{"price": 1.0}], "count": 3})
    assert bad and clean == {"total_usd": None, "by_exchange": {"okx": None, "bybit": 2.0},
                             "largest": [{"price": 1.0}], "count": 3}
    assert finite_only({"a": 1.5}) == ({"a": 1.5}, False)


def test_times_beyond_what_pandas_holds_are_one_line(run):
    status, out, err = run("summary", "--start", "2300-01-01")
    assert status == 2 and err.count("\n") == 1 and "outside the range Liqscope can hold" in err
