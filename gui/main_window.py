"""Main window: price and liquidation panes over one ViewState, headline, controls."""
from __future__ import annotations

import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMenu, QMessageBox, QVBoxLayout, QWidget

from liqscope.models.dataset import Dataset
from liqscope.models.timeutil import format_duration
from liqscope.models.view import FIELDS, View, default_window, fit_view

from .about import show_about
from .alerts_ui import install_alerts
from .annotations import install_annotations
from .axis import OriginDateAxis, from_x
from .banner import DemoBanner
from .context_panes import ContextPanes
from .controls import Controls
from .crosshair import Crosshair
from .drilldown import install_drilldown
from .events_panel import install_events_panel
from .export import install_export_menu
from .headline import HeadlineStrip
from .hub import DataHub
from .importing import ImportController, accept_drop
from .live import FetchController, LiveController
from .liq_pane import LiqPane, UsdAxis
from .loader import DatasetLoader, read_store
from .price_pane import PriceAxis, PricePane
from .range_dialog import ask_range
from .replay_ui import install_replay
from .settings import load_view, open_settings, save_view
from .state import ViewState
from .tape import install_tape
from .theme import THEMES, display_name, palette, stylesheet

HEADLINE_THROTTLE_MS = 80
PART_SETTLE_MS = 120  # quiet time after a pan/zoom before the exact part of a large store is read


