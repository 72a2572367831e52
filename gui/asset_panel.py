"""Asset drill-down: one asset across exchanges: overlaid closes and basis, stacked liquidations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg

from liqscope.models.drilldown import basis_bps
from liqscope.models.export import Selection, candles_table
from liqscope.models.view import View
from liqscope.models.schema import ts_ns
from liqscope.models.timeutil import format_duration, pick_bucket

from .axis import to_x
from .context_panes import PercentAxis
from .drill_panel import DrillPanel
from .items import RectsItem
from .liq_pane import UsdAxis
from .panel_parts import add_plot, swatch
from .price_pane import PriceAxis
from .theme import ZERO_LINE_COLOR, display_name, exchange_color


class AssetPanel(DrillPanel):
    """One asset across exchanges: overlaid closes, basis, stacked liquidations, largest orders."""

    kind = "asset"
    by = "exchange"
    export_whats = ("candles", "buckets", "liquidations")

    def __init__(self, main, asset: str):
        self.asset = asset.upper()
        self.level = 60
        self.price_frames: dict[str, pd.DataFrame] = {}
        self.basis: dict[str, pd.Series] = {}
        super().__init__(main, self.asset, f"{self.asset} — across exchanges")

    def build_plots(self) -> None:
        self.price_plot = add_plot(self.graphics, 0, self.origin, self.state.view.utc, PriceAxis("right"),
                                   show_time=False)
        self.basis_plot = add_plot(self.graphics, 1, self.origin, self.state.view.utc, pg.AxisItem("right"),
                                   show_time=False)
        # open interest and funding per exchange (the dataset's context), shown when the asset has any
        self.oi_plot = add_plot(self.graphics, 2, self.origin, self.state.view.utc, UsdAxis("right"), show_time=False)
        self.funding_plot = add_plot(self.graphics, 3, self.origin, self.state.view.utc, PercentAxis("right"),
                                     show_time=False)
        self.liq_plot = add_plot(self.graphics, 4, self.origin, self.state.view.utc, UsdAxis("right"))
        layout = self.graphics.ci.layout
        for row, stretch in ((0, 5), (1, 2), (2, 2), (3, 2), (4, 4)):
            layout.setRowStretchFactor(row, stretch)
        for plot in (self.basis_plot, self.oi_plot, self.funding_plot, self.liq_plot):
            plot.setXLink(self.price_plot)
        self.funding_plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(ZERO_LINE_COLOR, width=1)))
        self.context_lines: list = []
        self.context_values: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"oi": {}, "funding": {}}
        self.basis_plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(ZERO_LINE_COLOR, width=1)))
        self.liq_plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(ZERO_LINE_COLOR, width=1)))
        self.rects = RectsItem()
        self.liq_plot.addItem(self.rects)
        self.lines: dict[str, pg.PlotDataItem] = {}
        self.basis_lines: dict[str, pg.PlotDataItem] = {}
        self.price_plot.getViewBox().sigXRangeChanged.connect(self._on_user_range)

    def plots(self) -> list[pg.PlotItem]:
        return [self.price_plot, self.basis_plot, self.oi_plot, self.funding_plot, self.liq_plot]

    def panel_view(self, base: View) -> View:
        return base.for_asset(self.asset)

    def heading_name(self) -> str:
        return f"{self.asset} · all exchanges" if self.view.exchanges is None else \
            f"{self.asset} · {', '.join(display_name(e) for e in sorted(self.view.exchanges))}"

    def name_parts(self) -> list[str]:
        v = self.view
        return [self.asset, "+".join(sorted(v.exchanges)) if v.exchanges is not None else "all-exchanges"]

    def price_exchanges(self) -> list[str]:
        return self.dataset.prices.exchanges_for(self.asset)

    def reference(self) -> str | None:
        exs = self.price_exchanges()
        if not exs:
            return None
        return self.view.exchange if self.view.exchange in exs else exs[0]

    def color(self, exchange: str) -> str:
        """The exchange's colour everywhere in the app (fallbacks indexed like the main pane)."""
        names = self.dataset.exchanges
        return exchange_color(exchange, names.index(exchange) if exchange in names else 0)

    def draw(self) -> None:
        v = self.view
        span = (v.end - v.start).total_seconds()
        px = max(self.price_plot.getViewBox().width(), 300)
        self.level = pick_bucket(span, int(px / 2))  # a close every ~2 px at most
        candles = candles_table(self.dataset.prices, self.asset, self.price_exchanges(), v.start, v.end,
                                self.level)
        self.price_frames = {ex: part.set_index("ts") for ex, part in candles.groupby("exchange", sort=False)}
        self._draw_prices()
        self._draw_context()
        self.bucket = self.pick_bucket()
        table = self.bars()
        self.bucket_table = table
        names = [e for e in self.dataset.exchanges if e in table.columns.get_level_values(1)
                 and table.xs(e, axis=1, level=1).to_numpy().sum() > 0]
        x = to_x(ts_ns(table.index), self.origin_s)
        self._bars(self.rects, x, [table[("long", e)].to_numpy() for e in names],
                   [table[("short", e)].to_numpy() for e in names], [self.color(e) for e in names], self.liq_plot)
        legend = " &nbsp;".join(swatch(self.color(e), display_name(e)) for e in names)
        self.set_title(self.liq_plot, f"per {format_duration(self.bucket)} · shorts ▲ longs ▼ · {legend}")

    def _draw_prices(self) -> None:
        for item in self.lines.values():
            self.price_plot.removeItem(item)
        for item in self.basis_lines.values():
            self.basis_plot.removeItem(item)
        self.lines, self.basis_lines = {}, {}
        lo, hi = np.inf, -np.inf
        for ex, frame in self.price_frames.items():
            x = to_x(ts_ns(frame.index), self.origin_s) + self.level / 2  # mid-candle
            self.lines[ex] = self.price_plot.plot(x, frame["close"].to_numpy(), pen=pg.mkPen(self.color(ex), width=1.4))
            lo, hi = min(lo, float(frame["close"].min())), max(hi, float(frame["close"].max()))
        if np.isfinite(lo):
            pad = (hi - lo) * 0.08 or abs(hi) * 0.001
            self.price_plot.getViewBox().setYRange(lo - pad, hi + pad, padding=0)
        ref = self.reference()
        closes = {ex: f["close"] for ex, f in self.price_frames.items()}
        self.basis = basis_bps(closes, ref) if ref else {}
        blo, bhi = -1.0, 1.0
        for ex, s in self.basis.items():
            x = to_x(ts_ns(s.index), self.origin_s) + self.level / 2
            self.basis_lines[ex] = self.basis_plot.plot(x, s.to_numpy(), pen=pg.mkPen(self.color(ex), width=1.2))
            if len(s):
                blo, bhi = min(blo, float(s.min())), max(bhi, float(s.max()))
        self.basis_plot.getViewBox().setYRange(blo * 1.15, bhi * 1.15, padding=0)
        if self.price_frames:
            legend = " &nbsp;".join(swatch(self.color(e), display_name(e), "━") for e in self.price_frames)
            self.set_title(self.price_plot, f"close per exchange, {format_duration(self.level)} candles · {legend}")
        else:
            self.set_title(self.price_plot, f"no {self.asset} candles in this dataset")
        if ref and self.basis:
            legend = " &nbsp;".join(swatch(self.color(e), display_name(e), "━") for e in self.basis)
            self.set_title(self.basis_plot, f"basis vs {display_name(ref)}, bps · {legend}")
        else:
            self.set_title(self.basis_plot, "basis: needs candles from two exchanges")

    def _draw_context(self) -> None:
        """Open interest (USD) and funding (% per 8 h) per exchange of the asset, for the panel's window (the
        same Context queries as the context panes and ``liqscope summary``); hidden when there are none."""
        for plot, item in self.context_lines:
            plot.removeItem(item)
        self.context_lines = []
        self.context_values = {"oi": {}, "funding": {}}
        v = self.view
        ctx = self.dataset.context
        exchanges = sorted(v.exchanges) if v.exchanges is not None else None
        wide = ctx.oi_by_exchange(v.start, v.end, self.asset, exchanges)
        parts = []
        for ex in wide.columns:
            y = wide[ex].to_numpy(dtype=float)
            if not np.isfinite(y).any():
                continue
            ts = wide.index.as_unit("ns").asi8
            self._context_line(self.oi_plot, ts, y, ex)
            self.context_values["oi"][ex] = (ts, y)
            change = ctx.window(v.start, v.end).oi_change_pct(v.start, v.end, self.asset, [ex])
            parts.append(swatch(self.color(ex), display_name(ex), "━")
                         + (f" {change:+.1f}%" if change is not None else ""))
        self._fit(self.oi_plot, [y for _t, y in self.context_values["oi"].values()])
        self.set_title(self.oi_plot, f"open interest per exchange, USD · {' &nbsp;'.join(parts)}" if parts
                       else f"no {self.asset} open interest (liqscope fetch oi)")
        rows = ctx.funding(v.start, v.end, exchanges, self.asset)
        parts = []
        for ex, part in rows.groupby("exchange", sort=True):
            ex = str(ex)
            ts = pd.DatetimeIndex(part["ts"]).as_unit("ns").asi8
            y = part["per_8h"].to_numpy(dtype=float) * 100.0
            self._context_line(self.funding_plot, ts, y, ex, symbols=True)
            self.context_values["funding"][ex] = (ts, y)
            mean = ctx.funding_mean(v.start, v.end, self.asset, [ex])
            parts.append(swatch(self.color(ex), display_name(ex), "━")
                         + (f" {mean * 100:+.4f}%" if mean is not None else ""))
        self._fit(self.funding_plot, [y for _t, y in self.context_values["funding"].values()], zero=True)
        self.set_title(self.funding_plot, f"funding per exchange, % per 8 h (window mean) · {' &nbsp;'.join(parts)}"
                       if parts else f"no {self.asset} funding (liqscope fetch funding)")
        layout = self.graphics.ci.layout
        for row, plot, values in ((2, self.oi_plot, self.context_values["oi"]),
                                  (3, self.funding_plot, self.context_values["funding"])):
            plot.setVisible(bool(values))
            layout.setRowStretchFactor(row, 2 if values else 0)
            plot.setMaximumHeight(16777215 if values else 0)

    def _context_line(self, plot: pg.PlotItem, ts: np.ndarray, y: np.ndarray, exchange: str,
                      symbols: bool = False) -> None:
        item = plot.plot(to_x(ts, self.origin_s), y, pen=pg.mkPen(self.color(exchange), width=1.2), connect="finite",
                         symbol="o" if symbols else None, symbolSize=5, symbolPen=None,
                         symbolBrush=self.color(exchange))
        self.context_lines.append((plot, item))

    @staticmethod
    def _fit(plot: pg.PlotItem, values: list[np.ndarray], zero: bool = False) -> None:
        finite = [v[np.isfinite(v)] for v in values]
        finite = np.concatenate(finite) if finite else np.empty(0)
        if not len(finite):
            return
        lo, hi = float(finite.min()), float(finite.max())
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 1.0
        plot.getViewBox().setYRange(lo - pad, hi + pad, padding=0)

    def export_selection(self) -> Selection:
        return Selection(view=self.view, price_exchanges=tuple(self.price_exchanges()),
                         candle_interval=self.level, bucket=self.bucket, by="exchange")
