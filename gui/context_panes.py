"""Context panes under the liquidation pane: open interest, funding and outside series, x-linked.

A liquidation chart alone cannot tell a short squeeze from new positioning; these panes put open
interest (the total over exchanges in USD, and one line per exchange), funding per exchange (per 8 h,
in percent) and any imported outside series (ETF flows as bars, indexes as lines) under the same time
axis. Everything drawn comes from the dataset's :class:`~liqscope.models.context.Context` (the one
source the headline, ``liqscope summary`` and ``liqscope export --what oi|funding|series:NAME`` read),
for the view's asset and window plus one view-width either side.

View ▸ Context panes turns each pane on or off and moves it up or down; the choice persists
(QSettings ``context/panes``). Only the lowest pane shows the time axis.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from liqscope.models.format import number, usd

from .axis import OriginDateAxis, to_x
from .layout import AXIS_WIDTH, CONTEXT_PANE_STRETCH, Y_HEADROOM
from .liq_pane import UsdAxis
from .panel_parts import set_title, swatch
from .theme import THEMES, ZERO_LINE_COLOR, display_name, exchange_color

OI, FUNDING = "oi", "funding"
SERIES = "series:"  # prefix of an outside series pane's key
SETTINGS_KEY = "context/panes"


def pane_title(key: str) -> str:
    if key == OI:
        return "Open interest"
    if key == FUNDING:
        return "Funding"
    return key[len(SERIES):]


class PercentAxis(pg.AxisItem):
    """Ticks like 0.010% (funding per 8 h)."""

    def tickStrings(self, values, scale, spacing):
        digits = max(0, min(4, int(-np.floor(np.log10(spacing))) if spacing > 0 else 2))
        return [f"{v:.{digits}f}%" for v in values]


class ValueAxis(pg.AxisItem):
    """Outside series values: USD amounts as $1.4B, others as plain numbers."""

    def __init__(self, unit: str, **kw):
        super().__init__(**kw)
        self.unit = unit

    def tickStrings(self, values, scale, spacing):
        if self.unit == "USD":
            return [("-" if v < 0 else "") + usd(abs(v)) if v else "0" for v in values]
        return [number(v, 4) for v in values]


class ContextPane:
    """One pane: a plot in the window's graphics layout, drawing one context kind."""

    def __init__(self, window, key: str):
        self.window = window
        self.key = key
        self.unit = window.dataset.context.unit(key[len(SERIES):]) if key.startswith(SERIES) else ""
        right = (UsdAxis("right") if key == OI else PercentAxis("right") if key == FUNDING
                 else ValueAxis(self.unit, orientation="right"))
        self.axis = OriginDateAxis(lambda: window.hub.origin_s, utc=window.state.view.utc, orientation="bottom")
        window.hub.dataset_changed.connect(self.axis.invalidate)
        self.plot = pg.PlotItem(axisItems={"bottom": self.axis, "right": right})
        self.plot.hideAxis("left")
        self.plot.showAxis("right")
        self.plot.getAxis("right").setWidth(AXIS_WIDTH)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.vb = self.plot.getViewBox()
        self.vb.setMouseEnabled(x=True, y=False)
        self.vb.enableAutoRange(x=False, y=False)
        self.plot.setXLink(window.price.plot)
        self.items: list = []
        self.values: dict = {}  # what is drawn, for tests and the crosshair: name -> (ts ns, values)

    def clear(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []
        self.values = {}
        self._cached = None

    def draw(self, start: pd.Timestamp, end: pd.Timestamp, asset: str, *, force: bool = False) -> None:
        """Draw the view plus one view-width either side; pans inside that only refit the y axis and the
        title's window figures (finplot's 3x cache, as the other panes)."""
        ctx = self.window.dataset.context
        theme = THEMES[self.window.state.view.theme]
        key = (asset, id(ctx), theme.name)
        cached = getattr(self, "_cached", None)
        if force or cached is None or cached[0] != key or start < cached[1] or end > cached[2]:
            self.clear()
            span = end - start
            lo, hi = start - span, end + span
            self._cached = (key, lo, hi)
            self._fill(ctx, lo, hi, asset, theme)
        self._fit([v[self._visible(ts, start, end)] for ts, v in self.values.values()],
                  zero=self.key == FUNDING or (self.key.startswith(SERIES) and self.unit == "USD"))
        self._title(ctx, start, end, asset, theme)

    def _fill(self, ctx, lo, hi, asset, theme) -> None:
        if self.key == OI:
            wide = ctx.oi_by_exchange(lo, hi, asset)
            for exchange in wide.columns:
                col = wide[exchange].to_numpy(dtype=float)
                if np.isfinite(col).any():
                    self._line(wide.index.to_series(), col, exchange_color(exchange), 1.0, exchange)
            total = ctx.oi_total(lo, hi, asset)
            if len(total):
                self._line(total["ts"], total["oi_usd"].to_numpy(dtype=float), theme.foreground, 2.0, "total")
        elif self.key == FUNDING:
            df = ctx.funding(lo, hi, asset=asset)
            for exchange, part in df.groupby("exchange", sort=True):
                y = part["per_8h"].to_numpy(dtype=float) * 100.0
                x = to_x(pd.DatetimeIndex(part["ts"]).as_unit("ns").asi8, self.window.hub.origin_s)
                dots = pg.ScatterPlotItem(x, y, size=6, pen=None, brush=pg.mkBrush(exchange_color(str(exchange))))
                self.plot.addItem(dots)
                self.items.append(dots)
                self._line(part["ts"], y, exchange_color(str(exchange)), 1.0, str(exchange))
            zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(ZERO_LINE_COLOR, width=1))
            self.plot.addItem(zero)
            self.items.append(zero)
        else:
            name = self.key[len(SERIES):]
            df = ctx.outside(name, lo, hi)
            y = df["value"].to_numpy(dtype=float)
            ts_ns = pd.DatetimeIndex(df["ts"]).as_unit("ns").asi8
            if self.unit == "USD" and len(df):  # flows: bars, up colour in, down colour out
                x = to_x(ts_ns, self.window.hub.origin_s)
                step = float(np.median(np.diff(x))) if len(x) > 1 else 86400.0
                brushes = [pg.mkBrush(theme.candle_down if v < 0 else theme.candle_up) for v in y]
                bars = pg.BarGraphItem(x=x + step / 2, height=y, width=step * 0.8, brushes=brushes, pen=None)
                self.plot.addItem(bars)
                self.items.append(bars)
                self.values[name] = (ts_ns, y)
            elif len(df):
                self._line(df["ts"], y, theme.foreground, 1.5, name)

    def _title(self, ctx, start, end, asset, theme) -> None:
        if self.key == OI:
            names = [n for n in self.values if n != "total"]
            parts = [f"<b>Open interest</b> {asset}, USD"]
            if "total" in self.values:
                parts.append(swatch(theme.foreground, "total"))
            parts += [swatch(exchange_color(e), display_name(e)) for e in names]
            change = ctx.oi_change_pct(start, end, asset)
            if change is not None:
                parts.append(f"window change <b>{change:+.1f}%</b>")
            if not names:
                parts.append(f"no open interest for {asset} here (liqscope fetch oi)")
        elif self.key == FUNDING:
            names = list(self.values)
            parts = [f"<b>Funding</b> {asset}, % per 8 h"] + [swatch(exchange_color(e), display_name(e)) for e in names]
            mean = ctx.funding_mean(start, end, asset)
            if mean is not None:
                parts.append(f"window mean <b>{mean * 100:+.4f}%</b> per 8 h ({mean * 3 * 365 * 100:+.1f}% a year)")
            if not names:
                parts.append(f"no funding for {asset} here (liqscope fetch funding)")
        else:
            name = self.key[len(SERIES):]
            parts = [f"<b>{name}</b>" + (f" ({self.unit})" if self.unit else "")]
            ts, y = self.values.get(name, (np.empty(0, np.int64), np.empty(0)))
            inside = y[self._visible(ts, start, end)]
            if len(inside):
                last = usd(inside[-1]) if self.unit == "USD" else number(inside[-1], 4)
                parts.append(f"last in window <b>{last}</b>")
        set_title(self.plot, " · ".join(parts), theme.foreground)

    # -- kinds ---------------------------------------------------------------------------
    def _line(self, ts: pd.Series, y: np.ndarray, color: str, width: float = 1.2, name: str = "") -> None:
        x = to_x(pd.DatetimeIndex(ts).as_unit("ns").asi8, self.window.hub.origin_s)
        item = pg.PlotDataItem(x, y, pen=pg.mkPen(color, width=width), connect="finite", stepMode=None)
        self.plot.addItem(item)
        self.items.append(item)
        self.values[name] = (pd.DatetimeIndex(ts).as_unit("ns").asi8, np.asarray(y, dtype=float))

    def _fit(self, values: list[np.ndarray], zero: bool = False) -> None:
        parts = [v[np.isfinite(v)] for v in values if len(v)]
        finite = np.concatenate(parts) if parts else np.empty(0)
        if not len(finite):
            self.vb.setYRange(0, 1, padding=0)
            return
        lo, hi = float(finite.min()), float(finite.max())
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        pad = (hi - lo) * (Y_HEADROOM - 1) or abs(hi) * 0.05 or 1.0
        self.vb.setYRange(lo - pad, hi + pad, padding=0)

    def _visible(self, ts: np.ndarray, start, end) -> np.ndarray:
        return (ts >= start.value) & (ts < end.value)


