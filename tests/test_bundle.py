"""The desktop bundle: build it with packaging/build, launch the binary, look at what it drew.

Slow (a PyInstaller build, about a minute with a warm build venv, a few more from scratch);
CI runs it. Skipped only when PyInstaller cannot be installed (packaging/build exit 3).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist" / "Liqscope"
BINARY = DIST / "liqscope"
# 482 MB on Linux x86-64 with PySide6 6.11 / pyarrow 26 / deltalake 1.6 (its Rust engine alone is 128 MB,
# unstrippable); the budget catches a lost exclude
SIZE_BUDGET_MB = 520


def _listing(folder: Path) -> dict[str, tuple]:
    """Every entry under folder with what would change if something wrote there."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _clean_env(tmp: Path) -> dict[str, str]:
    """A first-run user: empty home and XDG folders, no overrides pointing anywhere else."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LIQSCOPE_", "PYTHON", "XDG_")) and k not in ("VIRTUAL_ENV", "QT_PLUGIN_PATH")}
    home = tmp / "home"
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_STATE_HOME=str(home / ".local/state"),
               QT_QPA_PLATFORM="offscreen")
    home.mkdir()
    return env


@pytest.fixture(scope="module")
def bundle():
    t0 = time.monotonic()
    res = subprocess.run([str(ROOT / "packaging" / "build")], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    if res.returncode == 3:
        pytest.skip("PyInstaller could not be installed: " + res.stderr.strip().splitlines()[-1])
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    elapsed = time.monotonic() - t0
    size_mb = sum(p.lstat().st_size for p in DIST.rglob("*")) / 1e6
    print(f"\nbundle built in {elapsed:.0f} s, {size_mb:.0f} MB: {res.stdout.strip().splitlines()[-1]}")
    return size_mb


@pytest.mark.slow
def test_bundle_renders_the_first_run_window_and_writes_only_to_user_dirs(bundle, tmp_path):
    from PySide6.QtGui import QImage

    env = _clean_env(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = _listing(DIST)
    shot = tmp_path / "shot.png"
    res = subprocess.run([str(BINARY), "--screenshot", str(shot), "--size", "1200x800"],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr

    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1200, 800)
    colours = {image.pixel(x, y) for x in range(0, 1200, 7) for y in range(0, 800, 7)}
    assert len(colours) > 200, "the screenshot is (nearly) blank"
    # the first-run banner (store empty -> demo data) is drawn near the top
    banner = {image.pixelColor(x, y).name() for x in range(0, 1200, 5) for y in range(0, 140, 2)}
    assert "#5c4a00" in banner

    assert _listing(DIST) == before, "the bundle wrote inside dist/"
    assert list(cwd.iterdir()) == []
    # whatever it wrote (settings, caches) is in platformdirs' per-user folders
    home = tmp_path / "home"
    user_dirs = [home / ".config" / "liqscope", home / ".local/share" / "liqscope", home / ".cache" / "liqscope",
                 home / ".local/state" / "liqscope"]
    written = [p for p in home.rglob("*") if p.is_file()]
    assert all(any(d in p.parents for d in user_dirs) for p in written), written


@pytest.mark.slow
def test_bundle_commands_find_version_and_demo_data(bundle, tmp_path):
    env = _clean_env(tmp_path)
    res = subprocess.run([str(BINARY), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == f"liqscope {version('liqscope')}"
    res = subprocess.run([str(BINARY), "summary", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)  # the bundled demo Parquet, read by the bundled pyarrow
    assert summary["source"].startswith("Demo data")
    assert summary["total_usd"] == pytest.approx(860e6, rel=1e-3)


@pytest.mark.slow
def test_bundle_leaves_out_unused_qt_and_stays_within_budget(bundle):
    internal = DIST / "_internal"
    names = [str(p.relative_to(internal)) for p in internal.rglob("*")]
    for unwanted in ("PySide6/QtNetwork", "PySide6/QtQml", "PySide6/QtQuick", "PySide6/Qt/translations",
                     "PySide6/Qt/qml", "libQt6Quick", "libQt6Qml", "libQt6WebEngine", "libQt6Network",
                     "platformthemes/libqgtk3", "libarrow_flight", "tkinter", "PyQt5"):
        assert not [n for n in names if unwanted in n], unwanted
    assert (internal / "liqscope" / "resources" / "demo" / "candles.parquet").is_file()
    assert (internal / "liqscope" / "resources" / "icons" / "liqscope-256.png").is_file()
    assert not [p for p in internal.rglob("*") if p.is_symlink() and not p.exists()], "dangling symlinks"
    assert bundle < SIZE_BUDGET_MB


def _write_user_files(folder: Path) -> list[Path]:
    """A small Binance-style klines file and liquidation snapshot (the formats users download)."""
    folder.mkdir()
    start = 1740787200000  # 2025-03-01T00:00Z
    kl = ["open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
          "taker_buy_quote_volume,ignore"]
    price = 84000.0
    for i in range(240):
        t = start + i * 60_000
        o, c = price, price + (15 if i % 7 < 4 else -12)
        kl.append(f"{t},{o:.1f},{max(o, c) + 5:.1f},{min(o, c) - 5:.1f},{c:.1f},12.5,{t + 59_999},1050000,300,6,504000,0")
        price = c
    liq = ["time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
           "last_fill_quantity,accumulated_fill_quantity"]
    for i in range(40):
        t = start + i * 360_000 + 1234
        side = "SELL" if i % 3 else "BUY"
        liq.append(f"{t},{side},LIMIT,IOC,0.500,84100.0,84100.0,FILLED,0.500,0.500")
    paths = [folder / "BTCUSDT-1m-2025-03-01.csv", folder / "BTCUSDT-liquidationSnapshot-2025-03-01.csv"]
    paths[0].write_text("\n".join(kl) + "\n")
    paths[1].write_text("\n".join(liq) + "\n")
    return paths


@pytest.mark.slow
def test_bundle_imports_into_the_user_store_and_then_shows_it_without_the_banner(bundle, tmp_path):
    from PySide6.QtGui import QImage

    env = _clean_env(tmp_path)
    files = _write_user_files(tmp_path / "downloads")
    before = _listing(DIST)
    res = subprocess.run([str(BINARY), "import", *map(str, files)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    store = tmp_path / "home" / ".local/share" / "liqscope"
    assert any(p.suffix == ".parquet" for p in store.rglob("*")), "nothing stored in the user data dir"

    shot = tmp_path / "store.png"
    res = subprocess.run([str(BINARY), "--screenshot", str(shot), "--size", "1200x800"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1200, 800)
    top = {image.pixelColor(x, y).name() for x in range(0, 1200, 5) for y in range(0, 140, 2)}
    assert "#5c4a00" not in top, "the demo banner is shown over the user's own data"
    assert _listing(DIST) == before, "the bundle wrote inside dist/"
