"""Mangled files thrown at every importer: a clean InputError or a valid import, never a partial write.

Every format in ``importers.FORMATS`` (Binance klines with and without header,
Binance liquidation snapshots USDⓈ-M and COIN-M, Tardis liquidations of several
venues -- detected from the name or forced with ``fmt`` --, generic mapped CSV
of liquidations, contracts and candles, generic Parquet) in every container the
importers open (plain, gzip, zip; and hostile ones: a zip of several members or
none, truncated or bit-flipped archives, nested archives). The property, for
each generated file: either

* an :class:`InputError` whose message is one line starting with the file's
  path, and the store's files byte-for-byte as before (``tree_hash``), or
* a successful import after which everything the store holds satisfies the
  column contracts (:func:`_check_store`: finite numbers in ``schema.BOUNDS``,
  UTC times, sides long/short);

never any other exception. Each test reuses one store (seeded with real
content, so "unchanged" means something) across its examples. Every case is
counted in the ``fuzz_tally`` (tests/models/conftest.py), printed at the end of
the run; the examples below add up to about 620.
"""
from __future__ import annotations

import gzip
import io
import itertools
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqscope.models.importers import FORMATS, InputError, import_files, read_file
from liqscope.models.importers.contracts import parse_contract_sizes
from liqscope.models.importers.build import Options
from liqscope.models.importers.generic import parse_mapping
from liqscope.models.schema import BOUNDS, MAX_PRICE_USD, SIDES
from liqscope.models.store import open_store
from store_testutil import FIXTURES, tree_hash

TARDIS = "tardis-liquidations"

# name -> (fixture, import keyword arguments, file name to write it under (None: the fixture's))
CASES = {
    "binance-klines": ("BTCUSDT-1m-2025-01.csv", {}, None),
    "binance-klines-spot": ("BTCUSDT-1h-2025-02.csv", {}, None),
    "binance-klines-headerless": ("ETHUSDT-5m-2024-12-31.csv", {}, None),
    "binance-liquidations": ("BTCUSDT-liquidationSnapshot-2023-07-31.csv", {}, None),
    "binance-liquidations-coinm": ("BTCUSD_PERP-liquidationSnapshot-2023-07-31.csv", {}, None),
    "tardis-binance-futures": ("binance-futures_liquidations_2024-03-01_PERPETUALS.csv", {}, None),
    "tardis-bybit": ("bybit_liquidations_2024-03-01_PERPETUALS.csv", {}, None),
    "tardis-deribit": ("deribit_liquidations_2024-03-01_BTC-PERPETUAL.csv", {}, None),
    "tardis-okex-swap": ("okex-swap_liquidations_2024-03-01_PERPETUALS.csv",
                         dict(contract_size="ETH-USDT-SWAP=0.1,XRP-USD-SWAP=10usd"), None),
    "tardis-forced": ("binance-futures_liquidations_2024-03-01_PERPETUALS.csv", dict(fmt=TARDIS),
                      "export-2024-03-01.csv"),  # a name that says nothing: the format is stated
    "generic": ("generic-bybit-liquidations.csv",
                dict(mapping="ts=time,symbol=sym,side=dir,price=px,qty=size", exchange="bybit",
                     side_convention="position"), None),
    "generic-contracts": ("generic-contracts.csv",
                          dict(fmt="generic", contract_size="BTC-USDT-SWAP=0.01,XRP-USD-SWAP=10usd,"
                                                           "ETH-USDT-SWAP=0.1"), None),
    "generic-candles": ("generic-candles.csv", dict(exchange="bybit", symbol="BTCUSDT"), None),
}
# Every format the importers know is exercised (Parquet: generic only, below).
assert {kw.get("fmt") for _f, kw, _n in CASES.values()} | {"binance-klines", "binance-liquidations"} >= set(FORMATS)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NASTY = st.sampled_from(["", "-1", "-0.5", "0", "-0", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1e-400",
                         "1e9", "1000000001", "1e12", "1e11", "abc", "1,5", '"', "\x00", "\xff", "  ", "9" * 30,
                         "2025-13-45T99:99:99Z", "1690761661123000000000", "0001-01-01", "2262-04-12T00:00:00Z",
                         "99999999999999999999", "-1690761661123", "SELL", "buy", "long", "unknown", "\r", "\n", ";",
                         "\t", "ü", "\u202e", "\ufeff", "1.2.3", "+5", "0x1F", "1_000", "True", "None", "null"])
