"""CSV export of the data behind a view (Qt-free): layout, round trips, filters, names, CLI errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from liqscope.gui.main import main as liqscope_main  # `liqscope export` (Qt only inside its renderer)
from liqscope.models.dataset import load_demo
from liqscope.models.drilldown import basis_bps, breakdown, index_breakdown
from liqscope.models.export import (ExportCancelled, ExportError, Selection, check_writable, default_name,
                                    iso_ms, main_view_name, selection_frame, write_csv)
from liqscope.models.prices import resample
from liqscope.models.progress import Task
from liqscope.models.view import View

DAY = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-05-10", tz="UTC"))
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.fixture(scope="module")
def demo():
    return load_demo()


VIEW_FIELDS = {"start", "end", "asset", "exchange", "exchanges", "side", "min_usd", "liq_scope"}


def sel(**kw) -> Selection:
    """A Selection of the demo day's BTC view; View fields and Selection fields both accepted."""
    view = {"start": DAY[0], "end": DAY[1], "asset": "BTC"} | {k: v for k, v in kw.items() if k in VIEW_FIELDS}
    rest = {"price_exchanges": ("binance",)} | {k: v for k, v in kw.items() if k not in VIEW_FIELDS}
    return Selection(view=View(**view), **rest)


def roundtrip(frame: pd.DataFrame, tmp_path, name="x.csv") -> tuple[pd.DataFrame, str]:
    path = tmp_path / name
    write_csv(frame, path)
    text = path.read_text(encoding="utf-8")
    return pd.read_csv(path), text


# -- names and formats ---------------------------------------------------------
def test_default_names():
    assert default_name(["BTC", "binance"], *DAY, "csv") == "BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.csv"
    day = View(start=DAY[0], end=DAY[1], asset="BTC", exchange="binance")
    assert main_view_name(day) == "BTC_binance_2025-05-09T00-00Z_2025-05-10T00-00Z.csv"
    assert main_view_name(day, what="buckets") == \
        "all-assets_all-exchanges_2025-05-09T00-00Z_2025-05-10T00-00Z_buckets.csv"
    eth = View(start=DAY[0], end=DAY[1], asset="ETH", exchange="okx", exchanges=frozenset({"okx", "bybit"}),
               liq_scope="asset")
    assert main_view_name(eth, what="liquidations", ext="csv") == \
        "ETH_bybit+okx_2025-05-09T00-00Z_2025-05-10T00-00Z_liquidations.csv"
    # sub-minute window edges, no characters that Windows rejects
    name = default_name(["SOL", "a/b:c"], pd.Timestamp("2025-05-09T12:34:56.789Z"), DAY[1], ".png")
    assert name == "SOL_a-b-c_2025-05-09T12-34Z_2025-05-10T00-00Z.png"


def test_iso_ms_is_utc_with_milliseconds():
    ts = pd.DatetimeIndex(["2025-05-09T00:00:00Z", "2025-05-09T08:15:38.116789Z"])
    assert list(iso_ms(ts)) == ["2025-05-09T00:00:00.000Z", "2025-05-09T08:15:38.116Z"]
    assert list(iso_ms(pd.Series(ts.tz_convert("Asia/Tokyo")))) == list(iso_ms(ts))


# -- candles -------------------------------------------------------------------
def test_candles_csv_round_trip_1m(demo, tmp_path):
    frame = selection_frame(demo.prices, demo.liquidations, sel(candle_interval=60), "candles")
    back, text = roundtrip(frame, tmp_path)
    lines = text.split("\n")
    assert lines[0] == "ts,exchange,symbol,asset,interval,open,high,low,close,volume"
    assert lines[1].startswith("2025-05-09T00:00:00.000Z,binance,BTCUSDT,BTC,1m,")
    assert not any(line.startswith("#") for line in lines)
    assert text.endswith("\n") and "\r" not in text
    src = demo.prices.candles(demo.prices.find("BTC", "binance"), *DAY)
    assert len(back) == len(src) == 1440
    assert back["ts"].str.fullmatch(ISO).all()
    assert (pd.to_datetime(back["ts"], utc=True) == src.index).all()
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(back[col].to_numpy(), src[col].to_numpy())  # exact: full precision
    # plain numbers: no thousands separators anywhere in the numeric fields
    assert all("," not in f for f in lines[1].split(",")[5:])
    assert back["close"].dtype == float


