"""Can the window open here? Checked before Qt is loaded, so that it never aborts the process.

Without a display, or when Debian libraries that Qt's xcb platform plugin links to are missing,
Qt prints "could not connect to display" / a hint about xcb-cursor0 and aborts (SIGABRT, exit 134).
``display_problem()`` says what is actually wrong, in one line, and what to do instead.

Qt-free: nothing here imports PySide6's Qt modules (PySide6 is only located, never imported).
"""
from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

# Qt platform plugins that draw without any display server.
_HEADLESS_PLATFORMS = {"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"}

_ALTERNATIVES = "use --screenshot FILE.png, run under xvfb-run, or use a subcommand such as `liqscope summary`"

# soname -> Debian package (bookworm names; close enough on Ubuntu). The same table as
# packaging/debian-deps.sh's deb_for (tests/gui/test_display.py keeps the two equal).
DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libGLX.so.0": "libgl1", "libOpenGL.so.0": "libgl1",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0", "libdbus-1.so.3": "libdbus-1-3",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libxcb.so.1": "libxcb1",
    "libSM.so.6": "libsm6", "libICE.so.6": "libice6",
}


def qt_dir() -> Path | None:
    """PySide6's bundled Qt folder (lib/, plugins/), found without importing PySide6."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "Qt"


def missing_libraries(files: Iterable[str | Path]) -> list[str]:
    """Sonames that ``ldd`` reports "not found" for any of files (files that do not exist are skipped).

    Empty when nothing is missing, and when ``ldd`` is not there to ask.
    """
    missing = set()
    for f in files:
        if not os.path.exists(f):
            continue
        try:
            res = subprocess.run(["ldd", str(f)], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return []
        for line in res.stdout.splitlines():
            name, sep, where = line.partition("=>")
            if sep and where.strip() == "not found":
                missing.add(name.strip())
    return sorted(missing)


def xcb_missing_libraries(qt: Path | None = None) -> list[str]:
    """Libraries Qt's xcb platform plugin (libqxcb.so and libQt6XcbQpa) needs and cannot find."""
    qt = qt or qt_dir()
    if qt is None:
        return []
    files = [qt / "plugins" / "platforms" / "libqxcb.so", *sorted(glob.glob(str(qt / "lib" / "libQt6XcbQpa.so.*")))]
    return missing_libraries(files)


def apt_hint(sonames: Iterable[str]) -> str:
    """What to install for sonames, e.g. "install them with: sudo apt-get install libxcb-icccm4"."""
    sonames = list(sonames)
    packages = sorted({DEBIAN_PACKAGES[s] for s in sonames if s in DEBIAN_PACKAGES})
    unknown = [s for s in sonames if s not in DEBIAN_PACKAGES]
    parts = []
    if packages:
        sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
        parts.append(f"install them with: {sudo}apt-get install {' '.join(packages)}")
    if unknown:
        parts.append(f"find the package{'s' if len(unknown) > 1 else ''} providing {', '.join(unknown)}"
                     " (apt-file search NAME)")
    return "; ".join(parts)


def display_problem(environ: Mapping[str, str] = os.environ, platform: str = sys.platform,
                    xcb_missing: Callable[[], list[str]] = xcb_missing_libraries) -> str | None:
    """Why the window cannot open here, in one line (no "liqscope: error:" prefix), or None if it can.

    Only for the window: ``--screenshot`` and the subcommands need no display. Respects
    QT_QPA_PLATFORM: offscreen, minimal, vnc, ... need no display; wayland is left to Qt.
    With DISPLAY set (and Qt going to use xcb) it looks for the Debian libraries xcb lacks.
    """
    if platform in ("win32", "cygwin", "darwin"):
        return None
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    # "name:option=value;fallback": the first platform is the one Qt tries first
    name = requested.split(";")[0].split(":")[0].strip().lower()
    if name and name != "xcb":
        return None  # a headless platform (offscreen, vnc, ...), wayland, or one of the user's choosing
    display, wayland = environ.get("DISPLAY", ""), environ.get("WAYLAND_DISPLAY", "")
    if name == "xcb" and not display:
        return f"no display to open the window on (QT_QPA_PLATFORM={requested} but DISPLAY is unset): {_ALTERNATIVES}"
    if not display and not wayland:
        return f"no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): {_ALTERNATIVES}"
    if not display or (wayland and name != "xcb"):
        return None  # Qt picks its wayland plugin; not checked here
    missing = xcb_missing()
    if not missing:
        return None
    return (f"Qt cannot open the window on DISPLAY={display}: its xcb platform plugin needs "
            f"{', '.join(missing)}, missing on this system; {apt_hint(missing)}")


if __name__ == "__main__":  # python -m liqscope.gui.display: the check alone
    problem = display_problem()
    print(f"liqscope: error: {problem}" if problem else "liqscope: the window can open here")
    sys.exit(2 if problem else 0)
