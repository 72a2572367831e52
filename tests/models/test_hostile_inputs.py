"""Hostile input files: compression bombs, endless lines, impossible numbers, broken containers.

Each must end in one line naming the file, exit status 2 from the command, with
bounded memory -- never a traceback, a gigabyte allocation or an aborted process.
Bombs are built small (several gzip members or row groups of one small, highly
compressible piece) and the limits are lowered where that keeps a test quick.
"""
from __future__ import annotations

import gzip
import subprocess
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liqscope.models.cli import main
from liqscope.models.importers import InputError, import_files, read_file, source
from liqscope.models.store import open_store
from store_testutil import FIXTURES

HEADER = b"ts,exchange,symbol,side,price,qty\n"
LINE = b"2025-01-01T00:00:00Z,binance,BTCUSDT,long,100,1\n"


@pytest.fixture
def small_limits(monkeypatch):
    """Any file may expand to 1 MiB (not 64 MiB), so a bomb trips the limit after a few MiB."""
    monkeypatch.setattr(source, "MIN_LIMIT", 1 << 20, raising=False)


def gzip_members(path, head: bytes, piece: bytes, copies: int) -> None:
    """A gzip file of ``head`` then ``copies`` x ``piece``: one member compressed once, written many times."""
    member = gzip.compress(piece, compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(head))
        for _ in range(copies):
            fh.write(member)


def run(capsys, *argv):
    try:
        code = main(list(map(str, argv)))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, tmp_path, path, *extra) -> str:
    code, out, err = run(capsys, "--data-dir", tmp_path / "store", "import", path, *extra)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith(f"liqscope: error: {path}"), err
    assert not open_store(tmp_path / "store").has_data()
    return err


# -- B. compression bombs ---------------------------------------------------------------
class Counting:
    """Records how many decompressed bytes the import asked for."""

    most = 0


@pytest.fixture
def counted(monkeypatch):
    real = source.Source.open

    def open_(self):
        stream = real(self)
        inner_read = stream.read

        def read(n=-1):
            data = inner_read(n)
            Counting.most = max(Counting.most, getattr(stream, "count", 0))
            return data
        stream.read = read
        return stream
    Counting.most = 0
    monkeypatch.setattr(source.Source, "open", open_)
    return Counting


def test_gzip_bomb_is_refused_before_it_is_all_read(tmp_path, capsys, small_limits, counted):
    bomb = tmp_path / "bomb.csv.gz"
    gzip_members(bomb, HEADER, LINE * 20_000, 40)  # ~37 MiB of CSV in ~115 KiB
    assert source.expansion_limit(bomb.stat().st_size) < 37 << 20
    err = one_line_error(capsys, tmp_path, bomb)
    assert "decompresses to more than" in err and "200x its size" in err and "unpack it first" in err
    limit = source.expansion_limit(bomb.stat().st_size)
    assert counted.most <= limit + 1 < 39 << 20  # stopped at the limit, not at the end