def test_candles_csv_resampled_bins_are_whole_and_in_window(demo, tmp_path):
    start, end = pd.Timestamp("2025-05-09T10:07Z"), pd.Timestamp("2025-05-09T12:00Z")
    frame = selection_frame(demo.prices, demo.liquidations,
                            sel(start=start, end=end, candle_interval=300), "candles")
    back, _ = roundtrip(frame, tmp_path)
    ts = pd.to_datetime(back["ts"], utc=True)
    assert ts.iloc[0] == pd.Timestamp("2025-05-09T10:10Z")  # first bin opening inside the window
    assert ts.iloc[-1] == pd.Timestamp("2025-05-09T11:55Z") and len(back) == 22
    assert set(back["interval"]) == {"5m"}
    minutes = demo.prices.candles(demo.prices.find("BTC", "binance"), "2025-05-09T10:10Z", "2025-05-09T10:15Z")
    first = back.iloc[0]
    assert first["open"] == minutes["open"].iloc[0] and first["close"] == minutes["close"].iloc[-1]
    assert first["high"] == minutes["high"].max() and first["low"] == minutes["low"].min()
    assert first["volume"] == pytest.approx(minutes["volume"].sum())
    expected = resample(demo.prices.candles(demo.prices.find("BTC", "binance")), 300)
    expected = expected[(expected.index >= start) & (expected.index < end)]
    np.testing.assert_allclose(back["close"].to_numpy(), expected["close"].to_numpy())


def test_candles_for_several_exchanges_and_none(demo):
    frame = selection_frame(demo.prices, demo.liquidations,
                            sel(price_exchanges=("binance", "okx", "bybit"), candle_interval=3600), "candles")
    assert list(frame.groupby("exchange", sort=False).size().items()) == [("binance", 24), ("okx", 24),
                                                                          ("bybit", 24)]
    with pytest.raises(ExportError, match="no candles"):
        selection_frame(demo.prices, demo.liquidations, sel(price_exchanges=()), "candles")
    with pytest.raises(ExportError, match="unknown export"):
        selection_frame(demo.prices, demo.liquidations, sel(), "trades")


# -- buckets -------------------------------------------------------------------
def test_buckets_csv_sums_to_the_window_totals(demo, tmp_path):
    frame = selection_frame(demo.prices, demo.liquidations, sel(bucket=3600), "buckets")
    back, text = roundtrip(frame, tmp_path)
    assert text.split("\n")[0].startswith("ts,long_usd,short_usd,total_usd,binance_long_usd,binance_short_usd,")
    assert len(back) == 24 and back["ts"].iloc[0] == "2025-05-09T00:00:00.000Z"
    t = demo.liquidations.filter(*DAY).totals()
    assert back["total_usd"].sum() == pytest.approx(t.total_usd, rel=1e-9)
    assert back["total_usd"].sum() == pytest.approx(860e6, rel=0.005)
    assert back["long_usd"].sum() == pytest.approx(t.long_usd, rel=1e-9)
    assert back["short_usd"].sum() == pytest.approx(t.short_usd, rel=1e-9)
    for ex, usd in t.by_exchange.items():
        assert (back[f"{ex}_long_usd"] + back[f"{ex}_short_usd"]).sum() == pytest.approx(usd, rel=1e-9)
    # one bucket against the raw events
    h12 = demo.liquidations.filter("2025-05-09T12:00Z", "2025-05-09T13:00Z").totals()
    assert back.loc[12, "total_usd"] == pytest.approx(h12.total_usd, rel=1e-9)


def test_buckets_with_a_window_not_on_bucket_edges(demo):
    start, end = pd.Timestamp("2025-05-09T10:30Z"), pd.Timestamp("2025-05-09T12:15Z")
    frame = selection_frame(demo.prices, demo.liquidations, sel(start=start, end=end, bucket=3600), "buckets")
    assert list(frame["ts"]) == [pd.Timestamp(f"2025-05-09T{h}:00Z") for h in (10, 11, 12)]
    assert frame["total_usd"].sum() == pytest.approx(demo.liquidations.filter(start, end).totals().total_usd)


def test_buckets_by_asset_with_filters(demo):
    s = sel(exchanges=frozenset({"binance"}), side="short", min_usd=1e5, bucket=900, by="asset")
    frame = selection_frame(demo.prices, demo.liquidations, s, "buckets")
    t = demo.liquidations.filter(*DAY, exchanges=["binance"], side="short", min_notional=1e5).totals()
    assert frame["long_usd"].sum() == 0
    assert frame["short_usd"].sum() == pytest.approx(t.short_usd)
    assert len(frame) == 96
    groups = [c[: -len("_short_usd")] for c in frame.columns if c.endswith("_short_usd") and c != "short_usd"]
    assert groups == list(t.by_asset)  # largest first, only assets with money
    for asset, usd in t.by_asset.items():
        assert frame[f"{asset}_short_usd"].sum() == pytest.approx(usd)


