"""``liqscope annotate``: chart annotations (levels, event marks, ranges) kept in the store."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("annotate", help="chart annotations: levels, event marks and ranges kept in the store")
    p.set_defaults(func=lambda args: 0)
