"""packaging/dev.sh's apt step (packaging/debian-deps.sh) against a fake apt-get first on PATH.

The fake never touches the system: it logs its arguments and answers as apt-get would when
another process holds dpkg's lock, when that process finishes, or when a package is unknown.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WAITING = "liqscope: waiting for another apt/dpkg process to finish…"

FAKE_APT_GET = r"""#!/bin/sh
# fake apt-get: FAKE_APT_MODE = ok | locked | released | unknown-package
echo "$*" >> "$FAKE_APT_LOG"
waits=no
case " $* " in *" DPkg::Lock::Timeout="*) waits=yes;; esac
locked() {
  if [ "$1" = update ]; then
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
    echo "N: Be aware that removing the lock file is not a solution and may break your system." >&2
    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
  else
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
    echo "N: Be aware that removing the lock file is not a solution and may break your system." >&2
    echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
  fi
  exit 100
}
for a in "$@"; do case $a in update|install) cmd=$a;; esac; done
case $FAKE_APT_MODE in
  locked) locked "$cmd";;
  released)
    [ "$waits" = yes ] || locked "$cmd"
    sleep 0.2  # the other process finishes; apt takes the lock
    echo "Reading package lists..."; exit 0;;
  unknown-package)
    [ "$cmd" = update ] && { echo "Hit:1 http://deb.debian.org/debian bookworm InRelease"; exit 0; }
    echo "Reading package lists..."
    echo "E: Unable to locate package libnope1" >&2; exit 100;;
  ok) echo "Reading package lists..."; echo "Setting up libfoo1 (1.0-1) ..."; exit 0;;
esac
echo "fake apt-get: bad FAKE_APT_MODE" >&2; exit 99
"""


def apt_install(tmp_path: Path, mode: str, *pkgs: str, timeout: str = "300"
                ) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run dev.sh's apt step as dev.sh does (bash, set -euo pipefail) with the fake apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "apt-get"
    fake.write_text(FAKE_APT_GET)
    fake.chmod(0o755)
    log = tmp_path / "apt-calls.log"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_APT_MODE=mode,
               FAKE_APT_LOG=str(log), LIQSCOPE_APT_LOCK_TIMEOUT=timeout)
    script = 'set -euo pipefail; . packaging/debian-deps.sh; apt_install "$@"; echo "after apt_install"'
    res = subprocess.run(["bash", "-c", script, "dev.sh", *pkgs], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return res, calls


def lock_timeouts(calls: list[str]) -> list[int]:
    return [int(m) for c in calls for m in re.findall(r"DPkg::Lock::Timeout=(\d+)", c)]


def test_success_prints_nothing_of_apts(tmp_path):
    res, calls = apt_install(tmp_path, "ok", "libfoo1", "libbar2")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert res.stdout == "after apt_install\n"  # apt's own chatter is swallowed
    assert calls == ["-q update", "-q install -y libfoo1 libbar2"]


def test_lock_held_then_released_waits_with_apts_timeout_and_says_so_once(tmp_path):
    res, calls = apt_install(tmp_path, "released", "libfoo1", "libbar2")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [WAITING]  # once, though update and install both met the lock
    assert res.stdout == "after apt_install\n"
    # each step: a try, then the same command waiting for the lock with apt's own option
    assert [re.sub(r" -o DPkg::Lock::Timeout=\d+", " -o WAIT", c) for c in calls] == [
        "-q update", "-q -o WAIT update", "-q install -y libfoo1 libbar2", "-q -o WAIT install -y libfoo1 libbar2"]
    waits = lock_timeouts(calls)
    assert all(0 < w <= 300 for w in waits), waits  # one deadline for both steps, not 300 s each


def test_lock_never_released_gives_one_line_naming_the_install_command(tmp_path):
    res, calls = apt_install(tmp_path, "locked", "libfoo1", "libbar2")
    assert res.returncode == 1
    assert "after apt_install" not in res.stdout  # set -e: dev.sh stops (it exits 1)
    lines = res.stderr.splitlines()
    assert len(lines) == 2, res.stderr
    assert lines[0] == WAITING
    assert lines[1].startswith("liqscope: ")
    assert lines[1].endswith("apt-get install libfoo1 libbar2")
    assert "Could not get lock /var/lib/apt/lists/lock" in lines[1]  # why, inside our one line
    assert not any(line.startswith(("E:", "N:")) for line in lines)
    assert calls[-1].startswith("-q -o DPkg::Lock::Timeout=") and calls[-1].endswith(" update")


def test_spent_deadline_passes_zero_wait(tmp_path):
    res, calls = apt_install(tmp_path, "locked", "libfoo1", timeout="0")
    assert res.returncode == 1
    assert lock_timeouts(calls) == [0]


@pytest.mark.parametrize("pkgs", [("libnope1",), ("libfoo1", "libnope1")])
def test_other_apt_failure_gives_one_line_without_waiting(tmp_path, pkgs):
    res, calls = apt_install(tmp_path, "unknown-package", *pkgs)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "Unable to locate package libnope1" in lines[0]
    assert lines[0].endswith("apt-get install " + " ".join(pkgs))
    assert not lock_timeouts(calls)


def test_dev_sh_parses_and_keeps_its_usage():
    assert subprocess.run(["bash", "-n", str(ROOT / "packaging" / "dev.sh")]).returncode == 0
    res = subprocess.run(["bash", str(ROOT / "packaging" / "dev.sh"), "bogus"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 2
    assert res.stderr.strip() == "usage: packaging/dev.sh run|test [args...]"
