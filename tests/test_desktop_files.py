"""Desktop integration files: the .desktop entry, AppStream metainfo, icons, install script."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESKTOP = ROOT / "packaging" / "liqscope.desktop"
METAINFO = ROOT / "packaging" / "io.github.liqscope.Liqscope.metainfo.xml"
ICONS = ROOT / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256)
# freedesktop menu spec: main categories, and additional ones with the main category they need
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
                   "Office", "Science", "Settings", "System", "Utility"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _desktop_entry() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_desktop_entry_keys():
    entry = _desktop_entry()
    script = next(iter(_pyproject()["project"]["scripts"]))
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Liqscope"
    assert entry["Exec"] == script == "liqscope"  # packaging/install-desktop makes it absolute
    assert entry["TryExec"] == script
    assert entry["Icon"] == "liqscope" and (ICONS / "liqscope.svg").is_file()
    assert entry["Terminal"] == "false"
    assert entry["StartupWMClass"] == "Liqscope"  # Qt's WM_CLASS class part: the application name
    categories = entry["Categories"]
    assert categories.endswith(";")
    assert set(categories.rstrip(";").split(";")) & MAIN_CATEGORIES
    assert entry["Keywords"].endswith(";")
    allowed = {"Type", "Version", "Name", "GenericName", "Comment", "Exec", "TryExec", "Icon", "Terminal",
               "Categories", "Keywords", "StartupNotify", "StartupWMClass"}
    assert set(entry) <= allowed, set(entry) - allowed


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (apt-get install desktop-file-utils)")
def test_desktop_entry_passes_desktop_file_validate():
    res = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_metainfo_is_well_formed_and_consistent():
    root = ET.parse(METAINFO).getroot()
    project = _pyproject()["project"]
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == "io.github.liqscope.Liqscope"
    assert root.findtext("name") == "Liqscope"
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.findtext("project_license") == project["license"] == "MIT"
    launchable = root.find("launchable")
    assert launchable.get("type") == "desktop-id" and launchable.text == DESKTOP.name
    assert root.findtext("provides/binary") == next(iter(project["scripts"]))
    assert root.find("description/p") is not None
    versions = [r.get("version") for r in root.findall("releases/release")]
    assert versions[0] == project["version"], "add a <release> for the version in pyproject.toml"
    assert root.find("content_rating").get("type") == "oars-1.1"


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli not installed (apt-get install appstream)")
def test_metainfo_passes_appstreamcli():
    res = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_icon_pngs_are_the_svg_rendered_at_each_size(qapp):
    from PySide6.QtGui import QImage

    assert ET.parse(ICONS / "liqscope.svg").getroot().get("viewBox") == "0 0 256 256"
    for size in SIZES:
        image = QImage(str(ICONS / f"liqscope-{size}.png"))
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel()
        assert image.pixelColor(0, 0).alpha() == 0  # rounded corner: transparent
        assert image.pixelColor(size // 2, size // 2).alpha() == 255
    # the long/short colours of the app are in the big one
    big = QImage(str(ICONS / "liqscope-256.png"))
    colours = {big.pixelColor(x, y).name() for x in range(0, 256, 2) for y in range(0, 256, 2)}
    assert {"#d55e00", "#0072b2"} <= colours


def test_icons_and_licence_are_package_data():
    data = _pyproject()["tool"]["setuptools"]["package-data"]["liqscope.resources"]
    assert "icons/*" in data and "LICENSE" in data
    assert _pyproject()["project"]["license-files"] == ["resources/LICENSE"]
    assert (ROOT / "resources" / "LICENSE").read_text().startswith("MIT License")


def test_install_desktop_for_a_bundle_and_uninstall(tmp_path):
    bundle = tmp_path / "Liqscope"
    bundle.mkdir()
    (bundle / "liqscope").write_text("#!/bin/sh\n")
    (bundle / "liqscope").chmod(0o755)
    data = tmp_path / "share"
    env = {**os.environ, "XDG_DATA_HOME": str(data), "HOME": str(tmp_path)}
    script = ROOT / "packaging" / "install-desktop"
    res = subprocess.run([str(script), "--bundle", str(bundle)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    entry = (data / "applications" / "liqscope.desktop").read_text()
    assert f"Exec={bundle / 'liqscope'}\n" in entry and f"TryExec={bundle / 'liqscope'}\n" in entry
    for size in SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "liqscope.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "liqscope.svg").is_file()
    assert (data / "metainfo" / METAINFO.name).is_file()
    assert not (data / "icons" / "hicolor" / "icon-theme.cache").exists()

    res = subprocess.run([str(script), "--uninstall"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    left = [p for p in data.rglob("*") if p.is_file() and p.name != "mimeinfo.cache"]
    assert left == []


def test_install_desktop_refuses_a_missing_bundle(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
    res = subprocess.run([str(ROOT / "packaging" / "install-desktop"), "--bundle", str(tmp_path / "nope")],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "packaging/build" in res.stderr
    assert not (tmp_path / "share" / "applications").exists()


def test_committed_pngs_match_the_svg(qapp, tmp_path):
    """Edit the SVG, forget packaging/render_icons.py, and this fails."""
    import sys

    from PySide6.QtGui import QImage

    sys.path.insert(0, str(ROOT / "packaging"))
    from render_icons import render

    for fresh in render(ICONS / "liqscope.svg", tmp_path, sizes=(32, 128)):
        committed = QImage(str(ICONS / fresh.name)).convertToFormat(QImage.Format.Format_ARGB32)
        new = QImage(str(fresh)).convertToFormat(QImage.Format.Format_ARGB32)
        assert committed.size() == new.size()
        n = new.width()
        diff = sum(_differs(committed.pixelColor(x, y), new.pixelColor(x, y)) for x in range(n) for y in range(n))
        assert diff <= n * n * 0.01, f"{fresh.name}: {diff} pixels differ; run packaging/render_icons.py"


def _differs(a, b) -> bool:
    """More than anti-aliasing noise between Qt versions."""
    return max(abs(x - y) for x, y in zip(a.getRgb(), b.getRgb())) > 24
