"""Run a Session in its own process, driven through pipes (no Qt here).

Why a process and not a thread: drawing with Qt holds Python's GIL (QPainter calls do not
release it), so a training thread in the window's process ran at a tenth of its bare speed
(benchmarks/bench_gui.py). In a child process the session trains on its own core while the
window draws on the other.

Protocol: typed messages both ways. The parent sends the Session first, then requests
(``core.commands``): settings commands (``Update``, ``Reset``, ``RecomputeSurface``), run
control (``Run``, ``Step``, ``Stop``) and ``RequestParams``. The child answers with replies
(``core.replies``): ``SnapshotReady``, ``Notes``, ``CommandFailed``, ``StateChanged``,
``EngineError``, ``SurfaceBusy``, ``ParamsCopy``, ``Checkpoint`` and ``Stopped``;
``EngineProcess.get`` reports the child's end as ``Ended(how)``. Nothing on the parent's side
waits for an answer: a copy of the weights is asked for and arrives as a message.

Snapshots travel light: their history holds only the steps since the previous snapshot
(``History.start`` says where they begin) and a surface is sent once, then referred to by
``surface_id``; ``SnapshotMirror`` on the parent's side puts whole snapshots back together
and makes every array in them read-only again (unpickled arrays are writeable).

Checkpoints: right after a snapshot (so the rows the parent holds are exactly the record's):
after every one while the weights and optimiser state are small, else within ~5 % of the
child's time, and never above ``CHECKPOINT_MAX_BYTES``, the child sends what a new engine
needs to carry on (``Session.training_state``), with the count of commands applied so far: a
parent whose engine died starts a new one from it (``Session.restored``) and resends the
commands the dead one had not applied.

Ending. The two directions are plain pipes, each end held by one process only, so either
side sees the other's end as end-of-file at once: the parent when the engine dies (killed,
out of memory), the child when the window's process ends however it ends. The child stops
silently then, and on SIGINT, SIGTERM or SIGHUP (sent to a whole process group by terminals,
``timeout`` and service managers) it ends at once with the default action: no traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from multiprocessing import resource_tracker

import numpy as np

from .commands import Request, RequestParams, Run, Step, Stop
from .config import ConfigError
from .losses import pickled_user_losses, restore_losses
from .replies import (
    Checkpoint,
    CommandFailed,
    Ended,
    EngineError,
    Notes,
    ParamsCopy,
    Reply,
    SnapshotReady,
    StateChanged,
    Stopped,
    SurfaceBusy,
)
from .session import DivergedError, Session
from .snapshot import HISTORY_FIELDS, History, Snapshot

__all__ = [
    "EngineProcess",
    "SnapshotMirror",
    "freeze_arrays",
    "serve",
    "STOP_SIGNALS",
    "CHECKPOINT_MAX_BYTES",
]

#: the signals that mean "stop now" (those a terminal, ``timeout`` or a service manager send)
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: weights + optimiser state above this are not checkpointed (a copy a second of a large
#: network would cost more than it saves); a restart then begins the run again
CHECKPOINT_MAX_BYTES = 64 * 2**20
#: the share of the child's time checkpoints may take
CHECKPOINT_SHARE = 0.05
#: state this small goes with every snapshot whatever it costs (tens of microseconds)
CHECKPOINT_ALWAYS_BYTES = 256 * 2**10
#: how often the child checks that its parent is still there (besides the pipe's end)
PARENT_CHECK_S = 0.5


class ParentGone(BaseException):
    """The window's process ended: the engine stops at once, silently. A BaseException, so
    no ``except Exception`` in the engine mistakes it for an error to report."""


# ---------------------------------------------------------------- child side
class _Inbox:
    """The child's end of the parent's pipe, with room to put messages back in order."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.deferred: deque = deque()
        self.ppid = os.getppid()
        self._checked = time.monotonic()

    def get(self, timeout: float = 0.0):
        """One message, or None if none came within ``timeout`` s; ParentGone at the end."""
        if self.deferred:
            return self.deferred.popleft()
        now = time.monotonic()
        if now - self._checked > PARENT_CHECK_S:
            self._checked = now
            if os.getppid() != self.ppid:
                raise ParentGone
        try:
            if not self.conn.poll(timeout):
                return None
            return self.conn.recv()
        except (EOFError, OSError) as e:
            raise ParentGone from e

    def defer(self, msg) -> None:
        self.deferred.append(msg)


