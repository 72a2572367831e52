"""A Tardis trades CSV is never imported as liquidations: the name Tardis gives a file says its kind.

Tardis' ``trades`` and ``liquidations`` CSVs share one header (``exchange, symbol,
timestamp, local_timestamp, id, side, price, amount``; docs.tardis.dev,
downloadable CSV files, data types), so the header cannot tell them apart. Tardis
names downloaded files ``<exchange>_<data type>_<YYYY-MM-DD>_<symbol>.csv.gz``
(the clients' default file name: tardis-node ``getFilenameDefault`` in
src/downloaddatasets.ts, tardis-dev for Python ``default_file_name``); its
nested example ``<exchange>/<data type>/<YYYY-MM-DD>_<symbol>.csv.gz`` and the
datasets URL ``<exchange>/<data type>/<YYYY>/<MM>/<DD>/<symbol>.csv.gz`` put the
type in a folder. A file named otherwise is refused unless ``--format`` says.
"""
from __future__ import annotations

import gzip

import pytest

from liqscope.models.cli import main
from liqscope.models.importers import AmbiguousKindError, InputError, import_files
from store_testutil import tree_hash

ROWS = ("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance-futures,BTCUSDT,1709251205123000,1709251205130512,4567,sell,61250.5,0.012\n"
        "binance-futures,BTCUSDT,1709251210456000,1709251210460111,4568,buy,61260.0,0.5\n")


def gz(path, text=ROWS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_a_tardis_file_whose_name_says_neither_is_refused_not_assumed_liquidations(store, tmp_path):
    """The reported defect: a trades file renamed (or downloaded by URL as ``BTCUSDT.csv.gz``) was stored
    as liquidations. Now: a one-line AmbiguousKindError (an InputError) naming the file and the format
    that reads it, and nothing stored."""
    p = gz(tmp_path / "BTCUSDT.csv.gz")
    before = tree_hash(store.root)
    with pytest.raises(AmbiguousKindError) as info:
        import_files([p], store=store)
    err = info.value
    assert isinstance(err, InputError) and err.file == str(p) and err.formats == ["tardis-liquidations"]
    assert str(err).startswith(f"{p}, line 1: ") and "\n" not in str(err)
    assert "--format tardis-liquidations" in str(err) and "trades" in str(err)
    assert tree_hash(store.root) == before and not store.has_data()


def test_an_explicit_format_reads_it_as_liquidations(store, tmp_path):
    p = gz(tmp_path / "BTCUSDT.csv.gz")
    [r] = import_files([p], store=store, fmt="tardis-liquidations")
    assert (r.format, r.rows) == ("tardis-liquidations", 2)


@pytest.mark.parametrize("name", [
    "binance-futures_liquidations_2024-03-01_BTCUSDT.csv.gz",       # the clients' default file name
    "binance-futures/liquidations/2024-03-01_BTCUSDT.csv.gz",        # Tardis' nested example
    "binance-futures/liquidations/2024/03/01/BTCUSDT.csv.gz",        # the datasets URL's path
])
def test_tardis_liquidations_names_are_recognised(store, tmp_path, name):
    [r] = import_files([gz(tmp_path / name)], store=store)
    assert (r.format, r.rows) == ("tardis-liquidations", 2)


@pytest.mark.parametrize("name", [
    "binance-futures_trades_2024-03-01_BTCUSDT.csv.gz",
    "binance-futures/trades/2024-03-01_BTCUSDT.csv.gz",
    "binance-futures/trades/2024/03/01/BTCUSDT.csv.gz",
])
def test_tardis_trades_names_are_refused_even_with_an_explicit_format(store, tmp_path, name):
    p = gz(tmp_path / name)
    for fmt in (None, "tardis-liquidations"):
        with pytest.raises(InputError, match=r"this is a Tardis trades file") as info:
            import_files([p], store=store, fmt=fmt)
        assert not isinstance(info.value, AmbiguousKindError)
    assert not store.has_data()


def test_cli_says_which_format_to_pass(tmp_path, capsys):
    p = gz(tmp_path / "BTCUSDT.csv.gz")
    code = main(["--data-dir", str(tmp_path / "s"), "import", str(p)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"liqscope: error: {p}, line 1: ") and "--format tardis-liquidations" in err
    code = main(["--data-dir", str(tmp_path / "s"), "import", "--format", "tardis-liquidations", str(p)])
    out, _ = capsys.readouterr()
    assert (code, out.strip()) == (0, f"imported 2 rows (2 new) from {p}")
