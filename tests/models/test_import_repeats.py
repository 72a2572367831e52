"""Rows a file repeats exactly are counted once, and the import says how many (README: "exactly
repeated rows ... are accepted (merged ..., with a warning)").

Binance's liquidationSnapshot dumps listed each order twice (binance-public-data
issue #259). A repeat is a row with the same event key as an earlier row of the
same file -- time, exchange, symbol, side, price and quantity, the key the store
de-duplicates on -- so the file's totals are the totals of its distinct events.
"""
from __future__ import annotations

import pytest

from liqscope.models.importers import import_files
from liqscope.models.store import open_store
from store_testutil import FIXTURES

SNAPSHOT = FIXTURES / "BTCUSDT-liquidationSnapshot-2023-07-31.csv"
TARDIS = FIXTURES / "binance-futures_liquidations_2024-03-01_PERPETUALS.csv"
GENERIC = FIXTURES / "generic-bybit-liquidations.csv"
GENERIC_OPTS = dict(exchange="bybit", mapping="ts=time,symbol=sym,side=dir,price=px,qty=size",
                    side_convention="position")


def twice(tmp_path, src):
    """``src`` with every data line listed twice, under the same file name."""
    lines = src.read_text().splitlines(keepends=True)
    p = tmp_path / src.name
    p.write_text(lines[0] + "".join(line + line for line in lines[1:]))
    return p


def totals(store):
    f = store.liquidations().frame
    return len(f), round(float(f["notional_usd"].sum()), 6), sorted(f["qty"].tolist())


@pytest.mark.parametrize("src, kw, distinct, repeats", [
    (SNAPSHOT, {}, 3, 5),  # 4 filled rows (the fixture repeats one already), each listed twice: 8 for 3 events
    (TARDIS, {}, 4, 4),
    (GENERIC, GENERIC_OPTS, 3, 3),
])
def test_a_file_listing_each_row_twice_counts_each_once_and_says_so(tmp_path, src, kw, distinct, repeats):
    once = open_store(tmp_path / "once")
    import_files([src], store=once, **kw)
    doubled = open_store(tmp_path / "doubled")
    [r] = import_files([twice(tmp_path, src)], store=doubled, **kw)
    assert (r.rows, r.new) == (distinct, distinct)
    assert totals(doubled) == totals(once)
    assert r.repeated == repeats
    assert r.summary() == (f"imported {distinct} rows ({distinct} new) from {tmp_path / src.name}; "
                           f"{r.repeated} rows repeated in the file were counted once")


def test_the_binance_fixture_repeat_is_reported(tmp_path):
    [r] = import_files([SNAPSHOT], store=open_store(tmp_path / "s"))
    assert (r.rows, r.repeated) == (3, 1)
    assert r.summary() == f"imported 3 rows (3 new) from {SNAPSHOT}; 1 row repeated in the file was counted once"


def test_rows_differing_in_any_key_field_are_not_repeats(tmp_path):
    """Same time, different quantity / side / symbol: distinct liquidations, all kept."""
    p = tmp_path / "binance-futures_liquidations_2024-03-01_X.csv"
    p.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                 "binance-futures,BTCUSDT,1709251205123000,1709251205130000,,sell,61250.5,0.012\n"
                 "binance-futures,BTCUSDT,1709251205123000,1709251205130000,,sell,61250.5,0.013\n"
                 "binance-futures,BTCUSDT,1709251205123000,1709251205130000,,buy,61250.5,0.012\n"
                 "binance-futures,ETHUSDT,1709251205123000,1709251205130000,,sell,61250.5,0.012\n"
                 "binance-futures,BTCUSDT,1709251205123000,1709251205131000,,sell,61250.5,0.012\n")
    [r] = import_files([p], store=open_store(tmp_path / "s"))
    assert (r.rows, r.repeated) == (4, 1)  # only the last, which differs in arrival time alone
    assert r.summary().endswith("; 1 row repeated in the file was counted once")


def test_no_repeats_no_note(tmp_path):
    [r] = import_files([TARDIS], store=open_store(tmp_path / "s"))
    assert r.repeated == 0 and r.summary() == f"imported 4 rows (4 new) from {TARDIS}"
