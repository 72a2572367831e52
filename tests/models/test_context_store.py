"""The store's context tables (models/store/context_tables.py): round trips, idempotent upserts, exact windows."""
from __future__ import annotations

import pandas as pd
import pytest
from deltalake import DeltaTable

from liqscope.models import cli
from liqscope.models.schema import SchemaError
from liqscope.models.store import StoreError, open_store
from liqscope.models.store.context_tables import funding_coverage, oi_coverage

T0 = pd.Timestamp("2025-05-09T00:00Z")


def H(n) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=n)


def oi(exchange="binance", symbol="BTCUSDT", hours=range(6), usd=None, period="1h", source="binance-rest"):
    hours = list(hours)
    usd = usd or [1e9 + h for h in hours]
    return pd.DataFrame({"ts": [H(h) for h in hours], "exchange": exchange, "symbol": symbol, "asset": "BTC",
                         "period": period, "oi_base": [u / 1e5 for u in usd], "oi_usd": usd, "source": source})


def funding(exchange="okx", symbol="BTC-USDT-SWAP", hours=(0, 8, 16), rates=None):
    rates = rates or [1e-4, 2e-4, -1e-4, 3e-4][:len(hours)]
    return pd.DataFrame({"ts": [H(h) for h in hours], "exchange": exchange, "symbol": symbol, "asset": "BTC",
                         "rate": list(rates), "interval_hours": 8.0, "source": f"{exchange}-rest"})


def series(name="fear_greed", days=3, unit="index"):
    return pd.DataFrame({"name": name, "ts": pd.date_range(T0, periods=days, freq="D"),
                         "value": [84.0 + i for i in range(days)], "unit": unit, "source": "file:fg.csv"})


def test_round_trip_and_types(store):
    assert store.append_open_interest(oi()).new == 6
    assert store.append_funding(funding()).new == 3
    assert store.append_outside_series(series()).new == 3
    got = store.open_interest()
    want = oi()
    assert list(got["ts"]) == list(want["ts"]) and list(got["oi_usd"]) == list(want["oi_usd"])
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]" and set(got["source"]) == {"binance-rest"}
    assert list(store.funding()["rate"]) == [1e-4, 2e-4, -1e-4]
    s = store.outside_series("fear_greed")
    assert list(s["value"]) == [84.0, 85.0, 86.0] and set(s["unit"]) == {"index"}
    # Delta tables with µs UTC timestamps, partitioned as documented
    for name, parts in (("open_interest", ["exchange"]), ("funding", ["exchange"]), ("outside_series", ["name"])):
        dt = DeltaTable(str(store.root / name))
        assert dt.metadata().partition_columns == parts
        ts = next(f for f in dt.schema().fields if f.name == "ts")
        assert ts.type.type == "timestamp"  # Delta's timestamp: µs, UTC


def test_upserts_are_idempotent_and_later_values_win(store):
    store.append_open_interest(oi())
    v = DeltaTable(str(store.root / "open_interest")).version()
    assert store.append_open_interest(oi()).new == 0
    assert DeltaTable(str(store.root / "open_interest")).version() == v  # nothing to write: no commit
    changed = oi(usd=[2e9] * 6, source="demo")
    assert store.append_open_interest(changed).new == 0
    got = store.open_interest()
    assert len(got) == 6 and set(got["oi_usd"]) == {2e9} and set(got["source"]) == {"demo"}
    # another period of the same symbol is another series
    assert store.append_open_interest(oi(period="5m", hours=[0])).new == 1
    assert len(store.open_interest(period="1h")) == 6
    store.append_outside_series(series())
    assert store.append_outside_series(series()).new == 0
    assert store.append_outside_series(series(days=5)).new == 2
    store.append_funding(funding())
    assert store.append_funding(funding()).new == 0


