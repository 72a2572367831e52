"""The store on object storage (``s3://bucket/prefix``), against moto's S3 server on loopback.

The same writes give the same reads as a local store; an import and a recorder writing at once lose and
duplicate nothing while a reader only ever sees whole commits; the CLI reads an s3:// store from
``--data-dir`` and from the environment; no credential ever lands in the bucket.
"""
from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pandas as pd
import pytest

from liqscope.models import paths
from liqscope.models.dataset import DEMO_LABEL
from liqscope.models.store import Batch, open_store
from s3_server import S3Server, apply_env
from store_testutil import candles, liqs, run_cli


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 on 127.0.0.1 (one per module: stopping one takes half a second); each test has its own
    bucket."""
    with S3Server() as server:
        yield server


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The test server, with the AWS environment pointing at it (undone after the test)."""
    apply_env(monkeypatch, s3_server)
    s3_server.refused_puts, s3_server.before_put = 0, None
    yield s3_server
    s3_server.before_put = None


@pytest.fixture
def s3_uri(s3) -> str:
    """A new bucket on the test server: the ``s3://bucket/prefix`` of an empty store."""
    return f"s3://{s3.create_bucket()}/stores/main"


def _bucket(uri: str) -> str:
    return uri.split("://", 1)[1].split("/", 1)[0]


GAPS = pd.DataFrame({"exchange": ["binance", "bybit"],
                     "start": pd.to_datetime(["2025-05-09T03:00Z", "2025-05-10T12:00Z"]),
                     "end": pd.to_datetime(["2025-05-09T03:05Z", "2025-05-10T12:30Z"]),
                     "reason": ["disconnected", "stale stream"]})


def _write_all(store) -> list:
    """The same writes for every store of this module: liquidations across a month boundary and two
    exchanges, two candle series, gaps. Returns each write's result."""
    return [store.append_liquidations(liqs(400, span="40D")),
            store.append_liquidations(liqs(150, exchange="bybit", seed=2), source="bybit-ws"),
            store.append_candles(candles(90), exchange="binance", symbol="BTCUSDT", interval="1m", asset="BTC"),
            store.append_candles(candles(48, freq="1h", base=2000), exchange="bybit", symbol="ETHUSDT",
                                 interval="1h", asset="ETH"),
            store.append_gaps(GAPS)]


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A liquidation frame in one order whatever the file layout (ties in ts sorted by every column)."""
    plain = frame.astype({c: str for c in ("exchange", "symbol", "asset", "side", "source") if c in frame})
    return plain.sort_values(list(plain.columns), kind="stable").reset_index(drop=True)


KEY_ID, SECRET = "AKIALIQSCOPETEST0001", "liqscope/secret+Key=Never-In-The-Bucket-6f1d2c"


@pytest.fixture(scope="module")
def written(s3_server, tmp_path_factory):
    """An s3:// store and a local one given the same writes (:func:`_write_all`, then a source precedence
    in store.json), the s3 one with credentials no test could mistake for data. Several tests read them
    (each s3 write is a few hundred requests to moto). Returns (uri, local path, results of both)."""
    local = tmp_path_factory.mktemp("local") / "store"
    with pytest.MonkeyPatch.context() as mp:
        apply_env(mp, s3_server, access_key=KEY_ID, secret_key=SECRET)
        uri = f"s3://{s3_server.create_bucket()}/stores/main"
        remote = open_store(uri)
        results = _write_all(remote), _write_all(open_store(local))
        remote.set_precedence(["tardis", "binance-ws"])
    open_store(local).set_precedence(["tardis", "binance-ws"])
    return uri, local, results


def test_s3_store_reads_back_what_a_local_store_does(s3, written):
    uri, local_path, (got, want) = written
    assert got == want and [r.new for r in got] == [400, 150, 90, 48, 2]

    remote, local = open_store(uri), open_store(local_path)  # a fresh reader: everything comes from the bucket
    assert remote.has_data() and remote.schema_version == local.schema_version
    assert remote.precedence == local.precedence and remote.precedence[:2] == ("tardis", "binance-ws")
    for counted in (True, False):
        a, b = remote.liquidations(counted=counted).frame, local.liquidations(counted=counted).frame
        assert len(a) == len(b) == 550
        pd.testing.assert_frame_equal(_rows(a), _rows(b))
    window = ("2025-05-10", "2025-06-01")
    pd.testing.assert_frame_equal(_rows(remote.liquidations(*window, exchanges=["binance"]).frame),
                                  _rows(local.liquidations(*window, exchanges=["binance"]).frame))
    for series in (("binance", "BTCUSDT", "1m"), ("bybit", "ETHUSDT", "1h")):
        pd.testing.assert_frame_equal(remote.candles(*series), local.candles(*series))
        assert len(remote.candles(*series)) in (90, 48)
    assert remote.candle_series() == local.candle_series()
    pd.testing.assert_frame_equal(remote.gaps(), local.gaps())
    assert len(remote.gaps()) == 2
    pd.testing.assert_frame_equal(remote.info(), local.info())
    pd.testing.assert_frame_equal(remote.source_info(), local.source_info())
    ds_remote, ds_local = remote.load_dataset(), local.load_dataset()
    whole = ("2025-05-01", "2025-07-01")
    assert ds_remote.summary(*whole) | {"source": ""} == ds_local.summary(*whole) | {"source": ""}
    assert ds_remote.summary(*whole)["count"] == 550


def test_reappending_to_an_s3_store_adds_nothing(s3, written):
    uri = written[0]
    before = set(s3.objects(_bucket(uri)))
    assert [r.new for r in _write_all(open_store(uri))] == [0, 0, 0, 0, 0]
    store = open_store(uri)
    assert len(store.liquidations(counted=False)) == 550 and len(store.gaps()) == 2
    assert len(store.candles("binance", "BTCUSDT", "1m")) == 90
    added = set(s3.objects(_bucket(uri))) - before
    assert not any(k.endswith(".parquet") and "/liquidations/" in k for k in added)  # no liquidation data rewritten


def test_s3_store_lives_under_its_prefix_even_one_with_a_space_and_an_umlaut(s3):
    bucket = s3.create_bucket()
    uri = f"s3://{bucket}/Liqscope Data/Bücher"  # delta-rs lists data files under a percent-encoded URL
    store = open_store(uri)
    assert store.append_liquidations(liqs(20)).new == 20
    assert len(open_store(uri).liquidations()) == 20
    objects = s3.objects(bucket)
    assert any(k.startswith("Liqscope Data/Bücher/liquidations/_delta_log/") for k in objects)
    assert all(k.startswith("Liqscope Data/Bücher/") for k in objects)  # nothing outside the prefix
    assert json.loads(objects["Liqscope Data/Bücher/store.json"])["format"] == "liqscope-store"
    assert open_store(f"s3a://{bucket}/Liqscope Data/Bücher/").location.uri == uri


# -- concurrency -------------------------------------------------------------------
IMPORT_ROWS = 3000
RECORDER_BATCHES, RECORDER_ROWS = 6, 30
LIQ_COMMIT = re.compile(r"/liquidations/_delta_log/\d{20}\.json$")
WAIT_S = 60  # a bound on waiting for the other thread, never reached when the store works


def _recorder_batches() -> list[pd.DataFrame]:
    """Small, distinct batches of live events inside the import's time range (same partitions)."""
    frames = []
    for i in range(RECORDER_BATCHES):
        df = liqs(RECORDER_ROWS, seed=1000 + i, start="2025-05-09", span="3D")
        df["qty"] = np.round(df["qty"] + (i + 1) * 10, 3)  # never equal to another batch's or the import's rows
        df["notional_usd"] = df["price"] * df["qty"]
        frames.append(df)
    return frames


