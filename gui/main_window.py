"""The main window: composes the controls, the views and the status bar, and wires signals.

Data flows one way: controls -> changes dict -> core command -> worker thread ->
session.step() -> frozen Snapshot -> signal -> the newest is kept -> a 30 Hz timer draws it.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QScrollArea,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core import Config, Session
from core.commands import RecomputeSurface, Reset, Update
from core.replies import ParamsCopy
from core.snapshot import Snapshot

from .actions import build_menus
from .banner import Banner
from .config_files import RESOURCES, ConfigFiles, find_resources, settings
from .controls import ControlPanel
from .csv_dialog import CsvMenu
from .divergence import CAUSES, RESUME_RULE, divergence_text
from .error_log import error_log_of
from .experiments import EXPERIMENTS
from .experiments.base import Context
from .export import ExportError, export_views, save_pixmap
from .live_grid import LiveGrid
from .plots import VIEWS
from .plots.base import fmt
from .record_control import RecordControl
from .tour import HIGHLIGHT, TourPanel, load_tour
from .worker import WorkerThread

__all__ = ["MainWindow", "RESOURCES", "find_resources", "settings", "experiment_help"]

REDRAW_MS = 33  # at most ~30 redraws a second


def experiment_help(view) -> str:
    """The explanation of an experiment tab, from the text the experiment declares."""
    return (
        f"## {view.title}\n\n{view.help_text}\n\n"
        f"Press **{view.run_button.text().replace('&', '')}** at the top of the tab to run it "
        "on the current "
        "settings; **Cancel** stops it and keeps the last complete result. **Ctrl+E** "
        "exports this tab's picture and its data (CSV) with the live views.\n\n"
        "The **Live training** tab (Alt+L) has the explanation of the live views."
    )


#: the smallest window; every tab is whole at this size (tests/gui/test_gui_sizes.py)
MIN_SIZE = (1024, 640)
#: below this width the explanation dock closes by itself (View menu or F1 bring it back)
HELP_DOCK_MIN_WINDOW = 1280


class MainWindow(QMainWindow):
    """The Batchscope window.

    Parameters
    ----------
    config : Config for a new session (default settings if None)
    session : an existing core Session to show (e.g. trained headless first); overrides config
    run : start training at once
    remember : restore and save the window geometry and settings (QSettings); headless
        rendering passes False so pictures do not depend on the last session
    """

    snapshotDrawn = Signal(object)

    def __init__(
        self,
        config: Config | None = None,
        *,
        session: Session | None = None,
        run: bool = True,
        remember: bool = True,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Batchscope — what a minibatch gradient is made of")
        self.session = session if session is not None else Session(config)
        self.last_snapshot: Snapshot | None = None
        self._pending: Snapshot | None = None
        self._drawn: Snapshot | None = None
        #: views still to draw the frame being drawn one view per event-loop turn
        self._staggered: list = []
        self._stagger_frame: tuple[Snapshot, float] | None = None
        self.redraw_ms: deque[float] = deque(maxlen=600)
        self.redraw_count = 0
        self._closing = False
        self._remember = remember
        self._blame = "lr"  #: the training setting changed last (see gui.divergence)
        self._blamed: str | None = None  #: the control showing a divergence note
        self._divergence_shown: tuple[int, int] | None = None
        self._params_callbacks: list = []  # experiments waiting for a copy of the weights
        self.error_log = error_log_of(QApplication.instance())
        self.error_log.errorLogged.connect(self._on_uncaught, Qt.ConnectionType.QueuedConnection)
        self._build_views()
        self.controls_dock = self._build_controls_dock()
        self._build_help_docks()
        self._build_status_bar()
        self._build_menus()
        self.worker_thread = WorkerThread(self.session)
        self.worker = self.worker_thread.worker
        self._connect_worker()
        self._connect_controls()
        self.timer = self._redraw_timer()
        self._first_geometry(remember)
        self.worker_thread.start()
        if run:
            self.set_running(True)

    # ------------------------------------------------------------ composition
    def _build_views(self) -> None:
        """The live views in their grid, one tab per experiment, the banner above them."""
        self.views = {name: cls() for name, cls in VIEWS}
        # the lambda_max record of the session trained here (headless rendering: all of it)
        self.views["loss_curves"].curvature_source = lambda: (
            self.session.run_id,
            self.session.curvature_rows(),
        )
        self.tabs = QTabWidget()
        self.tabs.setObjectName("viewTabs")
        self.tabs.addTab(LiveGrid(self.views), "&Live training")
        self.experiments = {}
        for k, cls in enumerate(EXPERIMENTS):
            view = cls(self.experiment_context)
            view.finished.connect(self._on_experiment_finished)
            self.experiments[cls.file_stem] = view
            self.tabs.addTab(view, f"&{k + 2} {cls.title}")
            self.tabs.setTabToolTip(k + 1, cls.help_text)
        # a banner above the views says what the user should know but need not answer
        self.banner = Banner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.banner)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

    def _build_controls_dock(self) -> QDockWidget:
        self.controls = ControlPanel(self.session.config)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        dock = QDockWidget("Controls", self)
        dock.setObjectName("controlsDock")
        dock.setWidget(scroll)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        # As wide as the controls need, plus a scroll bar: a restored or dragged dock can
        # never squeeze a spin box's arrows or the Reset button.
        scroll.setMinimumWidth(
            self.controls.minimumSizeHint().width()
            + scroll.verticalScrollBar().sizeHint().width()
            + 2 * scroll.frameWidth()
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        return dock

    def _build_help_docks(self) -> None:
        """The explanation on the right, and the guided tour tabbed with it (hidden)."""
        help_view = QTextBrowser()
        help_view.setObjectName("explanationText")
        help_view.setOpenExternalLinks(True)
        help_path = RESOURCES / "help.md"
        self._live_help = (
            help_path.read_text(encoding="utf-8") if help_path.exists() else "Help text not found."
        )
        help_view.setMarkdown(self._live_help)
        help_view.setMinimumWidth(220)
        self.help_view = help_view
        self.tabs.currentChanged.connect(self._help_for_tab)
        self.explanation_dock = self._dock("What am I looking at?", "explanationDock", help_view)
        try:
            steps = load_tour(RESOURCES / "tour.md")
        except (OSError, ValueError):
            steps = []
        self.tour = TourPanel(steps)
        self.tour.stepEntered.connect(self._on_tour_step)
        self.tour.left.connect(self.leave_tour)
        self.tour_dock = self._dock("Guided tour", "tourDock", self.tour)
        self.tabifyDockWidget(self.explanation_dock, self.tour_dock)
        self.tour_dock.hide()
        self._highlighted: QWidget | None = None
        self._tour_wait: tuple[dict, int] | None = None

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        labels = {}
        for key, name, text in (
            ("step", "stepLabel", "step 0"),
            ("loss", "lossLabel", ""),
            ("speed", "speedLabel", ""),
            ("state", "stateLabel", "paused"),
        ):
            labels[key] = label = QLabel(text)
            label.setObjectName(name)
            label.setMinimumWidth(90)
            sb.addPermanentWidget(label)
        self.step_label, self.loss_label = labels["step"], labels["loss"]
        self.speed_label, self.state_label = labels["speed"], labels["state"]

    def _build_menus(self) -> None:
        """The menus from the action table (gui.actions), the Rec button in the status bar."""
        self.config_files = ConfigFiles(self, self._remember)
        self.actions = build_menus(
            self,
            {
                "presets": self.config_files.add_presets_menu,
                "recent": self.config_files.add_recent_menu,
                "dataset": self._add_dataset_menu,
                "docks": self._add_dock_toggles,
            },
        )
        self.run_action = self.actions["runAction"]
        self.recorder = RecordControl(self, settings)  # the Rec button in the status bar
        self.recorder.bind_action(self.actions["recordAction"])

    def _redraw_timer(self) -> QTimer:
        """Redraws are throttled, not clocked: a snapshot arriving when a frame is due is
        drawn at once; one arriving sooner arms this single-shot timer until the frame is
        due. About 30 redraws a second at most, and none lost to a timer that ticks just
        before a snapshot arrives."""
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.timeout.connect(self._redraw)
        self._next_redraw = 0.0
        return timer

    def _add_dataset_menu(self, menu) -> None:
        self.csv_menu = CsvMenu(self, menu, remember=self._remember)

    def _add_dock_toggles(self, menu) -> None:
        for dock in (self.controls_dock, self.explanation_dock, self.tour_dock):
            menu.addAction(dock.toggleViewAction())

    def _connect_worker(self) -> None:
        """The worker's signals, queued to this (GUI) thread."""
        w = self.worker
        for signal, slot in (
            (w.snapshotReady, self._on_snapshot),
            (w.messages, self._on_messages),
            (w.commandFailed, self._on_command_failed),
            (w.stateChanged, self._on_state),
            (w.errorOccurred, self._on_error),
            (w.engineRestarted, self._on_engine_restarted),
            (w.engineLost, self._on_engine_lost),
            (w.surfaceBusy, self._on_surface_busy),
            (w.paramsReady, self._on_params),
        ):
            signal.connect(slot, Qt.ConnectionType.QueuedConnection)

    def _connect_controls(self) -> None:
        c = self.controls
        c.changesRequested.connect(self._on_changes)
        c.runToggled.connect(self.set_running)
        c.stepRequested.connect(self.step_once)
        c.resetRequested.connect(self.reset)
        c.exportRequested.connect(self.export_dialog)
        c.recomputeRequested.connect(self.recompute_surface)
        c.logYToggled.connect(self.views["loss_curves"].set_log_y)

    def _first_geometry(self, remember: bool) -> None:
        """The last session's geometry, else 1600 x 1000 within the screen."""
        self.setMinimumSize(*MIN_SIZE)
        self.resize(1600, 1000)
        self.resizeDocks(
            [self.controls_dock, self.explanation_dock], [285, 250], Qt.Orientation.Horizontal
        )
        if remember and self._restore_window_state():
            return
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is not None and screen.width() < 1600:
            self.resize(min(1600, screen.width()), min(1000, screen.height()))
        self.fit_docks_to_width(self.width())

    # ------------------------------------------------------------ run control
    def set_running(self, running: bool) -> None:
        self.worker.set_running(running)
        self.controls.set_running(running)
        snap = self.newest_snapshot
        if running and snap is not None and snap.diverged:
            # the request stands (the run goes on after the next change), but say so
            self.statusBar().showMessage(
                "Diverged: Run waits for a change of setting (e.g. a lower learning rate) "
                f"or Reset. See the note under the {CAUSES[self._blame]}.",
                10000,
            )

    def toggle_run(self) -> None:
        self.set_running(not self.worker.is_running())

    def step_once(self) -> None:
        self.set_running(False)
        self.worker.request_step()

    def reset(self) -> None:
        self._blame = "lr"
        self.worker.post(Reset())

    def recompute_surface(self) -> None:
        self.worker.post(RecomputeSurface())

    # -------------------------------------------------------------- settings
    def _on_changes(self, changes: dict) -> None:
        self._note_blame(changes)
        self.worker.post(Update(changes))

    def _note_blame(self, changes: dict) -> None:
        """Remember the training setting changed last: a divergence is reported under it."""
        for k in changes:
            if k in CAUSES:
                self._blame = k

    def apply_config(self, config: Config) -> None:
        """Apply a whole configuration (from a file or a preset)."""
        current = self.controls.config
        changes = {
            k: getattr(config, k)
            for k in config.to_dict()
            if getattr(current, k) != getattr(config, k)
        }
        self.apply_changes(changes)

    def apply_changes(self, changes: dict) -> bool:
        """Apply some settings as if typed into the controls (checked there, sent on by
        ``changesRequested``); False (and a line in the status bar) if the panel refuses."""
        if self.controls.request(changes):
            return True
        self.statusBar().showMessage("not applied: see the note under the setting", 8000)
        return False

    def _help_for_tab(self, index: int) -> None:
        """The explanation dock explains the tab on screen."""
        page = self.tabs.widget(index)
        view = next((v for v in self.experiments.values() if v is page), None)
        self.help_view.setMarkdown(self._live_help if view is None else experiment_help(view))

    # ------------------------------------------------------------------ tour
    def start_tour(self) -> None:
        self.tour_dock.show()
        self.tour_dock.raise_()
        self.tour.start()

    def leave_tour(self) -> None:
        self._set_highlight(None)
        self.tour_dock.hide()
        self.explanation_dock.raise_()

    def _on_tour_step(self, step) -> None:
        self._tour_wait = None
        snap = self.newest_snapshot
        self.apply_changes(step.settings)
        if step.wait == "surface":
            # the claim is about the surface for the new settings: say so until it is drawn
            self._tour_wait = (step.settings, snap.surface_id if snap is not None else 0)
            self.tour.set_note("Computing the loss surface for these settings…")
        target = self.findChild(QWidget, step.view) if step.view else None
        for k in range(self.tabs.count()):
            page = self.tabs.widget(k)
            if target is not None and (page is target or page.isAncestorOf(target)):
                self.tabs.setCurrentIndex(k)
                break
        self._set_highlight(target)
        self.statusBar().showMessage(f"tour: {step.title}", 6000)

    def _check_tour_wait(self, snap: Snapshot) -> None:
        """Tell the tour when the surface its step talks about is on screen."""
        if self._tour_wait is None:
            return
        settings, old_id = self._tour_wait
        applied = all(getattr(snap.config, k) == v for k, v in settings.items())
        if applied and snap.surface_id not in (0, old_id):
            self._tour_wait = None
            self.tour.set_note("The surface on screen is the one for these settings.")

    def _set_highlight(self, widget: QWidget | None) -> None:
        if self._highlighted is not None:
            self._highlighted.setStyleSheet("")
        self._highlighted = widget
        if widget is not None:
            widget.setStyleSheet(HIGHLIGHT)

    # ------------------------------------------------------ worker callbacks
    def _on_snapshot(self, snap: Snapshot) -> None:
        self._pending = snap
        self.controls.show_applied(snap.config)  # the engine's settings; pending ones marked
        if snap.step > 0 or self.last_snapshot is not None:
            self.last_snapshot = snap
        self._arm_redraw()

    def _arm_redraw(self) -> None:
        """Start the redraw timer for the next frame due on the grid (unless it runs)."""
        if not self.timer.isActive() and not self._closing:
            wait_ms = 1000 * (self._next_redraw - time.perf_counter())
            self.timer.start(max(0, int(wait_ms)))

    def _on_messages(self, msgs: list) -> None:
        self.statusBar().showMessage(" · ".join(msgs), 6000)

    def _on_command_failed(self, field: str, message: str) -> None:
        self.controls.refused(field, message)

    @property
    def newest_snapshot(self) -> Snapshot | None:
        """The engine's latest snapshot, drawn or not yet (None before the first). The
        engine trains in a child process: ``self.session`` is only its starting copy."""
        return self._pending or self._drawn

    @property
    def drawn_snapshot(self) -> Snapshot | None:
        """The snapshot the views show now (None before the first redraw)."""
        return self._drawn

    def session_config(self) -> Config:
        snap = self.newest_snapshot
        return snap.config if snap is not None else self.controls.config

    def _on_state(self, state: str) -> None:
        self.state_label.setText(state)
        colour = {"running": "#1e8449", "paused": "#7f8c8d", "diverged": "#c0392b"}[state]
        self.state_label.setStyleSheet(f"color: {colour}; font-weight: bold;")
        self.controls.set_running(state == "running")
        if state != "running":  # what the last live frame kept back, written now
            for view in self.views.values():
                view.flush_text()

    def _on_error(self, summary: str, details: str) -> None:
        """An unexpected error in the engine: logged with its traceback, said in the banner;
        the run is paused with its state kept."""
        self.controls.set_running(False)
        self.error_log.error(f"error in the engine: {summary}", details)
        self._show_logged_error(
            f"An error in the engine paused the run (its state is kept; Space resumes): {summary}."
        )

    def _on_uncaught(self, summary: str) -> None:
        if not self._closing:
            self._show_logged_error(f"An unexpected error in the window: {summary}.")

    def _show_logged_error(self, text: str) -> None:
        self.banner.show_message(
            f"{text} Details are in {self.error_log.path}.",
            "error",
            ("Open log folder", "Show the log file's folder", self.open_log_folder),
        )

    def _on_engine_restarted(self, how: str, step: int, seconds: float) -> None:
        if self._closing:
            return
        self.error_log.warning(
            f"the engine process ended ({how}); a new one carries on from step {step} "
            f"(started in {seconds:.2f} s)"
        )
        self.banner.show_message(
            f"The training engine ended unexpectedly ({how}). A new one carries on from step "
            f"{step:,} with the weights, optimiser state and history kept.",
            "warning",
        )

    def _on_engine_lost(self, how: str, why: str) -> None:
        if self._closing:
            return
        self._on_state("paused")  # nothing trains until the engine is restarted
        self.error_log.error(f"the engine process ended ({how}); {why}")
        self.banner.show_message(
            f"The training engine ended unexpectedly ({how}); {why}. Details are in "
            f"{self.error_log.path}.",
            "error",
            ("Restart engine", "Start a new engine from the last state kept", self.restart_engine),
        )

    def restart_engine(self) -> None:
        """Start a new engine after the restarts were given up."""
        self.banner.hide()
        self.worker.restart_engine()

    def open_log_folder(self) -> bool:
        """Show the log's folder in the desktop's file manager; False if none could."""
        self.error_log.make_folder()
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.error_log.folder)))
        if not ok:
            self.statusBar().showMessage(f"the log folder is {self.error_log.folder}", 10000)
        return ok

    def _on_surface_busy(self, busy: bool) -> None:
        if busy:
            self.statusBar().showMessage("computing the loss surface…", 2000)

    def toggle_recording(self) -> None:
        """Start a clip (asking where) or stop the one recording (gui/record_control.py)."""
        self.recorder.toggle()

    # ------------------------------------------------------------------ draw
    def draw_now(self, snap: Snapshot) -> None:
        """Take ``snap`` as the newest snapshot and draw it at once, not at the next frame
        (headless recording: gui.recorder.record_training)."""
        self._on_snapshot(snap)
        self.timer.stop()
        self._redraw(live=False)

    def _redraw(self, live: bool | None = None) -> None:
        """Draw the newest snapshot; ``live`` (default: while running) lets the views keep
        their text back between two text frames (gui/plots/base.py)."""
        if self._staggered:  # a frame drawn one view at a time is still under way
            if live is not False:
                return
            while self._staggered:  # a forced draw finishes it first
                self._draw_next_view()
        snap = self._pending
        if snap is None or snap is self._drawn:
            return
        t0 = time.perf_counter()
        # Frames are due every 33 ms on a fixed grid, so a late frame makes the next one
        # come sooner and the average stays at 30 a second. Detailed snapshots come every
        # 25 ms, so a frame waits up to that long for one: the grid holds for a frame up to
        # 3/4 of a period late (at 1/2 it slipped, 29.1 frames a second), and two frames are
        # never closer than 8 ms (no bursts).
        period = REDRAW_MS / 1000
        self._next_redraw = max(self._next_redraw + period, t0 + 0.25 * period)
        if live is None:
            live = self.worker.is_running()
        views = list(self.views.values())
        if live and self._drawn is not None and snap.layer_sizes != self._drawn.layer_sizes:
            # a new network: every view rebuilds its items and ranges (~240 ms for ten
            # layers at once); one view per turn of the event loop keeps the window answering
            self._staggered = views[1:]
            self._stagger_frame = (snap, t0)
            QTimer.singleShot(0, self._draw_next_view)
            views = views[:1]
        for view in views:  # every view shows the same snapshot
            view.show_snapshot(snap, live=live)
        if self._staggered:
            views[0].viewport().repaint()
        else:
            self._finish_frame(snap, t0)

    def _draw_next_view(self) -> None:
        """The next view of a staggered frame; the last one finishes the frame."""
        if not self._staggered:
            return  # finished by a forced draw meanwhile
        snap, t0 = self._stagger_frame
        if self._closing:
            self._staggered = []
            return
        view = self._staggered.pop(0)
        view.show_snapshot(snap, live=True)
        view.viewport().repaint()  # its paint in this turn too, not all five in one
        if self._staggered:
            QTimer.singleShot(0, self._draw_next_view)
        else:
            self._finish_frame(snap, t0)
            if self._pending is not snap:  # one came while this frame was drawn
                self._arm_redraw()

    def _finish_frame(self, snap: Snapshot, t0: float) -> None:
        self._drawn = snap
        self._update_status(snap)
        self._check_tour_wait(snap)
        self.redraw_ms.append((time.perf_counter() - t0) * 1000)
        self.redraw_count += 1
        self.snapshotDrawn.emit(snap)

    def _update_status(self, snap: Snapshot) -> None:
        self.step_label.setText(f"step {snap.step} · epoch {snap.epoch}")
        self.loss_label.setText(f"loss {fmt(snap.loss)}")
        self.speed_label.setText(
            f"{snap.steps_per_second:.0f} steps/s" if snap.steps_per_second else ""
        )
        self._show_divergence(snap)

    def _show_divergence(self, snap: Snapshot) -> None:
        """A diverged run: its reason in full under the control to change, a short line in
        the status bar; cleared when the run goes on."""
        if snap.diverged:
            self.state_label.setText("diverged")
            if self._divergence_shown != (snap.run_id, snap.step):
                self._divergence_shown = (snap.run_id, snap.step)
                self._blamed = self._blame
                self.controls.show_error(self._blamed, divergence_text(snap, self._blamed))
                # short enough for the status bar of a 1280 px window; the rule in full
                # is the note's (and this message's tooltip)
                self.statusBar().showMessage(
                    f"Diverged at step {snap.step}: see the note under the "
                    f"{CAUSES[self._blamed]}; change a setting to go on, or Reset."
                )
                self.statusBar().setToolTip(RESUME_RULE)
        elif self._blamed is not None:
            self.controls.clear_error(self._blamed)
            self._blamed = None
            self._divergence_shown = None
            self.statusBar().clearMessage()
            self.statusBar().setToolTip("")

    # ----------------------------------------------------------- experiments
    def experiment_context(self) -> Context:
        """The settings, and ways to the weights that never block the window: the engine's
        answer comes as a message (``fetch_params``); headless rendering, which trains the
        session in this process, reads it at once (``local_params``); a timing experiment
        pauses live training meanwhile."""
        cfg = self.controls.config
        snap = self.newest_snapshot
        sizes = snap.layer_sizes if snap is not None else tuple(self.session.net.layer_sizes)
        return Context(
            cfg,
            None,
            sizes[0],
            sizes[-1],
            fetch_params=self._fetch_params,
            local_params=self._local_params,
            pause_training=self._pause_for_experiment,
        )

    def _fetch_params(self, callback) -> None:
        """Ask the engine for (layer_sizes, weights); ``callback`` gets them in this thread."""
        self._params_callbacks.append(callback)
        self.worker.request_params()

    def _local_params(self) -> ParamsCopy:
        """The weights of ``self.session``: the session trained in this process by headless
        rendering (for a live window, the engine's starting copy)."""
        net = self.session.net
        return ParamsCopy(tuple(net.layer_sizes), net.params.copy())

    def _on_params(self, got: ParamsCopy) -> None:
        callbacks, self._params_callbacks = self._params_callbacks, []
        for callback in callbacks:
            callback(got)

    def _pause_for_experiment(self):
        """Pause live training (an experiment that measures time needs the cores); returns
        the function that resumes it (a no-op if it was not running)."""
        if not self.worker.is_running():
            return lambda: None
        self.set_running(False)
        self.statusBar().showMessage("training paused while the experiment measures", 4000)

        def resume() -> None:
            if not self._closing:
                self.set_running(True)

        return resume

    def run_experiments_blocking(self, quick: bool = True) -> dict[str, str]:
        """Run every experiment now, in this thread, from the weights of ``self.session``
        (headless export, which trains that session here); {title: why} of those that
        failed (they have no result, so nothing of theirs is exported)."""
        failed = {}
        for view in self.experiments.values():
            why = view.run_blocking(quick=quick)
            if why:
                failed[view.title] = why
        return failed

    def _on_experiment_finished(self, result) -> None:
        if result is not None:
            self.statusBar().showMessage("experiment finished", 4000)

    # ---------------------------------------------------------------- export
    def export_all(self, folder: str | os.PathLike, progress=None) -> list[Path]:
        """Write window.png and every view's PNG, SVG and CSV into ``folder`` (experiments
        that have a result included)."""
        self._redraw(live=False)
        target = Path(folder) / "window.png"
        files = export_views(self.views, folder, progress=progress)
        save_pixmap(self.grab(), target)
        # An experiment tab is laid out at the window's size only while it is shown: show each
        # in turn for its export, then come back to the tab the user was on.
        current = self.tabs.currentWidget()
        try:
            for name, view in self.experiments.items():
                if view.result is None:
                    continue
                self.tabs.setCurrentWidget(view)
                QApplication.processEvents()
                files += export_views({name: view}, folder)
        finally:
            self.tabs.setCurrentWidget(current)
        return [target, *files]

    def export_dialog(self) -> None:
        s = settings()
        start = s.value("export/folder", os.path.expanduser("~"))
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", str(start))
        if not folder:
            return
        s.setValue("export/folder", folder)
        n_views = len(self.views) + sum(v.result is not None for v in self.experiments.values())
        dlg = QProgressDialog("Exporting…", "", 0, n_views, self)
        dlg.setCancelButton(None)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.setMinimumDuration(500)

        def progress(done, total, text):
            dlg.setValue(done)
            dlg.setLabelText(f"Exporting {text}…")
            QApplication.processEvents()

        try:
            files = self.export_all(folder, progress)
        except (ExportError, OSError) as e:
            dlg.close()
            QMessageBox.warning(self, "Export failed", f"Nothing partial was left.\n\n{e}")
            return
        dlg.close()
        self.statusBar().showMessage(f"exported {len(files)} files to {folder}", 8000)

    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", "batchscope.png", "PNG image (*.png)"
        )
        if not path:
            return
        try:
            save_pixmap(self.grab(), path)
        except (ExportError, OSError) as e:
            QMessageBox.warning(self, "Screenshot failed", str(e))
            return
        self.statusBar().showMessage(f"saved {path}", 6000)

    # ----------------------------------------------------------- config files
    def open_config_dialog(self) -> None:
        self.config_files.open_dialog()

    def save_config_dialog(self) -> None:
        self.config_files.save_dialog()

    def load_config_file(self, path: str, remember: bool = True) -> bool:
        """Load a JSON configuration and apply it; a bad file changes nothing and says why."""
        return self.config_files.load(path, remember)

    def save_config_file(self, path: str) -> bool:
        """Save the current settings as JSON (never partial)."""
        return self.config_files.save(path)

    @property
    def warning_box(self) -> QMessageBox | None:
        """The last warning about a configuration file (non-modal)."""
        return self.config_files.warning_box

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Batchscope",
            "<b>Batchscope</b><br>See what a minibatch gradient is made of: why libraries "
            "backpropagate one scalar, mean(M), and not the loss matrix M.",
        )

    # -------------------------------------------------------- window state
    def _restore_window_state(self) -> bool:
        """Geometry and dock layout of the last session; False if there was none."""
        s = settings()
        geo = s.value("window/geometry")
        restored = False
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            restored = self.restoreGeometry(geo)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            restored = self.restoreState(state) and restored
        return restored

    def fit_docks_to_width(self, width: int) -> None:
        """Below 1500 px the explanation dock starts closed (View menu or F1 bring it back),
        so the five views keep room to be read."""
        self.explanation_dock.setVisible(width >= 1500)

    def resizeEvent(self, event) -> None:
        """Shrinking below ``HELP_DOCK_MIN_WINDOW`` closes a docked explanation: the views
        reflow into the room instead of being squeezed beside it."""
        super().resizeEvent(event)
        dock = self.explanation_dock
        if (
            event.size().width() < HELP_DOCK_MIN_WINDOW
            and event.oldSize().width() >= HELP_DOCK_MIN_WINDOW
            and dock.isVisible()
            and not dock.isFloating()
        ):
            dock.hide()
            self.statusBar().showMessage(
                "The explanation closed to make room; View → What am I looking at? opens it.",
                6000,
            )

    def save_window_state(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("config/last", json.dumps(self.controls.config.to_dict()))  # readable
        s.sync()

    def shutdown(self) -> None:
        """Stop the timer and the worker thread (cancelling a surface in progress)."""
        if self._closing:
            return
        self._closing = True
        self.timer.stop()
        for view in self.experiments.values():
            view.cancel()
        deadline = time.monotonic() + 1.0  # experiments: at most 1 s together
        self.worker_thread.shutdown()
        for view in self.experiments.values():
            view.shutdown(max(0.0, deadline - time.monotonic()))

    def closeEvent(self, event) -> None:
        if self._remember:
            self.save_window_state()
        self.shutdown()
        super().closeEvent(event)