def test_a_frame_repeating_a_key_keeps_its_last_row(store):
    df = pd.concat([oi(hours=[0], usd=[1.0]), oi(hours=[0], usd=[2.0])])
    assert store.append_open_interest(df).new == 1
    assert list(store.open_interest()["oi_usd"]) == [2.0]


def test_windows_are_exact(store):
    store.append_open_interest(pd.concat([oi(), oi(exchange="bybit", source="bybit-rest")]))
    store.append_funding(funding())
    store.append_outside_series(pd.concat([series(), series("btc_dominance", unit="%")]))
    c = store.context(H(1), H(5))
    assert sorted(set(c.oi_frame["ts"])) == [H(1), H(2), H(3), H(4)]
    assert list(c.funding_frame["ts"]) == []
    c = store.context(H(8), H(16))
    assert list(c.funding_frame["ts"]) == [H(8)]
    assert c.names() == []  # daily series at 00:00 only
    c = store.context(T0, H(24))
    assert c.names() == ["btc_dominance", "fear_greed"] and c.unit("btc_dominance") == "%"
    assert len(store.open_interest(H(2), H(3), exchange="bybit")) == 1
    assert store.context().oi_total(None, None, "BTC")["reporting"].tolist() == [2] * 6
    assert store.context(H(30), H(40)).empty


def test_coverage_for_resuming(store):
    store.append_open_interest(oi(hours=[0, 1, 2, 5, 6]))
    assert oi_coverage(store, "binance", "BTCUSDT", "1h") == [(H(0), H(3)), (H(5), H(7))]
    assert oi_coverage(store, "binance", "BTCUSDT", "5m") == []
    store.append_funding(funding(hours=(0, 8, 16, 40)))
    ms = pd.Timedelta(milliseconds=1)
    assert funding_coverage(store, "okx", "BTC-USDT-SWAP") == [(H(0), H(16) + ms), (H(40), H(40) + ms)]


@pytest.mark.parametrize("frame,message", [
    (series(name="bad name"), "series name 'bad name' is not allowed"),
    (series().assign(value=[1.0, float("inf"), 2.0]), "not a finite number"),
    (series().assign(value=[1.0, 2e16, 2.0]), "beyond ±1e15"),
    (series().drop(columns=["unit"]), "lack the column(s) unit"),
])
def test_bad_series_rows_are_refused_in_one_line(store, frame, message):
    with pytest.raises((SchemaError, StoreError)) as exc:
        store.append_outside_series(frame)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert store.context().empty


def test_bad_funding_and_oi_refused(store):
    with pytest.raises(SchemaError, match="over 100%"):
        store.append_funding(funding(rates=(1e-4, 2.0, 0.0)))
    with pytest.raises(SchemaError, match="negative open interest"):
        store.append_open_interest(oi(usd=[-1.0] * 6))
    assert store.context().empty


def test_store_info_lists_context_tables(store, capsys, monkeypatch, tmp_path):
    store.append_open_interest(oi())
    store.append_funding(funding())
    store.append_outside_series(series())
    info = store.info()
    rows = {(r.kind, r.exchange, r.symbol): r for r in info.itertuples()}
    assert rows[("open_interest", "binance", "BTCUSDT")].rows == 6
    assert rows[("open_interest", "binance", "BTCUSDT")].interval == "1h"
    assert rows[("funding", "okx", "BTC-USDT-SWAP")].last == H(16)
    assert rows[("outside_series", "-", "fear_greed")].rows == 3
    assert cli.main(["--data-dir", str(store.root), "store", "info"]) == 0
    out = capsys.readouterr().out
    assert "open_interest" in out and "outside_series" in out and "fear_greed" in out


def test_load_window_carries_the_windows_context(store):
    store.append_open_interest(oi())
    ds = store.load_window(H(2), H(4))
    assert sorted(set(ds.context.oi_frame["ts"])) == [H(2), H(3)]
    assert len(open_store(store.root).load_dataset().context.oi_frame) == 6
