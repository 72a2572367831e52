"""Headline strip: the figures a news headline quotes, for the visible window."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from liqscope.models.format import number, usd

from .theme import LONG_COLOR, PENDING_COLOR, SHORT_COLOR, display_name, exchange_color


def _figure(caption: str) -> tuple[QWidget, QLabel]:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(6, 2, 10, 2)
    lay.setSpacing(0)
    cap = QLabel(caption)
    cap.setProperty("role", "caption")
    val = QLabel("–")
    val.setProperty("role", "figure")
    lay.addWidget(cap)
    lay.addWidget(val)
    return box, val


class HeadlineStrip(QFrame):
    """Total, long vs short, per-exchange chips (click to drill down), largest order."""

    exchange_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("headline")
        # fixed height: new figures must never re-layout (and so repaint) the charts below
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(2)
        lay = QHBoxLayout()
        outer.addLayout(lay)
        box, self.total = _figure("Total liquidated")
        lay.addWidget(box)
        box, self.longs = _figure("Longs liquidated")
        self.longs.setStyleSheet(f"QLabel {{ color: {LONG_COLOR} }} QLabel:disabled {{ color: {PENDING_COLOR} }}")
        lay.addWidget(box)
        box, self.shorts = _figure("Shorts liquidated (share)")
        self.shorts.setStyleSheet(f"QLabel {{ color: {SHORT_COLOR} }} QLabel:disabled {{ color: {PENDING_COLOR} }}")
        lay.addWidget(box)
        self.price_box, self.price = _figure("Price")
        lay.addWidget(self.price_box)
        self.range_box, self.range = _figure("Window high / low")
        lay.addWidget(self.range_box)
        for box in (self.price_box, self.range_box):  # price context yields room first: it never widens the window
            for label in box.findChildren(QLabel):
                label.setMinimumWidth(1)  # may be clipped when narrow, instead of forcing a minimum width
        lay.addStretch(1)
        box, self.largest = _figure("Largest single liquidation")
        lay.addWidget(box)
        # per-exchange chips on their own row: they never squeeze the figures
        self.chips_box = QWidget()
        self.chips = QHBoxLayout(self.chips_box)
        self.chips.setContentsMargins(6, 0, 6, 0)
        self.chips.setSpacing(4)
        self.chips_box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        outer.addWidget(self.chips_box)
        self.context = QLabel()  # open interest change and mean funding of the window, when the data exists
        self.context.setObjectName("headline_context")
        self.context.setProperty("role", "caption")
        self._chips_caption = QLabel("By exchange:")
        self._chips_caption.setProperty("role", "caption")
        self._chips: dict[str, QPushButton] = {}
        self.figures: dict = {}
        self.pending = False  # figures shown dimmed while the exact ones are read (see set_figures)
        self.context_values: dict = {}

    def _make_chip(self, name: str) -> QPushButton:
        chip = QPushButton(self.chips_box)
        chip.setProperty("role", "chip")
        chip.setObjectName(f"chip_{name}")
        chip.setStyleSheet(f"QPushButton {{ border-left: 6px solid {exchange_color(name)}; }}")
        chip.clicked.connect(lambda _=False, n=name: self.exchange_clicked.emit(n))
        self._chips[name] = chip
        return chip

    def set_context(self, asset: str, oi_change_pct: float | None, funding_mean: float | None) -> None:
        """``asset`` OI change over the window (%) and its time-weighted mean funding per 8 h (a fraction),
        as ``liqscope summary --json`` reports them; hidden when neither exists."""
        self.context_values = {"oi_change_pct": oi_change_pct, "funding_mean": funding_mean}
        parts = []
        if oi_change_pct is not None:
            parts.append(f"{asset} open interest <b>{oi_change_pct:+.1f}%</b>")
        if funding_mean is not None:
            parts.append(f"funding <b>{funding_mean * 100:+.4f}%</b> per 8 h")
        self.context.setText(" · ".join(parts))
        self.context.setVisible(bool(parts))

    def set_price(self, asset: str, exchange: str, stats) -> None:
        """Last price with the window's % change, and the window's high and low (hidden without candles)."""
        self.price_box.setVisible(stats is not None)
        self.range_box.setVisible(stats is not None)
        if stats is None:
            return
        # no colour: red/green would read as the long/short colours of the figures beside it
        self.price.setText(f"{number(stats.last, 6)} ({stats.change_pct:+.2f}%)")
        self.price.setToolTip(f"{asset} on {display_name(exchange)}: last close in the window, change from the "
                              f"window's first open ({number(stats.open, 6)})")
        self.range.setText(f"{number(stats.high, 6)} / {number(stats.low, 6)}")
        self.price_box.findChild(QLabel).setText(f"{asset} last (window change)")

    def set_figures(self, summary: dict, scope_text: str, *, pending: bool = False) -> None:
        """``pending``: figures of what is held while the exact ones for the view are read (a large store
        after a pan): shown dimmed until they arrive."""
        self.figures = summary
        self.pending = pending
        for label in (self.total, self.longs, self.shorts, self.largest):
            label.setEnabled(not pending)
        total = summary["total_usd"]
        self.total.setText(usd(total))
        self.total.setToolTip(("Updating… " if pending else "") + f"{summary['count']:,} liquidations · {scope_text}")
        self.longs.setText(usd(summary["long_usd"]))
        self.shorts.setText(f"{usd(summary['short_usd'])} ({summary['short_share']:.0%})")
        # chips are reused (created once per exchange), only re-ordered and re-labelled
        while self.chips.count():
            self.chips.takeAt(0)
        self.chips.addWidget(self._chips_caption)
        for name, chip in self._chips.items():
            if name not in summary["by_exchange"] and not chip.isHidden():
                chip.hide()
        for name, value in summary["by_exchange"].items():
            chip = self._chips.get(name) or self._make_chip(name)
            chip.setText(f"{display_name(name)} {usd(value)}")
            chip.setToolTip(f"{display_name(name)}: {value / total:.0%} of the window — click for details"
                            if total else name)
            if chip.isHidden():
                chip.show()
            self.chips.addWidget(chip)
        self.chips.addStretch(1)
        self.chips.addWidget(self.context)
        if summary["largest"]:
            top = summary["largest"][0]
            self.largest.setText(f"{usd(top['notional_usd'])} {top['side']} · {display_name(top['exchange'])}")
            self.largest.setToolTip(f"{top['ts']} {top['exchange']} {top['symbol']} "
                                    f"{number(top['qty'])} @ {number(top['price'])}")
        else:
            self.largest.setText("–")
