"""Bad input: one clean line naming file, line and column; the store keeps every byte."""
from __future__ import annotations

import gzip
import os
import zipfile

import pytest

from liqscope.models.importers import InputError, UnknownColumnsError, UnknownContractSizeError, import_files
from liqscope.models.store import open_store
from store_testutil import FIXTURES, tree_hash

TARDIS_HEAD = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
TARDIS_ROW = "binance-futures,BTCUSDT,{ts},{ts},,{side},{price},{amount}\n"
KLINES = (FIXTURES / "BTCUSDT-1m-2025-01.csv").read_text().splitlines(keepends=True)


def tardis(*rows) -> str:
    return TARDIS_HEAD + "".join(TARDIS_ROW.format(**r) for r in rows)


def row(ts=1709251205123000, side="sell", price="61250.5", amount="0.012"):
    return dict(ts=ts, side=side, price=price, amount=amount)


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "store")
    import_files([FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"], store=s)
    return s


def refused(store, path, match, **kw):
    """Import must fail with one line matching ``match`` and leave the store untouched."""
    before = tree_hash(store.root)
    with pytest.raises(InputError) as info:
        import_files([path], store=store, **kw)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert msg.startswith(str(path))
    import re
    assert re.search(match, msg), msg
    assert tree_hash(store.root) == before
    return info.value


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


T = "binance-futures_liquidations_2024-03-01_T.csv"  # a Tardis liquidations file's name (its kind: see detect)


def test_missing_columns(store, tmp_path):
    p = write(tmp_path, "BTCUSDT-liquidationSnapshot-2023-08-01.csv",
              "time,side,order_type,time_in_force,original_quantity,price,order_status,last_fill_quantity,"
              "accumulated_fill_quantity\n1690761661123,SELL,LIMIT,IOC,0.5,29150,FILLED,0.5,0.5\n")
    err = refused(store, p, r"line 1: missing columns: average_price", fmt="binance-liquidations")
    assert isinstance(err, UnknownColumnsError) and err.file == str(p) and err.line == 1
    assert err.columns == ["time", "side", "order_type", "time_in_force", "original_quantity", "price",
                           "order_status", "last_fill_quantity", "accumulated_fill_quantity"]


def test_unknown_columns_suggest_a_mapping(store, tmp_path):
    p = write(tmp_path, "x.csv", "when,what\n1,2\n")
    err = refused(store, p, r"line 1: unrecognised columns \(when, what\).*--map")
    assert isinstance(err, UnknownColumnsError) and (err.file, err.columns) == (str(p), ["when", "what"])


@pytest.mark.parametrize("mapping, match", [
    ("ts=time,symbol=sym,price=px,qty=size", r"line 1: no side column: map with --map side=COLUMN"),
    ("ts=time,symbol=sym,side=dir,price=px", r"liquidations need two of price, qty, notional_usd"),
    ("ts=time,side=dir,price=px,qty=size", r"no symbol column: pass --symbol or map one"),
    ("ts=time,symbol=sym,side=direction,price=px,qty=size", r"column 'direction' \(mapped to side\) is not in"),
])
def test_columns_a_generic_import_needs_but_lacks(store, tmp_path, mapping, match):
    """Every 'map a column' failure is one type, carrying the file's columns for a mapping dialog."""
    p = FIXTURES / "generic-bybit-liquidations.csv"
    err = refused(store, p, match, mapping=mapping, exchange="bybit", side_convention="position")
    assert isinstance(err, UnknownColumnsError) and not isinstance(err, UnknownContractSizeError)
    assert err.file == str(p) and err.columns == ["time", "sym", "dir", "px", "size"]


def test_bad_values_are_plain_input_errors(store, tmp_path):
    """A missing value is not a missing column: no mapping can fix the row, so no subclass."""
    p = write(tmp_path, T, tardis(row(), row(price="")))
    err = refused(store, p, r"line 3, column 'price': missing value")
    assert type(err) is InputError


def test_unparsable_number_names_line_and_column(store, tmp_path):
    p = write(tmp_path, T, tardis(row(), row(price="61,250.5"), row()))
    err = refused(store, p, r"_T\.csv, line 3: expected 8 fields, found 9")
    p = write(tmp_path, T.replace("_T.", "_T2."), tardis(row(), row(), row(amount="0.0x1")))
    err = refused(store, p, r"_T2\.csv, line 4, column 'amount': cannot read '0\.0x1' as a number")
    assert (err.line, err.column) == (4, "amount")


def test_unparsable_time(store, tmp_path):
    p = write(tmp_path, "g.csv", "ts,exchange,symbol,side,price,qty\n"
                                 "2025-05-09T10:00:00Z,okx,BTC-USDT-SWAP,long,1,1\n"
                                 "yesterday noon,okx,BTC-USDT-SWAP,long,1,1\n")
    refused(store, p, r"line 3, column 'ts': cannot read 'yesterday noon' as a time")


def test_time_in_an_impossible_unit(store, tmp_path):
    p = write(tmp_path, T, tardis(row(), row(ts=17092512)))
    refused(store, p, r"line 3, column 'timestamp': time .* outside 2009-2099")


def test_negative_quantity(store, tmp_path):
    p = write(tmp_path, T, tardis(row(), row(amount="-0.5")))
    refused(store, p, r"line 3, column 'amount': -0\.5 is not positive")


def test_mixed_timezones(store, tmp_path):
    p = write(tmp_path, "g.csv", "ts,exchange,symbol,side,price,qty\n"
                                 "2025-05-09T10:00:00Z,okx,BTC-USDT-SWAP,long,1,1\n"
                                 "2025-05-09T10:00:01+00:00,okx,BTC-USDT-SWAP,long,1,1\n"
                                 "2025-05-09 10:00:02,okx,BTC-USDT-SWAP,long,1,1\n")
    refused(store, p, r"line 4, column 'ts': mixed timezones: '2025-05-09 10:00:02' has no UTC offset "
                      r"but line 2 .* has")


def test_unknown_side_word(store, tmp_path):
    p = write(tmp_path, T, tardis(row(), row(side="long")))
    refused(store, p, r"line 3, column 'side': unknown side 'long' \(a position side")


def test_conflicting_duplicate_candles(store, tmp_path):
    p = write(tmp_path, "BTCUSDT-1m-2025-01.csv", "".join(KLINES + [KLINES[2].replace("93580.40", "93581.00")]))
    refused(store, p, r"line 7: second candle for open time 2025-01-01 00:01:00\+00:00 with different "
                      r"values \(first on line 3\)")


def test_exact_duplicates_and_out_of_order_rows_are_merged_with_a_warning(store, tmp_path):
    p = write(tmp_path, "BTCUSDT-1m-2025-01.csv", "".join([KLINES[0], *reversed(KLINES[1:]), KLINES[3]]))
    [r] = import_files([p], store=store)
    assert r.rows == 5 and r.repeated == 1 and any("sorted" in w for w in r.warnings)
    assert r.summary().endswith("; 1 row repeated in the file was counted once")
    assert store.candles("binance", "BTCUSDT", "1m").index.is_monotonic_increasing


def test_broken_candle(store, tmp_path):
    bad = KLINES[1].replace("93610.90", "93500.00")  # high below low
    p = write(tmp_path, "BTCUSDT-1m-2025-01.csv", "".join([KLINES[0], bad]))
    refused(store, p, r"line 2, column 'high': high 93500 is below low 93537\.5")


def test_binary_garbage(store, tmp_path):
    p = tmp_path / "garbage.csv"
    p.write_bytes(os.urandom(4096) + b"\x00")
    refused(store, p, r"garbage\.csv.*(binary|UTF-8)")
    g = tmp_path / "garbage.csv.gz"
    g.write_bytes(gzip.compress(os.urandom(2048) + b"\x00\xff"))
    refused(store, g, r"garbage\.csv\.gz.*(binary|UTF-8)")
    t = tmp_path / "truncated.csv.gz"
    t.write_bytes(gzip.compress(tardis(row()).encode())[:-12])
    refused(store, t, r"truncated\.csv\.gz: cannot")


def test_garbage_after_a_good_start(store, tmp_path):
    p = tmp_path / T
    p.write_bytes(tardis(*[row(ts=1709251205123000 + i) for i in range(3000)]).encode() + b"\xff\xfe\x00junk\n")
    refused(store, p, r"line 3002")


def test_zip_with_several_files(store, tmp_path):
    z = tmp_path / "two.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.csv", "x")
        zf.writestr("b.csv", "y")
    refused(store, z, r"zip holds 2 files")


def test_empty_missing_and_trades_files(store, tmp_path):
    refused(store, write(tmp_path, "empty.csv", "\n\n"), r"file is empty")
    refused(store, tmp_path / "nope.csv", r"no such file")
    refused(store, write(tmp_path, "binance-futures_trades_2024-03-01_BTCUSDT.csv", tardis(row())),
            r"Tardis trades file")


def test_blank_lines_are_skipped(store, tmp_path):
    p = write(tmp_path, T, tardis(row(ts=1709251205123001)) + "\n" + TARDIS_ROW.format(**row(ts=1709251205123002)) + "\n\n")
    [r] = import_files([p], store=store)
    assert (r.rows, r.new) == (2, 2)


def test_klines_need_a_symbol(store, tmp_path):
    p = write(tmp_path, "klines.csv", "".join(KLINES))
    refused(store, p, r"cannot tell the symbol.*--symbol")
    [r] = import_files([p], store=store, symbol="BTCUSDT")
    assert r.rows == 5


def test_bad_mapping(store, tmp_path):
    p = FIXTURES / "generic-bybit-liquidations.csv"
    with pytest.raises(InputError, match=r"unknown field 'colour'"):
        import_files([p], store=store, mapping="colour=dir")
    refused(store, p, r"column 'direction' \(mapped to side\) is not in the file", mapping="side=direction")


@pytest.mark.parametrize("name", ["binance-futures_liquidations_2024-03-01_PERPETUALS.csv",
                                  "BTCUSDT-1m-2025-01.csv", "BTCUSDT-liquidationSnapshot-2023-07-31.csv"])
@pytest.mark.parametrize("end", ["", "\n", "\r\n"])
def test_header_only_file_imports_nothing(store, tmp_path, name, end):
    p = tmp_path / name
    p.write_text((FIXTURES / name).read_text().splitlines()[0] + end)
    before = tree_hash(store.root)
    [r] = import_files([p], store=store)
    assert (r.rows, r.new) == (0, 0) and tree_hash(store.root) == before


def test_corrupt_parquet(store, tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"PAR1" + os.urandom(300))
    refused(store, p, r"broken\.parquet: cannot read")
