"""Exchange drill-down: one exchange's liquidations over time, by asset, long/short, largest orders."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from liqscope.models.export import Selection
from liqscope.models.view import View
from liqscope.models.schema import ts_ns
from liqscope.models.timeutil import format_duration

from .axis import to_x
from .drill_panel import DrillPanel
from .items import RectsItem
from .liq_pane import UsdAxis
from .panel_parts import add_plot, swatch
from .theme import LONG_COLOR, SHORT_COLOR, ZERO_LINE_COLOR, display_name


class ExchangePanel(DrillPanel):
    """One exchange: long/short bars over time, per-asset breakdown, its largest orders."""

    kind = "exchange"
    by = "asset"

    def __init__(self, main, exchange: str):
        self.exchange = exchange.lower()
        super().__init__(main, self.exchange, f"{display_name(self.exchange)} — liquidations")
        self.orders_view.setColumnHidden(self.orders_model_column("exchange"), True)  # always this one

    def build_plots(self) -> None:
        self.plot = add_plot(self.graphics, 0, self.origin, self.state.view.utc, UsdAxis("right"))
        self.rects = RectsItem()
        self.plot.addItem(self.rects)
        self.plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(ZERO_LINE_COLOR, width=1)))
        self.plot.getViewBox().sigXRangeChanged.connect(self._on_user_range)

    def plots(self) -> list[pg.PlotItem]:
        return [self.plot]

    def panel_view(self, base: View) -> View:
        return base.for_exchange(self.exchange)

    def heading_name(self) -> str:
        return display_name(self.exchange)

    def name_parts(self) -> list[str]:
        return ["all-assets", self.exchange]

    def draw(self) -> None:
        self.bucket = self.pick_bucket()
        table = self.bars()
        self.bucket_table = table
        x = to_x(ts_ns(table.index), self.origin_s)
        longs = table["long"].sum(axis=1).to_numpy() if len(table.columns) else np.zeros(len(table))
        shorts = table["short"].sum(axis=1).to_numpy() if len(table.columns) else np.zeros(len(table))
        zero = np.zeros(len(table))
        self._bars(self.rects, x, [longs, zero], [zero, shorts], [LONG_COLOR, SHORT_COLOR], self.plot)
        self.set_title(self.plot, f"liquidations per {format_duration(self.bucket)} bucket · "
                                  f"{swatch(SHORT_COLOR, 'shorts ▲')} &nbsp; {swatch(LONG_COLOR, 'longs ▼')}")

    def export_selection(self) -> Selection:
        return Selection(view=self.view, bucket=self.bucket, by="asset")