class _PipeOut:
    """The child's end of its answers' pipe (``put`` as a queue's)."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def put(self, msg) -> None:
        try:
            self.conn.send(msg)
        except (BrokenPipeError, EOFError, OSError) as e:
            raise ParentGone from e


class _Outbox:
    """Strips what the parent already has from outgoing snapshots."""

    def __init__(self, q) -> None:
        self.q = q
        self.sent_steps = 0
        self.sent_run = None
        self.sent_generation = 0
        self.sent_events = 0
        self.sent_surface = None
        self.last_step = None

    def put(self, reply) -> None:
        """Send one ``core.replies`` message."""
        self.q.put(reply)

    def snapshot(self, snap: Snapshot) -> None:
        h = snap.history
        n = len(h)
        if (
            snap.run_id != self.sent_run
            or h.generation != self.sent_generation
            or n < self.sent_steps
        ):
            start, ev_start = 0, 0  # reset, rebuild or a merged record: send everything
        else:
            start, ev_start = self.sent_steps, self.sent_events
        part = History(
            *(np.array(getattr(h, f)[start:]) for f in HISTORY_FIELDS),
            events=h.events[ev_start:],
            start=start,
            generation=h.generation,
        )
        surface = snap.surface
        if surface is not None and surface.surface_id == self.sent_surface:
            surface = None
        elif surface is not None:
            self.sent_surface = surface.surface_id
        self.q.put(SnapshotReady(dataclasses.replace(snap, history=part, surface=surface)))
        self.last_step = (snap.run_id, snap.step)
        self.sent_steps, self.sent_events, self.sent_run = n, len(h.events), snap.run_id
        self.sent_generation = h.generation


class _Checkpoints:
    """Sends ``Checkpoint(state)`` after snapshots, within its share of the time."""

    def __init__(self, session: Session, out: _Outbox) -> None:
        self.session = session
        self.out = out
        self.next_due = 0.0
        self.sent = None  #: (run_id, step, commands applied) of the last one sent
        self.commands_applied = 0

    def key(self) -> tuple:
        s = self.session
        return (s.run_id, s.step_count, self.commands_applied, len(s.history))

    def after_snapshot(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.key() == self.sent:
            return
        nbytes = self.session.training_state_nbytes()
        if nbytes > CHECKPOINT_MAX_BYTES:
            return
        if not (force or nbytes <= CHECKPOINT_ALWAYS_BYTES or now >= self.next_due):
            return
        state = self.session.training_state()
        state["commands_applied"] = self.commands_applied
        self.out.put(Checkpoint(state))
        self.sent = self.key()
        self.next_due = now + (time.perf_counter() - now) / CHECKPOINT_SHARE


#: requests a long computation handles at once; settings commands wait until it is done
_HANDLED_WHILE_BUSY = (Run, Step, RequestParams)


class _EngineLoop:
    """The child's loop (see ``serve``): one ``turn`` at a time, each a few small decisions.

    running / steps_wanted / stopping : what the window asked (Run, Step, Stop)
    changed : a settings command was applied since the last turn began
    """

    def __init__(
        self, session: Session, inbox, outbox, detail_hz: float, surface_interval: float
    ) -> None:
        self.session = session
        self.inbox = inbox
        self.out = _Outbox(outbox)
        self.ckpt = _Checkpoints(session, self.out)
        self.detail_hz = detail_hz
        self.surface_interval = surface_interval
        self.min_dt = 1.0 / detail_hz
        self.running = False
        self.steps_wanted = 0
        self.stopping = False
        self.changed_since = False  # a command came in during this turn
        self.changed = True  # this turn follows a change (the first turn: the start)
        self.last_emit = 0.0
        self.last_surface = 0.0
        self.shown_state: str | None = None
        self.settings_waiting = False  #: a settings command waits for a computation to end
        self.noise_job = None  #: the 1/sqrt(B) measurement under way (core.batch_noise)
        self.noise_run = -1  #: the run it was started in
        self._handlers = {
            Stop: self._on_stop,
            Run: self._on_run,
            Step: self._on_step,
            RequestParams: self._on_params,
        }

    # ------------------------------------------------------------- requests
    def handle(self, msg) -> None:
        """Carry out one request (core.commands)."""
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(msg)
        else:
            self._apply(msg)

    def _on_stop(self, msg: Stop) -> None:
        self.stopping = True

    def _on_run(self, msg: Run) -> None:
        self.running = bool(msg.running)

    def _on_step(self, msg: Step) -> None:
        self.steps_wanted += int(msg.n)

    def _on_params(self, msg: RequestParams) -> None:
        net = self.session.net
        self.out.put(ParamsCopy(tuple(net.layer_sizes), net.params.copy()))

    def _apply(self, command) -> None:
        """A settings command: applied or refused, it is done with (the checkpoints count it)."""
        self.ckpt.commands_applied += 1
        self.changed_since = True
        try:
            msgs = self.session.apply(command)
        except ConfigError as e:
            self.out.put(CommandFailed(e.field, e.message))
            return
        if msgs:
            self.out.put(Notes(tuple(msgs)))

    def drain(self, block: float = 0.0) -> None:
        """Handle every request waiting (the first one waited for up to ``block`` s)."""
        msg = self.inbox.get(block)
        while msg is not None:
            self.handle(msg)
            msg = self.inbox.get(0.0)
        self.settings_waiting = False

    def stop_requested(self) -> bool:
        """Cancel callback for long computations: handles run control and parameter
        requests at once, keeps settings commands (in order) until the computation is done."""
        if self.stopping:
            return True
        pending = []
        msg = self.inbox.get(0.0)
        while msg is not None:
            if isinstance(msg, Stop):
                self.stopping = True
            else:
                pending.append(msg)
            msg = self.inbox.get(0.0)
        for msg in pending:
            if isinstance(msg, _HANDLED_WHILE_BUSY):
                self.handle(msg)
            else:
                self.inbox.defer(msg)
                self.settings_waiting = True
        return self.stopping

    # ----------------------------------------------------------------- loop
    def run(self) -> None:
        """Until ``Stop``: an unexpected exception is reported and pauses the run."""
        self.send_snapshot(self.session.snapshot())
        while not self.stopping:
            try:
                self.turn()
            except Exception as e:  # shown in the window; the session's state is kept
                self.running = False
                self.shown_state = "paused"
                self.out.put(StateChanged("paused"))
                self.out.put(EngineError(f"{type(e).__name__}: {e}", traceback.format_exc()))
        self.out.put(Stopped())

    def turn(self) -> None:
        self.drain()
        if self.stopping:
            return
        self.changed, self.changed_since = self.changed_since, False
        single = self.steps_wanted > 0
        if single:
            self.steps_wanted -= 1
        training = self.running or single
        self._say_state()
        self._maybe_surface(training)
        self._maybe_batch_noise(training)
        if training and not self.session.diverged:
            self._train(single)
        elif self.changed or self.out.last_step != (
            self.session.run_id,
            self.session.step_count,
        ):
            # settings changed, or paused on a step the window has not seen yet
            self._send_now()
        else:
            # idle on a state the parent has seen: checkpoint it (once)
            self.ckpt.after_snapshot(force=True)
            self.drain(block=0.05)

    def send_snapshot(self, snap: Snapshot) -> None:
        self.out.snapshot(snap)
        self.ckpt.after_snapshot(force=self.changed)

    def _send_now(self) -> None:
        self.send_snapshot(self.session.snapshot())
        self.last_emit = time.perf_counter()

    def _say_state(self) -> None:
        s = self.session
        state = "diverged" if s.diverged else ("running" if self.running else "paused")
        if state != self.shown_state:
            self.shown_state = state
            self.out.put(StateChanged(state))

    def _surface_due(self) -> bool:
        s = self.session
        due = (
            self.changed
            or s.surface is None
            or time.perf_counter() - self.last_surface > self.surface_interval
            or s.surface_expired()  # fresh: at most ~0.5 s behind the weights
        )
        # after a divergence too: the surface then shows the last finite weights, as the
        # other views do
        return due and s.needs_surface()

    def _maybe_surface(self, training: bool) -> None:
        if not self._surface_due():
            return
        self.out.put(SurfaceBusy(True))
        try:
            self.session.compute_surface(cancel=self._train_between_chunks)
        finally:
            self.out.put(SurfaceBusy(False))
        self.last_surface = time.perf_counter()
        if not training:
            self._send_now()

    def _train_between_chunks(self) -> bool:
        """The surface's cancel callback, polled between its chunks (a few ms each): requests
        as ``stop_requested``, then, while running, one training step (a detailed one goes out
        as a snapshot when due). In one go the surface kept the loop from both for 26-110 ms
        twice a second; its grid is computed from its own copy of the weights, and its plane
        is installed only with it (``Landscape.compute_surface``)."""
        if self.stop_requested():
            return True
        # Never ahead of the user: not in the surface that follows a change of settings (the
        # next command, a Reset say, must come before any step on the changed settings), nor
        # while a settings command waits for the surface to end.
        if self.running and not (self.session.diverged or self.changed or self.settings_waiting):
            self._train(single=False)
        return False

    def _maybe_batch_noise(self, training: bool) -> None:
        """The measured 1/sqrt(B) panel, every few seconds (not before the first snapshot
        after a change: that one shows the change at once). While training, one piece of a
        few ms a turn, a training step between two pieces (in one go it kept the loop from
        training and sending snapshots for 50-90 ms: frames were lost); paused, all at once.
        A change of settings or a new run drops a job under way."""
        s = self.session
        job = self.noise_job
        if job is not None and (self.changed or self.noise_run != s.run_id):
            job = self.noise_job = None
        if job is None:
            if self.changed or not s.batch_noise_due():
                return
            job = self.noise_job = s.start_batch_noise()
            self.noise_run = s.run_id
        with np.errstate(all="ignore"):
            while not job.advance():
                if training:
                    return  # the next piece in the next turn
        s.keep_batch_noise(job)
        self.noise_job = None
        if not training:
            self._send_now()

    def _train(self, single: bool) -> None:
        now = time.perf_counter()
        detail = single or now - self.last_emit >= self.min_dt
        try:
            snap = self.session.step(detail=detail)
        except DivergedError:
            return
        if snap.diverged:
            self.running = False
            self.out.put(Notes((snap.message,)))
            self.send_snapshot(snap)
            self.last_emit = time.perf_counter()
        elif detail:
            self.send_snapshot(snap)
            self.last_emit = now
            # A detailed step that costs much (a large batch) is spaced out to at least 3x
            # its cost, so detail never takes over training.
            self.min_dt = max(1.0 / self.detail_hz, 3 * (time.perf_counter() - now))


def serve(
    session: Session, inbox, outbox, detail_hz: float = 40.0, surface_interval: float = 1.0
) -> None:
    """The child's loop: step, send snapshots, apply requests, compute surfaces; until
    ``Stop``. An unexpected exception is reported and pauses the run; the loop goes on.

    inbox : ``_Inbox`` (or anything with ``get(timeout)`` -> a ``core.commands`` request or
        None, and ``defer(msg)``); outbox : anything with ``put(reply)`` (``core.replies``).
        ParentGone from either ends the loop silently.
    """
    try:
        _EngineLoop(session, inbox, outbox, detail_hz, surface_interval).run()
    except ParentGone:
        return  # the window's process ended: nobody to report to


@contextlib.contextmanager
def _main_module_hidden():
    """Start the child without re-running the parent's ``__main__``.

    A spawned child normally imports the parent's main script first; the engine needs nothing
    from it (its target lives here), and a script or notebook that opens the window without an
    ``if __name__ == "__main__":`` guard would otherwise open a second window in the child.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main and k in main.__dict__}
    try:
        for k in saved:
            if k == "__spec__":
                main.__spec__ = None
            else:
                del main.__dict__[k]
        yield
    finally:
        for k, v in saved.items():
            main.__dict__[k] = v


