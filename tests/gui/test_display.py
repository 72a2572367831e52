"""gui/display.py: the one-line reason the window cannot open, found without loading Qt."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from liqscope.gui import display
from liqscope.gui.display import DEBIAN_PACKAGES, apt_hint, display_problem, missing_libraries

ROOT = Path(__file__).resolve().parents[2]


def never_called():
    raise AssertionError("the xcb libraries were checked although xcb is not going to be used")


def one_line(message: str | None) -> str:
    assert message is not None
    assert "\n" not in message
    assert not message.startswith("liqscope:")  # the CLI adds "liqscope: error: "
    return message


def test_no_display_at_all():
    message = one_line(display_problem({}, platform="linux", xcb_missing=never_called))
    assert message.startswith("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset)")
    for way_out in ("--screenshot FILE.png", "xvfb-run", "liqscope summary"):
        assert way_out in message


def test_reads_the_process_environment_by_default(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    if sys.platform.startswith("linux"):
        assert one_line(display_problem()).startswith("no display")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display_problem() is None


def test_empty_variables_count_as_unset():
    message = display_problem({"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}, platform="linux",
                              xcb_missing=never_called)
    assert message and message.startswith("no display")


@pytest.mark.parametrize("qpa", ["offscreen", "minimal", "vnc", "offscreen:fontengine=freetype", "vnc:size=800x600",
                                 "linuxfb", "eglfs", "wayland", "wayland-egl", "offscreen;xcb"])
def test_platforms_other_than_xcb_are_left_alone(qpa):
    assert display_problem({"QT_QPA_PLATFORM": qpa}, platform="linux", xcb_missing=never_called) is None


def test_xcb_asked_for_without_display():
    message = one_line(display_problem({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, platform="linux",
                                       xcb_missing=never_called))
    assert "QT_QPA_PLATFORM=xcb but DISPLAY is unset" in message
    assert "--screenshot" in message


def test_display_with_everything_installed():
    assert display_problem({"DISPLAY": ":0"}, platform="linux", xcb_missing=list) is None


def test_display_with_libraries_missing_names_them_and_the_apt_line():
    missing = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    message = one_line(display_problem({"DISPLAY": ":1"}, platform="linux", xcb_missing=lambda: missing))
    assert "DISPLAY=:1" in message and "xcb" in message
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in message
    assert re.search(r"(sudo )?apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1$", message), message


def test_xcb_forced_on_wayland_session_is_checked():
    message = display_problem({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"},
                              platform="linux", xcb_missing=lambda: ["libxcb-icccm.so.4"])
    assert message and "apt-get install libxcb-icccm4" in message


def test_wayland_session_is_left_to_qt():
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, platform="linux", xcb_missing=never_called) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, platform="linux",
                           xcb_missing=never_called) is None


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_no_display_variables_needed_off_linux(platform):
    assert display_problem({}, platform=platform, xcb_missing=never_called) is None


def test_apt_hint_names_packages_once_and_unknown_libraries_apart():
    hint = apt_hint(["libGL.so.1", "libGLX.so.0", "libweird.so.3"])
    assert re.fullmatch(r"install them with: (sudo )?apt-get install libgl1; find the package providing "
                        r"libweird\.so\.3 \(apt-file search NAME\)", hint), hint


@pytest.fixture
def fake_ldd(tmp_path, monkeypatch):
    """An ldd first on PATH that answers from answers/<file name> (and notes what it was asked)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = bin_dir / "ldd"
    ldd.write_text('#!/bin/sh\necho "$1" >> "$(dirname "$0")/asked"\n'
                   'cat "$(dirname "$0")/../answers/$(basename "$1")"\n')
    (tmp_path / "answers").mkdir()
    ldd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir / "asked"


def test_missing_libraries_reads_ldds_not_found_lines(tmp_path, fake_ldd):
    lib = tmp_path / "libqxcb.so"
    lib.write_bytes(b"")
    (tmp_path / "answers" / "libqxcb.so").write_text(
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibQt6XcbQpa.so.6 => /x/Qt/lib/libQt6XcbQpa.so.6 (0x00007f01)\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f02)\n")
    assert missing_libraries([lib, tmp_path / "absent.so"]) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert fake_ldd.read_text().splitlines() == [str(lib)]  # files that are not there are not asked about


def test_xcb_missing_libraries_asks_about_the_plugin_and_xcbqpa(tmp_path, fake_ldd):
    qt = tmp_path / "Qt"
    plugin = qt / "plugins" / "platforms" / "libqxcb.so"
    qpa = qt / "lib" / "libQt6XcbQpa.so.6"
    for f, out in ((plugin, "\tlibxcb-cursor.so.0 => not found\n"), (qpa, "\tlibX11-xcb.so.1 => not found\n")):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")
        (tmp_path / "answers" / f.name).write_text(out)
    assert display.xcb_missing_libraries(qt) == ["libX11-xcb.so.1", "libxcb-cursor.so.0"]
    assert fake_ldd.read_text().splitlines() == [str(plugin), str(qpa)]


def test_no_ldd_means_nothing_known_missing(tmp_path, monkeypatch):
    lib = tmp_path / "libqxcb.so"
    lib.write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert missing_libraries([lib]) == []


def test_the_installed_qt_is_found_and_checked():
    qt = display.qt_dir()
    assert qt is not None and (qt / "plugins" / "platforms").is_dir()
    missing = display.xcb_missing_libraries()  # whatever this machine lacks, as sonames
    assert all(re.fullmatch(r"lib\S+\.so(\.\d+)*", so) for so in missing), missing


def test_table_matches_packaging_debian_deps_sh():
    """packaging/dev.sh installs by the same soname -> package table."""
    text = (ROOT / "packaging" / "debian-deps.sh").read_text()
    shell = {}
    for sonames, package in re.findall(r"([\w.+|-]+)\) echo ([\w.+-]+);;", text):
        for soname in sonames.split("|"):
            shell[soname] = package
    assert shell == DEBIAN_PACKAGES


def test_checking_loads_no_qt():
    code = (
        "import sys\n"
        "from liqscope.gui.display import display_problem\n"
        "print(display_problem({}))\n"
        "print(display_problem({'DISPLAY': ':99'}))\n"  # the real ldd on the real plugin
        "print(display_problem({'QT_QPA_PLATFORM': 'offscreen'}))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))\n"
        "assert 'PySide6.QtGui' not in sys.modules, loaded\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("no display to open the window on")
    assert lines[2] == "None"
