"""packaging/prune.py: which libraries a bundle keeps once unwanted plugins are removed."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))
from prune import is_root, prune  # noqa: E402

NEEDS = {
    "/s/QtGui.abi3.so": ["libQt6Gui.so.6"],
    "/s/Qt/lib/libQt6Gui.so.6": ["libQt6Core.so.6", "libfreetype.so.6"],
    "/s/Qt/lib/libQt6Core.so.6": ["libicuuc.so.73"],
    "/s/libicuuc.so.73": [],
    "/s/libfreetype.so.6": ["libpng16.so.16"],
    "/s/libpng16.so.16": [],
    "/s/qxcb.so": ["libxcb.so.1"],
    "/s/libxcb.so.1": [],
    "/s/libcairo.so.2": ["libpixman-1.so.0"],  # only the removed GTK theme needed these
    "/s/libpixman-1.so.0": [],
    "/s/pyarrow/lib.so": ["libarrow.so.2600"],
    "/s/pyarrow/libarrow.so.2600": [],
    "/s/pyarrow/libarrow_flight.so.2600": [],
}
TOC = [
    ("PySide6/QtGui.abi3.so", "/s/QtGui.abi3.so", "EXTENSION"),
    ("PySide6/Qt/lib/libQt6Gui.so.6", "/s/Qt/lib/libQt6Gui.so.6", "BINARY"),
    ("PySide6/Qt/lib/libQt6Core.so.6", "/s/Qt/lib/libQt6Core.so.6", "BINARY"),
    ("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
    ("libicuuc.so.73", "/s/libicuuc.so.73", "BINARY"),
    ("libfreetype.so.6", "/s/libfreetype.so.6", "BINARY"),
    ("libpng16.so.16", "/s/libpng16.so.16", "BINARY"),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", "/s/qxcb.so", "BINARY"),
    ("libxcb.so.1", "/s/libxcb.so.1", "BINARY"),
    ("libcairo.so.2", "/s/libcairo.so.2", "BINARY"),
    ("libpixman-1.so.0", "/s/libpixman-1.so.0", "BINARY"),
    # an extension module that a hook collected as a plain BINARY
    ("pyarrow/lib.cpython-311-x86_64-linux-gnu.so", "/s/pyarrow/lib.so", "BINARY"),
    ("pyarrow/libarrow.so.2600", "/s/pyarrow/libarrow.so.2600", "BINARY"),
    ("pyarrow/libarrow_flight.so.2600", "/s/pyarrow/libarrow_flight.so.2600", "BINARY"),
    ("libarrow_flight.so.2600", "pyarrow/libarrow_flight.so.2600", "SYMLINK"),
    ("libpython3.11.so.1.0", "/s/libpython3.11.so.1.0", "BINARY"),
]


def needed(src):
    return NEEDS.get(src, [])


def test_roots_are_what_python_qt_and_the_bootloader_load():
    roots = {e[0] for e in TOC if is_root(e)}
    assert roots == {"PySide6/QtGui.abi3.so", "PySide6/Qt/plugins/platforms/libqxcb.so",
                     "pyarrow/lib.cpython-311-x86_64-linux-gnu.so", "libpython3.11.so.1.0"}


def test_orphans_and_their_links_are_dropped_the_rest_kept():
    kept, dropped = prune(TOC, needed)
    assert {e[0] for e in dropped} == {"libcairo.so.2", "libpixman-1.so.0", "pyarrow/libarrow_flight.so.2600",
                                       "libarrow_flight.so.2600"}
    assert len(kept) + len(dropped) == len(TOC)
    kept_names = {e[0] for e in kept}
    # transitive link-time dependencies survive, and so does the symlink to a kept library
    assert {"libicuuc.so.73", "libpng16.so.16", "libQt6Core.so.6", "libxcb.so.1"} <= kept_names


def test_a_symlink_to_a_removed_library_is_dropped_even_if_its_name_is_needed():
    toc = [("m.cpython-311-x86_64-linux-gnu.so", "/s/m.so", "EXTENSION"),
           ("libx.so.1", "sub/libx.so.1", "SYMLINK")]  # target not collected
    kept, dropped = prune(toc, lambda src: ["libx.so.1"] if src == "/s/m.so" else [])
    assert [e[0] for e in kept] == ["m.cpython-311-x86_64-linux-gnu.so"]
    assert [e[0] for e in dropped] == ["libx.so.1"]


def _spec_list(name: str) -> list[str]:
    """A list literal from packaging/liqscope.spec, read without running PyInstaller."""
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[1] / "packaging" / "liqscope.spec").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in liqscope.spec")


def _imported_modules(root: Path) -> dict[str, str]:
    """Every module our code imports (dotted name -> first file), at any depth, by the AST."""
    import ast

    found = {}
    for folder in ("models", "gui"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                else:
                    continue
                for name in names:
                    found.setdefault(name, str(path.relative_to(root)))
    return found


def test_the_bundle_excludes_no_module_the_app_imports():
    """Excluding a Qt or pyarrow module someone starts using would break only the bundle."""
    excluded = _spec_list("EXCLUDE_MODULES")
    imported = _imported_modules(Path(__file__).resolve().parents[1])
    clashes = {name: where for name, where in imported.items()
               if any(name == ex or name.startswith(ex + ".") for ex in excluded)}
    assert not clashes, f"imported by the app but excluded in packaging/liqscope.spec: {clashes}"