FIELD = st.one_of(NASTY, st.text(max_size=12), st.integers(-10**20, 10**20).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr))


# -- the tally --------------------------------------------------------------------------------------
def attempt(tally, store, path: Path, **kw) -> bool:
    """Import ``path``: True if imported, False if refused in one line with the store unchanged."""
    before = tree_hash(store.root)
    try:
        import_files([path], store=store, **kw)
    except InputError as exc:
        changed = tree_hash(store.root) != before
        tally.imported("refused", changed=changed)
        text = str(exc)
        assert "\n" not in text and "\r" not in text, text
        assert text.startswith(str(path)), text
        assert not changed, f"refused ({text}) but the store changed"
        return False
    except Exception:
        tally.imported("crash")
        raise
    tally.imported("imported")
    return True


# -- the contracts ----------------------------------------------------------------------------------
def _check_store(store) -> None:
    """Whatever the store holds must load and satisfy the column contracts."""
    store = open_store(store.root)
    f = store.liquidations().frame
    assert str(f["ts"].dtype) == "datetime64[ns, UTC]"
    assert f["ts"].notna().all() and f["ts"].is_monotonic_increasing
    assert set(f["side"].astype(str)) <= set(SIDES)
    for col, (high, _unit) in BOUNDS.items():
        v = f[col].to_numpy(dtype="float64")
        assert np.isfinite(v).all() and (v > 0).all() and (v <= high).all(), (col, v)
    for col in ("exchange", "symbol", "asset"):
        assert (f[col].astype(str).str.len() > 0).all(), col
    for ex, sym, iv, _asset in store.candle_series():
        c = store.candles(ex, sym, iv)
        assert str(c.index.dtype) == "datetime64[ns, UTC]" and c.index.is_unique and c.index.is_monotonic_increasing
        prices = c[["open", "high", "low", "close"]].to_numpy(dtype="float64")
        assert np.isfinite(prices).all() and (prices > 0).all() and (prices <= MAX_PRICE_USD).all()
        vol = c["volume"].to_numpy(dtype="float64")
        assert np.isfinite(vol).all() and (vol >= 0).all()
        assert (c["high"] >= c["low"]).all()


