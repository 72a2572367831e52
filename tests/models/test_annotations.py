"""Annotations (Qt-free): the model and its one-line errors, the store's annotations table (local and
s3://), ``liqscope annotate``, and the demo's seed events."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from liqscope.models import annotations as an
from liqscope.models.annotations import AnnotationError
from liqscope.models.store import open_store
from liqscope.models.store.annotation_table import delete_annotation, load_annotations, save_annotation
from store_testutil import run_cli

UTC = "UTC"


# -- the model -------------------------------------------------------------------
def test_kinds_are_built_and_normalised():
    lv = an.level(" btc ", "110000", "  resistance ", exchange="Binance")
    assert (lv.kind, lv.asset, lv.price, lv.exchange, lv.text, lv.color) == \
        ("level", "BTC", 110000.0, "binance", "resistance", "resistance")
    assert lv.span is None and lv.where() == "BTC 110,000 (binance)"
    ev = an.event("2025-05-09T16:43Z", "cross")
    assert ev.at == pd.Timestamp("2025-05-09 16:43", tz=UTC) and ev.span == (ev.at, ev.at)
    rg = an.time_range("2025-05-09T16:41Z", "2025-05-09T16:46Z", "cascade", color="info")
    assert rg.span == (pd.Timestamp("2025-05-09 16:41", tz=UTC), pd.Timestamp("2025-05-09 16:46", tz=UTC))
    assert len({lv.id, ev.id, rg.id}) == 3
    assert an.Annotation.from_dict(rg.to_dict()) == rg
    assert an.Annotation.from_dict(json.loads(json.dumps(lv.to_dict()))) == lv


def test_edit_keeps_id_and_kind_and_moves_updated():
    ev = an.event("2025-05-09T16:43Z", "a", created="2025-01-01T00:00Z")
    ed = ev.edited(text="b", color="muted")
    assert (ed.id, ed.kind, ed.text, ed.color, ed.created) == (ev.id, "event", "b", "muted", ev.created)
    assert ed.updated > ev.updated
    with pytest.raises(AnnotationError, match="cannot change"):
        ev.edited(kind="range")


@pytest.mark.parametrize("build, message", [
    (lambda: an.level("BTC", -1, "x"), "price '-1' must be a number > 0"),
    (lambda: an.level("BTC", "abc"), "price 'abc' is not a number"),
    (lambda: an.level("BTC", float("inf")), "must be a number > 0"),
    (lambda: an.level("", 100), "asset '' is not an asset name"),
    (lambda: an.level("B T", 100), "asset 'B T' is not an asset name"),
    (lambda: an.level("BTC", 100, exchange="bin ance"), "exchange 'bin ance'"),
    (lambda: an.event("yesterdayish", "x"), "at: invalid time 'yesterdayish'"),
    (lambda: an.event(None), "at: a time is needed"),
    (lambda: an.time_range("2025-05-09T17:00Z", "2025-05-09T16:00Z"), "is not after its start"),
    (lambda: an.time_range("2025-05-09T17:00Z", "2025-05-09T17:00Z"), "is not after its start"),
    (lambda: an.event("2025-05-09", "x" * 201), "text is 201 characters long; at most 200"),
    (lambda: an.event("2025-05-09", "two\nlines"), "one line"),
    (lambda: an.event("2025-05-09", color="red"), "colour 'red' is not one of"),
    (lambda: an.event("2025-05-09", id="no spaces"), "id 'no spaces' is not allowed"),
    (lambda: an.make("arrow", "x"), "kind 'arrow' is not one of level, event, range"),
    (lambda: an.make("event", "x", at="2025-05-09", price=3), "a event has no price"),
    (lambda: an.Annotation.from_dict({"kind": "event", "at": "2025-05-09", "colour": "x"}), "unknown field 'colour'"),
])
def test_bad_input_is_one_line(build, message):
    with pytest.raises(AnnotationError) as err:
        build()
    text = str(err.value)
    assert message in text and "\n" not in text


def test_window_around_and_in_window():
    ev = an.event("2025-05-09T16:43Z")
    assert an.window_around(ev) == (pd.Timestamp("2025-05-09 16:13", tz=UTC), pd.Timestamp("2025-05-09 17:13", tz=UTC))
    rg = an.time_range("2025-05-09T12:00Z", "2025-05-09T16:00Z")
    assert an.window_around(rg) == (pd.Timestamp("2025-05-09 10:00", tz=UTC), pd.Timestamp("2025-05-09 18:00", tz=UTC))
    assert an.window_around(an.level("BTC", 1)) is None
    day = (pd.Timestamp("2025-05-09", tz=UTC), pd.Timestamp("2025-05-10", tz=UTC))
    old = an.event("2024-04-13")
    lv = an.level("BTC", 1)
    assert an.in_window([ev, rg, old, lv], *day) == [ev, rg, lv]


def test_demo_ships_the_seed_events_read_only():
    items = {a.id: a for a in an.demo_annotations()}
    assert all(a.readonly for a in items.values())
    cross = items["demo-cross-102k"]
    assert cross.kind == "event" and cross.at == pd.Timestamp("2025-05-09 16:42", tz=UTC) and "$102K" in cross.text
    res = items["demo-resistance-110k"]
    assert (res.kind, res.asset, res.price) == ("level", "BTC", 110000.0) and "resistance" in res.text
    past = [a for a in items.values() if a.id.startswith("demo-cascade-")]
    texts = " | ".join(a.text for a in past)
    assert len(past) == 3 and all(a.kind == "event" for a in past)
    for figure in ("$810M", "$65K", "$150M", "$60K", "$280M", "$79K"):
        assert figure in texts
    demo_start = pd.Timestamp("2025-05-07", tz=UTC)
    assert all(a.at < demo_start for a in past)  # outside the demo's range: listed, not drawn
    with pytest.raises(AnnotationError, match="read-only"):
        save_annotation(open_store(), cross)


# -- the store table ---------------------------------------------------------------
def _three():
    return [an.level("BTC", 110000, "resistance"), an.event("2025-05-09T16:43Z", "cross $102K"),
            an.time_range("2025-05-09T16:41Z", "2025-05-09T16:46Z", "cascade")]


def test_table_round_trip_upsert_and_reopen(tmp_path):
    store = open_store(tmp_path / "store")
    assert load_annotations(store) == []
    items = _three()
    for a in items:
        save_annotation(store, a)
    for a in items:  # idempotent: saving again adds nothing
        save_annotation(store, a)
    assert load_annotations(store) == sorted(items, key=lambda a: (a.created, a.id))
    edited = items[0].edited(text="R1 $110K", price=110500)
    save_annotation(store, edited)
    again = load_annotations(open_store(tmp_path / "store"))  # a fresh handle: what is on disk
    assert len(again) == 3 and {a.id: a for a in again}[edited.id] == edited
    assert (tmp_path / "store" / "annotations" / "_delta_log").is_dir()
    assert open_store(tmp_path / "store").has_data() is False  # annotations are not market data
    delete_annotation(store, items[1].id)
    assert [a.id for a in load_annotations(store)] == [a.id for a in sorted([edited, items[2]],
                                                                           key=lambda a: (a.created, a.id))]
    with pytest.raises(AnnotationError, match=f"no annotation with id '{items[1].id}'"):
        delete_annotation(store, items[1].id)


def test_an_id_keeps_its_kind(tmp_path):
    store = open_store(tmp_path)
    save_annotation(store, an.event("2025-05-09", "x", id="same"))
    with pytest.raises(AnnotationError, match="is a event, not a level"):
        save_annotation(store, an.level("BTC", 1, id="same"))


def test_table_on_s3(monkeypatch, tmp_path):
    from s3_server import S3Server, apply_env

    with S3Server() as server:
        apply_env(monkeypatch, server)
        uri = f"s3://{server.create_bucket()}/stores/main"
        items = _three()
        for a in items:
            save_annotation(open_store(uri), a)
        save_annotation(open_store(uri), items[0])
        assert load_annotations(open_store(uri)) == sorted(items, key=lambda a: (a.created, a.id))
        delete_annotation(open_store(uri), items[2].id)
        assert len(load_annotations(open_store(uri))) == 2


# -- liqscope annotate ----------------------------------------------------------------
def test_cli_add_list_delete(capsys):
    code, out, err = run_cli(capsys, "annotate", "add", "level", "--asset", "BTC", "--price", "110000",
                             "--text", "resistance")
    assert code == 0 and not err
    level_id = out.strip()
    code, out, _ = run_cli(capsys, "annotate", "add", "event", "--at", "2025-05-09T16:43Z", "--text", "cross")
    event_id = out.strip()
    code, out, _ = run_cli(capsys, "annotate", "add", "range", "--start", "2025-05-09T16:41Z", "--end",
                           "2025-05-09T16:46Z", "--text", "cascade", "--color", "info", "--json")
    rng = json.loads(out)
    assert code == 0 and rng["kind"] == "range" and rng["color"] == "info"
    code, out, _ = run_cli(capsys, "annotate", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [level_id, event_id, rng["id"]]
    assert rows[0]["price"] == 110000 and rows[1]["at"] == "2025-05-09T16:43:00Z"
    code, out, _ = run_cli(capsys, "annotate", "list")
    assert code == 0 and "resistance" in out and "2025-05-09T16:41:00Z to 2025-05-09T16:46:00Z" in out
    code, out, _ = run_cli(capsys, "annotate", "delete", event_id)
    assert code == 0
    assert [a.id for a in load_annotations(open_store())] == [level_id, rng["id"]]


def test_cli_data_dir_and_demo_list(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "annotate", "add", "event", "--at", "2025-05-09", "--data-dir", tmp_path / "s")
    assert code == 0 and [a.id for a in load_annotations(open_store(tmp_path / "s"))] == [out.strip()]
    code, out, err = run_cli(capsys, "annotate", "list", "--demo", "--json")
    assert code == 0 and "demo-resistance-110k" in out


@pytest.mark.parametrize("argv, message", [
    (["annotate", "add", "level", "--asset", "BTC", "--price", "-3"], "price '-3' must be a number > 0"),
    (["annotate", "add", "level", "--price", "5"], "required: --asset"),
    (["annotate", "add", "event", "--at", "nope"], "at: invalid time 'nope'"),
    (["annotate", "add", "range", "--start", "2025-05-09T17:00Z", "--end", "2025-05-09T16:00Z"], "is not after"),
    (["annotate", "add", "event", "--at", "2025-05-09", "--color", "red"], "invalid choice: 'red'"),
    (["annotate", "delete", "nope"], "no annotation with id 'nope'"),
    (["annotate"], "annotate needs a command"),
    (["annotate", "add"], "needs a kind"),
])
def test_cli_bad_input_exits_2_in_one_line(capsys, argv, message):
    try:
        code, _, err = run_cli(capsys, *argv)
    except SystemExit as exc:  # argparse's own checks (a missing option, a bad choice)
        code, err = exc.code, capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
