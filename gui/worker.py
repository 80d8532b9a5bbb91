"""The training worker: runs a core Session in its own QThread.

The loop never touches a widget. Settings reach it as core commands through a thread-safe
queue (the loop is busy, so it has no event loop to receive queued signals); run/pause, single
steps and stop are thread-safe flags it reads between two steps. It emits frozen Snapshots
(read-only arrays) through a queued signal, with detail at most ``detail_hz`` times a second,
so training speed does not depend on drawing.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core import ConfigError, DivergedError, Session
from core.commands import RecomputeSurface, Reset, Update

__all__ = ["TrainingWorker", "WorkerThread"]


class TrainingWorker(QObject):
    """QObject living in a QThread; owns the Session once started.

    Signals
    -------
    snapshotReady(object) : a core Snapshot (detailed)
    messages(list) : short texts for the status bar ("network rebuilt: ...")
    commandFailed(str, str) : a ConfigError's field and message (nothing was changed)
    stateChanged(str) : "running", "paused" or "diverged"
    errorOccurred(str, str) : an unexpected exception: summary and traceback; the worker pauses
    surfaceBusy(bool) : a loss surface is being computed
    """

    snapshotReady = Signal(object)
    messages = Signal(list)
    commandFailed = Signal(str, str)
    stateChanged = Signal(str)
    errorOccurred = Signal(str, str)
    surfaceBusy = Signal(bool)
    finished = Signal()

    def __init__(
        self, session: Session, detail_hz: float = 40.0, surface_interval: float = 0.5
    ) -> None:
        super().__init__()
        self.session = session
        self._commands: queue.Queue = queue.Queue()
        self._running = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._steps_requested = 0
        self._lock = threading.Lock()
        self._params_request: tuple[threading.Event, list] | None = None
        self._min_detail_dt = 1.0 / detail_hz
        self._surface_interval = surface_interval
        self.steps_done = 0

    # ---------------------------------------------------------- thread-safe API
    def post(self, command) -> None:
        """Queue a core command (Update, Reset, RecomputeSurface); applied between steps."""
        self._commands.put(command)
        self._wake.set()

    def set_running(self, running: bool) -> None:
        if running:
            self._running.set()
        else:
            self._running.clear()
        self._wake.set()

    def is_running(self) -> bool:
        return self._running.is_set()

    def request_step(self, n: int = 1) -> None:
        with self._lock:
            self._steps_requested += n
        self._wake.set()

    def params_copy(self, timeout: float = 1.0):
        """(layer_sizes, a copy of the weights) taken between two steps, or None on timeout.

        For experiments that start from the live network without racing the training loop.
        """
        event, box = threading.Event(), []
        with self._lock:
            self._params_request = (event, box)
        self._wake.set()
        if not event.wait(timeout):
            return None
        return box[0] if box else None

    def _serve_params_request(self) -> None:
        with self._lock:
            req, self._params_request = self._params_request, None
        if req is not None:
            net = self.session.net
            req[1].append((tuple(net.layer_sizes), net.params.copy()))
            req[0].set()

    def stop(self) -> None:
        self._stop.set()
        self._running.clear()
        self._wake.set()

    # -------------------------------------------------------------------- loop
    @Slot()
    def loop(self) -> None:
        """The thread's body: step, emit, apply commands, compute surfaces; until stop().

        An unexpected exception is reported (errorOccurred), the run pauses with its state
        kept, and the loop carries on serving commands.
        """
        first = True
        while not self._stop.is_set():
            try:
                self._serve(first)
            except Exception as e:
                self._running.clear()
                self.stateChanged.emit("paused")
                self.errorOccurred.emit(f"{type(e).__name__}: {e}", traceback.format_exc())
            first = False
        self.finished.emit()

    def _serve(self, first: bool) -> None:
        s = self.session
        last_emit = 0.0
        last_surface = 0.0
        state = None
        if first:
            self._emit(s.snapshot())
        while not self._stop.is_set():
            self._serve_params_request()
            changed = self._drain_commands()
            with self._lock:
                single = self._steps_requested > 0
                if single:
                    self._steps_requested -= 1
            running = self._running.is_set()
            new_state = "diverged" if s.diverged else ("running" if running else "paused")
            if new_state != state:
                state = new_state
                self.stateChanged.emit(state)
            now = time.perf_counter()
            due = changed or s.surface is None or now - last_surface > self._surface_interval
            if due and not s.diverged and s.needs_surface():
                self.surfaceBusy.emit(True)
                try:
                    s.compute_surface(cancel=self._stop.is_set)
                finally:
                    self.surfaceBusy.emit(False)
                last_surface = time.perf_counter()
                if not (running or single):
                    self._emit(s.snapshot())
                    last_emit = time.perf_counter()
            if (running or single) and not s.diverged:
                now = time.perf_counter()
                detail = single or now - last_emit >= self._min_detail_dt
                try:
                    snap = s.step(detail=detail)
                except DivergedError:
                    continue
                self.steps_done += 1
                if snap.diverged:
                    self._running.clear()
                    self.messages.emit([snap.message])
                    self._emit(snap)
                    last_emit = time.perf_counter()
                elif detail:
                    self._emit(snap)
                    last_emit = now
            elif changed:
                self._emit(s.snapshot())
                last_emit = time.perf_counter()
            else:
                self._wake.wait(0.05)
                self._wake.clear()

    def _emit(self, snap) -> None:
        self.snapshotReady.emit(snap)

    def _drain_commands(self) -> bool:
        """Apply every queued command; True if any changed the session."""
        changed = False
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return changed
            try:
                msgs = self.session.apply(cmd)
            except ConfigError as e:
                self.commandFailed.emit(e.field, e.message)
                continue
            if isinstance(cmd, (Update, Reset, RecomputeSurface)):
                changed = True
            if msgs:
                self.messages.emit(msgs)


class WorkerThread:
    """Owns a QThread and a TrainingWorker moved into it; ``shutdown()`` stops both cleanly."""

    def __init__(self, session: Session, **kw) -> None:
        self.thread = QThread()
        self.thread.setObjectName("batchscopeWorker")
        self.worker = TrainingWorker(session, **kw)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.loop)
        self.worker.finished.connect(self.thread.quit)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the loop (cancelling a surface in progress), quit the thread and wait."""
        self.worker.stop()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