# -- raw liquidations ----------------------------------------------------------
def test_liquidations_csv_round_trip(demo, tmp_path):
    s = sel(exchanges=frozenset({"binance", "okx"}), liq_scope="asset", side="both")
    frame = selection_frame(demo.prices, demo.liquidations, s, "liquidations")
    back, text = roundtrip(frame, tmp_path)
    src = demo.liquidations.filter(*DAY, exchanges=["binance", "okx"], assets=["BTC"]).frame
    assert text.split("\n")[0] == "ts,exchange,symbol,asset,side,price,qty,notional_usd"
    assert len(back) == len(src) > 1000
    assert (pd.to_datetime(back["ts"], utc=True) == src["ts"].to_numpy()).all()  # demo times are whole ms
    for col in ("price", "qty", "notional_usd"):
        np.testing.assert_array_equal(back[col].to_numpy(), src[col].to_numpy())
    assert list(back["exchange"].unique()) != [] and set(back["exchange"]) == {"binance", "okx"}
    assert set(back["side"]) == {"long", "short"}
    assert back["notional_usd"].sum() == pytest.approx(src["notional_usd"].sum())


def test_selection_filters_are_the_views():
    v = View(start=DAY[0], end=DAY[1], asset="ETH", exchange="okx", exchanges=frozenset({"okx", "binance"}),
             liq_scope="asset", side="long", min_usd=1e4)
    s = Selection(view=v, price_exchanges=("okx",), candle_interval=300, bucket=900)
    assert s.liq_filter() == v.liq_filter() == {"exchanges": ["binance", "okx"], "assets": ["ETH"], "side": "long",
                                                "min_notional": 1e4}
    assert (s.price_exchanges, s.candle_interval, s.bucket) == (("okx",), 300, 900)
    assert Selection(view=View(start=DAY[0], end=DAY[1], asset="ETH")).liq_filter()["assets"] is None


# -- writing -------------------------------------------------------------------
def test_unwritable_paths_fail_in_one_line(tmp_path):
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ExportError, match="does not exist"):
        write_csv(frame, tmp_path / "missing" / "x.csv")
    with pytest.raises(ExportError, match="is a directory"):
        write_csv(frame, tmp_path)
    assert check_writable(tmp_path / "ok.csv") == tmp_path / "ok.csv"
    assert list(tmp_path.iterdir()) == []


def test_progress_and_cancel_leave_no_partial_file(tmp_path):
    frame = pd.DataFrame({"ts": pd.date_range("2025-01-01", periods=50_000, freq="s", tz="UTC"),
                          "v": np.arange(50_000, dtype=float)})
    seen = []
    path = tmp_path / "big.csv"
    assert write_csv(frame, path, Task(lambda step: seen.append((step.done, step.total))), chunk_rows=10_000) == 50_000
    assert seen == [(10_000 * i, 50_000) for i in range(1, 6)]
    assert len(pd.read_csv(path)) == 50_000
    before = path.read_bytes()
    task = Task()
    task.cancel.set()
    with pytest.raises(ExportCancelled):
        write_csv(frame.iloc[:100], path, task, chunk_rows=10)
    assert path.read_bytes() == before  # the previous file survives a cancelled export
    assert [p.name for p in tmp_path.iterdir()] == ["big.csv"]


# -- drill-down figures -------------------------------------------------------
def test_breakdown_equals_totals(demo):
    sub = demo.liquidations.filter(*DAY, exchanges=["binance"])
    b = breakdown(sub, "asset")
    t = sub.totals()
    assert dict(zip(b["asset"], b["total_usd"])) == pytest.approx(t.by_asset)
    assert list(b["asset"]) == list(t.by_asset)
    assert b["count"].sum() == t.count
    assert (b["long_usd"] + b["short_usd"]).to_numpy() == pytest.approx(b["total_usd"].to_numpy())
    assert b["share"].sum() == pytest.approx(1.0)
    assert b["total_usd"].sum() == pytest.approx(360e6, rel=0.005)
    empty = breakdown(demo.liquidations.filter("2030-01-01", "2030-01-02"), "exchange")
    assert empty.empty and list(empty.columns) == ["exchange", "total_usd", "long_usd", "short_usd", "count", "share"]


