"""The training worker: a bridge between the window and the engine process.

The core Session trains in a child process (``core.remote.EngineProcess``): drawing with Qt
holds Python's GIL, so a training *thread* in the window's process ran at a tenth of its bare
speed (benchmarks/bench_gui.py). This module keeps the Qt worker pattern on the window's side:
a ``TrainingWorker`` QObject lives in a QThread, reads the engine's replies and emits them as
signals (queued to the GUI thread); settings go the other way as core commands, with run/pause,
single steps and stop. The worker never touches a widget.

An engine that dies on its own (killed, out of memory) is replaced: the worker keeps the
newest checkpoint the engine sent (weights, optimiser state, step count; the record's rows are
the last snapshot's) and the commands sent since, and starts a new engine from them, which
carries on the run with its step count and history (losing at most the steps since that
checkpoint). Three deaths within 30 s stop the restarts until ``restart_engine()``.
"""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core import Session, replies
from core.commands import Command, RequestParams, Run, Step
from core.remote import EngineProcess

__all__ = ["TrainingWorker", "WorkerThread", "RestartPolicy"]

#: seconds to wait after the engine's end before replacing it: a signal to the whole process
#: group ends the engine and the window together, and the window's stop comes within this
RESTART_GRACE_S = 0.25


class RestartPolicy:
    """Restart after a death unless ``max_deaths`` deaths fell within ``window_s`` seconds."""

    def __init__(self, max_deaths: int = 3, window_s: float = 30.0) -> None:
        self.max_deaths = max_deaths
        self.window_s = window_s
        self.deaths: list[float] = []

    def death(self, now: float) -> bool:
        """Record a death at ``now`` (monotonic seconds); True if a restart is allowed."""
        self.deaths = [t for t in self.deaths if now - t < self.window_s] + [now]
        return len(self.deaths) < self.max_deaths

    def forget(self) -> None:
        self.deaths = []


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
    engineRestarted(str, int, float) : the engine ended (how, e.g. "killed by SIGKILL") and a
        new one carries on from step n; seconds the new one took to start
    engineLost(str, str) : the engine ended (how) and no new one was started (why); the run
        waits for ``restart_engine()``
    paramsReady(object) : a ``core.replies.ParamsCopy`` (layer sizes, a copy of the
        weights), the answer to ``request_params()``; nothing waits for it
    """

    snapshotReady = Signal(object)
    messages = Signal(list)
    commandFailed = Signal(str, str)
    stateChanged = Signal(str)
    errorOccurred = Signal(str, str)
    surfaceBusy = Signal(bool)
    engineRestarted = Signal(str, int, float)
    engineLost = Signal(str, str)
    paramsReady = Signal(object)
    finished = Signal()

    def __init__(
        self, session: Session, detail_hz: float = 40.0, surface_interval: float = 2.0
    ) -> None:
        super().__init__()
        self.session = session  #: the session as it was handed over (the engine owns it now)
        self._engine_kw = {"detail_hz": detail_hz, "surface_interval": surface_interval}
        self._lock = threading.RLock()  # the engine's identity and the commands not yet safe
        self.engine = EngineProcess(session, **self._engine_kw)
        self._running = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop() or restart_engine()
        self._restart_wanted = False
        self.steps_done = 0
        self.restarts = 0
        self.policy = RestartPolicy()
        #: the newest (checkpoint, History) a new engine can start from (None: the start)
        self.checkpoint = None
        self._last_history = None
        self._unapplied: list = []  # commands the current engine has not confirmed
        self._applied = 0  # commands the current engine confirmed (its checkpoints say)
        self._handlers = self._reply_handlers()

    # ---------------------------------------------------------- thread-safe API
    def post(self, command: Command) -> None:
        """Send a core command (Update, Reset, RecomputeSurface); applied between steps."""
        with self._lock:
            self._unapplied.append(command)
            self.engine.send(command)

    def set_running(self, running: bool) -> None:
        if running:
            self._running.set()
        else:
            self._running.clear()
        with self._lock:
            self.engine.send(Run(bool(running)))

    def is_running(self) -> bool:
        return self._running.is_set()

    def request_step(self, n: int = 1) -> None:
        with self._lock:
            self.engine.send(Step(int(n)))

    def request_params(self) -> None:
        """Ask for a copy of the weights without waiting: ``paramsReady`` brings it (taken
        between two steps) when the engine answers."""
        with self._lock:
            self.engine.send(RequestParams())

    def stop(self) -> None:
        self._stop.set()
        self._running.clear()
        self._wake.set()

    def restart_engine(self) -> None:
        """Start a new engine after restarts were given up (the user asked)."""
        self._restart_wanted = True
        self._wake.set()

    # -------------------------------------------------------------------- loop
    @Slot()
    def loop(self) -> None:
        """The thread's body: forward the engine's messages until stop()."""
        while not self._stop.is_set():
            if self._restart_wanted:
                self._restart_wanted = False
                self.policy.forget()
                self._start_new_engine("restarted on request")
                continue
            engine = self.engine
            if engine.ended:  # given up: wait for stop() or restart_engine()
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            msg = engine.get(timeout=0.05)
            if msg is None and not engine.process.is_alive():
                engine.ended = True
                msg = replies.Ended(engine.how_it_ended())
            if isinstance(msg, replies.Ended):
                self._engine_ended(msg.how)
            elif msg is not None:
                self._dispatch(msg)
        # The child polls for "stop" between grid chunks (~0.1 s at the widest settings); a
        # child that misses it is terminated at 0.5 s, so closing stays within 1 s. Its state
        # is not needed any more: the settings live in this process.
        with self._lock:
            engine = self.engine
        engine.stop(timeout=0.5)
        self.finished.emit()

    def _engine_ended(self, how: str) -> None:
        """The engine ended without being asked: replace it, unless a stop is on its way or
        it keeps dying."""
        if self._stop.wait(RESTART_GRACE_S):
            return  # the window is closing (a signal to the whole group ends both)
        if not self.policy.death(time.monotonic()):
            n = self.policy.max_deaths
            self._running.clear()
            self.engineLost.emit(
                how,
                f"it ended {n} times within {self.policy.window_s:.0f} s, so it is not "
                "restarted again",
            )
            return
        self._start_new_engine(how)

    def _start_new_engine(self, how: str) -> None:
        t0 = time.perf_counter()
        try:
            if self.checkpoint is not None:
                state, rows = self.checkpoint
                session = Session.restored(state, rows)
            else:
                session = self.session  # no checkpoint yet: from the start
            with self._lock:
                old = self.engine
                self.engine = EngineProcess(session, **self._engine_kw)
                self._applied = 0
                for command in self._unapplied:  # the dead engine's unfinished business
                    self.engine.send(command)
                self.engine.send(Run(self._running.is_set()))
        except Exception as e:  # noqa: BLE001 - said in the window and logged there
            self._running.clear()
            self.engineLost.emit(how, f"a new engine could not start: {type(e).__name__}: {e}")
            return
        old.stop(timeout=0.0)
        self.restarts += 1
        self.engineRestarted.emit(how, session.step_count, time.perf_counter() - t0)

    def _dispatch(self, msg: replies.Reply) -> None:
        """Forward one reply of the engine (``core.replies``) as a signal."""
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(msg)

    def _reply_handlers(self) -> dict:
        """What to do with each kind of reply, by its type."""
        return {
            replies.SnapshotReady: self._on_snapshot,
            replies.Checkpoint: lambda m: self._keep_checkpoint(m.state),
            replies.Notes: lambda m: self.messages.emit(list(m.texts)),
            replies.CommandFailed: lambda m: self.commandFailed.emit(m.field, m.message),
            replies.StateChanged: self._on_state,
            replies.EngineError: self._on_error,
            replies.SurfaceBusy: lambda m: self.surfaceBusy.emit(bool(m.busy)),
            replies.ParamsCopy: self.paramsReady.emit,
        }

    def _on_snapshot(self, msg: replies.SnapshotReady) -> None:
        self.steps_done = msg.snapshot.step
        self._last_history = msg.snapshot.history
        self.snapshotReady.emit(msg.snapshot)

    def _on_state(self, msg: replies.StateChanged) -> None:
        # Only divergence stops a run from the engine's side (errors come as EngineError).
        # A "paused" is the answer to our own request, or the engine's state from before it
        # read our latest Run: letting it clear the flag made Space a dead key.
        if msg.state == "diverged":
            self._running.clear()
        self.stateChanged.emit(msg.state)

    def _on_error(self, msg: replies.EngineError) -> None:
        self._running.clear()
        self.errorOccurred.emit(msg.summary, msg.details)

    def _keep_checkpoint(self, state: dict) -> None:
        """Keep the engine's newest state with the record's rows it goes with (those of the
        snapshot sent just before it), and forget the commands it has applied."""
        rows = self._last_history
        h = state["history"]
        if rows is not None and len(rows) == h["n"] and rows.generation == h["generation"]:
            self.checkpoint = (state, rows)
        with self._lock:
            done = state.pop("commands_applied") - self._applied
            del self._unapplied[:done]
            self._applied += done


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
        engine = self.worker.engine
        if engine.process.is_alive():
            engine.stop(timeout=0.5)
        return ok
