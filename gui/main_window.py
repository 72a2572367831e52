"""Main window: price and liquidation panes over one ViewState, headline, controls."""
from __future__ import annotations

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QApplication, QDateTimeEdit, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QMainWindow, QMenu, QMessageBox, QVBoxLayout, QWidget)

from liqscope.models.dataset import Dataset
from liqscope.models.store import open_store
from liqscope.models.format import number, usd
from liqscope.models.timeutil import format_duration

from .about import show_about
from .axis import OriginDateAxis, from_x
from .banner import DemoBanner
from .controls import Controls
from .drilldown import install_drilldown
from .export import install_export_menu
from .headline import HeadlineStrip
from .importing import ImportController, accept_drop
from .live import FetchController, LiveController
from .liq_pane import LiqPane, UsdAxis
from .price_pane import PriceAxis, PricePane, dataset_origin
from .settings import load_view, open_settings, save_view
from .state import View, ViewState
from .theme import LONG_COLOR, SHORT_COLOR, THEMES, display_name, palette, stylesheet

HEADLINE_THROTTLE_MS = 80


class MainWindow(QMainWindow):
    def __init__(self, dataset: Dataset, view: View | None = None, *, restore: bool = True):
        super().__init__()
        self._resize_timer = QTimer(self, singleShot=True, interval=30)
        self._resize_timer.timeout.connect(lambda: self.redraw(force=True))
        self.dataset = dataset
        self.setWindowTitle("Liqscope")
        self.settings = open_settings()
        self.persist = restore  # screenshots/exports never overwrite the user's saved view
        initial = self._initial_view(view, restore)
        self.state = ViewState(initial, parent=self)
        self._applying_range = False
        self.origin_s = dataset_origin(dataset)

        central = QWidget()
        central.setObjectName("central")
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(4)
        self.banner = DemoBanner(self, dataset)  # first run: demo notice + ways to get real data
        lay.addWidget(self.banner)
        self.headline = HeadlineStrip()
        lay.addWidget(self.headline)
        self.readout = QLabel(" ")
        self.readout.setObjectName("readout")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.readout)
        self.graphics = pg.GraphicsLayoutWidget()
        lay.addWidget(self.graphics, 1)
        self.setCentralWidget(central)
        # what is shown, permanently; transient messages (imports, errors) use showMessage
        self.view_info = QLabel()
        self.view_info.setObjectName("view_info")
        self.statusBar().addPermanentWidget(self.view_info)

        self.price_axis = OriginDateAxis(self.origin_s, utc=initial.utc, orientation="bottom")
        self.liq_axis = OriginDateAxis(self.origin_s, utc=initial.utc, orientation="bottom")
        price_plot = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": self.price_axis,
                                                                     "right": PriceAxis("right")})
        liq_plot = self.graphics.addPlot(row=1, col=0, axisItems={"bottom": self.liq_axis,
                                                                   "right": UsdAxis("right")})
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        self.graphics.ci.layout.setSpacing(2)
        price_plot.getAxis("bottom").setStyle(showValues=False)
        liq_plot.setXLink(price_plot)
        self.price = PricePane(price_plot, self.origin_s)
        self.liq = LiqPane(liq_plot, self.origin_s)
        self.price.vb.sigXRangeChanged.connect(self._on_user_range)

        self.crosshair = [pg.InfiniteLine(angle=90, movable=False) for _ in range(2)]
        self.hline = pg.InfiniteLine(angle=0, movable=False)
        price_plot.addItem(self.crosshair[0], ignoreBounds=True)
        price_plot.addItem(self.hline, ignoreBounds=True)
        liq_plot.addItem(self.crosshair[1], ignoreBounds=True)
        for line in (*self.crosshair, self.hline):
            line.setVisible(False)  # until the pointer is over a chart
        self._mouse_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=60,
                                           slot=lambda ev: self.on_mouse_scene(ev[0]))

        self._build_menus()
        self.controls = Controls(self, self.state, dataset.prices.assets, dataset.exchanges)
        self.menuBar().addMenu(self.data_menu)
        self.menuBar().addMenu(self.help_menu)  # keep Help last
        self.exports = install_export_menu(self)  # File ▸ Export PNG / Export CSV
        self.drilldown = install_drilldown(self)  # Panels menu, headline chip clicks, asset Details
        self._headline_timer = QTimer(self)
        self._headline_timer.setSingleShot(True)
        self._headline_timer.setInterval(HEADLINE_THROTTLE_MS)
        self._headline_timer.timeout.connect(self.update_headline)
        self.state.changed.connect(self._on_changed)
        geometry = self.settings.value("window/geometry")
        if restore and geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
        self._on_changed(frozenset({"asset", "exchange", "theme", "start", "end", "utc"}))
        self._headline_timer.stop()
        self.update_headline()  # the first frame shows the figures, not a placeholder

    def set_dataset(self, dataset: Dataset, view: View | None = None, *, restore: bool = False) -> None:
        """Show another dataset without a restart (background load finished, import landed)."""
        self.dataset = dataset
        self.origin_s = dataset_origin(dataset)
        self.price.origin_s = self.liq.origin_s = self.origin_s
        self.price_axis.set_origin(self.origin_s)
        self.liq_axis.set_origin(self.origin_s)
        self.banner.set_dataset(dataset)
        self.controls.set_choices(dataset.prices.assets, dataset.exchanges)
        v = self._initial_view(view, restore) if (view is not None or restore) else self._validated(self.state.view)
        self.state.update(**{k: getattr(v, k) for k in ("asset", "exchange", "start", "end")})
        self.state.flush()
        self._on_changed(frozenset({"asset", "exchange", "start", "end"}))
        self.drilldown.dataset_changed()  # open panels re-query, Panels menu re-lists

    # -- set-up -------------------------------------------------------------
    def _initial_view(self, view: View | None, restore: bool) -> View:
        if view is not None:
            return self._validated(view)
        start, end = self.dataset.busiest_day() or (None, None)
        base = View(start=start, end=end)
        if restore:
            saved = load_view(self.settings)
            try:
                base = View(**{**base.__dict__, **saved})
            except TypeError:
                pass
        return self._validated(base)

    def _validated(self, v: View) -> View:
        """Fall back to sensible values when saved/requested ones do not exist in this dataset."""
        from dataclasses import replace

        assets = self.dataset.prices.assets or self.dataset.assets
        asset = v.asset if v.asset in assets else ("BTC" if "BTC" in assets else (assets[0] if assets else v.asset))
        exchanges = self.dataset.prices.exchanges_for(asset)
        exchange = v.exchange if v.exchange in exchanges else (exchanges[0] if exchanges else v.exchange)
        start, end = v.start, v.end
        r = self.dataset.time_range()
        if r is None:
            start = end = None
        elif start is None or end is None or end <= start or end < r[0] or start > r[1]:
            start, end = self.dataset.busiest_day()
        theme = v.theme if v.theme in THEMES else "dark"
        return replace(v, asset=asset, exchange=exchange, start=start, end=end, theme=theme)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.importer = ImportController(self)
        self.setAcceptDrops(True)  # drop data files on the window to import them
        import_act = QAction("&Import files…", self)
        import_act.setObjectName("action_import")
        import_act.setShortcut("Ctrl+I")
        import_act.setToolTip("Add CSV/Parquet files (Binance, Tardis, any mapped CSV) to the local store")
        import_act.triggered.connect(self.open_import_dialog)
        file_menu.addAction(import_act)
        file_menu.addSeparator()
        data_menu = QMenu("&Data", self)
        self.data_menu = data_menu
        self.live = LiveController(self)
        self.fetcher = FetchController(self)
        fetch_act = QAction("&Fetch candles…", self)
        fetch_act.setObjectName("action_fetch")
        fetch_act.setToolTip("Download candles from Binance, OKX or Bybit public APIs into the local store")
        fetch_act.triggered.connect(self.open_fetch_dialog)
        data_menu.addAction(fetch_act)
        self.record_action = QAction("&Record live liquidations", self)
        self.record_action.setObjectName("action_record")
        self.record_action.setCheckable(True)
        self.record_action.setToolTip("Record Binance, OKX and Bybit public liquidation streams into the store")
        self.record_action.toggled.connect(self.toggle_recording)
        self.live.recording_changed.connect(self._recording_changed)
        data_menu.addAction(self.record_action)
        quit_act = QAction("&Quit", self)
        quit_act.setShortcut("Ctrl+Q")
        quit_act.triggered.connect(self.close)
        file_menu.addAction(quit_act)
        self.file_menu = file_menu
        help_menu = QMenu("&Help", self)
        keys = QAction("Keyboard shortcuts", self)
        keys.triggered.connect(self._show_keys)
        help_menu.addAction(keys)
        about = QAction("&About Liqscope", self)
        about.setObjectName("action_about")
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)
        self.help_menu = help_menu

    def open_import_dialog(self) -> None:
        self.importer.ask_and_import()

    def open_fetch_dialog(self) -> None:
        self.fetcher.ask_and_fetch()

    def toggle_recording(self, on: bool | None = None) -> None:
        """Start/stop the live recorder; the demo gives way to the store the recorder writes."""
        on = (not self.live.recording) if on is None else bool(on)
        if on == self.live.recording:
            return
        if not on:
            self.live.stop()
            return
        if self.dataset.is_demo:
            self.set_dataset(open_store().load_dataset())
        self.live.start()

    def _recording_changed(self, on: bool) -> None:
        with QSignalBlocker(self.record_action):
            self.record_action.setChecked(on)

    def refresh_data(self) -> None:
        """The dataset changed in place (live events): redraw bars, markers and the headline."""
        self._on_changed(frozenset({"data"}))

    def dragEnterEvent(self, event) -> None:
        if accept_drop(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = accept_drop(event)
        if paths:
            event.acceptProposedAction()
            self.importer.start(paths)

    def show_about(self):
        return show_about(self)

    def _show_keys(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts",
                                "Alt+1…Alt+6: 1h, 4h, 12h, 24h, 7d, all\nCtrl+0: reset view\n"
                                "Ctrl+L: line/candles   Ctrl+G: log scale\nCtrl+M: markers   Ctrl+T: local/UTC time\n"
                                "Mouse wheel: zoom   Drag: pan")

    # -- state -> views -----------------------------------------------------
    def _on_changed(self, names: frozenset) -> None:
        v = self.state.view
        if "theme" in names:
            self.apply_theme()
        if "utc" in names:
            self.price_axis.set_utc(v.utc)
            self.liq_axis.set_utc(v.utc)
            self.liq_axis.setLabel("time (UTC)" if v.utc else "time (local)")
        if names & {"asset", "exchange"}:
            key = self.dataset.prices.find(v.asset, v.exchange)
            self.price.set_series(self.dataset.prices.candles(key) if key else None)
            self.price.plot.setTitle(None)
        if names & {"start", "end"}:
            self._apply_range(v.start, v.end)
        force = bool(names & {"asset", "exchange", "price_style", "log_scale", "theme", "markers"})
        self.redraw(force=force)
        if not self._headline_timer.isActive():
            self._headline_timer.start()
        self.save_settings()

    def _apply_range(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> None:
        if start is None or end is None:
            return
        x0 = start.value / 1e9 - self.origin_s
        x1 = end.value / 1e9 - self.origin_s
        cur = self.price.vb.viewRange()[0]
        if abs(cur[0] - x0) < 0.5 and abs(cur[1] - x1) < 0.5:
            return
        self._applying_range = True
        try:
            self.price.vb.setXRange(x0, x1, padding=0)
        finally:
            self._applying_range = False

    def _on_user_range(self, _vb, rng) -> None:
        if self._applying_range:
            return
        start = from_x(rng[0], self.origin_s).round("ms")
        end = from_x(rng[1], self.origin_s).round("ms")
        self.state.update(start=start, end=end)

    def redraw(self, force: bool = False) -> None:
        v = self.state.view
        if v.start is None:
            return
        self.price.redraw(v.start, v.end, style=v.price_style, log=v.log_scale, force=force)
        filt = v.liq_filter()
        index = self.dataset.index(filt.pop("min_notional"))
        rebinned = self.liq.redraw(index, v.start, v.end, override=v.bucket, stacked=v.stacked,
                                   exchanges=self.dataset.exchanges, filters=filt, force=force)
        if rebinned or force:
            self.update_markers(index, filt)

    def update_markers(self, index, filt: dict) -> None:
        """The largest liquidations of the asset over the cached range (about width/8 per view)."""
        v = self.state.view
        rows = None
        if v.markers:
            lo, hi = (pd.Timestamp(t, tz="UTC") for t in self.liq._range_ns)
            limit = 3 * max(40, int(self.price.vb.width() / 8))
            rows = index.largest_rows(lo, hi, limit, exchanges=filt["exchanges"], assets=[v.asset],
                                      side=filt["side"])
        self.price.set_markers(self.dataset.liquidations.arrays, rows, log=v.log_scale, visible=v.markers)

    def update_headline(self) -> None:
        v = self.state.view
        if v.start is None:
            return
        summary = self.dataset.summary(v.start, v.end, **v.liq_filter(), largest=1)
        scope = "all assets" if v.liq_scope == "all" else v.asset
        self.headline.set_figures(summary, scope)
        fmt = "%Y-%m-%d %H:%M"
        self.view_info.setText(
            f"{v.start.strftime(fmt)} → {v.end.strftime(fmt)} UTC · {scope} · "
            f"candles {format_duration(self.price.level)} · bars {format_duration(self.liq.bucket)} · "
            f"{self.dataset.label}")

    def apply_theme(self) -> None:
        theme = THEMES[self.state.view.theme]
        app = QApplication.instance()
        if app.style().name().lower() != "fusion":
            app.setStyle("Fusion")
        app.setPalette(palette(theme))
        self.setStyleSheet(stylesheet(theme))
        self.graphics.setBackground(theme.background)
        for plot in (self.price.plot, self.liq.plot):
            for name in ("bottom", "right"):
                ax = plot.getAxis(name)
                ax.setPen(pg.mkPen(theme.crosshair))
                ax.setTextPen(pg.mkPen(theme.foreground))
        self.price.set_theme(theme)
        self.liq.set_foreground(theme.foreground)
        pen = pg.mkPen(theme.crosshair, width=1, style=Qt.PenStyle.DashLine)
        for line in (*self.crosshair, self.hline):
            line.setPen(pen)

    # -- actions ------------------------------------------------------------
    def apply_preset(self, seconds: int | None) -> None:
        r = self.dataset.time_range()
        if r is None:
            return
        if seconds is None:
            self.state.update(start=r[0].floor("min"), end=r[1].ceil("min") + pd.Timedelta(minutes=1))
            return
        end = min(self.state.view.end or r[1], r[1].ceil("min") + pd.Timedelta(minutes=1))
        self.state.update(start=end - pd.Timedelta(seconds=seconds), end=end)

    def reset_view(self) -> None:
        day = self.dataset.busiest_day()
        if day:
            self.state.update(start=day[0], end=day[1])

    def choose_custom_range(self) -> None:
        v = self.state.view
        dlg = QDialog(self)
        dlg.setWindowTitle("Custom range (UTC)")
        form = QFormLayout(dlg)
        edits = []
        for label, ts in (("Start (inclusive)", v.start), ("End (exclusive)", v.end)):
            e = QDateTimeEdit(dlg)
            e.setTimeSpec(Qt.TimeSpec.UTC)
            e.setDisplayFormat("yyyy-MM-dd HH:mm")
            e.setCalendarPopup(True)
            e.setDateTime(ts.to_pydatetime())
            form.addRow(label, e)
            edits.append(e)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dlg.accept)
        buttons.rejected.connect(dlg.reject)
        form.addRow(buttons)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            start, end = (pd.Timestamp(e.dateTime().toSecsSinceEpoch(), unit="s", tz="UTC") for e in edits)
            if end > start:
                self.state.update(start=start, end=end)

    # -- crosshair ----------------------------------------------------------
    def on_mouse_scene(self, pos) -> None:
        for plot in (self.price.plot, self.liq.plot):
            if plot.sceneBoundingRect().contains(pos):
                pt = plot.getViewBox().mapSceneToView(pos)
                self.show_readout(pt.x(), pt.y() if plot is self.price.plot else None)
                return

    def show_readout(self, x: float, y: float | None = None) -> str:
        """Move the crosshair to x (seconds from origin) and describe what is under it."""
        for line in self.crosshair:
            line.setPos(x)
            line.setVisible(True)
        self.hline.setVisible(y is not None)
        if y is not None:
            self.hline.setPos(y)
        ts = from_x(x, self.origin_s)
        v = self.state.view
        parts = [f"<b>{ts.strftime('%Y-%m-%d %H:%M:%S')} UTC</b>"]
        c = self.price.candle_at(ts.value)
        if c is not None:
            parts.append(f"{v.asset} {v.exchange} {format_duration(self.price.level)} "
                         f"O {number(c['open'])} H {number(c['high'])} L {number(c['low'])} C {number(c['close'])}")
        hit = self.liq.value_at(ts)
        if hit is not None:
            bucket_ts, sums = hit
            ex_txt = ", ".join(f"{display_name(k)} {usd(val)}" for k, val in sums["by_exchange"].items() if val > 0)
            parts.append(f"{format_duration(self.liq.bucket)} bucket {bucket_ts.strftime('%H:%M')}: "
                         f"<span style='color:{LONG_COLOR}'>longs {usd(sums['long'])}</span> · "
                         f"<span style='color:{SHORT_COLOR}'>shorts {usd(sums['short'])}</span>"
                         + (f" ({ex_txt})" if ex_txt else ""))
        text = " &nbsp;│&nbsp; ".join(parts)
        self.readout.setText(text)
        return text

    # -- persistence --------------------------------------------------------
    def save_settings(self) -> None:
        if not self.persist:
            return
        save_view(self.settings, self.state.view)

    def closeEvent(self, event) -> None:
        if self.live.recording:
            self.live.stop()  # flush the journal and the store before the window goes
        if self.persist:
            self.settings.setValue("window/geometry", self.saveGeometry())
        self.save_settings()
        self.settings.sync()
        super().closeEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._resize_timer.start()  # one re-draw per burst of resize events (levels follow the pixels)
