"""The layers are a contract: `lint-imports` (import-linter) must pass, and it must catch what it claims to.

Contracts live in pyproject.toml ([tool.importlinter]): models/ imports neither
Qt nor gui/ (even inside functions), gui/ sits on models/, no import cycles.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("lint-imports not installed (pip install -e .[test])")
    return subprocess.run([str(exe), "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_project_keeps_its_layer_contracts():
    res = lint_imports()
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 kept, 0 broken" in res.stdout


def test_a_qt_import_inside_a_function_breaks_the_contract(tmp_path):
    """import-linter reads every import statement, so a lazy import in a function body counts too."""
    pkg = tmp_path / "toy"
    (pkg / "models").mkdir(parents=True)
    (pkg / "gui").mkdir()
    for folder in (pkg, pkg / "models", pkg / "gui"):
        (folder / "__init__.py").write_text("")
    (pkg / "gui" / "window.py").write_text("import PySide6\n")
    (pkg / "models" / "cli.py").write_text(textwrap.dedent("""
        def run():
            from toy.gui import window  # lazy, but still a dependency of models on gui
            return window
    """))
    (tmp_path / ".importlinter").write_text(textwrap.dedent("""
        [importlinter]
        root_package = toy
        [importlinter:contract:layers]
        name = gui sits on models
        type = layers
        layers =
            toy.gui
            toy.models
    """))
    res = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(tmp_path),
                                                                           "PATH": "/usr/bin:/bin"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "toy.models.cli -> toy.gui.window" in res.stdout
