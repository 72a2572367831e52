"""Liqscope's domain layer: prices, liquidations, aggregation, data sources.

Nothing under ``liqscope.models`` imports Qt, so every piece runs from a script,
the CLI or a server without a display (tests/models/test_qt_free.py enforces it).
"""
