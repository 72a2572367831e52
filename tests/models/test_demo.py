"""The demo generator: deterministic (same seed, same bytes), matches the bundled files, small."""
from __future__ import annotations

import pandas as pd
import pytest

from liqscope.models import demo, paths
from liqscope.models.liquidations import LiquidationModel
from liqscope.models.prices import PriceModel

FILES = ("candles.parquet", "liquidations.parquet")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generator run twice, into two separate folders."""
    a, b = tmp_path_factory.mktemp("demo-a"), tmp_path_factory.mktemp("demo-b")
    written_a, written_b = demo.write(a), demo.write(b)
    assert [p.name for p in written_a] == list(FILES) == [p.name for p in written_b]
    return a, b


@pytest.fixture(scope="module")
def frames():
    """(candles, liquidations) straight from the generator, in memory."""
    return demo.generate()


@pytest.mark.parametrize("name", FILES)
def test_same_seed_same_bytes(generated, name):
    a, b = generated
    data = (a / name).read_bytes()
    assert len(data) > 10_000
    assert data == (b / name).read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_regenerated_data_equals_the_bundled_files(generated, name):
    bundled = paths.demo_dir() / name
    assert bundled.is_file()
    # exact equality of every value and dtype (bytes may differ across library versions)
    pd.testing.assert_frame_equal(pd.read_parquet(generated[0] / name), pd.read_parquet(bundled), check_exact=True)


def test_bundled_files_are_small():
    sizes = {name: (paths.demo_dir() / name).stat().st_size for name in FILES}
    assert sum(sizes.values()) < 5 * 1024 * 1024, sizes


def test_generate_in_memory_matches_and_other_seeds_differ(generated, frames):
    candles, liqs = frames
    pd.testing.assert_frame_equal(
        liqs.reset_index(drop=True),
        pd.read_parquet(generated[0] / "liquidations.parquet").astype(liqs.dtypes.to_dict()),
        check_exact=True,
    )
    _, other = demo.generate(seed=demo.SEED + 1)
    assert len(other) != len(liqs) or not other["notional_usd"].equals(liqs["notional_usd"])


def test_generated_frames_follow_the_schema(frames):
    candles, liqs = frames
    model = LiquidationModel(liqs)  # validates sides, numbers, columns
    assert len(model) == len(liqs)
    assert liqs["ts"].is_monotonic_increasing
    assert set(liqs["side"]) == {"long", "short"}
    # notional = price x qty (rounded to the cent), qty in exchange-like steps
    assert ((liqs["price"] * liqs["qty"] - liqs["notional_usd"]).abs() <= 0.006).all()
    assert (liqs["qty"] > 0).all()
    # symbols are each exchange's own spelling
    okx = liqs[liqs["exchange"] == "okx"]["symbol"].unique()
    assert set(okx) == {f"{a}-USDT-SWAP" for a in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE")}
    prices = PriceModel.from_long(candles)
    assert len(prices) == 15
    assert candles["interval"].unique().tolist() == ["1m"]


def test_symbol_spelling():
    assert demo.symbol_for("binance", "BTC") == "BTCUSDT"
    assert demo.symbol_for("bybit", "ETH") == "ETHUSDT"
    assert demo.symbol_for("okx", "SOL") == "SOL-USDT-SWAP"
    assert demo.symbol_for("gate", "XRP") == "XRP_USDT"