def test_import_and_recorder_write_at_once_while_a_reader_sees_whole_commits(s3, s3_uri):
    """An import (one commit of 3000 rows) and a recorder (small appends) write the same partitions of a
    new store at once, and the import's commit loses a race for certain: the server holds its PUT of
    ``_delta_log/<n>.json`` until the recorder has committed again, so version n is taken (412) and the
    import commits again on a later version. Nothing is lost or doubled; a reader running throughout
    sees the import whole or not at all, and the recorder's commits whole and in order."""
    imported = liqs(IMPORT_ROWS, span="3D", seed=7)
    live = _recorder_batches()
    expected_live = sum(len(f) for f in live)
    prefix_sums = set(np.cumsum([0] + [len(f) for f in live]).tolist())  # what the reader may see of them

    held, recorder_went_on = threading.Event(), threading.Event()

    def hold_the_import(key: str, body: bytes) -> None:
        if LIQ_COMMIT.search(key) and b"tardis" in body and not held.is_set():  # its file stats name the source
            held.set()
            recorder_went_on.wait(WAIT_S)

    s3.before_put = hold_the_import
    errors: list[BaseException] = []
    reads: list[tuple[int, int, int]] = []  # (tardis rows, binance-ws rows, all rows) per read
    writers_done = threading.Event()
    start = threading.Barrier(3)

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)
        return run

    @guarded
    def importer():
        batch = Batch()
        batch.add_liquidations(imported, source="tardis")
        start.wait()
        [res] = open_store(s3_uri).commit(batch)
        assert (res.rows, res.new) == (IMPORT_ROWS, IMPORT_ROWS)

    @guarded
    def recorder():
        store = open_store(s3_uri)
        start.wait()
        try:
            for i, df in enumerate(live):
                if i == len(live) // 2:  # the rest only once the import's commit is on its way (and held)
                    held.wait(WAIT_S)
                after_hold = held.is_set()
                res = store.append_liquidations(df, source="binance-ws")
                assert res.new == len(df)
                if after_hold:  # this commit came after the import read its snapshot: release the import
                    recorder_went_on.set()
        finally:
            recorder_went_on.set()

    @guarded
    def reader():
        store = open_store(s3_uri)
        start.wait()
        while True:
            finished = writers_done.is_set()  # one more read after both writers are done
            frame = store.liquidations(counted=False).frame
            src = frame["source"].astype(str) if len(frame) else pd.Series([], dtype=str)  # none when empty
            reads.append((int((src == "tardis").sum()), int((src == "binance-ws").sum()), len(frame)))
            if finished:
                return
            time.sleep(0.1)  # pacing only (the writers share the interpreter with it and the server)

    threads = [threading.Thread(target=f) for f in (importer, recorder, reader)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join(timeout=2 * WAIT_S)
    writers_done.set()
    threads[2].join(timeout=2 * WAIT_S)
    s3.before_put = None
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert held.is_set() and s3.refused_puts >= 1  # the import's commit did lose a race

    final = open_store(s3_uri).liquidations(counted=False).frame
    assert len(final) == IMPORT_ROWS + expected_live
    key = ["ts", "exchange", "symbol", "side", "price", "qty", "source"]
    assert not final.duplicated(key).any()
    assert (final["source"].astype(str) == "tardis").sum() == IMPORT_ROWS

    for tardis, ws, total in reads:
        assert tardis in (0, IMPORT_ROWS), f"a read saw {tardis} of the import's {IMPORT_ROWS} rows"
        assert ws in prefix_sums, f"a read saw {ws} recorder rows: not a whole number of its commits"
        assert total == tardis + ws
    for column in (0, 1):  # snapshots never go back in time
        assert [r[column] for r in reads] == sorted(r[column] for r in reads)
    assert reads[-1] == (IMPORT_ROWS, expected_live, IMPORT_ROWS + expected_live)
    # The rollups caught up with the last commit: the overview figures equal the raw rows'.
    store = open_store(s3_uri)
    assert store.load_dataset().summary("2025-05-01", "2025-06-01")["count"] == len(store.liquidations())


# -- the CLI ----------------------------------------------------------------------
WINDOW = ("--start", "2025-05-09", "--end", "2025-05-12")


def _summary(capsys, *argv, json_out: bool = True):
    """``liqscope *argv`` (``summary --json``, or the text form) as printed but for the source (the store's
    name), starting from no ``--data-dir`` override."""
    paths.set_data_dir(None)
    code, printed, err = run_cli(capsys, *argv, *(("--json",) if json_out else ()))
    paths.set_data_dir(None)
    assert code == 0, err
    if json_out:
        data = json.loads(printed)
        assert data.pop("source") != DEMO_LABEL
        return data
    lines = printed.splitlines()
    assert lines[0].startswith("Source:") and DEMO_LABEL not in lines[0]
    return lines[1:]


def test_cli_summary_of_an_s3_store_matches_a_local_one(s3, written, capsys, monkeypatch):
    uri, local, _ = written
    want = _summary(capsys, "--data-dir", local, "summary", *WINDOW)
    want_text = _summary(capsys, "--data-dir", local, "summary", *WINDOW, json_out=False)
    assert want["count"] > 100 and want["total_usd"] > 0
    assert _summary(capsys, "--data-dir", uri, "summary", *WINDOW) == want
    monkeypatch.setenv(paths.DATA_DIR_ENV, uri)
    assert _summary(capsys, "summary", *WINDOW, json_out=False) == want_text


def test_cli_summary_of_an_empty_s3_store_is_the_demo_and_writes_nothing(s3, s3_uri, capsys):
    paths.set_data_dir(None)
    code, out, err = run_cli(capsys, "--data-dir", s3_uri, "summary", "--json", *WINDOW)
    assert code == 0, err
    assert json.loads(out)["source"] == DEMO_LABEL  # as for an empty local store
    assert s3.objects(_bucket(s3_uri)) == {}


# -- credentials --------------------------------------------------------------------
def test_credentials_are_never_written_into_the_bucket(s3, written):
    """Every object the writes of ``written`` left (tables, logs, store.json) is free of the key id and
    the secret they were made with."""
    objects = s3.objects(_bucket(written[0]))
    assert len(objects) > 20 and any(k.endswith(".parquet") for k in objects) and any(
        k.endswith("store.json") for k in objects)
    for key, body in objects.items():
        for needle in (SECRET, KEY_ID):
            assert needle not in key
            assert needle.encode() not in body, f"{key} holds a credential"