# -- mangled text -----------------------------------------------------------------------------------
@st.composite
def mangled(draw, text: str) -> bytes:
    lines = text.splitlines(keepends=True)
    encoding = "utf-8"
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["field", "field", "drop_field", "add_field", "bytes", "truncate", "dup_line",
                                   "swap_lines", "drop_line", "header", "blank", "quote", "long_field", "crlf",
                                   "delimiter", "bom", "dup_header", "encoding"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        delim = ";" if ";" in lines[0] else ","
        cells = lines[i].rstrip("\r\n").split(delim)
        j = draw(st.integers(0, max(0, len(cells) - 1)))
        if op == "field":
            cells[j] = draw(FIELD)
            lines[i] = delim.join(cells) + "\n"
        elif op == "drop_field" and len(cells) > 1:
            del cells[j]
            lines[i] = delim.join(cells) + "\n"
        elif op == "add_field":
            cells.insert(j, draw(FIELD))
            lines[i] = delim.join(cells) + "\n"
        elif op == "bytes":
            raw = "".join(lines).encode("utf-8", "surrogateescape")
            k = draw(st.integers(0, len(raw)))
            raw = raw[:k] + draw(st.binary(min_size=1, max_size=16)) + raw[k:]
            lines = raw.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        elif op == "truncate":
            raw = "".join(lines)
            lines = raw[: draw(st.integers(0, len(raw)))].splitlines(keepends=True)
        elif op == "dup_line":
            lines.insert(i, lines[i])
        elif op == "swap_lines" and len(lines) > 2:
            k = draw(st.integers(1, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "drop_line":
            del lines[i]
        elif op == "header":
            cells = lines[0].rstrip("\r\n").split(delim)
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.text(max_size=8))
            lines[0] = delim.join(cells) + "\n"
        elif op == "blank":
            lines.insert(i, draw(st.sampled_from(["\n", "\r\n", delim * len(cells) + "\n", " \n"])))
        elif op == "quote":  # quoted, unbalanced or embedded-newline fields
            cells[j] = draw(st.sampled_from([f'"{cells[j]}"', f'"{cells[j]}', f'{cells[j]}"', f'"{cells[j]}\n"',
                                             f'"{cells[j]}""x"']))
            lines[i] = delim.join(cells) + "\n"
        elif op == "long_field":
            cells[j] = draw(st.sampled_from(["9", "x", "1e", "\t"])) * draw(st.sampled_from([300, 5000, 70_000]))
            lines[i] = delim.join(cells) + "\n"
        elif op == "crlf":
            lines = [ln.rstrip("\r\n") + draw(st.sampled_from(["\r\n", "\r", "\n\n"])) for ln in lines]
        elif op == "delimiter":
            lines[i] = lines[i].replace(delim, draw(st.sampled_from([";", "\t", "|", " ", ",,"])))
        elif op == "bom":
            lines[0] = "\ufeff" + lines[0]
        elif op == "dup_header":
            lines.insert(i, lines[0])
        elif op == "encoding":
            encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]))
    data = "".join(lines)
    try:
        return data.encode(encoding, "surrogateescape")
    except UnicodeEncodeError:
        return data.encode("utf-8", "surrogateescape")


