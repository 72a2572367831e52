"""The crosshair over both panes and the readout line that describes what is under it.

It remembers where it stands (x, and y over the price pane) so that after any
change of the view — zoom, filters, bucket, a dataset swap — the readout is
re-described, or cleared once its time has left the view: it never describes
something that is no longer drawn.
"""
from __future__ import annotations

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from liqscope.models.format import number, usd
from liqscope.models.timeutil import format_duration, format_time

from .axis import from_x
from .theme import LONG_COLOR, SHORT_COLOR, display_name


class Crosshair:
    def __init__(self, window, readout: QLabel):
        self.window = window
        self.readout = readout
        readout.setTextFormat(Qt.TextFormat.RichText)
        price_plot, liq_plot = window.price.plot, window.liq.plot
        # value tags on the axes: the price where the pointer is (right edge), the time (foot of the lower pane)
        self.vlines = [pg.InfiniteLine(angle=90, movable=False),
                       pg.InfiniteLine(angle=90, movable=False, label="",
                                       labelOpts={"position": 0.02, "anchors": [(0.5, 1), (0.5, 1)]})]
        self.hline = pg.InfiniteLine(angle=0, movable=False, label="",
                                     labelOpts={"position": 0.99, "anchors": [(1, 0), (1, 0)]})
        price_plot.addItem(self.vlines[0], ignoreBounds=True)
        price_plot.addItem(self.hline, ignoreBounds=True)
        liq_plot.addItem(self.vlines[1], ignoreBounds=True)
        self.at: tuple[float, float | None] | None = None  # where it stands, to re-describe
        self.clear()  # until the pointer is over a chart
        self._proxy = pg.SignalProxy(price_plot.scene().sigMouseMoved, rateLimit=60,
                                     slot=lambda ev: self.on_mouse_scene(ev[0]))

    @property
    def lines(self) -> tuple[pg.InfiniteLine, ...]:
        return (*self.vlines, self.hline)

    def set_pen(self, pen, theme=None) -> None:
        for line in self.lines:
            line.setPen(pen)
        if theme is not None:
            for tag in (self.vlines[1].label, self.hline.label):
                tag.fill = pg.mkBrush(theme.panel)
                tag.setColor(theme.foreground)

    def clear(self) -> None:
        self.at = None
        self.readout.setText(" ")
        for line in self.lines:
            line.setVisible(False)

    def on_mouse_scene(self, pos) -> None:
        w = self.window
        for plot in (w.price.plot, w.liq.plot):
            if plot.sceneBoundingRect().contains(pos):
                pt = plot.getViewBox().mapSceneToView(pos)
                self.show(pt.x(), pt.y() if plot is w.price.plot else None)
                return

    def refresh(self) -> None:
        """Re-describe what is under the crosshair after the view changed."""
        if self.at is None:
            return
        x, y = self.at
        x0, x1 = self.window.price.vb.viewRange()[0]
        if x0 <= x <= x1:
            self.show(x, y)
        else:  # its time left the view: say nothing rather than something stale
            self.clear()

    def show(self, x: float, y: float | None = None) -> str:
        """Move to x (seconds from the origin) and describe the candle and the bucket there."""
        w = self.window
        self.at = (x, y)
        for line in self.vlines:
            line.setPos(x)
            line.setVisible(True)
        self.hline.setVisible(y is not None)
        ts = from_x(x, w.origin_s)
        v = w.state.view
        if y is not None:
            self.hline.setPos(y)
            self.hline.label.setFormat(number(10 ** y if v.log_scale else y, 6))
        when = (f"{format_time(ts, 'minute')} UTC" if v.utc
                else f"{pd.Timestamp.fromtimestamp(ts.value / 1e9):%Y-%m-%d %H:%M} local")
        self.vlines[1].label.setFormat(when)
        parts = [f"<b>{format_time(ts, 'second')} UTC</b>"]
        c = w.price.candle_at(ts.value)
        if c is not None:
            parts.append(f"{v.asset} {v.exchange} {format_duration(w.price.level)} "
                         f"O {number(c['open'])} H {number(c['high'])} L {number(c['low'])} C {number(c['close'])}")
        hit = w.liq.value_at(ts)
        if hit is not None:
            bucket_ts, sums = hit
            ex_txt = ", ".join(f"{display_name(k)} {usd(val)}" for k, val in sums["by_exchange"].items() if val > 0)
            parts.append(f"{format_duration(w.liq.bucket)} bucket {format_time(bucket_ts, 'clock')}: "
                         f"<span style='color:{LONG_COLOR}'>longs {usd(sums['long'])}</span> · "
                         f"<span style='color:{SHORT_COLOR}'>shorts {usd(sums['short'])}</span>"
                         + (f" ({ex_txt})" if ex_txt else ""))
        text = " &nbsp;│&nbsp; ".join(parts)
        self.readout.setText(text)
        return text
