"""Headline strip: the figures a news headline quotes, for the visible window."""
from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from liqscope.models.format import number, usd

from .theme import LONG_COLOR, PENDING_COLOR, SHORT_COLOR, display_name, exchange_color


class FittingLabel(QLabel):
    """Shows the longest of its texts that fits its width -- a figure's short form when a docked panel
    narrows the window, never a text cut mid-number. ``text()`` is the full form."""

    def __init__(self, *texts: str):
        super().__init__()
        self._texts = list(texts) or [""]
        self.setMinimumWidth(1)
        self._fit()

    def set_texts(self, *texts: str) -> None:
        self._texts = list(texts) or [""]
        self.updateGeometry()
        self._fit()

    def text(self) -> str:  # noqa: D102 - the full form, whatever fits now
        return self._texts[0]

    @property
    def forms(self) -> list[str]:
        """The texts, longest preferred first."""
        return list(self._texts)

    def sizeHint(self) -> QSize:
        m = self.contentsMargins()
        width = max(self.fontMetrics().horizontalAdvance(t) for t in self._texts) + m.left() + m.right()
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(1, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def changeEvent(self, event) -> None:  # a style sheet sets the figure font after construction
        super().changeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect().width()
        shown = next((t for t in self._texts if self.fontMetrics().horizontalAdvance(t) <= room), "")
        if QLabel.text(self) != shown:
            QLabel.setText(self, shown)


def _width(box: QWidget, value: FittingLabel, short: bool) -> int:
    """The width ``box`` needs to show its caption and ``value`` whole: their full or their shortest forms."""
    m = box.layout().contentsMargins()
    return m.left() + m.right() + max(label.fontMetrics().horizontalAdvance(label.forms[-1 if short else 0])
                                      for label in (box.caption, value))


def _figure(caption: str, fitting: bool = False) -> tuple[QWidget, QLabel]:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(6, 2, 10, 2)
    lay.setSpacing(0)
    cap = FittingLabel(caption) if fitting else QLabel(caption)
    cap.setProperty("role", "caption")
    val = FittingLabel("–") if fitting else QLabel("–")
    val.setProperty("role", "figure")
    lay.addWidget(cap)
    lay.addWidget(val)
    box.caption = cap
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
        self._row = lay
        self._fixed: list[QWidget] = []  # the liquidation figures: always whole; the price context fits around them
        box, self.total = _figure("Total liquidated")
        lay.addWidget(box)
        self._fixed.append(box)
        box, self.longs = _figure("Longs liquidated")
        self._fixed.append(box)
        self.longs.setStyleSheet(f"QLabel {{ color: {LONG_COLOR} }} QLabel:disabled {{ color: {PENDING_COLOR} }}")
        lay.addWidget(box)
        box, self.shorts = _figure("Shorts liquidated (share)")
        self._fixed.append(box)
        self.shorts.setStyleSheet(f"QLabel {{ color: {SHORT_COLOR} }} QLabel:disabled {{ color: {PENDING_COLOR} }}")
        lay.addWidget(box)
        # price context yields room first (it never widens the window): short forms, then nothing
        self.price_box, self.price = _figure("Price", fitting=True)
        lay.addWidget(self.price_box)
        self.range_box, self.range = _figure("Window high / low", fitting=True)
        self.range_box.caption.set_texts("Window high / low", "High / low")
        lay.addWidget(self.range_box)
        lay.addStretch(1)
        box, self.largest = _figure("Largest single liquidation")
        lay.addWidget(box)
        self._fixed.append(box)
        self._has_price = False
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
        self._has_price = stats is not None
        self.price_box.setVisible(stats is not None)
        self.range_box.setVisible(stats is not None)
        if stats is None:
            return
        # no colour: red/green would read as the long/short colours of the figures beside it
        last = number(stats.last, 6)
        self.price.set_texts(f"{last} ({stats.change_pct:+.2f}%)", last)
        self.price.setToolTip(f"{asset} on {display_name(exchange)}: last close in the window, change from the "
                              f"window's first open ({number(stats.open, 6)})")
        self.range.set_texts(f"{number(stats.high, 6)} / {number(stats.low, 6)}")
        self.range.setToolTip(f"{asset} on {display_name(exchange)}: the window's high and low")
        self.price_box.caption.set_texts(f"{asset} last (window change)", f"{asset} last")
        self._fit_context()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_context()

    def _fit_context(self) -> None:
        """Show the window's high/low only when the price beside it fits whole, and the price only when its
        short form fits: the room the liquidation figures leave, never a caption over nothing."""
        if not self._has_price:
            return
        spacing = max(self._row.spacing(), 0)
        m = self.contentsMargins()
        room = self.width() - m.left() - m.right() - 12 - sum(w.sizeHint().width() + spacing for w in self._fixed)

        price_full = _width(self.price_box, self.price, short=False) + spacing
        self.range_box.setVisible(room >= price_full + _width(self.range_box, self.range, short=False) + spacing)
        self.price_box.setVisible(room >= _width(self.price_box, self.price, short=True) + spacing)

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
        self._fit_context()  # the figures' widths changed: the price context fits around them