def zip_bytes(members: list[tuple[str, bytes]], *, method=zipfile.ZIP_DEFLATED, dirs=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def write_in(container: str, data: bytes, folder: Path, name: str) -> Path:
    """``data`` written as ``name`` in ``folder``: plainly, gzip'ed (``NAME.gz``) or zipped (``STEM.zip``
    holding ``NAME``, as data.binance.vision ships them)."""
    folder.mkdir(parents=True, exist_ok=True)
    if container == "gzip":
        path, data = folder / (name + ".gz"), gzip.compress(data)
    elif container == "zip":
        path, data = folder / (Path(name).stem + ".zip"), zip_bytes([(name, data)])
    else:
        path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One store per test function (created on first use, seeded by the caller), reused by its examples."""
    root = tmp_path_factory.mktemp("fuzz")
    made = {}

    def get(key: str, *seeds: tuple[Path, dict]):
        if key not in made:
            made[key] = open_store(root / key / "store")
            for path, kw in seeds:
                import_files([path], store=made[key], **kw)
        return made[key], root / key

    return get


# -- 1. every format, mangled, plain or compressed ----------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=32, **SETTINGS)
@given(data=st.data())
def test_mangled_input_is_refused_cleanly_or_imported_validly(case, data, stores, fuzz_tally):
    name, kw, as_name = CASES[case]
    store, root = stores(case, (FIXTURES / name, kw))
    blob = data.draw(mangled((FIXTURES / name).read_text()), label="file")
    container = data.draw(st.sampled_from(["plain", "plain", "plain", "gzip", "zip"]), label="container")
    path = write_in(container, blob, root / "in", as_name or name)
    attempt(fuzz_tally, store, path, **kw)
    _check_store(store)


# -- 2. containers: several members, none, truncated, corrupt, nested ---------------------------------
CONTAINERS = ["zip-several", "zip-empty", "zip-dirs", "zip-stored", "zip-empty-member", "zip-odd-member-name",
              "gzip-members", "gzip-trailing", "gzip-truncated", "zip-truncated", "gzip-bitflip", "zip-bitflip",
              "gzip-of-gzip", "zip-in-gzip", "gzip-in-zip", "zip-in-zip", "empty-file", "gzip-empty", "bom-only",
              "binary"]
_SEQ = itertools.count()
# No content, several files, or content that is itself an archive: always refused.
NEVER = {"zip-several", "zip-empty", "zip-empty-member", "empty-file", "gzip-empty", "gzip-of-gzip", "zip-in-gzip",
         "zip-in-zip", "gzip-in-zip", "bom-only"}
# Lossless: the same content, so the same outcome as the plain file.
LOSSLESS = {"zip-dirs", "zip-stored", "gzip-members"}


def contained(data, kind: str, blob: bytes, name: str) -> tuple[str, bytes]:
    """(file name, bytes) of ``blob`` in the hostile container ``kind``."""
    stem = Path(name).stem
    if kind == "zip-several":
        extra = data.draw(st.lists(st.sampled_from([(name, blob), ("readme.txt", b"hello\n"), ("b.csv", blob),
                                                    ("__MACOSX/._" + name, b"\x00\x05\x16\x07")]),
                                   min_size=1, max_size=3), label="extra members")
        names = [name] + [f"{k}-{n}" for k, (n, _b) in enumerate(extra)]
        return stem + ".zip", zip_bytes(list(zip(names, [blob] + [b for _n, b in extra])))
    if kind == "zip-empty":
        return stem + ".zip", zip_bytes([], dirs=data.draw(st.sampled_from([(), ("d/",), ("d/", "d/e/")])))
    if kind == "zip-dirs":
        return stem + ".zip", zip_bytes([("data/" + name, blob)], dirs=("data/",))
    if kind == "zip-stored":
        return stem + ".zip", zip_bytes([(name, blob)], method=zipfile.ZIP_STORED)
    if kind == "zip-empty-member":
        return stem + ".zip", zip_bytes([(name, b"")])
    if kind == "zip-odd-member-name":
        odd = data.draw(st.sampled_from(["../../" + name, "/abs/" + name, "ü-" + name, "a\\b\\" + name,
                                         name + ".gz", "x" * 200 + ".csv"]))
        return stem + ".zip", zip_bytes([(odd, blob)])
    if kind == "gzip-members":
        k = data.draw(st.integers(0, len(blob)))
        return name + ".gz", gzip.compress(blob[:k]) + gzip.compress(blob[k:])
    if kind == "gzip-trailing":
        return name + ".gz", gzip.compress(blob) + data.draw(st.binary(min_size=1, max_size=32))
    if kind in ("gzip-truncated", "zip-truncated", "gzip-bitflip", "zip-bitflip"):
        packed = gzip.compress(blob) if kind.startswith("gzip") else zip_bytes([(name, blob)])
        out_name = name + ".gz" if kind.startswith("gzip") else stem + ".zip"
        if kind.endswith("truncated"):
            return out_name, packed[: data.draw(st.integers(1, max(1, len(packed) - 1)))]
        k = data.draw(st.integers(0, len(packed) - 1))
        return out_name, packed[:k] + bytes([packed[k] ^ data.draw(st.integers(1, 255))]) + packed[k + 1:]
    if kind == "gzip-of-gzip":
        return name + ".gz.gz", gzip.compress(gzip.compress(blob))
    if kind == "zip-in-gzip":
        return stem + ".zip.gz", gzip.compress(zip_bytes([(name, blob)]))
    if kind == "gzip-in-zip":
        return stem + ".zip", zip_bytes([(name + ".gz", gzip.compress(blob))])
    if kind == "zip-in-zip":
        return stem + ".zip", zip_bytes([(stem + ".zip", zip_bytes([(name, blob)]))])
    if kind == "empty-file":
        return name, b""
    if kind == "gzip-empty":
        return name + ".gz", gzip.compress(data.draw(st.sampled_from([b"", b"\n", b"\r\n\r\n", b"   "])))
    if kind == "bom-only":
        return name, data.draw(st.sampled_from([b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\xff\xfe", b"\xfe\xff\x00"]))
    if kind == "binary":
        return name, data.draw(st.binary(min_size=1, max_size=64))
    raise AssertionError(kind)


def _outcome(path: Path, kw: dict):
    """read_file's result (rows as tuples) or "refused", for comparing two containers of one content."""
    opts = dict(kw)
    fmt = opts.pop("fmt", None)
    options = Options(exchange=opts.get("exchange"), symbol=opts.get("symbol"), interval=opts.get("interval"),
                      mapping=parse_mapping(opts.get("mapping")) or None, side_convention=opts.get("side_convention"),
                      contract_size=parse_contract_sizes(opts.get("contract_size")))
    try:
        parsed = read_file(path, fmt=fmt, options=options)
    except InputError:
        return "refused"
    return parsed.kind, [tuple(r) for r in parsed.frame.astype(str).itertuples(index=False)]


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_hostile_containers_are_refused_cleanly_or_read_as_their_content(data, stores, fuzz_tally):
    case = data.draw(st.sampled_from(sorted(CASES)), label="case")
    name, kw, as_name = CASES[case]
    name_in = as_name or name
    seeds = [(FIXTURES / n, k) for n, k, _a in (CASES["tardis-bybit"], CASES["generic-candles"])]
    store, root = stores("containers", *seeds)
    text = (FIXTURES / name).read_text()
    blob = data.draw(st.one_of(st.just(text.encode()), mangled(text)), label="content")
    kind = data.draw(st.sampled_from(CONTAINERS), label="container")
    out_name, packed = contained(data, kind, blob, name_in)
    folder = root / "in" / str(next(_SEQ))
    folder.mkdir(parents=True)
    path = folder / out_name
    path.write_bytes(packed)
    imported = attempt(fuzz_tally, store, path, **kw)
    if kind in NEVER:
        assert not imported, f"{kind} was imported"
    if kind in LOSSLESS and case != "tardis-forced":
        plain = write_in("plain", blob, folder / "plain", name_in)
        assert _outcome(path, kw) == _outcome(plain, kw), kind
    _check_store(store)


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_a_file_of_only_a_bom_is_refused_as_empty_whatever_the_format(tmp_path, content):
    path = tmp_path / "x_liquidations_2024-03-01_X.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match="empty"):
        read_file(path, fmt=TARDIS)


def test_a_forced_tardis_file_without_its_columns_says_which_are_missing(tmp_path):
    path = tmp_path / "export.csv"
    text = (FIXTURES / CASES["tardis-forced"][0]).read_text()
    path.write_text(text.replace("exchange,symbol,", "exch,symbol,", 1))
    with pytest.raises(InputError) as err:
        read_file(path, fmt=TARDIS)
    assert "line 1" in str(err.value) and "missing" in str(err.value) and "include_columns" not in str(err.value)


@pytest.mark.parametrize("name, text", [
    ("g.csv", "ts,exchange,symbol,side,price,qty\n2025-05-09T10:00:00Z," + "x" * 300 + ",BTCUSDT,long,100,1\n"),
    ("g.csv", "ts,exchange,symbol,side,price,qty\n2025-05-09T10:00:00Z,okx,BTC\x07USDT,long,100,1\n"),
    ("g.csv", "ts,exchange,symbol,side,price,qty\n2025-05-09T10:00:00Z,okx,BTC\\USDT,long,100,1\n"),
    ("g.csv", "ts,exchange,symbol,side,price,qty\n2025-05-09T10:00:00Z,a/b,BTCUSDT,long,100,1\n"),
    ("binance-futures_liquidations_2024-03-01_X.csv", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
     "binance-futures," + "Y" * 300 + "USDT,1709251205123000,1709251205130512,,sell,61250.5,0.012\n"),
], ids=["long-exchange", "bell-in-symbol", "backslash-in-symbol", "slash-in-exchange", "tardis-long-symbol"])
def test_a_name_the_store_cannot_hold_is_refused_naming_the_file(tmp_path, name, text):
    """Found by the fuzz above: the import must refuse it as bad input (file, line 2, column), not the store."""
    path = tmp_path / name
    path.write_text(text)
    store = open_store(tmp_path / "store")
    with pytest.raises(InputError) as err:
        import_files([path], store=store, side_convention="position")
    assert str(err.value).startswith(f"{path}, line 2, column ")
    assert not store.has_data()


# -- 3. Parquet (generic): mangled values, types and columns ------------------------------------------
T0 = pd.Timestamp("2025-05-09T10:00:00Z")
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([0.0, -0.0, -1.0, 1e-320, 5e-324, 1e9, 1e9 + 1, 1e11, 1e12, 1e12 + 1, 1e300,
                                    1.7976931348623157e308, 2.0 ** 63, 0.1, 25.0]))
