"""Shared test set-up: Qt off screen, and never the real per-user data directory."""
from __future__ import annotations

import os

import pytest

# Before anything imports Qt: tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# tests/bench holds plain scripts (benchmarks), not tests.
collect_ignore = ["bench"]


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Point LIQSCOPE_DATA_DIR at a fresh folder; undo any ``--data-dir`` a test set."""
    from liqscope.models import paths

    data = tmp_path_factory.mktemp("liqscope-data")
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(data))
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path_factory.mktemp("liqscope-cache")))
    yield data
    paths._override = None
