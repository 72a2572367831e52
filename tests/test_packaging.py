"""Packaging: every package folder is declared, and a real wheel installs only under `liqscope/`."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"models": "liqscope.models", "gui": "liqscope.gui", "resources": "liqscope.resources"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_folders(base: Path = ROOT) -> dict[str, Path]:
    """liqscope.<dotted path> -> folder, for every folder with an __init__.py under the three roots."""
    found = {}
    for folder, package in FOLDERS.items():
        for init in sorted((base / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(base / folder)
            if "__pycache__" in rel.parts:
                continue
            found[".".join([package, *rel.parts])] = init.parent
    return found


def test_package_dir_maps_the_three_top_level_folders():
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {pkg: folder for folder, pkg in FOLDERS.items()}
    for folder in FOLDERS:
        assert (ROOT / folder / "__init__.py").is_file()


def test_every_package_folder_is_listed_in_pyproject():
    declared = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = _package_folders()
    missing = sorted(set(found) - declared)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    # ... and nothing is declared that does not exist
    assert not sorted(declared - set(found)), f"declared but no folder with __init__.py: {sorted(declared - set(found))}"


def test_console_script_and_demo_data_are_declared():
    project = _pyproject()["project"]
    assert project["scripts"] == {"liqscope": "liqscope.gui.main:main"}
    data = _pyproject()["tool"]["setuptools"]["package-data"]["liqscope.resources"]
    assert "demo/*.parquet" in data and "demo/*.json" in data


@pytest.mark.slow
def test_wheel_holds_only_liqscope(tmp_path):
    """Build a real wheel from a copy of the checkout (pip, isolated build) and read its file list."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheels = list(dist.glob("liqscope-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()

    tops = {n.split("/", 1)[0] + ("/" if "/" in n else "") for n in names}
    dist_info = {t for t in tops if t.startswith("liqscope-") and t.endswith(".dist-info/")}
    assert len(dist_info) == 1
    assert tops == {"liqscope/"} | dist_info, f"unexpected top-level entries: {sorted(tops)}"
    for bare in ("gui/", "models/", "resources/"):
        assert not any(n.startswith(bare) for n in names)

    assert "liqscope/resources/demo/liquidations.parquet" in names
    assert "liqscope/resources/demo/candles.parquet" in names
    assert "liqscope/resources/demo/annotations.json" in names  # the seed's events, shown with the demo
    # every module of every package folder (in the copy that was built) made it in
    for package, folder in _package_folders(src).items():
        for py in folder.glob("*.py"):
            assert f"{package.replace('.', '/')}/{py.name}" in names, f"{py} is missing from the wheel"
    entry_points = zipfile.ZipFile(wheels[0]).read(next(iter(dist_info)) + "entry_points.txt").decode()
    assert "liqscope = liqscope.gui.main:main" in entry_points
