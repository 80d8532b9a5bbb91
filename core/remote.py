"""Run a Session in its own process, driven through queues (no Qt here).

Why a process and not a thread: drawing with Qt holds Python's GIL (QPainter calls do not
release it), so a training thread in the window's process ran at a tenth of its bare speed
(benchmarks/bench_gui.py). In a child process the session trains on its own core while the
window draws on the other.

Protocol. The parent sends tuples on ``inbox``:
``("cmd", command)`` (core.commands), ``("run", bool)``, ``("step", n)``, ``("params",)``,
``("stop",)``. The child answers on ``outbox``:
``("snapshot", Snapshot)``, ``("messages", [str])``, ``("failed", field, message)``,
``("state", "running" | "paused" | "diverged")``, ``("error", summary, traceback)``,
``("surface", busy)``, ``("params", (layer_sizes, params))``, ``("stopped",)``.

Snapshots travel light: their history holds only the steps since the previous snapshot
(``History.start`` says where they begin) and a surface is sent once, then referred to by
``surface_id``; ``SnapshotMirror`` on the parent's side puts whole snapshots back together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import queue
import sys
import time
import traceback

import numpy as np

from .config import ConfigError
from .session import DivergedError, Session
from .snapshot import HISTORY_FIELDS, History, Snapshot

__all__ = ["EngineProcess", "SnapshotMirror", "serve"]


# ---------------------------------------------------------------- child side
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

    def put(self, *msg) -> None:
        self.q.put(msg)

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
        self.q.put(("snapshot", dataclasses.replace(snap, history=part, surface=surface)))
        self.last_step = (snap.run_id, snap.step)
        self.sent_steps, self.sent_events, self.sent_run = n, len(h.events), snap.run_id
        self.sent_generation = h.generation


def serve(
    session: Session, inbox, outbox, detail_hz: float = 40.0, surface_interval: float = 1.0
) -> None:
    """The child's loop: step, send snapshots, apply commands, compute surfaces; until
    ``("stop",)``. An unexpected exception is reported and pauses the run; the loop goes on."""
    out = _Outbox(outbox)
    state = {"running": False, "steps": 0, "stop": False, "changed": False}
    min_dt = 1.0 / detail_hz
    last_emit = last_surface = 0.0
    shown_state = None

    def handle(msg) -> None:
        kind = msg[0]
        if kind == "stop":
            state["stop"] = True
        elif kind == "run":
            state["running"] = bool(msg[1])
        elif kind == "step":
            state["steps"] += int(msg[1])
        elif kind == "params":
            net = session.net
            out.put("params", (tuple(net.layer_sizes), net.params.copy()))
        elif kind == "cmd":
            try:
                msgs = session.apply(msg[1])
            except ConfigError as e:
                out.put("failed", e.field, e.message)
                return
            state["changed"] = True
            if msgs:
                out.put("messages", msgs)

    def drain(block: float = 0.0) -> None:
        try:
            handle(inbox.get(timeout=block) if block else inbox.get_nowait())
        except queue.Empty:
            return
        while True:
            try:
                handle(inbox.get_nowait())
            except queue.Empty:
                return

    out.snapshot(session.snapshot())
    while not state["stop"]:
        try:
            drain()
            if state["stop"]:
                break
            changed, state["changed"] = state["changed"], False
            single = state["steps"] > 0
            if single:
                state["steps"] -= 1
            running = state["running"]
            new_state = "diverged" if session.diverged else ("running" if running else "paused")
            if new_state != shown_state:
                shown_state = new_state
                out.put("state", new_state)
            now = time.perf_counter()
            due = changed or session.surface is None or now - last_surface > surface_interval
            if due and not session.diverged and session.needs_surface():
                out.put("surface", True)
                try:
                    session.compute_surface(cancel=lambda: _stop_requested(inbox, state, handle))
                finally:
                    out.put("surface", False)
                last_surface = time.perf_counter()
                if not (running or single):
                    out.snapshot(session.snapshot())
                    last_emit = time.perf_counter()
            if (running or single) and not session.diverged:
                now = time.perf_counter()
                detail = single or now - last_emit >= min_dt
                try:
                    snap = session.step(detail=detail)
                except DivergedError:
                    continue
                if snap.diverged:
                    state["running"] = False
                    out.put("messages", [snap.message])
                    out.snapshot(snap)
                    last_emit = time.perf_counter()
                elif detail:
                    out.snapshot(snap)
                    last_emit = now
                    # A detailed step that costs much (a large batch) is spaced out to at
                    # least 3x its cost, so detail never takes over training.
                    min_dt = max(1.0 / detail_hz, 3 * (time.perf_counter() - now))
            elif changed or out.last_step != (session.run_id, session.step_count):
                # settings changed, or paused on a step the window has not seen yet
                out.snapshot(session.snapshot())
                last_emit = time.perf_counter()
            else:
                drain(block=0.05)
        except Exception as e:  # shown in the window; the session's state is kept
            state["running"] = False
            shown_state = "paused"
            out.put("state", "paused")
            out.put("error", f"{type(e).__name__}: {e}", traceback.format_exc())
    out.put("stopped")


def _stop_requested(inbox, state, handle) -> bool:
    """Cancel callback for long computations: reads (and keeps) queued messages."""
    if state["stop"]:
        return True
    pending = []
    while True:
        try:
            msg = inbox.get_nowait()
        except queue.Empty:
            break
        if msg[0] == "stop":
            state["stop"] = True
        else:
            pending.append(msg)
    for msg in pending:
        if msg[0] in ("run", "step", "params"):
            handle(msg)
        else:  # commands wait until the surface is done
            inbox.put(msg)
    return state["stop"]


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


def _child_main(session, inbox, outbox, detail_hz, surface_interval) -> None:
    serve(session, inbox, outbox, detail_hz, surface_interval)


# --------------------------------------------------------------- parent side
class SnapshotMirror:
    """Rebuilds whole snapshots (full history, surface attached) from the light ones."""

    def __init__(self) -> None:
        self._cols = {f: np.empty(0) for f in HISTORY_FIELDS}
        self._n = 0
        self._events: list = []
        self._surface = None

    def full(self, snap: Snapshot) -> Snapshot:
        part = snap.history
        if part.start == 0:
            self._n = 0
            self._events = []
        if part.start != self._n:  # should not happen; resynchronise on what we have
            part = dataclasses.replace(part, start=self._n)
        k = len(part)
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

    ``send(...)`` puts a message on the child's inbox; ``get(timeout)`` takes one reply (or
    None). Close with ``stop()``.
    """

    def __init__(
        self, session: Session, detail_hz: float = 40.0, surface_interval: float = 1.0
    ) -> None:
        ctx = mp.get_context("spawn")
        self.inbox = ctx.Queue()
        self.outbox = ctx.Queue()
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
                args=(session, self.inbox, self.outbox, detail_hz, surface_interval),
            )
            with _main_module_hidden():
                self.process.start()
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
        self.mirror = SnapshotMirror()

    def send(self, *msg) -> None:
        self.inbox.put(msg)

    def get(self, timeout: float | None = None):
        try:
            msg = self.outbox.get(timeout=timeout) if timeout else self.outbox.get_nowait()
        except queue.Empty:
            return None
        if msg[0] == "snapshot":
            return ("snapshot", self.mirror.full(msg[1]))
        return msg

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the child to stop, wait up to ``timeout`` s, then terminate it. True if it
        stopped by itself."""
        if not self.process.is_alive():
            return True
        try:
            self.inbox.put(("stop",))
        except (OSError, ValueError):
            pass
        # Keep reading (and dropping) replies while waiting: a child blocked writing a large
        # snapshot into a full pipe could not exit otherwise.
        end = time.monotonic() + timeout
        while self.process.is_alive() and time.monotonic() < end:
            try:
                while True:
                    self.outbox.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                pass
            self.process.join(0.02)
        clean = not self.process.is_alive()
        if not clean:
            self.process.terminate()
            self.process.join(1.0)
        for q in (self.inbox, self.outbox):
            q.cancel_join_thread()
            q.close()
        return clean
