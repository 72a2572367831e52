"""liqscope.models never imports Qt: every module imported in a fresh interpreter, then sys.modules checked."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys, traceback
    import liqscope.models as root

    imported, errors = [root.__name__], {}

    def onerror(name):
        errors[name] = traceback.format_exc(limit=3)

    for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".", onerror=onerror):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except BaseException:
            errors[info.name] = traceback.format_exc(limit=3)

    gui = sorted(m for m in sys.modules
                 if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "PySide2")
                 or m.startswith("liqscope.gui"))
    print(json.dumps({"imported": imported, "errors": errors, "gui": gui}))
    """
)


def test_models_import_without_qt():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert not report["errors"], "modules that failed to import:\n" + "\n".join(
        f"{name}:\n{tb}" for name, tb in report["errors"].items())
    # the walk really covered the package
    for name in ("cli", "dataset", "demo", "format", "liquidations", "paths", "prices", "schema", "sources",
                 "timeutil"):
        assert f"liqscope.models.{name}" in report["imported"]
    assert report["gui"] == [], f"Qt or GUI modules imported by liqscope.models: {report['gui']}"
    assert "PySide6" not in report["gui"] and "pyqtgraph" not in report["gui"]


def test_summary_command_runs_without_qt(tmp_path):
    """The headless CLI path (parse, load demo, summarise) must not pull Qt in either."""
    code = (
        "import sys, io, contextlib\n"
        "from liqscope.models import cli\n"
        f"with contextlib.redirect_stdout(io.StringIO()): rc = cli.main(['--data-dir', {str(tmp_path)!r}, 'summary', '--json'])\n"
        "assert rc == 0, rc\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
