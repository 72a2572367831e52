"""Drop shared libraries from a PyInstaller binaries TOC that nothing left in it loads.

Why: the spec removes plugins and libraries we do not want (the GTK platform theme, the
pyarrow Flight bridge, ...), but PyInstaller has already added *their* link-time
dependencies (cairo, pango, libarrow_flight, ...) as separate entries. Walking the
``DT_NEEDED`` graph again from what stays finds those orphans, without a hand-kept list
that would go stale with every Qt or pyarrow release.
Used by liqscope.spec; kept as a module so tests can exercise it on a synthetic TOC.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable

Entry = tuple[str, str, str]  # (dest_name, src_name, typecode), as in PyInstaller's TOC

# Python extension modules; hooks sometimes collect these as plain BINARY entries.
_EXTENSION = re.compile(r"\.(cpython-[^/]*|abi3)\.so$")


def is_root(entry: Entry) -> bool:
    """Entries loaded by something other than the dynamic linker: Python's import system
    (extension modules), Qt's plugin loader, and the bootloader (libpython)."""
    dest, _src, typecode = entry
    dest = dest.replace(os.sep, "/")
    if typecode not in ("BINARY", "SYMLINK"):
        return True
    name = posixpath.basename(dest)
    return bool(_EXTENSION.search(name)) or "/Qt/plugins/" in f"/{dest}" or name.startswith("libpython")


def prune(entries: Iterable[Entry], needed: Callable[[str], Iterable[str]]) -> tuple[list[Entry], list[Entry]]:
    """Split ``entries`` into (kept, dropped).

    ``needed(src_path)`` returns the sonames a file links against (its ``DT_NEEDED``).
    A library is kept when reachable from a root by soname; a SYMLINK entry is kept when
    reachable and its target is kept (so the bundle never holds a dangling link).
    """
    entries = list(entries)
    by_name: dict[str, list[int]] = {}
    by_dest: dict[str, int] = {}
    for i, (dest, _src, _tc) in enumerate(entries):
        dest = dest.replace(os.sep, "/")
        by_name.setdefault(posixpath.basename(dest), []).append(i)
        by_dest[posixpath.normpath(dest)] = i

    reached: set[int] = set()
    todo = [i for i, e in enumerate(entries) if is_root(e)]
    while todo:
        i = todo.pop()
        if i in reached:
            continue
        reached.add(i)
        dest, src, typecode = entries[i]
        if typecode == "SYMLINK":
            target = posixpath.normpath(posixpath.join(posixpath.dirname(dest.replace(os.sep, "/")), src))
            if target in by_dest:
                todo.append(by_dest[target])
            continue
        for soname in needed(src):
            todo.extend(by_name.get(posixpath.basename(soname), ()))

    def target_kept(i: int) -> bool:
        dest, src, typecode = entries[i]
        if typecode != "SYMLINK":
            return True
        target = posixpath.normpath(posixpath.join(posixpath.dirname(dest.replace(os.sep, "/")), src))
        return by_dest.get(target) in reached

    kept = [e for i, e in enumerate(entries) if i in reached and target_kept(i)]
    dropped = [e for i, e in enumerate(entries) if not (i in reached and target_kept(i))]
    return kept, dropped


def elf_needed(path: str) -> list[str]:
    """Sonames in ``DT_NEEDED`` of an ELF file, via PyInstaller's own dependency reader."""
    from PyInstaller.depend import bindepend

    return [name for name, _full in bindepend.get_imports(path)]