@contextlib.contextmanager
def _stop_signals_blocked():
    """Block STOP_SIGNALS in this thread while a child is started: the child inherits the
    mask, so a signal to the group during its start-up (while it imports NumPy) waits until
    ``_child_main`` has set the silent default action, instead of printing a
    KeyboardInterrupt traceback from the middle of an import."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        # Starting a child starts multiprocessing's resource tracker first (once), and its
        # launch unblocks SIGINT and SIGTERM in this thread: have that done now, block again.
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _child_main(inbox_conn, outbox_conn, detail_hz, surface_interval, losses=()) -> None:
    for sig in STOP_SIGNALS:  # stop now, silently (the default action: end the process)
        signal.signal(sig, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    restore_losses(losses)  # the user's registered losses, before anything reads a loss name
    inbox = _Inbox(inbox_conn)
    try:
        session = inbox.get(timeout=None)  # the Session, sent first by the parent
    except ParentGone:
        os._exit(0)
    serve(session, inbox, _PipeOut(outbox_conn), detail_hz, surface_interval)
    # Nothing to tidy here (the pipes close with the process): ending now, without the
    # interpreter's tear-down of NumPy and the session, shortens every close of the window.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def describe_exit(exitcode: int | None) -> str:
    """'killed by SIGKILL', 'exit status 1', ... for a process's exit code."""
    if exitcode is None:
        return "ended (exit status unknown)"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