TEXT = st.one_of(st.sampled_from(["long", "short", "LONG", " short ", "Buy", "SELL", "buy", "sell", "", " ", "x",
                                  "\x00", "\x07", "ü", "\u202e", "BTCUSDT", "ETH-USDT-SWAP", "binance", "BYBIT",
                                  "a" * 300, "nan", "None"]),
                 st.text(max_size=10))
TS = st.one_of(st.datetimes(min_value=pd.Timestamp("1678-01-01").to_pydatetime(),
                            max_value=pd.Timestamp("2261-12-31").to_pydatetime()),
               st.sampled_from([pd.Timestamp("2009-01-01"), pd.Timestamp("2099-12-31T23:59:59"),
                                pd.Timestamp("1970-01-01"), pd.Timestamp("2262-04-11")]))
# each column's Arrow type: the expected one, or a wrong one
NUM_TYPES = ["float64", "float64", "float64", "float32", "int64", "uint64", "decimal", "string", "bool", "null",
             "dictionary", "list", "binary", "timestamp"]
TEXT_TYPES = ["string", "string", "string", "large_string", "dictionary", "int64", "float64", "bool", "null",
              "binary", "list"]
TS_TYPES = ["ts-utc", "ts-utc", "ts-naive-ms", "ts-tokyo-us", "ts-s", "int-ms", "int-us", "int-ns", "int-s",
            "float-s", "iso", "iso-offset", "date32", "bool", "null", "float64", "string-garbage", "dictionary"]