@pytest.mark.parametrize("by", ["asset", "exchange"])
@pytest.mark.parametrize("filters", [{}, {"exchanges": ["okx"]}, {"side": "long"}, {"assets": ["ETH"]},
                                     {"exchanges": ["binance", "bybit"], "side": "short"}])
def test_index_breakdown_equals_the_scan(demo, by, filters):
    """Panels read their breakdown through the prefix-sum index; it equals scanning the events."""
    start, end = DAY[0] + pd.Timedelta(hours=3), DAY[0] + pd.Timedelta(hours=15)
    scanned = breakdown(demo.liquidations.filter(start, end, **filters), by)
    indexed = index_breakdown(demo.index(), start, end, by, **filters)
    pd.testing.assert_frame_equal(scanned, indexed, check_exact=False, rtol=1e-9, check_dtype=False)
    assert index_breakdown(demo.index(), "2030-01-01", "2030-01-02", by).empty


def test_basis_bps():
    idx = pd.date_range("2025-05-09", periods=3, freq="min", tz="UTC")
    closes = {"a": pd.Series([100.0, 100.0, 100.0], idx), "b": pd.Series([100.1, 99.9, 100.0], idx)}
    out = basis_bps(closes, "a")
    assert list(out) == ["b"]
    assert out["b"].to_numpy() == pytest.approx([10.0, -10.0, 0.0])
    assert basis_bps(closes, "zzz") == {}


# -- CLI -----------------------------------------------------------------------
def run_cli(tmp_path, capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = liqscope_main(["--data-dir", str(tmp_path / "store"), "--demo", *args])
    except SystemExit as exc:  # argparse errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("args, message", [
    ([], "--asset is required"),
    (["--asset", "BTC"], "nothing to export"),
    (["--asset", "NOPE", "--csv", "{tmp}/x.csv"], "unknown asset 'NOPE'"),
    (["--asset", "BTC", "--exchange", "kraken", "--csv", "{tmp}/x.csv"], "no BTC candles from 'kraken'"),
    (["--asset", "BTC", "--start", "yesterday", "--csv", "{tmp}/x.csv"], "invalid time 'yesterday'"),
    (["--asset", "BTC", "--start", "2025-05-10", "--end", "2025-05-09", "--csv", "{tmp}/x.csv"], "must be after"),
    (["--asset", "BTC", "--csv", "{tmp}/no/such/dir/x.csv"], "does not exist"),
    (["--asset", "BTC", "--png", "{tmp}"], "is a directory"),
    (["--asset", "BTC", "--png", "{tmp}/x.png", "--size", "big"], "invalid --size"),
    (["--asset", "BTC", "--csv", "{tmp}/x.csv", "--what", "trades"], "invalid choice 'trades'"),
    (["--asset", "BTC", "--png", "{tmp}/x.png", "--scale", "3"], "invalid choice: 3"),
    (["--asset", "BTC", "--png", "{tmp}/x.jpg"], "give a file name ending in .png"),
    (["--asset", "BTC", "--csv", "{tmp}/x.csv", "--min-usd", "-1"], "must be a number >= 0"),
])
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    status, out, err = run_cli(tmp_path, capsys, "export", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("liqscope: error: ") and message in err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.png").exists()


def test_cli_raw_liquidations_csv_without_qt(tmp_path):
    """--what liquidations --csv needs no renderer: it runs without importing Qt at all."""
    out = tmp_path / "liqs.csv"
    code = (
        "import sys\n"
        "from liqscope.gui.main import main\n"
        f"rc = main(['--data-dir', {str(tmp_path / 'store')!r}, '--demo', 'export', '--asset', 'BTC', "
        f"'--start', '2025-05-09T00:00Z', '--end', '2025-05-10T00:00Z', '--csv', {str(out)!r}, "
        "'--what', 'liquidations', '--side', 'short', '--min-usd', '100000'])\n"
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "0 []"
    assert f"wrote {out}" in res.stdout
    back = pd.read_csv(out)
    demo = load_demo()
    expected = demo.liquidations.filter(*DAY, side="short", min_notional=1e5).totals()
    assert len(back) == expected.count
    assert back["notional_usd"].sum() == pytest.approx(expected.total_usd)
    assert set(back["side"]) == {"short"} and back["notional_usd"].min() >= 1e5


def test_export_command_is_listed(capsys):
    with pytest.raises(SystemExit) as exc:
        liqscope_main(["export", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--asset", "--exchange", "--start", "--end", "--png", "--csv", "--what", "--size", "--scale"):
        assert flag in text