# --------------------------------------------------------------- parent side
#: values that hold no arrays (skipped at once)
_PLAIN = (int, float, str, bool, type(None), np.generic)


def freeze_arrays(obj) -> None:
    """Make every NumPy array reachable from ``obj`` read-only: ``obj`` itself, the fields of
    dataclasses, the items of tuples and lists and the values of dicts, at any depth.

    Unpickling makes arrays writeable again; the window is promised read-only snapshots.
    A snapshot has about 150 such values: a few tens of microseconds.
    """
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, np.ndarray):
        obj.flags.writeable = False
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            freeze_arrays(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            freeze_arrays(item)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELD_NAMES.get(type(obj))
        if names is None:
            names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
        for name in names:
            freeze_arrays(getattr(obj, name))


#: dataclass -> its field names (``dataclasses.fields`` is slow to call per snapshot)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class SnapshotMirror:
    """Rebuilds whole snapshots (full history, surface attached) from the light ones.

    The histories it hands out are views that never change afterwards: rows are only ever
    appended beyond them, and a record sent whole again goes into new arrays. Every array in
    the snapshots it hands out is read-only.
    """

    def __init__(self) -> None:
        self._cols = {f: np.empty(0) for f in HISTORY_FIELDS}
        self._n = 0
        self._events: list = []
        self._surface = None

    def full(self, snap: Snapshot) -> Snapshot:
        """The whole, read-only snapshot for the light one ``snap`` (just unpickled)."""
        for f in dataclasses.fields(snap):
            if f.name != "history":  # its rows are copied into the mirror's columns
                freeze_arrays(getattr(snap, f.name))
        part = snap.history
        k = len(part)
        if part.start == 0:
            self._n = 0
            self._events = []
            self._cols = {f: np.empty(max(1024, 2 * k)) for f in HISTORY_FIELDS}
        if part.start != self._n:  # should not happen; resynchronise on what we have
            part = dataclasses.replace(part, start=self._n)
        for f in HISTORY_FIELDS:
            col = self._cols[f]
            if self._n + k > col.size:
                new = np.empty(max(1024, 2 * (self._n + k)))
                new[: self._n] = col[: self._n]
                self._cols[f] = col = new
            col[self._n : self._n + k] = getattr(part, f)
        self._n += k
        self._events.extend(part.events)
        views = []
        for f in HISTORY_FIELDS:
            v = self._cols[f][: self._n]
            v.flags.writeable = False
            views.append(v)
        history = History(*views, events=tuple(self._events), generation=part.generation)
        surface = snap.surface
        if surface is not None:
            self._surface = surface
        elif (
            snap.detail
            and self._surface is not None
            and self._surface.surface_id == snap.surface_id
        ):
            surface = self._surface
        return dataclasses.replace(snap, history=history, surface=surface)


class EngineProcess:
    """A Session training in a child process (spawned: no Qt and no threads are inherited).

    ``send(...)`` gives the child a message (thread-safe; dropped if the child has ended);
    ``get(timeout)`` takes one reply, None if none came, or ``("ended", how)`` once the child
    has ended. Close with ``stop()``.
    """

    def __init__(
        self, session: Session, detail_hz: float = 40.0, surface_interval: float = 1.0
    ) -> None:
        ctx = mp.get_context("spawn")
        child_in, self._to_child = ctx.Pipe(duplex=False)
        self._from_child, child_out = ctx.Pipe(duplex=False)
        self.ended = False
        # Messages go out through a feeder thread, so send() never waits for the child: the
        # session itself (megabytes) goes first, while the child is still importing NumPy.
        self._outgoing: queue.SimpleQueue = queue.SimpleQueue()
        self._outgoing.put(session)
        # One BLAS thread in the child: a second one only spins on these small matrices,
        # and the other core is the window's (set before the child imports NumPy).
        env_before = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        for k in env_before:
            os.environ.setdefault(k, "1")
        try:
            self.process = ctx.Process(
                target=_child_main,
                name="batchscope-engine",
                daemon=True,
                # with the user's registered losses (core.losses.pickled_user_losses)
                args=(child_in, child_out, detail_hz, surface_interval, pickled_user_losses()),
            )
            # Only small arguments go through multiprocessing's own start-up pipe: the parent
            # holds both ends of it while writing, so a child that died before reading a
            # large argument (the session) would block the parent for good.
            with _main_module_hidden(), _stop_signals_blocked():
                self.process.start()
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
            # The child's ends now live in the child only: its end is then our end-of-file.
            child_in.close()
            child_out.close()
        self.mirror = SnapshotMirror()
        self._feeder = threading.Thread(target=self._feed, name="batchscope-engine-feeder")
        self._feeder.daemon = True
        self._feeder.start()

    def _feed(self) -> None:
        """The feeder thread: writes queued messages to the child until None or its end."""
        while True:
            msg = self._outgoing.get()
            if msg is None:
                break
            try:
                self._to_child.send(msg)
            except (OSError, ValueError):
                break  # the child has ended; get() says so
        self._to_child.close()

    def send(self, request: Request) -> None:
        """Queue a request (``core.commands``) for the child (never waits; dropped once the
        child has ended)."""
        self._outgoing.put(request)

    def get(self, timeout: float | None = None) -> Reply | None:
        """The child's next reply (``core.replies``; snapshots whole and read-only), None if
        none came within ``timeout`` s, or ``Ended(how)`` once the child has ended."""
        if self.ended:
            return Ended(self.how_it_ended())
        try:
            if not self._from_child.poll(timeout or 0.0):
                return None
            msg = self._from_child.recv()
        except (EOFError, OSError):
            self.ended = True
            return Ended(self.how_it_ended())
        if isinstance(msg, SnapshotReady):
            return SnapshotReady(self.mirror.full(msg.snapshot))
        return msg

    def how_it_ended(self) -> str:
        """'killed by SIGKILL', 'exit status 0', ... (waits up to 1 s for the exit status)."""
        self.process.join(1.0)
        return describe_exit(self.process.exitcode)

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the child to stop, wait up to ``timeout`` s, then terminate it. True if it
        stopped by itself (or had already ended)."""
        clean = True
        if self.process.is_alive():
            self.send(Stop())
            # Keep reading (and dropping) replies while waiting: a child blocked writing a
            # large snapshot into a full pipe could not exit otherwise.
            end = time.monotonic() + timeout
            while self.process.is_alive() and time.monotonic() < end:
                try:
                    while not self.ended and self._from_child.poll(0.02):
                        self._from_child.recv()
                except (EOFError, OSError):
                    self.ended = True
                self.process.join(0.02)
            clean = not self.process.is_alive()
            if not clean:
                self.process.terminate()
                self.process.join(1.0)
                if self.process.is_alive():
                    self.process.kill()
                    self.process.join(1.0)
        else:
            self.process.join(0.5)
        self._outgoing.put(None)
        self._feeder.join(1.0)  # a write to a child that has ended fails at once
        self._from_child.close()
        self.ended = True
        return clean
