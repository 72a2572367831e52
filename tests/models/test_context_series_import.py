"""Outside series from files (models/series_import.py): good files of every shape, bad ones refused in one
line with the store unchanged."""
from __future__ import annotations

import argparse
import gzip
import zipfile

import pandas as pd
import pytest

from liqscope.models import series_import
from liqscope.models.series_import import SeriesInputError, import_series, read_series

T0 = pd.Timestamp("2025-05-09T00:00Z")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_daily_csv_one_column(tmp_path, store):
    p = write(tmp_path, "fg.csv", "date,value\n2025-05-07,70\n2025-05-08,78\n\n2025-05-09,84\n")
    [r] = import_series(p, "fear_greed", store=store, unit="index")
    assert r.summary() == f"imported 3 rows (3 new) from {p} as series fear_greed"
    s = store.outside_series("fear_greed")
    assert list(s["ts"]) == [T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1), T0]
    assert list(s["value"]) == [70.0, 78.0, 84.0] and set(s["unit"]) == {"index"}
    assert set(s["source"]) == {"file:fg.csv"}
    [r] = import_series(p, "fear_greed", store=store, unit="index")
    assert (r.rows, r.new) == (3, 0)


def test_several_value_columns_become_name_column(tmp_path, store):
    p = write(tmp_path, "flows.csv", "Date,IBIT,FBTC,GBTC flow,note\n"
                                     "2025-05-08,500000000,100000000,,quiet\n"
                                     "2025-05-09,800000000,-20000000,5e6,big day\n")
    [r] = import_series(p, "etf_flows", store=store, unit="USD")
    assert r.names == ["etf_flows_IBIT", "etf_flows_FBTC", "etf_flows_GBTC_flow"]
    ctx = store.context()
    assert ctx.names() == sorted(r.names)
    assert list(ctx.outside("etf_flows_IBIT")["value"]) == [5e8, 8e8]
    assert list(ctx.outside("etf_flows_GBTC_flow")["ts"]) == [T0]  # the empty cell is no value
    assert list(ctx.outside("etf_flows_FBTC", T0, T0 + pd.Timedelta(days=1))["value"]) == [-2e7]


def test_intraday_with_offsets_epochs_and_chosen_columns(tmp_path, store):
    p = write(tmp_path, "dom.csv", "when;dominance;other\n"
                                   "2025-05-09T01:00:00Z;58.3;2\n2025-05-09T02:00:00+02:00;58.1;1\n")
    frame, report = read_series(p, "btc_dominance", time_column="when", value_columns=["dominance"], unit="%")
    assert list(frame["ts"]) == [T0, T0 + pd.Timedelta(hours=1)] and list(frame["value"]) == [58.1, 58.3]
    assert report.warnings == ["rows out of time order were sorted"]
    ms = write(tmp_path, "ms.csv", f"ts,v\n{int(T0.value // 10**6)},1\n{int(T0.value // 10**9) + 60},2\n")
    frame, _ = read_series(ms, "x")
    assert list(frame["ts"]) == [T0, T0 + pd.Timedelta(minutes=1)]


def test_parquet_gz_and_zip(tmp_path, store):
    df = pd.DataFrame({"timestamp": pd.date_range(T0, periods=3, freq="h"), "score": [1.5, 2.5, 3.5]})
    df.to_parquet(tmp_path / "s.parquet")
    frame, _ = read_series(tmp_path / "s.parquet", "mine")
    assert list(frame["ts"]) == list(pd.date_range(T0, periods=3, freq="h")) and list(frame["value"]) == [1.5, 2.5, 3.5]
    text = "date,value\n2025-05-09,84\n"
    with gzip.open(tmp_path / "fg.csv.gz", "wt") as fh:
        fh.write(text)
    with zipfile.ZipFile(tmp_path / "fg.zip", "w") as z:
        z.writestr("fg.csv", text)
    for name in ("fg.csv.gz", "fg.zip"):
        frame, _ = read_series(tmp_path / name, "fg")
        assert list(frame["value"]) == [84.0] and list(frame["ts"]) == [T0]


def test_a_repeated_time_with_the_same_value_counts_once(tmp_path):
    p = write(tmp_path, "r.csv", "date,v\n2025-05-09,1\n2025-05-09,1\n")
    frame, report = read_series(p, "r")
    assert len(frame) == 1 and report.warnings == ["1 rows repeated in column 'v' were counted once"]


@pytest.mark.parametrize("text,kw,message", [
    ("date,v\n2025-05-09,1\n2025-05-10,abc\n", {"value_columns": ["v"]}, "bad.csv, line 3, column 'v': 'abc' is not a number"),
    ("date,v\n2025-05-09,1\n2025-05-10,inf\n", {"value_columns": ["v"]}, "line 3, column 'v': 'inf' is not a finite number"),
    ("date,v\n2025-05-09,1\nyesterday,2\n", {}, "bad.csv, line 3, column 'date': 'yesterday' is not a time"),
    ("date,v\n2025-05-09,1\n2025-05-09,2\n", {}, "bad.csv, line 2 and line 3, column 'v': two different values"),
    ("date,v\n2025-05-09T00:00Z,1\n2025-05-10T00:00,2\n", {}, "line 3, column 'date': '2025-05-10T00:00' mixes times"),
    ("when,v\n2025-05-09,1\n", {}, "bad.csv: no time column"),
    ("date,v\n2025-05-09,1\n", {"time_column": "t"}, "bad.csv: no column 't' (columns: date, v)"),
    ("date,v\n2025-05-09,1\n", {"value_columns": ["w"]}, "bad.csv: no column 'w'"),
    ("date,note\n2025-05-09,hello\n", {}, "bad.csv: no value column with numbers"),
    ("date,v\n2025-05-09,1,3\n", {}, "bad.csv, line 2: 3 fields, the header has 2"),
    ("date,v\n", {}, "bad.csv: no rows under the header"),
    ("", {}, "bad.csv: empty file"),
    ("date,v,v\n2025-05-09,1,2\n", {}, "column 'v' appears twice"),
    ("date,v\n,1\n", {}, "bad.csv, line 2, column 'date': no time"),
])
def test_bad_files_are_one_line_and_store_unchanged(tmp_path, store, text, kw, message):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(SeriesInputError) as exc:
        import_series(p, "s", store=store, **kw)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert store.context().empty


