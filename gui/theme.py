"""Colours used consistently across the app, all in one place; colour-blind safe.

Two kinds of colour are kept apart, so a reader never takes one for the other:

* **Sides** (which positions were liquidated) are saturated and mid-dark:
  longs vermillion, shorts blue (Okabe-Ito; apart with protanopia and
  deuteranopia, unlike the usual red/green). They mark the price pane, the
  exchange panel's bars, the headline and the app icon.
* **Exchanges** (the liquidation pane's stacked bars, the per-exchange lines
  and chips) are lighter tints — yellow, aqua, teal, pink, lavender, after Paul
  Tol's "light" scheme — with no orange, red or mid blue among them. Orange
  Binance bars under vermillion long markers read as "longs" (CIEDE2000 22
  apart); every exchange colour is now at least 30 from both sides, and 20
  under simulated protanopia/deuteranopia (tests/gui/test_colors.py measures it).
"""
from __future__ import annotations

from dataclasses import dataclass

LONG_COLOR = "#D55E00"   # vermillion: longs liquidated
SHORT_COLOR = "#0072B2"  # blue: shorts liquidated

EXCHANGE_COLORS = {
    "binance": "#F0E442",  # yellow (Binance's own colour; Okabe-Ito yellow, clearer on white)
    "okx": "#88EEEE",      # light aqua
    "bybit": "#00AA88",    # teal green
    "bitget": "#FF99BB",   # pink
    "gate": "#CCAAFF",     # lavender
}
# other exchanges, by a stable hash of the name: muted, so an unnamed venue never looks like a side
_FALLBACK = ["#AAAAAA", "#AACCAA", "#BBAABB"]  # grey, sage, mauve

# lines and marks that carry no data category
ZERO_LINE_COLOR = "#888888"       # the y = 0 line under long/short bars
PRICE_LINE_COLOR = "#8ab4f8"      # the close-price line (line style)
MARKER_OUTLINE_COLOR = "#ffffff"  # rim of the liquidation markers, apart from candles beneath
SPLIT_TEXT_COLOR = "#ffffff"      # figures written on the long/short split bar
SPLIT_EMPTY_COLOR = "#555555"     # the split bar when there is nothing to split
PENDING_COLOR = "#7f8790"         # headline figures while the exact ones for a moved view are read
SELECTION_COLOR = "#0072B2"       # selected rows and menu items
SELECTION_TEXT_COLOR = "#ffffff"

# Recorder status per exchange, in the status bar: a state reads at a glance, its reason in words.
STATUS_OK = "#009E73"       # connected (bluish green)
STATUS_WAIT = "#E69F00"     # connecting / reconnecting (orange: a transient state)
STATUS_OFFLINE = "#D55E00"  # offline: the network or name resolution is down (vermillion)
STATUS_IDLE = "#8a94a6"     # stopped

# Cascades (Events panel): a translucent band per cascade on the main charts, behind the data.
# Okabe-Ito reddish purple: neither a side (vermillion/blue) nor an exchange tint.
CASCADE_SHADE = "#CC79A7"
CASCADE_SHADE_ALPHA = 48  # of 255: candles and bars stay readable through it

# Fired alerts: the in-app notice (status bar) and the alert log's newest row.
ALERT_TEXT = "#E69F00"      # orange: "look now", apart from both sides

# The first-run banner: amber on dark brown reads as "notice" in both the dark and the light theme.
BANNER = {"background": "#5c4a00", "text": "#fff3c4", "button": "#7a6300", "button_border": "#b39200",
          "button_hover": "#8f7400", "disabled_text": "#c9b98a", "disabled_border": "#8a7a3a"}


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
                        (R.ToolTipText, fg), (R.Highlight, QColor(SELECTION_COLOR)),
                        (R.HighlightedText, QColor(SELECTION_TEXT_COLOR)),
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
    QLabel[role="figure"]:disabled {{ color: {PENDING_COLOR}; }}
    QLabel[role="caption"] {{ font-size: 8pt; color: {theme.crosshair}; }}
    QLabel#export_title {{ font-size: 10pt; padding: 2px 4px; }}
    QPushButton[role="chip"] {{ border: 1px solid {theme.crosshair}; border-radius: 9px;
        padding: 2px 8px; background: transparent; color: {theme.foreground}; }}
    QPushButton[role="chip"]:hover {{ background: {theme.crosshair}; }}
    """
