"""Persisted preferences: an INI file in platformdirs' user config dir."""
from __future__ import annotations

import pandas as pd
from PySide6.QtCore import QSettings

from liqscope.models.paths import config_dir

from .state import View


def open_settings() -> QSettings:
    path = config_dir() / "liqscope.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def save_view(s: QSettings, view: View) -> None:
    s.setValue("view/asset", view.asset)
    s.setValue("view/exchange", view.exchange)
    s.setValue("view/theme", view.theme)
    s.setValue("view/price_style", view.price_style)
    s.setValue("view/liq_scope", view.liq_scope)
    if view.start is not None and view.end is not None:
        s.setValue("view/start", view.start.isoformat())
        s.setValue("view/end", view.end.isoformat())


def load_view(s: QSettings) -> dict:
    """Saved fields that parse; the caller checks them against the dataset."""
    out = {}
    for key in ("asset", "exchange", "theme", "price_style", "liq_scope"):
        v = s.value(f"view/{key}")
        if v:
            out[key] = str(v)
    try:
        start, end = s.value("view/start"), s.value("view/end")
        if start and end:
            out["start"], out["end"] = pd.Timestamp(start), pd.Timestamp(end)
    except ValueError:
        pass
    return out
