"""Colours used consistently across the app (Okabe-Ito palette: colour-blind safe)."""
from __future__ import annotations

from dataclasses import dataclass

# Long liquidations vermillion, short liquidations blue: distinguishable with
# protanopia/deuteranopia, unlike the usual red/green.
LONG_COLOR = "#D55E00"
SHORT_COLOR = "#0072B2"

EXCHANGE_COLORS = {
    "binance": "#E69F00",
    "okx": "#56B4E9",
    "bybit": "#009E73",
    "bitget": "#CC79A7",
    "gate": "#F0E442",
}
_FALLBACK = ["#999999", "#882255", "#44AA99", "#DDCC77", "#117733", "#AA4499"]


DISPLAY_NAMES = {"binance": "Binance", "okx": "OKX", "bybit": "Bybit", "bitget": "Bitget", "gate": "Gate",
                 "deribit": "Deribit", "bitmex": "BitMEX", "hyperliquid": "Hyperliquid"}


def display_name(exchange: str) -> str:
    return DISPLAY_NAMES.get(exchange, exchange.capitalize())


def exchange_color(name: str, index: int | None = None) -> str:
    """Fixed colour per exchange everywhere; unknown names get a stable fallback by name."""
    if name in EXCHANGE_COLORS:
        return EXCHANGE_COLORS[name]
    import zlib

    return _FALLBACK[(zlib.crc32(name.encode()) if index is None else index) % len(_FALLBACK)]


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    foreground: str
    grid_alpha: float
    candle_up: str
    candle_down: str
    crosshair: str
    panel: str


DARK = Theme("dark", "#14161a", "#d8dde6", 0.18, "#26a69a", "#ef5350", "#8a94a6", "#1c1f25")
LIGHT = Theme("light", "#ffffff", "#1d2330", 0.25, "#1a8f84", "#d8443f", "#6b7385", "#f3f4f7")
THEMES = {"dark": DARK, "light": LIGHT}


def palette(theme: Theme):
    """A Fusion palette so menus, toolbars and inputs follow the theme too."""
    from PySide6.QtGui import QColor, QPalette

    bg, fg, panel = QColor(theme.background), QColor(theme.foreground), QColor(theme.panel)
    pal = QPalette()
    R = QPalette.ColorRole
    for role, color in ((R.Window, panel), (R.WindowText, fg), (R.Base, bg), (R.AlternateBase, panel),
                        (R.Text, fg), (R.Button, panel), (R.ButtonText, fg), (R.ToolTipBase, panel),
                        (R.ToolTipText, fg), (R.Highlight, QColor("#0072B2")), (R.HighlightedText, QColor("#ffffff")),
                        (R.PlaceholderText, QColor(theme.crosshair))):
        pal.setColor(role, color)
    pal.setColor(QPalette.ColorGroup.Disabled, R.Text, QColor(theme.crosshair))
    pal.setColor(QPalette.ColorGroup.Disabled, R.ButtonText, QColor(theme.crosshair))
    return pal


def stylesheet(theme: Theme) -> str:
    return f"""
    QMainWindow, QWidget#central {{ background: {theme.background}; color: {theme.foreground}; }}
    QFrame#headline {{ background: {theme.panel}; border-radius: 4px; }}
    QLabel {{ color: {theme.foreground}; }}
    QLabel[role="figure"] {{ font-size: 15pt; font-weight: 600; }}
    QLabel[role="caption"] {{ font-size: 8pt; color: {theme.crosshair}; }}
    QPushButton[role="chip"] {{ border: 1px solid {theme.crosshair}; border-radius: 9px;
        padding: 2px 8px; background: transparent; color: {theme.foreground}; }}
    QPushButton[role="chip"]:hover {{ background: {theme.crosshair}; }}
    """