def _column(draw, field: str, values: list, kind: str) -> pa.Array:
    """``values`` (None = null) as an Arrow array of ``kind``; wrong kinds are the point."""
    n = len(values)
    if kind == "null":
        return pa.nulls(n)
    if field == "ts":
        ts = [None if v is None else pd.Timestamp(v) for v in values]
        if kind.startswith("ts-"):
            unit = {"ts-utc": "ns", "ts-naive-ms": "ms", "ts-tokyo-us": "us", "ts-s": "s"}[kind]
            tz = {"ts-utc": "UTC", "ts-tokyo-us": "Asia/Tokyo"}.get(kind)
            naive = pd.Series([None if t is None else t.tz_localize(None) for t in ts], dtype="datetime64[ns]")
            return pa.Array.from_pandas(naive).cast(pa.timestamp(unit, tz=tz), safe=False)
        if kind.startswith("int-"):
            div = {"int-s": 10**9, "int-ms": 10**6, "int-us": 10**3, "int-ns": 1}[kind]
            return pa.array([None if t is None else t.value // div for t in ts], pa.int64())
        if kind == "float-s":
            return pa.array([None if t is None else t.value / 1e9 for t in ts], pa.float64())
        if kind in ("iso", "iso-offset", "dictionary"):
            fmt = (lambda t: t.isoformat() + "Z") if kind != "iso-offset" else (lambda t: t.isoformat() + "+05:30")
            arr = pa.array([None if t is None else fmt(t) for t in ts], pa.string())
            return arr.dictionary_encode() if kind == "dictionary" else arr
        if kind == "date32":
            return pa.array([None if t is None else t.date() for t in ts], pa.date32())
        if kind == "bool":
            return pa.array([None if t is None else bool(t.value % 2) for t in ts], pa.bool_())
        if kind == "float64":
            return pa.array([draw(NUMBER) for _ in ts], pa.float64())
        return pa.array([draw(TEXT) for _ in ts], pa.string())
    if kind in ("string", "large_string", "dictionary", "binary"):
        texts = [None if v is None else (v if isinstance(v, str) else repr(v)) for v in values]
        if kind == "binary":
            return pa.array([None if t is None else t.encode("utf-8", "surrogatepass") for t in texts], pa.binary())
        arr = pa.array(texts, pa.large_string() if kind == "large_string" else pa.string())
        return arr.dictionary_encode() if kind == "dictionary" else arr
    if kind == "list":
        return pa.array([None if v is None else [v, v] if isinstance(v, float) else [1.0] for v in values],
                        pa.list_(pa.float64()))
    if kind == "bool":
        return pa.array([None if v is None else bool(v) if not isinstance(v, str) else v == "long" for v in values],
                        pa.bool_())
    if kind == "timestamp":
        return pa.array([None if v is None else T0.value for v in values], pa.int64()).cast(pa.timestamp("ns"))
    nums = [None if v is None else v if isinstance(v, float) else draw(NUMBER) for v in values]
    if kind in ("float64", "float32"):
        return pa.array(nums, pa.float64()).cast(pa.float32() if kind == "float32" else pa.float64(), safe=False)
    if kind in ("int64", "uint64"):
        ints = [None if v is None or not np.isfinite(v) or abs(v) >= 2**63 else int(v) for v in nums]
        if kind == "uint64":
            ints = [None if v is None or v < 0 else v for v in ints]
        return pa.array(ints, pa.int64() if kind == "int64" else pa.uint64())
    if kind == "decimal":
        import decimal
        decs = [None if v is None or not np.isfinite(v) or abs(v) >= 1e20 else decimal.Decimal(f"{v:.6f}")
                for v in nums]
        return pa.array(decs, pa.decimal128(30, 6))
    raise AssertionError(kind)


@st.composite
def parquet_case(draw, kind: str) -> tuple[bytes, dict]:
    """A Parquet file of ``kind`` ('liquidations'/'candles'), mangled, and the import options for it."""
    n = draw(st.integers(0, 5))
    times = [T0 + pd.Timedelta(minutes=15 * i) for i in range(n)]
    if kind == "liquidations":
        base = {"ts": times, "exchange": ["bybit"] * n,
                "symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT", "XRPUSDT", "BTCUSDT"][:n],
                "side": ["long", "short", "short", "long", "long"][:n],
                "price": [103000.5, 2350.0, 103500.0, 2.3, 1.0][:n], "qty": [0.2, 3.0, 0.1, 1000.0, 5.0][:n]}
        types = {"ts": "ts-utc", "exchange": "string", "symbol": "string", "side": "string", "price": "float64",
                 "qty": "float64"}
        kw = dict(fmt="generic")
        if draw(st.booleans()):
            base.pop("exchange"), types.pop("exchange")
            kw["exchange"] = draw(st.sampled_from(["bybit", "Binance", " okx "]))
        if draw(st.integers(0, 3)) == 0:
            base["notional_usd"] = [p * q for p, q in zip(base["price"], base["qty"])]
            types["notional_usd"] = "float64"
            if draw(st.booleans()):
                base.pop("qty"), types.pop("qty")
    else:
        close = [103000.0 + 10 * i for i in range(n)]
        base = {"ts": times, "open": [c - 5 for c in close], "high": [c + 10 for c in close],
                "low": [c - 10 for c in close], "close": close, "volume": [12.5] * n}
        types = {"ts": "ts-utc", **{c: "float64" for c in ("open", "high", "low", "close", "volume")}}
        kw = dict(fmt="generic", exchange="bybit", symbol="BTCUSDT")
        if draw(st.booleans()):
            kw["interval"] = draw(st.sampled_from(["15m", "1h", "0m", "-5m", "1y", "abc", "1e9s"]))
    numeric = {"price", "qty", "notional_usd", "open", "high", "low", "close", "volume"}
    names = list(base)
    origin = {c: c for c in base}  # column -> the Liqscope field its values are shaped as
    extra: list[tuple[str, pa.Array]] = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["value", "value", "value", "null", "type", "type", "drop", "extra", "duplicate",
                                   "rename", "map_missing", "side_convention", "contract_size"]))
        if not names:
            break
        col = draw(st.sampled_from(names))
        field = origin[col]
        if op == "value" and n:
            i = draw(st.integers(0, n - 1))
            base[col] = list(base[col])
            base[col][i] = draw(TS if field == "ts" else NUMBER if field in numeric else TEXT)
        elif op == "null" and n:
            base[col] = list(base[col])
            base[col][draw(st.integers(0, n - 1))] = None
        elif op == "type":
            types[col] = draw(st.sampled_from(TS_TYPES if field == "ts" else NUM_TYPES if field in numeric
                                              else TEXT_TYPES))
        elif op == "drop":
            names.remove(col)
        elif op == "extra":
            extra.append((draw(st.sampled_from(["extra", "TS", "Price", "", " ", "ts ", "notional", "id", "ü"])),
                          pa.array([draw(TEXT) for _ in range(n)], pa.string())))
        elif op == "duplicate":
            names.append(col)
        elif op == "rename":
            new = draw(st.sampled_from(["time", "px", "Side", field.upper(), field + "_x"]))
            base[new], types[new], origin[new] = base[col], types[col], field
            names[names.index(col)] = new
            if draw(st.integers(0, 3)):  # usually mapped back
                kw["mapping"] = ",".join(filter(None, [kw.get("mapping"), f"{field}={new}"]))
        elif op == "map_missing":
            kw["mapping"] = ",".join(filter(None, [kw.get("mapping"), f"{field}=nowhere"]))
        elif op == "side_convention" and kind == "liquidations":
            kw["side_convention"] = draw(st.sampled_from(["position", "order"]))
        elif op == "contract_size" and kind == "liquidations":
            kw["contract_size"] = draw(st.sampled_from(["BTCUSDT=0.001", "ETHUSDT=10usd", "2", "XRPUSDT=1e-9"]))
    if kind == "liquidations" and "side_convention" not in kw and draw(st.booleans()):
        kw["side_convention"] = "position"
    cols = [_column(draw, origin[c], list(base[c]), types[c]) for c in names]
    cols += [a for _n, a in extra]
    table = pa.Table.from_arrays(cols, names=names + [nm for nm, _a in extra])
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=draw(st.sampled_from([1, 2, 64])),
                   compression=draw(st.sampled_from(["snappy", "zstd", "none"])))
    data = buf.getvalue()
    damage = draw(st.sampled_from([None] * 12 + ["magic", "pages", "footer", "truncated"]))
    if damage == "truncated":
        data = data[: draw(st.sampled_from([4, 8, len(data) // 2, len(data) - 4, len(data) - 1]))]
    elif damage:  # one byte flipped in the leading magic, the column pages or the footer (metadata)
        lo, hi = {"magic": (0, 3), "pages": (4, len(data) // 2), "footer": (len(data) // 2, len(data) - 1)}[damage]
        k = draw(st.sampled_from(sorted({lo, (lo + hi) // 2, hi, (lo + 2 * hi) // 3})))
        data = data[:k] + bytes([data[k] ^ draw(st.sampled_from([1, 0x80, 0xFF]))]) + data[k + 1:]
    return data, kw


@pytest.mark.parametrize("kind", ["liquidations", "candles"])
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_mangled_parquet_is_refused_cleanly_or_imported_validly(kind, data, stores, fuzz_tally):
    store, root = stores("parquet-" + kind, *[(FIXTURES / n, k) for n, k, _a in (CASES["generic"],)])
    blob, kw = data.draw(parquet_case(kind), label="parquet")
    container = data.draw(st.sampled_from(["plain", "plain", "plain", "gzip", "zip"]), label="container")
    path = write_in(container, blob, root / "in", f"{kind}.parquet")
    attempt(fuzz_tally, store, path, **kw)
    _check_store(store)
