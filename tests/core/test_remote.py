"""The engine process (core.remote): protocol, light snapshots rebuilt whole, clean stop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core import Config, Session, Update
from core.remote import EngineProcess, SnapshotMirror, _Outbox


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
    sent = [m[1] for m in q.items]
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
        first = _collect(engine, 20, until=lambda m: m[0] == "snapshot")
        assert first[-1][0] == "snapshot" and first[-1][1].step == 0
        engine.send("run", True)
        msgs = _collect(engine, 20, until=lambda m: m[0] == "snapshot" and m[1].step > 200)
        snap = msgs[-1][1]
        assert snap.step > 200 and len(snap.history) == snap.step
        np.testing.assert_array_equal(snap.history.steps, np.arange(1, snap.step + 1))
        engine.send("cmd", Update({"batch_size": 8}))
        msgs = _collect(engine, 20, until=lambda m: m[0] == "snapshot" and m[1].batch_size == 8)
        assert msgs[-1][1].M.shape == (8, 3)
        assert any(m[0] == "messages" and "batch_size: 32 -> 8" in m[1] for m in msgs)
        engine.send("cmd", Update({"batch_size": 10**6}))
        msgs = _collect(engine, 20, until=lambda m: m[0] == "failed")
        assert msgs[-1][1] == "batch_size"
        engine.send("params")
        msgs = _collect(engine, 20, until=lambda m: m[0] == "params")
        sizes, params = msgs[-1][1]
        assert sizes == (5, 8, 8, 3) and params.shape == (5 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3,)
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
        engine.send("cmd", Update({"batch_size": 8}))
        engine.send("run", True)
        msgs = _collect(
            engine, 20, until=lambda m: m[0] == "checkpoint" and m[1]["step_count"] > 50
        )
        state = msgs[-1][1]
        assert state["commands_applied"] == 1 and state["config"].batch_size == 8
        last_snap = [m[1] for m in msgs if m[0] == "snapshot"][-1]
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
        "from core.remote import EngineProcess\n"
        "e = EngineProcess(Session(Config(hidden=(8,), surface_resolution=9)))\n"
        "e.send('run', True)\n"
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
        engine.send("run", True)
        _collect(engine, 20, until=lambda m: m[0] == "snapshot" and m[1].step > 20)
        os.kill(engine.process.pid, getattr(signal, name))
        msgs = _collect(engine, 5, until=lambda m: m[0] == "ended")
        assert msgs and msgs[-1] == ("ended", f"killed by {name}")
    finally:
        engine.stop()
    assert "Traceback" not in capfd.readouterr().err  # the child shares our stderr
