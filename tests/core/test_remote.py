"""The engine process (core.remote): protocol, light snapshots rebuilt whole, clean stop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core import Config, Session, Update
from core.commands import RequestParams, Run
from core.remote import EngineProcess, SnapshotMirror, _Outbox
from core.replies import Checkpoint, CommandFailed, Ended, Notes, ParamsCopy, SnapshotReady


class _ListQueue:
    def __init__(self):
        self.items = []

    def put(self, item):
        self.items.append(item)


def _collect(engine, seconds, until=None):
    """Messages from the engine for up to ``seconds`` (or until ``until(msg)``)."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = engine.get(timeout=0.05)
        if msg is None:
            continue
        got.append(msg)
        if until is not None and until(msg):
            break
    return got


def _snapshot_at(msg, cond) -> bool:
    return isinstance(msg, SnapshotReady) and cond(msg.snapshot)


def test_mirror_rebuilds_history_and_surface_from_light_snapshots():
    s = Session(Config(hidden=(8,), surface_resolution=9, surface_samples=32))
    q = _ListQueue()
    out = _Outbox(q)
    mirror = SnapshotMirror()
    s.compute_surface()
    whole = []
    for k in range(60):
        snap = s.step(detail=(k % 7 == 0))
        if snap.detail:
            out.snapshot(snap)
            whole.append(snap)
    s.update(hidden=(6,))  # rebuild: a new run id, history kept
    for _ in range(5):
        snap = s.step()
        out.snapshot(snap)
        whole.append(snap)
    sent = [m.snapshot for m in q.items]
    assert len(sent[1].history) < len(whole[1].history)  # light: increments only
    assert sum(m.surface is not None for m in sent) < sum(w.surface is not None for w in whole)
    for light, ref in zip(sent, whole):
        full = mirror.full(light)
        for f in ("steps", "loss", "train_loss", "val_loss", "grad_norm", "batch_size"):
            np.testing.assert_array_equal(getattr(full.history, f), getattr(ref.history, f))
        assert full.history.events == ref.history.events
        assert (full.surface is None) == (ref.surface is None)
        if ref.surface is not None:
            assert full.surface.surface_id == ref.surface.surface_id
            np.testing.assert_array_equal(full.surface.Z, ref.surface.Z)


def test_engine_trains_applies_commands_answers_and_stops_quickly():
    engine = EngineProcess(Session(Config(hidden=(8, 8), surface_resolution=9)))
    try:
        first = _collect(engine, 20, until=lambda m: isinstance(m, SnapshotReady))
        assert isinstance(first[-1], SnapshotReady) and first[-1].snapshot.step == 0
        engine.send(Run(True))
        msgs = _collect(engine, 20, until=lambda m: _snapshot_at(m, lambda s: s.step > 200))
        snap = msgs[-1].snapshot
        assert snap.step > 200 and len(snap.history) == snap.step
        np.testing.assert_array_equal(snap.history.steps, np.arange(1, snap.step + 1))
        engine.send(Update({"batch_size": 8}))
        msgs = _collect(engine, 20, until=lambda m: _snapshot_at(m, lambda s: s.batch_size == 8))
        assert msgs[-1].snapshot.M.shape == (8, 3)
        assert any(isinstance(m, Notes) and "batch_size: 32 -> 8" in m.texts for m in msgs)
        engine.send(Update({"batch_size": 10**6}))
        msgs = _collect(engine, 20, until=lambda m: isinstance(m, CommandFailed))
        assert msgs[-1].field == "batch_size"
        engine.send(RequestParams())
        msgs = _collect(engine, 20, until=lambda m: isinstance(m, ParamsCopy))
        got = msgs[-1]
        assert got.layer_sizes == (5, 8, 8, 3)
        assert got.params.shape == (5 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3,)
    finally:
        t0 = time.monotonic()
        clean = engine.stop(timeout=1.0)
        assert time.monotonic() - t0 < 1.5
    assert clean
    assert not engine.process.is_alive()


