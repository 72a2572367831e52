"""Mangled files thrown at every importer: a clean InputError or a valid import, never a partial write."""
from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqscope.models.importers import InputError, import_files
from liqscope.models.liquidations import LiquidationModel
from liqscope.models.schema import normalize_candles
from liqscope.models.store import open_store
from store_testutil import FIXTURES, tree_hash

CASES = {
    "binance-klines": ("BTCUSDT-1m-2025-01.csv", {}),
    "binance-klines-spot": ("BTCUSDT-1h-2025-02.csv", {}),
    "binance-liquidations": ("BTCUSDT-liquidationSnapshot-2023-07-31.csv", {}),
    "tardis-liquidations": ("binance-futures_liquidations_2024-03-01_PERPETUALS.csv", {}),
    "generic": ("generic-bybit-liquidations.csv",
                dict(mapping="ts=time,symbol=sym,side=dir,price=px,qty=size", exchange="bybit",
                     side_convention="position")),
    "generic-candles": ("generic-candles.csv", dict(exchange="bybit", symbol="BTCUSDT")),
}

NASTY = st.sampled_from(["", "-1", "-0.5", "0", "nan", "inf", "-inf", "1e400", "1e-400", "abc", "1,5", '"',
                         "\x00", "\xff", "  ", "9" * 30, "2025-13-45T99:99:99Z", "1690761661123000000000",
                         "SELL", "buy", "long", "unknown", "\r", "\n", ";", "ü", "1.2.3", "+5", "0x1F"])
FIELD = st.one_of(NASTY, st.text(max_size=12), st.integers(-10**20, 10**20).map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr))


@st.composite
def mangled(draw, text: str) -> bytes:
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["field", "drop_field", "add_field", "bytes", "truncate", "dup_line",
                                   "swap_lines", "drop_line", "header", "blank"]))
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
            lines.insert(i, "\n")
    data = "".join(lines).encode("utf-8", "surrogateescape")
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        data = gzip.compress(data)
    return data


def _check_store(store) -> None:
    """Whatever the store holds must load and satisfy the column contracts."""
    m = store.liquidations()
    LiquidationModel(m.frame)  # re-validates: sides, finite non-negative numbers, UTC ts
    assert m.frame["ts"].is_monotonic_increasing
    for ex, sym, iv, _ in store.candle_series():
        c = store.candles(ex, sym, iv)
        normalize_candles(c)
        assert np.isfinite(c.to_numpy()).all() and (c["high"] >= c["low"]).all()


_ROOT = Path(tempfile.mkdtemp(prefix="liqscope-fuzz-"))


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mangled_input_is_refused_cleanly_or_imported_validly(case, data):
    name, kw = CASES[case]
    text = (FIXTURES / name).read_text()
    blob = data.draw(mangled(text))
    root = _ROOT / case
    store = open_store(root / "store")
    if not store.has_data():  # start from real content so "unchanged" means something
        import_files([FIXTURES / name], store=store, **kw)
    path = root / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    before = tree_hash(store.root)
    try:
        import_files([path], store=store, **kw)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        assert tree_hash(store.root) == before
    _check_store(open_store(store.root))
