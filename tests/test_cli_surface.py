"""The installed `liqscope` command: --version, and --help that documents every command."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from liqscope.gui.main import build_parser, main


def _script() -> str:
    """The console script pip installed next to this interpreter."""
    path = Path(sys.executable).with_name("liqscope")
    return str(path) if path.exists() else shutil.which("liqscope") or pytest.skip("liqscope script not installed")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_version_of_the_installed_command():
    res = subprocess.run([_script(), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert res.stdout.strip() == f"liqscope {version('liqscope')}"


def test_top_level_help_lists_every_command_with_a_description(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    commands = _subparsers(build_parser())
    assert {"summary", "demo"} <= set(commands)
    helps = {a.dest: a.help for a in
             next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))._choices_actions}
    for name in commands:
        assert helps.get(name), f"`{name}` has no one-line help"
        assert f"    {name} " in text, f"`{name}` missing from --help"
    assert "opens the desktop window" in text


def _walk(parser: argparse.ArgumentParser, path: str = "liqscope"):
    yield path, parser
    for name, sub in _subparsers(parser).items():
        yield from _walk(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help():
    """Help text, or at least a list of choices that --help prints."""
    undocumented = []
    for path, parser in _walk(build_parser()):
        for action in parser._actions:
            if action.option_strings and not action.help and not action.choices:
                undocumented.append(f"{path} {action.option_strings[0]}")
    assert not undocumented, f"options without help: {undocumented}"


def test_demo_regenerate_refuses_to_write_inside_a_bundle(monkeypatch, capsys):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert main(["demo", "--regenerate"]) == 2
    assert "read-only" in capsys.readouterr().err
