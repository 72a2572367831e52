"""Help → About: version, where the data comes from, the demo disclaimer, licence.

The version is read from the installed distribution's metadata (the same source as
``liqscope --version``), so a bundle or a pip install can never show a stale number.
"""
from __future__ import annotations

import platform
from html import escape
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from liqscope.models.version import app_version
from liqscope.models.dataset import DEMO_LABEL
from liqscope.models.paths import config_dir, data_dir, resources_dir

from .icon import icon_path

LICENSE_NAME = "MIT"
DEMO_NOTE = (f"{DEMO_LABEL}. Prices and individual liquidations are invented; only the totals for "
             "2025-05-09 UTC match what the news reported that day ($860M liquidated, 82% shorts). "
             "Do not trade on it.")
SOURCES = (
    "<b>Files you import</b>: exchange and data-vendor exports (CSV or Parquet), kept in your local store.",
    "<b>Exchanges' public market-data APIs</b> (Binance, OKX, Bybit): historical candles over REST and "
    "liquidations recorded live from public WebSocket streams. No account or API key is used or stored.",
    "<b>Demo data</b> bundled with the app, shown while your store is empty.",
)


def _lib_versions() -> str:
    parts = [f"Python {platform.python_version()}", f"Qt {qVersion()}"]
    for dist in ("PySide6-Essentials", "pyqtgraph", "pandas", "pyarrow"):
        try:
            parts.append(f"{dist.split('-')[0]} {version(dist)}")
        except PackageNotFoundError:
            pass
    return " · ".join(parts)


def license_text() -> str:
    path = resources_dir() / "LICENSE"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return f"{LICENSE_NAME} licence (the full text was not installed with this copy)."


class AboutDialog(QDialog):
    """Modal and compact, with selectable text; the full licence opens on demand."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("about")
        self.setWindowTitle("About Liqscope")
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        lay.setSpacing(10)

        head = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(_pixmap(64))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        head.addWidget(logo)
        title = QVBoxLayout()
        name = QLabel("<span style='font-size:18pt; font-weight:600'>Liqscope</span>")
        self.version_label = QLabel(f"Version {app_version()}")
        self.version_label.setObjectName("version")
        self.version_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        blurb = QLabel("Explore crypto prices and futures liquidations per exchange and asset, on your own machine.")
        blurb.setWordWrap(True)
        for w in (name, self.version_label, blurb):
            title.addWidget(w)
        head.addLayout(title, 1)
        lay.addLayout(head)

        self.sources_label = _rich(
            "<b>Data sources</b><ul style='margin-left:-20px'>"
            + "".join(f"<li>{s}</li>" for s in SOURCES) + "</ul>"
            f"Your data: {escape(str(data_dir()))}<br>Settings: {escape(str(config_dir()))}")
        lay.addWidget(self.sources_label)
        self.demo_label = _rich(f"<b>About the demo data</b><br>{escape(DEMO_NOTE)}")
        lay.addWidget(self.demo_label)
        self.license_label = _rich(f"<b>Licence</b>: {LICENSE_NAME}. Free software, provided as is, "
                                   "without warranty of any kind.")
        lay.addWidget(self.license_label)
        versions = QLabel(_lib_versions())
        versions.setObjectName("libVersions")
        versions.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        versions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(versions)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.license_button = QPushButton("Licence text…")
        self.license_button.clicked.connect(self.show_license)
        buttons.addButton(self.license_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def show_license(self) -> QDialog:
        """The full licence in its own window, so this dialog keeps its compact layout."""
        dlg = QDialog(self)
        dlg.setObjectName("licence")
        dlg.setWindowTitle("Liqscope licence")
        lay = QVBoxLayout(dlg)
        self.license_view = QPlainTextEdit(license_text())
        self.license_view.setReadOnly(True)
        lay.addWidget(self.license_view)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(dlg.reject)
        lay.addWidget(close)
        dlg.resize(620, 460)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()
        return dlg


def _rich(html: str) -> QLabel:
    label = QLabel(html)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _pixmap(size: int):
    from PySide6.QtGui import QPixmap

    return QPixmap(str(icon_path(size)))


def show_about(parent: QWidget | None = None) -> AboutDialog:
    """Open the dialog without blocking (so tests and screenshots can inspect it); returns it."""
    dlg = AboutDialog(parent)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dlg.open()
    return dlg