class MainWindow(QMainWindow):
    def __init__(self, dataset: Dataset | None = None, view: View | None = None, *, restore: bool = True):
        """``dataset`` None: the placeholder the app paints first; the data arrives via ``set_dataset``."""
        super().__init__()
        self._resize_timer = QTimer(self, singleShot=True, interval=30)
        self._resize_timer.timeout.connect(lambda: self.redraw(force=True))
        # the one holder of the shown dataset; this window's handler is connected first, so the view
        # is fitted to a new dataset before the controls, banner and panels hear of it
        self.hub = DataHub(dataset, self)
        self.hub.dataset_changed.connect(self._dataset_changed)
        self.hub.data_appended.connect(self.refresh_data)
        self._next_view: tuple[View | None, bool] | None = None
        self._data_swapped = False
        self.setWindowTitle("Liqscope")
        self.settings = open_settings()
        self.persist = restore  # screenshots/exports never overwrite the user's saved view
        initial = self._initial_view(view, restore)
        self.state = ViewState(initial, parent=self, fit=lambda v: fit_view(self.dataset, v))
        self._applying_range = False
        self._marked: tuple | None = None  # (window, filters) the markers were chosen for

        central = QWidget()
        central.setObjectName("central")
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(4)
        # the title line of exported images (what, where, when, which filters, from which data); hidden on screen
        self.export_title = QLabel()
        self.export_title.setObjectName("export_title")
        self.export_title.setWordWrap(True)
        self.export_title.hide()
        lay.addWidget(self.export_title)
        self.banner = DemoBanner(self, self.dataset)  # first run: demo notice + ways to get real data
        self.hub.dataset_changed.connect(self.banner.set_dataset)
        lay.addWidget(self.banner)
        self.headline = HeadlineStrip()
        lay.addWidget(self.headline)
        self.readout = QLabel(" ")
        self.readout.setObjectName("readout")
        lay.addWidget(self.readout)
        self.graphics = pg.GraphicsLayoutWidget()
        lay.addWidget(self.graphics, 1)
        self.setCentralWidget(central)
        # what is shown, permanently; transient messages (imports, errors) use showMessage
        self.view_info = QLabel()
        self.view_info.setObjectName("view_info")
        self.statusBar().addPermanentWidget(self.view_info)

        origin = lambda: self.hub.origin_s  # noqa: E731  (read at draw time: no copies to go stale)
        self.price_axis = OriginDateAxis(origin, utc=initial.utc, orientation="bottom")
        self.liq_axis = OriginDateAxis(origin, utc=initial.utc, orientation="bottom")
        for axis in (self.price_axis, self.liq_axis):
            self.hub.dataset_changed.connect(axis.invalidate)
        price_plot = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": self.price_axis,
                                                                     "right": PriceAxis("right")})
        liq_plot = self.graphics.addPlot(row=1, col=0, axisItems={"bottom": self.liq_axis,
                                                                   "right": UsdAxis("right")})
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        self.graphics.ci.layout.setSpacing(2)
        price_plot.getAxis("bottom").setStyle(showValues=False)
        liq_plot.setXLink(price_plot)
        self.price = PricePane(price_plot, origin)
        self.liq = LiqPane(liq_plot, origin)
        self.price.vb.sigXRangeChanged.connect(self._on_user_range)
        # docking or floating a panel resizes the charts, not the window: re-fit bars, labels, markers
        self.price.vb.sigResized.connect(lambda *_: self._resize_timer.start())

        self.crosshair = Crosshair(self, self.readout)

        self.loader = DatasetLoader(self)  # every (re)load of data: start-up, after import and fetch
        self._build_menus()
        self.controls = Controls(self, self.state, self.dataset.assets, self.dataset.exchanges)
        self.hub.dataset_changed.connect(lambda ds: self.controls.set_choices(ds.assets, ds.exchanges))
        self.menuBar().addMenu(self.data_menu)
        self.menuBar().addMenu(self.help_menu)  # keep Help last
        self.exports = install_export_menu(self)  # File ▸ Export PNG / Export CSV
        self.drilldown = install_drilldown(self)  # Panels menu, headline chip clicks, asset Details
        self.annotations = install_annotations(self)  # Annotate menu: levels, events, ranges on the charts
        self.context_panes = ContextPanes(self)  # open interest, funding, outside series under the bars
        self.events = install_events_panel(self)  # Panels ▸ Events: cascades, jump-to, CSV, chart shading
        self.tape = install_tape(self)  # Panels ▸ Live tape (recording and replaying)
        self.alerts = install_alerts(self)  # Data ▸ Alerts…: rules evaluated off the GUI thread, notifications
        self.replay = install_replay(self)  # Data ▸ Replay…: a journal or the window at N× through the live path
        self._headline_timer = QTimer(self)
        self._headline_timer.setSingleShot(True)
        self._headline_timer.setInterval(HEADLINE_THROTTLE_MS)
        self._headline_timer.timeout.connect(self.update_headline)
        # a large store is held in parts (models/store/window.py): when the view leaves what the part
        # answers exactly, what is held stays drawn and the part that serves it is read once the gesture stops
        self._part_timer = QTimer(self, singleShot=True, interval=PART_SETTLE_MS)
        self._part_timer.timeout.connect(self._load_part)
        self.state.changed.connect(self._on_changed)
        geometry = self.settings.value("window/geometry")
        if restore and geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
        self._on_changed(frozenset({"asset", "exchange", "theme", "start", "end", "utc", "data"}))
        self._headline_timer.stop()
        self.update_headline()  # the first frame shows the figures, not a placeholder

    @property
    def dataset(self) -> Dataset:
        """The dataset shown now (the hub's): read it, never keep it."""
        return self.hub.dataset

    @property
    def origin_s(self) -> float:
        return self.hub.origin_s

    def set_dataset(self, dataset: Dataset, view: View | None = None, *, restore: bool = False) -> None:
        """Show another dataset without a restart (background load finished, import landed).

        ``view``: a view asked for explicitly (already checked), shown as is; else the saved
        view (``restore``) or the current one, fitted to the new data.
        """
        self._next_view = (view, restore)
        self.hub.set_dataset(dataset)

    def _dataset_changed(self, dataset: Dataset) -> None:
        view, restore = self._next_view or (None, False)
        self._next_view = None
        if view is not None:
            v = fit_view(dataset, view)  # keeps the window exactly, even an empty one
        elif restore:
            v = self._initial_view(None, True)
        else:  # carried over: a window that does not touch the new data gives way to its busiest day
            v = fit_view(dataset, self.state.view, keep_window=False)
        self._marked = None
        self.crosshair.clear()  # it described the old data
        self._data_swapped = True  # the next redraw reloads the price series, whatever fields changed
        self.state.update(**{k: getattr(v, k) for k in FIELDS})
        self.state.flush()  # one `changed` for the controls, panels and this window
        if self._data_swapped:  # the view did not change at all: redraw for the new data anyway
            self._on_changed(frozenset())

    # -- set-up -------------------------------------------------------------
    def _initial_view(self, view: View | None, restore: bool) -> View:
        if view is not None:
            return fit_view(self.dataset, view)
        start, end = default_window(self.dataset)
        base = View(start=start, end=end)
        if restore:
            saved = load_view(self.settings)
            try:
                base = View(**{**base.__dict__, **saved})
            except TypeError:
                pass
        return fit_view(self.dataset, base, keep_window=False)

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
        if self.dataset.is_demo:  # the store the recorder writes takes the demo's place, read off the GUI thread
            self.loader.load(read_store, on_loaded=lambda ds: (self.set_dataset(ds), self.live.start()))
            return
        self.live.start()

    def _recording_changed(self, on: bool) -> None:
        with QSignalBlocker(self.record_action):
            self.record_action.setChecked(on)

    def refresh_data(self) -> None:
        """The dataset grew in place (live events): redraw bars, markers and the headline."""
        self.controls.set_choices(self.dataset.assets, self.dataset.exchanges)  # a no-op unless one joined
        self._marked = None
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
        if self._data_swapped:
            names, self._data_swapped = names | {"asset", "exchange", "start", "end", "data"}, False
        v = self.state.view
        if "theme" in names:
            self.apply_theme()
        if "utc" in names:
            self.price_axis.set_utc(v.utc)
            self.liq_axis.set_utc(v.utc)
        if names & {"asset", "exchange", "data"}:
            key = self.dataset.prices.find(v.asset, v.exchange)
            self.price.set_series(self.dataset.prices.candles(key) if key else None)
            self.price.plot.setTitle(None)
        if names & {"start", "end"}:
            self._apply_range(v.start, v.end)
        force = bool(names & {"asset", "exchange", "price_style", "log_scale", "theme", "markers", "data"})
        self.redraw(force=force)
        if not self.served:
            self._part_timer.start()  # restarted by every change of a gesture: one read when it stops
        if not self._headline_timer.isActive():
            self._headline_timer.start()
        self.save_settings()

    @property
    def served(self) -> bool:
        """The dataset answers the current view exactly (always, unless it is a part of a large store)."""
        v = self.state.view
        return not v.has_window or self.dataset.serves(v.start, v.end, v.liq_filter())

    def _load_part(self) -> None:
        if not self.served:
            self.loader.load_part(self.state.view)

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
        """Draw the current view; everything that describes it (markers, notes, labels, readout) follows."""
        v = self.state.view
        if not v.has_window:
            self.price.redraw_empty()
            self.price.note.say(self._price_note(v))
            self._update_view_info()
            return
        self.price.redraw(v.start, v.end, style=v.price_style, log=v.log_scale, force=force)
        filt = v.liq_filter()
        index = self.dataset.index(filt.pop("min_notional"))
        self.liq.redraw(index, v.start, v.end, override=v.bucket, stacked=v.stacked,
                        exchanges=self.dataset.exchanges, filters=filt, force=force,
                        min_bucket=self.dataset.resolution_s)
        self.update_markers(index, force=force)
        self.price.note.say(self._price_note(v))
        self.liq.note.say(None if index.totals(v.start, v.end, **filt).count else "No liquidations in this window"
                          + ("" if v.side == "both" and not v.min_usd and v.exchanges is None else " (filters apply)"))
        self._update_view_info()
        self.crosshair.refresh()

    def _price_note(self, v: View) -> str | None:
        """Why the price pane is empty, and what to do about it."""
        if self.price.pyramid is None:
            if not len(self.dataset.prices) and not len(self.dataset.liquidations):
                return None if self.dataset.label.startswith("Loading") else "This dataset is empty"
            if not self.dataset.prices.exchanges_for(v.asset):
                return (f"No {v.asset} candles in this dataset: import a klines file (File ▸ Import files…)\n"
                        "or download them (Data ▸ Fetch candles…)")
            return f"No {v.asset} candles from {display_name(v.exchange)}"
        if self.price.visible is not None and not len(self.price.visible):
            return f"No {v.asset} candles from {display_name(v.exchange)} in this window"
        return None

    def update_markers(self, index=None, *, force: bool = False) -> None:
        """The largest liquidations of the price asset in the visible window (about width/8 of them).

        Chosen again whenever the window or the filters change, so a zoom that keeps
        the bar bucket still shows the markers of what is in view.
        """
        v = self.state.view
        mf = v.for_asset(v.asset).liq_filter()
        index = index if index is not None else self.dataset.index(mf["min_notional"])
        mf.pop("min_notional")
        limit = max(40, int(self.price.vb.width() / 8))
        key = (v.start, v.end, v.markers, v.log_scale, limit, id(index), repr(sorted(mf.items())))
        if not force and key == self._marked:
            return
        self._marked = key
        rows = index.largest_rows(v.start, v.end, limit, **mf) if v.markers and v.has_window else None
        self.price.set_markers(self.dataset.liquidations.arrays, rows, log=v.log_scale, visible=v.markers)

    def update_headline(self) -> None:
        v = self.state.view
        if not v.has_window:
            return
        summary = self.dataset.view_summary(v, largest=1)
        scope = "all assets" if v.liq_scope == "all" else v.asset
        self.headline.set_figures(summary, scope, pending=not self.served)
        self.headline.set_price(v.asset, v.exchange, self.price.window_stats(v.start, v.end))
        # the same definition as `liqscope summary --json` (models/context_cli.summary_fields): the view's
        # asset, its exchange filter, and only the context rows inside the window
        ctx = self.dataset.context.window(v.start, v.end)
        exchanges = sorted(v.exchanges) if v.exchanges is not None else None
        self.headline.set_context(v.asset, ctx.oi_change_pct(v.start, v.end, v.asset, exchanges),
                                  ctx.funding_mean(v.start, v.end, v.asset, exchanges))

    def _update_view_info(self) -> None:
        """The status bar's permanent description of what is drawn now (levels follow the zoom)."""
        v = self.state.view
        scope = "all assets" if v.liq_scope == "all" else v.asset
        candles = f"candles {format_duration(self.price.level)}" if self.price.pyramid is not None else "no candles"
        self.view_info.setText(f"{v.window_text()} · {scope} · {candles} · "
                               f"bars {format_duration(self.liq.bucket)} · {self.dataset.label}")
        # an empty price pane shows no made-up price scale
        self.price.plot.getAxis("right").setStyle(showValues=self.price.pyramid is not None)

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
        self.crosshair.set_pen(pg.mkPen(theme.crosshair, width=1, style=Qt.PenStyle.DashLine), theme)

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
        picked = ask_range(self, v.start, v.end)
        if picked is not None:
            self.state.update(start=picked[0], end=picked[1])

    # -- crosshair ----------------------------------------------------------
    def show_readout(self, x: float, y: float | None = None) -> str:
        """Move the crosshair to x (seconds from origin) and describe what is under it."""
        return self.crosshair.show(x, y)

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