def test_gzip_within_the_limit_imports(tmp_path, capsys, small_limits):
    ok = tmp_path / "ok.csv.gz"
    ok.write_bytes(gzip.compress(HEADER + b"".join(
        f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z,binance,BTCUSDT,long,{100 + i},1\n".encode() for i in range(3000))))
    assert source.expansion_limit(ok.stat().st_size) > 3000 * 50
    [r] = import_files([ok], store=open_store(tmp_path / "store"))
    assert r.rows == 3000


def test_zip_bomb_is_refused_from_its_directory_without_inflating(tmp_path, capsys, small_limits, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("a.csv", "w") as fh:
        fh.write(HEADER)
        for _ in range(40):
            fh.write(LINE * 20_000)

    def never(*a, **k):
        raise AssertionError("inflated a zip bomb")
    monkeypatch.setattr(zipfile.ZipExtFile, "read", never)
    err = one_line_error(capsys, tmp_path, bomb)
    assert "unpacks to 36.6 MiB, more than" in err and "unpack it first" in err


def test_zip_that_lies_about_its_size_is_still_bounded(tmp_path, small_limits, counted):
    """Sizes in the zip directory can be forged; the streamed count still applies."""
    body = HEADER + LINE * 400_000  # ~19 MiB
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", body)
    data = bytearray(path.read_bytes())
    small = (1000).to_bytes(4, "little")
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size: local header, directory
        i = data.find(sig)
        data[i + off: i + off + 4] = small
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        import_files([path], store=open_store(tmp_path / "store"))
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert counted.most <= source.expansion_limit(path.stat().st_size) + 1


def _parquet_bomb(path, rows_per_group: int, groups: int, text: str | None = None) -> None:
    n = rows_per_group
    cols = {"ts": pa.array(np.full(n, 1_735_689_600_000, dtype="int64")), "side": pa.array(["long"] * n),
            "price": pa.array(np.full(n, 100.0)), "qty": pa.array(np.full(n, 1.0))}
    if text is not None:
        cols["note"] = pa.array([text] * n)
    table = pa.table(cols)
    with pq.ParquetWriter(path, table.schema, compression="zstd") as w:
        for _ in range(groups):
            w.write_table(table)


def test_parquet_bomb_is_refused_from_its_footer(tmp_path, capsys, small_limits, monkeypatch):
    bomb = tmp_path / "bomb.parquet"
    _parquet_bomb(bomb, 250_000, 4)  # 1M rows of constants in a few KiB
    assert bomb.stat().st_size < 100_000

    def never(*a, **k):
        raise AssertionError("decoded a Parquet bomb")
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", never)
    monkeypatch.setattr(pq.ParquetFile, "read", never)
    err = one_line_error(capsys, tmp_path, bomb, "--format", "generic", "--exchange", "x", "--symbol", "S")
    assert "holds 1,000,000 rows that decode to at least" in err and "convert it to plain CSV first" in err


def test_parquet_whose_values_expand_is_refused_batch_by_batch(tmp_path, capsys, small_limits):
    """Footer sizes look small (one dictionary entry), decoded strings do not: counted per batch."""
    bomb = tmp_path / "strings.parquet"
    _parquet_bomb(bomb, 20_000, 2, text="x" * 2000)
    code, _, err = run(capsys, "--data-dir", tmp_path / "store", "import", bomb, "--format", "generic",
                       "--map", "exchange=note,symbol=note", "--exchange", "x")
    assert code == 2 and err.count("\n") == 1 and "decodes to more than" in err


def test_parquet_inside_gzip_is_bounded_too(tmp_path, capsys, small_limits):
    inner = tmp_path / "inner.parquet"
    _parquet_bomb(inner, 250_000, 4)
    gz = tmp_path / "wrapped.parquet.gz"
    gz.write_bytes(gzip.compress(inner.read_bytes()))
    err = one_line_error(capsys, tmp_path, gz, "--exchange", "x", "--symbol", "S")
    assert "rows that decode to at least" in err


def test_gzip_whose_single_line_is_4_gib_fails_cleanly(tmp_path):
    """Never buffered, never SIGABRT: a subprocess, so an abort would show as a signal, not a pass."""
    bomb = tmp_path / "oneline.csv.gz"
    gzip_members(bomb, b"ts,side,price,qty,x", b"y" * (16 << 20), 256)  # a 4 GiB first line, ~4 MiB file
    code = ("import sys; from liqscope.models.cli import main; "
            f"sys.exit(main(['--data-dir', {str(tmp_path / 'store')!r}, 'import', {str(bomb)!r}, "
            "'--exchange', 'x', '--symbol', 'S', '--side-convention', 'position']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1
    assert f"{bomb}, line 1: line longer than 1 MiB" in done.stderr


def test_a_long_line_later_in_a_plain_file_is_named(tmp_path, capsys):
    f = tmp_path / "long.csv"
    f.write_bytes(HEADER + LINE * 3 + b"7" * (3 << 20) + b"\n" + LINE)
    err = one_line_error(capsys, tmp_path, f)
    assert f"{f}, line 5: line longer than 1 MiB" in err


def test_long_line_scan_costs_one_line_of_memory():
    import io

    from liqscope.models.importers import csvread

    lines = csvread._physical_lines(io.BytesIO(b"a\n" + b"b" * 5000 + b"\nc\n"), chunk=64, max_line=1000)
    assert next(lines) == b"a"
    with pytest.raises(csvread.LineTooLong) as info:
        next(lines)
    assert info.value.line == 2


# -- C. impossible values and broken containers ------------------------------------------
@pytest.mark.parametrize("ts", ["2300-01-01T00:00:00Z", "1500-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_iso_times_outside_pandas_range(tmp_path, capsys, ts):
    f = tmp_path / "far.csv"
    f.write_bytes(HEADER + LINE + f"{ts},binance,BTCUSDT,long,100,1\n".encode())
    err = one_line_error(capsys, tmp_path, f)
    assert "line 3, column 'ts'" in err and "outside 2009-2099" in err


@pytest.mark.parametrize("ts", ["99999999999999999999999", "-99999999999999999999", "18446744073709551616"])
def test_integers_beyond_int64_in_a_text_time_column(tmp_path, capsys, ts):
    f = tmp_path / "huge.csv"
    f.write_bytes(HEADER + f"{ts},binance,BTCUSDT,long,100,1\n".encode())
    err = one_line_error(capsys, tmp_path, f)
    assert "line 2, column 'ts'" in err


def test_integers_beyond_int64_in_a_typed_column_name_the_line(tmp_path, capsys):
    lines = (FIXTURES / "BTCUSDT-1m-2025-01.csv").read_text().splitlines()
    fields = lines[2].split(",")
    fields[0] = "99999999999999999999"
    f = tmp_path / "BTCUSDT-1m-2025-01.csv"
    f.write_text("\n".join(lines[:2] + [",".join(fields)] + lines[3:]) + "\n")
    err = one_line_error(capsys, tmp_path, f)
    assert "line 3, column 'open_time'" in err and "64-bit integer range" in err


def test_parquet_time_beyond_pandas_range(tmp_path, capsys):
    f = tmp_path / "far.parquet"
    pq.write_table(pa.table({"ts": pa.array([np.datetime64("2300-01-01", "us")], pa.timestamp("us")),
                             "side": ["long"], "price": [1.0], "qty": [2.0]}), f)
    one_line_error(capsys, tmp_path, f, "--exchange", "x", "--symbol", "S")


def test_corrupt_zip(tmp_path, capsys):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", HEADER + LINE * 2000)
    data = good.read_bytes()
    for name, broken in [("truncated.zip", data[: len(data) // 2]),
                         ("garbled.zip", data[:60] + b"\xff" * 40 + data[100:]),
                         ("nodir.zip", data[: data.find(b"PK\x01\x02")])]:
        (tmp_path / name).write_bytes(broken)
        one_line_error(capsys, tmp_path, tmp_path / name)


def test_encrypted_zip(tmp_path, capsys):
    path = tmp_path / "secret.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", HEADER + LINE)
    data = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flag bit 0: encrypted
        i = data.find(sig)
        data[i + off] |= 1
    path.write_bytes(bytes(data))
    err = one_line_error(capsys, tmp_path, path)
    assert "encrypted" in err and "unpack it first" in err


def test_unsupported_zip_compression(tmp_path, capsys):
    path = tmp_path / "method.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", HEADER + LINE)
    data = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = data.find(sig)
        data[i + off: i + off + 2] = (99).to_bytes(2, "little")  # AES/unknown method
    path.write_bytes(bytes(data))
    one_line_error(capsys, tmp_path, path)


def test_corrupt_gzip(tmp_path, capsys):
    data = gzip.compress(HEADER + LINE * 5000)
    for name, broken in [("cut.csv.gz", data[: len(data) // 2]),
                         ("garbled.csv.gz", data[:200] + bytes(64) + data[264:])]:
        (tmp_path / name).write_bytes(broken)
        one_line_error(capsys, tmp_path, tmp_path / name)


def test_duplicate_parquet_columns(tmp_path, capsys):
    f = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array(["2025-01-01T00:00:00Z"]), pa.array(["long"]), pa.array([1.0]),
                                  pa.array([2.0]), pa.array([3.0])], names=["ts", "side", "price", "qty", "qty"])
    pq.write_table(table, f)
    err = one_line_error(capsys, tmp_path, f, "--exchange", "x", "--symbol", "S")
    assert "repeated column names: 'qty'" in err


def test_corrupt_parquet(tmp_path, capsys):
    f = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"ts": ["2025-01-01T00:00:00Z"], "side": ["long"], "price": [1.0], "qty": [2.0]}), f)
    data = f.read_bytes()
    f.write_bytes(data[:4] + b"\x13" * (len(data) - 12) + data[-8:])
    one_line_error(capsys, tmp_path, f, "--exchange", "x", "--symbol", "S")


def test_an_honest_zip_within_the_limit_imports(tmp_path, small_limits):
    path = tmp_path / "honest.zip"
    body = HEADER + b"".join(f"2025-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z,binance,BTCUSDT,long,{100 + i},1\n"
                             .encode() for i in range(3000))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", body)
    assert len(read_file(path).frame) == 3000


# -- binance klines: spot or futures --------------------------------------------------------
def test_one_microsecond_row_does_not_make_futures_klines_spot(tmp_path):
    lines = (FIXTURES / "BTCUSDT-1m-2025-01.csv").read_text().splitlines()
    assert lines[0].startswith("open_time")  # a futures file: it has the header
    fields = lines[2].split(",")
    fields[0], fields[6] = fields[0] + "000", fields[6] + "999"  # that row's times in microseconds
    f = tmp_path / "BTCUSDT-1m-2025-01.csv"
    f.write_text("\n".join(lines[:2] + [",".join(fields)] + lines[3:]) + "\n")
    parsed = read_file(f)
    assert parsed.exchange == "binance"
    assert any("microseconds" in w for w in parsed.warnings)


def test_headerless_klines_spot_only_when_every_row_is_microseconds(tmp_path):
    rows = (FIXTURES / "BTCUSDT-1m-2025-01.csv").read_text().splitlines()[1:]
    micro = []
    for r in rows:
        f = r.split(",")
        f[0], f[6] = f[0] + "000", f[6] + "999"
        micro.append(",".join(f))
    spot = tmp_path / "spot" / "BTCUSDT-1m-2025-01.csv"
    spot.parent.mkdir()
    spot.write_text("\n".join(micro) + "\n")
    plain = tmp_path / "BTCUSDT-1m-2025-02.csv"
    plain.write_text("\n".join(micro) + "\n")
    mixed = tmp_path / "BTCUSDT-1m-2025-03.csv"
    mixed.write_text("\n".join(rows[:1] + micro[1:]) + "\n")
    assert read_file(spot).exchange == "binance-spot"  # the path says spot
    assert read_file(plain).exchange == "binance-spot"  # no header, every row in µs: a 2025 spot file
    m = read_file(mixed)
    assert m.exchange == "binance" and any("could not tell spot from futures" in w for w in m.warnings)
