"""Liquidation pane: bars per time bucket, stacked and coloured by exchange.

Shorts liquidated plot above zero and longs below (or both stacked upwards).
The bucket follows the zoom so there are never more bars than pixels allow;
bars are re-binned for the view instead of handing pyqtgraph every bucket.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg

from liqscope.models.liq_index import LiquidationIndex
from liqscope.models.schema import ts_ns
from liqscope.models.timeutil import format_duration, pick_bucket

from .axis import to_x
from .items import RectsItem
from .theme import display_name, exchange_color

MIN_BAR_PX = 4


class UsdAxis(pg.AxisItem):
    """Ticks like $120M / -$40M (longs plot negative, labels show magnitude with sign)."""

    def tickStrings(self, values, scale, spacing):
        from liqscope.models.format import usd

        return [("-" if v < 0 else "") + usd(abs(v)) if v else "0" for v in values]


class LiqPane:
    def __init__(self, plot: pg.PlotItem, origin_s: float):
        self.plot = plot
        self.origin_s = origin_s
        self.bars = RectsItem()
        plot.addItem(self.bars)
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#888888", width=1))
        plot.addItem(self.zero)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        plot.hideAxis("left")
        plot.showAxis("right")
        plot.getAxis("right").setWidth(78)
        self.vb = plot.getViewBox()
        self.vb.setMouseMode(pg.ViewBox.PanMode)
        self.vb.enableAutoRange(x=False, y=False)
        self.vb.setMouseEnabled(x=True, y=False)
        self.legend = pg.LegendItem(offset=(8, 4), labelTextSize="8pt", colCount=6)
        self.legend.setParentItem(self.vb)
        self.label = pg.TextItem(anchor=(1, 0))
        self.label.setParentItem(self.vb)
        self.bucket = 3600
        self.table: pd.DataFrame | None = None  # buckets × (side, exchange) USD, what is drawn
        self._legend_names: tuple[str, ...] = ()

    def set_foreground(self, color: str):
        self.label.setColor(color)
        self.legend.setLabelTextColor(color)

    def pick_bucket(self, span_s: float, override: int | None) -> int:
        if override:
            return override
        px = max(self.vb.width(), 200)
        return pick_bucket(span_s, int(px / MIN_BAR_PX))

    def redraw(self, index: LiquidationIndex, start: pd.Timestamp, end: pd.Timestamp, *,
               override: int | None, stacked: bool, exchanges: list[str], filters: dict) -> None:
        """Re-bin for this view: the window plus one view-width either side (cheap pans)."""
        span = (end - start).total_seconds()
        self.bucket = self.pick_bucket(span, override)
        table = index.buckets(self.bucket, start - pd.Timedelta(seconds=span),
                              end + pd.Timedelta(seconds=span), by="exchange", **filters)
        names = [e for e in exchanges if e in table.columns.get_level_values(1)]
        self.table = table
        x = to_x(ts_ns(table.index), self.origin_s)
        w = self.bucket
        x0s, x1s, y0s, y1s, groups = [], [], [], [], []
        pos_base = np.zeros(len(table))
        neg_base = np.zeros(len(table))
        for gi, name in enumerate(names):
            for side in ("short", "long"):
                vals = table[(side, name)].to_numpy()
                nz = vals > 0
                if not nz.any():
                    continue
                if side == "long" and not stacked:
                    y0, y1 = neg_base[nz], neg_base[nz] - vals[nz]
                    neg_base[nz] -= vals[nz]
                else:
                    y0, y1 = pos_base[nz], pos_base[nz] + vals[nz]
                    pos_base[nz] += vals[nz]
                x0s.append(x[nz] + w * 0.08)
                x1s.append(x[nz] + w * 0.92)
                y0s.append(y0)
                y1s.append(y1)
                groups.append(np.full(nz.sum(), gi))
        colors = [exchange_color(n, i) for i, n in enumerate(names)]
        if x0s:
            self.bars.set_data(np.concatenate(x0s), np.concatenate(x1s), np.concatenate(y0s),
                               np.concatenate(y1s), np.concatenate(groups), colors)
        else:
            self.bars.set_data([], [], [], [], [], colors)
        # y range from the visible buckets only
        vis = (table.index >= start - pd.Timedelta(seconds=w)) & (table.index < end)
        top = float(pos_base[vis].max()) if vis.any() else 0.0
        bottom = float(neg_base[vis].min()) if vis.any() else 0.0
        top, bottom = max(top, 1.0), min(bottom, 0.0 if stacked else -1.0)
        self.vb.setYRange(bottom * 1.1, top * 1.1, padding=0)
        self._update_legend(names, colors)
        arrows = "stacked" if stacked else "▲ shorts  ▼ longs"
        self.label.setText(f"liquidations per {format_duration(self.bucket)} bucket · {arrows}")
        self.label.setPos(self.vb.width(), 0)

    def _update_legend(self, names: list[str], colors: list[str]) -> None:
        if tuple(names) == self._legend_names:
            return
        self._legend_names = tuple(names)
        self.legend.clear()
        for name, color in zip(names, colors):
            swatch = pg.BarGraphItem(x=[0], height=[1], width=1, brush=color, pen=None)
            self.legend.addItem(swatch, display_name(name))

    def value_at(self, ts: pd.Timestamp) -> tuple[pd.Timestamp, pd.Series] | None:
        """The drawn bucket containing ``ts`` and its USD per (side, exchange)."""
        if self.table is None or not len(self.table):
            return None
        i = self.table.index.searchsorted(ts, "right") - 1
        if i < 0 or ts >= self.table.index[i] + pd.Timedelta(seconds=self.bucket):
            return None
        return self.table.index[i], self.table.iloc[i]
