"""One damaged store file (truncated, empty, garbage, wrong schema, a flipped byte) spoils only the
reads that touch it -- one line naming the file -- and ``liqscope store check`` finds it and moves it aside."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liqscope.models.cli import main
from liqscope.models.store import StoreError, open_store
from store_testutil import candles, liqs

DAMAGES = ["truncated", "empty", "garbage", "wrong_schema", "flipped"]
VICTIM = "liquidations/binance/BTCUSDT/2025-05.parquet"
MAY = ["--start", "2025-05-09", "--end", "2025-05-19"]
JUNE = ["--start", "2025-06-03", "--end", "2025-06-06"]


def damage(path: Path, how: str) -> None:
    """Spoil one Parquet file the way disks, copies and people do."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        rng = random.Random(7)
        path.write_bytes(bytes(rng.getrandbits(8) for _ in range(len(data))))
    elif how == "wrong_schema":
        pq.write_table(pa.table({"when": [1, 2], "what": ["a", "b"]}), path)
    elif how == "flipped":
        # One bit inside the price column's pages: without page checksums this silently changed prices.
        md = pq.read_metadata(path)
        col = md.row_group(0).column(md.schema.to_arrow_schema().names.index("price"))
        start = col.dictionary_page_offset or col.data_page_offset
        flipped = bytearray(data)
        flipped[start + col.total_compressed_size // 2] ^= 0x10
        path.write_bytes(bytes(flipped))
    else:  # pragma: no cover
        raise ValueError(how)


@pytest.fixture
def store(tmp_path):
    """binance BTCUSDT + ETHUSDT and bybit BTCUSDT in May, binance again in June, one candle series."""
    s = open_store(tmp_path / "store")
    s.append_liquidations(pd.concat([
        liqs(3000, start="2025-05-09", span="10D", seed=1),
        liqs(300, start="2025-05-09", span="10D", seed=2, exchange="bybit", symbols=("BTCUSDT",)),
        liqs(500, start="2025-06-03", span="3D", seed=3),
    ], ignore_index=True))
    s.append_candles(candles(60, start="2025-06-03"), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    return s


def run(capsys, store, *argv):
    code = main(["--data-dir", str(store.root), *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def summary(capsys, store, *argv) -> dict:
    code, out, err = run(capsys, store, "summary", "--json", *argv)
    assert code == 0, err
    return _rounded(json.loads(out))


def _rounded(value):
    """Figures to 9 significant digits: window sums come from prefix sums over everything loaded,
    so leaving another month out may move the last bits (never a cent)."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize("how", DAMAGES)
def test_reads_that_do_not_touch_the_damaged_file_keep_working(store, capsys, how):
    june, bybit_may = summary(capsys, store, *JUNE), summary(capsys, store, *MAY, "--exchange", "bybit")
    june_rows = len(store.liquidations("2025-06-01", "2025-07-01"))
    victim = store.root / VICTIM
    damage(victim, how)

    assert len(open_store(store.root).liquidations("2025-06-01", "2025-07-01")) == june_rows  # another month
    assert len(store.liquidations("2025-05-01", "2025-06-01", exchanges=["bybit"])) == 300  # another exchange
    assert len(store.liquidations("2025-05-01", "2025-06-01", symbols=["ETHUSDT"])) > 0  # another symbol
    assert len(store.candles("binance", "BTCUSDT", "1m")) == 60
    # the command line: a window, or an exchange, that does not hold the file reads as before
    assert summary(capsys, store, *JUNE) == june
    assert summary(capsys, store, *MAY, "--exchange", "bybit") == bybit_may


@pytest.mark.parametrize("how", DAMAGES)
def test_reads_that_touch_the_damaged_file_are_one_line_naming_it(store, capsys, how):
    victim = store.root / VICTIM
    damage(victim, how)
    with pytest.raises(StoreError) as info:
        open_store(store.root).liquidations("2025-05-01", "2025-06-01")
    text = str(info.value)
    assert "\n" not in text and str(victim) in text and "damaged" in text and "liqscope store check" in text

    code, out, err = run(capsys, store, "summary", *MAY)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert str(victim) in err and "liqscope store check" in err
    assert "Traceback" not in err

    # `store info` reads every file's footer: it still lists the rest and names the file in one line
    code, out, err = run(capsys, store, "store", "info")
    assert code == 0 and "bybit" in out
    if how != "flipped":  # footers stay readable after a flipped bit in a page: only `store check` sees it
        assert err.count("\n") == 1 and str(victim) in err and "store check" in err


def test_export_reads_around_the_damaged_file_and_refuses_a_window_that_needs_it(store, capsys, tmp_path):
    from liqscope.gui.main import main as liqscope_main  # `liqscope export` (no Qt for a liquidations CSV)

    victim = store.root / VICTIM
    damage(victim, "garbage")
    csv = tmp_path / "june.csv"
    argv = ["--data-dir", str(store.root), "export", "--asset", "BTC", "--what", "liquidations", "--csv", str(csv)]
    code = liqscope_main([*argv, *JUNE])
    out, err = capsys.readouterr()
    assert code == 0 and len(pd.read_csv(csv)) == len(store.liquidations("2025-06-03", "2025-06-06")), err
    assert [ln for ln in err.splitlines() if str(victim) in ln][0].startswith("liqscope: note: ")
    code = liqscope_main([*argv, *MAY])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and str(victim) in err and "store check" in err


def test_window_load_leaves_the_damaged_file_out_and_says_so(store):
    damage(store.root / VICTIM, "truncated")
    ds = open_store(store.root).load_dataset()
    assert set(ds.liquidations.frame["exchange"].astype(str)) == {"binance", "bybit"}
    assert any(str(store.root / VICTIM) in note for note in ds.notes)
    assert [d.path for d in ds.damaged] == [store.root / VICTIM]


def test_damaged_candle_file_spoils_only_its_series(store, capsys):
    store.append_candles(candles(30, start="2025-06-03"), exchange="binance", symbol="ETHUSDT", interval="1m",
                         asset="ETH")
    victim = store.root / "candles/binance/ETHUSDT/1m/2025-06.parquet"
    damage(victim, "garbage")
    assert len(store.candles("binance", "BTCUSDT", "1m")) == 60
    with pytest.raises(StoreError, match="damaged"):
        store.candles("binance", "ETHUSDT", "1m")
    ds = store.load_dataset()
    assert len(ds.liquidations) == 3800 and any(str(victim) in n for n in ds.notes)
    code, out, err = run(capsys, store, "summary", *JUNE)  # summaries read no candles
    assert code == 0 and "Total" in out


@pytest.mark.parametrize("how", DAMAGES)
def test_store_check_names_the_file_and_what_is_wrong(store, capsys, how):
    code, out, err = run(capsys, store, "store", "check")
    assert code == 0 and "damaged" not in out, out + err
    victim = store.root / VICTIM
    damage(victim, how)
    code, out, err = run(capsys, store, "store", "check")
    assert code == 1, out + err
    lines = [ln for ln in out.splitlines() if str(victim) in ln]
    assert len(lines) == 1
    words = {"truncated": "truncated", "empty": "empty", "garbage": "not a Parquet file",
             "wrong_schema": "wrong schema", "flipped": "checksum"}[how]
    assert words in lines[0]
    assert "--quarantine" in out
    assert victim.exists()  # checking never moves anything


@pytest.mark.parametrize("how", DAMAGES)
def test_quarantine_moves_the_file_inside_the_store_and_the_store_reads_again(store, capsys, how):
    victim = store.root / VICTIM
    damage(victim, how)
    spoiled = victim.read_bytes()
    code, out, err = run(capsys, store, "store", "check", "--quarantine")
    assert code == 1, out + err
    assert not victim.exists()
    moved = list((store.root / "quarantine").rglob("2025-05.parquet"))
    assert len(moved) == 1 and moved[0].read_bytes() == spoiled  # kept, never deleted
    assert moved[0].relative_to(store.root / "quarantine").parts[1:] == Path(VICTIM).parts
    assert str(moved[0]) in out

    code, out, err = run(capsys, store, "store", "check")
    assert code == 0, out
    may = summary(capsys, store, *MAY)
    assert set(may["by_exchange"]) == {"binance", "bybit"}  # ETHUSDT and bybit are still there
    store.append_liquidations(liqs(20, start="2025-05-10", span="1D", seed=9, symbols=("BTCUSDT",)))
    assert len(open_store(store.root).liquidations("2025-05-01", "2025-06-01", symbols=["BTCUSDT"],
                                                   exchanges=["binance"])) == 20


def test_files_are_written_with_page_checksums(store):
    victim = store.root / VICTIM
    before = store.liquidations("2025-05-01", "2025-06-01").frame
    damage(victim, "flipped")
    # the flipped bit is invisible without the checksums: Liqscope reads with them, so it is caught
    stored = before[(before["exchange"] == "binance") & (before["symbol"] == "BTCUSDT")]["price"]
    unchecked = pq.read_table(victim, page_checksum_verification=False).column("price").to_numpy()
    assert len(unchecked) == len(stored) and sorted(unchecked) != sorted(stored)  # silently other prices
    with pytest.raises(StoreError, match="checksum"):
        store.liquidations("2025-05-01", "2025-06-01")


def test_damaged_gaps_file(store, capsys):
    store.append_gaps(pd.DataFrame({"exchange": ["binance"], "start": [pd.Timestamp("2025-05-10", tz="UTC")],
                                    "end": [pd.Timestamp("2025-05-10 00:05", tz="UTC")], "reason": ["test"]}))
    victim = store.root / "gaps" / "gaps.parquet"
    damage(victim, "truncated")
    with pytest.raises(StoreError, match="damaged"):
        store.gaps()
    assert summary(capsys, store, *MAY)["count"] > 0
    code, out, err = run(capsys, store, "store", "check", "--quarantine")
    assert code == 1 and not victim.exists()
    assert store.gaps().empty


def test_a_write_into_a_damaged_partition_is_one_line_and_changes_nothing(store, capsys):
    damage(store.root / VICTIM, "flipped")
    spoiled = (store.root / VICTIM).read_bytes()
    with pytest.raises(StoreError, match="damaged") as info:
        store.append_liquidations(liqs(20, start="2025-05-10", span="1D", seed=9, symbols=("BTCUSDT",)))
    assert "\n" not in str(info.value) and not info.value.committed
    assert (store.root / VICTIM).read_bytes() == spoiled  # the flipped price is not laundered into a new file


# -- the recorder's journal still holds the quarantined span ---------------------------------------------------
def _journal_store(tmp_path):
    """A store the recorder filled: its raw journal for 2025-05-09 replayed into it."""
    from connector_fakes import fixture, restamp
    from liqscope.models.connectors import journal as jr

    T0 = 1746792000000  # 2025-05-09T12:00Z
    frames = fixture("binance", restamped=False)["frames"]
    j = jr.Journal(tmp_path / "store" / "journal")
    j.append("binance", [{"t": T0 + i, "k": "msg", "d": restamp(f["raw"], T0)} for i, f in enumerate(frames)])
    j.close()
    s = open_store(tmp_path / "store")
    jr.replay(s, tmp_path / "store" / "journal")
    files = sorted(p.relative_to(s.root).as_posix() for p in (s.root / "liquidations").rglob("*.parquet"))
    assert files, "the fixture frames stored nothing"
    return s, files[0]


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "connectors"))
    sys.modules.pop("connector_fakes", None)
    return _journal_store(tmp_path)


def test_quarantine_says_how_to_rebuild_from_the_journal(recorded, capsys):
    store, rel = recorded
    damage(store.root / rel, "truncated")
    code, out, err = run(capsys, store, "store", "check", "--quarantine")
    assert code == 1
    assert f"liqscope --data-dir {store.root} record --replay-journal --exchange binance --since 2025-05-09 " \
           "--until 2025-05-09 --symbols " in out, out
    assert "--rebuild" in out


def test_rebuild_replays_the_journal_for_the_quarantined_span(recorded, capsys):
    store, rel = recorded
    before = store.liquidations().frame
    damage(store.root / rel, "empty")
    code, out, err = run(capsys, store, "store", "check", "--rebuild")
    assert code == 1, out + err
    assert "rebuilt" in out
    after = open_store(store.root).liquidations().frame
    pd.testing.assert_frame_equal(after.reset_index(drop=True), before.reset_index(drop=True), check_categorical=False)
    code, out, err = run(capsys, store, "store", "check")
    assert code == 0