class ContextPanes:
    """The window's context panes: which are on (in order), the menu, and redraws on view/data changes."""

    def __init__(self, window):
        self.window = window
        self.panes: dict[str, ContextPane] = {}
        saved = window.settings.value(SETTINGS_KEY) if window.persist else None
        self.order: list[str] = [str(k) for k in (saved if isinstance(saved, list) else [saved] if saved else [])]
        self.menu = QMenu("Context panes", window)
        self.menu.setObjectName("context_menu")
        view_menu = window.menuBar().findChild(QMenu, "view_menu")
        (view_menu or window.menuBar()).addMenu(self.menu)
        window.hub.dataset_changed.connect(lambda _ds: self.rebuild())
        window.state.changed.connect(self._on_changed)
        self.rebuild()

    def available(self) -> list[str]:
        ctx = self.window.dataset.context
        return [OI, FUNDING] + [SERIES + n for n in ctx.names()]

    def show_only(self, keys: list[str]) -> None:
        """Exactly these panes, in this order (``--panes``); ValueError naming a pane the data lacks."""
        have = self.available()
        missing = [k for k in keys if k not in have]
        if missing:
            raise ValueError(f"no {pane_title(missing[0])} pane in this data (panes: {', '.join(have)})")
        self.order = list(keys)
        self._save()
        self.rebuild()

    def set_on(self, key: str, on: bool) -> None:
        if on and key not in self.order:
            self.order.append(key)
        elif not on and key in self.order:
            self.order.remove(key)
        self._save()
        self.rebuild()

    def move(self, key: str, step: int) -> None:
        if key not in self.order:
            return
        i = self.order.index(key)
        j = max(0, min(len(self.order) - 1, i + step))
        self.order.insert(j, self.order.pop(i))
        self._save()
        self.rebuild()

    def _save(self) -> None:
        if self.window.persist:
            self.window.settings.setValue(SETTINGS_KEY, list(self.order))

    def shown(self) -> list[str]:
        """The panes on, in order (a saved series the data does not hold is kept but not shown)."""
        have = set(self.available())
        return [k for k in self.order if k in have]

    def rebuild(self) -> None:
        """Lay the panes out in order under the liquidation pane and refill the menu."""
        layout = self.window.graphics.ci
        for pane in self.panes.values():
            layout.removeItem(pane.plot)
        shown = self.shown()
        for key in list(self.panes):
            if key not in shown:
                self.panes.pop(key).clear()
        for row, key in enumerate(shown, start=2):
            pane = self.panes.get(key) or ContextPane(self.window, key)
            self.panes[key] = pane
            layout.addItem(pane.plot, row=row, col=0)
            layout.layout.setRowStretchFactor(row, CONTEXT_PANE_STRETCH)
        # only the lowest pane labels the time axis
        bottom = [self.window.liq.plot] + [self.panes[k].plot for k in shown]
        for plot in bottom:
            plot.getAxis("bottom").setStyle(showValues=plot is bottom[-1])
            plot.getAxis("bottom").setHeight(None if plot is bottom[-1] else 0)
        self._fill_menu(shown)
        self.redraw(force=True)

    def _fill_menu(self, shown: list[str]) -> None:
        self.menu.clear()
        for key in self.available():
            act = QAction(pane_title(key), self.menu)
            act.setObjectName(f"context_{key}")
            act.setCheckable(True)
            act.setChecked(key in shown)
            act.toggled.connect(lambda on, k=key: self.set_on(k, on))
            self.menu.addAction(act)
        if len(shown) > 1:
            self.menu.addSeparator()
            for key in shown:
                for text, step in (("up", -1), ("down", 1)):
                    act = QAction(f"Move {pane_title(key)} {text}", self.menu)
                    act.triggered.connect(lambda _=False, k=key, s=step: self.move(k, s))
                    self.menu.addAction(act)

    def _on_changed(self, names: frozenset) -> None:
        if names & {"start", "end", "asset", "theme", "data"}:
            self.redraw(force=bool(names & {"data"}))
        if "utc" in names:
            for pane in self.panes.values():
                pane.axis.set_utc(self.window.state.view.utc)

    def redraw(self, force: bool = False) -> None:
        v = self.window.state.view
        if not v.has_window:
            return
        for pane in self.panes.values():
            pane.draw(v.start, v.end, v.asset, force=force)
