"""`liqscope record` as a systemd user service: the unit file, its install script, and a
clean stop on SIGTERM (what `systemctl stop` sends), against loopback streams only."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "liqscope-record.service"
INSTALL = ROOT / "packaging" / "install-recorder-service"
sys.path.insert(0, str(ROOT / "tests" / "models" / "connectors"))

from connector_fakes import WSReplay, fixture  # noqa: E402
from liqscope.models.connectors import journal as jr  # noqa: E402


def _unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's settings per section, in order (comments left out)."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), [])
            continue
        key, _sep, value = line.partition("=")
        section.append((key.strip(), value.strip()))
    return out


def _get(unit, section, key) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def test_the_unit_restarts_on_failure_and_is_hardened_for_a_user_manager():
    text = UNIT.read_text()
    unit = _unit(text)
    assert _get(unit, "Service", "ExecStart") == ["%h/.local/bin/liqscope record --journal-retention 90"]
    assert _get(unit, "Service", "Restart") == ["on-failure"] and _get(unit, "Service", "RestartSec") == ["10"]
    assert _get(unit, "Unit", "StartLimitIntervalSec") and _get(unit, "Unit", "StartLimitBurst")
    assert _get(unit, "Service", "NoNewPrivileges") == ["yes"]
    assert _get(unit, "Service", "KillSignal") == ["SIGTERM"]
    assert _get(unit, "Install", "WantedBy") == ["default.target"]
    assert "#Environment=LIQSCOPE_DATA_DIR=" in text  # documented, off by default
    # Options that need a user namespace in a user unit (refused or failing on many systems) stay out.
    keys = {k for settings in unit.values() for k, _v in settings}
    assert not keys & {"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers",
                       "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "User", "Group",
                       "CapabilityBoundingSet", "AmbientCapabilities"}


def _verify(unit_file: Path, home: Path, tmp_path: Path) -> str:
    """What `systemd-analyze --user verify` says about ``unit_file`` (skips where it cannot run)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    run = tmp_path / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(run), "SYSTEMD_LOG_COLOR": "0"}
    res = subprocess.run(["systemd-analyze", "--user", "verify", str(unit_file)], env=env, capture_output=True,
                         text=True, timeout=60)
    said = res.stdout + res.stderr
    if "Failed to initialize manager" in said or "Failed to lookup RuntimeDirectory" in said:
        pytest.skip(f"systemd-analyze --user cannot run here: {said.strip()}")
    return said if res.returncode == 0 else said + f"\n(exit status {res.returncode})"