@pytest.mark.parametrize("B", [300, 520])
def test_power_iteration_direction_matches_eigh(B):
    """Above EIGH_MAX the disagreement direction comes from power iteration."""
    from core.gradstats import DenseGradients, _top_eigenpair, disagreement_direction
    from core.mlp import MLP

    rng = np.random.default_rng(B)
    net = MLP([5, 6, 3], seed=1)
    X, T = rng.normal(size=(B, 5)), rng.normal(size=(B, 3))
    G = net.per_sample_gradients(X, T)
    gbar = G.mean(axis=0)
    d = disagreement_direction(DenseGradients(G), gbar)
    ghat = gbar / np.linalg.norm(gbar)
    R = G - gbar
    R -= np.outer(R @ ghat, ghat)
    top = np.linalg.svd(R, full_matrices=False)[2][0]
    assert abs(np.linalg.norm(d) - 1) < 1e-9
    assert abs(d @ ghat) < 1e-9
    assert abs(abs(d @ top) - 1) < 1e-6
    C = R @ R.T
    lam, u = _top_eigenpair(C)
    assert lam == pytest.approx(np.linalg.eigvalsh(C)[-1], rel=1e-8)


@pytest.mark.parametrize("B", [1, 2, 5, 32])
def test_fast_percentiles_match_numpy(B):
    from core.session import _percentiles

    A = np.random.default_rng(B).normal(size=(B, 40))
    lo, hi = _percentiles(A, (10.0, 90.0))
    np.testing.assert_allclose(lo, np.percentile(A, 10, axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(hi, np.percentile(A, 90, axis=0), rtol=0, atol=1e-15)


def test_memory_budget_refuses_before_allocating():
    from core import ConfigError

    with pytest.raises(ConfigError) as e:
        Config(hidden=(4096, 4096), surface_samples=100_000).validate()
    assert "GiB" in e.value.message and e.value.field in ("hidden", "batch_size")
    with pytest.raises(ConfigError) as e:
        Config(hidden=(4096,) * 3).validate()
    assert e.value.field == "hidden" and "parameters" in e.value.message


def test_large_batch_times_params_uses_the_factored_path(monkeypatch):
    import core.session as session_mod

    monkeypatch.setattr(session_mod, "MATERIALISE_LIMIT_BYTES", 1000)
    s = Session(Config(hidden=(8,), surface_resolution=9))
    snap = s.step(detail=True)
    assert snap.band_lo is None  # G was not formed
    assert snap.max_abs_diff < 1e-12  # and the law still holds, from the factors
    assert np.all(np.isfinite(snap.stats.cosines)) and snap.spread.shape == (32, 2)


# ------------------------------------------------ restarts, signals, the parent's end
def test_a_restored_session_carries_on_exactly_where_the_state_was_taken():
    """training_state + the record's rows -> Session.restored: the next steps are those the
    original would have taken (weights, Adam's moments, the sampler's position, the record)."""
    cfg = Config(hidden=(8,), optimizer="adam", surface_resolution=9)
    a = Session(cfg)
    for _ in range(57):
        a.step(detail=False)
    state, rows = a.training_state(), a.history
    b = Session.restored(state, rows)
    assert (b.step_count, b.run_id) == (a.step_count, a.run_id)
    for _ in range(30):
        sa, sb = a.step(detail=False), b.step(detail=False)
        assert sa.loss == sb.loss
    np.testing.assert_array_equal(a.net.params, b.net.params)
    for f in ("steps", "loss", "train_loss", "batch_size"):
        np.testing.assert_array_equal(getattr(a.history, f), getattr(b.history, f))
    assert b.history.events == a.history.events
    # a state is a copy: stepping the original afterwards does not change it
    before = state["params"].copy()
    a.step(detail=False)
    np.testing.assert_array_equal(state["params"], before)
    with pytest.raises(ValueError):
        Session.restored(state, a.history)  # rows of another moment


def test_a_merged_record_is_restored_with_its_stride_and_pending_steps():
    from core.history import HistoryBuffer

    buf = HistoryBuffer(max_rows=8)
    row = dict.fromkeys(("loss", "train_loss", "val_loss", "grad_norm", "noise_scale"), 1.0)
    for k in range(1, 24):
        buf.append(steps=k, batch_size=4, **{**row, "loss": float(k)})
    copy = HistoryBuffer.from_rows(buf.view(), buf.light_state())
    for k in range(24, 70):
        for b in (buf, copy):
            b.append(steps=k, batch_size=4, **{**row, "loss": float(k)})
    assert copy.stride == buf.stride > 1 and copy.generation == buf.generation
    np.testing.assert_array_equal(copy.view().loss, buf.view().loss)
    np.testing.assert_array_equal(copy.view().steps, buf.view().steps)


def test_the_engine_sends_checkpoints_with_the_commands_it_applied():
    engine = EngineProcess(Session(Config(hidden=(8,), surface_resolution=9)))
    try:
        engine.send(Update({"batch_size": 8}))
        engine.send(Run(True))
        msgs = _collect(
            engine,
            20,
            until=lambda m: isinstance(m, Checkpoint) and m.state["step_count"] > 50,
        )
        state = msgs[-1].state
        assert state["commands_applied"] == 1 and state["config"].batch_size == 8
        last_snap = [m.snapshot for m in msgs if isinstance(m, SnapshotReady)][-1]
        assert last_snap.step == state["step_count"]  # the rows the parent holds match
        assert len(last_snap.history) == state["history"]["n"]
    finally:
        engine.stop()


def test_the_engine_ends_silently_when_its_parent_ends(tmp_path):
    """A parent killed outright (no clean-up at all) leaves no engine behind."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    script = (
        "import sys, time\n"
        "from core import Config, Session\n"
        "from core.commands import Run\n"
        "from core.remote import EngineProcess\n"
        "e = EngineProcess(Session(Config(hidden=(8,), surface_resolution=9)))\n"
        "e.send(Run(True))\n"
        "print(e.process.pid, flush=True)\n"
        "end = time.monotonic() + 60\n"
        "while time.monotonic() < end:\n"
        "    e.get(0.1)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        engine = psutil.Process(int(proc.stdout.readline()))
        end = time.monotonic() + 30
        while engine.cpu_times().user < 0.5 and time.monotonic() < end:
            time.sleep(0.05)  # training
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        t0 = time.monotonic()
        while engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() - t0 < 2.0, "the engine outlived its parent by 2 s"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
    assert err.decode().strip() == ""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_the_engine_at_once_and_the_parent_hears_of_it(name, capfd):
    import os
    import signal

    engine = EngineProcess(Session(Config(hidden=(8,), surface_resolution=9)))
    try:
        engine.send(Run(True))
        _collect(engine, 20, until=lambda m: _snapshot_at(m, lambda s: s.step > 20))
        os.kill(engine.process.pid, getattr(signal, name))
        msgs = _collect(engine, 5, until=lambda m: isinstance(m, Ended))
        assert msgs and msgs[-1] == Ended(f"killed by {name}")
    finally:
        engine.stop()
    assert "Traceback" not in capfd.readouterr().err  # the child shares our stderr


# ------------------------------------------------------ typed messages, frozen snapshots
def _arrays(obj):
    """(path, array) for every NumPy array reachable from ``obj`` through dataclass fields,
    tuples, lists and dict values."""
    import dataclasses

    found, stack = [], [("snapshot", obj)]
    while stack:
        path, x = stack.pop()
        if isinstance(x, np.ndarray):
            found.append((path, x))
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            stack += [(f"{path}.{f.name}", getattr(x, f.name)) for f in dataclasses.fields(x)]
        elif isinstance(x, (tuple, list)):
            stack += [(f"{path}[{k}]", v) for k, v in enumerate(x)]
        elif isinstance(x, dict):
            stack += [(f"{path}[{k!r}]", v) for k, v in x.items()]
    return found


def test_the_mirror_hands_out_snapshots_whose_every_array_is_read_only():
    """Unpickling makes arrays writeable again; the whole snapshot the window gets is not."""
    import pickle

    s = Session(Config(hidden=(8,), surface_resolution=9, surface_samples=32))
    s.compute_surface()
    q, mirror = _ListQueue(), SnapshotMirror()
    out = _Outbox(q)
    for k in range(4):
        out.snapshot(s.step(detail=True))
        light = pickle.loads(pickle.dumps(q.items[-1])).snapshot  # as the pipe delivers it
        if k == 0:
            assert light.M.flags.writeable  # the problem this guards against
            assert light.surface is not None and light.surface.Z.flags.writeable
        full = mirror.full(light)
        arrays = _arrays(full)
        names = {p for p, _ in arrays}
        assert {"snapshot.M", "snapshot.history.loss", "snapshot.surface.Z"} <= names
        assert len(arrays) > 20
        assert [p for p, a in arrays if a.flags.writeable] == []
    with pytest.raises(ValueError, match="read-only"):
        full.M[0, 0] = 1.0


class _ScriptInbox:
    """Requests for ``serve`` from a list of (when, request): each is handed out once
    ``when()`` holds (None until then), in order; then ``Stop``."""

    def __init__(self, script):
        from collections import deque

        from core.commands import Stop

        self.script = deque([*script, (lambda: True, Stop())])
        self.deferred = deque()

    def get(self, timeout=0.0):
        if self.deferred:
            return self.deferred.popleft()
        if self.script and self.script[0][0]():
            return self.script.popleft()[1]
        return None

    def defer(self, msg):
        self.deferred.append(msg)


def test_serve_answers_typed_requests_with_typed_replies():
    """Step, settings commands, a refused one and a weights request, in the child's loop
    run in this process: each kind of request gets its kind of reply, in order."""
    from core.commands import Step
    from core.remote import serve
    from core.replies import StateChanged, Stopped

    s = Session(Config(hidden=(8,), surface_resolution=9))
    q = _ListQueue()
    now = lambda: True  # noqa: E731
    inbox = _ScriptInbox(
        [
            (now, Step(3)),
            (lambda: s.step_count == 3, Update({"batch_size": 4})),
            (now, Update({"batch_size": 0})),
            (lambda: s.config.batch_size == 4, RequestParams()),
        ]
    )
    serve(s, inbox, q)
    kinds = [type(m) for m in q.items]
    assert kinds[-1] is Stopped and StateChanged in kinds
    steps = [m.snapshot.step for m in q.items if isinstance(m, SnapshotReady)]
    assert steps[:1] == [0] and {1, 2, 3} <= set(steps)
    assert max(steps) == 3  # paused after the three steps asked for
    failed = [m for m in q.items if isinstance(m, CommandFailed)]
    assert [f.field for f in failed] == ["batch_size"]
    notes = [t for m in q.items if isinstance(m, Notes) for t in m.texts]
    assert any("batch_size" in t and "4" in t for t in notes)
    got = [m for m in q.items if isinstance(m, ParamsCopy)]
    assert len(got) == 1 and got[0].layer_sizes == (5, 8, 3)
    np.testing.assert_array_equal(got[0].params, s.net.params)


def test_the_engine_trains_between_the_pieces_of_a_batch_noise_measurement(monkeypatch):
    """While running, the engine loop does the measured 1/sqrt(B) panel one piece a turn with
    a training step between two pieces (in one go it kept the loop from training and sending
    snapshots for 50-90 ms); the result names the step whose weights it measured."""
    from collections import deque

    from core.batch_noise import BATCH_SIZES, BatchNoiseJob
    from core.commands import Stop
    from core.remote import serve

    s = Session(Config(surface_resolution=9))
    at_advance = []
    real = BatchNoiseJob.advance

    def spy(job):
        at_advance.append(s.step_count)
        return real(job)

    monkeypatch.setattr(BatchNoiseJob, "advance", spy)
    inbox = _ScriptInbox([(lambda: True, Run(True))])
    # instead of the Stop at once: one after a measurement kept while training
    inbox.script = deque(
        [inbox.script[0], (lambda: s.batch_noise is not None and s.step_count > 50, Stop())]
    )
    serve(s, inbox, _ListQueue())
    assert s.batch_noise is not None
    pieces = at_advance[: 4 + len(BATCH_SIZES)]  # 1,024 samples: 4 of 256 Gram rows, 9 sizes
    assert len(pieces) == 4 + len(BATCH_SIZES)
    assert all(b > a for a, b in zip(pieces, pieces[1:]))  # a step between every two pieces
    assert s.batch_noise.step == pieces[0]  # the weights the job took its gradients at


def test_the_engine_trains_between_the_chunks_of_a_surface(monkeypatch):
    """While running, training goes on between the surface's chunks (in one go the surface
    kept the loop from training and sending snapshots for 26-110 ms twice a second); the
    snapshots sent meanwhile show the old plane and surface together, the new ones come
    together."""
    from collections import deque

    from core.commands import Stop
    from core.landscape import Landscape
    from core.remote import serve

    s = Session(Config())
    during = []  # steps taken while a surface was being computed
    busy = {"on": False}
    real_surface = Landscape.compute_surface

    def computing(self, *a, **k):
        busy["on"] = True
        try:
            return real_surface(self, *a, **k)
        finally:
            busy["on"] = False

    real_step = Session.step

    def step(self, *a, **k):
        if busy["on"]:
            land = self.landscape  # the old plane and its surface, together
            together = land.surface is None or land.surface.plane is land.plane
            during.append((self.step_count, together))
        return real_step(self, *a, **k)

    monkeypatch.setattr(Landscape, "compute_surface", computing)
    monkeypatch.setattr(Session, "step", step)
    inbox = _ScriptInbox([(lambda: True, Run(True))])
    inbox.script = deque([inbox.script[0], (lambda: len(during) > 20, Stop())])
    q = _ListQueue()
    serve(s, inbox, q)
    assert len(during) > 20 and all(together for _, together in during)
    assert s.landscape.surface.plane is s.landscape.plane
    assert any(isinstance(m, SnapshotReady) for m in q.items)
