"""The training worker: a bridge between the window and the engine process.

The core Session trains in a child process (``core.remote.EngineProcess``): drawing with Qt
holds Python's GIL, so a training *thread* in the window's process ran at a tenth of its bare
speed (benchmarks/bench_gui.py). This module keeps the Qt worker pattern on the window's side:
a ``TrainingWorker`` QObject lives in a QThread, reads the engine's replies and emits them as
signals (queued to the GUI thread); settings go the other way as core commands, with run/pause,
single steps and stop. The worker never touches a widget.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core import Session
from core.remote import EngineProcess

__all__ = ["TrainingWorker", "WorkerThread"]


class TrainingWorker(QObject):
    """Lives in a QThread; forwards what the engine process says as signals.

    Signals
    -------
    snapshotReady(object) : a whole core Snapshot (detailed, history included)
    messages(list) : short texts for the status bar ("network rebuilt: ...")
    commandFailed(str, str) : a ConfigError's field and message (nothing was changed)
    stateChanged(str) : "running", "paused" or "diverged"
    errorOccurred(str, str) : an unexpected exception in the engine: summary and traceback;
        the run pauses with its state kept
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
        self, session: Session, detail_hz: float = 40.0, surface_interval: float = 2.0
    ) -> None:
        super().__init__()
        self.session = session  #: the session as it was handed over (the engine owns it now)
        self.engine = EngineProcess(session, detail_hz, surface_interval)
        self._running = threading.Event()
        self._stop = threading.Event()
        self._params_lock = threading.Lock()
        self._params_waiters: list[tuple[threading.Event, list]] = []
        self.steps_done = 0
        self.last_state = "paused"

    # ---------------------------------------------------------- thread-safe API
    def post(self, command) -> None:
        """Send a core command (Update, Reset, RecomputeSurface); applied between steps."""
        self.engine.send("cmd", command)

    def set_running(self, running: bool) -> None:
        if running:
            self._running.set()
        else:
            self._running.clear()
        self.engine.send("run", bool(running))

    def is_running(self) -> bool:
        return self._running.is_set()

    def request_step(self, n: int = 1) -> None:
        self.engine.send("step", int(n))

    def params_copy(self, timeout: float = 1.0):
        """(layer_sizes, a copy of the weights) taken between two steps, or None on timeout."""
        event, box = threading.Event(), []
        with self._params_lock:
            self._params_waiters.append((event, box))
        self.engine.send("params")
        if not event.wait(timeout):
            return None
        return box[0] if box else None

    def stop(self) -> None:
        self._stop.set()
        self._running.clear()

    # -------------------------------------------------------------------- loop
    @Slot()
    def loop(self) -> None:
        """The thread's body: forward the engine's messages until stop()."""
        while not self._stop.is_set():
            msg = self.engine.get(timeout=0.05)
            if msg is None:
                if not self.engine.process.is_alive():
                    self.errorOccurred.emit(
                        "the engine process ended unexpectedly",
                        f"exit code {self.engine.process.exitcode}",
                    )
                    break
                continue
            self._dispatch(msg)
        # The child polls for "stop" between grid chunks (~0.1 s at the widest settings); a
        # child that misses it is terminated at 0.5 s, so closing stays within 1 s. Its state
        # is not needed any more: the settings live in this process.
        self.engine.stop(timeout=0.5)
        self.finished.emit()

    def _dispatch(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "snapshot":
            self.steps_done = msg[1].step
            self.snapshotReady.emit(msg[1])
        elif kind == "messages":
            self.messages.emit(list(msg[1]))
        elif kind == "failed":
            self.commandFailed.emit(msg[1], msg[2])
        elif kind == "state":
            self.last_state = msg[1]
            # Only divergence stops a run from the engine's side (errors come as "error").
            # A "paused" is the answer to our own request, or the engine's state from before
            # it read our latest "run": letting it clear the flag made Space a dead key.
            if msg[1] == "diverged":
                self._running.clear()
            self.stateChanged.emit(msg[1])
        elif kind == "error":
            self._running.clear()
            self.errorOccurred.emit(msg[1], msg[2])
        elif kind == "surface":
            self.surfaceBusy.emit(bool(msg[1]))
        elif kind == "params":
            with self._params_lock:
                waiters, self._params_waiters = self._params_waiters, []
            for event, box in waiters:
                box.append(msg[1])
                event.set()


class WorkerThread:
    """Owns a QThread and a TrainingWorker moved into it; ``shutdown()`` stops both and the
    engine process cleanly."""

    def __init__(self, session: Session, **kw) -> None:
        self.thread = QThread()
        self.thread.setObjectName("batchscopeWorker")
        self.worker = TrainingWorker(session, **kw)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.loop)
        self.worker.finished.connect(self.thread.quit)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        """Stop the engine (cancelling a surface in progress), quit the thread and wait."""
        self.worker.stop()
        # quit() now, from this thread: the loop's finished -> thread.quit connection is
        # queued to this (GUI) thread, which is blocked in wait() below, so without this
        # the thread would sit in exec() until the timeout.
        self.thread.quit()
        ok = self.thread.wait(timeout_ms)
        if not ok:
            self.thread.quit()
            ok = self.thread.wait(1000)
        if self.worker.engine.process.is_alive():
            self.worker.engine.stop(timeout=0.5)
        return ok