def _stub(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_the_unit_file_verifies(tmp_path):
    home = tmp_path / "home"
    _stub(home / ".local" / "bin" / "liqscope")  # %h/.local/bin/liqscope must exist to verify
    copy = tmp_path / "unit" / UNIT.name
    copy.parent.mkdir()
    shutil.copy(UNIT, copy)
    said = _verify(copy, home, tmp_path)
    assert UNIT.name not in said and "exit status" not in said, said
    # The check sees mistakes here: a misspelt option is reported.
    copy.write_text(UNIT.read_text().replace("RestartSec=10", "RestartSecs=10"))
    assert "RestartSecs" in _verify(copy, home, tmp_path)


def _fake_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of stand-ins for systemctl and loginctl that only log their arguments."""
    fake, log = tmp_path / "fakebin", tmp_path / "calls.log"
    for name in ("systemctl", "loginctl"):
        _stub(fake / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
    return fake, log


def _install(tmp_path, *args, home=None, path_dirs=(), script=INSTALL, env=None):
    home = home or tmp_path / "home"
    home.mkdir(exist_ok=True)
    fake, _log = _fake_bin(tmp_path)
    environ = {"HOME": str(home), "PATH": os.pathsep.join([*map(str, path_dirs), str(fake), "/usr/bin", "/bin"]),
               "LANG": "C", **(env or {})}
    return subprocess.run(["sh", str(script), *args], env=environ, capture_output=True, text=True, timeout=60)


def _installed(home: Path) -> Path:
    return home / ".config" / "systemd" / "user" / "liqscope-record.service"


def test_install_script_fills_in_the_path_and_runs_no_systemctl(tmp_path):
    liqscope = _stub(tmp_path / "venv" / "bin" / "liqscope")
    res = _install(tmp_path, "--liqscope", str(tmp_path / "venv" / "bin" / ".." / "bin" / "liqscope"))
    assert res.returncode == 0, res.stderr
    unit = _installed(tmp_path / "home")
    want = UNIT.read_text().replace("ExecStart=%h/.local/bin/liqscope record",
                                    f"ExecStart={liqscope} record")
    assert unit.read_text() == want  # only ExecStart changed
    assert "systemctl --user enable --now liqscope-record" in res.stdout
    assert "systemctl --user daemon-reload" in res.stdout and 'loginctl enable-linger "$USER"' in res.stdout
    assert "journalctl --user -u liqscope-record" in res.stdout
    assert not (tmp_path / "calls.log").exists()  # printed, never run
    assert _verify(unit, tmp_path / "home", tmp_path).count("liqscope-record") == 0


def test_install_script_finds_liqscope_on_path_then_in_local_bin(tmp_path):
    on_path = _stub(tmp_path / "bin" / "liqscope")
    res = _install(tmp_path, path_dirs=[tmp_path / "bin"])
    assert res.returncode == 0, res.stderr
    assert f"ExecStart={on_path} record --journal-retention 90\n" in _installed(tmp_path / "home").read_text()
    local = _stub(tmp_path / "home" / ".local" / "bin" / "liqscope")
    res = _install(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert res.returncode == 0, res.stderr
    assert f"ExecStart={local} record" in (tmp_path / "cfg" / "systemd" / "user" / UNIT.name).read_text()


def test_install_script_quotes_a_path_with_spaces(tmp_path):
    liqscope = _stub(tmp_path / "my venv" / "100%" / "liqscope")
    res = _install(tmp_path, f"--liqscope={liqscope}")
    assert res.returncode == 0, res.stderr
    unit = _installed(tmp_path / "home")
    assert f'ExecStart="{tmp_path}/my venv/100%%/liqscope" record' in unit.read_text()
    assert _verify(unit, tmp_path / "home", tmp_path).count("liqscope-record") == 0


def test_install_script_enables_only_when_asked(tmp_path):
    liqscope = _stub(tmp_path / "venv" / "bin" / "liqscope")
    res = _install(tmp_path, "--enable", "--liqscope", str(liqscope))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        "systemctl --user daemon-reload", "systemctl --user enable --now liqscope-record"]
    assert 'loginctl enable-linger "$USER"' in res.stdout  # linger is the user's choice: printed only


def test_install_script_without_a_liqscope_says_so(tmp_path):
    pkg = tmp_path / "checkout" / "packaging"  # a checkout without .venv
    pkg.mkdir(parents=True)
    shutil.copy(INSTALL, pkg)
    shutil.copy(UNIT, pkg)
    res = _install(tmp_path, script=pkg / INSTALL.name)
    assert res.returncode == 1 and "no liqscope command found" in res.stderr
    assert not _installed(tmp_path / "home").exists()
    res = _install(tmp_path, "--frobnicate", script=pkg / INSTALL.name)
    assert res.returncode == 2 and "unknown option: --frobnicate" in res.stderr


@pytest.mark.parametrize("value,message", [("0", "keep at least 1 day"), ("-3", "keep at least 1 day"),
                                           ("ninety", "is not a whole number of days")])
def test_journal_retention_needs_a_day_or_more(value, message, capsys):
    from liqscope.models import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["record", "--journal-retention", value])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_journal_retention_is_for_recording(capsys):
    from liqscope.models import cli

    assert cli.main(["record", "--replay-journal", "--journal-retention", "5"]) == 2
    assert "--journal-retention applies when recording" in capsys.readouterr().err


# -- SIGTERM ------------------------------------------------------------------------------
def _record(data: Path, endpoint: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "liqscope.models.cli", "--data-dir", str(data), "record", "--exchange", "binance",
         "--endpoint", f"binance.ws={endpoint}", "--journal-retention", "90"],
        stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait(proc, cond, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the recorder ended before {what}: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}: {proc.communicate()}")


def _journaled(data: Path, kind: str) -> list:
    files = jr.journal_files(data / "journal", "binance")
    return [o for p in files[-1:] for _a, _b, o in jr.iter_lines(p) if o and o["k"] == kind]


def _terminate(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in (err or "")
    return err or ""


def _old_days(data: Path) -> tuple[Path, Path]:
    """A day the last run journaled before midnight (plain, stored) and one 200 days old (compressed)."""
    folder = data / "journal" / "binance"
    folder.mkdir(parents=True)
    now = datetime.now(timezone.utc)
    paths = []
    for days in (1, 200):
        day = (now - timedelta(days=days)).strftime("%Y-%m-%d")
        path = folder / f"{day}.jsonl"
        t = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000) + 1000
        path.write_text(json.dumps({"t": t, "k": "msg", "d": "pong"}) + "\n")
        jr.write_pos(path, path.stat().st_size)
        paths.append(path)
    jr.compress_day(paths[1])
    return paths[0], jr.compressed_path(paths[1])


def test_sigterm_stops_cleanly_and_the_gaps_are_recorded(tmp_path):
    """SIGTERM while connected: exit 0, every frame journaled and stored, the checkpoint at
    the end, when it was last connected saved (the next start records the gap from there),
    yesterday's day file compressed and a compressed day past the retention deleted.
    SIGTERM while disconnected: the open gap is recorded before it exits."""
    store_mod = pytest.importorskip("liqscope.models.store")
    raws = [f["raw"] for f in fixture("binance")["frames"]]
    data = tmp_path / "data"
    yesterday, old = _old_days(data)
    with WSReplay([raws]) as ws:
        proc = _record(data, ws.url)
        _wait(proc, lambda: len(_journaled(data, "msg")) == len(raws), "every frame journaled")
        err = _terminate(proc)
    assert "binance: 5 liquidations, 0 gaps" in err
    assert len(store_mod.open_store(data).liquidations()) == 5
    today = jr.journal_files(data / "journal", "binance")[-1]
    assert not jr.is_compressed(today) and jr.read_pos(today) == today.stat().st_size
    alive = json.loads((data / "journal" / "state.json").read_text())["alive_ms"]["binance"]
    assert not yesterday.exists() and jr.compressed_path(yesterday).exists()
    assert not old.exists()

    # The next start connects: the time no recorder ran is a gap from when the last one was connected.
    with WSReplay([[]]) as ws:
        proc = _record(data, ws.url)
        _wait(proc, lambda: any(g["d"]["reason"] == "recorder not running" for g in _journaled(data, "gap")),
              "the restart gap")
        _terminate(proc)
    gaps = store_mod.open_store(data).gaps()
    restart = gaps[gaps["reason"] == "recorder not running"]
    assert len(restart) == 1 and restart["start"].iloc[0] == pd.Timestamp(alive, unit="ms", tz="UTC")

    # Stopped while it cannot connect: the open gap goes into the journal and the store at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    log = tmp_path / "stderr.log"
    with open(log, "w") as fh:
        proc = _record(data, f"ws://127.0.0.1:{closed}", stderr=fh)
        _wait(proc, lambda: "retrying" in log.read_text(), "a failed connection")
        _terminate(proc)
    gaps = store_mod.open_store(data).gaps()
    assert gaps["reason"].str.endswith("(recorder stopped)").sum() == 1, gaps
    assert "binance: 0 liquidations" in log.read_text()
