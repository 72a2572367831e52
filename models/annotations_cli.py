"""``liqscope annotate``: chart annotations (levels, event marks, ranges) kept in the store.

    liqscope annotate add level --asset BTC --price 110000 --text "resistance" [--exchange binance]
    liqscope annotate add event --at 2025-05-09T16:43Z --text "BTC clears $102K"
    liqscope annotate add range --start 2025-05-09T16:41Z --end 2025-05-09T16:46Z --text "cascade"
    liqscope annotate list [--json]            # --demo: the demo's (read-only) annotations
    liqscope annotate delete ID

Never imports Qt. Bad input is one line on stderr with exit status 2 (:class:`~.errors.UserError`).
"""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "annotate", help="chart annotations: price levels, event marks and ranges kept in the store",
        description="Add, list and delete the annotations the window draws on its charts (and in exported "
                    "images): horizontal price levels, vertical event marks with a note, shaded time ranges. "
                    "They are kept in the store's `annotations` table (local folder or s3://).")
    verbs = p.add_subparsers(dest="annotate_command", metavar="{add,list,delete}")
    add = verbs.add_parser("add", help="add an annotation (level, event or range)",
                           description="Add an annotation; prints its id.")
    kinds = add.add_subparsers(dest="kind", metavar="{level,event,range}")
    specs = {
        "level": ("a horizontal price level of an asset", [
            (("--asset",), dict(required=True, metavar="ASSET", help="asset, e.g. BTC")),
            (("--price",), dict(required=True, metavar="PRICE", help="price (> 0)")),
            (("--exchange",), dict(metavar="EXCHANGE", help="only on this exchange's price pane (default: any)")),
        ]),
        "event": ("a vertical event mark with a note", [
            (("--at",), dict(required=True, metavar="TIME", help="when, ISO-8601 UTC (e.g. 2025-05-09T16:43Z)")),
        ]),
        "range": ("a shaded time range [start, end) with a note", [
            (("--start",), dict(required=True, metavar="TIME", help="start, ISO-8601 UTC (inclusive)")),
            (("--end",), dict(required=True, metavar="TIME", help="end, ISO-8601 UTC (exclusive)")),
        ]),
    }
    from .annotations import ROLES

    for kind, (text, options) in specs.items():
        k = kinds.add_parser(kind, help=text, description=f"Add {text}; prints its id.")
        for flags, kw in options:
            k.add_argument(*flags, **kw)
        k.add_argument("--text", default="", metavar="TEXT", help="the note shown on the chart")
        k.add_argument("--color", default=None, choices=ROLES, metavar="ROLE",
                       help=f"colour role: {', '.join(ROLES)} (the theme picks the colour)")
        k.add_argument("--id", default=None, metavar="ID", help="id to use (default: a new one); "
                       "an existing id is replaced")
        k.add_argument("--json", action="store_true", help="print the annotation as JSON")
        k.set_defaults(func=cmd_add)
    lst = verbs.add_parser("list", help="list the store's annotations (--demo: the demo's)")
    lst.add_argument("--json", action="store_true", help="print one JSON object per line (JSON lines)")
    lst.set_defaults(func=cmd_list)
    rm = verbs.add_parser("delete", help="delete an annotation by id")
    rm.add_argument("id", metavar="ID")
    rm.set_defaults(func=cmd_delete)
    p.set_defaults(func=_usage)
    add.set_defaults(func=_usage)


def _usage(args) -> int:
    from .cli import UsageError

    if getattr(args, "annotate_command", None) == "add":
        raise UsageError("annotate add needs a kind: level, event or range (e.g. annotate add level --asset BTC "
                         "--price 110000 --text resistance)")
    raise UsageError("annotate needs a command: add, list or delete")


def _store():
    from .store import open_store

    return open_store()


def cmd_add(args) -> int:
    from .annotations import make
    from .store.annotation_table import save_annotation

    where = {"level": dict(asset=getattr(args, "asset", None), price=getattr(args, "price", None),
                           exchange=getattr(args, "exchange", None)),
             "event": dict(at=getattr(args, "at", None)),
             "range": dict(start=getattr(args, "start", None), end=getattr(args, "end", None))}[args.kind]
    a = make(args.kind, args.text, id=args.id, color=args.color, **where)  # checked before the store is opened
    save_annotation(_store(), a)
    print(json.dumps(a.to_dict()) if args.json else a.id)
    return 0


def cmd_list(args) -> int:
    from .annotations import demo_annotations
    from .store.annotation_table import load_annotations

    items = demo_annotations() if getattr(args, "demo", False) else load_annotations(_store())
    if args.json:
        for a in items:
            print(json.dumps(a.to_dict()))
    else:
        print(format_table(items))
    if not items:
        print("liqscope: note: no annotations" + (" in the demo" if getattr(args, "demo", False) else
                                                   " in the store"), file=sys.stderr)
    return 0


def cmd_delete(args) -> int:
    from .store.annotation_table import delete_annotation

    delete_annotation(_store(), args.id)
    print(f"deleted {args.id}")
    return 0


def format_table(items) -> str:
    lines = [f"{'id':<22} {'kind':<6} {'where':<42} {'colour':<10} text"]
    for a in items:
        lines.append(f"{a.id:<22} {a.kind:<6} {a.where():<42} {a.color:<10} {a.text}")
    return "\n".join(lines)
