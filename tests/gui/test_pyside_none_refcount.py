"""Regression guard: PySide6-Essentials 6.12.0 on CPython <= 3.11 drops a reference to None on every
Qt call that returns nothing, and the interpreter aborts ("Fatal Python error: none_dealloc") within
seconds of plotting. pyproject keeps 6.12 off Python < 3.12; these tests check the installed PySide6
and the marker, so a future upgrade is caught here rather than by a crashing app.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CALLS = 1000

PROBE = textwrap.dedent(
    f"""
    import sys
    from PySide6.QtGui import QGuiApplication, QPainterPath

    app = QGuiApplication([])
    QPainterPath().clear()  # warm up: first call may cache things
    before = sys.getrefcount(None)
    for _ in range({CALLS}):
        QPainterPath().clear()  # a Qt call returning nothing (void -> None)
    after = sys.getrefcount(None)
    print(after - before)
    """
)


def test_void_qt_calls_do_not_leak_references_to_none():
    pytest.importorskip("PySide6.QtGui")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # a subprocess, so that an abort (none_dealloc) fails this test instead of killing pytest
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env)
    lines = res.stdout.strip().splitlines()
    if lines and lines[-1].lstrip("-").isdigit():
        delta = int(lines[-1])
        # A broken build loses one reference per call (delta ~ -1000; PySide6-Essentials 6.12.0 on
        # Python 3.11 prints -1000, then aborts at exit). On 3.12+ None is immortal: delta 0.
        assert delta > -CALLS // 10, (
            f"sys.getrefcount(None) fell by {-delta} over {CALLS} void Qt calls (exit {res.returncode})")
    assert res.returncode == 0, f"Qt probe crashed (exit {res.returncode}):\n{res.stderr[-2000:]}"
    assert lines, "Qt probe printed nothing"


def _pyside_requirements() -> list[Requirement]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    return [r for r in reqs if r.name.lower().replace("_", "-") == "pyside6-essentials"]


def _allowed(python: str) -> list[Requirement]:
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    return [r for r in _pyside_requirements() if r.marker is None or r.marker.evaluate(env)]


@pytest.mark.parametrize("python", ["3.11"])
def test_pyproject_keeps_pyside_612_off_old_pythons(python):
    reqs = _allowed(python)
    assert reqs, f"no PySide6-Essentials requirement applies to Python {python}"
    for bad in ("6.12.0", "6.12.1", "6.13.0"):
        assert not all(r.specifier.contains(bad, prereleases=True) for r in reqs), (
            f"PySide6-Essentials {bad} would be allowed on Python {python}")
    # the version that ran cleanly is still allowed
    assert all(r.specifier.contains("6.11.3") for r in reqs)


def test_pyproject_still_allows_pyside_612_on_newer_pythons():
    reqs = _allowed("3.12")
    assert reqs and all(r.specifier.contains("6.12.0") for r in reqs)


def test_installed_pyside_respects_the_marker():
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = Version(version("PySide6-Essentials"))
    except PackageNotFoundError:
        pytest.skip("PySide6-Essentials not installed")
    if sys.version_info < (3, 12):
        assert installed < Version("6.12"), f"PySide6-Essentials {installed} on Python {sys.version.split()[0]}"
