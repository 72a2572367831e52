"""The store can never be made unreadable: names are checked before anything is written, and a failure
between the commits of a batch leaves every completed one readable.

One row used to brick a store: a name the file system refuses (a 300-character symbol, 30 '€' --
UTF-8 bytes count, most file systems cap a name at 255 bytes, and the store percent-encodes) failed
*after* the commit point, and every later command failed until files were deleted by hand. Exchange
and interval are Delta partition values (folder names), symbol a column; all three are checked alike.
"""
from __future__ import annotations

import errno

import pandas as pd
import pytest

from liqscope.models.store import Batch, StoreError, delta_io, layout, open_store
from store_testutil import run_cli as run, FIXTURES, candles, liqs, tree_hash


@pytest.fixture
def filled(tmp_path):
    store = open_store(tmp_path / "store")
    store.append_liquidations(liqs(200, span="3D"))
    store.append_candles(candles(30), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    return store


def with_symbol(df: pd.DataFrame, symbol: str, exchange: str | None = None) -> pd.DataFrame:
    out = df.copy()
    out["symbol"] = symbol
    if exchange is not None:
        out["exchange"] = exchange
    return out


# -- names are checked before anything is written --------------------------------------------------------
BAD_NAMES = {
    "symbol-300-chars": ("symbol", "S" * 300, "is too long to store"),
    "symbol-30-euro": ("symbol", "€" * 30, "is too long to store: 90 bytes in UTF-8, 270 as a folder name"),
    "symbol-nul": ("symbol", "BTC\x00USDT", "control or non-printable character ('\\x00')"),
    "symbol-newline": ("symbol", "BTC\nUSDT", "control or non-printable character ('\\n')"),
    "symbol-escape": ("symbol", "BTC\x1b[2JUSDT", "control or non-printable character ('\\x1b')"),
    "symbol-bell": ("symbol", "BTC\x07USDT", "control or non-printable character"),
    "symbol-rtl-override": ("symbol", "BTC\u202eTDSU", "control or non-printable character"),
    "symbol-backslash": ("symbol", "BTC\\USDT", "holds a backslash"),
    "symbol-blank": ("symbol", "   ", "is empty"),
    "exchange-300-chars": ("exchange", "x" * 300, "is too long to store"),
    "exchange-slash": ("exchange", "a/b", "holds a slash"),
    "exchange-dotdot": ("exchange", "..", "is not a name"),
    "exchange-dot": ("exchange", ".", "is not a name"),
    "exchange-tab": ("exchange", "bin\tance", "control or non-printable character"),
}


@pytest.mark.parametrize("case", list(BAD_NAMES))
def test_a_name_that_cannot_be_a_folder_is_refused_before_the_commit(filled, case):
    what, value, words = BAD_NAMES[case]
    before = tree_hash(filled.root)
    frame = with_symbol(liqs(20, seed=3), value) if what == "symbol" else with_symbol(liqs(20, seed=3), "BTCUSDT",
                                                                                       value)
    for attempt in (lambda: filled.append_liquidations(frame),
                    lambda: filled.replace_liquidations(frame, exchanges=[frame["exchange"].iloc[0]],
                                                        start="2025-05-01", end="2025-06-01"),
                    lambda: filled.append_candles(candles(3), exchange=value if what == "exchange" else "binance",
                                                  symbol=value if what == "symbol" else "BTCUSDT", interval="1m",
                                                  asset="BTC")):
        with pytest.raises(StoreError) as info:
            attempt()
        text = str(info.value)
        assert "\n" not in text and words in text and text.startswith(what), text
        assert repr(value[:40])[1:-1][:30] in text  # the message names the value
        assert not info.value.committed
    assert tree_hash(filled.root) == before
    assert len(open_store(filled.root).liquidations()) == 200


@pytest.mark.parametrize("symbol", ["BTC/USDT:USDT", "BTC/USD:BTC-250627", "..", "币安人生USDT", "€" * 15,
                                    "1000PEPEUSDT", "BTC-27DEC24-100000-C"])
def test_real_symbols_are_still_stored(tmp_path, symbol):
    store = open_store(tmp_path)
    store.append_liquidations(with_symbol(liqs(5), symbol))
    store.append_candles(candles(3), exchange="okx", symbol=symbol, interval="1m", asset="BTC")
    assert set(store.info()["symbol"]) == {symbol}
    assert len(store.candles("okx", symbol, "1m")) == 3
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("interval, words", [
    ("99999999999999999999999999999999999999d", "longer than a year"),
    ("1" * 300 + "m", "longer than a year"),
    ("367d", "longer than a year"),
])
def test_a_huge_interval_is_refused_before_the_commit(filled, interval, words):
    before = tree_hash(filled.root)
    with pytest.raises(StoreError, match=words) as info:
        filled.append_candles(candles(3), exchange="binance", symbol="BTCUSDT", interval=interval, asset="BTC")
    assert "\n" not in str(info.value) and len(str(info.value)) < 200
    assert tree_hash(filled.root) == before
    filled.append_candles(candles(3, freq="1D"), exchange="binance", symbol="BTCUSDT", interval="1w", asset="BTC")


GENERIC_LIQS = FIXTURES / "generic-bybit-liquidations.csv"
GENERIC_CANDLES = FIXTURES / "generic-candles.csv"
MAP = "ts=time,symbol=sym,side=dir,price=px,qty=size"


@pytest.mark.parametrize("argv, words", [
    (["--exchange", "x" * 300, "--map", MAP, "--side-convention", "position", GENERIC_LIQS], "exchange 'xxxx"),
    (["--exchange", "by\x01bit", "--map", MAP, "--side-convention", "position", GENERIC_LIQS], "control"),
    (["--exchange", "bybit", "--symbol", "S" * 300, GENERIC_CANDLES], "symbol 'SSSS"),
    (["--exchange", "bybit", "--symbol", "€" * 30, GENERIC_CANDLES], "symbol '€€€"),
    (["--exchange", "bybit", "--symbol", "BTC", "--interval", "99999999999999999999999999999999999999d",
      GENERIC_CANDLES], "interval '9999"),
    (["--exchange", "bybit", "--symbol", "BTC", "--interval", "1" * 300 + "m", GENERIC_CANDLES], "interval '1111"),
    (["--exchange", "x" * 300, "--symbol", "BTC", GENERIC_CANDLES], "exchange 'xxxx"),
], ids=["exchange-300", "exchange-control", "symbol-300", "symbol-30-euro", "interval-huge", "interval-300",
        "candle-exchange-300"])
def test_import_of_a_name_the_store_cannot_hold_is_one_line_and_the_store_stays_readable(filled, capsys, argv,
                                                                                         words):
    before = tree_hash(filled.root)
    code, out, err = run(capsys, "--data-dir", filled.root, "import", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert words in err and err.rstrip().endswith("(store unchanged)") and len(err) < 400, err
    assert tree_hash(filled.root) == before
    for command in (["store", "info"], ["summary", "--start", "2025-05-09", "--end", "2025-05-12"]):
        code, out, err = run(capsys, "--data-dir", filled.root, *command)
        assert code == 0 and "binance" in out and err == "", (command, err)


def test_a_control_character_inside_a_file_never_reaches_the_store(filled, capsys, tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("ts,exchange,symbol,side,price,qty\n2025-05-09T10:00:00Z,okx,BTC\x1b[2JUSDT,long,100,1\n")
    before = tree_hash(filled.root)
    code, out, err = run(capsys, "--data-dir", filled.root, "import", "--side-convention", "position", path)
    assert code == 2 and err.count("\n") == 1 and "control" in err and "\x1b" not in err, err
    assert tree_hash(filled.root) == before


@pytest.mark.parametrize("exchange", ["x" * layout.MAX_NAME_BYTES, "é" * (layout.MAX_NAME_BYTES // 6), "a b'c%d"])
def test_the_longest_and_oddest_exchange_names_allowed_are_partition_folders(tmp_path, exchange):
    """An exchange is a partition value, a folder name: whatever the name check lets through is stored
    and read back (delta-rs escapes it its own way), inside the store folder."""
    assert layout.name_problem("exchange", exchange) is None
    store = open_store(tmp_path)
    store.append_liquidations(with_symbol(liqs(5), "BTCUSDT", exchange))
    store.append_candles(candles(3), exchange=exchange, symbol="BTCUSDT", interval="1m", asset="BTC")
    reopened = open_store(tmp_path)
    assert len(reopened.liquidations(exchanges=[exchange])) == 5
    assert len(reopened.candles(exchange, "BTCUSDT", "1m")) == 3
    assert set(reopened.info()["exchange"]) == {exchange}
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))


# -- a failure between the commits of a batch: each completed commit stays, the store reads ---------------
def _batch():
    batch = Batch()
    batch.add_liquidations(liqs(300, span="40D", seed=2, symbols=("BTCUSDT", "SOLUSDT")))
    batch.add_candles(candles(30, start="2025-05-09 00:20"), exchange="binance", symbol="BTCUSDT", interval="1m",
                      asset="BTC")
    return batch


@pytest.fixture
def reference(tmp_path_factory):
    """What the store must look like once the batch is in, done cleanly elsewhere."""
    ref = open_store(tmp_path_factory.mktemp("ref"))
    ref.append_liquidations(liqs(200, span="3D"))
    ref.append_candles(candles(30), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC")
    ref.commit(_batch())
    return ref


def _same(store, ref) -> None:
    pd.testing.assert_frame_equal(store.liquidations().frame, ref.liquidations().frame)
    pd.testing.assert_frame_equal(store.candles("binance", "BTCUSDT", "1m"), ref.candles("binance", "BTCUSDT", "1m"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EMFILE, errno.ENAMETOOLONG, errno.EIO])
def test_a_failure_after_the_first_commit_of_a_batch_says_so_and_the_store_reads(filled, reference, monkeypatch,
                                                                                  capsys, code):
    rows = len(filled.liquidations())

    def fail(*a, **k):
        raise OSError(code, f"{errno.errorcode[code]} (injected)", "candles")
    monkeypatch.setattr(delta_io, "upsert", fail)  # the candles: the batch's second commit
    with pytest.raises(StoreError) as info:
        filled.commit(_batch())
    text = str(info.value)
    assert info.value.committed and "\n" not in text and "partly committed" in text and "unchanged" not in text
    monkeypatch.undo()
    reopened = open_store(filled.root)
    assert len(reopened.liquidations()) == rows + 300  # the completed commit is whole
    assert len(reopened.candles("binance", "BTCUSDT", "1m")) == 30  # the failed one is not there at all
    for command in (["store", "info"], ["summary", "--start", "2025-05-09", "--end", "2025-05-12"]):
        code_, out, err = run(capsys, "--data-dir", filled.root, *command)
        assert code_ == 0 and "binance" in out and err == "", err
    assert [r.new for r in reopened.commit(_batch())] == [0, 20]  # the same batch again: the rest, once
    _same(reopened, reference)
    reopened.append_liquidations(liqs(5, seed=11, start="2025-07-01"))


def test_a_failure_before_the_first_commit_is_unchanged(filled, monkeypatch):
    before = tree_hash(filled.root)

    def no_inodes(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "liquidations")
    monkeypatch.setattr(delta_io, "write_deltalake", no_inodes)
    with pytest.raises(StoreError, match="the disk is full") as info:
        filled.commit(_batch())
    assert not info.value.committed and "partly" not in str(info.value)
    assert tree_hash(filled.root) == before