def test_binary_bomb_and_bad_names_refused(tmp_path, store, monkeypatch):
    (tmp_path / "b.csv").write_bytes(b"date,v\n\x00\x01\x02")
    with pytest.raises(SeriesInputError, match="binary data"):
        import_series(tmp_path / "b.csv", "s", store=store)
    monkeypatch.setattr(series_import, "MIN_BOMB_BYTES", 1000)
    with gzip.open(tmp_path / "big.csv.gz", "wt") as fh:
        fh.write("date,v\n" + "2025-05-09,1\n" * 10_000)
    with pytest.raises(SeriesInputError, match="compression bomb"):
        import_series(tmp_path / "big.csv.gz", "s", store=store)
    p = write(tmp_path, "ok.csv", "date,v\n2025-05-09,1\n")
    with pytest.raises(SeriesInputError, match="series name 'a b' is not allowed"):
        import_series(p, "a b", store=store)
    with pytest.raises(SeriesInputError, match="no such file"):
        import_series(tmp_path / "nope.csv", "s", store=store)
    assert store.context().empty


def test_all_files_of_one_import_land_together(tmp_path, store):
    good = write(tmp_path, "a.csv", "date,v\n2025-05-08,1\n")
    bad = write(tmp_path, "b.csv", "date,v\n2025-05-09,x\n")
    with pytest.raises(SeriesInputError):
        import_series([good, bad], "s", store=store, value_columns=["v"])
    assert store.context().empty
    clash = write(tmp_path, "c.csv", "date,v\n2025-05-08,2\n")
    with pytest.raises(SeriesInputError, match="a.csv and c.csv: two different values of s for 2025-05-08"):
        import_series([good, clash], "s", store=store)
    assert store.context().empty
    more = write(tmp_path, "d.csv", "date,v\n2025-05-09,2\n")
    reports = import_series([good, more], "s", store=store)
    assert [(r.rows, r.new) for r in reports] == [(1, 1), (1, 1)]
    assert list(store.outside_series("s")["value"]) == [1.0, 2.0]


def _args(files, **kw):
    base = dict(files=[str(f) for f in files], series="fg", time_column=None, value_columns=None, unit=None,
                format="auto", exchange=None, symbol=None, interval=None, mapping=None)
    return argparse.Namespace(**{**base, **kw})


def test_command(tmp_path, store, capsys, monkeypatch):
    monkeypatch.setattr("liqscope.models.store.open_store", lambda: store)
    p = write(tmp_path, "fg.csv", "date,value\n2025-05-09,84\n2025-05-08,80\n")
    assert series_import.cmd_import_series(_args([p], unit="index")) == 0
    out, err = capsys.readouterr()
    assert out == f"imported 2 rows (2 new) from {p} as series fg\n"
    assert err == f"liqscope: warning: {p}: rows out of time order were sorted\n"
    bad = write(tmp_path, "bad.csv", "date,value\n2025-05-09,x\n")
    with pytest.raises(SeriesInputError, match=r"bad.csv: no value column with numbers .*\(store unchanged\)$"):
        series_import.cmd_import_series(_args([bad]))
    with pytest.raises(SeriesInputError, match="--exchange does not apply to --series imports"):
        series_import.cmd_import_series(_args([p], exchange="binance"))


def test_liqscope_import_series(tmp_path, capsys):
    from liqscope.models import cli
    from liqscope.models.store import open_store

    p = write(tmp_path, "flows.csv", "date,IBIT,FBTC\n2025-05-08,5e8,1e8\n2025-05-09,8e8,2e8\n")
    assert cli.main(["import", str(p), "--series", "etf_flows", "--unit", "USD"]) == 0
    out, err = capsys.readouterr()
    assert out == f"imported 4 rows (4 new) from {p} as series etf_flows_IBIT, etf_flows_FBTC\n" and err == ""
    ctx = open_store().context()
    assert list(ctx.outside("etf_flows_IBIT")["value"]) == [5e8, 8e8] and ctx.unit("etf_flows_FBTC") == "USD"
    assert cli.main(["import", str(p), "--series", "etf_flows_IBIT", "--value-column", "IBIT", "--unit", "USD"]) == 0
    assert "imported 2 rows (0 new)" in capsys.readouterr().out
    bad = write(tmp_path, "bad.csv", "date,v\n2025-05-09,x\n")
    assert cli.main(["import", str(bad), "--series", "s", "--value-column", "v"]) == 2
    err = capsys.readouterr().err
    assert err == "liqscope: error: bad.csv, line 2, column 'v': 'x' is not a number (store unchanged)\n"
    assert cli.main(["import", str(p), "--unit", "USD"]) == 2
    assert "apply with --series NAME" in capsys.readouterr().err
    assert open_store().context().names() == ["etf_flows_FBTC", "etf_flows_IBIT"]
