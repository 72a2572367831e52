"""Per-frame and per-event checks (models/connectors/validate.py): what may reach the store."""
from __future__ import annotations

import errno
import json

import pytest

from connector_fakes import NOW_MS, fixture
from liqscope.models.connectors import validate
from liqscope.models.connectors.parsers import Normalizer, okx_specs_from_instruments
from liqscope.models.store.core import StoreError


def _event(**over):
    ev = {"ts_ms": NOW_MS - 100, "exchange": "binance", "symbol": "BTCUSDT", "asset": "BTC", "side": "long",
          "price": 100_000.0, "qty": 0.5, "notional_usd": 50_000.0}
    ev.update(over)
    return ev


def test_json_depth_counts_only_structure():
    assert validate.json_depth('{"a": "[[[[{{{{", "b": [1, [2, {"c": "]]]"}]]}') == 4
    assert validate.json_depth(r'{"a": "\"[[[[", "b": "\\", "c": [[1]]}') == 3  # escaped quote, escaped backslash
    assert validate.json_depth("[" * 5000 + "]" * 5000) == 5000
    assert validate.json_depth("") == 0


def test_frame_problem_guards_depth_and_size():
    assert validate.frame_problem(fixture("okx")["frames"][4]["raw"]) is None
    assert "nested 100000 levels" in validate.frame_problem("[" * 100_000 + "]" * 100_000)
    assert "over the 1,048,576-byte limit" in validate.frame_problem('"' + "x" * (1 << 20) + '"')
    # Regex-backtracking bait (an unterminated string full of escaped quotes) is one linear pass:
    # the brackets are inside the string, so it is not deep, merely malformed.
    bait = '["' + '\\"' * 200_000 + "[" * 40
    assert validate.frame_problem(bait) is None
    with pytest.raises(validate.Rejected, match="malformed"):
        validate.decode(bait)


@pytest.mark.parametrize("over,words", [
    ({"ts_ms": True}, "not a millisecond timestamp"),
    ({"ts_ms": 1}, "days from when it was received"),
    ({"ts_ms": NOW_MS + 3 * 86_400_000}, "days from when it was received"),
    ({"symbol": "X" * 300}, "symbol is 300 characters long (at most 64)"),
    ({"symbol": "BTC\x00USDT"}, "control or blank character"),
    ({"symbol": "BTCUSDT\n"}, "control or blank character"),
    ({"symbol": ""}, "symbol is missing"),
    ({"asset": None}, "asset is missing"),
    ({"side": "sideways"}, "not long or short"),
    ({"price": True}, "price True is not a number"),
    ({"price": float("nan")}, "outside the sane range"),
    ({"price": float("inf")}, "outside the sane range"),
    ({"price": 0.0}, "outside the sane range"),
    ({"qty": -1.0}, "outside the sane range"),
    ({"notional_usd": 1e30}, "outside the sane range"),
])
def test_event_problem_names_what_is_wrong(over, words):
    assert words in validate.event_problem(_event(**over), NOW_MS)


def test_a_valid_event_passes():
    assert validate.event_problem(_event(), NOW_MS) is None
    assert validate.event_problem(_event(symbol="BTC-USDT-250627-SWAP"), NOW_MS) is None


def _normalizer(exchange):
    n = Normalizer(exchange)
    if exchange == "okx":
        n.specs = okx_specs_from_instruments(fixture("okx")["rest"]["instruments"])
    return n


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
def test_feed_gives_what_the_parser_gives_for_documented_frames(exchange):
    """Splitting frames into events changes nothing for well-formed frames."""
    for frame in fixture(exchange)["frames"]:
        raw = frame["raw"]
        whole, split = _normalizer(exchange), _normalizer(exchange)
        expected = whole.feed_text(raw)
        fed = validate.feed(split, raw, NOW_MS)
        assert fed.events == expected and not fed.quarantined, frame["name"]
        assert (split.errors, split.unconverted) == (whole.errors, whole.unconverted), frame["name"]


HOSTILE = ["[" * 200_000, "{" * 10 + "}" * 10, "null", "[]", "[1, 2]", '{"data": {"stream": 1}}', "\x00\x01",
           '{"e":"forceOrder","o":{"s":' + "9" * 5000 + "}}", '{"topic":"allLiquidation.X","data":[null, 1, []]}',
           '{"arg":{"channel":"liquidation-orders"},"data":[{"details":[null,{"bkPx":true}]}, 7]}',
           '{"arg":{"channel":"liquidation-orders"},"data":{"x":1}}', '"' + "\\" * 1001 + '"']


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
def test_feed_never_raises(exchange):
    n = _normalizer(exchange)
    for text in HOSTILE:
        fed = validate.feed(n, text, NOW_MS)
        assert fed.events == []


def test_store_errors_are_told_apart_from_bad_rows():
    assert validate.is_data_error(ValueError("bad row"))
    assert not validate.is_data_error(OSError(errno.ENOSPC, "disk full"))
    assert validate.is_data_error(OSError(errno.ENAMETOOLONG, "File name too long"))

    def wrapped(code):
        try:
            try:
                raise OSError(code, "x")
            except OSError:
                raise StoreError("cannot write to the store") from None
        except StoreError as exc:
            return exc

    assert validate.is_data_error(wrapped(errno.ENAMETOOLONG))  # the store's one-line error keeps the cause
    assert not validate.is_data_error(wrapped(errno.ENOSPC))
    assert not validate.is_data_error(StoreError("locked"))


def test_store_each_writes_everything_but_the_bad_items():
    calls = []

    def write(part):
        calls.append(list(part))
        if "bad" in part:
            raise ValueError("bad item")

    written, refused, rest, error = validate.store_each(write, ["a", "bad", "b", "c", "bad", "d"])
    assert sorted(written) == ["a", "b", "c", "d"] and [r[0] for r in refused] == ["bad", "bad"]
    assert rest == [] and error is None

    def down(part):
        raise OSError(errno.ENOSPC, "disk full")

    written, refused, rest, error = validate.store_each(down, ["a", "b"])
    assert written == [] and refused == [] and rest == ["a", "b"] and isinstance(error, OSError)


def test_boolean_fields_are_found_only_where_numbers_are_read():
    msg = json.loads(fixture("bybit")["frames"][0]["raw"])
    assert validate.boolean_field("bybit", msg) is None
    msg["data"][0]["p"] = False
    assert validate.boolean_field("bybit", msg) == "data.p"
    msg["data"][0]["p"], msg["isSnapshot"] = "1", True  # a boolean elsewhere is none of our business
    assert validate.boolean_field("bybit", msg) is None


def test_an_event_the_checks_choke_on_is_refused_alone(monkeypatch):
    """Whatever a check raises on (here: any symbol starting with X), feed() refuses that event
    and keeps the others: it never raises for what a frame holds."""
    real = validate.event_problem

    def choking(ev, received_ms=None):
        if str(ev.get("symbol")).startswith("X"):
            raise OverflowError("int too large to convert to float")
        return real(ev, received_ms)

    monkeypatch.setattr(validate, "event_problem", choking)
    n = Normalizer("binance")
    frame = [json.loads(fixture("binance")["frames"][0]["raw"]) for _ in range(2)]
    frame[1]["o"]["s"] = "XRPUSDT"
    fed = validate.feed(n, json.dumps(frame), NOW_MS)
    assert [ev["symbol"] for ev in fed.events] == ["BTCUSDT"]
    assert fed.quarantined == ["binance XRPUSDT: cannot be checked (OverflowError)"]
