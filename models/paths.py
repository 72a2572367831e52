"""Per-user directories (platformdirs), with overrides for tests and portable use."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "liqscope"
DATA_DIR_ENV = "LIQSCOPE_DATA_DIR"
_override: Path | None = None


_REMOTE = ("s3://", "s3a://")


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Set by the CLI's global ``--data-dir`` (a folder or ``s3://bucket/prefix``); wins over the environment."""
    global _override
    _override = (str(path) if str(path).startswith(_REMOTE) else Path(path).expanduser()) if path else None


def data_location() -> Path | str:
    """Where the store lives: a local folder (Path) or an object-store URI (str, e.g. ``s3://bucket/prefix``)."""
    if _override is not None:
        return _override
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return env if env.startswith(_REMOTE) else Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def data_dir() -> Path:
    """The local data folder (for the recorder's journal and other local files); for a store on object
    storage, the platform's data folder."""
    where = data_location()
    return where if isinstance(where, Path) else Path(platformdirs.user_data_dir(APP, appauthor=False))


CONFIG_DIR_ENV = "LIQSCOPE_CONFIG_DIR"


def config_dir() -> Path:
    """Settings folder; ``LIQSCOPE_CONFIG_DIR`` redirects it (tests, portable installs)."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


CACHE_DIR_ENV = "LIQSCOPE_CACHE_DIR"


def cache_dir() -> Path:
    """Derived data that can be recomputed at any time (the store overview cache)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def resources_dir() -> Path:
    """Bundled resources; works installed, editable, and inside a PyInstaller bundle."""
    from liqscope import resources

    return Path(resources.__file__).resolve().parent


def demo_dir() -> Path:
    return resources_dir() / "demo"
